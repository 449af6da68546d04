#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "gemini/catalog.h"
#include "sim/catalog.h"
#include "relay/fetch.h"

static int
lookup(const struct skiff_catalog *cat, const char *name, struct skiff_model_info *m)
{
    return skiff_catalog_lookup(cat, name, strlen(name), m);
}

/* The relay's built-in list and the simulator's catalog must not drift apart. */
static void
test_builtin_matches_the_simulator(void **state)
{
    (void)state;
    struct skiff_catalog *cat = skiff_catalog_new();
    assert_non_null(cat);
    assert_int_equal(skiff_catalog_source(cat), SKIFF_CATALOG_BUILTIN);
    assert_int_equal(skiff_catalog_count(cat), skiff_sim_catalog_count());
    for (size_t i = 0; i < skiff_sim_catalog_count(); i++) {
        const struct skiff_sim_model *s = skiff_sim_catalog_at(i);
        struct skiff_model_info m;
        assert_true(lookup(cat, s->id, &m));
        assert_int_equal(m.input_limit, s->input_limit);
        assert_int_equal(m.output_limit, s->output_limit);
        assert_int_equal(m.v1, (s->flags & SKIFF_SIM_V1) != 0);
        if (s->max_temperature >= 0)
            assert_true(m.max_temperature == s->max_temperature);
        static const enum skiff_method methods[] = {SKIFF_M_GENERATE, SKIFF_M_STREAM, SKIFF_M_EMBED,
                                                    SKIFF_M_BATCH_EMBED};
        for (size_t j = 0; j < sizeof methods / sizeof methods[0]; j++)
            assert_int_equal(skiff_model_supports(&m, methods[j]),
                             skiff_sim_model_supports(s, skiff_method_name(methods[j])));
        if (strncmp(s->id, "gemini-2.5-", 11) == 0 && s->thinking) {
            assert_int_equal(m.budget_min, s->budget_min);
            assert_int_equal(m.budget_max, s->budget_max);
            assert_int_equal(m.budget_zero_ok, s->budget_zero_ok);
        }
    }
    skiff_catalog_free(cat);
}

static void
test_prefix_alias_and_unknown(void **state)
{
    (void)state;
    struct skiff_catalog *cat = skiff_catalog_new();
    struct skiff_model_info m;
    assert_true(lookup(cat, "models/gemini-2.5-flash", &m));
    assert_string_equal(m.name, "gemini-2.5-flash");
    assert_true(lookup(cat, "gemini-flash-latest", &m));
    assert_string_equal(m.target, "gemini-3.6-flash");
    assert_false(lookup(cat, "gemini-2.5-flash-001", &m)); /* dated ids are not addressable */
    assert_false(lookup(cat, "models/", &m));
    assert_false(skiff_catalog_lookup(cat, "gemini-2.5-flash", 10, &m)); /* length counts */
    skiff_catalog_free(cat);
}

static void
test_did_you_mean(void **state)
{
    (void)state;
    struct skiff_catalog *cat = skiff_catalog_new();
    char near[96];
    assert_true(skiff_catalog_suggest(cat, "gemini-2.5-flsh", 15, near, sizeof near));
    assert_string_equal(near, "gemini-2.5-flash");
    assert_true(skiff_catalog_suggest(cat, "models/gemini-2.5-rpo", 21, near, sizeof near));
    assert_string_equal(near, "gemini-2.5-pro"); /* a swap of neighbours is one edit */
    assert_true(skiff_catalog_suggest(cat, "Gemini-2.5-Pro", 14, near, sizeof near));
    assert_string_equal(near, "gemini-2.5-pro");
    assert_false(skiff_catalog_suggest(cat, "gpt-4o", 6, near, sizeof near));
    assert_string_equal(near, "");
    skiff_catalog_free(cat);
}

static void
test_methods_implied(void **state)
{
    (void)state;
    struct skiff_catalog *cat = skiff_catalog_new();
    struct skiff_model_info m;
    assert_true(lookup(cat, "gemini-2.5-pro", &m));
    assert_true(skiff_model_supports(&m, SKIFF_M_STREAM)); /* never listed, implied */
    assert_false(skiff_model_supports(&m, SKIFF_M_EMBED));
    assert_true(lookup(cat, "gemini-embedding-001", &m));
    assert_true(skiff_model_supports(&m, SKIFF_M_BATCH_EMBED)); /* what the SDKs call */
    assert_false(skiff_model_supports(&m, SKIFF_M_GENERATE));
    memset(&m, 0, sizeof m); /* unknown methods: nothing is refused */
    assert_true(skiff_model_supports(&m, SKIFF_M_EMBED));
    skiff_catalog_free(cat);
}

static void
test_upstream_list_replaces_and_merges(void **state)
{
    (void)state;
    struct skiff_catalog *cat = skiff_catalog_new();
    json_t *models = json_loads(
        "[{\"name\": \"models/gemini-2.5-pro\", \"inputTokenLimit\": 1048576, "
        "\"outputTokenLimit\": 65536, \"supportedGenerationMethods\": [\"generateContent\", "
        "\"countTokens\"], \"temperature\": 1, \"maxTemperature\": 2, \"thinking\": true},"
        " {\"name\": \"models/gemini-9-ultra\", \"outputTokenLimit\": 131072, "
        "\"supportedGenerationMethods\": [\"generateContent\"], \"maxTemperature\": 2.5, "
        "\"thinking\": true}, {\"displayName\": \"no name: skipped\"}]",
        0, NULL);
    assert_int_equal(skiff_catalog_apply_list(cat, models), 2);
    assert_int_equal(skiff_catalog_source(cat), SKIFF_CATALOG_UPSTREAM);
    struct skiff_model_info m;
    assert_true(lookup(cat, "gemini-2.5-pro", &m));
    assert_int_equal(m.budget_min, 128); /* kept from the built-in list */
    assert_true(lookup(cat, "gemini-9-ultra", &m));
    assert_int_equal(m.output_limit, 131072);
    assert_true(m.max_temperature == 2.5);
    assert_int_equal(m.budget_max, 0); /* unknown range: unchecked */
    assert_int_equal(m.v1, -1);
    assert_false(lookup(cat, "gemini-2.5-flash", &m)); /* gone: the upstream is authoritative */
    json_decref(models);

    /* An empty list leaves the table as it was. */
    json_t *empty = json_array();
    assert_int_equal(skiff_catalog_apply_list(cat, empty), -1);
    assert_int_equal(skiff_catalog_count(cat), 2);
    json_decref(empty);
    skiff_catalog_free(cat);
}

static void
test_refresh_failure_keeps_table_and_hides_key(void **state)
{
    (void)state;
    struct skiff_catalog *cat = skiff_catalog_new();
    char err[256];
    /* Port 1 on loopback refuses at once. */
    int rc = skiff_catalog_refresh(cat, "http://127.0.0.1:1", "AIzaSECRETKEY", NULL, NULL, err,
                                   sizeof err);
    assert_int_equal(rc, -1);
    assert_non_null(strstr(err, "models.list failed"));
    assert_null(strstr(err, "AIzaSECRETKEY"));
    assert_int_equal(skiff_catalog_source(cat), SKIFF_CATALOG_BUILTIN);
    skiff_catalog_free(cat);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_builtin_matches_the_simulator),
        cmocka_unit_test(test_prefix_alias_and_unknown),
        cmocka_unit_test(test_did_you_mean),
        cmocka_unit_test(test_methods_implied),
        cmocka_unit_test(test_upstream_list_replaces_and_merges),
        cmocka_unit_test(test_refresh_failure_keeps_table_and_hides_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
