/*
 * Loading skiff's configuration: defaults, then the YAML file, then the environment, then the
 * checks that span several keys. The file is loaded whole with yaml_parser_load and the node
 * tree is walked with a dotted key path kept beside it, so that every error can say
 * "file:line: key.path: what is wrong" on one line.
 *
 * Ownership: the loader builds straight into a calloc'd struct skiff_config whose every field
 * is either NULL or owned, so the one error path is skiff_config_free. Arrays keep their count
 * equal to the number of slots allocated (slots start zeroed), so a half-filled array frees
 * cleanly too.
 *
 * Secrets: upstream keys and client tokens are never copied into a message. Inside a key or
 * token item the loader sets `secret`, which makes every message describe values by their
 * kind ("a string") instead of quoting them, and hides unknown mapping keys (a token pasted
 * as a key is a common slip).
 */
#include "config/config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <yaml.h>

/* The one list of header names that may never go upstream lives with the request builder. */
#include "relay/uprequest.h"
#include "gemini/router.h"
#include "base/url.h"
/* Only for struct skiff_model_alias, the shape of cfg->models (no door code is called). */
#include "doors/models.h"

#define DEFAULT_LISTEN_HOST "127.0.0.1"
#define DEFAULT_LISTEN_PORT 8080
#define DEFAULT_BASE_URL "https://generativelanguage.googleapis.com"
#define DEFAULT_SQLITE "./skiff.db"

#define MAX_WORKERS 256
#define MAX_ATTEMPTS 60
/* A day: longer than any sane timeout, and small enough that callers may multiply freely. */
#define MAX_DURATION_MS 86400000LL
#define MIN_BODY_BYTES 1024LL
#define MAX_BODY_BYTES (1024LL * 1024 * 1024)
#define MAX_CONNECTIONS 1000000LL
#define MIN_BUFFERED_BYTES (1024LL * 1024)
#define MAX_BUFFERED_BYTES (64LL * 1024 * 1024 * 1024)
#define MIN_TOKEN_LEN 8
/* Names and labels end up in logs, headers and metrics, so they stay short and printable. */
#define MAX_NAME_LEN 64
#define MAX_MODEL_LEN 128
#define DEFAULT_MEDIA_BYTES (20LL * 1024 * 1024)
#define MAX_SIGCACHE_ENTRIES 100000000LL

struct loader {
    struct skiff_config *cfg;
    const char *file;     /* the YAML file, named in messages */
    yaml_document_t *doc; /* the loaded document, while walking it */
    char path[256];       /* the dotted key path of the node being read */
    size_t pathlen;
    int secret;              /* inside a key or token item: quote no values */
    const char *listen_from; /* where listen came from, for the final check's message */
    char *err;
    size_t errlen;
};

/* One pair of a mapping being walked, as handed to the mapping's pair_fn. */
struct pair {
    int which; /* the index of the key in the known list, or -1 for free keys */
    yaml_node_t *key;
    yaml_node_t *value;
    void *ctx; /* what the caller of walk_mapping passed */
};

typedef int pair_fn(struct loader *ld, const struct pair *p);

/* Messages. */

