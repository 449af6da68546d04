/*
 * HTTP/2 sessions for the upstream client, on nghttp2 (relay/h2client.h). nghttp2 does the
 * protocol: frames, HPACK, SETTINGS, PING answers, GOAWAY, stream states and HTTP message
 * checks (a :status, a content-length that matches the DATA). This file keeps, per call,
 * a stream: the request as the call describes it, the answer's head and body handed
 * on as they come, and the end reported once.
 *
 * Flow control: nghttp2's automatic WINDOW_UPDATEs are off. The connection window is
 * consumed as bytes arrive (so no stream's backlog holds up another's), a stream's only
 * when its call has taken the bytes: a paused call's upstream stops at STREAM_WINDOW.
 *
 * Lifetimes: a stream struct is made by skiff_h2_submit and lives until nghttp2 closes the
 * stream and no call holds it (a paused call keeps its held bytes and its end), or until
 * skiff_h2_free. Callbacks may cancel calls on the same session, so nothing is freed while
 * a loop over the streams runs (`busy`).
 */
#include "relay/h2client.h"

#include <nghttp2/nghttp2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/buf.h"
#include "relay/h1resp.h"

#define STREAM_WINDOW (256 * 1024)     /* what a stream may send ahead of its call */
#define CONN_WINDOW (64 * 1024 * 1024) /* consumed on arrival: never the bottleneck */
#define ASSUMED_STREAMS 100            /* until the upstream's SETTINGS say (Google: 100) */
#define MAX_HEAD (64 * 1024)           /* a response's header block */
#define OUT_BATCH (16 * 1024)          /* frames gathered into one send */
#define MAX_HELD (2 * STREAM_WINDOW)   /* a paused stream's backlog; more breaks the window */

struct h2_stream {
    struct skiff_h2 *h;
    struct h2_stream *prev, *next;
    void *call; /* NULL once the call has ended or gone */
    int32_t id;
    const char *body; /* borrowed from the call; NULL once it has gone */
    size_t body_len, body_off;
    int status;
    int got_head, remote_end, sent, closed, paused;
    uint32_t code;   /* the close's error code */
    const char *why; /* our own reason for resetting it, or NULL */
    char *held;      /* body bytes that came while the call was paused */
    size_t held_len, held_cap;
    /* A streamed request body (skiff_h2_body_write): */
    int streaming, body_end, drain_due;
    struct skiff_buf sq; /* bytes written and not yet framed; sq_off of them went */
    size_t sq_off;
};

const char skiff_h2_streamed[] = "";

struct skiff_h2 {
    nghttp2_session *s;
    const struct skiff_h2_ops *ops;
    void *conn;
    struct h2_stream *streams;
    int ncalls; /* streams with a call */
    int nopen;  /* streams nghttp2 has not closed */
    int busy;   /* inside nghttp2 or a loop over the streams */
    int dead;
    int goaway;   /* received */
    int draining; /* inside drains */
    struct skiff_buf hdrs;
    struct skiff_buf out;
    char err[200];
};

/* ---- streams -------------------------------------------------------------------------- */

static void
stream_free(struct h2_stream *st)
{
    struct skiff_h2 *h = st->h;
    if (st->prev)
        st->prev->next = st->next;
    else
        h->streams = st->next;
    if (st->next)
        st->next->prev = st->prev;
    free(st->held);
    skiff_buf_release(&st->sq);
    free(st);
}

static struct h2_stream *
find(const struct skiff_h2 *h, const void *call)
{
    for (struct h2_stream *st = h->streams; st; st = st->next)
        if (st->call == call)
            return st;
    return NULL;
}

/* Takes the call off its stream; the body is no longer ours to read. */
static void *
detach(struct h2_stream *st)
{
    void *call = st->call;
    if (call)
        st->h->ncalls--;
    st->call = NULL;
    st->body = NULL;
    return call;
}

/* Reports the stream's end once its call has everything (nothing held): success when the
 * answer came whole (END_STREAM), whatever happened to the request's body afterwards (an
 * upstream may answer before reading it and then reset with NO_ERROR: RFC 9113 §8.1). */
