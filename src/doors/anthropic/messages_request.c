/*
 * Messages → generateContent. One pass over the request's JSON (a jansson DOM: the body is
 * bounded by the server's limit, and a translation needs the whole of it). Every refusal is
 * a 400 whose message names the field, in the words of Anthropic's own errors where they
 * exist.
 */
#include "doors/anthropic/messages_request.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "gemini/thinking.h"

/* Gemini takes at most this many stopSequences (gemini-api.md §2.4). */
#define GEMINI_MAX_STOPS 5
/* Gemini's FunctionDeclaration.name is at most 64 characters (§2.7). */
#define GEMINI_MAX_NAME 64

struct tx {
    json_t *contents;        /* the Gemini contents being built */
    json_t *cur;             /* the last Content of contents (borrowed), or NULL */
    const char *cur_role;    /* its role */
    json_t *names;           /* tool_use id → tool name, for the tool_results */
    const char *pending_sig; /* a thinking block's signature waiting for its part */
    json_t *pending_target;  /* the first part added after that thinking block */
    skiff_anth_sig_lookup *lookup;
    void *ud;
    struct skiff_anth_request *out;
    struct skiff_anth_error *err;
};

/* Anthropic's id alphabet, ^[a-zA-Z0-9_-]+$. */
static int
id_ok(const char *s)
{
    if (!s || !*s)
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '_' || *s == '-'))
            return 0;
    return 1;
}

/* Appends part (a new reference, stolen) to the Content of role, opening a new Content
 * when the last one has another role: consecutive turns of a role are merged. */
static int
add_part(struct tx *t, const char *role, json_t *part)
{
    if (!part)
        return SKIFF_ENOMEM;
    if (!t->cur || strcmp(t->cur_role, role) != 0) {
        json_t *c = json_pack("{s:s,s:[]}", "role", role, "parts");
        if (!c || json_array_append_new(t->contents, c) != 0) {
            json_decref(part);
            return SKIFF_ENOMEM;
        }
        t->cur = c;
        t->cur_role = json_string_value(json_object_get(c, "role"));
    }
    if (t->pending_sig && !t->pending_target)
        t->pending_target = part;
    if (json_array_append_new(json_object_get(t->cur, "parts"), part) != 0)
        return SKIFF_ENOMEM;
    return 0;
}

static int
add_media(struct tx *t, const char *url, json_t *part, int document)
{
    struct skiff_anth_request *r = t->out;
    struct skiff_anth_media *m = realloc(r->media, (r->n_media + 1) * sizeof *m);
    if (!m)
        return SKIFF_ENOMEM;
    r->media = m;
    m[r->n_media].url = strdup(url);
    if (!m[r->n_media].url)
        return SKIFF_ENOMEM;
    m[r->n_media].part = part;
    m[r->n_media].document = document;
    r->n_media++;
    return 0;
}

/* image and document blocks: base64 → inlineData, URL → a placeholder the door fills,
 * a document's plain text → a text part. where names the block in errors. */
