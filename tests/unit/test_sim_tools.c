#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "base/err.h"
#include "sim/catalog.h"
#include "sim/render.h"
#include "sim/tools.h"

static json_t *
parse(const char *s)
{
    json_error_t e;
    json_t *j = json_loads(s, 0, &e);
    if (!j)
        fail_msg("bad test JSON: %s", e.text);
    return j;
}

static const struct skiff_sim_model *
model(const char *id)
{
    const struct skiff_sim_model *m = skiff_sim_catalog_find(id, strlen(id));
    assert_non_null(m);
    return m;
}

static const char *const weather_tools =
    "\"tools\": [{\"functionDeclarations\": ["
    "{\"name\": \"getWeather\", \"parametersJsonSchema\": {\"type\": \"object\", "
    "\"properties\": {\"city\": {\"type\": \"string\"}, \"days\": {\"type\": \"integer\", "
    "\"minimum\": 2, \"maximum\": 2}}, \"required\": [\"city\"]}},"
    "{\"name\": \"getTime\", \"parameters\": {\"type\": \"OBJECT\", \"properties\": "
    "{\"zone\": {\"type\": \"STRING\", \"enum\": [\"UTC\", \"CET\"]}}}},"
    "{\"name\": \"unused\"}]}]";

static json_t *
ask_body(const char *text, const char *extra)
{
    char buf[4096];
    snprintf(buf, sizeof buf,
             "{\"contents\": [{\"role\": \"user\", \"parts\": [{\"text\": \"%s\"}]}], %s%s%s}",
             text, weather_tools, extra ? ", " : "", extra ? extra : "");
    return parse(buf);
}

static void
test_signature_is_stable_and_checked(void **state)
{
    (void)state;
    char *a = skiff_sim_signature("getWeather"), *b = skiff_sim_signature("getWeather");
    char *c = skiff_sim_signature("getTime");
    assert_string_equal(a, b);
    assert_string_not_equal(a, c);
    assert_true(skiff_sim_signature_ok(a, "getWeather"));
    assert_false(skiff_sim_signature_ok(a, "getTime"));
    assert_false(skiff_sim_signature_ok("AAAA", "getWeather"));
    assert_true(skiff_sim_signature_ok("skip_thought_signature_validator", "x"));
    free(a);
    free(b);
    free(c);
}

/* The prompt names two declared tools: two calls in one turn, in declaration order. */
static void
test_parallel_calls_for_mentioned_tools(void **state)
{
    (void)state;
    json_t *body = ask_body("Use getTime and getWeather for Paris", NULL);
    struct skiff_sim_ask ask;
    skiff_sim_tools_plan(body, 7, 1, &ask);
    assert_non_null(ask.calls);
    assert_int_equal(json_array_size(ask.calls), 2);
    json_t *w = json_array_get(ask.calls, 0), *t = json_array_get(ask.calls, 1);
    assert_string_equal(json_string_value(json_object_get(w, "name")), "getWeather");
    assert_string_equal(json_string_value(json_object_get(t, "name")), "getTime");
    json_t *args = json_object_get(w, "args");
    assert_true(json_is_string(json_object_get(args, "city")));
    assert_int_equal(json_integer_value(json_object_get(args, "days")), 2);
    assert_string_equal(json_string_value(json_object_get(json_object_get(t, "args"), "zone")),
                        "UTC");
    assert_true(ask.sign);
    assert_null(ask.text);
    skiff_sim_ask_release(&ask);
    json_decref(body);
}

static void
test_modes_none_any_and_no_mention(void **state)
{
    (void)state;
    struct skiff_sim_ask ask;
    json_t *plain = ask_body("Hello there", NULL);
    skiff_sim_tools_plan(plain, 1, 1, &ask);
    assert_null(ask.calls);
    skiff_sim_ask_release(&ask);

    json_t *none = ask_body("Use getWeather",
                            "\"toolConfig\": {\"functionCallingConfig\": {\"mode\": \"NONE\"}}");
    skiff_sim_tools_plan(none, 1, 1, &ask);
    assert_null(ask.calls);
    skiff_sim_ask_release(&ask);

    json_t *any = ask_body("Hello there", "\"toolConfig\": {\"functionCallingConfig\": {\"mode\": "
                                          "\"ANY\", \"allowedFunctionNames\": [\"getTime\"]}}");
    skiff_sim_tools_plan(any, 1, 0, &ask);
    assert_int_equal(json_array_size(ask.calls), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(ask.calls, 0), "name")),
                        "getTime");
    assert_false(ask.sign); /* a model that does not think signs nothing */
    skiff_sim_ask_release(&ask);
    json_decref(plain);
    json_decref(none);
    json_decref(any);
}

