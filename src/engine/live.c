/*
 * A Live API session (engine.h): the key chosen as for a call on the session's model, the
 * upstream's WebSocket opened with it (relay/wstunnel.h), a refusal judged the way a call's
 * answer is (gemini/classify.h; a key-naming one confirmed by a probe, relay/probe.h), the
 * next key tried within the retry limits, and the key held until the session ends.
 *
 *   open: headers allowlisted once -> next_attempt: acquire (or wait, or 1013)
 *     -> launch: tunnel with ?key= -> on_open: held until close
 *                                  -> on_refused: classify -> release -> retry | on_fail
 */
#include "engine/call.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/clock.h"
#include "base/log.h"
#include "relay/budget.h"
#include "relay/keypool.h"
#include "relay/wstunnel.h"

#include <wslay/wslay.h>

#define PROBE_TIMEOUT_MS 5000
#define PROBE_POLL_MS 20
#define MAX_MODEL 128
#define MAX_HELD (1024u * 1024) /* the upstream's bytes held until its first message */

struct skiff_session {
    struct skiff_engine *w;
    const struct skiff_session_ops *ops;
    void *door;
    char id[40];
    char version[8];
    int constrained;
    char model[MAX_MODEL + 1];
    int pin_key;
    char *token;
    struct skiff_uprequest hdrs; /* the client's allowlisted headers (no credential) */
    int key;                     /* held, or -1 */
    int attempts;
    int64_t deadline_ms;
    int last_status;
    struct skiff_wstunnel *t;
    struct skiff_probe *probe;
    int probe_waiting;
    uint64_t probe_gen;
    struct skiff_verdict probe_for;
    uv_timer_t timer;         /* waits, probe polls, the hold's timeout */
    struct skiff_buf pending; /* the client's bytes until commit: replayed on each attempt */
    int upgraded;             /* the attempt's tunnel answered 101 */
    struct skiff_buf held;    /* the upstream's bytes until its first message */
    size_t held_fed;          /* of held, handed to wslay */
    wslay_frame_context_ptr frames;
    uint64_t frame_left; /* payload bytes of the upstream frame being read */
    int in_frame;
    char close_payload[125]; /* a close frame's code and reason */
    char msg[400];           /* the client's reason if the refusal ends the session */
    int last_key;            /* the key of the latest attempt */
    size_t close_len;
    int open;  /* committed: on_open ran */
    int over;  /* no op follows */
    int ended; /* end_session ran */
};

static void next_attempt(struct skiff_session *s);
static const struct skiff_wstunnel_ops tunnel_ops;

/* ---- the end --------------------------------------------------------------------------- */

static void
free_session(uv_handle_t *h)
{
    struct skiff_session *s = h->data;
    skiff_uprequest_wipe(&s->hdrs);
    if (s->frames)
        wslay_frame_context_free(s->frames);
    skiff_buf_release(&s->pending);
    skiff_buf_release(&s->held);
    if (s->token) {
        memset(s->token, 0, strlen(s->token));
        free(s->token);
    }
    free(s);
}

static void
release_key(struct skiff_session *s, enum skiff_fault fault, double delay_s, const char *reason)
{
    if (s->key < 0)
        return;
    skiff_keypool_release(s->w->sh->pool, s->key, s->model, fault, delay_s, reason, 0,
                          skiff_now_ms());
    s->key = -1;
}

/* Ends the session: everything in flight stopped, the key released, memory in the timer's
 * close callback. */
static void
end_session(struct skiff_session *s)
{
    if (s->ended)
        return;
    s->ended = 1;
    s->over = 1;
    if (s->t) {
        skiff_wstunnel_close(s->t);
        s->t = NULL;
    }
    if (s->probe) {
        skiff_probe_cancel(s->probe);
        s->probe = NULL;
        skiff_keypool_probe_end(s->w->sh->pool, s->key, SKIFF_PROBE_UNKNOWN);
    }
    release_key(s, SKIFF_FAULT_NONE, -1, NULL);
    uv_timer_stop(&s->timer);
    uv_close((uv_handle_t *)&s->timer, free_session);
}

