/*
 * The Gemini-native door. A request's way through it:
 *
 *   on_head: route -> helpful 404 / 400 for a model segment that is no name / 405 -> open
 *            mode's Host/Origin rule -> the client's token (before the body is read)
 *   handle:  the same again -> a key in the pool -> the query (uprequest.h) -> the JSON
 *            syntax -> local validation -> the thinking policy -> the engine's plan
 *            (Google's OpenAI-compatible /v1beta/openai/ calls skip the body's checks: their
 *            body goes as it came, the pool key as Authorization: Bearer)
 *   the ops: the upstream's head, bytes and body passed through as they came (no DOM, no
 *            re-encoding); errors in Google's format, mid-stream as a raw error object on
 *            an SSE stream (the form the SDKs parse), then the engine aborts the body.
 */
#include "doors/gemini/door.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/jsoncheck.h"
#include "doors/auth.h"
#include "doors/gemini/bidi.h"
#include "doors/gemini/lookup.h"
#include "doors/gemini/resources.h"
#include "doors/gemini/tenancy.h"
#include "gemini/diagnose.h"
#include "gemini/thinking.h"
#include "gemini/error.h"
#include "gemini/validate.h"
#include "relay/keypool.h"
#include "relay/uprequest.h"

/* ---- the engine's ops: a passthrough -------------------------------------------------- */

static void
g_head(void *door, struct skiff_request *req, const struct skiff_engine_head *h)
{
    skiff_http_start(req, h->status, h->content_type);
}

static int
g_data(void *door, struct skiff_request *req, const char *data, size_t len)
{
    skiff_http_write(req, data, len);
    return 0;
}

static void
g_body(void *door, struct skiff_request *req, const struct skiff_engine_answer *a)
{
    skiff_http_respond(req, a->status, a->content_type, a->body, a->len);
}

static void
g_error(void *door, struct skiff_request *req, const struct skiff_engine_error *e)
{
    if (e->after_start) {
        /* An SSE stream gets the error as a last raw object, as the API sends one
         * mid-stream; a JSON-array stream just ends unfinished. */
        char *body = e->sse ? skiff_gerr_body(e->status, e->gstatus, e->message, NULL, 0) : NULL;
        if (body) {
            skiff_http_write(req, body, strlen(body));
            free(body);
        }
        return;
    }
    if (e->body) {
        skiff_http_respond(req, e->status, e->content_type, e->body, e->body_len);
        return;
    }
    skiff_gerr_respond(req, e->status, e->gstatus, e->message,
                       e->details ? json_incref(e->details) : NULL);
}

static const struct skiff_engine_ops gemini_ops = {
    .on_head = g_head,
    .on_data = g_data,
    .on_body = g_body,
    .on_error = g_error,
};

/* A call on a stored resource, or one that creates one: the door remembers its route (and
 * the upload id its query borrows) to learn from the answer (resources.h). */
struct res_call {
    struct skiff_route rt;
    struct skiff_upquery query; /* the plan's (slices borrowed from the request) */
    const struct skiff_keypool *pool;
    const char *upstream_base; /* the config's base_url (borrowed) */
    struct skiff_gemini_pin pin;
    char owner[SKIFF_TENANCY_MAX_TAG]; /* the creator tag learn records ("" in open mode) */
    struct skiff_tenancy_list list;
};

static const struct skiff_engine_ops resource_ops;

/* The walk of a list under tenancy goes on to the page rc->list names: one more call, with
 * its own res_call (what rc holds moves to it); 0, or -1 when it cannot. */
static int
list_next(struct skiff_request *req, struct res_call *rc)
{
    struct res_call *n = malloc(sizeof *n);
    if (!n)
        return -1;
    *n = *rc;
    struct skiff_engine_plan plan = {
        .route = n->rt,
        .query = n->query,
        .model = n->rt.model,
        .model_len = n->rt.model_len,
        .forward_head = 1,
        .pin_key = n->list.key + 1,
        .ops = &resource_ops,
        .door = n,
    };
    plan.query.page_token = n->list.up_token[0] ? n->list.up_token : NULL;
    plan.query.page_token_len = strlen(n->list.up_token);
    if (skiff_engine_again(req, &plan)) {
        free(n);
        return -1;
    }
    rc->list.held = NULL;
    return 0;
}

