/*
 * HTTP/1.1 on top of a connection: http-parser glue, limits, and the response writers
 * (whole body, chunked stream, abort). Knows HTTP, not Gemini.
 *
 * Life of a request: the server parses the head and checks it (RFC 9112 framing, header
 * names, Host, version); the server's on_head hook (server.h) may answer it then, before a
 * byte of the body is read. Otherwise the whole body is read (bounded by
 * limits.max_body_bytes, body_timeout_ms and the process-wide max_buffered_bytes), then the
 * handler is called, unless on_head chose to stream it (skiff_http_stream_body below). id, start_ns
 * and keep_alive are set when the head is complete. The handler owns the request until it ends the
 * response with skiff_http_respond, skiff_http_end or skiff_http_abort; it may do so at once or
 * later from the loop (timers, upstream callbacks). If the client goes away first, the server calls
 * req->on_abort (when set) and after that the handler must not touch req again; on_abort must
 * release the handler's state synchronously.
 *
 * Keep-alive and pipelining: the next request on a connection is not parsed until the
 * current response has ended.
 */
#ifndef SKIFF_HTTP_H
#define SKIFF_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

#define SKIFF_MAX_HEADERS 64

struct skiff_conn;
struct skiff_request;

struct skiff_header {
    const char *name; /* NUL-terminated; borrowed from the request */
    const char *value;
    uint32_t name_len; /* a request head is at most 64 KiB */
    uint32_t value_len;
};

typedef void skiff_request_cb(struct skiff_request *req);

/* A piece of a streamed request body (valid during the call only), consumed whatever the
 * return: 0 to go on, 1 to hold the next pieces until skiff_http_body_resume. */
typedef int skiff_body_cb(struct skiff_request *req, const char *data, size_t len);

struct skiff_request {
    struct skiff_conn *conn; /* borrowed; opaque to handlers */
    void *server_data;       /* the handler's per-server context (skiff_server_opts.data) */

    const char *method; /* "GET", "POST", ... */
    const char *path;   /* decoded no further than the wire: "/v1beta/models/x:generateContent" */
    size_t path_len;
    const char *query; /* after '?', without it; "" when absent */
    size_t query_len;
    struct skiff_header headers[SKIFF_MAX_HEADERS];
    int nheaders;
    const char *body; /* NUL-terminated for convenience; body_len excludes the NUL */
    size_t body_len;

    char id[40];       /* x-request-id: from the client when sane, else generated */
    uint64_t start_ns; /* when the request's head completed (uv_hrtime) */
    int keep_alive;    /* the client allows another request on this connection */

    /* Set by the handler. */
    void *data;                 /* the handler's state for this request */
    skiff_request_cb *on_abort; /* the client went away before the response ended */
    skiff_request_cb *on_drain; /* queued output fell below the low-water mark */
    /* A streamed body (skiff_http_stream_body): its pieces, then its end. */
    skiff_body_cb *on_body;
    skiff_request_cb *on_body_end;

    int body_streamed;     /* the body comes in pieces to on_body; body_len stays 0 */
    int64_t body_expected; /* a streamed body's Content-Length, or -1 (chunked) */

    /* Owned by the HTTP layer. */
    struct skiff_buf head; /* raw url and header bytes */
    struct skiff_buf bodybuf;
    struct skiff_buf out_hdrs; /* extra response headers added by the handler */
    int status;                /* response status once started, else 0 */
    int chunked;               /* the response body is being sent chunked */
    int ended;
    uint64_t bytes_out; /* response bytes the connection accepted (head, body, framing) */
};

/*
 * Streamed bodies. From the server's on_head hook, a handler may take the request's body as
 * a stream instead of whole: the handler is then called as soon as the head is judged, with
 * body_len 0, and the body is bounded by max_upload_bytes (a 413 naming the limit), not by
 * max_body_bytes, and by the idle timeout between pieces, not body_timeout_ms. Until the
 * handler calls skiff_http_body_resume the pieces wait (at most SKIFF_HTTP_STREAM_HOLD bytes,
 * then reading from the client stops); after it they go to req->on_body as they are read,
 * and req->on_body_end follows the last. on_body returning 1 holds the next pieces again
 * until the next resume (backpressure: the client is not read while they wait). Neither is
 * called once the response has ended; a response that ends before the body closes the
 * connection after it (the rest of the body is not read). A body that breaks off (the
 * client goes away, stalls, or sends too much) ends with req->on_abort: the handler lets go
 * of req at once, and the server answers the client itself when nothing was sent yet.
 * Returns 0, or SKIFF_EINVAL outside on_head or for a request without a body.
 */
#define SKIFF_HTTP_STREAM_HOLD (256 * 1024)
int skiff_http_stream_body(struct skiff_request *req);

/* Delivers what waited of a streamed body (and its end, when it is in) and reads on. */
void skiff_http_body_resume(struct skiff_request *req);

/* The value of a request header (case-insensitive name) or NULL; *len gets its length. */
const char *skiff_http_header(const struct skiff_request *req, const char *name, size_t *len);

/*
 * The value of a query parameter, not percent-decoded, copied into out (NUL-terminated,
 * truncated to outlen-1). Returns its length, or -1 when absent.
 */
int skiff_http_query(const struct skiff_request *req, const char *name, char *out, size_t outlen);

/*
 * Adds a response header, sent when the response starts. name and value must not contain
 * CR or LF (values that do are dropped). Returns 0 or SKIFF_ETOOBIG.
 */
int skiff_http_add_header(struct skiff_request *req, const char *name, const char *value);

