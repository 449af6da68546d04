/*
 * The upstream side of a WebSocket session (relay/wstunnel.h): resolve, connect to each
 * address in turn, the proxy's tunnel (relay/proxy.c, over TLS to an https:// proxy), TLS to
 * the upstream (relay/tls.c), the opening handshake, then bytes both ways.
 *
 * The read path is layered the way the connection is: socket -> the proxy's TLS (https://
 * proxy) -> the proxy's handshake -> the upstream's TLS -> the answer's head -> the caller.
 * The write path goes down the same layers. Every layer hands all it has to the next in one
 * go, so pausing stops the socket: what one socket read brought is delivered whole.
 */
#include "relay/wstunnel.h"

#include <netdb.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/buf.h"
#include "base/url.h"
#include "relay/h1resp.h"
#include "relay/proxy.h"
#include "relay/tls.h"
#include "server/websocket.h" /* skiff_ws_accept */

#define MAX_HEAD (16u * 1024)         /* the upstream's answer head */
#define MAX_REFUSAL_BODY (64u * 1024) /* what of a refusal's body is kept */
#define CLOSE_FLUSH_MS 1000           /* how long a close waits for queued bytes */
#define MAX_CTX 4                     /* TLS contexts per client (one per ca_file) */
#define READ_CHUNK 16384

static const unsigned char ALPN_H1[] = "\x08http/1.1";

struct skiff_wsclient {
    uv_loop_t *loop;
    struct {
        char *ca_file; /* NULL: the system store alone */
        struct skiff_tls_ctx *ctx;
    } ctx[MAX_CTX];
    int nctx;
};

enum state {
    ST_RESOLVE,  /* getaddrinfo in flight (the upstream's name first, for socks5://) */
    ST_CONNECT,  /* uv_tcp_connect in flight */
    ST_PROXY,    /* the proxy's TLS and handshake */
    ST_TLS,      /* the upstream's TLS handshake */
    ST_HEAD,     /* the request went; waiting for the answer's head */
    ST_BODY,     /* a refusal's body */
    ST_OPEN,     /* 101: bytes both ways */
    ST_FLUSHING, /* closed by the caller: queued bytes go out, then the connection closes */
    ST_DEAD,     /* handles closing */
};

struct skiff_wstunnel {
    struct skiff_wsclient *cl;
    const struct skiff_wstunnel_ops *ops;
    void *data;
    enum state st;
    int quiet; /* no callback any more (closed by the caller, or ended) */
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_getaddrinfo_t gai;
    uv_connect_t creq;
    int tcp_open, timer_open, gai_pending;
    char *url; /* the caller's URL, wiped when the tunnel goes */
    char host[256], port[8];
    int tls_on;
    struct skiff_proxy proxy;
    int proxied;
    struct skiff_proxy_hs phs;
    char socks_addr[64]; /* socks5://: the upstream's address, resolved here */
    struct skiff_tls *tls, *ptls;
    int ptls_done; /* the proxy's TLS handshake is complete */
    struct skiff_tls_ctx *ctx;
    int own_ctx;              /* ctx is this tunnel's (the client's table was full) */
    struct skiff_buf reqhead; /* the GET and its headers, wiped once sent */
    char accept[29];          /* the Sec-WebSocket-Accept the upstream must answer */
    struct addrinfo *ai, *ai_next;
    int last_errno;
    long handshake_ms;
    struct skiff_buf in;   /* the answer's head as it gathers */
    struct skiff_buf hdrs; /* the parsed head's header block */
    struct skiff_buf body; /* a refusal's body */
    struct skiff_h1resp resp;
    size_t queued; /* bytes handed to uv_write not yet written */
    int want_drain;
    int paused;
};

struct wreq {
    uv_write_t w;
    struct skiff_wstunnel *t;
    size_t len;
    char bytes[];
};

static void teardown(struct skiff_wstunnel *t);
static void layer_proxy(struct skiff_wstunnel *t, const char *data, size_t len);
static void layer_tls(struct skiff_wstunnel *t, const char *data, size_t len);
static void layer_head(struct skiff_wstunnel *t, const char *data, size_t len);

/* ---- the client ------------------------------------------------------------------------ */

