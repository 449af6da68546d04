/*
 * The own client's streamed request bodies (relay/h1conn.h, upstream.h's stream_body): an
 * upload's bytes go out as the relay reads them from its client, never gathered whole.
 *
 *   - Bytes written before the request head has gone (connecting, waiting for a stream)
 *     wait in the call (`early`); the head's going sends them and, from the loop, tells
 *     the writer it may go on (on_drain). A writer that waits for that first drain has
 *     handed nothing over when a connect fails, so its call may go again.
 *   - On HTTP/1.1 the bytes are written to the connection at once (copied), framed as
 *     chunks when the length is unknown; what waits is the socket's write queue. On HTTP/2
 *     they wait in the stream's queue until the upstream's windows let them go as DATA
 *     (relay/h2client.c).
 *   - A write that leaves SKIFF_UPCALL_HIGH_WATER or more waiting owes the writer a drain
 *     once fewer than SKIFF_UPCALL_LOW_WATER wait (write callbacks, or the session's drain).
 *   - While the body goes, the call's timer bounds a write the upstream does not take
 *     (idle_ms with bytes queued; nothing while the writer is the slow side). The first-byte
 *     timeout starts at the end of the body.
 *   - Writes never call back: a failure inside one ends the call from the loop (`starting`
 *     makes finish defer its report).
 */
#include "relay/h1conn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Bytes written and not yet taken by the connection (or, on HTTP/2, framed). */
static size_t
waiting(const struct h1_call *c)
{
    if (!c->head_sent)
        return c->early.len;
    if (c->h2conn)
        return 0; /* the session's queue: skiff_h2_body_write says */
    return c->conn ? c->conn->tcp.write_queue_size : 0;
}

/* Writes data (framed as a chunk when chunked) to the HTTP/1.1 connection. 0, or a negative
 * libuv error. */
static int
wire_body(struct h1_call *c, const char *data, size_t len)
{
    struct h1_conn *k = c->conn;
    char pre[24];
    uv_buf_t bufs[3];
    unsigned n = 0;
    if (c->chunked_body) {
        int pl = snprintf(pre, sizeof pre, "%zx\r\n", len);
        bufs[n++] = uv_buf_init(pre, (unsigned)pl);
    }
    bufs[n++] = uv_buf_init((char *)data, (unsigned)len);
    if (c->chunked_body)
        bufs[n++] = uv_buf_init((char *)"\r\n", 2);
    int queued = 0, rc;
    if (k->tls) {
        for (unsigned i = 0; i < n; i++)
            if (skiff_tls_write(k->tls, bufs[i].base, bufs[i].len) < 0)
                return UV_EPROTO;
        rc = flush_tls(k);
    } else {
        rc = wire_write(k, bufs, n, 1, &queued);
    }
    return rc < 0 ? rc : 0;
}

/* Hands bytes to the connection or the stream. Returns what waits after it. */
static size_t
body_out(struct h1_call *c, const char *data, size_t len)
{
    if (c->h2conn) {
        struct h1_conn *k = c->h2conn;
        k->in_h2++;
        size_t q = skiff_h2_body_write(k->h2, c, data, len);
        k->in_h2--;
        c->body_written += len;
        if (q == (size_t)-1) {
            finish(c, "the upload outran the upstream's flow control");
            return 0;
        }
        if (skiff_h2_finished(k->h2))
            h2_reap_soon(k->cl);
        return q;
    }
    if (!c->conn)
        return 0;
    int rc = len ? wire_body(c, data, len) : 0;
    c->body_written += len;
    c->wrote = 1;
    if (rc < 0) {
        conn_failed(c, "could not send the request body to the upstream", rc);
        return 0;
    }
    return waiting(c);
}

/* The chunked body's end on HTTP/1.1, END_STREAM on HTTP/2; then the wait for the answer. */
static void
body_close(struct h1_call *c)
{
    if (c->h2conn) {
        struct h1_conn *k = c->h2conn;
        k->in_h2++;
        skiff_h2_body_end(k->h2, c);
        k->in_h2--;
        if (skiff_h2_finished(k->h2))
            h2_reap_soon(k->cl);
    } else if (c->conn && c->chunked_body) {
        static const char last[] = "0\r\n\r\n";
        uv_buf_t b = uv_buf_init((char *)last, sizeof last - 1);
        int queued = 0, rc;
        if (c->conn->tls)
            rc = skiff_tls_write(c->conn->tls, last, sizeof last - 1) < 0 ? UV_EPROTO
                                                                          : flush_tls(c->conn);
        else
            rc = wire_write(c->conn, &b, 1, 1, &queued);
        if (rc < 0) {
            conn_failed(c, "could not send the request body to the upstream", rc);
            return;
        }
    }
    if (!c->done && !c->cancelled && c->phase == WAITING)
        arm(c);
}

static void
ready_cb(uv_timer_t *t)
{
    struct h1_call *c = t->data;
    arm(c);
    if (c->on_drain)
        c->on_drain(&c->base);
}

/* The head has gone (or the stream opened): what waited follows it, and the writer hears
 * from the loop that it may go on. */
void
stream_head_sent(struct h1_call *c)
{
    if (c->head_sent)
        return;
    c->head_sent = 1;
    c->starting++;
    if (c->early.len) {
        struct skiff_buf b = c->early;
        skiff_buf_init(&c->early, b.max);
        body_out(c, b.data, b.len);
        skiff_buf_release(&b);
    }
    if (c->body_ended && !c->done)
        body_close(c);
    c->starting--;
    if (!c->done && !c->cancelled)
        uv_timer_start(&c->timer, ready_cb, 0, 0);
}

/* Bytes went out: a drain when one is owed, and the stall timer again. */
void
stream_written(struct h1_call *c)
{
    if (c->done || c->cancelled)
        return;
    if (c->phase == WAITING)
        arm(c);
    if (!c->want_drain || waiting(c) >= SKIFF_UPCALL_LOW_WATER)
        return;
    c->want_drain = 0;
    if (c->on_drain)
        c->on_drain(&c->base);
}

/* arm()'s timeout while the body goes (0: none), else ms as it is. */
long
stream_timeout(const struct h1_call *c, long ms)
{
    if (!c->streaming || c->body_ended || c->phase != WAITING)
        return ms;
    return c->head_sent && !c->h2conn && waiting(c) > 0 ? c->idle_ms : 0;
}

void
stream_release(struct h1_call *c)
{
    skiff_buf_release(&c->early);
}

size_t
skiff_h1c_write(struct skiff_upcall *call, const char *data, size_t len)
{
    struct h1_call *c = (struct h1_call *)call;
    if (!c->streaming || c->done || c->cancelled || c->body_ended)
        return 0;
    size_t q;
    if (!c->head_sent) {
        if (skiff_buf_add(&c->early, data, len)) {
            c->starting++;
            finish(c, "the relay wrote more of the upload than it may hold");
            c->starting--;
            return 0;
        }
        q = c->early.len;
    } else {
        c->starting++;
        q = body_out(c, data, len);
        c->starting--;
    }
    if (q >= SKIFF_UPCALL_HIGH_WATER && !c->done)
        c->want_drain = 1;
    return c->done ? 0 : q;
}

void
skiff_h1c_end_body(struct skiff_upcall *call)
{
    struct h1_call *c = (struct h1_call *)call;
    if (!c->streaming || c->done || c->cancelled || c->body_ended)
        return;
    c->body_ended = 1;
    if (!c->head_sent)
        return; /* stream_head_sent ends it */
    c->starting++;
    body_close(c);
    c->starting--;
}
