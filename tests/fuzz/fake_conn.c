#include "fake_conn.h"

#include <stdlib.h>
#include <string.h>

#include "server/worker.h"

struct fake {
    struct skiff_conn conn; /* first: the conn pointer is the fake's */
    struct fake_conn_state st;
    /* the layer above's memory follows */
};

struct skiff_conn *fake_conn_last;

struct fake_conn_state *
fake_conn_state(struct skiff_conn *c)
{
    return &((struct fake *)c)->st;
}

struct skiff_conn *
skiff_conn_accept(struct skiff_worker *w, uv_stream_t *server, const struct skiff_conn_ops *ops,
                  size_t upper_size)
{
    (void)server;
    struct fake *f = calloc(1, sizeof *f + upper_size);
    if (!f)
        return NULL;
    f->conn.worker = w;
    f->conn.ops = ops;
    f->conn.upper = (char *)f + sizeof *f;
    f->conn.peer_loopback = 1;
    f->st.reading = 1;
    w->nconns++;
    fake_conn_last = &f->conn;
    return &f->conn;
}

static void
close_conn(struct skiff_conn *c, int reset)
{
    struct fake *f = (struct fake *)c;
    if (c->closing)
        return;
    c->closing = 1;
    c->worker->nconns--;
    f->st.closed = 1;
    f->st.reset = reset;
    f->st.timer_armed = 0;
    if (c->ops->on_close)
        c->ops->on_close(c, "fake close");
}

void
fake_conn_free(struct skiff_conn *c)
{
    if (!c)
        return;
    close_conn(c, 0);
    free(c);
}

int
skiff_conn_write(struct skiff_conn *c, const uv_buf_t *bufs, unsigned nbufs)
{
    struct fake *f = (struct fake *)c;
    if (c->closing)
        return UV_EPIPE;
    for (unsigned i = 0; i < nbufs; i++) {
        const unsigned char *p = (const unsigned char *)bufs[i].base;
        for (size_t j = 0; j < bufs[i].len; j++)
            f->st.sum = f->st.sum * 31 + p[j];
        f->st.written += bufs[i].len;
    }
    return 0;
}

void
skiff_conn_close_when_flushed(struct skiff_conn *c, const char *reason)
{
    (void)reason;
    close_conn(c, 0); /* every write was "taken" at once */
}

void
skiff_conn_linger(struct skiff_conn *c, uint64_t ms)
{
    (void)ms;
    fake_conn_state(c)->lingering = 1;
    close_conn(c, 0);
}

void
skiff_conn_close(struct skiff_conn *c, const char *reason)
{
    (void)reason;
    close_conn(c, 0);
}

void
skiff_conn_reset(struct skiff_conn *c, const char *reason)
{
    (void)reason;
    close_conn(c, 1);
}

void
skiff_conn_timer(struct skiff_conn *c, uint64_t ms)
{
    if (c->closing)
        return;
    fake_conn_state(c)->timer_armed = 1;
    fake_conn_state(c)->timer_ms = ms;
}

void
skiff_conn_timer_stop(struct skiff_conn *c)
{
    fake_conn_state(c)->timer_armed = 0;
}

void
skiff_conn_read_stop(struct skiff_conn *c)
{
    fake_conn_state(c)->reading = 0;
}

void
skiff_conn_read_start(struct skiff_conn *c)
{
    fake_conn_state(c)->reading = 1;
}

/* Every byte is "written" at once: nothing is ever left queued. */
size_t
skiff_conn_unwritten(const struct skiff_conn *c)
{
    (void)c;
    return 0;
}

void
skiff_conn_sweep(struct skiff_worker *w, uint64_t timeout_ms)
{
    (void)w, (void)timeout_ms;
}
