/*
 * The Anthropic door. A request's way through it:
 *
 *   on_head: route (404 / 405) -> open mode's Host/Origin rule -> the client's token as
 *            x-api-key or Authorization: Bearer (before the body is read)
 *   handle:  the same again -> a key in the pool -> GET /v1/models[/{id}] answered from the
 *            models: map, or: the Messages body translated (messages_request.c, with the
 *            signature cache as its lookup) -> the map (404 naming the key to add) -> fitted
 *            to the Gemini model -> the engine's plan (SSE for a stream)
 *   the ops: a whole answer translated (messages_response.c); a stream's events translated
 *            one by one (messages_stream.c), with `event: ping` every SKIFF_ANTH_PING_MS while
 *            nothing else is sent; errors in Anthropic's shape (errors.c), mid-stream as an
 *            `event: error` after which the engine aborts the body.
 */
#include "doors/anthropic/door.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "base/buf.h"
#include "base/err.h"
#include "doors/anthropic/errors.h"
#include "doors/anthropic/messages_request.h"
#include "doors/anthropic/messages_response.h"
#include "doors/anthropic/messages_stream.h"
#include "doors/anthropic/route.h"
#include "doors/auth.h"
#include "doors/media.h"
#include "doors/dispatch.h"
#include "doors/models.h"
#include "gemini/catalog.h"
#include "gemini/stream.h"
#include "gemini/thinking.h"
#include "relay/keypool.h"
#include "state/sigcache.h"

#define JSON_TYPE "application/json"
#define SSE_TYPE "text/event-stream; charset=utf-8"
/* What one translated event may grow to (a call's whole arguments, a long text part). */
#define OUT_MAX (16u * 1024 * 1024)

/* Per-request state, from the plan to on_free. */
struct anth {
    enum skiff_anth_route_kind kind;
    struct skiff_anth_request ar; /* the translated request (its model, stop sequences) */
    char seed[25];                /* the answer's id seed: msg_<seed>, toolu_<seed>_<n> */
    struct skiff_anth_reply reply;
    struct skiff_anth_stream st;
    int st_init;
    struct skiff_buf out;
    int thoughts_unasked; /* thinking.include_thoughts showed thoughts the client did not ask */
    char *asked;          /* the model name the client asked for */
    const char *target;   /* the Gemini model it maps to (borrowed from the config) */
    json_t *count;        /* count_tokens: the countTokens body */
    /* A stream's ping timer, from on_head on. req and call tell whether the request is
     * still the engine's when it fires (see ping()). */
    uv_timer_t ping;
    int ping_init;
    struct skiff_request *req;
    void *call;
};

/* ---- answers -------------------------------------------------------------------------- */

/* The error body of e, with retry-after when one is known (429, 529). Ends the request. */
static void
respond_error(struct skiff_request *req, const struct skiff_anth_error *e, double retry_after_s)
{
    if (retry_after_s >= 0) {
        char ra[24];
        snprintf(ra, sizeof ra, "%.0f", ceil(retry_after_s < 1 ? 1 : retry_after_s));
        skiff_http_add_header(req, "retry-after", ra);
    }
    char *body = skiff_anth_error_body(e);
    static const char oom[] = "{\"type\":\"error\",\"error\":{\"type\":\"api_error\",\"message\":"
                              "\"skiff ran out of memory\"}}";
    if (body)
        skiff_http_respond(req, e->status, JSON_TYPE, body, strlen(body));
    else
        skiff_http_respond(req, 500, JSON_TYPE, oom, sizeof oom - 1);
    free(body);
}

/* A refusal before any attempt: the x-skiff-* headers of a refusal, then the error. */
static void
refuse(struct skiff_request *req, const char *model, const struct skiff_anth_error *e)
{
    skiff_engine_decorate(req, model, model ? strlen(model) : 0);
    respond_error(req, e, -1);
}

