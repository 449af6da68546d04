/*
 * The upstream request, built from allowlists (see uprequest.h for what each list holds and
 * docs/internals/relay.md for why). Pure but for the header writer in
 * skiff_uprequest_forward_head: no I/O, and the only memory is the request's own buffer.
 */
#include "relay/uprequest.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "config/config.h"
#include "base/err.h"
#include "base/num.h"
#include "relay/h1resp.h"
#include "base/hopbyhop.h"
#include "relay/keypool.h"

#define MAX_PAGE_TOKEN 2048   /* decoded bytes of a pageToken; Google's are ~100 */
#define MAX_HEADER_VALUE 4096 /* an allowlisted response header longer than this is dropped */

#define NAME_IN(name, n, list) skiff_name_in((name), (n), (list), sizeof(list) / sizeof((list)[0]))

/* Whether v[0..n) holds a byte no header value may carry: a control other than HTAB (NUL,
 * CR and LF among them) or DEL. */
static int
has_control(const char *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)v[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return 1;
    }
    return 0;
}

/* ---- the query ------------------------------------------------------------------------ */

/* Percent-decodes s[0..n) into out (cap bytes; out may be NULL to check only), '+' as a
 * space (how Google's front ends read a query). Returns the decoded length, -1 for a broken
 * escape, -2 when it does not fit. */
static long
decode(const char *s, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++, o++) {
        char c = s[i];
        if (c == '%') {
            int hi = n - i >= 3 ? skiff_hexdigit(s[i + 1]) : -1;
            int lo = n - i >= 3 ? skiff_hexdigit(s[i + 2]) : -1;
            if (hi < 0 || lo < 0)
                return -1;
            c = (char)(hi << 4 | lo);
            i += 2;
        } else if (c == '+') {
            c = ' ';
        }
        if (out) {
            if (o == cap)
                return -2;
            out[o] = c;
        }
    }
    return (long)o;
}

/* Appends s[0..n) percent-encoded: only RFC 3986's unreserved bytes stay as they are. */
static int
encode(struct skiff_buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        int rc;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '.' || c == '_' || c == '~') {
            rc = skiff_buf_add(b, &s[i], 1);
        } else {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};
            rc = skiff_buf_add(b, e, 3);
        }
        if (rc)
            return rc;
    }
    return 0;
}

static int refuse(char *msg, size_t msglen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
refuse(char *msg, size_t msglen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, msglen, fmt, ap);
    va_end(ap);
    return SKIFF_EINVAL;
}

/* The decoded value of an alt parameter, or SKIFF_ALT_NONE when it is none skiff serves.
 * "json;enum-encoding=int" (what GAPIC REST clients send as $alt) is taken as JSON: the
 * enums stay names, which those clients' parsers read too and skiff's stream judge needs. */
static enum skiff_alt
alt_value(const char *v, long n)
{
    if (n == 3 && memcmp(v, "sse", 3) == 0)
        return SKIFF_ALT_SSE;
    if (n == 5 && memcmp(v, "media", 5) == 0)
        return SKIFF_ALT_MEDIA;
    if ((n == 4 && memcmp(v, "json", 4) == 0) ||
        (n == 22 && memcmp(v, "json;enum-encoding=int", 22) == 0))
        return SKIFF_ALT_JSON;
    return SKIFF_ALT_NONE;
}