static void
give_up(struct skiff_session *s, int code, const char *reason)
{
    struct skiff_log l;
    skiff_log_begin(&l, SKIFF_LOG_WARN, "live_refused");
    skiff_log_str(&l, "id", s->id);
    skiff_log_str(&l, "model", s->model);
    skiff_log_int(&l, "attempts", s->attempts);
    skiff_log_int(&l, "code", code);
    skiff_log_str(&l, "reason", reason);
    skiff_log_end(&l);
    if (!s->over) {
        s->over = 1;
        s->ops->on_fail(s->door, code, reason, s->last_status);
    }
    end_session(s);
}

static void
log_attempt(const struct skiff_session *s, int key, int status, const struct skiff_verdict *v,
            const char *next)
{
    struct skiff_log l;
    skiff_log_begin(&l, SKIFF_LOG_INFO, "live_attempt");
    skiff_log_str(&l, "id", s->id);
    skiff_log_str(&l, "key", skiff_keypool_label(s->w->sh->pool, key));
    skiff_log_str(&l, "model", s->model);
    skiff_log_int(&l, "status", status);
    skiff_log_str(&l, "fault", v->reason);
    skiff_log_str(&l, "next", next);
    skiff_log_end(&l);
}

/* ---- attempts -------------------------------------------------------------------------- */

static void
on_wait(uv_timer_t *t)
{
    next_attempt(t->data);
}

static void
launch(struct skiff_session *s, int key)
{
    const struct skiff_config *cfg = s->w->cfg;
    s->key = key;
    s->last_key = key;
    s->attempts++;
    s->upgraded = 0;
    if (!s->w->ws && !(s->w->ws = skiff_wsclient_new(s->w->loop))) {
        release_key(s, SKIFF_FAULT_TRANSIENT, -1, "out of memory");
        give_up(s, 1011, "skiff ran out of memory opening the session; retry it");
        return;
    }
    struct skiff_buf url;
    skiff_buf_init(&url, 8192);
    int rc =
        skiff_uprequest_live_url(&url, cfg, s->version, s->constrained,
                                 s->token ? s->token : skiff_keypool_secret(s->w->sh->pool, key));
    int64_t left = s->deadline_ms - skiff_now_ms();
    struct skiff_wstunnel_opts o = {
        .url = url.data,
        .headers = s->hdrs.headers,
        .proxy = cfg->proxy,
        .ca_file = cfg->ca_file,
        .connect_timeout_ms = cfg->retry.connect_timeout_ms < left ? cfg->retry.connect_timeout_ms
                                                                   : (long)(left > 1 ? left : 1),
        .handshake_timeout_ms = cfg->retry.stream_first_byte_timeout_ms,
        .ops = &tunnel_ops,
        .data = s,
    };
    s->t = rc ? NULL : skiff_wstunnel_open(s->w->ws, &o);
    if (url.data)
        memset(url.data, 0, url.len);
    skiff_buf_release(&url);
    if (!s->t) {
        release_key(s, SKIFF_FAULT_TRANSIENT, -1, "could not start the tunnel");
        give_up(s, 1011,
                "skiff could not open a connection to the upstream (check "
                "upstreams.gemini.base_url and proxy)");
    }
}

