/* Google's OpenAI-compatible endpoint, as the simulator answers it (compat.h). */
#include "sim/compat.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "base/hash.h"
#include "gemini/error.h"
#include "sim/catalog.h"
#include "sim/render.h"

#define PREFIX "/v1beta/openai/"
#define JSON_TYPE "application/json; charset=UTF-8"

/* Google's error on this endpoint: the error object in a one-element array. */
static void
error(struct skiff_sim_compat_reply *out, int status, const char *gstatus, const char *message)
{
    out->status = status;
    out->content_type = JSON_TYPE;
    out->body = skiff_gerr_body(status, gstatus, message, NULL, 1);
    out->len = out->body ? strlen(out->body) : 0;
}

static void
compact(struct skiff_sim_compat_reply *out, json_t *j)
{
    out->status = 200;
    out->content_type = JSON_TYPE;
    out->body = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
    out->len = out->body ? strlen(out->body) : 0;
    json_decref(j);
}

/* The key of Authorization: Bearer, under the native API's rules; 0 when it may call. */
static int
auth(const struct skiff_sim_conf *conf, const struct skiff_request *req,
     struct skiff_sim_log_entry *e, struct skiff_sim_compat_reply *out)
{
    size_t len;
    const char *a = skiff_http_header(req, "authorization", &len);
    if (a && len > 7 && strncasecmp(a, "Bearer ", 7) == 0) {
        size_t n = len - 7 < sizeof e->key - 1 ? len - 7 : sizeof e->key - 1;
        memcpy(e->key, a + 7, n);
        e->key[n] = '\0';
        e->has_key = 1;
    }
    if (!e->has_key) {
        error(out, 401, "UNAUTHENTICATED",
              "Request had invalid authentication credentials. Expected OAuth 2 access token, "
              "login cookie or other valid authentication credential.");
        return -1;
    }
    switch (skiff_sim_conf_key(conf, e->key)) {
    case SKIFF_SIM_KEY_VALID:
        return 0;
    case SKIFF_SIM_KEY_REGION_BLOCKED:
        error(out, 400, "FAILED_PRECONDITION", "User location is not supported for the API use.");
        return -1;
    case SKIFF_SIM_KEY_DENIED:
        error(out, 403, "PERMISSION_DENIED", "The caller does not have permission");
        return -1;
    case SKIFF_SIM_KEY_INVALID:
        break;
    }
    error(out, 400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.");
    return -1;
}

static void
models(struct skiff_sim_compat_reply *out)
{
    json_t *data = json_array();
    for (size_t i = 0; i < skiff_sim_catalog_count(); i++) {
        const struct skiff_sim_model *m = skiff_sim_catalog_at(i);
        char id[160];
        snprintf(id, sizeof id, "models/%s", m->id);
        json_array_append_new(data,
                              json_pack("{s:s,s:s,s:s,s:s}", "id", id, "object", "model",
                                        "owned_by", "google", "display_name", m->display_name));
    }
    compact(out, json_pack("{s:s,s:o}", "object", "list", "data", data));
}

static json_t *
model_json(const struct skiff_sim_model *m)
{
    char id[160];
    snprintf(id, sizeof id, "models/%s", m->id);
    return json_pack("{s:s,s:s,s:s,s:s}", "id", id, "object", "model", "owned_by", "google",
                     "display_name", m->display_name);
}

/* GET models/{id}: the id as the list gives it, or bare. */
static void
model_get(const char *id, size_t n, struct skiff_sim_compat_reply *out)
{
    if (n > 7 && memcmp(id, "models/", 7) == 0)
        id += 7, n -= 7;
    const struct skiff_sim_model *m = skiff_sim_catalog_find(id, n);
    if (!m) {
        error(out, 404, "NOT_FOUND", "Model is not found.");
        return;
    }
    compact(out, model_json(m));
}

/* POST embeddings: {"model", "input": text or [texts]}, as an OpenAI list. */
static void
embeddings(const struct skiff_request *req, struct skiff_sim_log_entry *e,
           struct skiff_sim_compat_reply *out)
{
    json_t *body = json_loadb(req->body, req->body_len, 0, NULL);
    const char *model = json_string_value(json_object_get(body, "model"));
    json_t *input = json_object_get(body, "input");
    if (model && strncmp(model, "models/", 7) == 0)
        model += 7;
    const struct skiff_sim_model *m = model ? skiff_sim_catalog_find(model, strlen(model)) : NULL;
    if (model)
        snprintf(e->model, sizeof e->model, "%s", model);
    if (!m || !(json_is_string(input) || json_is_array(input))) {
        json_decref(body);
        error(out, m ? 400 : 404, m ? "INVALID_ARGUMENT" : "NOT_FOUND",
              m ? "input is required." : "Model is not found.");
        return;
    }
    json_t *texts = json_is_string(input) ? json_pack("[O]", input) : json_incref(input);
    json_t *data = json_array();
    size_t i;
    json_t *t;
    long tokens = 0;
    json_array_foreach(texts, i, t)
    {
        const char *s = json_string_value(t);
        size_t len = s ? strlen(s) : 0;
        tokens += skiff_sim_text_tokens(len);
        json_t *v = skiff_sim_render_embedding(s ? s : "", len, NULL, 768);
        json_array_append_new(data,
                              json_pack("{s:s,s:O,s:I}", "object", "embedding", "embedding",
                                        json_object_get(v, "values"), "index", (json_int_t)i));
        json_decref(v);
    }
    json_decref(texts);
    compact(out, json_pack("{s:s,s:o,s:s,s:{s:I,s:I}}", "object", "list", "data", data, "model",
                           m->id, "usage", "prompt_tokens", (json_int_t)tokens, "total_tokens",
                           (json_int_t)tokens));
    json_decref(body);
}

/* The messages as Gemini contents, for the prompt the native API would read. */
static json_t *
contents_of(const json_t *messages)
{
    json_t *contents = json_array();
    size_t i;
    const json_t *m;
    json_array_foreach(messages, i, m)
    {
        const json_t *c = json_object_get(m, "content");
        json_t *parts = json_array();
        if (json_is_string(c)) {
            json_array_append_new(parts, json_pack("{s:O}", "text", c));
        } else {
            size_t k;
            const json_t *p;
            json_array_foreach(c, k, p)
            {
                const json_t *t = json_object_get(p, "text");
                if (json_is_string(t))
                    json_array_append_new(parts, json_pack("{s:O}", "text", t));
            }
        }
        json_array_append_new(contents, json_pack("{s:s,s:o}", "role", "user", "parts", parts));
    }
    return contents;
}

/* "data: " + j + "\n\n", appended to *s. */
static int
add_event(char **s, size_t *len, json_t *j)
{
    char *line = j ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER) : strdup("[DONE]");
    json_decref(j);
    if (!line)
        return -1;
    size_t n = strlen(line);
    char *grown = realloc(*s, *len + n + 9);
    if (!grown) {
        free(line);
        return -1;
    }
    *s = grown;
    *len += (size_t)snprintf(*s + *len, n + 9, "data: %s\n\n", line);
    free(line);
    return 0;
}

