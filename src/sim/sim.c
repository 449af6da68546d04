#include "sim/sim.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <uv.h>

#include "base/clock.h"
#include "base/err.h"
#include "gemini/error.h"
#include "base/hash.h"
#include "gemini/live.h"
#include "base/log.h"
#include "server/http.h"
#include "server/server.h"
#include "sim/answer.h"
#include "sim/auth.h"
#include "sim/batches.h"
#include "sim/caches.h"
#include "sim/catalog.h"
#include "sim/control.h"
#include "sim/compat.h"
#include "sim/faults.h"
#include "sim/files.h"
#include "sim/live.h"
#include "sim/plan.h"
#include "sim/predict.h"
#include "sim/quota.h"
#include "sim/render.h"
#include "sim/resource.h"
#include "sim/resroute.h"
#include "sim/script.h"
#include "sim/simconf.h"
#include "sim/tools.h"
#include "sim/validate.h"

#define MAX_BODY (20u * 1024 * 1024) /* the API's inline request limit */
#define QUOTA_ENTRIES 100000
#define SCRIPT_ENTRIES 10000
#define LOG_ENTRIES 10000
#define FILE_ENTRIES 10000
#define UPLOAD_ENTRIES 1000
#define CACHE_ENTRIES 10000
#define BATCH_ENTRIES 1000
#define LIVE_SESSIONS 256
#define LIVE_TOKENS 1000

/* ---- the API ---- */

/*
 * Splits "/v1beta/models/ID:method" into c. Returns 0, or -1 for a path that is not an API
 * path (404). kind gets "models.list", "models.get" or the method after ':'.
 */
static int
route(const struct skiff_request *req, struct call *c)
{
    const char *p = req->path, *end = req->path + req->path_len;
    size_t rest;
    if (req->path_len >= 8 && memcmp(p, "/v1beta/", 8) == 0) {
        c->version = "v1beta";
        p += 8;
    } else if (req->path_len >= 4 && memcmp(p, "/v1/", 4) == 0) {
        c->version = "v1";
        p += 4;
    } else if (req->path_len >= 9 && memcmp(p, "/v1alpha/", 9) == 0) {
        c->version = "v1alpha"; /* answered like v1beta */
        p += 9;
    } else {
        return -1;
    }
    rest = (size_t)(end - p);
    if (rest == 6 && memcmp(p, "models", 6) == 0) {
        snprintf(c->method, sizeof c->method, "models.list");
        return strcmp(req->method, "GET") == 0 ? 0 : -1;
    }
    if (rest <= 7 || memcmp(p, "models/", 7) != 0)
        return -1;
    p += 7;
    const char *colon = memchr(p, ':', (size_t)(end - p));
    const char *idend = colon ? colon : end;
    if (idend == p || (size_t)(idend - p) >= sizeof c->model_id ||
        memchr(p, '/', (size_t)(idend - p)))
        return -1;
    memcpy(c->model_id, p, (size_t)(idend - p));
    c->model_id[idend - p] = '\0';
    if (!colon) {
        snprintf(c->method, sizeof c->method, "models.get");
        return strcmp(req->method, "GET") == 0 ? 0 : -1;
    }
    size_t mlen = (size_t)(end - colon - 1);
    static const char *const methods[] = {"generateContent", "streamGenerateContent", "countTokens",
                                          "embedContent",    "batchEmbedContents",    NULL};
    for (const char *const *m = methods; *m; m++)
        if (strlen(*m) == mlen && memcmp(*m, colon + 1, mlen) == 0) {
            snprintf(c->method, sizeof c->method, "%s", *m);
            return strcmp(req->method, "POST") == 0 ? 0 : -1;
        }
    return -1;
}

/* Logs generationConfig.temperature (tests check what a relay changed); the body is parsed
 * only when it mentions a temperature at all. */
static void
log_temperature(struct skiff_sim_log_entry *e, const char *body, size_t len)
{
    if (!len || !memmem(body, len, "\"temperature\"", 13))
        return;
    json_t *root = json_loadb(body, len, 0, NULL);
    json_t *t = json_object_get(json_object_get(root, "generationConfig"), "temperature");
    if (json_is_number(t)) {
        e->temperature = json_number_value(t);
        e->has_temperature = 1;
    }
    json_decref(root);
}

/*
 * The API handler: route, credentials, script, auth, model, validation, quota, faults,
 * answer. Each stage either plans a reply and stops, or passes to the next; go() sends.
 */
