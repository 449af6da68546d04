/*
 * The Gemini door's stored resources: which key a call must go out on, and what a create
 * teaches skiff (state/affinity.h).
 *
 *   before the plan: the resource the path names (files/{id}, cachedContents/{id}, ...), the
 *     upload session of a chunk (?upload_id= is skiff's session id), or the resources a
 *     generation's body names (every fileData.fileUri and cachedContent) -> their owner, the
 *     plan's pinned key; two owners are a 400 that names both.
 *   after a success: a create's resource name (a file, a cache, a batch, an operation) is
 *     recorded as the answering key's; a new resumable upload gets a skiff session in place
 *     of the upstream's x-goog-upload-url, so its chunks come back through skiff, pinned.
 */
#include "doors/gemini/resources.h"

#include <stdio.h>
#include <stdlib.h>
#include <stddef.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

#include <jansson.h>

#include "base/clock.h"
#include "doors/gemini/bidi.h"
#include "doors/gemini/lookup.h"
#include "relay/keypool.h"
#include "relay/uprequest.h"
#include "state/affinity.h"

#define HOUR_MS (3600LL * 1000)
#define FILE_TTL_MS (48 * HOUR_MS)       /* files live 48 hours */
#define UPLOAD_TTL_MS (7 * 24 * HOUR_MS) /* a resumable session, a week [U] */
#define OTHER_TTL_MS (30 * 24 * HOUR_MS) /* batches and operations: kept a month [U] */
#define TOKEN_TTL_MS (30 * 60 * 1000LL)  /* an ephemeral token without expireTime: 30 min */

/* ---- what a call names ----------------------------------------------------------------- */

/* Reads the JSON string that starts at s (after its opening quote) into out, without
 * unescaping (resource names hold no escapes); 0, or -1 when it is too long or unended. */
static int
json_string_at(const char *s, const char *end, char *out, size_t cap)
{
    size_t n = 0;
    for (; s < end && *s != '"'; s++) {
        if (*s == '\\' || n + 1 >= cap)
            return -1;
        out[n++] = *s;
    }
    out[n] = '\0';
    return s < end ? 0 : -1;
}

/* The resource name a reference's value names: "files/{id}" from a fileUri (any host or
 * version before it), "cachedContents/{id}" as given; "" for none skiff tracks. */
static void
resource_of(const char *field, const char *v, char *out, size_t cap)
{
    out[0] = '\0';
    const char *f = strstr(v, "files/");
    if (strcmp(field, "fileUri") == 0 && f && (f == v || f[-1] == '/'))
        snprintf(out, cap, "%s", f);
    else if (strcmp(field, "cachedContent") == 0 && strncmp(v, "cachedContents/", 15) == 0)
        snprintf(out, cap, "%s", v);
    char *q = strpbrk(out, "?#:");
    if (q)
        *q = '\0';
}

/* A name skiff knows no owner of, for the door's lookup (lookup.h). */
static void
add_unknown(struct skiff_gemini_pin *pin, const char *name)
{
    for (int i = 0; i < pin->n_unknown; i++)
        if (strcmp(pin->unknown[i], name) == 0)
            return;
    if (pin->n_unknown < SKIFF_GEMINI_MAX_UNKNOWN && strlen(name) < SKIFF_AFFINITY_MAX_NAME)
        snprintf(pin->unknown[pin->n_unknown++], SKIFF_AFFINITY_MAX_NAME, "%s", name);
}

/* The owner of one more named resource; 0, or an HTTP status with msg set: 400 when it
 * conflicts with *pin, 403 when no pool key can see it. */
