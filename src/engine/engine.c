/*
 * One call through the engine (engine.h has the contract with the doors):
 *
 *   start: plan (model chain, share, deadline), filters, budget deposit
 *   next_attempt: key = keypool_acquire(model)   (none: wait for one, fall back, or 429)
 *   launch: upstream call with that key, the request built by uprequest.c from allowlists
 *     hold.c on_status / on_body: a stream is held until its first event with content, then
 *                          committed and delivered as it comes; so is a success larger than
 *                          MAX_HOLD (with backpressure); anything else is buffered
 *     on_done: classify -> release the key with the verdict -> answer, or retry after a
 *              backoff (another key at once when the fault was the key's), or fall back
 *              to the next model, or give up with the upstream's own error
 *
 * Invariants: a key acquired is released exactly once (call_release_key); bytes sent to the
 * client are never followed by a retry (two generations are never spliced); every answer
 * carries x-skiff-attempts, x-skiff-model and x-skiff-key (a label, never the key); the
 * client's credential never goes upstream, the pool key travels only in x-goog-api-key.
 */
#include "engine/call.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#include "base/clock.h"
#include "base/err.h"
#include "base/log.h"
#include "base/num.h"
#include "relay/budget.h"
#include "relay/keypool.h"

/* ---- small things --------------------------------------------------------------------- */

static uint64_t
next_random(struct skiff_engine *w)
{
    /* xorshift64*: enough for jitter. */
    w->rng ^= w->rng >> 12;
    w->rng ^= w->rng << 25;
    w->rng ^= w->rng >> 27;
    return w->rng * 2685821657736338717ULL;
}

const char *
call_label(const struct call *c, int key)
{
    return skiff_keypool_label(c->w->sh->pool, key);
}

/* The first-byte timeout that applies to the call's attempts. */
int
call_first_byte_timeout(const struct call *c)
{
    const struct skiff_config *cfg = c->w->cfg;
    return call_is_stream(c) ? cfg->retry.stream_first_byte_timeout_ms
                             : cfg->retry.first_byte_timeout_ms;
}

void
skiff_engine_decorate(struct skiff_request *req, const char *model, size_t model_len)
{
    char m[MAX_ASKED_MODEL + 1] = "";
    if (model)
        snprintf(m, sizeof m, "%.*s",
                 (int)(model_len < MAX_ASKED_MODEL ? model_len : MAX_ASKED_MODEL), model);
    skiff_http_add_headern(req, "x-skiff-attempts", 16, "0", 1);
    skiff_http_add_header(req, "x-skiff-model", *m ? m : "none");
    skiff_http_add_header(req, "x-skiff-key", "none");
}

void
skiff_engine_route(struct skiff_route *rt, enum skiff_method method)
{
    memset(rt, 0, sizeof *rt);
    rt->kind = SKIFF_ROUTE_GENERATE;
    rt->version = "v1beta";
    rt->method = method;
    rt->method_name = skiff_method_name(method);
    rt->http_method_ok = 1;
}

/* ---- lifetime ------------------------------------------------------------------------- */

static void
free_call(uv_handle_t *h)
{
    struct call *c = h->data;
    if (--c->handles_open > 0)
        return;
    for (int i = 0; i < c->nfilters; i++)
        if (c->filters[i].f->free)
            c->filters[i].f->free(c->filters[i].st);
    if (c->ops->on_free)
        c->ops->on_free(c->door);
    skiff_buf_release(&c->up_headers);
    skiff_buf_release(&c->body);
    skiff_buf_release(&c->carry);
    free(c->last_error);
    free(c->owned);
    free(c);
}

void
call_release_key(struct call *c, enum skiff_fault fault, double delay_s, const char *reason)
{
    if (c->key < 0)
        return;
    skiff_keypool_release(c->w->sh->pool, c->key, call_model(c), fault, delay_s, reason,
                          c->tokens > 0 ? c->tokens : 0, skiff_now_ms());
    c->keys_used |= c->key < 64 ? 1ULL << c->key : 0;
    c->key = -1;
}

