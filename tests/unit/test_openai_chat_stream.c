/* The stream translator (src/doors/openai/chat_stream.c), fed the simulator's real SSE
 * (tests/unit/fixtures/openai_sim_*.sse) and the event orders Gemini is known to send. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "base/buf.h"
#include "doors/openai/chat_stream.h"
#include "base/err.h"
#include "test_openai_common.h"

struct run {
    struct skiff_oai_stream *s;
    struct skiff_buf out;
    int feed_rc; /* the first non-zero return of a feed */
    int end_rc;
};

static void
run_start(struct run *r, int thoughts, int parallel, int usage)
{
    struct skiff_oai_answer_opts o = {.model = "gpt-4o",
                                      .created = 1700000000,
                                      .include_thoughts = thoughts,
                                      .parallel_calls = parallel};
    memset(r, 0, sizeof *r);
    r->s = skiff_oai_stream_new(&o, usage);
    assert_non_null(r->s);
    skiff_buf_init(&r->out, 1 << 20);
}

static void
feed(struct run *r, const char *ev)
{
    int rc = skiff_oai_stream_feed(r->s, ev, strlen(ev), &r->out);
    if (rc && !r->feed_rc)
        r->feed_rc = rc;
}

/* Feeds each "data: " line of an SSE file, as the engine's SSE reader would. */
static void
feed_file(struct run *r, const char *name)
{
    char path[512];
    const char *slash = strrchr(__FILE__, '/');
    snprintf(path, sizeof path, "%.*sfixtures/%s", slash ? (int)(slash - __FILE__ + 1) : 0,
             __FILE__, name);
    FILE *f = fopen(path, "r");
    if (!f)
        fail_msg("no fixture %s", path);
    char line[65536];
    int n = 0;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "data: ", 6) != 0)
            continue;
        line[strcspn(line, "\r\n")] = '\0';
        feed(r, line + 6);
        n++;
    }
    fclose(f);
    assert_true(n > 0);
}

/* The chunks written: every "data: X\n\n" as JSON (or the string "[DONE]"). */
static json_t *
chunks(struct run *r)
{
    json_t *a = json_array();
    const char *p = r->out.data ? r->out.data : "";
    while (*p) {
        if (strncmp(p, "data: ", 6) != 0)
            fail_msg("not an SSE event at: %.40s", p);
        const char *end = strstr(p, "\n\n");
        assert_non_null(end);
        const char *v = p + 6;
        size_t len = (size_t)(end - v);
        if (len == 6 && memcmp(v, "[DONE]", 6) == 0)
            json_array_append_new(a, json_string("[DONE]"));
        else {
            json_t *j = json_loadb(v, len, 0, NULL);
            if (!j)
                fail_msg("chunk is not JSON: %.*s", (int)len, v);
            json_array_append_new(a, j);
        }
        p = end + 2;
    }
    int n = 0;
    stable_ids(a, &n);
    return a;
}

static void
run_end(struct run *r)
{
    r->end_rc = skiff_oai_stream_end(r->s, &r->out);
}

static void
run_free(struct run *r)
{
    skiff_oai_stream_free(r->s);
    skiff_buf_release(&r->out);
}

#define CH(id, choices)                                                                            \
    "{\"id\": \"chatcmpl-" id "\", \"object\": \"chat.completion.chunk\", \"created\": "           \
    "1700000000, \"model\": \"gpt-4o\", \"choices\": " choices "}"
#define D(delta)                                                                                   \
    "[{\"index\": 0, \"delta\": " delta ", \"logprobs\": null, \"finish_reason\": null}]"
#define FIN(reason)                                                                                \
    "[{\"index\": 0, \"delta\": {}, \"logprobs\": null, \"finish_reason\": \"" reason "\"}]"

