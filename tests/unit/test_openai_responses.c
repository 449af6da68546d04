/* The Responses API over the chat translators (src/doors/openai/responses.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "base/buf.h"
#include "doors/openai/responses.h"
#include "base/err.h"
#include "test_openai_common.h"

static json_t *
to_chat(const char *req_s, struct skiff_oai_error *err)
{
    json_t *req = parse(req_s);
    json_t *chat = skiff_oai_responses_to_chat(req, err);
    json_decref(req);
    return chat;
}

static void
test_request_fields(void **state)
{
    (void)state;
    struct skiff_oai_error err;
    json_t *chat = to_chat(
        "{\"model\": \"gpt-4.1\", \"instructions\": \"Be brief.\", \"input\": \"Hi\", \"tools\": "
        "[{\"type\": \"function\", \"name\": \"f\", \"description\": \"d\", \"parameters\": "
        "{\"type\": \"object\"}, \"strict\": true}], \"tool_choice\": {\"type\": \"function\", "
        "\"name\": \"f\"}, \"text\": {\"format\": {\"type\": \"json_schema\", \"name\": \"s\", "
        "\"schema\": {\"type\": \"object\", \"$defs\": {}}}}, \"reasoning\": {\"effort\": "
        "\"low\"}, \"max_output_tokens\": 100, \"temperature\": 0.2, \"store\": false, "
        "\"stream\": true}",
        &err);
    assert_non_null(chat);
    assert_json(chat,
                "{\"messages\": [{\"role\": \"system\", \"content\": \"Be brief.\"}, {\"role\": "
                "\"user\", \"content\": \"Hi\"}], \"model\": \"gpt-4.1\", \"temperature\": 0.2, "
                "\"stream\": true, \"max_completion_tokens\": 100, \"reasoning_effort\": \"low\", "
                "\"response_format\": {\"type\": \"json_schema\", \"json_schema\": {\"schema\": "
                "{\"type\": \"object\", \"$defs\": {}}}}, \"tools\": [{\"type\": \"function\", "
                "\"function\": {\"name\": \"f\", \"description\": \"d\", \"parameters\": "
                "{\"type\": \"object\"}}}], \"tool_choice\": {\"type\": \"function\", "
                "\"function\": {\"name\": \"f\"}}}",
                "responses → chat");
    /* And on to Gemini through the chat translator. */
    struct skiff_oai_chat_opts o = {.gemini_model = "gemini-2.5-flash"};
    struct skiff_oai_chat c;
    assert_int_equal(skiff_oai_chat_request(chat, &o, &c, &err), 0);
    assert_json(c.body,
                "{\"contents\": [{\"role\": \"user\", \"parts\": [{\"text\": \"Hi\"}]}], "
                "\"systemInstruction\": {\"parts\": [{\"text\": \"Be brief.\"}]}, \"tools\": "
                "[{\"functionDeclarations\": [{\"name\": \"f\", \"description\": \"d\", "
                "\"parametersJsonSchema\": {\"type\": \"object\"}}]}], \"toolConfig\": "
                "{\"functionCallingConfig\": {\"mode\": \"ANY\", \"allowedFunctionNames\": "
                "[\"f\"]}}, \"generationConfig\": {\"temperature\": 0.2, \"maxOutputTokens\": 100, "
                "\"responseMimeType\": \"application/json\", \"responseJsonSchema\": {\"type\": "
                "\"object\", \"$defs\": {}}, \"thinkingConfig\": {\"thinkingBudget\": 1024}}}",
                "chat → gemini");
    assert_int_equal(c.stream, 1);
    skiff_oai_chat_release(&c);
    json_decref(chat);
}

