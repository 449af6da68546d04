/*
 * The Live API through the Gemini door (live.h). A session's way:
 *
 *   head:   Live path (gemini/live.h) -> GET, Upgrade: websocket, Sec-WebSocket-Version 13, a
 *           Sec-WebSocket-Key of 16 bytes (else 400/426) -> the credential: an ephemeral
 *           token skiff recorded (Constrained path; its key pinned), or a client token by
 *           the rules of every request (doors/auth.h) -> 101 with no extension, so frames
 *           pass through as they are
 *   setup:  the client's bytes kept as they came while wslay's frame parser reads them up to
 *           the end of the first message (bounded by limits.max_body_bytes and
 *           limits.body_timeout_ms; each a close frame saying what is wrong); its
 *           setup.model chooses the key (unreadable: the pool chooses)
 *   open:   skiff_session_start (the engine picks and holds the key, opens the upstream); the
 *           kept bytes go first, then bytes both ways, each side paused while the other's
 *           queue is above SESSION_HIGH_WATER and resumed on its drain
 *   end:    either side going away closes the other; a session that could not open is a
 *           close frame (1008 / 1011 / 1013) with the engine's reason; one log line
 *           ("live_session") with the key's label, the model, duration, bytes, who closed
 */
#include "doors/gemini/bidi.h"

#include <jansson.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <uv.h>
#include <wslay/wslay.h>

#include "base/buf.h"
#include "base/clock.h"
#include "base/log.h"
#include "doors/auth.h"
#include "doors/gemini/door.h"
#include "doors/gemini/tenancy.h"
#include "gemini/live.h"
#include "relay/keypool.h"
#include "server/websocket.h"
#include "state/affinity.h"

#define SESSION_HIGH_WATER (1024u * 1024) /* pause the other side above this */
#define MAX_REASON 123                    /* a close frame's reason (RFC 6455 §5.5) */
#define MAX_TOKEN 512                     /* an ephemeral token's name */
#define MAX_WATCHED 8192                  /* a larger message is no resumption update */
#define HANDLE_TTL_MS (2 * 3600 * 1000LL) /* Google keeps a resumable session 2 hours */

struct live {
    struct skiff_engine *e;
    struct skiff_tunnel *client;   /* NULL once gone */
    struct skiff_session *session; /* NULL once gone */
    uv_timer_t timer;              /* the setup's timeout */
    char id[40];
    char who[SKIFF_TENANCY_MAX_TAG];
    char key[SKIFF_AFFINITY_MAX_LABEL]; /* the key's label, once open */
    char model[129];                    /* setup.model, or "unknown" */
    struct skiff_buf pre;               /* the client's bytes before the upstream opened */
    wslay_frame_context_ptr frames;     /* reads pre up to the end of the first message */
    size_t fed;                         /* bytes of pre handed to wslay */
    uint64_t frame_left;                /* payload bytes of the frame being read */
    int in_frame;
    struct skiff_buf setup; /* the first message's payload */
    int setup_done;         /* the first message is complete: the session is starting */
    int open;               /* the upstream answered 101 */
    int client_paused;
    /* The upstream's messages, read (never changed) for sessionResumptionUpdate when the
     * setup asked for resumption: its handle is recorded as the session's key's. */
    wslay_frame_context_ptr down;
    const char *feed; /* the piece s_read is handing on */
    size_t feed_len;
    uint64_t down_left;
    int down_in_frame;
    struct skiff_buf msg; /* the message being read, up to MAX_WATCHED */
    int msg_skip;
    uint64_t start_ns;
    uint64_t up_bytes, down_bytes;
    const char *closed_by;
    char why[160];
    size_t max_setup;
};

/* ---- the end --------------------------------------------------------------------------- */

static void
free_live(uv_handle_t *h)
{
    struct live *l = h->data;
    if (l->frames)
        wslay_frame_context_free(l->frames);
    if (l->down)
        wslay_frame_context_free(l->down);
    skiff_buf_release(&l->msg);
    skiff_buf_release(&l->pre);
    skiff_buf_release(&l->setup);
    free(l);
}