/* The door's own refusals for the dispatcher (CORS, /healthz's 405, open mode). */
static void
anth_error(struct skiff_request *req, int status, const char *message)
{
    struct skiff_anth_error e;
    skiff_anth_fail(&e, status, "%s", message);
    refuse(req, NULL, &e);
}

/* What the engine reports as an error, in Anthropic's terms. skiff's advice (x-skiff-hint)
 * is kept in the message, as the client may show nothing else. */
static void
translate_error(const struct skiff_engine_error *ee, struct skiff_anth_error *e)
{
    if (ee->body)
        skiff_anth_error_from_google_body(ee->status, ee->body, ee->body_len, e);
    else if (ee->status == 503 && !ee->gstatus)
        /* skiff's own 503 (no key can serve): not an overloaded Gemini. */
        skiff_anth_fail(e, 500, "%s", ee->message ? ee->message : "no key can serve");
    else
        skiff_anth_error_from_google(ee->status, ee->gstatus, ee->message, e);
    size_t n = strlen(e->message);
    if (ee->hint && !strstr(e->message, ee->hint) && n + 12 < sizeof e->message)
        snprintf(e->message + n, sizeof e->message - n, " (skiff: %s)", ee->hint);
}

/* ---- the signature cache, as the translators' callbacks --------------------------------- */

/* The signatures a request's lookups returned: the translator borrows them until it returns. */
struct sigs {
    char **v;
    size_t n, cap;
};

static const char *
sig_lookup(void *ud, const char *id)
{
    struct sigs *s = ud;
    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 8;
        char **v = realloc(s->v, cap * sizeof *v);
        if (!v)
            return NULL;
        s->v = v;
        s->cap = cap;
    }
    char *sig = skiff_sigcache_get(id);
    if (sig)
        s->v[s->n++] = sig;
    return sig;
}

static void
sigs_release(struct sigs *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->v[i]);
    free(s->v);
}

static void
sig_store(void *ud, const char *id, const char *sig)
{
    /* A signature the cache refuses (too long) still travels in the thinking block. */
    (void)skiff_sigcache_put(id, sig);
}

/* ---- the engine's ops ----------------------------------------------------------------- */

static void
anth_free(struct anth *a)
{
    if (a->st_init)
        skiff_anth_stream_release(&a->st);
    skiff_anth_request_release(&a->ar);
    skiff_buf_release(&a->out);
    json_decref(a->count);
    free(a->asked);
    free(a);
}

static void
ping_closed(uv_handle_t *h)
{
    anth_free(h->data);
}

static void
a_free(void *door)
{
    struct anth *a = door;
    if (a->ping_init) {
        uv_timer_stop(&a->ping);
        uv_close((uv_handle_t *)&a->ping, ping_closed);
        return;
    }
    anth_free(a);
}

/* Sends what the translator wrote into a->out; restarts the ping's count. */
static void
flush(struct anth *a, struct skiff_request *req)
{
    if (a->out.len)
        skiff_http_write(req, a->out.data, a->out.len);
    skiff_buf_reset(&a->out);
    if (a->ping_init && !a->st.done)
        uv_timer_again(&a->ping);
    else if (a->ping_init)
        uv_timer_stop(&a->ping);
}

/*
 * The ping timer. It stops at on_end and on_error, and on_free closes it; but after a client
 * went away on_free comes from a close callback, so a ping due in the same loop turn checks
 * that the request is still the engine's call (req->data, which the engine clears when it
 * lets go; the connection's memory outlives this turn).
 */
static void
ping(uv_timer_t *t)
{
    struct anth *a = t->data;
    if (!a->req || a->req->data != a->call || a->st.done)
        return;
    if (skiff_anth_stream_ping(&a->st, &a->out) == 0)
        flush(a, a->req);
}

