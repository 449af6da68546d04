#include "sim/batches.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim/catalog.h"
#include "sim/render.h"

#define ID_LEN 16
#define LIST_DEFAULT 10 /* [U] */
#define LIST_MAX 1000
#define MAX_REQUESTS 1000 /* a simulator bound; the API takes far more [U] */
#define TYPE_GEN "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatch"
#define TYPE_GEN_OUT                                                                               \
    "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatchOutput"
#define TYPE_EMB "type.googleapis.com/google.ai.generativelanguage.v1main.EmbedContentBatch"
#define TYPE_EMB_OUT                                                                               \
    "type.googleapis.com/google.ai.generativelanguage.v1main.EmbedContentBatchOutput"

struct sim_batch {
    char id[ID_LEN + 1];
    char project[128];
    char model[96];
    char display_name[512];
    int embed; /* asyncBatchEmbedContent */
    int cancelled;
    json_t *output; /* the inlinedResponses array, made at creation */
    int64_t create_ms, update_ms, done_ms;
};

struct skiff_sim_batches {
    struct sim_batch *v; /* oldest first */
    size_t n, max;
    long delay_ms;
};

struct skiff_sim_batches *
skiff_sim_batches_new(size_t max, long delay_ms)
{
    struct skiff_sim_batches *b = calloc(1, sizeof *b);
    if (!b)
        return NULL;
    b->v = calloc(max, sizeof *b->v);
    if (!b->v) {
        free(b);
        return NULL;
    }
    b->max = max;
    b->delay_ms = delay_ms;
    return b;
}

void
skiff_sim_batches_clear(struct skiff_sim_batches *b)
{
    for (size_t i = 0; i < b->n; i++)
        json_decref(b->v[i].output);
    b->n = 0;
}

void
skiff_sim_batches_free(struct skiff_sim_batches *b)
{
    if (!b)
        return;
    skiff_sim_batches_clear(b);
    free(b->v);
    free(b);
}

static struct sim_batch *
find(struct skiff_sim_batches *b, const char *id, size_t len)
{
    for (size_t i = 0; i < b->n; i++)
        if (strlen(b->v[i].id) == len && memcmp(b->v[i].id, id, len) == 0)
            return &b->v[i];
    return NULL;
}

static const char *
state_of(const struct sim_batch *k, int64_t now)
{
    if (k->cancelled)
        return "BATCH_STATE_CANCELLED";
    if (now >= k->done_ms)
        return "BATCH_STATE_SUCCEEDED";
    if (now >= k->create_ms + (k->done_ms - k->create_ms) / 4)
        return "BATCH_STATE_RUNNING";
    return "BATCH_STATE_PENDING";
}

/* The batch as the Operation the API returns for create, get and list. */
static json_t *
batch_json(const struct sim_batch *k, int64_t now)
{
    char name[32], model[128], t[40];
    snprintf(name, sizeof name, "batches/%s", k->id);
    snprintf(model, sizeof model, "models/%s", k->model);
    int done = k->cancelled || now >= k->done_ms;
    int ok = done && !k->cancelled;
    size_t n = json_array_size(k->output);
    json_t *md = json_object();
    json_object_set_new(md, "@type", json_string(k->embed ? TYPE_EMB : TYPE_GEN));
    json_object_set_new(md, "model", json_string(model));
    json_object_set_new(md, "displayName", json_string(k->display_name));
    skiff_sim_res_time(k->create_ms, t, sizeof t);
    json_object_set_new(md, "createTime", json_string(t));
    skiff_sim_res_time(done ? (k->cancelled ? k->update_ms : k->done_ms) : k->update_ms, t,
                       sizeof t);
    json_object_set_new(md, "updateTime", json_string(t));
    if (done)
        json_object_set_new(md, "endTime", json_string(t));
    /* batchStats counts are int64, which the API writes as strings. */
    char cnt[24], okc[24], pend[24];
    snprintf(cnt, sizeof cnt, "%zu", n);
    snprintf(okc, sizeof okc, "%zu", ok ? n : 0);
    snprintf(pend, sizeof pend, "%zu", done ? 0 : n);
    json_t *stats = json_pack("{s:s}", "requestCount", cnt);
    if (ok)
        json_object_set_new(stats, "successfulRequestCount", json_string(okc));
    if (!done)
        json_object_set_new(stats, "pendingRequestCount", json_string(pend));
    json_object_set_new(md, "batchStats", stats);
    json_object_set_new(md, "state", json_string(state_of(k, now)));
    json_object_set_new(md, "name", json_string(name));
    json_t *op = json_pack("{s:s}", "name", name);
    if (ok) {
        json_t *out = json_pack("{s:{s:O}}", "inlinedResponses", "inlinedResponses", k->output);
        json_object_set_new(md, "output", json_deep_copy(out));
        json_object_set_new(out, "@type", json_string(k->embed ? TYPE_EMB_OUT : TYPE_GEN_OUT));
        json_object_set_new(op, "metadata", md);
        json_object_set_new(op, "done", json_true());
        json_object_set_new(op, "response", out);
    } else {
        json_object_set_new(op, "metadata", md);
        if (done)
            json_object_set_new(op, "done", json_true());
    }
    return op;
}

