/*
 * Client-named media → MIME type + base64 (doors/media.h). A fetch is a small state machine
 * on the worker's loop: one upstream call at a time (the first, then one per redirect), a
 * deadline timer for the whole fetch, and a step timer that reports refusals known at start
 * and starts the call after a redirect from the loop, never from inside a callback of the
 * call that ended. The fetch is freed in the close callbacks of both timers.
 */
#include "doors/media.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "base/buf.h"
#include "base/err.h"
#include "relay/upstream.h"

#define MAX_REDIRECTS 5
#define MAX_URL 8192

struct skiff_media {
    uv_loop_t *loop;
    struct skiff_upstream *u;
    struct skiff_media_rules rules;
    skiff_media_cb *cb;
    void *data;
    uv_timer_t deadline, step;
    int closing, nclosed, cancelled, reported;
    struct skiff_upcall *call;
    char *url;      /* the URL of the current hop (owned) */
    char *location; /* a redirect's target, to start next (owned) */
    int redirects;
    int http_status;
    char mime[128];
    struct skiff_buf body;
    int too_big;
    char refused[INET6_ADDRSTRLEN + 32]; /* the address refused and its kind, or "" */
    char host[256];
    char error[600]; /* a refusal known before the call, reported by step */
};

static void start_call(struct skiff_media *m);
static void next_hop(uv_timer_t *t);

/* ---- addresses ------------------------------------------------------------------------- */

static const char *
v4_kind(uint32_t a)
{
    uint8_t b0 = a >> 24, b1 = (a >> 16) & 0xff, b2 = (a >> 8) & 0xff;
    if (b0 == 0)
        return "unspecified";
    if (b0 == 127)
        return "loopback";
    if (b0 == 10 || (b0 == 172 && (b1 & 0xf0) == 16) || (b0 == 192 && b1 == 168))
        return "private";
    if (b0 == 169 && b1 == 254)
        return "link-local";
    if (b0 == 100 && (b1 & 0xc0) == 64)
        return "shared (CGNAT)";
    if ((b0 == 192 && b1 == 0 && b2 == 0) || (b0 == 198 && (b1 & 0xfe) == 18))
        return "reserved"; /* IETF protocol assignments, benchmarking */
    if ((b0 & 0xf0) == 224)
        return "multicast";
    if ((b0 & 0xf0) == 240)
        return "reserved"; /* and the broadcast address */
    return NULL;
}

const char *
skiff_media_addr_kind(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        return v4_kind(ntohl(in->sin_addr.s_addr));
    }
    if (sa->sa_family != AF_INET6)
        return "reserved";
    const uint8_t *a = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
    static const uint8_t zero[16], mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    static const uint8_t nat64[12] = {0, 0x64, 0xff, 0x9b};
    uint32_t v4 = (uint32_t)a[12] << 24 | (uint32_t)a[13] << 16 | (uint32_t)a[14] << 8 | a[15];
    if (!memcmp(a, zero, 16))
        return "unspecified";
    if (!memcmp(a, zero, 15) && a[15] == 1)
        return "loopback";
    if (!memcmp(a, mapped, 12) || !memcmp(a, nat64, 12))
        return v4_kind(v4);
    if (!memcmp(a, zero, 12))
        return "reserved"; /* IPv4-compatible, deprecated */
    if ((a[0] & 0xfe) == 0xfc)
        return "private"; /* unique local fc00::/7 */
    if (a[0] == 0xfe && (a[1] & 0xc0) == 0x80)
        return "link-local";
    if (a[0] == 0xfe && (a[1] & 0xc0) == 0xc0)
        return "private"; /* site-local, deprecated */
    if (a[0] == 0xff)
        return "multicast";
    return NULL;
}

/* The upstream client asks before each connect. */
static int
addr_ok(const struct sockaddr *sa, void *data)
{
    struct skiff_media *m = data;
    if (m->rules.allow_private)
        return 1;
    const char *kind = skiff_media_addr_kind(sa);
    if (!kind)
        return 1;
    char ip[INET6_ADDRSTRLEN] = "";
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, ip, sizeof ip);
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, ip, sizeof ip);
    snprintf(m->refused, sizeof m->refused, "%s, %s", ip, kind);
    return 0;
}

/* ---- base64 and data: URIs ------------------------------------------------------------ */

