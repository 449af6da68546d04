/*
 * The model catalog: a built-in table, replaced by the upstream's models.list. See
 * catalog.h for the contract and docs/internals/validation.md for why the source matters.
 */
#include "gemini/catalog.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>

#include "base/hash.h"
#include "base/url.h"
#include "gemini/models.h"

#define MAX_MODELS 2000 /* a models.list this long is not a Gemini API */
#define MAX_PAGES 20
#define MAX_GET_BODY (8u * 1024 * 1024)

struct table {
    size_t n;
    struct skiff_model_info *m;
    uint32_t *hash; /* FNV-1a of each name, so a lookup compares integers first */
    enum skiff_catalog_source source;
};

struct skiff_catalog {
    pthread_rwlock_t lock;
    struct table *t; /* replaced whole under the write lock; readers copy what they need */
};

/* ---- the built-in list ------------------------------------------------------------------ */

/* A row of the model table (gemini/models.def), as the catalog reads it. */
struct builtin {
    const char *name, *target;
    long in, out;
    unsigned methods;
    double temperature, max_temperature; /* < 0: absent */
    int thinks, budget_min, budget_max, budget_zero_ok;
    int flags; /* SKIFF_MODEL_* */
};

/* The method lists of the table, as SKIFF_CAT_* bits. */
#define MBITS_gen_methods (SKIFF_CAT_GENERATE | SKIFF_CAT_COUNT)
#define MBITS_image_methods MBITS_gen_methods
#define MBITS_tts_methods MBITS_gen_methods
#define MBITS_gemma_methods MBITS_gen_methods
#define MBITS_embed_methods (SKIFF_CAT_EMBED | SKIFF_CAT_BATCH_EMBED | SKIFF_CAT_COUNT)
#define MBITS_aqa_methods SKIFF_CAT_OTHER
#define SAMPLING_OF(temperature, top_p, top_k, max_temperature) temperature, max_temperature
#define THINKING_OF(thinks, bmin, bmax, zero_ok, by_default) thinks, bmin, bmax, zero_ok
#define SKIFF_MODEL(id, target, version, display, desc, in, out, methods, sampling, thinking,      \
                    cand, flags, rpm, tpm, rpd)                                                    \
    {id, target, in, out, MBITS_##methods, SAMPLING_OF sampling, THINKING_OF thinking, flags},

static const struct builtin builtin[] = {
#include "gemini/models.def"
};
#undef SKIFF_MODEL
#undef SAMPLING_OF
#undef THINKING_OF

#define NBUILTIN (sizeof builtin / sizeof builtin[0])

/* The table's hash: the low half of FNV-1a 64. */
static uint32_t
fnv1a(const char *s, size_t n)
{
    return (uint32_t)skiff_fnv1a64(SKIFF_FNV64_BASIS, s, n);
}

static void
table_free(struct table *t)
{
    if (!t)
        return;
    free(t->m);
    free(t->hash);
    free(t);
}

static struct table *
table_new(size_t n, enum skiff_catalog_source source)
{
    struct table *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->m = calloc(n ? n : 1, sizeof *t->m);
    t->hash = calloc(n ? n : 1, sizeof *t->hash);
    if (!t->m || !t->hash) {
        table_free(t);
        return NULL;
    }
    t->source = source;
    return t;
}

/*
 * A table row as the catalog's entry. The table's thinking budgets of 3.x models are the
 * simulator's guesses, so skiff checks only that those models refuse 0 (when the table says
 * so); a model that does not think has no budget at all.
 */
static void
from_builtin(struct skiff_model_info *m, const struct builtin *b)
{
    memset(m, 0, sizeof *m);
    snprintf(m->name, sizeof m->name, "%s", b->name);
    /* An entry's target is "" unless it is an alias. */
    snprintf(m->target, sizeof m->target, "%s", strcmp(b->target, b->name) ? b->target : "");
    m->input_limit = b->in;
    m->output_limit = b->out;
    m->methods = b->methods;
    m->max_temperature = b->max_temperature;
    m->sampling = b->temperature >= 0;
    m->thinking = b->thinks;
    if (!b->thinks) {
        m->budget_min = m->budget_max = m->budget_zero_ok = 0;
    } else if (b->flags & SKIFF_MODEL_GEMINI3) {
        m->budget_zero_ok = b->budget_zero_ok;
        m->budget_min = b->budget_zero_ok ? 0 : 1;
        m->budget_max = 0; /* unknown: unchecked */
    } else {
        m->budget_min = b->budget_min;
        m->budget_max = b->budget_max;
        m->budget_zero_ok = b->budget_zero_ok;
    }
    m->v1 = (b->flags & SKIFF_MODEL_V1) != 0;
}

static const struct builtin *
builtin_find(const char *name)
{
    for (size_t i = 0; i < NBUILTIN; i++)
        if (strcmp(builtin[i].name, name) == 0)
            return &builtin[i];
    return NULL;
}

static struct table *
builtin_table(void)
{
    struct table *t = table_new(NBUILTIN, SKIFF_CATALOG_BUILTIN);
    if (!t)
        return NULL;
    for (size_t i = 0; i < NBUILTIN; i++) {
        from_builtin(&t->m[i], &builtin[i]);
        t->hash[i] = fnv1a(t->m[i].name, strlen(t->m[i].name));
    }
    t->n = NBUILTIN;
    return t;
}

/* ---- lifetime and lookups --------------------------------------------------------------- */

struct skiff_catalog *
skiff_catalog_new(void)
{
    struct skiff_catalog *cat = calloc(1, sizeof *cat);
    if (!cat)
        return NULL;
    cat->t = builtin_table();
    if (!cat->t || pthread_rwlock_init(&cat->lock, NULL) != 0) {
        table_free(cat->t);
        free(cat);
        return NULL;
    }
    return cat;
}

void
skiff_catalog_free(struct skiff_catalog *cat)
{
    if (!cat)
        return;
    pthread_rwlock_destroy(&cat->lock);
    table_free(cat->t);
    free(cat);
}

/* The lock is part of a logically const catalog: lookups do not change what it holds. */
static void
rdlock(const struct skiff_catalog *cat)
{
    pthread_rwlock_rdlock((pthread_rwlock_t *)&cat->lock);
}

static void
unlock(const struct skiff_catalog *cat)
{
    pthread_rwlock_unlock((pthread_rwlock_t *)&cat->lock);
}

static void
strip_prefix(const char **name, size_t *len)
{
    if (*len > 7 && memcmp(*name, "models/", 7) == 0) {
        *name += 7;
        *len -= 7;
    }
}

int
skiff_catalog_lookup(const struct skiff_catalog *cat, const char *name, size_t len,
                     struct skiff_model_info *out)
{
    strip_prefix(&name, &len);
    uint32_t h = fnv1a(name, len);
    int found = 0;
    rdlock(cat);
    const struct table *t = cat->t;
    for (size_t i = 0; i < t->n; i++) {
        if (t->hash[i] == h && strlen(t->m[i].name) == len &&
            memcmp(t->m[i].name, name, len) == 0) {
            *out = t->m[i];
            found = 1;
            break;
        }
    }
    unlock(cat);
    return found;
}

int
skiff_catalog_at(const struct skiff_catalog *cat, size_t i, struct skiff_model_info *out)
{
    int found = 0;
    rdlock(cat);
    if (i < cat->t->n) {
        *out = cat->t->m[i];
        found = 1;
    }
    unlock(cat);
    return found;
}

int
skiff_catalog_suggest(const struct skiff_catalog *cat, const char *name, size_t len, char *out,
                      size_t outlen)
{
    strip_prefix(&name, &len);
    size_t bestd = SIZE_MAX;
    if (outlen)
        out[0] = '\0';
    rdlock(cat);
    const struct table *t = cat->t;
    for (size_t i = 0; i < t->n; i++) {
        size_t d = skiff_edit_distance(name, len, t->m[i].name, strlen(t->m[i].name));
        if (d < bestd) {
            bestd = d;
            snprintf(out, outlen, "%s", t->m[i].name);
        }
    }
    unlock(cat);
    size_t allowed = 1 + strlen(out) / 4;
    if (allowed > 3)
        allowed = 3;
    if (bestd == SIZE_MAX || bestd > allowed) {
        if (outlen)
            out[0] = '\0';
        return 0;
    }
    return 1;
}

enum skiff_catalog_source
skiff_catalog_source(const struct skiff_catalog *cat)
{
    rdlock(cat);
    enum skiff_catalog_source s = cat->t->source;
    unlock(cat);
    return s;
}

size_t
skiff_catalog_count(const struct skiff_catalog *cat)
{
    rdlock(cat);
    size_t n = cat->t->n;
    unlock(cat);
    return n;
}

int
skiff_model_supports(const struct skiff_model_info *m, enum skiff_method method)
{
    if (m->methods == 0)
        return 1;
    switch (method) {
    case SKIFF_M_GENERATE:
    case SKIFF_M_STREAM:
        return (m->methods & SKIFF_CAT_GENERATE) != 0;
    case SKIFF_M_COUNT_TOKENS:
        /* The API lists countTokens for every model that counts; a model without it in
         * its list may still count through generateContent's usage, but not this way. */
        return (m->methods & (SKIFF_CAT_COUNT | SKIFF_CAT_GENERATE)) != 0;
    case SKIFF_M_EMBED:
        return (m->methods & SKIFF_CAT_EMBED) != 0;
    case SKIFF_M_BATCH_EMBED:
        /* The SDKs embed through batchEmbedContents even when the list does not name it. */
        return (m->methods & (SKIFF_CAT_EMBED | SKIFF_CAT_BATCH_EMBED)) != 0;
    default:
        return 1;
    }
}

/* ---- models.list ------------------------------------------------------------------------ */

static unsigned
methods_of(json_t *list)
{
    unsigned bits = 0;
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v)
    {
        const char *s = json_string_value(v);
        if (!s)
            continue;
        if (strcmp(s, "generateContent") == 0 || strcmp(s, "streamGenerateContent") == 0)
            bits |= SKIFF_CAT_GENERATE;
        else if (strcmp(s, "countTokens") == 0)
            bits |= SKIFF_CAT_COUNT;
        else if (strcmp(s, "embedContent") == 0)
            bits |= SKIFF_CAT_EMBED;
        else if (strcmp(s, "batchEmbedContents") == 0 || strcmp(s, "asyncBatchEmbedContent") == 0)
            bits |= SKIFF_CAT_BATCH_EMBED;
        else
            bits |= SKIFF_CAT_OTHER;
    }
    return bits;
}

