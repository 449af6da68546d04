#include "doors/openai/responses.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"

/* ---- The request: Responses → Chat Completions ---- */

static int
rbad(struct skiff_oai_error *err, const char *param, const char *msg)
{
    return skiff_oai_error_set(err, 400, param, NULL, "%s", msg);
}

/* A message item's content → chat content: a string as it is; parts renamed (input_text and
 * output_text → text, input_image → image_url, input_file → file, input_audio as it is). */
static json_t *
message_content(const json_t *content, const char *param, struct skiff_oai_error *err)
{
    if (json_is_string(content))
        return json_incref((json_t *)content);
    if (!json_is_array(content)) {
        rbad(err, param, "A message item's content must be a string or an array of parts.");
        return NULL;
    }
    json_t *out = json_array();
    size_t i;
    const json_t *p;
    json_array_foreach(content, i, p)
    {
        const char *type = json_string_value(json_object_get(p, "type"));
        json_t *q = NULL;
        if (type && (strcmp(type, "input_text") == 0 || strcmp(type, "output_text") == 0 ||
                     strcmp(type, "text") == 0)) {
            q = json_pack("{s:s, s:O}", "type", "text", "text", json_object_get(p, "text"));
        } else if (type && strcmp(type, "refusal") == 0) {
            q = json_pack("{s:s, s:O}", "type", "text", "text", json_object_get(p, "refusal"));
        } else if (type && strcmp(type, "input_image") == 0) {
            const json_t *url = json_object_get(p, "image_url");
            q = json_is_string(url)
                    ? json_pack("{s:s, s:{s:O}}", "type", "image_url", "image_url", "url", url)
                    : NULL;
        } else if (type && strcmp(type, "input_file") == 0) {
            const json_t *fd = json_object_get(p, "file_data");
            q = json_is_string(fd)
                    ? json_pack("{s:s, s:{s:O}}", "type", "file", "file", "file_data", fd)
                    : NULL;
        } else if (type && strcmp(type, "input_audio") == 0) {
            q = json_deep_copy(p);
        }
        if (!q || json_array_append_new(out, q)) {
            char sub[160];
            snprintf(sub, sizeof sub, "%s[%zu]", param, i);
            skiff_oai_error_set(err, 400, sub, NULL,
                                "Content part type \"%s\" is not supported here, or lacks its "
                                "field (input_text, input_image with image_url, input_file with "
                                "file_data, input_audio, output_text, refusal).",
                                type ? type : "(none)");
            json_decref(out);
            return NULL;
        }
    }
    return out;
}

