/*
 * The OpenAI door (docs/internals/openai.md): POST /v1/chat/completions, /v1/responses,
 * /v1/embeddings, GET /v1/models[/{id}], also under /openai/v1/. One request's life:
 *
 *   route → auth (the skiff token as Bearer) → JSON → the models: map → translate
 *   (chat_request.c, responses.c, embeddings.c; the signature cache read) → media URLs
 *   fetched one at a time (doors/media.c) → the engine with the Gemini body (door_engine.c)
 *   → the answer translated back (whole, or event by event through the stream translators;
 *   the signature cache written) → OpenAI's error shape for every failure.
 *
 * Every client-visible failure leaves through oai_fail; the request's state is freed in one
 * place (oai_free), when the answer has been written or the client went away.
 */
#include "doors/openai/door.h"
#include "state/sigcache.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "base/clock.h"
#include "base/err.h"
#include "doors/auth.h"
#include "doors/media.h"
#include "doors/models.h"
#include "doors/openai/models.h"
#include "doors/openai/responses.h"
#include "doors/openai/door.h"

#define MAX_SIGS 64 /* signatures looked up per request; more calls go without the cache */

/* ---- routes ------------------------------------------------------------------------------ */

/* The path after "/v1" or "/openai/v1", or NULL when it is neither. */
static const char *
oai_rest(const struct skiff_request *req, size_t *len)
{
    const char *p = req->path;
    size_t n = req->path_len;
    if (n >= 10 && !memcmp(p, "/openai/v1", 10) && (n == 10 || p[10] == '/')) {
        *len = n - 10;
        return p + 10;
    }
    if (n >= 3 && !memcmp(p, "/v1", 3) && (n == 3 || p[3] == '/')) {
        *len = n - 3;
        return p + 3;
    }
    return NULL;
}

static int
rest_is(const char *r, size_t n, const char *lit)
{
    size_t l = strlen(lit);
    return n == l && !memcmp(r, lit, l);
}

enum skiff_oai_route
skiff_oai_route(const struct skiff_request *req, char *model_id, size_t idlen)
{
    size_t n;
    const char *r = oai_rest(req, &n);
    if (!r)
        return SKIFF_OAI_NONE;
    if (rest_is(r, n, "/chat/completions"))
        return SKIFF_OAI_CHAT;
    if (rest_is(r, n, "/responses"))
        return SKIFF_OAI_RESPONSES;
    if (rest_is(r, n, "/embeddings"))
        return SKIFF_OAI_EMBEDDINGS;
    if (rest_is(r, n, "/models"))
        return SKIFF_OAI_MODELS;
    if (n > 8 && !memcmp(r, "/models/", 8)) {
        size_t l = n - 8;
        if (model_id && idlen) {
            if (l >= idlen)
                l = idlen - 1;
            memcpy(model_id, r + 8, l);
            model_id[l] = '\0';
        }
        return SKIFF_OAI_MODEL;
    }
    return SKIFF_OAI_UNKNOWN;
}

/* ---- the error writer ---------------------------------------------------------------------- */

void
skiff_oai_respond_error(struct skiff_request *req, const struct skiff_oai_error *e,
                        long retry_after_s)
{
    if (e->status == 429) {
        long s = e->retry_after_s > 0 ? e->retry_after_s : retry_after_s;
        if (s > 0) {
            char v[24];
            snprintf(v, sizeof v, "%ld", s);
            skiff_http_add_header(req, "retry-after", v);
        }
    }
    json_t *j = skiff_oai_error_json(e);
    char *body = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    static const char oom[] = "{\"error\":{\"message\":\"out of memory\",\"type\":\"api_error\","
                              "\"param\":null,\"code\":null}}";
    if (body)
        skiff_http_respond(req, e->status, "application/json", body, strlen(body));
    else
        skiff_http_respond(req, 500, "application/json", oom, sizeof oom - 1);
    free(body);
}

void
skiff_oai_respond_status(struct skiff_request *req, int status, const char *param, const char *code,
                         const char *msg)
{
    struct skiff_oai_error e;
    skiff_oai_error_set(&e, status, param, code, "%s", msg);
    skiff_oai_respond_error(req, &e, -1);
}

static void
respond_json(struct skiff_request *req, int status, json_t *j)
{
    char *body = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (!body) {
        skiff_oai_respond_status(req, 500, NULL, NULL, "out of memory");
        return;
    }
    skiff_http_respond(req, status, "application/json", body, strlen(body));
    free(body);
}

/* ---- auth -------------------------------------------------------------------------------------
 */