static void
log_session(struct live *l)
{
    struct skiff_log g;
    skiff_log_begin(&g, SKIFF_LOG_INFO, "live_session");
    skiff_log_str(&g, "id", l->id);
    skiff_log_str(&g, "x-skiff-key", l->key[0] ? l->key : "none");
    skiff_log_str(&g, "model", l->model[0] ? l->model : "unknown");
    skiff_log_str(&g, "token", l->who);
    skiff_log_int(&g, "ms", (long long)((uv_hrtime() - l->start_ns) / 1000000));
    skiff_log_int(&g, "bytes_up", (long long)l->up_bytes);
    skiff_log_int(&g, "bytes_down", (long long)l->down_bytes);
    skiff_log_str(&g, "closed_by", l->closed_by ? l->closed_by : "skiff");
    skiff_log_str(&g, "why", l->why);
    skiff_log_end(&g);
}

/* Ends the session once: the log line, then both sides closed. */
static void
finish(struct live *l, const char *by, const char *why)
{
    if (l->closed_by)
        return;
    l->closed_by = by;
    snprintf(l->why, sizeof l->why, "%s", why);
    log_session(l);
    if (l->session) {
        skiff_session_close(l->session);
        l->session = NULL;
    }
    if (l->client) {
        skiff_tunnel_close(l->client);
        l->client = NULL;
    }
    uv_timer_stop(&l->timer);
    uv_close((uv_handle_t *)&l->timer, free_live);
}

/* wslay writes a frame here (the close frame skiff sends). */
static ssize_t
frame_out(const uint8_t *data, size_t len, int flags, void *user_data)
{
    struct skiff_buf *b = user_data;
    return skiff_buf_add(b, data, len) ? -1 : (ssize_t)len;
}

/* Sends the client a close frame (code, reason cut to what a control frame holds), then
 * ends. The reason never holds key material: it is skiff's or the engine's sentence. */
static void
close_client(struct live *l, int code, const char *reason, const char *by)
{
    if (l->client) {
        char payload[2 + MAX_REASON];
        size_t n = strlen(reason);
        if (n > MAX_REASON)
            n = MAX_REASON;
        /* Cut on a UTF-8 boundary: a close reason must be valid UTF-8. */
        while (n && ((unsigned char)reason[n] & 0xC0) == 0x80)
            n--;
        payload[0] = (char)(code >> 8);
        payload[1] = (char)(code & 0xff);
        for (size_t i = 0; i < n; i++) /* a frame's payload: no NUL after it */
            payload[2 + i] = reason[i];
        struct skiff_buf out;
        skiff_buf_init(&out, 256);
        struct wslay_frame_callbacks cb = {frame_out, NULL, NULL};
        wslay_frame_context_ptr ctx;
        if (wslay_frame_context_init(&ctx, &cb, &out) == 0) {
            struct wslay_frame_iocb io = {
                .fin = 1,
                .opcode = WSLAY_CONNECTION_CLOSE,
                .payload_length = 2 + n,
                .mask = 0,
                .data = (const uint8_t *)payload,
                .data_length = 2 + n,
            };
            wslay_frame_send(ctx, &io);
            wslay_frame_context_free(ctx);
        }
        if (out.len)
            skiff_tunnel_write(l->client, out.data, out.len);
        skiff_buf_release(&out);
    }
    finish(l, by, reason);
}

/* ---- the engine's side ----------------------------------------------------------------- */

static void
s_open(void *door, struct skiff_session *s, const char *key)
{
    struct live *l = door;
    l->open = 1;
    snprintf(l->key, sizeof l->key, "%s", key);
}

static void
s_fail(void *door, int code, const char *reason, int status)
{
    struct live *l = door;
    l->session = NULL; /* freed by the engine after this returns */
    close_client(l, code, reason, "skiff");
}

/* The affinity entry of a token or handle: prefix and the SHA-256 of it in hex. */
static void
entry_of(const char *prefix, const char *v, size_t len, char *out, size_t cap)
{
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)v, len, md);
    static const char hex[] = "0123456789abcdef";
    size_t o = (size_t)snprintf(out, cap, "%s", prefix);
    for (int i = 0; i < SHA256_DIGEST_LENGTH && o + 2 < cap; i++) {
        out[o++] = hex[md[i] >> 4];
        out[o++] = hex[md[i] & 15];
    }
    out[o < cap ? o : cap - 1] = '\0';
}