struct skiff_wsclient *
skiff_wsclient_new(uv_loop_t *loop)
{
    struct skiff_wsclient *cl = calloc(1, sizeof *cl);
    if (cl)
        cl->loop = loop;
    return cl;
}

void
skiff_wsclient_free(struct skiff_wsclient *cl)
{
    if (!cl)
        return;
    for (int i = 0; i < cl->nctx; i++) {
        skiff_tls_ctx_free(cl->ctx[i].ctx);
        free(cl->ctx[i].ca_file);
    }
    free(cl);
}

/* The TLS context for ca_file (made on first use); NULL with the reason in err. */
static struct skiff_tls_ctx *
client_ctx(struct skiff_wsclient *cl, const char *ca_file, char *err, size_t errlen)
{
    for (int i = 0; i < cl->nctx; i++)
        if ((!ca_file && !cl->ctx[i].ca_file) ||
            (ca_file && cl->ctx[i].ca_file && strcmp(ca_file, cl->ctx[i].ca_file) == 0))
            return cl->ctx[i].ctx;
    struct skiff_tls_ctx *ctx =
        skiff_tls_ctx_new(ca_file, ALPN_H1, sizeof ALPN_H1 - 1, err, errlen);
    if (!ctx || cl->nctx == MAX_CTX)
        return ctx; /* a context past the table's size is the tunnel's own (freed with it) */
    cl->ctx[cl->nctx].ca_file = ca_file ? strdup(ca_file) : NULL;
    cl->ctx[cl->nctx].ctx = ctx;
    cl->nctx++;
    return ctx;
}

static int
ctx_is_shared(const struct skiff_wsclient *cl, const struct skiff_tls_ctx *ctx)
{
    for (int i = 0; i < cl->nctx; i++)
        if (cl->ctx[i].ctx == ctx)
            return 1;
    return 0;
}

void *
skiff_wstunnel_data(const struct skiff_wstunnel *t)
{
    return t->data;
}

/* ---- the end --------------------------------------------------------------------------- */

static void
free_tunnel(struct skiff_wstunnel *t)
{
    if (t->tcp_open || t->timer_open || t->gai_pending)
        return;
    if (t->ai)
        freeaddrinfo(t->ai);
    skiff_tls_free(t->tls);
    skiff_tls_free(t->ptls);
    if (t->own_ctx)
        skiff_tls_ctx_free(t->ctx); /* the client may be gone: its own are its to free */
    if (t->url) {
        memset(t->url, 0, strlen(t->url));
        free(t->url);
    }
    if (t->reqhead.data)
        memset(t->reqhead.data, 0, t->reqhead.len);
    skiff_buf_release(&t->reqhead);
    skiff_buf_release(&t->in);
    skiff_buf_release(&t->hdrs);
    skiff_buf_release(&t->body);
    memset(&t->proxy, 0, sizeof t->proxy);
    memset(&t->phs, 0, sizeof t->phs);
    free(t);
}

static void
on_handle_closed(uv_handle_t *h)
{
    struct skiff_wstunnel *t = h->data;
    if (h == (uv_handle_t *)&t->tcp)
        t->tcp_open = 0;
    else
        t->timer_open = 0;
    free_tunnel(t);
}

/* Closes the handles; the memory goes once they are closed (and a lookup in flight ends). */
static void
teardown(struct skiff_wstunnel *t)
{
    if (t->st == ST_DEAD)
        return;
    t->st = ST_DEAD;
    t->quiet = 1;
    if (t->gai_pending)
        uv_cancel((uv_req_t *)&t->gai);
    if (t->tcp_open && !uv_is_closing((uv_handle_t *)&t->tcp))
        uv_close((uv_handle_t *)&t->tcp, on_handle_closed);
    if (t->timer_open && !uv_is_closing((uv_handle_t *)&t->timer))
        uv_close((uv_handle_t *)&t->timer, on_handle_closed);
    free_tunnel(t);
}

/* The tunnel did not open: on_refused, then the end. */
static void
refuse(struct skiff_wstunnel *t, int status, const char *error)
{
    if (t->quiet) {
        teardown(t);
        return;
    }
    t->quiet = 1;
    t->ops->on_refused(t, status, t->hdrs.data ? t->hdrs.data : "", t->hdrs.len,
                       t->body.data ? t->body.data : "", t->body.len, error);
    teardown(t);
}