static void
maybe_end(struct h2_stream *st)
{
    struct skiff_h2 *h = st->h;
    if (!st->call || st->paused || st->held_len || !(st->remote_end || st->closed))
        return;
    char msg[200];
    const char *error = NULL;
    int not_processed = 0;
    if (!(st->remote_end && st->got_head)) {
        if (st->why)
            error = st->why;
        else if (st->code == NGHTTP2_REFUSED_STREAM) {
            error = h->goaway ? "the upstream is closing the connection (GOAWAY) and did not "
                                "take the request"
                              : "the upstream refused the stream (REFUSED_STREAM)";
            not_processed = 1;
        } else {
            snprintf(msg, sizeof msg, "the upstream reset the stream %s (%s)",
                     st->got_head ? "before the response was complete" : "without answering",
                     nghttp2_http2_strerror(st->code));
            error = msg;
        }
    }
    /* The answer is complete while the request's body is still going: stop it. Only then: a
     * stream whose both sides are done closes by itself, and a reset of it would reach the
     * upstream as a frame on a closed stream (node counts those and ends the connection at
     * 1,000; a server guarding against rapid resets may do the same). */
    if (!st->closed && h->s && !h->dead &&
        nghttp2_session_get_stream_local_close(h->s, st->id) == 0)
        nghttp2_submit_rst_stream(h->s, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_NO_ERROR);
    void *call = detach(st);
    h->ops->on_end(call, error, not_processed);
}

/* Hands bytes to the call, or keeps them while it is paused. -1 when the backlog breaks the
 * window (the upstream ignored it). */
static int
deliver(struct h2_stream *st, const char *data, size_t len)
{
    struct skiff_h2 *h = st->h;
    if (st->paused || st->held_len) {
        if (st->held_len + len > MAX_HELD)
            return -1;
        if (st->held_len + len > st->held_cap) {
            size_t cap = st->held_cap ? st->held_cap : 16384;
            while (cap < st->held_len + len)
                cap *= 2;
            char *p = realloc(st->held, cap);
            if (!p)
                return -1;
            st->held = p;
            st->held_cap = cap;
        }
        memcpy(st->held + st->held_len, data, len);
        st->held_len += len;
        return 0;
    }
    int rc = h->ops->on_data(st->call, data, len);
    if (st->call && rc == 1)
        st->paused = 1;
    if (!st->closed && h->s)
        nghttp2_session_consume_stream(h->s, st->id, len);
    return 0;
}

/* ---- nghttp2 callbacks ------------------------------------------------------------------ */

static int
on_begin_headers(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
    struct skiff_h2 *h = ud;
    struct h2_stream *st = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
    if (f->hd.type == NGHTTP2_HEADERS && st && !st->got_head) {
        skiff_buf_reset(&h->hdrs);
        st->status = 0;
    }
    return 0;
}

static int
on_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name, size_t nlen,
          const uint8_t *value, size_t vlen, uint8_t flags, void *ud)
{
    struct skiff_h2 *h = ud;
    (void)flags;
    struct h2_stream *st = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
    if (f->hd.type != NGHTTP2_HEADERS || !st || !st->call || st->got_head)
        return 0; /* trailers, or a stream nobody reads any more */
    if (nlen == 7 && !memcmp(name, ":status", 7)) {
        st->status = 0;
        for (size_t i = 0; i < vlen && i < 3; i++)
            st->status = st->status * 10 + (value[i] - '0');
        return 0;
    }
    if (nlen == 0 || name[0] == ':' || skiff_h1_hop_by_hop((const char *)name, nlen))
        return 0;
    if (skiff_buf_add(&h->hdrs, name, nlen) || skiff_buf_add(&h->hdrs, ": ", 2) ||
        skiff_buf_add(&h->hdrs, value, vlen) || skiff_buf_add(&h->hdrs, "\r\n", 2)) {
        st->why = "the upstream's response head is larger than 64 KiB";
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* resets the stream */
    }
    return 0;
}