static void
chat(const struct skiff_request *req, struct skiff_sim_log_entry *e,
     struct skiff_sim_compat_reply *out)
{
    json_t *body = json_loadb(req->body, req->body_len, 0, NULL);
    const char *model = json_string_value(json_object_get(body, "model"));
    const json_t *messages = json_object_get(body, "messages");
    e->stream = json_is_true(json_object_get(body, "stream"));
    if (!json_is_object(body) || !model || !json_is_array(messages)) {
        json_decref(body);
        error(out, 400, "INVALID_ARGUMENT",
              !json_is_object(body) ? "Invalid JSON payload received."
                                    : "model and messages are required.");
        return;
    }
    if (strncmp(model, "models/", 7) == 0)
        model += 7;
    snprintf(e->model, sizeof e->model, "%s", model);
    const struct skiff_sim_model *m = skiff_sim_catalog_find(model, strlen(model));
    if (!m) {
        char msg[256];
        snprintf(msg, sizeof msg, "models/%.96s is not found for API version v1beta", model);
        json_decref(body);
        error(out, 404, "NOT_FOUND", msg);
        return;
    }
    json_t *contents = contents_of(messages);
    struct skiff_sim_prompt prompt;
    skiff_sim_prompt_read(contents, NULL, &prompt);
    json_decref(contents);
    struct skiff_sim_answer a;
    struct skiff_sim_answer_opts o = {
        .prompt = &prompt,
        .max_output_tokens = m->output_limit,
        .thinking_budget = 0,
        .model_version = m->target,
        .id_seed = prompt.hash,
    };
    if (skiff_sim_answer_make(&a, &o) != 0) {
        json_decref(body);
        error(out, 500, "INTERNAL", "out of memory");
        return;
    }
    long completion = skiff_sim_answer_tokens(&a, a.len);
    json_t *usage = json_pack("{s:I,s:I,s:I}", "completion_tokens", (json_int_t)completion,
                              "prompt_tokens", (json_int_t)a.prompt_tokens, "total_tokens",
                              (json_int_t)completion + a.prompt_tokens);
    const char *finish = strcmp(a.finish_reason, "MAX_TOKENS") == 0 ? "length" : "stop";
    if (!e->stream) {
        json_t *msg = json_pack("{s:s%,s:s}", "content", a.text, a.len, "role", "assistant");
        json_t *choice =
            json_pack("{s:s,s:i,s:o}", "finish_reason", finish, "index", 0, "message", msg);
        compact(out, json_pack("{s:[o],s:i,s:s,s:s,s:s,s:o}", "choices", choice, "created",
                               1788373398, "id", a.response_id, "model", m->target, "object",
                               "chat.completion", "usage", usage));
    } else {
        char *s = NULL;
        size_t len = 0;
        int rc = 0;
        for (size_t i = 0; !rc && i < a.nchunks; i++) {
            int last = i + 1 == a.nchunks;
            json_t *delta = json_pack("{s:s%,s:s}", "content", a.text + a.cuts[i],
                                      a.cuts[i + 1] - a.cuts[i], "role", "assistant");
            json_t *choice = json_pack("{s:o,s:i}", "delta", delta, "index", 0);
            if (last)
                json_object_set_new(choice, "finish_reason", json_string(finish));
            json_t *chunk =
                json_pack("{s:[o],s:i,s:s,s:s,s:s}", "choices", choice, "created", 1788373398, "id",
                          a.response_id, "model", m->target, "object", "chat.completion.chunk");
            if (last)
                json_object_set(chunk, "usage", usage);
            rc = add_event(&s, &len, chunk);
        }
        if (!rc)
            rc = add_event(&s, &len, NULL);
        json_decref(usage);
        out->status = rc ? 500 : 200;
        out->content_type = "text/event-stream";
        if (rc) {
            free(s);
            s = strdup("");
            len = 0;
        }
        out->body = s;
        out->len = len;
    }
    skiff_sim_answer_release(&a);
    json_decref(body);
}