static int
media_block(struct tx *t, const char *role, const json_t *b, int document, const char *where)
{
    const json_t *src = json_object_get(b, "source");
    const char *st = json_string_value(json_object_get(src, "type"));
    const char *kind = document ? "document" : "image";
    if (!st)
        return skiff_anth_fail(t->err, 400, "%s: a %s block needs a source with a type", where,
                               kind);
    if (strcmp(st, "base64") == 0) {
        const char *mt = json_string_value(json_object_get(src, "media_type"));
        const char *data = json_string_value(json_object_get(src, "data"));
        if (!mt || !data)
            return skiff_anth_fail(t->err, 400,
                                   "%s.source: a base64 %s needs media_type and data strings",
                                   where, kind);
        if (!document && strncmp(mt, "image/", 6) != 0)
            return skiff_anth_fail(t->err, 400,
                                   "%s.source.media_type: %s is not an image type (send "
                                   "image/jpeg, image/png, image/gif or image/webp)",
                                   where, mt);
        return add_part(t, role,
                        json_pack("{s:{s:s,s:s}}", "inlineData", "mimeType", mt, "data", data));
    }
    if (strcmp(st, "url") == 0) {
        const char *url = json_string_value(json_object_get(src, "url"));
        if (!url || !*url)
            return skiff_anth_fail(t->err, 400, "%s.source.url: a URL source needs a url string",
                                   where);
        json_t *part = json_pack("{s:{s:s,s:s}}", "inlineData", "mimeType", "", "data", "");
        int rc = add_part(t, role, part);
        return rc ? rc : add_media(t, url, part, document);
    }
    if (document && strcmp(st, "text") == 0) {
        const char *data = json_string_value(json_object_get(src, "data"));
        if (!data)
            return skiff_anth_fail(t->err, 400, "%s.source.data: a text document needs data",
                                   where);
        return add_part(t, role, json_pack("{s:s}", "text", data));
    }
    if (document && strcmp(st, "content") == 0) {
        const json_t *c = json_object_get(src, "content");
        if (json_is_string(c))
            return add_part(t, role, json_pack("{s:O}", "text", c));
        size_t i;
        const json_t *x;
        json_array_foreach(c, i, x)
        {
            const char *text = json_string_value(json_object_get(x, "text"));
            if (text && *text) {
                int rc = add_part(t, role, json_pack("{s:s}", "text", text));
                if (rc)
                    return rc;
            }
        }
        return 0;
    }
    return skiff_anth_fail(t->err, 400,
                           "%s.source.type: %s sources are not supported by skiff (send the %s "
                           "as base64 or by URL)",
                           where, st, kind);
}

/* A tool_result's content as the text of a functionResponse; its image blocks become parts
 * of their own after it. */
static int
tool_result(struct tx *t, const json_t *b, const char *where)
{
    const char *id = json_string_value(json_object_get(b, "tool_use_id"));
    if (!id)
        return skiff_anth_fail(t->err, 400,
                               "%s.tool_use_id: a tool_result needs the id of the "
                               "tool_use it answers",
                               where);
    const char *name = json_string_value(json_object_get(t->names, id));
    if (!name)
        return skiff_anth_fail(t->err, 400,
                               "%s.tool_use_id: %s answers no tool_use block of an earlier "
                               "assistant message; give back the assistant turn with its "
                               "tool_use blocks",
                               where, id);
    const json_t *c = json_object_get(b, "content");
    json_t *text = NULL;
    json_t *images = json_array();
    if (!images)
        return SKIFF_ENOMEM;
    if (!c || json_is_null(c)) {
        text = json_string("");
    } else if (json_is_string(c)) {
        text = json_copy((json_t *)c);
    } else if (json_is_array(c)) {
        size_t i;
        const json_t *x;
        char *joined = NULL;
        size_t jl = 0;
        json_array_foreach(c, i, x)
        {
            const char *bt = json_string_value(json_object_get(x, "type"));
            if (bt && strcmp(bt, "text") == 0) {
                const char *s = json_string_value(json_object_get(x, "text"));
                size_t sl = s ? strlen(s) : 0;
                char *nj = realloc(joined, jl + sl + 2);
                if (!nj) {
                    free(joined);
                    json_decref(images);
                    return SKIFF_ENOMEM;
                }
                joined = nj;
                if (jl)
                    joined[jl++] = '\n';
                memcpy(joined + jl, s ? s : "", sl);
                jl += sl;
                joined[jl] = '\0';
            } else if (bt && (strcmp(bt, "image") == 0 || strcmp(bt, "document") == 0)) {
                json_array_append(images, (json_t *)x);
            } else {
                free(joined);
                json_decref(images);
                return skiff_anth_fail(t->err, 400,
                                       "%s.content[%zu].type: a tool_result holds text, image "
                                       "or document blocks, not %s",
                                       where, i, bt ? bt : "(none)");
            }
        }
        text = json_stringn(joined ? joined : "", jl);
        free(joined);
    } else {
        json_decref(images);
        return skiff_anth_fail(t->err, 400,
                               "%s.content: a tool_result's content is a string or "
                               "an array of blocks",
                               where);
    }
    const json_t *ie = json_object_get(b, "is_error");
    int is_error = json_is_true(ie);
    json_t *resp = json_object();
    if (!text || !resp || json_object_set_new(resp, is_error ? "error" : "result", text) != 0) {
        json_decref(resp);
        json_decref(images);
        return SKIFF_ENOMEM;
    }
    int rc = add_part(
        t, "user", json_pack("{s:{s:s,s:o}}", "functionResponse", "name", name, "response", resp));
    size_t i;
    const json_t *x;
    json_array_foreach(images, i, x)
    {
        if (rc)
            break;
        char w[160];
        snprintf(w, sizeof w, "%s.content[%zu]", where, i);
        const char *bt = json_string_value(json_object_get(x, "type"));
        rc = media_block(t, "user", x, strcmp(bt, "document") == 0, w);
    }
    json_decref(images);
    return rc;
}