int
skiff_upquery_parse(const char *query, size_t len, const struct skiff_route *rt,
                    struct skiff_upquery *q, char *msg, size_t msglen)
{
    memset(q, 0, sizeof *q);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)query[i];
        if (c == '#')
            return refuse(msg, msglen,
                          "The request target holds a #fragment (at byte %zu of the query): a "
                          "fragment is never sent to a server; remove it, or write '#' as %%23.",
                          i + 1);
        if (c <= 0x20 || c >= 0x7f)
            return refuse(msg, msglen,
                          "The query string holds the byte 0x%02X (at byte %zu), which may not "
                          "appear in a URL as it is: percent-encode it.",
                          c, i + 1);
    }
    int list = rt->kind == SKIFF_ROUTE_MODELS || (rt->kind == SKIFF_ROUTE_RESOURCE && !rt->res_id);
    int patch =
        rt->kind == SKIFF_ROUTE_RESOURCE && rt->http_verb && strcmp(rt->http_verb, "PATCH") == 0;
    int media =
        rt->kind == SKIFF_ROUTE_RESOURCE && rt->res_verb && strcmp(rt->res_verb, "download") == 0;
    const char *p = query, *end = query + len;
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *stop = amp ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(stop - p));
        const char *n0 = p, *nend = eq ? eq : stop;
        const char *v = eq ? eq + 1 : stop;
        size_t vlen = (size_t)(stop - v);
        p = stop + 1;
        char name[16], val[32];
        long nl = decode(n0, (size_t)(nend - n0), name, sizeof name);
        if (nl == -1)
            return refuse(msg, msglen,
                          "The query parameter \"%.*s\" has a broken %%-escape: a %% must be "
                          "followed by two hex digits.",
                          (int)((size_t)(nend - n0) > 64 ? 64 : (size_t)(nend - n0)), n0);
        if (nl < 0)
            continue; /* longer than any name skiff reads: dropped */
        if ((nl == 3 && memcmp(name, "alt", 3) == 0) || (nl == 4 && memcmp(name, "$alt", 4) == 0)) {
            long al = decode(v, vlen, val, sizeof val);
            enum skiff_alt alt = alt_value(val, al);
            if (alt == SKIFF_ALT_MEDIA && !media)
                alt = SKIFF_ALT_NONE;
            if (alt == SKIFF_ALT_NONE)
                return refuse(msg, msglen,
                              "The query parameter %s must be sse (a stream of server-sent "
                              "events) or json%s, got \"%.*s\".",
                              nl == 3 ? "alt" : "$alt", media ? ", or media" : "",
                              (int)(vlen > 64 ? 64 : vlen), v);
            if (q->alt && q->alt != alt)
                return refuse(msg, msglen,
                              "The query gives alt twice, once as sse and once as json: give "
                              "it once.");
            q->alt = alt;
        } else if (list && nl == 8 && memcmp(name, "pageSize", 8) == 0) {
            long l = decode(v, vlen, val, sizeof val);
            int digits = l > 0 && l <= 9;
            for (long i = 0; digits && i < l; i++)
                digits = val[i] >= '0' && val[i] <= '9';
            if (!digits)
                return refuse(msg, msglen,
                              "The query parameter pageSize must be a whole number (models "
                              "per page, at most 1000), got \"%.*s\".",
                              (int)(vlen > 64 ? 64 : vlen), v);
            if (q->page_size)
                return refuse(msg, msglen, "The query gives pageSize twice: give it once.");
            q->page_size = v;
            q->page_size_len = vlen;
        } else if (list && nl == 9 && memcmp(name, "pageToken", 9) == 0) {
            long l = decode(v, vlen, NULL, 0);
            if (l == -1)
                return refuse(msg, msglen,
                              "The query parameter pageToken has a broken %%-escape: a %% must "
                              "be followed by two hex digits.");
            if (l > MAX_PAGE_TOKEN)
                return refuse(msg, msglen,
                              "The query parameter pageToken is %ld bytes long; page tokens "
                              "are the nextPageToken of the previous page, far shorter.",
                              l);
            if (q->page_token)
                return refuse(msg, msglen, "The query gives pageToken twice: give it once.");
            q->page_token = v;
            q->page_token_len = vlen;
        } else if (patch && nl == 10 && memcmp(name, "updateMask", 10) == 0) {
            long l = decode(v, vlen, NULL, 0);
            if (l < 0 || l > 512)
                return refuse(msg, msglen,
                              "The query parameter updateMask must name fields (like ttl), "
                              "percent-encoded, in at most 512 bytes.");
            if (q->update_mask)
                return refuse(msg, msglen, "The query gives updateMask twice: give it once.");
            q->update_mask = v;
            q->update_mask_len = vlen;
        }
        /* Anything else (the client's key, access_token, fields, ...) stays here. */
    }
    return 0;
}

