/* Anthropic's error shape (src/doors/anthropic/errors.c): every status of the table, Google
 * bodies (object and array-shaped) re-rendered, never forwarded raw. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "doors/anthropic/errors.h"
#include "base/err.h"

static void
test_types(void **state)
{
    (void)state;
    static const struct {
        int status;
        const char *gstatus;
        int want_status;
        const char *want_type;
    } cases[] = {
        {400, "INVALID_ARGUMENT", 400, "invalid_request_error"},
        {400, "FAILED_PRECONDITION", 400, "invalid_request_error"},
        {401, "UNAUTHENTICATED", 401, "authentication_error"},
        {403, "PERMISSION_DENIED", 403, "permission_error"},
        {404, "NOT_FOUND", 404, "not_found_error"},
        {409, "ABORTED", 400, "invalid_request_error"},
        {413, NULL, 413, "request_too_large"},
        {429, "RESOURCE_EXHAUSTED", 429, "rate_limit_error"},
        {499, "CANCELLED", 500, "api_error"},
        {500, "INTERNAL", 500, "api_error"},
        {501, "UNIMPLEMENTED", 500, "api_error"},
        {503, "UNAVAILABLE", 529, "overloaded_error"},
        {504, "DEADLINE_EXCEEDED", 500, "api_error"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct skiff_anth_error e;
        skiff_anth_error_from_google(cases[i].status, cases[i].gstatus, "m", &e);
        if (e.status != cases[i].want_status || strcmp(e.type, cases[i].want_type) != 0)
            fail_msg("%d %s: got %d %s", cases[i].status, cases[i].gstatus, e.status, e.type);
        assert_string_equal(e.message, "m");
    }
    /* A 500 that says the model is overloaded is an overload. */
    struct skiff_anth_error e;
    skiff_anth_error_from_google(500, "INTERNAL", "The model is overloaded. Please try later.", &e);
    assert_int_equal(e.status, 529);
}

static void
test_bodies(void **state)
{
    (void)state;
    static const struct {
        int status;
        const char *google;
        const char *want;
    } cases[] = {
        {429,
         "{\n  \"error\": {\n    \"code\": 429,\n    \"message\": \"Resource has been exhausted "
         "(e.g. check quota).\",\n    \"status\": \"RESOURCE_EXHAUSTED\",\n    \"details\": "
         "[{\"@type\": \"type.googleapis.com/google.rpc.QuotaFailure\"}]\n  }\n}\n",
         "{\"type\":\"error\",\"error\":{\"type\":\"rate_limit_error\",\"message\":\"Resource has "
         "been exhausted (e.g. check quota).\"}}"},
        {503,
         "[{\n  \"error\": {\n    \"code\": 503,\n    \"message\": \"The model is overloaded.\",\n"
         "    \"status\": \"UNAVAILABLE\"\n  }\n}\n]",
         "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"The model is "
         "overloaded.\"}}"},
        {502, "<html>Bad Gateway</html>",
         "{\"type\":\"error\",\"error\":{\"type\":\"api_error\",\"message\":\"The upstream failed "
         "without saying why.\"}}"},
        {503, "",
         "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded: "
         "the upstream stayed unavailable after retries and fallbacks.\"}}"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct skiff_anth_error e;
        skiff_anth_error_from_google_body(cases[i].status, cases[i].google, strlen(cases[i].google),
                                          &e);
        char *got = skiff_anth_error_body(&e);
        if (strcmp(got, cases[i].want) != 0)
            fail_msg("case %zu:\n got  %s\n want %s", i, got, cases[i].want);
        free(got);
    }
}

static void
test_fail(void **state)
{
    (void)state;
    struct skiff_anth_error e;
    assert_int_equal(skiff_anth_fail(&e, 404, "model: %s is not in the models: map", "claude-x"),
                     SKIFF_EINVAL);
    char *got = skiff_anth_error_body(&e);
    assert_string_equal(got, "{\"type\":\"error\",\"error\":{\"type\":\"not_found_error\","
                             "\"message\":\"model: claude-x is not in the models: map\"}}");
    free(got);
    /* A message cut to fit never ends inside a UTF-8 sequence, so it still renders. */
    char big[1200];
    for (size_t i = 0; i + 2 < sizeof big; i += 2)
        memcpy(big + i, "\xc3\xa9", 2);
    big[sizeof big - 2] = '\0';
    skiff_anth_fail(&e, 400, "x%s", big);
    got = skiff_anth_error_body(&e);
    assert_non_null(got);
    assert_non_null(strstr(got, "invalid_request_error"));
    assert_null(strstr(got, "not UTF-8"));
    free(got);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_types),
        cmocka_unit_test(test_bodies),
        cmocka_unit_test(test_fail),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
