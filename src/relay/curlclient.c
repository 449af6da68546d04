/*
 * curl multi_socket on libuv, after curl's docs/examples/multi-uv.c. libcurl forbids
 * removing a handle from inside its own callbacks, so cancellation while curl is on the
 * stack only marks the call; it is removed and freed when curl returns (reap()).
 *
 * Pausing is deferred the same way: on_body has consumed its bytes when it asks for a
 * pause, but a write callback returning CURL_WRITEFUNC_PAUSE tells curl the bytes were
 * not taken, and curl would deliver them again on resume. So write_cb takes them and the
 * call is paused with curl_easy_pause once curl has returned (apply_pauses()).
 *
 * An HTTP/2 upstream may send its whole answer before it has read the request body (an
 * early error, or nginx's `return`), then RST_STREAM(NO_ERROR), as RFC 9113 section 8.1
 * allows. libcurl before 8.3 then fails the transfer when it next tries to send the body
 * (CURLE_HTTP2_STREAM, "stream N closed", nothing in the error buffer). When the answer had
 * already reached our callbacks, check_done() takes it as the success it is; when curl had
 * not yet handed it over, it is lost and the relay retries. So the body must leave with its
 * headers (poll_cb()). docs/internals/upstream.md, "The ~200 ms stall", has the evidence.
 */
#include "relay/upcall.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/buf.h"
#include "relay/h1resp.h"
#include "base/url.h"

/* Easy handles kept for reuse: curl_easy_init costs more than a reset. */
#define SPARE_EASY 64

struct skiff_curlc {
    uv_loop_t *loop;
    CURLM *multi;
    uv_timer_t timer;
    int in_curl; /* curl is on the stack: removal must wait */
    int active;
    int closing;
    struct curl_call *calls;   /* in flight */
    struct curl_call *reaping; /* cancelled while curl was on the stack */
    struct curl_call *pausing; /* asked to pause while curl was on the stack */
    CURL *spare[SPARE_EASY];   /* finished handles, reset, for the next calls */
    int nspare;
    struct sock_ctx **socks; /* by descriptor: every socket curl opened and has not closed */
    size_t nsocks;
};

struct curl_call {
    struct skiff_upcall base; /* first: the transport-neutral part */
    struct skiff_curlc *u;
    CURL *easy;
    struct curl_slist *hdrs;
    uv_timer_t timer; /* first-byte, then idle-between-pieces */
    long first_byte_ms, idle_ms;
    struct skiff_buf head; /* response header block */
    int status;
    int got_bytes; /* anything at all came back */
    int answered;  /* on_status was called: the final header block came */
    int cancelled;
    int done;
    int paused;
    int pause_wanted;
    const char *body; /* borrowed; read out by read_cb */
    size_t body_len, body_off;
    struct curl_call *prev, *next, *reap_next, *pause_next;
    char errbuf[CURL_ERROR_SIZE];
};

struct sock_ctx {
    uv_poll_t poll;
    curl_socket_t fd;
    struct skiff_curlc *u;
};

/* The socket's record, or NULL when curl has not handed it to socket_cb yet. */
static struct sock_ctx *
sock_find(const struct skiff_curlc *u, curl_socket_t fd)
{
    return fd >= 0 && (size_t)fd < u->nsocks ? u->socks[fd] : NULL;
}

static void process(struct skiff_curlc *u, curl_socket_t fd, int flags);

/* ---- call lifetime -------------------------------------------------------------------- */

static void
free_call(uv_handle_t *h)
{
    struct curl_call *c = h->data;
    skiff_buf_release(&c->head);
    free(c);
}

static void
unlink_call(struct curl_call *c)
{
    struct skiff_curlc *u = c->u;
    if (c->prev)
        c->prev->next = c->next;
    else if (u->calls == c)
        u->calls = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
}

/* Removes the easy handle from curl and frees the call (after its timer closes). */
static void
destroy(struct curl_call *c)
{
    struct skiff_curlc *u = c->u;
    unlink_call(c);
    u->active--;
    curl_multi_remove_handle(u->multi, c->easy);
    if (u->nspare < SPARE_EASY && !u->closing) {
        curl_easy_reset(c->easy);
        u->spare[u->nspare++] = c->easy;
    } else {
        curl_easy_cleanup(c->easy);
    }
    curl_slist_free_all(c->hdrs);
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->timer, free_call);
}

static void
reap(struct skiff_curlc *u)
{
    while (!u->in_curl && u->reaping) {
        struct curl_call *c = u->reaping;
        u->reaping = c->reap_next;
        destroy(c);
    }
}