/* Ends the engine's part: the request is answered or the client is gone. */
void
call_done(struct call *c)
{
    if (c->over)
        return;
    c->over = 1;
    if (c->call) {
        skiff_upcall_cancel(c->call);
        c->call = NULL;
        call_release_key(c, SKIFF_FAULT_TRANSIENT, -1, "cancelled");
    }
    if (c->probe) {
        /* The waiters on this probe learn that it told nothing. */
        skiff_probe_cancel(c->probe);
        c->probe = NULL;
        skiff_keypool_probe_end(c->w->sh->pool, c->key, SKIFF_PROBE_UNKNOWN);
    }
    c->probe_waiting = 0;
    call_release_key(c, SKIFF_FAULT_TRANSIENT, -1, "cancelled"); /* a key held while probing */
    if (c->req) {
        if (c->req->data == c) { /* not when a next call took it (skiff_engine_again) */
            c->req->data = NULL;
            c->req->on_abort = NULL;
            c->req->on_drain = NULL;
            c->req->on_body = NULL;
            c->req->on_body_end = NULL;
        }
        c->req = NULL;
    }
    uv_timer_stop(&c->deadline_timer);
    uv_timer_stop(&c->wait_timer);
    uv_close((uv_handle_t *)&c->deadline_timer, free_call);
    uv_close((uv_handle_t *)&c->wait_timer, free_call);
}

void
call_log_attempt(const struct call *c, int status, const struct skiff_verdict *v, const char *next,
                 int64_t delay_ms)
{
    struct skiff_log l;
    skiff_log_begin(&l, status == 200 ? SKIFF_LOG_DEBUG : SKIFF_LOG_INFO, "attempt");
    skiff_log_str(&l, "id", c->req ? c->req->id : "");
    skiff_log_int(&l, "n", c->attempts);
    skiff_log_str(&l, "model", call_model(c));
    skiff_log_str(&l, "key", call_label(c, c->last_key));
    skiff_log_int(&l, "status", status);
    skiff_log_str(&l, "fault", skiff_fault_name(v->fault));
    if (v->reason[0])
        skiff_log_str(&l, "reason", v->reason);
    skiff_log_str(&l, "next", next);
    if (delay_ms >= 0)
        skiff_log_int(&l, "delay_ms", delay_ms);
    skiff_log_end(&l);
}

/* ---- the attempt loop ----------------------------------------------------------------- */

static void launch(struct call *c, int key);

static void
on_wait(uv_timer_t *t)
{
    call_next_attempt(t->data);
}

static void
wait_then_retry(struct call *c, int64_t delay_ms)
{
    uv_timer_start(&c->wait_timer, on_wait, (uint64_t)(delay_ms > 0 ? delay_ms : 0), 0);
}

/* Picks a key for the current model, waits for one, falls back, or answers 429. */
void
call_next_attempt(struct call *c)
{
    if (c->deadline_passed) {
        call_give_up(c); /* the deadline passed during the last attempt: nothing follows it */
        return;
    }
    for (;;) {
        int64_t now = skiff_now_ms(), back_at;
        int key = c->pin_key ? skiff_keypool_acquire_only(c->w->sh->pool, c->pin_key - 1,
                                                          call_model(c), now, &back_at)
                             : skiff_keypool_acquire(c->w->sh->pool, call_model(c), now, &back_at);
        if (key >= 0) {
            launch(c, key);
            return;
        }
        int64_t left = c->deadline_ms - now;
        int64_t max_wait =
            c->w->cfg->retry.max_wait_ms < left ? c->w->cfg->retry.max_wait_ms : left;
        if (back_at != INT64_MAX && back_at - now <= max_wait) {
            wait_then_retry(c, back_at - now);
            return;
        }
        if (c->model_i + 1 < c->nchain) {
            c->model_i++;
            c->model_attempts = 0;
            continue;
        }
        call_exhausted(c, back_at);
        return;
    }
}

/*
 * The deadline timer. retry.deadline_ms bounds waiting for a key, retries and fallbacks:
 * when it passes while an attempt is in flight, that attempt goes on (its own first-byte,
 * idle and max_stream_ms timeouts bound it) and nothing follows it. The client's
 * x-skiff-deadline-ms is a hard limit on the whole answer: when it passes, everything ends.
 */
