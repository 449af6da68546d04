/*
 * OpenAI chat request → Gemini. Each concern has its own function: messages (roles, parts,
 * tool calls and results), tools and tool_choice, response_format, reasoning, and the
 * sampling fields. Every refusal names the request field at fault in err->param.
 */
#include "doors/openai/chat_request.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "gemini/thinking.h"

struct ctx {
    const struct skiff_oai_chat_opts *o;
    struct skiff_oai_chat *out;
    struct skiff_oai_error *err;
    json_t *contents; /* the Gemini contents being built; borrowed from the body */
    json_t *system;   /* systemInstruction parts, or NULL */
    char param[128];
};

static int
bad(struct ctx *c, const char *param, const char *fmt, const char *detail)
{
    return skiff_oai_error_set(c->err, 400, param, NULL, fmt, detail ? detail : "");
}

static int
nomem(struct ctx *c)
{
    skiff_oai_error_set(c->err, 500, NULL, NULL,
                        "skiff ran out of memory translating the request.");
    return SKIFF_ENOMEM;
}

/* Appends part (stolen) to the last content when it has role, else to a new content. */
static int
add_part(struct ctx *c, const char *role, json_t *part)
{
    if (!part)
        return SKIFF_ENOMEM;
    size_t n = json_array_size(c->contents);
    json_t *last = n ? json_array_get(c->contents, n - 1) : NULL;
    if (!last || strcmp(json_string_value(json_object_get(last, "role")), role) != 0) {
        last = json_pack("{s:s, s:[]}", "role", role, "parts");
        if (!last || json_array_append_new(c->contents, last)) {
            json_decref(part);
            return SKIFF_ENOMEM;
        }
    }
    return json_array_append_new(json_object_get(last, "parts"), part) ? SKIFF_ENOMEM : 0;
}

static int
add_text(struct ctx *c, const char *role, const char *s)
{
    return add_part(c, role, json_pack("{s:s}", "text", s));
}

/* "data:<mime>;base64,<data>" → an inlineData part; NULL (a 400 in err) if not that form. */
static json_t *
data_uri(struct ctx *c, const char *uri, const char *param)
{
    const char *comma = strchr(uri, ',');
    const char *semi = strstr(uri, ";base64,");
    if (strncmp(uri, "data:", 5) != 0 || !comma || !semi || semi + 7 != comma || semi == uri + 5) {
        bad(c, param, "%s", "A data: URI must have the form data:<mime type>;base64,<data>.");
        return NULL;
    }
    json_t *part = json_pack("{s:{s:s%, s:s}}", "inlineData", "mimeType", uri + 5,
                             (size_t)(semi - (uri + 5)), "data", comma + 1);
    if (!part)
        nomem(c);
    return part;
}

/* An http(s) image: a placeholder part the door fills, listed in out->media. */
static json_t *
url_media(struct ctx *c, const char *url, const char *param)
{
    json_t *inl = json_pack("{s:s, s:s}", "mimeType", "", "data", "");
    json_t *entry = json_pack("{s:s, s:s, s:O}", "url", url, "param", param, "inlineData", inl);
    json_t *part = json_pack("{s:o}", "inlineData", inl);
    if (!entry || !part || json_array_append_new(c->out->media, entry)) {
        json_decref(part);
        nomem(c);
        return NULL;
    }
    return part;
}

static const char *
audio_mime(const char *format)
{
    static const char *const map[][2] = {{"wav", "audio/wav"},   {"mp3", "audio/mp3"},
                                         {"flac", "audio/flac"}, {"aac", "audio/aac"},
                                         {"ogg", "audio/ogg"},   {"opus", "audio/ogg"},
                                         {"pcm16", "audio/pcm"}, {"aiff", "audio/aiff"}};
    for (size_t i = 0; format && i < sizeof map / sizeof map[0]; i++)
        if (strcmp(format, map[i][0]) == 0)
            return map[i][1];
    return NULL;
}