static int
on_frame_recv(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
    struct skiff_h2 *h = ud;
    if (f->hd.type == NGHTTP2_GOAWAY) {
        h->goaway = 1;
        return 0;
    }
    if (f->hd.type != NGHTTP2_HEADERS && f->hd.type != NGHTTP2_DATA)
        return 0;
    struct h2_stream *st = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
    if (!st || !st->call)
        return 0;
    if (f->hd.type == NGHTTP2_HEADERS && !st->got_head && st->status >= 200) {
        st->got_head = 1;
        h->ops->on_head(st->call, st->status, h->hdrs.data ? h->hdrs.data : "", h->hdrs.len);
    }
    if (f->hd.flags & NGHTTP2_FLAG_END_STREAM) {
        st->remote_end = 1;
        maybe_end(st);
    }
    return 0;
}

static int
on_data_chunk(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data, size_t len,
              void *ud)
{
    struct skiff_h2 *h = ud;
    (void)flags;
    nghttp2_session_consume_connection(s, len);
    struct h2_stream *st = nghttp2_session_get_stream_user_data(s, id);
    if (!st || !st->call || !st->got_head) {
        nghttp2_session_consume_stream(s, id, len);
        return 0;
    }
    if (deliver(st, (const char *)data, len) < 0) {
        st->why = "the upstream sent more than its flow-control window allowed";
        nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, id, NGHTTP2_FLOW_CONTROL_ERROR);
    }
    (void)h;
    return 0;
}

static int
on_stream_close(nghttp2_session *s, int32_t id, uint32_t code, void *ud)
{
    struct skiff_h2 *h = ud;
    struct h2_stream *st = nghttp2_session_get_stream_user_data(s, id);
    if (!st || st->closed)
        return 0;
    st->closed = 1;
    st->code = code;
    h->nopen--;
    maybe_end(st);
    if (!st->call)
        stream_free(st);
    return 0;
}

static int
on_frame_send(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
    (void)ud;
    struct h2_stream *st = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
    if (f->hd.type == NGHTTP2_HEADERS && st)
        st->sent = 1;
    return 0;
}

/* A request's HEADERS that never went (the session is going away): the upstream has not
 * seen it, so the call may go again. nghttp2 closes the stream after this. */
static int
on_frame_not_send(nghttp2_session *s, const nghttp2_frame *f, int code, void *ud)
{
    struct skiff_h2 *h = ud;
    (void)code;
    struct h2_stream *st = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
    if (f->hd.type != NGHTTP2_HEADERS || !st || !st->call)
        return 0;
    void *call = detach(st);
    h->ops->on_end(call, "the upstream connection closed before the request went out", 1);
    return 0;
}

/* A streamed body's DATA: what was written, deferred while nothing is and its end has not
 * come (skiff_h2_body_write resumes it). A queue that falls below the low-water mark owes
 * its call a drain, paid after the flush (drains). */
static ssize_t
read_streamed(struct h2_stream *st, uint8_t *buf, size_t len, uint32_t *flags)
{
    size_t have = st->sq.len - st->sq_off;
    if (have == 0) {
        if (!st->body_end)
            return NGHTTP2_ERR_DEFERRED;
        *flags |= NGHTTP2_DATA_FLAG_EOF;
        return 0;
    }
    size_t n = have < len ? have : len;
    memcpy(buf, st->sq.data + st->sq_off, n);
    st->sq_off += n;
    if (st->sq_off == st->sq.len) {
        skiff_buf_reset(&st->sq);
        st->sq_off = 0;
        if (st->body_end)
            *flags |= NGHTTP2_DATA_FLAG_EOF;
    }
    if (have - n < SKIFF_H2_LOW_WATER)
        st->drain_due = 1;
    return (ssize_t)n;
}

