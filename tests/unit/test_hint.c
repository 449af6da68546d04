#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "gemini/hint.h"

static char hint[512];

/* Applies the hint; returns the new body parsed (NULL when the body was left alone). */
static json_t *
apply(int status, const char *body, const struct skiff_hint_ctx *ctx, int expect_rc)
{
    char *nb = NULL;
    size_t nl = 0;
    int rc =
        skiff_hint_apply(status, body, body ? strlen(body) : 0, ctx, &nb, &nl, hint, sizeof hint);
    assert_int_equal(rc, expect_rc);
    assert_null(strchr(hint, '\n'));
    if (rc != 1)
        return NULL;
    assert_int_equal(nl, strlen(nb));
    assert_int_equal(nb[nl - 1], '\n'); /* the API ends error bodies with a newline */
    json_t *j = json_loads(nb, 0, NULL);
    free(nb);
    assert_non_null(j);
    return j;
}

static void
contains(const char *s, const char *needle)
{
    if (!strstr(s, needle))
        fail_msg("\"%s\" lacks \"%s\"", s, needle);
}

/* The last detail must be the Help we added, with our hint as its description. */
static json_t *
err_of(json_t *root)
{
    if (json_is_array(root))
        root = json_array_get(root, 0);
    return json_object_get(root, "error");
}

static void
help_is_last(json_t *root)
{
    json_t *d = json_object_get(err_of(root), "details");
    json_t *h = json_array_get(d, json_array_size(d) - 1);
    assert_string_equal(json_string_value(json_object_get(h, "@type")),
                        "type.googleapis.com/google.rpc.Help");
    json_t *link = json_array_get(json_object_get(h, "links"), 0);
    assert_string_equal(json_string_value(json_object_get(link, "description")), hint);
    assert_non_null(strstr(json_string_value(json_object_get(link, "url")), "https://"));
}

static void
test_503_keeps_the_error_and_counts_retries(void **state)
{
    (void)state;
    struct skiff_hint_ctx ctx = {
        .attempts = 6, .keys_tried = 3, .models_tried = 2, .model = "gemini-2.5-pro"};
    json_t *j = apply(503,
                      "{\"error\": {\"code\": 503, \"message\": \"The model is overloaded. "
                      "Please try again later.\", \"status\": \"UNAVAILABLE\"}}",
                      &ctx, 1);
    json_t *e = err_of(j);
    assert_int_equal(json_integer_value(json_object_get(e, "code")), 503);
    assert_string_equal(json_string_value(json_object_get(e, "status")), "UNAVAILABLE");
    assert_string_equal(json_string_value(json_object_get(e, "message")),
                        "The model is overloaded. Please try again later.");
    contains(hint, "skiff already retried 6 times across 3 keys and 2 models");
    help_is_last(j);
    json_decref(j);
}

static void
test_429_per_day_and_per_minute(void **state)
{
    (void)state;
    /* 2026-08-27 12:00 UTC = 05:00 PDT: 19 hours to midnight Pacific (07:00 UTC next day). */
    struct skiff_hint_ctx ctx = {.model = "gemini-2.5-flash", .now_ms = 1787832000000LL};
    json_t *j =
        apply(429,
              "{\"error\": {\"code\": 429, \"message\": \"You exceeded your current quota\","
              " \"status\": \"RESOURCE_EXHAUSTED\", \"details\": [{\"@type\": "
              "\"type.googleapis.com/google.rpc.QuotaFailure\", \"violations\": "
              "[{\"quotaId\": \"GenerateRequestsPerDayPerProjectPerModel-FreeTier\", "
              "\"quotaValue\": \"20\"}]}, {\"@type\": "
              "\"type.googleapis.com/google.rpc.RetryInfo\", \"retryDelay\": \"38s\"}]}}",
              &ctx, 1);
    contains(hint, "per-day quota of gemini-2.5-flash");
    contains(hint, "midnight Pacific (2026-08-28T07:00Z, in 19h00m)");
    json_t *d = json_object_get(err_of(j), "details");
    assert_int_equal(json_array_size(d), 3); /* the upstream's two, then ours */
    help_is_last(j);
    json_decref(j);

    j = apply(
        429,
        "{\"error\": {\"code\": 429, \"status\": \"RESOURCE_EXHAUSTED\", \"message\": \"x\", "
        "\"details\": [{\"@type\": \"type.googleapis.com/google.rpc.QuotaFailure\", "
        "\"violations\": [{\"quotaId\": "
        "\"GenerateRequestsPerMinutePerProjectPerModel-FreeTier\", \"quotaValue\": \"10\"}]}, "
        "{\"@type\": \"type.googleapis.com/google.rpc.RetryInfo\", \"retryDelay\": \"38s\"}]}}",
        &ctx, 1);
    contains(hint, "per-minute quota of gemini-2.5-flash exhausted: it frees up in 38s");
    json_decref(j);

    j = apply(429,
              "{\"error\": {\"code\": 429, \"status\": \"RESOURCE_EXHAUSTED\", \"message\": \"x\", "
              "\"details\": [{\"violations\": [{\"quotaId\": "
              "\"GenerateRequestsPerDayPerProjectPerModel-FreeTier\", \"quotaValue\": \"0\"}]}]}}",
              &ctx, 1);
    contains(hint, "no quota at all for gemini-2.5-flash");
    json_decref(j);
}