static int
input_items(const json_t *input, json_t *msgs, struct skiff_oai_error *err)
{
    if (json_is_string(input))
        return json_array_append_new(msgs,
                                     json_pack("{s:s, s:O}", "role", "user", "content", input))
                   ? SKIFF_ENOMEM
                   : 0;
    if (!json_is_array(input))
        return rbad(err, "input", "input must be a string or an array of items.");
    json_t *calls = NULL; /* the open assistant message's tool_calls */
    size_t i;
    const json_t *it;
    json_array_foreach(input, i, it)
    {
        char param[64];
        snprintf(param, sizeof param, "input[%zu]", i);
        const char *type = json_string_value(json_object_get(it, "type"));
        const char *role = json_string_value(json_object_get(it, "role"));
        if ((!type && role) || (type && strcmp(type, "message") == 0)) {
            char sub[96];
            snprintf(sub, sizeof sub, "%s.content", param);
            json_t *c = message_content(json_object_get(it, "content"), sub, err);
            if (!c)
                return SKIFF_EINVAL;
            if (!role) {
                json_decref(c);
                return rbad(err, param, "A message item needs a role.");
            }
            if (json_array_append_new(msgs, json_pack("{s:s, s:o}", "role", role, "content", c)))
                return SKIFF_ENOMEM;
            calls = NULL;
        } else if (type && strcmp(type, "function_call") == 0) {
            const json_t *id = json_object_get(it, "call_id");
            const json_t *name = json_object_get(it, "name");
            const json_t *args = json_object_get(it, "arguments");
            if (!json_is_string(id) || !json_is_string(name))
                return rbad(err, param, "A function_call item needs call_id and name.");
            const char *a = json_string_value(args);
            json_t *call = json_pack("{s:O, s:s, s:{s:O, s:s}}", "id", id, "type", "function",
                                     "function", "name", name, "arguments", a ? a : "");
            if (!call)
                return SKIFF_ENOMEM;
            const json_t *extra = json_object_get(it, "extra_content");
            if (extra)
                json_object_set(call, "extra_content", (json_t *)extra);
            if (!calls) {
                calls = json_array();
                if (json_array_append_new(msgs, json_pack("{s:s, s:n, s:o}", "role", "assistant",
                                                          "content", "tool_calls", calls))) {
                    json_decref(call);
                    return SKIFF_ENOMEM;
                }
            }
            if (json_array_append_new(calls, call))
                return SKIFF_ENOMEM;
        } else if (type && strcmp(type, "function_call_output") == 0) {
            const json_t *id = json_object_get(it, "call_id");
            const json_t *output = json_object_get(it, "output");
            if (!json_is_string(id))
                return rbad(err, param, "A function_call_output item needs call_id.");
            json_t *o = json_is_string(output) ? json_incref((json_t *)output) : NULL;
            if (!o) {
                char *s = output ? json_dumps(output, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
                o = json_string(s ? s : "");
                free(s);
            }
            if (json_array_append_new(msgs, json_pack("{s:s, s:O, s:o}", "role", "tool",
                                                      "tool_call_id", id, "content", o)))
                return SKIFF_ENOMEM;
            calls = NULL;
        } else if (type && strcmp(type, "reasoning") == 0) {
            continue; /* thoughts are not sent back; the signature rides on the calls */
        } else {
            return skiff_oai_error_set(err, 400, param, NULL,
                                       "Input item type \"%s\" is not supported (message, "
                                       "function_call, function_call_output, reasoning).",
                                       type ? type : "(none)");
        }
    }
    return 0;
}

static int
copy(json_t *to, const char *tname, const json_t *from, const char *fname)
{
    const json_t *v = json_object_get(from, fname);
    return v ? json_object_set(to, tname, (json_t *)v) : 0;
}

json_t *
skiff_oai_responses_to_chat(const json_t *req, struct skiff_oai_error *err)
{
    if (!json_is_object(req)) {
        rbad(err, NULL, "The request body must be a JSON object.");
        return NULL;
    }
    const json_t *prev = json_object_get(req, "previous_response_id");
    if (prev && !json_is_null(prev)) {
        rbad(err, "previous_response_id",
             "previous_response_id is not supported: this relay stores no responses (store: "
             "false). Send the whole conversation in input.");
        return NULL;
    }
    json_t *msgs = json_array();
    json_t *chat = json_pack("{s:o}", "messages", msgs);
    if (!chat)
        goto nomem;
    const json_t *ins = json_object_get(req, "instructions");
    if (json_is_string(ins) &&
        json_array_append_new(msgs, json_pack("{s:s, s:O}", "role", "system", "content", ins)))
        goto nomem;
    int rc = input_items(json_object_get(req, "input"), msgs, err);
    if (rc == SKIFF_ENOMEM)
        goto nomem;
    if (rc)
        goto fail;
    if (copy(chat, "model", req, "model") || copy(chat, "temperature", req, "temperature") ||
        copy(chat, "top_p", req, "top_p") ||
        copy(chat, "parallel_tool_calls", req, "parallel_tool_calls") ||
        copy(chat, "stream", req, "stream") ||
        copy(chat, "max_completion_tokens", req, "max_output_tokens") ||
        copy(chat, "extra_body", req, "extra_body") || copy(chat, "google", req, "google"))
        goto nomem;
    const json_t *effort = json_object_get(json_object_get(req, "reasoning"), "effort");
    if (effort && !json_is_null(effort) &&
        json_object_set(chat, "reasoning_effort", (json_t *)effort))
        goto nomem;
    const json_t *fmt = json_object_get(json_object_get(req, "text"), "format");
    const char *ft = json_string_value(json_object_get(fmt, "type"));
    if (ft && strcmp(ft, "json_schema") == 0) {
        if (json_object_set_new(chat, "response_format",
                                json_pack("{s:s, s:{s:O*}}", "type", "json_schema", "json_schema",
                                          "schema", json_object_get(fmt, "schema"))))
            goto nomem;
    } else if (ft && strcmp(ft, "json_object") == 0) {
        if (json_object_set_new(chat, "response_format", json_pack("{s:s}", "type", "json_object")))
            goto nomem;
    }
    const json_t *tools = json_object_get(req, "tools");
    if (json_is_array(tools)) {
        json_t *ct = json_array();
        if (json_object_set_new(chat, "tools", ct))
            goto nomem;
        size_t i;
        const json_t *t;
        json_array_foreach(tools, i, t)
        {
            const char *type = json_string_value(json_object_get(t, "type"));
            json_t *fn = json_object();
            if (!fn || json_array_append_new(
                           ct, json_pack("{s:s, s:o}", "type", type ? type : "", "function", fn)))
                goto nomem;
            if (copy(fn, "name", t, "name") || copy(fn, "description", t, "description") ||
                copy(fn, "parameters", t, "parameters"))
                goto nomem;
        }
    }
    const json_t *tc = json_object_get(req, "tool_choice");
    if (json_is_string(tc)) {
        if (json_object_set(chat, "tool_choice", (json_t *)tc))
            goto nomem;
    } else if (json_is_object(tc)) {
        const json_t *name = json_object_get(tc, "name");
        json_t *v = json_is_string(name)
                        ? json_pack("{s:s, s:{s:O}}", "type", "function", "function", "name", name)
                        : json_pack("{s:s}", "type", "invalid");
        if (json_object_set_new(chat, "tool_choice", v))
            goto nomem;
    }
    return chat;
nomem:
    skiff_oai_error_set(err, 500, NULL, NULL, "skiff ran out of memory translating the request.");
fail:
    json_decref(chat);
    return NULL;
}

/* ---- The answer: chat.completion → Response ---- */

static void
item_id(const char *prefix, char *out, size_t len)
{
    char id[SKIFF_OAI_CALL_ID_LEN + 1];
    skiff_oai_call_id(id);
    snprintf(out, len, "%s_%s", prefix, id + 5);
}

static json_t *
usage_of(const json_t *u)
{
    if (!json_is_object(u))
        return json_null();
    return json_pack(
        "{s:O, s:{s:O}, s:O, s:{s:O}, s:O}", "input_tokens", json_object_get(u, "prompt_tokens"),
        "input_tokens_details", "cached_tokens",
        json_object_get(json_object_get(u, "prompt_tokens_details"), "cached_tokens"),
        "output_tokens", json_object_get(u, "completion_tokens"), "output_tokens_details",
        "reasoning_tokens",
        json_object_get(json_object_get(u, "completion_tokens_details"), "reasoning_tokens"),
        "total_tokens", json_object_get(u, "total_tokens"));
}

static json_t *
reasoning_item(const char *text)
{
    char id[40];
    item_id("rs", id, sizeof id);
    return json_pack("{s:s, s:s, s:[{s:s, s:s}]}", "id", id, "type", "reasoning", "summary", "type",
                     "summary_text", "text", text);
}

static json_t *
message_item(const char *id, const char *text, const char *status)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:[{s:s, s:s, s:[]}]}", "id", id, "type", "message",
                     "status", status, "role", "assistant", "content", "type", "output_text",
                     "text", text, "annotations");
}

