/*
 * What makes one config value usable: each check returns why a value is unusable, in words
 * that follow the key in a message, or NULL; never the value itself (it may be a secret).
 */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "config/loader.h"
#include "base/name.h"

#define MIN_TOKEN_LEN 8
/* Names and labels end up in logs, headers and metrics, so they stay short and printable. */
#define MAX_NAME_LEN 64
#define MAX_WORKERS 256

int
cfg_is_visible_ascii(const char *v)
{
    for (; *v; v++)
        if ((unsigned char)*v <= 0x20 || (unsigned char)*v >= 0x7f)
            return 0;
    return 1;
}

/* Keys and tokens travel in HTTP headers, where a space or a newline would break the request. */
static const char *
check_secret(const char *v)
{
    if (!*v)
        return "is empty";
    if (!cfg_is_visible_ascii(v))
        return "may contain only printable ASCII characters, without spaces";
    return NULL;
}

/* An upstream key: a secret that redaction can tell apart from its own mask ('*'), so a
 * masked key pasted from a console ("********") is refused rather than used. */
const char *
cfg_check_key(const char *v)
{
    const char *why = check_secret(v);
    if (why)
        return why;
    if (!v[strspn(v, "*")])
        return "is only '*' characters: that is a masked key, paste the key itself";
    return NULL;
}

const char *
cfg_check_token(const char *v)
{
    const char *why = check_secret(v);
    if (why)
        return why;
    if (strlen(v) < MIN_TOKEN_LEN)
        return "is too short: a client token needs at least 8 characters, or it is easy to guess";
    return NULL;
}

/* Token names and key labels: they appear in logs, headers and metrics. */
const char *
cfg_check_name(const char *v)
{
    if (!*v)
        return "is empty";
    if (strlen(v) > MAX_NAME_LEN)
        return "is longer than 64 characters";
    if (!cfg_is_visible_ascii(v))
        return "may contain only printable ASCII characters, without spaces";
    return NULL;
}

const char *
cfg_check_model(const char *v)
{
    if (!*v)
        return "is empty";
    if (strlen(v) > CFG_MAX_MODEL_LEN)
        return "is longer than 128 characters";
    if (!cfg_is_visible_ascii(v))
        return "may contain only printable ASCII characters, without spaces";
    /* The name goes into upstream URLs: the router's charset, checked again there. */
    if (!skiff_model_name_ok(v, strlen(v)))
        return "is not a model name: letters, digits, '-', '.' and '_', starting with a letter "
               "or a digit (gemini-2.5-flash, not models/gemini-2.5-flash)";
    return NULL;
}

/* Whether url starts with one of schemes (case-insensitively) and names something after it. */
static int
has_scheme(const char *url, const char *const *schemes)
{
    for (size_t i = 0; schemes[i]; i++) {
        size_t n = strlen(schemes[i]);
        if (strncasecmp(url, schemes[i], n) == 0 && url[n] && url[n] != '/')
            return 1;
    }
    return 0;
}

const char *
cfg_check_base_url(const char *v)
{
    static const char *const schemes[] = {"http://", "https://", NULL};
    if (!has_scheme(v, schemes))
        return "must start with http:// or https:// and name a host";
    if (!cfg_is_visible_ascii(v))
        return "may contain only printable ASCII characters, without spaces";
    return NULL;
}

/* Proxy and Redis URLs often carry a password, so their messages never quote the value. */
const char *
cfg_check_proxy(const char *v)
{
    static const char *const schemes[] = {"http://", "https://", "socks5://", "socks5h://", NULL};
    if (*v && (!has_scheme(v, schemes) || !cfg_is_visible_ascii(v)))
        return "must be empty or a URL starting with http://, https://, socks5:// or socks5h://";
    return NULL;
}

const char *
cfg_check_redis(const char *v)
{
    static const char *const schemes[] = {"redis://", "rediss://", "unix://", NULL};
    if (*v && (!has_scheme(v, schemes) || !cfg_is_visible_ascii(v)))
        return "must be empty or a URL starting with redis://, rediss:// or unix://";
    return NULL;
}

/* Why v is not an origin as a browser sends it (scheme://host[:port], nothing after), or
 * NULL when it is one. */
const char *
cfg_check_origin(const char *v)
{
    if (strcmp(v, "*") == 0)
        return NULL;
    const char *h = NULL;
    if (strncmp(v, "http://", 7) == 0)
        h = v + 7;
    else if (strncmp(v, "https://", 8) == 0)
        h = v + 8;
    if (!h)
        return "is not an origin: an origin starts with http:// or https:// (lower case), as "
               "in \"https://app.example\", or is \"*\" for any";
    if (!*h)
        return "has no host";
    for (const char *c = h; *c; c++) {
        if (*c == '/' || *c == '?' || *c == '#')
            return "is not an origin: an origin is scheme://host[:port] with no path, not "
                   "even a trailing /, as the browser sends it in the Origin header";
        if (*c == '@' || *c <= 0x20 || *c >= 0x7f)
            return "is not an origin: an origin is scheme://host[:port]";
        if (*c >= 'A' && *c <= 'Z')
            return "has upper-case letters: browsers send the origin in lower case";
    }
    return NULL;
}

/*
 * Port 0 is allowed: the listener then picks a free port and prints it, which tests rely on.
 */
enum cfg_listen
cfg_parse_listen(const char *s, char **host, uint16_t *port, const char **why)
{
    const char *h, *hend, *colon;
    int bracketed = s[0] == '[';
    *why = "expected host:port";
    if (bracketed) {
        h = s + 1;
        hend = strchr(h, ']');
        if (!hend || hend[1] != ':') {
            *why = "expected [ipv6]:port";
            return CFG_LISTEN_BAD;
        }
        colon = hend + 1;
    } else {
        h = s;
        colon = strrchr(s, ':');
        if (!colon)
            return CFG_LISTEN_BAD;
        hend = colon;
        if (memchr(s, ':', (size_t)(colon - s))) {
            *why = "expected host:port, with an IPv6 address in brackets as in [::1]:8080";
            return CFG_LISTEN_BAD;
        }
    }

    size_t hlen = (size_t)(hend - h);
    long long p;
    if (hlen == 0 || hlen > 253)
        return CFG_LISTEN_BAD;
    if (colon[1] < '0' || colon[1] > '9' || cfg_parse_integer(colon + 1, &p) < 0)
        return CFG_LISTEN_BAD;
    if (p > 65535) {
        *why = "expected host:port with a port from 0 to 65535";
        return CFG_LISTEN_BAD;
    }

    char *copy = strndup(h, hlen);
    if (!copy)
        return CFG_LISTEN_NOMEM;
    int ok;
    if (bracketed) {
        struct in6_addr a6;
        ok = inet_pton(AF_INET6, copy, &a6) == 1;
        if (!ok)
            *why = "expected [ipv6]:port with a valid IPv6 address";
    } else {
        /* A host name or an IPv4 address: letters, digits, dots, hyphens. */
        ok = 1;
        for (const char *c = copy; *c; c++)
            if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
                  (*c >= '0' && *c <= '9') || *c == '.' || *c == '-' || *c == '_'))
                ok = 0;
    }
    if (!ok) {
        free(copy);
        return CFG_LISTEN_BAD;
    }
    *host = copy;
    *port = (uint16_t)p;
    return CFG_LISTEN_OK;
}

int
cfg_online_cores(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1)
        return 1;
    return n > MAX_WORKERS ? MAX_WORKERS : (int)n;
}
