/*
 * The Messages request translator (src/doors/anthropic/messages_request.c): each rule of
 * issue 15's "Translation" section as a Messages body and the exact Gemini body it becomes,
 * then the refusals with their exact messages.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "doors/anthropic/messages_request.h"
#include "base/err.h"

/* The signature cache of the tests: one tool_use id skiff made earlier. */
static const char *
lookup(void *ud, const char *id)
{
    (void)ud;
    return strcmp(id, "toolu_seed_1") == 0 ? "CACHEDSIG" : NULL;
}

static char *
translate(const char *body, struct skiff_anth_request *r)
{
    struct skiff_anth_error e;
    int rc = skiff_anth_request_parse(body, strlen(body), lookup, NULL, r, &e);
    if (rc)
        fail_msg("refused: %d %s", e.status, e.message);
    return json_dumps(r->gemini, JSON_COMPACT);
}

#define M "\"model\":\"claude-sonnet-4-5\",\"max_tokens\":100,"
#define GC "\"generationConfig\":{\"maxOutputTokens\":100}"

struct ok_case {
    const char *name;
    const char *body;
    const char *gemini;
};

static const struct ok_case ok_cases[] = {
    {"a string content", "{" M "\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}]}",
     "{\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"Hi\"}]}]," GC "}"},
    {"system as a string, metadata dropped",
     "{" M "\"system\":\"Be brief\",\"metadata\":{\"user_id\":\"u1\"},"
     "\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}]}",
     "{\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"Hi\"}]}],"
     "\"systemInstruction\":{\"parts\":[{\"text\":\"Be brief\"}]}," GC "}"},
    {"system as text blocks, cache_control ignored",
     "{" M "\"system\":[{\"type\":\"text\",\"text\":\"A\",\"cache_control\":{\"type\":"
     "\"ephemeral\"}},{\"type\":\"text\",\"text\":\"B\"}],"
     "\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}]}",
     "{\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"Hi\"}]}],"
     "\"systemInstruction\":{\"parts\":[{\"text\":\"A\"},{\"text\":\"B\"}]}," GC "}"},
    {"roles, and consecutive same-role turns merged",
     "{" M "\"messages\":[{\"role\":\"user\",\"content\":\"a\"},{\"role\":\"user\",\"content\":"
     "[{\"type\":\"text\",\"text\":\"b\"}]},{\"role\":\"assistant\",\"content\":\"c\"},"
     "{\"role\":\"assistant\",\"content\":\"d\"},{\"role\":\"user\",\"content\":\"e\"}]}",
     "{\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"a\"},{\"text\":\"b\"}]},"
     "{\"role\":\"model\",\"parts\":[{\"text\":\"c\"},{\"text\":\"d\"}]},"
     "{\"role\":\"user\",\"parts\":[{\"text\":\"e\"}]}]," GC "}"},
    {"base64 image and PDF, a plain-text document",
     "{" M "\"messages\":[{\"role\":\"user\",\"content\":["
     "{\"type\":\"image\",\"source\":{\"type\":\"base64\",\"media_type\":\"image/png\","
     "\"data\":\"iVBO\"}},"
     "{\"type\":\"document\",\"source\":{\"type\":\"base64\",\"media_type\":"
     "\"application/pdf\",\"data\":\"JVBE\"}},"
     "{\"type\":\"document\",\"source\":{\"type\":\"text\",\"media_type\":\"text/plain\","
     "\"data\":\"notes\"}}]}]}",
     "{\"contents\":[{\"role\":\"user\",\"parts\":["
     "{\"inlineData\":{\"mimeType\":\"image/png\",\"data\":\"iVBO\"}},"
     "{\"inlineData\":{\"mimeType\":\"application/pdf\",\"data\":\"JVBE\"}},"
     "{\"text\":\"notes\"}]}]," GC "}"},
    {"a URL image is a placeholder for the door to fill",
     "{" M "\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image\",\"source\":"
     "{\"type\":\"url\",\"url\":\"https://example.com/a.png\"}},{\"type\":\"text\",\"text\":"
     "\"what?\"}]}]}",
     "{\"contents\":[{\"role\":\"user\",\"parts\":[{\"inlineData\":{\"mimeType\":\"\",\"data\":"
     "\"\"}},{\"text\":\"what?\"}]}]," GC "}"},
    {"parallel tool_use in one Content, tool_result string and is_error blocks",
     "{" M "\"messages\":[{\"role\":\"user\",\"content\":\"weather and time\"},"
     "{\"role\":\"assistant\",\"content\":[{\"type\":\"text\",\"text\":\"Calling.\"},"
     "{\"type\":\"tool_use\",\"id\":\"toolu_x_1\",\"name\":\"getWeather\",\"input\":{\"city\":"
     "\"Paris\"}},{\"type\":\"tool_use\",\"id\":\"toolu_x_2\",\"name\":\"getTime\",\"input\":"
     "{}}]},"
     "{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\",\"tool_use_id\":\"toolu_x_1\","
     "\"content\":\"21C\"},{\"type\":\"tool_result\",\"tool_use_id\":\"toolu_x_2\","
     "\"is_error\":true,\"content\":[{\"type\":\"text\",\"text\":\"clock\"},{\"type\":\"text\","
     "\"text\":\"broken\"}]}]}]}",
     "{\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"weather and time\"}]},"
     "{\"role\":\"model\",\"parts\":[{\"text\":\"Calling.\"},"
     "{\"functionCall\":{\"name\":\"getWeather\",\"args\":{\"city\":\"Paris\"}}},"
     "{\"functionCall\":{\"name\":\"getTime\",\"args\":{}}}]},"
     "{\"role\":\"user\",\"parts\":[{\"functionResponse\":{\"name\":\"getWeather\",\"response\":"
     "{\"result\":\"21C\"}}},{\"functionResponse\":{\"name\":\"getTime\",\"response\":"
     "{\"error\":\"clock\\nbroken\"}}}]}]," GC "}"},
    {"a tool_result with an image: the image is a part after the response",
     "{" M "\"messages\":[{\"role\":\"assistant\",\"content\":[{\"type\":\"tool_use\","
     "\"id\":\"t1\",\"name\":\"shot\",\"input\":{}}]},{\"role\":\"user\",\"content\":"
     "[{\"type\":\"tool_result\",\"tool_use_id\":\"t1\",\"content\":[{\"type\":\"text\","
     "\"text\":\"here\"},{\"type\":\"image\",\"source\":{\"type\":\"base64\","
     "\"media_type\":\"image/png\",\"data\":\"iVBO\"}}]}]}]}",
     "{\"contents\":[{\"role\":\"model\",\"parts\":[{\"functionCall\":{\"name\":\"shot\","
     "\"args\":{}}}]},{\"role\":\"user\",\"parts\":[{\"functionResponse\":{\"name\":"
     "\"shot\",\"response\":{\"result\":\"here\"}}},{\"inlineData\":{\"mimeType\":"
     "\"image/png\",\"data\":\"iVBO\"}}]}]," GC "}"},
    {"a signed thinking block: its signature onto the first functionCall, text not sent",
     "{" M "\"messages\":[{\"role\":\"user\",\"content\":\"go\"},"
     "{\"role\":\"assistant\",\"content\":[{\"type\":\"thinking\",\"thinking\":\"I plan\","
     "\"signature\":\"GEMSIG\"},{\"type\":\"text\",\"text\":\"ok\"},{\"type\":\"tool_use\","
     "\"id\":\"toolu_y_1\",\"name\":\"f\",\"input\":{}},{\"type\":\"tool_use\",\"id\":"
     "\"toolu_y_2\",\"name\":\"g\",\"input\":{}}]},"
     "{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\",\"tool_use_id\":\"toolu_y_1\","
     "\"content\":\"1\"},{\"type\":\"tool_result\",\"tool_use_id\":\"toolu_y_2\",\"content\":"
     "\"2\"}]}]}",
     "{\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"go\"}]},"
     "{\"role\":\"model\",\"parts\":[{\"text\":\"ok\"},"
     "{\"functionCall\":{\"name\":\"f\",\"args\":{}},\"thoughtSignature\":\"GEMSIG\"},"
     "{\"functionCall\":{\"name\":\"g\",\"args\":{}}}]},"
     "{\"role\":\"user\",\"parts\":[{\"functionResponse\":{\"name\":\"f\",\"response\":"
     "{\"result\":\"1\"}}},{\"functionResponse\":{\"name\":\"g\",\"response\":{\"result\":"
     "\"2\"}}}]}]," GC "}"},
    {"thinking dropped by the client: the cache restores the signature by tool_use id",
     "{" M "\"messages\":[{\"role\":\"user\",\"content\":\"go\"},"
     "{\"role\":\"assistant\",\"content\":[{\"type\":\"tool_use\",\"id\":\"toolu_seed_1\","
     "\"name\":\"f\",\"input\":{\"a\":1}}]},"
     "{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\",\"tool_use_id\":"
     "\"toolu_seed_1\"}]}]}",
     "{\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"go\"}]},"
     "{\"role\":\"model\",\"parts\":[{\"functionCall\":{\"name\":\"f\",\"args\":{\"a\":1}},"
     "\"thoughtSignature\":\"CACHEDSIG\"}]},"
     "{\"role\":\"user\",\"parts\":[{\"functionResponse\":{\"name\":\"f\",\"response\":"
     "{\"result\":\"\"}}}]}]," GC "}"},
    {"a signed thinking block before text only: the signature onto that text",
     "{" M "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"},"
     "{\"role\":\"assistant\",\"content\":[{\"type\":\"thinking\",\"thinking\":\"t\","
     "\"signature\":\"S1\"},{\"type\":\"text\",\"text\":\"hello\"}]},"
     "{\"role\":\"user\",\"content\":\"more\"}]}",
     "{\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"hi\"}]},"
     "{\"role\":\"model\",\"parts\":[{\"text\":\"hello\",\"thoughtSignature\":\"S1\"}]},"
     "{\"role\":\"user\",\"parts\":[{\"text\":\"more\"}]}]," GC "}"},
    {"redacted_thinking dropped, an unsigned thinking block sends nothing",
     "{" M "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"},"
     "{\"role\":\"assistant\",\"content\":[{\"type\":\"redacted_thinking\",\"data\":\"xx\"},"
     "{\"type\":\"thinking\",\"thinking\":\"t\"},{\"type\":\"text\",\"text\":\"yo\"}]}]}",
     "{\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"hi\"}]},"
     "{\"role\":\"model\",\"parts\":[{\"text\":\"yo\"}]}]," GC "}"},
    {"tools keep JSON Schema whole; tool_choice tool",
     "{" M "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tools\":[{\"name\":\"f\","
     "\"description\":\"does f\",\"input_schema\":{\"type\":\"object\",\"$defs\":{\"P\":"
     "{\"type\":\"string\"}},\"properties\":{\"p\":{\"$ref\":\"#/$defs/P\"}},"
     "\"additionalProperties\":false},\"cache_control\":{\"type\":\"ephemeral\"}}],"
     "\"tool_choice\":{\"type\":\"tool\",\"name\":\"f\"}}",
     "{\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"x\"}]}],\"tools\":"
     "[{\"functionDeclarations\":[{\"name\":\"f\",\"description\":\"does f\","
     "\"parametersJsonSchema\":{\"type\":\"object\",\"$defs\":{\"P\":{\"type\":\"string\"}},"
     "\"properties\":{\"p\":{\"$ref\":\"#/$defs/P\"}},\"additionalProperties\":false}}]}],"
     "\"toolConfig\":{\"functionCallingConfig\":{\"mode\":\"ANY\",\"allowedFunctionNames\":"
     "[\"f\"]}}," GC "}"},
    {"tool_choice any, none, auto",
     "{" M "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tools\":[{\"name\":\"f\","
     "\"input_schema\":{\"type\":\"object\"}}],\"tool_choice\":{\"type\":\"none\"}}",
     "{\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"x\"}]}],\"tools\":"
     "[{\"functionDeclarations\":[{\"name\":\"f\",\"parametersJsonSchema\":{\"type\":"
     "\"object\"}}]}],\"toolConfig\":{\"functionCallingConfig\":{\"mode\":\"NONE\"}}," GC "}"},
    {"sampling, stop sequences, thinking enabled",
     "{\"model\":\"claude-opus-4-1\",\"max_tokens\":4096,\"messages\":[{\"role\":\"user\","
     "\"content\":\"x\"}],\"stop_sequences\":[\"END\",\"###\"],\"temperature\":0.5,"
     "\"top_p\":0.25,\"top_k\":40,\"thinking\":{\"type\":\"enabled\",\"budget_tokens\":2048},"
     "\"stream\":true}",
     "{\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"x\"}]}],\"generationConfig\":"
     "{\"maxOutputTokens\":4096,\"stopSequences\":[\"END\",\"###\"],\"temperature\":0.5,"
     "\"topP\":0.25,\"topK\":40,\"thinkingConfig\":{\"includeThoughts\":true,"
     "\"thinkingBudget\":2048}}}"},
    {"thinking disabled",
     "{" M "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"thinking\":{\"type\":"
     "\"disabled\"}}",
     "{\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"x\"}]}],\"generationConfig\":"
     "{\"maxOutputTokens\":100,\"thinkingConfig\":{\"thinkingBudget\":0}}}"},
};