/* A function_call item for a chat tool call (borrowed). */
static json_t *
call_item(const json_t *call, const char *status)
{
    const char *cid = json_string_value(json_object_get(call, "id"));
    const json_t *fn = json_object_get(call, "function");
    char id[64];
    snprintf(id, sizeof id, "fc_%s", cid && strlen(cid) > 5 ? cid + 5 : "");
    json_t *it =
        json_pack("{s:s, s:s, s:s, s:s, s:O, s:O}", "id", id, "type", "function_call", "status",
                  status, "call_id", cid ? cid : "", "name", json_object_get(fn, "name"),
                  "arguments", json_object_get(fn, "arguments"));
    const json_t *extra = json_object_get(call, "extra_content");
    if (it && extra && json_object_set(it, "extra_content", (json_t *)extra)) {
        json_decref(it);
        return NULL;
    }
    return it;
}

/* status and incomplete_details from a finish_reason. */
static const char *
status_of(const char *fr, const char **reason)
{
    *reason = NULL;
    if (fr && strcmp(fr, "length") == 0)
        *reason = "max_output_tokens";
    else if (fr && strcmp(fr, "content_filter") == 0)
        *reason = "content_filter";
    return *reason ? "incomplete" : "completed";
}

static json_t *
response_shell(const char *id, long created, const char *model, const char *status,
               const char *reason, json_t *output, json_t *usage)
{
    return json_pack("{s:s, s:s, s:I, s:s, s:s, s:o, s:o, s:n, s:o}", "id", id, "object",
                     "response", "created_at", (json_int_t)created, "status", status, "model",
                     model, "output", output, "usage", usage, "error", "incomplete_details",
                     reason ? json_pack("{s:s}", "reason", reason) : json_null());
}