static void
on_deadline(uv_timer_t *t)
{
    struct call *c = t->data;
    if (!c->hard_armed && c->call) {
        c->deadline_passed = 1;
        struct skiff_log l;
        skiff_log_begin(&l, SKIFF_LOG_INFO, "deadline_passed");
        skiff_log_str(&l, "id", c->req->id);
        skiff_log_int(&l, "ms", c->deadline_total_ms);
        skiff_log_str(&l, "next", "the attempt in flight goes on; no further attempt");
        skiff_log_end(&l);
        if (c->hard_total_ms > c->deadline_total_ms) {
            c->hard_armed = 1;
            uv_timer_start(&c->deadline_timer, on_deadline,
                           (uint64_t)(c->hard_total_ms - c->deadline_total_ms), 0);
        }
        return;
    }
    char msg[256];
    if (c->hard_armed)
        snprintf(msg, sizeof msg,
                 "the client's deadline of %d ms (x-skiff-deadline-ms) passed "
                 "after %d attempt%s; raise it, or shorten the prompt",
                 c->hard_total_ms, c->attempts, c->attempts == 1 ? "" : "s");
    else
        snprintf(msg, sizeof msg,
                 "skiff's deadline of %d ms passed after %d attempt%s; raise "
                 "retry.deadline_ms or x-skiff-deadline-ms, or shorten the "
                 "prompt",
                 c->deadline_total_ms, c->attempts, c->attempts == 1 ? "" : "s");
    struct skiff_log l;
    skiff_log_begin(&l, SKIFF_LOG_WARN, "deadline");
    skiff_log_str(&l, "id", c->req->id);
    skiff_log_int(&l, "ms", c->hard_armed ? c->hard_total_ms : c->deadline_total_ms);
    skiff_log_str(&l, "by", c->hard_armed ? "x-skiff-deadline-ms" : "retry.deadline_ms");
    skiff_log_end(&l);
    call_fail(c, 504, NULL, msg, "deadline passed mid-stream");
}

void
skiff_engine_cut(struct skiff_request *req)
{
    struct call *c = req->data;
    if (!c) {
        skiff_http_abort(req, "shutdown.drain_timeout_ms passed");
        return;
    }
    char msg[256];
    snprintf(msg, sizeof msg,
             "skiff is shutting down and this request did not finish within "
             "shutdown.drain_timeout_ms (%d ms); please retry it",
             c->w->cfg->shutdown.drain_timeout_ms);
    call_fail(c, 503, "UNAVAILABLE", msg, "shutdown.drain_timeout_ms passed");
}

/* Decides what follows a failed call: retry (when, with what), fall back, or give up. */
void
call_after_failure(struct call *c, const struct skiff_verdict *v)
{
    const struct skiff_config *cfg = c->w->cfg;
    int64_t now = skiff_now_ms();
    if (call_upload_spent(c)) {
        call_log_attempt(c, c->up_status, v, "give-up: the upload's bytes have gone", -1);
        call_give_up(c);
        return;
    }
    if (!skiff_fault_retryable(v->fault)) {
        call_log_attempt(c, c->up_status, v, "answer", -1);
        call_give_up(c);
        return;
    }
    if (c->attempts >= cfg->retry.max_attempts) {
        call_log_attempt(c, c->up_status, v, "give-up: retry.max_attempts", -1);
        call_give_up(c);
        return;
    }
    if (c->deadline_passed || now >= c->deadline_ms) {
        call_log_attempt(c, c->up_status, v, "give-up: retry.deadline_ms passed", -1);
        call_give_up(c);
        return;
    }
    if (!skiff_budget_withdraw(c->w->sh->budget, now)) {
        call_log_attempt(c, c->up_status, v, "give-up: retry budget spent", -1);
        call_give_up(c);
        return;
    }
    if (c->model_attempts >= c->share && c->model_i + 1 < c->nchain) {
        c->model_i++;
        c->model_attempts = 0;
        call_log_attempt(c, c->up_status, v, "fallback", 0);
        call_next_attempt(c);
        return;
    }
    int64_t delay = 0;
    if (!skiff_fault_blames_key(v->fault)) {
        /* Full jitter: random(0, min(max_delay, base * 2^n)). */
        int n = c->model_attempts - 1 < 30 ? c->model_attempts - 1 : 30;
        double cap = (double)cfg->retry.base_delay_ms * (double)(1ULL << (n > 0 ? n : 0));
        if (cap > cfg->retry.max_delay_ms)
            cap = cfg->retry.max_delay_ms;
        delay = (int64_t)((double)(next_random(c->w) % 1000001) / 1e6 * cap);
        if (v->retry_delay_s > 0 && (int64_t)(v->retry_delay_s * 1000) > delay)
            delay = (int64_t)(v->retry_delay_s * 1000);
    }
    if (now + delay >= c->deadline_ms) {
        call_log_attempt(c, c->up_status, v, "give-up: the deadline would pass", delay);
        call_give_up(c);
        return;
    }
    call_log_attempt(c, c->up_status, v, "retry", delay);
    if (delay == 0)
        call_next_attempt(c);
    else
        wait_then_retry(c, delay);
}