/* One element of a user message's content array → one Gemini part (NULL: err is set). */
static json_t *
user_part(struct ctx *c, const json_t *p, const char *param)
{
    char sub[192]; /* param (under 160 bytes) and the longest suffix; the error keeps 127 */
    const char *type = json_string_value(json_object_get(p, "type"));
    if (!type) {
        bad(c, param, "%s",
            "Each content part needs a \"type\" (text, image_url, input_audio, file).");
        return NULL;
    }
    if (strcmp(type, "text") == 0) {
        const char *t = json_string_value(json_object_get(p, "text"));
        snprintf(sub, sizeof sub, "%s.text", param);
        if (!t) {
            bad(c, sub, "%s", "A text part needs a string \"text\".");
            return NULL;
        }
        json_t *part = json_pack("{s:s}", "text", t);
        if (!part)
            nomem(c);
        return part;
    }
    if (strcmp(type, "image_url") == 0) {
        const json_t *iu = json_object_get(p, "image_url");
        const char *url = json_is_string(iu) ? json_string_value(iu)
                                             : json_string_value(json_object_get(iu, "url"));
        snprintf(sub, sizeof sub, "%s.image_url.url", param);
        if (!url) {
            bad(c, sub, "%s",
                "An image_url part needs image_url.url (a data: URI or an http(s) URL).");
            return NULL;
        }
        if (strncmp(url, "data:", 5) == 0)
            return data_uri(c, url, sub);
        if (strncmp(url, "https://", 8) == 0 || strncmp(url, "http://", 7) == 0)
            return url_media(c, url, sub);
        bad(c, sub, "%s", "image_url.url must be a data: URI or an http(s) URL.");
        return NULL;
    }
    if (strcmp(type, "input_audio") == 0) {
        const json_t *a = json_object_get(p, "input_audio");
        const char *data = json_string_value(json_object_get(a, "data"));
        const char *format = json_string_value(json_object_get(a, "format"));
        const char *mime = audio_mime(format);
        snprintf(sub, sizeof sub, "%s.input_audio", param);
        if (!data || !mime) {
            bad(c, sub, "%s",
                "An input_audio part needs base64 \"data\" and a \"format\" (wav, mp3, flac, aac, "
                "ogg, opus, pcm16, aiff).");
            return NULL;
        }
        json_t *part = json_pack("{s:{s:s, s:s}}", "inlineData", "mimeType", mime, "data", data);
        if (!part)
            nomem(c);
        return part;
    }
    if (strcmp(type, "file") == 0) {
        const json_t *f = json_object_get(p, "file");
        const char *fd = json_string_value(json_object_get(f, "file_data"));
        snprintf(sub, sizeof sub, "%s.file.file_data", param);
        if (!fd) {
            bad(c, sub, "%s",
                "A file part needs file.file_data (a data:application/pdf;base64,... URI); "
                "file_id is not supported by this relay.");
            return NULL;
        }
        if (strncmp(fd, "data:", 5) == 0)
            return data_uri(c, fd, sub);
        /* OpenAI's SDKs also send bare base64; OpenAI takes it as a PDF. */
        json_t *part =
            json_pack("{s:{s:s, s:s}}", "inlineData", "mimeType", "application/pdf", "data", fd);
        if (!part)
            nomem(c);
        return part;
    }
    bad(c, param, "Content part type \"%s\" is not supported (text, image_url, input_audio, file).",
        type);
    return NULL;
}

/* The text of a system/developer/assistant/tool content: a string or an array of text
 * parts (refusal parts count as text), joined. New reference to a string, or NULL. */
static char *
content_text(const json_t *content, int *ok)
{
    *ok = 1;
    if (json_is_string(content))
        return strdup(json_string_value(content));
    if (!json_is_array(content)) {
        *ok = json_is_null(content) || !content;
        return NULL;
    }
    size_t total = 1, i;
    const json_t *p;
    json_array_foreach(content, i, p)
    {
        const char *t = json_string_value(json_object_get(p, "text"));
        if (!t)
            t = json_string_value(json_object_get(p, "refusal"));
        if (!t) {
            *ok = 0;
            return NULL;
        }
        total += strlen(t);
    }
    char *s = malloc(total);
    if (!s)
        return NULL;
    s[0] = '\0';
    size_t at = 0;
    json_array_foreach(content, i, p)
    {
        const char *t = json_string_value(json_object_get(p, "text"));
        if (!t)
            t = json_string_value(json_object_get(p, "refusal"));
        size_t l = strlen(t);
        memcpy(s + at, t, l + 1);
        at += l;
    }
    return s;
}

