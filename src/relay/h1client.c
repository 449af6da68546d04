/*
 * skiff's own HTTP/1.1 client for http:// and https:// upstreams, on the worker's libuv loop:
 * what nginx's proxy module does with upstream keep-alive, and what h2o's http1client does.
 *
 *   - https:// runs TLS on OpenSSL memory BIOs (relay/tls.c): ciphertext from the socket
 *     goes into the session, decrypted bytes into the same framing as plain TCP. The
 *     handshake is part of connecting (its timeout too); the host's last session ticket
 *     resumes the next connection; a failed handshake (an untrusted certificate) fails the
 *     origin's calls at once for TLS_FAIL_MS instead of one handshake per retry. OpenSSL
 *     may hold decrypted bytes that no socket event announces: every feed of ciphertext,
 *     and every resume, reads the session dry before waiting on the socket (drain_tls).
 *
 *   - A call takes the newest idle connection to its origin, or opens one (numeric hosts
 *     resolve on the spot, names on libuv's thread pool; each address is tried in turn).
 *   - The request head is built once and goes out with the body in one writev. The head
 *     holds the pool key, so it is wiped as soon as the answer starts (until then it may
 *     have to go out again, see below).
 *   - Every connection reads into one buffer per client, and body pieces go to on_body
 *     straight from it: nothing is copied on the way through. Only a paused call keeps
 *     the unread rest of a read (`held`), and only a head split across reads is gathered.
 *   - After a complete response that allows it, the connection goes back to the idle list
 *     (newest first), where a read stays armed: the upstream closing it, or sending
 *     anything unasked, closes it. A sweep closes connections idle for IDLE_MS.
 *   - An idle connection is picked only when nothing waits to be read on it (MSG_PEEK):
 *     bytes that arrived between two requests are never an answer.
 *   - A request that fails on a reused connection before any byte of it was written is
 *     sent once more on a new connection: the upstream closed an idle connection just as
 *     it was picked, and has seen nothing of the request. Once a byte was written the call
 *     fails instead: the upstream may have read it, and a re-send is the relay's attempt.
 *   - A connection with a write in flight never goes back to the idle list (an upstream
 *     may answer before it has read the body; plain writes point into the call's head and
 *     the relay's body, freed when the call ends).
 *
 * Lifetimes: a connection owns its libuv handle and requests and is freed in its close
 * callback; a call is freed in its timer's close callback, so a call or connection pointer
 * stays valid to the end of the callback that closed it.
 */
#include "relay/upcall.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "base/buf.h"
#include "relay/h1resp.h"
#include "relay/h2client.h"
#include "relay/proxy.h"
#include "relay/tls.h"

#define READ_BUF (64 * 1024)
#define MAX_HEAD (64 * 1024) /* a response head; more is garbage, not an answer */
#define MAX_REQ_HEAD (256 * 1024)
#define MAX_IDLE 8192 /* idle connections per worker */
#define IDLE_MS 30000
#define SWEEP_MS 5000
#define WARM_MS 10000 /* a warm connection not ready by then is closed */
/* After a burst of at least TRIM_AFTER calls at once, TRIM_MS after the last one ended (the
 * relay's client connections close with them), free memory goes back to the system. */
#define TRIM_AFTER 256
#define TRIM_MS 200

struct h1_call;

/* The cause on_done gets after on_status or on_body returned -1. */
#define STOPPED "the relay stopped reading the upstream's answer"

/* Where calls go: one per distinct host and port the client has seen (they come from the
 * configuration, so there are few), shared by its calls and connections. */
struct h1_origin {
    struct h1_origin *next;
    char host[256]; /* as in the URL; brackets stripped from an IPv6 literal */
    char port[8];
    char key[272]; /* "host:port", for messages */
    int tls;       /* https:// */
    int proxied;   /* reached through `proxy` (a tunnel per connection) */
    struct skiff_proxy proxy;
    void *session;             /* the last resumable TLS session the host gave (relay/tls.h) */
    void *proxy_session;       /* the same for an https:// proxy */
    uint64_t tls_failed_until; /* after a failed handshake: calls fail at once until then */
    char tls_error[320];
    /* HTTP/2 (the section at the end): */
    int h1_only;               /* a handshake picked http/1.1 (or no ALPN): no streams here */
    struct h1_conn *h2conns;   /* HTTP/2 connections, linked by h2prev/h2next */
    int h2_opening;            /* connections on their way that may turn out HTTP/2 */
    struct h1_call *wait_head; /* calls waiting for a stream on one of those */
    struct h1_call *wait_tail;
    int nwait;
};

/* How long a failed TLS handshake (an untrusted certificate, say) answers for the origin:
 * the same certificate would fail again, and each retry would cost a handshake. */
#define TLS_FAIL_MS 2000

/* ALPN: HTTP/2 first (relay/h2client.c), then HTTP/1.1. */
static const unsigned char alpn_offer[] = "\x02h2\x08http/1.1";

struct h1_conn {
    uv_tcp_t tcp; /* its connect and write requests are allocated only while in use */
    struct skiff_h1c *cl;
    struct h1_call *call;        /* NULL while idle or closing */
    struct h1_conn *prev, *next; /* the idle list */
    uint64_t idle_since;
    int idle;
    int closing;
    int reused;      /* it carried a response before this call */
    int writing;     /* uv_writes in flight; on plain TCP they point into the call's request */
    int handshaking; /* TLS: the handshake is not complete */
    int warming;     /* opened ahead of any call (skiff_h1c_warm), not yet idle */
    struct skiff_tls *tls;      /* NULL on plain TCP */
    struct skiff_tls *ptls;     /* TLS to an https:// proxy, under tls and the tunnel; or NULL */
    int phandshaking;           /* ptls: its handshake is not complete */
    struct skiff_proxy_hs *hs;  /* while the proxy's tunnel is being set up, else NULL */
    struct socks_resolve *sres; /* socks5://: the upstream's name being resolved */
    struct h1_origin *origin;
    struct skiff_h2 *h2;             /* ALPN picked h2: the connection carries streams */
    struct h1_conn *h2prev, *h2next; /* the origin's HTTP/2 connections */
    int h2cand;      /* counted in origin->h2_opening until its handshake says h2 or not */
    int in_h2;       /* inside the session: ending the connection waits for its reader */
    const char *why; /* why an HTTP/2 connection ends, for its calls */
};

/* A write the socket did not take at once; over TLS it owns a copy of the ciphertext. */
struct wreq {
    uv_write_t w;
    struct h1_conn *k;
    char data[];
};

struct resolve {
    uv_getaddrinfo_t req;
    struct h1_call *call; /* NULL once the call is gone: the result is dropped */
};

/* socks5://: the upstream's name, resolved here before the SOCKS request. */
struct socks_resolve {
    uv_getaddrinfo_t req;
    struct h1_conn *k; /* NULL once the connection is closing: the result is dropped */
};