static void
fail(struct skiff_wstunnel *t, const char *why)
{
    if (t->st == ST_OPEN) {
        if (!t->quiet) {
            t->quiet = 1;
            t->ops->on_close(t, why);
        }
        teardown(t);
        return;
    }
    if (t->st == ST_FLUSHING || t->st == ST_DEAD) {
        teardown(t);
        return;
    }
    refuse(t, 0, why);
}

static void
failf(struct skiff_wstunnel *t, const char *fmt, const char *a, const char *b)
{
    char msg[512];
    snprintf(msg, sizeof msg, fmt, a, b);
    fail(t, msg);
}

/* ---- writing --------------------------------------------------------------------------- */

static void
on_written(uv_write_t *w, int status)
{
    struct wreq *r = (struct wreq *)w;
    struct skiff_wstunnel *t = r->t;
    t->queued -= r->len;
    free(r);
    if (status < 0) {
        if (status != UV_ECANCELED)
            failf(t, "writing to the upstream failed: %s%s", uv_strerror(status), "");
        return;
    }
    if (t->queued)
        return;
    if (t->st == ST_FLUSHING) {
        teardown(t);
        return;
    }
    if (t->want_drain && !t->quiet && t->st == ST_OPEN) {
        t->want_drain = 0;
        t->ops->on_drain(t);
    }
}

/* Bytes to the socket: try_write first, the rest copied into a write. -1 on an error. */
static int
sock_write(struct skiff_wstunnel *t, const char *data, size_t len)
{
    if (!len || t->st == ST_DEAD)
        return 0;
    if (!t->queued) {
        uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
        int n = uv_try_write((uv_stream_t *)&t->tcp, &b, 1);
        if (n > 0) {
            data += n;
            len -= (size_t)n;
        } else if (n < 0 && n != UV_EAGAIN && n != UV_ENOSYS) {
            failf(t, "writing to the upstream failed: %s%s", uv_strerror(n), "");
            return -1;
        }
        if (!len)
            return 0;
    }
    struct wreq *r = malloc(sizeof *r + len);
    if (!r) {
        fail(t, "out of memory writing to the upstream");
        return -1;
    }
    r->t = t;
    r->len = len;
    memcpy(r->bytes, data, len);
    uv_buf_t b = uv_buf_init(r->bytes, (unsigned)len);
    int rc = uv_write(&r->w, (uv_stream_t *)&t->tcp, &b, 1, on_written);
    if (rc < 0) {
        free(r);
        failf(t, "writing to the upstream failed: %s%s", uv_strerror(rc), "");
        return -1;
    }
    t->queued += len;
    return 0;
}

/* What the proxy's TLS session wants sent. */
static int
flush_ptls(struct skiff_wstunnel *t)
{
    const char *p;
    size_t n;
    while ((n = skiff_tls_out(t->ptls, &p)) > 0) {
        if (sock_write(t, p, n) < 0)
            return -1;
        skiff_tls_out_consume(t->ptls, n);
    }
    return 0;
}

/* Bytes below the upstream's TLS: through the proxy's TLS when there is one. */
static int
send_raw(struct skiff_wstunnel *t, const char *data, size_t len)
{
    if (!t->ptls)
        return sock_write(t, data, len);
    if (len && skiff_tls_write(t->ptls, data, len) < 0) {
        fail(t, skiff_tls_error(t->ptls));
        return -1;
    }
    return flush_ptls(t);
}

static int
flush_tls(struct skiff_wstunnel *t)
{
    const char *p;
    size_t n;
    while ((n = skiff_tls_out(t->tls, &p)) > 0) {
        if (send_raw(t, p, n) < 0)
            return -1;
        skiff_tls_out_consume(t->tls, n);
    }
    return 0;
}

/* Bytes of the HTTP exchange (the request, then the session's bytes). */
static int
send_app(struct skiff_wstunnel *t, const char *data, size_t len)
{
    if (!t->tls)
        return send_raw(t, data, len);
    if (len && skiff_tls_write(t->tls, data, len) < 0) {
        fail(t, skiff_tls_error(t->tls));
        return -1;
    }
    return flush_tls(t);
}

size_t
skiff_wstunnel_write(struct skiff_wstunnel *t, const void *data, size_t len)
{
    if (t->st != ST_OPEN)
        return t->queued;
    if (send_app(t, data, len) < 0)
        return 0;
    if (t->queued)
        t->want_drain = 1;
    return t->queued;
}

