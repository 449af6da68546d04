/* GET /v1/models and /v1/models/{id} in Anthropic's shape (src/doors/anthropic/models.c),
 * with its paging (limit, after_id, before_id). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "doors/anthropic/models.h"

static const struct skiff_anth_model models[] = {
    {"claude-opus-4-1", "Claude Opus 4.1 (gemini-2.5-pro)", "2025-08-05T00:00:00Z"},
    {"claude-sonnet-4-5", NULL, NULL},
    {"claude-haiku-4-5", "Claude Haiku 4.5 (gemini-2.5-flash)", NULL},
};

#define OPUS                                                                                       \
    "{\"type\":\"model\",\"id\":\"claude-opus-4-1\",\"display_name\":\"Claude Opus 4.1 "           \
    "(gemini-2.5-pro)\",\"created_at\":\"2025-08-05T00:00:00Z\"}"
#define SONNET                                                                                     \
    "{\"type\":\"model\",\"id\":\"claude-sonnet-4-5\",\"display_name\":\"claude-sonnet-4-5\","     \
    "\"created_at\":\"1970-01-01T00:00:00Z\"}"
#define HAIKU                                                                                      \
    "{\"type\":\"model\",\"id\":\"claude-haiku-4-5\",\"display_name\":\"Claude Haiku 4.5 "         \
    "(gemini-2.5-flash)\",\"created_at\":\"1970-01-01T00:00:00Z\"}"

static void
test_pages(void **state)
{
    (void)state;
    static const struct {
        const char *after, *before;
        long limit;
        const char *want;
    } cases[] = {
        {NULL, NULL, 0,
         "{\"data\":[" OPUS "," SONNET "," HAIKU "],\"has_more\":false,\"first_id\":"
         "\"claude-opus-4-1\",\"last_id\":\"claude-haiku-4-5\"}"},
        {NULL, NULL, 2,
         "{\"data\":[" OPUS "," SONNET "],\"has_more\":true,\"first_id\":\"claude-opus-4-1\","
         "\"last_id\":\"claude-sonnet-4-5\"}"},
        {"claude-sonnet-4-5", NULL, 2,
         "{\"data\":[" HAIKU "],\"has_more\":false,\"first_id\":\"claude-haiku-4-5\","
         "\"last_id\":\"claude-haiku-4-5\"}"},
        {NULL, "claude-haiku-4-5", 1,
         "{\"data\":[" SONNET "],\"has_more\":true,\"first_id\":\"claude-sonnet-4-5\","
         "\"last_id\":\"claude-sonnet-4-5\"}"},
        {"claude-haiku-4-5", NULL, 0,
         "{\"data\":[],\"has_more\":false,\"first_id\":null,\"last_id\":null}"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *got =
            skiff_anth_models_list(models, 3, cases[i].after, cases[i].before, cases[i].limit);
        if (strcmp(got, cases[i].want) != 0)
            fail_msg("case %zu:\n got  %s\n want %s", i, got, cases[i].want);
        free(got);
    }
    char *one = skiff_anth_model_json(&models[0]);
    assert_string_equal(one, OPUS);
    free(one);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_pages)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
