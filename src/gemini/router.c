#include "gemini/router.h"

#include <stdio.h>
#include <string.h>

static const struct {
    const char *name;
    enum skiff_method m;
} methods[] = {
    {"generateContent", SKIFF_M_GENERATE},
    {"streamGenerateContent", SKIFF_M_STREAM},
    {"countTokens", SKIFF_M_COUNT_TOKENS},
    {"embedContent", SKIFF_M_EMBED},
    {"batchEmbedContents", SKIFF_M_BATCH_EMBED},
    {"batchGenerateContent", SKIFF_M_BATCH_GENERATE},
    {"asyncBatchEmbedContent", SKIFF_M_ASYNC_BATCH_EMBED},
    {"predict", SKIFF_M_PREDICT},
    {"predictLongRunning", SKIFF_M_PREDICT_LONG},
};

static int eat(const char **p, const char *end, const char *lit);

/* The resource families by their path segment, and what their paths take. */
static const struct {
    const char *seg;
    enum skiff_res res;
    const char *list_methods; /* on /{ver}/{seg} */
    const char *item_methods; /* on /{ver}/{seg}/{id} */
    const char *verb;         /* on /{ver}/{seg}/{id}:{verb} (NULL: none) */
    const char *verb_method;
} families[] = {
    {"files", SKIFF_RES_FILES, "GET", "GET, DELETE", "download", "GET"},
    {"cachedContents", SKIFF_RES_CACHES, "GET, POST", "GET, PATCH, DELETE", NULL, NULL},
    {"batches", SKIFF_RES_BATCHES, "GET", "GET, DELETE", "cancel", "POST"},
    {"operations", SKIFF_RES_OPERATIONS, "GET", "GET, DELETE", "cancel", "POST"},
};

/* The static name of http_method when allow (", "-separated) lists it, else NULL. */
static const char *
allowed(const char *allow, const char *http_method)
{
    static const char *const verbs[] = {"GET", "POST", "PATCH", "DELETE", NULL};
    for (const char *const *v = verbs; *v; v++) {
        size_t n = strlen(*v);
        for (const char *a = allow; (a = strstr(a, *v)) != NULL; a += n)
            if ((a[n] == '\0' || a[n] == ',') && strcmp(http_method, *v) == 0)
                return *v;
    }
    if (strcmp(http_method, "HEAD") == 0 && strstr(allow, "GET"))
        return "GET";
    return NULL;
}

static void
resource(struct skiff_route *r, enum skiff_res res, const char *allow, const char *http_method)
{
    r->kind = SKIFF_ROUTE_RESOURCE;
    r->res = res;
    r->allow = allow;
    r->http_verb = allowed(allow, http_method);
    r->http_method_ok = r->http_verb != NULL;
}

void
skiff_route_res_name(const struct skiff_route *r, char *out, size_t outlen)
{
    out[0] = '\0';
    if (r->kind != SKIFF_ROUTE_RESOURCE || !r->res_id)
        return;
    for (size_t i = 0; i < sizeof families / sizeof families[0]; i++)
        if (families[i].res == r->res) {
            if (r->model)
                snprintf(out, outlen, "models/%.*s/%s/%.*s", (int)r->model_len, r->model,
                         families[i].seg, (int)r->res_id_len, r->res_id);
            else
                snprintf(out, outlen, "%s/%.*s", families[i].seg, (int)r->res_id_len, r->res_id);
        }
}

/* /{ver}/{family}[/{id}[:{verb}]] after the version: 1 when it is one (r filled), -1 for a
 * family's path that is none of its calls (404), 0 for no family. */
static int
route_family(const char *p, const char *end, const char *http_method, struct skiff_route *r)
{
    for (size_t i = 0; i < sizeof families / sizeof families[0]; i++) {
        const char *q = p;
        if (!eat(&q, end, families[i].seg))
            continue;
        if (q == end) {
            resource(r, families[i].res, families[i].list_methods, http_method);
            return 1;
        }
        if (!eat(&q, end, "/"))
            continue;
        const char *colon = memchr(q, ':', (size_t)(end - q));
        const char *idend = colon ? colon : end;
        if (!skiff_model_name_ok(q, (size_t)(idend - q)))
            return -1;
        r->res_id = q;
        r->res_id_len = (size_t)(idend - q);
        if (!colon) {
            resource(r, families[i].res, families[i].item_methods, http_method);
            return 1;
        }
        size_t vl = (size_t)(end - colon - 1);
        if (!families[i].verb || strlen(families[i].verb) != vl ||
            memcmp(colon + 1, families[i].verb, vl) != 0)
            return -1;
        r->res_verb = families[i].verb;
        resource(r, families[i].res, families[i].verb_method, http_method);
        return 1;
    }
    return 0;
}

const char *
skiff_method_name(enum skiff_method m)
{
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++)
        if (methods[i].m == m)
            return methods[i].name;
    return "";
}

static int
eat(const char **p, const char *end, const char *lit)
{
    size_t n = strlen(lit);
    if ((size_t)(end - *p) < n || memcmp(*p, lit, n) != 0)
        return 0;
    *p += n;
    return 1;
}

