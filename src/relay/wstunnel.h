/*
 * The upstream side of a WebSocket session (the Live API): one HTTP/1.1 connection to the
 * upstream's origin, opened the way the calls' client opens one (directly, or through
 * upstreams.gemini.proxy: an http:// or https:// proxy's CONNECT, socks5://, socks5h://),
 * over TLS for https:// (ALPN offers "http/1.1" only: a WebSocket goes over HTTP/1.1). It
 * sends the opening handshake (RFC 6455 §4.1): GET with Host, Upgrade: websocket,
 * Connection: Upgrade, Sec-WebSocket-Version: 13, a random Sec-WebSocket-Key and the
 * caller's header lines, and checks the answer: a 101 whose Sec-WebSocket-Accept is the
 * key's SHA-1 opens the tunnel; anything else is a refusal, reported with its status,
 * headers and (bounded) body.
 *
 * Once open it is a byte pipe: it never reads or writes a WebSocket frame. The bytes that
 * came in the same read as the 101's head are delivered first, before any later ones.
 *
 * Callbacks run on the loop. on_open or on_refused comes first, exactly once (unless the
 * caller closed the tunnel before); on_refused ends the tunnel (its memory goes after the
 * callback returns). After on_open: on_read for each piece of the upstream's bytes, on_drain
 * when the bytes queued by skiff_wstunnel_write have all gone out after a write left some
 * queued, on_close once when the upstream closed or failed (the tunnel is freed after it
 * returns). skiff_wstunnel_close may be called at any time, from inside a callback too; no
 * callback follows it.
 *
 * The URL (it holds the credential in its query) is copied, never printed, and wiped when
 * the tunnel goes; no message this module writes quotes it or a proxy's credentials.
 */
#ifndef SKIFF_WSTUNNEL_H
#define SKIFF_WSTUNNEL_H

#include <stddef.h>

#include <uv.h>

struct skiff_wstunnel;
/* What tunnels of one worker share (the TLS context, per ca_file). One per loop. */
struct skiff_wsclient;

struct skiff_wstunnel_ops {
    /* The upstream answered 101 with the right Sec-WebSocket-Accept: headers is its header
     * block ("name: value\r\n" lines, hop-by-hop ones removed). */
    void (*on_open)(struct skiff_wstunnel *t, const char *headers, size_t len);
    /* The tunnel did not open: status 0 and error a one-line cause (connect, proxy, TLS,
     * timeout, a malformed answer or a wrong accept value), or the upstream's status other
     * than 101 with its headers and the first bytes of its body (at most 64 KiB), error
     * NULL. The tunnel is freed after it returns. */
    void (*on_refused)(struct skiff_wstunnel *t, int status, const char *headers, size_t hlen,
                       const char *body, size_t blen, const char *error);
    void (*on_read)(struct skiff_wstunnel *t, const char *data, size_t len);
    void (*on_drain)(struct skiff_wstunnel *t);
    /* The upstream went away (why: "the upstream closed the connection", a TLS or socket
     * error). The tunnel is freed after it returns. */
    void (*on_close)(struct skiff_wstunnel *t, const char *why);
};

struct skiff_wstunnel_opts {
    const char *url;            /* http:// or https:// origin, path and query; copied */
    const char *const *headers; /* "name: value" lines to send beside the handshake's own;
                                 * NULL-terminated, copied */
    const char *proxy;          /* NULL or "": none */
    const char *ca_file;        /* https://: trusted beside the system store; NULL: none */
    long connect_timeout_ms;    /* resolving, connecting (each address in turn), the proxy */
    long handshake_timeout_ms;  /* from connected to the 101 (TLS and the answer) */
    const struct skiff_wstunnel_ops *ops;
    void *data;
};

struct skiff_wsclient *skiff_wsclient_new(uv_loop_t *loop);
/* Frees the shared state; the tunnels of this client must be gone (closed or ended). */
void skiff_wsclient_free(struct skiff_wsclient *cl);

/* Starts opening a tunnel; NULL when the URL or proxy is not one this module takes, or out
 * of memory (nothing is called back then). No callback runs before it returns. */
struct skiff_wstunnel *skiff_wstunnel_open(struct skiff_wsclient *cl,
                                           const struct skiff_wstunnel_opts *o);

void *skiff_wstunnel_data(const struct skiff_wstunnel *t);

/* Sends bytes to the upstream (copied unless the socket takes them at once). Returns the
 * bytes still queued after this write. Only after on_open. */
size_t skiff_wstunnel_write(struct skiff_wstunnel *t, const void *data, size_t len);

/* Stops and restarts reading from the upstream (backpressure). */
void skiff_wstunnel_pause(struct skiff_wstunnel *t);
void skiff_wstunnel_resume(struct skiff_wstunnel *t);

/* Closes the tunnel: queued bytes are flushed (for at most a second), then the connection
 * closes. No callback follows; the memory goes in the close callbacks. */
void skiff_wstunnel_close(struct skiff_wstunnel *t);

#endif
