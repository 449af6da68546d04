#include "doors/auth.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
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

static enum skiff_auth_result match_token(const struct skiff_config *cfg, const char *cred,
                                          size_t len, const char **who);

enum skiff_auth_result
skiff_auth_check(const struct skiff_config *cfg, const struct skiff_request *req, const char **who)
{
    *who = "anonymous";
    if (cfg->ntokens == 0)
        return SKIFF_AUTH_OK;
    char qbuf[256];
    size_t len = 0;
    const char *cred = credential(req, &len, qbuf, sizeof qbuf);
    if (!cred)
        return SKIFF_AUTH_MISSING;
    return match_token(cfg, cred, len, who);
}

enum skiff_auth_result
skiff_auth_check_header(const struct skiff_config *cfg, const struct skiff_request *req,
                        const char *header, const char **who)
{
    *who = "anonymous";
    if (cfg->ntokens == 0)
        return SKIFF_AUTH_OK;
    size_t len = 0;
    const char *cred = skiff_http_header(req, header, &len);
    if (!cred || !len) {
        cred = skiff_http_header(req, "authorization", &len);
        if (!cred || len <= 7 || strncasecmp(cred, "Bearer ", 7) != 0)
            return SKIFF_AUTH_MISSING;
        cred += 7;
        len -= 7;
        while (len && *cred == ' ') {
            cred++;
            len--;
        }
    }
    return match_token(cfg, cred, len, who);
}

enum skiff_auth_result
skiff_auth_check_value(const struct skiff_config *cfg, const char *cred, size_t len,
                       const char **who)
{
    *who = "anonymous";
    if (cfg->ntokens == 0)
        return SKIFF_AUTH_OK;
    if (!len)
        return SKIFF_AUTH_MISSING;
    return match_token(cfg, cred, len, who);
}

/* Which token cred[0..len) is: every token is compared, so the time does not tell. */
static enum skiff_auth_result
match_token(const struct skiff_config *cfg, const char *cred, size_t len, const char **who)
{
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

int
skiff_auth_loopback_host(const char *s, size_t n)
{
    char host[64];
    const char *end = s + n;
    /* An optional :port, digits only. */
    const char *colon = NULL;
    for (const char *p = end; p > s; p--)
        if (p[-1] == ':' || p[-1] == ']') {
            colon = p[-1] == ':' ? p - 1 : NULL;
            break;
        }
    if (colon) {
        if (colon + 1 == end || end - colon > 6)
            return 0;
        for (const char *p = colon + 1; p < end; p++)
            if (*p < '0' || *p > '9')
                return 0;
        end = colon;
    }
    size_t len = (size_t)(end - s);
    if (len >= 2 && s[0] == '[' && end[-1] == ']') {
        if (len - 2 >= sizeof host)
            return 0;
        memcpy(host, s + 1, len - 2);
        host[len - 2] = '\0';
        struct in6_addr a6;
        return inet_pton(AF_INET6, host, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6);
    }
    if (len == 0 || len >= sizeof host)
        return 0;
    memcpy(host, s, len);
    host[len] = '\0';
    if (strcasecmp(host, "localhost") == 0 || strcasecmp(host, "localhost.") == 0)
        return 1;
    struct in_addr a4;
    return inet_pton(AF_INET, host, &a4) == 1 && (ntohl(a4.s_addr) >> 24) == 127;
}

/* A client-sent value, for a message: printable ASCII, cut to 80 bytes. */
static void
quote(const char *v, size_t n, char *out, size_t outlen)
{
    size_t o = 0;
    for (size_t i = 0; i < n && i < 80 && o + 1 < outlen; i++) {
        unsigned char c = (unsigned char)v[i];
        out[o++] = c >= 0x20 && c < 0x7f && c != '"' && c != '\\' ? (char)c : '?';
    }
    out[o] = '\0';
}

int
skiff_auth_open_check(const struct skiff_config *cfg, const struct skiff_request *req, char *msg,
                      size_t msglen)
{
    static const char how[] = "To serve it, give skiff a client token: `tokens:` in the config "
                              "file (or SKIFF_TOKENS=name:token in the environment), and send "
                              "it as x-goog-api-key, ?key= or Authorization: Bearer.";
    if (cfg->ntokens > 0)
        return 0;
    char q[96];
    size_t n;
    const char *host = skiff_http_header(req, "host", &n);
    if (host && !skiff_auth_loopback_host(host, n)) {
        quote(host, n, q, sizeof q);
        snprintf(msg, msglen,
                 "skiff runs without client tokens (open mode), so it answers only requests "
                 "addressed to a loopback name (localhost, 127.0.0.0/8, [::1]); this one was "
                 "addressed to Host \"%s\". %s",
                 q, how);
        return 403;
    }
    const char *origin = skiff_http_header(req, "origin", &n);
    if (origin) {
        const char *h = origin;
        size_t hn = n;
        if (hn > 7 && strncasecmp(h, "http://", 7) == 0) {
            h += 7;
            hn -= 7;
        } else if (hn > 8 && strncasecmp(h, "https://", 8) == 0) {
            h += 8;
            hn -= 8;
        } else {
            hn = 0;
        }
        if (!hn || !skiff_auth_loopback_host(h, hn)) {
            quote(origin, n, q, sizeof q);
            snprintf(msg, msglen,
                     "skiff runs without client tokens (open mode), so it answers no web page "
                     "but one served from a loopback address, and this request came from "
                     "Origin \"%s\" (a page could reach skiff through DNS rebinding). %s",
                     q, how);
            return 403;
        }
    }
    return 0;
}

const char *
skiff_auth_cors(const struct skiff_config *cfg, const struct skiff_request *req, char *out,
                size_t outlen)
{
    size_t n;
    const char *origin = skiff_http_header(req, "origin", &n);
    if (!cfg->ncors_origins || !origin || !n)
        return NULL;
    int any = 0;
    for (size_t i = 0; i < cfg->ncors_origins; i++) {
        const char *o = cfg->cors_origins[i];
        if (strcmp(o, "*") == 0)
            any = 1;
        else if (strlen(o) == n && memcmp(o, origin, n) == 0 && n < outlen) {
            memcpy(out, origin, n);
            out[n] = '\0';
            return out;
        }
    }
    return any ? "*" : NULL;
}
