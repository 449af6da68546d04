/* OpenAI chat request → Gemini (src/doors/openai/chat_request.c): each rule of issue 14, as
 * the exact Gemini body that comes out, and each refusal as its status, param and message. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "doors/openai/chat_request.h"
#include "base/err.h"
#include "gemini/catalog.h"
#include "sim/catalog.h"
#include "sim/tools.h"
#include "sim/validate.h"

static struct skiff_catalog *cat;

static json_t *
parse(const char *s)
{
    json_error_t e;
    json_t *j = json_loads(s, 0, &e);
    if (!j)
        fail_msg("bad test JSON: %s: %s", e.text, s);
    return j;
}

static void
assert_json(const json_t *got, const char *want_s, const char *name)
{
    json_t *want = parse(want_s);
    if (!json_equal(got, want)) {
        char *g = json_dumps(got, JSON_COMPACT | JSON_SORT_KEYS);
        char *w = json_dumps(want, JSON_COMPACT | JSON_SORT_KEYS);
        print_error("%s:\n got  %s\n want %s\n", name, g, w);
        free(g);
        free(w);
        json_decref(want);
        fail();
    }
    json_decref(want);
}

struct sigs {
    const char *id[4];
    const char *sig[4];
};

static const char *
lookup(void *ud, const char *id)
{
    struct sigs *s = ud;
    for (int i = 0; i < 4 && s->id[i]; i++)
        if (strcmp(s->id[i], id) == 0)
            return s->sig[i];
    return NULL;
}

static int
translate(const char *req_s, const char *model, struct sigs *sigs, struct skiff_oai_chat *out,
          struct skiff_oai_error *err)
{
    struct skiff_model_info info;
    int known = skiff_catalog_lookup(cat, model, strlen(model), &info);
    struct skiff_oai_chat_opts o = {.gemini_model = model,
                                    .info = known ? &info : NULL,
                                    .lookup = sigs ? lookup : NULL,
                                    .ud = sigs};
    json_t *req = parse(req_s);
    int rc = skiff_oai_chat_request(req, &o, out, err);
    json_decref(req);
    return rc;
}

#define U(t) "{\"role\": \"user\", \"parts\": [{\"text\": \"" t "\"}]}"

struct ok_case {
    const char *name;
    const char *model;
    const char *req;  /* the messages and fields after "model" */
    const char *want; /* the Gemini body */
};