static char *
b64_encode(const unsigned char *p, size_t n, size_t *out_len)
{
    if (n > (SIZE_MAX / 4) - 4 || n > INT32_MAX / 2)
        return NULL;
    char *out = malloc(4 * ((n + 2) / 3) + 1);
    if (!out)
        return NULL;
    int len = EVP_EncodeBlock((unsigned char *)out, p, (int)n);
    out[len] = '\0';
    if (out_len)
        *out_len = (size_t)len;
    return out;
}

/* The decoded size of standard, padded base64, or -1 when s is not that. */
static long long
b64_size(const char *s, size_t n)
{
    if (n % 4)
        return -1;
    size_t pad = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '=') {
            if (i < n - 2)
                return -1;
            pad++;
        } else if (pad || !(isalnum(c) || c == '+' || c == '/')) {
            return -1;
        }
    }
    return (long long)(n / 4 * 3 - pad);
}

static int
hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

int
skiff_media_data_uri(const char *uri, size_t max_bytes, char **mime, char **b64, size_t *bytes,
                     const char **err)
{
    *mime = *b64 = NULL;
    *bytes = 0;
    *err = NULL;
    if (strncasecmp(uri, "data:", 5) != 0) {
        *err = "not a data: URI";
        return SKIFF_EINVAL;
    }
    const char *p = uri + 5, *comma = strchr(p, ',');
    if (!comma) {
        *err = "a data: URI needs a comma before its data (data:image/png;base64,...)";
        return SKIFF_EINVAL;
    }
    size_t mlen = strcspn(p, ";,");
    int base64 = 0;
    for (const char *q = p + mlen; q < comma; q += strcspn(q + 1, ";,") + 1)
        if (*q == ';' && (size_t)(comma - q - 1) == 6 && !strncasecmp(q + 1, "base64", 6))
            base64 = 1;
    const char *data = comma + 1;
    size_t dlen = strlen(data);
    if (base64) {
        long long n = b64_size(data, dlen);
        if (n < 0) {
            *err = "the data: URI's base64 is not valid (standard alphabet, padded with =)";
            return SKIFF_EINVAL;
        }
        if ((unsigned long long)n > max_bytes)
            return SKIFF_ETOOBIG;
        *b64 = strndup(data, dlen);
        *bytes = (size_t)n;
    } else {
        unsigned char *raw = malloc(dlen + 1);
        if (!raw)
            return SKIFF_ENOMEM;
        size_t n = 0;
        for (size_t i = 0; i < dlen; i++) {
            if (data[i] == '%' && i + 2 < dlen && hexval(data[i + 1]) >= 0 &&
                hexval(data[i + 2]) >= 0) {
                raw[n++] = (unsigned char)(hexval(data[i + 1]) << 4 | hexval(data[i + 2]));
                i += 2;
            } else {
                raw[n++] = (unsigned char)data[i];
            }
        }
        if (n > max_bytes) {
            free(raw);
            return SKIFF_ETOOBIG;
        }
        *b64 = b64_encode(raw, n, NULL);
        free(raw);
        *bytes = n;
    }
    *mime = mlen ? strndup(p, mlen) : strdup("text/plain");
    if (!*b64 || !*mime) {
        free(*b64);
        free(*mime);
        *mime = *b64 = NULL;
        return SKIFF_ENOMEM;
    }
    for (char *c = *mime; *c; c++)
        *c = (char)tolower((unsigned char)*c);
    return 0;
}

/* ---- MIME types -------------------------------------------------------------------------- */

/* The type from the media's first bytes, for an answer without a useful Content-Type. */
static const char *
sniff(const unsigned char *p, size_t n)
{
    if (n >= 8 && !memcmp(p, "\x89PNG\r\n\x1a\n", 8))
        return "image/png";
    if (n >= 3 && !memcmp(p, "\xff\xd8\xff", 3))
        return "image/jpeg";
    if (n >= 6 && (!memcmp(p, "GIF87a", 6) || !memcmp(p, "GIF89a", 6)))
        return "image/gif";
    if (n >= 12 && !memcmp(p, "RIFF", 4) && !memcmp(p + 8, "WEBP", 4))
        return "image/webp";
    if (n >= 12 && !memcmp(p, "RIFF", 4) && !memcmp(p + 8, "WAVE", 4))
        return "audio/wav";
    if (n >= 5 && !memcmp(p, "%PDF-", 5))
        return "application/pdf";
    if (n >= 4 && !memcmp(p, "OggS", 4))
        return "audio/ogg";
    if (n >= 4 && !memcmp(p, "fLaC", 4))
        return "audio/flac";
    if (n >= 3 && !memcmp(p, "ID3", 3))
        return "audio/mp3";
    if (n >= 12 && !memcmp(p + 4, "ftyp", 4))
        return "video/mp4";
    return NULL;
}