enum phase { CONNECTING, WAITING, RECEIVING };

struct h1_call {
    struct skiff_upcall base; /* first: the transport-neutral part */
    struct skiff_h1c *cl;
    struct h1_conn *conn;
    struct resolve *resolving;
    struct addrinfo *ai, *ai_next; /* addresses of the origin, the next one to try */
    uv_timer_t timer;              /* connect, first-byte, then idle-between-pieces */
    long connect_ms, first_byte_ms, idle_ms;
    enum phase phase;
    struct skiff_buf req; /* the request head until it is written */
    const char *body;     /* borrowed */
    size_t body_len;
    struct skiff_buf head; /* a response head arriving across reads */
    struct skiff_h1resp resp;
    char *held; /* read but not yet handed on while paused */
    size_t held_len;
    int got_bytes, paused, cancelled, done, retried;
    int wrote;    /* some of the request may have reached the upstream on this connection */
    int starting; /* inside skiff_h1c_start: an end now is reported from the loop */
    int deferred; /* ended while starting; on_done waits for the timer */
    char *error;  /* the deferred end's cause (owned), or NULL */
    struct h1_origin *origin;
    struct h1_call *prev, *next;                             /* in flight */
    int (*addr_ok)(const struct sockaddr *addr, void *data); /* NULL: every address */
    struct h1_conn *h2conn; /* the HTTP/2 connection its stream is on, or NULL */
    int waiting;            /* queued on the origin for a stream */
    int h2cand; /* counted in origin->h2_opening while resolving, before its connection is */
    struct h1_call *wprev, *wnext; /* that queue */
};

struct skiff_h1c {
    uv_loop_t *loop;
    uv_timer_t sweep;
    struct h1_call *calls;
    struct h1_origin *origins;
    struct h1_conn *idle_head, *idle_tail;
    int nidle, nconns, active;
    int closing, sweep_closed;
    struct skiff_buf hdrs;      /* the kept header lines of the head being parsed */
    struct skiff_tls_ctx *tls;  /* for https:// origins, made on first use */
    char *tls_ca;               /* the ca_file it was made with, or NULL */
    struct h1_origin *warm;     /* the origin kept warm (skiff_h1c_warm), or NULL */
    struct h1_conn *warm_conns; /* warm connections not yet idle (linked by prev/next) */
    int warm_n;                 /* idle connections kept open to it */
    int warming;                /* warm connections resolving, connecting or handshaking */
    uv_timer_t h2_reap; /* ends HTTP/2 connections whose session failed in a call */
    int reap_closed;
    uv_timer_t trim; /* gives a burst's memory back once the last call is gone */
    int trim_closed;
    int peak_active;     /* calls at once since the last trim */
    char rbuf[READ_BUF]; /* every connection reads here; data is used before the next read */
    char pbuf[READ_BUF]; /* TLS: decrypted bytes, used before the next decryption */
    char xbuf[READ_BUF]; /* TLS to a proxy: decrypted bytes (the tunnel's ciphertext) */
};

static void connect_next(struct h1_call *c);
static void trim_cb(uv_timer_t *t);
static int h2_try(struct h1_call *c);
static void h2_leave(struct h1_call *c);
static int h2_handshaken(struct h1_conn *k);
static void h2_drain(struct h1_conn *k);
static void h2_conn_end(struct h1_conn *k, const char *why);
static void h2_conn_closing(struct h1_conn *k);
static void h2_cand_done(struct h1_conn *k);
static void h2_reap_soon(struct skiff_h1c *cl);
static int h2_resume(struct h1_call *c);
static void h2_sweep(struct skiff_h1c *cl, uint64_t now);
static void h2_close_all(struct skiff_h1c *cl);
static void h2_close_idle(struct skiff_h1c *cl);
static int h2_warm_count(struct skiff_h1c *cl, struct h1_origin *o);
static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);
static void resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res);

/* ---- the client ------------------------------------------------------------------------ */

static void
maybe_free_client(struct skiff_h1c *cl)
{
    if (cl->closing && cl->sweep_closed && cl->reap_closed && cl->trim_closed && cl->nconns == 0 &&
        cl->warming == 0) {
        while (cl->origins) {
            struct h1_origin *o = cl->origins;
            cl->origins = o->next;
            skiff_tls_session_slot_free(&o->session);
            skiff_tls_session_slot_free(&o->proxy_session);
            free(o);
        }
        skiff_tls_ctx_free(cl->tls);
        free(cl->tls_ca);
        skiff_buf_release(&cl->hdrs);
        free(cl);
    }
}

int
skiff_h1c_active(const struct skiff_h1c *cl)
{
    return cl->active;
}

/* ---- connections ----------------------------------------------------------------------- */

static void
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
static void
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

static void
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

static void
alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct h1_conn *k = h->data;
    (void)suggested;
    *buf = uv_buf_init(k->cl->rbuf, READ_BUF);
}

/* ---- calls: ending ---------------------------------------------------------------------- */

static void
wipe(struct skiff_buf *b)
{
    if (b->data)
        memset(b->data, 0, b->cap);
    skiff_buf_release(b);
}

static void
free_call(uv_handle_t *h)
{
    struct h1_call *c = h->data;
    wipe(&c->req);
    skiff_buf_release(&c->head);
    free(c->held);
    free(c->error);
    if (c->ai)
        uv_freeaddrinfo(c->ai);
    free(c);
}

/* Takes the call off the client and frees it once its timer has closed. */
static void
retire(struct h1_call *c)
{
    struct skiff_h1c *cl = c->cl;
    if (c->prev)
        c->prev->next = c->next;
    else
        cl->calls = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
    if (--cl->active == 0 && cl->peak_active >= TRIM_AFTER && !cl->closing)
        uv_timer_start(&cl->trim, trim_cb, TRIM_MS, 0);
    if (c->resolving) {
        c->resolving->call = NULL;
        /* A lookup still queued need not run (its callback frees it either way). */
        uv_cancel((uv_req_t *)&c->resolving->req);
    }
    c->resolving = NULL;
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->timer, free_call);
}

static void
deferred_done(uv_timer_t *t)
{
    struct h1_call *c = t->data;
    retire(c);
    c->base.ops->on_done(&c->base, c->error ? c->error : "the upstream call failed");
}

/* Ends a call that is still live: closes its connection unless it went back to the idle
 * list, reports once, frees it. A call that fails inside skiff_h1c_start (no socket to be
 * had, say) reports from the loop: the caller has not even got the call yet. */
static void
finish(struct h1_call *c, const char *error)
{
    h2_leave(c);
    if (c->conn)
        conn_close(c->conn);
    c->done = 1;
    if (c->starting) {
        c->deferred = 1;
        c->error = error ? strdup(error) : NULL; /* NULL (out of memory): a generic cause */
        uv_timer_start(&c->timer, deferred_done, 0, 0);
        return;
    }
    retire(c);
    c->base.ops->on_done(&c->base, error);
}

