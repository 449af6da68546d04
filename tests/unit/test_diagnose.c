#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "config/config.h"
#include "gemini/catalog.h"
#include "gemini/diagnose.h"
#include "gemini/thinking.h"

static int
finish(const char *s, struct skiff_finish *f)
{
    return skiff_diagnose_finish(s, strlen(s), f);
}

static void
test_finish_reasons(void **state)
{
    (void)state;
    struct skiff_finish f;
    static const char *const bad[] = {"SAFETY",    "RECITATION",         "OTHER",
                                      "BLOCKLIST", "PROHIBITED_CONTENT", "SPII"};
    char body[256];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(body, sizeof body,
                 "data: {\"candidates\": [{\"content\": {\"parts\": "
                 "[{\"text\": \"\"}]},\"finishReason\": \"%s\",\"index\": 0}]}",
                 bad[i]);
        assert_int_equal(finish(body, &f), 1);
        assert_string_equal(f.header, bad[i]);
        assert_false(f.prompt_blocked);
        assert_non_null(f.advice);
    }
    /* Pretty-printed (the JSON-array stream form). */
    assert_int_equal(
        finish("{\n  \"candidates\": [\n    {\n      \"finishReason\": \"RECITATION\"\n"
               "    }\n  ]\n}",
               &f),
        1);
    assert_non_null(strstr(f.advice, "higher temperature"));
    /* Healthy ends and texts that merely mention the key. */
    assert_int_equal(finish("{\"candidates\": [{\"finishReason\": \"STOP\"}]}", &f), 0);
    assert_int_equal(finish("{\"candidates\": [{\"finishReason\": \"MAX_TOKENS\"}]}", &f), 0);
    assert_int_equal(finish("{\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"set "
                            "\\\"finishReason\\\": \\\"SAFETY\\\"\"}]}}]}",
                            &f),
                     0);
    /* A blocked prompt: 200, no candidates. */
    assert_int_equal(finish("{\"promptFeedback\": {\"blockReason\": \"PROHIBITED_CONTENT\"}, "
                            "\"usageMetadata\": {\"promptTokenCount\": 638}}",
                            &f),
                     1);
    assert_true(f.prompt_blocked);
    assert_string_equal(f.header, "blockReason=PROHIBITED_CONTENT");
    assert_int_equal(finish("{\"promptFeedback\": {\"blockReason\": \"OTHER\"}}", &f), 1);
    assert_non_null(strstr(f.advice, "terms of service"));
}

static void
test_repetition_guard(void **state)
{
    (void)state;
    struct skiff_repguard g;
    char big[4096];

    /* A healthy table and text never trip it. */
    skiff_repguard_init(&g);
    const char *table = "| Date | Description | Attendees |\n|---|---|---|\n| 2024-10-26 | "
                        "Annual Conference | 500 |\n";
    for (int i = 0; i < 200; i++)
        assert_int_equal(skiff_repguard_feed(&g, table, strlen(table)), SKIFF_REP_NONE);
    const char *prose = "The sea is calm today. Boats go out at dawn! Do the gulls follow them? ";
    for (int i = 0; i < 5; i++)
        assert_int_equal(skiff_repguard_feed(&g, prose, strlen(prose)), SKIFF_REP_NONE);

    /* A separator that never ends, fed in deltas. */
    skiff_repguard_init(&g);
    skiff_repguard_feed(&g, "| a | b |\n|", 11);
    memset(big, '-', 100);
    enum skiff_rep r = SKIFF_REP_NONE;
    for (int i = 0; i < 10 && !r; i++)
        r = skiff_repguard_feed(&g, big, 100);
    assert_int_equal(r, SKIFF_REP_HYPHENS);

    /* Runs of newlines (blank lines with spaces still count). */
    skiff_repguard_init(&g);
    for (int i = 0; i < 60; i++)
        skiff_repguard_feed(&g, "\n \n", 3);
    assert_int_equal(g.tripped, SKIFF_REP_NEWLINES);

    /* The same sentence over and over, split across stream events with JSON escapes. */
    skiff_repguard_init(&g);
    r = SKIFF_REP_NONE;
    int events = 0;
    while (!r && events < 100) {
        const char *ev = "data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"I will "
                         "now answer the question\"}]}}]}";
        const char *ev2 = "data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \" you "
                          "asked.\\n\"}]}}]}";
        r = skiff_repguard_feed_event(&g, ev, strlen(ev));
        if (!r)
            r = skiff_repguard_feed_event(&g, ev2, strlen(ev2));
        events++;
    }
    assert_int_equal(r, SKIFF_REP_SENTENCE);
    assert_int_equal(events, SKIFF_REP_SENTENCE_TIMES);
    assert_non_null(strstr(skiff_rep_explain(r), "0.8"));
}

static struct skiff_config *
load(const char *yaml, char *err, size_t errlen)
{
    char path[] = "/tmp/skiff-diag-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, yaml, strlen(yaml)), (ssize_t)strlen(yaml));
    close(fd);
    struct skiff_config *cfg = skiff_config_load(path, err, errlen);
    unlink(path);
    return cfg;
}

static void
test_config_keys(void **state)
{
    (void)state;
    char err[512];
    struct skiff_config *cfg = load("storage: {sqlite: \"\"}\n", err, sizeof err);
    assert_non_null(cfg);
    assert_int_equal(cfg->validation, 1);
    assert_int_equal(cfg->quality.retry_recitation, 0);
    assert_int_equal(cfg->quality.repetition_guard, 0);
    assert_int_equal(cfg->nthinking, 0);
    skiff_config_free(cfg);

    cfg = load("validation: off\nquality: {retry_recitation: true, repetition_guard: on}\n"
               "thinking:\n  default_budget: {gemini-2.5-flash: 0, \"*\": 1024}\n"
               "  tokens:\n    ci: {gemini-2.5-flash: -1}\nstorage: {sqlite: \"\"}\n",
               err, sizeof err);
    if (!cfg)
        fail_msg("%s", err);
    assert_int_equal(cfg->validation, 0);
    assert_int_equal(cfg->quality.retry_recitation, 1);
    assert_int_equal(cfg->quality.repetition_guard, 1);
    assert_int_equal(cfg->nthinking, 3);
    int b;
    assert_true(skiff_thinking_default(cfg, NULL, "gemini-2.5-flash", &b));
    assert_int_equal(b, 0);
    assert_true(skiff_thinking_default(cfg, "ci", "gemini-2.5-flash", &b));
    assert_int_equal(b, -1);
    assert_true(skiff_thinking_default(cfg, "alice", "gemini-2.5-pro", &b));
    assert_int_equal(b, 1024);
    skiff_config_free(cfg);

    assert_null(load("validation: maybe\n", err, sizeof err));
    assert_non_null(strstr(err, "validation: must be on or off"));
    assert_null(load("quality: {repetition_gaurd: on}\n", err, sizeof err));
    assert_non_null(strstr(err, "did you mean 'repetition_guard'"));
    assert_null(load("thinking: {default_budget: {gemini-2.5-pro: 100000}}\n", err, sizeof err));
    assert_non_null(strstr(err, "thinking.default_budget.gemini-2.5-pro"));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_finish_reasons),
        cmocka_unit_test(test_repetition_guard),
        cmocka_unit_test(test_config_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