static const struct ok_case ok_cases[] = {
    {"system and developer go to systemInstruction, never a model turn", "gemini-2.5-flash",
     "\"messages\": [{\"role\": \"system\", \"content\": \"Be brief.\"},"
     "{\"role\": \"developer\", \"content\": [{\"type\": \"text\", \"text\": \"Use French.\"}]},"
     "{\"role\": \"user\", \"content\": \"Hi\"}]",
     "{\"systemInstruction\": {\"parts\": [{\"text\": \"Be brief.\"}, {\"text\": \"Use "
     "French.\"}]},"
     "\"contents\": [" U("Hi") "]}"},
    {"consecutive same-role messages merge into one Content", "gemini-2.5-flash",
     "\"messages\": [{\"role\": \"user\", \"content\": \"a\"}, {\"role\": \"user\", \"content\": "
     "\"b\"}, {\"role\": \"assistant\", \"content\": \"c\"}, {\"role\": \"assistant\", "
     "\"content\": \"d\"}, {\"role\": \"user\", \"content\": \"e\"}]",
     "{\"contents\": [{\"role\": \"user\", \"parts\": [{\"text\": \"a\"}, {\"text\": \"b\"}]},"
     "{\"role\": \"model\", \"parts\": [{\"text\": \"c\"}, {\"text\": \"d\"}]}," U("e") "]}"},
    {"user parts: text, data: image, audio, PDF file", "gemini-2.5-flash",
     "\"messages\": [{\"role\": \"user\", \"content\": [{\"type\": \"text\", \"text\": \"look\"},"
     "{\"type\": \"image_url\", \"image_url\": {\"url\": \"data:image/jpeg;base64,AAEC\", "
     "\"detail\": \"low\"}},"
     "{\"type\": \"input_audio\", \"input_audio\": {\"data\": \"UklG\", \"format\": \"wav\"}},"
     "{\"type\": \"file\", \"file\": {\"filename\": \"a.pdf\", \"file_data\": "
     "\"data:application/pdf;base64,JVBE\"}}]}]",
     "{\"contents\": [{\"role\": \"user\", \"parts\": [{\"text\": \"look\"},"
     "{\"inlineData\": {\"mimeType\": \"image/jpeg\", \"data\": \"AAEC\"}},"
     "{\"inlineData\": {\"mimeType\": \"audio/wav\", \"data\": \"UklG\"}},"
     "{\"inlineData\": {\"mimeType\": \"application/pdf\", \"data\": \"JVBE\"}}]}]}"},
    {"tools keep JSON Schema whole ($ref, $defs, additionalProperties)", "gemini-2.5-flash",
     "\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"tools\": [{\"type\": "
     "\"function\", \"function\": {\"name\": \"f\", \"description\": \"d\", \"strict\": true, "
     "\"parameters\": {\"$schema\": \"http://json-schema.org/draft-07/schema#\", \"type\": "
     "\"object\", \"properties\": {\"p\": {\"$ref\": \"#/$defs/P\"}}, \"$defs\": {\"P\": "
     "{\"type\": \"string\"}}, \"additionalProperties\": false}}}, {\"type\": \"function\", "
     "\"function\": {\"name\": \"g\"}}]",
     "{\"contents\": [" U(
         "x") "], \"tools\": [{\"functionDeclarations\": [{\"name\": \"f\", "
              "\"description\": \"d\", \"parametersJsonSchema\": {\"$schema\": "
              "\"http://json-schema.org/draft-07/schema#\", \"type\": \"object\", \"properties\": "
              "{\"p\": "
              "{\"$ref\": \"#/$defs/P\"}}, \"$defs\": {\"P\": {\"type\": \"string\"}}, "
              "\"additionalProperties\": false}}, {\"name\": \"g\"}]}]}"},
    {"tool_choice required → ANY", "gemini-2.5-flash",
     "\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"tool_choice\": \"required\"",
     "{\"contents\": [" U(
         "x") "], \"toolConfig\": {\"functionCallingConfig\": {\"mode\": \"ANY\"}}}"},
    {"tool_choice none → NONE", "gemini-2.5-flash",
     "\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"tool_choice\": \"none\"",
     "{\"contents\": [" U(
         "x") "], \"toolConfig\": {\"functionCallingConfig\": {\"mode\": \"NONE\"}}}"},
    {"tool_choice auto → AUTO", "gemini-2.5-flash",
     "\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"tool_choice\": \"auto\"",
     "{\"contents\": [" U(
         "x") "], \"toolConfig\": {\"functionCallingConfig\": {\"mode\": \"AUTO\"}}}"},
    {"tool_choice {function} → ANY with the allowed name", "gemini-2.5-flash",
     "\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"tool_choice\": {\"type\": "
     "\"function\", \"function\": {\"name\": \"getWeather\"}}",
     "{\"contents\": [" U("x") "], \"toolConfig\": {\"functionCallingConfig\": {\"mode\": "
                               "\"ANY\", \"allowedFunctionNames\": [\"getWeather\"]}}}"},
    {"response_format json_schema → responseJsonSchema with $defs kept", "gemini-2.5-flash",
     "\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"response_format\": {\"type\": "
     "\"json_schema\", \"json_schema\": {\"name\": \"s\", \"strict\": true, \"schema\": "
     "{\"type\": \"object\", \"properties\": {\"a\": {\"$ref\": \"#/$defs/A\"}}, \"$defs\": "
     "{\"A\": {\"type\": \"integer\"}}, \"required\": [\"a\"], \"additionalProperties\": false}}}",
     "{\"contents\": [" U(
         "x") "], \"generationConfig\": {\"responseMimeType\": "
              "\"application/json\", \"responseJsonSchema\": {\"type\": \"object\", "
              "\"properties\": "
              "{\"a\": {\"$ref\": \"#/$defs/A\"}}, \"$defs\": {\"A\": {\"type\": \"integer\"}}, "
              "\"required\": [\"a\"], \"additionalProperties\": false}}}"},
    {"response_format json_object → responseMimeType", "gemini-2.5-flash",
     "\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"response_format\": {\"type\": "
     "\"json_object\"}",
     "{\"contents\": [" U(
         "x") "], \"generationConfig\": {\"responseMimeType\": \"application/json\"}}"},
    {"sampling fields, max_completion_tokens over max_tokens, stop, n, seed, penalties, "
     "logprobs; unknown fields dropped",
     "gemini-2.5-flash",
     "\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"temperature\": 0.5, \"top_p\": "
     "0.9, \"max_tokens\": 10, \"max_completion_tokens\": 20, \"stop\": [\"a\", \"b\"], \"n\": 2, "
     "\"seed\": 7, \"presence_penalty\": 0.1, \"frequency_penalty\": 0.2, \"logprobs\": true, "
     "\"top_logprobs\": 3, \"user\": \"u1\", \"web_search_options\": {}, \"store\": false, "
     "\"metadata\": {\"k\": \"v\"}",
     "{\"contents\": [" U(
         "x") "], \"generationConfig\": {\"temperature\": 0.5, \"topP\": 0.9, "
              "\"seed\": 7, \"presencePenalty\": 0.1, \"frequencyPenalty\": 0.2, \"logprobs\": 3, "
              "\"maxOutputTokens\": 20, \"responseLogprobs\": true, \"candidateCount\": 2, "
              "\"stopSequences\": [\"a\", \"b\"]}}"},
    {"stop as one string", "gemini-2.5-flash",
     "\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"stop\": \"END\"",
     "{\"contents\": [" U("x") "], \"generationConfig\": {\"stopSequences\": [\"END\"]}}"},
    {"reasoning_effort low → 1024 on 2.5 Flash", "gemini-2.5-flash",
     "\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"reasoning_effort\": \"low\"",
     "{\"contents\": [" U(
         "x") "], \"generationConfig\": {\"thinkingConfig\": {\"thinkingBudget\": 1024}}}"},
    {"reasoning_effort medium → 8192", "gemini-2.5-pro",
     "\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"reasoning_effort\": \"medium\"",
     "{\"contents\": [" U(
         "x") "], \"generationConfig\": {\"thinkingConfig\": {\"thinkingBudget\": 8192}}}"},
    {"reasoning_effort high → 24576", "gemini-2.5-flash-lite",
     "\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"reasoning_effort\": \"high\"",
     "{\"contents\": [" U(
         "x") "], \"generationConfig\": {\"thinkingConfig\": {\"thinkingBudget\": 24576}}}"},
    {"reasoning_effort none → 0 where the model may stop thinking", "gemini-2.5-flash",
     "\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"reasoning_effort\": \"none\"",
     "{\"contents\": [" U(
         "x") "], \"generationConfig\": {\"thinkingConfig\": {\"thinkingBudget\": 0}}}"},
    {"reasoning_effort none → the minimum (128) on 2.5 Pro, which cannot stop", "gemini-2.5-pro",
     "\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"reasoning_effort\": \"none\"",
     "{\"contents\": [" U(
         "x") "], \"generationConfig\": {\"thinkingConfig\": {\"thinkingBudget\": 128}}}"},
    {"reasoning_effort minimal → the minimum (512) on 2.5 Flash-Lite", "gemini-2.5-flash-lite",
     "\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"reasoning_effort\": \"minimal\"",
     "{\"contents\": [" U(
         "x") "], \"generationConfig\": {\"thinkingConfig\": {\"thinkingBudget\": 512}}}"},
    {"Gemini 3 takes levels", "gemini-3-flash-preview",
     "\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"reasoning_effort\": \"medium\"",
     "{\"contents\": [" U(
         "x") "], \"generationConfig\": {\"thinkingConfig\": {\"thinkingLevel\": \"MEDIUM\"}}}"},
    {"Gemini 3: none → its lowest level", "gemini-3-flash-preview",
     "\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"reasoning_effort\": \"none\"",
     "{\"contents\": [" U(
         "x") "], \"generationConfig\": {\"thinkingConfig\": {\"thinkingLevel\": \"MINIMAL\"}}}"},
    {"Gemini 3 Pro: minimal → LOW", "gemini-3.1-pro-preview",
     "\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"reasoning_effort\": \"minimal\"",
     "{\"contents\": [" U(
         "x") "], \"generationConfig\": {\"thinkingConfig\": {\"thinkingLevel\": \"LOW\"}}}"},
    {"an alias of a Gemini 3 model takes levels too", "gemini-pro-latest",
     "\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"reasoning_effort\": \"high\"",
     "{\"contents\": [" U(
         "x") "], \"generationConfig\": {\"thinkingConfig\": {\"thinkingLevel\": \"HIGH\"}}}"},
    {"thoughts asked by extra_body.google.thinking_config", "gemini-2.5-flash",
     "\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"extra_body\": {\"google\": "
     "{\"thinking_config\": {\"include_thoughts\": true, \"thinking_budget\": 300}}}",
     "{\"contents\": [" U("x") "], \"generationConfig\": {\"thinkingConfig\": {\"thinkingBudget\": "
                               "300, \"includeThoughts\": true}}}"},
    {"reasoning_effort none on a model that does not think: no thinkingConfig",
     "gemini-2.5-flash-image",
     "\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"reasoning_effort\": \"none\"",
     "{\"contents\": [" U("x") "]}"},
    {"assistant tool_calls → functionCall parts in one Content; tool messages → one "
     "functionResponse turn; non-object content wrapped",
     "gemini-2.5-flash",
     "\"messages\": [{\"role\": \"user\", \"content\": \"weather and time\"},"
     "{\"role\": \"assistant\", \"content\": null, \"tool_calls\": ["
     "{\"id\": \"call_A\", \"type\": \"function\", \"function\": {\"name\": \"getWeather\", "
     "\"arguments\": \"{\\\"city\\\": \\\"Paris\\\"}\"}},"
     "{\"id\": \"call_B\", \"type\": \"function\", \"function\": {\"name\": \"getTime\", "
     "\"arguments\": \"\"}}]},"
     "{\"role\": \"tool\", \"tool_call_id\": \"call_A\", \"content\": \"{\\\"tempC\\\": 21}\"},"
     "{\"role\": \"tool\", \"tool_call_id\": \"call_B\", \"content\": \"12:00\"},"
     "{\"role\": \"tool\", \"tool_call_id\": \"call_B\", \"content\": [{\"type\": \"text\", "
     "\"text\": \"[1,2]\"}]}]",
     "{\"contents\": [" U(
         "weather and time") ","
                             "{\"role\": \"model\", \"parts\": [{\"functionCall\": {\"name\": "
                             "\"getWeather\", \"args\": "
                             "{\"city\": \"Paris\"}}}, {\"functionCall\": {\"name\": \"getTime\", "
                             "\"args\": {}}}]},"
                             "{\"role\": \"user\", \"parts\": [{\"functionResponse\": {\"name\": "
                             "\"getWeather\", "
                             "\"response\": {\"tempC\": 21}}}, {\"functionResponse\": {\"name\": "
                             "\"getTime\", "
                             "\"response\": {\"result\": \"12:00\"}}}, {\"functionResponse\": "
                             "{\"name\": \"getTime\", "
                             "\"response\": {\"result\": \"[1,2]\"}}}]}]}"},
    {"a tool result holding $ref goes as text, not as a media reference", "gemini-2.5-flash",
     "\"messages\": [{\"role\": \"user\", \"content\": \"x\"},"
     "{\"role\": \"assistant\", \"tool_calls\": [{\"id\": \"c\", \"type\": \"function\", "
     "\"function\": {\"name\": \"schema\", \"arguments\": \"{}\"}}]},"
     "{\"role\": \"tool\", \"tool_call_id\": \"c\", \"content\": "
     "\"{\\\"a\\\": {\\\"$ref\\\": \\\"#/x\\\"}}\"}]",
     "{\"contents\": [" U(
         "x") ", {\"role\": \"model\", \"parts\": [{\"functionCall\": "
              "{\"name\": \"schema\", \"args\": {}}}]}, {\"role\": \"user\", \"parts\": "
              "[{\"functionResponse\": {\"name\": \"schema\", \"response\": {\"result\": "
              "\"{\\\"a\\\": {\\\"$ref\\\": \\\"#/x\\\"}}\"}}}]}]}"},
    {"the signature in extra_content goes back on the first call, never into the id",
     "gemini-3-flash-preview",
     "\"messages\": [{\"role\": \"user\", \"content\": \"x\"},"
     "{\"role\": \"assistant\", \"content\": \"Let me check.\", \"tool_calls\": ["
     "{\"id\": \"call_A\", \"type\": \"function\", \"function\": {\"name\": \"f\", "
     "\"arguments\": \"{}\"}, \"extra_content\": {\"google\": {\"thought_signature\": "
     "\"SIG1\"}}}, {\"id\": \"call_B\", \"type\": \"function\", \"function\": {\"name\": \"g\", "
     "\"arguments\": \"{}\"}}]},"
     "{\"role\": \"tool\", \"tool_call_id\": \"call_A\", \"content\": \"1\"},"
     "{\"role\": \"tool\", \"tool_call_id\": \"call_B\", \"content\": \"2\"}]",
     "{\"contents\": [" U(
         "x") ", {\"role\": \"model\", \"parts\": [{\"text\": \"Let me check.\"}, "
              "{\"functionCall\": {\"name\": \"f\", \"args\": {}}, \"thoughtSignature\": "
              "\"SIG1\"}, "
              "{\"functionCall\": {\"name\": \"g\", \"args\": {}}}]}, {\"role\": \"user\", "
              "\"parts\": ["
              "{\"functionResponse\": {\"name\": \"f\", \"response\": {\"result\": \"1\"}}}, "
              "{\"functionResponse\": {\"name\": \"g\", \"response\": {\"result\": \"2\"}}}]}]}"},
    {"a signature on a later call of the step still lands on the step's first call",
     "gemini-3-flash-preview",
     "\"messages\": [{\"role\": \"user\", \"content\": \"x\"},"
     "{\"role\": \"assistant\", \"tool_calls\": ["
     "{\"id\": \"call_A\", \"type\": \"function\", \"function\": {\"name\": \"f\", "
     "\"arguments\": \"{}\"}}, {\"id\": \"call_B\", \"type\": \"function\", \"function\": "
     "{\"name\": \"g\", \"arguments\": \"{}\"}, \"extra_content\": {\"google\": "
     "{\"thought_signature\": \"SIG2\"}}}]}]",
     "{\"contents\": [" U("x") ", {\"role\": \"model\", \"parts\": ["
                               "{\"functionCall\": {\"name\": \"f\", \"args\": {}}, "
                               "\"thoughtSignature\": \"SIG2\"}, "
                               "{\"functionCall\": {\"name\": \"g\", \"args\": {}}, "
                               "\"thoughtSignature\": \"SIG2\"}]}]}"},
};

