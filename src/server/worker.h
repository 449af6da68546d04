/*
 * One worker thread's state, shared by the server, its connections and the HTTP layer.
 * Internal to src/server/.
 */
#ifndef SKIFF_WORKER_H
#define SKIFF_WORKER_H

#include <stdatomic.h>
#include <stdint.h>

#include <uv.h>

#include "server/server.h"

struct skiff_conn;

struct skiff_worker {
    struct skiff_server *srv;
    const struct skiff_server_opts *opts;
    int index;
    uv_loop_t loop;
    uv_tcp_t listener;
    uv_async_t stop_async;
    uv_thread_t thread;
    int fd;                   /* the listening socket, bound by skiff_server_new */
    void *data;               /* from opts->worker_init */
    struct skiff_conn *conns; /* open connections */
    int nconns;
    int peak_conns;          /* the most open at once since the last trim */
    uv_timer_t trim_timer;   /* gives freed memory back to the system after a burst */
    uv_timer_t send_timer;   /* the send timeout's sweep (skiff_conn_sweep) */
    atomic_size_t *buffered; /* request body bytes buffered by every worker (the server's) */
    int max_conns;
    uint64_t next_request;   /* for generated request ids */
    char readbuf[64 * 1024]; /* every read of this worker lands here first */
    int stopping;
    uint32_t srv_nonce; /* random per process, so request ids differ across restarts */

    /* Draining (SIGTERM/SIGINT): the listener is closed, requests in flight may finish until
     * drain_end, new requests on open connections are answered with Connection: close. */
    int draining;
    int cut;                /* the requests left at drain_end were cut */
    int async_closed;       /* stop_async is closed: the signal thread must not send */
    int init_failed;        /* worker_init returned NULL: this worker never served */
    int inflight;           /* requests handed to the handler and not yet ended (http.c) */
    uint64_t drain_end;     /* uv_now of the end of the drain */
    uv_timer_t drain_timer; /* the drain's end, and the polls until the last bytes are out */
};

/*
 * Called by the HTTP layer when the last request in flight of a draining worker has ended,
 * from inside that request's call stack: the stop is scheduled, never done under it.
 */
void skiff_worker_drained(struct skiff_worker *w);

#endif