/* Whether a transport error is a first-byte timeout: the request was sent and the upstream
 * said nothing, so it may be generating (and billing) the answer still. */
static int
is_first_byte_timeout(const char *error)
{
    return error && strstr(error, "waiting for the first byte") != NULL;
}

/*
 * The filters' say on a whole success (the RECITATION re-ask): returns 1 when one asked for
 * another attempt and it went out (non-stream answers only: a stream has started by the time
 * it says so).
 */
static int
reask(struct call *c)
{
    if (call_is_stream(c) || c->up_status != 200 || c->attempts >= c->w->cfg->retry.max_attempts)
        return 0;
    struct skiff_filter_ctx fc = {c->req->id, call_model(c), c->w->cfg};
    for (int i = 0; i < c->nfilters; i++) {
        const struct skiff_engine_filter *f = c->filters[i].f;
        char *body = NULL;
        size_t len = 0;
        if (!f->on_answer ||
            f->on_answer(c->filters[i].st, &fc, c->body.data ? c->body.data : "", c->body.len,
                         c->reqbody, c->reqbody_len, &body, &len) != SKIFF_FILTER_REASK ||
            !body)
            continue;
        free(c->owned);
        c->owned = body;
        c->reqbody = body;
        c->reqbody_len = len;
        struct skiff_verdict v = {.fault = SKIFF_FAULT_NONE, .retry_delay_s = -1};
        snprintf(v.reason, sizeof v.reason, "%s", f->reask_reason ? f->reask_reason : f->name);
        call_log_attempt(c, c->up_status, &v, "retry", 0);
        call_next_attempt(c);
        return 1;
    }
    return 0;
}

/* The upstream call ended (hold.c's on_done hook): classify, release, decide. */
void
call_on_done(struct skiff_upcall *up, const char *error)
{
    struct call *c = skiff_upcall_data(up);
    c->call = NULL;

    if (c->started) {
        /* Bytes went out: a failure now reaches the client as a failure, never as a
         * clean end, and is never retried. */
        call_release_key(c, error ? SKIFF_FAULT_TRANSIENT : SKIFF_FAULT_NONE, -1, error);
        if (error) {
            char msg[400];
            snprintf(msg, sizeof msg, "the upstream stream broke after it had started: %s", error);
            call_fail(c, 502, "UNAVAILABLE", msg, error);
        } else {
            call_finish_stream(c);
        }
        return;
    }

    struct skiff_verdict v;
    if (c->stream_failed) {
        v = c->stream_verdict;
    } else if (error) {
        free(c->last_error);
        c->last_error = strndup(error, 255);
        memset(&v, 0, sizeof v);
        v.fault = SKIFF_FAULT_TRANSIENT;
        v.retry_delay_s = -1;
        snprintf(v.reason, sizeof v.reason, "%s", error);
        c->up_status = 0;
    } else {
        char ra[32];
        skiff_classify(c->up_status, c->body.data, c->body.len,
                       call_upstream_header(c, "retry-after", ra, sizeof ra), &v);
        if (v.fault == SKIFF_FAULT_NONE && c->up_status == 200 && !call_is_stream(c)) {
            int64_t t = call_scan_tokens(c->body.data ? c->body.data : "", c->body.len);
            if (t >= 0)
                c->tokens = t;
        }
    }
    c->up_retry_s = v.retry_delay_s;
    if (skiff_fault_needs_probe(v.fault)) {
        call_confirm_key(c, &v); /* releases the key and goes on once the probe tells */
        return;
    }
    call_release_key(c, v.fault, v.retry_delay_s, v.reason);

    c->timed_out_sent = is_first_byte_timeout(error);
    if (c->timed_out_sent && !c->retry_timeouts) {
        /* The upstream may be generating the answer still: another attempt could pay for
         * it twice. Only the client can say that is fine (x-skiff-retry-timeouts: on). */
        call_log_attempt(c, 0, &v, "answer: the upstream may still be generating", -1);
        call_give_up(c);
        return;
    }
    if (v.fault == SKIFF_FAULT_NONE && reask(c))
        return;
    if (v.fault == SKIFF_FAULT_NONE) {
        if (call_is_stream(c) && c->up_status == 200) {
            /* The stream ended while still held (no content unit): pass it on as it is. */
            call_commit(c);
            if (!c->over)
                call_finish_stream(c);
            return;
        }
        call_forward_answer(c);
        return;
    }
    call_after_failure(c, &v);
}