/* The simulator's parallel calls on Gemini 3 (one event, two calls, the first signed). */
static void
test_sim_tools_stream(void **state)
{
    (void)state;
    struct run r;
    run_start(&r, 1, 1, 1);
    feed_file(&r, "openai_sim_tools_g3.sse");
    run_end(&r);
    assert_int_equal(r.feed_rc, 0);
    assert_int_equal(r.end_rc, 0);
    json_t *c = chunks(&r);
    assert_json(
        c,
        "[" CH(
            "n_Nr01TI8SDQDemVuRP0DHn",
            D("{\"role\": \"assistant\", \"reasoning_content\": "
              "\"**Planning the reply**\\n\\nThe "
              "simulator works out a deterministic answer from the "
              "prompt.\"}")) "," CH("n_Nr01TI8SDQDemVuRP0DHn",
                                    D("{\"tool_calls\": [{\"index\": 0, "
                                      "\"id\": \"ID0\", \"type\": "
                                      "\"function\", "
                                      "\"function\": {\"name\": "
                                      "\"getWeather\", \"arguments\": "
                                      "\"{\\\"city\\\":\\\"sim-10ec\\\"}"
                                      "\"}, \"extra_content\": "
                                      "{\"google\": "
                                      "{\"thought_signature\": "
                                      "\"Eh5za2lmZnNpbRQ/"
                                      "DBq74izQOeoMGyWrcjRjY/"
                                      "WAj8E=\"}}}]}")) "," CH("n_"
                                                               "Nr01TI8S"
                                                               "DQDemVuR"
                                                               "P0DHn",
                                                               D("{\"too"
                                                                 "l_"
                                                                 "calls"
                                                                 "\": "
                                                                 "[{"
                                                                 "\"inde"
                                                                 "x\": "
                                                                 "1, "
                                                                 "\"id\""
                                                                 ": "
                                                                 "\"ID1"
                                                                 "\", "
                                                                 "\"type"
                                                                 "\": "
                                                                 "\"func"
                                                                 "tion\""
                                                                 ", "
                                                                 "\"func"
                                                                 "tion\""
                                                                 ": "
                                                                 "{\"nam"
                                                                 "e\": "
                                                                 "\"getT"
                                                                 "ime\","
                                                                 " \"arg"
                                                                 "uments"
                                                                 "\": "
                                                                 "\"{"
                                                                 "\\\"zo"
                                                                 "ne\\\""
                                                                 ":\\\"U"
                                                                 "TC\\\""
                                                                 "}\"}}]"
                                                                 "}")) "," CH("n_"
                                                                              "Nr01TI8SDQDemVuRP0DH"
                                                                              "n",
                                                                              FIN("tool_calls")) ","
                                                                                                 "{"
                                                                                                 "\"id\": \"chatcmpl-n_Nr01TI8SDQDemVuRP0DHn\", \"object\": \"chat.completion.chunk\", "
                                                                                                 "\"created\": 1700000000, \"model\": \"gpt-4o\", \"choices\": [], \"usage\": "
                                                                                                 "{"
                                                                                                 "\"prompt_tokens\": 9, \"completion_tokens\": 166, \"total_tokens\": 175, "
                                                                                                 "\"prompt_tokens_details\": {\"cached_tokens\": 0}, \"completion_tokens_details\": "
                                                                                                 "{"
                                                                                                 "\"reasoning_tokens\": 143}}}, \"[DONE]\"]",
        "sim tools stream");
    json_decref(c);
    run_free(&r);
}

/* The simulator's text stream with thoughts: reasoning first, then each part's text, the
 * texts joined give Gemini's, one finish chunk, no usage chunk without include_usage. */
static void
test_sim_text_stream(void **state)
{
    (void)state;
    struct run r;
    run_start(&r, 1, 1, 0);
    feed_file(&r, "openai_sim_text_thoughts.sse");
    run_end(&r);
    assert_int_equal(r.end_rc, 0);
    json_t *c = chunks(&r);
    size_t n = json_array_size(c);
    assert_true(n >= 4);
    json_t *first = json_object_get(
        json_array_get(json_object_get(json_array_get(c, 0), "choices"), 0), "delta");
    assert_string_equal(json_string_value(json_object_get(first, "role")), "assistant");
    assert_non_null(json_object_get(first, "reasoning_content"));
    char text[4096] = "";
    int finishes = 0;
    for (size_t i = 1; i + 1 < n; i++) {
        json_t *ch = json_array_get(json_object_get(json_array_get(c, i), "choices"), 0);
        json_t *d = json_object_get(ch, "delta");
        assert_null(json_object_get(d, "role"));
        if (json_is_string(json_object_get(ch, "finish_reason"))) {
            assert_string_equal(json_string_value(json_object_get(ch, "finish_reason")), "stop");
            finishes++;
        } else {
            strncat(text, json_string_value(json_object_get(d, "content")),
                    sizeof text - strlen(text) - 1);
        }
    }
    assert_int_equal(finishes, 1);
    assert_true(
        strncmp(text, "Simulated answer to \"Write three sentences about the sea.\".", 58) == 0);
    assert_string_equal(&text[strlen(text) - 14], " the our this.");
    assert_string_equal(json_string_value(json_array_get(c, n - 1)), "[DONE]");
    json_decref(c);
    run_free(&r);
}

/* Gemini sends parallel calls one per chunk and STOP on a later chunk: the index runs 0, 1
 * (not 0, 0) and STOP does not overwrite tool_calls. */
