/*
 * The own client's HTTP/2 scheduling (relay/h1conn.h): calls onto the streams of shared
 * connections whose TLS handshake picked h2, through relay/h2client.c's sessions.
 */
#include "relay/h1conn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

/* ---- HTTP/2 ------------------------------------------------------------------------------
 *
 * When a TLS handshake picks h2 (ALPN), the connection stops belonging to one call: it
 * joins its origin's h2conns, carries a session (relay/h2client.c) and takes calls as
 * streams while the upstream's SETTINGS_MAX_CONCURRENT_STREAMS leaves room; when every
 * connection is full, another is opened. Calls that find none with room while connections
 * that may turn out HTTP/2 are on their way wait on the origin (wait_head) instead of each
 * opening its own: a burst of 1,000 calls opens ten connections, not 1,000. A handshake that
 * picks http/1.1 marks the origin h1_only, and the waiting calls go the HTTP/1.1 way.
 *
 * An h2 call keeps its timer, phases and ending (finish, retire) as any call; it has no
 * conn (h2conn instead), and its answer comes through the session's callbacks, not the
 * HTTP/1.1 framing. A stream the upstream certainly did not act on (refused, above a
 * GOAWAY's last stream, or never sent) goes once more, as a request on a dead keep-alive
 * connection does; anything else fails the call and the relay decides.
 */

static void h2_dispatch(struct h1_origin *o, struct skiff_h1c *cl);
static void h2_check(struct h1_conn *k);

/* From the loop, soon: ends the HTTP/2 connections whose sessions have no more use and
 * moves waiting calls onto the room that opened. For work found inside skiff_h1c_start,
 * _cancel or a session callback, where calling other calls back would surprise the caller. */
static void
h2_reap_cb(uv_timer_t *t)
{
    struct skiff_h1c *cl = t->data;
    for (struct h1_origin *o = cl->origins; o; o = o->next) {
        for (struct h1_conn *k = o->h2conns, *next; k; k = next) {
            next = k->h2next;
            h2_check(k);
        }
        if (o->wait_head)
            h2_dispatch(o, cl);
    }
}

void
h2_reap_soon(struct skiff_h1c *cl)
{
    if (!cl->closing)
        uv_timer_start(&cl->h2_reap, h2_reap_cb, 0, 0);
}

void
h2_cand_done(struct h1_conn *k)
{
    if (!k->h2cand)
        return;
    k->h2cand = 0;
    k->origin->h2_opening--;
}

static void
wait_unlink(struct h1_call *c)
{
    struct h1_origin *o = c->origin;
    if (!c->waiting)
        return;
    if (c->wprev)
        c->wprev->wnext = c->wnext;
    else
        o->wait_head = c->wnext;
    if (c->wnext)
        c->wnext->wprev = c->wprev;
    else
        o->wait_tail = c->wprev;
    c->wprev = c->wnext = NULL;
    c->waiting = 0;
    o->nwait--;
}

static void
wait_push(struct h1_call *c)
{
    struct h1_origin *o = c->origin;
    c->waiting = 1;
    c->wprev = o->wait_tail;
    c->wnext = NULL;
    if (o->wait_tail)
        o->wait_tail->wnext = c;
    else
        o->wait_head = c;
    o->wait_tail = c;
    o->nwait++;
    c->phase = CONNECTING; /* the connect timeout covers the wait */
    arm(c);
}

/* An HTTP/2 connection of the origin that takes a new stream now, or NULL. */
static struct h1_conn *
h2_usable(const struct h1_origin *o)
{
    for (struct h1_conn *k = o->h2conns; k; k = k->h2next)
        if (!k->closing && skiff_h2_can_open(k->h2))
            return k;
    return NULL;
}

/* Streams a connection may carry: what an open one says, else what Google serves. */
static int
h2_per_conn(const struct h1_origin *o)
{
    return o->h2conns ? skiff_h2_capacity(o->h2conns->h2) : 100;
}

/* Ends an HTTP/2 connection whose session has no more use (failed, or drained after a
 * GOAWAY), unless the session is on the stack: then after it returns. */
static void
h2_check(struct h1_conn *k)
{
    if (k->closing || !k->h2 || !skiff_h2_finished(k->h2))
        return;
    if (k->in_h2) {
        h2_reap_soon(k->cl);
        return;
    }
    const char *e = skiff_h2_error(k->h2);
    h2_conn_end(k, *e ? e : "the upstream closed the HTTP/2 connection (GOAWAY)");
}