/* Picks a key for the session, waits for one within retry.max_wait_ms, or gives up. */
static void
next_attempt(struct skiff_session *s)
{
    struct skiff_keypool *pool = s->w->sh->pool;
    int64_t now = skiff_now_ms(), back_at;
    int key = s->pin_key ? skiff_keypool_acquire_only(pool, s->pin_key - 1, s->model, now, &back_at)
                         : skiff_keypool_acquire(pool, s->model, now, &back_at);
    if (key >= 0) {
        launch(s, key);
        return;
    }
    int64_t left = s->deadline_ms - now;
    int64_t max_wait = s->w->cfg->retry.max_wait_ms < left ? s->w->cfg->retry.max_wait_ms : left;
    if (back_at != INT64_MAX && back_at - now <= max_wait) {
        uv_timer_start(&s->timer, on_wait, (uint64_t)(back_at - now > 0 ? back_at - now : 0), 0);
        return;
    }
    char msg[300];
    if (s->pin_key && back_at == INT64_MAX)
        snprintf(msg, sizeof msg,
                 "the key that created this ephemeral token (%s) is retired; create a new "
                 "token",
                 skiff_keypool_label(pool, s->pin_key - 1));
    else if (s->pin_key)
        snprintf(msg, sizeof msg,
                 "the key that created this ephemeral token (%s) rests for %s for %lld s more; "
                 "retry then",
                 skiff_keypool_label(pool, s->pin_key - 1), s->model,
                 (long long)((back_at - now + 999) / 1000));
    else if (back_at == INT64_MAX)
        snprintf(msg, sizeof msg,
                 "no key of the pool can open a session for %s (every key is retired for it); "
                 "check the keys with `skiff keys`",
                 s->model);
    else
        snprintf(msg, sizeof msg,
                 "every key of the pool rests for %s; the first is back in %lld s: retry then",
                 s->model, (long long)((back_at - now + 999) / 1000));
    give_up(s, s->pin_key && back_at == INT64_MAX ? 1008 : 1013, msg);
}

/* After a refusal v of the key's (released already): retry within the limits, or give up
 * with msg. */
static void
after_failure(struct skiff_session *s, const struct skiff_verdict *v, int key, const char *msg)
{
    const struct skiff_config *cfg = s->w->cfg;
    int64_t now = skiff_now_ms();
    const char *stop = NULL;
    if (!skiff_fault_retryable(v->fault))
        stop = "answer";
    else if (s->pin_key)
        stop = "answer: the session is pinned to its key";
    else if (s->attempts >= cfg->retry.max_attempts)
        stop = "give-up: retry.max_attempts";
    else if (now >= s->deadline_ms)
        stop = "give-up: retry.deadline_ms passed";
    else if (!skiff_budget_withdraw(s->w->sh->budget, now))
        stop = "give-up: retry budget spent";
    log_attempt(s, key, s->last_status, v, stop ? stop : "retry");
    if (stop) {
        give_up(s, v->fault == SKIFF_FAULT_CLIENT ? 1008 : 1011, msg);
        return;
    }
    int64_t delay = 0;
    if (!skiff_fault_blames_key(v->fault)) {
        delay = cfg->retry.base_delay_ms;
        if (v->retry_delay_s > 0 && (int64_t)(v->retry_delay_s * 1000) > delay)
            delay = (int64_t)(v->retry_delay_s * 1000);
        if (delay > cfg->retry.max_delay_ms)
            delay = cfg->retry.max_delay_ms;
    }
    uv_timer_start(&s->timer, on_wait, (uint64_t)delay, 0);
}

/* The client's message for a refusal: the upstream's own error message when it has one. */
static void
refusal_message(struct skiff_session *s, int status, const char *body, size_t blen,
                const char *error, const struct skiff_verdict *v, char *out, size_t outlen)
{
    if (!status) {
        snprintf(out, outlen, "skiff could not open the upstream session: %.200s", error);
        return;
    }
    char copy[512];
    size_t n = blen < sizeof copy - 1 ? blen : sizeof copy - 1;
    memcpy(copy, body, n);
    copy[n] = '\0';
    skiff_keypool_redact(s->w->sh->pool, copy, n);
    const char *m = strstr(copy, "\"message\"");
    char msg[256] = "";
    if (m && (m = strchr(m + 9, '"'))) {
        size_t k = 0;
        for (m++; *m && *m != '"' && k < sizeof msg - 1; m++)
            if ((unsigned char)*m >= 0x20 && *m != '\\')
                msg[k++] = *m;
        msg[k] = '\0';
    }
    snprintf(out, outlen, "the upstream refused the session (HTTP %d%s%.150s); %.80s", status,
             msg[0] ? ": " : "", msg,
             v->fault == SKIFF_FAULT_CLIENT ? "fix the request" : v->reason);
}