static ssize_t
read_body(nghttp2_session *s, int32_t id, uint8_t *buf, size_t len, uint32_t *flags,
          nghttp2_data_source *src, void *ud)
{
    (void)s;
    (void)id;
    (void)ud;
    struct h2_stream *st = src->ptr;
    if (!st->body)
        return NGHTTP2_ERR_DEFERRED; /* the call is gone; its stream is being reset */
    if (st->streaming)
        return read_streamed(st, buf, len, flags);
    size_t n = st->body_len - st->body_off;
    if (n > len)
        n = len;
    memcpy(buf, st->body + st->body_off, n);
    st->body_off += n;
    if (st->body_off == st->body_len)
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

/* ---- the session ------------------------------------------------------------------------ */

static void
set_error(struct skiff_h2 *h, const char *what, int rv)
{
    h->dead = 1;
    if (!h->err[0])
        snprintf(h->err, sizeof h->err, "%s (%s)", what, nghttp2_strerror(rv));
}

struct skiff_h2 *
skiff_h2_new(const struct skiff_h2_ops *ops, void *conn)
{
    struct skiff_h2 *h = calloc(1, sizeof *h);
    nghttp2_session_callbacks *cb = NULL;
    nghttp2_option *opt = NULL;
    if (!h || nghttp2_session_callbacks_new(&cb) || nghttp2_option_new(&opt))
        goto fail;
    h->ops = ops;
    h->conn = conn;
    skiff_buf_init(&h->hdrs, MAX_HEAD);
    skiff_buf_init(&h->out, 1024 * 1024);
    nghttp2_session_callbacks_set_on_begin_headers_callback(cb, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data_chunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
    nghttp2_session_callbacks_set_on_frame_send_callback(cb, on_frame_send);
    nghttp2_session_callbacks_set_on_frame_not_send_callback(cb, on_frame_not_send);
    nghttp2_option_set_no_auto_window_update(opt, 1);
    nghttp2_option_set_peer_max_concurrent_streams(opt, ASSUMED_STREAMS);
    if (nghttp2_session_client_new2(&h->s, cb, h, opt))
        goto fail;
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, STREAM_WINDOW},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, MAX_HEAD},
    };
    if (nghttp2_submit_settings(h->s, NGHTTP2_FLAG_NONE, iv, sizeof iv / sizeof iv[0]) ||
        nghttp2_session_set_local_window_size(h->s, NGHTTP2_FLAG_NONE, 0, CONN_WINDOW))
        goto fail;
    nghttp2_session_callbacks_del(cb);
    nghttp2_option_del(opt);
    return h;
fail:
    nghttp2_session_callbacks_del(cb);
    nghttp2_option_del(opt);
    skiff_h2_free(h);
    return NULL;
}

void
skiff_h2_free(struct skiff_h2 *h)
{
    if (!h)
        return;
    nghttp2_session_del(h->s);
    while (h->streams)
        stream_free(h->streams);
    skiff_buf_release(&h->hdrs);
    skiff_buf_release(&h->out);
    free(h);
}

static int
send_out(struct skiff_h2 *h)
{
    int rc = 0;
    if (h->out.len && h->ops->send(h->conn, h->out.data, h->out.len) < 0) {
        h->dead = 1;
        if (!h->err[0])
            snprintf(h->err, sizeof h->err, "could not send to the upstream");
        rc = -1;
    }
    /* A burst (hundreds of HEADERS at once) grows the batch; an idle connection keeps none. */
    if (h->out.cap > 4 * OUT_BATCH)
        skiff_buf_release(&h->out);
    else
        skiff_buf_reset(&h->out);
    return rc;
}

/* Pays the drains the last flush made due (read_streamed), from outside nghttp2. */
static void
drains(struct skiff_h2 *h)
{
    h->draining = 1;
    for (int again = 1; again && !h->dead;) {
        again = 0;
        for (struct h2_stream *st = h->streams; st; st = st->next) {
            if (!st->drain_due || !st->call || !h->ops->on_drain)
                continue;
            st->drain_due = 0;
            h->ops->on_drain(st->call); /* may write, flush and cancel: start over */
            again = 1;
            break;
        }
    }
    h->draining = 0;
}

