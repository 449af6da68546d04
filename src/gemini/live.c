#include "gemini/live.h"

#include <string.h>

#define LIVE_PREFIX "/ws/google.ai.generativelanguage."
#define LIVE_SERVICE ".GenerativeService.BidiGenerateContent"

const char skiff_live_upgrade_elsewhere[] =
    "protocol upgrades are served only on the Live API paths: "
    "/ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent (and "
    "BidiGenerateContentConstrained, and the same under v1alpha); send other calls as plain "
    "HTTP requests, without Upgrade and Connection: upgrade";

enum skiff_live_kind
skiff_live_path(const char *path, size_t len, const char **version)
{
    static const char *const versions[] = {"v1beta", "v1alpha"};
    size_t pl = sizeof LIVE_PREFIX - 1, sl = sizeof LIVE_SERVICE - 1;
    /* The SDKs join their base URL's "/" and "/ws/...": Google serves "//ws/..." alike. */
    if (len >= 2 && path[0] == '/' && path[1] == '/') {
        path++;
        len--;
    }
    if (len < pl || memcmp(path, LIVE_PREFIX, pl) != 0)
        return SKIFF_LIVE_NONE;
    const char *p = path + pl, *end = path + len;
    for (size_t i = 0; i < sizeof versions / sizeof versions[0]; i++) {
        size_t vl = strlen(versions[i]);
        if ((size_t)(end - p) < vl + sl || memcmp(p, versions[i], vl) != 0 ||
            memcmp(p + vl, LIVE_SERVICE, sl) != 0)
            continue;
        const char *rest = p + vl + sl;
        enum skiff_live_kind k = SKIFF_LIVE_NONE;
        if (rest == end)
            k = SKIFF_LIVE_KEY;
        else if ((size_t)(end - rest) == 11 && memcmp(rest, "Constrained", 11) == 0)
            k = SKIFF_LIVE_CONSTRAINED;
        if (k && version)
            *version = versions[i];
        return k;
    }
    return SKIFF_LIVE_NONE;
}