/* Ends a call that has not been cancelled: report once, then free. */
static void
finish(struct curl_call *c, const char *error)
{
    c->done = 1;
    uv_timer_stop(&c->timer);
    c->base.ops->on_done(&c->base, error);
    destroy(c);
}

void
skiff_curlc_cancel(struct skiff_upcall *call)
{
    struct curl_call *c = (struct curl_call *)call;
    if (!c || c->cancelled || c->done)
        return;
    c->cancelled = 1;
    uv_timer_stop(&c->timer);
    if (c->u->in_curl) {
        c->reap_next = c->u->reaping;
        c->u->reaping = c;
        return;
    }
    destroy(c);
}

int
skiff_curlc_active(const struct skiff_curlc *u)
{
    return u->active;
}

/* ---- per-call timer ------------------------------------------------------------------- */

static void
call_timer_cb(uv_timer_t *t)
{
    struct curl_call *c = t->data;
    if (c->cancelled || c->done)
        return;
    finish(c, c->got_bytes ? "the upstream stalled between chunks (idle timeout)"
                           : "timed out waiting for the first byte from the upstream");
}

static void
arm(struct curl_call *c)
{
    long ms = c->got_bytes ? c->idle_ms : c->first_byte_ms;
    if (ms > 0 && !c->paused)
        uv_timer_start(&c->timer, call_timer_cb, (uint64_t)ms, 0);
    else
        uv_timer_stop(&c->timer);
}

/* ---- curl callbacks ------------------------------------------------------------------- */

static size_t
header_cb(char *p, size_t size, size_t n, void *ud)
{
    struct curl_call *c = ud;
    size_t len = size * n;
    if (c->cancelled)
        return 0;
    if (!c->got_bytes) {
        c->got_bytes = 1;
        arm(c);
    }
    if (len >= 5 && strncmp(p, "HTTP/", 5) == 0) {
        /* A new header block: the one before was informational (100 Continue). */
        skiff_buf_reset(&c->head);
        const char *sp = memchr(p, ' ', len);
        c->status = sp ? (int)strtol(sp + 1, NULL, 10) : 0;
        return len;
    }
    if (len <= 2 && (p[0] == '\r' || p[0] == '\n')) {
        if (c->status >= 100 && c->status < 200)
            return len;
        c->answered = 1;
        skiff_h1_drop_connection(&c->head, 0);
        int rc = c->base.ops->on_status(&c->base, c->status, c->head.data ? c->head.data : "",
                                        c->head.len);
        return rc == 0 && !c->cancelled ? len : 0;
    }
    const char *colon = memchr(p, ':', len);
    /* Connection lines stay until the head is complete (skiff_h1_drop_connection). */
    if (colon && (!skiff_h1_hop_by_hop(p, (size_t)(colon - p)) ||
                  ((size_t)(colon - p) == 10 && strncasecmp(p, "connection", 10) == 0))) {
        /* Keep the line as it came, minus a bare-LF ending normalised to CRLF. */
        size_t l = len;
        while (l && (p[l - 1] == '\r' || p[l - 1] == '\n'))
            l--;
        if (skiff_buf_add(&c->head, p, l) || skiff_buf_add(&c->head, "\r\n", 2))
            return 0; /* 64 KiB of upstream headers is garbage, not a response */
    }
    return len;
}

static size_t
write_cb(char *p, size_t size, size_t n, void *ud)
{
    struct curl_call *c = ud;
    size_t len = size * n;
    if (c->cancelled)
        return 0;
    int rc = c->base.ops->on_body(&c->base, p, len);
    if (c->cancelled || rc < 0)
        return 0;
    if (rc == 1) {
        uv_timer_stop(&c->timer);
        if (!c->pause_wanted) {
            c->pause_wanted = 1;
            c->pause_next = c->u->pausing;
            c->u->pausing = c;
        }
        return len;
    }
    arm(c);
    return len;
}

/* The request body, read out as curl sends it. */
static size_t
read_cb(char *p, size_t size, size_t n, void *ud)
{
    struct curl_call *c = ud;
    size_t len = size * n, left = c->body_len - c->body_off;
    if (len > left)
        len = left;
    memcpy(p, c->body + c->body_off, len);
    c->body_off += len;
    return len;
}

/* curl rewinds the body to send the request again on a new connection when a reused one
 * died before any answer, even after the upstream had read the request: refused, so the
 * call fails and the relay decides, as an attempt it counts. A request of which no body
 * byte went out needs no rewind and is sent again (the upstream saw no complete request). */