static void
test_ok_cases(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof ok_cases / sizeof ok_cases[0]; i++) {
        const struct ok_case *t = &ok_cases[i];
        char req[8192];
        snprintf(req, sizeof req, "{\"model\": \"m\", %s}", t->req);
        struct skiff_oai_chat c;
        struct skiff_oai_error e;
        int rc = translate(req, t->model, NULL, &c, &e);
        if (rc)
            fail_msg("%s: refused: %d %s (%s)", t->name, e.status, e.message, e.param);
        assert_json(c.body, t->want, t->name);
        skiff_oai_chat_release(&c);
    }
}

struct bad_case {
    const char *name;
    const char *model;
    const char *req;
    const char *param;
    const char *msg; /* a part of the message */
};

static const struct bad_case bad_cases[] = {
    {"more than 5 stop sequences", "gemini-2.5-flash",
     "\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"stop\": [\"1\", \"2\", \"3\", "
     "\"4\", \"5\", \"6\"]",
     "stop", "at most 5"},
    {"Gemini 3 Pro does not take medium", "gemini-3.1-pro-preview",
     "\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"reasoning_effort\": \"medium\"",
     "reasoning_effort", "low or high"},
    {"an effort no model takes", "gemini-2.5-flash",
     "\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"reasoning_effort\": \"xhigh\"",
     "reasoning_effort", "none, minimal, low, medium, high"},
    {"effort on a model that does not think", "gemini-2.5-flash-image",
     "\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"reasoning_effort\": \"low\"",
     "reasoning_effort", "does not think"},
    {"effort and a thinking budget together", "gemini-2.5-flash",
     "\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"reasoning_effort\": \"low\", "
     "\"extra_body\": {\"google\": {\"thinking_config\": {\"thinking_budget\": 5}}}",
     "reasoning_effort", "cannot be used together"},
    {"no messages", "gemini-2.5-flash", "\"messages\": []", "messages", "non-empty"},
    {"only a system message", "gemini-2.5-flash",
     "\"messages\": [{\"role\": \"system\", \"content\": \"x\"}]", "messages", "add a user"},
    {"a tool result for no call", "gemini-2.5-flash",
     "\"messages\": [{\"role\": \"user\", \"content\": \"x\"}, {\"role\": \"tool\", "
     "\"tool_call_id\": \"call_X\", \"content\": \"1\"}]",
     "messages[1].tool_call_id", "call_X"},
    {"arguments that are not a JSON object", "gemini-2.5-flash",
     "\"messages\": [{\"role\": \"user\", \"content\": \"x\"}, {\"role\": \"assistant\", "
     "\"tool_calls\": [{\"id\": \"c\", \"type\": \"function\", \"function\": {\"name\": \"f\", "
     "\"arguments\": \"{oops\"}}]}]",
     "messages[1].tool_calls[0].function.arguments", "JSON object"},
    {"an unknown role", "gemini-2.5-flash",
     "\"messages\": [{\"role\": \"function\", \"content\": \"x\"}]", "messages[0].role",
     "\"function\""},
    {"a malformed data: URI", "gemini-2.5-flash",
     "\"messages\": [{\"role\": \"user\", \"content\": [{\"type\": \"image_url\", "
     "\"image_url\": {\"url\": \"data:image/png,AAAA\"}}]}]",
     "messages[0].content[0].image_url.url", "base64"},
    {"a file given by id", "gemini-2.5-flash",
     "\"messages\": [{\"role\": \"user\", \"content\": [{\"type\": \"file\", \"file\": "
     "{\"file_id\": \"file-1\"}}]}]",
     "messages[0].content[0].file.file_data", "file_id"},
    {"an unsupported tool type", "gemini-2.5-flash",
     "\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"tools\": [{\"type\": "
     "\"custom\", \"custom\": {\"name\": \"x\"}}]",
     "tools[0]", "custom"},
    {"an unknown tool_choice", "gemini-2.5-flash",
     "\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"tool_choice\": \"any\"",
     "tool_choice", "\"any\""},
    {"temperature as a string", "gemini-2.5-flash",
     "\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"temperature\": \"hot\"",
     "temperature", "number"},
    {"n of 9", "gemini-2.5-flash",
     "\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"n\": 9", "n", "1 to 8"},
    {"json_schema without a schema", "gemini-2.5-flash",
     "\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"response_format\": {\"type\": "
     "\"json_schema\", \"json_schema\": {\"name\": \"s\"}}",
     "response_format.json_schema.schema", "schema"},
};

