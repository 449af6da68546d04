#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "gemini/error.h"

static void
test_envelope_is_google_shaped(void **state)
{
    char *s = skiff_gerr_body(503, NULL, "The model is overloaded. Please try again later.", NULL, 0);
    assert_string_equal(s, "{\n"
                           "  \"error\": {\n"
                           "    \"code\": 503,\n"
                           "    \"message\": \"The model is overloaded. Please try again later.\",\n"
                           "    \"status\": \"UNAVAILABLE\"\n"
                           "  }\n"
                           "}\n");
    free(s);
}

static void
test_details_and_array_form(void **state)
{
    json_t *d = json_array();
    json_array_append_new(d, skiff_gerr_retry_info(37.2));
    json_array_append_new(d, skiff_gerr_help("Learn more", "https://ai.google.dev/"));
    char *s = skiff_gerr_body(429, NULL, "quota", d, 1);
    json_error_t e;
    json_t *j = json_loads(s, 0, &e);
    assert_non_null(j);
    assert_true(json_is_array(j));
    json_t *err = json_object_get(json_array_get(j, 0), "error");
    assert_string_equal(json_string_value(json_object_get(err, "status")), "RESOURCE_EXHAUSTED");
    json_t *ri = json_array_get(json_object_get(err, "details"), 0);
    assert_string_equal(json_string_value(json_object_get(ri, "@type")),
                        "type.googleapis.com/google.rpc.RetryInfo");
    /* RetryInfo carries whole seconds, rounded up so a client never comes back early. */
    assert_string_equal(json_string_value(json_object_get(ri, "retryDelay")), "38s");
    json_decref(j);
    free(s);
}

static void
test_array_form_layout(void **state)
{
    /* gemini-api.md §4.5: "[{\n  \"error\": {...}\n}\n]", the object at the top indent. */
    char *s = skiff_gerr_body(404, NULL, "gone", NULL, 1);
    assert_string_equal(s, "[{\n"
                           "  \"error\": {\n"
                           "    \"code\": 404,\n"
                           "    \"message\": \"gone\",\n"
                           "    \"status\": \"NOT_FOUND\"\n"
                           "  }\n"
                           "}\n]");
    free(s);
}

static void
test_status_mapping(void **state)
{
    assert_string_equal(skiff_gerr_status_for(400), "INVALID_ARGUMENT");
    assert_string_equal(skiff_gerr_status_for(401), "UNAUTHENTICATED");
    assert_string_equal(skiff_gerr_status_for(403), "PERMISSION_DENIED");
    assert_string_equal(skiff_gerr_status_for(404), "NOT_FOUND");
    assert_string_equal(skiff_gerr_status_for(429), "RESOURCE_EXHAUSTED");
    assert_string_equal(skiff_gerr_status_for(500), "INTERNAL");
    assert_string_equal(skiff_gerr_status_for(503), "UNAVAILABLE");
    assert_string_equal(skiff_gerr_status_for(504), "DEADLINE_EXCEEDED");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_envelope_is_google_shaped),
        cmocka_unit_test(test_details_and_array_form),
        cmocka_unit_test(test_array_form_layout),
        cmocka_unit_test(test_status_mapping),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
