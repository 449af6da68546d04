/*
 * One client request through the relay:
 *
 *   handle: route -> auth -> body check -> plan (model chain, deadline)
 *   next_attempt: key = keypool_acquire(model)   (none: wait for one, fall back, or 429)
 *   launch: upstream call with that key
 *     on_status / on_body: a stream is held until its first event with content, then
 *                          forwarded as it comes; anything else is buffered
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

#include "auth.h"
#include "buf.h"
#include "clock.h"
#include "gemini/classify.h"
#include "gemini/diagnose.h"
#include "gemini/error.h"
#include "gemini/hint.h"
#include "gemini/stream.h"
#include "gemini/validate.h"
#include "jsoncheck.h"
#include "num.h"
#include "obs/log.h"
#include "relay/budget.h"
#include "relay/upstream.h"
#include "router.h"

#define MAX_UPSTREAM_BODY (256u * 1024 * 1024) /* a whole non-stream answer */
#define MAX_UPSTREAM_ERROR (1024u * 1024)      /* an error body we may need to read */
#define MAX_HOLD (4u * 1024 * 1024)            /* stream bytes held before the first content */
#define STREAM_HIGH_WATER (1024u * 1024)       /* pause the upstream above this */
#define MAX_CHAIN 8                            /* models in a fallback chain */
#define MAX_ASKED_MODEL 128                    /* the asked model is cut to this many bytes */

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
    /* The asked model (asked[] below), then its fallbacks: the configuration's own strings,
     * which outlive every request (the config is freed only after the server is). */
    const char *chain[MAX_CHAIN];
    int nchain;
    int model_i;          /* the model being tried */
    int attempts;         /* upstream calls made */
    int model_attempts;   /* calls made on the current model */
    int share;            /* calls each model gets before the next one is tried */
    uint64_t keys_used;   /* a bit per key tried (first 64), for the hint */
    int key;              /* the key held by the call in flight, or -1 */
    int last_key;         /* the key of the latest call (for the headers and logs), or -1 */
    int64_t deadline_ms;  /* Unix ms */
    int deadline_total_ms;
    uv_timer_t deadline_timer, wait_timer;
    int handles_open;
    struct skiff_upcall *call;
    int up_status;
    struct skiff_buf up_headers;
    struct skiff_buf body; /* a buffered upstream body, or a held stream prefix */
    size_t scanned;        /* how much of a held stream has been judged */
    int started;           /* the client's response has begun */
    int sse;               /* a stream in the SSE form (?alt=sse) */
    int stream_failed;     /* a held stream turned out to be an error or empty */
    struct skiff_verdict stream_verdict; /* what a held stream that failed amounted to */
    int stream_error_code;
    int64_t tokens;
    char *last_error;      /* a transport failure of the last call (owned), or NULL */
    struct skiff_buf scratch;
    struct skiff_repguard *guard; /* quality.repetition_guard on an SSE stream, else NULL */
    int recited;                  /* a RECITATION answer was already retried */
    struct skiff_buf carry;       /* the guard's part of an event not yet complete */
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
refuse_with(struct skiff_request *req, const struct skiff_route *rt, int code,
            const char *status, const char *message, json_t *details)
{
    char model[129] = "";
    if (rt && rt->model)
        snprintf(model, sizeof model, "%.*s", (int)rt->model_len, rt->model);
    decorate(req, 0, model, NULL);
    skiff_gerr_respond(req, code, status, message, details);
}

static void
early_error(struct skiff_request *req, const struct skiff_route *rt, int code,
            const char *message)
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

/* One "name: value" line of the upstream's header block (upstream.c stores CRLF lines). */
struct hline {
    const char *name, *value;
    size_t name_len, value_len;
};

/* The next header line at *p (before end), advancing *p; 0 at the end of the block. */
static int
next_header(const char **p, const char *end, struct hline *h)
{
    while (*p && *p < end) {
        const char *line = *p;
        const char *lf = memchr(line, '\n', (size_t)(end - line));
        if (!lf || lf == line)
            return 0;
        *p = lf + 1;
        const char *eol = lf[-1] == '\r' ? lf - 1 : lf;
        const char *colon = memchr(line, ':', (size_t)(eol - line));
        if (!colon)
            continue;
        const char *v = colon + 1;
        while (v < eol && (*v == ' ' || *v == '\t'))
            v++;
        *h = (struct hline){line, v, (size_t)(colon - line), (size_t)(eol - v)};
        return 1;
    }
    return 0;
}

