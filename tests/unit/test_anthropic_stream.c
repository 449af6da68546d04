/*
 * The Messages stream translator (src/doors/anthropic/messages_stream.c) fed Gemini SSE
 * events: streams `skiff sim` sent (tests/unit/fixtures/anthropic/ (the .sse files), captured with
 * `skiff sim --listen 127.0.0.1:0` and curl), and hand-made events for the failure modes
 * other relays have (streamed tool_use with empty input, dropped signatures, visible text
 * in thinking blocks, undefined stop reasons, a clean end after a failure). Every case
 * asserts the exact bytes a client reads.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "doors/anthropic/messages_stream.h"
#include "base/err.h"

#define EV(type, data) "event: " type "\ndata: " data "\n\n"
#define USAGE(in, out)                                                                             \
    "{\"input_tokens\":" #in ",\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":0,"   \
    "\"output_tokens\":" #out "}"
#define START(in, out)                                                                             \
    EV("message_start",                                                                            \
       "{\"type\":\"message_start\",\"message\":{\"id\":\"msg_s\",\"type\":\"message\","           \
       "\"role\":\"assistant\",\"model\":\"claude-sonnet-4-5\",\"content\":[],"                    \
       "\"stop_reason\":null,\"stop_sequence\":null,\"usage\":" USAGE(in, out) "}}")
#define BSTART(i, block)                                                                           \
    EV("content_block_start",                                                                      \
       "{\"type\":\"content_block_start\",\"index\":" #i ",\"content_block\":" block "}")
#define DELTA(i, d)                                                                                \
    EV("content_block_delta", "{\"type\":\"content_block_delta\",\"index\":" #i ",\"delta\":" d "}")
#define BSTOP(i) EV("content_block_stop", "{\"type\":\"content_block_stop\",\"index\":" #i "}")
#define THINKING "{\"type\":\"thinking\",\"thinking\":\"\",\"signature\":\"\"}"
#define TEXT "{\"type\":\"text\",\"text\":\"\"}"
#define END(reason, seq, in, out)                                                                  \
    EV("message_delta", "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"" reason         \
                        "\",\"stop_sequence\":" seq "},\"usage\":" USAGE(in, out) "}")             \
    EV("message_stop", "{\"type\":\"message_stop\"}")

/* The signature cache of the tests: what the translator stored, as "id=sig;" pairs. */
static char stored[1024];

static void
store(void *ud, const char *id, const char *sig)
{
    (void)ud;
    size_t n = strlen(stored);
    snprintf(stored + n, sizeof stored - n, "%s=%s;", id, sig);
}

static struct skiff_anth_reply
reply(int thinking, const char *stops_json)
{
    struct skiff_anth_reply r = {.model = "claude-sonnet-4-5",
                                 .id_seed = "s",
                                 .thinking = thinking,
                                 .store = store,
                                 .stop_sequences =
                                     stops_json ? json_loads(stops_json, 0, NULL) : NULL};
    return r;
}

/* Feeds events (NUL-separated JSON, the list ending with an empty one) and ends the
 * stream; returns the output, malloc'd. */
static char *
run(struct skiff_anth_reply r, const char *const *events, int end)
{
    struct skiff_anth_stream s;
    struct skiff_buf out;
    skiff_anth_stream_init(&s, &r);
    skiff_buf_init(&out, 1 << 20);
    for (size_t i = 0; events[i]; i++)
        skiff_anth_stream_event(&s, events[i], strlen(events[i]), &out);
    if (end)
        assert_int_equal(skiff_anth_stream_end(&s, &out), 0);
    skiff_anth_stream_release(&s);
    json_decref((json_t *)r.stop_sequences);
    char *got = skiff_buf_take(&out);
    return got ? got : strdup("");
}

/* The events of an SSE fixture (Gemini's `data: ...\r\n\r\n`). */
static char **
fixture(const char *name)
{
    char path[512];
    const char *file = __FILE__;
    const char *slash = strrchr(file, '/');
    snprintf(path, sizeof path, "%.*s/fixtures/anthropic/%s", (int)(slash - file), file, name);
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("no fixture %s", path);
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char **ev = calloc(64, sizeof *ev);
    size_t k = 0;
    for (char *p = buf; (p = strstr(p, "data: ")) && k < 63;) {
        p += 6;
        char *e = strstr(p, "\r\n\r\n");
        if (!e)
            e = p + strlen(p);
        ev[k++] = strndup(p, (size_t)(e - p));
        p = e;
    }
    return ev;
}