static int
system_message(struct ctx *c, const json_t *m, const char *param)
{
    int ok;
    char *t = content_text(json_object_get(m, "content"), &ok);
    char sub[160];
    snprintf(sub, sizeof sub, "%s.content", param);
    if (!ok)
        return bad(c, sub, "%s",
                   "A system or developer message's content must be a string or text parts.");
    if (!t)
        return 0;
    if (!c->system && !(c->system = json_array())) {
        free(t);
        return nomem(c);
    }
    int rc = json_array_append_new(c->system, json_pack("{s:s}", "text", t)) ? nomem(c) : 0;
    free(t);
    return rc;
}

static int
user_message(struct ctx *c, const json_t *m, const char *param)
{
    const json_t *content = json_object_get(m, "content");
    char sub[160];
    if (json_is_string(content))
        return add_text(c, "user", json_string_value(content)) ? nomem(c) : 0;
    if (!json_is_array(content)) {
        snprintf(sub, sizeof sub, "%s.content", param);
        return bad(c, sub, "%s", "A user message's content must be a string or an array of parts.");
    }
    size_t i;
    const json_t *p;
    json_array_foreach(content, i, p)
    {
        snprintf(sub, sizeof sub, "%s.content[%zu]", param, i);
        json_t *part = user_part(c, p, sub);
        if (!part)
            return SKIFF_EINVAL;
        if (add_part(c, "user", part))
            return nomem(c);
    }
    return 0;
}

static const char *
call_signature(struct ctx *c, const json_t *call, const char *id)
{
    const char *sig = json_string_value(json_object_get(
        json_object_get(json_object_get(call, "extra_content"), "google"), "thought_signature"));
    if (sig && sig[0])
        return sig;
    if (c->o->lookup && id)
        return c->o->lookup(c->o->ud, id);
    return NULL;
}

/*
 * An assistant message: its text, then its tool_calls as functionCall parts of the same
 * model Content (parallel calls must travel together). The step's signature goes on its first
 * call: the call's own (extra_content or cache), else the first any call of the step has.
 */
static int
assistant_message(struct ctx *c, const json_t *m, const char *param)
{
    char sub[192];
    int ok;
    char *t = content_text(json_object_get(m, "content"), &ok);
    if (!ok) {
        snprintf(sub, sizeof sub, "%s.content", param);
        return bad(c, sub, "%s",
                   "An assistant message's content must be a string, text parts or null.");
    }
    if (t && t[0] && add_text(c, "model", t)) {
        free(t);
        return nomem(c);
    }
    free(t);
    const json_t *calls = json_object_get(m, "tool_calls");
    if (!calls || json_is_null(calls))
        return 0;
    snprintf(sub, sizeof sub, "%s.tool_calls", param);
    if (!json_is_array(calls))
        return bad(c, sub, "%s", "tool_calls must be an array.");
    json_t *first = NULL;
    const char *step_sig = NULL;
    size_t i;
    const json_t *call;
    json_array_foreach(calls, i, call)
    {
        const json_t *fn = json_object_get(call, "function");
        const char *id = json_string_value(json_object_get(call, "id"));
        const char *name = json_string_value(json_object_get(fn, "name"));
        const char *args = json_string_value(json_object_get(fn, "arguments"));
        snprintf(sub, sizeof sub, "%s.tool_calls[%zu]", param, i);
        if (!id || !name)
            return bad(c, sub, "%s", "A tool call needs an \"id\" and a function.name.");
        json_t *a = NULL;
        if (args && args[0]) {
            a = json_loads(args, JSON_DECODE_ANY, NULL);
            if (!json_is_object(a)) {
                json_decref(a);
                snprintf(sub, sizeof sub, "%s.tool_calls[%zu].function.arguments", param, i);
                return bad(c, sub, "%s",
                           "A tool call's arguments must be a JSON object, as a string.");
            }
        } else if (!(a = json_object())) {
            return nomem(c);
        }
        json_t *part = json_pack("{s:{s:s, s:o}}", "functionCall", "name", name, "args", a);
        if (!part)
            return nomem(c);
        if (!first)
            first = part;
        const char *sig = call_signature(c, call, id);
        if (sig && !step_sig)
            step_sig = sig;
        if (sig && part != first &&
            json_object_set_new(part, "thoughtSignature", json_string(sig))) {
            json_decref(part);
            return nomem(c);
        }
        if (add_part(c, "model", part) ||
            json_object_set_new(c->out->call_names, id, json_string(name)))
            return nomem(c);
    }
    if (first && step_sig && json_object_set_new(first, "thoughtSignature", json_string(step_sig)))
        return nomem(c);
    return 0;
}

