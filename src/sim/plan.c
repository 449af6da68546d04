#include "sim/plan.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/err.h"
#include "gemini/error.h"
#include "gemini/pacific.h"
#include "server/http.h"
#include "sim/render.h"
#include "sim/simconf.h"

/* ---- request state ---- */

static void
free_plan(struct sim_req *sr)
{
    free(sr->body);
    for (size_t i = 0; i < sr->nevents; i++)
        free(sr->events[i]);
    free(sr->events);
    free(sr->tail);
    json_decref(sr->headers);
}

static void
on_timer_closed(uv_handle_t *h)
{
    struct sim_req *sr = h->data;
    free_plan(sr);
    free(sr);
}

/* Frees sr; its timer (if it was ever started) is closed first, so nothing fires later. */
static void
release(struct sim_req *sr)
{
    if (sr->req) {
        sr->req->data = NULL;
        sr->req->on_abort = NULL;
    }
    if (sr->timer_used) {
        uv_timer_stop(&sr->timer);
        uv_close((uv_handle_t *)&sr->timer, on_timer_closed);
        return;
    }
    free_plan(sr);
    free(sr);
}

static struct skiff_sim_log_entry *
log_entry(struct sim_req *sr)
{
    return skiff_sim_log_get(&sr->sim->log, sr->seq);
}

/* Notes the end of the response in the log; status is what was sent (0: nothing). */
static void
log_finish(struct sim_req *sr, int status, int ended)
{
    struct skiff_sim_log_entry *e = log_entry(sr);
    if (!e)
        return;
    e->ended = ended;
    e->duration_ms = skiff_now_ms() - e->ts_ms;
    if (status)
        e->status = status;
}

/* The client went away before the response ended: the request must let go of req now. */
void
on_abort(struct skiff_request *req)
{
    struct sim_req *sr = req->data;
    if (!sr)
        return;
    struct skiff_sim_log_entry *e = log_entry(sr);
    if (e) {
        e->aborted = 1;
        e->duration_ms = skiff_now_ms() - e->ts_ms;
    }
    sr->req = NULL;
    if (sr->busy)
        sr->gone = 1;
    else
        release(sr);
}

static void
add_headers(struct sim_req *sr)
{
    /* Live responses carry the service tier; they never carry Retry-After. */
    skiff_http_add_header(sr->req, "X-Gemini-Service-Tier", "standard");
    const char *name;
    json_t *v;
    json_object_foreach(sr->headers, name, v)
        skiff_http_add_header(sr->req, name, json_string_value(v));
}

static void on_timer(uv_timer_t *t);

static void
arm(struct sim_req *sr, uint64_t ms)
{
    if (!sr->timer_used) {
        uv_timer_init(skiff_http_loop(sr->req), &sr->timer);
        sr->timer.data = sr;
        sr->timer_used = 1;
    }
    uv_timer_start(&sr->timer, on_timer, ms, 0);
}

/*
 * Sends the next step of the plan. Called at once when there is no latency, else from the
 * timer. Calls that may end the request are bracketed by busy, so an abort inside one only
 * marks the request (gone) and the release happens here on the way out. Once a call has
 * ended the response, req belongs to the HTTP layer again (it may already hold the next
 * request of the connection), so sr lets go of it before anything else.
 */