json_t *
skiff_oai_response_from_chat(const json_t *completion)
{
    const json_t *ch = json_array_get(json_object_get(completion, "choices"), 0);
    const json_t *msg = json_object_get(ch, "message");
    const char *fr = json_string_value(json_object_get(ch, "finish_reason"));
    const char *reason;
    const char *status = status_of(fr, &reason);
    json_t *output = json_array();
    if (!output)
        return NULL;
    const char *thought = json_string_value(json_object_get(msg, "reasoning_content"));
    const char *text = json_string_value(json_object_get(msg, "content"));
    const char *refusal = json_string_value(json_object_get(msg, "refusal"));
    const json_t *calls = json_object_get(msg, "tool_calls");
    if (thought && json_array_append_new(output, reasoning_item(thought)))
        goto fail;
    if (refusal) {
        char id[40];
        item_id("msg", id, sizeof id);
        if (json_array_append_new(output, json_pack("{s:s, s:s, s:s, s:s, s:[{s:s, s:s}]}", "id",
                                                    id, "type", "message", "status", "completed",
                                                    "role", "assistant", "content", "type",
                                                    "refusal", "refusal", refusal)))
            goto fail;
    } else if ((text && text[0]) || !json_array_size(calls)) {
        char id[40];
        item_id("msg", id, sizeof id);
        if (json_array_append_new(output, message_item(id, text ? text : "", "completed")))
            goto fail;
    }
    size_t i;
    const json_t *call;
    json_array_foreach(calls, i, call)
    {
        if (json_array_append_new(output, call_item(call, "completed")))
            goto fail;
    }
    const char *cid = json_string_value(json_object_get(completion, "id"));
    char id[192];
    snprintf(id, sizeof id, "resp_%s", cid && strncmp(cid, "chatcmpl-", 9) == 0 ? cid + 9 : "");
    return response_shell(id, (long)json_integer_value(json_object_get(completion, "created")),
                          json_string_value(json_object_get(completion, "model")), status, reason,
                          output, usage_of(json_object_get(completion, "usage")));
fail:
    json_decref(output);
    return NULL;
}

/* ---- The stream ---- */

enum open_kind { OPEN_NONE, OPEN_MESSAGE, OPEN_REASONING };

struct skiff_oai_rstream {
    struct skiff_oai_answer_opts o;
    char *model;
    int started, over, called;
    int calls; /* calls answered (parallel_calls 0 keeps the first only) */
    long seq;
    char id[192];
    char reason[40];
    json_t *output; /* the items done so far; owned */
    json_t *usage;  /* the latest usageMetadata; owned */
    enum open_kind open;
    char open_id[64];
    size_t open_index;
    struct skiff_buf text; /* the open item's text so far */
};

struct skiff_oai_rstream *
skiff_oai_rstream_new(const struct skiff_oai_answer_opts *o)
{
    struct skiff_oai_rstream *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->o = *o;
    s->model = strdup(o->model ? o->model : "");
    s->output = json_array();
    if (!s->model || !s->output) {
        skiff_oai_rstream_free(s);
        return NULL;
    }
    s->o.model = s->model;
    skiff_buf_init(&s->text, 64u << 20);
    return s;
}

void
skiff_oai_rstream_free(struct skiff_oai_rstream *s)
{
    if (!s)
        return;
    json_decref(s->output);
    json_decref(s->usage);
    skiff_buf_release(&s->text);
    free(s->model);
    free(s);
}

