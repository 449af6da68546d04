/* Gemini answer → OpenAI chat.completion (src/doors/openai/chat_response.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "doors/openai/chat_response.h"
#include "test_openai_common.h"

struct store {
    int n;
    char id[4][40];
    char sig[4][64];
};

static void
store_cb(void *ud, const char *id, const char *sig)
{
    struct store *s = ud;
    if (s->n < 4) {
        snprintf(s->id[s->n], sizeof s->id[0], "%s", id);
        snprintf(s->sig[s->n], sizeof s->sig[0], "%s", sig);
        s->n++;
    }
}

static json_t *
answer(const char *resp_s, int thoughts, int parallel, struct store *st)
{
    struct skiff_oai_answer_opts o = {.model = "gpt-4o",
                                      .created = 1700000000,
                                      .include_thoughts = thoughts,
                                      .parallel_calls = parallel,
                                      .store = st ? store_cb : NULL,
                                      .ud = st};
    json_t *resp = parse(resp_s);
    json_t *out = skiff_oai_chat_response(resp, &o);
    json_decref(resp);
    assert_non_null(out);
    int n = 0;
    stable_ids(out, &n);
    return out;
}

#define ENV(choices, usage)                                                                        \
    "{\"id\": \"chatcmpl-R1\", \"object\": \"chat.completion\", \"created\": 1700000000, "         \
    "\"model\": \"gpt-4o\", \"choices\": " choices usage "}"

struct fr_case {
    const char *gemini;
    int called;
    const char *want;
};

static void
test_finish_reasons(void **state)
{
    (void)state;
    static const struct fr_case cases[] = {
        {"STOP", 0, "stop"},
        {"STOP", 1, "tool_calls"},
        {"MAX_TOKENS", 0, "length"},
        {"SAFETY", 0, "content_filter"},
        {"RECITATION", 0, "content_filter"},
        {"BLOCKLIST", 0, "content_filter"},
        {"PROHIBITED_CONTENT", 0, "content_filter"},
        {"SPII", 0, "content_filter"},
        {"IMAGE_SAFETY", 0, "content_filter"},
        {"OTHER", 0, "stop"},
        {"MALFORMED_FUNCTION_CALL", 0, "stop"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        assert_string_equal(skiff_oai_finish_reason(cases[i].gemini, cases[i].called),
                            cases[i].want);
    assert_null(skiff_oai_finish_reason(NULL, 1));
}

static void
test_text_and_usage(void **state)
{
    (void)state;
    json_t *out = answer(
        "{\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"Hel\"}, {\"text\": \"lo\"}], "
        "\"role\": \"model\"}, \"finishReason\": \"STOP\", \"index\": 0}], \"usageMetadata\": "
        "{\"promptTokenCount\": 10, \"toolUsePromptTokenCount\": 2, \"cachedContentTokenCount\": "
        "4, \"candidatesTokenCount\": 3, \"thoughtsTokenCount\": 7, \"totalTokenCount\": 22}, "
        "\"responseId\": \"R1\", \"modelVersion\": \"gemini-2.5-flash\"}",
        0, 1, NULL);
    assert_json(out,
                ENV("[{\"index\": 0, \"message\": {\"role\": \"assistant\", \"content\": "
                    "\"Hello\"}, \"logprobs\": null, \"finish_reason\": \"stop\"}]",
                    ", \"usage\": {\"prompt_tokens\": 12, \"completion_tokens\": 10, "
                    "\"total_tokens\": 22, \"prompt_tokens_details\": {\"cached_tokens\": 4}, "
                    "\"completion_tokens_details\": {\"reasoning_tokens\": 7}}"),
                "text and usage");
    json_decref(out);
}

static const char *const thought_resp =
    "{\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"think\", \"thought\": true}, "
    "{\"text\": \"answer\"}], \"role\": \"model\"}, \"finishReason\": \"MAX_TOKENS\", "
    "\"index\": 0}], \"responseId\": \"R1\"}";

static void
test_thoughts_only_when_asked(void **state)
{
    (void)state;
    json_t *out = answer(thought_resp, 1, 1, NULL);
    assert_json(out,
                ENV("[{\"index\": 0, \"message\": {\"role\": \"assistant\", \"content\": "
                    "\"answer\", \"reasoning_content\": \"think\"}, \"logprobs\": null, "
                    "\"finish_reason\": \"length\"}]",
                    ""),
                "thoughts asked");
    json_decref(out);
    out = answer(thought_resp, 0, 1, NULL);
    assert_json(out,
                ENV("[{\"index\": 0, \"message\": {\"role\": \"assistant\", \"content\": "
                    "\"answer\"}, \"logprobs\": null, \"finish_reason\": \"length\"}]",
                    ""),
                "thoughts not asked");
    json_decref(out);
}

/* The simulator's own answer (tests/unit/fixtures/openai_sim_tools_g3.sse, as JSON): two
 * parallel calls, the first signed; STOP becomes tool_calls. */