static void
probe_settled(struct skiff_session *s, enum skiff_probe_result res)
{
    struct skiff_verdict v = s->probe_for;
    int key = s->key;
    char msg[400];
    switch (res) {
    case SKIFF_PROBE_KEY_BAD:
        release_key(s, v.fault, v.retry_delay_s, v.reason);
        snprintf(msg, sizeof msg,
                 "the upstream refused every key tried (%s); check the keys "
                 "with `skiff keys`",
                 v.reason);
        break;
    case SKIFF_PROBE_KEY_OK:
        release_key(s, SKIFF_FAULT_CLIENT, -1, v.reason);
        v.fault = SKIFF_FAULT_CLIENT;
        snprintf(msg, sizeof msg,
                 "the upstream refused the session (HTTP %d), though the key works: the "
                 "request is refused (check the model and the setup)",
                 s->last_status);
        break;
    default:
        release_key(s, SKIFF_FAULT_TRANSIENT, -1, v.reason);
        v.fault = SKIFF_FAULT_TRANSIENT;
        snprintf(msg, sizeof msg, "the upstream refused the session (%s); retry it", v.reason);
        break;
    }
    after_failure(s, &v, key, msg);
}

static void
on_probe(void *data, enum skiff_probe_result res, const struct skiff_verdict *pv)
{
    struct skiff_session *s = data;
    s->probe = NULL;
    skiff_keypool_probe_end(s->w->sh->pool, s->key, (int)res);
    probe_settled(s, res);
}

static void
on_probe_poll(uv_timer_t *t)
{
    struct skiff_session *s = t->data;
    int outcome;
    if (!skiff_keypool_probe_outcome(s->w->sh->pool, s->key, s->probe_gen, &outcome))
        return;
    uv_timer_stop(&s->timer);
    s->probe_waiting = 0;
    probe_settled(s, (enum skiff_probe_result)outcome);
}

/* A refusal that would retire the key for every model: a probe with the key alone first. */
static void
confirm_key(struct skiff_session *s, const struct skiff_verdict *v)
{
    struct skiff_keypool *pool = s->w->sh->pool;
    const struct skiff_config *cfg = s->w->cfg;
    s->probe_for = *v;
    switch (skiff_keypool_probe_claim(pool, s->key, &s->probe_gen)) {
    case SKIFF_KEYPOOL_PROBE_RETIRED:
        probe_settled(s, SKIFF_PROBE_KEY_BAD);
        return;
    case SKIFF_KEYPOOL_PROBE_WAIT:
        s->probe_waiting = 1;
        uv_timer_start(&s->timer, on_probe_poll, PROBE_POLL_MS, PROBE_POLL_MS);
        return;
    case SKIFF_KEYPOOL_PROBE_RUN:
        break;
    }
    struct skiff_probe_opts o = {
        .base_url = cfg->base_url,
        .proxy = cfg->proxy,
        .ca_file = cfg->ca_file,
        .key = skiff_keypool_secret(pool, s->key),
        .model = s->model,
        .connect_timeout_ms = cfg->retry.connect_timeout_ms < PROBE_TIMEOUT_MS
                                  ? cfg->retry.connect_timeout_ms
                                  : PROBE_TIMEOUT_MS,
        .timeout_ms = PROBE_TIMEOUT_MS,
        .cb = on_probe,
        .data = s,
    };
    s->probe = skiff_probe_start(s->w->up, &o);
    if (!s->probe) {
        skiff_keypool_probe_end(pool, s->key, SKIFF_PROBE_UNKNOWN);
        probe_settled(s, SKIFF_PROBE_UNKNOWN);
    }
}

/* ---- the tunnel's callbacks ------------------------------------------------------------ */

/* The upstream's first message came: from here on its bytes are the client's, as they came,
 * and nothing is retried. */
