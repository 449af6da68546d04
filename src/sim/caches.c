#include "sim/caches.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim/catalog.h"
#include "sim/render.h"

#define DEFAULT_TTL_MS (3600LL * 1000) /* one hour when neither ttl nor expireTime [D] */
#define MIN_TOKENS 1024                /* [U] the 2.5 Flash minimum; Pro asks 4096 */
#define ID_LEN 12
#define LIST_DEFAULT 10 /* [U] */
#define LIST_MAX 1000

struct sim_cache {
    char id[48];
    char project[128];
    char model[96]; /* the concrete model id, without "models/" */
    char display_name[512];
    long tokens;
    int64_t create_ms, update_ms, expire_ms;
};

struct skiff_sim_caches {
    struct sim_cache *v; /* oldest first */
    size_t n, max;
};

struct skiff_sim_caches *
skiff_sim_caches_new(size_t max)
{
    struct skiff_sim_caches *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->v = calloc(max, sizeof *c->v);
    if (!c->v) {
        free(c);
        return NULL;
    }
    c->max = max;
    return c;
}

void
skiff_sim_caches_free(struct skiff_sim_caches *c)
{
    if (!c)
        return;
    free(c->v);
    free(c);
}

void
skiff_sim_caches_clear(struct skiff_sim_caches *c)
{
    c->n = 0;
}

static void
sweep(struct skiff_sim_caches *c, int64_t now)
{
    size_t w = 0;
    for (size_t i = 0; i < c->n; i++)
        if (c->v[i].expire_ms > now)
            c->v[w++] = c->v[i];
    c->n = w;
}

static struct sim_cache *
find(struct skiff_sim_caches *c, const char *id, size_t len)
{
    for (size_t i = 0; i < c->n; i++)
        if (strlen(c->v[i].id) == len && memcmp(c->v[i].id, id, len) == 0)
            return &c->v[i];
    return NULL;
}

/* The refusal for another project's, a missing or an expired cache [U: the wording]. */
static void
denied(struct skiff_sim_res_reply *r)
{
    skiff_sim_res_error(r, 403, "PERMISSION_DENIED",
                        "CachedContent not found (or permission denied)");
}

static json_t *
cache_json(const struct sim_cache *k)
{
    char name[64], model[128], ct[40], ut[40], et[40];
    snprintf(name, sizeof name, "cachedContents/%s", k->id);
    snprintf(model, sizeof model, "models/%s", k->model);
    skiff_sim_res_time(k->create_ms, ct, sizeof ct);
    skiff_sim_res_time(k->update_ms, ut, sizeof ut);
    skiff_sim_res_time(k->expire_ms, et, sizeof et);
    json_t *j = json_object();
    json_object_set_new(j, "name", json_string(name));
    if (k->display_name[0])
        json_object_set_new(j, "displayName", json_string(k->display_name));
    json_object_set_new(j, "model", json_string(model));
    json_object_set_new(j, "createTime", json_string(ct));
    json_object_set_new(j, "updateTime", json_string(ut));
    json_object_set_new(j, "expireTime", json_string(et));
    json_object_set_new(j, "usageMetadata",
                        json_pack("{s:I}", "totalTokenCount", (json_int_t)k->tokens));
    return j;
}

/*
 * Reads ttl or expireTime of body into *expire (ms). Both is a 400, as is a bad value.
 * Neither leaves *expire unchanged. Returns 0, or -1 with r set.
 */
static int
read_expiry(const json_t *body, int64_t now, int64_t *expire, struct skiff_sim_res_reply *r)
{
    const json_t *ttl = json_object_get(body, "ttl");
    const json_t *et = json_object_get(body, "expireTime");
    if (ttl && et) {
        skiff_sim_res_error(r, 400, "INVALID_ARGUMENT",
                            "Set either ttl or expireTime of a CachedContent, not both.");
        return -1;
    }
    if (ttl) {
        int64_t ms = skiff_sim_res_parse_duration(json_string_value(ttl));
        if (ms < 0) {
            skiff_sim_res_error(r, 400, "INVALID_ARGUMENT",
                                "Invalid value at 'cached_content.ttl' (type.googleapis.com/"
                                "google.protobuf.Duration): a ttl is seconds with an \"s\", "
                                "like \"300s\".");
            return -1;
        }
        *expire = now + ms;
    } else if (et) {
        int64_t ms = skiff_sim_res_parse_time(json_string_value(et) ? json_string_value(et) : "");
        if (ms < 0) {
            skiff_sim_res_error(r, 400, "INVALID_ARGUMENT",
                                "Invalid value at 'cached_content.expire_time' "
                                "(type.googleapis.com/google.protobuf.Timestamp): an "
                                "expireTime is RFC 3339, like \"2026-01-01T00:00:00Z\".");
            return -1;
        }
        *expire = ms;
    }
    return 0;
}