static void
r_body(void *door, struct skiff_request *req, const struct skiff_engine_answer *a)
{
    struct res_call *rc = door;
    skiff_gemini_learn(req, rc->pool, &rc->rt, a, rc->owner[0] ? rc->owner : NULL);
    switch (skiff_tenancy_list_answer(req, rc->pool, &rc->rt, &rc->list, a)) {
    case SKIFF_TENANCY_PASS: {
        size_t len;
        char *body = skiff_gemini_rewrite_operation(req, rc->pool, rc->upstream_base, &rc->rt, a,
                                                    rc->owner[0] ? rc->owner : NULL, &len);
        if (body)
            skiff_http_respond(req, a->status, a->content_type, body, len);
        else
            g_body(door, req, a);
        free(body);
        return;
    }
    case SKIFF_TENANCY_ANSWERED:
        return;
    case SKIFF_TENANCY_NEXT:
        if (list_next(req, rc) != 0)
            skiff_tenancy_list_end(req, &rc->list);
        return;
    }
}

/* A failed page of a walk that had found some of the caller's already answers those. */
static void
r_error(void *door, struct skiff_request *req, const struct skiff_engine_error *e)
{
    struct res_call *rc = door;
    if (rc->list.held && !e->after_start) {
        skiff_tenancy_list_end(req, &rc->list);
        return;
    }
    g_error(door, req, e);
}

static void
r_free(void *door)
{
    struct res_call *rc = door;
    skiff_tenancy_list_release(&rc->list);
    free(rc);
}

static const struct skiff_engine_ops resource_ops = {
    .on_head = g_head,
    .on_data = g_data,
    .on_body = r_body,
    .on_error = r_error,
    .on_free = r_free,
};

/* ---- refusals ------------------------------------------------------------------------- */

/* A skiff-made error before any upstream attempt; status and details (stolen) may be NULL. */
static void
refuse_with(struct skiff_request *req, const struct skiff_route *rt, int code, const char *status,
            const char *message, json_t *details)
{
    skiff_engine_decorate(req, rt ? rt->model : NULL, rt && rt->model ? rt->model_len : 0);
    skiff_gerr_respond(req, code, status, message, details);
}

static void
early_error(struct skiff_request *req, const struct skiff_route *rt, int code, const char *message)
{
    refuse_with(req, rt, code, NULL, message, NULL);
}

void
skiff_gemini_error(struct skiff_request *req, int status, const char *message)
{
    early_error(req, NULL, status, message);
}

/* A path whose model segment is no model name ("..", "%2e", ""): it never goes upstream. */
static void
bad_model(struct skiff_request *req, const struct skiff_route *rt)
{
    char shown[65], msg[320];
    size_t n = 0;
    for (size_t i = 0; i < rt->model_len && n < sizeof shown - 1; i++) {
        unsigned char c = (unsigned char)rt->model[i];
        shown[n++] = c > 0x20 && c < 0x7f ? (char)c : '?';
    }
    shown[n] = '\0';
    snprintf(msg, sizeof msg,
             "\"%s\" is not a model name: a model name is letters, digits, '-', '.' and '_', "
             "starting with a letter or a digit, as in /v1beta/models/gemini-2.5-flash "
             "(GET /v1beta/models lists them)",
             shown);
    refuse_with(req, NULL, 400, "INVALID_ARGUMENT", msg, NULL);
}

/* Answers what the route alone decides (no route, wrong method); returns 1 when it did. */
static int
refuse_route(struct skiff_request *req, const struct skiff_route *rt)
{
    if (rt->kind == SKIFF_ROUTE_NONE || rt->kind == SKIFF_ROUTE_HEALTH) {
        /* /healthz is the dispatcher's; here it is a path like any other. */
        char msg[1024];
        skiff_gemini_no_route_message(req, msg, sizeof msg);
        early_error(req, rt, 404, msg);
        return 1;
    }
    if (rt->kind == SKIFF_ROUTE_BAD_MODEL) {
        bad_model(req, rt);
        return 1;
    }
    if (!rt->http_method_ok) {
        skiff_http_add_header(req, "allow",
                              rt->kind == SKIFF_ROUTE_RESOURCE || rt->kind == SKIFF_ROUTE_COMPAT
                                  ? rt->allow
                              : rt->kind == SKIFF_ROUTE_GENERATE ? "POST"
                                                                 : "GET");
        early_error(req, rt, 405, "method not allowed on this path");
        return 1;
    }
    return 0;
}