/* ---- reading --------------------------------------------------------------------------- */

static void
on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    static __thread char slab[65536];
    (void)h;
    (void)hint;
    *buf = uv_buf_init(slab, sizeof slab);
}

static void begin_upstream(struct skiff_wstunnel *t);

/* Plaintext from below the upstream's TLS: the proxy's handshake first, if any. */
static void
layer_proxy(struct skiff_wstunnel *t, const char *data, size_t len)
{
    if (t->st != ST_PROXY) {
        layer_tls(t, data, len);
        return;
    }
    struct skiff_buf out;
    skiff_buf_init(&out, 4096);
    int done = 0;
    char err[256] = "";
    ssize_t used = skiff_proxy_feed(&t->phs, data, len, &out, &done, err, sizeof err);
    if (used < 0) {
        skiff_buf_release(&out);
        fail(t, err[0] ? err : "the proxy refused the tunnel");
        return;
    }
    int rc = send_raw(t, out.data, out.len);
    if (out.data)
        memset(out.data, 0, out.len);
    skiff_buf_release(&out);
    if (rc < 0 || !done)
        return;
    begin_upstream(t);
    if (t->st != ST_DEAD && (size_t)used < len)
        layer_tls(t, data + used, len - (size_t)used);
}

/* Bytes of the tunnel to the upstream: decrypted when https://. */
static void
layer_tls(struct skiff_wstunnel *t, const char *data, size_t len)
{
    if (!t->tls) {
        layer_head(t, data, len);
        return;
    }
    if (len && skiff_tls_feed(t->tls, data, len) < 0) {
        fail(t, "out of memory");
        return;
    }
    if (t->st == ST_TLS) {
        int hs = skiff_tls_handshake(t->tls);
        if (flush_tls(t) < 0)
            return;
        if (hs < 0) {
            fail(t, skiff_tls_error(t->tls));
            return;
        }
        if (hs == 0)
            return;
        t->st = ST_HEAD;
        int rc = send_app(t, t->reqhead.data, t->reqhead.len);
        memset(t->reqhead.data, 0, t->reqhead.len);
        skiff_buf_release(&t->reqhead);
        if (rc < 0)
            return;
    }
    char buf[READ_CHUNK];
    for (;;) {
        ssize_t n = skiff_tls_read(t->tls, buf, sizeof buf);
        if (n > 0) {
            layer_head(t, buf, (size_t)n);
            if (t->st == ST_DEAD || t->st == ST_FLUSHING)
                return;
            continue;
        }
        if (n == 0)
            break;
        const char *e = skiff_tls_error(t->tls);
        if (t->st == ST_BODY)
            refuse(t, t->resp.status, NULL);
        else
            fail(t, e && *e ? e : "the upstream closed the connection");
        return;
    }
    flush_tls(t); /* TLS may answer (a key update) */
}