static int
create(struct skiff_sim_caches *c, struct skiff_sim_files *files, const struct skiff_sim_res_req *q,
       struct skiff_sim_res_reply *r)
{
    json_error_t je;
    json_t *body = json_loadb(q->body, q->body_len, 0, &je);
    if (!body || !json_is_object(body)) {
        skiff_sim_res_error(r, 400, "INVALID_ARGUMENT",
                            "Invalid JSON payload received. Unexpected token.");
        json_decref(body);
        return 0;
    }
    const char *model = json_string_value(json_object_get(body, "model"));
    const json_t *contents = json_object_get(body, "contents");
    const json_t *si = json_object_get(body, "systemInstruction");
    const struct skiff_sim_model *m = NULL;
    if (!model || !*model) {
        skiff_sim_res_error(r, 400, "INVALID_ARGUMENT",
                            "* CreateCachedContentRequest.cached_content.model: model is not "
                            "specified\n");
        goto out;
    }
    const char *id = strncmp(model, "models/", 7) == 0 ? model + 7 : model;
    m = skiff_sim_catalog_find(id, strlen(id));
    if (!m || !skiff_sim_model_on_version(m, "v1beta") ||
        !skiff_sim_model_supports(m, "createCachedContent")) {
        skiff_sim_res_error(r, 404, "NOT_FOUND",
                            "models/%.80s is not found for API version v1beta, or is not "
                            "supported for createCachedContent. Call ListModels to see the list "
                            "of available models and their supported methods.",
                            id);
        goto out;
    }
    if ((contents && !json_is_array(contents)) || (si && !json_is_object(si))) {
        skiff_sim_res_error(r, 400, "INVALID_ARGUMENT",
                            "contents is a list of Content and systemInstruction a Content.");
        goto out;
    }
    if (skiff_sim_files_check_contents(files, q->project, contents, si, q->now_ms, r) < 0)
        goto out;
    struct skiff_sim_prompt p;
    skiff_sim_prompt_read(contents, si, &p);
    if (p.tokens < MIN_TOKENS) {
        skiff_sim_res_error(r, 400, "INVALID_ARGUMENT",
                            "Cached content is too small. total_token_count=%ld, "
                            "min_total_token_count=%d",
                            p.tokens, MIN_TOKENS);
        goto out;
    }
    int64_t expire = q->now_ms + DEFAULT_TTL_MS;
    if (read_expiry(body, q->now_ms, &expire, r) < 0)
        goto out;
    sweep(c, q->now_ms);
    if (c->n == c->max) {
        skiff_sim_res_error(r, 429, "RESOURCE_EXHAUSTED",
                            "The simulator holds %zu cachedContents at most; delete some first.",
                            c->max);
        goto out;
    }
    struct sim_cache *k = &c->v[c->n];
    memset(k, 0, sizeof *k);
    uint64_t seed = q->id_seed;
    do
        skiff_sim_res_id(seed++, k->id, ID_LEN);
    while (find(c, k->id, strlen(k->id)));
    snprintf(k->project, sizeof k->project, "%s", q->project);
    snprintf(k->model, sizeof k->model, "%s", m->target);
    const char *dn = json_string_value(json_object_get(body, "displayName"));
    snprintf(k->display_name, sizeof k->display_name, "%s", dn ? dn : "");
    k->tokens = p.tokens;
    k->create_ms = k->update_ms = q->now_ms;
    k->expire_ms = expire;
    c->n++;
    r->status = 200;
    r->body = cache_json(k);
out:
    json_decref(body);
    return 0;
}

static const char *
list_project(const void *set, size_t i)
{
    const struct skiff_sim_caches *x = set;
    return x->v[i].project;
}

static json_t *
list_json(const void *set, size_t i, const struct skiff_sim_res_req *q)
{
    const struct skiff_sim_caches *x = set;
    return cache_json(&x->v[i]);
}

static int
list(struct skiff_sim_caches *c, const struct skiff_sim_res_req *q, struct skiff_sim_res_reply *r)
{
    struct skiff_sim_res_lister l = {
        c, c->n, list_project, list_json, "cachedContents", LIST_DEFAULT, LIST_MAX};
    skiff_sim_res_list(q, &l, r);
    return 0;
}

