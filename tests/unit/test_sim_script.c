#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "base/err.h"
#include "sim/script.h"

static int
add(struct skiff_sim_script *s, const char *json, char *err, size_t errlen)
{
    json_t *j = json_loads(json, 0, NULL);
    assert_non_null(j);
    int rc = skiff_sim_script_add(s, j, err, errlen);
    json_decref(j);
    return rc;
}

static void
test_match_subsets_fifo_and_times(void **state)
{
    (void)state;
    struct skiff_sim_script s;
    skiff_sim_script_init(&s, 100);
    char err[256];
    assert_int_equal(add(&s,
                         "[{\"match\":{\"model\":\"gemini-2.5-pro\",\"key\":\"AIzaA\","
                         "\"method\":\"generateContent\"},\"reply\":{\"status\":503},\"times\":2},"
                         "{\"match\":{\"model\":\"gemini-2.5-pro\"},\"reply\":{\"status\":500}}]",
                         err, sizeof err),
                     2);
    /* Another key: the first entry does not match, the second (model only) does. */
    struct skiff_sim_reply *r =
        skiff_sim_script_take(&s, "gemini-2.5-pro", "gemini-2.5-pro", "AIzaB", "generateContent");
    assert_non_null(r);
    assert_int_equal(r->kind, SKIFF_SIM_REPLY_ERROR);
    assert_int_equal(r->status, 500);
    skiff_sim_reply_unref(r);
    /* The exact entry is used twice, then gone. */
    for (int i = 0; i < 2; i++) {
        r = skiff_sim_script_take(&s, "gemini-2.5-pro", "gemini-2.5-pro", "AIzaA",
                                  "generateContent");
        assert_non_null(r);
        assert_int_equal(r->status, 503);
        skiff_sim_reply_unref(r);
    }
    assert_null(
        skiff_sim_script_take(&s, "gemini-2.5-pro", "gemini-2.5-pro", "AIzaA", "generateContent"));
    assert_int_equal(s.n, 0);
    /* The method is matched exactly: stream is not generate. */
    add(&s, "{\"match\":{\"method\":\"streamGenerateContent\"},\"reply\":{\"hang\":true}}", err,
        sizeof err);
    assert_null(skiff_sim_script_take(&s, "m", "m", NULL, "generateContent"));
    r = skiff_sim_script_take(&s, "m", "m", NULL, "streamGenerateContent");
    assert_int_equal(r->kind, SKIFF_SIM_REPLY_HANG);
    skiff_sim_reply_unref(r);
    skiff_sim_script_clear(&s);
}

static void
test_alias_target_matches_and_forever(void **state)
{
    (void)state;
    struct skiff_sim_script s;
    skiff_sim_script_init(&s, 100);
    char err[256];
    add(&s,
        "{\"match\":{\"model\":\"models/gemini-3.6-flash\"},\"reply\":{\"quota\":\"day\"},"
        "\"times\":0}",
        err, sizeof err);
    for (int i = 0; i < 3; i++) {
        struct skiff_sim_reply *r = skiff_sim_script_take(
            &s, "gemini-flash-latest", "gemini-3.6-flash", "k", "generateContent");
        assert_non_null(r);
        assert_int_equal(r->kind, SKIFF_SIM_REPLY_QUOTA);
        assert_int_equal(r->quota, SKIFF_SIM_QR_DAY);
        skiff_sim_reply_unref(r);
    }
    assert_int_equal(s.n, 1);
    skiff_sim_script_clear(&s);
}