int
skiff_oai_refuse_client(const struct skiff_config *cfg, struct skiff_request *req)
{
    char msg[640];
    int code = skiff_auth_open_check(cfg, req, msg, sizeof msg);
    if (code) {
        skiff_oai_error(req, code, msg);
        return 1;
    }
    const char *who;
    switch (skiff_auth_check(cfg, req, &who)) {
    case SKIFF_AUTH_OK:
        return 0;
    case SKIFF_AUTH_MISSING:
        skiff_engine_decorate(req, NULL, 0);
        skiff_oai_respond_status(req, 401, NULL, "invalid_api_key",
                                 "skiff needs a client token: give the OpenAI SDK skiff's token "
                                 "as its apiKey (it is sent as Authorization: Bearer)");
        return 1;
    case SKIFF_AUTH_INVALID:
        skiff_engine_decorate(req, NULL, 0);
        skiff_oai_respond_status(req, 401, NULL, "invalid_api_key",
                                 "the API key is not one of skiff's tokens (config `tokens`, or "
                                 "SKIFF_TOKENS); give the OpenAI SDK skiff's own token, not an "
                                 "OpenAI or Gemini key");
        return 1;
    }
    return 1;
}

/* ---- models -----------------------------------------------------------------------------------
 */

static void
answer_models(struct skiff_request *req, const struct skiff_oai_env *env, enum skiff_oai_route r,
              const char *id)
{
    skiff_engine_decorate(req, NULL, 0);
    long now = (long)(skiff_now_ms() / 1000);
    const struct skiff_config *cfg = env->cfg;
    if (r == SKIFF_OAI_MODELS) {
        respond_json(req, 200, skiff_oai_models_list(env->cat, cfg->models, cfg->n_models, now));
        return;
    }
    json_t *m = skiff_oai_model_get(env->cat, cfg->models, cfg->n_models, id, now);
    if (!m) {
        struct skiff_oai_error e;
        skiff_oai_error_set(&e, 404, "model", "model_not_found",
                            "The model `%s` does not exist: it is neither a Gemini model nor a "
                            "name of skiff's models: map (GET /v1/models lists them)",
                            id);
        skiff_oai_respond_error(req, &e, -1);
        return;
    }
    respond_json(req, 200, m);
}

/* ---- the request's state ----------------------------------------------------------------------
 */

void
skiff_oai_req_free(struct skiff_oai_req *st)
{
    if (!st)
        return;
    if (st->media)
        skiff_media_cancel(st->media);
    json_decref(st->json);
    if (st->have_chat)
        skiff_oai_chat_release(&st->chat);
    if (st->have_emb)
        skiff_oai_embed_release(&st->emb);
    for (size_t i = 0; i < st->nsigs; i++)
        free(st->sigs[i]);
    free(st->gbody);
    skiff_oai_stream_free(st->cs);
    skiff_oai_rstream_free(st->rs);
    skiff_buf_release(&st->out);
    free(st);
}

/* The signature cache's read side for chat_request.c: the strings live until the request
 * ends. */
static const char *
sig_lookup(void *ud, const char *call_id)
{
    struct skiff_oai_req *st = ud;
    if (st->nsigs >= MAX_SIGS)
        return NULL;
    char *s = skiff_sigcache_get(call_id);
    if (s)
        st->sigs[st->nsigs++] = s;
    return s;
}

static void
sig_store(void *ud, const char *call_id, const char *sig)
{
    (void)ud;
    skiff_sigcache_put(call_id, sig); /* a failure costs only the cache's copy */
}

void
skiff_oai_answer_opts(const struct skiff_oai_req *st, struct skiff_oai_answer_opts *o)
{
    memset(o, 0, sizeof *o);
    o->model = st->have_chat ? st->chat.model : st->emb.model;
    o->created = (long)(skiff_now_ms() / 1000);
    o->include_thoughts = st->chat.include_thoughts;
    o->parallel_calls = st->chat.parallel_calls;
    o->store = sig_store;
    o->ud = (void *)st;
}

/* ---- translating the request ------------------------------------------------------------------
 */

static void fetch_next_media(struct skiff_oai_req *st);

/* A 400 (or the given status) for the client, then the state goes. */
static void
oai_fail(struct skiff_oai_req *st, const struct skiff_oai_error *e)
{
    struct skiff_request *req = st->req;
    req->data = NULL;
    req->on_abort = NULL;
    skiff_engine_decorate(req, st->target[0] ? st->target : NULL, strlen(st->target));
    skiff_oai_respond_error(req, e, -1);
    skiff_oai_req_free(st);
}