static int
tool_use(struct tx *t, const json_t *b, const char *where)
{
    const char *id = json_string_value(json_object_get(b, "id"));
    const char *name = json_string_value(json_object_get(b, "name"));
    const json_t *input = json_object_get(b, "input");
    if (!id_ok(id))
        return skiff_anth_fail(t->err, 400, "%s.id: a tool_use id is a string of ^[a-zA-Z0-9_-]+$",
                               where);
    if (!name || !*name)
        return skiff_anth_fail(t->err, 400, "%s.name: a tool_use needs the tool's name", where);
    if (input && !json_is_object(input))
        return skiff_anth_fail(t->err, 400, "%s.input: a tool_use's input is an object", where);
    if (json_object_set_new(t->names, id, json_string(name)) != 0)
        return SKIFF_ENOMEM;
    json_t *args = input ? json_deep_copy(input) : json_object();
    json_t *part =
        args ? json_pack("{s:{s:s,s:o}}", "functionCall", "name", name, "args", args) : NULL;
    if (!part)
        return SKIFF_ENOMEM;
    const char *sig = t->lookup ? t->lookup(t->ud, id) : NULL;
    if (!sig)
        sig = t->pending_sig;
    if (sig && json_object_set_new(part, "thoughtSignature", json_string(sig)) != 0) {
        json_decref(part);
        return SKIFF_ENOMEM;
    }
    /* The thinking block's signature belongs to the first call after it: a cached one for
     * that call is the same signature, so either way it is used up here. */
    int rc = add_part(t, "model", part);
    t->pending_sig = NULL;
    t->pending_target = NULL;
    return rc;
}

/* A signature no functionCall took goes onto the first part after its thinking block, or
 * onto the turn's last part when the thinking block came last. */
static int
settle_signature(struct tx *t)
{
    if (!t->pending_sig)
        return 0;
    json_t *target = t->pending_target;
    if (!target && t->cur && strcmp(t->cur_role, "model") == 0) {
        json_t *parts = json_object_get(t->cur, "parts");
        target = json_array_get(parts, json_array_size(parts) - 1);
    }
    int rc = 0;
    if (target && !json_object_get(target, "thoughtSignature"))
        rc = json_object_set_new(target, "thoughtSignature", json_string(t->pending_sig))
                 ? SKIFF_ENOMEM
                 : 0;
    t->pending_sig = NULL;
    t->pending_target = NULL;
    return rc;
}

