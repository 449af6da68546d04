#include "auth.h"

#include <string.h>
#include <strings.h>

int
skiff_auth_equal(const char *a, size_t alen, const char *b, size_t blen)
{
    /* Always walk the whole of a, so the time does not tell where a mismatch was. */
    unsigned char diff = (unsigned char)(alen != blen);
    for (size_t i = 0; i < alen; i++)
        diff |= (unsigned char)(a[i] ^ (i < blen ? b[i] : 0));
    return diff == 0;
}

/* The credential the client sent, from the first of the three places that has one. */
static const char *
credential(const struct skiff_request *req, size_t *len, char *qbuf, size_t qlen)
{
    const char *v = skiff_http_header(req, "x-goog-api-key", len);
    if (v && *len)
        return v;
    v = skiff_http_header(req, "authorization", len);
    if (v && *len > 7 && strncasecmp(v, "Bearer ", 7) == 0) {
        v += 7;
        *len -= 7;
        while (*len && *v == ' ') {
            v++;
            (*len)--;
        }
        return v;
    }
    int n = skiff_http_query(req, "key", qbuf, qlen);
    if (n > 0 && (size_t)n < qlen) {
        *len = (size_t)n;
        return qbuf;
    }
    return NULL;
}

enum skiff_auth_result
skiff_auth_check(const struct skiff_config *cfg, const struct skiff_request *req,
                 const char **who)
{
    *who = "anonymous";
    if (cfg->ntokens == 0)
        return SKIFF_AUTH_OK;
    char qbuf[256];
    size_t len = 0;
    const char *cred = credential(req, &len, qbuf, sizeof qbuf);
    if (!cred)
        return SKIFF_AUTH_MISSING;
    int found = -1;
    /* Check every token, so the time does not tell which one matched. */
    for (size_t i = 0; i < cfg->ntokens; i++) {
        const char *t = cfg->tokens[i].token;
        if (skiff_auth_equal(cred, len, t, strlen(t)))
            found = (int)i;
    }
    if (found < 0)
        return SKIFF_AUTH_INVALID;
    *who = cfg->tokens[found].name;
    return SKIFF_AUTH_OK;
}