int
skiff_h2_flush(struct skiff_h2 *h)
{
    if (h->dead)
        return -1;
    if (h->busy)
        return 0;
    h->busy++;
    int rc = 0;
    for (;;) {
        const uint8_t *p;
        ssize_t n = nghttp2_session_mem_send(h->s, &p);
        if (n < 0) {
            set_error(h, "HTTP/2 failed", (int)n);
            rc = -1;
            break;
        }
        if (n == 0)
            break;
        if (skiff_buf_add_grow(&h->out, p, (size_t)n) || (h->out.len >= OUT_BATCH && send_out(h))) {
            rc = -1;
            break;
        }
    }
    if (rc == 0)
        rc = send_out(h);
    h->busy--;
    if (!h->dead && !h->busy && !h->draining)
        drains(h);
    return h->dead ? -1 : rc;
}

int
skiff_h2_recv(struct skiff_h2 *h, const char *data, size_t len)
{
    if (h->dead)
        return -1;
    h->busy++;
    ssize_t n = nghttp2_session_mem_recv(h->s, (const uint8_t *)data, len);
    h->busy--;
    if (n < 0) {
        set_error(h, "the upstream broke the HTTP/2 protocol", (int)n);
        return -1;
    }
    return skiff_h2_flush(h);
}

/* Whether name[0..n) is a field HTTP/2 carries in a request (RFC 9113 §8.2.2): no
 * connection-specific field, and no host (the request's authority goes as :authority). */
static int
h2_request_field(const char *name, size_t n)
{
    if (n == 14 && !strncasecmp(name, "content-length", 14))
        return 1; /* the framing's in HTTP/1.1, a check (RFC 9113 §8.1.1) in HTTP/2 */
    return !(skiff_h1_hop_by_hop(name, n) || (n == 4 && !strncasecmp(name, "host", 4)) ||
             (n == 2 && !strncasecmp(name, "te", 2)) ||
             (n == 16 && !strncasecmp(name, "proxy-connection", 16)));
}

int
skiff_h2_submit(struct skiff_h2 *h, const struct skiff_h2_req *r, const char *body, size_t body_len,
                void *call)
{
    if (!skiff_h2_can_open(h) || !r->method_len || !r->path_len || !r->authority_len)
        return -1;
    nghttp2_nv few[24], *nv = few;
    if (r->nfields + 4 > sizeof few / sizeof few[0] &&
        !(nv = malloc((r->nfields + 4) * sizeof *nv)))
        return -1;
    struct h2_stream *st = calloc(1, sizeof *st);
    int rc = -1;
    if (!st)
        goto out;
    size_t n = 0;
    /* nghttp2 copies every name and value, lowercasing the names. */
#define NV(nm, nl, v, vl)                                                                          \
    nv[n++] = (nghttp2_nv){(uint8_t *)(nm), (uint8_t *)(v), (nl), (vl), NGHTTP2_NV_FLAG_NONE}
    NV(":method", 7, r->method, r->method_len);
    NV(":scheme", 7, "https", 5);
    NV(":path", 5, r->path, r->path_len);
    NV(":authority", 10, r->authority, r->authority_len);
    for (size_t i = 0; i < r->nfields; i++) {
        const struct skiff_h2_field *f = &r->fields[i];
        if (h2_request_field(f->name, f->name_len))
            NV(f->name, f->name_len, f->value, f->value_len);
    }
#undef NV
    st->h = h;
    st->call = call;
    st->body = body ? body : "";
    st->body_len = body ? body_len : 0;
    st->streaming = body == skiff_h2_streamed;
    skiff_buf_init(&st->sq, 2 * SKIFF_H2_HIGH_WATER);
    /* A request with a body (a POST, even an empty one) goes as HEADERS then DATA; a GET
     * ends with its HEADERS. */
    int with_body = !(r->method_len == 3 && !memcmp(r->method, "GET", 3));
    nghttp2_data_provider prd = {.source = {.ptr = st}, .read_callback = read_body};
    int32_t id = nghttp2_submit_request(h->s, NULL, nv, n, with_body ? &prd : NULL, st);
    if (id < 0)
        goto out;
    st->id = id;
    st->next = h->streams;
    if (h->streams)
        h->streams->prev = st;
    h->streams = st;
    st = NULL;
    h->ncalls++;
    h->nopen++;
    rc = 0;
    skiff_h2_flush(h); /* a failed send kills the session: the owner ends the connection */
out:
    free(st);
    if (nv != few)
        free(nv);
    return rc;
}