static void
a_head(void *door, struct skiff_request *req, const struct skiff_engine_head *h)
{
    struct anth *a = door;
    skiff_http_add_header(req, "cache-control", "no-cache");
    skiff_http_start(req, 200, SSE_TYPE);
    a->req = req;
    a->call = req->data;
    if (uv_timer_init(skiff_http_loop(req), &a->ping) == 0) {
        a->ping.data = a;
        a->ping_init = 1;
        uv_timer_start(&a->ping, ping, SKIFF_ANTH_PING_MS, SKIFF_ANTH_PING_MS);
    }
}

static int
a_event(void *door, struct skiff_request *req, const char *ev, size_t len)
{
    struct anth *a = door;
    if (a->st.done)
        return 0;
    size_t jl;
    const char *j = skiff_stream_json(ev, len, &jl);
    int rc = skiff_anth_stream_event(&a->st, j, jl, &a->out);
    flush(a, req);
    return rc == SKIFF_ENOMEM || rc == SKIFF_ETOOBIG ? -1 : 0;
}

static void
a_end(void *door, struct skiff_request *req)
{
    struct anth *a = door;
    if (!a->st.done)
        skiff_anth_stream_end(&a->st, &a->out);
    flush(a, req);
}

static void
a_body(void *door, struct skiff_request *req, const struct skiff_engine_answer *ans)
{
    struct anth *a = door;
    struct skiff_anth_error e;
    char *body = a->kind == SKIFF_ANTH_ROUTE_COUNT_TOKENS
                     ? skiff_anth_count_response(ans->body, ans->len)
                     : skiff_anth_response(ans->body, ans->len, &a->reply, &e);
    if (!body) {
        if (a->kind == SKIFF_ANTH_ROUTE_COUNT_TOKENS)
            skiff_anth_fail(&e, 500, "the upstream's countTokens answer has no totalTokens");
        respond_error(req, &e, -1);
        return;
    }
    skiff_http_respond(req, 200, JSON_TYPE, body, strlen(body));
    free(body);
}

static void
a_error(void *door, struct skiff_request *req, const struct skiff_engine_error *ee)
{
    struct anth *a = door;
    struct skiff_anth_error e;
    translate_error(ee, &e);
    if (ee->after_start) {
        if (a->st_init && !a->st.done)
            skiff_anth_stream_fail(&a->st, &e, &a->out);
        flush(a, req);
        return;
    }
    respond_error(req, &e, ee->retry_after_s);
}

static const struct skiff_engine_ops anth_ops = {
    .on_head = a_head,
    .on_event = a_event,
    .on_body = a_body,
    .on_end = a_end,
    .on_error = a_error,
    .on_free = a_free,
};

/* ---- the door ------------------------------------------------------------------------- */

static int
anth_match(const struct skiff_request *req)
{
    return skiff_dispatch_style(req) == SKIFF_STYLE_ANTHROPIC;
}

/* Route, open mode, token: what the head decides. Returns 1 when it answered. */
static int
refuse_head(struct skiff_request *req, const struct skiff_config *cfg, struct skiff_anth_route *r)
{
    struct skiff_anth_error e;
    if (skiff_anth_route(req->method, req->path, req->path_len, r, &e)) {
        if (e.status == 405)
            skiff_http_add_header(req, "allow", strstr(e.message, "takes GET") ? "GET" : "POST");
        refuse(req, NULL, &e);
        return 1;
    }
    char msg[640];
    int code = skiff_auth_open_check(cfg, req, msg, sizeof msg);
    if (code) {
        skiff_anth_fail(&e, code, "%s", msg);
        refuse(req, NULL, &e);
        return 1;
    }
    const char *who;
    switch (skiff_auth_check_header(cfg, req, "x-api-key", &who)) {
    case SKIFF_AUTH_OK:
        return 0;
    case SKIFF_AUTH_MISSING:
        skiff_anth_fail(&e, 401,
                        "skiff needs a client token: send it as the x-api-key header (what the "
                        "Anthropic SDKs do with ANTHROPIC_API_KEY) or as Authorization: Bearer");
        break;
    case SKIFF_AUTH_INVALID:
        skiff_anth_fail(&e, 401,
                        "invalid x-api-key: the token is not one of skiff's tokens (config "
                        "`tokens`, or SKIFF_TOKENS); skiff expects its own token here, not an "
                        "Anthropic or Gemini key");
        break;
    }
    refuse(req, NULL, &e);
    return 1;
}