static void
test_calls_one_per_chunk_then_stop(void **state)
{
    (void)state;
    struct run r;
    run_start(&r, 0, 1, 0);
    feed(&r, "{\"candidates\": [{\"content\": {\"parts\": [{\"functionCall\": {\"name\": \"a\", "
             "\"args\": {\"x\": 1}}, \"thoughtSignature\": \"S\"}], \"role\": \"model\"}, "
             "\"index\": 0}], \"responseId\": \"R\"}");
    feed(&r, "{\"candidates\": [{\"content\": {\"parts\": [{\"functionCall\": {\"name\": \"b\", "
             "\"args\": {}}}], \"role\": \"model\"}, \"index\": 0}], \"responseId\": \"R\"}");
    feed(&r, "{\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"\"}], \"role\": "
             "\"model\"}, \"finishReason\": \"STOP\", \"index\": 0}], \"usageMetadata\": "
             "{\"promptTokenCount\": 3}, \"responseId\": \"R\"}");
    run_end(&r);
    json_t *c = chunks(&r);
    assert_json(
        c,
        "[" CH(
            "R",
            D("{\"role\": \"assistant\", \"tool_calls\": [{\"index\": 0, \"id\": "
              "\"ID0\", \"type\": \"function\", \"function\": {\"name\": \"a\", "
              "\"arguments\": \"{\\\"x\\\":1}\"}, \"extra_content\": {\"google\": "
              "{\"thought_signature\": \"S\"}}}]}")) "," CH("R",
                                                            D("{\"tool_calls\": [{\"index\": 1, "
                                                              "\"id\": \"ID1\", \"type\": "
                                                              "\"function\", \"function\": "
                                                              "{\"name\": \"b\", \"arguments\": "
                                                              "\"{}\"}}]}")) "," CH("R",
                                                                                    FIN("tool_"
                                                                                        "calls")) ", \"[DONE]\"]",
        "calls then stop");
    json_decref(c);
    run_free(&r);
}

/* parallel_tool_calls false: only the first call goes out; still tool_calls. */
static void
test_parallel_false(void **state)
{
    (void)state;
    struct run r;
    run_start(&r, 0, 0, 0);
    feed_file(&r, "openai_sim_tools_g3.sse");
    run_end(&r);
    json_t *c = chunks(&r);
    assert_int_equal(json_array_size(c), 3); /* one call, the finish, [DONE] */
    json_t *fin = json_array_get(json_object_get(json_array_get(c, 1), "choices"), 0);
    assert_string_equal(json_string_value(json_object_get(fin, "finish_reason")), "tool_calls");
    json_decref(c);
    run_free(&r);
}

/* The first finishReason holds: MAX_TOKENS then a stray STOP stays "length". */
static void
test_first_finish_holds(void **state)
{
    (void)state;
    struct run r;
    run_start(&r, 0, 1, 0);
    feed(&r, "{\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"Hi\"}]}, \"finishReason\": "
             "\"MAX_TOKENS\", \"index\": 0}], \"responseId\": \"R\"}");
    feed(&r, "{\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"\"}]}, \"finishReason\": "
             "\"STOP\", \"index\": 0}], \"responseId\": \"R\"}");
    run_end(&r);
    json_t *c = chunks(&r);
    assert_json(c,
                "[" CH("R", D("{\"role\": \"assistant\", \"content\": \"Hi\"}")) "," CH(
                    "R", FIN("length")) ", \"[DONE]\"]",
                "length holds");
    json_decref(c);
    run_free(&r);
}

/* A Google error event after the start: an error chunk in OpenAI's shape, no [DONE]. */
static void
test_error_event_after_start(void **state)
{
    (void)state;
    struct run r;
    run_start(&r, 0, 1, 1);
    feed(&r, "{\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"Hi\"}]}, \"index\": 0}], "
             "\"responseId\": \"R\"}");
    assert_true(skiff_oai_stream_started(r.s));
    feed(&r, "{\"error\": {\"code\": 503, \"message\": \"The model is overloaded.\", "
             "\"status\": \"UNAVAILABLE\"}}");
    assert_int_equal(r.feed_rc, SKIFF_EINVAL);
    run_end(&r);
    assert_int_equal(r.end_rc, SKIFF_EINVAL);
    json_t *c = chunks(&r);
    assert_json(
        c,
        "[" CH("R",
               D("{\"role\": \"assistant\", \"content\": \"Hi\"}")) ","
                                                                    "{\"error\": {\"message\": "
                                                                    "\"The model is overloaded.\", "
                                                                    "\"type\": \"api_error\", "
                                                                    "\"param\": null, \"code\": "
                                                                    "\"unavailable\"}}]",
        "error after start");
    json_decref(c);
    run_free(&r);
}