static void
test_translations(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof ok_cases / sizeof ok_cases[0]; i++) {
        struct skiff_anth_request r;
        char *got = translate(ok_cases[i].body, &r);
        if (strcmp(got, ok_cases[i].gemini) != 0)
            fail_msg("%s:\n got  %s\n want %s", ok_cases[i].name, got, ok_cases[i].gemini);
        free(got);
        skiff_anth_request_release(&r);
    }
}

static const char *
case_body(const char *name)
{
    for (size_t i = 0; i < sizeof ok_cases / sizeof ok_cases[0]; i++)
        if (strcmp(ok_cases[i].name, name) == 0)
            return ok_cases[i].body;
    fail_msg("no case %s", name);
    return NULL;
}

static void
test_remembered(void **state)
{
    (void)state;
    struct skiff_anth_request r;
    char *g = translate(case_body("sampling, stop sequences, thinking enabled"), &r);
    free(g);
    assert_string_equal(r.model, "claude-opus-4-1");
    assert_int_equal(r.stream, 1);
    assert_int_equal(r.max_tokens, 4096);
    assert_int_equal(r.thinking, SKIFF_ANTH_THINKING_ENABLED);
    assert_int_equal(r.budget_tokens, 2048);
    assert_int_equal(json_array_size(r.stop_sequences), 2);
    assert_int_equal(r.single_tool_call, 0);
    skiff_anth_request_release(&r);

    const char *par = "{" M "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tools\":"
                      "[{\"name\":\"f\",\"input_schema\":{}}],\"tool_choice\":{\"type\":"
                      "\"auto\",\"disable_parallel_tool_use\":true}}";
    g = translate(par, &r);
    assert_non_null(strstr(g, "\"mode\":\"AUTO\""));
    free(g);
    assert_int_equal(r.single_tool_call, 1);
    assert_int_equal(r.stream, 0);
    assert_int_equal(r.thinking, SKIFF_ANTH_THINKING_UNSET);
    skiff_anth_request_release(&r);
}

