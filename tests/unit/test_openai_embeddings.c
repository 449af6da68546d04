/* OpenAI embeddings ↔ Gemini (src/doors/openai/embeddings.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "doors/openai/embeddings.h"
#include "base/err.h"
#include "test_openai_common.h"

static int
translate(const char *req_s, struct skiff_oai_embed *e, struct skiff_oai_error *err)
{
    json_t *req = parse(req_s);
    int rc = skiff_oai_embeddings_request(req, "gemini-embedding-001", e, err);
    json_decref(req);
    return rc;
}

static void
test_single(void **state)
{
    (void)state;
    struct skiff_oai_embed e;
    struct skiff_oai_error err;
    assert_int_equal(translate("{\"model\": \"text-embedding-3-small\", \"input\": \"hello\", "
                               "\"dimensions\": 768, \"user\": \"u\"}",
                               &e, &err),
                     0);
    assert_int_equal(e.batch, 0);
    assert_json(
        e.body,
        "{\"content\": {\"parts\": [{\"text\": \"hello\"}]}, \"outputDimensionality\": 768}",
        "embedContent");
    json_t *resp = parse("{\"embedding\": {\"values\": [0.5, -1.0]}}");
    json_t *out = skiff_oai_embeddings_response(resp, &e, &err);
    assert_json(out,
                "{\"object\": \"list\", \"data\": [{\"object\": \"embedding\", \"index\": 0, "
                "\"embedding\": [0.5, -1.0]}], \"model\": \"text-embedding-3-small\", \"usage\": "
                "{\"prompt_tokens\": 0, \"total_tokens\": 0}}",
                "single answer");
    json_decref(out);
    json_decref(resp);
    skiff_oai_embed_release(&e);
}

/* An array goes to batchEmbedContents; base64 is little-endian float32, as OpenAI sends. */
static void
test_batch_base64(void **state)
{
    (void)state;
    struct skiff_oai_embed e;
    struct skiff_oai_error err;
    assert_int_equal(translate("{\"model\": \"m\", \"input\": [\"a\", \"b\"], "
                               "\"encoding_format\": \"base64\"}",
                               &e, &err),
                     0);
    assert_int_equal(e.batch, 1);
    assert_json(e.body,
                "{\"requests\": [{\"model\": \"models/gemini-embedding-001\", \"content\": "
                "{\"parts\": [{\"text\": \"a\"}]}}, {\"model\": \"models/gemini-embedding-001\", "
                "\"content\": {\"parts\": [{\"text\": \"b\"}]}}]}",
                "batch");
    /* 1.0f = 00 00 80 3f → "AACAPw=="; [1.0, -2.0] = 00 00 80 3f 00 00 00 c0 → "AACAPwAAAMA=" */
    json_t *resp = parse("{\"embeddings\": [{\"values\": [1.0]}, {\"values\": [1.0, -2.0]}]}");
    json_t *out = skiff_oai_embeddings_response(resp, &e, &err);
    assert_json(json_object_get(out, "data"),
                "[{\"object\": \"embedding\", \"index\": 0, \"embedding\": \"AACAPw==\"}, "
                "{\"object\": \"embedding\", \"index\": 1, \"embedding\": \"AACAPwAAAMA=\"}]",
                "base64");
    json_decref(out);
    json_decref(resp);
    /* Fewer embeddings than inputs is the upstream's fault: a 502. */
    resp = parse("{\"embeddings\": [{\"values\": [1.0]}]}");
    assert_null(skiff_oai_embeddings_response(resp, &e, &err));
    assert_int_equal(err.status, 502);
    json_decref(resp);
    skiff_oai_embed_release(&e);
}

static void
test_refusals(void **state)
{
    (void)state;
    static const struct {
        const char *req, *param;
    } t[] = {
        {"{\"model\": \"m\", \"input\": [1, 2, 3]}", "input"},
        {"{\"model\": \"m\", \"input\": []}", "input"},
        {"{\"model\": \"m\", \"input\": \"x\", \"dimensions\": 0}", "dimensions"},
        {"{\"model\": \"m\", \"input\": \"x\", \"encoding_format\": \"int8\"}", "encoding_format"},
        {"{\"input\": \"x\"}", "model"},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        struct skiff_oai_embed e;
        struct skiff_oai_error err;
        assert_int_equal(translate(t[i].req, &e, &err), SKIFF_EINVAL);
        assert_int_equal(err.status, 400);
        assert_string_equal(err.param, t[i].param);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_single),
        cmocka_unit_test(test_batch_base64),
        cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