static void
step(struct sim_req *sr)
{
    struct skiff_request *req = sr->req;
    struct skiff_sim_log_entry *e = log_entry(sr);
    sr->busy = 1;
    switch (sr->plan) {
    case PLAN_HANG:
        /* Nothing is sent; only the client closing (on_abort) ends this request. */
        sr->busy = 0;
        return;
    case PLAN_RESET:
        if (e)
            e->reset = 1;
        skiff_http_reset(req);
        sr->req = NULL;
        log_finish(sr, 0, 0);
        break;
    case PLAN_WHOLE:
        add_headers(sr);
        skiff_http_respond(req, sr->status, sr->content_type, sr->body, sr->body_len);
        sr->req = NULL;
        if (!sr->gone)
            log_finish(sr, sr->status, 1);
        break;
    case PLAN_STREAM:
        if (!sr->started) {
            add_headers(sr);
            skiff_http_start(req, 200, sr->content_type);
            sr->started = 1;
            if (e)
                e->status = 200;
        }
        if (sr->reset_after >= 0 && (long)sr->next >= sr->reset_after) {
            if (e)
                e->reset = 1;
            skiff_http_reset(req);
            sr->req = NULL;
            log_finish(sr, 0, 0);
            break;
        }
        if (sr->next < sr->nevents) {
            skiff_http_write(req, sr->events[sr->next], strlen(sr->events[sr->next]));
            sr->next++;
            if (e)
                e->events = (long)sr->next;
            if (sr->gone)
                break;
            if (sr->next < sr->nevents || sr->reset_after >= 0 || sr->tail) {
                /* More to come: wait the chunk delay (0 still yields to the loop). A raw
                 * error after the events waits too, so it reaches the client in a read of
                 * its own, as the API's does (the JS SDK parses each read). */
                sr->busy = 0;
                if (sr->next == 1 && sr->think_gap > 0)
                    arm(sr, (uint64_t)sr->think_gap);
                else
                    arm(sr, skiff_sim_rng_range(&sr->rng, (uint64_t)sr->chunk_min,
                                                (uint64_t)sr->chunk_max));
                return;
            }
        }
        if (sr->tail)
            skiff_http_write(req, sr->tail, strlen(sr->tail));
        if (sr->gone)
            break;
        skiff_http_end(req);
        sr->req = NULL;
        if (!sr->gone)
            log_finish(sr, 0, 1);
        break;
    }
    sr->busy = 0;
    if (sr->gone)
        sr->req = NULL;
    release(sr);
}

static void
on_timer(uv_timer_t *t)
{
    step(t->data);
}

/* Starts the plan after the time-to-first-byte latency. */
void
go(struct sim_req *sr, long latency_ms)
{
    /* Resetting after more events than there are means resetting instead of the clean end. */
    if (sr->plan == PLAN_STREAM && sr->reset_after > (long)sr->nevents)
        sr->reset_after = (long)sr->nevents;
    if (latency_ms > 0)
        arm(sr, (uint64_t)latency_ms);
    else
        step(sr);
}

/* ---- building replies ---- */

void
plan_body(struct sim_req *sr, int status, const char *type, char *body, size_t len)
{
    sr->plan = PLAN_WHOLE;
    sr->status = status;
    sr->content_type = type;
    sr->body = body;
    sr->body_len = body ? len : 0;
    if (!body) {
        sr->status = 500;
        sr->body = strdup("");
    }
}

void
plan_json(struct sim_req *sr, int status, const json_t *j)
{
    size_t len = 0;
    char *s = skiff_sim_render_pretty(j, &len);
    plan_body(sr, status, JSON_TYPE, s, len);
}

/* A Google error body; array: the JSON-array stream form wraps it. details is stolen. */
void
plan_error(struct sim_req *sr, int status, const char *gstatus, const char *message,
           json_t *details, int array)
{
    char *s = skiff_gerr_body(status, gstatus, message, details, array);
    plan_body(sr, status, JSON_TYPE, s, s ? strlen(s) : 0);
}

const char *
default_message(int status)
{
    switch (status) {
    case 400:
        return "Request contains an invalid argument.";
    case 401:
        return "Request had invalid authentication credentials. Expected OAuth 2 access token, "
               "login cookie or other valid authentication credential. See "
               "https://developers.google.com/identity/sign-in/web/devconsole-project.";
    case 403:
        return "The caller does not have permission";
    case 404:
        return "Requested entity was not found.";
    case 429:
        return "Resource has been exhausted (e.g. check quota).";
    case 500:
        return "An internal error has occurred. Please retry or report in "
               "https://developers.generativeai.google/guide/troubleshooting";
    case 503:
        return "The model is overloaded. Please try again later.";
    case 504:
        return "Deadline expired before operation could complete.";
    default:
        return "Unknown error.";
    }
}

