#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "sim/catalog.h"
#include "sim/render.h"

static const struct skiff_sim_model *
find(const char *id)
{
    return skiff_sim_catalog_find(id, strlen(id));
}

static void
test_models_of_the_reference(void **state)
{
    (void)state;
    const char *ids[] = {"gemini-2.5-pro", "gemini-2.5-flash", "gemini-2.5-flash-lite",
                         "gemini-flash-latest", "gemini-flash-lite-latest", "gemini-pro-latest",
                         "gemini-3-flash-preview", "gemini-3.1-pro-preview",
                         "gemini-embedding-001"};
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++)
        assert_non_null(find(ids[i]));
    assert_null(find("gemini-2.5-flash-001")); /* dated ids are not addressable */
    assert_null(skiff_sim_catalog_find("gemini-2.5-pro", 10));
    assert_string_equal(find("gemini-flash-lite-latest")->target, "gemini-3.5-flash-lite");
    assert_int_equal(find("gemini-2.5-pro")->budget_min, 128);
    assert_int_equal(find("gemini-2.5-pro")->budget_zero_ok, 0);
    assert_int_equal(find("gemini-2.5-flash-lite")->budget_min, 512);
    assert_int_equal(find("gemini-2.5-flash-lite")->thinks_default, 0);
    assert_int_equal(find("gemini-2.5-flash")->budget_max, 24576);
}

static void
test_model_json_in_proto_order(void **state)
{
    (void)state;
    json_t *j = skiff_sim_catalog_model_json(find("gemini-2.5-flash"));
    char *s = json_dumps(j, SKIFF_SIM_PRETTY);
    const char *want =
        "{\n  \"name\": \"models/gemini-2.5-flash\",\n  \"version\": \"001\",\n"
        "  \"displayName\": \"Gemini 2.5 Flash\",\n"
        "  \"description\": \"Stable version of Gemini 2.5 Flash, our mid-size multimodal model "
        "that supports up to 1 million tokens, released in June of 2025.\",\n"
        "  \"inputTokenLimit\": 1048576,\n  \"outputTokenLimit\": 65536,\n"
        "  \"supportedGenerationMethods\": [\n    \"generateContent\",\n    \"countTokens\",\n"
        "    \"createCachedContent\",\n    \"batchGenerateContent\"\n  ],\n"
        "  \"temperature\": 1,\n  \"topP\": 0.95,\n  \"topK\": 64,\n  \"maxTemperature\": 2,\n"
        "  \"thinking\": true\n}";
    assert_string_equal(s, want);
    free(s);
    json_decref(j);

    /* Embedding models: no sampling fields, outputTokenLimit 1, no "thinking". */
    j = skiff_sim_catalog_model_json(find("gemini-embedding-001"));
    assert_null(json_object_get(j, "temperature"));
    assert_null(json_object_get(j, "topK"));
    assert_null(json_object_get(j, "thinking"));
    assert_int_equal(json_integer_value(json_object_get(j, "outputTokenLimit")), 1);
    json_decref(j);
}

static void
test_supports(void **state)
{
    (void)state;
    assert_true(skiff_sim_model_supports(find("gemini-2.5-pro"), "streamGenerateContent"));
    assert_false(skiff_sim_model_supports(find("gemini-2.5-pro"), "embedContent"));
    assert_true(skiff_sim_model_supports(find("gemini-embedding-001"), "batchEmbedContents"));
    assert_false(skiff_sim_model_supports(find("gemini-embedding-001"), "generateContent"));
    assert_true(skiff_sim_model_supports(find("gemini-embedding-001"), "countTokens"));
    assert_false(skiff_sim_model_supports(find("aqa"), "generateContent"));
}

static void
test_list_pages(void **state)
{
    (void)state;
    size_t total = 0;
    for (size_t i = 0; i < skiff_sim_catalog_count(); i++)
        total += skiff_sim_model_on_version(skiff_sim_catalog_at(i), "v1beta");
    assert_int_equal(total, skiff_sim_catalog_count());

    /* Walk v1beta in pages of 5: every model once, no token on the last page. */
    size_t seen = 0;
    char token[128] = "";
    for (int guard = 0; guard < 100; guard++) {
        json_t *page = skiff_sim_catalog_list_json("v1beta", 5, token);
        assert_non_null(page);
        size_t n = json_array_size(json_object_get(page, "models"));
        assert_true(n <= 5);
        seen += n;
        json_t *next = json_object_get(page, "nextPageToken");
        if (!next) {
            json_decref(page);
            break;
        }
        assert_int_equal(n, 5);
        snprintf(token, sizeof token, "%s", json_string_value(next));
        json_decref(page);
    }
    assert_int_equal(seen, total);

    /* The default page holds everything; v1 lists fewer models. */
    json_t *all = skiff_sim_catalog_list_json("v1beta", 0, NULL);
    assert_null(json_object_get(all, "nextPageToken"));
    json_t *v1 = skiff_sim_catalog_list_json("v1", 0, NULL);
    assert_true(json_array_size(json_object_get(v1, "models")) <
                json_array_size(json_object_get(all, "models")));
    json_decref(all);
    json_decref(v1);

    assert_null(skiff_sim_catalog_list_json("v1beta", 5, "bogus"));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_models_of_the_reference),
        cmocka_unit_test(test_model_json_in_proto_order),
        cmocka_unit_test(test_supports),
        cmocka_unit_test(test_list_pages),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
