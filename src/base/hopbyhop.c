#include "base/hopbyhop.h"

#include <string.h>
#include <strings.h>

int
skiff_name_in(const char *name, size_t n, const struct skiff_name *list, size_t count)
{
    for (size_t i = 0; i < count; i++)
        if (list[i].n == n && strncasecmp(list[i].s, name, n) == 0)
            return 1;
    return 0;
}

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

int
skiff_hop_by_hop(const char *name, size_t n)
{
    static const struct skiff_name hop[] = {
        SKIFF_NAME("connection"), SKIFF_NAME("keep-alive"), SKIFF_NAME("proxy-connection"),
        SKIFF_NAME("te"),         SKIFF_NAME("trailer"),    SKIFF_NAME("transfer-encoding"),
        SKIFF_NAME("upgrade"),
    };
    return skiff_name_in(name, n, hop, COUNT(hop));
}

/* Names that never go upstream from a client, whatever the config says (beside the
 * hop-by-hop ones). */
static const struct skiff_name framing[] = {SKIFF_NAME("host"), SKIFF_NAME("content-length"),
                                            SKIFF_NAME("expect")};
static const struct skiff_name credentials[] = {SKIFF_NAME("authorization"),
                                                SKIFF_NAME("proxy-authorization"),
                                                SKIFF_NAME("x-goog-api-key"), SKIFF_NAME("cookie")};

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
    if (skiff_name_in(name, n, framing, COUNT(framing)))
        return "frames or routes the request: skiff sets it for the upstream itself";
    if (skiff_name_in(name, n, credentials, COUNT(credentials)))
        return "carries a credential: a client's never goes upstream, and the pool key is sent "
               "as x-goog-api-key by skiff";
    if (n == 15 && strncasecmp(name, "accept-encoding", 15) == 0)
        return "would have the upstream compress its answers, which skiff reads";
    if (n >= 8 && strncasecmp(name, "x-skiff-", 8) == 0)
        return "is one of skiff's own controls, read by skiff and never sent on";
    return NULL;
}