/* Submits c's request, from the parts of its head, as a stream on k's session. */
static int
h2_submit(struct h1_call *c, struct h1_conn *k)
{
    const struct h1_reqparts *p = &c->parts;
    const char *b = c->req.data;
    struct skiff_h2_field few[24], *f = few;
    if (!b || !p->fields || p->bad)
        return -1;
    if (p->nfields > sizeof few / sizeof few[0] && !(f = malloc(p->nfields * sizeof *f)))
        return -1;
    for (size_t i = 0; i < p->nfields; i++) {
        const struct h1_span *s = &p->fields[2 * i];
        f[i] = (struct skiff_h2_field){b + s[0].at, b + s[1].at, s[0].len, s[1].len};
    }
    struct skiff_h2_req r = {
        .method = b + p->method.at,
        .method_len = p->method.len,
        .path = b + p->target.at,
        .path_len = p->target.len,
        .authority = b + p->authority.at,
        .authority_len = p->authority.len,
        .fields = f,
        .nfields = p->nfields,
    };
    k->in_h2++;
    int rc = skiff_h2_submit(k->h2, &r, c->streaming ? skiff_h2_streamed : c->body, c->body_len, c);
    k->in_h2--;
    if (f != few)
        free(f);
    return rc;
}

/* Starts c's stream on k. */
static void
h2_start_stream(struct h1_call *c, struct h1_conn *k)
{
    c->h2conn = k;
    c->phase = WAITING;
    arm(c);
    int rc = h2_submit(c, k);
    if (rc < 0) {
        c->h2conn = NULL;
        finish(c, "could not start an HTTP/2 stream to the upstream");
        return;
    }
    c->wrote = 1;
    if (c->streaming)
        stream_head_sent(c);
    k->idle_since = 0;
    if (skiff_h2_finished(k->h2))
        h2_reap_soon(k->cl); /* the send failed: the connection ends from the loop */
}

/* Places a new call on an HTTP/2 stream, or queues it for one; 0 when it must open a
 * connection of its own (the origin is not known to be HTTP/1.1-only, but nothing that may
 * carry it is on the way). */
int
h2_try(struct h1_call *c)
{
    struct h1_origin *o = c->origin;
    struct skiff_h1c *cl = c->cl;
    if (!o->tls || o->h1_only || uv_now(cl->loop) < o->tls_failed_until)
        return 0;
    struct h1_conn *k = h2_usable(o);
    int placed = 1, starting = c->starting;
    c->starting = 1;
    if (k)
        h2_start_stream(c, k);
    else if (o->h2_opening > 0 && o->nwait < o->h2_opening * (h2_per_conn(o) - 1))
        wait_push(c);
    else {
        /* It opens a connection: counted from now (a name takes a while to resolve), so the
         * calls right behind it wait for that connection instead of opening their own. */
        placed = 0;
        c->h2cand = 1;
        o->h2_opening++;
    }
    c->starting = starting;
    return placed;
}

/* Moves waiting calls onto streams with room, or onto connections of their own. */
static void
h2_dispatch(struct h1_origin *o, struct skiff_h1c *cl)
{
    while (o->wait_head && !cl->closing) {
        struct h1_call *c = o->wait_head;
        struct h1_conn *k = o->h1_only ? NULL : h2_usable(o);
        if (k) {
            wait_unlink(c);
            h2_start_stream(c, k);
            continue;
        }
        if (!o->h1_only && o->nwait <= o->h2_opening * (h2_per_conn(o) - 1))
            return; /* the connections on their way take them */
        wait_unlink(c);
        if (uv_now(cl->loop) < o->tls_failed_until) {
            finish(c, o->tls_error);
            continue;
        }
        if (!o->h1_only) {
            c->h2cand = 1;
            o->h2_opening++;
        }
        connect_next(c); /* its own connection: HTTP/1.1, or one more HTTP/2 */
    }
}

/* The call leaves whatever HTTP/2 state it had: the queue, or its stream (reset unless it
 * ended). */
