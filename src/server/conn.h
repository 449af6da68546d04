/*
 * A client connection: bytes in, bytes out, one timer, and one way to end it. Knows bytes,
 * not HTTP: the HTTP layer above it plugs in through struct skiff_conn_ops.
 *
 * Reads land in the worker's shared read buffer and are handed up at once (on_read), so an
 * idle connection holds no read memory. Writes try the socket first (uv_try_write) and copy
 * only what it does not take. Every connection ends through skiff_conn_close(conn, reason);
 * its memory is freed in the close callbacks, never while a callback of its own is running.
 */
#ifndef SKIFF_CONN_H
#define SKIFF_CONN_H

#include <stddef.h>

#include <uv.h>

struct skiff_conn;
struct skiff_worker;

struct skiff_conn_ops {
    /* Bytes from the client; valid only during the call. */
    void (*on_read)(struct skiff_conn *c, const char *data, size_t len);
    /* The write queue fell below SKIFF_CONN_LOW_WATER after being above it. */
    void (*on_drain)(struct skiff_conn *c);
    /* The timer set with skiff_conn_timer fired. */
    void (*on_timer)(struct skiff_conn *c);
    /* Every queued byte has been written (called before a pending close or linger acts). */
    void (*on_flushed)(struct skiff_conn *c);
    /* The connection is closing (client gone, error, or skiff_conn_close): release state.
     * skiff_conn_unwritten still tells what was not written. */
    void (*on_close)(struct skiff_conn *c, const char *reason);
};

#define SKIFF_CONN_LOW_WATER (64 * 1024)

struct skiff_conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    struct skiff_worker *worker;
    const struct skiff_conn_ops *ops;
    void *upper;                    /* the HTTP layer's state */
    struct skiff_conn *prev, *next; /* the worker's list of open connections */
    size_t queued;                  /* bytes handed to uv_write and not yet written */
    int closing;
    int close_when_flushed;
    const char *write_error; /* a write failed: the connection closes on the next loop turn */
    int lingering;           /* 1: waiting to flush, 2: half-closed and draining */
    uint64_t linger_ms;
    int above_low_water;
    int peer_loopback;
    int handles_open; /* close callbacks still to come before the memory can go */
    /* Send timeout: bytes ever queued (past uv_try_write), how many of them had been
     * written at the last sweep that saw progress, and when that was (loop ms). */
    uint64_t queued_total;
    uint64_t written_mark;
    uint64_t stall_since_ms;
};

/*
 * Accepts a pending connection on server. upper_size bytes of zeroed memory for the layer
 * above come with it (c->upper) and live exactly as long as the connection's memory, so the
 * layer above may still touch them in the call stack that closed the connection.
 * Returns NULL on failure.
 */
struct skiff_conn *skiff_conn_accept(struct skiff_worker *w, uv_stream_t *server,
                                     const struct skiff_conn_ops *ops, size_t upper_size);

/*
 * Writes bufs in order. What the socket does not take at once is copied and queued.
 * Returns 0 or a negative libuv error. A failed write closes the connection from the loop,
 * never under the caller (who may be in the middle of ending a response); until then
 * further writes fail and timers, lingering and flushing wait for that close.
 */
int skiff_conn_write(struct skiff_conn *c, const uv_buf_t *bufs, unsigned nbufs);

/* Closes once every queued byte has been written. */
void skiff_conn_close_when_flushed(struct skiff_conn *c, const char *reason);

/*
 * Closes gracefully while the client may still be sending (a refused body): once the queue
 * is written, half-closes our side and reads and drops what the client sends for up to ms,
 * so that the client reads our answer instead of a connection reset. (nginx's lingering
 * close.)
 */
void skiff_conn_linger(struct skiff_conn *c, uint64_t ms);

/* Closes now; queued bytes are dropped. Safe to call more than once. */
void skiff_conn_close(struct skiff_conn *c, const char *reason);

/* Closes now with a TCP reset. */
void skiff_conn_reset(struct skiff_conn *c, const char *reason);

/* (Re)arms the connection's one timer; 0 ms means "on the next loop turn". */
void skiff_conn_timer(struct skiff_conn *c, uint64_t ms);
void skiff_conn_timer_stop(struct skiff_conn *c);

/* Bytes handed to skiff_conn_write that the socket has not taken yet. */
size_t skiff_conn_unwritten(const struct skiff_conn *c);

/*
 * The send timeout, run by the worker every so often: closes each connection that has had
 * bytes queued and none of them taken by the client for timeout_ms ("send timeout").
 */
void skiff_conn_sweep(struct skiff_worker *w, uint64_t timeout_ms);

/* Stops and restarts reading (backpressure against a pipelining client). */
void skiff_conn_read_stop(struct skiff_conn *c);
void skiff_conn_read_start(struct skiff_conn *c);

#endif