/* ---- the upstream request ------------------------------------------------------------- */

static void
launch(struct call *c, int key)
{
    struct skiff_request *req = c->req;
    const struct skiff_config *cfg = c->w->cfg;
    c->key = key;
    c->last_key = key;
    c->attempts++;
    c->model_attempts++;
    c->up_status = 0;
    c->stream_failed = 0;
    c->tokens = 0;
    free(c->last_error);
    c->last_error = NULL;
    skiff_buf_reset(&c->up_headers);
    skiff_buf_release(&c->body);

    /* What goes upstream is built in one place (uprequest.c), from allowlists. */
    struct skiff_uprequest u;
    int built = skiff_uprequest_build(&u, cfg, req, &c->route, &c->query, call_model(c),
                                      skiff_keypool_secret(c->w->sh->pool, key));
    if (built) {
        call_release_key(c, SKIFF_FAULT_TRANSIENT, -1, "could not build the request");
        call_fail(c, 500, NULL,
                  built == SKIFF_EINVAL
                      ? "skiff could not build the upstream request: the model name is "
                        "not one (check the fallbacks in the configuration)"
                      : "skiff could not build the upstream request (out of memory)",
                  "could not build the request");
        return;
    }

    int64_t left = c->deadline_ms - skiff_now_ms();
    int fbt = call_first_byte_timeout(c);
    struct skiff_upcall_opts o = {
        .method = c->route.kind == SKIFF_ROUTE_RESOURCE || c->route.kind == SKIFF_ROUTE_COMPAT
                      ? c->route.http_verb
                  : c->route.kind == SKIFF_ROUTE_GENERATE ? "POST"
                                                          : "GET",
        .url = u.url,
        .headers = u.headers,
        .body = c->reqbody,
        .body_len = c->reqbody_len,
        .proxy = cfg->proxy,
        .ca_file = cfg->ca_file,
        .connect_timeout_ms = cfg->retry.connect_timeout_ms < left ? cfg->retry.connect_timeout_ms
                                                                   : (long)(left > 1 ? left : 1),
        .first_byte_timeout_ms = fbt,
        /* No deadline cuts a call in flight: a non-stream body that stalls after its first
         * byte is bounded by the first-byte timeout between pieces. */
        .idle_timeout_ms = call_is_stream(c) ? cfg->retry.stream_idle_timeout_ms : fbt,
        .ops = &skiff_engine_upcall_ops,
        .data = c,
    };
    call_upload_opts(c, &o);
    c->call = skiff_upcall_start(c->w->up, &o);
    /* The client copies the url and headers in skiff_upcall_start: the key's bytes are
     * wiped, and the buffer goes (the next attempt builds it anew; a stream holds none). */
    skiff_uprequest_wipe(&u);
    if (!c->call) {
        call_release_key(c, SKIFF_FAULT_TRANSIENT, -1, "could not start a call");
        call_fail(c, 500, NULL, "skiff could not start an upstream call", "could not start a call");
        return;
    }
    call_upload_attach(c);
}