static void
test_function_responses_are_used(void **state)
{
    (void)state;
    json_t *body = parse(
        "{\"contents\": [{\"role\": \"user\", \"parts\": [{\"text\": \"getWeather please\"}]},"
        "{\"role\": \"model\", \"parts\": [{\"functionCall\": {\"name\": \"getWeather\", "
        "\"args\": {}}}]},"
        "{\"role\": \"user\", \"parts\": [{\"functionResponse\": {\"name\": \"getWeather\", "
        "\"response\": {\"tempC\": 21}}}]}]}");
    struct skiff_sim_ask ask;
    skiff_sim_tools_plan(body, 1, 1, &ask);
    assert_null(ask.calls);
    assert_non_null(ask.text);
    assert_non_null(strstr(ask.text, "getWeather"));
    assert_non_null(strstr(ask.text, "{\"tempC\":21}"));
    skiff_sim_ask_release(&ask);
    json_decref(body);
}

static json_t *
replay(const char *model_part)
{
    char buf[2048];
    snprintf(buf, sizeof buf,
             "{\"contents\": [{\"role\": \"user\", \"parts\": [{\"text\": \"getWeather\"}]},"
             "{\"role\": \"model\", \"parts\": [%s]},"
             "{\"role\": \"user\", \"parts\": [{\"functionResponse\": {\"name\": \"getWeather\", "
             "\"response\": {}}}]}]}",
             model_part);
    return parse(buf);
}

static void
test_gemini3_checks_replayed_signatures(void **state)
{
    (void)state;
    const struct skiff_sim_model *g3 = model("gemini-3-flash-preview");
    const struct skiff_sim_model *g25 = model("gemini-2.5-flash");
    struct skiff_sim_invalid err;

    json_t *missing = replay("{\"functionCall\": {\"name\": \"getWeather\", \"args\": {}}}");
    assert_int_equal(skiff_sim_tools_check(g3, missing, &err), SKIFF_EINVAL);
    assert_int_equal(err.status, 400);
    assert_non_null(strstr(err.message, "missing a thought_signature"));
    assert_non_null(strstr(err.message, "default_api:getWeather"));
    assert_int_equal(skiff_sim_tools_check(g25, missing, &err), 0);

    char *sig = skiff_sim_signature("getWeather");
    char part[512];
    snprintf(part, sizeof part,
             "{\"functionCall\": {\"name\": \"getWeather\", \"args\": {}}, \"thoughtSignature\": "
             "\"%s\"}, {\"functionCall\": {\"name\": \"getTime\", \"args\": {}}}",
             sig);
    json_t *good = replay(part);
    assert_int_equal(skiff_sim_tools_check(g3, good, &err), 0);

    json_t *forged = replay("{\"functionCall\": {\"name\": \"getWeather\", \"args\": {}}, "
                            "\"thoughtSignature\": \"Zm9yZ2Vk\"}");
    assert_int_not_equal(skiff_sim_tools_check(g3, forged, &err), 0);
    assert_non_null(strstr(err.message, "not valid"));

    /* An earlier turn (before the last user text) is not checked. */
    json_t *old = parse(
        "{\"contents\": [{\"role\": \"user\", \"parts\": [{\"text\": \"a\"}]},"
        "{\"role\": \"model\", \"parts\": [{\"functionCall\": {\"name\": \"f\", \"args\": {}}}]},"
        "{\"role\": \"user\", \"parts\": [{\"functionResponse\": {\"name\": \"f\", \"response\": "
        "{}}}]}, {\"role\": \"model\", \"parts\": [{\"text\": \"done\"}]},"
        "{\"role\": \"user\", \"parts\": [{\"text\": \"next question\"}]}]}");
    assert_int_equal(skiff_sim_tools_check(g3, old, &err), 0);
    free(sig);
    json_decref(missing);
    json_decref(good);
    json_decref(forged);
    json_decref(old);
}