/* ---- the request ---------------------------------------------------------------------- */

/* Request headers a client may send upstream (beside upstreams.gemini.forward_headers). */
static const struct skiff_name client_headers[] = {
    SKIFF_NAME("content-type"),      SKIFF_NAME("accept"),      SKIFF_NAME("user-agent"),
    SKIFF_NAME("x-goog-api-client"), SKIFF_NAME("traceparent"), SKIFF_NAME("tracestate")};

/* Whether name is listed in one of the client's Connection headers (hop-by-hop by
 * declaration, RFC 9110 7.6.1). */
static int
named_by_connection(const struct skiff_request *req, const char *name, size_t n)
{
    for (int i = 0; i < req->nheaders; i++) {
        const struct skiff_header *c = &req->headers[i];
        if (c->name_len != 10 || strncasecmp(c->name, "connection", 10) != 0)
            continue;
        if (skiff_h1_token_listed(c->value, c->value_len, name, n))
            return 1;
    }
    return 0;
}

/* The upload protocol's request headers (uploads only). */
static const struct skiff_name upload_headers[] = {
    SKIFF_NAME("x-goog-upload-protocol"),
    SKIFF_NAME("x-goog-upload-command"),
    SKIFF_NAME("x-goog-upload-offset"),
    SKIFF_NAME("x-goog-upload-header-content-length"),
    SKIFF_NAME("x-goog-upload-header-content-type"),
    SKIFF_NAME("x-goog-upload-file-name")};

/* Whether the client's header h goes upstream on route rt. */
static int
forwarded(const struct skiff_config *cfg, const struct skiff_request *req,
          const struct skiff_route *rt, const struct skiff_header *h)
{
    int listed = NAME_IN(h->name, h->name_len, client_headers) ||
                 (rt->res == SKIFF_RES_UPLOAD && NAME_IN(h->name, h->name_len, upload_headers));
    for (size_t i = 0; !listed && i < cfg->nforward_headers; i++)
        listed = strnlen(cfg->forward_headers[i], h->name_len + 1) == h->name_len &&
                 strncasecmp(cfg->forward_headers[i], h->name, h->name_len) == 0;
    return listed && !has_control(h->value, h->value_len) &&
           !named_by_connection(req, h->name, h->name_len);
}

/* Appends the query skiff forwards for q: alt, the upload id, pageSize/pageToken on lists,
 * updateMask, each percent-encoded anew. */
static int
add_query(struct skiff_buf *b, const struct skiff_upquery *q)
{
    int rc = 0;
    char sep = '?';
    if (q->alt) {
        rc |= skiff_buf_add(b, &sep, 1);
        rc |= skiff_buf_adds(b, q->alt == SKIFF_ALT_SSE     ? "alt=sse"
                                : q->alt == SKIFF_ALT_MEDIA ? "alt=media"
                                                            : "alt=json");
        sep = '&';
    }
    if (q->upload_id) {
        rc |= skiff_buf_add(b, &sep, 1);
        rc |= skiff_buf_adds(b, "upload_id=");
        rc |= encode(b, q->upload_id, strlen(q->upload_id));
        rc |= skiff_buf_adds(b, "&upload_protocol=resumable");
        sep = '&';
    }
    const char *vals[3] = {q->page_size, q->page_token, q->update_mask};
    size_t lens[3] = {q->page_size_len, q->page_token_len, q->update_mask_len};
    static const char *const names[3] = {"pageSize=", "pageToken=", "updateMask="};
    for (int i = 0; i < 3; i++) {
        if (!vals[i])
            continue;
        char dec[MAX_PAGE_TOKEN];
        long n = decode(vals[i], lens[i], dec, sizeof dec);
        if (n < 0)
            return SKIFF_EINVAL; /* skiff_upquery_parse let it through: it cannot */
        rc |= skiff_buf_add(b, &sep, 1);
        rc |= skiff_buf_adds(b, names[i]);
        rc |= encode(b, dec, (size_t)n);
        sep = '&';
    }
    return rc ? SKIFF_ETOOBIG : 0;
}