int
is_stream_array(const struct call *c)
{
    return c->stream && !c->sse;
}

void
plan_quota(struct sim_req *sr, const struct call *c, const struct skiff_sim_verdict *v)
{
    const char *model = c->model ? c->model->target : c->model_id;
    char *s = skiff_sim_quota_body(v, model, is_stream_array(c));
    plan_body(sr, 429, JSON_TYPE, s, s ? strlen(s) : 0);
}

/* Frames pre-built events for the request's stream form. events: array of objects. */
int
plan_events(struct sim_req *sr, const struct call *c, const json_t *events)
{
    size_t n = json_array_size(events);
    sr->plan = PLAN_STREAM;
    sr->content_type = c->sse ? SSE_TYPE : JSON_TYPE;
    sr->events = calloc(n ? n : 1, sizeof *sr->events);
    if (!sr->events)
        return SKIFF_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        const json_t *ev = json_array_get(events, i);
        sr->events[i] =
            c->sse ? skiff_sim_render_sse(ev, NULL) : skiff_sim_render_array_elem(ev, i == 0, NULL);
        if (!sr->events[i])
            return SKIFF_ENOMEM;
        sr->nevents++;
    }
    /* The array form closes with "\n]"; an empty array is "[]". */
    if (!c->sse)
        sr->tail = strdup(n ? SKIFF_SIM_ARRAY_END : "[]");
    return 0;
}

/*
 * A raw mid-stream error after the events: on SSE the bare {"error":...} object the SDKs
 * parse from a non-data line; on the array form one more element before "\n]".
 */
static int
plan_tail_error(struct sim_req *sr, const struct call *c, const json_t *err)
{
    int code = (int)json_integer_value(json_object_get(err, "code"));
    const char *msg = json_string_value(json_object_get(err, "message"));
    const char *st = json_string_value(json_object_get(err, "status"));
    char *body = skiff_gerr_body(code, st, msg ? msg : default_message(code), NULL, 0);
    if (!body)
        return SKIFF_ENOMEM;
    free(sr->tail);
    size_t n = strlen(body) + 16;
    sr->tail = malloc(n);
    if (!sr->tail) {
        free(body);
        return SKIFF_ENOMEM;
    }
    if (c->sse)
        snprintf(sr->tail, n, "%s", body);
    else if (sr->nevents)
        /* Drop the body's final newline: array elements end with "}" before the separator. */
        snprintf(sr->tail, n, "\n,\r\n%.*s\n]", (int)(strlen(body) - 1), body);
    else
        snprintf(sr->tail, n, "[%.*s\n]", (int)(strlen(body) - 1), body);
    free(body);
    return 0;
}

long
pick(struct sim_req *sr, long lo, long hi)
{
    return (long)skiff_sim_rng_range(&sr->rng, (uint64_t)lo, (uint64_t)hi);
}

void
plan_invalid(struct sim_req *sr, const struct call *c, struct skiff_sim_invalid *inv)
{
    plan_error(sr, inv->status, inv->gstatus, inv->message, inv->details, is_stream_array(c));
    inv->details = NULL;
}