static int
message(struct tx *t, const json_t *m, size_t k)
{
    char where[96];
    snprintf(where, sizeof where, "messages[%zu]", k);
    const char *role = json_string_value(json_object_get(m, "role"));
    if (!role || (strcmp(role, "user") != 0 && strcmp(role, "assistant") != 0))
        return skiff_anth_fail(t->err, 400, "%s.role: a message's role is user or assistant",
                               where);
    int model = role[0] == 'a';
    const char *grole = model ? "model" : "user";
    const json_t *content = json_object_get(m, "content");
    if (json_is_string(content)) {
        if (!*json_string_value(content))
            return 0;
        return add_part(t, grole, json_pack("{s:O}", "text", content));
    }
    if (!json_is_array(content))
        return skiff_anth_fail(t->err, 400,
                               "%s.content: a message's content is a string or an array of "
                               "blocks",
                               where);
    size_t i;
    const json_t *b;
    int rc = 0;
    json_array_foreach(content, i, b)
    {
        char w[128];
        snprintf(w, sizeof w, "%s.content[%zu]", where, i);
        const char *type = json_string_value(json_object_get(b, "type"));
        if (!type)
            return skiff_anth_fail(t->err, 400, "%s.type: every content block has a type", w);
        if (strcmp(type, "text") == 0) {
            const json_t *text = json_object_get(b, "text");
            if (!json_is_string(text))
                return skiff_anth_fail(t->err, 400, "%s.text: a text block needs a text string", w);
            if (*json_string_value(text))
                rc = add_part(t, grole, json_pack("{s:O}", "text", text));
        } else if (strcmp(type, "image") == 0) {
            rc = media_block(t, grole, b, 0, w);
        } else if (strcmp(type, "document") == 0) {
            rc = media_block(t, grole, b, 1, w);
        } else if (strcmp(type, "tool_use") == 0) {
            if (!model)
                return skiff_anth_fail(t->err, 400,
                                       "%s: tool_use blocks belong to assistant messages", w);
            rc = tool_use(t, b, w);
        } else if (strcmp(type, "tool_result") == 0) {
            if (model)
                return skiff_anth_fail(t->err, 400,
                                       "%s: tool_result blocks belong to user messages", w);
            rc = tool_result(t, b, w);
        } else if (strcmp(type, "thinking") == 0) {
            if (!model)
                return skiff_anth_fail(t->err, 400,
                                       "%s: thinking blocks belong to assistant messages", w);
            /* Gemini takes no thought text back; only the signature travels. */
            const char *sig = json_string_value(json_object_get(b, "signature"));
            rc = settle_signature(t);
            if (sig && *sig)
                t->pending_sig = sig;
        } else if (strcmp(type, "redacted_thinking") == 0) {
            /* Claude's encrypted thinking means nothing to Gemini, and skiff never makes
             * these blocks: dropped. */
        } else {
            return skiff_anth_fail(t->err, 400,
                                   "%s.type: %s blocks are not supported by skiff's Anthropic "
                                   "door (text, image, document, tool_use, tool_result, "
                                   "thinking and redacted_thinking are)",
                                   w, type);
        }
        if (rc)
            return rc;
    }
    return settle_signature(t);
}

static int
system_instruction(struct tx *t, const json_t *sys, json_t *g)
{
    json_t *parts = json_array();
    if (!parts)
        return SKIFF_ENOMEM;
    if (json_is_string(sys)) {
        if (*json_string_value(sys))
            json_array_append_new(parts, json_pack("{s:O}", "text", sys));
    } else if (json_is_array(sys)) {
        size_t i;
        const json_t *b;
        json_array_foreach(sys, i, b)
        {
            const char *type = json_string_value(json_object_get(b, "type"));
            const json_t *text = json_object_get(b, "text");
            if (!type || strcmp(type, "text") != 0 || !json_is_string(text)) {
                json_decref(parts);
                return skiff_anth_fail(t->err, 400,
                                       "system[%zu]: system blocks are text blocks with a text "
                                       "string",
                                       i);
            }
            if (*json_string_value(text))
                json_array_append_new(parts, json_pack("{s:O}", "text", text));
        }
    } else {
        json_decref(parts);
        return skiff_anth_fail(t->err, 400, "system: a string or an array of text blocks");
    }
    if (json_array_size(parts) == 0) {
        json_decref(parts);
        return 0;
    }
    return json_object_set_new(g, "systemInstruction", json_pack("{s:o}", "parts", parts))
               ? SKIFF_ENOMEM
               : 0;
}