static void
test_request_items(void **state)
{
    (void)state;
    struct skiff_oai_error err;
    json_t *chat = to_chat(
        "{\"model\": \"m\", \"input\": [{\"role\": \"user\", \"content\": [{\"type\": "
        "\"input_text\", \"text\": \"weather?\"}, {\"type\": \"input_image\", \"image_url\": "
        "\"data:image/png;base64,AA\"}]}, {\"type\": \"reasoning\", \"summary\": []}, {\"type\": "
        "\"function_call\", \"call_id\": \"call_1\", \"name\": \"w\", \"arguments\": \"{}\", "
        "\"extra_content\": {\"google\": {\"thought_signature\": \"S\"}}}, {\"type\": "
        "\"function_call\", \"call_id\": \"call_2\", \"name\": \"t\", \"arguments\": \"{}\"}, "
        "{\"type\": \"function_call_output\", \"call_id\": \"call_1\", \"output\": \"sunny\"}, "
        "{\"type\": \"function_call_output\", \"call_id\": \"call_2\", \"output\": \"noon\"}]}",
        &err);
    assert_non_null(chat);
    assert_json(
        json_object_get(chat, "messages"),
        "[{\"role\": \"user\", \"content\": [{\"type\": \"text\", \"text\": \"weather?\"}, "
        "{\"type\": \"image_url\", \"image_url\": {\"url\": \"data:image/png;base64,AA\"}}]}, "
        "{\"role\": \"assistant\", \"content\": null, \"tool_calls\": [{\"id\": \"call_1\", "
        "\"type\": \"function\", \"function\": {\"name\": \"w\", \"arguments\": \"{}\"}, "
        "\"extra_content\": {\"google\": {\"thought_signature\": \"S\"}}}, {\"id\": "
        "\"call_2\", \"type\": \"function\", \"function\": {\"name\": \"t\", "
        "\"arguments\": \"{}\"}}]}, {\"role\": \"tool\", \"tool_call_id\": \"call_1\", "
        "\"content\": \"sunny\"}, {\"role\": \"tool\", \"tool_call_id\": \"call_2\", "
        "\"content\": \"noon\"}]",
        "items");
    json_decref(chat);
}

static void
test_request_refusals(void **state)
{
    (void)state;
    struct skiff_oai_error err;
    assert_null(to_chat(
        "{\"model\": \"m\", \"input\": \"x\", \"previous_response_id\": \"resp_1\"}", &err));
    assert_int_equal(err.status, 400);
    assert_string_equal(err.param, "previous_response_id");
    assert_non_null(strstr(err.message, "stores no responses"));
    assert_null(to_chat("{\"model\": \"m\", \"input\": [{\"type\": \"web_search_call\"}]}", &err));
    assert_string_equal(err.param, "input[0]");
}

static const char *const sim_calls =
    "{\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"plan\", \"thought\": true},"
    "{\"functionCall\": {\"name\": \"getWeather\",\"args\": {\"city\": \"P\"}},"
    "\"thoughtSignature\": \"SIG\"}],\"role\": \"model\"},\"finishReason\": \"STOP\","
    "\"index\": 0}],\"usageMetadata\": {\"promptTokenCount\": 9,\"candidatesTokenCount\": 23,"
    "\"totalTokenCount\": 175,\"thoughtsTokenCount\": 143},\"responseId\": \"R1\"}";

static void
test_answer(void **state)
{
    (void)state;
    struct skiff_oai_answer_opts o = {
        .model = "gpt-4.1", .created = 5, .include_thoughts = 1, .parallel_calls = 1};
    json_t *g = parse(sim_calls);
    json_t *chat = skiff_oai_chat_response(g, &o);
    json_t *r = skiff_oai_response_from_chat(chat);
    assert_non_null(r);
    /* The call's id and item id come from the chat answer's call id. */
    json_t *out = json_object_get(r, "output");
    json_t *fc = json_array_get(out, 1);
    const char *cid = json_string_value(json_object_get(fc, "call_id"));
    assert_true(is_call_id(cid));
    assert_string_equal(json_string_value(json_object_get(fc, "id")) + 3, cid + 5);
    json_object_set_new(fc, "call_id", json_string("CALL"));
    json_object_set_new(fc, "id", json_string("FC"));
    json_object_set_new(json_array_get(out, 0), "id", json_string("RS"));
    assert_json(r,
                "{\"id\": \"resp_R1\", \"object\": \"response\", \"created_at\": 5, \"status\": "
                "\"completed\", \"model\": \"gpt-4.1\", \"output\": [{\"id\": \"RS\", \"type\": "
                "\"reasoning\", \"summary\": [{\"type\": \"summary_text\", \"text\": \"plan\"}]}, "
                "{\"id\": \"FC\", \"type\": \"function_call\", \"status\": \"completed\", "
                "\"call_id\": \"CALL\", \"name\": \"getWeather\", \"arguments\": "
                "\"{\\\"city\\\":\\\"P\\\"}\", \"extra_content\": {\"google\": "
                "{\"thought_signature\": \"SIG\"}}}], \"usage\": {\"input_tokens\": 9, "
                "\"input_tokens_details\": {\"cached_tokens\": 0}, \"output_tokens\": 166, "
                "\"output_tokens_details\": {\"reasoning_tokens\": 143}, \"total_tokens\": 175}, "
                "\"error\": null, \"incomplete_details\": null}",
                "response");
    json_decref(r);
    json_decref(chat);
    json_decref(g);
    /* MAX_TOKENS: incomplete, reason max_output_tokens. */
    g = parse("{\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"Hi\"}]}, "
              "\"finishReason\": \"MAX_TOKENS\"}], \"responseId\": \"R2\"}");
    chat = skiff_oai_chat_response(g, &o);
    r = skiff_oai_response_from_chat(chat);
    assert_string_equal(json_string_value(json_object_get(r, "status")), "incomplete");
    assert_json(json_object_get(r, "incomplete_details"), "{\"reason\": \"max_output_tokens\"}",
                "incomplete");
    assert_string_equal(
        json_string_value(json_object_get(
            json_array_get(
                json_object_get(json_array_get(json_object_get(r, "output"), 0), "content"), 0),
            "text")),
        "Hi");
    json_decref(r);
    json_decref(chat);
    json_decref(g);
}

