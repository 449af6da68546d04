/*
 * The own client's connections (relay/h1conn.h): the idle and warm lists, the read path
 * (socket, TLS, the proxy's TLS, into the HTTP/1.1 framing or an HTTP/2 session), the write
 * path (try_write first, then uv_write), connecting to each address in turn and resolving.
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

static void resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res);

/* ---- connections ----------------------------------------------------------------------- */

void
idle_unlink(struct h1_conn *k)
{
    struct skiff_h1c *cl = k->cl;
    if (!k->idle)
        return;
    if (k->prev)
        k->prev->next = k->next;
    else
        cl->idle_head = k->next;
    if (k->next)
        k->next->prev = k->prev;
    else
        cl->idle_tail = k->prev;
    k->prev = k->next = NULL;
    k->idle = 0;
    cl->nidle--;
}

static void
free_conn(uv_handle_t *h)
{
    struct h1_conn *k = h->data;
    struct skiff_h1c *cl = k->cl;
    skiff_h2_free(k->h2);
    skiff_tls_free(k->tls);
    skiff_tls_free(k->ptls);
    free(k->hs);
    free(k);
    cl->nconns--;
    maybe_free_client(cl);
}

/* Takes a warm connection off the list of those not yet idle. */
void
warm_unlink(struct h1_conn *k)
{
    struct skiff_h1c *cl = k->cl;
    if (!k->warming)
        return;
    if (k->prev)
        k->prev->next = k->next;
    else
        cl->warm_conns = k->next;
    if (k->next)
        k->next->prev = k->prev;
    k->prev = k->next = NULL;
    k->warming = 0;
    cl->warming--;
}

void
conn_close(struct h1_conn *k)
{
    if (k->closing)
        return;
    k->closing = 1;
    idle_unlink(k);
    warm_unlink(k);
    if (k->h2cand) {
        h2_cand_done(k);
        if (k->origin->wait_head)
            h2_reap_soon(k->cl); /* its waiting calls need another connection */
    }
    if (k->sres)
        k->sres->k = NULL;
    k->sres = NULL;
    if (k->call)
        k->call->conn = NULL;
    k->call = NULL;
    uv_close((uv_handle_t *)&k->tcp, free_conn);
    if (k->h2)
        h2_conn_closing(k);
}

void
alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct h1_conn *k = h->data;
    (void)suggested;
    *buf = uv_buf_init(k->cl->rbuf, READ_BUF);
}

/* Hands on what TLS has decrypted, until it has nothing more or the call pauses. OpenSSL
 * may hold decrypted bytes no socket event will announce, so this runs after every feed
 * of ciphertext and again on resume. Plaintext on a connection with no call is an answer
 * nobody asked for: the connection closes. */
void
drain_tls(struct h1_conn *k)
{
    struct skiff_h1c *cl = k->cl;
    if (k->h2) {
        h2_drain(k);
        return;
    }
    while (!k->closing && !(k->call && k->call->paused)) {
        ssize_t n = skiff_tls_read(k->tls, cl->pbuf, sizeof cl->pbuf);
        if (n != 0 && flush_tls(k) < 0 && k->call) {
            conn_failed(k->call, "could not send to the upstream", 0);
            return;
        }
        if (n == 0)
            return;
        struct h1_call *c = k->call;
        if (!c) {
            conn_close(k);
            return;
        }
        if (n < 0) {
            if (*skiff_tls_error(k->tls))
                finish(c, skiff_tls_error(k->tls));
            else
                conn_eof(c);
            return;
        }
        feed(c, cl->pbuf, (size_t)n);
    }
}

void
conn_fail(struct h1_conn *k, const char *why)
{
    if (k->call)
        finish(k->call, why);
    else
        conn_close(k);
}

void
tls_handshake_failed(struct h1_conn *k, struct skiff_tls *tls, const char *fallback)
{
    struct h1_origin *o = k->origin;
    snprintf(o->tls_error, sizeof o->tls_error, "%s",
             *skiff_tls_error(tls) ? skiff_tls_error(tls) : fallback);
    o->tls_failed_until = uv_now(k->cl->loop) + TLS_FAIL_MS;
    conn_fail(k, o->tls_error);
}