static int
tools(struct tx *t, const json_t *list, const json_t *choice, json_t *g)
{
    if (!json_is_array(list))
        return skiff_anth_fail(t->err, 400, "tools: an array of tool definitions");
    json_t *decls = json_array();
    if (!decls)
        return SKIFF_ENOMEM;
    size_t i;
    const json_t *tool;
    json_array_foreach(list, i, tool)
    {
        const char *type = json_string_value(json_object_get(tool, "type"));
        const char *name = json_string_value(json_object_get(tool, "name"));
        const json_t *schema = json_object_get(tool, "input_schema");
        const char *desc = json_string_value(json_object_get(tool, "description"));
        int rc = 0;
        if (type && strcmp(type, "custom") != 0)
            rc = skiff_anth_fail(t->err, 400,
                                 "tools[%zu].type: %s is an Anthropic server tool, which Gemini "
                                 "cannot run; declare client tools (name, input_schema) only",
                                 i, type);
        else if (!name || !*name)
            rc = skiff_anth_fail(t->err, 400, "tools[%zu].name: every tool has a name", i);
        else if (strlen(name) > GEMINI_MAX_NAME)
            rc = skiff_anth_fail(t->err, 400,
                                 "tools[%zu].name: %.70s... is longer than the %d characters "
                                 "Gemini takes",
                                 i, name, GEMINI_MAX_NAME);
        else if (!json_is_object(schema))
            rc = skiff_anth_fail(
                t->err, 400, "tools[%zu].input_schema: every tool has an input_schema object", i);
        if (rc) {
            json_decref(decls);
            return rc;
        }
        /* JSON Schema as given: parametersJsonSchema keeps $ref, $defs, additionalProperties. */
        json_t *d = json_pack("{s:s}", "name", name);
        if (!d || (desc && json_object_set_new(d, "description", json_string(desc))) ||
            json_object_set(d, "parametersJsonSchema", (json_t *)schema) ||
            json_array_append_new(decls, d)) {
            json_decref(decls);
            return SKIFF_ENOMEM;
        }
    }
    size_t n_decls = json_array_size(decls);
    if (n_decls) {
        if (json_object_set_new(g, "tools", json_pack("[{s:o}]", "functionDeclarations", decls)))
            return SKIFF_ENOMEM;
    } else {
        json_decref(decls);
    }
    if (!choice || json_is_null(choice))
        return 0;
    const char *ct = json_string_value(json_object_get(choice, "type"));
    const char *mode = NULL;
    const char *only = NULL;
    if (ct && strcmp(ct, "auto") == 0)
        mode = "AUTO";
    else if (ct && strcmp(ct, "any") == 0)
        mode = "ANY";
    else if (ct && strcmp(ct, "none") == 0)
        mode = "NONE";
    else if (ct && strcmp(ct, "tool") == 0) {
        mode = "ANY";
        only = json_string_value(json_object_get(choice, "name"));
        if (!only)
            return skiff_anth_fail(t->err, 400,
                                   "tool_choice.name: {\"type\": \"tool\"} needs the tool's name");
    } else
        return skiff_anth_fail(t->err, 400, "tool_choice.type: auto, any, tool or none");
    if (json_is_true(json_object_get(choice, "disable_parallel_tool_use")))
        t->out->single_tool_call = 1;
    if (!n_decls)
        return 0; /* no tools: nothing to choose among */
    json_t *fcc = json_pack("{s:s}", "mode", mode);
    if (!fcc || (only && json_object_set_new(fcc, "allowedFunctionNames", json_pack("[s]", only))))
        return SKIFF_ENOMEM;
    return json_object_set_new(g, "toolConfig", json_pack("{s:o}", "functionCallingConfig", fcc))
               ? SKIFF_ENOMEM
               : 0;
}

static int
number_in(struct tx *t, const json_t *v, const char *name, double lo, double hi, double *out)
{
    if (!json_is_number(v) || json_number_value(v) < lo || json_number_value(v) > hi ||
        isnan(json_number_value(v)))
        return skiff_anth_fail(t->err, 400, "%s: a number from %g to %g", name, lo, hi);
    *out = json_number_value(v);
    return 0;
}