/* "event: type\ndata: {type, sequence_number, ...ev}\n\n"; takes ev. */
static int
ev(struct skiff_oai_rstream *s, const char *type, json_t *e, struct skiff_buf *out)
{
    if (!e)
        return SKIFF_ENOMEM;
    if (json_object_set_new(e, "type", json_string(type)) ||
        json_object_set_new(e, "sequence_number", json_integer(s->seq++))) {
        json_decref(e);
        return SKIFF_ENOMEM;
    }
    /* type and sequence_number first, as OpenAI writes them. */
    json_t *ordered =
        json_pack("{s:s, s:I}", "type", type, "sequence_number", (json_int_t)(s->seq - 1));
    if (!ordered || json_object_update_missing(ordered, e)) {
        json_decref(ordered);
        json_decref(e);
        return SKIFF_ENOMEM;
    }
    json_decref(e);
    char *txt = json_dumps(ordered, JSON_COMPACT);
    json_decref(ordered);
    if (!txt)
        return SKIFF_ENOMEM;
    int rc = skiff_buf_printf(out, "event: %s\ndata: %s\n\n", type, txt);
    free(txt);
    s->started = 1;
    return rc;
}

static json_t *
shell(struct skiff_oai_rstream *s, const char *status, const char *reason)
{
    json_t *u = s->usage ? skiff_oai_usage(s->usage) : NULL;
    json_t *usage = usage_of(u);
    json_decref(u);
    return response_shell(s->id, s->o.created, s->model, status, reason, json_deep_copy(s->output),
                          usage);
}

static int
start(struct skiff_oai_rstream *s, const json_t *gev, struct skiff_buf *out)
{
    if (s->started)
        return 0;
    const char *rid = json_string_value(json_object_get(gev, "responseId"));
    if (rid && rid[0])
        snprintf(s->id, sizeof s->id, "resp_%s", rid);
    else
        item_id("resp", s->id, sizeof s->id);
    int rc = ev(s, "response.created",
                json_pack("{s:o}", "response", shell(s, "in_progress", NULL)), out);
    if (!rc)
        rc = ev(s, "response.in_progress",
                json_pack("{s:o}", "response", shell(s, "in_progress", NULL)), out);
    return rc;
}

static int
close_open(struct skiff_oai_rstream *s, struct skiff_buf *out)
{
    int rc = 0;
    const char *text = s->text.data ? s->text.data : "";
    json_t *item = NULL;
    if (s->open == OPEN_MESSAGE) {
        item = message_item(s->open_id, text, "completed");
        rc = ev(s, "response.output_text.done",
                json_pack("{s:s, s:I, s:i, s:s}", "item_id", s->open_id, "output_index",
                          (json_int_t)s->open_index, "content_index", 0, "text", text),
                out);
        if (!rc)
            rc = ev(s, "response.content_part.done",
                    json_pack("{s:s, s:I, s:i, s:{s:s, s:s, s:[]}}", "item_id", s->open_id,
                              "output_index", (json_int_t)s->open_index, "content_index", 0, "part",
                              "type", "output_text", "text", text, "annotations"),
                    out);
    } else if (s->open == OPEN_REASONING) {
        item = json_pack("{s:s, s:s, s:[{s:s, s:s}]}", "id", s->open_id, "type", "reasoning",
                         "summary", "type", "summary_text", "text", text);
        rc = ev(s, "response.reasoning_summary_text.done",
                json_pack("{s:s, s:I, s:i, s:s}", "item_id", s->open_id, "output_index",
                          (json_int_t)s->open_index, "summary_index", 0, "text", text),
                out);
        if (!rc)
            rc = ev(s, "response.reasoning_summary_part.done",
                    json_pack("{s:s, s:I, s:i, s:{s:s, s:s}}", "item_id", s->open_id,
                              "output_index", (json_int_t)s->open_index, "summary_index", 0, "part",
                              "type", "summary_text", "text", text),
                    out);
    } else {
        return 0;
    }
    if (!item)
        return SKIFF_ENOMEM;
    if (!rc)
        rc = ev(s, "response.output_item.done",
                json_pack("{s:I, s:O}", "output_index", (json_int_t)s->open_index, "item", item),
                out);
    if (!rc && json_array_append_new(s->output, item))
        rc = SKIFF_ENOMEM;
    else if (rc)
        json_decref(item);
    s->open = OPEN_NONE;
    skiff_buf_reset(&s->text);
    return rc;
}