/* Ciphertext arrived: the handshake goes on, or the records are decrypted. */
void
tls_in(struct h1_conn *k, const char *data, size_t len)
{
    struct h1_call *c = k->call;
    if (skiff_tls_feed(k->tls, data, len) < 0) {
        conn_fail(k, "out of memory reading from the upstream");
        return;
    }
    if (k->handshaking) {
        int rc = skiff_tls_handshake(k->tls);
        if (flush_tls(k) < 0)
            rc = -1;
        if (rc == 0)
            return;
        if (rc < 0) {
            tls_handshake_failed(k, k->tls, "the TLS handshake with the upstream failed");
            return;
        }
        k->handshaking = 0;
        k->origin->tls_failed_until = 0;
        if (h2_handshaken(k))
            return; /* ALPN picked h2: the call is a stream now, the connection is shared */
        if (c)
            send_request(c);
        else if (k->warming)
            idle_push(k); /* warm and ready for the first call */
        if (k->closing)
            return;
    }
    drain_tls(k);
}

/* Bytes off the wire (or out of the proxy's TLS): the tunnel's set-up, TLS, or the answer. */
void
wire_in(struct h1_conn *k, const char *data, size_t len)
{
    if (k->hs)
        proxy_in(k, data, len);
    else if (k->tls)
        tls_in(k, data, len);
    else if (!k->call)
        conn_close(k); /* idle: the upstream closed it, or said something unasked */
    else
        feed(k->call, data, len);
}

/* The connection ended: UV_EOF, a libuv error, or the proxy's TLS ended (its close_notify
 * as UV_EOF; an error as UV_EPROTO, with `why` from TLS). */
void
wire_end(struct h1_conn *k, ssize_t nread, const char *why)
{
    struct h1_call *c = k->call;
    if (k->h2) { /* its streams end with it (no call owns the connection) */
        h2_conn_end(k, why && *why       ? why
                       : nread == UV_EOF ? "the upstream closed the connection"
                                         : "the upstream connection failed");
        return;
    }
    if (!c) {
        conn_close(k);
        return;
    }
    if (why && *why) {
        finish(c, why);
        return;
    }
    if (k->phandshaking) {
        finish(c, nread == UV_EOF ? "the proxy closed the connection during the TLS handshake"
                                  : "the connection to the proxy failed during the TLS handshake");
        return;
    }
    if (k->hs) {
        finish(c, nread == UV_EOF ? "the proxy closed the connection while opening the tunnel"
                                  : "the connection to the proxy failed while opening the tunnel");
        return;
    }
    if (k->handshaking) {
        finish(c, nread == UV_EOF ? "the upstream closed the connection during the TLS handshake"
                                  : "the upstream connection failed during the TLS handshake");
        return;
    }
    if (nread == UV_EOF) {
        conn_eof(c);
        return;
    }
    conn_failed(c, "the upstream connection failed", (int)nread);
}

void
read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct h1_conn *k = s->data;
    if (nread == 0)
        return;
    if (nread < 0)
        wire_end(k, nread, NULL);
    else if (k->ptls)
        ptls_in(k, buf->base, (size_t)nread);
    else
        wire_in(k, buf->base, (size_t)nread);
}

/* ---- calls: connecting and sending --------------------------------------------------- */

static void
write_cb(uv_write_t *w, int status)
{
    struct wreq *r = (struct wreq *)w;
    struct h1_conn *k = r->k;
    free(r);
    k->writing--;
    struct h1_call *c = k->call;
    if (k->h2 && status < 0) {
        h2_conn_end(k, "could not send to the upstream");
        return;
    }
    if (!c)
        return; /* closed meanwhile, or idle (a TLS record sent after the answer) */
    if (status < 0)
        conn_failed(c, "could not send the request to the upstream", status);
    else if (c->streaming)
        stream_written(c);
}

/*
 * Writes bufs: straight to the socket first (a uv_write that completes at once still costs
 * an epoll_ctl on the next loop turn: libuv re-arms the watcher), the rest with a uv_write.
 * copy: the rest is copied (TLS output, which the session reuses); otherwise it must stay
 * put until the write completes (the call's head and body). Returns the bytes the socket
 * took at once (0 or more), or a negative libuv error.
 */
static int
conn_write(struct h1_conn *k, uv_buf_t *bufs, unsigned nbufs, int copy, int *queued)
{
    unsigned i = 0;
    int rc = uv_try_write((uv_stream_t *)&k->tcp, bufs, nbufs);
    if (rc < 0 && rc != UV_EAGAIN)
        return rc;
    size_t done = rc > 0 ? (size_t)rc : 0, took = done;
    while (i < nbufs && done >= bufs[i].len)
        done -= bufs[i++].len;
    if (i == nbufs)
        return (int)took;
    bufs[i].base += done;
    bufs[i].len -= done;
    size_t rest = 0;
    for (unsigned j = i; j < nbufs; j++)
        rest += bufs[j].len;
    struct wreq *r = malloc(sizeof *r + (copy ? rest : 0));
    if (!r)
        return UV_ENOMEM;
    r->k = k;
    uv_buf_t one;
    if (copy) {
        size_t at = 0;
        for (unsigned j = i; j < nbufs; j++) {
            memcpy(r->data + at, bufs[j].base, bufs[j].len);
            at += bufs[j].len;
        }
        one = uv_buf_init(r->data, (unsigned)rest);
    }
    rc = copy ? uv_write(&r->w, (uv_stream_t *)&k->tcp, &one, 1, write_cb)
              : uv_write(&r->w, (uv_stream_t *)&k->tcp, bufs + i, nbufs - i, write_cb);
    if (rc < 0) {
        free(r);
        return rc;
    }
    k->writing++;
    *queued = 1;
    return (int)took;
}