static const char *const sim_calls =
    "{\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"**Planning the reply**\", "
    "\"thought\": true},{\"functionCall\": {\"name\": \"getWeather\",\"args\": {\"city\": "
    "\"sim-10ec\"}},\"thoughtSignature\": \"Eh5za2lmZnNpbRQ/DBq74izQOeoMGyWrcjRjY/WAj8E=\"},"
    "{\"functionCall\": {\"name\": \"getTime\",\"args\": {\"zone\": \"UTC\"}}}],\"role\": "
    "\"model\"},\"finishReason\": \"STOP\",\"finishMessage\": \"Model generated function "
    "call(s).\",\"index\": 0}],\"usageMetadata\": {\"promptTokenCount\": 9,"
    "\"candidatesTokenCount\": 23,\"totalTokenCount\": 175,\"thoughtsTokenCount\": 143},"
    "\"modelVersion\": \"gemini-3-flash-preview\",\"responseId\": \"R1\"}";

static void
test_tool_calls_and_signature(void **state)
{
    (void)state;
    struct store st = {0};
    json_t *out = answer(sim_calls, 0, 1, &st);
    assert_json(
        out,
        ENV("[{\"index\": 0, \"message\": {\"role\": \"assistant\", \"content\": null, "
            "\"tool_calls\": [{\"id\": \"ID0\", \"type\": \"function\", \"function\": {\"name\": "
            "\"getWeather\", \"arguments\": \"{\\\"city\\\":\\\"sim-10ec\\\"}\"}, "
            "\"extra_content\": {\"google\": {\"thought_signature\": "
            "\"Eh5za2lmZnNpbRQ/DBq74izQOeoMGyWrcjRjY/WAj8E=\"}}}, {\"id\": \"ID1\", \"type\": "
            "\"function\", \"function\": {\"name\": \"getTime\", \"arguments\": "
            "\"{\\\"zone\\\":\\\"UTC\\\"}\"}}]}, \"logprobs\": null, \"finish_reason\": "
            "\"tool_calls\"}]",
            ", \"usage\": {\"prompt_tokens\": 9, \"completion_tokens\": 166, \"total_tokens\": "
            "175, \"prompt_tokens_details\": {\"cached_tokens\": 0}, "
            "\"completion_tokens_details\": {\"reasoning_tokens\": 143}}"),
        "calls");
    json_decref(out);
    /* The cache got the signed call's id, which is not the signature. */
    assert_int_equal(st.n, 1);
    assert_true(is_call_id(st.id[0]));
    assert_string_equal(st.sig[0], "Eh5za2lmZnNpbRQ/DBq74izQOeoMGyWrcjRjY/WAj8E=");
}

static void
test_parallel_false_keeps_first_call(void **state)
{
    (void)state;
    json_t *out = answer(sim_calls, 0, 0, NULL);
    json_t *calls = json_object_get(
        json_object_get(json_array_get(json_object_get(out, "choices"), 0), "message"),
        "tool_calls");
    assert_int_equal(json_array_size(calls), 1);
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(json_array_get(calls, 0), "function"), "name")),
                        "getWeather");
    json_decref(out);
}