static int
open_item(struct skiff_oai_rstream *s, enum open_kind kind, struct skiff_buf *out)
{
    if (s->open == kind)
        return 0;
    int rc = close_open(s, out);
    if (rc)
        return rc;
    s->open = kind;
    s->open_index = json_array_size(s->output);
    item_id(kind == OPEN_MESSAGE ? "msg" : "rs", s->open_id, sizeof s->open_id);
    json_t *item =
        kind == OPEN_MESSAGE
            ? json_pack("{s:s, s:s, s:s, s:s, s:[]}", "id", s->open_id, "type", "message", "status",
                        "in_progress", "role", "assistant", "content")
            : json_pack("{s:s, s:s, s:[]}", "id", s->open_id, "type", "reasoning", "summary");
    rc = ev(s, "response.output_item.added",
            json_pack("{s:I, s:o}", "output_index", (json_int_t)s->open_index, "item", item), out);
    if (rc)
        return rc;
    if (kind == OPEN_MESSAGE)
        return ev(s, "response.content_part.added",
                  json_pack("{s:s, s:I, s:i, s:{s:s, s:s, s:[]}}", "item_id", s->open_id,
                            "output_index", (json_int_t)s->open_index, "content_index", 0, "part",
                            "type", "output_text", "text", "", "annotations"),
                  out);
    return ev(s, "response.reasoning_summary_part.added",
              json_pack("{s:s, s:I, s:i, s:{s:s, s:s}}", "item_id", s->open_id, "output_index",
                        (json_int_t)s->open_index, "summary_index", 0, "part", "type",
                        "summary_text", "text", ""),
              out);
}

static int
call(struct skiff_oai_rstream *s, const json_t *part, struct skiff_buf *out)
{
    s->called = 1;
    if (!s->o.parallel_calls && s->calls > 0)
        return 0;
    s->calls++;
    int rc = close_open(s, out);
    if (rc)
        return rc;
    json_t *tc = skiff_oai_tool_call(part, &s->o, 0, 0);
    if (!tc)
        return SKIFF_ENOMEM;
    json_t *done = call_item(tc, "completed");
    json_t *added = call_item(tc, "in_progress");
    json_decref(tc);
    size_t idx = json_array_size(s->output);
    if (!done || !added) {
        json_decref(done);
        json_decref(added);
        return SKIFF_ENOMEM;
    }
    json_object_set_new(added, "arguments", json_string(""));
    const char *iid = json_string_value(json_object_get(done, "id"));
    const json_t *args = json_object_get(done, "arguments");
    rc = ev(s, "response.output_item.added",
            json_pack("{s:I, s:o}", "output_index", (json_int_t)idx, "item", added), out);
    if (!rc)
        rc = ev(s, "response.function_call_arguments.delta",
                json_pack("{s:s, s:I, s:O}", "item_id", iid, "output_index", (json_int_t)idx,
                          "delta", args),
                out);
    if (!rc)
        rc = ev(s, "response.function_call_arguments.done",
                json_pack("{s:s, s:I, s:O}", "item_id", iid, "output_index", (json_int_t)idx,
                          "arguments", args),
                out);
    if (!rc)
        rc = ev(s, "response.output_item.done",
                json_pack("{s:I, s:O}", "output_index", (json_int_t)idx, "item", done), out);
    if (!rc && json_array_append_new(s->output, done))
        return SKIFF_ENOMEM;
    if (rc)
        json_decref(done);
    return rc;
}

static int
text(struct skiff_oai_rstream *s, enum open_kind kind, const char *t, struct skiff_buf *out)
{
    int rc = open_item(s, kind, out);
    if (rc)
        return rc;
    if ((rc = skiff_buf_adds(&s->text, t)))
        return rc;
    if (kind == OPEN_MESSAGE)
        return ev(s, "response.output_text.delta",
                  json_pack("{s:s, s:I, s:i, s:s}", "item_id", s->open_id, "output_index",
                            (json_int_t)s->open_index, "content_index", 0, "delta", t),
                  out);
    return ev(s, "response.reasoning_summary_text.delta",
              json_pack("{s:s, s:I, s:i, s:s}", "item_id", s->open_id, "output_index",
                        (json_int_t)s->open_index, "summary_index", 0, "delta", t),
              out);
}