/* The same with counted strings (a header passed on from the upstream's block). */
int skiff_http_add_headern(struct skiff_request *req, const char *name, size_t name_len,
                           const char *value, size_t value_len);

/*
 * Sends a whole response with Content-Length. content_type may be NULL for no body type.
 * Ends the request.
 */
void skiff_http_respond(struct skiff_request *req, int status, const char *content_type,
                        const char *body, size_t len);

/* Starts a chunked response; body bytes follow with skiff_http_write. */
void skiff_http_start(struct skiff_request *req, int status, const char *content_type);

/*
 * Queues body bytes (copied unless the socket takes them at once). Returns the bytes still
 * queued after this write, so a producer can pause above a threshold and resume on_drain.
 */
size_t skiff_http_write(struct skiff_request *req, const void *data, size_t len);

/* Ends a chunked response cleanly (the terminating zero chunk). Ends the request. */
void skiff_http_end(struct skiff_request *req);

/*
 * Ends the response as a failure the client can see: the connection is closed without a
 * clean end of the body. Ends the request; reason goes to the log.
 */
void skiff_http_abort(struct skiff_request *req, const char *reason);

/*
 * Ends the response by resetting the connection (TCP RST): a broken upstream, as the
 * simulator's "reset" fault shows it. Ends the request.
 */
void skiff_http_reset(struct skiff_request *req);

/* Whether the client connected from a loopback address. */
int skiff_http_peer_is_loopback(const struct skiff_request *req);

/* The loop the request lives on (for timers the handler starts). */
struct uv_loop_s *skiff_http_loop(const struct skiff_request *req);

/* Bytes accepted by skiff_http_write that the socket has not yet taken. */
size_t skiff_http_pending(const struct skiff_request *req);

/* Microseconds since the request's headers completed. */
uint64_t skiff_http_elapsed_us(const struct skiff_request *req);

/* The standard reason phrase for a status ("Too Many Requests"). */
const char *skiff_http_reason(int status);

/* ---- protocol upgrades (tunnel.c) -----------------------------------------------------
 *
 * A request that asks to switch protocols (Upgrade with Connection: upgrade, no body) reaches
 * on_head and the handler like any other. The handler either answers it normally (the
 * connection then closes after the answer: the bytes after such a head are never parsed as
 * HTTP) or calls skiff_http_upgrade, which answers 101 and turns the connection into a
 * tunnel: raw bytes both ways, no timeouts but the send timeout (a client that takes no byte
 * for limits.send_timeout_ms while output is queued), counted as a connection and as a
 * request in flight (a drain lets it run until the drain time is over, then calls on_shutdown
 * or closes it; a stop closes it at once; a close calls on_close).
 */

/* The protocol a request asks to upgrade to ("websocket"), from Upgrade with
 * Connection: upgrade; NULL when none. Points into the request head; *len gets its length
 * (the first token of the Upgrade list, without a version or whitespace after it). */
const char *skiff_http_upgrade_token(const struct skiff_request *req, size_t *len);

struct skiff_tunnel; /* a connection after 101 Switching Protocols: raw bytes both ways */

/* Called on the connection's loop, never from inside the tunnel call that caused them. */
struct skiff_tunnel_ops {
    /* Bytes from the client; valid only during the call. */
    void (*on_read)(struct skiff_tunnel *t, const char *data, size_t len);
    /* Queued output fell below the low-water mark (64 KiB) after being above it. Optional. */
    void (*on_drain)(struct skiff_tunnel *t);
    /* The client went away, a read or write failed, or the server stops: t is freed after it
     * returns (writes from inside it are dropped). why is a static sentence for the log. */
    void (*on_close)(struct skiff_tunnel *t, const char *why);
    /* Optional: a drain's time is over. The handler may say goodbye in its protocol (a
     * WebSocket close frame) and must then call skiff_tunnel_close; the server waits up to a
     * second for that. Without it the connection is closed at once (on_close). */
    void (*on_shutdown)(struct skiff_tunnel *t);
};

/*
 * Sends "101 Switching Protocols" with the headers added by skiff_http_add_header (adding
 * Connection: upgrade and Upgrade: <the request's token> unless the handler added them),
 * ends the request and turns the connection into a tunnel whose callbacks get data. Bytes
 * the client sent after the head are delivered by on_read first, from the loop (never from
 * inside this call). After it returns req must not be touched again. Returns NULL, with req
 * untouched and still the handler's to answer, when req asks for no upgrade, has already
 * started its response, or memory runs out.
 */
struct skiff_tunnel *skiff_http_upgrade(struct skiff_request *req,
                                        const struct skiff_tunnel_ops *ops, void *data);

/* The data given to skiff_http_upgrade. */
void *skiff_tunnel_data(const struct skiff_tunnel *t);

/* Queues bytes for the client (copied unless the socket takes them at once). Returns the bytes
 * still queued, so a producer can pause above a threshold and go on in on_drain; 0 and nothing
 * sent once the tunnel is closing. */
size_t skiff_tunnel_write(struct skiff_tunnel *t, const void *data, size_t len);

/* Stops reading from the client: no on_read after it returns until skiff_tunnel_resume
 * (bytes the kernel holds meanwhile push back on the client through TCP). */
void skiff_tunnel_pause(struct skiff_tunnel *t);
void skiff_tunnel_resume(struct skiff_tunnel *t);

/* Flushes what is queued, then closes the connection: half-closed, what the client still
 * sends read and dropped until it closes or for a second, so that no reset loses the last
 * bytes on their way. No callback runs afterwards and t must not be touched again. */
void skiff_tunnel_close(struct skiff_tunnel *t);

#endif