/* A header's value from the "name: value\r\n" block, copied into out; 0 when found. */
static int
header(const char *h, size_t len, const char *name, char *out, size_t outlen)
{
    size_t nl = strlen(name);
    const char *end = h + len;
    while (h < end) {
        const char *eol = memchr(h, '\n', (size_t)(end - h));
        if (!eol)
            eol = end;
        if ((size_t)(eol - h) > nl && !strncasecmp(h, name, nl) && h[nl] == ':') {
            const char *v = h + nl + 1;
            while (v < eol && (*v == ' ' || *v == '\t'))
                v++;
            const char *ve = eol;
            while (ve > v && (ve[-1] == '\r' || ve[-1] == ' '))
                ve--;
            size_t n = (size_t)(ve - v) < outlen - 1 ? (size_t)(ve - v) : outlen - 1;
            memcpy(out, v, n);
            out[n] = '\0';
            return 0;
        }
        h = eol + 1;
    }
    return -1;
}

/* ---- the fetch ------------------------------------------------------------------------- */

static void
closed(uv_handle_t *h)
{
    struct skiff_media *m = h->data;
    if (++m->nclosed < 2)
        return;
    skiff_buf_release(&m->body);
    free(m->url);
    free(m->location);
    free(m);
}

static void
destroy(struct skiff_media *m)
{
    if (m->closing)
        return;
    m->closing = 1;
    if (m->call) {
        skiff_upcall_cancel(m->call);
        m->call = NULL;
    }
    uv_close((uv_handle_t *)&m->deadline, closed);
    uv_close((uv_handle_t *)&m->step, closed);
}