/* A URL image: the media list points at the placeholder part, and filling it changes the
 * request the door sends. */
static void
test_media(void **state)
{
    (void)state;
    struct skiff_anth_request r;
    char *g = translate(case_body("a URL image is a placeholder for the door to fill"), &r);
    free(g);
    assert_int_equal(r.n_media, 1);
    assert_string_equal(r.media[0].url, "https://example.com/a.png");
    assert_int_equal(r.media[0].document, 0);
    json_t *inl = json_object_get(r.media[0].part, "inlineData");
    json_object_set_new(inl, "mimeType", json_string("image/png"));
    json_object_set_new(inl, "data", json_string("AAAA"));
    g = json_dumps(r.gemini, JSON_COMPACT);
    assert_non_null(strstr(g, "{\"inlineData\":{\"mimeType\":\"image/png\",\"data\":\"AAAA\"}}"));
    free(g);
    skiff_anth_request_release(&r);
}

struct bad_case {
    const char *body;
    const char *message;
};

static const struct bad_case bad_cases[] = {
    {"{\"model\":\"c\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
     "max_tokens: Field required (the most tokens the answer may have, for example 1024)"},
    {"{" M "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"stop_sequences\":[\"1\","
     "\"2\",\"3\",\"4\",\"5\",\"6\"]}",
     "stop_sequences: 6 given, but Gemini takes at most 5; send 5 or fewer"},
    {"not json", "the body is not valid JSON: '[' or '{' expected near 'not' (line 1)"},
    {"{\"max_tokens\":1,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
     "model: Field required (a model name such as claude-sonnet-4-5, mapped to Gemini by the "
     "models: map)"},
    {"{" M "\"messages\":[]}", "messages: Field required (an array of at least one message)"},
    {"{" M "\"messages\":[{\"role\":\"system\",\"content\":\"x\"}]}",
     "messages[0].role: a message's role is user or assistant"},
    {"{" M "\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\","
     "\"tool_use_id\":\"toolu_nope\",\"content\":\"x\"}]}]}",
     "messages[0].content[0].tool_use_id: toolu_nope answers no tool_use block of an earlier "
     "assistant message; give back the assistant turn with its tool_use blocks"},
    {"{" M "\"messages\":[{\"role\":\"assistant\",\"content\":[{\"type\":\"tool_use\","
     "\"id\":\"has space\",\"name\":\"f\",\"input\":{}}]}]}",
     "messages[0].content[0].id: a tool_use id is a string of ^[a-zA-Z0-9_-]+$"},
    {"{" M "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"thinking\":{\"type\":"
     "\"enabled\",\"budget_tokens\":100}}",
     "thinking.budget_tokens: an integer of at least 1024"},
    {"{" M "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"thinking\":{\"type\":"
     "\"enabled\",\"budget_tokens\":2000}}",
     "thinking.budget_tokens: must be less than max_tokens (100)"},
    {"{" M "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tools\":[{\"type\":"
     "\"web_search_20250305\",\"name\":\"web_search\"}]}",
     "tools[0].type: web_search_20250305 is an Anthropic server tool, which Gemini cannot run; "
     "declare client tools (name, input_schema) only"},
    {"{" M "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"mcp_servers\":[]}",
     "mcp_servers: Extra inputs are not permitted (skiff's Anthropic door does not translate "
     "this field)"},
    {"{" M "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"temperature\":1.5}",
     "temperature: a number from 0 to 1"},
    {"{" M "\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image\",\"source\":"
     "{\"type\":\"file\",\"file_id\":\"f1\"}}]}]}",
     "messages[0].content[0].source.type: file sources are not supported by skiff (send the "
     "image as base64 or by URL)"},
    {"{" M "\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"server_tool_use\"}]}]}",
     "messages[0].content[0].type: server_tool_use blocks are not supported by skiff's "
     "Anthropic door (text, image, document, tool_use, tool_result, thinking and "
     "redacted_thinking are)"},
    {"{" M "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tool_choice\":{\"type\":"
     "\"tool\"},\"tools\":[{\"name\":\"f\",\"input_schema\":{}}]}",
     "tool_choice.name: {\"type\": \"tool\"} needs the tool's name"},
    {"{" M "\"messages\":[{\"role\":\"assistant\",\"content\":[{\"type\":\"thinking\","
     "\"thinking\":\"t\"}]}]}",
     "messages: every message is empty; send some content"},
    {"{" M "\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"tool_use\",\"id\":"
     "\"a\",\"name\":\"f\",\"input\":{}}]}]}",
     "messages[0].content[0]: tool_use blocks belong to assistant messages"},
    {"{" M "\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image\",\"source\":"
     "{\"type\":\"base64\",\"media_type\":\"text/html\",\"data\":\"x\"}}]}]}",
     "messages[0].content[0].source.media_type: text/html is not an image type (send "
     "image/jpeg, image/png, image/gif or image/webp)"},
    {"{" M "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_tokens\":5}",
     "the body is not valid JSON: duplicate object key near '\"max_tokens\"' (line 1)"},
};