static void
free_events(char **ev)
{
    for (size_t i = 0; ev[i]; i++)
        free(ev[i]);
    free(ev);
}

static void
check(const char *name, char *got, const char *want)
{
    if (strcmp(got, want) != 0)
        fail_msg("%s:\n--- got\n%s\n--- want\n%s", name, got, want);
    free(got);
}

#define SIM_SIG "Eh5za2lmZnNpbRQ/DBq74izQOeoMGyWrcjRjY/WAj8E="

/* gemini-3-flash-preview with thinking and two tools: a signed thinking block, then the
 * two parallel calls, each with its whole arguments, and tool_use. */
static void
test_sim_tools_thinking(void **state)
{
    (void)state;
    char **ev = fixture("tools_thinking.sse");
    stored[0] = '\0';
    check("tools, thinking shown", run(reply(1, NULL), (const char *const *)ev, 1),
          START(9, 112) BSTART(0, THINKING)
              DELTA(0, "{\"type\":\"thinking_delta\",\"thinking\":\"**Planning the reply**\\n\\n"
                       "The simulator works out a deterministic answer from the prompt.\"}")
                  DELTA(0, "{\"type\":\"signature_delta\",\"signature\":\"" SIM_SIG "\"}") BSTOP(0)
                      BSTART(1, "{\"type\":\"tool_use\",\"id\":\"toolu_s_1\",\"name\":"
                                "\"getWeather\",\"input\":{}}")
                          DELTA(1, "{\"type\":\"input_json_delta\",\"partial_json\":"
                                   "\"{\\\"city\\\":\\\"sim-f008\\\"}\"}") BSTOP(1)
                              BSTART(2, "{\"type\":\"tool_use\",\"id\":\"toolu_s_2\","
                                        "\"name\":\"getTime\",\"input\":{}}")
                                  DELTA(2, "{\"type\":\"input_json_delta\",\"partial_json\":"
                                           "\"{}\"}") BSTOP(2) END("tool_use", "null", 9, 112));
    assert_string_equal(stored, "toolu_s_1=" SIM_SIG ";");

    /* Thinking not asked: no thinking block, and the signature still reaches the cache. */
    stored[0] = '\0';
    check("tools, no thinking", run(reply(0, NULL), (const char *const *)ev, 1),
          START(9, 112) BSTART(0, "{\"type\":\"tool_use\",\"id\":\"toolu_s_1\",\"name\":"
                                  "\"getWeather\",\"input\":{}}")
              DELTA(0, "{\"type\":\"input_json_delta\",\"partial_json\":"
                       "\"{\\\"city\\\":\\\"sim-f008\\\"}\"}") BSTOP(0)
                  BSTART(1, "{\"type\":\"tool_use\",\"id\":\"toolu_s_2\",\"name\":"
                            "\"getTime\",\"input\":{}}")
                      DELTA(1, "{\"type\":\"input_json_delta\",\"partial_json\":\"{}\"}") BSTOP(1)
                          END("tool_use", "null", 9, 112));
    assert_string_equal(stored, "toolu_s_1=" SIM_SIG ";");

    /* disable_parallel_tool_use: the first call only. */
    struct skiff_anth_reply one = reply(0, NULL);
    one.single_tool_call = 1;
    check("tools, one call", run(one, (const char *const *)ev, 1),
          START(9, 112) BSTART(0, "{\"type\":\"tool_use\",\"id\":\"toolu_s_1\",\"name\":"
                                  "\"getWeather\",\"input\":{}}")
              DELTA(0, "{\"type\":\"input_json_delta\",\"partial_json\":"
                       "\"{\\\"city\\\":\\\"sim-f008\\\"}\"}") BSTOP(0)
                  END("tool_use", "null", 9, 112));
    free_events(ev);
}

#define STORY1                                                                                     \
    "Simulated answer to \\\"Tell me a short story about a boat\\\". Random error error detail"
#define STORY2 " clear. Part error simulated one answer model. Matches from faithful summary each"

/* A thinking text answer over three events: one thinking block, one text block that the
 * later events continue. */
