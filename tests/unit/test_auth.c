#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "doors/auth.h"

static struct skiff_token tokens[] = {{"alice", "sk-alice-secret"}, {"bob", "sk-bob-secret-2"}};

static void
req_with(struct skiff_request *r, const char *name, const char *value, const char *query)
{
    memset(r, 0, sizeof *r);
    r->query = query ? query : "";
    r->query_len = strlen(r->query);
    if (name) {
        r->headers[0] = (struct skiff_header){name, value, strlen(name), strlen(value)};
        r->nheaders = 1;
    }
}

static void
test_equal(void **state)
{
    assert_true(skiff_auth_equal("abc", 3, "abc", 3));
    assert_false(skiff_auth_equal("abc", 3, "abd", 3));
    assert_false(skiff_auth_equal("abc", 3, "abcd", 4));
    assert_false(skiff_auth_equal("", 0, "a", 1));
}

static void
test_three_ways_to_present_a_token(void **state)
{
    struct skiff_config cfg = {.tokens = tokens, .ntokens = 2};
    struct skiff_request r;
    const char *who;
    req_with(&r, "X-Goog-Api-Key", "sk-bob-secret-2", NULL);
    assert_int_equal(skiff_auth_check(&cfg, &r, &who), SKIFF_AUTH_OK);
    assert_string_equal(who, "bob");
    req_with(&r, "authorization", "Bearer sk-alice-secret", NULL);
    assert_int_equal(skiff_auth_check(&cfg, &r, &who), SKIFF_AUTH_OK);
    assert_string_equal(who, "alice");
    req_with(&r, NULL, NULL, "alt=sse&key=sk-alice-secret");
    assert_int_equal(skiff_auth_check(&cfg, &r, &who), SKIFF_AUTH_OK);
    assert_string_equal(who, "alice");
}

static void
test_missing_and_invalid(void **state)
{
    struct skiff_config cfg = {.tokens = tokens, .ntokens = 2};
    struct skiff_request r;
    const char *who;
    req_with(&r, NULL, NULL, "alt=sse");
    assert_int_equal(skiff_auth_check(&cfg, &r, &who), SKIFF_AUTH_MISSING);
    req_with(&r, "x-goog-api-key", "sk-alice-secreT", NULL);
    assert_int_equal(skiff_auth_check(&cfg, &r, &who), SKIFF_AUTH_INVALID);
    req_with(&r, "authorization", "Basic abc", NULL);
    assert_int_equal(skiff_auth_check(&cfg, &r, &who), SKIFF_AUTH_MISSING);
}

/* A door with its own header (Anthropic's x-api-key) or Bearer; the Gemini ways are not read. */
static void
test_door_header(void **state)
{
    struct skiff_config cfg = {.tokens = tokens, .ntokens = 2};
    struct skiff_request r;
    const char *who;
    req_with(&r, "X-Api-Key", "sk-bob-secret-2", NULL);
    assert_int_equal(skiff_auth_check_header(&cfg, &r, "x-api-key", &who), SKIFF_AUTH_OK);
    assert_string_equal(who, "bob");
    req_with(&r, "authorization", "Bearer  sk-alice-secret", NULL);
    assert_int_equal(skiff_auth_check_header(&cfg, &r, "x-api-key", &who), SKIFF_AUTH_OK);
    assert_string_equal(who, "alice");
    req_with(&r, "x-api-key", "sk-bob-secret", NULL);
    assert_int_equal(skiff_auth_check_header(&cfg, &r, "x-api-key", &who), SKIFF_AUTH_INVALID);
    req_with(&r, "x-goog-api-key", "sk-bob-secret-2", NULL);
    assert_int_equal(skiff_auth_check_header(&cfg, &r, "x-api-key", &who), SKIFF_AUTH_MISSING);
    req_with(&r, NULL, NULL, "key=sk-alice-secret");
    assert_int_equal(skiff_auth_check_header(&cfg, &r, "x-api-key", &who), SKIFF_AUTH_MISSING);
    struct skiff_config open = {0};
    assert_int_equal(skiff_auth_check_header(&open, &r, "x-api-key", &who), SKIFF_AUTH_OK);
    assert_string_equal(who, "anonymous");
}

static void
test_open_without_tokens(void **state)
{
    struct skiff_config cfg = {0};
    struct skiff_request r;
    const char *who;
    req_with(&r, NULL, NULL, NULL);
    assert_int_equal(skiff_auth_check(&cfg, &r, &who), SKIFF_AUTH_OK);
    assert_string_equal(who, "anonymous");
}

static void
test_loopback_hosts(void **state)
{
    static const char *const yes[] = {"localhost", "LOCALHOST:8080", "localhost.",
                                      "127.0.0.1", "127.0.0.1:1",    "127.255.0.9:65535",
                                      "[::1]",     "[::1]:80",       "[0:0:0:0:0:0:0:1]:80",
                                      NULL};
    static const char *const no[] = {"",
                                     "evil.example",
                                     "localhost.evil.example",
                                     "127.0.0.1.evil.example",
                                     "127.0.0.1:",
                                     "127.0.0.1:80x",
                                     "127.0.0.1:1234567",
                                     "128.0.0.1",
                                     "10.0.0.1",
                                     "[::2]",
                                     "::1",
                                     "[::1",
                                     "0x7f000001",
                                     "127.1",
                                     "localhost:80:80",
                                     NULL};
    for (const char *const *h = yes; *h; h++)
        assert_true(skiff_auth_loopback_host(*h, strlen(*h)));
    for (const char *const *h = no; *h; h++)
        if (skiff_auth_loopback_host(*h, strlen(*h)))
            fail_msg("%s taken for a loopback host", *h);
}

static void
test_open_mode_refuses_foreign_host_and_origin(void **state)
{
    struct skiff_config cfg = {0};
    struct skiff_request r;
    char msg[640];
    req_with(&r, "host", "127.0.0.1:8080", NULL);
    assert_int_equal(skiff_auth_open_check(&cfg, &r, msg, sizeof msg), 0);
    req_with(&r, "host", "rebound.evil.example", NULL);
    assert_int_equal(skiff_auth_open_check(&cfg, &r, msg, sizeof msg), 403);
    assert_non_null(strstr(msg, "rebound.evil.example"));
    assert_non_null(strstr(msg, "`tokens:`"));
    assert_non_null(strstr(msg, "SKIFF_TOKENS"));
    req_with(&r, "origin", "https://evil.example", NULL);
    assert_int_equal(skiff_auth_open_check(&cfg, &r, msg, sizeof msg), 403);
    req_with(&r, "origin", "http://localhost:5173", NULL);
    assert_int_equal(skiff_auth_open_check(&cfg, &r, msg, sizeof msg), 0);
    /* With tokens, the token decides, not the name. */
    struct skiff_token t = {.name = "a", .token = "sk-alice-secret"};
    cfg.tokens = &t;
    cfg.ntokens = 1;
    req_with(&r, "host", "skiff.example.com", NULL);
    assert_int_equal(skiff_auth_open_check(&cfg, &r, msg, sizeof msg), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_equal),
        cmocka_unit_test(test_three_ways_to_present_a_token),
        cmocka_unit_test(test_missing_and_invalid),
        cmocka_unit_test(test_door_header),
        cmocka_unit_test(test_open_without_tokens),
        cmocka_unit_test(test_loopback_hosts),
        cmocka_unit_test(test_open_mode_refuses_foreign_host_and_origin),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