/* Sends what the proxy's TLS session has waiting. 0, or a negative libuv error. */
int
flush_ptls(struct h1_conn *k, int *queued)
{
    const char *p;
    size_t n = skiff_tls_out(k->ptls, &p);
    if (!n)
        return 0;
    uv_buf_t b = uv_buf_init((char *)p, (unsigned)n);
    int rc = conn_write(k, &b, 1, 1, queued);
    skiff_tls_out_consume(k->ptls, n);
    return rc;
}

/* conn_write, through the proxy's TLS session when there is one (then nothing points into
 * bufs once it returns: the records are copied). */
int
wire_write(struct h1_conn *k, uv_buf_t *bufs, unsigned nbufs, int copy, int *queued)
{
    if (!k->ptls)
        return conn_write(k, bufs, nbufs, copy, queued);
    for (unsigned i = 0; i < nbufs; i++)
        if (bufs[i].len && skiff_tls_write(k->ptls, bufs[i].base, bufs[i].len) < 0)
            return UV_EPROTO;
    return flush_ptls(k, queued);
}

/* Sends what TLS has waiting. 0, or a negative libuv error. */
int
flush_tls(struct h1_conn *k)
{
    const char *p;
    size_t n = skiff_tls_out(k->tls, &p);
    if (!n)
        return 0;
    uv_buf_t b = uv_buf_init((char *)p, (unsigned)n);
    int queued = 0;
    int rc = wire_write(k, &b, 1, 1, &queued);
    skiff_tls_out_consume(k->tls, n);
    return rc < 0 ? rc : 0;
}

/* A connection to one address of the origin failed: the next address, or the end. */
static void
connect_failed(struct h1_call *c, struct h1_conn *k, int err)
{
    conn_close(k);
    if (c->ai_next) {
        connect_next(c);
        return;
    }
    char msg[400];
    if (c->origin->proxied)
        snprintf(msg, sizeof msg, "could not connect to the proxy at %s:%s (%s)",
                 c->origin->proxy.host, c->origin->proxy.port, uv_strerror(err));
    else
        snprintf(msg, sizeof msg, "could not connect to the upstream at %s (%s)", c->origin->key,
                 uv_strerror(err));
    finish(c, msg);
}

static void
connect_cb(uv_connect_t *req, int status)
{
    struct h1_conn *k = req->data;
    free(req);
    struct h1_call *c = k->call;
    if (!c)
        return; /* the call went away meanwhile; the connection is closing */
    if (status < 0) {
        connect_failed(c, k, status);
        return;
    }
    uv_tcp_keepalive(&k->tcp, 1, 60);
    int rc = uv_read_start((uv_stream_t *)&k->tcp, alloc_cb, read_cb);
    if (rc < 0) {
        conn_failed(c, "could not read from the upstream connection", rc);
        return;
    }
    if (k->origin->proxied && k->origin->proxy.tls) {
        /* TLS to the proxy first; CONNECT (or the forwarded request) once it is up. */
        k->ptls = skiff_tls_new(c->cl->tls, k->origin->proxy.host, &k->origin->proxy_session);
        if (!k->ptls || skiff_tls_for_proxy(k->ptls) < 0) {
            finish(c, "out of memory setting up TLS to the proxy");
            return;
        }
        k->phandshaking = 1;
        int queued = 0;
        if (skiff_tls_handshake(k->ptls) < 0 || flush_ptls(k, &queued) < 0)
            finish(c, *skiff_tls_error(k->ptls) ? skiff_tls_error(k->ptls)
                                                : "could not start TLS with the proxy");
        return;
    }
    conn_connected(c, k);
}

/* The connection reaches the proxy (TLS done, for an https:// one) or the upstream: the
 * tunnel starts, or TLS with the upstream, or the request goes. */
void
conn_connected(struct h1_call *c, struct h1_conn *k)
{
    if (tunnelled(k->origin))
        proxy_begin(c, k);
    else
        conn_ready(c, k);
}

