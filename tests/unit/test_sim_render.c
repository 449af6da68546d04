#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "sim/render.h"

static void
test_sse_framing_byte_exact(void **state)
{
    (void)state;
    json_t *j = json_loads("{\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"Hello\"}],"
                           "\"role\": \"model\"},\"index\": 0}],\"modelVersion\": \"m\"}",
                           0, NULL);
    size_t len;
    char *s = skiff_sim_render_sse(j, &len);
    const char *want = "data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"Hello\"}],"
                       "\"role\": \"model\"},\"index\": 0}],\"modelVersion\": \"m\"}\r\n\r\n";
    assert_int_equal(len, strlen(want));
    assert_memory_equal(s, want, len);
    free(s);
    json_decref(j);
}

static void
test_compact_escapes_and_numbers(void **state)
{
    (void)state;
    json_t *j = json_pack("{s:s,s:f,s:[i,b,n]}", "t", "a\"b\nc", "p", 0.95, "a", 3, 1);
    char *s = skiff_sim_render_compact(j, NULL);
    assert_string_equal(s, "{\"t\": \"a\\\"b\\nc\",\"p\": 0.95,\"a\": [3,true,null]}");
    free(s);
    json_decref(j);
}

static void
test_array_framing(void **state)
{
    (void)state;
    json_t *a = json_pack("{s:i}", "x", 1), *b = json_pack("{s:i}", "y", 2);
    char *e1 = skiff_sim_render_array_elem(a, 1, NULL);
    char *e2 = skiff_sim_render_array_elem(b, 0, NULL);
    char body[256];
    snprintf(body, sizeof body, "%s%s%s", e1, e2, SKIFF_SIM_ARRAY_END);
    assert_string_equal(body, "[{\n  \"x\": 1\n}\n,\r\n{\n  \"y\": 2\n}\n]");
    free(e1);
    free(e2);
    json_decref(a);
    json_decref(b);
}

static void
test_usage_omits_zero_and_sums(void **state)
{
    (void)state;
    json_t *u = skiff_sim_render_usage(5, 0, 114);
    char *s = skiff_sim_render_compact(u, NULL);
    /* candidatesTokenCount is absent when 0; total = prompt + candidates + thoughts. */
    assert_string_equal(s, "{\"promptTokenCount\": 5,\"totalTokenCount\": 119,"
                           "\"promptTokensDetails\": [{\"modality\": \"TEXT\",\"tokenCount\": 5}],"
                           "\"thoughtsTokenCount\": 114}");
    free(s);
    json_decref(u);
    u = skiff_sim_render_usage(3, 2, 0);
    s = skiff_sim_render_compact(u, NULL);
    assert_null(strstr(s, "thoughtsTokenCount"));
    assert_non_null(strstr(s, "\"totalTokenCount\": 5"));
    free(s);
    json_decref(u);
}

static json_t *
request(const char *text)
{
    return json_pack("[{s:s,s:[{s:s}]}]", "role", "user", "parts", "text", text);
}

static void
make(struct skiff_sim_answer *a, const char *text, long max_out, long budget, uint64_t id)
{
    json_t *c = request(text);
    struct skiff_sim_prompt p;
    skiff_sim_prompt_read(c, NULL, &p);
    struct skiff_sim_answer_opts o = {.prompt = &p,
                                      .max_output_tokens = max_out,
                                      .thinking_budget = budget,
                                      .model_version = "gemini-2.5-flash",
                                      .id_seed = id};
    assert_int_equal(skiff_sim_answer_make(a, &o), 0);
    json_decref(c);
}

static void
test_answer_deterministic(void **state)
{
    (void)state;
    struct skiff_sim_answer a, b, c;
    make(&a, "Why is the sky blue?", 65536, -1, 1);
    make(&b, "Why is the sky blue?", 65536, -1, 2);
    make(&c, "Why is the sea blue?", 65536, -1, 1);
    assert_string_equal(a.text, b.text);
    assert_string_not_equal(a.text, c.text);
    assert_non_null(strstr(a.text, "Why is the sky blue?"));
    assert_int_equal(a.prompt_tokens, 5); /* 20 bytes */
    assert_int_equal(a.thoughts_tokens, b.thoughts_tokens);
    assert_true(a.thoughts_tokens > 0);
    assert_int_equal(strlen(a.response_id), 23);
    assert_string_not_equal(a.response_id, b.response_id);
    assert_string_equal(a.finish_reason, "STOP");
    skiff_sim_answer_release(&a);
    skiff_sim_answer_release(&b);
    skiff_sim_answer_release(&c);
}

