/*
 * Everything the engine answers with, through the door's ops: the upstream's errors (with the
 * guide's advice), skiff's own errors, whole successes. The x-skiff-* headers are added here,
 * before the op that answers, so that every door's answers carry them.
 */
#include "engine/call.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/clock.h"
#include "base/log.h"
#include "base/num.h"
#include "base/url.h"
#include "gemini/diagnose.h"
#include "gemini/error.h"
#include "gemini/hint.h"
#include "relay/keypool.h"

static void
decorate(struct skiff_request *req, int attempts, const char *model, const char *key_label)
{
    char n[20];
    skiff_http_add_headern(req, "x-skiff-attempts", 16, n,
                           skiff_fmt_uint(n, (uint64_t)(attempts > 0 ? attempts : 0), 10));
    skiff_http_add_header(req, "x-skiff-model", model && *model ? model : "none");
    skiff_http_add_header(req, "x-skiff-key", key_label ? key_label : "none");
}

/* The label of the key that made the last call (kept after release for the headers). */
void
call_decorate(struct call *c)
{
    decorate(c->req, c->attempts, call_model(c), call_label(c, c->last_key));
}

/* Copies the upstream's headers that make sense to a client (uprequest.h's allowlist), for a
 * door that passes the answer through. */
void
call_forward_head(struct call *c)
{
    if (c->forward_head)
        skiff_uprequest_forward_head(c->req, c->up_headers.data, c->up_headers.len, c->w->sh->pool);
}

