#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <jansson.h>

#include "gemini/catalog.h"
#include "gemini/validate.h"

static struct skiff_catalog *cat;

static int
setup(void **state)
{
    (void)state;
    cat = skiff_catalog_new();
    return cat ? 0 : -1;
}

static int
teardown(void **state)
{
    (void)state;
    skiff_catalog_free(cat);
    return 0;
}

static struct skiff_violation v;

static int
check(const char *version, const char *model, enum skiff_method m, const char *body)
{
    return skiff_validate(cat, version, model, strlen(model), m, body, strlen(body), &v);
}

static int
gen(const char *model, const char *body)
{
    return check("v1beta", model, SKIFF_M_GENERATE, body);
}

#define HELLO "\"contents\": [{\"role\": \"user\", \"parts\": [{\"text\": \"Hello\"}]}]"

/* Asserts a refusal naming field, whose message contains needle. */
static void
refused(int rc, int status, const char *field, const char *needle)
{
    assert_int_equal(rc, 1);
    assert_int_equal(v.status, status);
    assert_string_equal(v.field, field);
    if (!strstr(v.message, needle))
        fail_msg("message \"%s\" lacks \"%s\"", v.message, needle);
    assert_null(strchr(v.message, '\n'));
}

static void
test_valid_requests_pass(void **state)
{
    (void)state;
    assert_int_equal(gen("gemini-2.5-flash", "{" HELLO "}"), 0);
    assert_int_equal(gen("models/gemini-2.5-flash", "{" HELLO "}"), 0);
    assert_int_equal(gen("gemini-flash-latest",
                         "{" HELLO ", \"generationConfig\": "
                         "{\"temperature\": 2, \"topP\": 1, \"topK\": 0, "
                         "\"candidateCount\": 8, \"maxOutputTokens\": 65536,"
                         " \"stopSequences\": [\"a\",\"b\",\"c\",\"d\",\"e\"]}}"),
                     0);
    /* Shapes the API's parser accepts: one object for a repeated field. */
    assert_int_equal(gen("gemini-2.5-flash", "{\"contents\": {\"parts\": {\"text\": \"hi\"}}}"), 0);
    assert_int_equal(gen("gemini-2.5-flash",
                         "{\"system_instruction\": {\"parts\": {\"text\": \"be brief\"}}, " HELLO
                         "}"),
                     0);
    /* A multi-turn history whose model turn has only an empty text with a signature. */
    assert_int_equal(gen("gemini-2.5-flash",
                         "{\"contents\": [{\"role\": \"user\", \"parts\": [{\"text\": \"hi\"}]}, "
                         "{\"role\": \"model\", \"parts\": [{\"text\": \"\", \"thoughtSignature\": "
                         "\"abc\"}]}, {\"role\": \"user\", \"parts\": [{\"functionResponse\": "
                         "{\"name\": \"f\", \"response\": {}}}]}]}"),
                     0);
    /* Numbers as strings and nulls are the upstream's to judge. */
    assert_int_equal(gen("gemini-2.5-flash", "{" HELLO ", \"generationConfig\": {\"temperature\": "
                                             "\"9\", \"topP\": null}}"),
                     0);
    /* Escapes and braces inside texts do not confuse the scanner. */
    assert_int_equal(gen("gemini-2.5-flash", "{\"contents\": [{\"parts\": [{\"text\": \"a \\\"}]} "
                                             "\\\\\"}]}], \"generationConfig\": {\"topP\": 0.5}}"),
                     0);
}

