#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>
#include <jansson.h>

#include "config_helpers.h"
#include "gemini/catalog.h"
#include "gemini/thinking.h"

static void
test_thinking_policy(void **state)
{
    (void)state;
    char err[512];
    struct skiff_config *cfg =
        load_text("thinking:\n  default_budget: {\"*\": 0, gemini-2.5-pro: 128}\n"
                  "storage: {sqlite: \"\"}\n",
                  err, sizeof err);
    assert_non_null(cfg);
    struct skiff_catalog *cat = skiff_catalog_new();
    size_t nl;
    const char *b1 = "{\"contents\": [{\"parts\": [{\"text\": \"hi\"}]}], \"futureField\": 1}";
    char *out =
        skiff_thinking_apply(cfg, cat, NULL, "v1beta", "gemini-2.5-flash", b1, strlen(b1), &nl);
    assert_non_null(out);
    assert_int_equal(nl, strlen(out));
    json_t *j = json_loads(out, 0, NULL);
    assert_int_equal(json_integer_value(json_object_get(
                         json_object_get(json_object_get(j, "generationConfig"), "thinkingConfig"),
                         "thinkingBudget")),
                     0);
    assert_int_equal(json_integer_value(json_object_get(j, "futureField")), 1);
    json_decref(j);
    free(out);

    /* snake_case in, snake_case out; includeThoughts kept. */
    const char *b2 = "{\"contents\": [], \"generation_config\": {\"thinking_config\": "
                     "{\"include_thoughts\": true}}}";
    out = skiff_thinking_apply(cfg, cat, NULL, "v1beta", "models/gemini-2.5-pro", b2, strlen(b2),
                               &nl);
    assert_non_null(out);
    assert_non_null(strstr(out, "\"thinking_budget\":128"));
    assert_non_null(strstr(out, "\"include_thoughts\":true"));
    free(out);

    /* Unchanged: the client chose, /v1, a model that cannot take the default. */
    const char *b3 = "{\"generationConfig\": {\"thinkingConfig\": {\"thinkingLevel\": \"low\"}}}";
    assert_null(
        skiff_thinking_apply(cfg, cat, NULL, "v1beta", "gemini-2.5-flash", b3, strlen(b3), &nl));
    const char *b4 = "{\"generationConfig\": {\"thinkingConfig\": {\"thinkingBudget\": 512}}}";
    assert_null(
        skiff_thinking_apply(cfg, cat, NULL, "v1beta", "gemini-2.5-flash", b4, strlen(b4), &nl));
    assert_null(
        skiff_thinking_apply(cfg, cat, NULL, "v1", "gemini-2.5-flash", b1, strlen(b1), &nl));
    /* "*": 0 must not break models that cannot turn thinking off, or cannot think. */
    assert_null(
        skiff_thinking_apply(cfg, cat, NULL, "v1beta", "gemini-3.5-flash", b1, strlen(b1), &nl));
    assert_null(skiff_thinking_apply(cfg, cat, NULL, "v1beta", "gemini-2.5-flash-image", b1,
                                     strlen(b1), &nl));
    assert_null(skiff_thinking_apply(cfg, cat, NULL, "v1beta", "gemini-2.5-flash", "[1]", 3, &nl));
    skiff_catalog_free(cat);
    skiff_config_free(cfg);
}

/* The thinkingConfig skiff_thinking_least makes for a model, as compact JSON (static). */
static const char *
least(const struct skiff_catalog *cat, const char *model)
{
    static char out[128];
    struct skiff_model_info m;
    int known = skiff_catalog_lookup(cat, model, strlen(model), &m);
    json_t *tc = json_object();
    assert_int_equal(skiff_thinking_least(known ? &m : NULL, model, tc), 0);
    char *s = json_dumps(tc, JSON_COMPACT);
    snprintf(out, sizeof out, "%s", s);
    free(s);
    json_decref(tc);
    return out;
}

static void
test_thinking_least(void **state)
{
    (void)state;
    struct skiff_catalog *cat = skiff_catalog_new();
    /* Flash may stop thinking; Pro cannot (its minimum, 128); Gemini 3 takes levels only. */
    assert_string_equal(least(cat, "gemini-2.5-flash"), "{\"thinkingBudget\":0}");
    assert_string_equal(least(cat, "models/gemini-2.5-pro"), "{\"thinkingBudget\":128}");
    assert_string_equal(least(cat, "gemini-3.1-pro-preview"), "{\"thinkingLevel\":\"LOW\"}");
    /* An alias is its target's. */
    assert_string_equal(least(cat, "gemini-pro-latest"), "{\"thinkingLevel\":\"LOW\"}");
    assert_string_equal(least(cat, "gemini-3.5-flash"), "{\"thinkingLevel\":\"MINIMAL\"}");
    /* A model the catalog does not know: 0, the value every 2.5 Flash takes. */
    assert_string_equal(least(cat, "gemini-9-unknown"), "{\"thinkingBudget\":0}");

    struct skiff_model_info m;
    assert_true(skiff_catalog_lookup(cat, "gemini-2.5-pro", 14, &m));
    assert_false(skiff_thinking_accepts(&m, 0));
    assert_true(skiff_thinking_accepts(&m, -1));
    assert_true(skiff_thinking_accepts(&m, 128));
    assert_true(skiff_thinking_accepts(NULL, 0));
    skiff_catalog_free(cat);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_thinking_policy),
        cmocka_unit_test(test_thinking_least),
    };
    return cmocka_run_group_tests(tests, config_env_clear, NULL);
}