/* One models.list entry into m; returns 0, or -1 when it has no usable name. */
static int
from_json(struct skiff_model_info *m, json_t *o)
{
    const char *name = json_string_value(json_object_get(o, "name"));
    if (!name)
        return -1;
    if (strncmp(name, "models/", 7) == 0)
        name += 7;
    if (!*name || strlen(name) >= sizeof m->name)
        return -1;
    memset(m, 0, sizeof *m);
    const struct builtin *b = builtin_find(name);
    if (b) {
        from_builtin(m, b);
    } else {
        snprintf(m->name, sizeof m->name, "%s", name);
        m->v1 = -1;
        m->max_temperature = -1;
    }
    json_t *v;
    if (json_is_integer(v = json_object_get(o, "inputTokenLimit")))
        m->input_limit = (long)json_integer_value(v);
    if (json_is_integer(v = json_object_get(o, "outputTokenLimit")))
        m->output_limit = (long)json_integer_value(v);
    if (json_is_array(v = json_object_get(o, "supportedGenerationMethods")))
        m->methods = methods_of(v);
    if (json_is_number(v = json_object_get(o, "maxTemperature")))
        m->max_temperature = json_number_value(v);
    if (!b) {
        m->sampling = json_object_get(o, "temperature") != NULL ||
                      json_object_get(o, "topP") != NULL || m->max_temperature >= 0;
        m->thinking = json_is_true(json_object_get(o, "thinking"));
    }
    return 0;
}