/* ---- client side ---------------------------------------------------------------------- */

static void
on_abort(struct skiff_request *req)
{
    struct call *c = req->data;
    if (!c)
        return;
    c->req = NULL;
    call_done(c); /* cancels the upstream call: no orphan keeps burning quota */
}

static void
on_drain(struct skiff_request *req)
{
    struct call *c = req->data;
    if (c && c->call)
        skiff_upcall_resume(c->call);
}

/* The models to try: the asked one, then its configured fallbacks (unless turned off). */
static void
plan_chain(struct call *c)
{
    const struct skiff_config *cfg = c->w->cfg;
    c->nchain = 1;
    size_t fl;
    const char *off = skiff_http_header(c->req, "x-skiff-fallback", &fl);
    int allowed = !(off && fl == 3 && strncasecmp(off, "off", 3) == 0) &&
                  (c->route.method == SKIFF_M_GENERATE || c->route.method == SKIFF_M_STREAM) &&
                  c->route.kind != SKIFF_ROUTE_COMPAT; /* no Gemini fallbacks for it */
    for (size_t i = 0; allowed && i < cfg->nfallbacks; i++) {
        if (strcmp(cfg->fallbacks[i].model, c->chain[0]) != 0)
            continue;
        /* Borrowed: config names are at most 128 characters (check_model), and the config
         * outlives every call. */
        for (size_t j = 0; j < cfg->fallbacks[i].nchain && c->nchain < MAX_CHAIN; j++)
            c->chain[c->nchain++] = cfg->fallbacks[i].chain[j];
    }
    /* Each model gets its share of the attempts; the last one gets what is left. */
    c->share = cfg->retry.max_attempts / c->nchain;
    if (c->share < 1)
        c->share = 1;
}

/* The client's deadline is a hard limit on the whole answer, and shortens skiff's own
 * (which bounds waits and retries) when it is shorter. */
static void
plan_deadline(struct call *c)
{
    const struct skiff_config *cfg = c->w->cfg;
    c->deadline_total_ms = cfg->retry.deadline_ms;
    size_t dl;
    const char *d = skiff_http_header(c->req, "x-skiff-deadline-ms", &dl);
    if (d) {
        long v = strtol(d, NULL, 10);
        if (v > 0)
            c->hard_total_ms = v < 86400000 ? (int)v : 86400000;
        if (c->hard_total_ms && c->hard_total_ms <= c->deadline_total_ms) {
            c->deadline_total_ms = c->hard_total_ms;
            c->hard_armed = 1;
        }
    }
    const char *rt_on = skiff_http_header(c->req, "x-skiff-retry-timeouts", &dl);
    c->retry_timeouts = rt_on && dl == 2 && strncasecmp(rt_on, "on", 2) == 0;
    c->deadline_ms = skiff_now_ms() + c->deadline_total_ms;
}

/* A new call of plan on req, made the request's (req->data, on_abort, on_drain) but not
 * started; NULL when out of memory (nothing taken, req untouched). */
