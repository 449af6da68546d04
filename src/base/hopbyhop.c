#include "base/hopbyhop.h"

#include <string.h>
#include <strings.h>

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