static void
anth_head(struct skiff_request *req, struct skiff_engine *e)
{
    struct skiff_anth_route r;
    refuse_head(req, skiff_engine_shared(e)->cfg, &r);
}

/* GET /v1/models and /v1/models/{id}: from the map, with no upstream call. */
static void
answer_models(struct skiff_request *req, const struct skiff_engine_shared *sh,
              const struct skiff_anth_route *r)
{
    const struct skiff_config *cfg = sh->cfg;
    struct skiff_anth_error e;
    char *body;
    if (r->kind == SKIFF_ANTH_ROUTE_MODEL) {
        body = skiff_anth_model_get(cfg->models, cfg->n_models, sh->cat, r->model_id, &e);
    } else {
        char after[SKIFF_ANTH_MODEL_ID_MAX + 1] = "", before[SKIFF_ANTH_MODEL_ID_MAX + 1] = "";
        char lim[16] = "";
        skiff_http_query(req, "after_id", after, sizeof after);
        skiff_http_query(req, "before_id", before, sizeof before);
        skiff_http_query(req, "limit", lim, sizeof lim);
        char *end;
        long limit = *lim ? strtol(lim, &end, 10) : 0;
        if (*lim && (*end || limit < 1 || limit > 1000)) {
            skiff_anth_fail(&e, 400, "limit: must be an integer from 1 to 1000, got \"%s\"", lim);
            refuse(req, NULL, &e);
            return;
        }
        body = skiff_anth_models_page(cfg->models, cfg->n_models, *after ? after : NULL,
                                      *before ? before : NULL, limit);
        if (!body)
            skiff_anth_fail(&e, 500, "skiff ran out of memory listing the models");
    }
    if (!body) {
        refuse(req, NULL, &e);
        return;
    }
    skiff_engine_decorate(req, NULL, 0);
    skiff_http_respond(req, 200, JSON_TYPE, body, strlen(body));
    free(body);
}

/* The request's "model", for count_tokens (which needs the Gemini model to translate). */
static char *
body_model(const struct skiff_request *req)
{
    json_t *j = json_loadb(req->body, req->body_len, 0, NULL);
    const char *m = json_string_value(json_object_get(j, "model"));
    char *out = m ? strdup(m) : NULL;
    json_decref(j);
    return out;
}

/*
 * Thinking the client said nothing of. Anthropic's default is none, so a small max_tokens is
 * never spent on thoughts: the least the model can do (gemini/thinking.h), unless the
 * operator chose otherwise: thinking.default_budget for this token and model, or
 * thinking.include_thoughts (the model's own thinking, shown). 0 or SKIFF_ENOMEM.
 */
static int
unasked_thinking(struct anth *a, const struct skiff_config *cfg, const char *who,
                 const struct skiff_model_info *mi)
{
    json_t *gc = json_object_get(a->ar.gemini, "generationConfig");
    if (!gc && json_object_set_new(a->ar.gemini, "generationConfig", gc = json_object()))
        return SKIFF_ENOMEM;
    json_t *tc = json_object_get(gc, "thinkingConfig");
    if (!tc && json_object_set_new(gc, "thinkingConfig", tc = json_object()))
        return SKIFF_ENOMEM;
    int b;
    if (skiff_thinking_default(cfg, who, a->target, &b) && skiff_thinking_accepts(mi, b)) {
        if (json_object_set_new(tc, "thinkingBudget", json_integer(b)))
            return SKIFF_ENOMEM;
    } else if (!cfg->include_thoughts && skiff_thinking_least(mi, a->target, tc)) {
        return SKIFF_ENOMEM;
    }
    a->thoughts_unasked = cfg->include_thoughts;
    if (cfg->include_thoughts && json_object_set_new(tc, "includeThoughts", json_true()))
        return SKIFF_ENOMEM;
    return 0;
}