/* A complete upstream message of at most MAX_WATCHED bytes: a resumable handle in it is
 * recorded as this session's key's, so a session that resumes with it goes to that key. */
static void
note_message(struct live *l)
{
    if (!memmem(l->msg.data, l->msg.len, "sessionResumptionUpdate", 23))
        return;
    json_t *j = json_loadb(l->msg.data, l->msg.len, 0, NULL);
    json_t *u = json_object_get(j, "sessionResumptionUpdate");
    const char *h = json_string_value(json_object_get(u, "newHandle"));
    if (h && *h && json_is_true(json_object_get(u, "resumable")) && l->key[0]) {
        char entry[SKIFF_AFFINITY_MAX_NAME];
        entry_of("live_handles/", h, strlen(h), entry, sizeof entry);
        skiff_affinity_put(entry, l->key, NULL, skiff_now_ms() + HANDLE_TTL_MS);
    }
    json_decref(j);
}

static ssize_t
down_in(uint8_t *buf, size_t len, int flags, void *user_data)
{
    struct live *l = user_data;
    if (!l->feed_len)
        return -1; /* wslay: WANT_READ */
    size_t n = l->feed_len < len ? l->feed_len : len;
    memcpy(buf, l->feed, n);
    l->feed += n;
    l->feed_len -= n;
    return (ssize_t)n;
}

/* Reads the upstream's frames in data (a copy: the bytes go on as they came). */
static void
watch(struct live *l, const char *data, size_t len)
{
    l->feed = data;
    l->feed_len = len;
    for (;;) {
        struct wslay_frame_iocb io;
        ssize_t r = wslay_frame_recv(l->down, &io);
        if (r == WSLAY_ERR_WANT_READ)
            return;
        if (r < 0) {
            wslay_frame_context_free(l->down); /* frames skiff cannot read: stop watching */
            l->down = NULL;
            return;
        }
        if (!l->down_in_frame) {
            l->down_in_frame = 1;
            l->down_left = io.payload_length;
            if (io.opcode == WSLAY_TEXT_FRAME || io.opcode == WSLAY_BINARY_FRAME) {
                skiff_buf_reset(&l->msg);
                l->msg_skip = 0;
            }
        }
        l->down_left -= io.data_length;
        int data_frame = io.opcode == WSLAY_TEXT_FRAME || io.opcode == WSLAY_BINARY_FRAME ||
                         io.opcode == WSLAY_CONTINUATION_FRAME;
        if (data_frame && !l->msg_skip && skiff_buf_add(&l->msg, io.data, io.data_length))
            l->msg_skip = 1;
        if (l->down_left)
            continue;
        l->down_in_frame = 0;
        if (data_frame && io.fin && !l->msg_skip && l->msg.len)
            note_message(l);
    }
}

static void
s_read(void *door, const char *data, size_t len)
{
    struct live *l = door;
    if (!l->client)
        return;
    if (l->down)
        watch(l, data, len);
    l->down_bytes += len;
    if (skiff_tunnel_write(l->client, data, len) > SESSION_HIGH_WATER && l->session)
        skiff_session_pause(l->session);
}

static void
s_drain(void *door)
{
    struct live *l = door;
    if (l->client_paused && l->client) {
        l->client_paused = 0;
        skiff_tunnel_resume(l->client);
    }
}

static void
s_close(void *door, const char *why)
{
    struct live *l = door;
    l->session = NULL;
    finish(l, "upstream", why);
}

static const struct skiff_session_ops session_ops = {s_open, s_fail, s_read, s_drain, s_close};

/* ---- the client's side ----------------------------------------------------------------- */

/* wslay reads the kept bytes from here, up to what has arrived. */
static ssize_t
frame_in(uint8_t *buf, size_t len, int flags, void *user_data)
{
    struct live *l = user_data;
    size_t have = l->pre.len - l->fed;
    if (!have)
        return -1; /* wslay: WANT_READ */
    size_t n = have < len ? have : len;
    memcpy(buf, l->pre.data + l->fed, n);
    l->fed += n;
    return (ssize_t)n;
}

