#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "relay/keypool.h"
#include "relay/probe.h"

static enum skiff_probe_result
judge(int status, const char *body)
{
    struct skiff_verdict v;
    return skiff_probe_judge(status, body, body ? strlen(body) : 0, &v);
}

/* The probe carries the key alone, so any refusal of it is the key's; an answer or a
 * missing model says the key got through; the rest tells nothing. */
static void
test_what_a_probe_answer_says_of_the_key(void **state)
{
    assert_int_equal(judge(200, "{\"name\": \"models/gemini-2.5-flash\"}"), SKIFF_PROBE_KEY_OK);
    assert_int_equal(judge(404, "{\"error\": {\"code\": 404, \"message\": \"Model is not found: "
                                "models/junk for api version v1beta\", \"status\": "
                                "\"NOT_FOUND\"}}"),
                     SKIFF_PROBE_KEY_OK);
    assert_int_equal(judge(400, "{\"error\": {\"code\": 400, \"message\": \"API key not valid. "
                                "Please pass a valid API key.\", \"status\": \"INVALID_ARGUMENT\", "
                                "\"details\": [{\"reason\": \"API_KEY_INVALID\"}]}}"),
                     SKIFF_PROBE_KEY_BAD);
    assert_int_equal(judge(403, "{\"error\": {\"code\": 403, \"message\": \"The caller does not "
                                "have permission\", \"status\": \"PERMISSION_DENIED\"}}"),
                     SKIFF_PROBE_KEY_BAD);
    assert_int_equal(judge(400, "{\"error\": {\"code\": 400, \"message\": \"User location is not "
                                "supported for the API use.\", \"status\": "
                                "\"FAILED_PRECONDITION\"}}"),
                     SKIFF_PROBE_KEY_BAD);
    assert_int_equal(judge(401, "Unauthorized"), SKIFF_PROBE_KEY_BAD);
    assert_int_equal(judge(0, NULL), SKIFF_PROBE_UNKNOWN);
    assert_int_equal(judge(503, "{\"error\": {\"code\": 503, \"status\": \"UNAVAILABLE\"}}"),
                     SKIFF_PROBE_UNKNOWN);
    assert_int_equal(judge(429, "{\"error\": {\"code\": 429, \"status\": \"RESOURCE_EXHAUSTED\"}}"),
                     SKIFF_PROBE_UNKNOWN);
    assert_int_equal(judge(502, "<html>bad gateway</html>"), SKIFF_PROBE_UNKNOWN);
}

static struct skiff_key keys[] = {{"AIzaProbeKeyA-0001", "a"}, {"AIzaProbeKeyB-0002", "b"}};
static struct skiff_config cfg = {.keys = keys, .nkeys = 2};

/* One probe per key at a time: the second caller waits for the first one's outcome. */
static void
test_one_probe_per_key_at_a_time(void **state)
{
    struct skiff_keypool *p = skiff_keypool_new(&cfg, NULL);
    uint64_t g1, g2, g3;
    int out = -1;
    assert_int_equal(skiff_keypool_probe_claim(p, 0, &g1), SKIFF_KEYPOOL_PROBE_RUN);
    assert_int_equal(skiff_keypool_probe_claim(p, 0, &g2), SKIFF_KEYPOOL_PROBE_WAIT);
    assert_int_equal(skiff_keypool_probe_claim(p, 1, &g3), SKIFF_KEYPOOL_PROBE_RUN);
    assert_int_equal(skiff_keypool_probe_outcome(p, 0, g2, &out), 0);
    skiff_keypool_probe_end(p, 0, SKIFF_PROBE_KEY_OK);
    assert_int_equal(skiff_keypool_probe_outcome(p, 0, g2, &out), 1);
    assert_int_equal(out, SKIFF_PROBE_KEY_OK);
    assert_int_equal(skiff_keypool_probe_outcome(p, 1, g3, &out), 0); /* key b's still runs */
    /* The next refusal probes anew, and a retired key is not probed at all. */
    assert_int_equal(skiff_keypool_probe_claim(p, 0, &g1), SKIFF_KEYPOOL_PROBE_RUN);
    skiff_keypool_probe_end(p, 0, SKIFF_PROBE_KEY_BAD);
    skiff_keypool_release(p, 0, "m", SKIFF_FAULT_KEY_INVALID, -1, "API_KEY_INVALID", 0, 0);
    assert_int_equal(skiff_keypool_probe_claim(p, 0, &g1), SKIFF_KEYPOOL_PROBE_RETIRED);
    skiff_keypool_free(p);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_what_a_probe_answer_says_of_the_key),
        cmocka_unit_test(test_one_probe_per_key_at_a_time),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
