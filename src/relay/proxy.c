/*
 * Proxy tunnels (relay/proxy.h): the CONNECT request and reply, and the SOCKS5 exchange.
 */
#include "relay/proxy.h"

#include <arpa/inet.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "base/num.h"
#include "relay/h1resp.h"

enum {
    HTTP_REPLY,   /* waiting for the CONNECT reply's head */
    SOCKS_METHOD, /* waiting for the method the proxy chose */
    SOCKS_AUTH,   /* waiting for the username/password verdict */
    SOCKS_REPLY,  /* waiting for the CONNECT reply */
    OPEN,
};

static int
hex(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Copies s[0..n) percent-decoded into out (cap bytes with the NUL); -1 when it does not fit
 * or an escape is broken. */
static int
decode(const char *s, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)s[i];
        if (c == '%') {
            if (n - i < 3 || hex(s[i + 1]) < 0 || hex(s[i + 2]) < 0)
                return -1;
            c = hex(s[i + 1]) * 16 + hex(s[i + 2]);
            i += 2;
        }
        if (o + 1 >= cap)
            return -1;
        out[o++] = (char)c;
    }
    out[o] = '\0';
    return 0;
}

int
skiff_userinfo_decode(const char *s, size_t n, char *user, size_t ucap, char *pass, size_t pcap)
{
    const char *colon = memchr(s, ':', n);
    size_t ul = colon ? (size_t)(colon - s) : n;
    pass[0] = '\0';
    return decode(s, ul, user, ucap) < 0 || (colon && decode(colon + 1, n - ul - 1, pass, pcap) < 0)
               ? -1
               : 0;
}

int
skiff_proxy_parse(const char *url, struct skiff_proxy *p)
{
    memset(p, 0, sizeof *p);
    const char *a;
    if (!strncasecmp(url, "http://", 7)) {
        p->kind = SKIFF_PROXY_HTTP;
        a = url + 7;
    } else if (!strncasecmp(url, "https://", 8)) {
        p->kind = SKIFF_PROXY_HTTP;
        p->tls = 1;
        a = url + 8;
    } else if (!strncasecmp(url, "socks5h://", 10)) {
        p->kind = SKIFF_PROXY_SOCKS5H;
        a = url + 10;
    } else if (!strncasecmp(url, "socks5://", 9)) {
        p->kind = SKIFF_PROXY_SOCKS5;
        a = url + 9;
    } else {
        return -1;
    }
    size_t n = strcspn(a, "/?#");
    const char *end = a + n, *at = NULL;
    for (const char *q = a; q < end; q++)
        if (*q == '@')
            at = q;
    if (at) {
        if (skiff_userinfo_decode(a, (size_t)(at - a), p->user, sizeof p->user, p->pass,
                                  sizeof p->pass) < 0)
            return -1;
        a = at + 1;
    }
    const char *hend = end, *port = NULL;
    if (a < end && *a == '[') {
        const char *rb = memchr(a, ']', (size_t)(end - a));
        if (!rb)
            return -1;
        if (rb + 1 < end) {
            if (rb[1] != ':')
                return -1;
            port = rb + 2;
        }
        a++;
        hend = rb;
    } else {
        const char *colon = memchr(a, ':', (size_t)(end - a));
        if (colon) {
            port = colon + 1;
            hend = colon;
        }
    }
    size_t hlen = (size_t)(hend - a), plen = port ? (size_t)(end - port) : 0;
    if (!hlen || hlen >= sizeof p->host || (port && !plen) || plen >= sizeof p->port ||
        (port && strspn(port, "0123456789") < plen))
        return -1;
    memcpy(p->host, a, hlen);
    if (port)
        memcpy(p->port, port, plen);
    else
        memcpy(p->port,
               p->kind != SKIFF_PROXY_HTTP ? "1080"
               : p->tls                    ? "443"
                                           : "80",
               p->kind != SKIFF_PROXY_HTTP ? 5 : 3);
    return 0;
}