/* Runs a scripted reply that replaces the simulator's own (every kind but ANSWER). */
void
plan_scripted(struct sim_req *sr, const struct call *c, const struct skiff_sim_reply *r)
{
    int arr = is_stream_array(c);
    switch (r->kind) {
    case SKIFF_SIM_REPLY_HANG:
        sr->plan = PLAN_HANG;
        return;
    case SKIFF_SIM_REPLY_RESET:
        sr->plan = PLAN_RESET;
        return;
    case SKIFF_SIM_REPLY_ERROR:
        plan_error(sr, r->status, r->error_status,
                   r->message ? r->message : default_message(r->status),
                   r->details ? json_incref(r->details) : NULL, arr);
        return;
    case SKIFF_SIM_REPLY_BODY:
        plan_body(sr, r->status, r->content_type ? r->content_type : JSON_TYPE,
                  malloc(r->body_len + 1), r->body_len);
        if (sr->body && r->body_len)
            memcpy(sr->body, r->body, r->body_len);
        return;
    case SKIFF_SIM_REPLY_QUOTA: {
        struct skiff_sim_limits lim;
        const char *model = c->model ? c->model->target : c->model_id;
        skiff_sim_conf_limits(&sr->sim->conf, model, &lim);
        int64_t now = skiff_now_ms();
        struct skiff_sim_verdict v = {0};
        long minute = r->retry_ms >= 0 ? r->retry_ms : 60000 - now % 60000;
        long day = r->retry_ms >= 0 ? r->retry_ms : skiff_pacific_next_midnight_ms(now) - now;
        switch (r->quota) {
        case SKIFF_SIM_QR_MINUTE:
            v.v[v.n++] = (struct skiff_sim_violation){
                SKIFF_SIM_QUOTA_RPM, r->quota_limit >= 0 ? r->quota_limit : lim.rpm, minute};
            break;
        case SKIFF_SIM_QR_TOKENS:
            v.v[v.n++] = (struct skiff_sim_violation){
                SKIFF_SIM_QUOTA_TPM, r->quota_limit >= 0 ? r->quota_limit : lim.tpm, minute};
            break;
        case SKIFF_SIM_QR_DAY:
            v.v[v.n++] = (struct skiff_sim_violation){
                SKIFF_SIM_QUOTA_RPD, r->quota_limit >= 0 ? r->quota_limit : lim.rpd, day};
            break;
        case SKIFF_SIM_QR_ZERO:
            v.v[v.n++] = (struct skiff_sim_violation){SKIFF_SIM_QUOTA_RPM, 0, minute};
            v.v[v.n++] = (struct skiff_sim_violation){SKIFF_SIM_QUOTA_TPM, 0, minute};
            v.v[v.n++] = (struct skiff_sim_violation){SKIFF_SIM_QUOTA_RPD, 0, day};
            break;
        }
        /* A scripted minute/day 429 on a model configured "unlimited" (or 0) shows the
         * model's free-tier figure: a quotaValue of "0" would say "no quota at all", which
         * is the "zero" kind's meaning, not this one's. */
        const struct skiff_sim_model *m = c->model;
        for (int i = 0; r->quota != SKIFF_SIM_QR_ZERO && i < v.n; i++) {
            if (v.v[i].limit > 0)
                continue;
            long dflt = !m                                   ? 10
                        : v.v[i].kind == SKIFF_SIM_QUOTA_RPM ? m->free_rpm
                        : v.v[i].kind == SKIFF_SIM_QUOTA_TPM ? m->free_tpm
                                                             : m->free_rpd;
            v.v[i].limit = dflt > 0 ? dflt : 10;
        }
        plan_quota(sr, c, &v);
        return;
    }
    case SKIFF_SIM_REPLY_STREAM:
        if (!c->stream) {
            /* A non-streaming call gets the last event as its whole body. */
            size_t n = json_array_size(r->events);
            if (n)
                plan_json(sr, 200, json_array_get(r->events, n - 1));
            else
                plan_body(sr, 200, JSON_TYPE, strdup("{}\n"), 3);
            return;
        }
        if (plan_events(sr, c, r->events) != 0)
            plan_body(sr, 500, JSON_TYPE, NULL, 0);
        return;
    case SKIFF_SIM_REPLY_ANSWER:
        return;
    }
}

/* Applies the stream overrides of a scripted reply (ANSWER or STREAM) to the plan. */
void
apply_stream_overrides(struct sim_req *sr, const struct call *c, const struct skiff_sim_reply *r)
{
    if (sr->plan != PLAN_STREAM)
        return;
    if (r->chunk_ms >= 0)
        sr->chunk_min = sr->chunk_max = r->chunk_ms;
    if (r->reset_after >= 0)
        sr->reset_after = r->reset_after;
    if (r->error_after)
        plan_tail_error(sr, c, r->error_after);
}
