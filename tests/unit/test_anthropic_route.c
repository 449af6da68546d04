/* The Anthropic door's routes (src/doors/anthropic/route.c): path →
 * route with 404/405, the models: map's 404 naming the key to add, GET /v1/models from the
 * map. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/err.h"
#include "doors/anthropic/route.h"
#include "doors/models.h"

#define P(s) s, strlen(s)

static void
test_routes(void **state)
{
    (void)state;
    struct skiff_anth_route r;
    struct skiff_anth_error e;
    assert_int_equal(skiff_anth_route("POST", P("/v1/messages"), &r, &e), 0);
    assert_int_equal(r.kind, SKIFF_ANTH_ROUTE_MESSAGES);
    assert_int_equal(skiff_anth_route("POST", P("/anthropic/v1/messages/"), &r, &e), 0);
    assert_int_equal(r.kind, SKIFF_ANTH_ROUTE_MESSAGES);
    assert_int_equal(skiff_anth_route("POST", P("/anthropic/v1/messages/count_tokens"), &r, &e), 0);
    assert_int_equal(r.kind, SKIFF_ANTH_ROUTE_COUNT_TOKENS);
    assert_int_equal(skiff_anth_route("GET", P("/v1/models"), &r, &e), 0);
    assert_int_equal(r.kind, SKIFF_ANTH_ROUTE_MODELS);
    assert_int_equal(skiff_anth_route("GET", P("/v1/models/claude-opus-4-1"), &r, &e), 0);
    assert_int_equal(r.kind, SKIFF_ANTH_ROUTE_MODEL);
    assert_string_equal(r.model_id, "claude-opus-4-1");

    assert_int_equal(skiff_anth_route("GET", P("/v1/messages"), &r, &e), SKIFF_EINVAL);
    assert_int_equal(e.status, 405);
    assert_string_equal(e.type, "invalid_request_error");
    assert_non_null(strstr(e.message, "POST"));
    assert_int_equal(skiff_anth_route("POST", P("/v1/complete"), &r, &e), SKIFF_EINVAL);
    assert_int_equal(e.status, 404);
    assert_string_equal(e.type, "not_found_error");
    assert_non_null(strstr(e.message, "/v1/complete"));
    assert_int_equal(r.kind, SKIFF_ANTH_ROUTE_NONE);
    assert_int_equal(skiff_anth_route("GET", P("/v1/models/a/b"), &r, &e), SKIFF_EINVAL);
    assert_int_equal(e.status, 404);
    /* A trailing slash names the same resource. */
    assert_int_equal(skiff_anth_route("GET", P("/v1/models/"), &r, &e), 0);
    assert_int_equal(r.kind, SKIFF_ANTH_ROUTE_MODELS);
}

static void
test_unmapped(void **state)
{
    (void)state;
    struct skiff_anth_error e;
    assert_int_equal(skiff_anth_model_unmapped("claude-3-5-haiku-20241022", &e), SKIFF_EINVAL);
    assert_int_equal(e.status, 404);
    assert_string_equal(e.type, "not_found_error");
    assert_non_null(strstr(e.message, "models:"));
    assert_non_null(strstr(e.message, "\"claude-haiku-*\""));
    assert_non_null(strstr(e.message, "claude-3-5-haiku-20241022"));
    skiff_anth_model_unmapped("gpt-4o", &e);
    assert_non_null(strstr(e.message, "{\"gpt-4o\": gemini-2.5-flash}"));
}

static const struct skiff_model_alias map[] = {
    {"claude-sonnet-4-5", "gemini-3-flash-preview"},
    {"claude-opus-*", "gemini-2.5-pro"},
    {"claude-opus-4-1", "gemini-2.5-pro"},
    {"claude-sonnet-4-5", "gemini-2.5-flash"}, /* a duplicate: listed once */
};

static void
test_models(void **state)
{
    (void)state;
    char *s = skiff_anth_models_page(map, 4, NULL, NULL, 0);
    assert_string_equal(
        s, "{\"data\":[{\"type\":\"model\",\"id\":\"claude-sonnet-4-5\",\"display_name\":"
           "\"claude-sonnet-4-5 (gemini-3-flash-preview)\",\"created_at\":"
           "\"1970-01-01T00:00:00Z\"},{\"type\":\"model\",\"id\":\"claude-opus-4-1\","
           "\"display_name\":\"claude-opus-4-1 (gemini-2.5-pro)\",\"created_at\":"
           "\"1970-01-01T00:00:00Z\"}],\"has_more\":false,\"first_id\":\"claude-sonnet-4-5\","
           "\"last_id\":\"claude-opus-4-1\"}");
    free(s);
    s = skiff_anth_models_page(NULL, 0, NULL, NULL, 0);
    assert_string_equal(s, "{\"data\":[],\"has_more\":false,\"first_id\":null,\"last_id\":null}");
    free(s);

    struct skiff_anth_error e;
    s = skiff_anth_model_get(map, 4, NULL, "claude-opus-4-7", &e);
    assert_non_null(s);
    assert_non_null(strstr(s, "\"display_name\":\"claude-opus-4-7 (gemini-2.5-pro)\""));
    free(s);
    assert_null(skiff_anth_model_get(map, 4, NULL, "claude-haiku-4-5", &e));
    assert_int_equal(e.status, 404);
    assert_non_null(strstr(e.message, "claude-haiku-*"));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_routes),
        cmocka_unit_test(test_unmapped),
        cmocka_unit_test(test_models),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