static int
seek_cb(void *ud, curl_off_t offset, int origin)
{
    (void)ud;
    (void)offset;
    (void)origin;
    return CURL_SEEKFUNC_FAIL;
}

/* ---- curl multi on the loop ----------------------------------------------------------- */

static void
check_done(struct skiff_curlc *u)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(u->multi, &left))) {
        if (m->msg != CURLMSG_DONE)
            continue;
        struct curl_call *c = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&c);
        if (!c || c->cancelled || c->done)
            continue;
        CURLcode rc = m->data.result;
        /* The stream closed cleanly after a full answer, before curl sent the request body
         * (see the top of this file): libcurl 7.88 fails only the send, with an empty error
         * buffer; a reset or a cut-short answer comes with a message there. */
        if (rc == CURLE_HTTP2_STREAM && c->answered && !c->errbuf[0])
            rc = CURLE_OK;
        if (rc == CURLE_OK) {
            finish(c, NULL);
        } else if (rc == CURLE_SEND_FAIL_REWIND) {
            finish(c, "the upstream closed a reused connection after reading the request, "
                      "without answering");
        } else {
            char msg[CURL_ERROR_SIZE + 64];
            /* libcurl may quote a URL: its password (user:pw@) is starred out. */
            skiff_url_redact(c->errbuf[0] ? c->errbuf : curl_easy_strerror(rc), msg, sizeof msg);
            finish(c, msg);
        }
    }
}

/* Pauses the calls whose on_body asked for it while curl was on the stack. Runs before
 * reap() and check_done(), so every call on the list still has its handle. */
static void
apply_pauses(struct skiff_curlc *u)
{
    while (u->pausing) {
        struct curl_call *c = u->pausing;
        u->pausing = c->pause_next;
        c->pause_wanted = 0;
        if (c->cancelled || c->done || c->paused)
            continue;
        c->paused = 1;
        curl_easy_pause(c->easy, CURLPAUSE_RECV);
    }
}

static void
process(struct skiff_curlc *u, curl_socket_t fd, int flags)
{
    int running;
    u->in_curl++;
    curl_multi_socket_action(u->multi, fd, flags, &running);
    u->in_curl--;
    apply_pauses(u);
    reap(u);
    check_done(u);
}

static void
poll_cb(uv_poll_t *h, int status, int events)
{
    struct sock_ctx *s = h->data;
    int flags = 0;
    /* On a socket error let curl read first: what arrived before a reset is still an
     * answer (or a part of one) and curl finds the error itself. */
    if (status < 0)
        flags = CURL_CSELECT_IN | CURL_CSELECT_OUT;
    if (events & UV_READABLE)
        flags |= CURL_CSELECT_IN;
    /* Always "writable" as well (a send that cannot go returns EAGAIN inside curl). libcurl
     * 7.88 keeps these bits per connection (conn->cselect_bits), not per transfer, and a
     * transfer uploads only in a pass whose bits say writable. On an HTTP/2 connection a
     * transfer that sent its request HEADERS during a "readable" event left its body for the
     * next loop turn; an upstream that answered in between, before it had the body, lost the
     * answer inside curl (top of this file), and the relay retried after its backoff: ~1% of
     * calls with 8 in flight on one connection waited 0-250 ms. Measured: 0 with this. */
    flags |= CURL_CSELECT_OUT;
    process(s->u, s->fd, flags);
}

static void
free_sock(uv_handle_t *h)
{
    free(h->data);
}

/*
 * An idle HTTP/1.1 connection in curl's cache turned readable: bytes nobody asked for (a
 * late answer to an earlier request) or the upstream closing it. curl would take such
 * bytes as the answer to the next request it sends there, which may be another client's.
 * The bytes are thrown away and the connection shut down, so curl finds it dead (or
 * failing before any answer, which it retries on a new connection) and never reads them.
 */
static void
idle_cb(uv_poll_t *h, int status, int events)
{
    struct sock_ctx *s = h->data;
    char scrap[4096];
    (void)status;
    (void)events;
    while (recv(s->fd, scrap, sizeof scrap, MSG_DONTWAIT) > 0)
        ;
    shutdown(s->fd, SHUT_RDWR);
    uv_poll_stop(&s->poll);
}

