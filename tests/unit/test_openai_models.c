/* The shared models: map (src/doors/models.c) and OpenAI's /v1/models answers
 * (src/doors/openai/models.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "doors/models.h"
#include "doors/openai/models.h"
#include "gemini/catalog.h"
#include "test_openai_common.h"

static const struct skiff_model_alias map[] = {
    {"gpt-*", "gemini-2.5-pro"},
    {"gpt-4o-mini", "gemini-2.5-flash"},
    {"gpt-4o*", "gemini-2.5-flash-lite"},
    {"*", "gemini-3-flash-preview"},
    {"gemini-2.5-pro", "gemini-2.5-flash"},
};
#define NMAP (sizeof map / sizeof map[0])

static void
test_resolve(void **state)
{
    (void)state;
    struct skiff_catalog *cat = skiff_catalog_new();
    static const struct {
        const char *name, *want;
    } t[] = {
        {"gpt-4o-mini", "gemini-2.5-flash"},            /* exact beats every glob */
        {"gpt-4o-2024-08-06", "gemini-2.5-flash-lite"}, /* the longer glob wins */
        {"gpt-5", "gemini-2.5-pro"},
        {"claude-3", "gemini-3-flash-preview"}, /* the catch-all */
        {"gemini-2.5-pro", "gemini-2.5-pro"},   /* a Gemini name is itself, always */
        {"models/gemini-2.5-flash", "models/gemini-2.5-flash"},
        {"gemini-9-ultra", "gemini-9-ultra"}, /* newer than the catalog: still itself */
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        const char *got = skiff_models_resolve(map, NMAP, cat, t[i].name);
        if (!got || strcmp(got, t[i].want) != 0)
            fail_msg("%s → %s, want %s", t[i].name, got ? got : "(null)", t[i].want);
    }
    /* Without a catch-all, an unknown name maps to nothing (404 model_not_found). */
    assert_null(skiff_models_resolve(map, 3, cat, "claude-3"));
    assert_null(skiff_models_resolve(map, NMAP, cat, ""));
    skiff_catalog_free(cat);
}

static void
test_glob(void **state)
{
    (void)state;
    assert_true(skiff_models_glob("*", ""));
    assert_true(skiff_models_glob("a*b*c", "aXXbYYc"));
    assert_false(skiff_models_glob("a*b*c", "aXXbYY"));
    assert_true(skiff_models_glob("gpt-*-mini", "gpt-4o-mini"));
    assert_false(skiff_models_glob("gpt-4", "gpt-4o"));
}

static void
test_list_and_get(void **state)
{
    (void)state;
    struct skiff_catalog *cat = skiff_catalog_new();
    json_t *l = skiff_oai_models_list(cat, map, NMAP, 1700000000);
    assert_non_null(l);
    assert_string_equal(json_string_value(json_object_get(l, "object")), "list");
    json_t *data = json_object_get(l, "data");
    assert_int_equal(json_array_size(data), skiff_catalog_count(cat) + 1); /* + gpt-4o-mini */
    assert_json(json_array_get(data, 0),
                "{\"id\": \"gemini-2.5-pro\", \"object\": \"model\", \"created\": 1700000000, "
                "\"owned_by\": \"google\"}",
                "first");
    assert_json(json_array_get(data, json_array_size(data) - 1),
                "{\"id\": \"gpt-4o-mini\", \"object\": \"model\", \"created\": 1700000000, "
                "\"owned_by\": \"skiff\"}",
                "alias");
    json_decref(l);
    json_t *m = skiff_oai_model_get(cat, map, NMAP, "gpt-4o", 1);
    assert_json(
        m, "{\"id\": \"gpt-4o\", \"object\": \"model\", \"created\": 1, \"owned_by\": \"skiff\"}",
        "alias get");
    json_decref(m);
    m = skiff_oai_model_get(cat, map, NMAP, "gemini-2.5-flash", 1);
    assert_json(m,
                "{\"id\": \"gemini-2.5-flash\", \"object\": \"model\", \"created\": 1, "
                "\"owned_by\": \"google\"}",
                "gemini get");
    json_decref(m);
    assert_null(skiff_oai_model_get(cat, map, 3, "claude-3", 1));
    assert_null(skiff_oai_model_get(cat, map, NMAP, "gemini-9-ultra", 1));
    skiff_catalog_free(cat);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resolve),
        cmocka_unit_test(test_glob),
        cmocka_unit_test(test_list_and_get),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