/* Whether v holds a "$ref" key at any depth. */
static int
has_ref(const json_t *v, int depth)
{
    const char *k;
    const json_t *x;
    size_t i;
    if (depth > 64)
        return 1;
    if (json_is_object(v)) {
        json_object_foreach((json_t *)v, k,
                            x) if (strcmp(k, "$ref") == 0 || has_ref(x, depth + 1)) return 1;
    } else if (json_is_array(v)) {
        json_array_foreach(v, i, x) if (has_ref(x, depth + 1)) return 1;
    }
    return 0;
}

/* A tool message → a functionResponse part of the user turn; the function's name comes from
 * the call it answers. A result that is not a JSON object is wrapped as {"result": "<text>"};
 * so is an object holding a "$ref" key, which Gemini would read as a media reference and
 * refuse (a tool that returns a JSON Schema is the usual case). */
static int
tool_message(struct ctx *c, const json_t *m, const char *param)
{
    char sub[160];
    const char *id = json_string_value(json_object_get(m, "tool_call_id"));
    const char *name = id ? json_string_value(json_object_get(c->out->call_names, id)) : NULL;
    snprintf(sub, sizeof sub, "%s.tool_call_id", param);
    if (!id)
        return bad(c, sub, "%s", "A tool message needs the tool_call_id of the call it answers.");
    if (!name)
        return bad(c, sub,
                   "tool_call_id \"%s\" answers no tool call of an earlier assistant message.", id);
    int ok;
    char *t = content_text(json_object_get(m, "content"), &ok);
    if (!ok) {
        free(t);
        snprintf(sub, sizeof sub, "%s.content", param);
        return bad(c, sub, "%s", "A tool message's content must be a string or text parts.");
    }
    json_t *v = t ? json_loads(t, JSON_DECODE_ANY, NULL) : NULL;
    json_t *resp;
    if (json_is_object(v) && !has_ref(v, 0))
        resp = v;
    else {
        json_decref(v);
        resp = json_pack("{s:s}", "result", t ? t : "");
    }
    free(t);
    if (!resp)
        return nomem(c);
    json_t *part = json_pack("{s:{s:s, s:o}}", "functionResponse", "name", name, "response", resp);
    return add_part(c, "user", part) ? nomem(c) : 0;
}

static int
messages(struct ctx *c, const json_t *msgs)
{
    if (!json_is_array(msgs) || json_array_size(msgs) == 0)
        return bad(c, "messages", "%s", "messages must be a non-empty array.");
    size_t i;
    const json_t *m;
    json_array_foreach(msgs, i, m)
    {
        char param[64];
        snprintf(param, sizeof param, "messages[%zu]", i);
        const char *role = json_string_value(json_object_get(m, "role"));
        int rc;
        if (!role) {
            char sub[80];
            snprintf(sub, sizeof sub, "%s.role", param);
            return bad(c, sub, "%s",
                       "Each message needs a role (system, developer, user, assistant, tool).");
        }
        if (strcmp(role, "system") == 0 || strcmp(role, "developer") == 0)
            rc = system_message(c, m, param);
        else if (strcmp(role, "user") == 0)
            rc = user_message(c, m, param);
        else if (strcmp(role, "assistant") == 0)
            rc = assistant_message(c, m, param);
        else if (strcmp(role, "tool") == 0)
            rc = tool_message(c, m, param);
        else {
            char sub[80];
            snprintf(sub, sizeof sub, "%s.role", param);
            return bad(c, sub,
                       "Role \"%s\" is not one of system, developer, user, assistant, tool.", role);
        }
        if (rc)
            return rc;
    }
    if (json_array_size(c->contents) == 0)
        return bad(c, "messages", "%s",
                   "messages holds only system or developer messages; add a user message.");
    return 0;
}