static int
socket_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    struct skiff_curlc *u = userp;
    struct sock_ctx *s = socketp ? socketp : sock_find(u, fd);
    if (what == CURL_POLL_REMOVE) {
        if (!s)
            return 0;
        curl_multi_assign(u->multi, fd, NULL);
        /* A paused transfer still owns its socket. Otherwise no transfer uses it now: if
         * it stays in curl's cache, watch it. HTTP/2 frames on an idle connection (PING,
         * SETTINGS) are no answer to anything. */
        struct curl_call *c = NULL;
        long version = 0;
        curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&c);
        curl_easy_getinfo(easy, CURLINFO_HTTP_VERSION, &version);
        if ((c && !c->done && !c->cancelled && (c->paused || c->pause_wanted)) ||
            version == CURL_HTTP_VERSION_2_0)
            uv_poll_stop(&s->poll);
        else
            uv_poll_start(&s->poll, UV_READABLE | UV_DISCONNECT, idle_cb);
        return 0;
    }
    if (!s) {
        if ((size_t)fd >= u->nsocks) {
            size_t n = u->nsocks ? u->nsocks : 64;
            while (n <= (size_t)fd)
                n *= 2;
            /* NOLINTNEXTLINE(bugprone-sizeof-expression): an array of pointers, sized as such. */
            struct sock_ctx **t = realloc(u->socks, n * sizeof *t);
            if (!t)
                return -1;
            /* NOLINTNEXTLINE(bugprone-sizeof-expression): as above. */
            memset(t + u->nsocks, 0, (n - u->nsocks) * sizeof *t);
            u->socks = t;
            u->nsocks = n;
        }
        s = calloc(1, sizeof *s);
        if (!s)
            return -1;
        s->fd = fd;
        s->u = u;
        if (uv_poll_init_socket(u->loop, &s->poll, fd) != 0) {
            free(s);
            return -1;
        }
        s->poll.data = s;
        u->socks[fd] = s;
    }
    curl_multi_assign(u->multi, fd, s);
    int events = 0;
    if (what & CURL_POLL_IN)
        events |= UV_READABLE;
    if (what & CURL_POLL_OUT)
        events |= UV_WRITABLE;
    uv_poll_start(&s->poll, events, poll_cb);
    return 0;
}

/* curl closes a socket: its poll handle goes first (libuv must not watch a descriptor
 * that may be reused at once). */
static int
closesocket_cb(void *clientp, curl_socket_t fd)
{
    struct skiff_curlc *u = clientp;
    struct sock_ctx *s = sock_find(u, fd);
    if (s) {
        u->socks[fd] = NULL;
        uv_poll_stop(&s->poll);
        uv_close((uv_handle_t *)&s->poll, free_sock);
    }
    return close(fd);
}

static void
timeout_cb(uv_timer_t *t)
{
    process(t->data, CURL_SOCKET_TIMEOUT, 0);
}

static int
timer_cb(CURLM *multi, long ms, void *userp)
{
    struct skiff_curlc *u = userp;
    if (ms < 0)
        uv_timer_stop(&u->timer);
    else
        uv_timer_start(&u->timer, timeout_cb, (uint64_t)ms, 0);
    return 0;
}

