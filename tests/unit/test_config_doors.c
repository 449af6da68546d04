/*
 * The configuration the translating doors (OpenAI, Anthropic) read: the shared models: map,
 * media: (fetching image and file URLs), thinking.include_thoughts and sigcache:. Each test
 * loads YAML from a file as `skiff serve --config` does.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "config_helpers.h"
#include "doors/models.h"

/* Without the sections: no map, URL fetching on with its bounds, thoughts only when asked. */
static void
test_defaults(void **state)
{
    (void)state;
    char err[256];
    struct skiff_config *cfg = skiff_config_load(NULL, err, sizeof err);
    assert_non_null(cfg);
    assert_int_equal(cfg->n_models, 0);
    assert_null(cfg->models);
    assert_int_equal(cfg->media.fetch_urls, 1);
    assert_int_equal(cfg->media.max_bytes, 20 * 1024 * 1024);
    assert_int_equal(cfg->media.timeout_ms, 10000);
    assert_int_equal(cfg->media.allow_private, 0);
    assert_int_equal(cfg->include_thoughts, 0);
    assert_int_equal(cfg->sigcache.max_entries, 100000);
    skiff_config_free(cfg);

    cfg = load_ok("models: {}\nmedia:\nsigcache:\nthinking: {include_thoughts: false}\n");
    assert_int_equal(cfg->n_models, 0);
    assert_int_equal(cfg->media.fetch_urls, 1);
    assert_int_equal(cfg->sigcache.max_entries, 100000);
    skiff_config_free(cfg);
}

/* The map keeps file order and feeds skiff_models_resolve as it is: exact names beat globs,
 * the most specific glob wins, a Gemini name is itself, an unmapped name is NULL. */
static void
test_models_map(void **state)
{
    (void)state;
    struct skiff_config *cfg = load_ok("models:\n"
                                       "  \"gpt-*\": gemini-2.5-pro\n"
                                       "  gpt-4o-mini: gemini-2.5-flash\n"
                                       "  \"claude-haiku-*\": gemini-2.5-flash-lite\n"
                                       "  \"claude-*\": gemini-2.5-pro\n");
    assert_int_equal(cfg->n_models, 4);
    assert_string_equal(cfg->models[0].pattern, "gpt-*");
    assert_string_equal(cfg->models[0].target, "gemini-2.5-pro");
    assert_string_equal(cfg->models[1].pattern, "gpt-4o-mini");
    assert_string_equal(cfg->models[3].pattern, "claude-*");

    const struct skiff_model_alias *m = cfg->models;
    size_t n = cfg->n_models;
    assert_string_equal(skiff_models_resolve(m, n, NULL, "gpt-4o-mini"), "gemini-2.5-flash");
    assert_string_equal(skiff_models_resolve(m, n, NULL, "gpt-4.1"), "gemini-2.5-pro");
    assert_string_equal(skiff_models_resolve(m, n, NULL, "claude-haiku-4-5"),
                        "gemini-2.5-flash-lite");
    assert_string_equal(skiff_models_resolve(m, n, NULL, "claude-sonnet-4-5"), "gemini-2.5-pro");
    assert_string_equal(skiff_models_resolve(m, n, NULL, "gemini-2.5-flash"), "gemini-2.5-flash");
    assert_null(skiff_models_resolve(m, n, NULL, "llama-3"));
    skiff_config_free(cfg);

    /* A catch-all is allowed (it never turns a Gemini name into another model). */
    cfg = load_ok("models: {\"*\": gemini-2.5-flash}\n");
    assert_int_equal(cfg->n_models, 1);
    assert_string_equal(skiff_models_resolve(cfg->models, 1, NULL, "o3"), "gemini-2.5-flash");
    skiff_config_free(cfg);
}