static void
fresh_seed(char seed[25])
{
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    unsigned char r[24];
    if (getrandom(r, sizeof r, 0) != (ssize_t)sizeof r)
        for (size_t i = 0; i < sizeof r; i++) /* never in practice; ids need only be unique */
            r[i] = (unsigned char)(uv_hrtime() >> (i % 8 * 8)) ^ (unsigned char)(i * 37);
    for (size_t i = 0; i < sizeof r; i++)
        seed[i] = alphabet[r[i] % (sizeof alphabet - 1)];
    seed[24] = '\0';
}

/* Hands the translated request to the engine; on failure answers the refusal. */
static void
launch(struct anth *a, struct skiff_request *req, struct skiff_engine *eng)
{
    struct skiff_anth_error e;
    struct skiff_engine_plan plan = {
        .model = a->target, .model_len = strlen(a->target), .ops = &anth_ops, .door = a};
    char *body = json_dumps(a->count ? a->count : a->ar.gemini, JSON_COMPACT);
    if (!body) {
        skiff_anth_fail(&e, 500, "skiff ran out of memory");
        goto out_refuse;
    }
    plan.owned_body = body;
    plan.owned_len = strlen(body);
    enum skiff_method m = a->kind == SKIFF_ANTH_ROUTE_COUNT_TOKENS ? SKIFF_M_COUNT_TOKENS
                          : a->ar.stream                           ? SKIFF_M_STREAM
                                                                   : SKIFF_M_GENERATE;
    skiff_engine_route(&plan.route, m);
    plan.query.alt = m == SKIFF_M_STREAM ? SKIFF_ALT_SSE : SKIFF_ALT_NONE;
    if (a->kind == SKIFF_ANTH_ROUTE_MESSAGES) {
        fresh_seed(a->seed);
        a->reply = (struct skiff_anth_reply){
            .model = a->ar.model,
            .id_seed = a->seed,
            .stop_sequences = a->ar.stop_sequences,
            .thinking = a->ar.thinking == SKIFF_ANTH_THINKING_ENABLED ||
                        a->ar.thinking == SKIFF_ANTH_THINKING_ADAPTIVE || a->thoughts_unasked,
            .single_tool_call = a->ar.single_tool_call,
            .store = sig_store,
        };
        if (a->ar.stream) {
            skiff_anth_stream_init(&a->st, &a->reply);
            a->st_init = 1;
        }
    }
    if (skiff_engine_start(eng, req, &plan)) {
        free(plan.owned_body);
        skiff_anth_fail(&e, 500, "skiff ran out of memory");
        goto out_refuse;
    }
    return;
out_refuse:
    refuse(req, a->asked, &e);
    anth_free(a);
}

/* ---- media named by URL: fetched before the call (doors/media.h) --------------------- */

/* One fetch per URL; the request waits for all of them, and its first refusal answers. */
struct fetching {
    struct anth *a;
    struct skiff_request *req;
    struct skiff_engine *eng;
    size_t pending;
    struct fetch_slot {
        struct fetching *f;
        struct skiff_media *m; /* NULL once done */
        size_t i;
    } slots[];
};

static void
fetching_stop(struct fetching *f)
{
    for (size_t i = 0; i < f->a->ar.n_media; i++)
        if (f->slots[i].m)
            skiff_media_cancel(f->slots[i].m);
    f->req->data = NULL;
    f->req->on_abort = NULL;
}

/* The client went away while the media were fetched: stop them, answer nothing. */
static void
fetching_abort(struct skiff_request *req)
{
    struct fetching *f = req->data;
    fetching_stop(f);
    anth_free(f->a);
    free(f);
}

