/*
 * One client request through the relay:
 *
 *   handle: route -> auth -> body check -> plan (model chain, deadline)
 *   next_attempt: key = keypool_acquire(model)   (none: wait for one, fall back, or 429)
 *   launch: upstream call with that key, the request built by uprequest.c from allowlists
 *     on_status / on_body: a stream is held until its first event with content, then
 *                          forwarded as it comes; so is a success larger than MAX_HOLD
 *                          (with backpressure); anything else is buffered
 *     on_done: classify -> release the key with the verdict -> answer, or retry after a
 *              backoff (another key at once when the fault was the key's), or fall back
 *              to the next model, or give up with the upstream's own error
 *
 * Invariants: a key acquired is released exactly once (release_key); bytes sent to the
 * client are never followed by a retry (two generations are never spliced); every answer
 * carries x-skiff-attempts, x-skiff-model and x-skiff-key (a label, never the key); the
 * client's credential never goes upstream, the pool key travels only in x-goog-api-key.
 */
#include "relay/relay.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#include "doors/auth.h"
#include "base/buf.h"
#include "base/clock.h"
#include "base/err.h"
#include "gemini/catalog.h"
#include "gemini/classify.h"
#include "gemini/diagnose.h"
#include "gemini/error.h"
#include "gemini/hint.h"
#include "gemini/stream.h"
#include "gemini/validate.h"
#include "base/jsoncheck.h"
#include "base/num.h"
#include "base/log.h"
#include "relay/budget.h"
#include "relay/probe.h"
#include "relay/upstream.h"
#include "relay/uprequest.h"
#include "gemini/router.h"
#include "base/url.h"

#define MAX_UPSTREAM_ERROR (1024u * 1024) /* an error body we may need to read */
#define MAX_HOLD (4u * 1024 * 1024)       /* held: a stream's prefix, or a whole success */
#define STREAM_HIGH_WATER (1024u * 1024)  /* pause the upstream above this */
#define MAX_CHAIN 8                       /* models in a fallback chain */
#define MAX_ASKED_MODEL 128               /* the asked model is cut to this many bytes */
#define PROBE_TIMEOUT_MS 5000             /* a probe's connect, first byte, and gaps */
#define PROBE_POLL_MS 20                  /* how often a call waiting for a probe looks */

struct relay_worker {
    const struct skiff_relay_shared *sh;
    const struct skiff_config *cfg;
    struct skiff_upstream *up;
    uv_loop_t *loop;
    uint64_t rng;
};

struct relay {
    struct skiff_request *req; /* NULL once the client is gone or answered */
    struct relay_worker *w;
    struct skiff_route route;
    struct skiff_upquery query; /* the client's query, checked (uprequest.h) */
    /* The asked model (asked[] below), then its fallbacks: the configuration's own strings,
     * which outlive every request (the config is freed only after the server is). */
    const char *chain[MAX_CHAIN];
    int nchain;
    int model_i;         /* the model being tried */
    int attempts;        /* upstream calls made */
    int model_attempts;  /* calls made on the current model */
    int share;           /* calls each model gets before the next one is tried */
    uint64_t keys_used;  /* a bit per key tried (first 64), for the hint */
    int key;             /* the key held by the call in flight, or -1 */
    int last_key;        /* the key of the latest call (for the headers and logs), or -1 */
    int64_t deadline_ms; /* Unix ms: no attempt, wait or fallback starts after it */
    int deadline_total_ms;
    int hard_total_ms;   /* the client's x-skiff-deadline-ms: cuts everything; 0: none */
    int hard_armed;      /* deadline_timer is set for hard_total_ms */
    int deadline_passed; /* deadline_ms passed while an attempt was in flight */
    int retry_timeouts;  /* x-skiff-retry-timeouts: on */
    int timed_out_sent;  /* the last attempt timed out after its request was sent */
    uv_timer_t deadline_timer, wait_timer;
    int handles_open;
    struct skiff_upcall *call;
    int up_status;
    struct skiff_buf up_headers;
    struct skiff_buf body;               /* a buffered upstream body, or a held stream prefix */
    size_t scanned;                      /* how much of a held stream has been judged */
    struct skiff_stream_scan scan;       /* where the held stream's units end */
    struct skiff_stream_scan guard_scan; /* where the guard's events (carry) end */
    int started;                         /* the client's response has begun */
    int sse;                             /* a stream in the SSE form (?alt=sse) */
    int stream_failed;                   /* a held stream turned out to be an error or empty */
    struct skiff_verdict stream_verdict; /* what a held stream that failed amounted to */
    int stream_error_code;
    int64_t tokens;
    char *last_error;               /* a transport failure of the last call (owned), or NULL */
    struct skiff_repguard *guard;   /* quality.repetition_guard on an SSE stream, else NULL */
    int recited;                    /* a RECITATION answer was already retried */
    struct skiff_buf carry;         /* the guard's part of an event not yet complete */
    struct skiff_probe *probe;      /* the probe of key this relay runs (relay/probe.h) */
    int probe_waiting;              /* waiting (wait_timer) for another relay's probe of key */
    uint64_t probe_gen;             /* the key's probe count when the wait began */
    struct skiff_verdict probe_for; /* the verdict the probe is to confirm */
    int key_cleared;                /* a probe found the key working: the request was refused */
    char *rewritten;      /* the request body as the thinking policy rewrote it (owned), */
    size_t rewritten_len; /* or NULL: the client's body goes as it came */
    char asked[];         /* chain[0]: the asked model, NUL-terminated (allocated with r) */
};

/* ---- small things --------------------------------------------------------------------- */

static uint64_t
next_random(struct relay_worker *w)
{
    /* xorshift64*: enough for jitter. */
    w->rng ^= w->rng >> 12;
    w->rng ^= w->rng << 25;
    w->rng ^= w->rng >> 27;
    return w->rng * 2685821657736338717ULL;
}

static const char *
model_of(const struct relay *r)
{
    return r->chain[r->model_i];
}

static int
is_stream(const struct relay *r)
{
    return r->route.method == SKIFF_M_STREAM;
}

/* The last "totalTokenCount": N in data, or -1. */
static int64_t
scan_tokens(const char *data, size_t len)
{
    static const char key[] = "\"totalTokenCount\"";
    int64_t v = -1;
    const char *p = data, *end = data + len, *hit;
    while ((hit = memmem(p, (size_t)(end - p), key, sizeof key - 1))) {
        const char *q = hit + sizeof key - 1;
        while (q < end && (*q == ':' || *q == ' '))
            q++;
        int64_t n = 0;
        int digits = 0;
        while (q < end && *q >= '0' && *q <= '9' && digits < 15) {
            n = n * 10 + (*q++ - '0');
            digits++;
        }
        if (digits)
            v = n;
        p = q;
    }
    return v;
}

/* ---- answering ------------------------------------------------------------------------ */

static void
decorate(struct skiff_request *req, int attempts, const char *model, const char *key_label)
{
    char n[20];
    skiff_http_add_headern(req, "x-skiff-attempts", 16, n,
                           skiff_fmt_uint(n, (uint64_t)(attempts > 0 ? attempts : 0), 10));
    skiff_http_add_header(req, "x-skiff-model", model && *model ? model : "none");
    skiff_http_add_header(req, "x-skiff-key", key_label ? key_label : "none");
}

/* A skiff-made error before any upstream attempt; status and details (stolen) may be NULL. */
static void
refuse_with(struct skiff_request *req, const struct skiff_route *rt, int code, const char *status,
            const char *message, json_t *details)
{
    char model[129] = "";
    if (rt && rt->model)
        snprintf(model, sizeof model, "%.*s", (int)rt->model_len, rt->model);
    decorate(req, 0, model, NULL);
    skiff_gerr_respond(req, code, status, message, details);
}

static void
early_error(struct skiff_request *req, const struct skiff_route *rt, int code, const char *message)
{
    refuse_with(req, rt, code, NULL, message, NULL);
}

void
skiff_relay_http_error(struct skiff_request *req, int status, const char *message)
{
    early_error(req, NULL, status, message);
}

static const char *
label_of(const struct relay *r, int key)
{
    return skiff_keypool_label(r->w->sh->pool, key);
}

/* The label of the key that made the last call (kept after release for the headers). */
static void
relay_decorate(struct relay *r)
{
    decorate(r->req, r->attempts, model_of(r), label_of(r, r->last_key));
}

/* Copies the upstream's headers that make sense to a client (uprequest.h's allowlist). */
static void
forward_headers(struct relay *r)
{
    skiff_uprequest_forward_head(r->req, r->up_headers.data, r->up_headers.len, r->w->sh->pool);
}

