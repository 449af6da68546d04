/*
 * The whole-message translator (src/doors/anthropic/messages_response.c) on answers
 * `skiff sim` gave (tests/unit/fixtures/anthropic/) and on hand-made ones, the usage
 * mapping, and the round trip a tool loop makes: the sim's signed calls become tool_use
 * blocks, the client gives them back (with or without the thinking block), and the next
 * Gemini request passes the sim's own Gemini 3 signature check.
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

#include "doors/anthropic/messages_request.h"
#include "doors/anthropic/messages_response.h"
#include "base/err.h"
#include "sim/catalog.h"
#include "sim/tools.h"

static char *
read_fixture(const char *name, size_t *len)
{
    char path[512];
    const char *slash = strrchr(__FILE__, '/');
    snprintf(path, sizeof path, "%.*s/fixtures/anthropic/%s", (int)(slash - __FILE__), __FILE__,
             name);
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("no fixture %s", path);
    char *buf = malloc(1 << 16);
    *len = fread(buf, 1, (1 << 16) - 1, f);
    buf[*len] = '\0';
    fclose(f);
    /* An SSE fixture: its first event's JSON. */
    if (strncmp(buf, "data: ", 6) == 0) {
        char *end = strstr(buf, "\r\n\r\n");
        *len = (size_t)((end ? end : buf + *len) - buf) - 6;
        memmove(buf, buf + 6, *len);
        buf[*len] = '\0';
    }
    return buf;
}

/* The signature cache of the tests: one entry is enough for a turn. */
static char cache_id[64], cache_sig[256];

static void
store(void *ud, const char *id, const char *sig)
{
    (void)ud;
    snprintf(cache_id, sizeof cache_id, "%s", id);
    snprintf(cache_sig, sizeof cache_sig, "%s", sig);
}

static const char *
lookup(void *ud, const char *id)
{
    (void)ud;
    return strcmp(id, cache_id) == 0 ? cache_sig : NULL;
}

static char *
answer(const char *body, int thinking, const char *stops)
{
    json_t *st = stops ? json_loads(stops, 0, NULL) : NULL;
    struct skiff_anth_reply r = {.model = "claude-sonnet-4-5",
                                 .id_seed = "abc",
                                 .thinking = thinking,
                                 .stop_sequences = st,
                                 .store = store};
    struct skiff_anth_error e;
    char *s = skiff_anth_response(body, strlen(body), &r, &e);
    json_decref(st);
    if (!s)
        fail_msg("refused: %d %s", e.status, e.message);
    return s;
}

#define USAGE(in, cached, out)                                                                     \
    "\"usage\":{\"input_tokens\":" #in ",\"cache_creation_input_tokens\":0,"                       \
    "\"cache_read_input_tokens\":" #cached ",\"output_tokens\":" #out "}"
#define HEAD                                                                                       \
    "{\"id\":\"msg_abc\",\"type\":\"message\",\"role\":\"assistant\",\"model\":"                   \
    "\"claude-sonnet-4-5\","

static void
test_sim_answers(void **state)
{
    (void)state;
    size_t n;
    char *body = read_fixture("turn2_thinking.json", &n);
    char *got = answer(body, 1, NULL);
    assert_string_equal(
        got, HEAD "\"content\":[{\"type\":\"thinking\",\"thinking\":\"**Planning "
                  "the reply**\\n\\nThe simulator works out a deterministic "
                  "answer from the prompt.\",\"signature\":\"\"},{\"type\":"
                  "\"text\",\"text\":\"Simulated answer using the results of "
                  "[\\\"getWeather\\\",\\\"getTime\\\"]: [{\\\"result\\\":"
                  "\\\"21C\\\"},{\\\"error\\\":\\\"noon\\\"}].\"}],"
                  "\"stop_reason\":\"end_turn\",\"stop_sequence\":null," USAGE(1041, 0, 117) "}");
    free(got);
    free(body);

    /* The sim stopped at once before "Say": an empty text, a stop sequence. */
    body = read_fixture("stop_sequence.json", &n);
    got = answer(body, 0, "[\"Say\"]");
    assert_string_equal(got, HEAD "\"content\":[{\"type\":\"text\",\"text\":\"Simulated answer "
                                  "to \\\"\"}],\"stop_reason\":\"stop_sequence\","
                                  "\"stop_sequence\":\"Say\"," USAGE(2, 0, 336) "}");
    free(got);
    free(body);
}