int
skiff_catalog_apply_list(struct skiff_catalog *cat, json_t *models)
{
    size_t n = json_array_size(models);
    if (n == 0 || n > MAX_MODELS)
        return -1;
    struct table *t = table_new(n, SKIFF_CATALOG_UPSTREAM);
    if (!t)
        return -1;
    size_t i;
    json_t *o;
    json_array_foreach(models, i, o)
    {
        if (from_json(&t->m[t->n], o) == 0) {
            t->hash[t->n] = fnv1a(t->m[t->n].name, strlen(t->m[t->n].name));
            t->n++;
        }
    }
    if (t->n == 0) {
        table_free(t);
        return -1;
    }
    pthread_rwlock_wrlock(&cat->lock);
    struct table *old = cat->t;
    cat->t = t;
    pthread_rwlock_unlock(&cat->lock);
    table_free(old);
    return (int)t->n;
}

/* ---- the blocking GET ------------------------------------------------------------------- */

struct sink {
    struct skiff_get_result *r;
    size_t cap;
};

static size_t
on_data(char *p, size_t size, size_t nmemb, void *ud)
{
    struct sink *s = ud;
    size_t n = size * nmemb;
    if (s->r->len + n > MAX_GET_BODY)
        return 0; /* too big: curl fails the transfer */
    if (s->r->len + n + 1 > s->cap) {
        size_t cap = s->cap ? s->cap : 4096;
        while (cap < s->r->len + n + 1)
            cap *= 2;
        char *b = realloc(s->r->body, cap);
        if (!b)
            return 0;
        s->r->body = b;
        s->cap = cap;
    }
    memcpy(s->r->body + s->r->len, p, n);
    s->r->len += n;
    s->r->body[s->r->len] = '\0';
    return n;
}