static void
test_schema_values(void **state)
{
    (void)state;
    json_t *s = parse("{\"type\": \"object\", \"$defs\": {\"Item\": {\"type\": \"object\", "
                      "\"properties\": {\"sku\": {\"type\": \"string\", \"minLength\": 12}, "
                      "\"qty\": {\"type\": \"integer\", \"minimum\": 5}}, "
                      "\"additionalProperties\": false}},"
                      "\"properties\": {\"items\": {\"type\": \"array\", \"minItems\": 2, "
                      "\"items\": {\"$ref\": \"#/$defs/Item\"}},"
                      "\"note\": {\"anyOf\": [{\"type\": \"null\"}, {\"type\": \"string\", "
                      "\"format\": \"date\"}]},"
                      "\"kind\": {\"enum\": [\"a\", \"b\"]}, \"ok\": {\"type\": [\"boolean\", "
                      "\"null\"]}}}");
    json_t *v = skiff_sim_schema_value(s, 3);
    json_t *items = json_object_get(v, "items");
    assert_int_equal(json_array_size(items), 2);
    json_t *it = json_array_get(items, 0);
    assert_true(json_string_length(json_object_get(it, "sku")) >= 12);
    assert_true(json_integer_value(json_object_get(it, "qty")) >= 5);
    assert_int_equal(json_object_size(it), 2);
    assert_string_equal(json_string_value(json_object_get(v, "note")), "2026-01-01");
    assert_string_equal(json_string_value(json_object_get(v, "kind")), "a");
    assert_true(json_is_true(json_object_get(v, "ok")));
    json_t *again = skiff_sim_schema_value(s, 3);
    assert_true(json_equal(v, again));
    json_decref(v);
    json_decref(again);
    json_decref(s);
}

static void
test_structured_output_text(void **state)
{
    (void)state;
    json_t *body = parse("{\"contents\": [{\"parts\": [{\"text\": \"hi\"}]}], "
                         "\"generationConfig\": {\"responseMimeType\": \"application/json\", "
                         "\"responseJsonSchema\": {\"type\": \"object\", \"properties\": "
                         "{\"n\": {\"type\": \"number\"}}}}}");
    struct skiff_sim_ask ask;
    skiff_sim_tools_plan(body, 1, 0, &ask);
    assert_string_equal(ask.text, "{\"n\":1.5}");
    skiff_sim_ask_release(&ask);
    json_decref(body);
}

/* The rendered answer: calls in one chunk, the first signed, Gemini's finishMessage. */
static void
test_render_calls(void **state)
{
    (void)state;
    struct skiff_sim_prompt p;
    json_t *contents = parse("[{\"parts\": [{\"text\": \"x\"}]}]");
    skiff_sim_prompt_read(contents, NULL, &p);
    json_t *calls =
        parse("[{\"name\": \"f\", \"args\": {\"a\": 1}}, {\"name\": \"g\", \"args\": {}}]");
    struct skiff_sim_answer a;
    struct skiff_sim_answer_opts o = {.prompt = &p,
                                      .max_output_tokens = 1000,
                                      .thinking_budget = -1,
                                      .model_version = "m",
                                      .calls = calls,
                                      .sign_calls = 1};
    assert_int_equal(skiff_sim_answer_make(&a, &o), 0);
    assert_int_equal(a.nchunks, 1);
    json_t *r = skiff_sim_render_response(&a, 0);
    json_t *cand = json_array_get(json_object_get(r, "candidates"), 0);
    json_t *parts = json_object_get(json_object_get(cand, "content"), "parts");
    assert_int_equal(json_array_size(parts), 2);
    const char *sig =
        json_string_value(json_object_get(json_array_get(parts, 0), "thoughtSignature"));
    assert_true(skiff_sim_signature_ok(sig, "f"));
    assert_null(json_object_get(json_array_get(parts, 1), "thoughtSignature"));
    assert_string_equal(json_string_value(json_object_get(cand, "finishReason")), "STOP");
    assert_string_equal(json_string_value(json_object_get(cand, "finishMessage")),
                        "Model generated function call(s).");
    json_decref(r);
    skiff_sim_answer_release(&a);
    json_decref(calls);
    json_decref(contents);
}

static void
test_stop_sequences_cut_the_text(void **state)
{
    (void)state;
    struct skiff_sim_prompt p;
    json_t *contents = parse("[{\"parts\": [{\"text\": \"tell me\"}]}]");
    skiff_sim_prompt_read(contents, NULL, &p);
    json_t *stops = parse("[\"zzz\", \"answer\"]");
    struct skiff_sim_answer a;
    struct skiff_sim_answer_opts o = {
        .prompt = &p, .max_output_tokens = 1000, .model_version = "m", .stops = stops};
    assert_int_equal(skiff_sim_answer_make(&a, &o), 0);
    assert_string_equal(a.text, "Simulated ");
    assert_string_equal(a.finish_reason, "STOP");
    skiff_sim_answer_release(&a);
    json_decref(stops);
    json_decref(contents);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_signature_is_stable_and_checked),
        cmocka_unit_test(test_parallel_calls_for_mentioned_tools),
        cmocka_unit_test(test_modes_none_any_and_no_mention),
        cmocka_unit_test(test_function_responses_are_used),
        cmocka_unit_test(test_gemini3_checks_replayed_signatures),
        cmocka_unit_test(test_schema_values),
        cmocka_unit_test(test_structured_output_text),
        cmocka_unit_test(test_render_calls),
        cmocka_unit_test(test_stop_sequences_cut_the_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
