/*
 * Inside the upstream client (relay/upstream.h): the call object and the transport behind
 * skiff_upstream. Only relay/upstream.c and the own client (relay/h1conn.h) include this.
 *
 *   h1client   skiff's own client on libuv, plain or over TLS (relay/tls.c), HTTP/2
 *              (relay/h2client.c) when the upstream's TLS handshake picks h2, else HTTP/1.1:
 *              http:// and https:// upstreams (credentials in the URL go as basic
 *              authorization), directly or through an http://, https://, socks5:// or
 *              socks5h:// proxy (relay/proxy.c). No per-call allocation beyond the call
 *              itself; idle connections kept per worker.
 *
 * It keeps the contract in upstream.h: on_status once, on_body for each piece (its bytes
 * are consumed whatever it returns; 1 pauses the pieces after it), on_done exactly once
 * unless cancelled, and the call's memory freed by its transport.
 */
#ifndef SKIFF_UPCALL_H
#define SKIFF_UPCALL_H

#include "relay/upstream.h"

enum skiff_upcall_kind { SKIFF_UPCALL_H1 };

/* The first member of each transport's call struct. */
struct skiff_upcall {
    enum skiff_upcall_kind kind;
    const struct skiff_upcall_ops *ops;
    void *data;
};

struct skiff_h1c;
struct skiff_h1c *skiff_h1c_new(uv_loop_t *loop);
void skiff_h1c_close(struct skiff_h1c *cl);
/* NULL when the URL is not one this client takes or the call cannot start. */
struct skiff_upcall *skiff_h1c_start(struct skiff_h1c *cl, const struct skiff_upcall_opts *o);
void skiff_h1c_cancel(struct skiff_upcall *call);
void skiff_h1c_resume(struct skiff_upcall *call);
/* A streamed body (relay/h1stream.c). */
size_t skiff_h1c_write(struct skiff_upcall *call, const char *data, size_t len);
void skiff_h1c_end_body(struct skiff_upcall *call);
/* Keeps n idle connections to url's origin open (TLS handshake done); 0, or -1 when the URL
 * is not one this client takes or TLS cannot be set up. */
int skiff_h1c_warm(struct skiff_h1c *cl, const char *url, const char *ca_file, int n);
int skiff_h1c_active(const struct skiff_h1c *cl);

#endif