static int
generation_config(struct tx *t, const json_t *req, json_t *gc, int counting)
{
    struct skiff_anth_request *r = t->out;
    const json_t *v = json_object_get(req, "max_tokens");
    if (!v) {
        if (!counting)
            return skiff_anth_fail(t->err, 400,
                                   "max_tokens: Field required (the most tokens "
                                   "the answer may have, for example 1024)");
    } else if (!json_is_integer(v) || json_integer_value(v) < 1) {
        return skiff_anth_fail(t->err, 400, "max_tokens: an integer of at least 1");
    } else {
        r->max_tokens = (long)json_integer_value(v);
        json_object_set_new(gc, "maxOutputTokens", json_integer(r->max_tokens));
    }
    v = json_object_get(req, "stop_sequences");
    if (v && !json_is_null(v)) {
        if (!json_is_array(v))
            return skiff_anth_fail(t->err, 400, "stop_sequences: an array of strings");
        size_t i;
        const json_t *s;
        json_array_foreach(v, i, s)
        {
            if (!json_is_string(s) || !*json_string_value(s))
                return skiff_anth_fail(t->err, 400, "stop_sequences[%zu]: a non-empty string", i);
        }
        if (json_array_size(v) > GEMINI_MAX_STOPS)
            return skiff_anth_fail(t->err, 400,
                                   "stop_sequences: %zu given, but Gemini takes at most %d; send "
                                   "%d or fewer",
                                   json_array_size(v), GEMINI_MAX_STOPS, GEMINI_MAX_STOPS);
        if (json_array_size(v)) {
            r->stop_sequences = json_copy((json_t *)v);
            if (!r->stop_sequences || json_object_set(gc, "stopSequences", r->stop_sequences))
                return SKIFF_ENOMEM;
        }
    }
    double d;
    if ((v = json_object_get(req, "temperature")) && !json_is_null(v)) {
        if (number_in(t, v, "temperature", 0, 1, &d))
            return SKIFF_EINVAL;
        json_object_set_new(gc, "temperature", json_real(d));
    }
    if ((v = json_object_get(req, "top_p")) && !json_is_null(v)) {
        if (number_in(t, v, "top_p", 0, 1, &d))
            return SKIFF_EINVAL;
        json_object_set_new(gc, "topP", json_real(d));
    }
    if ((v = json_object_get(req, "top_k")) && !json_is_null(v)) {
        if (!json_is_integer(v) || json_integer_value(v) < 0)
            return skiff_anth_fail(t->err, 400, "top_k: an integer of at least 0");
        json_object_set_new(gc, "topK", json_integer(json_integer_value(v)));
    }
    v = json_object_get(req, "thinking");
    if (v && !json_is_null(v)) {
        const char *tt = json_string_value(json_object_get(v, "type"));
        json_t *tc = NULL;
        if (tt && strcmp(tt, "enabled") == 0) {
            const json_t *b = json_object_get(v, "budget_tokens");
            if (!json_is_integer(b) || json_integer_value(b) < 1024)
                return skiff_anth_fail(t->err, 400,
                                       "thinking.budget_tokens: an integer of at least 1024");
            if (r->max_tokens && json_integer_value(b) >= r->max_tokens)
                return skiff_anth_fail(t->err, 400,
                                       "thinking.budget_tokens: must be less than max_tokens "
                                       "(%ld)",
                                       r->max_tokens);
            r->thinking = SKIFF_ANTH_THINKING_ENABLED;
            r->budget_tokens = (long)json_integer_value(b);
            tc = json_pack("{s:b,s:I}", "includeThoughts", 1, "thinkingBudget",
                           (json_int_t)r->budget_tokens);
        } else if (tt && strcmp(tt, "adaptive") == 0) {
            r->thinking = SKIFF_ANTH_THINKING_ADAPTIVE;
            tc = json_pack("{s:b,s:i}", "includeThoughts", 1, "thinkingBudget", -1);
        } else if (tt && strcmp(tt, "disabled") == 0) {
            r->thinking = SKIFF_ANTH_THINKING_DISABLED;
            tc = json_pack("{s:i}", "thinkingBudget", 0);
        } else {
            return skiff_anth_fail(t->err, 400, "thinking.type: enabled, adaptive or disabled");
        }
        if (!tc || json_object_set_new(gc, "thinkingConfig", tc))
            return SKIFF_ENOMEM;
    }
    return 0;
}