void
skiff_h1c_cancel(struct skiff_upcall *call)
{
    struct h1_call *c = (struct h1_call *)call;
    if (c->cancelled || (c->done && !c->deferred))
        return;
    c->cancelled = 1;
    h2_leave(c);
    if (c->conn)
        conn_close(c->conn);
    retire(c);
}

/* The response is complete: the connection goes back to the idle list when it may carry
 * another request (nothing unasked came after the response, and the whole request went
 * out: an upstream may answer before it has read the body, and a write still in flight
 * points into the call's head and the relay's body, both freed when the call ends), then
 * the call ends. Otherwise the connection is closed, which cancels that write. */
/* Puts a connection with no call at the head of the idle list (newest first). */
static void
idle_push(struct h1_conn *k)
{
    struct skiff_h1c *cl = k->cl;
    warm_unlink(k);
    k->call = NULL;
    k->reused = 1;
    k->idle = 1;
    k->idle_since = uv_now(cl->loop);
    k->prev = NULL;
    k->next = cl->idle_head;
    if (cl->idle_head)
        cl->idle_head->prev = k;
    else
        cl->idle_tail = k;
    cl->idle_head = k;
    cl->nidle++;
    /* A call that paused stopped reading; an idle connection must notice a close.
     * (On a connection still reading this is a no-op.) */
    uv_read_start((uv_stream_t *)&k->tcp, alloc_cb, read_cb);
}

static void
complete(struct h1_call *c, int extra_bytes)
{
    struct h1_conn *k = c->conn;
    struct skiff_h1c *cl = c->cl;
    if (k && c->resp.keep_alive && !extra_bytes && !k->writing && !cl->closing &&
        cl->nidle < MAX_IDLE) {
        c->conn = NULL;
        idle_push(k);
    }
    finish(c, NULL);
}

/* The connection failed. On a reused connection that took no byte of the request (the
 * upstream closed it as it was picked), the request goes once more on a new one; once any
 * of it was written the upstream may have read it, so the call ends with `what` and the
 * relay decides, as an attempt it counts, whether to send it again. */
static void
conn_failed(struct h1_call *c, const char *what, int err)
{
    struct h1_conn *k = c->conn;
    if (k && k->reused && !c->wrote && !c->got_bytes && !c->retried && c->phase != CONNECTING) {
        c->retried = 1;
        conn_close(k);
        connect_next(c);
        return;
    }
    char msg[300];
    if (err)
        snprintf(msg, sizeof msg, "%s (%s)", what, uv_strerror(err));
    else
        snprintf(msg, sizeof msg, "%s", what);
    finish(c, msg);
}

/* ---- calls: timers ------------------------------------------------------------------------ */

static void
timer_cb(uv_timer_t *t)
{
    struct h1_call *c = t->data;
    static const char *const why[] = {
        [CONNECTING] = "timed out connecting to the upstream",
        [WAITING] = "timed out waiting for the first byte from the upstream",
        [RECEIVING] = "the upstream stalled between chunks (idle timeout)",
    };
    finish(c, why[c->phase]);
}

static void
arm(struct h1_call *c)
{
    long ms = c->phase == CONNECTING ? c->connect_ms
              : c->phase == WAITING  ? c->first_byte_ms
                                     : c->idle_ms;
    if (ms > 0 && !c->paused)
        uv_timer_start(&c->timer, timer_cb, (uint64_t)ms, 0);
    else
        uv_timer_stop(&c->timer);
}

/* ---- calls: reading the response ------------------------------------------------------ */

/* Parses a complete head and reports it. Returns 0 to go on reading, -1 when the call
 * ended or paused inside. */
static int
got_head(struct h1_call *c, const char *head, size_t len)
{
    struct skiff_h1c *cl = c->cl;
    skiff_buf_reset(&cl->hdrs);
    if (skiff_h1_parse_head(&c->resp, head, len, 0, &cl->hdrs) < 0) {
        finish(c, "the upstream sent something that is not an HTTP/1.1 response");
        return -1;
    }
    if (c->resp.state == SKIFF_H1_HEAD)
        return 0; /* 100 Continue or another informational answer: the real one follows */
    int rc = c->base.ops->on_status(&c->base, c->resp.status, cl->hdrs.data ? cl->hdrs.data : "",
                                    cl->hdrs.len);
    if (c->cancelled || c->done)
        return -1;
    if (rc != 0) {
        finish(c, STOPPED);
        return -1;
    }
    return 0;
}

/* Whether the head so far (what was gathered, then data) can still begin "HTTP/1.". */
static int
can_be_status_line(const struct h1_call *c, const char *data, size_t len)
{
    static const char want[] = "HTTP/1.";
    size_t have = c->head.len < sizeof want - 1 ? c->head.len : sizeof want - 1;
    if (have && memcmp(c->head.data, want, have) != 0)
        return 0;
    size_t more = sizeof want - 1 - have;
    return memcmp(data, want + have, len < more ? len : more) == 0;
}

/* Takes head bytes from data; returns how many it used, or -1 when the call ended. */
static ssize_t
take_head(struct h1_call *c, const char *data, size_t len)
{
    size_t end;
    /* Bytes that cannot start a status line never become a response: fail now rather than
     * wait (until the deadline) for a blank line that may never come. */
    if (c->head.len < 7 && !can_be_status_line(c, data, len)) {
        finish(c, "the upstream sent something that is not an HTTP/1.1 response");
        return -1;
    }
    if (c->head.len == 0 && (end = skiff_h1_head_end(data, len, 0)) > 0)
        return got_head(c, data, end) < 0 ? -1 : (ssize_t)end; /* the usual case: one read */
    size_t old = c->head.len;
    if (skiff_buf_add(&c->head, data, len)) {
        finish(c, "the upstream's response head is larger than 64 KiB");
        return -1;
    }
    end = skiff_h1_head_end(c->head.data, c->head.len, old > 3 ? old - 3 : 0);
    if (!end)
        return (ssize_t)len;
    int rc = got_head(c, c->head.data, end);
    skiff_buf_reset(&c->head);
    return rc < 0 ? -1 : (ssize_t)(end - old);
}

/* Keeps the unread rest of a read while the call is paused. */
static void
hold(struct h1_call *c, const char *data, size_t len)
{
    if (c->conn)
        uv_read_stop((uv_stream_t *)&c->conn->tcp);
    uv_timer_stop(&c->timer);
    if (!len)
        return;
    c->held = malloc(len);
    if (!c->held) {
        finish(c, "out of memory holding a paused upstream response");
        return;
    }
    memcpy(c->held, data, len);
    c->held_len = len;
}

