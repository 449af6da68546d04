/*
 * The request parser glue of src/server/http.c, driven from a buffer through a fake
 * connection (fake_conn.c): http-parser's callbacks, the header offsets, limits, pipelining,
 * refusals and the response writers.
 *
 * Input: byte 0 picks how the rest is cut into reads (1 to 64 bytes each, or all at once),
 * byte 1 picks, two bits per request, how the handler answers (at once, chunked, later, or
 * aborted); the rest is what the client sends. A request that asks for an upgrade is turned
 * into a tunnel (mode 0) that echoes, and pauses ('p', resumed by the loop) or closes ('c')
 * on the bytes that say so.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fake_conn.h"
#include "base/log.h"
#include "server/http.h"
#include "server/http_conn.h"
#include "server/worker.h"

struct ctx {
    struct skiff_request *deferred; /* answered before the next read */
    struct skiff_tunnel *paused;    /* resumed by the loop */
    unsigned modes;
    unsigned nreq;
};

static void
check_str(const char *s, size_t n)
{
    /* Every counted string the layer hands out is NUL-terminated at its length. */
    if (s[n] != '\0' || strlen(s) != n)
        abort();
}

static void
on_abort(struct skiff_request *r)
{
    struct ctx *x = r->server_data;
    if (x->deferred == r)
        x->deferred = NULL;
}

static void
t_read(struct skiff_tunnel *t, const char *data, size_t len)
{
    struct ctx *x = skiff_tunnel_data(t);
    skiff_tunnel_write(t, data, len);
    if (memchr(data, 'c', len)) {
        if (x->paused == t)
            x->paused = NULL;
        skiff_tunnel_close(t);
        return;
    }
    if (memchr(data, 'p', len)) {
        skiff_tunnel_pause(t);
        x->paused = t;
    }
}

static void
t_close(struct skiff_tunnel *t, const char *why)
{
    struct ctx *x = skiff_tunnel_data(t);
    if (x->paused == t)
        x->paused = NULL;
    skiff_tunnel_write(t, why, strlen(why)); /* dropped: the tunnel is closing */
}

static const struct skiff_tunnel_ops tunnel_ops = {.on_read = t_read, .on_close = t_close};

static void
answer(struct skiff_request *r, unsigned mode)
{
    size_t tn;
    if (mode == 0 && skiff_http_upgrade_token(r, &tn)) {
        skiff_http_add_header(r, "x-fuzz", "upgrade");
        if (skiff_http_upgrade(r, &tunnel_ops, r->server_data))
            return;
    }
    static const char body[] = "{\"ok\":true}";
    switch (mode) {
    case 0:
        if (r->nheaders > 0)
            skiff_http_add_headern(r, r->headers[0].name, r->headers[0].name_len,
                                   r->headers[0].value, r->headers[0].value_len);
        skiff_http_respond(r, 200, "application/json", r->path, r->path_len);
        break;
    case 1:
        skiff_http_add_header(r, "x-fuzz", "1");
        skiff_http_start(r, 200, "text/event-stream");
        skiff_http_write(r, r->body, r->body_len);
        skiff_http_write(r, body, sizeof body - 1);
        skiff_http_end(r);
        break;
    case 2:
        if (r->body_len & 1)
            skiff_http_abort(r, "fuzz");
        else
            skiff_http_reset(r);
        break;
    default:
        skiff_http_respond(r, 503, NULL, NULL, 0);
        break;
    }
}

static void
handler(struct skiff_request *r, void *data)
{
    struct ctx *x = data;
    check_str(r->path, r->path_len);
    check_str(r->query, r->query_len);
    if (r->body[r->body_len] != '\0')
        abort();
    if (r->nheaders < 0 || r->nheaders > SKIFF_MAX_HEADERS)
        abort();
    for (int i = 0; i < r->nheaders; i++) {
        check_str(r->headers[i].name, r->headers[i].name_len);
        check_str(r->headers[i].value, r->headers[i].value_len);
    }
    size_t n;
    const char *ct = skiff_http_header(r, "content-type", &n);
    if (ct)
        check_str(ct, n);
    char q[16];
    skiff_http_query(r, "alt", q, sizeof q);
    skiff_http_query(r, "key", q, 1);
    (void)skiff_http_pending(r);

    unsigned mode = (x->modes >> (2 * (x->nreq++ % 4))) & 3;
    if (mode == 3) {
        /* Answer later: the next read arrives while the handler still owns the request. */
        r->on_abort = on_abort;
        x->deferred = r;
        return;
    }
    answer(r, mode);
}

static struct skiff_server_opts opts = {
    .host = "127.0.0.1",
    .workers = 1,
    .max_body_bytes = 64 * 1024,
    .header_timeout_ms = 10000,
    .idle_timeout_ms = 10000,
    .max_connections = 16,
    .handler = handler,
    .name = "skiff",
};

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    skiff_log_set_level(SKIFF_LOG_ERROR + 1); /* silent */
    return 0;
}

/* Plays the loop: answers a deferred request, then runs timers set for "now". */
static void
settle(struct skiff_conn *c, struct ctx *x)
{
    struct fake_conn_state *st = fake_conn_state(c);
    for (int rounds = 0; rounds < 256 && !st->closed; rounds++) {
        if (x->paused) {
            struct skiff_tunnel *t = x->paused;
            x->paused = NULL;
            skiff_tunnel_resume(t);
            continue;
        }
        if (x->deferred) {
            struct skiff_request *r = x->deferred;
            x->deferred = NULL;
            r->on_abort = NULL;
            answer(r, x->nreq & 1);
            continue;
        }
        if (st->timer_armed && st->timer_ms == 0) {
            st->timer_armed = 0;
            c->ops->on_timer(c);
            continue;
        }
        break;
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    size_t step = data[0] % 65; /* 0: everything in one read */
    struct ctx x = {.modes = data[1]};
    data += 2;
    size -= 2;

    static atomic_size_t buffered; /* the server's count of body bytes held */
    struct skiff_worker w;
    memset(&w, 0, sizeof w);
    w.opts = &opts;
    w.buffered = &buffered;
    w.data = &x;
    w.max_conns = 16;
    w.srv_nonce = 0x123456;

    skiff_http_accept(&w, NULL);
    struct skiff_conn *c = fake_conn_last;
    if (!c)
        return 0;
    struct fake_conn_state *st = fake_conn_state(c);

    size_t off = 0;
    while (off < size && !st->closed) {
        settle(c, &x);
        if (st->closed || !st->reading)
            break;
        size_t n = step ? step : size;
        if (n > size - off)
            n = size - off;
        /* The worker's read buffer: a copy, so a read past the piece is caught. */
        char *piece = malloc(n);
        if (!piece)
            break;
        memcpy(piece, data + off, n);
        c->ops->on_read(c, piece, n);
        free(piece);
        off += n;
    }
    settle(c, &x);
    if (!st->closed && st->timer_armed) {
        /* The client sends nothing more: the header, body or idle timeout fires. */
        st->timer_armed = 0;
        c->ops->on_timer(c);
        settle(c, &x);
    }
    fake_conn_free(c);
    fake_conn_last = NULL;
    return 0;
}