static void
global_init(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

struct skiff_curlc *
skiff_curlc_new(uv_loop_t *loop)
{
    static uv_once_t once = UV_ONCE_INIT;
    uv_once(&once, global_init);
    struct skiff_curlc *u = calloc(1, sizeof *u);
    if (!u)
        return NULL;
    u->loop = loop;
    u->multi = curl_multi_init();
    if (!u->multi) {
        free(u);
        return NULL;
    }
    uv_timer_init(loop, &u->timer);
    u->timer.data = u;
    curl_multi_setopt(u->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
    curl_multi_setopt(u->multi, CURLMOPT_SOCKETDATA, u);
    curl_multi_setopt(u->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
    curl_multi_setopt(u->multi, CURLMOPT_TIMERDATA, u);
    /* Keep an idle connection for every concurrent HTTP/1.1 call of a busy worker: with
     * 2,000 calls in flight and room for 1,024, half the calls paid for a new connection
     * (measured: +190 ms at p50 against an upstream that answers in 1 s). */
    curl_multi_setopt(u->multi, CURLMOPT_MAXCONNECTS, 8192L);
    return u;
}

static void
free_upstream(uv_handle_t *h)
{
    struct skiff_curlc *u = h->data;
    curl_multi_cleanup(u->multi); /* closes the cached connections through closesocket_cb */
    free(u->socks);
    free(u);
}

void
skiff_curlc_close(struct skiff_curlc *u)
{
    if (!u)
        return;
    u->closing = 1;
    while (u->calls)
        skiff_curlc_cancel(&u->calls->base);
    reap(u);
    while (u->nspare > 0)
        curl_easy_cleanup(u->spare[--u->nspare]);
    for (size_t fd = 0; fd < u->nsocks; fd++) {
        struct sock_ctx *s = u->socks[fd];
        if (s) {
            u->socks[fd] = NULL;
            uv_poll_stop(&s->poll);
            uv_close((uv_handle_t *)&s->poll, free_sock);
        }
    }
    uv_timer_stop(&u->timer);
    uv_close((uv_handle_t *)&u->timer, free_upstream);
}

struct skiff_upcall *
skiff_curlc_start(struct skiff_curlc *u, const struct skiff_upcall_opts *o)
{
    if (u->closing)
        return NULL;
    struct curl_call *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->easy = u->nspare > 0 ? u->spare[--u->nspare] : curl_easy_init();
    if (!c->easy) {
        free(c);
        return NULL;
    }
    c->u = u;
    c->base.kind = SKIFF_UPCALL_CURL;
    c->base.ops = o->ops;
    c->base.data = o->data;
    c->first_byte_ms = o->first_byte_timeout_ms;
    c->idle_ms = o->idle_timeout_ms;
    skiff_buf_init(&c->head, 64 * 1024);
    for (const char *const *h = o->headers; h && *h; h++)
        c->hdrs = curl_slist_append(c->hdrs, *h);
    /* No "Expect: 100-continue" round trip on large bodies. */
    c->hdrs = curl_slist_append(c->hdrs, "Expect:");

    CURL *e = c->easy;
    curl_easy_setopt(e, CURLOPT_URL, o->url);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, c->hdrs);
    curl_easy_setopt(e, CURLOPT_PRIVATE, c);
    curl_easy_setopt(e, CURLOPT_CLOSESOCKETFUNCTION, closesocket_cb);
    curl_easy_setopt(e, CURLOPT_CLOSESOCKETDATA, u);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, c->errbuf);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
    /* Over TLS (HTTP/2 to Google) a call waits for a connection being set up rather than
     * open another; over plain HTTP/1.1 waiting only delays it, since nothing multiplexes. */
    if (strncmp(o->url, "https://", 8) == 0)
        curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, header_cb);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, c);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, c);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                     o->connect_timeout_ms > 0 ? o->connect_timeout_ms : 10000L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    if (o->recv_buffer > 0)
        curl_easy_setopt(e, CURLOPT_BUFFERSIZE, o->recv_buffer);
    /* Only the configured proxy (upstreams.gemini.proxy): "" keeps curl from reading the
     * *_proxy environment variables on every call. */
    curl_easy_setopt(e, CURLOPT_PROXY, o->proxy ? o->proxy : "");
    if (o->ca_file && *o->ca_file) {
        curl_easy_setopt(e, CURLOPT_CAINFO, o->ca_file);
        curl_easy_setopt(e, CURLOPT_PROXY_CAINFO, o->ca_file);
    }
    if (o->proxy && *o->proxy)
        curl_easy_setopt(e, CURLOPT_SUPPRESS_CONNECT_HEADERS, 1L);
    if (strcmp(o->method, "POST") == 0) {
        curl_easy_setopt(e, CURLOPT_POST, 1L);
        c->body = o->body ? o->body : "";
        c->body_len = o->body ? o->body_len : 0;
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)c->body_len);
        curl_easy_setopt(e, CURLOPT_READFUNCTION, read_cb);
        curl_easy_setopt(e, CURLOPT_READDATA, c);
        curl_easy_setopt(e, CURLOPT_SEEKFUNCTION, seek_cb);
        curl_easy_setopt(e, CURLOPT_SEEKDATA, c);
    } else {
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    }

    uv_timer_init(u->loop, &c->timer);
    c->timer.data = c;
    c->next = u->calls;
    if (u->calls)
        u->calls->prev = c;
    u->calls = c;
    u->active++;
    if (curl_multi_add_handle(u->multi, e) != CURLM_OK) {
        unlink_call(c);
        u->active--;
        curl_easy_cleanup(e);
        curl_slist_free_all(c->hdrs);
        uv_close((uv_handle_t *)&c->timer, free_call);
        return NULL;
    }
    arm(c);
    return &c->base;
}

void
skiff_curlc_resume(struct skiff_upcall *call)
{
    struct curl_call *c = (struct curl_call *)call;
    if (!c || !c->paused || c->cancelled || c->done)
        return;
    c->paused = 0;
    arm(c);
    c->u->in_curl++;
    curl_easy_pause(c->easy, CURLPAUSE_CONT);
    c->u->in_curl--;
    apply_pauses(c->u);
    reap(c->u);
    check_done(c->u);
}
