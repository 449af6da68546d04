#include "server/conn.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "server/worker.h"

struct write_req {
    uv_write_t req;
    struct skiff_conn *conn;
    size_t len;
    char data[]; /* the copied bytes */
};

static void timer_cb(uv_timer_t *t);

static void
free_when_closed(uv_handle_t *h)
{
    struct skiff_conn *c = h->data;
    if (--c->handles_open == 0)
        free(c);
}

static void
unlink_conn(struct skiff_conn *c)
{
    struct skiff_worker *w = c->worker;
    if (c->prev)
        c->prev->next = c->next;
    else
        w->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
    w->nconns--;
}

/* The one place a connection ends: tell the layer above, then close both handles. */
static void
close_conn(struct skiff_conn *c, const char *reason, int reset)
{
    if (c->closing)
        return;
    c->closing = 1;
    unlink_conn(c);
    if (c->ops->on_close)
        c->ops->on_close(c, reason);
    if (skiff_log_enabled(SKIFF_LOG_DEBUG)) {
        struct skiff_log l;
        skiff_log_begin(&l, SKIFF_LOG_DEBUG, "conn_close");
        skiff_log_str(&l, "reason", reason);
        skiff_log_end(&l);
    }
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->timer, free_when_closed);
    if (reset && uv_tcp_close_reset(&c->tcp, free_when_closed) == 0)
        return;
    uv_close((uv_handle_t *)&c->tcp, free_when_closed);
}

void
skiff_conn_close(struct skiff_conn *c, const char *reason)
{
    close_conn(c, reason, 0);
}

void
skiff_conn_reset(struct skiff_conn *c, const char *reason)
{
    close_conn(c, reason, 1);
}

static void
shutdown_cb(uv_shutdown_t *req, int status)
{
    free(req);
}

/* The answer is written: half-close and drain for a while. */
static void
start_draining(struct skiff_conn *c)
{
    c->lingering = 2;
    uv_shutdown_t *req = malloc(sizeof *req);
    if (!req || uv_shutdown(req, (uv_stream_t *)&c->tcp, shutdown_cb) != 0) {
        free(req);
        skiff_conn_close(c, "lingering close failed");
        return;
    }
    uv_timer_start(&c->timer, timer_cb, c->linger_ms, 0);
}

void
skiff_conn_linger(struct skiff_conn *c, uint64_t ms)
{
    if (c->closing || c->write_error)
        return;
    c->lingering = 1;
    c->linger_ms = ms;
    if (c->queued == 0)
        start_draining(c);
}

void
skiff_conn_close_when_flushed(struct skiff_conn *c, const char *reason)
{
    if (c->write_error)
        return;
    if (c->queued == 0) {
        skiff_conn_close(c, reason);
        return;
    }
    c->close_when_flushed = 1;
    uv_read_stop((uv_stream_t *)&c->tcp);
}

static void
alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct skiff_conn *c = h->data;
    buf->base = c->worker->readbuf;
    buf->len = sizeof c->worker->readbuf;
}

static void
read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct skiff_conn *c = s->data;
    if (n > 0 && c->lingering)
        return; /* the rest of a refused request: dropped */
    if (n > 0) {
        c->ops->on_read(c, buf->base, (size_t)n);
        return;
    }
    if (n == UV_EOF)
        skiff_conn_close(c, "client closed");
    else if (n < 0)
        skiff_conn_close(c, uv_strerror((int)n));
}

static void
timer_cb(uv_timer_t *t)
{
    struct skiff_conn *c = t->data;
    if (c->write_error)
        skiff_conn_close(c, c->write_error);
    else if (c->lingering == 2)
        skiff_conn_close(c, "lingering close done");
    else if (!c->closing && c->ops->on_timer)
        c->ops->on_timer(c);
}

struct skiff_conn *
skiff_conn_accept(struct skiff_worker *w, uv_stream_t *server, const struct skiff_conn_ops *ops,
                  size_t upper_size)
{
    /* Round the connection up so the layer above's memory is suitably aligned. */
    size_t base = (sizeof(struct skiff_conn) + 15) & ~(size_t)15;
    struct skiff_conn *c = calloc(1, base + upper_size);
    if (!c)
        return NULL;
    c->upper = (char *)c + base;
    c->worker = w;
    c->ops = ops;
    uv_tcp_init(&w->loop, &c->tcp);
    uv_timer_init(&w->loop, &c->timer);
    c->tcp.data = c;
    c->timer.data = c;
    c->handles_open = 2;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
        uv_close((uv_handle_t *)&c->tcp, free_when_closed);
        uv_close((uv_handle_t *)&c->timer, free_when_closed);
        return NULL;
    }
    uv_tcp_nodelay(&c->tcp, 1);

    struct sockaddr_storage ss;
    int len = sizeof ss;
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) == 0) {
        if (ss.ss_family == AF_INET) {
            const struct sockaddr_in *in = (const struct sockaddr_in *)&ss;
            c->peer_loopback = (ntohl(in->sin_addr.s_addr) >> 24) == 127;
        } else if (ss.ss_family == AF_INET6) {
            const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&ss;
            c->peer_loopback =
                IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr) ||
                (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr) && in6->sin6_addr.s6_addr[12] == 127);
        }
    }

    c->next = w->conns;
    if (w->conns)
        w->conns->prev = c;
    w->conns = c;
    if (++w->nconns > w->peak_conns)
        w->peak_conns = w->nconns;
    uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb);
    return c;
}