/* Open mode's Host/Origin rule, then the client's token; returns 1 when it answered. */
static int
refuse_client(const struct skiff_config *cfg, struct skiff_request *req,
              const struct skiff_route *rt, const char **who)
{
    char msg[640];
    int code = skiff_auth_open_check(cfg, req, msg, sizeof msg);
    if (code) {
        early_error(req, rt, code, msg);
        return 1;
    }
    switch (skiff_auth_check(cfg, req, who)) {
    case SKIFF_AUTH_OK:
        return 0;
    case SKIFF_AUTH_MISSING:
        early_error(req, rt, 401,
                    "skiff needs a client token: send it as the x-goog-api-key header (what the "
                    "Gemini SDKs do with apiKey), as ?key=, or as Authorization: Bearer");
        return 1;
    case SKIFF_AUTH_INVALID:
        early_error(req, rt, 401,
                    "the client token is not one of skiff's tokens (config `tokens`, or "
                    "SKIFF_TOKENS); note that skiff expects its own token here, not a Gemini key");
        return 1;
    }
    return 1;
}

/*
 * The head hook: what the head alone decides (route, method, open mode's Host/Origin rule,
 * the client's token) is answered before the body is read, so a client without a token
 * costs no body memory. handle checks the same again.
 */
static void
gemini_head(struct skiff_request *req, struct skiff_engine *e)
{
    if (skiff_gemini_live(req, e, 0))
        return; /* the Live API's WebSocket (bidi.c) */
    struct skiff_route rt;
    skiff_route(req->method, req->path, req->path_len, &rt);
    if (refuse_route(req, &rt))
        return;
    const char *who;
    if (refuse_client(skiff_engine_shared(e)->cfg, req, &rt, &who))
        return;
    if (skiff_gemini_upload_streams(req, &rt))
        skiff_http_stream_body(req); /* a file's bytes go through as they come */
}

/* The request's body as Gemini will read it: JSON (generate calls), valid for the model. */
static int
refuse_body(struct skiff_request *req, const struct skiff_engine_shared *sh,
            const struct skiff_route *rt)
{
    if (rt->kind != SKIFF_ROUTE_GENERATE)
        return 0;
    size_t off;
    const char *why;
    struct skiff_violation v;
    /* The syntax check and the rules in one pass (the new batch and predict methods take
     * bodies the validator has no rules for: their syntax only). */
    int rules = sh->cfg->validation && rt->method <= SKIFF_M_BATCH_EMBED;
    int rc = skiff_validate_body(sh->cat, rt->version, rt->model, rt->model_len, rt->method,
                                 req->body, req->body_len, rules, &v, &off, &why);
    if (rc < 0) {
        char msg[256];
        snprintf(msg, sizeof msg,
                 "Invalid JSON payload received. %s at byte %zu of the request body.",
                 req->body_len ? why : "The body is empty", off);
        early_error(req, rt, 400, msg);
        return 1;
    }
    if (rc > 0) {
        refuse_with(req, rt, v.status, v.gstatus, v.message, skiff_violation_details(&v));
        return 1;
    }
    return 0;
}

/*
 * Google's OpenAI-compatible calls go out as they came (the body is Google's to judge); the
 * door reads only the body's "model" (the asked model, for the key pool and x-skiff-model)
 * and "stream" (a stream is committed at its first byte, not judged: engine.h).
 */