static struct call *
call_new(struct skiff_engine *w, struct skiff_request *req, struct skiff_engine_plan *plan)
{
    /* The asked model lives in c->asked, cut to MAX_ASKED_MODEL bytes; "models" without one. */
    size_t asked_len = plan->model
                           ? (plan->model_len < MAX_ASKED_MODEL ? plan->model_len : MAX_ASKED_MODEL)
                           : sizeof "models" - 1;
    struct call *c = calloc(1, sizeof *c + asked_len + 1);
    if (!c)
        return NULL;
    c->req = req;
    c->w = w;
    c->ops = plan->ops;
    c->door = plan->door;
    c->route = plan->route;
    c->query = plan->query;
    c->forward_head = plan->forward_head;
    c->pin_key = plan->pin_key;
    c->stream_body = plan->stream_body && req->body_streamed;
    c->key = -1;
    c->last_key = -1;
    c->up_retry_s = -1;
    c->hdrs_mark = req->out_hdrs.len;
    memcpy(c->asked, plan->model ? plan->model : "models", asked_len); /* NUL-terminated */
    c->chain[0] = c->asked;
    if (plan->owned_body) {
        c->owned = plan->owned_body;
        c->reqbody = plan->owned_body;
        c->reqbody_len = plan->owned_len;
        plan->owned_body = NULL;
    } else {
        c->reqbody = plan->body ? plan->body : "";
        c->reqbody_len = plan->body ? plan->body_len : 0;
    }
    for (int i = 0; i < plan->nfilters && i < SKIFF_ENGINE_MAX_FILTERS; i++) {
        c->filters[c->nfilters].f = plan->filters[i].f;
        c->filters[c->nfilters++].st = plan->filters[i].st;
    }
    plan->nfilters = 0;
    plan_chain(c);
    c->sse = call_is_stream(c) && c->query.alt == SKIFF_ALT_SSE; /* what goes upstream */
    call_add_quality_filters(c);
    skiff_stream_scan_init(&c->scan, c->sse);
    skiff_stream_scan_init(&c->ev_scan, c->sse);
    c->split = call_is_stream(c) && (c->ops->on_event != NULL || c->nfilters > 0);
    skiff_buf_init(&c->carry, c->ops->on_event ? MAX_HOLD : FILTER_CARRY);
    skiff_buf_init(&c->up_headers, 64 * 1024);
    skiff_buf_init(&c->body, MAX_UPSTREAM_ERROR);
    uv_timer_init(w->loop, &c->deadline_timer);
    uv_timer_init(w->loop, &c->wait_timer);
    c->deadline_timer.data = c;
    c->wait_timer.data = c;
    c->handles_open = 2;
    plan_deadline(c);
    uv_timer_start(&c->deadline_timer, on_deadline, (uint64_t)c->deadline_total_ms, 0);

    req->data = c;
    req->on_abort = on_abort;
    req->on_drain = on_drain;
    skiff_budget_deposit(w->sh->budget, skiff_now_ms());
    return c;
}

int
skiff_engine_start(struct skiff_engine *w, struct skiff_request *req,
                   struct skiff_engine_plan *plan)
{
    struct call *c = call_new(w, req, plan);
    if (!c)
        return -1;
    call_next_attempt(c);
    return 0;
}

int
skiff_engine_again(struct skiff_request *req, struct skiff_engine_plan *plan)
{
    struct call *old = req->data;
    if (!old || old->over || old->req != req)
        return -1;
    /* What the engine added to the response for the old call (its x-skiff-* headers, the
     * upstream's forwarded ones) is taken back: the new call adds its own. */
    req->out_hdrs.len = old->hdrs_mark;
    struct call *c = call_new(old->w, req, plan);
    if (!c)
        return -1;
    /* From the loop: the old call is still on the stack (its on_body). */
    wait_then_retry(c, 0);
    return 0;
}

/* ---- the worker ----------------------------------------------------------------------- */

struct skiff_engine *
skiff_engine_new(uv_loop_t *loop, int index, const struct skiff_engine_shared *sh)
{
    struct skiff_engine *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    w->sh = sh;
    w->cfg = skiff_config_ref(sh->cfg); /* the worker's own reference: see config.h */
    w->loop = loop;
    w->up = skiff_upstream_new(loop);
    if (!w->up) {
        skiff_config_unref(w->cfg);
        free(w);
        return NULL;
    }
    if (!w->cfg->proxy)
        skiff_upstream_warm(w->up, w->cfg->base_url, w->cfg->ca_file, 1);
    if (getrandom(&w->rng, sizeof w->rng, 0) != sizeof w->rng || w->rng == 0)
        w->rng = 0x9e3779b97f4a7c15ULL ^ (uint64_t)index;
    return w;
}

void
skiff_engine_free(struct skiff_engine *w)
{
    if (!w)
        return;
    skiff_upstream_close(w->up);
    skiff_wsclient_free(w->ws);
    skiff_config_unref(w->cfg);
    free(w);
}

const struct skiff_engine_shared *
skiff_engine_shared(const struct skiff_engine *w)
{
    return w->sh;
}

struct skiff_upstream *
skiff_engine_upstream(struct skiff_engine *w)
{
    return w->up;
}
