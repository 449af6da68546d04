/*
 * The server: worker threads, each with its own libuv loop and its own SO_REUSEPORT
 * listener, accepting connections and handing parsed requests to one handler. Shared by
 * `skiff serve` and `skiff sim`.
 */
#ifndef SKIFF_SERVER_H
#define SKIFF_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "server/http.h"

struct skiff_server;

/* Called once per worker on its own thread before it accepts; returns the worker's data. */
typedef void *skiff_worker_init_cb(uv_loop_t *loop, int worker_index, void *data);
/* Called once per worker on its own thread after its loop has drained. */
typedef void skiff_worker_fini_cb(void *worker_data);

/* The handler: called on the worker's loop for each complete request. */
typedef void skiff_handler_cb(struct skiff_request *req, void *worker_data);

/*
 * Optional: called on the worker's loop as soon as a request's head is complete, before any
 * of its body is read (so a request without credentials costs nothing). It may answer req
 * at once (skiff_http_respond, with status and headers as the handler would): the body is
 * then never read, and the connection is closed after the answer when a body was coming.
 * Otherwise it must leave req untouched; the handler is called once the body is in.
 */
typedef void skiff_head_cb(struct skiff_request *req, void *worker_data);

/*
 * Answers a request the HTTP layer refused itself (malformed, too large, too slow) in the
 * dialect of the server's users; it must end req (skiff_http_respond). Optional: without it
 * the body is a plain Google-format error.
 */
typedef void skiff_error_cb(struct skiff_request *req, int status, const char *message);

/*
 * Ends a request still in flight when the drain time is over (shutdown.drain_timeout_ms),
 * visibly: an error answer, or a stream cut so that the client sees a failure rather than a
 * clean end. It must end req (skiff_http_respond or skiff_http_abort). Optional: without
 * it the connection is closed and the handler hears of it through req->on_abort.
 */
typedef void skiff_cut_cb(struct skiff_request *req, void *worker_data);

struct skiff_server_opts {
    const char *host;
    uint16_t port; /* 0: any free port; skiff_server_port tells which */
    int workers;
    size_t max_body_bytes;
    uint64_t max_upload_bytes; /* a streamed body (http.h skiff_http_stream_body); 0: no cap */
    int header_timeout_ms;
    int idle_timeout_ms;
    int body_timeout_ms;       /* the whole body, from the end of the head; 0: none */
    int send_timeout_ms;       /* no byte taken by a client with bytes queued; 0: none */
    size_t max_buffered_bytes; /* request bodies buffered at once, all workers; 0: no cap */
    int max_connections;       /* for the whole server, split evenly over the workers */
    skiff_head_cb *on_head;    /* optional */
    skiff_handler_cb *handler;
    skiff_error_cb *error;
    skiff_cut_cb *cut;    /* optional */
    int drain_timeout_ms; /* SIGTERM/SIGINT: how long requests in flight may finish; 0 stops
                           * at once, cutting them */
    skiff_worker_init_cb *worker_init; /* optional */
    skiff_worker_fini_cb *worker_fini; /* optional */
    void *data;                        /* passed to worker_init */
    const char *name; /* the Server-Timing metric name: "skiff" for serve, "sim" for sim */
};

/*
 * Binds the listeners (so a taken port fails here, before any thread starts).
 * Returns NULL with a message in err on failure.
 */
struct skiff_server *skiff_server_new(const struct skiff_server_opts *opts, char *err,
                                      size_t errlen);

/* The port actually bound. */
uint16_t skiff_server_port(const struct skiff_server *srv);

/*
 * Blocks SIGINT, SIGTERM, SIGHUP and SIGUSR1 in the calling thread and so in every thread
 * created after it; call it first thing in main, before any library starts a thread, so
 * that only the server's signal thread ever receives them (and a command without a server
 * is not killed by SIGHUP either).
 */
void skiff_server_block_signals(void);

/*
 * Runs the workers until they have stopped. Signals, taken by one thread:
 *   SIGTERM, SIGINT  the first drains (skiff_server_drain), a second stops at once;
 *   SIGHUP           is logged as ignored: nothing is reloaded (restart to apply changes).
 * Blocks; returns 0 after every worker has stopped and closed its connections, 1 when a
 * worker could not start (its worker_init returned NULL).
 */
int skiff_server_run(struct skiff_server *srv);

/*
 * Asks every worker to drain: stop accepting, let the requests in flight end for up to
 * drain_timeout_ms (answering further requests on open connections with Connection:
 * close), then cut what is left through opts.cut and stop. Safe from any thread.
 */
void skiff_server_drain(struct skiff_server *srv);

/* Asks every worker to stop at once, closing every connection; safe from any thread. */
void skiff_server_stop(struct skiff_server *srv);

void skiff_server_free(struct skiff_server *srv);

#endif