static void
test_unknown_future_fields_and_snake_case(void **state)
{
    (void)state;
    assert_int_equal(gen("gemini-2.5-flash",
                         "{" HELLO ", \"futureTopLevel\": {\"x\": [1, 2, {\"y\": null}]}, "
                         "\"generationConfig\": {\"someNewKnob\": 3, \"temperature\": 0.7}, "
                         "\"contents_v2\": 5}"),
                     0);
    assert_int_equal(gen("gemini-2.5-flash", "{\"contents\": [{\"parts\": [{\"newPartKind\": "
                                             "{\"uri\": \"x\"}}]}]}"),
                     0);
    refused(gen("gemini-2.5-flash", "{" HELLO ", \"generation_config\": {\"top_p\": 1.5}}"), 400,
            "generation_config.top_p", "0.0 to 1.0");
    refused(gen("gemini-2.5-flash", "{" HELLO ", \"generation_config\": {\"thinking_config\": "
                                    "{\"thinking_budget\": 99999}}}"),
            400, "generation_config.thinking_config.thinking_budget", "0 to 24576");
    refused(check("v1", "gemini-2.5-flash", SKIFF_M_GENERATE,
                  "{\"system_instruction\": {\"parts\": [{\"text\": \"x\"}]}, " HELLO "}"),
            400, "system_instruction", "/v1beta/models/gemini-2.5-flash:generateContent");
}

static void
test_model_rules(void **state)
{
    (void)state;
    refused(gen("gemini-2.5-flsh", "{" HELLO "}"), 404, "model", "Did you mean gemini-2.5-flash?");
    assert_string_equal(v.gstatus, "NOT_FOUND");
    /* The built-in list may be old: a newer version, or an unrelated name, goes upstream. */
    assert_int_equal(gen("gemini-3.9-flash", "{" HELLO "}"), 0);
    assert_int_equal(gen("gemini-4.0-ultra-preview-11-2026", "{" HELLO "}"), 0);
    /* Methods: stream is implied by generate, batchEmbedContents by embedContent. */
    assert_int_equal(check("v1beta", "gemini-2.5-pro", SKIFF_M_STREAM, "{" HELLO "}"), 0);
    assert_int_equal(
        check("v1beta", "gemini-embedding-001", SKIFF_M_BATCH_EMBED, "{\"requests\": []}"), 0);
    refused(check("v1beta", "gemini-2.5-flash", SKIFF_M_EMBED, "{}"), 404, "model",
            "does not support embedContent");
    refused(check("v1beta", "gemini-embedding-001", SKIFF_M_GENERATE, "{" HELLO "}"), 404, "model",
            "generative model");

    /* Once the catalog comes from the upstream, an unknown name is refused. */
    struct skiff_catalog *up = skiff_catalog_new();
    json_t *models = json_loads("[{\"name\": \"models/gemini-2.5-flash\", "
                                "\"supportedGenerationMethods\": [\"generateContent\"]}]",
                                0, NULL);
    skiff_catalog_apply_list(up, models);
    json_decref(models);
    struct skiff_violation w;
    const char *b = "{" HELLO "}";
    assert_int_equal(
        skiff_validate(up, "v1beta", "gemini-3.9-flash", 16, SKIFF_M_GENERATE, b, strlen(b), &w),
        1);
    assert_int_equal(w.status, 404);
    assert_non_null(strstr(w.message, "Did you mean gemini-2.5-flash?"));
    assert_int_equal(
        skiff_validate(up, "v1beta", "text-bison-001", 14, SKIFF_M_GENERATE, b, strlen(b), &w), 1);
    assert_non_null(strstr(w.message, "not in the upstream's model list"));
    skiff_catalog_free(up);

    /* Without a catalog there are no model rules. */
    assert_int_equal(
        skiff_validate(NULL, "v1beta", "anything", 8, SKIFF_M_GENERATE, b, strlen(b), &w), 0);
}