static void
commit(struct skiff_session *s)
{
    uv_timer_stop(&s->timer);
    wslay_frame_context_free(s->frames);
    s->frames = NULL;
    s->open = 1;
    skiff_buf_release(&s->pending);
    s->ops->on_open(s->door, s, skiff_keypool_label(s->w->sh->pool, s->key));
    if (!s->over && s->held.len)
        s->ops->on_read(s->door, s->held.data, s->held.len);
    skiff_buf_release(&s->held);
    if (!s->over)
        s->ops->on_drain(s->door); /* the client's side may go on */
}

static void after_refusal(struct skiff_session *s, int status, const struct skiff_verdict *v,
                          const char *msg);

/*
 * The upstream ended the session before its first message: a close frame (code, reason) or
 * none (code 0). Google refuses a key, a quota or a request this way, after the 101. The
 * client's own mistakes reach it as Google closed them (the held bytes, then the end); the
 * key's go to the next key.
 */
static void
refused_in_session(struct skiff_session *s, int code, const char *reason, size_t rlen)
{
    uv_timer_stop(&s->timer);
    if (s->t) {
        skiff_wstunnel_close(s->t);
        s->t = NULL;
    }
    struct skiff_verdict v;
    skiff_classify_live_close(code, reason, rlen, &v);
    if (s->token && skiff_fault_blames_key(v.fault) && skiff_fault_needs_probe(v.fault))
        v.fault = SKIFF_FAULT_CLIENT; /* an ephemeral token is Google's to judge, not the key */
    s->last_status = 101;
    if (v.fault == SKIFF_FAULT_CLIENT) {
        log_attempt(s, s->key, 101, &v, "answer: Google's close, as it came");
        release_key(s, SKIFF_FAULT_CLIENT, -1, v.reason);
        s->open = 1;
        s->ops->on_open(s->door, s, skiff_keypool_label(s->w->sh->pool, s->last_key));
        if (!s->over && s->held.len)
            s->ops->on_read(s->door, s->held.data, s->held.len);
        if (!s->over) {
            s->over = 1;
            s->ops->on_close(s->door, v.reason);
        }
        end_session(s);
        return;
    }
    char msg[400];
    snprintf(msg, sizeof msg, "the upstream refused the session (%s)%s", v.reason,
             skiff_fault_blames_key(v.fault) ? " on every key skiff could try; see `skiff keys`"
                                             : "; retry it");
    after_refusal(s, 101, &v, msg);
}

/* wslay reads the held bytes from here. */
static ssize_t
held_in(uint8_t *buf, size_t len, int flags, void *user_data)
{
    struct skiff_session *s = user_data;
    size_t have = s->held.len - s->held_fed;
    if (!have)
        return -1; /* wslay: WANT_READ */
    size_t n = have < len ? have : len;
    memcpy(buf, s->held.data + s->held_fed, n);
    s->held_fed += n;
    return (ssize_t)n;
}

/* Reads the held bytes' frames up to the first message: a data message commits, a close
 * is a refusal, control frames before it wait with the rest. */
static void
judge_held(struct skiff_session *s)
{
    while (!s->open && !s->over && s->t) {
        struct wslay_frame_iocb io;
        ssize_t r = wslay_frame_recv(s->frames, &io);
        if (r == WSLAY_ERR_WANT_READ)
            return;
        if (r < 0) {
            commit(s); /* frames skiff cannot read: the client judges them */
            return;
        }
        if (!s->in_frame) {
            s->in_frame = 1;
            s->frame_left = io.payload_length;
            s->close_len = 0;
        }
        s->frame_left -= io.data_length;
        if (io.opcode == WSLAY_CONNECTION_CLOSE) {
            size_t room = sizeof s->close_payload - s->close_len;
            size_t n = io.data_length < room ? io.data_length : room;
            memcpy(s->close_payload + s->close_len, io.data, n);
            s->close_len += n;
        }
        if (s->frame_left)
            continue;
        s->in_frame = 0;
        if (io.opcode == WSLAY_CONNECTION_CLOSE) {
            int code = s->close_len >= 2 ? ((unsigned char)s->close_payload[0] << 8) |
                                               (unsigned char)s->close_payload[1]
                                         : 1005;
            refused_in_session(s, code, s->close_payload + (s->close_len >= 2 ? 2 : 0),
                               s->close_len >= 2 ? s->close_len - 2 : 0);
            return;
        }
        if (io.opcode == WSLAY_TEXT_FRAME || io.opcode == WSLAY_BINARY_FRAME ||
            io.opcode == WSLAY_CONTINUATION_FRAME) {
            if (io.fin)
                commit(s);
        }
    }
}