static void
media_done(void *data, const struct skiff_media_result *r)
{
    struct fetch_slot *slot = data;
    struct fetching *f = slot->f;
    struct anth *a = f->a;
    const struct skiff_anth_media *md = &a->ar.media[slot->i];
    slot->m = NULL;
    f->pending--;
    struct skiff_anth_error e;
    const char *what = md->document ? "document" : "image";
    if (r->status) {
        skiff_anth_fail(&e, 400, "%s: %s", what, r->error);
        goto out_refuse;
    }
    if (!md->document && strncmp(r->mime, "image/", 6) != 0) {
        skiff_anth_fail(&e, 400,
                        "image: the URL gave %s, not an image; give the URL of a PNG, JPEG, GIF "
                        "or WebP image, or send it as base64",
                        r->mime);
        goto out_refuse;
    }
    json_t *in = json_object_get(md->part, "inlineData");
    if (json_object_set_new(in, "mimeType", json_string(r->mime)) ||
        json_object_set_new(in, "data", json_stringn(r->b64, r->b64_len))) {
        skiff_anth_fail(&e, 500, "skiff ran out of memory");
        goto out_refuse;
    }
    if (f->pending)
        return;
    f->req->data = NULL;
    f->req->on_abort = NULL;
    launch(a, f->req, f->eng);
    free(f);
    return;
out_refuse:
    fetching_stop(f);
    refuse(f->req, a->asked, &e);
    anth_free(a);
    free(f);
}

/* Starts a fetch per URL medium; the request continues in media_done. */
static void
fetch_media(struct anth *a, struct skiff_request *req, struct skiff_engine *eng)
{
    const struct skiff_config *cfg = skiff_engine_shared(eng)->cfg;
    size_t n = a->ar.n_media;
    struct fetching *f = calloc(1, sizeof *f + n * sizeof f->slots[0]);
    if (!f) {
        struct skiff_anth_error e;
        skiff_anth_fail(&e, 500, "skiff ran out of memory");
        refuse(req, a->asked, &e);
        anth_free(a);
        return;
    }
    *f = (struct fetching){.a = a, .req = req, .eng = eng, .pending = n};
    struct skiff_media_rules rules = {
        .fetch_urls = cfg->media.fetch_urls,
        .max_bytes = cfg->media.max_bytes,
        .timeout_ms = cfg->media.timeout_ms,
        .allow_private = cfg->media.allow_private,
    };
    req->data = f;
    req->on_abort = fetching_abort;
    /* Callbacks come from the loop, never from inside skiff_media_fetch. */
    for (size_t i = 0; i < n; i++) {
        f->slots[i] = (struct fetch_slot){.f = f, .i = i};
        f->slots[i].m = skiff_media_fetch(skiff_http_loop(req), skiff_engine_upstream(eng),
                                          a->ar.media[i].url, &rules, media_done, &f->slots[i]);
        if (!f->slots[i].m) {
            struct skiff_anth_error e;
            skiff_anth_fail(&e, 500, "skiff ran out of memory");
            fetching_stop(f);
            refuse(req, a->asked, &e);
            anth_free(a);
            free(f);
            return;
        }
    }
}

/*
 * POST /v1/messages and /v1/messages/count_tokens: translate, map, fetch the media named by
 * URL, plan. Every refusal names what to change and costs no upstream call.
 */