static int
tools(struct ctx *c, const json_t *req, json_t *body)
{
    const json_t *ts = json_object_get(req, "tools");
    if (!ts || json_is_null(ts))
        return 0;
    if (!json_is_array(ts))
        return bad(c, "tools", "%s", "tools must be an array of {type: function, function}.");
    if (json_array_size(ts) == 0)
        return 0;
    json_t *decls = json_array();
    if (!decls ||
        json_object_set_new(body, "tools", json_pack("[{s:o}]", "functionDeclarations", decls)))
        return nomem(c);
    size_t i;
    const json_t *t;
    json_array_foreach(ts, i, t)
    {
        char param[64];
        snprintf(param, sizeof param, "tools[%zu]", i);
        const char *type = json_string_value(json_object_get(t, "type"));
        const json_t *fn = json_object_get(t, "function");
        const char *name = json_string_value(json_object_get(fn, "name"));
        if (!type || strcmp(type, "function") != 0)
            return bad(c, param, "Tool type \"%s\" is not supported; only function tools are.",
                       type ? type : "(none)");
        if (!name)
            return bad(c, param, "%s", "A function tool needs function.name.");
        json_t *d = json_pack("{s:s}", "name", name);
        const json_t *desc = json_object_get(fn, "description");
        const json_t *params = json_object_get(fn, "parameters");
        if (!d || json_array_append_new(decls, d))
            return nomem(c);
        if (json_is_string(desc) && json_object_set(d, "description", (json_t *)desc))
            return nomem(c);
        /* JSON Schema as given: parametersJsonSchema keeps $ref, $defs, additionalProperties. */
        if (json_is_object(params) &&
            json_object_set_new(d, "parametersJsonSchema", json_deep_copy(params)))
            return nomem(c);
    }
    return 0;
}

static int
tool_choice(struct ctx *c, const json_t *req, json_t *body)
{
    const json_t *tc = json_object_get(req, "tool_choice");
    if (!tc || json_is_null(tc))
        return 0;
    json_t *fcc;
    const char *s = json_string_value(tc);
    if (s) {
        const char *mode = strcmp(s, "none") == 0       ? "NONE"
                           : strcmp(s, "auto") == 0     ? "AUTO"
                           : strcmp(s, "required") == 0 ? "ANY"
                                                        : NULL;
        if (!mode)
            return bad(c, "tool_choice",
                       "tool_choice \"%s\" is not one of none, auto, required, or {type: function, "
                       "function: {name}}.",
                       s);
        fcc = json_pack("{s:s}", "mode", mode);
    } else {
        const char *name =
            json_string_value(json_object_get(json_object_get(tc, "function"), "name"));
        if (!name)
            return bad(c, "tool_choice", "%s",
                       "tool_choice must be none, auto, required, or {type: function, function: "
                       "{name}}.");
        fcc = json_pack("{s:s, s:[s]}", "mode", "ANY", "allowedFunctionNames", name);
    }
    if (!fcc ||
        json_object_set_new(body, "toolConfig", json_pack("{s:o}", "functionCallingConfig", fcc)))
        return nomem(c);
    return 0;
}

static json_t *
gen_config(json_t *body)
{
    json_t *g = json_object_get(body, "generationConfig");
    if (!g) {
        g = json_object();
        if (json_object_set_new(body, "generationConfig", g))
            return NULL;
    }
    return g;
}

