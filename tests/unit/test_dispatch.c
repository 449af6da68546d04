/* The dispatch rule (doors/dispatch.h): which dialect a request's head speaks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "doors/dispatch.h"

/* A head: path[?query], with up to two "name: value" headers (NULL for none). */
static enum skiff_style
style(const char *target, const char *h1, const char *v1, const char *h2, const char *v2)
{
    static char buf[256];
    struct skiff_request r;
    memset(&r, 0, sizeof r);
    snprintf(buf, sizeof buf, "%s", target);
    char *q = strchr(buf, '?');
    r.path = buf;
    r.path_len = q ? (size_t)(q - buf) : strlen(buf);
    r.query = q ? q + 1 : "";
    r.query_len = strlen(r.query);
    r.method = "GET";
    if (h1)
        r.headers[r.nheaders++] = (struct skiff_header){h1, v1, strlen(h1), strlen(v1)};
    if (h2)
        r.headers[r.nheaders++] = (struct skiff_header){h2, v2, strlen(h2), strlen(v2)};
    return skiff_dispatch_style(&r);
}

static void
test_v1_models_by_credential(void **state)
{
    assert_int_equal(style("/v1/models", "x-goog-api-key", "t", NULL, NULL), SKIFF_STYLE_GEMINI);
    assert_int_equal(style("/v1/models?key=t", NULL, NULL, NULL, NULL), SKIFF_STYLE_GEMINI);
    assert_int_equal(
        style("/v1/models", "x-goog-api-client", "genai-js/1", "authorization", "Bearer t"),
        SKIFF_STYLE_GEMINI);
    assert_int_equal(style("/v1/models", "anthropic-version", "2023-06-01", NULL, NULL),
                     SKIFF_STYLE_ANTHROPIC);
    assert_int_equal(style("/v1/models", "x-api-key", "t", NULL, NULL), SKIFF_STYLE_ANTHROPIC);
    assert_int_equal(style("/v1/models", "authorization", "Bearer t", NULL, NULL),
                     SKIFF_STYLE_OPENAI);
    assert_int_equal(style("/v1/models", NULL, NULL, NULL, NULL), SKIFF_STYLE_OPENAI);
    assert_int_equal(style("/v1/models/gpt-4o", "authorization", "Bearer t", NULL, NULL),
                     SKIFF_STYLE_OPENAI);
    /* A Gemini credential wins over an Anthropic header. */
    assert_int_equal(style("/v1/models", "x-api-key", "t", "x-goog-api-key", "t"),
                     SKIFF_STYLE_GEMINI);
}

static void
test_unambiguous_paths(void **state)
{
    assert_int_equal(style("/v1beta/models", "authorization", "Bearer t", NULL, NULL),
                     SKIFF_STYLE_GEMINI);
    assert_int_equal(
        style("/v1/models/gemini-2.5-flash:generateContent", "x-api-key", "t", NULL, NULL),
        SKIFF_STYLE_GEMINI);
    assert_int_equal(style("/openai/v1/models", "x-goog-api-key", "t", NULL, NULL),
                     SKIFF_STYLE_OPENAI);
    assert_int_equal(style("/openai/v1", NULL, NULL, NULL, NULL), SKIFF_STYLE_OPENAI);
    assert_int_equal(style("/anthropic/v1/messages", "authorization", "Bearer t", NULL, NULL),
                     SKIFF_STYLE_ANTHROPIC);
    assert_int_equal(style("/v1/messages", "anthropic-version", "2023-06-01", NULL, NULL),
                     SKIFF_STYLE_ANTHROPIC);
    assert_int_equal(style("/v1/chat/completions", "authorization", "Bearer t", NULL, NULL),
                     SKIFF_STYLE_OPENAI);
    /* Anything else is the default door's (its 404 says what the path is). */
    assert_int_equal(style("/openaiv1/models", NULL, NULL, NULL, NULL), SKIFF_STYLE_GEMINI);
    assert_int_equal(style("/", NULL, NULL, NULL, NULL), SKIFF_STYLE_GEMINI);
    assert_int_equal(style("/healthz", NULL, NULL, NULL, NULL), SKIFF_STYLE_GEMINI);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_v1_models_by_credential),
        cmocka_unit_test(test_unambiguous_paths),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
