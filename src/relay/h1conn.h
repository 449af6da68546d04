/*
 * The internal contract of skiff's own HTTP/1.1 client for http:// and https:// upstreams, on the
 * worker's libuv loop: what nginx's proxy module does with upstream keep-alive, and what h2o's
 * http1client does.
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
 *
 * The client is split by concept into these files; each includes this header, nothing else does:
 *   h1client.c    the client and its calls: ending, timers, starting, resuming, new/close
 *   h1conn.c      connections: idle/warm lists, read and write paths (TLS), connect, resolve
 *   h1proxy.c     tunnels through a proxy (CONNECT, SOCKS5), TLS to an https:// proxy
 *   h1exchange.c  the HTTP/1.1 exchange: request head, response framing, keep-alive end
 *   h1warm.c      warm connections and the sweep
 *   h1h2.c        HTTP/2: calls scheduled onto shared connections (sessions in h2client.c)
 *   h1stream.c    streamed request bodies (uploads): queued, framed, drained
 *
 * Ownership: the client (struct skiff_h1c) owns its origins (freed with it), its calls and
 * connections (counted; it is freed only when the last connection and timer have closed)
 * and the read buffers every connection shares. A call owns its request head, gathered
 * response head, held bytes and addresses; it borrows its body. A connection owns its TLS
 * sessions, proxy handshake and HTTP/2 session; it points at its call (NULL while idle), and
 * the call at it. An origin is shared by every call and connection to it.
 */
#ifndef SKIFF_H1CONN_H
#define SKIFF_H1CONN_H

#include "relay/upcall.h"

#include <netdb.h>
#include <stdint.h>
#include <sys/types.h>

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
    /* HTTP/2 (h1h2.c): */
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

/* Where the parts of a call's request head lie (offsets into its req), marked as
 * build_request writes them: an HTTP/2 stream sends them as fields (h1h2.c), not the head. */
struct h1_span {
    size_t at, len;
};
struct h1_reqparts {
    struct h1_span method, target, authority;
    struct h1_span *fields; /* name, value, name, value, ... (2 * nfields), owned */
    size_t nfields, cap;
    int bad; /* a header line without a colon: no stream can carry it */
};

struct h1_call {
    struct skiff_upcall base; /* first: the transport-neutral part */
    struct skiff_h1c *cl;
    struct h1_conn *conn;
    struct resolve *resolving;
    struct addrinfo *ai, *ai_next; /* addresses of the origin, the next one to try */
    uv_timer_t timer;              /* connect, first-byte, then idle-between-pieces */
    long connect_ms, first_byte_ms, idle_ms;
    enum phase phase;
    struct skiff_buf req;     /* the request head until it is written */
    struct h1_reqparts parts; /* its parts, for an https:// origin (which may speak h2) */
    const char *body;         /* borrowed */
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
    /* A streamed body (h1stream.c): */
    int streaming;                               /* the body comes through skiff_upcall_write */
    void (*on_drain)(struct skiff_upcall *call); /* opts.on_drain */
    int chunked_body;       /* its length is unknown: chunked framing (HTTP/1.1) */
    int body_ended;         /* skiff_upcall_end_body was called */
    int head_sent;          /* the head went (or the stream opened): bytes go to the wire */
    int want_drain;         /* a write left the high-water mark or more queued */
    uint64_t body_written;  /* body bytes handed to the connection */
    struct skiff_buf early; /* bytes written before the head went */
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
    uv_timer_t h2_reap;         /* ends HTTP/2 connections whose session failed in a call */
    int reap_closed;
    uv_timer_t trim; /* gives a burst's memory back once the last call is gone */
    int trim_closed;
    int peak_active;     /* calls at once since the last trim */
    char rbuf[READ_BUF]; /* every connection reads here; data is used before the next read */
    char pbuf[READ_BUF]; /* TLS: decrypted bytes, used before the next decryption */
    char xbuf[READ_BUF]; /* TLS to a proxy: decrypted bytes (the tunnel's ciphertext) */
};

/* ---- the functions the files share (each file's own stay static) ---- */

/* h1client.c */
void maybe_free_client(struct skiff_h1c *cl);
void wipe(struct skiff_buf *b);
void finish(struct h1_call *c, const char *error);
void idle_push(struct h1_conn *k);
void complete(struct h1_call *c, int extra_bytes);
void conn_failed(struct h1_call *c, const char *what, int err);
void arm(struct h1_call *c);
int tls_ready(struct skiff_h1c *cl, const char *ca_file, char *err, size_t errlen);
const char *parse_url(struct h1_call *c, const char *url, const char *proxy, const char **authority,
                      size_t *alen, const char **ui, size_t *uilen);

/* h1conn.c */
void idle_unlink(struct h1_conn *k);
void warm_unlink(struct h1_conn *k);
void conn_close(struct h1_conn *k);
/* k's set-up failed: its call (if it has one) ends with why, else k closes. */
void conn_fail(struct h1_conn *k, const char *why);
/* A TLS handshake of k (tls: the upstream's, or an https:// proxy's) failed: the origin keeps
 * the cause (tls's error, else fallback) for TLS_FAIL_MS, so the calls meanwhile fail at once
 * with it, and k fails with it. */
void tls_handshake_failed(struct h1_conn *k, struct skiff_tls *tls, const char *fallback);
void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
void drain_tls(struct h1_conn *k);
void tls_in(struct h1_conn *k, const char *data, size_t len);
void wire_in(struct h1_conn *k, const char *data, size_t len);
void wire_end(struct h1_conn *k, ssize_t nread, const char *why);
void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);
int flush_ptls(struct h1_conn *k, int *queued);
int wire_write(struct h1_conn *k, uv_buf_t *bufs, unsigned nbufs, int copy, int *queued);
int flush_tls(struct h1_conn *k);
void conn_connected(struct h1_call *c, struct h1_conn *k);
void conn_ready(struct h1_call *c, struct h1_conn *k);
void connect_next(struct h1_call *c);

/* h1proxy.c */
void drain_ptls(struct h1_conn *k);
void ptls_in(struct h1_conn *k, const char *data, size_t len);
int tunnelled(const struct h1_origin *o);
void proxy_begin(struct h1_call *c, struct h1_conn *k);
void proxy_in(struct h1_conn *k, const char *data, size_t len);

/* h1exchange.c */
void feed(struct h1_call *c, const char *data, size_t len);
void conn_eof(struct h1_call *c);
void send_request(struct h1_call *c);
int build_request(struct h1_call *c, const struct skiff_upcall_opts *o);

/* h1stream.c */
void stream_head_sent(struct h1_call *c);
void stream_written(struct h1_call *c);
long stream_timeout(const struct h1_call *c, long ms);
void stream_release(struct h1_call *c);

/* h1warm.c */
void sweep_cb(uv_timer_t *t);

/* h1h2.c */
void h2_reap_soon(struct skiff_h1c *cl);
void h2_cand_done(struct h1_conn *k);
int h2_try(struct h1_call *c);
void h2_leave(struct h1_call *c);
int h2_handshaken(struct h1_conn *k);
void h2_drain(struct h1_conn *k);
void h2_conn_end(struct h1_conn *k, const char *why);
void h2_conn_closing(struct h1_conn *k);
int h2_resume(struct h1_call *c);
void h2_sweep(struct skiff_h1c *cl, uint64_t now);
void h2_close_idle(struct skiff_h1c *cl);
int h2_warm_count(struct skiff_h1c *cl, struct h1_origin *o);
void h2_close_all(struct skiff_h1c *cl);

#endif