/* The answer's head is complete in t->in[0..n): 101 opens, anything else is a refusal. */
static void
on_head(struct skiff_wstunnel *t, size_t n)
{
    skiff_buf_init(&t->hdrs, MAX_HEAD);
    memset(&t->resp, 0, sizeof t->resp);
    /* The framing refuses a 101 (the calls never ask to switch), after filling in the status
     * and the header block: here it is the answer asked for. */
    if (skiff_h1_parse_head(&t->resp, t->in.data, n, 0, &t->hdrs) < 0 && t->resp.status != 101) {
        fail(t, "the upstream's answer to the WebSocket handshake is not HTTP/1.1");
        return;
    }
    const char *rest = t->in.data + n;
    size_t rlen = t->in.len - n;
    if (t->resp.status != 101) {
        t->st = ST_BODY;
        skiff_buf_init(&t->body, MAX_REFUSAL_BODY);
        if (t->resp.state == SKIFF_H1_DONE) {
            refuse(t, t->resp.status, NULL);
            return;
        }
        layer_head(t, rest, rlen);
        return;
    }
    /* The accept value proves the upstream read this handshake (RFC 6455 §4.1). */
    const char *p = t->hdrs.data ? t->hdrs.data : "", *end = p + t->hdrs.len;
    int ok = 0;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        size_t ll = eol ? (size_t)(eol - p) : (size_t)(end - p);
        if (ll > 21 && strncasecmp(p, "sec-websocket-accept:", 21) == 0) {
            const char *v = p + 21;
            size_t vl = ll - 21;
            while (vl && (*v == ' ' || *v == '\t'))
                v++, vl--;
            while (vl && (v[vl - 1] == '\r' || v[vl - 1] == ' ' || v[vl - 1] == '\t'))
                vl--;
            ok = vl == 28 && memcmp(v, t->accept, 28) == 0;
        }
        p = eol ? eol + 1 : end;
    }
    if (!ok) {
        fail(t, "the upstream answered 101 without the Sec-WebSocket-Accept of skiff's "
                "handshake (not a WebSocket server, or a proxy in the way)");
        return;
    }
    t->st = ST_OPEN;
    uv_timer_stop(&t->timer);
    /* The bytes after the head are the session's first: copy them out of t->in, which the
     * callbacks below must not see move. */
    char *first = NULL;
    if (rlen && !(first = malloc(rlen))) {
        fail(t, "out of memory");
        return;
    }
    if (rlen)
        memcpy(first, rest, rlen);
    skiff_buf_release(&t->in);
    t->ops->on_open(t, t->hdrs.data ? t->hdrs.data : "", t->hdrs.len);
    if (rlen && !t->quiet && t->st == ST_OPEN)
        t->ops->on_read(t, first, rlen);
    free(first);
}

/* The upstream's HTTP bytes: the head, a refusal's body, or the open session's bytes. */
static void
layer_head(struct skiff_wstunnel *t, const char *data, size_t len)
{
    switch (t->st) {
    case ST_OPEN:
        if (len && !t->quiet)
            t->ops->on_read(t, data, len);
        return;
    case ST_HEAD: {
        size_t from = t->in.len > 3 ? t->in.len - 3 : 0;
        if (skiff_buf_add(&t->in, data, len)) {
            fail(t, "the upstream's answer head is larger than 16 KiB");
            return;
        }
        size_t n = skiff_h1_head_end(t->in.data, t->in.len, from);
        if (n)
            on_head(t, n);
        return;
    }
    case ST_BODY:
        while (len && t->st == ST_BODY) {
            const char *piece;
            size_t plen = 0;
            ssize_t used = skiff_h1_body(&t->resp, data, len, &piece, &plen);
            if (used < 0) {
                refuse(t, t->resp.status, NULL);
                return;
            }
            size_t room = t->body.max - t->body.len;
            if (plen)
                skiff_buf_add(&t->body, piece, plen < room ? plen : room);
            if (t->resp.state == SKIFF_H1_DONE || t->body.len == t->body.max) {
                refuse(t, t->resp.status, NULL);
                return;
            }
            if (used == 0)
                break;
            data += used;
            len -= (size_t)used;
        }
        return;
    default:
        return; /* bytes while flushing or closing are dropped */
    }
}

static void
on_sock_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct skiff_wstunnel *t = s->data;
    if (nread == 0)
        return;
    if (nread < 0) {
        if (t->st == ST_BODY) {
            refuse(t, t->resp.status, NULL);
            return;
        }
        if (nread == UV_EOF)
            fail(t, t->st == ST_OPEN ? "the upstream closed the connection"
                                     : "the upstream closed the connection during the "
                                       "WebSocket handshake");
        else
            failf(t, "reading from the upstream failed: %s%s", uv_strerror((int)nread), "");
        return;
    }
    if (!t->ptls) {
        layer_proxy(t, buf->base, (size_t)nread);
        return;
    }
    if (skiff_tls_feed(t->ptls, buf->base, (size_t)nread) < 0) {
        fail(t, "out of memory");
        return;
    }
    if (t->st == ST_PROXY && !t->ptls_done) {
        int hs = skiff_tls_handshake(t->ptls);
        if (flush_ptls(t) < 0)
            return;
        if (hs < 0) {
            fail(t, skiff_tls_error(t->ptls));
            return;
        }
        if (hs == 0)
            return;
        t->ptls_done = 1;
        struct skiff_buf out;
        skiff_buf_init(&out, 4096);
        int rc = skiff_proxy_begin(&t->phs, &t->proxy, t->host, t->port, &out);
        if (!rc)
            rc = send_raw(t, out.data, out.len);
        if (out.data)
            memset(out.data, 0, out.len);
        skiff_buf_release(&out);
        if (rc < 0) {
            fail(t, "the proxy's tunnel could not be asked for");
            return;
        }
    }
    char plain[READ_CHUNK];
    for (;;) {
        ssize_t n = skiff_tls_read(t->ptls, plain, sizeof plain);
        if (n > 0) {
            layer_proxy(t, plain, (size_t)n);
            if (t->st == ST_DEAD || t->st == ST_FLUSHING)
                return;
            continue;
        }
        if (n < 0)
            fail(t, "the proxy closed its TLS connection");
        else
            flush_ptls(t);
        return;
    }
}