/* A header of the upstream's answer into out, or NULL. */
static const char *
upstream_header(const struct relay *r, const char *name, char *out, size_t outlen)
{
    size_t nl = strlen(name);
    const char *p = r->up_headers.data, *end = p + r->up_headers.len;
    struct skiff_hline h;
    while (skiff_hblock_next(&p, end, &h)) {
        if (h.name_len == nl && strncasecmp(h.name, name, nl) == 0) {
            size_t n = h.value_len < outlen ? h.value_len : outlen - 1;
            memcpy(out, h.value, n);
            out[n] = '\0';
            return out;
        }
    }
    return NULL;
}

static const char *
content_type(const struct relay *r, char *out, size_t outlen)
{
    return skiff_uprequest_content_type(r->up_headers.data, r->up_headers.len, r->w->sh->pool, out,
                                        outlen);
}

/* ---- lifetime ------------------------------------------------------------------------- */

static void
free_relay(uv_handle_t *h)
{
    struct relay *r = h->data;
    if (--r->handles_open > 0)
        return;
    skiff_buf_release(&r->up_headers);
    skiff_buf_release(&r->body);
    free(r->last_error);
    free(r->rewritten);
    free(r->guard);
    skiff_buf_release(&r->carry);
    free(r);
}

static void
release_key(struct relay *r, enum skiff_fault fault, double delay_s, const char *reason)
{
    if (r->key < 0)
        return;
    skiff_keypool_release(r->w->sh->pool, r->key, model_of(r), fault, delay_s, reason,
                          r->tokens > 0 ? r->tokens : 0, skiff_now_ms());
    r->keys_used |= r->key < 64 ? 1ULL << r->key : 0;
    r->key = -1;
}

/* Ends the relay's part: the request is answered or the client is gone. */
static void
relay_done(struct relay *r)
{
    if (r->call) {
        skiff_upcall_cancel(r->call);
        r->call = NULL;
        release_key(r, SKIFF_FAULT_TRANSIENT, -1, "cancelled");
    }
    if (r->probe) {
        /* The waiters on this probe learn that it told nothing. */
        skiff_probe_cancel(r->probe);
        r->probe = NULL;
        skiff_keypool_probe_end(r->w->sh->pool, r->key, SKIFF_PROBE_UNKNOWN);
    }
    r->probe_waiting = 0;
    release_key(r, SKIFF_FAULT_TRANSIENT, -1, "cancelled"); /* a key held while probing */
    if (r->req) {
        r->req->data = NULL;
        r->req->on_abort = NULL;
        r->req->on_drain = NULL;
        r->req = NULL;
    }
    uv_timer_stop(&r->deadline_timer);
    uv_timer_stop(&r->wait_timer);
    uv_close((uv_handle_t *)&r->deadline_timer, free_relay);
    uv_close((uv_handle_t *)&r->wait_timer, free_relay);
}

static void
log_attempt(const struct relay *r, int status, const struct skiff_verdict *v, const char *next,
            int64_t delay_ms)
{
    struct skiff_log l;
    skiff_log_begin(&l, status == 200 ? SKIFF_LOG_DEBUG : SKIFF_LOG_INFO, "attempt");
    skiff_log_str(&l, "id", r->req ? r->req->id : "");
    skiff_log_int(&l, "n", r->attempts);
    skiff_log_str(&l, "model", model_of(r));
    skiff_log_str(&l, "key", label_of(r, r->last_key));
    skiff_log_int(&l, "status", status);
    skiff_log_str(&l, "fault", skiff_fault_name(v->fault));
    if (v->reason[0])
        skiff_log_str(&l, "reason", v->reason);
    skiff_log_str(&l, "next", next);
    if (delay_ms >= 0)
        skiff_log_int(&l, "delay_ms", delay_ms);
    skiff_log_end(&l);
}

static int
popcount64(uint64_t v)
{
    int n = 0;
    for (; v; v &= v - 1)
        n++;
    return n;
}

/*
 * Answers an upstream error (the body already redacted). A Google error keeps its code,
 * status and message and gains the guide's advice: a google.rpc.Help detail and an
 * x-skiff-hint header. Anything else (an HTML page from a proxy, a truncated body) is
 * answered in Google's format with a sample of what came, so clients can parse it.
 */
static void
answer_error(struct relay *r)
{
    struct skiff_hint_ctx ctx = {
        .attempts = r->attempts,
        .keys_tried = popcount64(r->keys_used),
        .models_tried = r->model_i + 1,
        .deadline_ms = r->deadline_total_ms,
        .model = model_of(r),
        .input_bytes = r->req->body_len,
        .proxy_configured = r->w->cfg->proxy && *r->w->cfg->proxy,
        .override = r->key_cleared
                        ? "the upstream's refusal named the key, but a probe with the same key "
                          "succeeded: something this request refers to or sends (a file, cached "
                          "content or tuned model of another project, a header naming another "
                          "project) is not accessible with skiff's keys; no key was blamed and the "
                          "request was not re-sent"
                        : NULL,
    };
    char hint[512], ct[128], *body = NULL;
    size_t len = 0;
    int rc = skiff_hint_apply(r->up_status, r->body.data, r->body.len, &ctx, &body, &len, hint,
                              sizeof hint);
    relay_decorate(r);
    if (hint[0])
        skiff_http_add_header(r->req, "x-skiff-hint", hint);
    if (rc == 0) { /* not a Google error */
        char sample[121], msg[512];
        size_t n = 0;
        for (size_t i = 0; i < r->body.len && n < sizeof sample - 1; i++) {
            unsigned char c = (unsigned char)r->body.data[i];
            sample[n++] = c >= 0x20 && c < 0x7f ? (char)c : ' ';
        }
        sample[n] = '\0';
        snprintf(msg, sizeof msg,
                 "the upstream answered %d after %d attempt%s with a body that "
                 "is not a Google error (%s, %zu bytes): %s",
                 r->up_status, r->attempts, r->attempts == 1 ? "" : "s",
                 content_type(r, ct, sizeof ct), r->body.len, sample);
        skiff_gerr_respond(r->req, r->up_status, NULL, msg, NULL);
    } else {
        forward_headers(r);
        skiff_http_respond(r->req, r->up_status, content_type(r, ct, sizeof ct),
                           rc == 1 ? body : r->body.data, rc == 1 ? len : r->body.len);
    }
    free(body);
    relay_done(r);
}

/* A response that ended for a reason worth knowing (SAFETY, RECITATION, a blocked prompt):
 * an x-skiff-finish header (when headers are still to go) and a log line. */
static void
note_finish(struct relay *r, const char *data, size_t len)
{
    struct skiff_finish f;
    if (!data || !skiff_diagnose_finish(data, len, &f))
        return;
    if (!r->started)
        skiff_http_add_header(r->req, "x-skiff-finish", f.header);
    struct skiff_log l;
    skiff_log_begin(&l, SKIFF_LOG_INFO, "finish");
    skiff_log_str(&l, "id", r->req->id);
    skiff_log_str(&l, "model", model_of(r));
    skiff_log_str(&l, "finish", f.header);
    skiff_log_str(&l, "advice", f.advice);
    skiff_log_end(&l);
}

/* Forwards the last upstream answer: a success as it came, an error through answer_error. */
static void
forward_answer(struct relay *r)
{
    if (r->up_status >= 400) {
        /* An upstream error may echo the key it was sent ("Invalid API key: ..."). */
        skiff_keypool_redact(r->w->sh->pool, r->body.data, r->body.len);
        answer_error(r);
        return;
    }
    char ct[128];
    relay_decorate(r);
    forward_headers(r);
    if (r->up_status == 200)
        note_finish(r, r->body.data, r->body.len);
    skiff_http_respond(r->req, r->up_status, content_type(r, ct, sizeof ct),
                       r->body.data ? r->body.data : "", r->body.len);
    relay_done(r);
}

/* The first-byte timeout that applied to the last attempt. */
static int
first_byte_timeout(const struct relay *r)
{
    const struct skiff_config *cfg = r->w->cfg;
    return is_stream(r) ? cfg->retry.stream_first_byte_timeout_ms
                        : cfg->retry.first_byte_timeout_ms;
}

/* Whether a transport error is a first-byte timeout: the request was sent and the upstream
 * said nothing, so it may be generating (and billing) the answer still. */
static int
is_first_byte_timeout(const char *error)
{
    return error && strstr(error, "waiting for the first byte") != NULL;
}

/* Says why a first-byte timeout was not retried, and what the client can do about it. */
static void
add_timeout_hint(struct relay *r)
{
    char hint[400];
    snprintf(hint, sizeof hint,
             "the upstream sent nothing for %d ms (retry.%sfirst_byte_timeout_ms) after the "
             "whole request was sent; it may still have been generating (and billing) the "
             "answer, so skiff did not retry on another key. Raise the timeout, or send "
             "x-skiff-retry-timeouts: on to allow a retry",
             first_byte_timeout(r), is_stream(r) ? "stream_" : "");
    skiff_http_add_header(r->req, "x-skiff-hint", hint);
}