static void
test_refusals(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
        struct skiff_anth_request r;
        struct skiff_anth_error e;
        int rc = skiff_anth_request_parse(bad_cases[i].body, strlen(bad_cases[i].body), NULL, NULL,
                                          &r, &e);
        if (rc != SKIFF_EINVAL)
            fail_msg("case %zu accepted: %s", i, bad_cases[i].body);
        assert_int_equal(e.status, 400);
        assert_string_equal(e.type, "invalid_request_error");
        if (strcmp(e.message, bad_cases[i].message) != 0)
            fail_msg("case %zu:\n got  %s\n want %s", i, e.message, bad_cases[i].message);
        assert_null(r.gemini);
    }
}

/* The model the door chose decides what thinking can be asked of it. */
static void
test_fit(void **state)
{
    (void)state;
    struct skiff_model_info pro = {.thinking = 1, .budget_min = 128, .budget_max = 32768};
    struct skiff_model_info flash = {.thinking = 1, .budget_max = 24576, .budget_zero_ok = 1};
    struct skiff_model_info plain = {.thinking = 0};
    struct {
        const char *thinking;
        const struct skiff_model_info *m;
        const char *gc;
        const char *model; /* NULL: gemini-2.5-flash */
    } cases[] = {
        /* disabled: the least the model can do (Pro's minimum; Gemini 3's lowest level). */
        {"{\"type\":\"disabled\"}", &pro,
         "{\"maxOutputTokens\":40000,\"thinkingConfig\":{\"thinkingBudget\":128}}",
         "gemini-2.5-pro"},
        {"{\"type\":\"disabled\"}", &pro,
         "{\"maxOutputTokens\":40000,\"thinkingConfig\":{\"thinkingLevel\":\"MINIMAL\"}}",
         "gemini-3.5-flash"},
        {"{\"type\":\"disabled\"}", &flash,
         "{\"maxOutputTokens\":40000,\"thinkingConfig\":{\"thinkingBudget\":0}}", NULL},
        {"{\"type\":\"enabled\",\"budget_tokens\":30000}", &flash,
         "{\"maxOutputTokens\":40000,\"thinkingConfig\":{\"includeThoughts\":true,"
         "\"thinkingBudget\":24576}}",
         NULL},
        {"{\"type\":\"enabled\",\"budget_tokens\":30000}", &plain, "{\"maxOutputTokens\":40000}",
         NULL},
        {"{\"type\":\"adaptive\"}", &pro,
         "{\"maxOutputTokens\":40000,\"thinkingConfig\":{\"includeThoughts\":true,"
         "\"thinkingBudget\":-1}}",
         NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char body[512];
        snprintf(body, sizeof body,
                 "{\"model\":\"m\",\"max_tokens\":40000,\"messages\":[{\"role\":\"user\","
                 "\"content\":\"x\"}],\"thinking\":%s}",
                 cases[i].thinking);
        struct skiff_anth_request r;
        free(translate(body, &r));
        assert_int_equal(skiff_anth_request_fit(
                             &r, cases[i].m, cases[i].model ? cases[i].model : "gemini-2.5-flash"),
                         0);
        char *gc = json_dumps(json_object_get(r.gemini, "generationConfig"), JSON_COMPACT);
        if (strcmp(gc, cases[i].gc) != 0)
            fail_msg("case %zu: got %s want %s", i, gc, cases[i].gc);
        free(gc);
        skiff_anth_request_release(&r);
    }
}

static void
test_count_tokens(void **state)
{
    (void)state;
    const char *body = "{\"model\":\"claude-haiku-4-5\",\"system\":\"S\",\"messages\":[{\"role\":"
                       "\"user\",\"content\":\"x\"}],\"tools\":[{\"name\":\"f\","
                       "\"input_schema\":{}}]}";
    json_t *g;
    struct skiff_anth_error e;
    assert_int_equal(
        skiff_anth_count_request(body, strlen(body), "gemini-2.5-flash", NULL, NULL, &g, &e), 0);
    char *s = json_dumps(g, JSON_COMPACT);
    assert_string_equal(s, "{\"generateContentRequest\":{\"model\":\"models/gemini-2.5-flash\","
                           "\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"x\"}]}],"
                           "\"systemInstruction\":{\"parts\":[{\"text\":\"S\"}]},\"tools\":"
                           "[{\"functionDeclarations\":[{\"name\":\"f\","
                           "\"parametersJsonSchema\":{}}]}]}}");
    free(s);
    json_decref(g);

    const char *ans = "{\n  \"totalTokens\": 31,\n  \"promptTokensDetails\": []\n}\n";
    s = skiff_anth_count_response(ans, strlen(ans));
    assert_string_equal(s, "{\"input_tokens\":31}");
    free(s);
    assert_null(skiff_anth_count_response("{}", 2));

    /* count_tokens refuses what messages refuses. */
    const char *bad = "{\"model\":\"m\",\"messages\":[]}";
    assert_int_equal(skiff_anth_count_request(bad, strlen(bad), "g", NULL, NULL, &g, &e),
                     SKIFF_EINVAL);
    assert_null(g);
    assert_int_equal(e.status, 400);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_translations), cmocka_unit_test(test_remembered),
        cmocka_unit_test(test_media),        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_fit),          cmocka_unit_test(test_count_tokens),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
