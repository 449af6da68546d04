#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "cli/doctor.h"

static enum skiff_key_state
judge(int status, const char *body)
{
    struct skiff_verdict v;
    skiff_classify(status, body, body ? strlen(body) : 0, NULL, &v);
    return skiff_doctor_judge(status, &v);
}

static void
test_each_state(void **state)
{
    (void)state;
    assert_int_equal(judge(200, "{\"models\": []}"), SKIFF_KEY_VALID);
    assert_int_equal(judge(0, NULL), SKIFF_KEY_UNREACHABLE);
    assert_int_equal(judge(400,
                           "{\"error\": {\"code\": 400, \"message\": \"API key not valid. "
                           "Please pass a valid API key.\", \"status\": \"INVALID_ARGUMENT\"}}"),
                     SKIFF_KEY_INVALID);
    assert_int_equal(judge(403, "{\"error\": {\"code\": 403, \"message\": \"The caller does not "
                                "have permission\", \"status\": \"PERMISSION_DENIED\"}}"),
                     SKIFF_KEY_DENIED);
    assert_int_equal(judge(400,
                           "{\"error\": {\"code\": 400, \"message\": \"User location is not "
                           "supported for the API use.\", \"status\": \"FAILED_PRECONDITION\"}}"),
                     SKIFF_KEY_REGION);
    assert_int_equal(judge(429, "{\"error\": {\"code\": 429, \"status\": \"RESOURCE_EXHAUSTED\", "
                                "\"details\": [{\"violations\": [{\"quotaId\": "
                                "\"GenerateRequestsPerMinutePerProjectPerModel-FreeTier\", "
                                "\"quotaValue\": \"10\"}]}]}}"),
                     SKIFF_KEY_RATE_MINUTE);
    assert_int_equal(judge(429, "{\"error\": {\"code\": 429, \"status\": \"RESOURCE_EXHAUSTED\", "
                                "\"details\": [{\"violations\": [{\"quotaId\": "
                                "\"GenerateRequestsPerDayPerProjectPerModel-FreeTier\", "
                                "\"quotaValue\": \"20\"}]}]}}"),
                     SKIFF_KEY_RATE_DAY);
    assert_int_equal(judge(503, "{\"error\": {\"code\": 503, \"status\": \"UNAVAILABLE\"}}"),
                     SKIFF_KEY_UPSTREAM_ERROR);
    assert_string_equal(skiff_key_state_name(SKIFF_KEY_RATE_DAY), "rate-limited (per-day)");
    assert_string_equal(skiff_key_state_name(SKIFF_KEY_REGION), "region-blocked");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_each_state),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