static void
test_contents_rules(void **state)
{
    (void)state;
    refused(gen("gemini-2.5-flash", "{}"), 400, "contents", "contents is not specified");
    refused(gen("gemini-2.5-flash", "{\"contents\": []}"), 400, "contents", "is empty");
    refused(gen("gemini-2.5-flash", "{\"contents\": [{\"role\": \"user\", \"parts\": "
                                    "[{\"text\": \"\"}, {}]}]}"),
            400, "contents[0].parts", "every part of contents is empty");
    refused(gen("gemini-2.5-flash", "{\"contents\": [{\"role\": \"user\"}]}"), 400,
            "contents[0].parts", "empty");
    refused(gen("gemini-2.5-flash", "{\"contents\": \"Hello\"}"), 400, "contents",
            "must be a list of Content objects");
    refused(gen("gemini-2.5-flash", "{\"contents\": [\"Hello\"]}"), 400, "contents[0]",
            "must be a Content object");
    refused(gen("gemini-2.5-flash", "{\"contents\": [{\"parts\": \"Hello\"}]}"), 400,
            "contents[0].parts", "must be a list of parts");
    refused(gen("gemini-2.5-flash", "{\"contents\": [{\"parts\": [{\"text\": \"a\"}, \"b\"]}]}"),
            400, "contents[0].parts[1]", "must be an object");
    refused(gen("gemini-2.5-flash", "{\"contents\": [{\"role\": \"user\", \"parts\": [{\"text\": "
                                    "\"a\"}]}, {\"role\": \"assistant\", \"parts\": [{\"text\": "
                                    "\"b\"}]}]}"),
            400, "contents[1].role", "\"model\"");
    refused(gen("gemini-2.5-flash", "[1]"), 400, "", "JSON object");
    /* countTokens takes contents or generateContentRequest. */
    assert_int_equal(
        check("v1beta", "gemini-2.5-flash", SKIFF_M_COUNT_TOKENS,
              "{\"generateContentRequest\": {\"model\": \"models/gemini-2.5-flash\", " HELLO "}}"),
        0);
    refused(check("v1beta", "gemini-2.5-flash", SKIFF_M_COUNT_TOKENS,
                  "{\"generateContentRequest\": {\"model\": \"models/gemini-2.5-flash\"}}"),
            400, "generateContentRequest.contents", "not specified");
}

static void
test_generation_config_rules(void **state)
{
    (void)state;
#define GC(x) "{" HELLO ", \"generationConfig\": {" x "}}"
    refused(gen("gemini-2.5-flash", GC("\"candidateCount\": 9")), 400,
            "generationConfig.candidateCount", "from 1 to 8");
    refused(gen("gemini-2.5-flash", GC("\"candidateCount\": 0")), 400,
            "generationConfig.candidateCount", "from 1 to 8");
    refused(gen("gemini-2.5-flash", GC("\"temperature\": 2.5")), 400,
            "generationConfig.temperature", "0.0 to 2.0");
    refused(gen("gemini-2.5-flash", GC("\"temperature\": -0.1")), 400,
            "generationConfig.temperature", "0.0 to 2.0");
    /* The image model's maxTemperature is 1. */
    refused(gen("gemini-2.5-flash-image", GC("\"temperature\": 1.5")), 400,
            "generationConfig.temperature", "0.0 to 1.0");
    refused(gen("gemini-2.5-flash", GC("\"topP\": 1.01")), 400, "generationConfig.topP",
            "0.0 to 1.0");
    refused(gen("gemini-2.5-flash", GC("\"topK\": -1")), 400, "generationConfig.topK",
            "cannot be negative");
    refused(gen("gemini-2.5-flash", GC("\"maxOutputTokens\": 0")), 400,
            "generationConfig.maxOutputTokens", "at least 1");
    refused(gen("gemini-2.5-flash", GC("\"maxOutputTokens\": 65537")), 400,
            "generationConfig.maxOutputTokens", "65536");
    refused(gen("gemini-2.5-flash", GC("\"stopSequences\": [\"1\",\"2\",\"3\",\"4\",\"5\",\"6\"]")),
            400, "generationConfig.stopSequences", "at most 5");
    /* An unknown model gets the API-wide bounds only. */
    assert_int_equal(gen("gemini-3.9-flash", GC("\"maxOutputTokens\": 500000")), 0);
    refused(gen("gemini-3.9-flash", GC("\"temperature\": 3")), 400, "generationConfig.temperature",
            "0.0 to 2.0");
}