static int
response_format(struct ctx *c, const json_t *req, json_t *gc)
{
    const json_t *rf = json_object_get(req, "response_format");
    if (!rf || json_is_null(rf))
        return 0;
    const char *type = json_string_value(json_object_get(rf, "type"));
    if (type && strcmp(type, "text") == 0)
        return 0;
    if (type && strcmp(type, "json_object") == 0)
        return json_object_set_new(gc, "responseMimeType", json_string("application/json"))
                   ? nomem(c)
                   : 0;
    if (type && strcmp(type, "json_schema") == 0) {
        const json_t *schema = json_object_get(json_object_get(rf, "json_schema"), "schema");
        if (!json_is_object(schema))
            return bad(c, "response_format.json_schema.schema", "%s",
                       "response_format json_schema needs json_schema.schema (an object).");
        if (json_object_set_new(gc, "responseMimeType", json_string("application/json")) ||
            json_object_set_new(gc, "responseJsonSchema", json_deep_copy(schema)))
            return nomem(c);
        return 0;
    }
    return bad(c, "response_format.type",
               "response_format.type \"%s\" is not one of text, json_object, json_schema.",
               type ? type : "(none)");
}

/* Gemini 3 models take thinkingLevel; their name (or the alias's target) says so. */
static int
takes_levels(const struct skiff_oai_chat_opts *o, const char **name)
{
    const char *n = o->gemini_model ? o->gemini_model : "";
    if (strncmp(n, "models/", 7) == 0)
        n += 7;
    if (o->info && o->info->target[0])
        n = o->info->target;
    *name = n;
    return strncmp(n, "gemini-3", 8) == 0;
}

/*
 * reasoning_effort → thinkingConfig. Gemini 3 takes levels: Pro low and high, the others
 * minimal, low, medium and high (gemini-api.md §2.5); none and minimal become the lowest
 * level the model takes (Gemini 3 cannot stop thinking). Gemini 2.5 takes budgets: Google's
 * mapping low 1024, medium 8192, high 24576 clamped to the model's range; none is 0 where
 * the model may stop thinking, else its minimum; minimal is the minimum (128 where the
 * minimum is 0, as 0 would mean none). A value the model does not take is a 400.
 */
static int
reasoning(struct ctx *c, const json_t *req, json_t *gc)
{
    const json_t *google = json_object_get(req, "google");
    if (!google)
        google = json_object_get(json_object_get(req, "extra_body"), "google");
    const json_t *tcfg = json_object_get(google, "thinking_config");
    const json_t *incl = json_object_get(tcfg, "include_thoughts");
    const json_t *budget = json_object_get(tcfg, "thinking_budget");
    const json_t *level = json_object_get(tcfg, "thinking_level");
    const json_t *re = json_object_get(req, "reasoning_effort");
    int include = json_is_boolean(incl) ? json_is_true(incl) : c->o->include_thoughts;
    const struct skiff_model_info *info = c->o->info;
    int thinks = !info || info->thinking;
    json_t *tc = json_object();
    if (!tc)
        return nomem(c);
    int rc = 0;
    if (re && !json_is_null(re)) {
        const char *e = json_string_value(re);
        const char *name;
        int levels = takes_levels(c->o, &name);
        int pro = strstr(name, "-pro") != NULL;
        if (!e || (strcmp(e, "none") && strcmp(e, "minimal") && strcmp(e, "low") &&
                   strcmp(e, "medium") && strcmp(e, "high"))) {
            rc = bad(c, "reasoning_effort",
                     "reasoning_effort \"%s\" is not one of none, minimal, low, medium, high.",
                     e ? e : "(not a string)");
            goto out;
        }
        if (budget || level) {
            rc = bad(c, "reasoning_effort", "%s",
                     "reasoning_effort and extra_body.google.thinking_config's thinking_budget or "
                     "thinking_level cannot be used together; send one of them.");
            goto out;
        }
        if (!thinks) {
            if (strcmp(e, "none") != 0) {
                rc = skiff_oai_error_set(c->err, 400, "reasoning_effort", NULL,
                                         "Model %s does not think; it takes reasoning_effort "
                                         "\"none\" only.",
                                         name);
                goto out;
            }
        } else if (strcmp(e, "none") == 0 || (levels && strcmp(e, "minimal") == 0)) {
            if (skiff_thinking_least(info, name, tc))
                goto nomem;
        } else if (levels) {
            if (pro && strcmp(e, "medium") == 0) {
                rc = skiff_oai_error_set(c->err, 400, "reasoning_effort", NULL,
                                         "Model %s takes reasoning_effort none, minimal, low or "
                                         "high (thinking levels low and high), not medium.",
                                         name);
                goto out;
            }
            char up[8];
            size_t i = 0;
            for (; e[i] && i + 1 < sizeof up; i++)
                up[i] = (char)(e[i] - 'a' + 'A');
            up[i] = '\0';
            if (json_object_set_new(tc, "thinkingLevel", json_string(up)))
                goto nomem;
        } else {
            int min = info ? info->budget_min : 0, max = info ? info->budget_max : 0;
            long b;
            if (strcmp(e, "minimal") == 0)
                b = min > 0 ? min : 128;
            else
                b = strcmp(e, "low") == 0 ? 1024 : strcmp(e, "medium") == 0 ? 8192 : 24576;
            if (b && b < min)
                b = min;
            if (max > 0 && b > max)
                b = max;
            if (json_object_set_new(tc, "thinkingBudget", json_integer(b)))
                goto nomem;
        }
    }
    if (json_is_integer(budget) && json_object_set(tc, "thinkingBudget", (json_t *)budget))
        goto nomem;
    if (json_is_string(level) && json_object_set(tc, "thinkingLevel", (json_t *)level))
        goto nomem;
    if (include && thinks && json_object_set_new(tc, "includeThoughts", json_true()))
        goto nomem;
    c->out->include_thoughts = include && thinks;
    if (json_object_size(tc) && json_object_set(gc, "thinkingConfig", tc))
        goto nomem;
    goto out;
nomem:
    rc = nomem(c);
out:
    json_decref(tc);
    return rc;
}