static int
failed(struct skiff_oai_rstream *s, const struct skiff_oai_error *e, struct skiff_buf *out)
{
    s->over = 1;
    int rc = ev(s, "error",
                json_pack("{s:s?, s:s, s:s?}", "code", e->code[0] ? e->code : NULL, "message",
                          e->message, "param", e->param[0] ? e->param : NULL),
                out);
    if (rc)
        return rc;
    json_t *r = shell(s, "failed", NULL);
    if (!r ||
        json_object_set_new(r, "error",
                            json_pack("{s:s, s:s}", "code", e->code[0] ? e->code : "server_error",
                                      "message", e->message))) {
        json_decref(r);
        return SKIFF_ENOMEM;
    }
    return ev(s, "response.failed", json_pack("{s:o}", "response", r), out);
}

int
skiff_oai_rstream_feed(struct skiff_oai_rstream *s, const char *json, size_t len,
                       struct skiff_buf *out)
{
    if (s->over)
        return SKIFF_EINVAL;
    struct skiff_oai_error e;
    json_t *g = json_loadb(json, len, 0, NULL);
    int rc = 0;
    if (!json_is_object(g) || json_object_get(g, "error")) {
        if (g)
            skiff_oai_error_from_google_json(0, g, &e);
        else
            skiff_oai_error_set(&e, 502, NULL, "bad_upstream_event",
                                "The Gemini API sent a stream event that is not JSON; the answer "
                                "is incomplete.");
        if (!s->id[0])
            item_id("resp", s->id, sizeof s->id);
        rc = failed(s, &e, out);
        json_decref(g);
        return rc ? rc : SKIFF_EINVAL;
    }
    if ((rc = start(s, g, out)))
        goto out;
    const json_t *um = json_object_get(g, "usageMetadata");
    if (json_is_object(um)) {
        json_decref(s->usage);
        s->usage = json_incref((json_t *)um);
    }
    const json_t *cand = json_array_get(json_object_get(g, "candidates"), 0);
    if (!cand) {
        char *refusal = skiff_oai_block_refusal(g);
        if (refusal)
            snprintf(s->reason, sizeof s->reason, "%s", "PROHIBITED_CONTENT");
        if (refusal)
            rc = text(s, OPEN_MESSAGE, refusal, out);
        free(refusal);
        goto out;
    }
    size_t i;
    const json_t *p;
    json_array_foreach(json_object_get(json_object_get(cand, "content"), "parts"), i, p)
    {
        const char *t = json_string_value(json_object_get(p, "text"));
        if (json_object_get(p, "functionCall"))
            rc = call(s, p, out);
        else if (t && t[0] && json_is_true(json_object_get(p, "thought")))
            rc = s->o.include_thoughts ? text(s, OPEN_REASONING, t, out) : 0;
        else if (t && t[0])
            rc = text(s, OPEN_MESSAGE, t, out);
        if (rc)
            goto out;
    }
    const char *fr = json_string_value(json_object_get(cand, "finishReason"));
    if (fr && !s->reason[0])
        snprintf(s->reason, sizeof s->reason, "%s", fr);
out:
    json_decref(g);
    return rc;
}

int
skiff_oai_rstream_end(struct skiff_oai_rstream *s, struct skiff_buf *out)
{
    if (s->over)
        return SKIFF_EINVAL;
    if (!s->reason[0]) {
        struct skiff_oai_error e;
        skiff_oai_error_set(&e, 502, NULL, "incomplete_stream",
                            "The Gemini API's stream ended before its last event; the answer is "
                            "incomplete.");
        if (!s->id[0])
            item_id("resp", s->id, sizeof s->id);
        int rc = failed(s, &e, out);
        return rc ? rc : SKIFF_EINVAL;
    }
    int rc = close_open(s, out);
    if (rc)
        return rc;
    s->over = 1;
    const char *reason;
    const char *status = status_of(skiff_oai_finish_reason(s->reason, s->called), &reason);
    return ev(s, reason ? "response.incomplete" : "response.completed",
              json_pack("{s:o}", "response", shell(s, status, reason)), out);
}

int
skiff_oai_rstream_fail(struct skiff_oai_rstream *s, const struct skiff_oai_error *e,
                       struct skiff_buf *out)
{
    if (s->over)
        return 0;
    if (!s->id[0])
        item_id("resp", s->id, sizeof s->id);
    return failed(s, e, out);
}