/* A stream that ends without any finishReason was cut: an error, never a clean finish. */
static void
test_cut_stream(void **state)
{
    (void)state;
    struct run r;
    run_start(&r, 0, 1, 0);
    feed(&r, "{\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"Hi\"}]}, \"index\": 0}], "
             "\"responseId\": \"R\"}");
    run_end(&r);
    assert_int_equal(r.end_rc, SKIFF_EINVAL);
    json_t *c = chunks(&r);
    assert_int_equal(json_array_size(c), 2);
    json_t *err = json_object_get(json_array_get(c, 1), "error");
    assert_string_equal(json_string_value(json_object_get(err, "code")), "incomplete_stream");
    json_decref(c);
    run_free(&r);
}

static void
test_engine_failure(void **state)
{
    (void)state;
    struct run r;
    run_start(&r, 0, 1, 0);
    feed(&r, "{\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"Hi\"}]}, \"index\": 0}], "
             "\"responseId\": \"R\"}");
    struct skiff_oai_error e;
    skiff_oai_error_set(&e, 504, NULL, "timeout", "The Gemini API did not answer in time.");
    assert_int_equal(skiff_oai_stream_fail(r.s, &e, &r.out), 0);
    run_end(&r);
    assert_int_equal(r.end_rc, SKIFF_EINVAL);
    json_t *c = chunks(&r);
    assert_int_equal(json_array_size(c), 2); /* the text, the error; no [DONE] */
    assert_json(json_array_get(c, 1),
                "{\"error\": {\"message\": \"The Gemini API did not answer in time.\", "
                "\"type\": \"api_error\", \"param\": null, \"code\": \"timeout\"}}",
                "engine failure");
    json_decref(c);
    run_free(&r);
}

static void
test_blocked_prompt_stream(void **state)
{
    (void)state;
    struct run r;
    run_start(&r, 0, 1, 0);
    feed(&r, "{\"promptFeedback\": {\"blockReason\": \"SAFETY\"}, \"responseId\": \"R\"}");
    run_end(&r);
    assert_int_equal(r.end_rc, 0);
    json_t *c = chunks(&r);
    assert_json(
        c,
        "[" CH("R",
               D("{\"role\": \"assistant\", \"content\": null, \"refusal\": \"The "
                 "prompt was blocked by the Gemini API (SAFETY).\"}")) "," CH("R",
                                                                              FIN("content_"
                                                                                  "filter")) ", "
                                                                                             "\"["
                                                                                             "DON"
                                                                                             "E]"
                                                                                             "\""
                                                                                             "]",
        "blocked");
    json_decref(c);
    run_free(&r);
}

/* Thoughts not asked: no reasoning chunk; the role rides on the first content chunk. */
static void
test_thoughts_not_asked(void **state)
{
    (void)state;
    struct run r;
    run_start(&r, 0, 1, 0);
    feed(&r, "{\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"t\", \"thought\": true}, "
             "{\"text\": \"A\"}]}, \"finishReason\": \"STOP\", \"index\": 0}], \"responseId\": "
             "\"R\"}");
    run_end(&r);
    json_t *c = chunks(&r);
    assert_json(c,
                "[" CH("R", D("{\"role\": \"assistant\", \"content\": \"A\"}")) "," CH(
                    "R", FIN("stop")) ", \"[DONE]\"]",
                "no thoughts");
    json_decref(c);
    run_free(&r);
}

/* An event's logprobsResult rides on its first content delta. */
static void
test_logprobs(void **state)
{
    (void)state;
    struct run r;
    run_start(&r, 0, 1, 0);
    feed(&r, "{\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"Hi\"}]}, \"index\": 0, "
             "\"logprobsResult\": {\"chosenCandidates\": [{\"token\": \"Hi\", "
             "\"logProbability\": -0.5}], \"topCandidates\": []}, \"finishReason\": \"STOP\"}], "
             "\"responseId\": \"R\"}");
    run_end(&r);
    json_t *c = chunks(&r);
    assert_json(json_object_get(json_array_get(json_object_get(json_array_get(c, 0), "choices"), 0),
                                "logprobs"),
                "{\"content\": [{\"token\": \"Hi\", \"logprob\": -0.5, \"bytes\": [72, 105], "
                "\"top_logprobs\": []}], \"refusal\": null}",
                "stream logprobs");
    json_decref(c);
    run_free(&r);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sim_tools_stream),
        cmocka_unit_test(test_sim_text_stream),
        cmocka_unit_test(test_calls_one_per_chunk_then_stop),
        cmocka_unit_test(test_parallel_false),
        cmocka_unit_test(test_first_finish_holds),
        cmocka_unit_test(test_error_event_after_start),
        cmocka_unit_test(test_cut_stream),
        cmocka_unit_test(test_engine_failure),
        cmocka_unit_test(test_blocked_prompt_stream),
        cmocka_unit_test(test_thoughts_not_asked),
        cmocka_unit_test(test_logprobs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