static int
add_owner(const struct skiff_keypool *pool, const char *name, struct skiff_gemini_pin *pin,
          char *msg, size_t cap)
{
    char label[SKIFF_AFFINITY_MAX_LABEL];
    if (skiff_affinity_get(name, skiff_now_ms(), label, sizeof label, NULL, 0) != 0) {
        add_unknown(pin, name); /* not created through skiff: the door looks it up */
        return 0;
    }
    if (skiff_gemini_no_owner(label)) {
        skiff_gemini_no_owner_message(name, msg, cap);
        return 403;
    }
    int key = skiff_keypool_find(pool, label);
    if (key < 0)
        return 0; /* its key left the configuration */
    if (pin->key && pin->key != key + 1) {
        snprintf(msg, cap,
                 "This request names %s, which belongs to the project of key %s, and %s, "
                 "which belongs to key %s: one request can only use the resources of one "
                 "project. Upload or cache them again in one request's worth of calls (skiff "
                 "keeps the resources of one client on the key they were made with).",
                 pin->name, skiff_keypool_label(pool, pin->key - 1), name, label);
        return 400;
    }
    pin->key = key + 1;
    snprintf(pin->name, sizeof pin->name, "%s", name);
    return 0;
}

int
skiff_gemini_body_refs(const char *body, size_t len, int (*fn)(const char *name, void *ctx),
                       void *ctx)
{
    static const char *const fields[] = {"fileUri", "cachedContent"};
    static const char *const pats[] = {"\"fileUri\"", "\"cachedContent\""}; /* quoted */
    const char *end = body + len;
    for (size_t f = 0; body && f < 2; f++) {
        const char *pat = pats[f];
        size_t pl = strlen(pat);
        for (const char *p = body; p && p < end;) {
            p = memmem(p, (size_t)(end - p), pat, pl);
            if (!p)
                break;
            p += pl;
            while (p < end && (*p == ' ' || *p == ':' || *p == '\t' || *p == '\n' || *p == '\r'))
                p++;
            char v[SKIFF_AFFINITY_MAX_NAME + 64], name[SKIFF_AFFINITY_MAX_NAME + 64];
            if (p >= end || *p != '"' || json_string_at(p + 1, end, v, sizeof v) != 0)
                continue;
            resource_of(fields[f], v, name, sizeof name);
            int rc = name[0] ? fn(name, ctx) : 0;
            if (rc)
                return rc;
        }
    }
    return 0;
}

struct owners_ctx {
    const struct skiff_keypool *pool;
    struct skiff_gemini_pin *pin;
    char *msg;
    size_t cap;
};

static int
owner_ref(const char *name, void *ctx)
{
    struct owners_ctx *c = ctx;
    return add_owner(c->pool, name, c->pin, c->msg, c->cap);
}

/* Every fileUri and cachedContent of a generation's body (a scan, no DOM). */
static int
body_owners(const struct skiff_keypool *pool, const char *body, size_t len,
            struct skiff_gemini_pin *pin, char *msg, size_t cap)
{
    struct owners_ctx c = {pool, pin, msg, cap};
    return skiff_gemini_body_refs(body, len, owner_ref, &c);
}

int
skiff_gemini_pin_of(const struct skiff_keypool *pool, const struct skiff_request *req,
                    const struct skiff_route *rt, struct skiff_gemini_pin *pin, char *msg,
                    size_t cap)
{
    /* Not the whole struct (~2 KB a request): the fields before the buffers, and the
     * buffers' first bytes (a string, and the n_unknown names, are all that is read). */
    memset(pin, 0, offsetof(struct skiff_gemini_pin, name));
    pin->name[0] = pin->upload_id[0] = '\0';
    if (rt->kind == SKIFF_ROUTE_GENERATE)
        return body_owners(pool, req->body, req->body_len, pin, msg, cap);
    if (rt->kind != SKIFF_ROUTE_RESOURCE)
        return 0;
    char sid[128];
    if (rt->res == SKIFF_RES_UPLOAD && skiff_http_query(req, "upload_id", sid, sizeof sid) >= 0) {
        /* A chunk: its session is skiff's, and says both the key and the upstream's id. */
        char name[160], label[SKIFF_AFFINITY_MAX_LABEL];
        snprintf(name, sizeof name, "uploads/%s", sid);
        int key = -1;
        if (skiff_affinity_get(name, skiff_now_ms(), label, sizeof label, pin->upload_id,
                               sizeof pin->upload_id) == 0)
            key = skiff_keypool_find(pool, label);
        if (key < 0) {
            snprintf(msg, cap,
                     "skiff knows no upload session \"%.64s\" (it expired, or it was started "
                     "before a restart or on another skiff without a shared storage.sqlite): "
                     "start the upload again",
                     sid);
            return 404;
        }
        pin->key = key + 1;
        snprintf(pin->name, sizeof pin->name, "%s", name);
        return 0;
    }
    char name[SKIFF_AFFINITY_MAX_NAME + 64];
    skiff_route_res_name(rt, name, sizeof name);
    return name[0] ? add_owner(pool, name, pin, msg, cap) : 0;
}