static int
socks_connect(struct skiff_proxy_hs *hs, struct skiff_buf *out)
{
    size_t hl = strlen(hs->host);
    unsigned port = 0;
    for (const char *q = hs->port; *q; q++)
        port = port * 10 + (unsigned)(*q - '0');
    unsigned char head[5] = {5, 1, 0, 3, (unsigned char)hl};
    unsigned char tail[2] = {(unsigned char)(port >> 8), (unsigned char)port};
    unsigned char ip[16];
    const void *addr = hs->host;
    size_t alen = hl, hlen = sizeof head;
    if (hs->proxy->kind == SKIFF_PROXY_SOCKS5) {
        /* An address: IPv4 (type 1) or IPv6 (type 4), no length byte. */
        int v4 = inet_pton(AF_INET, hs->host, ip) == 1;
        if (!v4 && inet_pton(AF_INET6, hs->host, ip) != 1)
            return -1;
        head[3] = v4 ? 1 : 4;
        addr = ip;
        alen = v4 ? 4 : 16;
        hlen = 4;
    }
    hs->state = SOCKS_REPLY;
    return skiff_buf_add(out, head, hlen) || skiff_buf_add(out, addr, alen) ||
                   skiff_buf_add(out, tail, sizeof tail)
               ? -1
               : 0;
}

int
skiff_basic_auth_header(const char *field, const char *user, const char *pass,
                        struct skiff_buf *out)
{
    /* Basic credentials: base64 of user:pass, by OpenSSL's encoder. */
    char plain[512];
    unsigned char b64[700];
    if (strlen(user) > 255 || strlen(pass) > 255)
        return -1;
    int pl = snprintf(plain, sizeof plain, "%s:%s", user, pass);
    int bl = EVP_EncodeBlock(b64, (const unsigned char *)plain, pl);
    int rc = skiff_buf_adds(out, field) || skiff_buf_adds(out, ": Basic ") ||
             skiff_buf_add(out, b64, (size_t)bl) || skiff_buf_adds(out, "\r\n");
    memset(plain, 0, sizeof plain);
    memset(b64, 0, sizeof b64);
    return rc ? -1 : 0;
}

int
skiff_proxy_auth_header(const struct skiff_proxy *p, struct skiff_buf *out)
{
    if (!*p->user)
        return 0;
    return skiff_basic_auth_header("proxy-authorization", p->user, p->pass, out);
}

int
skiff_proxy_begin(struct skiff_proxy_hs *hs, const struct skiff_proxy *p, const char *host,
                  const char *port, struct skiff_buf *out)
{
    memset(hs, 0, sizeof *hs);
    hs->proxy = p;
    size_t hl = strlen(host), pl = strlen(port);
    if (hl >= sizeof hs->host || pl >= sizeof hs->port || hl > 255)
        return -1;
    memcpy(hs->host, host, hl + 1);
    memcpy(hs->port, port, pl + 1);
    if (p->kind != SKIFF_PROXY_HTTP) {
        unsigned char ip[16];
        if (p->kind == SKIFF_PROXY_SOCKS5 && inet_pton(AF_INET, host, ip) != 1 &&
            inet_pton(AF_INET6, host, ip) != 1)
            return -1;
        unsigned char hello[4] = {5, 1, 0, 0};
        if (*p->user) {
            hello[1] = 2;
            hello[3] = 2; /* no authentication, or username/password */
        }
        hs->state = SOCKS_METHOD;
        return skiff_buf_add(out, hello, *p->user ? 4 : 3) ? -1 : 0;
    }
    int v6 = strchr(host, ':') != NULL;
    int rc = 0;
    for (int i = 0; i < 2; i++) {
        rc |= skiff_buf_adds(out, i ? "\r\nhost: " : "CONNECT ");
        rc |= v6 ? skiff_buf_add(out, "[", 1) : 0;
        rc |= skiff_buf_adds(out, host);
        rc |= skiff_buf_adds(out, v6 ? "]:" : ":");
        rc |= skiff_buf_adds(out, port);
        rc |= i ? 0 : skiff_buf_adds(out, " HTTP/1.1");
    }
    rc |= skiff_buf_adds(out, "\r\n");
    rc |= skiff_proxy_auth_header(p, out);
    rc |= skiff_buf_adds(out, "\r\n");
    hs->state = HTTP_REPLY;
    return rc ? -1 : 0;
}

static const char *
socks_reason(int rep)
{
    static const char *const why[] = {"",
                                      "general failure",
                                      "connection not allowed by ruleset",
                                      "network unreachable",
                                      "host unreachable",
                                      "connection refused",
                                      "TTL expired",
                                      "command not supported",
                                      "address type not supported"};
    return rep > 0 && rep < 9 ? why[rep] : "unknown error";
}

/* Takes up to `want` bytes of the current reply into hs->reply; returns the bytes used. */
static size_t
gather(struct skiff_proxy_hs *hs, const char *in, size_t len, size_t want)
{
    size_t n = want > hs->have ? want - hs->have : 0;
    if (n > len)
        n = len;
    memcpy(hs->reply + hs->have, in, n);
    hs->have += n;
    return n;
}