/* ---- opening --------------------------------------------------------------------------- */

/* The tunnel to the upstream is there (directly, or through the proxy): TLS, or the
 * request at once. */
static void
begin_upstream(struct skiff_wstunnel *t)
{
    if (t->tls_on) {
        t->st = ST_TLS;
        t->tls = skiff_tls_new(t->ctx, t->host, NULL);
        if (!t->tls) {
            fail(t, "out of memory");
            return;
        }
        skiff_tls_handshake(t->tls);
        flush_tls(t);
        return;
    }
    t->st = ST_HEAD;
    int rc = send_app(t, t->reqhead.data, t->reqhead.len);
    (void)rc; /* a failure has ended the tunnel */
    if (t->reqhead.data)
        memset(t->reqhead.data, 0, t->reqhead.len);
    skiff_buf_release(&t->reqhead);
}

static void
on_timeout(uv_timer_t *tm)
{
    struct skiff_wstunnel *t = tm->data;
    switch (t->st) {
    case ST_FLUSHING:
        teardown(t);
        return;
    case ST_RESOLVE:
    case ST_CONNECT:
    case ST_PROXY:
        failf(t, "timed out connecting to %s:%s (retry.connect_timeout_ms)", t->host, t->port);
        return;
    default:
        failf(t, "timed out waiting for %s:%s to answer the WebSocket handshake", t->host, t->port);
        return;
    }
}

static void connect_next(struct skiff_wstunnel *t);
static void on_retry_closed(uv_handle_t *h);

static void
on_connected(uv_connect_t *cr, int status)
{
    struct skiff_wstunnel *t = cr->data;
    if (t->st == ST_DEAD)
        return;
    if (status < 0) {
        t->last_errno = status;
        uv_close((uv_handle_t *)&t->tcp, on_retry_closed);
        return;
    }
    uv_tcp_nodelay(&t->tcp, 1);
    uv_read_start((uv_stream_t *)&t->tcp, on_alloc, on_sock_read);
    uv_timer_start(&t->timer, on_timeout, (uint64_t)t->handshake_ms, 0);
    if (t->proxied) {
        t->st = ST_PROXY;
        if (t->proxy.tls) {
            t->ptls = skiff_tls_new(t->ctx, t->proxy.host, NULL);
            if (!t->ptls || skiff_tls_for_proxy(t->ptls) < 0) {
                fail(t, "out of memory");
                return;
            }
            skiff_tls_handshake(t->ptls);
            flush_ptls(t);
            return;
        }
        struct skiff_buf out;
        skiff_buf_init(&out, 4096);
        int rc = skiff_proxy_begin(&t->phs, &t->proxy,
                                   t->proxy.kind == SKIFF_PROXY_SOCKS5 ? t->socks_addr : t->host,
                                   t->port, &out);
        if (!rc)
            rc = send_raw(t, out.data, out.len);
        if (out.data)
            memset(out.data, 0, out.len);
        skiff_buf_release(&out);
        if (rc < 0)
            fail(t, "the proxy's tunnel could not be asked for");
        return;
    }
    begin_upstream(t);
}