/* Top-level fields: translated, dropped on purpose, or refused. Anthropic refuses fields it
 * does not know ("Extra inputs are not permitted"), and so does this door. */
static const char *const known_fields[] = {
    "model",          "messages",     "max_tokens",         "system",
    "stop_sequences", "stream",       "temperature",        "top_p",
    "top_k",          "tools",        "tool_choice",        "thinking",
    "metadata",       "service_tier", "context_management", NULL,
};

static int
check_fields(struct tx *t, const json_t *req)
{
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)req, key, v)
    {
        int ok = 0;
        for (size_t i = 0; known_fields[i]; i++)
            ok |= strcmp(key, known_fields[i]) == 0;
        if (!ok)
            return skiff_anth_fail(t->err, 400,
                                   "%s: Extra inputs are not permitted (skiff's Anthropic door "
                                   "does not translate this field)",
                                   key);
    }
    return 0;
}

static int
translate(const char *body, size_t len, int counting, skiff_anth_sig_lookup *lookup, void *ud,
          struct skiff_anth_request *out, struct skiff_anth_error *err)
{
    memset(out, 0, sizeof *out);
    json_error_t je;
    json_t *req = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
    struct tx t = {.lookup = lookup, .ud = ud, .out = out, .err = err};
    int rc = 0;
    if (!req || !json_is_object(req)) {
        rc = req ? skiff_anth_fail(err, 400, "the body is a JSON object")
                 : skiff_anth_fail(err, 400, "the body is not valid JSON: %s (line %d)", je.text,
                                   je.line);
        goto out;
    }
    if ((rc = check_fields(&t, req)))
        goto out;
    const char *model = json_string_value(json_object_get(req, "model"));
    if (!model || !*model) {
        rc = skiff_anth_fail(err, 400,
                             "model: Field required (a model name such as "
                             "claude-sonnet-4-5, mapped to Gemini by the models: map)");
        goto out;
    }
    const json_t *msgs = json_object_get(req, "messages");
    if (!json_is_array(msgs) || json_array_size(msgs) == 0) {
        rc = skiff_anth_fail(err, 400,
                             "messages: Field required (an array of at least one "
                             "message)");
        goto out;
    }
    const json_t *stream = json_object_get(req, "stream");
    if (stream && !json_is_boolean(stream) && !json_is_null(stream)) {
        rc = skiff_anth_fail(err, 400, "stream: true or false");
        goto out;
    }
    out->stream = json_is_true(stream);
    out->model = strdup(model);
    out->gemini = json_object();
    t.contents = json_array();
    t.names = json_object();
    json_t *gc = json_object();
    if (!out->model || !out->gemini || !t.contents || !t.names || !gc) {
        json_decref(gc);
        rc = SKIFF_ENOMEM;
        goto out;
    }
    json_object_set_new(out->gemini, "contents", t.contents); /* borrowed from here on */
    const json_t *sys = json_object_get(req, "system");
    if (sys && !json_is_null(sys) && (rc = system_instruction(&t, sys, out->gemini))) {
        json_decref(gc);
        goto out;
    }
    size_t i;
    const json_t *m;
    json_array_foreach(msgs, i, m)
    {
        if ((rc = message(&t, m, i))) {
            json_decref(gc);
            goto out;
        }
    }
    if (json_array_size(t.contents) == 0) {
        json_decref(gc);
        rc = skiff_anth_fail(err, 400, "messages: every message is empty; send some content");
        goto out;
    }
    const json_t *tl = json_object_get(req, "tools");
    if (tl && !json_is_null(tl) &&
        (rc = tools(&t, tl, json_object_get(req, "tool_choice"), out->gemini))) {
        json_decref(gc);
        goto out;
    }
    if ((rc = generation_config(&t, req, gc, counting))) {
        json_decref(gc);
        goto out;
    }
    if (json_object_size(gc))
        json_object_set_new(out->gemini, "generationConfig", gc);
    else
        json_decref(gc);
out:
    json_decref(t.names);
    json_decref(req);
    if (rc) {
        if (rc == SKIFF_ENOMEM)
            skiff_anth_fail(err, 500, "skiff ran out of memory translating the request");
        skiff_anth_request_release(out);
    }
    return rc;
}

