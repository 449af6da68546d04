#include "base/url.h"

#include <string.h>
#include <strings.h>

/*
 * The end of the userinfo of the URL whose authority starts at p (just after "://"): the
 * last '@' before the URL ends (a space, a quote, or the end of the text), or NULL when
 * there is none. The last, not the first before a '/': a password written with a raw '/'
 * or '@' in it is hidden whole, at the price of hiding a host whose path holds an '@'.
 */
static const char *
userinfo_end(const char *p)
{
    size_t n = strcspn(p, " \t\r\n'\"<>`");
    return memrchr(p, '@', n);
}

const char *
skiff_url_redact(const char *text, char *out, size_t outlen)
{
    if (!outlen)
        return out;
    size_t o = 0;
    const char *p = text ? text : "";
    while (*p && o + 1 < outlen) {
        const char *at;
        if (p[0] == ':' && p[1] == '/' && p[2] == '/' && (at = userinfo_end(p + 3))) {
            static const char mask[] = "://***";
            for (size_t i = 0; i < sizeof mask - 1 && o + 1 < outlen; i++)
                out[o++] = mask[i];
            p = at; /* the '@' is copied next */
            continue;
        }
        out[o++] = *p++;
    }
    out[o] = '\0';
    return out;
}

int
skiff_url_split(const char *url, struct skiff_url_parts *p)
{
    memset(p, 0, sizeof *p);
    if (strncasecmp(url, "https://", 8) == 0)
        p->tls = 1;
    else if (strncasecmp(url, "http://", 7) != 0)
        return -1;
    const char *a = url + (p->tls ? 8 : 7);
    size_t n = strcspn(a, "/?#");
    p->target = a + n;
    /* Credentials end at the authority's last '@': they are never part of host or port. */
    const char *at = memrchr(a, '@', n);
    p->userinfo = a;
    if (at) {
        p->userinfo_len = (size_t)(at - a);
        n -= (size_t)(at + 1 - a);
        a = at + 1;
    }
    p->authority = a;
    p->authority_len = n;
    const char *hend = a + n, *port = NULL;
    if (n && *a == '[') {
        const char *rb = memchr(a, ']', n);
        if (!rb)
            return -1;
        if (rb + 1 < a + n) {
            if (rb[1] != ':')
                return -1;
            port = rb + 2;
        }
        a++;
        hend = rb;
    } else {
        const char *colon = memchr(a, ':', n);
        if (colon) {
            port = colon + 1;
            hend = colon;
        }
    }
    p->host = a;
    p->host_len = (size_t)(hend - a);
    if (port) {
        p->port = port;
        p->port_len = (size_t)(p->authority + p->authority_len - port);
    }
    if (!p->host_len || (port && !p->port_len) ||
        strspn(port ? port : "", "0123456789") < p->port_len)
        return -1;
    return 0;
}