static void
test_reply_kinds(void **state)
{
    (void)state;
    struct skiff_sim_script s;
    skiff_sim_script_init(&s, 100);
    char err[256];
    assert_int_equal(
        add(&s,
            "[{\"reply\":{\"stream\":[{\"a\":1},{\"b\":2}],\"chunkMs\":5,\"resetAfter\":1}},"
            "{\"reply\":{\"body\":{\"x\":1},\"status\":201,\"headers\":{\"x-a\":\"b\"}}},"
            "{\"reply\":{\"reset\":true}},"
            "{\"reply\":{\"quota\":\"minute\",\"retryDelay\":12.5,\"limit\":7}},"
            "{\"reply\":{}}]",
            err, sizeof err),
        5);
    struct skiff_sim_reply *r = skiff_sim_script_take(&s, "m", "m", NULL, "x");
    assert_int_equal(r->kind, SKIFF_SIM_REPLY_STREAM);
    assert_int_equal(json_array_size(r->events), 2);
    assert_int_equal(r->chunk_ms, 5);
    assert_int_equal(r->reset_after, 1);
    skiff_sim_reply_unref(r);
    r = skiff_sim_script_take(&s, "m", "m", NULL, "x");
    assert_int_equal(r->kind, SKIFF_SIM_REPLY_BODY);
    assert_int_equal(r->status, 201);
    assert_string_equal(r->body, "{\n  \"x\": 1\n}");
    skiff_sim_reply_unref(r);
    r = skiff_sim_script_take(&s, "m", "m", NULL, "x");
    assert_int_equal(r->kind, SKIFF_SIM_REPLY_RESET);
    skiff_sim_reply_unref(r);
    r = skiff_sim_script_take(&s, "m", "m", NULL, "x");
    assert_int_equal(r->kind, SKIFF_SIM_REPLY_QUOTA);
    assert_int_equal(r->retry_ms, 12500);
    assert_int_equal(r->quota_limit, 7);
    skiff_sim_reply_unref(r);
    r = skiff_sim_script_take(&s, "m", "m", NULL, "x");
    assert_int_equal(r->kind, SKIFF_SIM_REPLY_ANSWER);
    /* A reply outlives a reset of the queue while a request still holds it. */
    skiff_sim_script_clear(&s);
    assert_int_equal(r->refs, 1);
    skiff_sim_reply_unref(r);
}

static void
test_bad_scripts_queue_nothing(void **state)
{
    (void)state;
    struct skiff_sim_script s;
    skiff_sim_script_init(&s, 3);
    char err[256];
    assert_int_equal(
        add(&s, "[{\"reply\":{\"status\":503}},{\"reply\":{\"statuz\":1}}]", err, sizeof err),
        SKIFF_EINVAL);
    assert_non_null(strstr(err, "script 1: unknown field reply.statuz"));
    assert_int_equal(s.n, 0);
    assert_int_equal(add(&s, "{\"match\":{\"modle\":\"x\"},\"reply\":{}}", err, sizeof err),
                     SKIFF_EINVAL);
    assert_non_null(strstr(err, "match.modle"));
    assert_int_equal(add(&s, "{\"reply\":{\"quota\":\"hour\"}}", err, sizeof err), SKIFF_EINVAL);
    assert_int_equal(add(&s, "{\"reply\":{\"status\":200}}", err, sizeof err), SKIFF_EINVAL);
    assert_int_equal(add(&s, "{\"match\":{}}", err, sizeof err), SKIFF_EINVAL);
    assert_non_null(strstr(err, "reply is missing"));
    /* The queue is bounded. */
    assert_int_equal(
        add(&s, "[{\"reply\":{}},{\"reply\":{}},{\"reply\":{}},{\"reply\":{}}]", err, sizeof err),
        SKIFF_ETOOBIG);
    assert_int_equal(s.n, 0);
    skiff_sim_script_clear(&s);
}

static void
test_log_ring(void **state)
{
    (void)state;
    struct skiff_sim_log log;
    assert_int_equal(skiff_sim_log_init(&log, 3), 0);
    for (int i = 0; i < 5; i++) {
        struct skiff_sim_log_entry *e = skiff_sim_log_add(&log);
        snprintf(e->key, sizeof e->key, "AIza%d", i);
        e->has_key = 1;
        e->status = 200;
    }
    /* Seqs 1 and 2 have been overwritten; 5 is still there and can be updated. */
    assert_null(skiff_sim_log_get(&log, 1));
    skiff_sim_log_get(&log, 5)->aborted = 1;
    json_t *j = skiff_sim_log_json(&log);
    json_t *reqs = json_object_get(j, "requests");
    assert_int_equal(json_array_size(reqs), 3);
    assert_int_equal(json_integer_value(json_object_get(j, "dropped")), 2);
    json_t *last = json_array_get(reqs, 2);
    assert_int_equal(json_integer_value(json_object_get(last, "seq")), 5);
    assert_true(json_is_true(json_object_get(last, "aborted")));
    assert_string_equal(json_string_value(json_object_get(last, "key")), "AIza4");
    assert_true(json_is_null(json_object_get(last, "model")));
    json_decref(j);
    skiff_sim_log_clear(&log);
    j = skiff_sim_log_json(&log);
    assert_int_equal(json_array_size(json_object_get(j, "requests")), 0);
    json_decref(j);
    assert_int_equal(skiff_sim_log_add(&log)->seq, 1);
    skiff_sim_log_release(&log);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_match_subsets_fifo_and_times),
        cmocka_unit_test(test_alias_target_matches_and_forever),
        cmocka_unit_test(test_reply_kinds),
        cmocka_unit_test(test_bad_scripts_queue_nothing),
        cmocka_unit_test(test_log_ring),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
