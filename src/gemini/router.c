#include "gemini/router.h"

#include <string.h>

static const struct {
    const char *name;
    enum skiff_method m;
} methods[] = {
    {"generateContent", SKIFF_M_GENERATE},       {"streamGenerateContent", SKIFF_M_STREAM},
    {"countTokens", SKIFF_M_COUNT_TOKENS},       {"embedContent", SKIFF_M_EMBED},
    {"batchEmbedContents", SKIFF_M_BATCH_EMBED},
};

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

static int
alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

int
skiff_model_name_ok(const char *s, size_t n)
{
    if (n == 0 || n > 128 || !alnum(s[0]))
        return 0;
    for (size_t i = 1; i < n; i++)
        if (!alnum(s[i]) && s[i] != '-' && s[i] != '.' && s[i] != '_')
            return 0;
    return 1;
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
    if (eat(&p, end, "/v1beta/"))
        r->version = "v1beta";
    else if (eat(&p, end, "/v1/"))
        r->version = "v1";
    else
        return;
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
    if (memchr(p, '/', (size_t)(mend - p)))
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