/* The event types of out, in order, checking the SSE form and the sequence numbers. */
static json_t *
events(const struct skiff_buf *b, json_t **last)
{
    json_t *types = json_array();
    const char *p = b->data ? b->data : "";
    json_int_t seq = 0;
    *last = NULL;
    while (*p) {
        assert_true(strncmp(p, "event: ", 7) == 0);
        const char *nl = strchr(p, '\n');
        const char *end = strstr(p, "\n\n");
        assert_non_null(nl);
        assert_non_null(end);
        assert_true(strncmp(nl + 1, "data: ", 6) == 0);
        json_t *j = json_loadb(nl + 7, (size_t)(end - nl - 7), 0, NULL);
        assert_non_null(j);
        assert_true(strncmp(json_string_value(json_object_get(j, "type")), p + 7,
                            (size_t)(nl - p - 7)) == 0);
        assert_int_equal(json_integer_value(json_object_get(j, "sequence_number")), seq++);
        json_array_append_new(types, json_string(json_string_value(json_object_get(j, "type"))));
        json_decref(*last);
        *last = j;
        p = end + 2;
    }
    return types;
}

static void
feed_file(struct skiff_oai_rstream *s, const char *name, struct skiff_buf *out)
{
    char path[512];
    const char *slash = strrchr(__FILE__, '/');
    snprintf(path, sizeof path, "%.*sfixtures/%s", slash ? (int)(slash - __FILE__ + 1) : 0,
             __FILE__, name);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char line[65536];
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "data: ", 6) == 0) {
            line[strcspn(line, "\r\n")] = '\0';
            assert_int_equal(skiff_oai_rstream_feed(s, line + 6, strlen(line + 6), out), 0);
        }
    fclose(f);
}

static void
test_stream_text_with_thoughts(void **state)
{
    (void)state;
    struct skiff_oai_answer_opts o = {
        .model = "gpt-4.1", .include_thoughts = 1, .parallel_calls = 1};
    struct skiff_oai_rstream *s = skiff_oai_rstream_new(&o);
    struct skiff_buf out;
    skiff_buf_init(&out, 1 << 20);
    feed_file(s, "openai_sim_text_thoughts.sse", &out);
    assert_int_equal(skiff_oai_rstream_end(s, &out), 0);
    json_t *last;
    json_t *types = events(&out, &last);
    assert_json(types,
                "[\"response.created\", \"response.in_progress\", \"response.output_item.added\", "
                "\"response.reasoning_summary_part.added\", "
                "\"response.reasoning_summary_text.delta\", "
                "\"response.reasoning_summary_text.done\", "
                "\"response.reasoning_summary_part.done\", \"response.output_item.done\", "
                "\"response.output_item.added\", \"response.content_part.added\", "
                "\"response.output_text.delta\", \"response.output_text.delta\", "
                "\"response.output_text.delta\", \"response.output_text.delta\", "
                "\"response.output_text.delta\", \"response.output_text.delta\", "
                "\"response.output_text.delta\", \"response.output_text.done\", "
                "\"response.content_part.done\", \"response.output_item.done\", "
                "\"response.completed\"]",
                "event order");
    json_t *resp = json_object_get(last, "response");
    assert_string_equal(json_string_value(json_object_get(resp, "status")), "completed");
    assert_string_equal(json_string_value(json_object_get(resp, "id")),
                        "resp_v3GmeQfjAUxpLr0L22vbhS5");
    json_t *msg = json_array_get(json_object_get(resp, "output"), 1);
    const char *text = json_string_value(
        json_object_get(json_array_get(json_object_get(msg, "content"), 0), "text"));
    assert_true(strncmp(text, "Simulated answer to", 19) == 0);
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(resp, "usage"), "output_tokens")),
        128 + 334);
    json_decref(types);
    json_decref(last);
    skiff_buf_release(&out);
    skiff_oai_rstream_free(s);
}