static void
compat_plan(const struct skiff_request *req, struct skiff_engine_plan *plan, char *model,
            size_t modellen)
{
    json_t *j = req->body_len ? json_loadb(req->body, req->body_len, 0, NULL) : NULL;
    const char *m = json_string_value(json_object_get(j, "model"));
    if (m && strncmp(m, "models/", 7) == 0)
        m += 7;
    if (m && skiff_model_name_ok(m, strlen(m))) {
        snprintf(model, modellen, "%s", m);
        plan->model = model;
        plan->model_len = strlen(model);
    }
    if (json_is_true(json_object_get(j, "stream")))
        plan->route.method = SKIFF_M_STREAM;
    json_decref(j);
}

/* ---- affinity: the plan pinned to the owner of what the call names -------------------- */

/* A call waiting for the lookup of the owners it names (lookup.h). */
struct held_call {
    struct skiff_engine *e;
    struct skiff_route rt;
    struct skiff_engine_plan plan;
    struct skiff_tenancy_list list;
    char owner[SKIFF_TENANCY_MAX_TAG];
};

static void plan_pinned(struct skiff_request *req, struct skiff_engine *e,
                        const struct skiff_route *rtp, struct skiff_engine_plan *plan,
                        const struct skiff_tenancy_list *list, const char *owner, int looked);

static void
held_resume(struct skiff_request *req, void *data)
{
    struct held_call *h = data;
    plan_pinned(req, h->e, &h->rt, &h->plan, &h->list, h->owner, 1);
    free(h);
}

static void
held_drop(void *data)
{
    struct held_call *h = data;
    free(h->plan.owned_body);
    free(h);
}

/* Names skiff knows no owner of are looked up first (once); then the plan, pinned. */
static int
look_up_first(struct skiff_request *req, struct skiff_engine *e, const struct skiff_route *rt,
              struct skiff_engine_plan *plan, const struct skiff_tenancy_list *list,
              const char *owner, const struct skiff_gemini_pin *pin)
{
    struct held_call *h = malloc(sizeof *h);
    if (!h)
        return -1;
    *h = (struct held_call){.e = e, .rt = *rt, .plan = *plan, .list = *list};
    snprintf(h->owner, sizeof h->owner, "%s", owner);
    const char *names[SKIFF_GEMINI_MAX_UNKNOWN];
    for (int i = 0; i < pin->n_unknown; i++)
        names[i] = pin->unknown[i];
    if (skiff_gemini_lookup(req, e, names, pin->n_unknown, held_resume, held_drop, h)) {
        free(h);
        return -1;
    }
    return 0;
}

/* The end of handle: the owner of what the call names pins the plan, then the engine. */
static void
plan_pinned(struct skiff_request *req, struct skiff_engine *e, const struct skiff_route *rtp,
            struct skiff_engine_plan *plan_in, const struct skiff_tenancy_list *list,
            const char *owner, int looked)
{
    const struct skiff_engine_shared *sh = skiff_engine_shared(e);
    struct skiff_route rt = *rtp;
    struct skiff_engine_plan plan = *plan_in;
    /* Affinity: a call that names a stored resource goes out on the key that owns it. */
    struct skiff_gemini_pin pin;
    char pmsg[768];
    int pcode = skiff_gemini_pin_of(sh->pool, req, &rt, &pin, pmsg, sizeof pmsg);
    if (pcode) {
        free(plan.owned_body);
        refuse_with(req, &rt, pcode, NULL, pmsg, NULL);
        return;
    }
    if (pin.n_unknown && !looked && look_up_first(req, e, &rt, &plan, list, owner, &pin) == 0)
        return;
    plan.pin_key = pin.key;
    plan.stream_body = req->body_streamed;
    char compat_model[129];
    if (rt.kind == SKIFF_ROUTE_COMPAT)
        compat_plan(req, &plan, compat_model, sizeof compat_model);
    struct res_call *rc = NULL;
    if (rt.kind == SKIFF_ROUTE_RESOURCE || rt.method >= SKIFF_M_BATCH_GENERATE) {
        rc = malloc(sizeof *rc);
        if (!rc) {
            free(plan.owned_body);
            early_error(req, &rt, 500, "out of memory");
            return;
        }
        rc->rt = rt;
        rc->pool = sh->pool;
        rc->upstream_base = sh->cfg->base_url;
        rc->pin = pin;
        snprintf(rc->owner, sizeof rc->owner, "%s", owner);
        rc->list = *list;
        if (list->active) {
            plan.pin_key = list->key + 1;
            plan.query.page_token = list->up_token[0] ? rc->list.up_token : NULL;
            plan.query.page_token_len = strlen(rc->list.up_token);
        }
        plan.door = rc;
        plan.ops = &resource_ops;
        if (pin.upload_id[0])
            plan.query.upload_id = rc->pin.upload_id;
        rc->query = plan.query;
    }
    if (skiff_engine_start(e, req, &plan)) {
        free(plan.owned_body);
        free(rc);
        early_error(req, &rt, 500, "out of memory");
    }
}