/* setup.model of the first message, without "models/"; NULL when unreadable. */
static const char *
setup_model(const struct skiff_buf *m, char *out, size_t cap)
{
    json_t *j = m->len ? json_loadb(m->data, m->len, 0, NULL) : NULL;
    const char *v = json_string_value(json_object_get(json_object_get(j, "setup"), "model"));
    const char *r = NULL;
    if (v) {
        if (strncmp(v, "models/", 7) == 0)
            v += 7;
        if (*v && strlen(v) < cap && skiff_model_name_ok(v, strlen(v))) {
            snprintf(out, cap, "%s", v);
            r = out;
        }
    }
    json_decref(j);
    return r;
}

static void
setup_complete(struct live *l)
{
    l->setup_done = 1;
    uv_timer_stop(&l->timer);
    char model[129];
    const char *m = setup_model(&l->setup, model, sizeof model);
    int pin = 0;
    json_t *j = json_loadb(l->setup.data ? l->setup.data : "", l->setup.len, 0, NULL);
    json_t *sr = json_object_get(json_object_get(j, "setup"), "sessionResumption");
    if (json_is_object(sr)) {
        /* The session asks for resumption handles: they are watched for; one it resumes
         * with pins it to the key whose session issued it (another project's is unknown). */
        struct wslay_frame_callbacks cb = {NULL, down_in, NULL};
        if (wslay_frame_context_init(&l->down, &cb, l) != 0)
            l->down = NULL;
        skiff_buf_init(&l->msg, MAX_WATCHED);
        const char *h = json_string_value(json_object_get(sr, "handle"));
        char entry[SKIFF_AFFINITY_MAX_NAME], label[SKIFF_AFFINITY_MAX_LABEL];
        if (h && *h) {
            entry_of("live_handles/", h, strlen(h), entry, sizeof entry);
            const struct skiff_keypool *pool = skiff_engine_shared(l->e)->pool;
            if (skiff_affinity_get(entry, skiff_now_ms(), label, sizeof label, NULL, 0) == 0)
                pin = skiff_keypool_find(pool, label) + 1;
        }
    }
    json_decref(j);
    skiff_buf_release(&l->setup);
    snprintf(l->model, sizeof l->model, "%s", m ? m : "unknown");
    skiff_session_start(l->session, m, m ? strlen(m) : 0, pin);
    /* The engine keeps the client's bytes (the setup and what follows) until the upstream's
     * first message, and sends them on each key's session. */
    l->up_bytes += l->pre.len;
    skiff_session_write(l->session, l->pre.data, l->pre.len);
    skiff_buf_release(&l->pre);
}

/* Reads frames from the kept bytes until the first message ends. */
static void
read_setup(struct live *l)
{
    while (!l->setup_done && l->client) {
        struct wslay_frame_iocb io;
        ssize_t r = wslay_frame_recv(l->frames, &io);
        if (r == WSLAY_ERR_WANT_READ)
            return;
        if (r < 0) {
            close_client(l, 1002, "the WebSocket frames before the setup are malformed", "skiff");
            return;
        }
        if (!l->in_frame) {
            l->in_frame = 1;
            l->frame_left = io.payload_length;
        }
        l->frame_left -= io.data_length;
        int data_frame = io.opcode == WSLAY_TEXT_FRAME || io.opcode == WSLAY_BINARY_FRAME ||
                         io.opcode == WSLAY_CONTINUATION_FRAME;
        if (data_frame && skiff_buf_add(&l->setup, io.data, io.data_length)) {
            char msg[MAX_REASON + 1];
            snprintf(msg, sizeof msg,
                     "the setup message is larger than %zu bytes "
                     "(limits.max_body_bytes)",
                     l->max_setup);
            close_client(l, 1009, msg, "skiff");
            return;
        }
        if (l->frame_left)
            continue;
        l->in_frame = 0;
        if (io.opcode == WSLAY_CONNECTION_CLOSE) {
            finish(l, "client", "the client closed the session before its setup");
            return;
        }
        if (data_frame && io.fin)
            setup_complete(l);
    }
}

static void
c_read(struct skiff_tunnel *t, const char *data, size_t len)
{
    struct live *l = skiff_tunnel_data(t);
    if (l->setup_done) {
        l->up_bytes += len;
        if (l->session && skiff_session_write(l->session, data, len) > SESSION_HIGH_WATER) {
            l->client_paused = 1;
            skiff_tunnel_pause(t);
        }
        return;
    }
    if (skiff_buf_add(&l->pre, data, len)) {
        char msg[MAX_REASON + 1];
        snprintf(msg, sizeof msg,
                 "the setup message is larger than %zu bytes "
                 "(limits.max_body_bytes)",
                 l->max_setup);
        close_client(l, 1009, msg, "skiff");
        return;
    }
    read_setup(l);
}