static void
test_bad_cases(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
        const struct bad_case *t = &bad_cases[i];
        char req[4096];
        snprintf(req, sizeof req, "{\"model\": \"m\", %s}", t->req);
        struct skiff_oai_chat c;
        struct skiff_oai_error e;
        int rc = translate(req, t->model, NULL, &c, &e);
        if (rc != SKIFF_EINVAL)
            fail_msg("%s: accepted", t->name);
        if (e.status != 400 || strcmp(e.param, t->param) != 0 || !strstr(e.message, t->msg))
            fail_msg("%s: got %d param=%s message=%s", t->name, e.status, e.param, e.message);
        assert_null(c.body);
    }
}

static void
test_missing_model(void **state)
{
    (void)state;
    struct skiff_oai_chat c;
    struct skiff_oai_error e;
    assert_int_equal(translate("{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}]}",
                               "gemini-2.5-flash", NULL, &c, &e),
                     SKIFF_EINVAL);
    assert_string_equal(e.param, "model");
    json_t *j = skiff_oai_error_json(&e);
    assert_json(j,
                "{\"error\": {\"message\": \"model is required (a string).\", \"type\": "
                "\"invalid_request_error\", \"param\": \"model\", \"code\": null}}",
                "error body");
    json_decref(j);
}

static void
test_remembers(void **state)
{
    (void)state;
    struct skiff_oai_chat c;
    struct skiff_oai_error e;
    assert_int_equal(
        translate("{\"model\": \"gpt-4o\", \"stream\": true, \"stream_options\": "
                  "{\"include_usage\": true}, \"n\": 3, \"parallel_tool_calls\": false, "
                  "\"google\": {\"thinking_config\": {\"include_thoughts\": true}}, "
                  "\"messages\": [{\"role\": \"user\", \"content\": \"x\"}, {\"role\": "
                  "\"assistant\", \"tool_calls\": [{\"id\": \"call_1\", \"type\": \"function\", "
                  "\"function\": {\"name\": \"f\", \"arguments\": \"{}\"}}]}]}",
                  "gemini-2.5-flash", NULL, &c, &e),
        0);
    assert_string_equal(c.model, "gpt-4o");
    assert_int_equal(c.stream, 1);
    assert_int_equal(c.include_usage, 1);
    assert_int_equal(c.n, 3);
    assert_int_equal(c.parallel_calls, 0);
    assert_int_equal(c.include_thoughts, 1);
    assert_json(c.call_names, "{\"call_1\": \"f\"}", "call names");
    assert_json(json_object_get(json_object_get(c.body, "generationConfig"), "thinkingConfig"),
                "{\"includeThoughts\": true}", "thoughts");
    skiff_oai_chat_release(&c);
}