/* Copies a number field from req to gc under gname; a non-number is a 400. */
static int
number(struct ctx *c, const json_t *req, const char *oname, json_t *gc, const char *gname,
       int integer)
{
    const json_t *v = json_object_get(req, oname);
    if (!v || json_is_null(v))
        return 0;
    if (integer ? !json_is_integer(v) : !json_is_number(v))
        return bad(c, oname, integer ? "%s must be an integer." : "%s must be a number.", oname);
    return json_object_set(gc, gname, (json_t *)v) ? nomem(c) : 0;
}

static int
stop_sequences(struct ctx *c, const json_t *stop, json_t *gc)
{
    if (!stop || json_is_null(stop))
        return 0;
    if (json_is_string(stop))
        return json_object_set_new(gc, "stopSequences", json_pack("[O]", stop)) ? nomem(c) : 0;
    size_t i;
    const json_t *s;
    int ok = json_is_array(stop);
    json_array_foreach(stop, i, s) ok = ok && json_is_string(s);
    if (!ok)
        return bad(c, "stop", "%s", "stop must be a string or an array of strings.");
    if (json_array_size(stop) > SKIFF_OAI_MAX_STOP)
        return skiff_oai_error_set(c->err, 400, "stop", NULL,
                                   "stop holds %zu sequences; Gemini takes at most %d.",
                                   json_array_size(stop), SKIFF_OAI_MAX_STOP);
    if (json_array_size(stop) == 0)
        return 0;
    return json_object_set_new(gc, "stopSequences", json_deep_copy(stop)) ? nomem(c) : 0;
}