static void
c_drain(struct skiff_tunnel *t)
{
    struct live *l = skiff_tunnel_data(t);
    if (l->session && l->open)
        skiff_session_resume(l->session);
}

static void
c_close(struct skiff_tunnel *t, const char *why)
{
    struct live *l = skiff_tunnel_data(t);
    l->client = NULL; /* freed by the server after this returns */
    finish(l, "client", why);
}

/* The server's drain is over: the client hears why (1001, going away) before the end. */
static void
c_shutdown(struct skiff_tunnel *t)
{
    struct live *l = skiff_tunnel_data(t);
    close_client(l, 1001,
                 "skiff is shutting down: connect again (resume with the last "
                 "sessionResumptionUpdate handle to keep the session)",
                 "skiff");
}

static const struct skiff_tunnel_ops client_ops = {c_read, c_drain, c_close, c_shutdown};

static void
on_setup_timeout(uv_timer_t *t)
{
    struct live *l = t->data;
    char msg[MAX_REASON + 1];
    snprintf(msg, sizeof msg,
             "no setup message within %llu ms (limits.body_timeout_ms): send "
             "the setup first",
             (unsigned long long)uv_timer_get_repeat(t));
    close_client(l, 1008, msg, "skiff");
}

/* ---- the head -------------------------------------------------------------------------- */

void
skiff_gemini_live_token_entry(const char *token, size_t len, char out[SKIFF_LIVE_TOKEN_ENTRY])
{
    entry_of("live_tokens/", token, len, out, SKIFF_LIVE_TOKEN_ENTRY);
}

static void
refuse(struct skiff_request *req, int status, const char *msg)
{
    skiff_gemini_error(req, status, msg);
}

/* The ephemeral token a Constrained session presents (?access_token=auth_tokens/...), percent-
 * decoded no further than '/', into out; 0 when there is none. */
static int
ephemeral_token(const struct skiff_request *req, char *out, size_t cap)
{
    int n = skiff_http_query(req, "access_token", out, cap);
    if (n <= 0 || (size_t)n >= cap - 1)
        return 0;
    char *p = strstr(out, "%2F");
    if (!p)
        p = strstr(out, "%2f");
    if (p) {
        *p = '/';
        memmove(p + 1, p + 3, strlen(p + 3) + 1);
    }
    return strncmp(out, "auth_tokens/", 12) == 0 && out[12];
}

