/*
 * The OpenAI door on the engine (engine/engine.h): the plan for a translated request, and
 * the ops that turn what the engine reports back into OpenAI's dialect. The engine keeps
 * every resilience rule (retries before the first byte only, key pool, fallback, deadline,
 * hold-before-commit); the ops only translate:
 *
 *   on_body   a whole Gemini answer → chat.completion, Response or embeddings list
 *   on_head   a stream committed → text/event-stream starts
 *   on_event  each Gemini SSE event → the stream translator's chunks
 *   on_end    the final chunk (finish_reason), usage, [DONE] (or response.completed)
 *   on_error  before the start: OpenAI's error body (Retry-After on a 429); after it: the
 *             translator's error chunk, and the engine aborts the body (no [DONE])
 *   on_free   the request's state goes
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "doors/dispatch.h"
#include "doors/openai/door.h"
#include "doors/openai/responses.h"
#include "engine/engine.h"
#include "gemini/error.h"
#include "gemini/stream.h"

/* OpenAI's error for what the engine reports: Google's own body translated, or skiff's
 * message with Google's status as the code; skiff's advice is kept in the message. */
static void
engine_error(const struct skiff_engine_error *e, struct skiff_oai_error *oe)
{
    if (e->body && e->body_len) {
        skiff_oai_error_from_google(e->status, e->body, e->body_len, oe);
    } else {
        char code[48] = "";
        const char *gs = e->gstatus && *e->gstatus ? e->gstatus : skiff_gerr_status_for(e->status);
        for (size_t i = 0; gs[i] && i + 1 < sizeof code; i++)
            code[i] = (char)(gs[i] >= 'A' && gs[i] <= 'Z' ? gs[i] + 32 : gs[i]);
        skiff_oai_error_set(oe, e->status, NULL, *code ? code : NULL, "%s",
                            e->message ? e->message : "the upstream failed");
    }
    oe->status = e->status;
    if (e->hint && !strstr(oe->message, e->hint)) {
        size_t n = strlen(oe->message);
        snprintf(oe->message + n, sizeof oe->message - n, " (skiff: %s)", e->hint);
    }
    if (oe->retry_after_s < 0 && e->retry_after_s > 0)
        oe->retry_after_s = (long)ceil(e->retry_after_s);
}

static void
write_out(struct skiff_oai_req *st, struct skiff_request *req)
{
    if (st->out.len)
        skiff_http_write(req, st->out.data, st->out.len);
    skiff_buf_reset(&st->out);
}

static void
o_head(void *door, struct skiff_request *req, const struct skiff_engine_head *h)
{
    skiff_http_add_header(req, "cache-control", "no-cache");
    skiff_http_start(req, 200, "text/event-stream; charset=utf-8");
}

static int
o_event(void *door, struct skiff_request *req, const char *ev, size_t len)
{
    struct skiff_oai_req *st = door;
    size_t jl;
    const char *j = skiff_stream_json(ev, len, &jl);
    if (!j)
        return 0; /* a comment or an empty event: nothing to translate */
    int rc = st->rs ? skiff_oai_rstream_feed(st->rs, j, jl, &st->out)
                    : skiff_oai_stream_feed(st->cs, j, jl, &st->out);
    write_out(st, req);
    return rc == 0 ? 0 : -1;
}

static void
o_end(void *door, struct skiff_request *req)
{
    struct skiff_oai_req *st = door;
    if (st->rs)
        skiff_oai_rstream_end(st->rs, &st->out);
    else
        skiff_oai_stream_end(st->cs, &st->out);
    write_out(st, req);
}

static void
respond_json(struct skiff_request *req, int status, json_t *j)
{
    char *body = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (!body) {
        skiff_oai_respond_status(req, 500, NULL, NULL, "out of memory translating the answer");
        return;
    }
    skiff_http_respond(req, status, "application/json", body, strlen(body));
    free(body);
}