static void
test_sim_text_thinking(void **state)
{
    (void)state;
    char **ev = fixture("text_thinking.sse");
    check("text with thoughts", run(reply(1, NULL), (const char *const *)ev, 1),
          START(9, 347) BSTART(0, THINKING)
              DELTA(0, "{\"type\":\"thinking_delta\",\"thinking\":\"**Planning the reply**\\n\\n"
                       "The simulator works out a deterministic answer from the prompt.\"}")
                  BSTOP(0) BSTART(1, TEXT)
                      DELTA(1, "{\"type\":\"text_delta\",\"text\":\"" STORY1 "\"}")
                          DELTA(1, "{\"type\":\"text_delta\",\"text\":\"" STORY2 "\"}")
                              DELTA(1, "{\"type\":\"text_delta\",\"text\":\" carries shape "
                                       "random model returns the daily response reply content "
                                       "daily.\"}") BSTOP(1) END("end_turn", "null", 9, 386));
    free_events(ev);
}

/* The sim cut the text before "the": the one stop sequence not in the text fired. */
static void
test_sim_stop_sequence(void **state)
{
    (void)state;
    char **ev = fixture("stop_sequence.sse");
    check("stop sequence", run(reply(0, "[\"the\"]"), (const char *const *)ev, 1),
          START(9, 21) BSTART(0, TEXT) DELTA(0, "{\"type\":\"text_delta\",\"text\":\"" STORY1 "\"}")
              DELTA(0, "{\"type\":\"text_delta\",\"text\":\"" STORY2 "\"}")
                  DELTA(0, "{\"type\":\"text_delta\",\"text\":\" carries shape random model "
                           "returns \"}") BSTOP(0) END("stop_sequence", "\"the\"", 9, 50));
    /* "error" occurs in the text, so it did not fire; "the" is the one left. */
    char *got = run(reply(0, "[\"error\",\"the\"]"), (const char *const *)ev, 1);
    assert_non_null(strstr(got, "\"stop_reason\":\"stop_sequence\",\"stop_sequence\":\"the\""));
    free(got);
    /* Both occur: a natural end. */
    got = run(reply(0, "[\"error\",\"Part\"]"), (const char *const *)ev, 1);
    assert_non_null(strstr(got, "\"stop_reason\":\"end_turn\",\"stop_sequence\":null"));
    free(got);
    /* Two candidates: which one fired cannot be known. */
    got = run(reply(0, "[\"zz\",\"yy\"]"), (const char *const *)ev, 1);
    assert_non_null(strstr(got, "\"stop_reason\":\"stop_sequence\",\"stop_sequence\":null"));
    free(got);
    free_events(ev);

    /* A sequence split across two parts occurs in the text too. */
    const char *split[] = {
        "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"a EN\"}]}}]}",
        "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"D b\"}]},\"finishReason\":"
        "\"STOP\"}]}",
        NULL};
    got = run(reply(0, "[\"END\"]"), split, 1);
    assert_non_null(strstr(got, "\"stop_reason\":\"end_turn\""));
    free(got);
}

static void
test_sim_max_tokens(void **state)
{
    (void)state;
    char **ev = fixture("max_tokens.sse");
    check("max tokens, empty text part", run(reply(0, NULL), (const char *const *)ev, 1),
          START(9, 5) END("max_tokens", "null", 9, 5));
    free_events(ev);
}

#define CAND(parts, finish)                                                                        \
    "{\"candidates\":[{\"content\":{\"parts\":[" parts "],\"role\":\"model\"}" finish "}]}"