/* Gives up: the last upstream error as it came, or skiff's own when there was none. */
static void
give_up(struct relay *r)
{
    if (r->up_status && !r->stream_failed) {
        forward_answer(r);
        return;
    }
    char msg[512], base[256], why[256];
    /* A base_url or a proxy may carry a password (user:pw@): never in an answer. */
    const char *last_error = skiff_url_redact(r->last_error, why, sizeof why);
    int timeout = strstr(last_error, "timed out") || strstr(last_error, "idle timeout");
    if (r->stream_failed)
        snprintf(msg, sizeof msg,
                 "the upstream's stream failed before any content after %d "
                 "attempt%s: %s",
                 r->attempts, r->attempts == 1 ? "" : "s", r->stream_verdict.reason);
    else
        snprintf(msg, sizeof msg,
                 "skiff could not get an answer from the upstream (%s) after %d "
                 "attempt%s: %s",
                 skiff_url_redact(r->w->cfg->base_url, base, sizeof base), r->attempts,
                 r->attempts == 1 ? "" : "s", last_error);
    relay_decorate(r);
    if (r->timed_out_sent)
        add_timeout_hint(r);
    int code = timeout                                           ? 504
               : r->stream_failed && r->stream_error_code >= 400 ? r->stream_error_code
                                                                 : 502;
    skiff_gerr_respond(r->req, code, code == 502 ? "UNAVAILABLE" : NULL, msg, NULL);
    relay_done(r);
}

/* Every key is resting (or retired) for every model left in the chain. */
static void
exhausted(struct relay *r, int64_t back_at)
{
    if (back_at == INT64_MAX) {
        if (r->up_status) {
            forward_answer(r);
            return;
        }
        char msg[512];
        snprintf(msg, sizeof msg,
                 "no key in skiff's pool can serve %s: every key is retired for "
                 "it (invalid, without permission, region-blocked, or without "
                 "quota for the model); see the key_health lines in skiff's log",
                 model_of(r));
        relay_decorate(r);
        skiff_gerr_respond(r->req, 503, NULL, msg, NULL);
        relay_done(r);
        return;
    }
    double wait_s = (double)(back_at - skiff_now_ms()) / 1000.0;
    char msg[512];
    snprintf(msg, sizeof msg,
             "every key in skiff's pool is resting for %s (quota exhausted); "
             "the first comes back in %.0fs. Please retry then.",
             model_of(r), wait_s < 1 ? 1 : wait_s);
    json_t *details = json_array();
    json_array_append_new(details, skiff_gerr_retry_info(wait_s));
    json_array_append_new(details,
                          skiff_gerr_help("Learn more about Gemini API quotas",
                                          "https://ai.google.dev/gemini-api/docs/rate-limits"));
    relay_decorate(r);
    skiff_gerr_respond(r->req, 429, NULL, msg, details);
    relay_done(r);
}

/* ---- the attempt loop ----------------------------------------------------------------- */

static void launch(struct relay *r, int key);
static void next_attempt(struct relay *r);

static void
on_wait(uv_timer_t *t)
{
    next_attempt(t->data);
}

static void
wait_then_retry(struct relay *r, int64_t delay_ms)
{
    uv_timer_start(&r->wait_timer, on_wait, (uint64_t)(delay_ms > 0 ? delay_ms : 0), 0);
}

/* Picks a key for the current model, waits for one, falls back, or answers 429. */
static void
next_attempt(struct relay *r)
{
    if (r->deadline_passed) {
        give_up(r); /* the deadline passed during the last attempt: nothing follows it */
        return;
    }
    for (;;) {
        int64_t now = skiff_now_ms(), back_at;
        int key = skiff_keypool_acquire(r->w->sh->pool, model_of(r), now, &back_at);
        if (key >= 0) {
            launch(r, key);
            return;
        }
        int64_t left = r->deadline_ms - now;
        int64_t max_wait =
            r->w->cfg->retry.max_wait_ms < left ? r->w->cfg->retry.max_wait_ms : left;
        if (back_at != INT64_MAX && back_at - now <= max_wait) {
            wait_then_retry(r, back_at - now);
            return;
        }
        if (r->model_i + 1 < r->nchain) {
            r->model_i++;
            r->model_attempts = 0;
            continue;
        }
        exhausted(r, back_at);
        return;
    }
}

/*
 * Ends the answer now, visibly: skiff's own error while nothing was sent, else the stream is
 * cut so that the client sees a failure (an SSE stream gets the error as a last raw object,
 * as the API sends one mid-stream), never a clean end. The call in flight is cancelled.
 */
static void
cut(struct relay *r, int code, const char *status, const char *msg, const char *why)
{
    if (r->call) {
        skiff_upcall_cancel(r->call);
        r->call = NULL;
        release_key(r, SKIFF_FAULT_TRANSIENT, -1, why);
    }
    if (r->started) {
        if (r->sse) {
            char *body = skiff_gerr_body(code, status, msg, NULL, 0);
            if (body) {
                skiff_http_write(r->req, body, strlen(body));
                free(body);
            }
        }
        skiff_http_abort(r->req, why);
    } else {
        relay_decorate(r);
        skiff_gerr_respond(r->req, code, status, msg, NULL);
    }
    relay_done(r);
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
    struct relay *r = t->data;
    if (!r->hard_armed && r->call) {
        r->deadline_passed = 1;
        struct skiff_log l;
        skiff_log_begin(&l, SKIFF_LOG_INFO, "deadline_passed");
        skiff_log_str(&l, "id", r->req->id);
        skiff_log_int(&l, "ms", r->deadline_total_ms);
        skiff_log_str(&l, "next", "the attempt in flight goes on; no further attempt");
        skiff_log_end(&l);
        if (r->hard_total_ms > r->deadline_total_ms) {
            r->hard_armed = 1;
            uv_timer_start(&r->deadline_timer, on_deadline,
                           (uint64_t)(r->hard_total_ms - r->deadline_total_ms), 0);
        }
        return;
    }
    char msg[256];
    if (r->hard_armed)
        snprintf(msg, sizeof msg,
                 "the client's deadline of %d ms (x-skiff-deadline-ms) passed "
                 "after %d attempt%s; raise it, or shorten the prompt",
                 r->hard_total_ms, r->attempts, r->attempts == 1 ? "" : "s");
    else
        snprintf(msg, sizeof msg,
                 "skiff's deadline of %d ms passed after %d attempt%s; raise "
                 "retry.deadline_ms or x-skiff-deadline-ms, or shorten the "
                 "prompt",
                 r->deadline_total_ms, r->attempts, r->attempts == 1 ? "" : "s");
    struct skiff_log l;
    skiff_log_begin(&l, SKIFF_LOG_WARN, "deadline");
    skiff_log_str(&l, "id", r->req->id);
    skiff_log_int(&l, "ms", r->hard_armed ? r->hard_total_ms : r->deadline_total_ms);
    skiff_log_str(&l, "by", r->hard_armed ? "x-skiff-deadline-ms" : "retry.deadline_ms");
    skiff_log_end(&l);
    cut(r, 504, NULL, msg, "deadline passed mid-stream");
}

/* retry.max_stream_ms: a stream that started is ended visibly once it has run this long. */
static void
on_max_stream(uv_timer_t *t)
{
    struct relay *r = t->data;
    char msg[256];
    snprintf(msg, sizeof msg,
             "the stream ran for retry.max_stream_ms (%d ms) and skiff ended "
             "it; raise retry.max_stream_ms (0: no limit)",
             r->w->cfg->retry.max_stream_ms);
    struct skiff_log l;
    skiff_log_begin(&l, SKIFF_LOG_WARN, "max_stream");
    skiff_log_str(&l, "id", r->req->id);
    skiff_log_int(&l, "ms", r->w->cfg->retry.max_stream_ms);
    skiff_log_end(&l);
    cut(r, 504, NULL, msg, "retry.max_stream_ms passed");
}

void
skiff_relay_cut(struct skiff_request *req, void *worker)
{
    struct relay *r = req->data;
    if (!r) {
        skiff_http_abort(req, "shutdown.drain_timeout_ms passed");
        return;
    }
    char msg[256];
    snprintf(msg, sizeof msg,
             "skiff is shutting down and this request did not finish within "
             "shutdown.drain_timeout_ms (%d ms); please retry it",
             r->w->cfg->shutdown.drain_timeout_ms);
    cut(r, 503, "UNAVAILABLE", msg, "shutdown.drain_timeout_ms passed");
}