static void
media_done(void *data, const struct skiff_media_result *r)
{
    struct skiff_oai_req *st = data;
    st->media = NULL;
    if (r->status) {
        struct skiff_oai_error e;
        skiff_oai_error_set(&e, r->status, st->media_param, "invalid_image_url", "%s", r->error);
        oai_fail(st, &e);
        return;
    }
    if (skiff_oai_chat_fill_media(&st->chat, st->media_i, r->mime, r->b64) < 0) {
        struct skiff_oai_error e;
        skiff_oai_error_set(&e, 500, NULL, NULL, "out of memory filling a fetched image");
        oai_fail(st, &e);
        return;
    }
    st->media_i++;
    fetch_next_media(st);
}

static void
on_abort_early(struct skiff_request *req)
{
    struct skiff_oai_req *st = req->data;
    req->data = NULL;
    skiff_oai_req_free(st);
}

/* Fetches the request's media URLs one after the other, then hands the body to the engine. */
static void
fetch_next_media(struct skiff_oai_req *st)
{
    size_t n = st->have_chat ? json_array_size(st->chat.media) : 0;
    if (st->media_i >= n) {
        st->req->on_abort = NULL;
        char *b = json_dumps(st->have_chat ? st->chat.body : st->emb.body, JSON_COMPACT);
        if (!b) {
            struct skiff_oai_error e;
            skiff_oai_error_set(&e, 500, NULL, NULL, "out of memory");
            oai_fail(st, &e);
            return;
        }
        st->gbody = b;
        st->gbody_len = strlen(b);
        skiff_oai_submit(st);
        return;
    }
    const json_t *m = json_array_get(st->chat.media, st->media_i);
    const char *url = json_string_value(json_object_get(m, "url"));
    const char *param = json_string_value(json_object_get(m, "param"));
    snprintf(st->media_param, sizeof st->media_param, "%s", param ? param : "messages");
    const struct skiff_config *cfg = st->env.cfg;
    struct skiff_media_rules rules = {
        .fetch_urls = cfg->media.fetch_urls,
        .max_bytes = cfg->media.max_bytes,
        .timeout_ms = cfg->media.timeout_ms,
        .allow_private = cfg->media.allow_private,
    };
    st->req->data = st;
    st->req->on_abort = on_abort_early;
    st->media =
        skiff_media_fetch(st->env.loop, st->env.upstream, url ? url : "", &rules, media_done, st);
    if (!st->media) {
        struct skiff_oai_error e;
        skiff_oai_error_set(&e, 500, NULL, NULL, "out of memory fetching an image");
        oai_fail(st, &e);
    }
}

/* The Gemini model for the request's "model", or a 404 answered. */
static const char *
resolve_model(struct skiff_oai_req *st, const char *asked)
{
    const struct skiff_config *cfg = st->env.cfg;
    const char *t = skiff_models_resolve(cfg->models, cfg->n_models, st->env.cat, asked);
    if (!t || strlen(t) >= sizeof st->target) {
        struct skiff_oai_error e;
        skiff_oai_error_set(&e, 404, "model", "model_not_found",
                            "The model `%s` does not exist: it is neither a Gemini model nor a "
                            "name of skiff's models: map (add it there, e.g. models: {%s: "
                            "gemini-2.5-flash}; GET /v1/models lists the names)",
                            asked, asked);
        oai_fail(st, &e);
        return NULL;
    }
    const char *name = strncmp(t, "models/", 7) == 0 ? t + 7 : t;
    snprintf(st->target, sizeof st->target, "%s", name);
    return st->target;
}

static void
translate_chat(struct skiff_oai_req *st, const json_t *chatreq)
{
    struct skiff_oai_error e;
    const char *asked = json_string_value(json_object_get(chatreq, "model"));
    if (!asked || !*asked) {
        skiff_oai_error_set(&e, 400, "model", NULL,
                            "`model` is required: a Gemini model (gemini-2.5-flash) or a name of "
                            "skiff's models: map");
        oai_fail(st, &e);
        return;
    }
    if (!resolve_model(st, asked))
        return;
    struct skiff_model_info info;
    int known = skiff_catalog_lookup(st->env.cat, st->target, strlen(st->target), &info) == 1;
    struct skiff_oai_chat_opts o = {
        .gemini_model = st->target,
        .info = known ? &info : NULL,
        .lookup = sig_lookup,
        .ud = st,
        .include_thoughts = st->env.cfg->include_thoughts,
    };
    int rc = skiff_oai_chat_request(chatreq, &o, &st->chat, &e);
    if (rc) {
        if (rc != SKIFF_EINVAL)
            skiff_oai_error_set(&e, 500, NULL, NULL, "out of memory");
        oai_fail(st, &e);
        return;
    }
    st->have_chat = 1;
    st->stream = st->chat.stream;
    fetch_next_media(st);
}