/* Reports a refusal (status 400) once and ends the fetch. */
static void fail(struct skiff_media *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void
fail(struct skiff_media *m, const char *fmt, ...)
{
    if (m->reported || m->cancelled)
        return;
    m->reported = 1;
    char msg[900];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    struct skiff_media_result r = {.status = 400, .error = msg};
    m->cb(m->data, &r);
    destroy(m);
}

static void
succeed(struct skiff_media *m, const char *mime, const char *b64, size_t b64_len, size_t bytes)
{
    if (m->reported || m->cancelled)
        return;
    m->reported = 1;
    struct skiff_media_result r = {
        .status = 0, .mime = mime, .b64 = b64, .b64_len = b64_len, .bytes = bytes};
    m->cb(m->data, &r);
    destroy(m);
}

static void
too_big(struct skiff_media *m)
{
    fail(m,
         "the media at %s is larger than media.max_bytes (%zu bytes); send a smaller file, or "
         "raise media.max_bytes in skiff's config",
         m->host, m->rules.max_bytes);
}

static int
on_status(struct skiff_upcall *call, int status, const char *headers, size_t len)
{
    struct skiff_media *m = skiff_upcall_data(call);
    m->http_status = status;
    if (status == 301 || status == 302 || status == 303 || status == 307 || status == 308) {
        char loc[MAX_URL];
        if (header(headers, len, "location", loc, sizeof loc) == 0 && *loc) {
            free(m->location);
            m->location = strdup(loc);
        }
        return -1;
    }
    if (status < 200 || status > 299)
        return -1;
    char ct[128] = "", cl[32] = "";
    if (header(headers, len, "content-type", ct, sizeof ct) == 0) {
        size_t n = strcspn(ct, "; ");
        ct[n] = '\0';
        for (char *c = ct; *c; c++)
            *c = (char)tolower((unsigned char)*c);
        snprintf(m->mime, sizeof m->mime, "%s", ct);
    }
    if (header(headers, len, "content-length", cl, sizeof cl) == 0) {
        char *end;
        unsigned long long n = strtoull(cl, &end, 10);
        if (end != cl && n > m->rules.max_bytes) {
            m->too_big = 1;
            return -1;
        }
    }
    return 0;
}

static int
on_body(struct skiff_upcall *call, const char *data, size_t len)
{
    struct skiff_media *m = skiff_upcall_data(call);
    int rc = skiff_buf_add(&m->body, data, len);
    if (rc == SKIFF_ETOOBIG)
        m->too_big = 1;
    return rc ? -1 : 0;
}

/* The target of a redirect, made absolute against the current URL (malloc'd), or NULL. */
static char *
resolve_location(const char *base, const char *loc)
{
    if (!strncasecmp(loc, "http://", 7) || !strncasecmp(loc, "https://", 8))
        return strdup(loc);
    const char *authority = strstr(base, "://");
    if (!authority)
        return NULL;
    authority += 3;
    size_t scheme_len = (size_t)(authority - base);
    size_t auth_len = strcspn(authority, "/?#");
    struct skiff_buf b;
    skiff_buf_init(&b, MAX_URL);
    int rc;
    if (loc[0] == '/' && loc[1] == '/') {
        rc = skiff_buf_add(&b, base, scheme_len - 2) || skiff_buf_adds(&b, loc);
    } else if (loc[0] == '/') {
        rc = skiff_buf_add(&b, base, scheme_len + auth_len) || skiff_buf_adds(&b, loc);
    } else {
        const char *path = authority + auth_len;
        size_t plen = strcspn(path, "?#");
        const char *slash = plen ? memrchr(path, '/', plen) : NULL;
        size_t keep = slash ? (size_t)(slash - base) + 1 : scheme_len + auth_len;
        rc = skiff_buf_add(&b, base, keep) || (!slash && skiff_buf_add(&b, "/", 1)) ||
             skiff_buf_adds(&b, loc);
    }
    if (rc) {
        skiff_buf_release(&b);
        return NULL;
    }
    return skiff_buf_take(&b);
}

static void
on_done(struct skiff_upcall *call, const char *error)
{
    struct skiff_media *m = skiff_upcall_data(call);
    m->call = NULL;
    if (m->cancelled || m->reported)
        return;
    if (m->too_big) {
        too_big(m);
        return;
    }
    if (*m->refused) {
        fail(m,
             "skiff does not fetch media from %s: its address is not public (%s); set "
             "media.allow_private: true in skiff's config to allow it, or send the media "
             "inline as a data: URI",
             m->host, m->refused);
        return;
    }
    int st = m->http_status;
    if (st == 301 || st == 302 || st == 303 || st == 307 || st == 308) {
        char *next = m->location ? resolve_location(m->url, m->location) : NULL;
        if (!next) {
            fail(m, "the media URL at %s redirected without a usable Location", m->host);
            return;
        }
        if (++m->redirects > MAX_REDIRECTS) {
            free(next);
            fail(m, "the media URL at %s redirected more than %d times", m->host, MAX_REDIRECTS);
            return;
        }
        free(m->url);
        m->url = next;
        free(m->location);
        m->location = NULL;
        m->http_status = 0;
        *m->mime = '\0';
        skiff_buf_reset(&m->body);
        uv_timer_start(&m->step, next_hop, 0, 0);
        return;
    }
    if (st && (st < 200 || st > 299)) {
        fail(m, "the media URL at %s answered HTTP %d; check that the URL is public and right",
             m->host, st);
        return;
    }
    if (error) {
        fail(m, "could not fetch the media at %s: %s", m->host, error);
        return;
    }
    const unsigned char *p = (const unsigned char *)(m->body.data ? m->body.data : "");
    const char *mime = m->mime;
    if (!*mime || !strcmp(mime, "application/octet-stream") || !strcmp(mime, "binary/octet-stream"))
        mime = sniff(p, m->body.len);
    if (!mime) {
        fail(m,
             "the media at %s has no recognizable type (Content-Type: %s); serve it with its "
             "MIME type (image/png, image/jpeg, application/pdf, ...)",
             m->host, *m->mime ? m->mime : "none");
        return;
    }
    size_t b64_len = 0;
    char *b64 = b64_encode(p, m->body.len, &b64_len);
    if (!b64) {
        fail(m, "out of memory encoding the media from %s", m->host);
        return;
    }
    succeed(m, mime, b64, b64_len, m->body.len);
    free(b64);
}

static const struct skiff_upcall_ops media_ops = {on_status, on_body, on_done};

/* The host of url, for messages (no userinfo, no path, no query). */
static void
url_host(const char *url, char *out, size_t outlen)
{
    const char *a = strstr(url, "://");
    a = a ? a + 3 : url;
    size_t n = strcspn(a, "/?#");
    const char *at = memchr(a, '@', n);
    if (at) {
        n -= (size_t)(at + 1 - a);
        a = at + 1;
    }
    snprintf(out, outlen, "%.*s", (int)(n < outlen - 1 ? n : outlen - 1), a);
}

/* Starts the call for m->url (the first hop, or a redirect's target). */
static void
start_call(struct skiff_media *m)
{
    if (m->cancelled || m->reported)
        return;
    url_host(m->url, m->host, sizeof m->host);
    int http = !strncasecmp(m->url, "http://", 7), https = !strncasecmp(m->url, "https://", 8);
    const char *auth = m->url + (http ? 7 : 8);
    size_t alen = strcspn(auth, "/?#");
    if (!http && !https) {
        fail(m, "a media URL must be http://, https:// or a data: URI");
        return;
    }
    if (memchr(auth, '@', alen)) {
        fail(m, "skiff does not fetch media URLs with credentials in them (user:password@); "
                "send the media inline as a data: URI");
        return;
    }
    if (!alen || strlen(m->url) >= MAX_URL) {
        fail(m, "the media URL is not valid");
        return;
    }
    static const char *const headers[] = {
        "accept: image/*, audio/*, video/*, application/pdf, */*;q=0.5", "user-agent: skiff", NULL};
    struct skiff_upcall_opts o = {
        .method = "GET",
        .url = m->url,
        .headers = headers,
        .connect_timeout_ms = m->rules.timeout_ms,
        .first_byte_timeout_ms = m->rules.timeout_ms,
        .idle_timeout_ms = m->rules.timeout_ms,
        .ops = &media_ops,
        .data = m,
        .addr_ok = addr_ok,
    };
    m->call = m->u ? skiff_upcall_start(m->u, &o) : NULL;
    if (!m->call)
        fail(m, "could not start fetching the media at %s", m->host);
}

static void
next_hop(uv_timer_t *t)
{
    start_call(t->data);
}

static void
deadline_cb(uv_timer_t *t)
{
    struct skiff_media *m = t->data;
    fail(m,
         "fetching the media at %s took longer than media.timeout_ms (%ld ms); send it inline "
         "as a data: URI, or raise media.timeout_ms",
         m->host, m->rules.timeout_ms);
}

/* The first step, from the loop: a data: URI is decoded, a URL fetched. */
static void
first_step(uv_timer_t *t)
{
    struct skiff_media *m = t->data;
    if (*m->error) {
        fail(m, "%s", m->error);
        return;
    }
    if (!strncasecmp(m->url, "data:", 5)) {
        char *mime, *b64;
        size_t bytes;
        const char *err;
        int rc = skiff_media_data_uri(m->url, m->rules.max_bytes, &mime, &b64, &bytes, &err);
        if (rc == SKIFF_ETOOBIG) {
            snprintf(m->host, sizeof m->host, "the data: URI");
            too_big(m);
        } else if (rc == SKIFF_ENOMEM) {
            fail(m, "out of memory decoding a data: URI");
        } else if (rc) {
            fail(m, "%s", err);
        } else {
            succeed(m, mime, b64, strlen(b64), bytes);
            free(mime);
            free(b64);
        }
        return;
    }
    start_call(m);
}

struct skiff_media *
skiff_media_fetch(uv_loop_t *loop, struct skiff_upstream *u, const char *url,
                  const struct skiff_media_rules *rules, skiff_media_cb *cb, void *data)
{
    struct skiff_media *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->url = strdup(url);
    if (!m->url) {
        free(m);
        return NULL;
    }
    m->loop = loop;
    m->u = u;
    m->rules = *rules;
    if (!m->rules.max_bytes)
        m->rules.max_bytes = SKIFF_MEDIA_MAX_BYTES_DEFAULT;
    if (m->rules.timeout_ms <= 0)
        m->rules.timeout_ms = SKIFF_MEDIA_TIMEOUT_MS_DEFAULT;
    m->cb = cb;
    m->data = data;
    skiff_buf_init(&m->body, m->rules.max_bytes);
    uv_timer_init(loop, &m->deadline);
    uv_timer_init(loop, &m->step);
    m->deadline.data = m->step.data = m;
    int is_data = !strncasecmp(url, "data:", 5);
    if (!is_data && !m->rules.fetch_urls)
        snprintf(m->error, sizeof m->error,
                 "skiff does not fetch media URLs (media.fetch_urls: false in its config); send "
                 "the media inline as a data: URI");
    if (!is_data)
        uv_timer_start(&m->deadline, deadline_cb, (uint64_t)m->rules.timeout_ms, 0);
    uv_timer_start(&m->step, first_step, 0, 0);
    return m;
}

void
skiff_media_cancel(struct skiff_media *m)
{
    if (!m)
        return;
    m->cancelled = 1;
    destroy(m);
}