/* Decides what follows a failed call: retry (when, with what), fall back, or give up. */
static void
after_failure(struct relay *r, const struct skiff_verdict *v)
{
    const struct skiff_config *cfg = r->w->cfg;
    int64_t now = skiff_now_ms();
    if (!skiff_fault_retryable(v->fault)) {
        log_attempt(r, r->up_status, v, "answer", -1);
        give_up(r);
        return;
    }
    if (r->attempts >= cfg->retry.max_attempts) {
        log_attempt(r, r->up_status, v, "give-up: retry.max_attempts", -1);
        give_up(r);
        return;
    }
    if (r->deadline_passed || now >= r->deadline_ms) {
        log_attempt(r, r->up_status, v, "give-up: retry.deadline_ms passed", -1);
        give_up(r);
        return;
    }
    if (!skiff_budget_withdraw(r->w->sh->budget, now)) {
        log_attempt(r, r->up_status, v, "give-up: retry budget spent", -1);
        give_up(r);
        return;
    }
    if (r->model_attempts >= r->share && r->model_i + 1 < r->nchain) {
        r->model_i++;
        r->model_attempts = 0;
        log_attempt(r, r->up_status, v, "fallback", 0);
        next_attempt(r);
        return;
    }
    int64_t delay = 0;
    if (!skiff_fault_blames_key(v->fault)) {
        /* Full jitter: random(0, min(max_delay, base * 2^n)). */
        int n = r->model_attempts - 1 < 30 ? r->model_attempts - 1 : 30;
        double cap = (double)cfg->retry.base_delay_ms * (double)(1ULL << (n > 0 ? n : 0));
        if (cap > cfg->retry.max_delay_ms)
            cap = cfg->retry.max_delay_ms;
        delay = (int64_t)((double)(next_random(r->w) % 1000001) / 1e6 * cap);
        if (v->retry_delay_s > 0 && (int64_t)(v->retry_delay_s * 1000) > delay)
            delay = (int64_t)(v->retry_delay_s * 1000);
    }
    if (now + delay >= r->deadline_ms) {
        log_attempt(r, r->up_status, v, "give-up: the deadline would pass", delay);
        give_up(r);
        return;
    }
    log_attempt(r, r->up_status, v, "retry", delay);
    if (delay == 0)
        next_attempt(r);
    else
        wait_then_retry(r, delay);
}

/* ---- confirming a retirement (relay/probe.h) ------------------------------------------ */

static void
log_probe(const struct relay *r, enum skiff_probe_result res, const struct skiff_verdict *pv)
{
    struct skiff_log l;
    skiff_log_begin(&l, res == SKIFF_PROBE_KEY_OK ? SKIFF_LOG_WARN : SKIFF_LOG_INFO, "key_probe");
    skiff_log_str(&l, "id", r->req ? r->req->id : "");
    skiff_log_str(&l, "key", label_of(r, r->key));
    skiff_log_str(&l, "model", model_of(r));
    skiff_log_str(&l, "refused_for", r->probe_for.reason);
    skiff_log_str(&l, "result", skiff_probe_result_name(res));
    if (pv && pv->reason[0])
        skiff_log_str(&l, "probe", pv->reason);
    skiff_log_end(&l);
}

/*
 * The probe of r->key ended (this relay's, or another one's it waited for): the key is
 * released with what the probe found, then after_failure decides as for any failure. A
 * confirmed verdict retires the key and the call goes to another key at once; a verdict the
 * probe contradicts is the client's (answered, not re-sent, nothing blamed); a probe that
 * told nothing leaves the key as it was and the call counts as transient.
 */
static void
probe_settled(struct relay *r, enum skiff_probe_result res)
{
    struct skiff_verdict v = r->probe_for;
    char why[sizeof v.reason];
    switch (res) {
    case SKIFF_PROBE_KEY_BAD:
        release_key(r, v.fault, v.retry_delay_s, v.reason);
        break;
    case SKIFF_PROBE_KEY_OK:
        release_key(r, SKIFF_FAULT_CLIENT, -1, v.reason);
        r->key_cleared = 1;
        v.fault = SKIFF_FAULT_CLIENT;
        snprintf(why, sizeof why, "%.80s; the key works (probe): the request's", v.reason);
        memcpy(v.reason, why, sizeof why);
        break;
    default:
        release_key(r, SKIFF_FAULT_TRANSIENT, -1, v.reason);
        v.fault = SKIFF_FAULT_TRANSIENT;
        v.retry_delay_s = -1;
        snprintf(why, sizeof why, "%.80s; the probe to confirm it told nothing", v.reason);
        memcpy(v.reason, why, sizeof why);
        break;
    }
    after_failure(r, &v);
}

static void
on_probe(void *data, enum skiff_probe_result res, const struct skiff_verdict *pv)
{
    struct relay *r = data;
    r->probe = NULL;
    skiff_keypool_probe_end(r->w->sh->pool, r->key, (int)res);
    log_probe(r, res, pv);
    probe_settled(r, res);
}

static void
on_probe_poll(uv_timer_t *t)
{
    struct relay *r = t->data;
    int outcome;
    if (!skiff_keypool_probe_outcome(r->w->sh->pool, r->key, r->probe_gen, &outcome))
        return;
    uv_timer_stop(&r->wait_timer);
    r->probe_waiting = 0;
    probe_settled(r, (enum skiff_probe_result)outcome);
}

/*
 * v would retire r->key for every model: before that, a probe with the key alone says
 * whether the key is at fault (relay/probe.h). One probe per key runs at a time; a call
 * that finds one running waits for its outcome, and one whose key is already retired goes
 * on as if it had been confirmed. The key stays held until then.
 */
static void
confirm_key(struct relay *r, const struct skiff_verdict *v)
{
    struct skiff_keypool *pool = r->w->sh->pool;
    r->probe_for = *v;
    switch (skiff_keypool_probe_claim(pool, r->key, &r->probe_gen)) {
    case SKIFF_KEYPOOL_PROBE_RETIRED:
        probe_settled(r, SKIFF_PROBE_KEY_BAD);
        return;
    case SKIFF_KEYPOOL_PROBE_WAIT:
        r->probe_waiting = 1;
        uv_timer_start(&r->wait_timer, on_probe_poll, PROBE_POLL_MS, PROBE_POLL_MS);
        return;
    case SKIFF_KEYPOOL_PROBE_RUN:
        break;
    }
    const struct skiff_config *cfg = r->w->cfg;
    int64_t left = r->deadline_ms - skiff_now_ms();
    long timeout = left < PROBE_TIMEOUT_MS ? (long)(left > 1 ? left : 1) : PROBE_TIMEOUT_MS;
    struct skiff_probe_opts o = {
        .base_url = cfg->base_url,
        .proxy = cfg->proxy,
        .ca_file = cfg->ca_file,
        .key = skiff_keypool_secret(pool, r->key),
        .model = model_of(r),
        .connect_timeout_ms =
            cfg->retry.connect_timeout_ms < timeout ? cfg->retry.connect_timeout_ms : timeout,
        .timeout_ms = timeout,
        .cb = on_probe,
        .data = r,
    };
    r->probe = skiff_probe_start(r->w->up, &o);
    if (!r->probe) {
        skiff_keypool_probe_end(pool, r->key, SKIFF_PROBE_UNKNOWN);
        probe_settled(r, SKIFF_PROBE_UNKNOWN);
    }
}

/* ---- upstream callbacks --------------------------------------------------------------- */

static int
on_status(struct skiff_upcall *call, int status, const char *headers, size_t len)
{
    struct relay *r = skiff_upcall_data(call);
    r->up_status = status;
    skiff_buf_reset(&r->up_headers);
    if (skiff_buf_add(&r->up_headers, headers, len))
        return -1;
    skiff_buf_release(&r->body);
    skiff_buf_init(&r->body, status != 200 ? MAX_UPSTREAM_ERROR : MAX_HOLD);
    r->scanned = 0;
    skiff_stream_scan_init(&r->scan, r->sse);
    return 0;
}

static enum skiff_rep guard_feed(struct relay *r, const char *data, size_t len);

/*
 * Forwards stream bytes to the client. A mid-stream error object may echo a pool key like a
 * whole error body can: such a piece is copied and redacted first. (A key split across two
 * pieces is not caught; the API is not known to echo keys mid-stream at all.) Returns the
 * bytes still queued for the client.
 */
static size_t
forward_chunk(struct relay *r, const char *data, size_t len)
{
    if (!skiff_keypool_leaks(r->w->sh->pool, data, len))
        return skiff_http_write(r->req, data, len);
    char *copy = malloc(len);
    if (!copy)
        return skiff_http_pending(r->req); /* dropped rather than sent unredacted */
    memcpy(copy, data, len);
    skiff_keypool_redact(r->w->sh->pool, copy, len);
    size_t queued = skiff_http_write(r->req, copy, len);
    free(copy);
    return queued;
}