/* An http(s) image is not fetched here: a placeholder the door fills. */
static void
test_url_media(void **state)
{
    (void)state;
    struct skiff_oai_chat c;
    struct skiff_oai_error e;
    assert_int_equal(translate("{\"model\": \"m\", \"messages\": [{\"role\": \"user\", "
                               "\"content\": [{\"type\": \"image_url\", \"image_url\": {\"url\": "
                               "\"https://example.com/cat.png\"}}]}]}",
                               "gemini-2.5-flash", NULL, &c, &e),
                     0);
    assert_int_equal(json_array_size(c.media), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(c.media, 0), "url")),
                        "https://example.com/cat.png");
    assert_int_equal(skiff_oai_chat_fill_media(&c, 0, "image/png", "iVBO"), 0);
    assert_int_equal(skiff_oai_chat_fill_media(&c, 1, "image/png", "iVBO"), SKIFF_EINVAL);
    assert_json(c.body,
                "{\"contents\": [{\"role\": \"user\", \"parts\": [{\"inlineData\": {\"mimeType\": "
                "\"image/png\", \"data\": \"iVBO\"}}]}]}",
                "filled");
    skiff_oai_chat_release(&c);
}

/*
 * The signature round trip against the simulator's own Gemini 3 check: a client that dropped
 * extra_content gets the cached signature back on the first call of the step, and the sim
 * accepts the turn; without the cache it refuses it, as Gemini 3 does.
 */