int
skiff_gemini_upload_streams(const struct skiff_request *req, const struct skiff_route *rt)
{
    char sid[8];
    if (rt->kind != SKIFF_ROUTE_RESOURCE || rt->res != SKIFF_RES_UPLOAD ||
        strcmp(req->method, "POST") != 0)
        return 0;
    size_t n;
    if (skiff_http_query(req, "upload_id", sid, sizeof sid) < 0) {
        /* A multipart upload: the metadata and the bytes in one body, which goes as it came. */
        const char *proto = skiff_http_header(req, "x-goog-upload-protocol", &n);
        return proto && n == 9 && strncasecmp(proto, "multipart", 9) == 0;
    }
    const char *cmd = skiff_http_header(req, "x-goog-upload-command", &n);
    /* A comma-separated list of commands: "upload", or "upload, finalize". */
    for (size_t i = 0; cmd && i < n;) {
        while (i < n && (cmd[i] == ' ' || cmd[i] == ','))
            i++;
        size_t j = i;
        while (j < n && cmd[j] != ',' && cmd[j] != ' ')
            j++;
        if (j - i == 6 && strncasecmp(cmd + i, "upload", 6) == 0)
            return 1;
        i = j;
    }
    return 0;
}

/* ---- what a success teaches ------------------------------------------------------------ */

/* Unix ms of an RFC 3339 time ("2026-12-01T10:00:00.123Z"), or -1. */
static int64_t
parse_time(const char *s)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *r = s ? strptime(s, "%Y-%m-%dT%H:%M:%S", &tm) : NULL;
    if (!r)
        return -1;
    return (int64_t)timegm(&tm) * 1000;
}

/* The value of header name in a response head block, copied into out; 0 or -1. */
static int
head_value(const char *block, size_t len, const char *name, char *out, size_t cap)
{
    const char *p = block, *end = block ? block + len : NULL;
    struct skiff_hline h;
    size_t nl = strlen(name);
    while (skiff_hblock_next(&p, end, &h)) {
        if (h.name_len == nl && strncasecmp(h.name, name, nl) == 0 && h.value_len < cap) {
            memcpy(out, h.value, h.value_len);
            out[h.value_len] = '\0';
            return 0;
        }
    }
    return -1;
}

static void public_base(const struct skiff_request *req, char *out, size_t cap);