static void
test_thinking_rules(void **state)
{
    (void)state;
#define TB(n) GC("\"thinkingConfig\": {\"thinkingBudget\": " n "}")
    refused(gen("gemini-2.5-pro", TB("0")), 400, "generationConfig.thinkingConfig.thinkingBudget",
            "cannot turn thinking off");
    refused(gen("gemini-2.5-pro", TB("52428")), 400,
            "generationConfig.thinkingConfig.thinkingBudget", "128 to 32768");
    refused(gen("gemini-2.5-flash-lite", TB("100")), 400,
            "generationConfig.thinkingConfig.thinkingBudget", "512 to 24576");
    refused(gen("gemini-3.5-flash-lite", TB("0")), 400,
            "generationConfig.thinkingConfig.thinkingBudget", "cannot turn thinking off");
    assert_int_equal(gen("gemini-2.5-pro", TB("-1")), 0);
    assert_int_equal(gen("gemini-2.5-pro", TB("128")), 0);
    assert_int_equal(gen("gemini-2.5-flash", TB("0")), 0);
    assert_int_equal(gen("gemini-2.5-flash-lite", TB("0")), 0);
    assert_int_equal(gen("gemini-3.5-flash", TB("50000")), 0); /* 3.x upper bound: unknown */
    assert_int_equal(gen("gemini-3.9-flash", TB("0")), 0);     /* unknown model: unjudged */
}

static void
test_v1beta_only_fields_on_v1(void **state)
{
    (void)state;
    static const char *const top[] = {"systemInstruction", "tools", "toolConfig", "cachedContent"};
    char body[256];
    for (size_t i = 0; i < sizeof top / sizeof top[0]; i++) {
        snprintf(body, sizeof body, "{" HELLO ", \"%s\": {}}", top[i]);
        refused(check("v1", "gemini-2.5-flash", SKIFF_M_STREAM, body), 400, top[i],
                "/v1beta/models/gemini-2.5-flash:streamGenerateContent");
        assert_int_equal(check("v1beta", "gemini-2.5-flash", SKIFF_M_STREAM, body), 0);
    }
    static const char *const gc[] = {"responseMimeType", "responseSchema", "thinkingConfig",
                                     "response_json_schema"};
    for (size_t i = 0; i < sizeof gc / sizeof gc[0]; i++) {
        char field[64];
        snprintf(body, sizeof body, "{" HELLO ", \"generationConfig\": {\"%s\": {}}}", gc[i]);
        snprintf(field, sizeof field, "generationConfig.%s", gc[i]);
        refused(check("v1", "gemini-2.5-flash", SKIFF_M_GENERATE, body), 400, field,
                "exists only in the v1beta API");
    }
    assert_int_equal(check("v1", "gemini-2.5-flash", SKIFF_M_GENERATE,
                           "{" HELLO ", \"generationConfig\": {\"temperature\": 1}}"),
                     0);
}

static void
test_details(void **state)
{
    (void)state;
    refused(gen("gemini-2.5-flash", GC("\"topP\": 2")), 400, "generationConfig.topP", "topP");
    json_t *d = skiff_violation_details(&v);
    assert_int_equal(json_array_size(d), 2);
    json_t *br = json_array_get(d, 0);
    assert_string_equal(json_string_value(json_object_get(br, "@type")),
                        "type.googleapis.com/google.rpc.BadRequest");
    json_t *fv = json_array_get(json_object_get(br, "fieldViolations"), 0);
    assert_string_equal(json_string_value(json_object_get(fv, "field")), "generationConfig.topP");
    json_t *help = json_array_get(d, 1);
    assert_string_equal(json_string_value(json_object_get(help, "@type")),
                        "type.googleapis.com/google.rpc.Help");
    assert_non_null(json_string_value(
        json_object_get(json_array_get(json_object_get(help, "links"), 0), "url")));
    json_decref(d);
}

/* A large valid request with unknown fields passes; a typical one passes many times over (its
 * cost is printed for a reader; it is measured in `make bench`, never asserted here). */
