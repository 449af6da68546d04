/*
 * The upstream HTTP client, one per worker, on the worker's libuv loop. Knows HTTP calls,
 * not client connections and not Gemini. skiff's own HTTP/1.1 client sits behind it
 * (relay/upcall.h), plain or over TLS (OpenSSL), for upstreams reached directly (Google over
 * https://, skiff sim) or through a proxy's tunnel (http://, https://, socks5://, socks5h://).
 * It keeps idle connections for reuse.
 *
 * A call reports through its ops: on_status once the response headers are complete, on_body
 * for each piece of body, on_done exactly once at the end (unless cancelled). Callbacks run
 * on the loop. skiff_upcall_cancel may be called at any time, including from inside a
 * callback; after it no callback is made and the call's memory is freed by the client.
 */
#ifndef SKIFF_UPSTREAM_H
#define SKIFF_UPSTREAM_H

#include <stddef.h>

#include <sys/socket.h>
#include <uv.h>

struct skiff_upstream;
struct skiff_upcall;

struct skiff_upcall_ops {
    /* The final response headers: status and the header block ("name: value\r\n" lines;
     * hop-by-hop headers, and those the upstream's Connection header names, removed).
     * Return 0 to go on, -1 to stop the call: it ends and on_done follows with an error
     * (unless the callback cancelled the call itself). */
    int (*on_status)(struct skiff_upcall *call, int status, const char *headers, size_t len);
    /* Body bytes, consumed whatever the return: 0 to go on, 1 to hold the next pieces
     * until skiff_upcall_resume, -1 to stop the call as on_status's -1 does. */
    int (*on_body)(struct skiff_upcall *call, const char *data, size_t len);
    /* The call ended: error is NULL on success, else a one-line cause that never contains
     * a key ("Couldn't connect to server", "timed out waiting for the first byte"). */
    void (*on_done)(struct skiff_upcall *call, const char *error);
};

#define SKIFF_UPCALL_HIGH_WATER (1024 * 1024)
#define SKIFF_UPCALL_LOW_WATER (256 * 1024)
#define SKIFF_UPCALL_UNKNOWN_LEN ((size_t)-1)

struct skiff_upcall_opts {
    const char *method; /* "GET" or "POST" */
    const char *url;
    const char *const *headers; /* "name: value" strings, NULL-terminated; copied */
    const char *body;           /* borrowed: must outlive the call */
    size_t body_len;
    /* A streamed body (an upload): body is ignored, the bytes come through
     * skiff_upcall_write and end with skiff_upcall_end_body. body_len is their length
     * (Content-Length), or SKIFF_UPCALL_UNKNOWN_LEN: chunked on HTTP/1.1, DATA frames to
     * END_STREAM on HTTP/2. The first-byte timeout runs from the end of the body; while it
     * goes, idle_timeout_ms bounds a write the upstream does not take. */
    int stream_body;
    /* A streamed body's call takes bytes: once its request head has gone (a stream opened,
     * on HTTP/2), and then each time what waits to go falls below SKIFF_UPCALL_LOW_WATER
     * after a write left SKIFF_UPCALL_HIGH_WATER or more queued. Never called from inside
     * skiff_upcall_start or skiff_upcall_write. May be NULL. */
    void (*on_drain)(struct skiff_upcall *call);
    const char *proxy;   /* NULL: none */
    const char *ca_file; /* https://: certificates trusted beside the system store;
                          * NULL: the system store only */
    long connect_timeout_ms;
    long first_byte_timeout_ms; /* 0: none */
    long idle_timeout_ms;       /* between body pieces; 0: none */
    const struct skiff_upcall_ops *ops;
    void *data;
    /* Called with each address the call is about to connect to, once it is resolved:
     * nonzero allows it, 0 refuses it (the next address is tried; with none left the call
     * ends with an error). NULL: every address is allowed. A call with a check never reuses
     * an idle connection and goes directly (no proxy), on skiff's own client only:
     * skiff_upcall_start returns NULL otherwise. For fetches of client-named URLs
     * (doors/media.c), which must never reach a private address. */
    int (*addr_ok)(const struct sockaddr *addr, void *data);
};

/* A new client on loop; NULL on failure. */
struct skiff_upstream *skiff_upstream_new(uv_loop_t *loop);

/* Opens n connections to the origin of url (TLS handshake done) before any call and keeps
 * them open while idle, so the first request after start is not a cold one. Nothing
 * happens for a URL skiff's own client does not take (a proxy): calls open their own. */
void skiff_upstream_warm(struct skiff_upstream *u, const char *url, const char *ca_file, int n);

/* Cancels every call and closes the client's handles; memory goes in their close callbacks. */
void skiff_upstream_close(struct skiff_upstream *u);

/* Starts a call; NULL on failure (nothing is called back then). */
struct skiff_upcall *skiff_upcall_start(struct skiff_upstream *u,
                                        const struct skiff_upcall_opts *opts);

void *skiff_upcall_data(const struct skiff_upcall *call);

/* Cancels the call: no further callbacks; the upstream connection is closed at once. */
void skiff_upcall_cancel(struct skiff_upcall *call);

/* Resumes a call paused by on_body returning 1. */
void skiff_upcall_resume(struct skiff_upcall *call);

/*
 * A streamed body's bytes (copied): they go out as the connection and the upstream's flow
 * control allow, after the request head (until then they wait in the call). Returns the
 * bytes still waiting to go: at SKIFF_UPCALL_HIGH_WATER or more, stop writing until
 * on_drain. Once a body byte has been handed to the connection the call is never sent
 * again, on any connection. Never calls back: a failure ends the call from the loop.
 */
size_t skiff_upcall_write(struct skiff_upcall *call, const char *data, size_t len);

/* The streamed body is complete (the chunked end, or END_STREAM). Never calls back. */
void skiff_upcall_end_body(struct skiff_upcall *call);

/* Calls in flight on this client (for tests and metrics). */
int skiff_upstream_active(const struct skiff_upstream *u);

#endif
