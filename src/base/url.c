#include "base/url.h"

#include <string.h>

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