int
skiff_sim_compat(const struct skiff_sim_conf *conf, struct skiff_sim_script *script,
                 const struct skiff_request *req, struct skiff_sim_log_entry *e,
                 struct skiff_sim_compat_reply *out)
{
    size_t n = sizeof PREFIX - 1;
    if (req->path_len < n || memcmp(req->path, PREFIX, n) != 0)
        return 0;
    const char *rest = req->path + n;
    size_t rlen = req->path_len - n;
    int is_chat =
        rlen == 16 && memcmp(rest, "chat/completions", 16) == 0 && strcmp(req->method, "POST") == 0;
    int get = strcmp(req->method, "GET") == 0;
    int is_models = rlen == 6 && memcmp(rest, "models", 6) == 0 && get;
    int is_model = rlen > 7 && memcmp(rest, "models/", 7) == 0 && get;
    int is_embed =
        rlen == 10 && memcmp(rest, "embeddings", 10) == 0 && strcmp(req->method, "POST") == 0;
    snprintf(e->version, sizeof e->version, "v1beta");
    snprintf(e->method, sizeof e->method, "%s",
             is_chat     ? "chat.completions"
             : is_embed  ? "embeddings"
             : is_models ? "models.list"
             : is_model  ? "models.get"
                         : "");
    memset(out, 0, sizeof *out);
    if (!is_chat && !is_models && !is_model && !is_embed) {
        error(out, 404, "NOT_FOUND", "Method not found.");
        return 1;
    }
    if (auth(conf, req, e, out) < 0)
        return 1;
    if (is_chat) {
        json_t *body = json_loadb(req->body, req->body_len, 0, NULL);
        const char *model = json_string_value(json_object_get(body, "model"));
        char mid[96] = "";
        if (model)
            snprintf(mid, sizeof mid, "%s", strncmp(model, "models/", 7) == 0 ? model + 7 : model);
        json_decref(body);
        snprintf(e->model, sizeof e->model, "%s", mid);
        struct skiff_sim_reply *r = skiff_sim_script_take(script, mid, NULL, e->key, e->method);
        if (r && r->kind == SKIFF_SIM_REPLY_ERROR) {
            e->scripted = 1;
            error(out, r->status, r->error_status,
                  r->message ? r->message : "The model is overloaded. Please try again later.");
            skiff_sim_reply_unref(r);
            return 1;
        }
        skiff_sim_reply_unref(r);
        chat(req, e, out);
    } else if (is_embed) {
        embeddings(req, e, out);
    } else if (is_model) {
        model_get(rest + 7, rlen - 7, out);
    } else {
        models(out);
    }
    return 1;
}