/* One generateContent answer for an inlined request, as the model would give it. */
static json_t *
answer_one(const struct skiff_sim_model *m, const json_t *req, uint64_t seed)
{
    const json_t *contents = json_object_get(req, "contents");
    const json_t *si = json_object_get(req, "systemInstruction");
    if (!json_is_array(contents) || json_array_size(contents) == 0)
        return json_pack("{s:{s:i,s:s,s:s}}", "error", "code", 400, "message",
                         "* GenerateContentRequest.contents: contents is not specified\n", "status",
                         "INVALID_ARGUMENT");
    struct skiff_sim_prompt p;
    skiff_sim_prompt_read(contents, si, &p);
    const json_t *gc = json_object_get(req, "generationConfig");
    const json_t *mx = json_object_get(gc, "maxOutputTokens");
    struct skiff_sim_answer a;
    struct skiff_sim_answer_opts o = {
        .prompt = &p,
        .max_output_tokens = json_is_integer(mx) ? (long)json_integer_value(mx) : 8192,
        .thinking_budget = 0,
        .model_version = m->target,
        .id_seed = seed,
        .stops = json_object_get(gc, "stopSequences"),
    };
    if (skiff_sim_answer_make(&a, &o) != 0)
        return NULL;
    json_t *r = skiff_sim_render_response(&a, SIZE_MAX);
    skiff_sim_answer_release(&a);
    return r;
}

/* One embedContent answer for an inlined embed request. */
static json_t *
embed_one(const json_t *req)
{
    const json_t *parts = json_object_get(json_object_get(req, "content"), "parts");
    const json_t *t = json_object_get(json_array_get(parts, 0), "text");
    const json_t *dv = json_object_get(req, "outputDimensionality");
    json_t *emb = skiff_sim_render_embedding(
        json_string_value(t) ? json_string_value(t) : "", json_string_length(t),
        json_string_value(json_object_get(req, "taskType")),
        json_is_integer(dv) ? (long)json_integer_value(dv) : 3072);
    return json_pack("{s:o}", "embedding", emb);
}

/* POST models/{m}:batchGenerateContent or :asyncBatchEmbedContent. */
static int
create(struct skiff_sim_batches *b, const struct skiff_sim_res_req *q, int embed,
       struct skiff_sim_res_reply *r)
{
    const char *colon = memchr(q->rest, ':', q->rest_len);
    size_t idlen = (size_t)(colon - (q->rest + 7));
    const struct skiff_sim_model *m = skiff_sim_catalog_find(q->rest + 7, idlen);
    const char *method = embed ? "asyncBatchEmbedContent" : "batchGenerateContent";
    if (!m || !skiff_sim_model_on_version(m, "v1beta") || !skiff_sim_model_supports(m, method)) {
        skiff_sim_res_error(r, 404, "NOT_FOUND",
                            "models/%.*s is not found for API version v1beta, or is not "
                            "supported for %s. Call ListModels to see the list of available "
                            "models and their supported methods.",
                            (int)(idlen > 80 ? 80 : idlen), q->rest + 7, method);
        return 0;
    }
    json_t *body = json_loadb(q->body, q->body_len, 0, NULL);
    const json_t *batch = json_object_get(body, "batch");
    const json_t *list = json_object_get(
        json_object_get(json_object_get(batch, "inputConfig"), "requests"), "requests");
    const char *dn = json_string_value(json_object_get(batch, "displayName"));
    if (!json_is_object(batch) || !json_is_array(list) || json_array_size(list) == 0) {
        skiff_sim_res_error(r, 400, "INVALID_ARGUMENT",
                            json_is_object(body) ? "* BatchGenerateContentRequest.batch."
                                                   "input_config: requests are required\n"
                                                 : "Invalid JSON payload received.");
        goto out;
    }
    if (json_array_size(list) > MAX_REQUESTS) {
        skiff_sim_res_error(r, 400, "INVALID_ARGUMENT",
                            "The simulator takes %d inlined requests a batch at most.",
                            MAX_REQUESTS);
        goto out;
    }
    if (b->n == b->max) {
        skiff_sim_res_error(r, 429, "RESOURCE_EXHAUSTED",
                            "The simulator holds %zu batches at most; delete some first.", b->max);
        goto out;
    }
    json_t *output = json_array();
    size_t i;
    json_t *item;
    json_array_foreach(list, i, item)
    {
        const json_t *rq = json_object_get(item, "request");
        json_t *ans = embed ? embed_one(rq) : answer_one(m, rq, q->id_seed + i);
        json_t *one = json_object();
        if (ans && json_object_get(ans, "error"))
            json_object_set(one, "error", json_object_get(ans, "error"));
        else if (ans)
            json_object_set(one, "response", ans);
        json_decref(ans);
        const json_t *md = json_object_get(item, "metadata");
        if (md)
            json_object_set(one, "metadata", (json_t *)md);
        json_array_append_new(output, one);
    }
    struct sim_batch *k = &b->v[b->n];
    memset(k, 0, sizeof *k);
    uint64_t seed = q->id_seed;
    do
        skiff_sim_res_id(seed++, k->id, ID_LEN);
    while (find(b, k->id, strlen(k->id)));
    snprintf(k->project, sizeof k->project, "%s", q->project);
    snprintf(k->model, sizeof k->model, "%s", m->target);
    snprintf(k->display_name, sizeof k->display_name, "%s", dn ? dn : "");
    k->embed = embed;
    k->output = output;
    k->create_ms = k->update_ms = q->now_ms;
    k->done_ms = q->now_ms + b->delay_ms;
    b->n++;
    r->status = 200;
    r->body = batch_json(k, q->now_ms);
out:
    json_decref(body);
    return 0;
}