static void
test_shapes(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        const char *gemini;
        const char *want;
    } cases[] = {
        {"cached tokens are cache reads, not input",
         "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"ok\"}]},\"finishReason\":"
         "\"STOP\"}],\"usageMetadata\":{\"promptTokenCount\":1000,\"cachedContentTokenCount\":"
         "800,\"candidatesTokenCount\":3,\"thoughtsTokenCount\":7}}",
         HEAD "\"content\":[{\"type\":\"text\",\"text\":\"ok\"}],\"stop_reason\":\"end_turn\","
              "\"stop_sequence\":null," USAGE(200, 800, 10) "}"},
        {"a blocked prompt is a refusal with no content",
         "{\"promptFeedback\":{\"blockReason\":\"SAFETY\"},\"usageMetadata\":"
         "{\"promptTokenCount\":5}}",
         HEAD
         "\"content\":[],\"stop_reason\":\"refusal\",\"stop_sequence\":null," USAGE(5, 0, 0) "}"},
        {"a stop that fires at once: content {}",
         "{\"candidates\":[{\"content\":{},\"finishReason\":\"STOP\"}]}",
         HEAD
         "\"content\":[],\"stop_reason\":\"end_turn\",\"stop_sequence\":null," USAGE(0, 0, 0) "}"},
        {"MAX_TOKENS",
         "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"\"}]},"
         "\"finishReason\":\"MAX_TOKENS\"}]}",
         HEAD "\"content\":[],\"stop_reason\":\"max_tokens\",\"stop_sequence\":null," USAGE(0, 0,
                                                                                            0) "}"},
        {"thoughts not asked are dropped; a call's input is whole",
         "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"t\",\"thought\":true},"
         "{\"text\":\"Let me check.\"},{\"functionCall\":{\"name\":\"f\",\"args\":{\"a\":[1,2]}},"
         "\"thoughtSignature\":\"SIG\"}]},\"finishReason\":\"STOP\"}]}",
         HEAD "\"content\":[{\"type\":\"text\",\"text\":\"Let me check.\"},{\"type\":\"tool_use\","
              "\"id\":\"toolu_abc_1\",\"name\":\"f\",\"input\":{\"a\":[1,2]}}],\"stop_reason\":"
              "\"tool_use\",\"stop_sequence\":null," USAGE(0, 0, 0) "}"},
        {"RECITATION with partial text",
         "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"Once upon\"}]},\"finishReason\":"
         "\"RECITATION\"}]}",
         HEAD "\"content\":[{\"type\":\"text\",\"text\":\"Once upon\"}],\"stop_reason\":"
              "\"refusal\",\"stop_sequence\":null," USAGE(0, 0, 0) "}"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *got = answer(cases[i].gemini, 0, NULL);
        if (strcmp(got, cases[i].want) != 0)
            fail_msg("%s:\n got  %s\n want %s", cases[i].name, got, cases[i].want);
        free(got);
    }
    struct skiff_anth_reply r = {.model = "m"};
    struct skiff_anth_error e;
    assert_null(skiff_anth_response("<html>", 6, &r, &e));
    assert_int_equal(e.status, 500);
    assert_string_equal(e.type, "api_error");
}

/* The next turn's request from the answer's content blocks, with tool_results for every
 * tool_use. keep_thinking 0 drops the thinking blocks, as many clients do. */