/* The path of a resource call, from the route's checked parts (gemini/router.h). */
static int
resource_path(struct skiff_buf *b, const struct skiff_route *rt)
{
    static const char *const seg[] = {
        [SKIFF_RES_FILES] = "files",           [SKIFF_RES_UPLOAD] = "files",
        [SKIFF_RES_CACHES] = "cachedContents", [SKIFF_RES_BATCHES] = "batches",
        [SKIFF_RES_OPERATIONS] = "operations", [SKIFF_RES_AUTH_TOKENS] = "auth_tokens",
    };
    int rc = 0;
    if (rt->res == SKIFF_RES_UPLOAD)
        rc |= skiff_buf_adds(b, "/upload");
    rc |= skiff_buf_add(b, "/", 1);
    rc |= skiff_buf_adds(b, rt->version);
    if (rt->model) {
        rc |= skiff_buf_adds(b, "/models/");
        rc |= skiff_buf_add(b, rt->model, rt->model_len);
    }
    rc |= skiff_buf_add(b, "/", 1);
    rc |= skiff_buf_adds(b, seg[rt->res]);
    if (rt->res_id) {
        rc |= skiff_buf_add(b, "/", 1);
        rc |= skiff_buf_add(b, rt->res_id, rt->res_id_len);
    }
    if (rt->res_verb) {
        rc |= skiff_buf_add(b, ":", 1);
        rc |= skiff_buf_adds(b, rt->res_verb);
    }
    return rc ? SKIFF_ETOOBIG : 0;
}

/* Starts a header line in u->buf, recording where it begins. */
static int
begin_line(struct skiff_uprequest *u, size_t *offs, int *n)
{
    if (skiff_buf_add(&u->buf, "", 1))
        return SKIFF_ETOOBIG;
    offs[(*n)++] = u->buf.len;
    return 0;
}

int
skiff_uprequest_build(struct skiff_uprequest *u, const struct skiff_config *cfg,
                      const struct skiff_request *req, const struct skiff_route *rt,
                      const struct skiff_upquery *q, const char *model, const char *key)
{
    memset(u, 0, sizeof *u);
    skiff_buf_init(&u->buf, 128 * 1024);
    struct skiff_buf *b = &u->buf;
    int rc = 0;

    /* The path, from the route's parts: the client's own path never goes. */
    rc |= skiff_buf_adds(b, cfg->base_url);
    if (rt->kind == SKIFF_ROUTE_RESOURCE) {
        rc |= resource_path(b, rt);
    } else if (rt->kind == SKIFF_ROUTE_COMPAT) {
        /* Google's OpenAI-compatible endpoint: the call's path, the checked model id. */
        rc |= skiff_buf_adds(b, "/v1beta/openai/");
        rc |= skiff_buf_adds(b, rt->compat);
        if (rt->res_id) {
            rc |= skiff_buf_add(b, "/", 1);
            rc |= skiff_buf_add(b, rt->res_id, rt->res_id_len);
        }
    } else {
        rc |= skiff_buf_add(b, "/", 1);
        rc |= skiff_buf_adds(b, rt->version);
        rc |= skiff_buf_adds(b, "/models");
    }
    if (rt->kind == SKIFF_ROUTE_MODEL || rt->kind == SKIFF_ROUTE_GENERATE) {
        if (!skiff_model_name_ok(model, strlen(model))) {
            skiff_buf_release(b);
            return SKIFF_EINVAL;
        }
        rc |= skiff_buf_add(b, "/", 1);
        rc |= skiff_buf_adds(b, model);
    }
    if (rt->kind == SKIFF_ROUTE_GENERATE) {
        rc |= skiff_buf_add(b, ":", 1);
        rc |= skiff_buf_adds(b, rt->method_name);
    }
    if (!rc && rt->kind != SKIFF_ROUTE_COMPAT)
        rc = add_query(b, q);

    size_t offs[SKIFF_MAX_HEADERS + 2];
    int n = 0, has_ct = 0;
    for (int i = 0; !rc && i < req->nheaders; i++) {
        const struct skiff_header *h = &req->headers[i];
        if (!forwarded(cfg, req, rt, h))
            continue;
        if (h->name_len == 12 && strncasecmp(h->name, "content-type", 12) == 0)
            has_ct = 1;
        rc |= begin_line(u, offs, &n);
        rc |= skiff_buf_add(b, h->name, h->name_len);
        rc |= skiff_buf_add(b, ": ", 2);
        rc |= skiff_buf_add(b, h->value, h->value_len);
    }
    if (!rc && !has_ct && strcmp(req->method, "POST") == 0 && rt->res != SKIFF_RES_UPLOAD) {
        rc |= begin_line(u, offs, &n);
        rc |= skiff_buf_adds(b, "content-type: application/json");
    }
    if (!rc) {
        /* The pool key: the compatible endpoint takes it as a Bearer token. */
        rc |= begin_line(u, offs, &n);
        rc |= skiff_buf_adds(b, rt->kind == SKIFF_ROUTE_COMPAT ? "authorization: Bearer "
                                                               : "x-goog-api-key: ");
        rc |= skiff_buf_adds(b, key);
    }
    if (rc) {
        skiff_uprequest_wipe(u);
        return rc == SKIFF_EINVAL ? SKIFF_EINVAL : SKIFF_ETOOBIG;
    }
    /* Pointers only now: the buffer has stopped moving. */
    u->url = b->data;
    for (int i = 0; i < n; i++)
        u->headers[i] = b->data + offs[i];
    u->headers[n] = NULL;
    return 0;
}