static const char *
list_project(const void *set, size_t i)
{
    const struct skiff_sim_batches *x = set;
    return x->v[i].project;
}

static json_t *
list_json(const void *set, size_t i, const struct skiff_sim_res_req *q)
{
    const struct skiff_sim_batches *x = set;
    return batch_json(&x->v[i], q->now_ms);
}

static int
list(struct skiff_sim_batches *b, const struct skiff_sim_res_req *q, struct skiff_sim_res_reply *r)
{
    struct skiff_sim_res_lister l = {
        b, b->n, list_project, list_json, "operations", LIST_DEFAULT, LIST_MAX};
    skiff_sim_res_list(q, &l, r);
    return 0;
}

/* Whether rest is "models/{id}:" + method, with an id free of '/'. */
static int
is_model_method(const struct skiff_sim_res_req *q, const char *method)
{
    size_t ml = strlen(method);
    if (q->rest_len <= 7 + 1 + ml || memcmp(q->rest, "models/", 7) != 0)
        return 0;
    const char *colon = memchr(q->rest + 7, ':', q->rest_len - 7);
    return colon && colon > q->rest + 7 &&
           !memchr(q->rest + 7, '/', (size_t)(colon - q->rest - 7)) &&
           (size_t)(q->rest + q->rest_len - colon - 1) == ml && memcmp(colon + 1, method, ml) == 0;
}

const char *
skiff_sim_batches_route(const struct skiff_sim_res_req *q)
{
    const char *p = q->rest, *m = q->http_method;
    size_t n = q->rest_len;
    if (q->upload)
        return NULL;
    if (strcmp(m, "POST") == 0 && is_model_method(q, "batchGenerateContent"))
        return "models.batchGenerateContent";
    if (strcmp(m, "POST") == 0 && is_model_method(q, "asyncBatchEmbedContent"))
        return "models.asyncBatchEmbedContent";
    if (n == 7 && memcmp(p, "batches", 7) == 0)
        return strcmp(m, "GET") == 0 ? "batches.list" : NULL;
    if (n <= 8 || memcmp(p, "batches/", 8) != 0 || memchr(p + 8, '/', n - 8))
        return NULL;
    const char *colon = memchr(p + 8, ':', n - 8);
    if (colon)
        return strcmp(m, "POST") == 0 && (size_t)(p + n - colon) == 7 &&
                       memcmp(colon, ":cancel", 7) == 0
                   ? "batches.cancel"
                   : NULL;
    if (strcmp(m, "GET") == 0)
        return "batches.get";
    return strcmp(m, "DELETE") == 0 ? "batches.delete" : NULL;
}

int
skiff_sim_batches_handle(struct skiff_sim_batches *b, const struct skiff_sim_res_req *q,
                         struct skiff_sim_res_reply *r)
{
    const char *method = skiff_sim_batches_route(q);
    if (!method)
        return -1;
    if (strcmp(method, "models.batchGenerateContent") == 0)
        return create(b, q, 0, r);
    if (strcmp(method, "models.asyncBatchEmbedContent") == 0)
        return create(b, q, 1, r);
    if (strcmp(method, "batches.list") == 0)
        return list(b, q, r);
    const char *id = q->rest + 8;
    const char *colon = memchr(id, ':', q->rest_len - 8);
    size_t idlen = colon ? (size_t)(colon - id) : q->rest_len - 8;
    struct sim_batch *k = find(b, id, idlen);
    if (!k || strcmp(k->project, q->project) != 0) {
        char shown[ID_LEN + 8];
        snprintf(shown, sizeof shown, "%.*s", (int)(idlen > ID_LEN + 4 ? ID_LEN + 4 : idlen), id);
        skiff_sim_res_denied(r, "Batch", shown);
        return 0;
    }
    r->status = 200;
    if (strcmp(method, "batches.get") == 0) {
        r->body = batch_json(k, q->now_ms);
    } else if (strcmp(method, "batches.cancel") == 0) {
        if (q->now_ms < k->done_ms && !k->cancelled) {
            k->cancelled = 1;
            k->update_ms = q->now_ms;
        }
        r->body = json_object();
    } else {
        json_decref(k->output);
        size_t i = (size_t)(k - b->v);
        memmove(&b->v[i], &b->v[i + 1], (b->n - i - 1) * sizeof *b->v);
        b->n--;
        r->body = json_object();
    }
    return 0;
}
