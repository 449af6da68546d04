#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "gemini/router.h"

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
test_compat_and_v1alpha(void **state)
{
    struct skiff_route r;
    route("POST", "/v1beta/openai/chat/completions", &r);
    assert_int_equal(r.kind, SKIFF_ROUTE_COMPAT);
    assert_string_equal(r.compat, "chat/completions");
    assert_string_equal(r.http_verb, "POST");
    assert_true(r.http_method_ok);
    route("GET", "/v1beta/openai/chat/completions", &r);
    assert_int_equal(r.kind, SKIFF_ROUTE_COMPAT);
    assert_false(r.http_method_ok);
    assert_string_equal(r.allow, "POST");
    route("POST", "/v1beta/openai/embeddings", &r);
    assert_string_equal(r.compat, "embeddings");
    route("GET", "/v1beta/openai/models", &r);
    assert_string_equal(r.compat, "models");
    assert_null(r.res_id);
    static const char *const ids[] = {"/v1beta/openai/models/models/gemini-2.5-flash",
                                      "/v1beta/openai/models/models%2Fgemini-2.5-flash",
                                      "/v1beta/openai/models/gemini-2.5-flash", NULL};
    for (const char *const *p = ids; *p; p++) {
        route("GET", *p, &r);
        assert_int_equal(r.kind, SKIFF_ROUTE_COMPAT);
        assert_int_equal(r.res_id_len, strlen("gemini-2.5-flash"));
        assert_memory_equal(r.res_id, "gemini-2.5-flash", r.res_id_len);
    }
    /* Paths that are none of its calls, or whose id is no model name, never go upstream. */
    static const char *const none[] = {"/v1beta/openai/images/generations",
                                       "/v1beta/openai/chat/completions/x",
                                       "/v1beta/openai/models/..",
                                       "/v1beta/openai/models/models/",
                                       "/v1beta/openai/models/a/b",
                                       "/v1beta/openai/models/models%2F..",
                                       "/v1/openai/chat/completions",
                                       "/v1alpha/openai/chat/completions",
                                       "/v1beta/openai/",
                                       NULL};
    for (const char *const *p = none; *p; p++) {
        route("GET", *p, &r);
        assert_int_equal(r.kind, SKIFF_ROUTE_NONE);
        route("POST", *p, &r);
        assert_int_equal(r.kind, SKIFF_ROUTE_NONE);
    }
    route("POST", "/v1alpha/models/gemini-2.5-flash:generateContent", &r);
    assert_int_equal(r.kind, SKIFF_ROUTE_GENERATE);
    assert_string_equal(r.version, "v1alpha");
    route("GET", "/v1alpha/models", &r);
    assert_int_equal(r.kind, SKIFF_ROUTE_MODELS);
    route("POST", "/v1alpha/auth_tokens", &r);
    assert_int_equal(r.kind, SKIFF_ROUTE_RESOURCE);
    assert_int_equal(r.res, SKIFF_RES_AUTH_TOKENS);
    assert_string_equal(r.http_verb, "POST");
    route("GET", "/v1alpha/auth_tokens", &r);
    assert_false(r.http_method_ok);
    route("POST", "/v1alpha/auth_tokens/x", &r);
    assert_int_equal(r.kind, SKIFF_ROUTE_NONE);
    route("POST", "/v1beta/auth_tokens", &r);
    assert_int_equal(r.kind, SKIFF_ROUTE_NONE);
    route("GET", "/v1alpha/files", &r);
    assert_int_equal(r.kind, SKIFF_ROUTE_NONE);
    route("POST", "/upload/v1alpha/files", &r);
    assert_int_equal(r.kind, SKIFF_ROUTE_NONE);
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
    const char *bad[] = {"/",
                         "/v2/models",
                         "/v1beta/model/x:generateContent",
                         "/v1beta/models/x:explode",
                         "/v1beta/models/../etc:generateContent",
                         "/v1beta/models/a/b",
                         "/v1beta/modelsX",
                         "/healthzz"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct skiff_route r;
        route("POST", bad[i], &r);
        assert_int_equal(r.kind, SKIFF_ROUTE_NONE);
    }
}

/* A models/ segment that is no model name is the client's mistake (400), never a path that
 * libcurl would collapse ("models/.." into "/v1beta/") and send with the pool key. */