static void
translate_embeddings(struct skiff_oai_req *st)
{
    struct skiff_oai_error e;
    const char *asked = json_string_value(json_object_get(st->json, "model"));
    if (!asked || !*asked) {
        skiff_oai_error_set(&e, 400, "model", NULL,
                            "`model` is required: a Gemini embedding model "
                            "(gemini-embedding-001) or a name of skiff's models: map");
        oai_fail(st, &e);
        return;
    }
    if (!resolve_model(st, asked))
        return;
    int rc = skiff_oai_embeddings_request(st->json, st->target, &st->emb, &e);
    if (rc) {
        if (rc != SKIFF_EINVAL)
            skiff_oai_error_set(&e, 500, NULL, NULL, "out of memory");
        oai_fail(st, &e);
        return;
    }
    st->have_emb = 1;
    fetch_next_media(st);
}

/* ---- the handler -------------------------------------------------------------------------- */

/* What the head alone decides: route and method; 1 when it answered. */
static int
refuse_route(struct skiff_request *req, enum skiff_oai_route r)
{
    if (r == SKIFF_OAI_NONE || r == SKIFF_OAI_UNKNOWN) {
        char msg[512];
        snprintf(msg, sizeof msg,
                 "skiff's OpenAI door has no route for %.*s: it serves POST /v1/chat/completions, "
                 "POST /v1/responses, POST /v1/embeddings, GET /v1/models and GET "
                 "/v1/models/{id} (also under /openai/v1/)",
                 (int)(req->path_len > 200 ? 200 : req->path_len), req->path);
        skiff_engine_decorate(req, NULL, 0);
        skiff_oai_respond_status(req, 404, NULL, "unknown_url", msg);
        return 1;
    }
    int get = r == SKIFF_OAI_MODELS || r == SKIFF_OAI_MODEL;
    if (strcmp(req->method, get ? "GET" : "POST") != 0) {
        skiff_http_add_header(req, "allow", get ? "GET" : "POST");
        skiff_engine_decorate(req, NULL, 0);
        skiff_oai_respond_status(req, 405, NULL, "method_not_allowed",
                                 get ? "this path takes GET" : "this path takes POST");
        return 1;
    }
    return 0;
}

void
skiff_oai_error(struct skiff_request *req, int status, const char *message)
{
    skiff_engine_decorate(req, NULL, 0);
    skiff_oai_respond_status(req, status, NULL, NULL, message);
}

void
skiff_oai_head(struct skiff_request *req, struct skiff_engine *e)
{
    if (refuse_route(req, skiff_oai_route(req, NULL, 0)))
        return;
    skiff_oai_refuse_client(skiff_engine_shared(e)->cfg, req);
}

void
skiff_oai_handle(struct skiff_request *req, struct skiff_engine *eng)
{
    char id[256] = "";
    enum skiff_oai_route r = skiff_oai_route(req, id, sizeof id);
    if (refuse_route(req, r))
        return;
    const struct skiff_engine_shared *sh = skiff_engine_shared(eng);
    struct skiff_oai_env env = {
        .cfg = sh->cfg,
        .cat = sh->cat,
        .loop = skiff_http_loop(req),
        .upstream = skiff_engine_upstream(eng),
        .engine = eng,
    };
    if (skiff_oai_refuse_client(env.cfg, req))
        return;
    if (r == SKIFF_OAI_MODELS || r == SKIFF_OAI_MODEL) {
        answer_models(req, &env, r, id);
        return;
    }
    struct skiff_oai_req *st = calloc(1, sizeof *st);
    if (!st) {
        skiff_oai_error(req, 500, "out of memory");
        return;
    }
    st->req = req;
    st->env = env;
    st->route = r;
    skiff_buf_init(&st->out, 64 * 1024 * 1024);
    json_error_t jerr;
    st->json = json_loadb(req->body ? req->body : "", req->body_len, JSON_REJECT_DUPLICATES, &jerr);
    struct skiff_oai_error e;
    if (!json_is_object(st->json)) {
        if (st->json)
            skiff_oai_error_set(&e, 400, NULL, NULL,
                                "the request body must be a JSON object (Content-Type: "
                                "application/json)");
        else
            skiff_oai_error_set(&e, 400, NULL, NULL,
                                "the request body is not valid JSON: %s (line %d, column %d)",
                                jerr.text, jerr.line, jerr.column);
        oai_fail(st, &e);
        return;
    }
    if (r == SKIFF_OAI_EMBEDDINGS) {
        translate_embeddings(st);
        return;
    }
    if (r == SKIFF_OAI_CHAT) {
        translate_chat(st, st->json);
        return;
    }
    json_t *chatreq = skiff_oai_responses_to_chat(st->json, &e);
    if (!chatreq) {
        oai_fail(st, &e);
        return;
    }
    translate_chat(st, chatreq);
    json_decref(chatreq);
}