/* A header of the upstream's answer into out, or NULL. */
const char *
call_upstream_header(const struct call *c, const char *name, char *out, size_t outlen)
{
    size_t nl = strlen(name);
    const char *p = c->up_headers.data, *end = p + c->up_headers.len;
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

const char *
call_content_type(const struct call *c, char *out, size_t outlen)
{
    return skiff_uprequest_content_type(c->up_headers.data, c->up_headers.len, c->w->sh->pool, out,
                                        outlen);
}

/* Hands an error to the door while nothing was sent (the headers are already added). */
static void
say_error(struct call *c, struct skiff_engine_error *e)
{
    e->sse = c->sse;
    e->model = call_model(c);
    c->ops->on_error(c->door, c->req, e);
}

void
call_fail(struct call *c, int code, const char *gstatus, const char *msg, const char *why)
{
    if (c->call) {
        skiff_upcall_cancel(c->call);
        c->call = NULL;
        call_release_key(c, SKIFF_FAULT_TRANSIENT, -1, why);
    }
    struct skiff_engine_error e = {
        .status = code,
        .gstatus = gstatus,
        .message = msg,
        .retry_after_s = -1,
        .after_start = c->started,
        .why = why,
    };
    if (!c->started)
        call_decorate(c);
    say_error(c, &e);
    if (c->started && c->req)
        skiff_http_abort(c->req, why);
    call_done(c);
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
 * answered as skiff's own error with a sample of what came, so clients can parse it.
 */
static void
answer_error(struct call *c)
{
    struct skiff_hint_ctx ctx = {
        .attempts = c->attempts,
        .keys_tried = popcount64(c->keys_used),
        .models_tried = c->model_i + 1,
        .deadline_ms = c->deadline_total_ms,
        .model = call_model(c),
        .input_bytes = c->req->body_len,
        .proxy_configured = c->w->cfg->proxy && *c->w->cfg->proxy,
        .override = c->key_cleared
                        ? "the upstream's refusal named the key, but a probe with the same key "
                          "succeeded: something this request refers to or sends (a file, cached "
                          "content or tuned model of another project, a header naming another "
                          "project) is not accessible with skiff's keys; no key was blamed and the "
                          "request was not re-sent"
                        : NULL,
    };
    char hint[512], ct[128], *body = NULL;
    size_t len = 0;
    int rc = skiff_hint_apply(c->up_status, c->body.data, c->body.len, &ctx, &body, &len, hint,
                              sizeof hint);
    call_decorate(c);
    if (hint[0])
        skiff_http_add_header(c->req, "x-skiff-hint", hint);
    struct skiff_engine_error e = {
        .status = c->up_status,
        .hint = hint[0] ? hint : NULL,
        .retry_after_s = c->up_status == 429 ? c->up_retry_s : -1,
        .why = "upstream error",
    };
    char msg[512];
    if (rc == 0) { /* not a Google error */
        char sample[121];
        size_t n = 0;
        for (size_t i = 0; i < c->body.len && n < sizeof sample - 1; i++) {
            unsigned char ch = (unsigned char)c->body.data[i];
            sample[n++] = ch >= 0x20 && ch < 0x7f ? (char)ch : ' ';
        }
        sample[n] = '\0';
        snprintf(msg, sizeof msg,
                 "the upstream answered %d after %d attempt%s with a body that "
                 "is not a Google error (%s, %zu bytes): %s",
                 c->up_status, c->attempts, c->attempts == 1 ? "" : "s",
                 call_content_type(c, ct, sizeof ct), c->body.len, sample);
        e.message = msg;
    } else {
        call_forward_head(c);
        e.body = rc == 1 ? body : (c->body.data ? c->body.data : "");
        e.body_len = rc == 1 ? len : c->body.len;
        e.content_type = call_content_type(c, ct, sizeof ct);
    }
    say_error(c, &e);
    free(body);
    call_done(c);
}

/* A response that ended for a reason worth knowing (SAFETY, RECITATION, a blocked prompt):
 * an x-skiff-finish header (when headers are still to go) and a log line. */
void
call_note_finish(struct call *c, const char *data, size_t len)
{
    struct skiff_finish f;
    if (!data || !skiff_diagnose_finish(data, len, &f))
        return;
    if (!c->started)
        skiff_http_add_header(c->req, "x-skiff-finish", f.header);
    struct skiff_log l;
    skiff_log_begin(&l, SKIFF_LOG_INFO, "finish");
    skiff_log_str(&l, "id", c->req->id);
    skiff_log_str(&l, "model", call_model(c));
    skiff_log_str(&l, "finish", f.header);
    skiff_log_str(&l, "advice", f.advice);
    skiff_log_end(&l);
}

/* Answers the last upstream answer: a success through on_body, an error via answer_error. */
void
call_forward_answer(struct call *c)
{
    if (c->up_status >= 400) {
        /* An upstream error may echo the key it was sent ("Invalid API key: ..."). */
        skiff_keypool_redact(c->w->sh->pool, c->body.data, c->body.len);
        answer_error(c);
        return;
    }
    char ct[128];
    call_decorate(c);
    call_forward_head(c);
    if (c->up_status == 200)
        call_note_finish(c, c->body.data, c->body.len);
    struct skiff_engine_answer a = {
        .status = c->up_status,
        .content_type = call_content_type(c, ct, sizeof ct),
        .body = c->body.data ? c->body.data : "",
        .len = c->body.len,
        .model = call_model(c),
    };
    c->ops->on_body(c->door, c->req, &a);
    call_done(c);
}

/* Says why a first-byte timeout was not retried, and what the client can do about it. */
static void
add_timeout_hint(struct call *c, char *hint, size_t hintlen)
{
    snprintf(hint, hintlen,
             "the upstream sent nothing for %d ms (retry.%sfirst_byte_timeout_ms) after the "
             "whole request was sent; it may still have been generating (and billing) the "
             "answer, so skiff did not retry on another key. Raise the timeout, or send "
             "x-skiff-retry-timeouts: on to allow a retry",
             call_first_byte_timeout(c), call_is_stream(c) ? "stream_" : "");
    skiff_http_add_header(c->req, "x-skiff-hint", hint);
}

/* Gives up: the last upstream error as it came, or skiff's own when there was none. */
void
call_give_up(struct call *c)
{
    if (c->up_status && !c->stream_failed) {
        call_forward_answer(c);
        return;
    }
    char msg[512], base[256], why[256], hint[400];
    /* A base_url or a proxy may carry a password (user:pw@): never in an answer. */
    const char *last_error = skiff_url_redact(c->last_error, why, sizeof why);
    int timeout = strstr(last_error, "timed out") || strstr(last_error, "idle timeout");
    if (c->stream_failed)
        snprintf(msg, sizeof msg,
                 "the upstream's stream failed before any content after %d "
                 "attempt%s: %s",
                 c->attempts, c->attempts == 1 ? "" : "s", c->stream_verdict.reason);
    else
        snprintf(msg, sizeof msg,
                 "skiff could not get an answer from the upstream (%s) after %d "
                 "attempt%s: %s",
                 skiff_url_redact(c->w->cfg->base_url, base, sizeof base), c->attempts,
                 c->attempts == 1 ? "" : "s", last_error);
    call_decorate(c);
    struct skiff_engine_error e = {.retry_after_s = -1, .message = msg, .why = "gave up"};
    if (c->timed_out_sent) {
        add_timeout_hint(c, hint, sizeof hint);
        e.hint = hint;
    }
    e.status = timeout                                           ? 504
               : c->stream_failed && c->stream_error_code >= 400 ? c->stream_error_code
                                                                 : 502;
    e.gstatus = e.status == 502 ? "UNAVAILABLE" : NULL;
    say_error(c, &e);
    call_done(c);
}

/* Every key is resting (or retired) for every model left in the chain. */
void
call_exhausted(struct call *c, int64_t back_at)
{
    char msg[512];
    if (back_at == INT64_MAX) {
        if (c->up_status) {
            call_forward_answer(c);
            return;
        }
        snprintf(msg, sizeof msg,
                 "no key in skiff's pool can serve %s: every key is retired for "
                 "it (invalid, without permission, region-blocked, or without "
                 "quota for the model); see the key_health lines in skiff's log",
                 call_model(c));
        call_decorate(c);
        struct skiff_engine_error e = {
            .status = 503, .message = msg, .retry_after_s = -1, .why = "no key"};
        say_error(c, &e);
        call_done(c);
        return;
    }
    double wait_s = (double)(back_at - skiff_now_ms()) / 1000.0;
    snprintf(msg, sizeof msg,
             "every key in skiff's pool is resting for %s (quota exhausted); "
             "the first comes back in %.0fs. Please retry then.",
             call_model(c), wait_s < 1 ? 1 : wait_s);
    json_t *details = json_array();
    json_array_append_new(details, skiff_gerr_retry_info(wait_s));
    json_array_append_new(details,
                          skiff_gerr_help("Learn more about Gemini API quotas",
                                          "https://ai.google.dev/gemini-api/docs/rate-limits"));
    call_decorate(c);
    struct skiff_engine_error e = {
        .status = 429,
        .message = msg,
        .details = details,
        .retry_after_s = wait_s < 1 ? 1 : wait_s,
        .why = "every key resting",
    };
    say_error(c, &e);
    json_decref(details);
    call_done(c);
}