/* What other relays get wrong, one case each. */
static void
test_failure_modes(void **state)
{
    (void)state;
    /* A call with no arguments still gets an input_json_delta: "{}". */
    const char *noargs[] = {
        CAND("{\"functionCall\":{\"name\":\"ls\"}}", ",\"finishReason\":\"STOP\""), NULL};
    check("call without args", run(reply(0, NULL), noargs, 1),
          START(0, 0) BSTART(0, "{\"type\":\"tool_use\",\"id\":\"toolu_s_1\",\"name\":\"ls\","
                                "\"input\":{}}")
              DELTA(0, "{\"type\":\"input_json_delta\",\"partial_json\":\"{}\"}") BSTOP(0)
                  END("tool_use", "null", 0, 0));

    /* Visible text that carries a signature is a text block; the signature goes to the
     * thinking block before it, sent just before that block's stop. */
    const char *signed_text[] = {
        CAND("{\"text\":\"hmm\",\"thought\":true}", ""),
        CAND("{\"text\":\"Hello\",\"thoughtSignature\":\"SIG1\"}", ",\"finishReason\":\"STOP\""),
        NULL};
    check("signed visible text", run(reply(1, NULL), signed_text, 1),
          START(0, 0) BSTART(0, THINKING)
              DELTA(0, "{\"type\":\"thinking_delta\",\"thinking\":\"hmm\"}")
                  DELTA(0, "{\"type\":\"signature_delta\",\"signature\":\"SIG1\"}") BSTOP(0)
                      BSTART(1, TEXT) DELTA(1, "{\"type\":\"text_delta\",\"text\":\"Hello\"}")
                          BSTOP(1) END("end_turn", "null", 0, 0));

    /* Without thoughts asked, the same answer is the text alone. */
    check("signed visible text, no thinking", run(reply(0, NULL), signed_text, 1),
          START(0, 0) BSTART(0, TEXT) DELTA(0, "{\"type\":\"text_delta\",\"text\":\"Hello\"}")
              BSTOP(0) END("end_turn", "null", 0, 0));

    /* A signature with no thought text before it: an empty signed thinking block. */
    const char *bare[] = {
        CAND("{\"functionCall\":{\"name\":\"f\",\"args\":{\"x\":1}},\"thoughtSignature\":\"S2\"}",
             ",\"finishReason\":\"STOP\""),
        NULL};
    check("bare signature", run(reply(1, NULL), bare, 1),
          START(0, 0) BSTART(0, THINKING)
              DELTA(0, "{\"type\":\"signature_delta\",\"signature\":\"S2\"}") BSTOP(0)
                  BSTART(1, "{\"type\":\"tool_use\",\"id\":\"toolu_s_1\",\"name\":\"f\","
                            "\"input\":{}}")
                      DELTA(1, "{\"type\":\"input_json_delta\",\"partial_json\":"
                               "\"{\\\"x\\\":1}\"}") BSTOP(1) END("tool_use", "null", 0, 0));
}

/* Every finishReason Gemini defines (gemini-api.md §3.2), and values it may add, becomes
 * one of Anthropic's stop reasons. */