/* Connects to the next resolved address; none left: the last error. */
static void
connect_next(struct skiff_wstunnel *t)
{
    while (t->ai_next) {
        struct addrinfo *a = t->ai_next;
        t->ai_next = a->ai_next;
        if (a->ai_family != AF_INET && a->ai_family != AF_INET6)
            continue;
        memset(&t->tcp, 0, sizeof t->tcp);
        if (uv_tcp_init(t->cl->loop, &t->tcp) < 0)
            break;
        t->tcp.data = t;
        t->tcp_open = 1;
        t->creq.data = t;
        int rc = uv_tcp_connect(&t->creq, &t->tcp, a->ai_addr, on_connected);
        if (rc == 0) {
            t->st = ST_CONNECT;
            return;
        }
        t->last_errno = rc;
        uv_close((uv_handle_t *)&t->tcp, on_retry_closed);
        return;
    }
    const char *h = t->proxied ? t->proxy.host : t->host;
    const char *p = t->proxied ? t->proxy.port : t->port;
    char where[300];
    snprintf(where, sizeof where, "%s:%s", h, p);
    failf(t, "could not connect to %s%s", where,
          t->last_errno ? (t->last_errno == UV_ECONNREFUSED ? ": connection refused"
                           : t->last_errno == UV_ETIMEDOUT  ? ": timed out"
                                                            : ": unreachable")
                        : "");
}

/* A connection to one address failed and its handle is closed: the next address. */
static void
on_retry_closed(uv_handle_t *h)
{
    struct skiff_wstunnel *t = h->data;
    t->tcp_open = 0;
    if (t->st == ST_DEAD) {
        free_tunnel(t);
        return;
    }
    connect_next(t);
}

static void
on_resolved(uv_getaddrinfo_t *g, int status, struct addrinfo *res)
{
    struct skiff_wstunnel *t = g->data;
    t->gai_pending = 0;
    if (t->st == ST_DEAD) {
        if (res)
            freeaddrinfo(res);
        free_tunnel(t);
        return;
    }
    if (status < 0 || !res) {
        int socks_target = t->proxied && t->proxy.kind == SKIFF_PROXY_SOCKS5 && !t->socks_addr[0];
        failf(t, "could not resolve %s: %s", socks_target || !t->proxied ? t->host : t->proxy.host,
              uv_strerror(status));
        if (res)
            freeaddrinfo(res);
        return;
    }
    if (t->proxied && t->proxy.kind == SKIFF_PROXY_SOCKS5 && !t->socks_addr[0]) {
        /* socks5:// names the upstream by address: that was its lookup; now the proxy's. */
        if (getnameinfo(res->ai_addr, res->ai_addrlen, t->socks_addr, sizeof t->socks_addr, NULL, 0,
                        NI_NUMERICHOST) != 0)
            snprintf(t->socks_addr, sizeof t->socks_addr, "0.0.0.0");
        freeaddrinfo(res);
        struct addrinfo hints = {.ai_socktype = SOCK_STREAM};
        t->gai.data = t;
        if (uv_getaddrinfo(t->cl->loop, &t->gai, on_resolved, t->proxy.host, t->proxy.port,
                           &hints) < 0) {
            failf(t, "could not resolve %s%s", t->proxy.host, "");
            return;
        }
        t->gai_pending = 1;
        return;
    }
    t->ai = res;
    t->ai_next = res;
    connect_next(t);
}

/* Splits url into scheme, host, port and the request target; builds the request head. */
static int
parse_and_build(struct skiff_wstunnel *t, const char *url, const char *const *headers)
{
    struct skiff_url_parts u;
    if (skiff_url_split(url, &u) < 0 || u.host_len >= sizeof t->host ||
        u.port_len >= sizeof t->port)
        return -1;
    t->tls_on = u.tls;
    memcpy(t->host, u.host, u.host_len);
    t->host[u.host_len] = '\0';
    if (u.port_len) {
        memcpy(t->port, u.port, u.port_len);
        t->port[u.port_len] = '\0';
    } else {
        snprintf(t->port, sizeof t->port, "%s", t->tls_on ? "443" : "80");
    }
    const char *target = u.target, *auth = u.authority, *ui = u.userinfo;
    size_t alen = u.authority_len, uilen = u.userinfo_len;

    unsigned char nonce[16];
    char key[25];
    if (RAND_bytes(nonce, sizeof nonce) != 1)
        return -1;
    EVP_EncodeBlock((unsigned char *)key, nonce, sizeof nonce);
    skiff_ws_accept(key, 24, t->accept);

    struct skiff_buf *b = &t->reqhead;
    skiff_buf_init(b, 64 * 1024);
    int rc = 0;
    rc |= skiff_buf_adds(b, "GET ");
    if (*target == '/')
        rc |= skiff_buf_add(b, target, strcspn(target, "#"));
    else {
        rc |= skiff_buf_add(b, "/", 1);
        rc |= skiff_buf_add(b, target, strcspn(target, "#"));
    }
    rc |= skiff_buf_adds(b, " HTTP/1.1\r\nhost: ");
    rc |= skiff_buf_add(b, auth, alen);
    rc |= skiff_buf_adds(b, "\r\nupgrade: websocket\r\nconnection: Upgrade\r\n"
                            "sec-websocket-version: 13\r\nsec-websocket-key: ");
    rc |= skiff_buf_adds(b, key);
    rc |= skiff_buf_adds(b, "\r\n");
    if (uilen) {
        char user[256], pass[256];
        if (skiff_userinfo_decode(ui, uilen, user, sizeof user, pass, sizeof pass) < 0 ||
            skiff_basic_auth_header("authorization", user, pass, b) < 0)
            rc = -1;
        memset(user, 0, sizeof user);
        memset(pass, 0, sizeof pass);
    }
    for (int i = 0; headers && headers[i]; i++) {
        rc |= skiff_buf_adds(b, headers[i]);
        rc |= skiff_buf_adds(b, "\r\n");
    }
    rc |= skiff_buf_adds(b, "\r\n");
    return rc ? -1 : 0;
}