static void
test_bad_model_names(void **state)
{
    const char *bad[] = {"/v1beta/models/..",
                         "/v1beta/models/.",
                         "/v1/models/..:generateContent",
                         "/v1beta/models/.:streamGenerateContent",
                         "/v1beta/models/%2e%2e:generateContent",
                         "/v1beta/models/%2E",
                         "/v1beta/models/:generateContent",
                         "/v1beta/models/a b:generateContent",
                         "/v1beta/models/gemini\t2:countTokens",
                         "/v1beta/models/-flag",
                         "/v1beta/models/.hidden",
                         "/v1beta/models/gemini-2.5-flash%00:generateContent",
                         "/v1beta/models/g\xc3\xa9mini:generateContent"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct skiff_route r;
        route("POST", bad[i], &r);
        assert_int_equal(r.kind, SKIFF_ROUTE_BAD_MODEL);
        assert_non_null(r.model);
    }
    char long_name[200];
    memset(long_name, 'a', sizeof long_name);
    assert_false(skiff_model_name_ok(long_name, 129));
    assert_true(skiff_model_name_ok(long_name, 128));
    assert_true(skiff_model_name_ok("gemini-2.5-flash-lite", 21));
    assert_true(skiff_model_name_ok("text-embedding-004", 18));
    assert_true(skiff_model_name_ok("gemma_3.27b-it", 14));
    assert_false(skiff_model_name_ok("..", 2));
    assert_false(skiff_model_name_ok("", 0));
}

/* Stored resources: each family's calls, their HTTP methods, and names rebuilt from parts. */
static void
test_resource_paths(void **state)
{
    struct skiff_route r;
    char name[128];
    route("GET", "/v1beta/files", &r);
    assert_int_equal(r.kind, SKIFF_ROUTE_RESOURCE);
    assert_int_equal(r.res, SKIFF_RES_FILES);
    assert_null(r.res_id);
    assert_string_equal(r.http_verb, "GET");
    route("DELETE", "/v1beta/files/abc123", &r);
    assert_string_equal(r.http_verb, "DELETE");
    skiff_route_res_name(&r, name, sizeof name);
    assert_string_equal(name, "files/abc123");
    route("GET", "/v1beta/files/abc123:download", &r);
    assert_string_equal(r.res_verb, "download");
    route("PATCH", "/v1beta/files/abc123", &r);
    assert_false(r.http_method_ok);
    assert_string_equal(r.allow, "GET, DELETE");
    route("POST", "/upload/v1beta/files", &r);
    assert_int_equal(r.res, SKIFF_RES_UPLOAD);
    route("PATCH", "/v1beta/cachedContents/x1", &r);
    assert_int_equal(r.res, SKIFF_RES_CACHES);
    assert_true(r.http_method_ok);
    route("POST", "/v1beta/batches/b-1:cancel", &r);
    assert_int_equal(r.res, SKIFF_RES_BATCHES);
    assert_string_equal(r.res_verb, "cancel");
    route("GET", "/v1beta/models/veo-3.0-generate-001/operations/op9", &r);
    assert_int_equal(r.res, SKIFF_RES_OPERATIONS);
    skiff_route_res_name(&r, name, sizeof name);
    assert_string_equal(name, "models/veo-3.0-generate-001/operations/op9");
    route("POST", "/v1beta/models/gemini-2.5-flash:batchGenerateContent", &r);
    assert_int_equal(r.kind, SKIFF_ROUTE_GENERATE);
    assert_int_equal(r.method, SKIFF_M_BATCH_GENERATE);
    /* Ids are a name charset, verbs their family's own: anything else is no route. */
    route("GET", "/v1beta/files/..", &r);
    assert_int_equal(r.kind, SKIFF_ROUTE_NONE);
    route("GET", "/v1beta/files/a/b", &r);
    assert_int_equal(r.kind, SKIFF_ROUTE_NONE);
    route("POST", "/v1beta/files/a:cancel", &r);
    assert_int_equal(r.kind, SKIFF_ROUTE_NONE);
    route("POST", "/upload/v1beta/cachedContents", &r);
    assert_int_equal(r.kind, SKIFF_ROUTE_NONE);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_compat_and_v1alpha), cmocka_unit_test(test_generate_paths),
        cmocka_unit_test(test_models_and_health),  cmocka_unit_test(test_wrong_method_is_flagged),
        cmocka_unit_test(test_unknown_paths),      cmocka_unit_test(test_bad_model_names),
        cmocka_unit_test(test_resource_paths),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