/* Sends the response headers and whatever was held: from here on, no retry. */
static void
commit_stream(struct relay *r)
{
    char ct[128];
    relay_decorate(r);
    forward_headers(r);
    note_finish(r, r->body.data, r->body.len);
    r->started = 1;
    /* No attempt follows a started stream, so wait_timer is free to time its length. */
    if (r->w->cfg->retry.max_stream_ms > 0)
        uv_timer_start(&r->wait_timer, on_max_stream, (uint64_t)r->w->cfg->retry.max_stream_ms, 0);
    skiff_http_start(r->req, 200, content_type(r, ct, sizeof ct));
    /* The upstream's headers are read only to answer (forward_headers, content_type) and
     * to judge a failed call (retry-after in on_done); once started, neither happens again
     * (on_done and on_deadline take their started branch, nothing is retried). A stream
     * lives long: give them back now. */
    skiff_buf_release(&r->up_headers);
    if (r->body.len) {
        forward_chunk(r, r->body.data, r->body.len);
        guard_feed(r, r->body.data, r->body.len); /* a loop is judged on what follows */
    }
    skiff_buf_release(&r->body);
}

/* A held stream turned out to be a failure: an error object, or an empty answer. */
static void
fail_held(struct relay *r, enum skiff_unit u, const char *unit, size_t n)
{
    r->stream_failed = 1;
    struct skiff_verdict *sv = &r->stream_verdict;
    if (u == SKIFF_UNIT_EMPTY_STOP) {
        memset(sv, 0, sizeof *sv);
        sv->fault = SKIFF_FAULT_TRANSIENT;
        sv->retry_delay_s = -1;
        snprintf(sv->reason, sizeof sv->reason,
                 "the stream finished with no content (an empty answer)");
        return;
    }
    size_t jl;
    const char *j = skiff_stream_json(unit, n, &jl);
    json_t *e = json_loadb(j, jl, JSON_DISABLE_EOF_CHECK, NULL);
    int code = (int)json_integer_value(json_object_get(json_object_get(e, "error"), "code"));
    json_decref(e);
    r->stream_error_code = code >= 400 && code < 600 ? code : 502;
    skiff_classify(code ? code : 500, j, jl, NULL, sv);
}

/* Judges the held units; returns 1 when the stream has been committed. */
static int
judge_held(struct relay *r)
{
    for (;;) {
        /* The scanner goes on where the last piece left it: each byte is looked at once. */
        size_t end =
            skiff_stream_scan_next(&r->scan, r->body.data + r->scanned, r->body.len - r->scanned);
        if (end == 0)
            return 0;
        const char *unit = r->body.data + r->scanned;
        enum skiff_unit u = skiff_stream_judge(unit, end);
        switch (u) {
        case SKIFF_UNIT_CONTENT:
        case SKIFF_UNIT_FINISH:
            commit_stream(r);
            return 1;
        case SKIFF_UNIT_EMPTY:
            r->scanned += end;
            continue;
        case SKIFF_UNIT_EMPTY_STOP:
        case SKIFF_UNIT_ERROR:
            fail_held(r, u, unit, end);
            return 0;
        }
    }
}

/* Judges the held bytes after the last complete unit as one more unit. */
static void
judge_tail(struct relay *r)
{
    const char *tail = r->body.data + r->scanned;
    size_t n = r->body.len - r->scanned;
    enum skiff_unit u = skiff_stream_judge(tail, n);
    if (u == SKIFF_UNIT_ERROR || u == SKIFF_UNIT_EMPTY_STOP)
        fail_held(r, u, tail, n);
}

/* Feeds forwarded stream bytes to the repetition guard, event by event; returns the kind
 * of loop once it trips, else SKIFF_REP_NONE. */
static enum skiff_rep
guard_feed(struct relay *r, const char *data, size_t len)
{
    if (!r->guard)
        return SKIFF_REP_NONE;
    if (skiff_buf_add(&r->carry, data, len)) {
        skiff_buf_reset(&r->carry); /* an event larger than the carry: skip it */
        skiff_stream_scan_init(&r->guard_scan, 1);
        return SKIFF_REP_NONE;
    }
    size_t off = 0, end;
    enum skiff_rep rep = SKIFF_REP_NONE;
    while (!rep && (end = skiff_stream_scan_next(&r->guard_scan, r->carry.data + off,
                                                 r->carry.len - off))) {
        rep = skiff_repguard_feed_event(r->guard, r->carry.data + off, end);
        off += end;
    }
    memmove(r->carry.data, r->carry.data + off, r->carry.len - off);
    r->carry.len -= off;
    return rep;
}

/*
 * The stream is stuck repeating itself: stop paying for it. The upstream call is
 * cancelled and the client's stream ends cleanly with a last event whose finishReason is
 * OTHER and whose finishMessage says why.
 */