static void
test_stream_chunks(void **state)
{
    (void)state;
    struct skiff_sim_answer a;
    make(&a, "Tell me a long story about relays and quotas", 65536, 0, 9);
    assert_true(a.nchunks >= 2);
    assert_int_equal(a.thoughts_tokens, 0);
    assert_int_equal(a.cuts[0], 0);
    assert_int_equal(a.cuts[a.nchunks], a.len);
    for (size_t i = 0; i < a.nchunks; i++) {
        json_t *r = skiff_sim_render_response(&a, i);
        json_t *cand = json_array_get(json_object_get(r, "candidates"), 0);
        /* finishReason only on the last chunk; the id and version on every one. */
        assert_int_equal(json_object_get(cand, "finishReason") != NULL, i + 1 == a.nchunks);
        assert_string_equal(json_string_value(json_object_get(r, "responseId")), a.response_id);
        json_t *u = json_object_get(r, "usageMetadata");
        long cands = (long)json_integer_value(json_object_get(u, "candidatesTokenCount"));
        assert_int_equal(cands, skiff_sim_text_tokens(a.cuts[i + 1]));
        assert_int_equal(json_integer_value(json_object_get(u, "totalTokenCount")),
                         a.prompt_tokens + cands);
        assert_null(json_object_get(u, "thoughtsTokenCount"));
        json_decref(r);
    }
    /* The chunks are deltas that add up to the whole text. */
    json_t *whole = skiff_sim_render_response(&a, SIZE_MAX);
    json_t *part = json_array_get(
        json_object_get(
            json_object_get(json_array_get(json_object_get(whole, "candidates"), 0), "content"),
            "parts"),
        0);
    assert_string_equal(json_string_value(json_object_get(part, "text")), a.text);
    json_decref(whole);
    skiff_sim_answer_release(&a);
}

static void
test_max_tokens(void **state)
{
    (void)state;
    struct skiff_sim_answer a;
    /* Thinking takes the output budget first: nothing is left for text. */
    make(&a, "Hello there", 10, -1, 3);
    assert_string_equal(a.finish_reason, "MAX_TOKENS");
    assert_int_equal(a.len, 0);
    assert_int_equal(a.thoughts_tokens, 10);
    json_t *r = skiff_sim_render_response(&a, SIZE_MAX);
    char *s = skiff_sim_render_compact(r, NULL);
    assert_non_null(strstr(s, "\"parts\": [{\"text\": \"\"}]"));
    assert_null(strstr(s, "candidatesTokenCount"));
    free(s);
    json_decref(r);
    skiff_sim_answer_release(&a);

    make(&a, "Hello there", 8, 0, 3);
    assert_string_equal(a.finish_reason, "MAX_TOKENS");
    assert_true(skiff_sim_text_tokens(a.len) <= 8);
    skiff_sim_answer_release(&a);
}

static void
test_pretty_body(void **state)
{
    (void)state;
    struct skiff_sim_answer a;
    make(&a, "Hi", 65536, 0, 3);
    json_t *r = skiff_sim_render_response(&a, SIZE_MAX);
    size_t len;
    char *s = skiff_sim_render_pretty(r, &len);
    assert_memory_equal(s, "{\n  \"candidates\": [\n    {\n      \"content\": {\n", 44);
    assert_string_equal(s + len - 2, "}\n");
    free(s);
    json_decref(r);
    skiff_sim_answer_release(&a);
}

static void
test_prompt_snippet_utf8(void **state)
{
    (void)state;
    /* 46 ASCII bytes then a 2-byte character straddling the cut: it is dropped whole. */
    json_t *c = request("0123456789012345678901234567890123456789012345\xc3\xa9tail");
    struct skiff_sim_prompt p;
    skiff_sim_prompt_read(c, NULL, &p);
    assert_int_equal(strlen(p.snippet), 46);
    json_decref(c);
}

static void
test_embedding(void **state)
{
    (void)state;
    json_t *a = skiff_sim_render_embedding("hello", 5, NULL, 768);
    json_t *b = skiff_sim_render_embedding("hello", 5, NULL, 768);
    json_t *va = json_object_get(a, "values");
    assert_int_equal(json_array_size(va), 768);
    assert_true(json_equal(a, b));
    double norm = 0;
    for (size_t i = 0; i < 768; i++) {
        double v = json_real_value(json_array_get(va, i));
        norm += v * v;
    }
    assert_true(norm > 0.999 && norm < 1.001);
    json_decref(a);
    json_decref(b);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sse_framing_byte_exact),
        cmocka_unit_test(test_compact_escapes_and_numbers),
        cmocka_unit_test(test_array_framing),
        cmocka_unit_test(test_usage_omits_zero_and_sums),
        cmocka_unit_test(test_answer_deterministic),
        cmocka_unit_test(test_stream_chunks),
        cmocka_unit_test(test_max_tokens),
        cmocka_unit_test(test_pretty_body),
        cmocka_unit_test(test_prompt_snippet_utf8),
        cmocka_unit_test(test_embedding),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
