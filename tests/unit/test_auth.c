#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "auth.h"

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

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_equal),
        cmocka_unit_test(test_three_ways_to_present_a_token),
        cmocka_unit_test(test_missing_and_invalid),
        cmocka_unit_test(test_open_without_tokens),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