static size_t
on_header(char *p, size_t size, size_t nmemb, void *ud)
{
    struct skiff_get_result *r = ud;
    size_t n = size * nmemb;
    if (n > 12 && strncasecmp(p, "retry-after:", 12) == 0) {
        const char *v = p + 12;
        size_t vl = n - 12;
        while (vl && (*v == ' ' || *v == '\t')) {
            v++;
            vl--;
        }
        while (vl && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' '))
            vl--;
        if (vl >= sizeof r->retry_after)
            vl = sizeof r->retry_after - 1;
        memcpy(r->retry_after, v, vl);
        r->retry_after[vl] = '\0';
    }
    return n;
}

static long
elapsed_ms(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (long)((t1.tv_sec - t0->tv_sec) * 1000 + (t1.tv_nsec - t0->tv_nsec) / 1000000);
}

/* libcurl's progress callback (about once a second even while nothing moves): a non-zero
 * return aborts the transfer, so a set stop flag ends a blocking call promptly. */
static int
on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
    (void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
    return atomic_load((const atomic_int *)ud) != 0;
}

/* skiff_gemini_get, ended early (a transport failure) once *stop is set; stop may be NULL. */
static int
gemini_get(const char *url, const char *key, const char *proxy, const char *ca_file,
           long connect_timeout_ms, long timeout_ms, const atomic_int *stop,
           struct skiff_get_result *out)
{
    memset(out, 0, sizeof *out);
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    CURL *e = curl_easy_init();
    if (!e) {
        snprintf(out->error, sizeof out->error, "could not start a libcurl handle");
        return -1;
    }
    /* The key travels only in this header; the header list is wiped before it is freed. */
    size_t hl = strlen("x-goog-api-key: ") + strlen(key) + 1;
    char *hdr = malloc(hl);
    struct curl_slist *hdrs = NULL;
    if (hdr) {
        snprintf(hdr, hl, "x-goog-api-key: %s", key);
        hdrs = curl_slist_append(NULL, hdr);
        memset(hdr, 0, hl);
        free(hdr);
    }
    if (!hdrs) {
        curl_easy_cleanup(e);
        snprintf(out->error, sizeof out->error, "out of memory");
        return -1;
    }
    struct sink s = {out, 0};
    char errbuf[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, connect_timeout_ms);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &s);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, out);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
    if (ca_file && *ca_file) {
        curl_easy_setopt(e, CURLOPT_CAINFO, ca_file);
        curl_easy_setopt(e, CURLOPT_PROXY_CAINFO, ca_file);
    }
    if (stop) {
        curl_easy_setopt(e, CURLOPT_XFERINFOFUNCTION, on_progress);
        curl_easy_setopt(e, CURLOPT_XFERINFODATA, (void *)stop);
        curl_easy_setopt(e, CURLOPT_NOPROGRESS, 0L);
    }
    if (proxy && *proxy) {
        curl_easy_setopt(e, CURLOPT_PROXY, proxy);
        curl_easy_setopt(e, CURLOPT_SUPPRESS_CONNECT_HEADERS, 1L);
    } else {
        /* The configured proxy is the only one: an http_proxy variable must not divert keys. */
        curl_easy_setopt(e, CURLOPT_PROXY, "");
    }
    CURLcode rc = curl_easy_perform(e);
    int ret = 0;
    if (rc == CURLE_OK) {
        long code = 0;
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
        out->status = (int)code;
    } else {
        /* libcurl's messages name hosts and proxies, never request headers. */
        skiff_url_redact(errbuf[0] ? errbuf : curl_easy_strerror(rc), out->error,
                         sizeof out->error);
        ret = -1;
    }
    out->ms = elapsed_ms(&t0);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(e);
    return ret;
}