ssize_t
skiff_proxy_feed(struct skiff_proxy_hs *hs, const char *in, size_t len, struct skiff_buf *out,
                 int *done, char *err, size_t errlen)
{
    size_t used = 0;
    *done = 0;
    while (used < len && hs->state != OPEN) {
        const char *p = in + used;
        size_t left = len - used;
        const unsigned char *r = (const unsigned char *)hs->reply;
        if (hs->state == HTTP_REPLY) {
            size_t old = hs->have;
            size_t n = left < sizeof hs->reply - hs->have ? left : sizeof hs->reply - hs->have;
            memcpy(hs->reply + hs->have, p, n);
            hs->have += n;
            size_t end = skiff_h1_head_end(hs->reply, hs->have, old > 3 ? old - 3 : 0);
            if (!end) {
                if (hs->have == sizeof hs->reply) {
                    snprintf(err, errlen, "the proxy's answer to CONNECT is not HTTP");
                    return -1;
                }
                return (ssize_t)len;
            }
            used += end - old;
            if (hs->have < 12 || strncmp(hs->reply, "HTTP/1.", 7) != 0 || hs->reply[8] != ' ') {
                snprintf(err, errlen, "the proxy's answer to CONNECT is not HTTP");
                return -1;
            }
            int status =
                (hs->reply[9] - '0') * 100 + (hs->reply[10] - '0') * 10 + (hs->reply[11] - '0');
            if (status / 100 != 2) {
                size_t l = strcspn(hs->reply + 9, "\r\n");
                snprintf(err, errlen, "the proxy refused the tunnel to the upstream: HTTP %.*s%s",
                         (int)(l < 80 ? l : 80), hs->reply + 9,
                         status == 407 || status == 401
                             ? " (check the credentials in upstreams.gemini.proxy)"
                             : "");
                return -1;
            }
            hs->state = OPEN;
            break;
        }
        size_t want = hs->state == SOCKS_REPLY ? 5 : 2;
        if (hs->state == SOCKS_REPLY && hs->have >= 5)
            want = r[3] == 1 ? 10 : r[3] == 4 ? 22 : r[3] == 3 ? 7 + (size_t)r[4] : 5;
        used += gather(hs, p, left, want);
        if (hs->have < want)
            continue;
        if (hs->state == SOCKS_REPLY && want == 5 && (r[3] == 1 || r[3] == 3 || r[3] == 4))
            continue; /* now the length is known */
        if (r[0] != (hs->state == SOCKS_AUTH ? 1 : 5)) {
            snprintf(err, errlen, "the proxy does not answer as a SOCKS5 proxy");
            return -1;
        }
        hs->have = 0;
        if (hs->state == SOCKS_METHOD) {
            if (r[1] == 2 && *hs->proxy->user) {
                size_t ul = strlen(hs->proxy->user), pl = strlen(hs->proxy->pass);
                unsigned char a[2] = {1, (unsigned char)ul}, b[1] = {(unsigned char)pl};
                hs->state = SOCKS_AUTH;
                if (ul > 255 || pl > 255 || skiff_buf_add(out, a, 2) ||
                    skiff_buf_add(out, hs->proxy->user, ul) || skiff_buf_add(out, b, 1) ||
                    skiff_buf_add(out, hs->proxy->pass, pl)) {
                    snprintf(err, errlen, "the SOCKS5 credentials are too long");
                    return -1;
                }
            } else if (r[1] == 0) {
                if (socks_connect(hs, out) < 0) {
                    snprintf(err, errlen, "out of memory talking to the proxy");
                    return -1;
                }
            } else {
                snprintf(err, errlen, "the SOCKS5 proxy accepts none of the offered methods%s",
                         *hs->proxy->user ? "" : " (it may want a user and password)");
                return -1;
            }
        } else if (hs->state == SOCKS_AUTH) {
            if (r[1] != 0) {
                snprintf(err, errlen,
                         "the SOCKS5 proxy refused the credentials in "
                         "upstreams.gemini.proxy");
                return -1;
            }
            if (socks_connect(hs, out) < 0) {
                snprintf(err, errlen, "out of memory talking to the proxy");
                return -1;
            }
        } else {
            if (r[1] != 0) {
                snprintf(err, errlen, "the SOCKS5 proxy could not reach the upstream (%s)",
                         socks_reason(r[1]));
                return -1;
            }
            hs->state = OPEN;
        }
    }
    *done = hs->state == OPEN;
    return (ssize_t)used;
}
