#include "base/hopbyhop.h"

#include <string.h>
#include <strings.h>

/* Whether name[0..n) is one of list (NULL-terminated), ignoring case. */
static int
listed(const char *name, size_t n, const char *const *list)
{
    for (; *list; list++)
        if (strnlen(*list, n + 1) == n && strncasecmp(*list, name, n) == 0)
            return 1;
    return 0;
}

int
skiff_hop_by_hop(const char *name, size_t n)
{
    static const char *const hop[] = {"connection", "keep-alive",        "proxy-connection", "te",
                                      "trailer",    "transfer-encoding", "upgrade"};
    for (size_t i = 0; i < sizeof hop / sizeof hop[0]; i++)
        if (strnlen(hop[i], n + 1) == n && strncasecmp(hop[i], name, n) == 0)
            return 1;
    return 0;
}

/* Names that never go upstream from a client, whatever the config says (beside the
 * hop-by-hop ones). */
static const char *const framing[] = {"host", "content-length", "expect", NULL};
static const char *const credentials[] = {"authorization", "proxy-authorization", "x-goog-api-key",
                                          "cookie", NULL};

/* RFC 9110 tchar. */
static int
is_tchar(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

const char *
skiff_header_unlistable(const char *name)
{
    size_t n = strlen(name);
    if (!n)
        return "is empty";
    for (size_t i = 0; i < n; i++)
        if (!is_tchar((unsigned char)name[i]))
            return "is not a header name (letters, digits and !#$%&'*+-.^_`|~ only)";
    if (skiff_hop_by_hop(name, n))
        return "is a hop-by-hop header: it describes one connection and never travels on";
    if (listed(name, n, framing))
        return "frames or routes the request: skiff sets it for the upstream itself";
    if (listed(name, n, credentials))
        return "carries a credential: a client's never goes upstream, and the pool key is sent "
               "as x-goog-api-key by skiff";
    if (n == 15 && strncasecmp(name, "accept-encoding", 15) == 0)
        return "would have the upstream compress its answers, which skiff reads";
    if (n >= 8 && strncasecmp(name, "x-skiff-", 8) == 0)
        return "is one of skiff's own controls, read by skiff and never sent on";
    return NULL;
}