static void
on_hold_timeout(uv_timer_t *t)
{
    struct skiff_session *s = t->data;
    refused_in_session(s, 0, "", 0);
}

static void
t_open(struct skiff_wstunnel *t, const char *headers, size_t len)
{
    struct skiff_session *s = skiff_wstunnel_data(t);
    s->upgraded = 1;
    s->last_status = 101;
    skiff_buf_release(&s->held);
    skiff_buf_init(&s->held, MAX_HELD);
    s->held_fed = 0;
    s->in_frame = 0;
    if (s->frames)
        wslay_frame_context_free(s->frames);
    s->frames = NULL;
    struct wslay_frame_callbacks cb = {NULL, held_in, NULL};
    if (wslay_frame_context_init(&s->frames, &cb, s) != 0) {
        commit(s);
        return;
    }
    /* The client's bytes so far (its setup), as they came: masked frames are valid upstream. */
    if (s->pending.len)
        skiff_wstunnel_write(t, s->pending.data, s->pending.len);
    uv_timer_start(&s->timer, on_hold_timeout,
                   (uint64_t)(s->w->cfg->retry.stream_first_byte_timeout_ms > 0
                                  ? s->w->cfg->retry.stream_first_byte_timeout_ms
                                  : 60000),
                   0);
}

static void
t_refused(struct skiff_wstunnel *t, int status, const char *headers, size_t hlen, const char *body,
          size_t blen, const char *error)
{
    struct skiff_session *s = skiff_wstunnel_data(t);
    s->t = NULL;
    s->last_status = status;
    struct skiff_verdict v;
    if (!status) {
        memset(&v, 0, sizeof v);
        v.fault = SKIFF_FAULT_TRANSIENT;
        v.retry_delay_s = -1;
        snprintf(v.reason, sizeof v.reason, "%s", error ? error : "no answer");
    } else {
        char ra[32] = "";
        const char *p = headers, *end = headers + hlen;
        struct skiff_hline h;
        while (skiff_hblock_next(&p, end, &h))
            if (h.name_len == 11 && strncasecmp(h.name, "retry-after", 11) == 0)
                snprintf(ra, sizeof ra, "%.*s", (int)h.value_len, h.value);
        skiff_classify(status, body, blen, ra[0] ? ra : NULL, &v);
        if (v.fault == SKIFF_FAULT_NONE) {
            v.fault = SKIFF_FAULT_TRANSIENT; /* a 2xx is no WebSocket */
            snprintf(v.reason, sizeof v.reason, "HTTP %d instead of 101", status);
        }
        /* An ephemeral token is Google's to judge: its refusal is the token's, never the
         * key's that made it. */
        if (s->token && (skiff_fault_needs_probe(v.fault) || status == 401 || status == 403))
            v.fault = SKIFF_FAULT_CLIENT;
    }
    char msg[400];
    refusal_message(s, status, body, blen, error, &v, msg, sizeof msg);
    after_refusal(s, status, &v, msg);
}

/* A refusal of the attempt's key (status, verdict v): probe, release, retry or give up. */
static void
after_refusal(struct skiff_session *s, int status, const struct skiff_verdict *v, const char *msg)
{
    s->last_status = status;
    snprintf(s->msg, sizeof s->msg, "%s", msg);
    if (skiff_fault_needs_probe(v->fault)) {
        confirm_key(s, v); /* releases the key and goes on once the probe tells */
        return;
    }
    int key = s->key;
    release_key(s, v->fault, v->retry_delay_s, v->reason);
    after_failure(s, v, key, msg);
}

