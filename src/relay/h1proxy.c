/*
 * The own client's proxy tunnels (relay/h1conn.h): TLS to an https:// proxy (its read path
 * under the upstream's TLS), the socks5:// name lookup, and the CONNECT or SOCKS set-up
 * through relay/proxy.c, whose handshake output may hold the proxy's credentials (wiped).
 */
#include "relay/h1conn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

/* Hands on what the proxy's TLS has decrypted (the tunnel's bytes, or the proxy's own
 * answers), until it has nothing more or the call pauses; as drain_tls, after every feed of
 * ciphertext and on resume. */
void
drain_ptls(struct h1_conn *k)
{
    struct skiff_h1c *cl = k->cl;
    while (!k->closing && !(k->call && k->call->paused)) {
        ssize_t n = skiff_tls_read(k->ptls, cl->xbuf, sizeof cl->xbuf);
        int queued = 0;
        if (n != 0 && flush_ptls(k, &queued) < 0 && k->call) {
            conn_failed(k->call, "could not send to the proxy", 0);
            return;
        }
        if (n == 0)
            return;
        if (n < 0) {
            wire_end(k, UV_EOF, skiff_tls_error(k->ptls));
            return;
        }
        wire_in(k, cl->xbuf, (size_t)n);
    }
}

/* Ciphertext from an https:// proxy: its handshake goes on, or the records are decrypted. */
void
ptls_in(struct h1_conn *k, const char *data, size_t len)
{
    struct h1_call *c = k->call;
    if (skiff_tls_feed(k->ptls, data, len) < 0) {
        conn_fail(k, "out of memory reading from the proxy");
        return;
    }
    if (k->phandshaking) {
        int queued = 0;
        int rc = skiff_tls_handshake(k->ptls);
        if (flush_ptls(k, &queued) < 0)
            rc = -1;
        if (rc == 0)
            return;
        if (rc < 0) {
            tls_handshake_failed(k, k->ptls, "the TLS handshake with the proxy failed");
            return;
        }
        if (!c) {
            conn_close(k);
            return;
        }
        k->phandshaking = 0;
        conn_connected(c, k);
        if (k->closing)
            return;
    }
    drain_ptls(k);
}

/* Whether the origin is reached through a tunnel; a plain http:// upstream behind an
 * http:// proxy is not: its requests go to the proxy in absolute form. */
int
tunnelled(const struct h1_origin *o)
{
    return o->proxied && (o->tls || o->proxy.kind != SKIFF_PROXY_HTTP);
}

/* Writes what the proxy handshake produced and wipes it (it may hold the proxy's
 * credentials). 0, or a negative libuv error. */
static int
flush_proxy(struct h1_conn *k, struct skiff_buf *out)
{
    int queued = 0, rc = 0;
    if (out->len) {
        uv_buf_t b = uv_buf_init(out->data, (unsigned)out->len);
        rc = wire_write(k, &b, 1, 1, &queued);
    }
    if (out->data)
        memset(out->data, 0, out->cap);
    skiff_buf_release(out);
    return rc < 0 ? rc : 0;
}

static void proxy_start(struct h1_call *c, struct h1_conn *k, const char *host);

static void
socks_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    struct socks_resolve *r = req->data;
    struct h1_conn *k = r->k;
    free(r);
    char addr[64] = "";
    if (res && res->ai_family == AF_INET)
        uv_ip4_name((const struct sockaddr_in *)res->ai_addr, addr, sizeof addr);
    else if (res && res->ai_family == AF_INET6)
        uv_ip6_name((const struct sockaddr_in6 *)res->ai_addr, addr, sizeof addr);
    if (res)
        uv_freeaddrinfo(res);
    if (!k || !k->call)
        return; /* the connection closed meanwhile */
    k->sres = NULL;
    if (status < 0 || !*addr) {
        char msg[400];
        snprintf(msg, sizeof msg,
                 "could not resolve the upstream host %s for the socks5:// proxy (%s)",
                 k->origin->host, status < 0 ? uv_strerror(status) : "no address");
        finish(k->call, msg);
        return;
    }
    proxy_start(k->call, k, addr);
}

/* Starts the tunnel; for socks5:// the upstream's name is resolved here first. */
void
proxy_begin(struct h1_call *c, struct h1_conn *k)
{
    unsigned char ip[16];
    const char *host = k->origin->host;
    if (k->origin->proxy.kind != SKIFF_PROXY_SOCKS5 || inet_pton(AF_INET, host, ip) == 1 ||
        inet_pton(AF_INET6, host, ip) == 1) {
        proxy_start(c, k, host);
        return;
    }
    struct socks_resolve *r = calloc(1, sizeof *r);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    if (!r) {
        finish(c, "out of memory resolving the upstream");
        return;
    }
    r->k = k;
    r->req.data = r;
    k->sres = r;
    int rc = uv_getaddrinfo(c->cl->loop, &r->req, socks_resolved, host, k->origin->port, &hints);
    if (rc < 0) {
        k->sres = NULL;
        free(r);
        finish(c, "could not resolve the upstream host for the socks5:// proxy");
    }
}

static void
proxy_start(struct h1_call *c, struct h1_conn *k, const char *host)
{
    struct skiff_buf out;
    skiff_buf_init(&out, 4096);
    k->hs = malloc(sizeof *k->hs);
    if (!k->hs || skiff_proxy_begin(k->hs, &k->origin->proxy, host, k->origin->port, &out) < 0 ||
        flush_proxy(k, &out) < 0) {
        if (out.data)
            memset(out.data, 0, out.cap);
        skiff_buf_release(&out);
        finish(c, "could not start the tunnel through the proxy");
    }
}

/* Bytes from the proxy while its tunnel is being set up. */
void
proxy_in(struct h1_conn *k, const char *data, size_t len)
{
    struct h1_call *c = k->call;
    struct skiff_buf out;
    char err[300];
    int done = 0;
    skiff_buf_init(&out, 4096);
    ssize_t used = skiff_proxy_feed(k->hs, data, len, &out, &done, err, sizeof err);
    if (used >= 0 && flush_proxy(k, &out) < 0) {
        used = -1;
        snprintf(err, sizeof err, "could not write to the proxy");
    }
    if (out.data)
        memset(out.data, 0, out.cap);
    skiff_buf_release(&out);
    if (used >= 0 && done && (size_t)used < len) {
        used = -1; /* neither TLS nor HTTP/1.1 lets the server speak first */
        snprintf(err, sizeof err, "the upstream sent bytes through the proxy before the request");
    }
    if (used < 0) {
        conn_fail(k, err);
        return;
    }
    if (!done)
        return;
    free(k->hs);
    k->hs = NULL;
    if (c)
        conn_ready(c, k);
    else
        conn_close(k);
}