static void
test_blocked_prompt(void **state)
{
    (void)state;
    json_t *out = answer("{\"promptFeedback\": {\"blockReason\": \"PROHIBITED_CONTENT\"}, "
                         "\"usageMetadata\": {\"promptTokenCount\": 5, \"totalTokenCount\": 5}, "
                         "\"responseId\": \"R1\"}",
                         0, 1, NULL);
    assert_json(out,
                ENV("[{\"index\": 0, \"message\": {\"role\": \"assistant\", \"content\": null, "
                    "\"refusal\": \"The prompt was blocked by the Gemini API "
                    "(PROHIBITED_CONTENT).\"}, \"logprobs\": null, \"finish_reason\": "
                    "\"content_filter\"}]",
                    ", \"usage\": {\"prompt_tokens\": 5, \"completion_tokens\": 0, "
                    "\"total_tokens\": 5, \"prompt_tokens_details\": {\"cached_tokens\": 0}, "
                    "\"completion_tokens_details\": {\"reasoning_tokens\": 0}}"),
                "blocked");
    json_decref(out);
}

static void
test_candidates_are_choices(void **state)
{
    (void)state;
    json_t *out = answer("{\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"a\"}]}, "
                         "\"finishReason\": \"STOP\", \"index\": 0}, {\"content\": {\"parts\": "
                         "[{\"text\": \"b\"}]}, \"finishReason\": \"SAFETY\", \"index\": 1}], "
                         "\"responseId\": \"R1\"}",
                         0, 1, NULL);
    assert_json(out,
                ENV("[{\"index\": 0, \"message\": {\"role\": \"assistant\", \"content\": \"a\"}, "
                    "\"logprobs\": null, \"finish_reason\": \"stop\"}, {\"index\": 1, "
                    "\"message\": {\"role\": \"assistant\", \"content\": \"b\"}, \"logprobs\": "
                    "null, \"finish_reason\": \"content_filter\"}]",
                    ""),
                "n=2");
    json_decref(out);
}

/* logprobs: true asks Gemini for responseLogprobs; its logprobsResult comes back in
 * OpenAI's shape. */
static void
test_logprobs(void **state)
{
    (void)state;
    json_t *out = answer(
        "{\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"Hi!\"}]}, \"finishReason\": "
        "\"STOP\", \"index\": 0, \"logprobsResult\": {\"chosenCandidates\": [{\"token\": "
        "\"Hi\", \"logProbability\": -0.5}, {\"token\": \"!\", \"logProbability\": -0.25}], "
        "\"topCandidates\": [{\"candidates\": [{\"token\": \"Hi\", \"logProbability\": -0.5}, "
        "{\"token\": \"Yo\", \"logProbability\": -1.0}]}]}}], \"responseId\": \"R1\"}",
        0, 1, NULL);
    assert_json(
        json_object_get(json_array_get(json_object_get(out, "choices"), 0), "logprobs"),
        "{\"content\": [{\"token\": \"Hi\", \"logprob\": -0.5, \"bytes\": [72, 105], "
        "\"top_logprobs\": [{\"token\": \"Hi\", \"logprob\": -0.5, \"bytes\": [72, 105]}, "
        "{\"token\": \"Yo\", \"logprob\": -1.0, \"bytes\": [89, 111]}]}, {\"token\": \"!\", "
        "\"logprob\": -0.25, \"bytes\": [33], \"top_logprobs\": []}], \"refusal\": null}",
        "logprobs");
    json_decref(out);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_finish_reasons),
        cmocka_unit_test(test_text_and_usage),
        cmocka_unit_test(test_thoughts_only_when_asked),
        cmocka_unit_test(test_tool_calls_and_signature),
        cmocka_unit_test(test_parallel_false_keeps_first_call),
        cmocka_unit_test(test_blocked_prompt),
        cmocka_unit_test(test_candidates_are_choices),
        cmocka_unit_test(test_logprobs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