/* A new resumable upload: skiff's session replaces the upstream's URL. */
static void
new_session(struct skiff_request *req, const struct skiff_engine_answer *a, const char *label)
{
    char url[2048], sid[33];
    if (head_value(a->up_headers, a->up_headers_len, SKIFF_UPLOAD_URL_HEADER, url, sizeof url))
        return;
    const char *id = strstr(url, "upload_id=");
    if (!id)
        return;
    id += 10;
    char up[SKIFF_AFFINITY_MAX_VALUE];
    size_t n = strcspn(id, "&#");
    if (n == 0 || n >= sizeof up)
        return;
    memcpy(up, id, n);
    up[n] = '\0';
    unsigned char raw[16];
    if (getrandom(raw, sizeof raw, 0) != sizeof raw)
        return;
    for (size_t i = 0; i < sizeof raw; i++)
        snprintf(sid + 2 * i, 3, "%02x", raw[i]);
    char name[64];
    snprintf(name, sizeof name, "uploads/%s", sid);
    if (skiff_affinity_put(name, label, up, skiff_now_ms() + UPLOAD_TTL_MS) != 0)
        return;
    char base[1100], mine[2048];
    public_base(req, base, sizeof base);
    snprintf(mine, sizeof mine, "%s/upload/v1beta/files?upload_id=%s&upload_protocol=resumable",
             base, sid);
    skiff_http_add_header(req, SKIFF_UPLOAD_URL_HEADER, mine);
}

/* ---- skiff's URLs in place of the upstream's ------------------------------------------- */

/* skiff's public base URL as the client reached it ("http://host:port"): its Host, https
 * when a proxy in front says so. The one place skiff builds a URL that names itself. */
static void
public_base(const struct skiff_request *req, char *out, size_t cap)
{
    size_t hl = 0, pl = 0;
    const char *host = skiff_http_header(req, "host", &hl);
    const char *proto = skiff_http_header(req, "x-forwarded-proto", &pl);
    int https = proto && pl == 5 && strncasecmp(proto, "https", 5) == 0;
    snprintf(out, cap, "%s://%.*s", https ? "https" : "http",
             host ? (int)(hl < 1024 ? hl : 1024) : 9, host ? host : "localhost");
}

struct rewrite {
    const char *up; /* the upstream's base URL */
    size_t up_len;
    const char *mine; /* skiff's */
    const char *label, *owner;
    int n; /* strings rewritten */
};

/* A URL that the rewrite made to name skiff: the file it downloads is the answering key's,
 * for a file's lifetime (Google's generated files live 48 hours too). */
static void
record_file(const struct rewrite *w, const char *url)
{
    const char *f = strstr(url, "/files/");
    if (!f)
        return;
    char name[SKIFF_AFFINITY_MAX_NAME];
    size_t n = strcspn(f + 7, ":?#/");
    if (n == 0 || n + 7 >= sizeof name)
        return;
    snprintf(name, sizeof name, "files/%.*s", (int)n, f + 7);
    skiff_affinity_put(name, w->label, w->owner, skiff_now_ms() + FILE_TTL_MS);
}

/* Every string of j (and of what it holds) that starts with the upstream's base URL. */
static void
rewrite_urls(json_t *j, struct rewrite *w)
{
    if (json_is_object(j)) {
        const char *k;
        json_t *v;
        json_object_foreach(j, k, v)
        {
            const char *str = json_string_value(v);
            if (!str) {
                rewrite_urls(v, w);
                continue;
            }
            if (strncmp(str, w->up, w->up_len) != 0 || str[w->up_len] != '/')
                continue;
            char *url = NULL;
            size_t ml = strlen(w->mine), rl = strlen(str + w->up_len);
            if ((url = malloc(ml + rl + 1)) == NULL)
                continue;
            memcpy(url, w->mine, ml);
            memcpy(url + ml, str + w->up_len, rl + 1);
            record_file(w, url);
            json_object_set_new(j, k, json_string(url));
            free(url);
            w->n++;
        }
    } else if (json_is_array(j)) {
        for (size_t i = 0; i < json_array_size(j); i++)
            rewrite_urls(json_array_get(j, i), w);
    }
}