static void
test_signature_from_cache_passes_gemini3(void **state)
{
    (void)state;
    char *sig = skiff_sim_signature("getWeather");
    assert_non_null(sig);
    struct sigs sigs = {.id = {"call_W"}, .sig = {sig}};
    const char *req =
        "{\"model\": \"gpt-4o\", \"messages\": [{\"role\": \"user\", \"content\": \"Use getWeather "
        "and getTime for Paris\"}, {\"role\": \"assistant\", \"content\": null, \"tool_calls\": ["
        "{\"id\": \"call_W\", \"type\": \"function\", \"function\": {\"name\": \"getWeather\", "
        "\"arguments\": \"{\\\"city\\\": \\\"Paris\\\"}\"}}, {\"id\": \"call_T\", \"type\": "
        "\"function\", \"function\": {\"name\": \"getTime\", \"arguments\": \"{}\"}}]}, "
        "{\"role\": \"tool\", \"tool_call_id\": \"call_W\", \"content\": \"{\\\"tempC\\\": 21}\"}, "
        "{\"role\": \"tool\", \"tool_call_id\": \"call_T\", \"content\": \"12:00\"}], "
        "\"tools\": [{\"type\": \"function\", \"function\": {\"name\": \"getWeather\"}}, "
        "{\"type\": \"function\", \"function\": {\"name\": \"getTime\"}}]}";
    const struct skiff_sim_model *m =
        skiff_sim_catalog_find("gemini-3-flash-preview", strlen("gemini-3-flash-preview"));
    assert_non_null(m);
    struct skiff_oai_chat c;
    struct skiff_oai_error e;
    struct skiff_sim_invalid inv = {0};

    assert_int_equal(translate(req, "gemini-3-flash-preview", &sigs, &c, &e), 0);
    const json_t *model_turn = json_array_get(json_object_get(c.body, "contents"), 1);
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(json_object_get(model_turn, "parts"), 0),
                                          "thoughtSignature")),
        sig);
    assert_int_equal(skiff_sim_tools_check(m, c.body, &inv), 0);
    skiff_oai_chat_release(&c);

    assert_int_equal(translate(req, "gemini-3-flash-preview", NULL, &c, &e), 0);
    assert_int_equal(skiff_sim_tools_check(m, c.body, &inv), SKIFF_EINVAL);
    assert_non_null(strstr(inv.message, "thought_signature"));
    json_decref(inv.details);
    skiff_oai_chat_release(&c);
    free(sig);
}

int
main(void)
{
    cat = skiff_catalog_new();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ok_cases),
        cmocka_unit_test(test_bad_cases),
        cmocka_unit_test(test_missing_model),
        cmocka_unit_test(test_remembers),
        cmocka_unit_test(test_url_media),
        cmocka_unit_test(test_signature_from_cache_passes_gemini3),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    skiff_catalog_free(cat);
    return rc;
}