/* /v1beta/openai/... after "/v1beta/openai/": Google's OpenAI-compatible calls. */
static void
route_compat(const char *p, const char *end, const char *http_method, struct skiff_route *r)
{
    static const struct {
        const char *path, *allow;
    } calls[] = {{"chat/completions", "POST"}, {"embeddings", "POST"}, {"models", "GET"}};
    for (size_t i = 0; i < sizeof calls / sizeof calls[0]; i++) {
        const char *q = p;
        if (!eat(&q, end, calls[i].path))
            continue;
        if (q != end) {
            /* models/{id}: the id as the list gives it ("models/gemini-2.5-flash", its '/'
             * maybe %2F, as the openai SDK sends it) or bare; res_id is the bare id. */
            if (i != 2 || !eat(&q, end, "/"))
                continue;
            if (!eat(&q, end, "models/") && !eat(&q, end, "models%2F"))
                eat(&q, end, "models%2f");
            if (!skiff_model_name_ok(q, (size_t)(end - q)))
                return;
            r->res_id = q;
            r->res_id_len = (size_t)(end - q);
        }
        r->kind = SKIFF_ROUTE_COMPAT;
        r->compat = calls[i].path;
        r->allow = calls[i].allow;
        r->http_verb = allowed(calls[i].allow, http_method);
        r->http_method_ok = r->http_verb != NULL;
        return;
    }
}

void
skiff_route(const char *http_method, const char *path, size_t path_len, struct skiff_route *r)
{
    memset(r, 0, sizeof *r);
    const char *p = path, *end = path + path_len;
    int get = strcmp(http_method, "GET") == 0 || strcmp(http_method, "HEAD") == 0;
    int post = strcmp(http_method, "POST") == 0;

    if (path_len == 8 && memcmp(path, "/healthz", 8) == 0) {
        r->kind = SKIFF_ROUTE_HEALTH;
        r->http_method_ok = get;
        return;
    }
    int upload = eat(&p, end, "/upload");
    int alpha = 0;
    if (eat(&p, end, "/v1beta/"))
        r->version = "v1beta";
    else if (eat(&p, end, "/v1/"))
        r->version = "v1";
    else if (!upload && eat(&p, end, "/v1alpha/"))
        alpha = 1;
    else
        return;
    if (alpha)
        r->version = "v1alpha";
    if (!upload && strcmp(r->version, "v1beta") == 0 && eat(&p, end, "openai/")) {
        route_compat(p, end, http_method, r);
        if (r->kind != SKIFF_ROUTE_COMPAT)
            memset(r, 0, sizeof *r);
        return;
    }
    if (upload) {
        if (p + 5 == end && memcmp(p, "files", 5) == 0)
            resource(r, SKIFF_RES_UPLOAD, "POST", http_method);
        return;
    }
    if (alpha && eat(&p, end, "auth_tokens")) {
        if (p == end)
            resource(r, SKIFF_RES_AUTH_TOKENS, "POST", http_method);
        else
            memset(r, 0, sizeof *r);
        return;
    }
    /* v1alpha: the model calls and ephemeral tokens only (stored resources are v1beta's). */
    int fam = alpha ? 0 : route_family(p, end, http_method, r);
    if (fam) {
        if (fam < 0)
            memset(r, 0, sizeof *r);
        return;
    }
    if (!eat(&p, end, "models"))
        return;
    if (p == end || (p + 1 == end && *p == '/')) {
        r->kind = SKIFF_ROUTE_MODELS;
        r->http_method_ok = get;
        return;
    }
    if (!eat(&p, end, "/"))
        return;
    const char *colon = memchr(p, ':', (size_t)(end - p));
    const char *mend = colon ? colon : end;
    const char *slash = memchr(p, '/', (size_t)(mend - p));
    if (slash && skiff_model_name_ok(p, (size_t)(slash - p))) {
        /* models/{m}/operations/{id}: a long-running prediction's operation. */
        const char *q = slash + 1;
        if (eat(&q, end, "operations/") && !memchr(q, '/', (size_t)(end - q)) &&
            !memchr(q, ':', (size_t)(end - q)) && skiff_model_name_ok(q, (size_t)(end - q))) {
            r->model = p;
            r->model_len = (size_t)(slash - p);
            r->res_id = q;
            r->res_id_len = (size_t)(end - q);
            resource(r, SKIFF_RES_OPERATIONS, "GET", http_method);
        }
        return;
    }
    if (slash)
        return; /* tunedModels/x, models/a/b: paths skiff does not serve */
    r->model = p;
    r->model_len = (size_t)(mend - p);
    if (!skiff_model_name_ok(p, r->model_len)) {
        /* ".", "..", "%2e%2e", "": never a model, and never sent upstream. */
        r->kind = SKIFF_ROUTE_BAD_MODEL;
        r->http_method_ok = 1;
        return;
    }
    if (!colon) {
        r->kind = SKIFF_ROUTE_MODEL;
        r->http_method_ok = get;
        return;
    }
    const char *m = colon + 1;
    size_t mlen = (size_t)(end - m);
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++) {
        if (strlen(methods[i].name) == mlen && memcmp(methods[i].name, m, mlen) == 0) {
            r->kind = SKIFF_ROUTE_GENERATE;
            r->method = methods[i].m;
            r->method_name = methods[i].name;
            r->http_method_ok = post;
            return;
        }
    }
    r->model = NULL;
    r->model_len = 0;
}