char *
skiff_gemini_rewrite_operation(const struct skiff_request *req, const struct skiff_keypool *pool,
                               const char *upstream_base, const struct skiff_route *rt,
                               const struct skiff_engine_answer *a, const char *owner, size_t *len)
{
    int op = (rt->kind == SKIFF_ROUTE_RESOURCE && rt->res == SKIFF_RES_OPERATIONS && rt->res_id &&
              !rt->res_verb && strcmp(rt->http_verb, "GET") == 0) ||
             (rt->kind == SKIFF_ROUTE_GENERATE && rt->method == SKIFF_M_PREDICT_LONG);
    if (!op || a->status / 100 != 2 || a->key < 0 || !a->len || !upstream_base ||
        !memmem(a->body, a->len, upstream_base, strlen(upstream_base)))
        return NULL;
    json_t *j = json_loadb(a->body, a->len, 0, NULL);
    if (!json_is_object(j)) {
        json_decref(j);
        return NULL;
    }
    char mine[1100], label[SKIFF_AFFINITY_MAX_LABEL], creator[SKIFF_AFFINITY_MAX_VALUE];
    public_base(req, mine, sizeof mine);
    /* The videos are the operation's creator's, whoever polls it (tenancy lets only the
     * creator, or anyone for an operation made without a token). */
    const char *name = json_string_value(json_object_get(j, "name"));
    if (name &&
        skiff_affinity_get(name, skiff_now_ms(), label, sizeof label, creator, sizeof creator) == 0)
        owner = creator[0] ? creator : NULL;
    struct rewrite w = {
        upstream_base, strlen(upstream_base), mine, skiff_keypool_label(pool, a->key), owner, 0};
    rewrite_urls(j, &w);
    char *out = w.n ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (out)
        *len = strlen(out);
    return out;
}

void
skiff_gemini_learn(struct skiff_request *req, const struct skiff_keypool *pool,
                   const struct skiff_route *rt, const struct skiff_engine_answer *a,
                   const char *owner)
{
    if (a->status / 100 != 2 || a->key < 0)
        return;
    const char *label = skiff_keypool_label(pool, a->key);
    if (rt->kind == SKIFF_ROUTE_RESOURCE && rt->res_id && strcmp(rt->http_verb, "DELETE") == 0) {
        char name[SKIFF_AFFINITY_MAX_NAME + 64];
        skiff_route_res_name(rt, name, sizeof name);
        skiff_affinity_forget(name);
        return;
    }
    int creates =
        (rt->kind == SKIFF_ROUTE_RESOURCE && !rt->res_id && strcmp(rt->http_verb, "POST") == 0) ||
        (rt->kind == SKIFF_ROUTE_GENERATE &&
         (rt->method == SKIFF_M_BATCH_GENERATE || rt->method == SKIFF_M_ASYNC_BATCH_EMBED ||
          rt->method == SKIFF_M_PREDICT_LONG));
    if (!creates)
        return;
    if (rt->res == SKIFF_RES_UPLOAD)
        new_session(req, a, label);
    json_t *j = a->len ? json_loadb(a->body, a->len, 0, NULL) : NULL;
    json_t *res = json_object_get(j, "file") ? json_object_get(j, "file") : j;
    const char *name = json_string_value(json_object_get(res, "name"));
    if (name && strncmp(name, "auth_tokens/", 12) == 0) {
        /* An ephemeral token for the Live API: its sessions go on this key (bidi.c). The
         * entry is named by the token's hash: the store never holds the token. */
        char entry[SKIFF_LIVE_TOKEN_ENTRY];
        skiff_gemini_live_token_entry(name, strlen(name), entry);
        int64_t now = skiff_now_ms(),
                at = parse_time(json_string_value(json_object_get(j, "expireTime")));
        skiff_affinity_put(entry, label, owner, at > now ? at : now + TOKEN_TTL_MS);
        name = NULL;
    }
    if (name) {
        int64_t now = skiff_now_ms();
        int64_t exp = strncmp(name, "files/", 6) == 0 ? now + FILE_TTL_MS : now + OTHER_TTL_MS;
        int64_t at = parse_time(json_string_value(json_object_get(res, "expireTime")));
        if (strncmp(name, "cachedContents/", 15) == 0 && at > now)
            exp = at;
        skiff_affinity_put(name, label, owner, exp);
    }
    json_decref(j);
}