static void
o_body(void *door, struct skiff_request *req, const struct skiff_engine_answer *a)
{
    struct skiff_oai_req *st = door;
    json_t *g = json_loadb(a->body, a->len, 0, NULL);
    struct skiff_oai_error e;
    if (!json_is_object(g)) {
        json_decref(g);
        skiff_oai_error_set(&e, 502, NULL, NULL,
                            "the Gemini API answered with a body that is not a JSON object");
        skiff_oai_respond_error(req, &e, -1);
        return;
    }
    json_t *out;
    if (st->route == SKIFF_OAI_EMBEDDINGS) {
        out = skiff_oai_embeddings_response(g, &st->emb, &e);
        json_decref(g);
        if (!out) {
            skiff_oai_respond_error(req, &e, -1);
            return;
        }
        respond_json(req, 200, out);
        return;
    }
    struct skiff_oai_answer_opts o;
    skiff_oai_answer_opts(st, &o);
    out = skiff_oai_chat_response(g, &o);
    json_decref(g);
    if (out && st->route == SKIFF_OAI_RESPONSES) {
        json_t *r = skiff_oai_response_from_chat(out);
        json_decref(out);
        out = r;
    }
    respond_json(req, 200, out);
}

static void
o_error(void *door, struct skiff_request *req, const struct skiff_engine_error *e)
{
    struct skiff_oai_req *st = door;
    struct skiff_oai_error oe;
    engine_error(e, &oe);
    if (e->after_start) {
        if (st->rs)
            skiff_oai_rstream_fail(st->rs, &oe, &st->out);
        else if (st->cs)
            skiff_oai_stream_fail(st->cs, &oe, &st->out);
        write_out(st, req);
        return;
    }
    skiff_oai_respond_error(req, &oe, -1);
}

static void
o_free(void *door)
{
    skiff_oai_req_free(door);
}

static const struct skiff_engine_ops oai_ops = {
    .on_head = o_head,
    .on_event = o_event,
    .on_body = o_body,
    .on_end = o_end,
    .on_error = o_error,
    .on_free = o_free,
};

void
skiff_oai_submit(struct skiff_oai_req *st)
{
    struct skiff_request *req = st->req;
    req->data = NULL;
    req->on_abort = NULL;
    enum skiff_method m = st->route == SKIFF_OAI_EMBEDDINGS
                              ? (st->emb.batch ? SKIFF_M_BATCH_EMBED : SKIFF_M_EMBED)
                          : st->stream ? SKIFF_M_STREAM
                                       : SKIFF_M_GENERATE;
    if (m == SKIFF_M_STREAM) {
        struct skiff_oai_answer_opts o;
        skiff_oai_answer_opts(st, &o);
        if (st->route == SKIFF_OAI_RESPONSES)
            st->rs = skiff_oai_rstream_new(&o);
        else
            st->cs = skiff_oai_stream_new(&o, st->chat.include_usage);
        if (!st->rs && !st->cs)
            goto out_nomem;
    }
    struct skiff_engine_plan plan = {
        .model = st->target,
        .model_len = strlen(st->target),
        .body = st->gbody,
        .body_len = st->gbody_len,
        .ops = &oai_ops,
        .door = st,
    };
    skiff_engine_route(&plan.route, m);
    plan.query.alt = m == SKIFF_M_STREAM ? SKIFF_ALT_SSE : SKIFF_ALT_NONE;
    /* From a return of 0 the engine owns req and st (on_free frees st): st is not touched
     * after it, even on this line's return. */
    if (skiff_engine_start(st->env.engine, req, &plan) == 0)
        return;
out_nomem:
    skiff_engine_decorate(req, st->target, strlen(st->target));
    skiff_oai_respond_status(req, 500, NULL, NULL, "out of memory starting the call");
    skiff_oai_req_free(st);
}

static int
oai_match(const struct skiff_request *req)
{
    /* dispatch.h's rule: /openai/v1/... always, and /v1/... without a Gemini or Anthropic
     * credential (a Gemini model call, /v1/models/{m}:{method}, is never OpenAI's). */
    return skiff_dispatch_style(req) == SKIFF_STYLE_OPENAI;
}

const struct skiff_door skiff_openai_door = {
    .name = "openai",
    .match = oai_match,
    .on_head = skiff_oai_head,
    .handle = skiff_oai_handle,
    .error = skiff_oai_error,
};
