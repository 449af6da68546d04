#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sim/caches.h"

static struct skiff_sim_res_req
req(const char *method, const char *rest, const char *project, const char *body)
{
    struct skiff_sim_res_req q = {
        .http_method = method,
        .rest = rest,
        .rest_len = strlen(rest),
        .project = project,
        .body = body,
        .body_len = strlen(body),
        .base = "http://sim",
        .now_ms = 1000000,
        .id_seed = 9,
        .page_size = "",
        .page_token = "",
        .upload_id = "",
        .update_mask = "",
        .content_type = "",
        .up_protocol = "",
        .up_command = "",
        .up_offset = "",
        .up_len = "",
        .up_type = "",
    };
    return q;
}

static void
test_route(void **state)
{
    (void)state;
    struct skiff_sim_res_req q = req("POST", "cachedContents", "k", "");
    assert_string_equal(skiff_sim_caches_route(&q), "cachedContents.create");
    q = req("GET", "cachedContents", "k", "");
    assert_string_equal(skiff_sim_caches_route(&q), "cachedContents.list");
    q = req("PATCH", "cachedContents/x", "k", "");
    assert_string_equal(skiff_sim_caches_route(&q), "cachedContents.patch");
    q = req("DELETE", "cachedContents/x", "k", "");
    assert_string_equal(skiff_sim_caches_route(&q), "cachedContents.delete");
    q = req("PATCH", "cachedContents", "k", "");
    assert_null(skiff_sim_caches_route(&q));
    q = req("GET", "cachedContents/x/y", "k", "");
    assert_null(skiff_sim_caches_route(&q));
    q = req("GET", "files", "k", "");
    assert_null(skiff_sim_caches_route(&q));
}

/* Create, then every rule of a generation's use of it. */
static void
test_create_and_use(void **state)
{
    (void)state;
    struct skiff_sim_caches *c = skiff_sim_caches_new(2);
    struct skiff_sim_files *f = skiff_sim_files_new(1, 1);
    char big[5000];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    json_t *b = json_pack("{s:s,s:[{s:[{s:s}]}],s:s}", "model", "models/gemini-2.5-flash",
                          "contents", "parts", "text", big, "ttl", "60s");
    char *body = json_dumps(b, 0);
    struct skiff_sim_res_req q = req("POST", "cachedContents", "keyA", body);
    struct skiff_sim_res_reply r = {0};
    assert_int_equal(skiff_sim_caches_handle(c, f, &q, &r), 0);
    assert_int_equal(r.status, 200);
    char name[64];
    snprintf(name, sizeof name, "%s", json_string_value(json_object_get(r.body, "name")));
    long tokens = (long)json_integer_value(
        json_object_get(json_object_get(r.body, "usageMetadata"), "totalTokenCount"));
    assert_int_equal(tokens, 1250); /* ceil(4999 / 4) */
    assert_string_equal(json_string_value(json_object_get(r.body, "expireTime")),
                        "1970-01-01T00:17:40.000000Z");
    json_decref(r.body);

    json_t *gen = json_object();
    struct skiff_sim_res_reply u = {0};
    assert_int_equal(skiff_sim_caches_use(c, "keyA", name, "gemini-2.5-flash", gen, 1000001, &u),
                     tokens);
    assert_int_equal(skiff_sim_caches_use(c, "keyB", name, "gemini-2.5-flash", gen, 1000001, &u),
                     -1);
    assert_int_equal(u.status, 403);
    assert_int_equal(skiff_sim_caches_use(c, "keyA", name, "gemini-2.5-pro", gen, 1000001, &u), -1);
    assert_int_equal(u.status, 400);
    json_object_set_new(gen, "tools", json_array());
    assert_int_equal(skiff_sim_caches_use(c, "keyA", name, "gemini-2.5-flash", gen, 1000001, &u),
                     -1);
    assert_int_equal(u.status, 400);
    json_object_del(gen, "tools");
    /* After its ttl it is gone. */
    assert_int_equal(skiff_sim_caches_use(c, "keyA", name, "gemini-2.5-flash", gen, 1060000, &u),
                     -1);
    assert_int_equal(u.status, 403);
    json_decref(gen);
    json_decref(b);
    free(body);
    skiff_sim_caches_free(c);
    skiff_sim_files_free(f);
}

static void
test_bad_creates(void **state)
{
    (void)state;
    struct skiff_sim_caches *c = skiff_sim_caches_new(2);
    struct skiff_sim_files *f = skiff_sim_files_new(1, 1);
    static const struct {
        const char *body;
        int status;
    } cases[] = {
        {"{}", 400},
        {"{\"model\":\"models/nope\"}", 404},
        {"{\"model\":\"gemini-2.5-flash\",\"contents\":[{\"parts\":[{\"text\":\"hi\"}]}]}", 400},
        {"not json", 400},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct skiff_sim_res_req q = req("POST", "cachedContents", "k", cases[i].body);
        struct skiff_sim_res_reply r = {0};
        assert_int_equal(skiff_sim_caches_handle(c, f, &q, &r), 0);
        assert_int_equal(r.status, cases[i].status);
        assert_null(r.body);
    }
    skiff_sim_caches_free(c);
    skiff_sim_files_free(f);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_route),
        cmocka_unit_test(test_create_and_use),
        cmocka_unit_test(test_bad_creates),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