void
skiff_h2_cancel(struct skiff_h2 *h, void *call)
{
    struct h2_stream *st = find(h, call);
    if (!st)
        return;
    detach(st);
    if (h->dead)
        return;
    if (st->closed) {
        if (!h->busy)
            stream_free(st); /* else the loop that called back frees it */
        return;
    }
    nghttp2_submit_rst_stream(h->s, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_CANCEL);
    skiff_h2_flush(h);
}

void
skiff_h2_resume(struct skiff_h2 *h, void *call)
{
    struct h2_stream *st = find(h, call);
    if (!st || !st->paused)
        return;
    st->paused = 0;
    if (st->held_len) {
        char *held = st->held;
        size_t len = st->held_len;
        st->held = NULL;
        st->held_len = st->held_cap = 0;
        h->busy++;
        int rc = h->ops->on_data(call, held, len);
        h->busy--;
        free(held);
        if (st->call && rc == 1)
            st->paused = 1;
        if (!st->closed && !h->dead)
            nghttp2_session_consume_stream(h->s, st->id, len);
    }
    h->busy++;
    maybe_end(st);
    h->busy--;
    if (!st->call && st->closed)
        stream_free(st);
    if (!h->dead)
        skiff_h2_flush(h);
}

size_t
skiff_h2_body_write(struct skiff_h2 *h, void *call, const char *data, size_t len)
{
    struct h2_stream *st = find(h, call);
    if (!st || !st->streaming || st->body_end || h->dead)
        return 0;
    if (st->sq_off && (st->sq_off >= st->sq.len / 2 || st->sq.len + len > st->sq.max)) {
        /* What went is dropped from the front once it is the larger part. */
        memmove(st->sq.data, st->sq.data + st->sq_off, st->sq.len - st->sq_off);
        st->sq.len -= st->sq_off;
        st->sq_off = 0;
    }
    if (skiff_buf_add(&st->sq, data, len))
        return (size_t)-1;
    if (!st->closed)
        nghttp2_session_resume_data(h->s, st->id);
    size_t queued = st->sq.len - st->sq_off;
    skiff_h2_flush(h);
    st = find(h, call);
    return st ? st->sq.len - st->sq_off : queued;
}

void
skiff_h2_body_end(struct skiff_h2 *h, void *call)
{
    struct h2_stream *st = find(h, call);
    if (!st || !st->streaming || st->body_end || h->dead)
        return;
    st->body_end = 1;
    if (!st->closed)
        nghttp2_session_resume_data(h->s, st->id);
    skiff_h2_flush(h);
}

void
skiff_h2_fail(struct skiff_h2 *h, const char *error)
{
    h->dead = 1;
    for (;;) {
        struct h2_stream *st = h->streams;
        while (st && !st->call)
            st = st->next;
        if (!st)
            break;
        char msg[300];
        snprintf(msg, sizeof msg, "%s %s", error,
                 st->remote_end && st->got_head ? "after the response (the rest was held)"
                 : st->got_head                 ? "before the response was complete"
                                                : "without answering");
        int not_processed = !st->sent;
        void *call = detach(st);
        h->ops->on_end(call, msg, not_processed);
    }
}

int
skiff_h2_capacity(const struct skiff_h2 *h)
{
    uint32_t max =
        nghttp2_session_get_remote_settings(h->s, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
    return max > 1000 ? 1000 : (int)max;
}

int
skiff_h2_can_open(const struct skiff_h2 *h)
{
    return !h->dead && !h->goaway && nghttp2_session_check_request_allowed(h->s) &&
           h->nopen < skiff_h2_capacity(h);
}

int
skiff_h2_calls(const struct skiff_h2 *h)
{
    return h->ncalls;
}

int
skiff_h2_finished(const struct skiff_h2 *h)
{
    return h->dead || (!nghttp2_session_want_read(h->s) && !nghttp2_session_want_write(h->s)) ||
           (h->goaway && h->nopen == 0);
}

const char *
skiff_h2_error(const struct skiff_h2 *h)
{
    return h->err;
}