static void
plan_messages(struct skiff_request *req, struct skiff_engine *eng, const struct skiff_anth_route *r)
{
    const struct skiff_engine_shared *sh = skiff_engine_shared(eng);
    const struct skiff_config *cfg = sh->cfg;
    struct skiff_anth_error e;
    struct sigs sigs = {0};
    struct anth *a = calloc(1, sizeof *a);
    if (!a) {
        skiff_anth_fail(&e, 500, "skiff ran out of memory");
        goto out_refuse;
    }
    a->kind = r->kind;
    skiff_buf_init(&a->out, OUT_MAX);
    if (r->kind == SKIFF_ANTH_ROUTE_COUNT_TOKENS) {
        a->asked = body_model(req);
        if (!a->asked) {
            skiff_anth_fail(&e, 400,
                            "model: Field required (a JSON body with the model name, as for "
                            "POST /v1/messages)");
            goto out_refuse;
        }
        a->target = skiff_models_resolve(cfg->models, cfg->n_models, sh->cat, a->asked);
        if (!a->target) {
            skiff_anth_model_unmapped(a->asked, &e);
            goto out_refuse;
        }
        if (skiff_anth_count_request(req->body, req->body_len, a->target, sig_lookup, &sigs,
                                     &a->count, &e))
            goto out_refuse;
    } else {
        if (skiff_anth_request_parse(req->body, req->body_len, sig_lookup, &sigs, &a->ar, &e))
            goto out_refuse;
        a->asked = strdup(a->ar.model);
        a->target = skiff_models_resolve(cfg->models, cfg->n_models, sh->cat, a->ar.model);
        if (!a->target) {
            skiff_anth_model_unmapped(a->ar.model, &e);
            goto out_refuse;
        }
        struct skiff_model_info mi;
        int known = skiff_catalog_lookup(sh->cat, a->target, strlen(a->target), &mi);
        const char *who = NULL;
        skiff_auth_check_header(cfg, req, "x-api-key", &who);
        if (skiff_anth_request_fit(&a->ar, known ? &mi : NULL, a->target) ||
            (a->ar.thinking == SKIFF_ANTH_THINKING_UNSET && known && mi.thinking &&
             unasked_thinking(a, cfg, who, &mi))) {
            skiff_anth_fail(&e, 500, "skiff ran out of memory");
            goto out_refuse;
        }
    }
    sigs_release(&sigs);
    if (a->ar.n_media)
        fetch_media(a, req, eng);
    else
        launch(a, req, eng);
    return;

out_refuse:
    refuse(req, a ? a->asked : NULL, &e);
    sigs_release(&sigs);
    if (a)
        anth_free(a);
}

static void
anth_handle(struct skiff_request *req, struct skiff_engine *e)
{
    const struct skiff_engine_shared *sh = skiff_engine_shared(e);
    struct skiff_anth_route r;
    if (refuse_head(req, sh->cfg, &r))
        return;
    /* The SDKs log it with every error they raise. */
    skiff_http_add_header(req, "request-id", req->id);
    if (r.kind == SKIFF_ANTH_ROUTE_MODELS || r.kind == SKIFF_ANTH_ROUTE_MODEL) {
        answer_models(req, sh, &r);
        return;
    }
    if (skiff_keypool_size(sh->pool) == 0) {
        struct skiff_anth_error err;
        skiff_anth_fail(&err, 500,
                        "skiff has no upstream key: set GEMINI_API_KEYS or upstreams.gemini.keys");
        refuse(req, NULL, &err);
        return;
    }
    plan_messages(req, e, &r);
}

/* The drain's end: a request still fetching its media is not the engine's yet. */
static void
anth_cut(struct skiff_request *req, struct skiff_engine *e)
{
    if (req->on_abort != fetching_abort) {
        skiff_engine_cut(req);
        return;
    }
    struct fetching *f = req->data;
    struct anth *a = f->a;
    fetching_stop(f);
    struct skiff_anth_error err;
    skiff_anth_fail(&err, 503, "skiff is shutting down; send the request again");
    refuse(req, a->asked, &err);
    anth_free(a);
    free(f);
}

const struct skiff_door skiff_anthropic_door = {
    .name = "anthropic",
    .match = anth_match,
    .on_head = anth_head,
    .handle = anth_handle,
    .error = anth_error,
    .cut = anth_cut,
};