void
skiff_uprequest_wipe(struct skiff_uprequest *u)
{
    if (u->buf.data)
        memset(u->buf.data, 0, u->buf.len);
    skiff_buf_release(&u->buf);
    u->url = NULL;
    u->headers[0] = NULL;
}

/* ---- a Live API session (WebSocket) ----------------------------------------------------- */

int
skiff_uprequest_live_headers(struct skiff_uprequest *u, const struct skiff_config *cfg,
                             const struct skiff_request *req)
{
    memset(u, 0, sizeof *u);
    skiff_buf_init(&u->buf, 64 * 1024);
    struct skiff_route none;
    memset(&none, 0, sizeof none);
    size_t offs[SKIFF_MAX_HEADERS + 2];
    int n = 0, rc = 0;
    for (int i = 0; !rc && i < req->nheaders; i++) {
        const struct skiff_header *h = &req->headers[i];
        /* A WebSocket handshake has no body: its content headers say nothing. */
        if (!forwarded(cfg, req, &none, h) ||
            (h->name_len == 12 && strncasecmp(h->name, "content-type", 12) == 0) ||
            (h->name_len == 6 && strncasecmp(h->name, "accept", 6) == 0))
            continue;
        rc |= begin_line(u, offs, &n);
        rc |= skiff_buf_add(&u->buf, h->name, h->name_len);
        rc |= skiff_buf_add(&u->buf, ": ", 2);
        rc |= skiff_buf_add(&u->buf, h->value, h->value_len);
    }
    if (rc) {
        skiff_uprequest_wipe(u);
        return SKIFF_ETOOBIG;
    }
    for (int i = 0; i < n; i++)
        u->headers[i] = u->buf.data + offs[i];
    u->headers[n] = NULL;
    return 0;
}