int
skiff_gemini_get(const char *url, const char *key, const char *proxy, const char *ca_file,
                 long connect_timeout_ms, long timeout_ms, struct skiff_get_result *out)
{
    return gemini_get(url, key, proxy, ca_file, connect_timeout_ms, timeout_ms, NULL, out);
}

void
skiff_get_result_release(struct skiff_get_result *r)
{
    free(r->body);
    r->body = NULL;
    r->len = 0;
}

/* Appends the models of one page to all (stealing them); returns nextPageToken or NULL. */
static char *
take_page(json_t *all, const struct skiff_get_result *r, char *err, size_t errlen)
{
    json_t *root = json_loadb(r->body ? r->body : "", r->len, 0, NULL);
    json_t *models = json_object_get(root, "models");
    char *next = NULL;
    if (!json_is_array(models)) {
        snprintf(err, errlen, "models.list answered something that is not a model list");
    } else {
        json_array_extend(all, models);
        const char *tok = json_string_value(json_object_get(root, "nextPageToken"));
        if (tok && *tok)
            next = strdup(tok);
    }
    json_decref(root);
    return next;
}

/* Percent-encodes a page token (they are base64-like and may hold + / =). */
static void
add_token(char *url, size_t cap, const char *tok)
{
    size_t o = strlen(url);
    o += (size_t)snprintf(url + o, cap > o ? cap - o : 0, "&pageToken=");
    for (const unsigned char *p = (const unsigned char *)tok; *p && o + 4 < cap; p++) {
        if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
            *p == '-' || *p == '_' || *p == '.' || *p == '~')
            url[o++] = (char)*p;
        else
            o += (size_t)snprintf(url + o, cap - o, "%%%02X", *p);
    }
    url[o < cap ? o : cap - 1] = '\0';
}

int
skiff_catalog_refresh(struct skiff_catalog *cat, const char *base_url, const char *key,
                      const char *proxy, const char *ca_file, char *err, size_t errlen)
{
    return skiff_catalog_refresh_until(cat, base_url, key, proxy, ca_file, NULL, err, errlen);
}

int
skiff_catalog_refresh_until(struct skiff_catalog *cat, const char *base_url, const char *key,
                            const char *proxy, const char *ca_file, const atomic_int *stop,
                            char *err, size_t errlen)
{
    char dummy[8];
    if (!err || !errlen) {
        err = dummy;
        errlen = sizeof dummy;
    }
    err[0] = '\0';
    json_t *all = json_array();
    char *token = NULL;
    int rc = -1;
    for (int page = 0; page < MAX_PAGES; page++) {
        char url[2048];
        snprintf(url, sizeof url, "%s/v1beta/models?pageSize=1000", base_url);
        if (token)
            add_token(url, sizeof url, token);
        free(token);
        token = NULL;
        struct skiff_get_result r;
        if (gemini_get(url, key, proxy, ca_file, 10000, 30000, stop, &r) < 0) {
            snprintf(err, errlen, "models.list failed: %s", r.error);
            skiff_get_result_release(&r);
            goto out;
        }
        if (r.status != 200) {
            snprintf(err, errlen, "models.list answered HTTP %d", r.status);
            skiff_get_result_release(&r);
            goto out;
        }
        token = take_page(all, &r, err, errlen);
        skiff_get_result_release(&r);
        if (err[0])
            goto out;
        if (!token)
            break;
    }
    rc = skiff_catalog_apply_list(cat, all);
    if (rc < 0)
        snprintf(err, errlen, "models.list held no usable model");
out:
    free(token);
    json_decref(all);
    return rc;
}