void
h2_leave(struct h1_call *c)
{
    wait_unlink(c);
    if (c->h2cand) {
        c->h2cand = 0;
        if (--c->origin->h2_opening == 0 && c->origin->wait_head)
            h2_reap_soon(c->cl); /* the calls waiting for it need another way */
    }
    struct h1_conn *k = c->h2conn;
    if (!k)
        return;
    c->h2conn = NULL;
    k->in_h2++;
    skiff_h2_cancel(k->h2, c);
    k->in_h2--;
    if (skiff_h2_calls(k->h2) == 0)
        k->idle_since = uv_now(k->cl->loop);
    if (skiff_h2_finished(k->h2) || c->origin->wait_head)
        h2_reap_soon(k->cl);
}

/* ---- the session's callbacks ---- */

static int
h2_send(void *conn, const char *data, size_t len)
{
    struct h1_conn *k = conn;
    if (k->closing || skiff_tls_write(k->tls, data, len) < 0)
        return -1;
    return flush_tls(k) < 0 ? -1 : 0;
}

static void
h2_on_head(void *call, int status, const char *headers, size_t len)
{
    struct h1_call *c = call;
    c->got_bytes = 1;
    c->phase = RECEIVING;
    wipe(&c->req); /* it held the key, and will not go again */
    int rc = c->base.ops->on_status(&c->base, status, headers, len);
    if (c->cancelled || c->done)
        return;
    if (rc != 0) {
        finish(c, STOPPED);
        return;
    }
    arm(c);
}

static int
h2_on_data(void *call, const char *data, size_t len)
{
    struct h1_call *c = call;
    int rc = c->base.ops->on_body(&c->base, data, len);
    if (c->cancelled || c->done)
        return 0;
    if (rc < 0) {
        finish(c, STOPPED);
        return 0;
    }
    if (rc == 1) {
        c->paused = 1;
        uv_timer_stop(&c->timer);
        return 1;
    }
    arm(c);
    return 0;
}

static void
h2_on_end(void *call, const char *error, int not_processed)
{
    struct h1_call *c = call;
    struct h1_conn *k = c->h2conn;
    c->h2conn = NULL; /* the session has forgotten the call */
    if (k && skiff_h2_calls(k->h2) == 0)
        k->idle_since = uv_now(c->cl->loop);
    if (error && not_processed && !c->retried && !c->got_bytes && !c->body_written &&
        !c->cl->closing) {
        /* The upstream never acted on it: once more, on another connection. */
        c->retried = 1;
        if (!h2_try(c))
            connect_next(c);
    } else {
        finish(c, error);
    }
    if (k && !k->closing && c->origin->wait_head)
        h2_dispatch(c->origin, c->cl);
}

static void
h2_on_drain(void *call)
{
    stream_written(call);
}

static const struct skiff_h2_ops h2_ops = {
    .send = h2_send,
    .on_head = h2_on_head,
    .on_data = h2_on_data,
    .on_end = h2_on_end,
    .on_drain = h2_on_drain,
};

/* ---- connections ---- */

/* The TLS handshake is complete. ALPN h2: the connection becomes the origin's HTTP/2
 * connection (the call that opened it, if any, its first stream) and 1 is returned; else
 * the origin is HTTP/1.1-only and 0 lets the caller send the call's HTTP/1.1 request. */
int
h2_handshaken(struct h1_conn *k)
{
    struct h1_origin *o = k->origin;
    struct skiff_h1c *cl = k->cl;
    const char *name;
    size_t len;
    int cand = k->h2cand;
    h2_cand_done(k);
    skiff_tls_alpn(k->tls, &name, &len);
    if (!(len == 2 && !memcmp(name, "h2", 2))) {
        if (cand && !o->h1_only) {
            o->h1_only = 1;
            h2_dispatch(o, cl);
        }
        return 0;
    }
    struct h1_call *c = k->call;
    k->h2 = skiff_h2_new(&h2_ops, k);
    if (!k->h2) {
        if (c)
            finish(c, "out of memory setting up HTTP/2 to the upstream");
        else
            conn_close(k);
        return 1;
    }
    skiff_tls_keep_buffers(k->tls); /* ~34 KB for a connection of up to 100 streams */
    warm_unlink(k);
    k->h2prev = NULL;
    k->h2next = o->h2conns;
    if (o->h2conns)
        o->h2conns->h2prev = k;
    o->h2conns = k;
    k->idle_since = uv_now(cl->loop);
    if (c) {
        k->call = NULL;
        c->conn = NULL;
        h2_start_stream(c, k);
    } else {
        k->in_h2++;
        skiff_h2_flush(k->h2); /* the preface and SETTINGS */
        k->in_h2--;
    }
    if (!k->closing)
        h2_dispatch(o, cl);
    if (!k->closing)
        h2_drain(k); /* the upstream's SETTINGS may have come with the handshake */
    return 1;
}