static void
stop_repetition(struct relay *r, enum skiff_rep rep)
{
    skiff_upcall_cancel(r->call);
    r->call = NULL;
    release_key(r, SKIFF_FAULT_NONE, -1, NULL);
    char msg[256];
    snprintf(msg, sizeof msg, "skiff stopped the stream: %s", skiff_rep_explain(rep));
    json_t *ev = json_pack("{s:[{s:{s:[{s:s}],s:s},s:s,s:s,s:i}],s:s}", "candidates", "content",
                           "parts", "text", "", "role", "model", "finishReason", "OTHER",
                           "finishMessage", msg, "index", 0, "modelVersion", model_of(r));
    char *json = ev ? json_dumps(ev, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    if (json) {
        skiff_http_write(r->req, "data: ", 6);
        skiff_http_write(r->req, json, strlen(json));
        skiff_http_write(r->req, "\r\n\r\n", 4);
    }
    free(json);
    json_decref(ev);
    struct skiff_log l;
    skiff_log_begin(&l, SKIFF_LOG_WARN, "repetition_stopped");
    skiff_log_str(&l, "id", r->req->id);
    skiff_log_str(&l, "model", model_of(r));
    skiff_log_str(&l, "loop", skiff_rep_explain(rep));
    skiff_log_end(&l);
    skiff_http_end(r->req);
    relay_done(r);
}

static int
on_body(struct skiff_upcall *call, const char *data, size_t len)
{
    struct relay *r = skiff_upcall_data(call);
    if (r->up_status == 200 && is_stream(r)) {
        int64_t t = scan_tokens(data, len);
        if (t >= 0)
            r->tokens = t;
        if (r->started) {
            size_t queued = forward_chunk(r, data, len);
            enum skiff_rep rep = guard_feed(r, data, len);
            if (rep) {
                stop_repetition(r, rep);
                return -1;
            }
            return queued > STREAM_HIGH_WATER ? 1 : 0;
        }
        if (skiff_buf_add(&r->body, data, len)) {
            commit_stream(r); /* a long prelude without content: stop holding it */
            size_t queued = forward_chunk(r, data, len);
            return queued > STREAM_HIGH_WATER ? 1 : 0;
        }
        judge_held(r);
        return r->stream_failed ? -1 : 0;
    }
    if (r->up_status == 200) {
        /* A success is held whole when it fits MAX_HOLD (for x-skiff-finish and the
         * recitation retry); a larger one is forwarded as it comes, with backpressure, so a
         * slow client never makes skiff hold the whole answer. */
        if (!r->started && skiff_buf_add(&r->body, data, len) == 0)
            return 0;
        if (!r->started)
            commit_stream(r);
        int64_t t = scan_tokens(data, len);
        if (t >= 0)
            r->tokens = t;
        return forward_chunk(r, data, len) > STREAM_HIGH_WATER ? 1 : 0;
    }
    if (skiff_buf_add(&r->body, data, len))
        return -1;
    return 0;
}

/*
 * quality.retry_recitation: an answer cut short for RECITATION is asked for once more with
 * a temperature of at least 0.8, as the guide advises. Returns 1 when a new attempt went
 * out (non-stream answers only: a stream has already started by the time it says so).
 */
static int
retry_recitation(struct relay *r)
{
    struct skiff_finish f;
    if (!r->w->cfg->quality.retry_recitation || r->recited || is_stream(r) || r->up_status != 200 ||
        r->attempts >= r->w->cfg->retry.max_attempts ||
        !skiff_diagnose_finish(r->body.data, r->body.len, &f) || strcmp(f.reason, "RECITATION"))
        return 0;
    const char *src = r->rewritten ? r->rewritten : r->req->body;
    size_t len = r->rewritten ? r->rewritten_len : r->req->body_len;
    json_t *root = json_loadb(src, len, 0, NULL);
    json_t *gc = json_object_get(root, "generationConfig");
    if (!json_is_object(root) || (gc && !json_is_object(gc))) {
        json_decref(root);
        return 0;
    }
    if (!gc) {
        gc = json_object();
        json_object_set_new(root, "generationConfig", gc);
    }
    json_t *t = json_object_get(gc, "temperature");
    if (!json_is_number(t) || json_number_value(t) < 0.8)
        json_object_set_new(gc, "temperature", json_real(0.8));
    char *body = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(root);
    if (!body)
        return 0;
    free(r->rewritten);
    r->rewritten = body;
    r->rewritten_len = strlen(body);
    r->recited = 1;
    struct skiff_verdict v = {.fault = SKIFF_FAULT_NONE, .retry_delay_s = -1};
    snprintf(v.reason, sizeof v.reason, "RECITATION: asking again with temperature >= 0.8");
    log_attempt(r, r->up_status, &v, "retry", 0);
    next_attempt(r);
    return 1;
}

static void
on_done(struct skiff_upcall *call, const char *error)
{
    struct relay *r = skiff_upcall_data(call);
    r->call = NULL;

    if (r->started) {
        /* Bytes went out: a failure now reaches the client as a failure, never as a
         * clean end, and is never retried. */
        release_key(r, error ? SKIFF_FAULT_TRANSIENT : SKIFF_FAULT_NONE, -1, error);
        if (error) {
            if (r->sse) {
                char msg[400];
                snprintf(msg, sizeof msg, "the upstream stream broke after it had started: %s",
                         error);
                char *body = skiff_gerr_body(502, "UNAVAILABLE", msg, NULL, 0);
                if (body) {
                    skiff_http_write(r->req, body, strlen(body));
                    free(body);
                }
            }
            skiff_http_abort(r->req, error);
        } else {
            skiff_http_end(r->req);
        }
        relay_done(r);
        return;
    }

    if (!error && !r->stream_failed && r->up_status == 200 && is_stream(r) &&
        r->scanned < r->body.len) {
        /* The stream ended inside the hold: judge what is left as its last unit (a raw
         * error object has no blank line after it). */
        judge_tail(r);
    }
    struct skiff_verdict v;
    if (r->stream_failed) {
        v = r->stream_verdict;
    } else if (error) {
        /* Kept for give_up's message, cut as the 256-byte array it replaces cut it. */
        free(r->last_error);
        r->last_error = strndup(error, 255);
        memset(&v, 0, sizeof v);
        v.fault = SKIFF_FAULT_TRANSIENT;
        v.retry_delay_s = -1;
        snprintf(v.reason, sizeof v.reason, "%s", error);
        r->up_status = 0;
    } else {
        char ra[32];
        skiff_classify(r->up_status, r->body.data, r->body.len,
                       upstream_header(r, "retry-after", ra, sizeof ra), &v);
        if (v.fault == SKIFF_FAULT_NONE && r->up_status == 200 && !is_stream(r)) {
            int64_t t = scan_tokens(r->body.data ? r->body.data : "", r->body.len);
            if (t >= 0)
                r->tokens = t;
        }
    }
    if (skiff_fault_needs_probe(v.fault)) {
        confirm_key(r, &v); /* releases the key and goes on once the probe tells */
        return;
    }
    release_key(r, v.fault, v.retry_delay_s, v.reason);

    r->timed_out_sent = is_first_byte_timeout(error);
    if (r->timed_out_sent && !r->retry_timeouts) {
        /* The upstream may be generating the answer still: another attempt could pay for
         * it twice. Only the client can say that is fine (x-skiff-retry-timeouts: on). */
        log_attempt(r, 0, &v, "answer: the upstream may still be generating", -1);
        give_up(r);
        return;
    }
    if (v.fault == SKIFF_FAULT_NONE && retry_recitation(r))
        return;
    if (v.fault == SKIFF_FAULT_NONE) {
        if (is_stream(r) && r->up_status == 200) {
            /* The stream ended while still held (no content unit): pass it on as it is. */
            commit_stream(r);
            skiff_http_end(r->req);
            relay_done(r);
            return;
        }
        forward_answer(r);
        return;
    }
    after_failure(r, &v);
}

static const struct skiff_upcall_ops upcall_ops = {
    .on_status = on_status,
    .on_body = on_body,
    .on_done = on_done,
};

/* ---- the upstream request ------------------------------------------------------------- */

static void
launch(struct relay *r, int key)
{
    struct skiff_request *req = r->req;
    const struct skiff_config *cfg = r->w->cfg;
    r->key = key;
    r->last_key = key;
    r->attempts++;
    r->model_attempts++;
    r->up_status = 0;
    r->stream_failed = 0;
    r->tokens = 0;
    free(r->last_error);
    r->last_error = NULL;
    skiff_buf_reset(&r->up_headers);
    skiff_buf_release(&r->body);

    /* What goes upstream is built in one place (uprequest.c), from allowlists. */
    struct skiff_uprequest u;
    int built = skiff_uprequest_build(&u, cfg, req, &r->route, &r->query, model_of(r),
                                      skiff_keypool_secret(r->w->sh->pool, key));
    if (built) {
        release_key(r, SKIFF_FAULT_TRANSIENT, -1, "could not build the request");
        relay_decorate(r);
        skiff_gerr_respond(req, 500, NULL,
                           built == SKIFF_EINVAL
                               ? "skiff could not build the upstream request: the model name is "
                                 "not one (check the fallbacks in the configuration)"
                               : "skiff could not build the upstream request (out of memory)",
                           NULL);
        relay_done(r);
        return;
    }

    int64_t left = r->deadline_ms - skiff_now_ms();
    struct skiff_upcall_opts o = {
        .method = strcmp(req->method, "POST") == 0 ? "POST" : "GET",
        .url = u.url,
        .headers = u.headers,
        .body = r->rewritten ? r->rewritten : req->body,
        .body_len = r->rewritten ? r->rewritten_len : req->body_len,
        .proxy = cfg->proxy,
        .ca_file = cfg->ca_file,
        .connect_timeout_ms = cfg->retry.connect_timeout_ms < left ? cfg->retry.connect_timeout_ms
                                                                   : (long)(left > 1 ? left : 1),
        .first_byte_timeout_ms = first_byte_timeout(r),
        /* No deadline cuts a call in flight: a non-stream body that stalls after its first
         * byte is bounded by the first-byte timeout between pieces. */
        .idle_timeout_ms = is_stream(r) ? cfg->retry.stream_idle_timeout_ms : first_byte_timeout(r),
        .ops = &upcall_ops,
        .data = r,
    };
    r->call = skiff_upcall_start(r->w->up, &o);
    /* Both transports copy the url and headers in skiff_upcall_start: the key's bytes are
     * wiped, and the buffer goes (the next attempt builds it anew; a stream holds none). */
    skiff_uprequest_wipe(&u);
    if (!r->call) {
        release_key(r, SKIFF_FAULT_TRANSIENT, -1, "could not start a call");
        relay_decorate(r);
        skiff_gerr_respond(req, 500, NULL, "skiff could not start an upstream call", NULL);
        relay_done(r);
    }
}

/* ---- client side ---------------------------------------------------------------------- */

static void
on_abort(struct skiff_request *req)
{
    struct relay *r = req->data;
    if (!r)
        return;
    r->req = NULL;
    relay_done(r); /* cancels the upstream call: no orphan keeps burning quota */
}

static void
on_drain(struct skiff_request *req)
{
    struct relay *r = req->data;
    if (r && r->call)
        skiff_upcall_resume(r->call);
}

/* The models to try: the asked one, then its configured fallbacks (unless turned off). */
static void
plan_chain(struct relay *r)
{
    const struct skiff_config *cfg = r->w->cfg;
    r->nchain = 1;
    size_t fl;
    const char *off = skiff_http_header(r->req, "x-skiff-fallback", &fl);
    int allowed = !(off && fl == 3 && strncasecmp(off, "off", 3) == 0) &&
                  (r->route.method == SKIFF_M_GENERATE || r->route.method == SKIFF_M_STREAM);
    for (size_t i = 0; allowed && i < cfg->nfallbacks; i++) {
        if (strcmp(cfg->fallbacks[i].model, r->chain[0]) != 0)
            continue;
        /* Borrowed: config names are at most 128 characters (check_model), so this is what
         * copying them into 129-byte slots gave, and the config outlives every relay. */
        for (size_t j = 0; j < cfg->fallbacks[i].nchain && r->nchain < MAX_CHAIN; j++)
            r->chain[r->nchain++] = cfg->fallbacks[i].chain[j];
    }
    /* Each model gets its share of the attempts; the last one gets what is left. */
    r->share = cfg->retry.max_attempts / r->nchain;
    if (r->share < 1)
        r->share = 1;
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

/* The path for a message: bytes that are not printable ASCII become %XX, so that the JSON
 * body (which must be UTF-8) keeps its message whatever the client sent. */
static void
printable_path(const struct skiff_request *req, char *out, size_t outlen)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (size_t i = 0; i < req->path_len && i < 100 && o + 4 <= outlen; i++) {
        unsigned char c = (unsigned char)req->path[i];
        if (c > 0x20 && c < 0x7f) {
            out[o++] = (char)c;
        } else {
            out[o++] = '%';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    out[o] = '\0';
}

/* Whether the path starts with lit. */
static int
path_is(const struct skiff_request *req, const char *lit)
{
    size_t n = strlen(lit);
    return req->path_len >= n && memcmp(req->path, lit, n) == 0;
}

/* Whether the path holds lit anywhere. */
static int
path_has(const struct skiff_request *req, const char *lit)
{
    size_t n = strlen(lit);
    for (size_t i = 0; i + n <= req->path_len; i++)
        if (memcmp(req->path + i, lit, n) == 0)
            return 1;
    return 0;
}

/*
 * The dispatch rule for GET /v1/models (and /v1/models/{id}), a path both Gemini's v1 and
 * OpenAI's API claim: a request that carries a Gemini credential (x-goog-api-key or ?key=)
 * or the Gemini SDKs' x-goog-api-client is Gemini's; one with Authorization: Bearer and
 * none of those is an OpenAI client's. /v1beta is Gemini's alone.
 */
static int
openai_style(const struct skiff_request *req, const struct skiff_route *rt)
{
    size_t n;
    char q[8];
    if (!rt->version || strcmp(rt->version, "v1") != 0 ||
        (rt->kind != SKIFF_ROUTE_MODELS && rt->kind != SKIFF_ROUTE_MODEL))
        return 0;
    if (skiff_http_header(req, "x-goog-api-key", &n) ||
        skiff_http_header(req, "x-goog-api-client", &n) ||
        skiff_http_query(req, "key", q, sizeof q) >= 0)
        return 0;
    const char *a = skiff_http_header(req, "authorization", &n);
    return a && n >= 7 && strncasecmp(a, "Bearer ", 7) == 0;
}

static const char openai_msg[] =
    "skiff does not serve the OpenAI API yet (its OpenAI door is not built): %s is an OpenAI "
    "path. The Gemini API is at /v1beta/models/{model}:generateContent (and "
    "streamGenerateContent, countTokens, embedContent, batchEmbedContents; GET /v1beta/models "
    "lists the models), called with x-goog-api-key";

/*
 * The message of a 404 for a path skiff does not serve: what the path is (an OpenAI path, a
 * Gemini family skiff does not relay yet) or the nearest path it serves, by edit distance
 * over the served shapes with the model the path names.
 */
static void
no_route_message(const struct skiff_request *req, char *msg, size_t msglen)
{
    static const char serves[] = "skiff serves /v1beta/models/{model}:{method} (generateContent, "
                                 "streamGenerateContent, countTokens, embedContent, "
                                 "batchEmbedContents), /v1beta/models and /v1beta/models/{model}, "
                                 "and the same under /v1";
    static const struct {
        const char *part, *what;
    } families[] = {
        {"/files", "files (the Files API)"},
        {"/cachedContents", "cachedContents (context caching)"},
        {"/batches", "batches"},
        {"/operations", "operations"},
        {"/tunedModels", "tunedModels"},
        {"/corpora", "corpora"},
        {"/fileSearchStores", "fileSearchStores"},
        {"/openai/", "Google's OpenAI-compatible endpoint (/v1beta/openai/)"},
        {":batchGenerateContent", ":batchGenerateContent (batch mode)"},
        {":asyncBatchEmbedContent", ":asyncBatchEmbedContent (batch mode)"},
        {":predictLongRunning", ":predictLongRunning (Veo)"},
        {":predict", ":predict (Imagen)"},
    };
    char path[304];
    printable_path(req, path, sizeof path);
    if (path_is(req, "/v1/chat/") || path_is(req, "/v1/completions") ||
        path_is(req, "/v1/embeddings") || path_is(req, "/v1/responses") ||
        path_is(req, "/v1/images/") || path_is(req, "/v1/audio/") || path_is(req, "/chat/") ||
        path_is(req, "/openai/")) {
        snprintf(msg, msglen, openai_msg, path);
        return;
    }
    int gemini = path_is(req, "/v1beta/") || path_is(req, "/v1/") || path_is(req, "/v1alpha/") ||
                 path_is(req, "/upload/");
    for (size_t i = 0; gemini && i < sizeof families / sizeof families[0]; i++) {
        if (path_has(req, families[i].part)) {
            snprintf(msg, msglen,
                     "skiff has no route for %s: %s %s not relayed by skiff yet, only model "
                     "calls are; %s",
                     path, families[i].what, families[i].part[0] == ':' ? "is" : "are", serves);
            return;
        }
    }
    if (path_is(req, "/v1alpha/")) {
        snprintf(msg, msglen, "skiff has no route for %s: /v1alpha is not relayed by skiff yet; %s",
                 path, serves);
        return;
    }
    /* The model the path names: its last segment, before any ':'. */
    const char *p = req->path, *end = req->path + req->path_len;
    const char *seg = p;
    for (const char *c = p; c < end; c++)
        if (*c == '/')
            seg = c + 1;
    const char *colon = memchr(seg, ':', (size_t)(end - seg));
    size_t mlen = (size_t)((colon ? colon : end) - seg);
    char model[72] = "{model}";
    if (mlen && mlen < sizeof model && skiff_model_name_ok(seg, mlen))
        snprintf(model, sizeof model, "%.*s", (int)mlen, seg);
    static const char *const versions[] = {"v1beta", "v1"};
    static const char *const methods[] = {"generateContent", "streamGenerateContent", "countTokens",
                                          "embedContent", "batchEmbedContents"};
    char best[160] = "", cand[160];
    size_t best_d = SIZE_MAX;
    for (size_t v = 0; v < 2; v++) {
        for (size_t m = 0; m < 7; m++) {
            int n;
            if (m == 0)
                n = snprintf(cand, sizeof cand, "/%s/models", versions[v]);
            else if (m == 1)
                n = snprintf(cand, sizeof cand, "/%s/models/%s", versions[v], model);
            else
                n = snprintf(cand, sizeof cand, "/%s/models/%s:%s", versions[v], model,
                             methods[m - 2]);
            size_t d = skiff_edit_distance(req->path, req->path_len, cand, (size_t)n);
            if (d < best_d) {
                best_d = d;
                snprintf(best, sizeof best, "%s", cand);
            }
        }
    }
    size_t d = skiff_edit_distance(req->path, req->path_len, "/healthz", 8);
    if (d < best_d) {
        best_d = d;
        snprintf(best, sizeof best, "/healthz");
    }
    /* A likely typo: at most one edit per three bytes of the served path, and eight in all. */
    if (best_d && best_d <= 8 && best_d * 3 <= strlen(best))
        snprintf(msg, msglen, "skiff has no route for %s: did you mean %s? (%s)", path, best,
                 serves);
    else
        snprintf(msg, msglen, "skiff has no route for %s: %s", path, serves);
}

/* Answers what the route alone decides (no route, wrong method); returns 1 when it did. */
static int
refuse_route(struct skiff_request *req, const struct skiff_route *rt)
{
    if (rt->kind == SKIFF_ROUTE_NONE) {
        char msg[1024];
        no_route_message(req, msg, sizeof msg);
        early_error(req, rt, 404, msg);
        return 1;
    }
    if (openai_style(req, rt)) {
        char msg[768], path[304];
        printable_path(req, path, sizeof path);
        snprintf(msg, sizeof msg, openai_msg, path);
        early_error(req, rt, 404, msg);
        return 1;
    }
    if (rt->kind == SKIFF_ROUTE_BAD_MODEL) {
        bad_model(req, rt);
        return 1;
    }
    if (!rt->http_method_ok) {
        skiff_http_add_header(req, "allow", rt->kind == SKIFF_ROUTE_GENERATE ? "POST" : "GET");
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
 * CORS (config cors.origins), first thing in the head hook: a preflight (OPTIONS with Origin
 * and Access-Control-Request-Method) carries no token, so it is answered here, before auth:
 * 204 with the methods and headers the SDKs send when its Origin is listed, 403 without any
 * CORS header when not. Every other answer to a listed Origin (errors included, whatever
 * answers later) carries Access-Control-Allow-Origin and the exposed headers, added to the
 * response headers now. Returns 1 when it answered.
 */
static int
cors(const struct skiff_config *cfg, struct skiff_request *req)
{
    if (!cfg->ncors_origins)
        return 0;
    /* The answer depends on Origin, so caches must key on it. */
    skiff_http_add_header(req, "vary", "Origin");
    char buf[256];
    const char *allow = skiff_auth_cors(cfg, req, buf, sizeof buf);
    size_t n, on;
    const char *origin = skiff_http_header(req, "origin", &on);
    int preflight = strcmp(req->method, "OPTIONS") == 0 && origin &&
                    skiff_http_header(req, "access-control-request-method", &n);
    if (preflight && !allow) {
        char msg[512], q[100];
        size_t o = 0;
        for (size_t i = 0; i < on && o + 1 < sizeof q && i < 80; i++)
            q[o++] = origin[i] > 0x20 && origin[i] < 0x7f && origin[i] != '"' && origin[i] != '\\'
                         ? origin[i]
                         : '?';
        q[o] = '\0';
        snprintf(msg, sizeof msg,
                 "the origin \"%s\" may not call skiff from a browser: it is not listed in the "
                 "config's cors.origins (add it there, as scheme://host[:port])",
                 q);
        early_error(req, NULL, 403, msg);
        return 1;
    }
    if (preflight) {
        /* Open mode's Host rule holds for preflights too (a listed origin passes its Origin
         * rule: without tokens the config lists only loopback origins). */
        char msg[640];
        int code = skiff_auth_open_check(cfg, req, msg, sizeof msg);
        if (code) {
            early_error(req, NULL, code, msg);
            return 1;
        }
    }
    if (!allow)
        return 0;
    skiff_http_add_header(req, "access-control-allow-origin", allow);
    skiff_http_add_header(req, "access-control-expose-headers",
                          "x-skiff-attempts, x-skiff-model, x-skiff-key, x-skiff-hint, "
                          "x-skiff-finish, x-request-id, server-timing, x-goog-upload-url, "
                          "x-goog-upload-status");
    if (!preflight)
        return 0;
    skiff_http_add_header(req, "access-control-allow-methods", "GET, POST, DELETE, PATCH");
    skiff_http_add_header(req, "access-control-allow-headers",
                          "x-goog-api-key, x-goog-api-client, content-type, authorization, "
                          "x-goog-upload-protocol, x-goog-upload-command, "
                          "x-goog-upload-offset, x-goog-upload-header-content-length, "
                          "x-goog-upload-header-content-type, x-goog-upload-file-name, "
                          "x-skiff-deadline-ms, x-skiff-fallback, x-skiff-retry-timeouts, "
                          "x-server-timeout, x-request-id, traceparent, tracestate");
    skiff_http_add_header(req, "access-control-max-age", "600");
    const char *pna = skiff_http_header(req, "access-control-request-private-network", &n);
    if (pna && n == 4 && strncasecmp(pna, "true", 4) == 0)
        skiff_http_add_header(req, "access-control-allow-private-network", "true");
    skiff_http_respond(req, 204, NULL, NULL, 0);
    return 1;
}

/*
 * The server's on_head hook: what the head alone decides (route, method, open mode's
 * Host/Origin rule, the client's token) is answered before the body is read, so a client
 * without a token costs no body memory. skiff_relay_handle checks the same again.
 */
void
skiff_relay_head(struct skiff_request *req, void *worker)
{
    struct relay_worker *w = worker;
    if (cors(w->cfg, req))
        return;
    struct skiff_route rt;
    skiff_route(req->method, req->path, req->path_len, &rt);
    if (refuse_route(req, &rt))
        return;
    if (rt.kind == SKIFF_ROUTE_HEALTH) {
        char msg[640];
        int code = skiff_auth_open_check(w->cfg, req, msg, sizeof msg);
        if (code)
            early_error(req, &rt, code, msg);
        return;
    }
    const char *who;
    refuse_client(w->cfg, req, &rt, &who);
}

void
skiff_relay_handle(struct skiff_request *req, void *worker)
{
    struct relay_worker *w = worker;
    const struct skiff_config *cfg = w->cfg;
    struct skiff_route rt;
    skiff_route(req->method, req->path, req->path_len, &rt);

    if (refuse_route(req, &rt))
        return;
    if (rt.kind == SKIFF_ROUTE_HEALTH) {
        /* Healthy while at least one key can serve; load balancers take the rest. */
        size_t usable = skiff_keypool_usable(w->sh->pool);
        char body[128];
        int n =
            snprintf(body, sizeof body, "{\"status\":\"%s\",\"keys\":%zu,\"usable_keys\":%zu}\n",
                     usable ? "ok" : "unavailable", skiff_keypool_size(w->sh->pool), usable);
        decorate(req, 0, NULL, NULL);
        skiff_http_respond(req, usable ? 200 : 503, "application/json", body, (size_t)n);
        return;
    }

    const char *who;
    if (refuse_client(cfg, req, &rt, &who))
        return;
    if (skiff_keypool_size(w->sh->pool) == 0) {
        early_error(req, &rt, 503,
                    "skiff has no upstream key: set GEMINI_API_KEYS or upstreams.gemini.keys");
        return;
    }
    struct skiff_upquery query;
    char qmsg[256];
    if (skiff_upquery_parse(req->query, req->query_len, &rt, &query, qmsg, sizeof qmsg)) {
        refuse_with(req, &rt, 400, "INVALID_ARGUMENT", qmsg, NULL);
        return;
    }
    if (rt.kind == SKIFF_ROUTE_GENERATE) {
        size_t off;
        const char *why;
        if (skiff_json_check(req->body, req->body_len, &off, &why)) {
            char msg[256];
            snprintf(msg, sizeof msg,
                     "Invalid JSON payload received. %s at byte %zu of the request body.",
                     req->body_len ? why : "The body is empty", off);
            early_error(req, &rt, 400, msg);
            return;
        }
    }

    if (rt.kind == SKIFF_ROUTE_GENERATE && cfg->validation) {
        struct skiff_violation v;
        if (skiff_validate(w->sh->cat, rt.version, rt.model, rt.model_len, rt.method, req->body,
                           req->body_len, &v)) {
            refuse_with(req, &rt, v.status, v.gstatus, v.message, skiff_violation_details(&v));
            return;
        }
    }

    /* The asked model lives in r->asked, cut to MAX_ASKED_MODEL bytes; "models" without one. */
    size_t asked_len = rt.model ? (rt.model_len < MAX_ASKED_MODEL ? rt.model_len : MAX_ASKED_MODEL)
                                : sizeof "models" - 1;
    struct relay *r = calloc(1, sizeof *r + asked_len + 1);
    if (!r) {
        early_error(req, &rt, 500, "out of memory");
        return;
    }
    r->req = req;
    r->w = w;
    r->route = rt;
    r->query = query;
    r->key = -1;
    r->last_key = -1;
    memcpy(r->asked, rt.model ? rt.model : "models", asked_len); /* calloc'd: NUL-terminated */
    r->chain[0] = r->asked;
    plan_chain(r);
    if (rt.method == SKIFF_M_GENERATE || rt.method == SKIFF_M_STREAM)
        r->rewritten = skiff_thinking_apply(cfg, w->sh->cat, who, rt.version, r->chain[0],
                                            req->body, req->body_len, &r->rewritten_len);
    r->sse = is_stream(r) && query.alt == SKIFF_ALT_SSE; /* what goes upstream: one reading */
    if (cfg->quality.repetition_guard && r->sse) {
        r->guard = calloc(1, sizeof *r->guard);
        if (r->guard)
            skiff_repguard_init(r->guard);
    }
    skiff_stream_scan_init(&r->scan, r->sse);
    skiff_stream_scan_init(&r->guard_scan, 1);
    skiff_buf_init(&r->carry, 1024 * 1024);
    skiff_buf_init(&r->up_headers, 64 * 1024);
    skiff_buf_init(&r->body, MAX_UPSTREAM_ERROR);
    uv_timer_init(w->loop, &r->deadline_timer);
    uv_timer_init(w->loop, &r->wait_timer);
    r->deadline_timer.data = r;
    r->wait_timer.data = r;
    r->handles_open = 2;

    /* The client's deadline is a hard limit on the whole answer, and shortens skiff's own
     * (which bounds waits and retries) when it is shorter. */
    r->deadline_total_ms = cfg->retry.deadline_ms;
    size_t dl;
    const char *d = skiff_http_header(req, "x-skiff-deadline-ms", &dl);
    if (d) {
        long v = strtol(d, NULL, 10);
        if (v > 0)
            r->hard_total_ms = v < 86400000 ? (int)v : 86400000;
        if (r->hard_total_ms && r->hard_total_ms <= r->deadline_total_ms) {
            r->deadline_total_ms = r->hard_total_ms;
            r->hard_armed = 1;
        }
    }
    const char *rt_on = skiff_http_header(req, "x-skiff-retry-timeouts", &dl);
    r->retry_timeouts = rt_on && dl == 2 && strncasecmp(rt_on, "on", 2) == 0;
    r->deadline_ms = skiff_now_ms() + r->deadline_total_ms;
    uv_timer_start(&r->deadline_timer, on_deadline, (uint64_t)r->deadline_total_ms, 0);

    req->data = r;
    req->on_abort = on_abort;
    req->on_drain = on_drain;
    skiff_budget_deposit(w->sh->budget, skiff_now_ms());
    next_attempt(r);
}

void *
skiff_relay_worker_init(uv_loop_t *loop, int index, void *shared)
{
    const struct skiff_relay_shared *sh = shared;
    struct relay_worker *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    w->sh = sh;
    w->cfg = sh->cfg;
    w->loop = loop;
    w->up = skiff_upstream_new(loop);
    if (!w->up) {
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
skiff_relay_worker_fini(void *worker)
{
    struct relay_worker *w = worker;
    if (!w)
        return;
    skiff_upstream_close(w->up);
    free(w);
}