/* The connection reaches the upstream (directly or through the proxy's tunnel): TLS
 * starts, or the request goes. */
void
conn_ready(struct h1_call *c, struct h1_conn *k)
{
    if (!k->origin->tls) {
        send_request(c);
        return;
    }
    /* TLS: the ClientHello goes now; the request follows the handshake (tls_in). */
    k->tls = skiff_tls_new(c->cl->tls, k->origin->host, &k->origin->session);
    if (!k->tls) {
        finish(c, "out of memory setting up TLS to the upstream");
        return;
    }
    k->handshaking = 1;
    if (skiff_tls_handshake(k->tls) < 0 || flush_tls(k) < 0)
        finish(c, *skiff_tls_error(k->tls) ? skiff_tls_error(k->tls)
                                           : "could not start TLS with the upstream");
}

/* Opens a connection to the next address of the origin (resolving it first if needed). */
void
connect_next(struct h1_call *c)
{
    struct skiff_h1c *cl = c->cl;
    c->phase = CONNECTING;
    arm(c);
    if (!c->ai_next) {
        if (c->ai)
            uv_freeaddrinfo(c->ai);
        c->ai = NULL;
        /* Numeric hosts resolve on the spot; names go to libuv's thread pool. */
        unsigned char tmp[sizeof(struct in6_addr)];
        const struct h1_origin *og = c->origin;
        const char *host = og->proxied ? og->proxy.host : og->host;
        const char *port = og->proxied ? og->proxy.port : og->port;
        int numeric = inet_pton(AF_INET, host, tmp) == 1 || inet_pton(AF_INET6, host, tmp) == 1;
        struct addrinfo hints = {.ai_family = AF_UNSPEC,
                                 .ai_socktype = SOCK_STREAM,
                                 .ai_flags = numeric ? AI_NUMERICHOST : AI_ADDRCONFIG};
        if (numeric) {
            uv_getaddrinfo_t req;
            if (uv_getaddrinfo(cl->loop, &req, NULL, host, port, &hints) < 0 || !req.addrinfo) {
                finish(c, "could not resolve the upstream's address");
                return;
            }
            c->ai = c->ai_next = req.addrinfo;
        } else {
            struct resolve *r = calloc(1, sizeof *r);
            if (!r) {
                finish(c, "out of memory resolving the upstream");
                return;
            }
            r->call = c;
            r->req.data = r;
            c->resolving = r;
            int rc = uv_getaddrinfo(cl->loop, &r->req, resolved, host, port, &hints);
            if (rc < 0) {
                c->resolving = NULL;
                free(r);
                conn_failed(c, "could not resolve the upstream's host name", rc);
            }
            return;
        }
    }
    struct addrinfo *ai = c->ai_next;
    c->ai_next = ai->ai_next;
    if (c->addr_ok && !c->addr_ok(ai->ai_addr, c->base.data)) {
        if (c->ai_next)
            connect_next(c);
        else
            finish(c, "every address of the host was refused");
        return;
    }
    struct h1_conn *k = calloc(1, sizeof *k);
    if (!k) {
        finish(c, "out of memory opening an upstream connection");
        return;
    }
    k->cl = cl;
    k->origin = c->origin;
    uv_tcp_init(cl->loop, &k->tcp);
    cl->nconns++;
    k->tcp.data = k;
    k->call = c;
    c->conn = k;
    if (c->h2cand) {
        k->h2cand = 1; /* the count moves from the call to its connection */
        c->h2cand = 0;
    } else if (c->origin->tls && !c->origin->h1_only) {
        k->h2cand = 1; /* calls for the origin may wait for its streams (h2_try) */
        c->origin->h2_opening++;
    }
    uv_tcp_nodelay(&k->tcp, 1);
    uv_connect_t *req = malloc(sizeof *req);
    if (req)
        req->data = k;
    int rc = req ? uv_tcp_connect(req, &k->tcp, ai->ai_addr, connect_cb) : UV_ENOMEM;
    if (rc < 0) {
        free(req);
        connect_failed(c, k, rc);
    }
}

static void
resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    struct resolve *r = req->data;
    struct h1_call *c = r->call;
    free(r);
    if (!c) {
        if (res)
            uv_freeaddrinfo(res);
        return;
    }
    c->resolving = NULL;
    if (status < 0 || !res) {
        if (res)
            uv_freeaddrinfo(res);
        char msg[400];
        snprintf(msg, sizeof msg, "could not resolve the upstream host %s (%s)", c->origin->host,
                 uv_strerror(status));
        finish(c, msg);
        return;
    }
    c->ai = c->ai_next = res;
    connect_next(c);
}
