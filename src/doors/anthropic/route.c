#include "doors/anthropic/route.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "doors/anthropic/models.h"
#include "doors/models.h"

#define PREFIX "/anthropic"
#define PREFIX_LEN (sizeof PREFIX - 1)

static int
starts(const char *p, size_t n, const char *s)
{
    size_t k = strlen(s);
    return n >= k && memcmp(p, s, k) == 0;
}

static int
is_path(const char *p, size_t n, const char *s)
{
    return n == strlen(s) && memcmp(p, s, n) == 0;
}

int
skiff_anth_route(const char *method, const char *path, size_t path_len, struct skiff_anth_route *r,
                 struct skiff_anth_error *err)
{
    memset(r, 0, sizeof *r);
    if (starts(path, path_len, PREFIX "/")) {
        path += PREFIX_LEN;
        path_len -= PREFIX_LEN;
    }
    /* A trailing slash names the same resource (clients that join URLs leave one). */
    if (path_len > 1 && path[path_len - 1] == '/')
        path_len--;
    const char *want = "POST";
    if (is_path(path, path_len, "/v1/messages")) {
        r->kind = SKIFF_ANTH_ROUTE_MESSAGES;
    } else if (is_path(path, path_len, "/v1/messages/count_tokens")) {
        r->kind = SKIFF_ANTH_ROUTE_COUNT_TOKENS;
    } else if (is_path(path, path_len, "/v1/models")) {
        r->kind = SKIFF_ANTH_ROUTE_MODELS;
        want = "GET";
    } else if (starts(path, path_len, "/v1/models/")) {
        const char *id = path + 11;
        size_t n = path_len - 11;
        if (n == 0 || n > SKIFF_ANTH_MODEL_ID_MAX || memchr(id, '/', n))
            goto unknown;
        for (size_t i = 0; i < n; i++)
            if ((unsigned char)id[i] <= ' ' || (unsigned char)id[i] >= 0x7f)
                goto unknown;
        memcpy(r->model_id, id, n);
        r->model_id[n] = '\0';
        r->kind = SKIFF_ANTH_ROUTE_MODEL;
        want = "GET";
    } else {
        goto unknown;
    }
    if (strcmp(method, want) != 0) {
        int rc = skiff_anth_fail(err, 405, "%s is not allowed here: this endpoint takes %s", method,
                                 want);
        err->type = "invalid_request_error";
        r->kind = SKIFF_ANTH_ROUTE_NONE;
        return rc;
    }
    return 0;
unknown:
    r->kind = SKIFF_ANTH_ROUTE_NONE;
    return skiff_anth_fail(err, 404,
                           "Not found: %.*s is not an endpoint of skiff's Anthropic API (it "
                           "serves POST /v1/messages, POST /v1/messages/count_tokens, GET "
                           "/v1/models and GET /v1/models/{id}, also under /anthropic)",
                           (int)(path_len > 200 ? 200 : path_len), path);
}

int
skiff_anth_model_unmapped(const char *name, struct skiff_anth_error *err)
{
    /* A Claude name suggests its family's glob too: clients send dated names that change. */
    static const char *const families[] = {"opus", "sonnet", "haiku"};
    const char *family = NULL;
    if (strncmp(name, "claude-", 7) == 0)
        for (size_t i = 0; i < sizeof families / sizeof families[0] && !family; i++)
            if (strstr(name, families[i]))
                family = families[i];
    if (family)
        return skiff_anth_fail(err, 404,
                               "model: %s is not in skiff's models: map, so skiff does not know "
                               "which Gemini model serves it. Add it to skiff.yaml, for example "
                               "models: {\"claude-%s-*\": gemini-2.5-flash} for the whole "
                               "family, or \"%s\" alone",
                               name, family, name);
    return skiff_anth_fail(err, 404,
                           "model: %s is not in skiff's models: map, so skiff does not know which "
                           "Gemini model serves it. Add it to skiff.yaml, for example models: "
                           "{\"%s\": gemini-2.5-flash}, or ask for a Gemini model by name",
                           name, name);
}

/* Whether map[i]'s pattern is an exact name that no earlier entry already listed. */
static int
listable(const struct skiff_model_alias *map, size_t i)
{
    if (strchr(map[i].pattern, '*'))
        return 0;
    for (size_t j = 0; j < i; j++)
        if (strcmp(map[j].pattern, map[i].pattern) == 0)
            return 0;
    return 1;
}

static char *
display_name(const char *id, const char *target)
{
    size_t n = strlen(id) + strlen(target) + 4;
    char *s = malloc(n);
    if (s)
        snprintf(s, n, "%s (%s)", id, target);
    return s;
}

char *
skiff_anth_models_page(const struct skiff_model_alias *map, size_t n, const char *after_id,
                       const char *before_id, long limit)
{
    struct skiff_anth_model *list = calloc(n ? n : 1, sizeof *list);
    char *out = NULL;
    size_t k = 0;
    if (!list)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (!listable(map, i))
            continue;
        list[k].id = map[i].pattern;
        list[k].display_name = display_name(map[i].pattern, map[i].target);
        if (!list[k++].display_name)
            goto out_free;
    }
    out = skiff_anth_models_list(list, k, after_id, before_id, limit);
out_free:
    for (size_t i = 0; i < k; i++)
        free((char *)list[i].display_name);
    free(list);
    return out;
}

char *
skiff_anth_model_get(const struct skiff_model_alias *map, size_t n, const struct skiff_catalog *cat,
                     const char *id, struct skiff_anth_error *err)
{
    const char *target = skiff_models_resolve(map, n, cat, id);
    if (!target) {
        skiff_anth_model_unmapped(id, err);
        return NULL;
    }
    struct skiff_anth_model m = {.id = id, .display_name = display_name(id, target)};
    char *out = m.display_name ? skiff_anth_model_json(&m) : NULL;
    free((char *)m.display_name);
    if (!out)
        skiff_anth_fail(err, 500, "skiff ran out of memory rendering the model");
    return out;
}