static void
test_key_and_region_cases(void **state)
{
    (void)state;
    struct skiff_hint_ctx ctx = {0};
    /* A 403 that names no key is about what the request refers to. */
    json_t *j = apply(403,
                      "{\"error\": {\"code\": 403, \"message\": \"You do not have permission "
                      "to access the File abc or it may not exist.\", \"status\": "
                      "\"PERMISSION_DENIED\"}}",
                      &ctx, 1);
    contains(hint, "not accessible with skiff's keys");
    contains(hint, "no key was blamed");
    help_is_last(j);
    json_decref(j);
    /* One that names the key's project. */
    j = apply(403,
              "{\"error\": {\"code\": 403, \"message\": \"Generative Language API has not "
              "been used in project 1 before or it is disabled.\", \"status\": "
              "\"PERMISSION_DENIED\", \"details\": [{\"@type\": "
              "\"type.googleapis.com/google.rpc.ErrorInfo\", \"reason\": \"SERVICE_DISABLED\"}]}}",
              &ctx, 1);
    contains(hint, "API restrictions");
    contains(hint, "Generative Language API");
    json_decref(j);
    /* The relay's own word wins over the guide's when it knows better (a probe cleared the key). */
    struct skiff_hint_ctx over = {.override = "a probe with the same key succeeded"};
    j = apply(403,
              "{\"error\": {\"code\": 403, \"message\": \"x\", \"status\": "
              "\"PERMISSION_DENIED\", \"details\": [{\"@type\": "
              "\"type.googleapis.com/google.rpc.ErrorInfo\", \"reason\": \"SERVICE_DISABLED\"}]}}",
              &over, 1);
    assert_string_equal(hint, "a probe with the same key succeeded");
    help_is_last(j);
    json_decref(j);

    /* The OpenAI-compatible surface wraps the error in a one-element array. */
    j = apply(400,
              "[{\"error\": {\"code\": 400, \"message\": \"User location is not supported "
              "for the API use.\", \"status\": \"FAILED_PRECONDITION\"}}]",
              &ctx, 1);
    assert_true(json_is_array(j));
    contains(hint, "upstreams.gemini.proxy");
    contains(hint, "billing");
    help_is_last(j);
    json_decref(j);

    j = apply(400,
              "{\"error\": {\"code\": 400, \"message\": \"API key not valid. Please pass a "
              "valid API key.\", \"status\": \"INVALID_ARGUMENT\", \"details\": [{\"@type\": "
              "\"type.googleapis.com/google.rpc.ErrorInfo\", \"reason\": \"API_KEY_INVALID\"}]}}",
              &ctx, 1);
    contains(hint, "not valid");
    json_decref(j);
}

static void
test_500_long_input_and_504_deadline(void **state)
{
    (void)state;
    struct skiff_hint_ctx ctx = {.attempts = 2, .input_bytes = 900 * 1024};
    json_t *j = apply(500,
                      "{\"error\": {\"code\": 500, \"message\": \"An internal error has "
                      "occurred.\", \"status\": \"INTERNAL\"}}",
                      &ctx, 1);
    contains(hint, "long input (900 KiB): reduce the context or switch to another model");
    json_decref(j);

    ctx.input_bytes = 100;
    j = apply(500, "{\"error\": {\"code\": 500, \"message\": \"x\", \"status\": \"INTERNAL\"}}",
              &ctx, 1);
    contains(hint, "skiff tried 2 times");
    json_decref(j);

    ctx.deadline_ms = 120000;
    j = apply(504,
              "{\"error\": {\"code\": 504, \"message\": \"Deadline expired before operation "
              "could complete.\", \"status\": \"DEADLINE_EXCEEDED\"}}",
              &ctx, 1);
    contains(hint, "raise the client's timeout and skiff's retry.deadline_ms (now 120000 ms)");
    json_decref(j);
}

static void
test_bodies_left_alone(void **state)
{
    (void)state;
    struct skiff_hint_ctx ctx = {.attempts = 1, .keys_tried = 1, .models_tried = 1};
    assert_null(apply(503, "<html>Service Unavailable</html>", &ctx, 0));
    contains(hint, "retried 1 time across 1 key and 1 model"); /* the header still comes */
    assert_null(apply(503, NULL, &ctx, 0));
    assert_null(apply(200, "{\"candidates\": []}", &ctx, 0));
    assert_string_equal(hint, "");
    assert_null(apply(502, "{\"notAnError\": 1}", &ctx, 0));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_503_keeps_the_error_and_counts_retries),
        cmocka_unit_test(test_429_per_day_and_per_minute),
        cmocka_unit_test(test_key_and_region_cases),
        cmocka_unit_test(test_500_long_input_and_504_deadline),
        cmocka_unit_test(test_bodies_left_alone),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