/* Runs response bytes through the head and body framing and hands the pieces on. */
static void
feed(struct h1_call *c, const char *data, size_t len)
{
    if (!c->got_bytes) {
        c->got_bytes = 1;
        c->phase = RECEIVING;
        /* Kept until now only to send again on a new connection; a write still in flight
         * reads it, so then it goes with the call. */
        if (!c->conn || !c->conn->writing)
            wipe(&c->req);
    }
    while (len > 0) {
        ssize_t n;
        if (c->resp.state == SKIFF_H1_HEAD) {
            if ((n = take_head(c, data, len)) < 0)
                return;
        } else {
            const char *piece;
            size_t plen;
            if ((n = skiff_h1_body(&c->resp, data, len, &piece, &plen)) < 0) {
                finish(c, "the upstream sent a malformed chunked body");
                return;
            }
            if (plen) {
                int rc = c->base.ops->on_body(&c->base, piece, plen);
                if (c->cancelled || c->done)
                    return;
                if (rc < 0) {
                    finish(c, STOPPED);
                    return;
                }
                if (rc == 1 && c->resp.state != SKIFF_H1_DONE) {
                    c->paused = 1;
                    hold(c, data + n, len - (size_t)n);
                    return;
                }
            }
        }
        data += n;
        len -= (size_t)n;
        if (c->resp.state == SKIFF_H1_DONE) {
            complete(c, len > 0);
            return;
        }
        if (n == 0)
            break;
    }
    arm(c);
}

/* The connection ended (EOF, or TLS close_notify) while the call was on it. */
static void
conn_eof(struct h1_call *c)
{
    if (c->got_bytes) {
        if (skiff_h1_eof(&c->resp) == 0) {
            c->resp.keep_alive = 0;
            complete(c, 0);
        } else {
            finish(c, c->resp.state == SKIFF_H1_HEAD
                          ? "the upstream closed the connection inside the response head"
                          : "the upstream closed the connection before the response was complete");
        }
        return;
    }
    conn_failed(c, "the upstream closed the connection without answering", 0);
}

static void send_request(struct h1_call *c);
static int flush_tls(struct h1_conn *k);
static void conn_ready(struct h1_call *c, struct h1_conn *k);
static void proxy_in(struct h1_conn *k, const char *data, size_t len);

/* Hands on what TLS has decrypted, until it has nothing more or the call pauses. OpenSSL
 * may hold decrypted bytes no socket event will announce, so this runs after every feed
 * of ciphertext and again on resume. Plaintext on a connection with no call is an answer
 * nobody asked for: the connection closes. */
static void
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