struct skiff_wstunnel *
skiff_wstunnel_open(struct skiff_wsclient *cl, const struct skiff_wstunnel_opts *o)
{
    struct skiff_wstunnel *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->cl = cl;
    t->ops = o->ops;
    t->data = o->data;
    t->handshake_ms = o->handshake_timeout_ms > 0 ? o->handshake_timeout_ms : 30000;
    skiff_buf_init(&t->in, MAX_HEAD);
    if (o->proxy && *o->proxy) {
        if (skiff_proxy_parse(o->proxy, &t->proxy) < 0)
            goto out_free;
        t->proxied = 1;
    }
    if (parse_and_build(t, o->url, o->headers) < 0)
        goto out_free;
    char err[256];
    if ((t->tls_on || (t->proxied && t->proxy.tls)) &&
        !(t->ctx = client_ctx(cl, o->ca_file, err, sizeof err)))
        goto out_free;
    t->own_ctx = t->ctx && !ctx_is_shared(cl, t->ctx);
    if (!(t->url = strdup(o->url)))
        goto out_free;
    uv_timer_init(cl->loop, &t->timer);
    t->timer.data = t;
    t->timer_open = 1;
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM};
    const char *host = t->host, *port = t->port;
    if (t->proxied && t->proxy.kind != SKIFF_PROXY_SOCKS5) {
        host = t->proxy.host;
        port = t->proxy.port;
    }
    t->gai.data = t;
    if (uv_getaddrinfo(cl->loop, &t->gai, on_resolved, host, port, &hints) < 0) {
        t->quiet = 1;
        teardown(t);
        return NULL;
    }
    t->gai_pending = 1;
    t->st = ST_RESOLVE;
    uv_timer_start(&t->timer, on_timeout,
                   (uint64_t)(o->connect_timeout_ms > 0 ? o->connect_timeout_ms : 10000), 0);
    return t;

out_free:
    t->timer_open = 0;
    free_tunnel(t);
    return NULL;
}

/* ---- the caller's controls ------------------------------------------------------------- */

void
skiff_wstunnel_pause(struct skiff_wstunnel *t)
{
    if (t->paused || t->st != ST_OPEN)
        return;
    t->paused = 1;
    uv_read_stop((uv_stream_t *)&t->tcp);
}

void
skiff_wstunnel_resume(struct skiff_wstunnel *t)
{
    if (!t->paused || t->st != ST_OPEN)
        return;
    t->paused = 0;
    uv_read_start((uv_stream_t *)&t->tcp, on_alloc, on_sock_read);
}

void
skiff_wstunnel_close(struct skiff_wstunnel *t)
{
    if (!t || t->quiet)
        return;
    t->quiet = 1;
    if (t->st == ST_OPEN && t->queued) {
        t->st = ST_FLUSHING;
        uv_read_stop((uv_stream_t *)&t->tcp);
        uv_timer_start(&t->timer, on_timeout, CLOSE_FLUSH_MS, 0);
        return;
    }
    teardown(t);
}