int
skiff_gemini_live(struct skiff_request *req, struct skiff_engine *e, int upgrade)
{
    const char *version;
    enum skiff_live_kind kind = skiff_live_path(req->path, req->path_len, &version);
    if (kind == SKIFF_LIVE_NONE)
        return 0;
    const struct skiff_engine_shared *sh = skiff_engine_shared(e);
    const struct skiff_config *cfg = sh->cfg;
    size_t n;
    const char *bad;
    int code = skiff_ws_check(req, &bad);
    if (code) {
        refuse(req, code, bad);
        return 1;
    }
    /* The credential: an ephemeral token skiff recorded, or a client token. */
    char token[MAX_TOKEN];
    int pin = 0, eph = kind == SKIFF_LIVE_CONSTRAINED && ephemeral_token(req, token, sizeof token);
    char owner[SKIFF_AFFINITY_MAX_VALUE] = "";
    const char *who = "anonymous";
    if (kind == SKIFF_LIVE_CONSTRAINED && !eph) {
        refuse(req, 400,
               "BidiGenerateContentConstrained takes an ephemeral token "
               "(?access_token=auth_tokens/...): create one with POST /v1alpha/auth_tokens "
               "through skiff, or use BidiGenerateContent with skiff's token");
        return 1;
    }
    if (eph) {
        char entry[SKIFF_LIVE_TOKEN_ENTRY], label[SKIFF_AFFINITY_MAX_LABEL];
        skiff_gemini_live_token_entry(token, strlen(token), entry);
        if (skiff_affinity_get(entry, skiff_now_ms(), label, sizeof label, owner, sizeof owner) ==
                0 &&
            skiff_keypool_find(sh->pool, label) >= 0) {
            pin = skiff_keypool_find(sh->pool, label) + 1;
            who = owner[0] ? owner : "ephemeral";
        } else if (cfg->ntokens) {
            refuse(req, 401,
                   "this ephemeral token was not created through skiff (or it expired): create "
                   "it with POST /v1alpha/auth_tokens through skiff, then connect with it");
            return 1;
        }
    }
    if (!pin) {
        char msg[640];
        code = skiff_auth_open_check(cfg, req, msg, sizeof msg);
        if (code) {
            refuse(req, code, msg);
            return 1;
        }
        char at[256];
        int atn = eph ? -1 : skiff_http_query(req, "access_token", at, sizeof at);
        enum skiff_auth_result r = atn > 0 && !skiff_http_header(req, "x-goog-api-key", &n) &&
                                           skiff_http_query(req, "key", msg, sizeof msg) < 0
                                       ? skiff_auth_check_value(cfg, at, (size_t)atn, &who)
                                       : skiff_auth_check(cfg, req, &who);
        memset(at, 0, sizeof at);
        if (r == SKIFF_AUTH_MISSING) {
            refuse(req, 401,
                   "skiff needs a client token: send it as ?key= (what the Gemini "
                   "SDKs' live.connect does with apiKey), ?access_token= or the "
                   "x-goog-api-key header");
            return 1;
        }
        if (r == SKIFF_AUTH_INVALID) {
            refuse(req, 401,
                   "the client token is not one of skiff's tokens (config `tokens`, "
                   "or SKIFF_TOKENS); note that skiff expects its own token here, not "
                   "a Gemini key");
            return 1;
        }
        if (eph)
            who = "ephemeral";
    }
    if (skiff_keypool_size(sh->pool) == 0) {
        refuse(req, 503, "skiff has no upstream key: set GEMINI_API_KEYS or upstreams.gemini.keys");
        return 1;
    }
    if (!upgrade) {
        memset(token, 0, sizeof token);
        return 1; /* the head passed: the handler switches protocols */
    }

    struct live *l = calloc(1, sizeof *l);
    if (!l) {
        refuse(req, 500, "out of memory");
        return 1;
    }
    l->e = e;
    l->start_ns = uv_hrtime();
    l->max_setup = cfg->limits.max_body_bytes;
    snprintf(l->id, sizeof l->id, "%s", req->id);
    if (eph && pin)
        snprintf(l->who, sizeof l->who, "%s", who);
    else
        skiff_tenancy_tag(cfg, who, l->who, sizeof l->who);
    if (!l->who[0])
        snprintf(l->who, sizeof l->who, "%s", who);
    skiff_buf_init(&l->pre, l->max_setup);
    skiff_buf_init(&l->setup, l->max_setup);
    struct wslay_frame_callbacks cb = {NULL, frame_in, NULL};
    struct skiff_session_plan plan = {
        .req = req,
        .id = req->id,
        .version = version,
        .constrained = kind == SKIFF_LIVE_CONSTRAINED,
        .pin_key = pin,
        .token = eph ? token : NULL,
        .ops = &session_ops,
        .door = l,
    };
    if (wslay_frame_context_init(&l->frames, &cb, l) != 0 ||
        !(l->session = skiff_session_new(e, &plan))) {
        if (l->frames)
            wslay_frame_context_free(l->frames);
        free(l);
        memset(token, 0, sizeof token);
        refuse(req, 500, "out of memory");
        return 1;
    }
    memset(token, 0, sizeof token);
    uv_loop_t *loop = skiff_http_loop(req);
    l->client = skiff_ws_upgrade(req, &client_ops, l);
    if (!l->client) {
        skiff_session_close(l->session);
        wslay_frame_context_free(l->frames);
        free(l);
        refuse(req, 500, "skiff could not switch the connection to a WebSocket");
        return 1;
    }
    uv_timer_init(loop, &l->timer);
    l->timer.data = l;
    uint64_t ms = cfg->limits.body_timeout_ms > 0 ? (uint64_t)cfg->limits.body_timeout_ms : 10000;
    uv_timer_start(&l->timer, on_setup_timeout, ms, ms);
    return 1;
}