static void
test_stream_calls(void **state)
{
    (void)state;
    struct skiff_oai_answer_opts o = {.model = "gpt-4.1", .parallel_calls = 1};
    struct skiff_oai_rstream *s = skiff_oai_rstream_new(&o);
    struct skiff_buf out;
    skiff_buf_init(&out, 1 << 20);
    feed_file(s, "openai_sim_tools_g3.sse", &out);
    assert_int_equal(skiff_oai_rstream_end(s, &out), 0);
    json_t *last;
    json_t *types = events(&out, &last);
    assert_json(types,
                "[\"response.created\", \"response.in_progress\", "
                "\"response.output_item.added\", \"response.function_call_arguments.delta\", "
                "\"response.function_call_arguments.done\", \"response.output_item.done\", "
                "\"response.output_item.added\", \"response.function_call_arguments.delta\", "
                "\"response.function_call_arguments.done\", \"response.output_item.done\", "
                "\"response.completed\"]",
                "call events");
    json_t *output = json_object_get(json_object_get(last, "response"), "output");
    assert_int_equal(json_array_size(output), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(output, 0), "name")),
                        "getWeather");
    assert_non_null(json_object_get(json_array_get(output, 0), "extra_content"));
    assert_null(json_object_get(json_array_get(output, 1), "extra_content"));
    json_decref(types);
    json_decref(last);
    skiff_buf_release(&out);
    skiff_oai_rstream_free(s);
}

static void
test_stream_error(void **state)
{
    (void)state;
    struct skiff_oai_answer_opts o = {.model = "gpt-4.1", .parallel_calls = 1};
    struct skiff_oai_rstream *s = skiff_oai_rstream_new(&o);
    struct skiff_buf out;
    skiff_buf_init(&out, 1 << 20);
    const char *a = "{\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"Hi\"}]}}], "
                    "\"responseId\": \"R\"}";
    const char *b = "{\"error\": {\"code\": 503, \"message\": \"overloaded\", \"status\": "
                    "\"UNAVAILABLE\"}}";
    assert_int_equal(skiff_oai_rstream_feed(s, a, strlen(a), &out), 0);
    assert_int_equal(skiff_oai_rstream_feed(s, b, strlen(b), &out), SKIFF_EINVAL);
    assert_int_equal(skiff_oai_rstream_end(s, &out), SKIFF_EINVAL);
    json_t *last;
    json_t *types = events(&out, &last);
    assert_json(types,
                "[\"response.created\", \"response.in_progress\", \"response.output_item.added\", "
                "\"response.content_part.added\", \"response.output_text.delta\", \"error\", "
                "\"response.failed\"]",
                "error events");
    assert_json(json_object_get(json_object_get(last, "response"), "error"),
                "{\"code\": \"unavailable\", \"message\": \"overloaded\"}", "failed");
    json_decref(types);
    json_decref(last);
    skiff_buf_release(&out);
    skiff_oai_rstream_free(s);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_fields),
        cmocka_unit_test(test_request_items),
        cmocka_unit_test(test_request_refusals),
        cmocka_unit_test(test_answer),
        cmocka_unit_test(test_stream_text_with_thoughts),
        cmocka_unit_test(test_stream_calls),
        cmocka_unit_test(test_stream_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