static void
test_large_request_and_cost(void **state)
{
    (void)state;
    size_t big = 4u * 1024 * 1024;
    char *body = malloc(big + 512);
    int o = snprintf(body, 512, "{\"contents\": [{\"role\": \"user\", \"parts\": [{\"text\": \"");
    memset(body + o, 'x', big);
    for (size_t i = 0; i < big; i += 1000)
        body[o + i] = i % 2000 ? '{' : ' ';
    snprintf(body + o + big, 512,
             "\"}]}], \"futureField\": [1, {\"a\": \"]\"}], \"generationConfig\": "
             "{\"temperature\": 0.3, \"newKnob\": true}}");
    assert_int_equal(gen("gemini-2.5-flash", body), 0);
    free(body);

    const char *typical = "{\"contents\": [{\"role\": \"user\", \"parts\": [{\"text\": \"Write a "
                          "haiku about the sea, please, in English.\"}]}], \"generationConfig\": "
                          "{\"temperature\": 0.7, \"maxOutputTokens\": 256, \"thinkingConfig\": "
                          "{\"thinkingBudget\": 0}}}";
    size_t tl = strlen(typical);
    enum { N = 20000 };
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < N; i++)
        assert_int_equal(skiff_validate(cat, "v1beta", "gemini-2.5-flash", 16, SKIFF_M_GENERATE,
                                        typical, tl, &v),
                         0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ns = ((double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec)) / N;
    printf("[ cost     ] skiff_validate: %.0f ns per typical request (%zu bytes)\n", ns, tl);
}

/* The one pass (syntax check and rules) answers as the check followed by the validator. */
static void
test_one_pass_body(void **state)
{
    (void)state;
    size_t off;
    const char *why;
    struct skiff_violation w;
    const char *ok = "{" HELLO "}";
    assert_int_equal(skiff_validate_body(cat, "v1beta", "gemini-2.5-flash", 16, SKIFF_M_GENERATE,
                                         ok, strlen(ok), 1, &w, &off, &why),
                     0);
    /* A rule refuses (role "assistant") before the body is read to its end. */
    const char *bad = "{\"contents\": [{\"role\": \"assistant\", \"parts\": [{\"text\": \"x\"}]}]}";
    assert_int_equal(skiff_validate_body(cat, "v1beta", "gemini-2.5-flash", 16, SKIFF_M_GENERATE,
                                         bad, strlen(bad), 1, &w, &off, &why),
                     1);
    assert_int_equal(gen("gemini-2.5-flash", bad), 1);
    assert_string_equal(w.message, v.message);
    /* ...but a syntax error after it wins, as when the check runs first. */
    const char *both = "{\"contents\": [{\"role\": \"assistant\", \"parts\": []}], \"x\": tru}";
    assert_int_equal(skiff_validate_body(cat, "v1beta", "gemini-2.5-flash", 16, SKIFF_M_GENERATE,
                                         both, strlen(both), 1, &w, &off, &why),
                     -1);
    assert_int_equal(off, strlen(both) - 4);
    assert_string_equal(why, "unexpected character");
    assert_int_equal(w.status, 0);
    /* An unknown model is refused before the body; a broken body still wins. */
    assert_int_equal(skiff_validate_body(cat, "v1beta", "gemini-2.5-flsh", 15, SKIFF_M_GENERATE,
                                         "{", 1, 1, &w, &off, &why),
                     -1);
    assert_int_equal(skiff_validate_body(cat, "v1beta", "gemini-2.5-flsh", 15, SKIFF_M_GENERATE, ok,
                                         strlen(ok), 1, &w, &off, &why),
                     1);
    assert_int_equal(w.status, 404);
    /* Rules off: the check alone. */
    assert_int_equal(skiff_validate_body(cat, "v1beta", "gemini-2.5-flash", 16, SKIFF_M_GENERATE,
                                         bad, strlen(bad), 0, &w, &off, &why),
                     0);
    assert_int_equal(skiff_validate_body(cat, "v1beta", "gemini-2.5-flash", 16, SKIFF_M_GENERATE,
                                         "", 0, 0, &w, &off, &why),
                     -1);
    assert_int_equal(off, 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_requests_pass),
        cmocka_unit_test(test_one_pass_body),
        cmocka_unit_test(test_unknown_future_fields_and_snake_case),
        cmocka_unit_test(test_model_rules),
        cmocka_unit_test(test_contents_rules),
        cmocka_unit_test(test_generation_config_rules),
        cmocka_unit_test(test_thinking_rules),
        cmocka_unit_test(test_v1beta_only_fields_on_v1),
        cmocka_unit_test(test_details),
        cmocka_unit_test(test_large_request_and_cost),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