/* Ciphertext arrived: the handshake goes on, or the records are decrypted. */
static void
tls_in(struct h1_conn *k, const char *data, size_t len)
{
    struct h1_call *c = k->call;
    if (skiff_tls_feed(k->tls, data, len) < 0) {
        if (c)
            finish(c, "out of memory reading from the upstream");
        else
            conn_close(k);
        return;
    }
    if (k->handshaking) {
        int rc = skiff_tls_handshake(k->tls);
        if (flush_tls(k) < 0)
            rc = -1;
        if (rc == 0)
            return;
        if (rc < 0) {
            struct h1_origin *o = k->origin;
            snprintf(o->tls_error, sizeof o->tls_error, "%s",
                     *skiff_tls_error(k->tls) ? skiff_tls_error(k->tls)
                                              : "the TLS handshake with the upstream failed");
            o->tls_failed_until = uv_now(k->cl->loop) + TLS_FAIL_MS;
            if (c)
                finish(c, o->tls_error);
            else
                conn_close(k);
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
static void
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
static void
wire_end(struct h1_conn *k, ssize_t nread, const char *why)
{
    struct h1_call *c = k->call;
    if (k->h2) { /* its streams end with it (no call owns the connection) */
        h2_conn_end(k, why && *why               ? why
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

static void ptls_in(struct h1_conn *k, const char *data, size_t len);

static void
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
static int
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
static int
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
static int
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

static void conn_connected(struct h1_call *c, struct h1_conn *k);

/* Hands on what the proxy's TLS has decrypted (the tunnel's bytes, or the proxy's own
 * answers), until it has nothing more or the call pauses; as drain_tls, after every feed of
 * ciphertext and on resume. */
static void
drain_ptls(struct h1_conn *k)
{
    struct skiff_h1c *cl = k->cl;
    while (!k->closing && !(k->call && k->call->paused)) {
        ssize_t n = skiff_tls_read(k->ptls, cl->xbuf, sizeof cl->xbuf);
        int queued = 0;
        if (n != 0 && flush_ptls(k, &queued) < 0 && k->call) {
            conn_failed(k->call, "could not send to the proxy", 0);
            return;
        }
        if (n == 0)
            return;
        if (n < 0) {
            wire_end(k, UV_EOF, skiff_tls_error(k->ptls));
            return;
        }
        wire_in(k, cl->xbuf, (size_t)n);
    }
}

/* Ciphertext from an https:// proxy: its handshake goes on, or the records are decrypted. */
static void
ptls_in(struct h1_conn *k, const char *data, size_t len)
{
    struct h1_call *c = k->call;
    if (skiff_tls_feed(k->ptls, data, len) < 0) {
        if (c)
            finish(c, "out of memory reading from the proxy");
        else
            conn_close(k);
        return;
    }
    if (k->phandshaking) {
        int queued = 0;
        int rc = skiff_tls_handshake(k->ptls);
        if (flush_ptls(k, &queued) < 0)
            rc = -1;
        if (rc == 0)
            return;
        if (rc < 0 || !c) {
            struct h1_origin *o = k->origin;
            if (rc < 0) {
                snprintf(o->tls_error, sizeof o->tls_error, "%s",
                         *skiff_tls_error(k->ptls) ? skiff_tls_error(k->ptls)
                                                   : "the TLS handshake with the proxy failed");
                o->tls_failed_until = uv_now(k->cl->loop) + TLS_FAIL_MS;
            }
            if (c)
                finish(c, o->tls_error);
            else
                conn_close(k);
            return;
        }
        k->phandshaking = 0;
        conn_connected(c, k);
        if (k->closing)
            return;
    }
    drain_ptls(k);
}

static void
send_request(struct h1_call *c)
{
    struct h1_conn *k = c->conn;
    c->phase = WAITING;
    arm(c);
    int rc, queued = 0;
    if (k->tls) {
        rc = skiff_tls_write(k->tls, c->req.data, c->req.len) < 0 ||
                     (c->body_len && skiff_tls_write(k->tls, c->body, c->body_len) < 0)
                 ? UV_EPROTO
                 : 0;
        if (rc == 0) {
            const char *p;
            size_t n = skiff_tls_out(k->tls, &p);
            uv_buf_t b = uv_buf_init((char *)p, (unsigned)n);
            rc = wire_write(k, &b, 1, 1, &queued);
            skiff_tls_out_consume(k->tls, n);
        }
    } else {
        uv_buf_t bufs[2] = {uv_buf_init(c->req.data, (unsigned)c->req.len),
                            uv_buf_init((char *)c->body, (unsigned)c->body_len)};
        rc = wire_write(k, bufs, c->body_len ? 2 : 1, 0, &queued);
    }
    if (rc > 0 || queued)
        c->wrote = 1;
    if (rc < 0)
        conn_failed(c, "could not send the request to the upstream", rc);
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

/* Whether the origin is reached through a tunnel; a plain http:// upstream behind an
 * http:// proxy is not: its requests go to the proxy in absolute form. */
static int
tunnelled(const struct h1_origin *o)
{
    return o->proxied && (o->tls || o->proxy.kind != SKIFF_PROXY_HTTP);
}

/* Writes what the proxy handshake produced and wipes it (it may hold the proxy's
 * credentials). 0, or a negative libuv error. */
static int
flush_proxy(struct h1_conn *k, struct skiff_buf *out)
{
    int queued = 0, rc = 0;
    if (out->len) {
        uv_buf_t b = uv_buf_init(out->data, (unsigned)out->len);
        rc = wire_write(k, &b, 1, 1, &queued);
    }
    if (out->data)
        memset(out->data, 0, out->cap);
    skiff_buf_release(out);
    return rc < 0 ? rc : 0;
}

static void proxy_start(struct h1_call *c, struct h1_conn *k, const char *host);

static void
socks_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    struct socks_resolve *r = req->data;
    struct h1_conn *k = r->k;
    free(r);
    char addr[64] = "";
    if (res && res->ai_family == AF_INET)
        uv_ip4_name((const struct sockaddr_in *)res->ai_addr, addr, sizeof addr);
    else if (res && res->ai_family == AF_INET6)
        uv_ip6_name((const struct sockaddr_in6 *)res->ai_addr, addr, sizeof addr);
    if (res)
        uv_freeaddrinfo(res);
    if (!k || !k->call)
        return; /* the connection closed meanwhile */
    k->sres = NULL;
    if (status < 0 || !*addr) {
        char msg[400];
        snprintf(msg, sizeof msg,
                 "could not resolve the upstream host %s for the socks5:// proxy (%s)",
                 k->origin->host, status < 0 ? uv_strerror(status) : "no address");
        finish(k->call, msg);
        return;
    }
    proxy_start(k->call, k, addr);
}

/* Starts the tunnel; for socks5:// the upstream's name is resolved here first. */
static void
proxy_begin(struct h1_call *c, struct h1_conn *k)
{
    unsigned char ip[16];
    const char *host = k->origin->host;
    if (k->origin->proxy.kind != SKIFF_PROXY_SOCKS5 || inet_pton(AF_INET, host, ip) == 1 ||
        inet_pton(AF_INET6, host, ip) == 1) {
        proxy_start(c, k, host);
        return;
    }
    struct socks_resolve *r = calloc(1, sizeof *r);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    if (!r) {
        finish(c, "out of memory resolving the upstream");
        return;
    }
    r->k = k;
    r->req.data = r;
    k->sres = r;
    int rc = uv_getaddrinfo(c->cl->loop, &r->req, socks_resolved, host, k->origin->port, &hints);
    if (rc < 0) {
        k->sres = NULL;
        free(r);
        finish(c, "could not resolve the upstream host for the socks5:// proxy");
    }
}

static void
proxy_start(struct h1_call *c, struct h1_conn *k, const char *host)
{
    struct skiff_buf out;
    skiff_buf_init(&out, 4096);
    k->hs = malloc(sizeof *k->hs);
    if (!k->hs || skiff_proxy_begin(k->hs, &k->origin->proxy, host, k->origin->port, &out) < 0 ||
        flush_proxy(k, &out) < 0) {
        if (out.data)
            memset(out.data, 0, out.cap);
        skiff_buf_release(&out);
        finish(c, "could not start the tunnel through the proxy");
    }
}

/* Bytes from the proxy while its tunnel is being set up. */
static void
proxy_in(struct h1_conn *k, const char *data, size_t len)
{
    struct h1_call *c = k->call;
    struct skiff_buf out;
    char err[300];
    int done = 0;
    skiff_buf_init(&out, 4096);
    ssize_t used = skiff_proxy_feed(k->hs, data, len, &out, &done, err, sizeof err);
    if (used >= 0 && flush_proxy(k, &out) < 0) {
        used = -1;
        snprintf(err, sizeof err, "could not write to the proxy");
    }
    if (out.data)
        memset(out.data, 0, out.cap);
    skiff_buf_release(&out);
    if (used >= 0 && done && (size_t)used < len) {
        used = -1; /* neither TLS nor HTTP/1.1 lets the server speak first */
        snprintf(err, sizeof err, "the upstream sent bytes through the proxy before the request");
    }
    if (used < 0) {
        if (c)
            finish(c, err);
        else
            conn_close(k);
        return;
    }
    if (!done)
        return;
    free(k->hs);
    k->hs = NULL;
    if (c)
        conn_ready(c, k);
    else
        conn_close(k);
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
static void
conn_connected(struct h1_call *c, struct h1_conn *k)
{
    if (tunnelled(k->origin))
        proxy_begin(c, k);
    else
        conn_ready(c, k);
}

/* The connection reaches the upstream (directly or through the proxy's tunnel): TLS
 * starts, or the request goes. */
static void
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
static void
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

/* ---- starting a call ---------------------------------------------------------------- */

/* Whether an idle connection has nothing waiting to be read. Its read callback closes it
 * when bytes or a close arrive, but those may have arrived in this very loop turn, before
 * the callback ran: a late answer to an earlier request must never be read as the answer
 * to this one (another client's, maybe). One recv that finds nothing costs less than that. */
static int
idle_clean(struct h1_conn *k)
{
    uv_os_fd_t fd;
    char b;
    if (uv_fileno((uv_handle_t *)&k->tcp, &fd) < 0)
        return 0;
    ssize_t n = recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n < 0)
        return errno == EAGAIN || errno == EWOULDBLOCK;
    if (n == 0 || !(k->tls || k->ptls))
        return 0;
    /* Over TLS the bytes may be no answer at all (a session ticket): let TLS judge them;
     * plaintext closes the connection. */
    while ((n = recv(fd, k->cl->rbuf, sizeof k->cl->rbuf, MSG_DONTWAIT)) > 0 && !k->closing) {
        if (k->ptls)
            ptls_in(k, k->cl->rbuf, (size_t)n);
        else
            tls_in(k, k->cl->rbuf, (size_t)n);
    }
    return !k->closing && n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

/* The TLS context for this call's ca_file, made on first use; -1 with the reason in err. */
static int
tls_ready(struct skiff_h1c *cl, const char *ca_file, char *err, size_t errlen)
{
    const char *want = ca_file && *ca_file ? ca_file : NULL;
    if (cl->tls && (want ? cl->tls_ca && !strcmp(cl->tls_ca, want) : !cl->tls_ca))
        return 0;
    struct skiff_tls_ctx *t =
        skiff_tls_ctx_new(want, alpn_offer, sizeof alpn_offer - 1, err, errlen);
    char *ca = want ? strdup(want) : NULL;
    if (!t || (want && !ca)) {
        skiff_tls_ctx_free(t);
        free(ca);
        if (t)
            snprintf(err, errlen, "out of memory setting up TLS");
        return -1;
    }
    skiff_tls_ctx_free(cl->tls); /* live sessions keep their own reference */
    free(cl->tls_ca);
    cl->tls = t;
    cl->tls_ca = ca;
    return 0;
}

/* The client's record of an origin, added on first sight; NULL when out of memory. */
static struct h1_origin *
origin_get(struct skiff_h1c *cl, const struct h1_origin *want)
{
    struct h1_origin *o = cl->origins;
    while (o &&
           (o->tls != want->tls || strcmp(o->key, want->key) != 0 || o->proxied != want->proxied ||
            (o->proxied && memcmp(&o->proxy, &want->proxy, sizeof o->proxy) != 0)))
        o = o->next;
    if (!o && (o = malloc(sizeof *o))) {
        *o = *want;
        o->next = cl->origins;
        cl->origins = o;
    }
    return o;
}

/* Splits "http://[user:pass@]host[:port]/target" into the call's origin, the authority
 * (host and port) and the userinfo (*ui, *uilen: 0 when none); returns the target ("/" when
 * the URL has none) or NULL when the URL is not one this client takes. */
static const char *
parse_url(struct h1_call *c, const char *url, const char *proxy, const char **authority,
          size_t *alen, const char **ui, size_t *uilen)
{
    struct h1_origin tmp;
    memset(&tmp, 0, sizeof tmp);
    if (proxy && *proxy) {
        if (skiff_proxy_parse(proxy, &tmp.proxy) < 0)
            return NULL;
        tmp.proxied = 1;
    }
    if (strncasecmp(url, "https://", 8) == 0)
        tmp.tls = 1;
    else if (strncasecmp(url, "http://", 7) != 0)
        return NULL;
    const char *a = url + (tmp.tls ? 8 : 7);
    size_t n = strcspn(a, "/?#");
    const char *target = a + n;
    /* Credentials (user:pass@, the last '@' ends them) are not part of the authority: they go
     * as basic authorization (build_request), never in host or a message. */
    *ui = a;
    *uilen = 0;
    for (const char *q = a; q < target; q++)
        if (*q == '@')
            *uilen = (size_t)(q - a);
    if (*uilen || (n && *a == '@')) {
        a += *uilen + 1;
        n -= *uilen + 1;
    }
    const char *a0 = a;
    *authority = a;
    *alen = n;
    const char *port = NULL, *hend = a + n;
    if (n && *a == '[') {
        const char *rb = memchr(a, ']', n);
        if (!rb)
            return NULL;
        if (rb + 1 < a + n && rb[1] == ':')
            port = rb + 2;
        a++;
        hend = rb;
    } else {
        const char *colon = memchr(a, ':', n);
        if (colon) {
            port = colon + 1;
            hend = colon;
        }
    }
    size_t hlen = (size_t)(hend - a), plen = port ? (size_t)(a0 + n - port) : 0;
    if (!hlen || hlen >= sizeof tmp.host || plen >= sizeof tmp.port || (port && !plen) ||
        strspn(port ? port : "", "0123456789") != plen || memchr(a, '@', hlen))
        return NULL;
    memcpy(tmp.host, a, hlen);
    tmp.host[hlen] = '\0';
    if (port)
        memcpy(tmp.port, port, plen);
    else
        memcpy(tmp.port, tmp.tls ? "443" : "80", plen = tmp.tls ? 3 : 2);
    tmp.port[plen] = '\0';
    /* key holds host, colon and port: 255 + 1 + 7 bytes and the NUL */
    memcpy(tmp.key, tmp.host, hlen);
    tmp.key[hlen] = ':';
    memcpy(tmp.key + hlen + 1, tmp.port, plen + 1);
    if (!(c->origin = origin_get(c->cl, &tmp)))
        return NULL;
    return *target == '/' || *target == '?' ? target : "/";
}

static int
build_request(struct h1_call *c, const struct skiff_upcall_opts *o)
{
    const char *authority, *ui;
    size_t alen, uilen;
    const char *target = parse_url(c, o->url, o->proxy, &authority, &alen, &ui, &uilen);
    if (!target)
        return -1;
    /* Credentials in the URL: basic authorization to the upstream, as curl sent them. */
    char user[256], pass[256];
    if (uilen && skiff_userinfo_decode(ui, uilen, user, sizeof user, pass, sizeof pass) < 0)
        return -1;
    struct skiff_buf *b = &c->req;
    skiff_buf_init(b, MAX_REQ_HEAD);
    /* One allocation: the headers are known, so their total is too. */
    size_t need = strlen(o->method) + strlen(target) + alen + 64;
    for (const char *const *h = o->headers; h && *h; h++)
        need += strlen(*h) + 2;
    /* Through an http:// proxy without a tunnel the target is the absolute URI, and the
     * proxy's credentials ride along. */
    int forwarded = c->origin->proxied && !tunnelled(c->origin);
    if (forwarded)
        need += alen + 16 + 2 * sizeof c->origin->proxy.user;
    if (uilen)
        need += 32 + 2 * sizeof user;
    if (skiff_buf_reserve(b, need))
        return -1;
    skiff_buf_adds(b, o->method);
    skiff_buf_add(b, " ", 1);
    if (forwarded) {
        skiff_buf_adds(b, "http://");
        skiff_buf_add(b, authority, alen);
    }
    if (*target == '?')
        skiff_buf_add(b, "/", 1);
    skiff_buf_adds(b, target);
    skiff_buf_adds(b, " HTTP/1.1\r\nhost: ");
    skiff_buf_add(b, authority, alen);
    skiff_buf_add(b, "\r\n", 2);
    if (uilen) {
        int rc = skiff_basic_auth_header("authorization", user, pass, b);
        memset(user, 0, sizeof user);
        memset(pass, 0, sizeof pass);
        if (rc < 0)
            return -1;
    }
    if (forwarded && skiff_proxy_auth_header(&c->origin->proxy, b) < 0)
        return -1;
    for (const char *const *h = o->headers; h && *h; h++) {
        skiff_buf_adds(b, *h);
        skiff_buf_add(b, "\r\n", 2);
    }
    if (strcmp(o->method, "GET") != 0) {
        skiff_buf_adds(b, "content-length: ");
        skiff_buf_add_uint(b, o->body_len);
        skiff_buf_add(b, "\r\n", 2);
    }
    return skiff_buf_add(b, "\r\n", 2) ? -1 : 0;
}

struct skiff_upcall *
skiff_h1c_start(struct skiff_h1c *cl, const struct skiff_upcall_opts *o)
{
    if (cl->closing)
        return NULL;
    struct h1_call *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->base.kind = SKIFF_UPCALL_H1;
    c->base.ops = o->ops;
    c->base.data = o->data;
    c->cl = cl;
    c->body = o->body ? o->body : "";
    c->body_len = o->body ? o->body_len : 0;
    c->connect_ms = o->connect_timeout_ms > 0 ? o->connect_timeout_ms : 10000;
    c->first_byte_ms = o->first_byte_timeout_ms;
    c->idle_ms = o->idle_timeout_ms;
    c->addr_ok = o->addr_ok;
    skiff_buf_init(&c->head, MAX_HEAD);
    if (build_request(c, o) < 0) {
        wipe(&c->req);
        free(c);
        return NULL;
    }
    uv_timer_init(cl->loop, &c->timer);
    c->timer.data = c;
    c->next = cl->calls;
    if (cl->calls)
        cl->calls->prev = c;
    cl->calls = c;
    if (++cl->active > cl->peak_active)
        cl->peak_active = cl->active;
    if (h2_try(c))
        return &c->base; /* on a stream, or waiting for one */

    /* The newest idle connection to the same origin: the one least likely to have been
     * closed by the upstream's own idle timeout. */
    struct h1_conn *k = c->addr_ok ? NULL : cl->idle_head; /* a checked call connects anew */
    while (k && (k->origin != c->origin || !idle_clean(k))) {
        struct h1_conn *next = k->next;
        if (k->origin == c->origin)
            conn_close(k);
        k = next;
    }
    c->starting = 1;
    char err[400];
    int tls = c->origin->tls || c->origin->proxy.tls;
    if (tls && !k && uv_now(cl->loop) < c->origin->tls_failed_until) {
        finish(c, c->origin->tls_error); /* reported from the loop, as every early end */
    } else if (tls && !k && tls_ready(cl, o->ca_file, err, sizeof err) < 0) {
        finish(c, err);
    } else if (k) {
        idle_unlink(k);
        k->call = c;
        c->conn = k;
        send_request(c);
    } else {
        connect_next(c);
    }
    c->starting = 0;
    return &c->base;
}

void
skiff_h1c_resume(struct skiff_upcall *call)
{
    struct h1_call *c = (struct h1_call *)call;
    if (!c->paused || c->cancelled || c->done)
        return;
    c->paused = 0;
    if (h2_resume(c))
        return;
    char *held = c->held;
    size_t len = c->held_len;
    c->held = NULL;
    c->held_len = 0;
    if (held)
        feed(c, held, len); /* may pause again: then it keeps its own copy of the rest */
    free(held);
    /* Over TLS, decrypted bytes may wait inside OpenSSL with nothing on the socket to say
     * so: they go first, or the call would wait for the next packet (or forever). */
    if (!c->paused && !c->cancelled && !c->done && c->conn && c->conn->tls)
        drain_tls(c->conn);
    if (!c->paused && !c->cancelled && !c->done && c->conn && c->conn->ptls)
        drain_ptls(c->conn);
    if (!c->paused && !c->cancelled && !c->done && c->conn) {
        uv_read_start((uv_stream_t *)&c->conn->tcp, alloc_cb, read_cb);
        arm(c);
    }
}

/* ---- the client's life ------------------------------------------------------------------ */

/* ---- warm connections ---------------------------------------------------------------- */

struct warm_resolve {
    uv_getaddrinfo_t req;
    struct skiff_h1c *cl;
    struct h1_origin *origin;
};

static void
warm_connected(uv_connect_t *req, int status)
{
    struct h1_conn *k = req->data;
    free(req);
    if (k->closing)
        return;
    if (status < 0 || uv_read_start((uv_stream_t *)&k->tcp, alloc_cb, read_cb) < 0) {
        conn_close(k);
        return;
    }
    uv_tcp_keepalive(&k->tcp, 1, 60);
    if (!k->origin->tls) {
        idle_push(k);
        return;
    }
    k->tls = skiff_tls_new(k->cl->tls, k->origin->host, &k->origin->session);
    k->handshaking = 1;
    if (!k->tls || skiff_tls_handshake(k->tls) < 0 || flush_tls(k) < 0)
        conn_close(k); /* the handshake goes on in tls_in, which makes it idle when done */
}

static void
warm_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    struct warm_resolve *r = req->data;
    struct skiff_h1c *cl = r->cl;
    struct h1_origin *o = r->origin;
    free(r);
    cl->warming--;
    struct h1_conn *k = NULL;
    uv_connect_t *creq = NULL;
    if (status < 0 || !res || cl->closing || !(k = calloc(1, sizeof *k)) ||
        !(creq = malloc(sizeof *creq)))
        goto out;
    k->cl = cl;
    k->origin = o;
    k->warming = 1;
    k->idle_since = uv_now(cl->loop); /* for a warm connection: when it was opened */
    if (o->tls && !o->h1_only) {
        k->h2cand = 1;
        o->h2_opening++;
    }
    cl->warming++;
    k->next = cl->warm_conns;
    if (cl->warm_conns)
        cl->warm_conns->prev = k;
    cl->warm_conns = k;
    uv_tcp_init(cl->loop, &k->tcp);
    cl->nconns++;
    k->tcp.data = k;
    uv_tcp_nodelay(&k->tcp, 1);
    creq->data = k;
    if (uv_tcp_connect(creq, &k->tcp, res->ai_addr, warm_connected) < 0) {
        free(creq);
        conn_close(k);
    }
    k = NULL;
    creq = NULL;
out:
    free(k);
    free(creq);
    if (res)
        uv_freeaddrinfo(res);
    maybe_free_client(cl);
}

/* Opens connections to the warm origin until warm_n are idle or on their way. */
static void
warm_top_up(struct skiff_h1c *cl)
{
    struct h1_origin *o = cl->warm;
    if (!o || cl->closing || (o->tls && uv_now(cl->loop) < o->tls_failed_until))
        return;
    int have = cl->warming + h2_warm_count(cl, o);
    for (struct h1_conn *k = cl->idle_head; k; k = k->next)
        have += k->origin == o;
    for (; have < cl->warm_n; have++) {
        struct warm_resolve *r = calloc(1, sizeof *r);
        if (!r)
            return;
        r->cl = cl;
        r->origin = o;
        r->req.data = r;
        struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
        if (uv_getaddrinfo(cl->loop, &r->req, warm_resolved, o->host, o->port, &hints) < 0) {
            free(r);
            return;
        }
        cl->warming++;
    }
}

int
skiff_h1c_warm(struct skiff_h1c *cl, const char *url, const char *ca_file, int n)
{
    struct h1_call tmp;
    const char *authority, *ui;
    size_t alen, uilen;
    char err[400];
    memset(&tmp, 0, sizeof tmp);
    tmp.cl = cl;
    if (n <= 0 || !parse_url(&tmp, url, NULL, &authority, &alen, &ui, &uilen))
        return -1;
    if (tmp.origin->tls && tls_ready(cl, ca_file, err, sizeof err) < 0)
        return -1;
    cl->warm = tmp.origin;
    cl->warm_n = n;
    warm_top_up(cl);
    return 0;
}

/* Closes connections that have been idle for IDLE_MS, oldest first, except the warm_n
 * kept open to the warm origin; then tops those up (the upstream may have closed some). */
static void
sweep_cb(uv_timer_t *t)
{
    struct skiff_h1c *cl = t->data;
    uint64_t now = uv_now(cl->loop);
    int warm = 0;
    for (struct h1_conn *k = cl->idle_head; k; k = k->next)
        warm += k->origin == cl->warm;
    /* A warm connection that is not ready after WARM_MS (an upstream that accepts and
     * never finishes the handshake) gives way to a new one. */
    for (struct h1_conn *w = cl->warm_conns, *next; w; w = next) {
        next = w->next;
        if (now - w->idle_since >= WARM_MS)
            conn_close(w);
    }
    struct h1_conn *k = cl->idle_tail;
    while (k && now - k->idle_since >= IDLE_MS) {
        struct h1_conn *prev = k->prev;
        if (k->origin != cl->warm || warm > cl->warm_n) {
            warm -= k->origin == cl->warm;
            conn_close(k);
        }
        k = prev;
    }
    h2_sweep(cl, now);
    warm_top_up(cl);
}

struct skiff_h1c *
skiff_h1c_new(uv_loop_t *loop)
{
    struct skiff_h1c *cl = calloc(1, sizeof *cl);
    if (!cl)
        return NULL;
    cl->loop = loop;
    skiff_buf_init(&cl->hdrs, MAX_HEAD);
    uv_timer_init(loop, &cl->sweep);
    cl->sweep.data = cl;
    uv_timer_start(&cl->sweep, sweep_cb, SWEEP_MS, SWEEP_MS);
    uv_unref((uv_handle_t *)&cl->sweep);
    uv_timer_init(loop, &cl->h2_reap);
    cl->h2_reap.data = cl;
    uv_timer_init(loop, &cl->trim);
    cl->trim.data = cl;
    return cl;
}

/* glibc keeps freed memory in its arenas: thousands of held streams, once closed, would
 * leave the process at its peak size. malloc_trim hands the free pages back. */
static void
trim_cb(uv_timer_t *t)
{
    struct skiff_h1c *cl = t->data;
    if (cl->active > 0)
        return;
    if (cl->peak_active) {
        /* The burst is over and nothing is in flight: its HTTP/2 connections go (all but
         * those kept warm), and the memory once their close callbacks have freed them. */
        cl->peak_active = 0;
        h2_close_idle(cl);
        uv_timer_start(&cl->trim, trim_cb, TRIM_MS, 0);
        return;
    }
#ifdef __GLIBC__
    malloc_trim(0);
#endif
}

static void
trim_closed(uv_handle_t *h)
{
    struct skiff_h1c *cl = h->data;
    cl->trim_closed = 1;
    maybe_free_client(cl);
}

static void
reap_closed(uv_handle_t *h)
{
    struct skiff_h1c *cl = h->data;
    cl->reap_closed = 1;
    maybe_free_client(cl);
}

static void
sweep_closed(uv_handle_t *h)
{
    struct skiff_h1c *cl = h->data;
    cl->sweep_closed = 1;
    maybe_free_client(cl);
}

void
skiff_h1c_close(struct skiff_h1c *cl)
{
    if (!cl)
        return;
    cl->closing = 1;
    while (cl->calls)
        skiff_h1c_cancel(&cl->calls->base);
    while (cl->idle_head)
        conn_close(cl->idle_head);
    while (cl->warm_conns)
        conn_close(cl->warm_conns);
    h2_close_all(cl);
    uv_timer_stop(&cl->sweep);
    uv_close((uv_handle_t *)&cl->sweep, sweep_closed);
    uv_timer_stop(&cl->h2_reap);
    uv_close((uv_handle_t *)&cl->h2_reap, reap_closed);
    uv_timer_stop(&cl->trim);
    uv_close((uv_handle_t *)&cl->trim, trim_closed);
}

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

static void
h2_reap_soon(struct skiff_h1c *cl)
{
    if (!cl->closing)
        uv_timer_start(&cl->h2_reap, h2_reap_cb, 0, 0);
}

static void
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

/* Starts c's stream on k. */
static void
h2_start_stream(struct h1_call *c, struct h1_conn *k)
{
    c->h2conn = k;
    c->phase = WAITING;
    arm(c);
    k->in_h2++;
    int rc = skiff_h2_submit(k->h2, c->req.data, c->req.len, c->body, c->body_len, c);
    k->in_h2--;
    if (rc < 0) {
        c->h2conn = NULL;
        finish(c, "could not start an HTTP/2 stream to the upstream");
        return;
    }
    c->wrote = 1;
    k->idle_since = 0;
    if (skiff_h2_finished(k->h2))
        h2_reap_soon(k->cl); /* the send failed: the connection ends from the loop */
}

/* Places a new call on an HTTP/2 stream, or queues it for one; 0 when it must open a
 * connection of its own (the origin is not known to be HTTP/1.1-only, but nothing that may
 * carry it is on the way). */
static int
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
static void
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
    if (error && not_processed && !c->retried && !c->got_bytes && !c->cl->closing) {
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

static const struct skiff_h2_ops h2_ops = {
    .send = h2_send,
    .on_head = h2_on_head,
    .on_data = h2_on_data,
    .on_end = h2_on_end,
};

/* ---- connections ---- */

/* The TLS handshake is complete. ALPN h2: the connection becomes the origin's HTTP/2
 * connection (the call that opened it, if any, its first stream) and 1 is returned; else
 * the origin is HTTP/1.1-only and 0 lets the caller send the call's HTTP/1.1 request. */
static int
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
static void
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

static void
h2_conn_end(struct h1_conn *k, const char *why)
{
    if (k->closing)
        return;
    k->why = why;
    conn_close(k);
}

/* Inside conn_close: the connection leaves the origin, and its calls end (or go again on
 * another connection when the upstream never saw them). */
static void
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

static int
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
static void
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
static void
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

static int
h2_warm_count(struct skiff_h1c *cl, struct h1_origin *o)
{
    (void)cl;
    int n = 0;
    for (struct h1_conn *k = o->h2conns; k; k = k->h2next)
        n += !k->closing && skiff_h2_can_open(k->h2);
    return n;
}

static void
h2_close_all(struct skiff_h1c *cl)
{
    for (struct h1_origin *o = cl->origins; o; o = o->next)
        while (o->h2conns)
            h2_conn_end(o->h2conns, "the relay is shutting down");
}
