/*
 * The upstream client: one per worker, skiff's own behind it (relay/upcall.h): every
 * http:// or https:// URL goes to h1client (HTTP/1.1, TLS on OpenSSL, tunnels through
 * proxy.c).
 */
#include "relay/upstream.h"

#include <stdlib.h>

#include "relay/upcall.h"

struct skiff_upstream {
    struct skiff_h1c *h1;
};

struct skiff_upstream *
skiff_upstream_new(uv_loop_t *loop)
{
    struct skiff_upstream *u = calloc(1, sizeof *u);
    if (!u)
        return NULL;
    u->h1 = skiff_h1c_new(loop);
    if (!u->h1) {
        skiff_upstream_close(u);
        return NULL;
    }
    return u;
}

void
skiff_upstream_warm(struct skiff_upstream *u, const char *url, const char *ca_file, int n)
{
    if (u && u->h1 && url)
        skiff_h1c_warm(u->h1, url, ca_file, n);
}

void
skiff_upstream_close(struct skiff_upstream *u)
{
    if (!u)
        return;
    skiff_h1c_close(u->h1);
    free(u);
}

struct skiff_upcall *
skiff_upcall_start(struct skiff_upstream *u, const struct skiff_upcall_opts *o)
{
    if (o->addr_ok && o->proxy && *o->proxy)
        return NULL; /* checked addresses go directly: a proxy would resolve others */
    return skiff_h1c_start(u->h1, o);
}

void *
skiff_upcall_data(const struct skiff_upcall *call)
{
    return call->data;
}

void
skiff_upcall_cancel(struct skiff_upcall *call)
{
    if (!call)
        return;
    if (call->kind == SKIFF_UPCALL_H1)
        skiff_h1c_cancel(call);
}

void
skiff_upcall_resume(struct skiff_upcall *call)
{
    if (!call)
        return;
    if (call->kind == SKIFF_UPCALL_H1)
        skiff_h1c_resume(call);
}

size_t
skiff_upcall_write(struct skiff_upcall *call, const char *data, size_t len)
{
    return call && call->kind == SKIFF_UPCALL_H1 ? skiff_h1c_write(call, data, len) : 0;
}

void
skiff_upcall_end_body(struct skiff_upcall *call)
{
    if (call && call->kind == SKIFF_UPCALL_H1)
        skiff_h1c_end_body(call);
}

int
skiff_upstream_active(const struct skiff_upstream *u)
{
    return skiff_h1c_active(u->h1);
}