/* Every mistake in the map says file:line:key and what to write instead. */
static void
test_models_errors(void **state)
{
    (void)state;
    assert_error_at("models:\n  gpt-4o: models/gemini-2.5-pro\n", 2, "models.gpt-4o",
                    "\"models/gemini-2.5-pro\" is not a model name");
    assert_error_at("models:\n  gpt-4o: gemini 2.5\n", 2, "models.gpt-4o",
                    "printable ASCII characters, without spaces");
    assert_error_at("models:\n  gpt-4o: gemini/../x\n", 2, "models.gpt-4o", "is not a model name");
    assert_error_at("models:\n  gpt-4o:\n", 2, "models.gpt-4o", "\"\" is empty");
    assert_error_at("models:\n  gpt-4o: [gemini-2.5-pro]\n", 2, "models.gpt-4o",
                    "expected a Gemini model name, got a list");
    assert_error_at("models:\n  ok: gemini-2.5-pro\n  gemini-2.5-pro: gemini-2.5-flash\n", 3,
                    "models.gemini-2.5-pro", "always maps to itself");
    assert_error_at("models:\n  gpt-4o: gemini-2.5-pro\n  gpt-4o: gemini-2.5-flash\n", 3, "models",
                    "'gpt-4o' is given twice (first on line 2)");
    assert_error_at("models: [gpt-4o]\n", 1, "models", "expected a mapping, got a list");
}

static void
test_media(void **state)
{
    (void)state;
    struct skiff_config *cfg = load_ok("media:\n  fetch_urls: false\n  max_bytes: 1048576\n"
                                       "  timeout_ms: 2500\n  allow_private: true\n");
    assert_int_equal(cfg->media.fetch_urls, 0);
    assert_int_equal(cfg->media.max_bytes, 1048576);
    assert_int_equal(cfg->media.timeout_ms, 2500);
    assert_int_equal(cfg->media.allow_private, 1);
    skiff_config_free(cfg);

    assert_error_at("media:\n  fetch_urls: maybe\n", 2, "media.fetch_urls",
                    "must be on or off, got \"maybe\"");
    assert_error_at("media:\n  max_bytes: 10\n", 2, "media.max_bytes",
                    "a number of bytes from 1024 to 1073741824 (1 GiB), got \"10\"");
    assert_error_at("media:\n  timeout_ms: 0\n", 2, "media.timeout_ms",
                    "from 1 to 86400000 (a day)");
    assert_error_at("media:\n  allow_privat: true\n", 2, "media",
                    "unknown key 'allow_privat'; did you mean 'allow_private'?");
}

static void
test_include_thoughts_and_sigcache(void **state)
{
    (void)state;
    struct skiff_config *cfg =
        load_ok("thinking:\n  default_budget: {gemini-2.5-flash: 0}\n  include_thoughts: on\n"
                "sigcache: {max_entries: 5000}\n");
    assert_int_equal(cfg->include_thoughts, 1);
    assert_int_equal(cfg->nthinking, 1);
    assert_int_equal(cfg->sigcache.max_entries, 5000);
    skiff_config_free(cfg);

    assert_error_at("thinking:\n  include_thoughts: 1\n", 2, "thinking.include_thoughts",
                    "must be on or off");
    assert_error_at("thinking:\n  include_thought: true\n", 2, "thinking",
                    "did you mean 'include_thoughts'?");
    assert_error_at("sigcache:\n  max_entries: 0\n", 2, "sigcache.max_entries",
                    "from 1 to 100000000, got \"0\"");
    assert_error_at("sigcache: {size: 10}\n", 1, "sigcache",
                    "unknown key 'size'; expected one of: max_entries");
    assert_error_at("medai: {}\n", 1, NULL, "unknown key 'medai'; did you mean 'media'?");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_defaults, config_env_clear, config_env_clear),
        cmocka_unit_test_setup_teardown(test_models_map, config_env_clear, config_env_clear),
        cmocka_unit_test_setup_teardown(test_models_errors, config_env_clear, config_env_clear),
        cmocka_unit_test_setup_teardown(test_media, config_env_clear, config_env_clear),
        cmocka_unit_test_setup_teardown(test_include_thoughts_and_sigcache, config_env_clear,
                                        config_env_clear),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