static void
handle_api(struct sim *sim, struct skiff_request *req, struct sim_req *sr)
{
    struct call c;
    memset(&c, 0, sizeof c);
    struct skiff_sim_log_entry *e = skiff_sim_log_add(&sim->log);
    sr->seq = e->seq;
    e->ts_ms = skiff_now_ms();
    snprintf(e->http_method, sizeof e->http_method, "%s", req->method);
    snprintf(e->path, sizeof e->path, "%.*s", (int)req->path_len, req->path);
    e->body_bytes = req->body_len;
    e->body_fnv = skiff_fnv1a64(SKIFF_FNV64_BASIS, req->body, req->body_len);
    log_temperature(e, req->body, req->body_len);
    /* One draw per request keeps every later request's randomness independent of this one. */
    skiff_sim_rng_seed(&sr->rng, skiff_sim_rng_next(&sim->rng));
    sr->reset_after = -1;
    sr->chunk_min = sim->conf.chunk_min;
    sr->chunk_max = sim->conf.chunk_max;
    long latency = pick(sr, sim->conf.latency_min, sim->conf.latency_max);
    /* Drawn only when configured, so the draws of a run without it stay as they were. */
    if (sim->conf.think_max > 0)
        sr->think_ms = pick(sr, sim->conf.think_min, sim->conf.think_max);

    struct skiff_sim_compat_reply cr; /* Google's OpenAI-compatible endpoint (compat.c) */
    if (skiff_sim_live_auth_token(sim, req, e, &cr) ||
        skiff_sim_compat(&sim->conf, &sim->script, req, e, &cr)) {
        plan_body(sr, cr.status, cr.content_type, cr.body, cr.len);
        goto send;
    }
    /* Resources first: a batch is created on a model path (models/{m}:batchGenerateContent). */
    if (plan_resource(sim, req, sr, &c, e, &latency) == 0)
        goto send;
    if (route(req, &c) < 0) {
        plan_error(sr, 404, "NOT_FOUND", "Method not found.", NULL, 0);
        goto send;
    }
    char alt[16] = "";
    if (skiff_http_query(req, "alt", alt, sizeof alt) < 0)
        skiff_http_query(req, "$alt", alt, sizeof alt);
    c.stream = strcmp(c.method, "streamGenerateContent") == 0;
    c.sse = c.stream && strncmp(alt, "sse", 3) == 0;
    c.model = c.model_id[0] ? skiff_sim_catalog_find(c.model_id, strlen(c.model_id)) : NULL;
    if (c.model && !skiff_sim_model_on_version(c.model, c.version))
        c.model = NULL;
    read_credentials(req, &c);
    snprintf(e->version, sizeof e->version, "%s", c.version);
    snprintf(e->model, sizeof e->model, "%s", c.model_id);
    snprintf(e->method, sizeof e->method, "%s", c.method);
    snprintf(e->key, sizeof e->key, "%s", c.key);
    e->has_key = c.has_key;
    snprintf(e->alt, sizeof e->alt, "%s", alt);
    e->stream = c.stream;

    /* Scripts come first: a test scripts exactly what it wants to see. */
    struct skiff_sim_reply *script =
        skiff_sim_script_take(&sim->script, c.model_id, c.model ? c.model->target : NULL,
                              c.has_key ? c.key : NULL, c.method);
    if (script) {
        e->scripted = 1;
        if (script->latency_ms >= 0)
            latency = script->latency_ms;
        if (script->think_ms >= 0)
            sr->think_ms = script->think_ms;
        json_t *h = script->headers;
        sr->headers = h ? json_incref(h) : NULL;
        if (script->kind != SKIFF_SIM_REPLY_ANSWER) {
            plan_scripted(sr, &c, script);
            apply_stream_overrides(sr, &c, script);
            skiff_sim_reply_unref(script);
            goto send;
        }
    }

    if (plan_auth(sr, &c) < 0)
        goto send_script;

    if (strcmp(c.method, "models.list") == 0) {
        char size[24] = "", token[128] = "";
        skiff_http_query(req, "pageSize", size, sizeof size);
        skiff_http_query(req, "pageToken", token, sizeof token);
        long n = strtol(size, NULL, 10);
        json_t *page = n < 0 ? NULL : skiff_sim_catalog_list_json(c.version, n, token);
        if (!page)
            plan_error(sr, 400, "INVALID_ARGUMENT",
                       n < 0 ? "Invalid page size." : "Invalid page token.", NULL, 0);
        else
            plan_json(sr, 200, page);
        json_decref(page);
        goto send_script;
    }
    if (strcmp(c.method, "models.get") == 0) {
        if (!c.model) {
            char msg[256];
            snprintf(msg, sizeof msg, "Model is not found: models/%s for api version %s",
                     c.model_id, c.version);
            plan_error(sr, 404, "NOT_FOUND", msg, NULL, 0);
        } else {
            json_t *m = skiff_sim_catalog_model_json(c.model);
            plan_json(sr, 200, m);
            json_decref(m);
        }
        goto send_script;
    }
    if (!c.model || !skiff_sim_model_supports(c.model, c.method)) {
        char msg[384];
        snprintf(msg, sizeof msg,
                 "models/%s is not found for API version %s, or is not supported for %s. Call "
                 "ListModels to see the list of available models and their supported methods.",
                 c.model_id, c.version, c.method);
        plan_error(sr, 404, "NOT_FOUND", msg, NULL, is_stream_array(&c));
        goto send_script;
    }

    /* Validation. */
    struct skiff_sim_invalid inv = {0};
    json_t *body = skiff_sim_parse_body(req->body, req->body_len, &inv);
    if (!body) {
        plan_invalid(sr, &c, &inv);
        goto send_script;
    }
    struct skiff_sim_gen gen = {0};
    struct skiff_sim_prompt prompt = {0};
    int counted = strcmp(c.method, "countTokens") != 0;
    int rc = 0;
    long cached = 0;
    long dims = 0;
    const json_t *content = NULL;
    if (strcmp(c.method, "countTokens") == 0) {
        const json_t *contents, *si;
        rc = skiff_sim_validate_count(c.model, c.version, body, &contents, &si, &inv);
        if (!rc)
            skiff_sim_prompt_read(contents, si, &prompt);
    } else if (strcmp(c.method, "embedContent") == 0) {
        rc = skiff_sim_validate_embed(c.model, body, &content, &dims, &inv);
        if (!rc) {
            json_t *one = json_pack("[O]", content);
            skiff_sim_prompt_read(one, NULL, &prompt);
            json_decref(one);
        }
    } else if (strcmp(c.method, "batchEmbedContents") == 0) {
        rc = skiff_sim_validate_batch_embed(c.model, body, &inv);
        if (!rc) {
            json_t *all = json_array();
            size_t i;
            json_t *r;
            json_array_foreach(json_object_get(body, "requests"), i, r)
                json_array_append(all, json_object_get(r, "content"));
            skiff_sim_prompt_read(all, NULL, &prompt);
            json_decref(all);
        }
    } else {
        rc = skiff_sim_validate_generate(c.model, c.version, body, &gen, &inv);
        if (!rc)
            rc = skiff_sim_tools_check(c.model, body, &inv);
        if (!rc)
            rc = check_references(sim, &c, gen.contents, gen.system_instruction, &inv);
        if (!rc && (cached = use_cache(sim, &c, body, &inv)) < 0)
            rc = (int)cached;
        if (!rc) {
            skiff_sim_prompt_read(gen.contents, gen.system_instruction, &prompt);
            prompt.tokens += cached; /* promptTokenCount includes the cache's tokens */
        }
    }
    if (!rc && prompt.tokens > c.model->input_limit) {
        snprintf(inv.message, sizeof inv.message,
                 "The input token count (%ld) exceeds the maximum number of tokens allowed (%d).",
                 prompt.tokens, c.model->input_limit);
        inv.status = 400;
        rc = SKIFF_EINVAL;
    }
    if (rc) {
        plan_invalid(sr, &c, &inv);
        json_decref(body);
        goto send_script;
    }

    /* Quota, unless a script already decided this request's fate. */
    struct skiff_sim_limits lim;
    skiff_sim_conf_limits(&sim->conf, c.model->target, &lim);
    int64_t now = skiff_now_ms();
    if (counted && !script) {
        struct skiff_sim_verdict v;
        skiff_sim_quota_check(sim->quota, c.key, c.model->target, &lim, prompt.tokens, now, &v);
        if (v.n) {
            plan_quota(sr, &c, &v);
            json_decref(body);
            goto send;
        }
    }

    /* Faults: the first draw of the request's generator decides. */
    double u = skiff_sim_rng_unit(&sr->rng);
    enum skiff_sim_fault fault =
        script ? SKIFF_SIM_FAULT_NONE : skiff_sim_faults_pick(&sim->conf.faults, c.model_id, u);
    if (fault == SKIFF_SIM_FAULT_NONE && !script && strcmp(c.model_id, c.model->target) != 0)
        fault = skiff_sim_faults_pick(&sim->conf.faults, c.model->target, u);
    if (fault != SKIFF_SIM_FAULT_NONE)
        e->fault = skiff_sim_fault_name(fault);
    int arr = is_stream_array(&c);
    switch (fault) {
    case SKIFF_SIM_FAULT_500:
    case SKIFF_SIM_FAULT_503:
    case SKIFF_SIM_FAULT_504: {
        int st = fault == SKIFF_SIM_FAULT_500 ? 500 : fault == SKIFF_SIM_FAULT_503 ? 503 : 504;
        plan_error(sr, st, NULL, default_message(st), NULL, arr);
        json_decref(body);
        goto send;
    }
    case SKIFF_SIM_FAULT_HANG:
        sr->plan = PLAN_HANG;
        json_decref(body);
        goto send;
    case SKIFF_SIM_FAULT_429: {
        /* A per-minute refusal as the quota module words it, with a short wait: the load
         * the API sheds with 429s that no quota of the caller's explains. */
        long rpm = lim.rpm > 0 ? lim.rpm : c.model->free_rpm > 0 ? c.model->free_rpm : 10;
        struct skiff_sim_verdict qv = {1, {{SKIFF_SIM_QUOTA_RPM, rpm, pick(sr, 1000, 4999)}}};
        plan_quota(sr, &c, &qv);
        json_decref(body);
        goto send;
    }
    case SKIFF_SIM_FAULT_RESET:
        if (!c.stream) {
            sr->plan = PLAN_RESET;
            json_decref(body);
            goto send;
        }
        break;
    default:
        break;
    }

    /* The request is answered: it counts against the quota now. */
    if (counted && !script)
        skiff_sim_quota_spend(sim->quota, c.key, c.model->target, prompt.tokens, now);

    if (strcmp(c.method, "countTokens") == 0) {
        json_t *r = json_object();
        if (prompt.tokens) {
            json_object_set_new(r, "totalTokens", json_integer(prompt.tokens));
            json_object_set_new(r, "promptTokensDetails",
                                json_pack("[{s:s,s:I}]", "modality", "TEXT", "tokenCount",
                                          (json_int_t)prompt.tokens));
        }
        plan_json(sr, 200, r);
        json_decref(r);
    } else if (strcmp(c.method, "embedContent") == 0) {
        const json_t *t =
            json_object_get(json_array_get(json_object_get(content, "parts"), 0), "text");
        json_t *emb = skiff_sim_render_embedding(
            json_string_value(t) ? json_string_value(t) : "", json_string_length(t),
            json_string_value(skiff_sim_field(body, "taskType")), dims);
        json_t *r = json_pack("{s:o}", "embedding", emb);
        plan_json(sr, 200, r);
        json_decref(r);
    } else if (strcmp(c.method, "batchEmbedContents") == 0) {
        json_t *list = json_array();
        size_t i;
        json_t *rq;
        json_array_foreach(json_object_get(body, "requests"), i, rq)
        {
            const json_t *ct = json_object_get(rq, "content");
            const json_t *t =
                json_object_get(json_array_get(json_object_get(ct, "parts"), 0), "text");
            const json_t *dv = skiff_sim_field(rq, "outputDimensionality");
            json_array_append_new(
                list, skiff_sim_render_embedding(
                          json_string_value(t) ? json_string_value(t) : "", json_string_length(t),
                          json_string_value(skiff_sim_field(rq, "taskType")),
                          json_is_number(dv) ? (long)json_number_value(dv) : 3072));
        }
        json_t *r = json_pack("{s:o}", "embeddings", list);
        plan_json(sr, 200, r);
        json_decref(r);
    } else if (plan_answer(sr, &c, body, &gen, &prompt, cached) != 0) {
        plan_error(sr, 500, NULL, default_message(500), NULL, arr);
    }
    json_decref(body);

    if (fault == SKIFF_SIM_FAULT_RESET && sr->plan == PLAN_STREAM)
        /* A broken stream: some events arrive, then the connection is reset. */
        sr->reset_after = sr->nevents > 1 ? pick(sr, 1, (long)sr->nevents - 1) : 0;

send_script:
    if (script) {
        apply_stream_overrides(sr, &c, script);
        skiff_sim_reply_unref(script);
    }
send:
    go(sr, latency + sr->think_wait);
}