static void
write_cb(uv_write_t *req, int status)
{
    struct write_req *wr = (struct write_req *)req;
    struct skiff_conn *c = wr->conn;
    c->queued -= wr->len;
    free(wr);
    if (c->closing)
        return;
    if (status < 0) {
        skiff_conn_close(c, uv_strerror(status));
        return;
    }
    if (c->queued == 0 && c->ops->on_flushed) {
        c->ops->on_flushed(c);
        if (c->closing)
            return;
    }
    if (c->queued == 0 && c->close_when_flushed) {
        skiff_conn_close(c, "response sent");
        return;
    }
    if (c->queued == 0 && c->lingering == 1) {
        start_draining(c);
        return;
    }
    if (c->above_low_water && c->queued < SKIFF_CONN_LOW_WATER) {
        c->above_low_water = 0;
        if (c->ops->on_drain)
            c->ops->on_drain(c);
    }
}

/* The peer is gone. Closing now would run on_close under the caller (a handler ending its
 * response would hear of an abort of the request it is ending), so close from the loop. */
static int
write_failed(struct skiff_conn *c, int rc)
{
    c->write_error = uv_strerror(rc);
    uv_read_stop((uv_stream_t *)&c->tcp);
    uv_timer_start(&c->timer, timer_cb, 0, 0);
    return rc;
}

int
skiff_conn_write(struct skiff_conn *c, const uv_buf_t *bufs, unsigned nbufs)
{
    if (c->closing)
        return UV_ECANCELED;
    if (c->write_error)
        return UV_EPIPE;
    size_t total = 0;
    for (unsigned i = 0; i < nbufs; i++)
        total += bufs[i].len;
    if (total == 0)
        return 0;

    /* Fast path: the socket takes it all and nothing is copied. uv_try_write refuses
     * (UV_EAGAIN) while earlier writes are queued, so order is kept. */
    size_t done = 0;
    int rc = uv_try_write((uv_stream_t *)&c->tcp, bufs, nbufs);
    if (rc > 0)
        done = (size_t)rc;
    else if (rc < 0 && rc != UV_EAGAIN)
        return write_failed(c, rc);
    if (done == total)
        return 0;

    size_t rest = total - done;
    struct write_req *wr = malloc(sizeof *wr + rest);
    if (!wr)
        return write_failed(c, UV_ENOMEM); /* closed from the loop, as any failed write */
    size_t off = 0, skip = done;
    for (unsigned i = 0; i < nbufs; i++) {
        size_t len = bufs[i].len;
        const char *p = bufs[i].base;
        if (skip >= len) {
            skip -= len;
            continue;
        }
        memcpy(wr->data + off, p + skip, len - skip);
        off += len - skip;
        skip = 0;
    }
    wr->conn = c;
    wr->len = rest;
    uv_buf_t b = uv_buf_init(wr->data, (unsigned)rest);
    rc = uv_write(&wr->req, (uv_stream_t *)&c->tcp, &b, 1, write_cb);
    if (rc < 0) {
        free(wr);
        return write_failed(c, rc);
    }
    if (c->queued == 0) {
        c->stall_since_ms = uv_now(c->tcp.loop);
        c->written_mark = c->queued_total;
    }
    c->queued += rest;
    c->queued_total += rest;
    if (c->queued >= SKIFF_CONN_LOW_WATER)
        c->above_low_water = 1;
    return 0;
}

void
skiff_conn_timer(struct skiff_conn *c, uint64_t ms)
{
    if (!c->closing && !c->lingering && !c->write_error)
        uv_timer_start(&c->timer, timer_cb, ms, 0);
}

void
skiff_conn_timer_stop(struct skiff_conn *c)
{
    if (!c->write_error) /* the timer carries the pending close */
        uv_timer_stop(&c->timer);
}

size_t
skiff_conn_unwritten(const struct skiff_conn *c)
{
    return c->queued ? c->tcp.write_queue_size : 0;
}

void
skiff_conn_sweep(struct skiff_worker *w, uint64_t timeout_ms)
{
    uint64_t now = uv_now(&w->loop);
    struct skiff_conn *c = w->conns, *next;
    for (; c; c = next) {
        next = c->next; /* closing unlinks c */
        if (c->queued == 0 || c->closing || c->write_error)
            continue;
        uint64_t written = c->queued_total - c->tcp.write_queue_size;
        if (written > c->written_mark) {
            c->written_mark = written;
            c->stall_since_ms = now;
        } else if (now - c->stall_since_ms >= timeout_ms) {
            skiff_conn_close(c, "send timeout: the client took no byte for "
                                "limits.send_timeout_ms");
        }
    }
}

void
skiff_conn_read_stop(struct skiff_conn *c)
{
    if (!c->closing)
        uv_read_stop((uv_stream_t *)&c->tcp);
}

void
skiff_conn_read_start(struct skiff_conn *c)
{
    if (!c->closing && !c->close_when_flushed && !c->write_error)
        uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb);
}
