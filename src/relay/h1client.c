/*
 * skiff's own upstream client (relay/h1conn.h has the whole design): the client and its
 * calls: ending a call, its timers, starting one (origins, URLs, the TLS context, an idle
 * connection or a new one), resuming, and the client's own life (new, trim, close).
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
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "base/url.h"

/* ALPN: HTTP/2 first (relay/h2client.c), then HTTP/1.1. */
static const unsigned char alpn_offer[] = "\x02h2\x08http/1.1";

static void trim_cb(uv_timer_t *t);

/* ---- the client ------------------------------------------------------------------------ */

void
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

/* ---- calls: ending ---------------------------------------------------------------------- */

void
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
    free(c->parts.fields);
    skiff_buf_release(&c->head);
    stream_release(c);
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
void
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
void
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

void
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
void
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
    if (c->streaming && !c->body_ended && c->phase == WAITING)
        finish(c, "the upstream stopped taking the upload's bytes (idle timeout)");
    else
        finish(c, why[c->phase]);
}

void
arm(struct h1_call *c)
{
    long ms = c->phase == CONNECTING ? c->connect_ms
              : c->phase == WAITING  ? c->first_byte_ms
                                     : c->idle_ms;
    ms = stream_timeout(c, ms);
    if (ms > 0 && !c->paused)
        uv_timer_start(&c->timer, timer_cb, (uint64_t)ms, 0);
    else
        uv_timer_stop(&c->timer);
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
int
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
const char *
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
    struct skiff_url_parts u;
    if (skiff_url_split(url, &u) < 0 || u.host_len >= sizeof tmp.host ||
        u.port_len >= sizeof tmp.port)
        return NULL;
    tmp.tls = u.tls;
    /* Credentials are not part of the authority: they go as basic authorization
     * (build_request), never in host or a message. */
    *ui = u.userinfo;
    *uilen = u.userinfo_len;
    *authority = u.authority;
    *alen = u.authority_len;
    size_t hlen = u.host_len, plen = u.port_len;
    memcpy(tmp.host, u.host, hlen);
    tmp.host[hlen] = '\0';
    if (plen)
        memcpy(tmp.port, u.port, plen);
    else
        memcpy(tmp.port, tmp.tls ? "443" : "80", plen = tmp.tls ? 3 : 2);
    tmp.port[plen] = '\0';
    /* key holds host, colon and port: 255 + 1 + 7 bytes and the NUL */
    memcpy(tmp.key, tmp.host, hlen);
    tmp.key[hlen] = ':';
    memcpy(tmp.key + hlen + 1, tmp.port, plen + 1);
    if (!(c->origin = origin_get(c->cl, &tmp)))
        return NULL;
    return *u.target == '/' || *u.target == '?' ? u.target : "/";
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
    if (o->stream_body) {
        c->streaming = 1;
        c->on_drain = o->on_drain;
        c->chunked_body = o->body_len == SKIFF_UPCALL_UNKNOWN_LEN;
        c->body = "";
        c->body_len = 0;
        skiff_buf_init(&c->early, 2 * SKIFF_UPCALL_HIGH_WATER);
    }
    c->connect_ms = o->connect_timeout_ms > 0 ? o->connect_timeout_ms : 10000;
    c->first_byte_ms = o->first_byte_timeout_ms;
    c->idle_ms = o->idle_timeout_ms;
    c->addr_ok = o->addr_ok;
    skiff_buf_init(&c->head, MAX_HEAD);
    if (build_request(c, o) < 0) {
        wipe(&c->req);
        free(c->parts.fields);
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