static void
gemini_handle(struct skiff_request *req, struct skiff_engine *e)
{
    if (skiff_gemini_live(req, e, 1))
        return; /* the Live API's WebSocket (bidi.c) */
    const struct skiff_engine_shared *sh = skiff_engine_shared(e);
    const struct skiff_config *cfg = sh->cfg;
    struct skiff_route rt;
    skiff_route(req->method, req->path, req->path_len, &rt);
    if (refuse_route(req, &rt))
        return;
    const char *who;
    if (refuse_client(cfg, req, &rt, &who))
        return;
    if (skiff_keypool_size(sh->pool) == 0) {
        early_error(req, &rt, 503,
                    "skiff has no upstream key: set GEMINI_API_KEYS or upstreams.gemini.keys");
        return;
    }
    struct skiff_engine_plan plan = {
        .route = rt,
        .model = rt.model,
        .model_len = rt.model_len,
        .body = req->body,
        .body_len = req->body_len,
        .forward_head = 1,
        .ops = &gemini_ops,
    };
    char qmsg[256];
    if (skiff_upquery_parse(req->query, req->query_len, &rt, &plan.query, qmsg, sizeof qmsg)) {
        refuse_with(req, &rt, 400, "INVALID_ARGUMENT", qmsg, NULL);
        return;
    }
    if (refuse_body(req, sh, &rt))
        return;
    if (rt.method == SKIFF_M_GENERATE || rt.method == SKIFF_M_STREAM) {
        /* The policy sees the asked model as the engine keeps it: cut to 128 bytes. */
        char asked[129];
        size_t alen = strnlen(rt.model, rt.model_len < 128 ? rt.model_len : 128);
        memcpy(asked, rt.model, alen);
        asked[alen] = '\0';
        plan.owned_body = skiff_thinking_apply(cfg, sh->cat, who, rt.version, asked, req->body,
                                               req->body_len, &plan.owned_len);
    }
    /* Tenancy: another token's resource is not there; a list is the caller's, key by key.
     * Checked before affinity, so no message of it names another token's resource. */
    struct skiff_tenancy_list list;
    const char *tstatus = NULL;
    char tmsg[512];
    int tcode =
        skiff_tenancy_refuse(cfg, sh->pool, req, &rt, who, &list, &tstatus, tmsg, sizeof tmsg);
    if (tcode) {
        free(plan.owned_body);
        refuse_with(req, &rt, tcode, tstatus, tmsg, NULL);
        return;
    }
    char owner[SKIFF_TENANCY_MAX_TAG];
    skiff_tenancy_tag(cfg, who, owner, sizeof owner);
    plan_pinned(req, e, &rt, &plan, &list, owner, 0);
}

/* The drain's end: a request still waiting for a lookup is not the engine's yet. */
static void
gemini_cut(struct skiff_request *req, struct skiff_engine *e)
{
    if (!skiff_gemini_lookup_cut(req)) {
        skiff_engine_cut(req);
        return;
    }
    early_error(req, NULL, 503, "skiff is shutting down; send the request again");
}

/* The default door: what no other door matches is Gemini's (or its 404's). */
static int
gemini_match(const struct skiff_request *req)
{
    return 1;
}

const struct skiff_door skiff_gemini_door = {
    .name = "gemini",
    .match = gemini_match,
    .on_head = gemini_head,
    .handle = gemini_handle,
    .error = skiff_gemini_error,
    .cut = gemini_cut,
};