int
skiff_anth_request_parse(const char *body, size_t len, skiff_anth_sig_lookup *lookup, void *ud,
                         struct skiff_anth_request *out, struct skiff_anth_error *err)
{
    return translate(body, len, 0, lookup, ud, out, err);
}

int
skiff_anth_request_fit(struct skiff_anth_request *r, const struct skiff_model_info *m,
                       const char *model)
{
    json_t *gc = json_object_get(r->gemini, "generationConfig");
    json_t *tc = json_object_get(gc, "thinkingConfig");
    if (!m || !tc)
        return 0;
    if (!m->thinking) {
        json_object_del(gc, "thinkingConfig");
        return 0;
    }
    if (r->thinking == SKIFF_ANTH_THINKING_DISABLED) {
        json_object_del(tc, "thinkingBudget");
        return skiff_thinking_least(m, model, tc);
    }
    if (r->thinking == SKIFF_ANTH_THINKING_ENABLED && m->budget_max > 0) {
        long b = r->budget_tokens;
        if (b < m->budget_min)
            b = m->budget_min;
        if (b > m->budget_max)
            b = m->budget_max;
        if (json_object_set_new(tc, "thinkingBudget", json_integer(b)))
            return SKIFF_ENOMEM;
    }
    return 0;
}

void
skiff_anth_request_release(struct skiff_anth_request *r)
{
    json_decref(r->gemini);
    json_decref(r->stop_sequences);
    free(r->model);
    for (size_t i = 0; i < r->n_media; i++)
        free(r->media[i].url);
    free(r->media);
    memset(r, 0, sizeof *r);
}

int
skiff_anth_count_request(const char *body, size_t len, const char *gemini_model,
                         skiff_anth_sig_lookup *lookup, void *ud, json_t **out,
                         struct skiff_anth_error *err)
{
    struct skiff_anth_request r;
    *out = NULL;
    int rc = translate(body, len, 1, lookup, ud, &r, err);
    if (rc)
        return rc;
    size_t ml = strlen(gemini_model) + 8;
    char *name = malloc(ml);
    json_t *g = json_object();
    if (!name || !g) {
        free(name);
        json_decref(g);
        skiff_anth_request_release(&r);
        return SKIFF_ENOMEM;
    }
    snprintf(name, ml, "models/%s", gemini_model);
    json_object_set_new(g, "model", json_string(name));
    free(name);
    static const char *const keep[] = {"contents", "systemInstruction", "tools", NULL};
    for (size_t i = 0; keep[i]; i++) {
        json_t *v = json_object_get(r.gemini, keep[i]);
        if (v)
            json_object_set(g, keep[i], v);
    }
    *out = json_pack("{s:o}", "generateContentRequest", g);
    skiff_anth_request_release(&r);
    return *out ? 0 : SKIFF_ENOMEM;
}

char *
skiff_anth_count_response(const char *body, size_t len)
{
    json_t *j = json_loadb(body, len, 0, NULL);
    const json_t *n = json_object_get(j, "totalTokens");
    char *s = NULL;
    if (json_is_integer(n)) {
        json_t *o = json_pack("{s:I}", "input_tokens", json_integer_value(n));
        s = o ? json_dumps(o, JSON_COMPACT) : NULL;
        json_decref(o);
    }
    json_decref(j);
    return s;
}
