/*
 * The upstream client: one per worker, two transports behind it (relay/upcall.h). An
 * http:// or https:// URL without credentials goes to h1client (skiff's own HTTP/1.1
 * client, TLS on OpenSSL, tunnels through proxy.c) unless its proxy is one h1client cannot
 * tunnel through (own_client below); those go to libcurl.
 */
#include "relay/upstream.h"

#include <stdlib.h>
#include <string.h>

#include "relay/proxy.h"
#include "relay/upcall.h"

struct skiff_upstream {
    struct skiff_h1c *h1;
    struct skiff_curlc *curl;
    int curl_only; /* upstreams.gemini.client: curl (checked-address calls still use h1) */
};

struct skiff_upstream *
skiff_upstream_new(uv_loop_t *loop, int curl_only)
{
    struct skiff_upstream *u = calloc(1, sizeof *u);
    if (!u)
        return NULL;
    u->curl = skiff_curlc_new(loop);
    u->h1 = skiff_h1c_new(loop);
    u->curl_only = curl_only;
    if (!u->curl || !u->h1) {
        skiff_upstream_close(u);
        return NULL;
    }
    return u;
}

void
skiff_upstream_warm(struct skiff_upstream *u, const char *url, const char *ca_file, int n)
{
    if (u && u->h1 && !u->curl_only && url)
        skiff_h1c_warm(u->h1, url, ca_file, n);
}

void
skiff_upstream_close(struct skiff_upstream *u)
{
    if (!u)
        return;
    skiff_h1c_close(u->h1);
    skiff_curlc_close(u->curl);
    free(u);
}

/* Whether the h1 client takes the call: http:// or https:// without credentials in the
 * URL, directly, through a socks5:// or socks5h:// proxy, or through an http:// proxy
 * (CONNECT for an https:// upstream, forwarded for http://). https:// proxies go to libcurl. */
static int
own_client(const struct skiff_upcall_opts *o)
{
    size_t skip = !strncmp(o->url, "http://", 7) ? 7 : !strncmp(o->url, "https://", 8) ? 8 : 0;
    if (!skip)
        return 0;
    if (o->proxy && *o->proxy) {
        struct skiff_proxy p;
        if (skiff_proxy_parse(o->proxy, &p) < 0)
            return 0;
    }
    const char *host = o->url + skip;
    size_t n = strcspn(host, "/?#");
    return memchr(host, '@', n) == NULL;
}

struct skiff_upcall *
skiff_upcall_start(struct skiff_upstream *u, const struct skiff_upcall_opts *o)
{
    if (o->addr_ok) /* checked addresses: the own client, directly */
        return u->h1 && own_client(o) && !(o->proxy && *o->proxy) ? skiff_h1c_start(u->h1, o)
                                                                  : NULL;
    if (!u->curl_only && own_client(o))
        return skiff_h1c_start(u->h1, o);
    return skiff_curlc_start(u->curl, o);
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
    else
        skiff_curlc_cancel(call);
}

void
skiff_upcall_resume(struct skiff_upcall *call)
{
    if (!call)
        return;
    if (call->kind == SKIFF_UPCALL_H1)
        skiff_h1c_resume(call);
    else
        skiff_curlc_resume(call);
}

int
skiff_upstream_active(const struct skiff_upstream *u)
{
    return skiff_curlc_active(u->curl) + skiff_h1c_active(u->h1);
}