static void
handler(struct skiff_request *req, void *worker_data)
{
    struct sim *sim = worker_data;
    if (req->path_len >= 6 && memcmp(req->path, "/_sim/", 6) == 0) {
        /* The control endpoints exist only for loopback clients; others see no such path. */
        if (skiff_http_peer_is_loopback(req))
            handle_control(sim, req);
        else {
            /* The same headers as any other 404, so the control paths cannot be told apart. */
            skiff_http_add_header(req, "X-Gemini-Service-Tier", "standard");
            skiff_gerr_respond(req, 404, "NOT_FOUND", "Method not found.", NULL);
        }
        return;
    }
    if (skiff_live_path(req->path, req->path_len, NULL)) {
        skiff_sim_live_accept(sim, req);
        return;
    }
    struct sim_req *sr = calloc(1, sizeof *sr);
    if (!sr) {
        skiff_http_abort(req, "out of memory");
        return;
    }
    sr->sim = sim;
    sr->req = req;
    req->data = sr;
    req->on_abort = on_abort;
    handle_api(sim, req, sr);
}

static void
http_error(struct skiff_request *req, int status, const char *message)
{
    skiff_gerr_respond(req, status, NULL, message, NULL);
}

static void *
worker_init(uv_loop_t *loop, int index, void *data)
{
    return data;
}