static void
t_read(struct skiff_wstunnel *t, const char *data, size_t len)
{
    struct skiff_session *s = skiff_wstunnel_data(t);
    if (s->over)
        return;
    if (s->open) {
        s->ops->on_read(s->door, data, len);
        return;
    }
    if (skiff_buf_add(&s->held, data, len)) {
        commit(s); /* a first message larger than the hold: the client's to read */
        if (!s->over)
            s->ops->on_read(s->door, data, len);
        return;
    }
    judge_held(s);
}

static void
t_drain(struct skiff_wstunnel *t)
{
    struct skiff_session *s = skiff_wstunnel_data(t);
    if (!s->over && s->open)
        s->ops->on_drain(s->door);
}

static void
t_close(struct skiff_wstunnel *t, const char *why)
{
    struct skiff_session *s = skiff_wstunnel_data(t);
    s->t = NULL;
    if (!s->open && !s->over) {
        refused_in_session(s, 0, "", 0); /* gone before its first message */
        return;
    }
    if (!s->over) {
        s->over = 1;
        s->ops->on_close(s->door, why);
    }
    end_session(s);
}

static const struct skiff_wstunnel_ops tunnel_ops = {t_open, t_refused, t_read, t_drain, t_close};

/* ---- the door's side ------------------------------------------------------------------- */

struct skiff_session *
skiff_session_new(struct skiff_engine *w, const struct skiff_session_plan *p)
{
    struct skiff_session *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->w = w;
    s->ops = p->ops;
    s->door = p->door;
    s->key = -1;
    s->constrained = p->constrained;
    s->pin_key = p->pin_key;
    snprintf(s->id, sizeof s->id, "%s", p->id ? p->id : "");
    snprintf(s->version, sizeof s->version, "%s", p->version);
    snprintf(s->model, sizeof s->model, "unknown");
    if ((p->token && !(s->token = strdup(p->token))) ||
        skiff_uprequest_live_headers(&s->hdrs, w->cfg, p->req) != 0) {
        free(s->token);
        free(s);
        return NULL;
    }
    skiff_buf_init(&s->pending, w->cfg->limits.max_body_bytes + MAX_HELD);
    uv_timer_init(w->loop, &s->timer);
    s->timer.data = s;
    return s;
}

void
skiff_session_start(struct skiff_session *s, const char *model, size_t model_len, int pin_key)
{
    if (s->ended || s->attempts || uv_is_active((uv_handle_t *)&s->timer))
        return;
    if (!s->pin_key)
        s->pin_key = pin_key;
    if (model && model_len && model_len <= MAX_MODEL)
        snprintf(s->model, sizeof s->model, "%.*s", (int)model_len, model);
    s->deadline_ms = skiff_now_ms() + s->w->cfg->retry.deadline_ms;
    skiff_budget_deposit(s->w->sh->budget, skiff_now_ms());
    /* The first attempt starts from the loop, so no op runs inside this call. */
    uv_timer_start(&s->timer, on_wait, 0, 0);
}

size_t
skiff_session_write(struct skiff_session *s, const void *data, size_t len)
{
    if (s->over)
        return 0;
    if (s->open)
        return s->t ? skiff_wstunnel_write(s->t, data, len) : 0;
    /* Before the commit every byte is kept, to go again on the next key's session. */
    if (skiff_buf_add(&s->pending, data, len))
        return SIZE_MAX; /* past the bound: the door stops reading until the commit */
    if (s->t && s->upgraded)
        skiff_wstunnel_write(s->t, data, len);
    return s->pending.len;
}

void
skiff_session_pause(struct skiff_session *s)
{
    if (s->t && s->open)
        skiff_wstunnel_pause(s->t);
}

void
skiff_session_resume(struct skiff_session *s)
{
    if (s->t && s->open)
        skiff_wstunnel_resume(s->t);
}

void
skiff_session_close(struct skiff_session *s)
{
    if (!s || s->ended)
        return;
    s->over = 1;
    end_session(s);
}

const char *
skiff_session_model(const struct skiff_session *s)
{
    return s->model;
}