static void
test_stop_reasons(void **state)
{
    (void)state;
    static const struct {
        const char *finish;
        const char *want;
    } cases[] = {
        {"STOP", "end_turn"},
        {"MAX_TOKENS", "max_tokens"},
        {"SAFETY", "refusal"},
        {"RECITATION", "refusal"},
        {"LANGUAGE", "end_turn"},
        {"OTHER", "end_turn"},
        {"BLOCKLIST", "refusal"},
        {"PROHIBITED_CONTENT", "refusal"},
        {"SPII", "refusal"},
        {"MALFORMED_FUNCTION_CALL", "end_turn"},
        {"IMAGE_SAFETY", "refusal"},
        {"IMAGE_PROHIBITED_CONTENT", "refusal"},
        {"IMAGE_OTHER", "end_turn"},
        {"NO_IMAGE", "end_turn"},
        {"IMAGE_RECITATION", "refusal"},
        {"UNEXPECTED_TOOL_CALL", "end_turn"},
        {"TOO_MANY_TOOL_CALLS", "end_turn"},
        {"MISSING_THOUGHT_SIGNATURE", "end_turn"},
        {"MALFORMED_RESPONSE", "end_turn"},
        {"ESCALATION", "end_turn"},
        {"FINISH_REASON_UNSPECIFIED", "end_turn"},
        {"A_VALUE_FROM_2027", "end_turn"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char ev[256];
        snprintf(ev, sizeof ev,
                 "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"x\"}]},"
                 "\"finishReason\":\"%s\"}]}",
                 cases[i].finish);
        const char *events[] = {ev, NULL};
        char *got = run(reply(0, NULL), events, 1);
        char want[128];
        snprintf(want, sizeof want, "\"delta\":{\"stop_reason\":\"%s\",", cases[i].want);
        if (!strstr(got, want))
            fail_msg("%s: %s", cases[i].finish, got);
        free(got);
    }
    /* A blocked prompt: no candidates, a refusal. */
    const char *blocked[] = {
        "{\"promptFeedback\":{\"blockReason\":\"PROHIBITED_CONTENT\"},"
        "\"usageMetadata\":{\"promptTokenCount\":638,\"totalTokenCount\":638}}",
        NULL};
    check("blocked prompt", run(reply(0, NULL), blocked, 1),
          START(638, 0) END("refusal", "null", 638, 0));
}

/* After the start, a failure is an error event and nothing else: no message_stop. */
static void
test_errors(void **state)
{
    (void)state;
    struct skiff_anth_reply r = reply(0, NULL);
    struct skiff_anth_stream s;
    struct skiff_buf out;
    skiff_anth_stream_init(&s, &r);
    skiff_buf_init(&out, 1 << 16);
    const char *ev = CAND("{\"text\":\"Hi\"}", "");
    assert_int_equal(skiff_anth_stream_event(&s, ev, strlen(ev), &out), 0);
    struct skiff_anth_error e;
    skiff_anth_error_from_google(503, "UNAVAILABLE", NULL, &e);
    assert_int_equal(skiff_anth_stream_fail(&s, &e, &out), 0);
    assert_int_equal(skiff_anth_stream_end(&s, &out), 0);
    assert_int_equal(skiff_anth_stream_ping(&s, &out), 0);
    check("overloaded mid-stream", skiff_buf_take(&out),
          START(0, 0) BSTART(0, TEXT) DELTA(0, "{\"type\":\"text_delta\",\"text\":\"Hi\"}")
              EV("error", "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\","
                          "\"message\":\"Overloaded: the upstream stayed unavailable after "
                          "retries and fallbacks.\"}}"));
    skiff_anth_stream_release(&s);

    /* Google's error object inside the stream. */
    const char *gerr[] = {CAND("{\"text\":\"Hi\"}", ""),
                          "{\"error\":{\"code\":500,\"message\":\"Internal error encountered.\","
                          "\"status\":\"INTERNAL\"}}",
                          CAND("{\"text\":\" more\"}", ",\"finishReason\":\"STOP\""), NULL};
    check("google error event", run(reply(0, NULL), gerr, 1),
          START(0, 0) BSTART(0, TEXT) DELTA(0, "{\"type\":\"text_delta\",\"text\":\"Hi\"}")
              EV("error", "{\"type\":\"error\",\"error\":{\"type\":\"api_error\",\"message\":"
                          "\"Internal error encountered.\"}}"));

    /* The upstream ended without a finishReason: cut short, not a clean end. */
    const char *cut[] = {CAND("{\"text\":\"Hi\"}", ""), NULL};
    check("cut short", run(reply(0, NULL), cut, 1),
          START(0, 0) BSTART(0, TEXT) DELTA(0, "{\"type\":\"text_delta\",\"text\":\"Hi\"}")
              EV("error", "{\"type\":\"error\",\"error\":{\"type\":\"api_error\",\"message\":"
                          "\"the upstream ended the stream before its answer was finished\"}}"));

    /* An event that is not JSON. */
    const char *junk[] = {"{\"candid", NULL};
    check("junk event", run(reply(0, NULL), junk, 1),
          EV("error", "{\"type\":\"error\",\"error\":{\"type\":\"api_error\",\"message\":"
                      "\"the upstream sent an event that is not JSON\"}}"));
}

static void
test_ping(void **state)
{
    (void)state;
    struct skiff_anth_reply r = reply(1, NULL);
    struct skiff_anth_stream s;
    struct skiff_buf out;
    skiff_anth_stream_init(&s, &r);
    skiff_buf_init(&out, 1 << 16);
    assert_int_equal(skiff_anth_stream_ping(&s, &out), 0); /* nothing before the start */
    assert_int_equal(out.len, 0);
    const char *ev = CAND("{\"text\":\"deep\",\"thought\":true}", "");
    skiff_anth_stream_event(&s, ev, strlen(ev), &out);
    skiff_buf_reset(&out);
    assert_int_equal(skiff_anth_stream_ping(&s, &out), 0);
    assert_string_equal(out.data, "event: ping\ndata: {\"type\": \"ping\"}\n\n");
    skiff_buf_release(&out);
    skiff_anth_stream_release(&s);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sim_tools_thinking),
        cmocka_unit_test(test_sim_text_thinking),
        cmocka_unit_test(test_sim_stop_sequence),
        cmocka_unit_test(test_sim_max_tokens),
        cmocka_unit_test(test_failure_modes),
        cmocka_unit_test(test_stop_reasons),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_ping),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