/* PATCH: only ttl and expireTime change (the API's rule; updateMask may name either). */
static int
patch(struct sim_cache *k, const struct skiff_sim_res_req *q, struct skiff_sim_res_reply *r)
{
    json_t *body = json_loadb(q->body, q->body_len, 0, NULL);
    if (!json_is_object(body)) {
        skiff_sim_res_error(r, 400, "INVALID_ARGUMENT",
                            "Invalid JSON payload received. Unexpected token.");
        json_decref(body);
        return 0;
    }
    const char *key;
    json_t *v;
    json_object_foreach(body, key, v)
    {
        if (strcmp(key, "ttl") != 0 && strcmp(key, "expireTime") != 0 && strcmp(key, "name") != 0) {
            skiff_sim_res_error(r, 400, "INVALID_ARGUMENT",
                                "Only ttl or expireTime of a CachedContent can be updated, not "
                                "%.60s.",
                                key);
            json_decref(body);
            return 0;
        }
    }
    int64_t expire = -1;
    if (read_expiry(body, q->now_ms, &expire, r) == 0) {
        if (expire < 0) {
            skiff_sim_res_error(r, 400, "INVALID_ARGUMENT",
                                "An update of a CachedContent sets ttl or expireTime.");
        } else {
            k->expire_ms = expire;
            k->update_ms = q->now_ms;
            r->status = 200;
            r->body = cache_json(k);
        }
    }
    json_decref(body);
    return 0;
}

const char *
skiff_sim_caches_route(const struct skiff_sim_res_req *q)
{
    const char *p = q->rest, *m = q->http_method;
    size_t n = q->rest_len;
    if (q->upload)
        return NULL;
    if (n == 14 && memcmp(p, "cachedContents", 14) == 0) {
        if (strcmp(m, "POST") == 0)
            return "cachedContents.create";
        return strcmp(m, "GET") == 0 ? "cachedContents.list" : NULL;
    }
    if (n <= 15 || memcmp(p, "cachedContents/", 15) != 0 || memchr(p + 15, '/', n - 15) ||
        memchr(p + 15, ':', n - 15))
        return NULL;
    if (strcmp(m, "GET") == 0)
        return "cachedContents.get";
    if (strcmp(m, "PATCH") == 0)
        return "cachedContents.patch";
    if (strcmp(m, "DELETE") == 0)
        return "cachedContents.delete";
    return NULL;
}

int
skiff_sim_caches_handle(struct skiff_sim_caches *c, struct skiff_sim_files *files,
                        const struct skiff_sim_res_req *q, struct skiff_sim_res_reply *r)
{
    const char *method = skiff_sim_caches_route(q);
    if (!method)
        return -1;
    if (strcmp(method, "cachedContents.create") == 0)
        return create(c, files, q, r);
    sweep(c, q->now_ms);
    if (strcmp(method, "cachedContents.list") == 0)
        return list(c, q, r);
    struct sim_cache *k = find(c, q->rest + 15, q->rest_len - 15);
    if (!k || strcmp(k->project, q->project) != 0) {
        denied(r);
        return 0;
    }
    if (strcmp(method, "cachedContents.patch") == 0)
        return patch(k, q, r);
    r->status = 200;
    if (strcmp(method, "cachedContents.get") == 0) {
        r->body = cache_json(k);
    } else {
        size_t i = (size_t)(k - c->v);
        memmove(&c->v[i], &c->v[i + 1], (c->n - i - 1) * sizeof *c->v);
        c->n--;
        r->body = json_object();
    }
    return 0;
}

long
skiff_sim_caches_use(struct skiff_sim_caches *c, const char *project, const char *name,
                     const char *model, const json_t *body, int64_t now_ms,
                     struct skiff_sim_res_reply *r)
{
    sweep(c, now_ms);
    const char *id = strncmp(name, "cachedContents/", 15) == 0 ? name + 15 : NULL;
    struct sim_cache *k = id ? find(c, id, strlen(id)) : NULL;
    if (!k || strcmp(k->project, project) != 0) {
        denied(r);
        return -1;
    }
    if (strcmp(k->model, model) != 0) {
        skiff_sim_res_error(r, 400, "INVALID_ARGUMENT",
                            "Model used by GenerateContent request (models/%s) and "
                            "CachedContent (models/%s) has to be the same.",
                            model, k->model);
        return -1;
    }
    if (json_object_get(body, "systemInstruction") || json_object_get(body, "tools") ||
        json_object_get(body, "toolConfig")) {
        skiff_sim_res_error(r, 400, "INVALID_ARGUMENT",
                            "CachedContent can not be used with GenerateContent request setting "
                            "system_instruction, tools or tool_config.\n\nProposed fix: move "
                            "those values to CachedContent from GenerateContent request.");
        return -1;
    }
    return k->tokens;
}

int
skiff_sim_caches_expire(struct skiff_sim_caches *c, const char *name, int64_t now_ms)
{
    const char *id = strncmp(name, "cachedContents/", 15) == 0 ? name + 15 : name;
    struct sim_cache *k = find(c, id, strlen(id));
    if (!k)
        return -1;
    k->expire_ms = now_ms;
    return 0;
}