/* Whether name[0..n) is one of list (NULL-terminated), ignoring case. */
static int
name_in(const char *name, size_t n, const char *const *list)
{
    for (; *list; list++)
        if (strnlen(*list, n + 1) == n && strncasecmp(*list, name, n) == 0)
            return 1;
    return 0;
}

/* Copies the upstream's headers that make sense to a client. */
static void
forward_headers(struct relay *r)
{
    const char *p = r->up_headers.data, *end = p + r->up_headers.len;
    struct hline h;
    while (next_header(&p, end, &h)) {
        /* content-type goes with the status; server, date, ids and x-skiff-* are ours. */
        static const char *const ours[] = {"content-type", "server", "date", "x-request-id",
                                           NULL};
        if (!name_in(h.name, h.name_len, ours) &&
            !(h.name_len >= 8 && strncasecmp(h.name, "x-skiff-", 8) == 0))
            skiff_http_add_headern(r->req, h.name, h.name_len, h.value, h.value_len);
    }
}

/* A header of the upstream's answer into out, or NULL. */
static const char *
upstream_header(const struct relay *r, const char *name, char *out, size_t outlen)
{
    size_t nl = strlen(name);
    const char *p = r->up_headers.data, *end = p + r->up_headers.len;
    struct hline h;
    while (next_header(&p, end, &h)) {
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
    const char *ct = upstream_header(r, "content-type", out, outlen);
    return ct ? ct : "application/json; charset=UTF-8";
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
    skiff_buf_release(&r->scratch);
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
        snprintf(msg, sizeof msg, "the upstream answered %d after %d attempt%s with a body that "
                                  "is not a Google error (%s, %zu bytes): %s", r->up_status,
                 r->attempts, r->attempts == 1 ? "" : "s", content_type(r, ct, sizeof ct),
                 r->body.len, sample);
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

/* Gives up: the last upstream error as it came, or skiff's own when there was none. */
static void
give_up(struct relay *r)
{
    if (r->up_status && !r->stream_failed) {
        forward_answer(r);
        return;
    }
    char msg[512];
    const char *last_error = r->last_error ? r->last_error : "";
    int timeout = strstr(last_error, "timed out") || strstr(last_error, "idle timeout");
    if (r->stream_failed)
        snprintf(msg, sizeof msg, "the upstream's stream failed before any content after %d "
                                  "attempt%s: %s", r->attempts, r->attempts == 1 ? "" : "s",
                 r->stream_verdict.reason);
    else
        snprintf(msg, sizeof msg, "skiff could not get an answer from the upstream (%s) after %d "
                                  "attempt%s: %s", r->w->cfg->base_url, r->attempts,
                 r->attempts == 1 ? "" : "s", last_error);
    relay_decorate(r);
    int code = timeout ? 504 : r->stream_failed && r->stream_error_code >= 400 ? r->stream_error_code : 502;
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
        snprintf(msg, sizeof msg, "no key in skiff's pool can serve %s: every key is retired for "
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
    snprintf(msg, sizeof msg, "every key in skiff's pool is resting for %s (quota exhausted); "
                              "the first comes back in %.0fs. Please retry then.",
             model_of(r), wait_s < 1 ? 1 : wait_s);
    json_t *details = json_array();
    json_array_append_new(details, skiff_gerr_retry_info(wait_s));
    json_array_append_new(details, skiff_gerr_help("Learn more about Gemini API quotas",
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
    for (;;) {
        int64_t now = skiff_now_ms(), back_at;
        int key = skiff_keypool_acquire(r->w->sh->pool, model_of(r), now, &back_at);
        if (key >= 0) {
            launch(r, key);
            return;
        }
        int64_t left = r->deadline_ms - now;
        int64_t max_wait = r->w->cfg->retry.max_wait_ms < left ? r->w->cfg->retry.max_wait_ms : left;
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

static void
on_deadline(uv_timer_t *t)
{
    struct relay *r = t->data;
    if (r->call) {
        skiff_upcall_cancel(r->call);
        r->call = NULL;
        release_key(r, SKIFF_FAULT_TRANSIENT, -1, "deadline");
    }
    char msg[256];
    snprintf(msg, sizeof msg, "skiff's deadline of %d ms passed after %d attempt%s; raise "
                              "retry.deadline_ms or x-skiff-deadline-ms, or shorten the prompt",
             r->deadline_total_ms, r->attempts, r->attempts == 1 ? "" : "s");
    struct skiff_log l;
    skiff_log_begin(&l, SKIFF_LOG_WARN, "deadline");
    skiff_log_str(&l, "id", r->req->id);
    skiff_log_int(&l, "ms", r->deadline_total_ms);
    skiff_log_end(&l);
    if (r->started) {
        if (r->sse) {
            char *body = skiff_gerr_body(504, NULL, msg, NULL, 0);
            if (body) {
                skiff_http_write(r->req, body, strlen(body));
                free(body);
            }
        }
        skiff_http_abort(r->req, "deadline passed mid-stream");
    } else {
        relay_decorate(r);
        skiff_gerr_respond(r->req, 504, NULL, msg, NULL);
    }
    relay_done(r);
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
    skiff_buf_init(&r->body, status != 200 ? MAX_UPSTREAM_ERROR
                             : is_stream(r) ? MAX_HOLD : MAX_UPSTREAM_BODY);
    r->scanned = 0;
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
        size_t end = skiff_stream_unit_end(r->body.data + r->scanned, r->body.len - r->scanned,
                                           r->sse);
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
        return SKIFF_REP_NONE;
    }
    size_t off = 0, end;
    enum skiff_rep rep = SKIFF_REP_NONE;
    while (!rep && (end = skiff_stream_unit_end(r->carry.data + off, r->carry.len - off, 1))) {
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
    if (!r->w->cfg->quality.retry_recitation || r->recited || is_stream(r) ||
        r->up_status != 200 || r->attempts >= r->w->cfg->retry.max_attempts ||
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
                snprintf(msg, sizeof msg, "the upstream stream broke after it had started: %s", error);
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
    release_key(r, v.fault, v.retry_delay_s, v.reason);

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

/* Whether name is listed in the client's Connection header (hop-by-hop by declaration,
 * RFC 9110 7.6.1). */
static int
named_by_connection(const struct skiff_request *req, const char *name, size_t n)
{
    size_t len;
    const char *v = skiff_http_header(req, "connection", &len);
    const char *end = v ? v + len : NULL;
    while (v && v < end) {
        while (v < end && (*v == ' ' || *v == ','))
            v++;
        const char *t = v;
        while (v < end && *v != ',' && *v != ' ')
            v++;
        if ((size_t)(v - t) == n && strncasecmp(t, name, n) == 0)
            return 1;
    }
    return 0;
}

/* Request headers that stay here: hop-by-hop ones, the client's credentials, skiff's own
 * controls, and what libcurl sets itself. Everything else goes upstream as it came. */
static int
keep_header(const struct skiff_request *req, const struct skiff_header *h)
{
    if (named_by_connection(req, h->name, h->name_len))
        return 0;
    static const char *const drop[] = {
        "host", "connection", "keep-alive", "proxy-connection", "proxy-authorization", "te",
        "trailer", "transfer-encoding", "upgrade", "content-length", "expect",
        "x-goog-api-key", "authorization", "cookie", "accept-encoding", "x-request-id", NULL};
    if (name_in(h->name, h->name_len, drop))
        return 0;
    if (h->name_len >= 8 && strncasecmp(h->name, "x-skiff-", 8) == 0)
        return 0;
    return 1;
}

/* The query string without the client's `key` parameter. */
static void
add_query(struct skiff_buf *b, const struct skiff_request *req)
{
    const char *p = req->query, *end = req->query + req->query_len;
    int first = 1;
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *stop = amp ? amp : end;
        size_t n = (size_t)(stop - p);
        int is_key = (n >= 4 && memcmp(p, "key=", 4) == 0) || (n == 3 && memcmp(p, "key", 3) == 0);
        if (!is_key && n) {
            skiff_buf_add(b, first ? "?" : "&", 1);
            skiff_buf_add(b, p, n);
            first = 0;
        }
        p = stop + 1;
    }
}

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

    /* url, then each header, NUL-separated in scratch; pointers taken once it stops moving */
    struct skiff_buf *s = &r->scratch;
    skiff_buf_reset(s);
    skiff_buf_adds(s, cfg->base_url);
    if (r->route.kind == SKIFF_ROUTE_GENERATE) {
        skiff_buf_add(s, "/", 1);
        skiff_buf_adds(s, r->route.version);
        skiff_buf_adds(s, "/models/");
        skiff_buf_adds(s, model_of(r));
        skiff_buf_add(s, ":", 1);
        skiff_buf_adds(s, r->route.method_name);
    } else {
        skiff_buf_add(s, req->path, req->path_len);
    }
    add_query(s, req);
    size_t offs[SKIFF_MAX_HEADERS + 3];
    int n = 0, has_ct = 0;
    for (int i = 0; i < req->nheaders; i++) {
        const struct skiff_header *h = &req->headers[i];
        if (!keep_header(req, h))
            continue;
        if (h->name_len == 12 && strncasecmp(h->name, "content-type", 12) == 0)
            has_ct = 1;
        skiff_buf_add(s, "", 1);
        offs[n++] = s->len;
        skiff_buf_add(s, h->name, h->name_len);
        skiff_buf_add(s, ": ", 2);
        skiff_buf_add(s, h->value, h->value_len);
    }
    if (!has_ct && strcmp(req->method, "POST") == 0) {
        skiff_buf_add(s, "", 1);
        offs[n++] = s->len;
        skiff_buf_adds(s, "content-type: application/json");
    }
    skiff_buf_add(s, "", 1);
    offs[n++] = s->len;
    skiff_buf_adds(s, "x-goog-api-key: ");
    skiff_buf_adds(s, skiff_keypool_secret(r->w->sh->pool, key));

    const char *hdrs[SKIFF_MAX_HEADERS + 4];
    for (int i = 0; i < n; i++)
        hdrs[i] = s->data + offs[i];
    hdrs[n] = NULL;

    int64_t left = r->deadline_ms - skiff_now_ms();
    struct skiff_upcall_opts o = {
        .method = strcmp(req->method, "POST") == 0 ? "POST" : "GET",
        .url = s->data,
        .headers = hdrs,
        .body = r->rewritten ? r->rewritten : req->body,
        .body_len = r->rewritten ? r->rewritten_len : req->body_len,
        .proxy = cfg->proxy,
        .ca_file = cfg->ca_file,
        .connect_timeout_ms = cfg->retry.connect_timeout_ms < left ? cfg->retry.connect_timeout_ms
                                                                  : (long)(left > 1 ? left : 1),
        .first_byte_timeout_ms = cfg->retry.first_byte_timeout_ms,
        .idle_timeout_ms = is_stream(r) ? cfg->retry.stream_idle_timeout_ms : 0,
        /* A stream lives long and carries small events: a smaller buffer per open stream. */
        .recv_buffer = is_stream(r) ? 4096 : 0,
        .ops = &upcall_ops,
        .data = r,
    };
    r->call = skiff_upcall_start(r->w->up, &o);
    /* Both transports copy the url and headers in skiff_upcall_start: the key's bytes are
     * wiped, and the buffer goes (the next attempt builds it anew; a stream holds none). */
    memset(s->data, 0, s->len);
    skiff_buf_release(s);
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

void
skiff_relay_handle(struct skiff_request *req, void *worker)
{
    struct relay_worker *w = worker;
    const struct skiff_config *cfg = w->cfg;
    struct skiff_route rt;
    skiff_route(req->method, req->path, req->path_len, &rt);

    if (rt.kind == SKIFF_ROUTE_NONE) {
        char msg[256];
        snprintf(msg, sizeof msg,
                 "skiff has no route for %.*s: use /v1beta/models/{model}:{method} "
                 "(generateContent, streamGenerateContent, countTokens, embedContent, "
                 "batchEmbedContents) or /v1beta/models",
                 (int)(req->path_len > 100 ? 100 : req->path_len), req->path);
        early_error(req, &rt, 404, msg);
        return;
    }
    if (!rt.http_method_ok) {
        skiff_http_add_header(req, "allow", rt.kind == SKIFF_ROUTE_GENERATE ? "POST" : "GET");
        early_error(req, &rt, 405, "method not allowed on this path");
        return;
    }
    if (rt.kind == SKIFF_ROUTE_HEALTH) {
        /* Healthy while at least one key can serve; load balancers take the rest. */
        size_t usable = skiff_keypool_usable(w->sh->pool);
        char body[128];
        int n = snprintf(body, sizeof body, "{\"status\":\"%s\",\"keys\":%zu,\"usable_keys\":%zu}\n",
                         usable ? "ok" : "unavailable", skiff_keypool_size(w->sh->pool), usable);
        decorate(req, 0, NULL, NULL);
        skiff_http_respond(req, usable ? 200 : 503, "application/json", body, (size_t)n);
        return;
    }

    const char *who;
    switch (skiff_auth_check(cfg, req, &who)) {
    case SKIFF_AUTH_OK:
        break;
    case SKIFF_AUTH_MISSING:
        early_error(req, &rt, 401,
                    "skiff needs a client token: send it as the x-goog-api-key header (what the "
                    "Gemini SDKs do with apiKey), as ?key=, or as Authorization: Bearer");
        return;
    case SKIFF_AUTH_INVALID:
        early_error(req, &rt, 401,
                    "the client token is not one of skiff's tokens (config `tokens`, or "
                    "SKIFF_TOKENS); note that skiff expects its own token here, not a Gemini key");
        return;
    }
    if (skiff_keypool_size(w->sh->pool) == 0) {
        early_error(req, &rt, 503,
                    "skiff has no upstream key: set GEMINI_API_KEYS or upstreams.gemini.keys");
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
    r->key = -1;
    r->last_key = -1;
    memcpy(r->asked, rt.model ? rt.model : "models", asked_len); /* calloc'd: NUL-terminated */
    r->chain[0] = r->asked;
    plan_chain(r);
    if (rt.method == SKIFF_M_GENERATE || rt.method == SKIFF_M_STREAM)
        r->rewritten = skiff_thinking_apply(cfg, w->sh->cat, who, rt.version, r->chain[0],
                                            req->body, req->body_len, &r->rewritten_len);
    char alt[8];
    r->sse = is_stream(r) && skiff_http_query(req, "alt", alt, sizeof alt) == 3 &&
             strcmp(alt, "sse") == 0;
    if (cfg->quality.repetition_guard && r->sse) {
        r->guard = calloc(1, sizeof *r->guard);
        if (r->guard)
            skiff_repguard_init(r->guard);
    }
    skiff_buf_init(&r->carry, 1024 * 1024);
    skiff_buf_init(&r->up_headers, 64 * 1024);
    skiff_buf_init(&r->scratch, 128 * 1024);
    skiff_buf_init(&r->body, MAX_UPSTREAM_ERROR);
    uv_timer_init(w->loop, &r->deadline_timer);
    uv_timer_init(w->loop, &r->wait_timer);
    r->deadline_timer.data = r;
    r->wait_timer.data = r;
    r->handles_open = 2;

    /* The client may shorten the deadline, never lengthen it. */
    r->deadline_total_ms = cfg->retry.deadline_ms;
    size_t dl;
    const char *d = skiff_http_header(req, "x-skiff-deadline-ms", &dl);
    if (d) {
        long v = strtol(d, NULL, 10);
        if (v > 0 && v < r->deadline_total_ms)
            r->deadline_total_ms = (int)v;
    }
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
    w->up = skiff_upstream_new(loop, w->cfg->curl_only);
    if (w->up && !w->cfg->proxy)
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