static int
sampling(struct ctx *c, const json_t *req, json_t *gc)
{
    int rc;
    if ((rc = number(c, req, "temperature", gc, "temperature", 0)) ||
        (rc = number(c, req, "top_p", gc, "topP", 0)) ||
        (rc = number(c, req, "seed", gc, "seed", 1)) ||
        (rc = number(c, req, "presence_penalty", gc, "presencePenalty", 0)) ||
        (rc = number(c, req, "frequency_penalty", gc, "frequencyPenalty", 0)) ||
        (rc = number(c, req, "top_logprobs", gc, "logprobs", 1)))
        return rc;
    /* max_completion_tokens replaces the deprecated max_tokens; it wins when both are set. */
    const char *mt =
        json_object_get(req, "max_completion_tokens") ? "max_completion_tokens" : "max_tokens";
    if ((rc = number(c, req, mt, gc, "maxOutputTokens", 1)))
        return rc;
    const json_t *lp = json_object_get(req, "logprobs");
    if (json_is_true(lp) && json_object_set_new(gc, "responseLogprobs", json_true()))
        return nomem(c);
    const json_t *n = json_object_get(req, "n");
    if (n && !json_is_null(n)) {
        if (!json_is_integer(n) || json_integer_value(n) < 1 || json_integer_value(n) > 8)
            return bad(c, "n", "%s", "n must be an integer from 1 to 8.");
        c->out->n = (int)json_integer_value(n);
        if (c->out->n > 1 && json_object_set(gc, "candidateCount", (json_t *)n))
            return nomem(c);
    }
    return stop_sequences(c, json_object_get(req, "stop"), gc);
}

static int
stream_options(struct ctx *c, const json_t *req)
{
    const json_t *s = json_object_get(req, "stream");
    if (s && !json_is_null(s) && !json_is_boolean(s))
        return bad(c, "stream", "%s", "stream must be true or false.");
    c->out->stream = json_is_true(s);
    c->out->include_usage =
        json_is_true(json_object_get(json_object_get(req, "stream_options"), "include_usage"));
    const json_t *p = json_object_get(req, "parallel_tool_calls");
    c->out->parallel_calls = !json_is_false(p);
    return 0;
}

int
skiff_oai_chat_request(const json_t *req, const struct skiff_oai_chat_opts *opts,
                       struct skiff_oai_chat *out, struct skiff_oai_error *err)
{
    struct ctx c = {.o = opts, .out = out, .err = err};
    memset(out, 0, sizeof *out);
    out->n = 1;
    out->parallel_calls = 1;
    int rc;
    if (!json_is_object(req))
        return bad(&c, NULL, "%s", "The request body must be a JSON object.");
    const char *model = json_string_value(json_object_get(req, "model"));
    if (!model || !model[0])
        return bad(&c, "model", "%s", "model is required (a string).");
    out->model = strdup(model);
    out->body = json_pack("{s:[]}", "contents");
    out->call_names = json_object();
    out->media = json_array();
    if (!out->model || !out->body || !out->call_names || !out->media) {
        rc = nomem(&c);
        goto fail;
    }
    c.contents = json_object_get(out->body, "contents");
    json_t *gc = gen_config(out->body);
    if (!gc) {
        rc = nomem(&c);
        goto fail;
    }
    if ((rc = stream_options(&c, req)) || (rc = messages(&c, json_object_get(req, "messages"))) ||
        (rc = tools(&c, req, out->body)) || (rc = tool_choice(&c, req, out->body)) ||
        (rc = response_format(&c, req, gc)) || (rc = reasoning(&c, req, gc)) ||
        (rc = sampling(&c, req, gc)))
        goto fail;
    if (c.system) {
        if (json_object_set_new(out->body, "systemInstruction",
                                json_pack("{s:o}", "parts", c.system))) {
            c.system = NULL;
            rc = nomem(&c);
            goto fail;
        }
        c.system = NULL;
    }
    if (json_object_size(gc) == 0)
        json_object_del(out->body, "generationConfig");
    return 0;
fail:
    json_decref(c.system);
    skiff_oai_chat_release(out);
    return rc;
}

int
skiff_oai_chat_fill_media(struct skiff_oai_chat *c, size_t i, const char *mime, const char *b64)
{
    json_t *inl = json_object_get(json_array_get(c->media, i), "inlineData");
    if (!inl)
        return SKIFF_EINVAL;
    if (json_object_set_new(inl, "mimeType", json_string(mime)) ||
        json_object_set_new(inl, "data", json_string(b64)))
        return SKIFF_ENOMEM;
    return 0;
}

void
skiff_oai_chat_release(struct skiff_oai_chat *c)
{
    json_decref(c->body);
    json_decref(c->call_names);
    json_decref(c->media);
    free(c->model);
    memset(c, 0, sizeof *c);
}
