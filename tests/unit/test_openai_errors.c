/* OpenAI's error shape (src/doors/openai/errors.c): types per status, Google bodies (object
 * and array-shaped) translated, never forwarded raw. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "doors/openai/errors.h"
#include "test_openai_common.h"

static void
test_types(void **state)
{
    (void)state;
    static const struct {
        int status;
        const char *type;
    } t[] = {{400, "invalid_request_error"},
             {401, "authentication_error"},
             {403, "permission_error"},
             {404, "not_found_error"},
             {429, "rate_limit_error"},
             {500, "api_error"},
             {503, "api_error"},
             {504, "api_error"}};
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        assert_string_equal(skiff_oai_error_type(t[i].status), t[i].type);
}

struct g_case {
    const char *name;
    int status;
    const char *body;
    const char *want;
    long retry;
};

static const struct g_case g_cases[] = {
    {"a 429 with RetryInfo", 429,
     "{\"error\": {\"code\": 429, \"message\": \"You exceeded your current quota.\", \"status\": "
     "\"RESOURCE_EXHAUSTED\", \"details\": [{\"@type\": "
     "\"type.googleapis.com/google.rpc.QuotaFailure\", \"violations\": []}, {\"@type\": "
     "\"type.googleapis.com/google.rpc.RetryInfo\", \"retryDelay\": \"12.5s\"}]}}",
     "{\"error\": {\"message\": \"You exceeded your current quota.\", \"type\": "
     "\"rate_limit_error\", \"param\": null, \"code\": \"resource_exhausted\"}}",
     13},
    {"the array-shaped body of the OpenAI-compatible endpoint", 400,
     "[{\"error\": {\"code\": 400, \"message\": \"Invalid JSON payload received.\", \"status\": "
     "\"INVALID_ARGUMENT\"}}]",
     "{\"error\": {\"message\": \"Invalid JSON payload received.\", \"type\": "
     "\"invalid_request_error\", \"param\": null, \"code\": \"invalid_argument\"}}",
     -1},
    {"a 404 on a model", 404,
     "{\"error\": {\"code\": 404, \"message\": \"models/gpt-9 is not found for API version "
     "v1beta.\", \"status\": \"NOT_FOUND\"}}",
     "{\"error\": {\"message\": \"models/gpt-9 is not found for API version v1beta.\", "
     "\"type\": \"not_found_error\", \"param\": null, \"code\": \"model_not_found\"}}",
     -1},
    {"a 403", 403,
     "{\"error\": {\"code\": 403, \"message\": \"Permission denied.\", \"status\": "
     "\"PERMISSION_DENIED\"}}",
     "{\"error\": {\"message\": \"Permission denied.\", \"type\": \"permission_error\", "
     "\"param\": null, \"code\": \"permission_denied\"}}",
     -1},
    {"an HTML 502 of a proxy", 502, "<html>Bad Gateway</html>",
     "{\"error\": {\"message\": \"The Gemini API answered 502 without an error message.\", "
     "\"type\": \"api_error\", \"param\": null, \"code\": null}}",
     -1},
};

static void
test_google_bodies(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof g_cases / sizeof g_cases[0]; i++) {
        struct skiff_oai_error e;
        skiff_oai_error_from_google(g_cases[i].status, g_cases[i].body, strlen(g_cases[i].body),
                                    &e);
        json_t *j = skiff_oai_error_json(&e);
        assert_json(j, g_cases[i].want, g_cases[i].name);
        json_decref(j);
        assert_int_equal(e.status, g_cases[i].status);
        assert_int_equal(e.retry_after_s, g_cases[i].retry);
    }
}

/* A stream's error event has no HTTP status: the body's code is used. */
static void
test_stream_event_status(void **state)
{
    (void)state;
    struct skiff_oai_error e;
    const char *b = "{\"error\": {\"code\": 503, \"message\": \"overloaded\", \"status\": "
                    "\"UNAVAILABLE\"}}";
    skiff_oai_error_from_google(0, b, strlen(b), &e);
    assert_int_equal(e.status, 503);
    assert_string_equal(e.code, "unavailable");
}

static void
test_own_error_with_param(void **state)
{
    (void)state;
    struct skiff_oai_error e;
    skiff_oai_error_set(&e, 400, "stop", NULL, "stop holds %d sequences.", 6);
    json_t *j = skiff_oai_error_json(&e);
    assert_json(j,
                "{\"error\": {\"message\": \"stop holds 6 sequences.\", \"type\": "
                "\"invalid_request_error\", \"param\": \"stop\", \"code\": null}}",
                "own");
    json_decref(j);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_types),
        cmocka_unit_test(test_google_bodies),
        cmocka_unit_test(test_stream_event_status),
        cmocka_unit_test(test_own_error_with_param),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