/* Decrypted bytes go to the session until TLS has no more; then the connection ends if the
 * session has no more use, and waiting calls take the room that opened. */
void
h2_drain(struct h1_conn *k)
{
    struct skiff_h1c *cl = k->cl;
    while (!k->closing) {
        ssize_t n = skiff_tls_read(k->tls, cl->pbuf, sizeof cl->pbuf);
        if (n == 0)
            break;
        if (n < 0) {
            h2_conn_end(k, *skiff_tls_error(k->tls) ? skiff_tls_error(k->tls)
                                                    : "the upstream closed the connection");
            return;
        }
        k->in_h2++;
        int rc = skiff_h2_recv(k->h2, cl->pbuf, (size_t)n);
        k->in_h2--;
        if (rc < 0) {
            h2_conn_end(k, skiff_h2_error(k->h2));
            return;
        }
    }
    if (k->closing)
        return;
    if (flush_tls(k) < 0) {
        h2_conn_end(k, "could not send to the upstream");
        return;
    }
    h2_check(k);
    if (!k->closing && k->origin->wait_head)
        h2_dispatch(k->origin, cl);
}

void
h2_conn_end(struct h1_conn *k, const char *why)
{
    if (k->closing)
        return;
    k->why = why;
    conn_close(k);
}

/* Inside conn_close: the connection leaves the origin, and its calls end (or go again on
 * another connection when the upstream never saw them). */
void
h2_conn_closing(struct h1_conn *k)
{
    struct h1_origin *o = k->origin;
    if (k->h2prev)
        k->h2prev->h2next = k->h2next;
    else if (o->h2conns == k)
        o->h2conns = k->h2next;
    if (k->h2next)
        k->h2next->h2prev = k->h2prev;
    k->h2prev = k->h2next = NULL;
    skiff_h2_fail(k->h2, k->why ? k->why : "the upstream connection closed");
    h2_dispatch(o, k->cl);
}

int
h2_resume(struct h1_call *c)
{
    struct h1_conn *k = c->h2conn;
    if (!k)
        return 0;
    k->in_h2++;
    skiff_h2_resume(k->h2, c);
    k->in_h2--;
    if (!c->paused && !c->cancelled && !c->done)
        arm(c);
    if (skiff_h2_finished(k->h2) || c->origin->wait_head)
        h2_reap_soon(k->cl);
    return 1;
}

/* HTTP/2 connections with no call for IDLE_MS close, except those kept warm. */
void
h2_sweep(struct skiff_h1c *cl, uint64_t now)
{
    for (struct h1_origin *o = cl->origins; o; o = o->next) {
        int keep = o == cl->warm ? cl->warm_n : 0;
        for (struct h1_conn *k = o->h2conns, *next; k; k = next) {
            next = k->h2next;
            if (skiff_h2_calls(k->h2) > 0 || !k->idle_since || now - k->idle_since < IDLE_MS)
                continue;
            if (keep > 0 && skiff_h2_can_open(k->h2)) {
                keep--;
                continue;
            }
            h2_conn_end(k, "the connection was idle");
        }
    }
}

/* Closes every HTTP/2 connection without a call, except the warm_n kept to the warm origin. */
void
h2_close_idle(struct skiff_h1c *cl)
{
    for (struct h1_origin *o = cl->origins; o; o = o->next) {
        int keep = o == cl->warm ? cl->warm_n : 0;
        for (struct h1_conn *k = o->h2conns, *next; k; k = next) {
            next = k->h2next;
            if (skiff_h2_calls(k->h2) > 0)
                continue;
            if (keep > 0 && skiff_h2_can_open(k->h2)) {
                keep--;
                continue;
            }
            h2_conn_end(k, "the connection was idle");
        }
    }
}

int
h2_warm_count(struct skiff_h1c *cl, struct h1_origin *o)
{
    (void)cl;
    int n = 0;
    for (struct h1_conn *k = o->h2conns; k; k = k->h2next)
        n += !k->closing && skiff_h2_can_open(k->h2);
    return n;
}

void
h2_close_all(struct skiff_h1c *cl)
{
    for (struct h1_origin *o = cl->origins; o; o = o->next)
        while (o->h2conns)
            h2_conn_end(o->h2conns, "the relay is shutting down");
}