/* The format attributes let the compiler check every message against its arguments. */
static int vfail_line(struct loader *ld, unsigned long line, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));
static int fail_line(struct loader *ld, unsigned long line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail_at(struct loader *ld, const yaml_node_t *node, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(struct loader *ld, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Writes "<file>:<line>: <path>: <message>", or without the path at the top level. */
static int
vfail_line(struct loader *ld, unsigned long line, const char *fmt, va_list ap)
{
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    if (!ld->err || ld->errlen == 0)
        return -1;
    if (ld->pathlen)
        snprintf(ld->err, ld->errlen, "%s:%lu: %s: %s", ld->file, line, ld->path, msg);
    else
        snprintf(ld->err, ld->errlen, "%s:%lu: %s", ld->file, line, msg);
    return -1;
}

static int
fail_line(struct loader *ld, unsigned long line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfail_line(ld, line, fmt, ap);
    va_end(ap);
    return -1;
}

/* Fails at node's line (libyaml counts lines from 0; editors count from 1). */
static int
fail_at(struct loader *ld, const yaml_node_t *node, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfail_line(ld, (unsigned long)node->start_mark.line + 1, fmt, ap);
    va_end(ap);
    return -1;
}

/* Writes a message that carries its own prefix (an environment variable, or none). */
static int
fail(struct loader *ld, const char *fmt, ...)
{
    if (!ld->err || ld->errlen == 0)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ld->err, ld->errlen, fmt, ap);
    va_end(ap);
    return -1;
}

/*
 * Quotes a non-secret value for a message: escaped, so a stray newline cannot split the
 * one-line message, and cut short, so a pasted blob cannot drown it.
 */
static const char *
quote_with(const char *s, char q, char *buf, size_t n)
{
    static const size_t shown = 48;
    size_t o = 0, i;
    buf[o++] = q;
    for (i = 0; i < shown && s[i] && o + 6 < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == (unsigned char)q || c == '\\') {
            buf[o++] = '\\';
            buf[o++] = (char)c;
        } else if (c < 0x20 || c == 0x7f) {
            o += (size_t)snprintf(buf + o, n - o, "\\x%02x", c);
        } else {
            buf[o++] = (char)c;
        }
    }
    if (s[i] && o + 5 < n) {
        memcpy(buf + o, "...", 3);
        o += 3;
    }
    buf[o++] = q;
    buf[o] = '\0';
    return buf;
}

static const char *
quote(const char *s, char *buf, size_t n)
{
    return quote_with(s, '"', buf, n);
}

static int
is_null(const yaml_node_t *n)
{
    if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return 0;
    const char *v = (const char *)n->data.scalar.value;
    return !*v || !strcmp(v, "~") || !strcmp(v, "null") || !strcmp(v, "Null") || !strcmp(v, "NULL");
}

/* Says what a node is, for "expected X, got Y": the quoted value unless it may be a secret. */
static const char *
describe(const struct loader *ld, const yaml_node_t *n, char *buf, size_t len)
{
    if (n->type == YAML_MAPPING_NODE)
        return "a mapping";
    if (n->type == YAML_SEQUENCE_NODE)
        return "a list";
    if (is_null(n))
        return "an empty value";
    if (ld->secret)
        return "a string";
    return quote((const char *)n->data.scalar.value, buf, len);
}

static int
fail_type(struct loader *ld, const yaml_node_t *n, const char *expected)
{
    char buf[128];
    return fail_at(ld, n, "expected %s, got %s", expected, describe(ld, n, buf, sizeof buf));
}

static int
fail_nomem(struct loader *ld)
{
    return fail(ld, "out of memory while loading the configuration");
}

/* The key path. */

/* Appends to the key path (cut short if it would overflow) and returns the length to pop to. */
static size_t
path_append(struct loader *ld, const char *sep, const char *text)
{
    size_t saved = ld->pathlen;
    size_t room = sizeof ld->path - ld->pathlen;
    int n = snprintf(ld->path + ld->pathlen, room, "%s%s", sep, text);
    if (n > 0)
        ld->pathlen += (size_t)n < room ? (size_t)n : room - 1;
    return saved;
}

static size_t
path_push_key(struct loader *ld, const char *key)
{
    return path_append(ld, ld->pathlen ? "." : "", key);
}

static size_t
path_push_index(struct loader *ld, size_t index)
{
    char buf[32];
    snprintf(buf, sizeof buf, "[%zu]", index);
    return path_append(ld, "", buf);
}

static void
path_pop(struct loader *ld, size_t saved)
{
    ld->pathlen = saved;
    ld->path[saved] = '\0';
}

/* Suggestions for unknown keys. */

static int
tolower_ascii(int c)
{
    return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

/*
 * Optimal string alignment distance, case-insensitive: like Levenshtein but a swap of two
 * neighbours ("retyr") counts as one edit, which is the typo people make most.
 */
static size_t
edit_distance(const char *a, const char *b)
{
    enum { MAXLEN = 32 };
    size_t la = strlen(a), lb = strlen(b);
    if (la >= MAXLEN || lb >= MAXLEN)
        return SIZE_MAX;
    size_t d[MAXLEN + 1][MAXLEN + 1];
    for (size_t i = 0; i <= la; i++)
        d[i][0] = i;
    for (size_t j = 0; j <= lb; j++)
        d[0][j] = j;
    for (size_t i = 1; i <= la; i++) {
        for (size_t j = 1; j <= lb; j++) {
            int ca = tolower_ascii(a[i - 1]), cb = tolower_ascii(b[j - 1]);
            size_t best = d[i - 1][j - 1] + (ca != cb);
            if (d[i - 1][j] + 1 < best)
                best = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < best)
                best = d[i][j - 1] + 1;
            if (i > 1 && j > 1 && ca == tolower_ascii(b[j - 2]) && tolower_ascii(a[i - 2]) == cb &&
                d[i - 2][j - 2] + 1 < best)
                best = d[i - 2][j - 2] + 1;
            d[i][j] = best;
        }
    }
    return d[la][lb];
}

/* The known key closest to name, or NULL when none is close enough to be a likely typo. */
static const char *
closest(const char *name, const char *const *known)
{
    const char *best = NULL;
    size_t bestd = SIZE_MAX;
    for (size_t i = 0; known[i]; i++) {
        size_t d = edit_distance(name, known[i]);
        if (d < bestd) {
            bestd = d;
            best = known[i];
        }
    }
    /* One edit per four letters, at most three: "retyr" finds retry, "url" finds nothing. */
    size_t allowed = 1 + (best ? strlen(best) / 4 : 0);
    if (allowed > 3)
        allowed = 3;
    return bestd <= allowed ? best : NULL;
}

static int
fail_unknown(struct loader *ld, const yaml_node_t *key, const char *name, const char *const *known)
{
    char list[256];
    size_t o = 0;
    list[0] = '\0';
    for (size_t i = 0; known[i] && o < sizeof list; i++)
        o += (size_t)snprintf(list + o, sizeof list - o, "%s%s", i ? ", " : "", known[i]);

    const char *hint = closest(name, known);
    if (ld->secret) {
        /* The unknown key may be a token pasted in the wrong place: do not repeat it. */
        if (hint)
            return fail_at(ld, key,
                           "unknown key (not shown: it may be a secret); did you mean '%s'?", hint);
        return fail_at(ld, key, "unknown key (not shown: it may be a secret); expected one of: %s",
                       list);
    }
    char buf[128];
    if (hint)
        return fail_at(ld, key, "unknown key %s; did you mean '%s'?",
                       quote_with(name, '\'', buf, sizeof buf), hint);
    return fail_at(ld, key, "unknown key %s; expected one of: %s",
                   quote_with(name, '\'', buf, sizeof buf), list);
}

/* Nodes and scalars. */

static yaml_node_t *
node_at(const struct loader *ld, yaml_node_item_t index)
{
    return yaml_document_get_node(ld->doc, index);
}

static const char *
scalar(const yaml_node_t *n)
{
    return (const char *)n->data.scalar.value;
}

static size_t
seq_len(const yaml_node_t *n)
{
    return (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
}

static yaml_node_t *
seq_item(const struct loader *ld, const yaml_node_t *n, size_t i)
{
    return node_at(ld, n->data.sequence.items.start[i]);
}

/* Reads a string scalar into *out (borrowed from the document); an empty value reads as "". */
static int
get_string(struct loader *ld, const yaml_node_t *n, const char *expected, const char **out)
{
    if (n->type != YAML_SCALAR_NODE)
        return fail_type(ld, n, expected);
    if (is_null(n)) {
        *out = "";
        return 0;
    }
    /* A double-quoted "\0" would cut the C string short and silently change the value. */
    if (strlen(scalar(n)) != n->data.scalar.length)
        return fail_at(ld, n, "contains a NUL character");
    *out = scalar(n);
    return 0;
}

/* Decimal only: YAML 1.1's 0x10, 0o7, 1_000 and 1e3 are more likely mistakes than intent. */
static int
parse_integer(const char *s, long long *out)
{
    int neg = 0;
    long long v = 0;
    if (*s == '+' || *s == '-')
        neg = *s++ == '-';
    if (!*s)
        return -1;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        int d = *s - '0';
        if (v > (LLONG_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *out = neg ? -v : v;
    return 0;
}

/* Reads an integer from min to max; rule says what is allowed, in words, for the message. */
static int
get_int(struct loader *ld, const yaml_node_t *n, long long min, long long max, const char *rule,
        long long *out)
{
    char buf[128];
    long long v;
    if (n->type != YAML_SCALAR_NODE || is_null(n) || parse_integer(scalar(n), &v) < 0 || v < min ||
        v > max)
        return fail_at(ld, n, "must be %s, got %s", rule, describe(ld, n, buf, sizeof buf));
    *out = v;
    return 0;
}

static int
get_duration(struct loader *ld, const yaml_node_t *n, int *out)
{
    long long v;
    if (get_int(ld, n, 1, MAX_DURATION_MS,
                "a whole number of milliseconds from 1 to 86400000 (a day)", &v) < 0)
        return -1;
    *out = (int)v;
    return 0;
}

/* Replaces *field with a copy of the first len bytes of v; with empty_null, "" stores NULL. */
static int
set_stringn(struct loader *ld, char **field, const char *v, size_t len, int empty_null)
{
    char *copy = NULL;
    if (len || !empty_null) {
        copy = strndup(v, len);
        if (!copy)
            return fail_nomem(ld);
    }
    free(*field);
    *field = copy;
    return 0;
}

static int
set_string(struct loader *ld, char **field, const char *v, int empty_null)
{
    return set_stringn(ld, field, v, strlen(v), empty_null);
}

/* Values. Each check returns why a value is unusable, or NULL; never the value itself. */

static int
is_visible_ascii(const char *v)
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
    if (!is_visible_ascii(v))
        return "may contain only printable ASCII characters, without spaces";
    return NULL;
}

/* An upstream key: a secret that redaction can tell apart from its own mask ('*'), so a
 * masked key pasted from a console ("********") is refused rather than used. */
static const char *
check_key(const char *v)
{
    const char *why = check_secret(v);
    if (why)
        return why;
    if (!v[strspn(v, "*")])
        return "is only '*' characters: that is a masked key, paste the key itself";
    return NULL;
}

static const char *
check_token(const char *v)
{
    const char *why = check_secret(v);
    if (why)
        return why;
    if (strlen(v) < MIN_TOKEN_LEN)
        return "is too short: a client token needs at least 8 characters, or it is easy to guess";
    return NULL;
}

/* Token names and key labels: they appear in logs, headers and metrics. */
static const char *
check_name(const char *v)
{
    if (!*v)
        return "is empty";
    if (strlen(v) > MAX_NAME_LEN)
        return "is longer than 64 characters";
    if (!is_visible_ascii(v))
        return "may contain only printable ASCII characters, without spaces";
    return NULL;
}

static const char *
check_model(const char *v)
{
    if (!*v)
        return "is empty";
    if (strlen(v) > MAX_MODEL_LEN)
        return "is longer than 128 characters";
    if (!is_visible_ascii(v))
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

static const char *
check_base_url(const char *v)
{
    static const char *const schemes[] = {"http://", "https://", NULL};
    if (!has_scheme(v, schemes))
        return "must start with http:// or https:// and name a host";
    if (!is_visible_ascii(v))
        return "may contain only printable ASCII characters, without spaces";
    return NULL;
}

/* Quotes a URL for a message, its credentials (user:password@) starred out. */
static const char *
quote_url(const char *v, char *buf, size_t n)
{
    char shown[256];
    return quote(skiff_url_redact(v, shown, sizeof shown), buf, n);
}

/* Stores base_url without its trailing slashes: callers append "/v1beta/...". */
static int
set_base_url(struct loader *ld, const char *v)
{
    size_t len = strlen(v);
    while (len && v[len - 1] == '/')
        len--;
    return set_stringn(ld, &ld->cfg->base_url, v, len, 0);
}

enum listen_result { LISTEN_OK = 0, LISTEN_BAD = -1, LISTEN_NOMEM = -2 };

/*
 * Splits "host:port" or "[ipv6]:port" into a new host string (without brackets) and a port.
 * Port 0 is allowed: the listener then picks a free port and prints it, which tests rely on.
 * On LISTEN_BAD, *why says what is wrong, in words that read well before ", got \"...\"".
 */
static enum listen_result
parse_listen(const char *s, char **host, uint16_t *port, const char **why)
{
    const char *h, *hend, *colon;
    int bracketed = s[0] == '[';
    *why = "expected host:port";
    if (bracketed) {
        h = s + 1;
        hend = strchr(h, ']');
        if (!hend || hend[1] != ':') {
            *why = "expected [ipv6]:port";
            return LISTEN_BAD;
        }
        colon = hend + 1;
    } else {
        h = s;
        colon = strrchr(s, ':');
        if (!colon)
            return LISTEN_BAD;
        hend = colon;
        if (memchr(s, ':', (size_t)(colon - s))) {
            *why = "expected host:port, with an IPv6 address in brackets as in [::1]:8080";
            return LISTEN_BAD;
        }
    }

    size_t hlen = (size_t)(hend - h);
    long long p;
    if (hlen == 0 || hlen > 253)
        return LISTEN_BAD;
    if (colon[1] < '0' || colon[1] > '9' || parse_integer(colon + 1, &p) < 0)
        return LISTEN_BAD;
    if (p > 65535) {
        *why = "expected host:port with a port from 0 to 65535";
        return LISTEN_BAD;
    }

    char *copy = strndup(h, hlen);
    if (!copy)
        return LISTEN_NOMEM;
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
        return LISTEN_BAD;
    }
    *host = copy;
    *port = (uint16_t)p;
    return LISTEN_OK;
}

static int
online_cores(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1)
        return 1;
    return n > MAX_WORKERS ? MAX_WORKERS : (int)n;
}

/* Freeing. */

static void
free_tokens(struct skiff_config *cfg)
{
    for (size_t i = 0; i < cfg->ntokens; i++) {
        free(cfg->tokens[i].name);
        free(cfg->tokens[i].token);
    }
    free(cfg->tokens);
    cfg->tokens = NULL;
    cfg->ntokens = 0;
}

static void
free_keys(struct skiff_config *cfg)
{
    for (size_t i = 0; i < cfg->nkeys; i++) {
        free(cfg->keys[i].key);
        free(cfg->keys[i].label);
    }
    free(cfg->keys);
    cfg->keys = NULL;
    cfg->nkeys = 0;
}

static void
free_fallbacks(struct skiff_config *cfg)
{
    for (size_t i = 0; i < cfg->nfallbacks; i++) {
        struct skiff_fallback *f = &cfg->fallbacks[i];
        for (size_t j = 0; j < f->nchain; j++)
            free(f->chain[j]);
        free(f->chain);
        free(f->model);
    }
    free(cfg->fallbacks);
    cfg->fallbacks = NULL;
    cfg->nfallbacks = 0;
}

/* Walking mappings. */

static int
lookup(const char *name, const char *const *known)
{
    for (int i = 0; known[i]; i++)
        if (!strcmp(name, known[i]))
            return i;
    return -1;
}

/*
 * Calls fn for each pair of map, in order, with the key's path pushed. known is the
 * NULL-terminated list of allowed keys (anything else is an error with a suggestion), or NULL
 * when the keys are free (model names under fallbacks). An empty value counts as an empty
 * mapping, so "retry:" alone keeps the defaults. A key given twice is an error: YAML parsers
 * disagree on which one wins, so skiff picks neither.
 */
static int
walk_mapping(struct loader *ld, const yaml_node_t *map, const char *const *known, pair_fn *fn,
             void *ctx)
{
    if (is_null(map))
        return 0;
    if (map->type != YAML_MAPPING_NODE)
        return fail_type(ld, map, "a mapping");
    yaml_node_pair_t *start = map->data.mapping.pairs.start;
    yaml_node_pair_t *top = map->data.mapping.pairs.top;
    for (yaml_node_pair_t *p = start; p < top; p++) {
        yaml_node_t *k = node_at(ld, p->key), *v = node_at(ld, p->value);
        char buf[128];
        if (k->type != YAML_SCALAR_NODE || is_null(k))
            return fail_at(ld, k, "expected a key name, got %s", describe(ld, k, buf, sizeof buf));
        const char *name = scalar(k);
        if (strlen(name) != k->data.scalar.length)
            return fail_at(ld, k, "a key name contains a NUL character");
        int which = -1;
        if (known && (which = lookup(name, known)) < 0)
            return fail_unknown(ld, k, name, known);
        for (yaml_node_pair_t *q = start; q < p; q++) {
            yaml_node_t *qk = node_at(ld, q->key);
            if (qk->type == YAML_SCALAR_NODE && !strcmp(scalar(qk), name))
                return fail_at(ld, k, "%s is given twice (first on line %lu)",
                               quote_with(name, '\'', buf, sizeof buf),
                               (unsigned long)qk->start_mark.line + 1);
        }
        struct pair pr = {which, k, v, ctx};
        size_t saved = path_push_key(ld, name);
        int rc = fn(ld, &pr);
        path_pop(ld, saved);
        if (rc < 0)
            return -1;
    }
    return 0;
}

/* listen, workers. */

static int
read_listen(struct loader *ld, const yaml_node_t *n)
{
    const char *v, *why;
    char *host = NULL;
    uint16_t port;
    char buf[128];
    if (get_string(ld, n, "host:port", &v) < 0)
        return -1;
    enum listen_result r = parse_listen(v, &host, &port, &why);
    if (r == LISTEN_NOMEM)
        return fail_nomem(ld);
    if (r == LISTEN_BAD)
        return fail_at(ld, n, "%s, got %s", why, quote(v, buf, sizeof buf));
    free(ld->cfg->listen_host);
    ld->cfg->listen_host = host;
    ld->cfg->listen_port = port;
    ld->listen_from = NULL;
    return 0;
}

static int
read_workers(struct loader *ld, const yaml_node_t *n)
{
    long long v;
    if (n->type == YAML_SCALAR_NODE && !strcmp(scalar(n), "auto")) {
        ld->cfg->workers = online_cores();
        return 0;
    }
    if (get_int(ld, n, 1, MAX_WORKERS, "\"auto\" or an integer from 1 to 256", &v) < 0)
        return -1;
    ld->cfg->workers = (int)v;
    return 0;
}

/* tokens. */

static const char *const token_fields[] = {"name", "token", NULL};

/* The value nodes of a {name, token} or {key, label} item, for messages about the whole list. */
struct item_nodes {
    void *entry;
    yaml_node_t *value[2];
};

static int
token_pair(struct loader *ld, const struct pair *p)
{
    struct item_nodes *in = p->ctx;
    struct skiff_token *t = in->entry;
    const char *v, *why;
    in->value[p->which] = p->value;
    if (get_string(ld, p->value, p->which == 0 ? "a name" : "the token as a string", &v) < 0)
        return -1;
    why = p->which == 0 ? check_name(v) : check_token(v);
    if (why)
        return fail_at(ld, p->value, "%s", why);
    return set_string(ld, p->which == 0 ? &t->name : &t->token, v, 0);
}

/*
 * Fails about one field of a list item: at the field's value, with its name on the path, when
 * the item spelled the field out; otherwise at the item itself.
 */
static int
fail_item(struct loader *ld, const yaml_node_t *item, const yaml_node_t *value, const char *field,
          const char *msg)
{
    if (!value)
        return fail_at(ld, item, "%s", msg);
    size_t saved = path_push_key(ld, field);
    fail_at(ld, value, "%s", msg);
    path_pop(ld, saved);
    return -1;
}

/*
 * Reads tokens[i]: either the token alone (named "token#N") or {name, token}. Called with
 * tokens[0..i-1] already read, so duplicates are caught against those.
 */
static int
read_token(struct loader *ld, const yaml_node_t *item, size_t i)
{
    struct skiff_token *t = &ld->cfg->tokens[i];
    struct item_nodes in = {.entry = t};
    char msg[160];
    const char *v, *why;

    if (item->type == YAML_MAPPING_NODE) {
        if (walk_mapping(ld, item, token_fields, token_pair, &in) < 0)
            return -1;
        if (!t->token)
            return fail_at(ld, item, "has no 'token'");
    } else {
        if (get_string(ld, item, "a token, or a mapping {name, token}", &v) < 0)
            return -1;
        if ((why = check_token(v)))
            return fail_at(ld, item, "%s", why);
        if (set_string(ld, &t->token, v, 0) < 0)
            return -1;
    }
    if (!t->name) {
        snprintf(msg, sizeof msg, "token#%zu", i + 1);
        if (set_string(ld, &t->name, msg, 0) < 0)
            return -1;
    }

    for (size_t j = 0; j < i; j++) {
        const struct skiff_token *o = &ld->cfg->tokens[j];
        if (!strcmp(o->token, t->token)) {
            snprintf(msg, sizeof msg, "the same token as tokens[%zu]", j);
            return fail_item(ld, item, in.value[1], "token", msg);
        }
        if (!strcmp(o->name, t->name)) {
            char buf[96];
            snprintf(msg, sizeof msg, "the name %s is already used by tokens[%zu]",
                     quote_with(t->name, '\'', buf, sizeof buf), j);
            return fail_item(ld, item, in.value[0], "name", msg);
        }
    }
    return 0;
}

/* Reads tokens, replacing the defaults (none). The whole list is secret: no value is quoted. */
static int
read_tokens(struct loader *ld, const yaml_node_t *n)
{
    struct skiff_config *cfg = ld->cfg;
    int rc = 0;
    free_tokens(cfg);
    if (is_null(n))
        return 0;
    ld->secret = 1;
    if (n->type != YAML_SEQUENCE_NODE) {
        rc = fail_type(ld, n, "a list of tokens");
        goto out;
    }
    size_t count = seq_len(n);
    if (count) {
        cfg->tokens = calloc(count, sizeof *cfg->tokens);
        if (!cfg->tokens) {
            rc = fail_nomem(ld);
            goto out;
        }
        cfg->ntokens = count;
    }
    for (size_t i = 0; i < count && rc == 0; i++) {
        size_t saved = path_push_index(ld, i);
        rc = read_token(ld, seq_item(ld, n, i), i);
        path_pop(ld, saved);
    }
out:
    ld->secret = 0;
    return rc;
}

/* upstreams.gemini.keys. */

static const char *const key_fields[] = {"key", "label", NULL};

static int
key_pair(struct loader *ld, const struct pair *p)
{
    struct item_nodes *in = p->ctx;
    struct skiff_key *k = in->entry;
    const char *v, *why;
    in->value[p->which] = p->value;
    if (get_string(ld, p->value, p->which == 0 ? "the key as a string" : "a label", &v) < 0)
        return -1;
    why = p->which == 0 ? check_key(v) : check_name(v);
    if (why)
        return fail_at(ld, p->value, "%s", why);
    return set_string(ld, p->which == 0 ? &k->key : &k->label, v, 0);
}

/*
 * Reads keys[i]: either the key alone (labelled "key#N") or {key, label}. Called with
 * keys[0..i-1] already read, so duplicates are caught against those.
 */
static int
read_key(struct loader *ld, const yaml_node_t *item, size_t i)
{
    struct skiff_key *k = &ld->cfg->keys[i];
    struct item_nodes in = {.entry = k};
    char msg[160];
    const char *v, *why;

    if (item->type == YAML_MAPPING_NODE) {
        if (walk_mapping(ld, item, key_fields, key_pair, &in) < 0)
            return -1;
        if (!k->key)
            return fail_at(ld, item, "has no 'key'");
    } else {
        if (get_string(ld, item, "a key, or a mapping {key, label}", &v) < 0)
            return -1;
        if ((why = check_key(v)))
            return fail_at(ld, item, "%s", why);
        if (set_string(ld, &k->key, v, 0) < 0)
            return -1;
    }
    if (!k->label) {
        snprintf(msg, sizeof msg, "key#%zu", i + 1);
        if (set_string(ld, &k->label, msg, 0) < 0)
            return -1;
    }

    for (size_t j = 0; j < i; j++) {
        const struct skiff_key *o = &ld->cfg->keys[j];
        if (!strcmp(o->key, k->key)) {
            snprintf(msg, sizeof msg, "the same key as keys[%zu]", j);
            return fail_item(ld, item, in.value[0], "key", msg);
        }
        if (!strcmp(o->label, k->label)) {
            char buf[96];
            snprintf(msg, sizeof msg, "the label %s is already used by keys[%zu]",
                     quote_with(k->label, '\'', buf, sizeof buf), j);
            return fail_item(ld, item, in.value[1], "label", msg);
        }
    }
    return 0;
}

/* Reads the key list, replacing the defaults (none). The whole list is secret. */
static int
read_keys(struct loader *ld, const yaml_node_t *n)
{
    struct skiff_config *cfg = ld->cfg;
    int rc = 0;
    free_keys(cfg);
    if (is_null(n))
        return 0;
    ld->secret = 1;
    if (n->type != YAML_SEQUENCE_NODE) {
        rc = fail_type(ld, n, "a list of keys");
        goto out;
    }
    size_t count = seq_len(n);
    if (count) {
        cfg->keys = calloc(count, sizeof *cfg->keys);
        if (!cfg->keys) {
            rc = fail_nomem(ld);
            goto out;
        }
        cfg->nkeys = count;
    }
    for (size_t i = 0; i < count && rc == 0; i++) {
        size_t saved = path_push_index(ld, i);
        rc = read_key(ld, seq_item(ld, n, i), i);
        path_pop(ld, saved);
    }
out:
    ld->secret = 0;
    return rc;
}

/* upstreams. */

/* A list of strings the config owns (forward_headers, cors.origins): freed and emptied. */
static void
free_list(char ***list, size_t *n)
{
    for (size_t i = 0; i < *n; i++)
        free((*list)[i]);
    free(*list);
    *list = NULL;
    *n = 0;
}

/*
 * A YAML sequence of strings into *list and *count_out, each checked by check (NULL when it is
 * fine, else why not, said after the quoted value). list_what and what name the sequence
 * and an item in type errors ("a list of header names", "a header name").
 */
static int
read_list(struct loader *ld, const yaml_node_t *n, const char *list_what, const char *what,
          const char *(*check)(const char *v), char ***list, size_t *count_out)
{
    free_list(list, count_out);
    if (is_null(n))
        return 0;
    if (n->type != YAML_SEQUENCE_NODE)
        return fail_type(ld, n, list_what);
    size_t count = seq_len(n);
    if (count && !(*list = calloc(count, sizeof **list)))
        return fail_nomem(ld);
    for (size_t i = 0; i < count; i++) {
        yaml_node_t *item = seq_item(ld, n, i);
        size_t saved = path_push_index(ld, i);
        const char *v, *why;
        char buf[96];
        int rc = get_string(ld, item, what, &v);
        if (rc == 0 && (why = check(v)))
            rc = fail_at(ld, item, "%s %s", quote(v, buf, sizeof buf), why);
        if (rc == 0) {
            rc = set_string(ld, &(*list)[i], v, 0);
            if (rc == 0)
                *count_out = i + 1;
        }
        path_pop(ld, saved);
        if (rc < 0)
            return -1;
    }
    return 0;
}

static const char *const gemini_fields[] = {"base_url",        "keys", "proxy", "client", "ca_file",
                                            "forward_headers", NULL};

static int
gemini_pair(struct loader *ld, const struct pair *p)
{
    static const char *const proxy_schemes[] = {"http://", "https://", "socks5://", "socks5h://",
                                                NULL};
    const char *v, *why;
    char buf[128];
    switch (p->which) {
    case 0:
        if (get_string(ld, p->value, "a URL", &v) < 0)
            return -1;
        if ((why = check_base_url(v)))
            return fail_at(ld, p->value, "%s, got %s", why, quote_url(v, buf, sizeof buf));
        return set_base_url(ld, v);
    case 1:
        return read_keys(ld, p->value);
    case 3:
        if (get_string(ld, p->value, "auto or curl", &v) < 0)
            return -1;
        if (strcmp(v, "auto") && strcmp(v, "curl"))
            return fail_at(ld, p->value,
                           "must be auto (skiff's own client for http:// and https:// "
                           "upstreams, libcurl through a proxy) or curl (libcurl for every "
                           "upstream), got %s",
                           quote(v, buf, sizeof buf));
        ld->cfg->curl_only = !strcmp(v, "curl");
        return 0;
    case 4:
        if (get_string(ld, p->value, "a file path", &v) < 0)
            return -1;
        /* Checked now, so a wrong path fails the start rather than every https call. */
        if (*v) {
            struct stat st;
            const char *cause = stat(v, &st) != 0      ? strerror(errno)
                                : !S_ISREG(st.st_mode) ? "not a regular file"
                                : access(v, R_OK) != 0 ? strerror(errno)
                                                       : NULL;
            if (cause)
                return fail_at(ld, p->value,
                               "cannot read %s: %s (give the PEM file of CA certificates that "
                               "signed the upstream's TLS certificate, or leave it empty for the "
                               "system store)",
                               quote(v, buf, sizeof buf), cause);
        }
        return set_string(ld, &ld->cfg->ca_file, v, 1);
    case 5:
        return read_list(ld, p->value, "a list of header names", "a header name",
                         skiff_uprequest_unlistable, &ld->cfg->forward_headers,
                         &ld->cfg->nforward_headers);
    default:
        if (get_string(ld, p->value, "a proxy URL", &v) < 0)
            return -1;
        /* Proxy URLs often carry a password, so the value is never quoted back. */
        if (*v && (!has_scheme(v, proxy_schemes) || !is_visible_ascii(v)))
            return fail_at(ld, p->value,
                           "must be empty or a URL starting with http://, https://, socks5:// "
                           "or socks5h://");
        return set_string(ld, &ld->cfg->proxy, v, 1);
    }
}

static const char *const upstream_fields[] = {"gemini", NULL};

static int
upstream_pair(struct loader *ld, const struct pair *p)
{
    return walk_mapping(ld, p->value, gemini_fields, gemini_pair, NULL);
}

/* retry. */

static const char *const retry_fields[] = {"max_attempts",
                                           "base_delay_ms",
                                           "max_delay_ms",
                                           "deadline_ms",
                                           "max_wait_ms",
                                           "connect_timeout_ms",
                                           "first_byte_timeout_ms",
                                           "stream_idle_timeout_ms",
                                           "stream_first_byte_timeout_ms",
                                           "max_stream_ms",
                                           NULL};

/* Where base_delay_ms and max_delay_ms were set, to report a conflict between them; and
 * which first-byte timeouts the file set (first_byte_timeout_ms alone sets both). */
struct retry_nodes {
    yaml_node_t *base, *max;
    int first_byte_set, stream_first_byte_set;
};

static int
retry_pair(struct loader *ld, const struct pair *p)
{
    struct retry_nodes *rn = p->ctx;
    struct skiff_config *cfg = ld->cfg;
    long long v;
    switch (p->which) {
    case 0:
        if (get_int(ld, p->value, 1, MAX_ATTEMPTS, "an integer from 1 to 60", &v) < 0)
            return -1;
        cfg->retry.max_attempts = (int)v;
        return 0;
    case 1:
        rn->base = p->value;
        return get_duration(ld, p->value, &cfg->retry.base_delay_ms);
    case 2:
        rn->max = p->value;
        return get_duration(ld, p->value, &cfg->retry.max_delay_ms);
    case 3:
        return get_duration(ld, p->value, &cfg->retry.deadline_ms);
    case 4:
        return get_duration(ld, p->value, &cfg->retry.max_wait_ms);
    case 5:
        return get_duration(ld, p->value, &cfg->retry.connect_timeout_ms);
    case 6:
        rn->first_byte_set = 1;
        return get_duration(ld, p->value, &cfg->retry.first_byte_timeout_ms);
    case 7:
        return get_duration(ld, p->value, &cfg->retry.stream_idle_timeout_ms);
    case 8:
        rn->stream_first_byte_set = 1;
        return get_duration(ld, p->value, &cfg->retry.stream_first_byte_timeout_ms);
    default:
        if (get_int(ld, p->value, 0, MAX_DURATION_MS,
                    "a whole number of milliseconds from 0 (no limit) to 86400000 (a day)", &v) < 0)
            return -1;
        cfg->retry.max_stream_ms = (int)v;
        return 0;
    }
}

/*
 * Reads retry, then checks that the backoff can grow from base to max. The message goes to
 * whichever of the two the file set (max_delay_ms when both), since that is what to edit.
 */
static int
read_retry(struct loader *ld, const yaml_node_t *n)
{
    struct retry_nodes rn = {NULL, NULL, 0, 0};
    struct skiff_config *cfg = ld->cfg;
    if (walk_mapping(ld, n, retry_fields, retry_pair, &rn) < 0)
        return -1;
    if (rn.first_byte_set && !rn.stream_first_byte_set)
        cfg->retry.stream_first_byte_timeout_ms = cfg->retry.first_byte_timeout_ms;
    if (cfg->retry.max_delay_ms >= cfg->retry.base_delay_ms)
        return 0;
    if (rn.max) {
        size_t saved = path_push_key(ld, "max_delay_ms");
        fail_at(ld, rn.max, "must be at least base_delay_ms (%d), got %d", cfg->retry.base_delay_ms,
                cfg->retry.max_delay_ms);
        path_pop(ld, saved);
    } else {
        size_t saved = path_push_key(ld, "base_delay_ms");
        fail_at(ld, rn.base, "must not exceed max_delay_ms (%d), got %d", cfg->retry.max_delay_ms,
                cfg->retry.base_delay_ms);
        path_pop(ld, saved);
    }
    return -1;
}

/* fallbacks. */

/*
 * Reads one "MODEL: [MODEL, ...]" entry into the next free slot. The slots were allocated for
 * every pair beforehand, and nfallbacks counts the slots filled so far.
 */
static int
fallback_pair(struct loader *ld, const struct pair *p)
{
    struct skiff_config *cfg = ld->cfg;
    struct skiff_fallback *f = &cfg->fallbacks[cfg->nfallbacks++];
    const char *model = scalar(p->key), *why, *v;
    char buf[96];

    if ((why = check_model(model)))
        return fail_at(ld, p->key, "the model name %s", why);
    if (p->value->type != YAML_SEQUENCE_NODE)
        return fail_type(ld, p->value, "a list of models to try after this one");
    size_t count = seq_len(p->value);
    if (count == 0)
        return fail_at(ld, p->value, "is empty: list the models to try, or remove the entry");
    if (set_string(ld, &f->model, model, 0) < 0)
        return -1;
    f->chain = calloc(count, sizeof *f->chain);
    if (!f->chain)
        return fail_nomem(ld);
    f->nchain = count;

    for (size_t i = 0; i < count; i++) {
        yaml_node_t *item = seq_item(ld, p->value, i);
        size_t saved = path_push_index(ld, i);
        int rc = get_string(ld, item, "a model name", &v);
        if (rc == 0 && (why = check_model(v)))
            rc = fail_at(ld, item, "%s", why);
        if (rc == 0 && !strcmp(v, model))
            rc = fail_at(ld, item, "falls back to %s itself",
                         quote_with(model, '\'', buf, sizeof buf));
        for (size_t j = 0; rc == 0 && j < i; j++)
            if (!strcmp(f->chain[j], v))
                rc = fail_at(ld, item, "%s is listed twice (also at [%zu])",
                             quote_with(v, '\'', buf, sizeof buf), j);
        if (rc == 0)
            rc = set_string(ld, &f->chain[i], v, 0);
        path_pop(ld, saved);
        if (rc < 0)
            return -1;
    }
    return 0;
}

/* Reads fallbacks, replacing the default chain; "fallbacks: {}" turns fallback off. */
static int
read_fallbacks(struct loader *ld, const yaml_node_t *n)
{
    struct skiff_config *cfg = ld->cfg;
    free_fallbacks(cfg);
    if (n->type == YAML_MAPPING_NODE) {
        size_t count = (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
        if (count && !(cfg->fallbacks = calloc(count, sizeof *cfg->fallbacks)))
            return fail_nomem(ld);
    }
    return walk_mapping(ld, n, NULL, fallback_pair, NULL);
}

/* limits, storage. */

static const char *const limit_fields[] = {
    "max_body_bytes",  "header_timeout_ms", "idle_timeout_ms",    "max_connections",
    "body_timeout_ms", "send_timeout_ms",   "max_buffered_bytes", NULL};

static int
limit_pair(struct loader *ld, const struct pair *p)
{
    struct skiff_config *cfg = ld->cfg;
    long long v;
    switch (p->which) {
    case 0:
        if (get_int(ld, p->value, MIN_BODY_BYTES, MAX_BODY_BYTES,
                    "a number of bytes from 1024 to 1073741824 (1 GiB)", &v) < 0)
            return -1;
        cfg->limits.max_body_bytes = (size_t)v;
        return 0;
    case 1:
        return get_duration(ld, p->value, &cfg->limits.header_timeout_ms);
    case 2:
        return get_duration(ld, p->value, &cfg->limits.idle_timeout_ms);
    case 3:
        if (get_int(ld, p->value, 1, MAX_CONNECTIONS, "an integer from 1 to 1000000", &v) < 0)
            return -1;
        cfg->limits.max_connections = (int)v;
        return 0;
    case 4:
        return get_duration(ld, p->value, &cfg->limits.body_timeout_ms);
    case 5:
        return get_duration(ld, p->value, &cfg->limits.send_timeout_ms);
    default:
        if (get_int(ld, p->value, MIN_BUFFERED_BYTES, MAX_BUFFERED_BYTES,
                    "a number of bytes from 1048576 (1 MiB) to 68719476736 (64 GiB)", &v) < 0)
            return -1;
        cfg->limits.max_buffered_bytes = (size_t)v;
        return 0;
    }
}

static const char *const storage_fields[] = {"sqlite", "redis", NULL};

static int
storage_pair(struct loader *ld, const struct pair *p)
{
    static const char *const redis_schemes[] = {"redis://", "rediss://", "unix://", NULL};
    const char *v;
    if (p->which == 0) {
        if (get_string(ld, p->value, "a file path", &v) < 0)
            return -1;
        return set_string(ld, &ld->cfg->storage.sqlite, v, 1);
    }
    if (get_string(ld, p->value, "a Redis URL", &v) < 0)
        return -1;
    /* Redis URLs may carry a password, so the value is never quoted back. */
    if (*v && (!has_scheme(v, redis_schemes) || !is_visible_ascii(v)))
        return fail_at(ld, p->value,
                       "must be empty or a URL starting with redis://, rediss:// or unix://");
    return set_string(ld, &ld->cfg->storage.redis, v, 1);
}

/* validation, quality, thinking. */

/* Reads on/off (also true/false, yes/no): YAML 1.1 reads these as booleans, libyaml leaves
 * them as words, and people write all three. */
static int
get_switch(struct loader *ld, const yaml_node_t *n, int *out)
{
    static const char *const on[] = {"on", "true", "yes", NULL};
    static const char *const off[] = {"off", "false", "no", NULL};
    char buf[128];
    if (n->type == YAML_SCALAR_NODE && !is_null(n)) {
        for (size_t i = 0; on[i]; i++) {
            if (!strcasecmp(scalar(n), on[i])) {
                *out = 1;
                return 0;
            }
            if (!strcasecmp(scalar(n), off[i])) {
                *out = 0;
                return 0;
            }
        }
    }
    return fail_at(ld, n, "must be on or off, got %s", describe(ld, n, buf, sizeof buf));
}

static const char *const quality_fields[] = {"retry_recitation", "repetition_guard", NULL};

static int
quality_pair(struct loader *ld, const struct pair *p)
{
    if (p->which == 0)
        return get_switch(ld, p->value, &ld->cfg->quality.retry_recitation);
    return get_switch(ld, p->value, &ld->cfg->quality.repetition_guard);
}

/* Reads one "MODEL: N" into the next thinking slot; ctx is the token name or NULL. */
static int
budget_pair(struct loader *ld, const struct pair *p)
{
    struct skiff_config *cfg = ld->cfg;
    const char *model = scalar(p->key), *why;
    long long v;
    if (strcmp(model, "*") != 0 && (why = check_model(model)))
        return fail_at(ld, p->key, "the model name %s", why);
    if (get_int(ld, p->value, -1, 65536,
                "a thinking budget: -1 (dynamic), 0 (off) or a number of tokens up to 65536",
                &v) < 0)
        return -1;
    struct skiff_thinking_default *d = realloc(cfg->thinking, (cfg->nthinking + 1) * sizeof *d);
    if (!d)
        return fail_nomem(ld);
    cfg->thinking = d;
    d = &cfg->thinking[cfg->nthinking++];
    memset(d, 0, sizeof *d);
    d->budget = (int)v;
    if (set_string(ld, &d->model, model, 0) < 0)
        return -1;
    if (p->ctx && set_string(ld, &d->token, p->ctx, 0) < 0)
        return -1;
    return 0;
}

static int
thinking_token_pair(struct loader *ld, const struct pair *p)
{
    const char *name = scalar(p->key), *why;
    if ((why = check_name(name)))
        return fail_at(ld, p->key, "the token name %s", why);
    return walk_mapping(ld, p->value, NULL, budget_pair, (void *)name);
}

static const char *const thinking_fields[] = {"default_budget", "tokens", "include_thoughts", NULL};

static int
thinking_pair(struct loader *ld, const struct pair *p)
{
    if (p->which == 0)
        return walk_mapping(ld, p->value, NULL, budget_pair, NULL);
    if (p->which == 2)
        return get_switch(ld, p->value, &ld->cfg->include_thoughts);
    return walk_mapping(ld, p->value, NULL, thinking_token_pair, NULL);
}

static void
free_thinking(struct skiff_config *cfg)
{
    for (size_t i = 0; i < cfg->nthinking; i++) {
        free(cfg->thinking[i].token);
        free(cfg->thinking[i].model);
    }
    free(cfg->thinking);
    cfg->thinking = NULL;
    cfg->nthinking = 0;
}

/* catalog. */

static const char *const catalog_fields[] = {"refresh_s", NULL};

static int
catalog_pair(struct loader *ld, const struct pair *p)
{
    long long v;
    if (get_int(ld, p->value, 0, 86400, "seconds from 0 (never) to 86400", &v) < 0)
        return -1;
    ld->cfg->catalog_refresh_s = (int)v;
    return 0;
}

/* shutdown. */

static const char *const shutdown_fields[] = {"drain_timeout_ms", NULL};

static int
shutdown_pair(struct loader *ld, const struct pair *p)
{
    long long v;
    if (get_int(ld, p->value, 0, MAX_DURATION_MS,
                "a whole number of milliseconds from 0 (stop at once) to 86400000 (a day)", &v) < 0)
        return -1;
    ld->cfg->shutdown.drain_timeout_ms = (int)v;
    return 0;
}

/* cors. */

/* Why v is not an origin as a browser sends it (scheme://host[:port], nothing after), or
 * NULL when it is one. */
static const char *
check_origin(const char *v)
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

static const char *const cors_fields[] = {"origins", NULL};

static int
cors_pair(struct loader *ld, const struct pair *p)
{
    return read_list(ld, p->value, "a list of origins such as https://app.example", "an origin",
                     check_origin, &ld->cfg->cors_origins, &ld->cfg->ncors_origins);
}

/* models, media, sigcache: what the translating doors (OpenAI, Anthropic) read. */

static void
free_models(struct skiff_config *cfg)
{
    for (size_t i = 0; i < cfg->n_models; i++) {
        free((char *)cfg->models[i].pattern);
        free((char *)cfg->models[i].target);
    }
    free(cfg->models);
    cfg->models = NULL;
    cfg->n_models = 0;
}

/* A client model name or glob: it is matched, never sent upstream, so any printable name. */
static const char *
check_pattern(const char *v)
{
    if (!*v)
        return "is empty";
    if (strlen(v) > MAX_MODEL_LEN)
        return "is longer than 128 characters";
    if (!is_visible_ascii(v))
        return "may contain only printable ASCII characters, without spaces";
    /* skiff_models_resolve answers a Gemini name as itself before it reads the map. */
    if (!strncmp(v, "gemini-", 7) || !strncmp(v, "models/", 7))
        return "is a Gemini model name, which always maps to itself: this entry would never "
               "apply (map client names such as gpt-4o or \"claude-*\")";
    return NULL;
}

/* Reads one "CLIENT_MODEL: GEMINI_MODEL" into the next slot, allocated beforehand. */
static int
model_pair(struct loader *ld, const struct pair *p)
{
    struct skiff_config *cfg = ld->cfg;
    const char *pattern = scalar(p->key), *why, *v;
    char buf[96];
    if ((why = check_pattern(pattern)))
        return fail_at(ld, p->key, "the client model name %s %s",
                       quote_with(pattern, '\'', buf, sizeof buf), why);
    if (get_string(ld, p->value, "a Gemini model name", &v) < 0)
        return -1;
    if ((why = check_model(v)))
        return fail_at(ld, p->value, "%s %s", quote(v, buf, sizeof buf), why);
    struct skiff_model_alias *a = &cfg->models[cfg->n_models];
    char *pat = strdup(pattern), *target = strdup(v);
    if (!pat || !target) {
        free(pat);
        free(target);
        return fail_nomem(ld);
    }
    a->pattern = pat;
    a->target = target;
    cfg->n_models++;
    return 0;
}

/* Reads models, in file order (the doors pick exact names first, then the most specific glob). */
static int
read_models(struct loader *ld, const yaml_node_t *n)
{
    struct skiff_config *cfg = ld->cfg;
    free_models(cfg);
    if (n->type == YAML_MAPPING_NODE) {
        size_t count = (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
        if (count && !(cfg->models = calloc(count, sizeof *cfg->models)))
            return fail_nomem(ld);
    }
    return walk_mapping(ld, n, NULL, model_pair, NULL);
}

static const char *const media_fields[] = {"fetch_urls", "max_bytes", "timeout_ms", "allow_private",
                                           NULL};

static int
media_pair(struct loader *ld, const struct pair *p)
{
    struct skiff_config *cfg = ld->cfg;
    long long v;
    switch (p->which) {
    case 0:
        return get_switch(ld, p->value, &cfg->media.fetch_urls);
    case 1:
        if (get_int(ld, p->value, MIN_BODY_BYTES, MAX_BODY_BYTES,
                    "a number of bytes from 1024 to 1073741824 (1 GiB)", &v) < 0)
            return -1;
        cfg->media.max_bytes = (size_t)v;
        return 0;
    case 2:
        return get_duration(ld, p->value, &cfg->media.timeout_ms);
    default:
        return get_switch(ld, p->value, &cfg->media.allow_private);
    }
}

static const char *const sigcache_fields[] = {"max_entries", NULL};

static int
sigcache_pair(struct loader *ld, const struct pair *p)
{
    long long v;
    if (get_int(ld, p->value, 1, MAX_SIGCACHE_ENTRIES,
                "a number of thought signatures from 1 to 100000000", &v) < 0)
        return -1;
    ld->cfg->sigcache.max_entries = (size_t)v;
    return 0;
}

/* The top level. */

static const char *const root_fields[] = {
    "listen",   "workers", "tokens",     "upstreams", "retry",    "fallbacks",
    "limits",   "storage", "validation", "quality",   "thinking", "catalog",
    "shutdown", "cors",    "models",     "media",     "sigcache", NULL};

static int
root_pair(struct loader *ld, const struct pair *p)
{
    switch (p->which) {
    case 0:
        return read_listen(ld, p->value);
    case 1:
        return read_workers(ld, p->value);
    case 2:
        return read_tokens(ld, p->value);
    case 3:
        return walk_mapping(ld, p->value, upstream_fields, upstream_pair, NULL);
    case 4:
        return read_retry(ld, p->value);
    case 5:
        return read_fallbacks(ld, p->value);
    case 6:
        return walk_mapping(ld, p->value, limit_fields, limit_pair, NULL);
    case 7:
        return walk_mapping(ld, p->value, storage_fields, storage_pair, NULL);
    case 8:
        return get_switch(ld, p->value, &ld->cfg->validation);
    case 9:
        return walk_mapping(ld, p->value, quality_fields, quality_pair, NULL);
    case 10:
        free_thinking(ld->cfg);
        return walk_mapping(ld, p->value, thinking_fields, thinking_pair, NULL);
    case 11:
        return walk_mapping(ld, p->value, catalog_fields, catalog_pair, NULL);
    case 12:
        return walk_mapping(ld, p->value, shutdown_fields, shutdown_pair, NULL);
    case 13:
        return walk_mapping(ld, p->value, cors_fields, cors_pair, NULL);
    case 14:
        return read_models(ld, p->value);
    case 15:
        return walk_mapping(ld, p->value, media_fields, media_pair, NULL);
    default:
        return walk_mapping(ld, p->value, sigcache_fields, sigcache_pair, NULL);
    }
}

/* The line holding byte offset of f, counted from 1, for errors that know only the offset. */
static unsigned long
line_of_offset(FILE *f, size_t offset)
{
    unsigned long line = 1;
    int c;
    if (fseek(f, 0, SEEK_SET) != 0)
        return 1;
    for (size_t i = 0; i < offset && (c = getc(f)) != EOF; i++)
        line += c == '\n';
    return line;
}

/* Reports a libyaml failure at the line where it found the problem. */
static int
fail_yaml(struct loader *ld, const yaml_parser_t *parser, FILE *f)
{
    const char *problem = parser->problem ? parser->problem : "unreadable input";
    switch (parser->error) {
    case YAML_MEMORY_ERROR:
        return fail_nomem(ld);
    case YAML_READER_ERROR:
        /* The reader (bad UTF-8, a failed read) knows a byte offset rather than a mark. */
        return fail_line(ld, line_of_offset(f, parser->problem_offset),
                         "cannot read: %s (at byte %zu)", problem, parser->problem_offset);
    default:
        if (parser->context)
            return fail_line(ld, (unsigned long)parser->problem_mark.line + 1,
                             "YAML syntax error: %s (%s on line %lu)", problem, parser->context,
                             (unsigned long)parser->context_mark.line + 1);
        return fail_line(ld, (unsigned long)parser->problem_mark.line + 1, "YAML syntax error: %s",
                         problem);
    }
}

/* Walks the document; a second document in the same file is an error, not silently ignored. */
static int
read_document(struct loader *ld, yaml_parser_t *parser, FILE *f)
{
    yaml_node_t *root = yaml_document_get_root_node(ld->doc);
    if (root) {
        if (root->type != YAML_MAPPING_NODE && !is_null(root))
            return fail_type(ld, root, "a mapping of settings (listen, tokens, upstreams, ...)");
        if (walk_mapping(ld, root, root_fields, root_pair, NULL) < 0)
            return -1;
    }

    yaml_document_t next;
    if (!yaml_parser_load(parser, &next))
        return fail_yaml(ld, parser, f);
    int more = yaml_document_get_root_node(&next) != NULL;
    unsigned long line = (unsigned long)next.start_mark.line + 1;
    yaml_document_delete(&next);
    if (more)
        return fail_line(ld, line, "a second YAML document; skiff reads one");
    return 0;
}

static int
load_file(struct loader *ld, const char *path)
{
    yaml_parser_t parser;
    yaml_document_t doc;
    struct stat st;
    int rc = -1;

    FILE *f = fopen(path, "rb");
    if (!f)
        return fail(ld, "%s: cannot open: %s", path, strerror(errno));
    if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
        fail(ld, "%s: cannot read: it is a directory", path);
        goto out_close;
    }
    if (!yaml_parser_initialize(&parser)) {
        fail_nomem(ld);
        goto out_close;
    }
    yaml_parser_set_input_file(&parser, f);
    /* On failure yaml_parser_load has already deleted the half-built document. */
    if (!yaml_parser_load(&parser, &doc)) {
        fail_yaml(ld, &parser, f);
        goto out_parser;
    }
    ld->doc = &doc;
    rc = read_document(ld, &parser, f);
    ld->doc = NULL;
    yaml_document_delete(&doc);
out_parser:
    yaml_parser_delete(&parser);
out_close:
    fclose(f);
    return rc;
}

/* The environment. */

/* A variable's value, or NULL when it is unset or blank (as `VAR=` in a compose file leaves it). */
static const char *
env_value(const char *name)
{
    const char *v = getenv(name);
    if (!v)
        return NULL;
    for (const char *p = v; *p; p++)
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r')
            return v;
    return NULL;
}

static int
is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/*
 * Steps through a comma list: sets *item and *len to the next item with surrounding blanks
 * trimmed (possibly empty) and returns 1, or returns 0 at the end.
 */
static int
next_item(const char **cursor, const char **item, size_t *len)
{
    const char *s = *cursor, *end;
    if (!s)
        return 0;
    end = strchr(s, ',');
    *cursor = end ? end + 1 : NULL;
    if (!end)
        end = s + strlen(s);
    while (s < end && is_blank(*s))
        s++;
    while (end > s && is_blank(end[-1]))
        end--;
    *item = s;
    *len = (size_t)(end - s);
    return 1;
}

static size_t
count_items(const char *list)
{
    const char *item;
    size_t len, n = 0;
    while (next_item(&list, &item, &len))
        n += len > 0;
    return n;
}

/* GEMINI_API_KEYS replaces the file's keys; they are labelled key#N by position. */
static int
env_keys(struct loader *ld)
{
    static const char var[] = "GEMINI_API_KEYS";
    struct skiff_config *cfg = ld->cfg;
    const char *list = env_value(var), *item, *why;
    size_t len, n = 0;
    char label[32];

    if (!list || !count_items(list))
        return 0;
    free_keys(cfg);
    cfg->keys = calloc(count_items(list), sizeof *cfg->keys);
    if (!cfg->keys)
        return fail_nomem(ld);
    cfg->nkeys = count_items(list);
    while (next_item(&list, &item, &len)) {
        if (!len)
            continue;
        struct skiff_key *k = &cfg->keys[n++];
        if (set_stringn(ld, &k->key, item, len, 0) < 0)
            return -1;
        if ((why = check_key(k->key)))
            return fail(ld, "%s: item %zu: the key %s", var, n, why);
        for (size_t j = 0; j + 1 < n; j++)
            if (!strcmp(cfg->keys[j].key, k->key))
                return fail(ld, "%s: item %zu: the same key as item %zu", var, n, j + 1);
        snprintf(label, sizeof label, "key#%zu", n);
        if (set_string(ld, &k->label, label, 0) < 0)
            return -1;
    }
    return 0;
}

/* SKIFF_TOKENS replaces the file's tokens; an item is "token" (named token#N) or "name:token". */
static int
env_tokens(struct loader *ld)
{
    static const char var[] = "SKIFF_TOKENS";
    struct skiff_config *cfg = ld->cfg;
    const char *list = env_value(var), *item, *why;
    size_t len, n = 0;
    char name[32];

    if (!list || !count_items(list))
        return 0;
    free_tokens(cfg);
    cfg->tokens = calloc(count_items(list), sizeof *cfg->tokens);
    if (!cfg->tokens)
        return fail_nomem(ld);
    cfg->ntokens = count_items(list);
    while (next_item(&list, &item, &len)) {
        if (!len)
            continue;
        struct skiff_token *t = &cfg->tokens[n++];
        const char *colon = memchr(item, ':', len);
        if (colon) {
            const char *nend = colon, *tok = colon + 1;
            while (nend > item && is_blank(nend[-1]))
                nend--;
            while (tok < item + len && is_blank(*tok))
                tok++;
            if (set_stringn(ld, &t->name, item, (size_t)(nend - item), 0) < 0 ||
                set_stringn(ld, &t->token, tok, (size_t)(item + len - tok), 0) < 0)
                return -1;
            if ((why = check_name(t->name)))
                return fail(ld, "%s: item %zu: the name before ':' %s", var, n, why);
        } else {
            snprintf(name, sizeof name, "token#%zu", n);
            if (set_string(ld, &t->name, name, 0) < 0 ||
                set_stringn(ld, &t->token, item, len, 0) < 0)
                return -1;
        }
        if ((why = check_token(t->token)))
            return fail(ld, "%s: item %zu: the token %s", var, n, why);
        for (size_t j = 0; j + 1 < n; j++) {
            if (!strcmp(cfg->tokens[j].token, t->token))
                return fail(ld, "%s: item %zu: the same token as item %zu", var, n, j + 1);
            if (!strcmp(cfg->tokens[j].name, t->name))
                return fail(ld, "%s: item %zu: the same name as item %zu", var, n, j + 1);
        }
    }
    return 0;
}

static int
env_listen(struct loader *ld)
{
    static const char var[] = "SKIFF_LISTEN";
    const char *v = env_value(var), *why;
    char *host = NULL;
    uint16_t port;
    char buf[128];
    if (!v)
        return 0;
    enum listen_result r = parse_listen(v, &host, &port, &why);
    if (r == LISTEN_NOMEM)
        return fail_nomem(ld);
    if (r == LISTEN_BAD)
        return fail(ld, "%s: %s, got %s", var, why, quote(v, buf, sizeof buf));
    free(ld->cfg->listen_host);
    ld->cfg->listen_host = host;
    ld->cfg->listen_port = port;
    ld->listen_from = var;
    return 0;
}

static int
env_base_url(struct loader *ld)
{
    static const char var[] = "SKIFF_GEMINI_BASE_URL";
    const char *v = env_value(var), *why;
    char buf[128];
    if (!v)
        return 0;
    if ((why = check_base_url(v)))
        return fail(ld, "%s: %s, got %s", var, why, quote_url(v, buf, sizeof buf));
    return set_base_url(ld, v);
}

/* Defaults and the final check. */

static int
set_defaults(struct loader *ld)
{
    struct skiff_config *cfg = ld->cfg;
    cfg->listen_port = DEFAULT_LISTEN_PORT;
    cfg->workers = online_cores();
    cfg->retry.max_attempts = 8;
    cfg->retry.base_delay_ms = 250;
    cfg->retry.max_delay_ms = 8000;
    cfg->retry.deadline_ms = 120000;
    cfg->retry.max_wait_ms = 10000;
    cfg->retry.connect_timeout_ms = 10000;
    /* A thinking model may work for minutes before a non-stream answer's first byte; a
     * stream sends its headers at once. */
    cfg->retry.first_byte_timeout_ms = 600000;
    cfg->retry.stream_first_byte_timeout_ms = 60000;
    cfg->retry.stream_idle_timeout_ms = 30000;
    cfg->retry.max_stream_ms = 0;
    cfg->shutdown.drain_timeout_ms = 30000;
    cfg->limits.max_body_bytes = 20971520;
    cfg->limits.header_timeout_ms = 10000;
    cfg->limits.idle_timeout_ms = 60000;
    cfg->limits.max_connections = 10000;
    cfg->limits.body_timeout_ms = 60000;
    cfg->limits.send_timeout_ms = 60000;
    cfg->limits.max_buffered_bytes = 268435456;
    cfg->validation = 1;
    cfg->catalog_refresh_s = 600;
    cfg->media.fetch_urls = 1;
    cfg->media.max_bytes = (size_t)DEFAULT_MEDIA_BYTES;
    cfg->media.timeout_ms = 10000;
    cfg->sigcache.max_entries = 100000;

    /* The default fallback is the one Google's troubleshooting guide suggests for overload. */
    cfg->fallbacks = calloc(1, sizeof *cfg->fallbacks);
    if (!cfg->fallbacks)
        return fail_nomem(ld);
    cfg->nfallbacks = 1;
    cfg->fallbacks[0].chain = calloc(1, sizeof *cfg->fallbacks[0].chain);
    if (!cfg->fallbacks[0].chain)
        return fail_nomem(ld);
    cfg->fallbacks[0].nchain = 1;

    if (set_string(ld, &cfg->listen_host, DEFAULT_LISTEN_HOST, 0) < 0 ||
        set_string(ld, &cfg->base_url, DEFAULT_BASE_URL, 0) < 0 ||
        set_string(ld, &cfg->storage.sqlite, DEFAULT_SQLITE, 1) < 0 ||
        set_string(ld, &cfg->fallbacks[0].model, "gemini-2.5-pro", 0) < 0 ||
        set_string(ld, &cfg->fallbacks[0].chain[0], "gemini-2.5-flash", 0) < 0)
        return -1;
    return 0;
}

/* Without tokens anyone who can reach the port spends the keys, so that is loopback only. */
static int
check_open(struct loader *ld)
{
    const struct skiff_config *cfg = ld->cfg;
    if (cfg->ntokens || skiff_config_is_loopback(cfg->listen_host))
        return 0;
    int v6 = strchr(cfg->listen_host, ':') != NULL;
    return fail(ld,
                "listen %s%s%s:%u%s%s%s is not a loopback address and no tokens are configured: "
                "skiff refuses to run open on the network. Add tokens (config `tokens:` or "
                "SKIFF_TOKENS) or listen on 127.0.0.1",
                v6 ? "[" : "", cfg->listen_host, v6 ? "]" : "", (unsigned)cfg->listen_port,
                ld->listen_from ? " (from " : "", ld->listen_from ? ld->listen_from : "",
                ld->listen_from ? ")" : "");
}

/*
 * Without tokens a page on a listed origin would spend the keys with no token at all, so in
 * open mode cors.origins may list only loopback origins (a dev server on localhost), which
 * open mode's Origin rule lets through anyway; "*" and other origins need tokens.
 */
static int
check_cors(struct loader *ld)
{
    const struct skiff_config *cfg = ld->cfg;
    if (cfg->ntokens)
        return 0;
    for (size_t i = 0; i < cfg->ncors_origins; i++) {
        const char *o = cfg->cors_origins[i];
        const char *h = strchr(o, '/');
        char host[256];
        int loop = 0;
        if (h && h[1] == '/') {
            h += 2;
            size_t n = strlen(h);
            const char *colon = strrchr(h, ':');
            if (colon && (h[0] != '[' || colon > strchr(h, ']')))
                n = (size_t)(colon - h);
            if (n >= 2 && h[0] == '[' && h[n - 1] == ']') {
                h++;
                n -= 2;
            }
            if (n < sizeof host) {
                memcpy(host, h, n);
                host[n] = '\0';
                loop = skiff_config_is_loopback(host);
            }
        }
        if (!loop)
            return fail(ld,
                        "cors.origins: \"%s\" is not a loopback origin and no tokens are "
                        "configured: without tokens any page on it would spend the keys. Add "
                        "tokens (config `tokens:` or SKIFF_TOKENS), or list only loopback "
                        "origins such as http://localhost:5173",
                        o);
    }
    return 0;
}

/* The public interface. */

struct skiff_config *
skiff_config_load(const char *path, char *err, size_t errlen)
{
    struct loader ld = {.file = path, .err = err, .errlen = errlen};
    if (err && errlen)
        err[0] = '\0';
    ld.cfg = calloc(1, sizeof *ld.cfg);
    if (!ld.cfg) {
        fail_nomem(&ld);
        return NULL;
    }
    if (set_defaults(&ld) < 0)
        goto out_free;
    if (path && (set_string(&ld, &ld.cfg->path, path, 0) < 0 || load_file(&ld, path) < 0))
        goto out_free;
    if (env_keys(&ld) < 0 || env_tokens(&ld) < 0 || env_listen(&ld) < 0 || env_base_url(&ld) < 0)
        goto out_free;
    if (check_open(&ld) < 0 || check_cors(&ld) < 0)
        goto out_free;
    return ld.cfg;

out_free:
    skiff_config_free(ld.cfg);
    return NULL;
}

void
skiff_config_free(struct skiff_config *cfg)
{
    if (!cfg)
        return;
    free(cfg->path);
    free(cfg->listen_host);
    free_tokens(cfg);
    free(cfg->base_url);
    free_keys(cfg);
    free(cfg->proxy);
    free(cfg->ca_file);
    free_list(&cfg->forward_headers, &cfg->nforward_headers);
    free_fallbacks(cfg);
    free(cfg->storage.sqlite);
    free(cfg->storage.redis);
    free_thinking(cfg);
    free_list(&cfg->cors_origins, &cfg->ncors_origins);
    free_models(cfg);
    free(cfg);
}

int
skiff_config_is_loopback(const char *host)
{
    char buf[INET6_ADDRSTRLEN + 1];
    struct in_addr a4;
    struct in6_addr a6;
    if (!host)
        return 0;
    /* Accept "[::1]" as well as "::1": callers may pass either spelling. */
    size_t len = strlen(host);
    if (len >= 2 && host[0] == '[' && host[len - 1] == ']') {
        if (len - 2 >= sizeof buf)
            return 0;
        memcpy(buf, host + 1, len - 2);
        buf[len - 2] = '\0';
        host = buf;
    }
    if (!strcasecmp(host, "localhost") || !strcasecmp(host, "localhost."))
        return 1;
    if (inet_pton(AF_INET, host, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, host, &a6) == 1)
        return IN6_IS_ADDR_LOOPBACK(&a6) || (IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127);
    return 0;
}

int
skiff_config_arg(int argc, char **argv, int *i, const char **path)
{
    if (strcmp(argv[*i], "--config") == 0 && *i + 1 < argc) {
        *path = argv[++*i];
        return 1;
    }
    if (strncmp(argv[*i], "--config=", 9) == 0) {
        *path = argv[*i] + 9;
        return 1;
    }
    return 0;
}