static char *
next_turn(const char *message, int keep_thinking)
{
    json_t *msg = json_loads(message, 0, NULL);
    json_t *content = json_array();
    json_t *results = json_array();
    size_t i;
    json_t *b;
    json_array_foreach(json_object_get(msg, "content"), i, b)
    {
        const char *type = json_string_value(json_object_get(b, "type"));
        if (strcmp(type, "thinking") == 0 && !keep_thinking)
            continue;
        json_array_append(content, b);
        if (strcmp(type, "tool_use") == 0)
            json_array_append_new(results,
                                  json_pack("{s:s,s:O,s:s}", "type", "tool_result", "tool_use_id",
                                            json_object_get(b, "id"), "content", "21C"));
    }
    char *c = json_dumps(content, JSON_COMPACT);
    char *rs = json_dumps(results, JSON_COMPACT);
    json_decref(content);
    json_decref(results);
    size_t len = strlen(c) + strlen(rs) + 1024;
    char *s = malloc(len);
    snprintf(s, len,
             "{\"model\":\"claude-sonnet-4-5\",\"max_tokens\":2048,\"tools\":[{\"name\":"
             "\"getWeather\",\"input_schema\":{\"type\":\"object\",\"properties\":{\"city\":"
             "{\"type\":\"string\"}}}},{\"name\":\"getTime\",\"input_schema\":{\"type\":"
             "\"object\"}}],\"messages\":[{\"role\":\"user\",\"content\":\"Call getWeather and "
             "getTime please\"},{\"role\":\"assistant\",\"content\":%s},{\"role\":\"user\","
             "\"content\":%s}]}",
             c, rs);
    free(c);
    free(rs);
    json_decref(msg);
    return s;
}

/* What the sim's Gemini 3 check says of the Gemini request made from a Messages body. */
static int
sim_accepts(const char *body, skiff_anth_sig_lookup *lk, char *why, size_t whylen)
{
    struct skiff_anth_request r;
    struct skiff_anth_error e;
    if (skiff_anth_request_parse(body, strlen(body), lk, NULL, &r, &e))
        fail_msg("refused: %s", e.message);
    const struct skiff_sim_model *m = skiff_sim_catalog_find("gemini-3-flash-preview", 22);
    assert_non_null(m);
    struct skiff_sim_invalid inv = {0};
    int rc = skiff_sim_tools_check(m, r.gemini, &inv);
    snprintf(why, whylen, "%s", rc ? inv.message : "");
    json_decref(inv.details);
    skiff_anth_request_release(&r);
    return rc == 0;
}

static void
test_signature_round_trip(void **state)
{
    (void)state;
    size_t n;
    char *body = read_fixture("tools_thinking.sse", &n); /* its one event: a whole answer */
    cache_id[0] = cache_sig[0] = '\0';
    char *msg = answer(body, 1, NULL);
    free(body);
    /* The signature travels in the thinking block and the cache, never in the id. */
    assert_non_null(strstr(msg, "\"signature\":\"Eh5za2lmZnNpbRQ/DBq74izQOeoMGyWrcjRjY/WAj8E=\""));
    assert_non_null(strstr(msg, "\"id\":\"toolu_abc_1\""));
    assert_non_null(strstr(msg, "\"id\":\"toolu_abc_2\""));
    assert_string_equal(cache_id, "toolu_abc_1");
    assert_true(skiff_sim_signature_ok(cache_sig, "getWeather"));

    char why[1024];
    /* The client gives the thinking block back: its signature reaches Gemini. */
    char *turn = next_turn(msg, 1);
    if (!sim_accepts(turn, NULL, why, sizeof why))
        fail_msg("thinking block given back: %s", why);
    free(turn);
    /* The client drops thinking blocks: the cache restores the signature by tool_use id. */
    turn = next_turn(msg, 0);
    if (!sim_accepts(turn, lookup, why, sizeof why))
        fail_msg("ids only, with the cache: %s", why);
    /* Neither: Gemini 3 refuses, so the two checks above can fail. */
    assert_false(sim_accepts(turn, NULL, why, sizeof why));
    assert_non_null(strstr(why, "missing a thought_signature"));
    free(turn);
    free(msg);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sim_answers),
        cmocka_unit_test(test_shapes),
        cmocka_unit_test(test_signature_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
