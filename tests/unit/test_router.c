#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "router.h"

static void
route(const char *m, const char *path, struct skiff_route *r)
{
    skiff_route(m, path, strlen(path), r);
}

static void
test_generate_paths(void **state)
{
    struct skiff_route r;
    route("POST", "/v1beta/models/gemini-2.5-flash:generateContent", &r);
    assert_int_equal(r.kind, SKIFF_ROUTE_GENERATE);
    assert_string_equal(r.version, "v1beta");
    assert_int_equal(r.model_len, strlen("gemini-2.5-flash"));
    assert_memory_equal(r.model, "gemini-2.5-flash", r.model_len);
    assert_int_equal(r.method, SKIFF_M_GENERATE);
    assert_true(r.http_method_ok);

    route("POST", "/v1/models/gemini-2.5-pro:streamGenerateContent", &r);
    assert_int_equal(r.kind, SKIFF_ROUTE_GENERATE);
    assert_string_equal(r.version, "v1");
    assert_int_equal(r.method, SKIFF_M_STREAM);

    route("POST", "/v1beta/models/gemini-embedding-001:batchEmbedContents", &r);
    assert_int_equal(r.method, SKIFF_M_BATCH_EMBED);
    route("POST", "/v1beta/models/gemini-embedding-001:embedContent", &r);
    assert_int_equal(r.method, SKIFF_M_EMBED);
    route("POST", "/v1beta/models/gemini-2.5-flash:countTokens", &r);
    assert_int_equal(r.method, SKIFF_M_COUNT_TOKENS);
}

static void
test_models_and_health(void **state)
{
    struct skiff_route r;
    route("GET", "/v1beta/models", &r);
    assert_int_equal(r.kind, SKIFF_ROUTE_MODELS);
    route("GET", "/v1/models/", &r);
    assert_int_equal(r.kind, SKIFF_ROUTE_MODELS);
    route("GET", "/v1beta/models/gemini-2.5-flash", &r);
    assert_int_equal(r.kind, SKIFF_ROUTE_MODEL);
    assert_memory_equal(r.model, "gemini-2.5-flash", r.model_len);
    route("GET", "/healthz", &r);
    assert_int_equal(r.kind, SKIFF_ROUTE_HEALTH);
}

static void
test_wrong_method_is_flagged(void **state)
{
    struct skiff_route r;
    route("GET", "/v1beta/models/gemini-2.5-flash:generateContent", &r);
    assert_int_equal(r.kind, SKIFF_ROUTE_GENERATE);
    assert_false(r.http_method_ok);
    route("POST", "/v1beta/models", &r);
    assert_false(r.http_method_ok);
}

static void
test_unknown_paths(void **state)
{
    const char *bad[] = {"/", "/v2/models", "/v1beta/model/x:generateContent",
                         "/v1beta/models/x:explode", "/v1beta/models/../etc:generateContent",
                         "/v1beta/models/:generateContent", "/v1beta/modelsX",
                         "/v1beta/models/a b:generateContent", "/healthzz"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct skiff_route r;
        route("POST", bad[i], &r);
        assert_int_equal(r.kind, SKIFF_ROUTE_NONE);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_generate_paths),
        cmocka_unit_test(test_models_and_health),
        cmocka_unit_test(test_wrong_method_is_flagged),
        cmocka_unit_test(test_unknown_paths),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
