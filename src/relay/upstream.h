/*
 * The upstream HTTP client, one per worker, on the worker's libuv loop. Knows HTTP calls,
 * not client connections and not Gemini. Two transports sit behind it (relay/upcall.h):
 * skiff's own HTTP/1.1 client, plain or over TLS (OpenSSL), for upstreams reached directly
 * (Google over https://, skiff sim) or through a CONNECT or socks5h tunnel, and libcurl's
 * multi_socket API for the other proxies. Each keeps idle connections for reuse.
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

struct skiff_upcall_opts {
    const char *method; /* "GET" or "POST" */
    const char *url;
    const char *const *headers; /* "name: value" strings, NULL-terminated; copied */
    const char *body;           /* borrowed: must outlive the call */
    size_t body_len;
    const char *proxy;   /* NULL: none */
    const char *ca_file; /* https://: certificates trusted beside the system store;
                          * NULL: the system store only */
    long connect_timeout_ms;
    long first_byte_timeout_ms; /* 0: none */
    long idle_timeout_ms;       /* between body pieces; 0: none */
    long recv_buffer;           /* libcurl's receive buffer in bytes; 0: its 16 KiB (the
                                 * HTTP/1.1 client reads into one buffer per worker) */
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

/* A new client on loop; NULL on failure. curl_only sends every call through libcurl
 * (upstreams.gemini.client: curl), except calls with addr_ok, which only skiff's own client
 * can check. */
struct skiff_upstream *skiff_upstream_new(uv_loop_t *loop, int curl_only);

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

/* Calls in flight on this client (for tests and metrics). */
int skiff_upstream_active(const struct skiff_upstream *u);

#endif