int
skiff_uprequest_live_url(struct skiff_buf *out, const struct skiff_config *cfg, const char *version,
                         int constrained, const char *credential)
{
    if (strcmp(version, "v1beta") != 0 && strcmp(version, "v1alpha") != 0)
        return SKIFF_EINVAL;
    int rc = 0;
    rc |= skiff_buf_adds(out, cfg->base_url);
    rc |= skiff_buf_adds(out, "/ws/google.ai.generativelanguage.");
    rc |= skiff_buf_adds(out, version);
    rc |= skiff_buf_adds(out, constrained ? ".GenerativeService.BidiGenerateContentConstrained"
                                          : ".GenerativeService.BidiGenerateContent");
    rc |= skiff_buf_adds(out, constrained ? "?access_token=" : "?key=");
    /* '/' may stand in a query as it is (RFC 3986 §3.4): an ephemeral token's name
     * ("auth_tokens/...") goes the way the SDKs send it. */
    for (const char *p = credential; !rc;) {
        size_t n = strcspn(p, "/");
        rc |= encode(out, p, n);
        if (!p[n])
            break;
        rc |= skiff_buf_add(out, "/", 1);
        p += n + 1;
    }
    return rc ? SKIFF_ETOOBIG : 0;
}

/* ---- the response head ---------------------------------------------------------------- */

/* Upstream response headers a client sees (content-type goes with the status). */
static const struct skiff_name answer_headers[] = {
    SKIFF_NAME("content-encoding"),
    SKIFF_NAME("retry-after"),
    SKIFF_NAME("server-timing"),
    SKIFF_NAME("vary"),
    SKIFF_NAME("x-gemini-service-tier"),
    SKIFF_NAME("x-goog-upload-status"),
    SKIFF_NAME("x-goog-upload-chunk-granularity"),
    SKIFF_NAME("x-goog-upload-size-received"),
    SKIFF_NAME("x-goog-upload-header-content-length"),
    SKIFF_NAME("x-goog-upload-header-content-type"),
    SKIFF_NAME("content-disposition")};

int
skiff_hblock_next(const char **p, const char *end, struct skiff_hline *h)
{
    while (*p && *p < end) {
        const char *line = *p;
        const char *lf = memchr(line, '\n', (size_t)(end - line));
        if (!lf || lf == line)
            return 0;
        *p = lf + 1;
        const char *eol = lf[-1] == '\r' ? lf - 1 : lf;
        const char *colon = memchr(line, ':', (size_t)(eol - line));
        if (!colon)
            continue;
        const char *v = colon + 1;
        while (v < eol && (*v == ' ' || *v == '\t'))
            v++;
        *h = (struct skiff_hline){line, v, (size_t)(colon - line), (size_t)(eol - v)};
        return 1;
    }
    return 0;
}

/* Copies value into out (at least n+1 bytes) with pool keys starred out. */
static void
redacted(const struct skiff_keypool *pool, const char *v, size_t n, char *out)
{
    memcpy(out, v, n);
    out[n] = '\0';
    if (pool)
        skiff_keypool_redact(pool, out, n);
}

void
skiff_uprequest_forward_head(struct skiff_request *req, const char *block, size_t len,
                             const struct skiff_keypool *pool)
{
    const char *p = block, *end = block ? block + len : NULL;
    struct skiff_hline h;
    char v[MAX_HEADER_VALUE + 1];
    while (skiff_hblock_next(&p, end, &h)) {
        if (!NAME_IN(h.name, h.name_len, answer_headers) || h.value_len > MAX_HEADER_VALUE ||
            has_control(h.value, h.value_len))
            continue;
        redacted(pool, h.value, h.value_len, v);
        skiff_http_add_headern(req, h.name, h.name_len, v, h.value_len);
    }
}

const char *
skiff_uprequest_content_type(const char *block, size_t len, const struct skiff_keypool *pool,
                             char *out, size_t outlen)
{
    const char *p = block, *end = block ? block + len : NULL;
    struct skiff_hline h;
    while (skiff_hblock_next(&p, end, &h)) {
        if (h.name_len == 12 && strncasecmp(h.name, "content-type", 12) == 0) {
            if (h.value_len == 0 || h.value_len >= outlen || has_control(h.value, h.value_len))
                break;
            redacted(pool, h.value, h.value_len, out);
            return out;
        }
    }
    return "application/json; charset=UTF-8";
}