int
skiff_sim_main(int argc, char **argv)
{
    struct sim sim;
    memset(&sim, 0, sizeof sim);
    char err[1024];
    int rc = skiff_sim_conf_parse(&sim.conf, argc, argv, err, sizeof err);
    if (rc == 1) {
        fputs(err, stdout);
        skiff_sim_conf_release(&sim.conf);
        return 0;
    }
    if (rc != 0) {
        fprintf(stderr, "skiff sim: %s\n", err);
        skiff_sim_conf_release(&sim.conf);
        return 2;
    }
    if (!sim.conf.seed_set)
        sim.conf.seed = (uint64_t)skiff_now_ms() ^ ((uint64_t)uv_os_getpid() << 32);
    skiff_sim_rng_seed(&sim.rng, sim.conf.seed);
    sim.quota = skiff_sim_quota_new(QUOTA_ENTRIES);
    skiff_sim_script_init(&sim.script, SCRIPT_ENTRIES);
    sim.files = skiff_sim_files_new(FILE_ENTRIES, UPLOAD_ENTRIES);
    sim.caches = skiff_sim_caches_new(CACHE_ENTRIES);
    sim.batches = skiff_sim_batches_new(BATCH_ENTRIES, sim.conf.batch_ms);
    sim.predict = skiff_sim_predict_new(BATCH_ENTRIES, sim.conf.batch_ms);
    sim.live = skiff_sim_live_new(LIVE_SESSIONS, LIVE_TOKENS);
    if (!sim.quota || !sim.files || !sim.caches || !sim.batches || !sim.predict || !sim.live ||
        skiff_sim_log_init(&sim.log, LOG_ENTRIES) != 0) {
        fprintf(stderr, "skiff sim: out of memory\n");
        rc = 1;
        goto out;
    }

    struct skiff_server_opts opts = {
        .host = sim.conf.host,
        .port = sim.conf.port,
        /* One worker by design: the simulator's state is single-threaded (struct sim). */
        .workers = 1,
        .max_body_bytes = MAX_BODY,
        .header_timeout_ms = 10000,
        .idle_timeout_ms = 60000,
        .max_connections = 4096,
        .handler = handler,
        .error = http_error,
        .worker_init = worker_init,
        .data = &sim,
        .name = "sim",
    };
    struct skiff_server *srv = skiff_server_new(&opts, err, sizeof err);
    if (!srv) {
        fprintf(stderr, "skiff sim: %s\n", err);
        rc = 1;
        goto out;
    }
    int v6 = strchr(sim.conf.host, ':') != NULL;
    printf("skiff sim listening on http://%s%s%s:%u\n", v6 ? "[" : "", sim.conf.host, v6 ? "]" : "",
           skiff_server_port(srv));
    fflush(stdout);
    struct skiff_log l;
    skiff_log_begin(&l, SKIFF_LOG_INFO, "sim_start");
    skiff_log_int(&l, "port", skiff_server_port(srv));
    skiff_log_int(&l, "seed", (long long)sim.conf.seed);
    skiff_log_int(&l, "keys", (long long)sim.conf.nkeys);
    skiff_log_end(&l);
    rc = skiff_server_run(srv);
    skiff_server_free(srv);
out:
    skiff_sim_script_clear(&sim.script);
    skiff_sim_log_release(&sim.log);
    skiff_sim_quota_free(sim.quota);
    skiff_sim_files_free(sim.files);
    skiff_sim_caches_free(sim.caches);
    skiff_sim_batches_free(sim.batches);
    skiff_sim_predict_free(sim.predict);
    skiff_sim_live_free(sim.live);
    skiff_sim_conf_release(&sim.conf);
    return rc;
}
