/*
 * The tables of fields the config loader reads (src/config/fields.c) against what users read:
 * every key is documented in skiff.example.yaml and in README's configuration block, and the
 * example, which claims to show every default, loads to exactly the tables' defaults.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "config/loader.h"
#include "config_helpers.h"

static char *
read_repo_file(const char *name)
{
    char path[1024];
    const char *slash = strrchr(__FILE__, '/');
    int dirlen = slash ? (int)(slash - __FILE__) : 1;
    snprintf(path, sizeof path, "%.*s/../../%s", dirlen, slash ? __FILE__ : ".", name);
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("cannot open %s", path);
    static char buf[256 * 1024];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return strdup(buf);
}

/* Whether text holds "name:" as a key (after a blank, '{', ',' or at a line start). */
static int
has_key(const char *text, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = strstr(text, name); p; p = strstr(p + 1, name)) {
        char before = p == text ? '\n' : p[-1];
        if (p[n] == ':' && strchr(" \n{,\"", before))
            return 1;
    }
    return 0;
}

static void
assert_documented(const struct cfg_section *sec, const char *text, const char *where)
{
    for (size_t i = 0; i < sec->n; i++) {
        if (!has_key(text, sec->fields[i].name))
            fail_msg("the key '%s' is not in %s", sec->fields[i].name, where);
        if (sec->fields[i].type == CFG_SECTION)
            assert_documented(sec->fields[i].section, text, where);
    }
}

static void
test_every_key_is_documented(void **state)
{
    (void)state;
    char *example = read_repo_file("skiff.example.yaml");
    char *readme = read_repo_file("README.md");
    assert_documented(&cfg_root, example, "skiff.example.yaml");
    assert_documented(&cfg_root, readme, "README.md");
    free(example);
    free(readme);
}

/* Compares every scalar field of sec between a and b, by the table's offsets. */
static void
assert_same_scalars(const struct cfg_section *sec, const struct skiff_config *a,
                    const struct skiff_config *b)
{
    for (size_t i = 0; i < sec->n; i++) {
        const struct cfg_field *f = &sec->fields[i];
        const char *pa = (const char *)a + f->offset, *pb = (const char *)b + f->offset;
        switch (f->type) {
        case CFG_INT:
        case CFG_SWITCH:
            if (*(const int *)(const void *)pa != *(const int *)(const void *)pb)
                fail_msg("%s: the example gives %d, the default is %d", f->name,
                         *(const int *)(const void *)pb, *(const int *)(const void *)pa);
            break;
        case CFG_SIZE:
            if (*(const size_t *)(const void *)pa != *(const size_t *)(const void *)pb)
                fail_msg("%s: the example gives %zu, the default is %zu", f->name,
                         *(const size_t *)(const void *)pb, *(const size_t *)(const void *)pa);
            break;
        case CFG_STRING: {
            const char *sa = *(char *const *)(const void *)pa;
            const char *sb = *(char *const *)(const void *)pb;
            if ((sa == NULL) != (sb == NULL) || (sa && strcmp(sa, sb)))
                fail_msg("%s: the example gives %s, the default is %s", f->name, sb ? sb : "(none)",
                         sa ? sa : "(none)");
            break;
        }
        case CFG_SECTION:
            assert_same_scalars(f->section, a, b);
            break;
        case CFG_LIST:
        case CFG_READ:
            break;
        }
    }
}

static void
test_example_shows_the_defaults(void **state)
{
    (void)state;
    char err[512];
    char *example = read_repo_file("skiff.example.yaml");
    struct skiff_config *file = load_text(example, err, sizeof err);
    free(example);
    if (!file)
        fail_msg("%s", err);
    struct skiff_config *dflt = skiff_config_load(NULL, err, sizeof err);
    assert_non_null(dflt);
    assert_same_scalars(&cfg_root, dflt, file);
    assert_string_equal(file->listen_host, dflt->listen_host);
    assert_int_equal(file->listen_port, dflt->listen_port);
    assert_int_equal(file->nfallbacks, dflt->nfallbacks);
    assert_int_equal(file->n_models, 0);
    skiff_config_free(dflt);
    skiff_config_free(file);
}

/* The tables themselves: names unique within a section, ranges that hold their default. */
static void
assert_sane(const struct cfg_section *sec)
{
    for (size_t i = 0; i < sec->n; i++) {
        const struct cfg_field *f = &sec->fields[i];
        for (size_t j = 0; j < i; j++)
            if (!strcmp(f->name, sec->fields[j].name))
                fail_msg("the key '%s' is in its table twice", f->name);
        if ((f->type == CFG_INT || f->type == CFG_SIZE) &&
            (f->def < f->min || f->def > f->max || !f->rule))
            fail_msg("%s: the default %lld is outside %lld..%lld", f->name, f->def, f->min, f->max);
        if (f->type == CFG_LIST && (!f->check || !f->rule || !f->item))
            fail_msg("%s: a list needs a check and the words for its messages", f->name);
        if (f->type == CFG_SECTION)
            assert_sane(f->section);
    }
}

static void
test_tables_are_consistent(void **state)
{
    (void)state;
    assert_sane(&cfg_root);
    assert_sane(&cfg_token_item);
    assert_sane(&cfg_key_item);
    assert_non_null(cfg_find(&cfg_root, "upstreams.gemini.base_url"));
    assert_non_null(cfg_find(&cfg_root, "retry.max_attempts"));
    assert_null(cfg_find(&cfg_root, "retry.max_attempts.x"));
    assert_null(cfg_find(&cfg_root, "upstreams.openai"));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_every_key_is_documented, config_env_clear,
                                        config_env_clear),
        cmocka_unit_test_setup_teardown(test_example_shows_the_defaults, config_env_clear,
                                        config_env_clear),
        cmocka_unit_test(test_tables_are_consistent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
