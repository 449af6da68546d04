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
#include "gemini/pacific.h"
#include "base/hash.h"
#include "base/log.h"
#include "server/http.h"
#include "server/server.h"
#include "sim/batches.h"
#include "sim/caches.h"
#include "sim/catalog.h"
#include "sim/compat.h"
#include "sim/faults.h"
#include "sim/files.h"
#include "sim/quota.h"
#include "sim/render.h"
#include "sim/resource.h"
#include "sim/script.h"
#include "sim/simconf.h"
#include "sim/tools.h"
#include "sim/validate.h"

#define JSON_TYPE "application/json; charset=UTF-8"
#define SSE_TYPE "text/event-stream"
#define MAX_BODY (20u * 1024 * 1024) /* the API's inline request limit */
#define QUOTA_ENTRIES 100000
#define SCRIPT_ENTRIES 10000
#define LOG_ENTRIES 10000
#define FILE_ENTRIES 10000
#define UPLOAD_ENTRIES 1000
#define CACHE_ENTRIES 10000
#define BATCH_ENTRIES 1000

/*
 * The simulator's state. It runs on exactly one worker (workers = 1): quota counters, the
 * script queue, the request log and the random generator are plain single-threaded data
 * touched only from that worker's loop, which is what makes a seeded run reproducible.
 */
struct sim {
    struct skiff_sim_conf conf;
    struct skiff_sim_quota *quota;
    struct skiff_sim_script script;
    struct skiff_sim_log log;
    struct skiff_sim_rng rng;
    struct skiff_sim_files *files;
    struct skiff_sim_caches *caches;
    struct skiff_sim_batches *batches;
};

/* What one request is doing while it waits on a timer or streams. */
struct sim_req {
    struct sim *sim;
    struct skiff_request *req; /* NULL once the client went away */
    uint64_t seq;              /* its log entry */
    struct skiff_sim_rng rng;  /* drawn once from the simulator's generator */
    uv_timer_t timer;
    int timer_used;
    int started; /* the stream's status line is out */
    int busy;    /* inside a call that may end the request */
    int gone;    /* the client went away while busy: release on the way out */

    /* The plan, rendered in advance. */
    enum { PLAN_WHOLE, PLAN_STREAM, PLAN_RESET, PLAN_HANG } plan;
    int status;
    const char *content_type;
    char *body; /* PLAN_WHOLE */
    size_t body_len;
    json_t *headers; /* extra response headers (object of strings) or NULL */
    char **events;   /* PLAN_STREAM: framed events, the array's opening included */
    size_t nevents;
    size_t next;
    char *tail;       /* after the events: "\n]" or a raw error; NULL for SSE's clean end */
    long reset_after; /* -1, or reset once this many events are out */
    long chunk_min, chunk_max;
    long think_ms;   /* how long the model thinks (--think-ms, a script's thinkMs) */
    long think_gap;  /* PLAN_STREAM: the wait after the first event (a thought of its own) */
    long think_wait; /* added to the time to first byte (the thinking was not shown) */
};

/* ---- request state ---- */

static void
free_plan(struct sim_req *sr)
{
    free(sr->body);
    for (size_t i = 0; i < sr->nevents; i++)
        free(sr->events[i]);
    free(sr->events);
    free(sr->tail);
    json_decref(sr->headers);
}

static void
on_timer_closed(uv_handle_t *h)
{
    struct sim_req *sr = h->data;
    free_plan(sr);
    free(sr);
}

/* Frees sr; its timer (if it was ever started) is closed first, so nothing fires later. */
static void
release(struct sim_req *sr)
{
    if (sr->req) {
        sr->req->data = NULL;
        sr->req->on_abort = NULL;
    }
    if (sr->timer_used) {
        uv_timer_stop(&sr->timer);
        uv_close((uv_handle_t *)&sr->timer, on_timer_closed);
        return;
    }
    free_plan(sr);
    free(sr);
}

static struct skiff_sim_log_entry *
log_entry(struct sim_req *sr)
{
    return skiff_sim_log_get(&sr->sim->log, sr->seq);
}

/* Notes the end of the response in the log; status is what was sent (0: nothing). */
static void
log_finish(struct sim_req *sr, int status, int ended)
{
    struct skiff_sim_log_entry *e = log_entry(sr);
    if (!e)
        return;
    e->ended = ended;
    e->duration_ms = skiff_now_ms() - e->ts_ms;
    if (status)
        e->status = status;
}

/* The client went away before the response ended: the request must let go of req now. */
static void
on_abort(struct skiff_request *req)
{
    struct sim_req *sr = req->data;
    if (!sr)
        return;
    struct skiff_sim_log_entry *e = log_entry(sr);
    if (e) {
        e->aborted = 1;
        e->duration_ms = skiff_now_ms() - e->ts_ms;
    }
    sr->req = NULL;
    if (sr->busy)
        sr->gone = 1;
    else
        release(sr);
}

static void
add_headers(struct sim_req *sr)
{
    /* Live responses carry the service tier; they never carry Retry-After. */
    skiff_http_add_header(sr->req, "X-Gemini-Service-Tier", "standard");
    const char *name;
    json_t *v;
    json_object_foreach(sr->headers, name, v)
        skiff_http_add_header(sr->req, name, json_string_value(v));
}

static void on_timer(uv_timer_t *t);

static void
arm(struct sim_req *sr, uint64_t ms)
{
    if (!sr->timer_used) {
        uv_timer_init(skiff_http_loop(sr->req), &sr->timer);
        sr->timer.data = sr;
        sr->timer_used = 1;
    }
    uv_timer_start(&sr->timer, on_timer, ms, 0);
}

/*
 * Sends the next step of the plan. Called at once when there is no latency, else from the
 * timer. Calls that may end the request are bracketed by busy, so an abort inside one only
 * marks the request (gone) and the release happens here on the way out. Once a call has
 * ended the response, req belongs to the HTTP layer again (it may already hold the next
 * request of the connection), so sr lets go of it before anything else.
 */
static void
step(struct sim_req *sr)
{
    struct skiff_request *req = sr->req;
    struct skiff_sim_log_entry *e = log_entry(sr);
    sr->busy = 1;
    switch (sr->plan) {
    case PLAN_HANG:
        /* Nothing is sent; only the client closing (on_abort) ends this request. */
        sr->busy = 0;
        return;
    case PLAN_RESET:
        if (e)
            e->reset = 1;
        skiff_http_reset(req);
        sr->req = NULL;
        log_finish(sr, 0, 0);
        break;
    case PLAN_WHOLE:
        add_headers(sr);
        skiff_http_respond(req, sr->status, sr->content_type, sr->body, sr->body_len);
        sr->req = NULL;
        if (!sr->gone)
            log_finish(sr, sr->status, 1);
        break;
    case PLAN_STREAM:
        if (!sr->started) {
            add_headers(sr);
            skiff_http_start(req, 200, sr->content_type);
            sr->started = 1;
            if (e)
                e->status = 200;
        }
        if (sr->reset_after >= 0 && (long)sr->next >= sr->reset_after) {
            if (e)
                e->reset = 1;
            skiff_http_reset(req);
            sr->req = NULL;
            log_finish(sr, 0, 0);
            break;
        }
        if (sr->next < sr->nevents) {
            skiff_http_write(req, sr->events[sr->next], strlen(sr->events[sr->next]));
            sr->next++;
            if (e)
                e->events = (long)sr->next;
            if (sr->gone)
                break;
            if (sr->next < sr->nevents || sr->reset_after >= 0 || sr->tail) {
                /* More to come: wait the chunk delay (0 still yields to the loop). A raw
                 * error after the events waits too, so it reaches the client in a read of
                 * its own, as the API's does (the JS SDK parses each read). */
                sr->busy = 0;
                if (sr->next == 1 && sr->think_gap > 0)
                    arm(sr, (uint64_t)sr->think_gap);
                else
                    arm(sr, skiff_sim_rng_range(&sr->rng, (uint64_t)sr->chunk_min,
                                                (uint64_t)sr->chunk_max));
                return;
            }
        }
        if (sr->tail)
            skiff_http_write(req, sr->tail, strlen(sr->tail));
        if (sr->gone)
            break;
        skiff_http_end(req);
        sr->req = NULL;
        if (!sr->gone)
            log_finish(sr, 0, 1);
        break;
    }
    sr->busy = 0;
    if (sr->gone)
        sr->req = NULL;
    release(sr);
}

static void
on_timer(uv_timer_t *t)
{
    step(t->data);
}

/* Starts the plan after the time-to-first-byte latency. */
static void
go(struct sim_req *sr, long latency_ms)
{
    /* Resetting after more events than there are means resetting instead of the clean end. */
    if (sr->plan == PLAN_STREAM && sr->reset_after > (long)sr->nevents)
        sr->reset_after = (long)sr->nevents;
    if (latency_ms > 0)
        arm(sr, (uint64_t)latency_ms);
    else
        step(sr);
}

/* ---- building replies ---- */

static void
plan_body(struct sim_req *sr, int status, const char *type, char *body, size_t len)
{
    sr->plan = PLAN_WHOLE;
    sr->status = status;
    sr->content_type = type;
    sr->body = body;
    sr->body_len = body ? len : 0;
    if (!body) {
        sr->status = 500;
        sr->body = strdup("");
    }
}

static void
plan_json(struct sim_req *sr, int status, const json_t *j)
{
    size_t len = 0;
    char *s = skiff_sim_render_pretty(j, &len);
    plan_body(sr, status, JSON_TYPE, s, len);
}

/* A Google error body; array: the JSON-array stream form wraps it. details is stolen. */
static void
plan_error(struct sim_req *sr, int status, const char *gstatus, const char *message,
           json_t *details, int array)
{
    char *s = skiff_gerr_body(status, gstatus, message, details, array);
    plan_body(sr, status, JSON_TYPE, s, s ? strlen(s) : 0);
}

static const char *
default_message(int status)
{
    switch (status) {
    case 400:
        return "Request contains an invalid argument.";
    case 401:
        return "Request had invalid authentication credentials. Expected OAuth 2 access token, "
               "login cookie or other valid authentication credential. See "
               "https://developers.google.com/identity/sign-in/web/devconsole-project.";
    case 403:
        return "The caller does not have permission";
    case 404:
        return "Requested entity was not found.";
    case 429:
        return "Resource has been exhausted (e.g. check quota).";
    case 500:
        return "An internal error has occurred. Please retry or report in "
               "https://developers.generativeai.google/guide/troubleshooting";
    case 503:
        return "The model is overloaded. Please try again later.";
    case 504:
        return "Deadline expired before operation could complete.";
    default:
        return "Unknown error.";
    }
}

/* The parsed request, as the handler sees it. */
struct call {
    const char *version; /* "v1" | "v1beta" */
    char model_id[96];
    const struct skiff_sim_model *model;
    char method[32]; /* API method */
    int stream;
    int sse;
    char key[128];
    int has_key;
    int bearer;
};

static int
is_stream_array(const struct call *c)
{
    return c->stream && !c->sse;
}

static void
plan_quota(struct sim_req *sr, const struct call *c, const struct skiff_sim_verdict *v)
{
    const char *model = c->model ? c->model->target : c->model_id;
    char *s = skiff_sim_quota_body(v, model, is_stream_array(c));
    plan_body(sr, 429, JSON_TYPE, s, s ? strlen(s) : 0);
}

/* Frames pre-built events for the request's stream form. events: array of objects. */
static int
plan_events(struct sim_req *sr, const struct call *c, const json_t *events)
{
    size_t n = json_array_size(events);
    sr->plan = PLAN_STREAM;
    sr->content_type = c->sse ? SSE_TYPE : JSON_TYPE;
    sr->events = calloc(n ? n : 1, sizeof *sr->events);
    if (!sr->events)
        return SKIFF_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        const json_t *ev = json_array_get(events, i);
        sr->events[i] =
            c->sse ? skiff_sim_render_sse(ev, NULL) : skiff_sim_render_array_elem(ev, i == 0, NULL);
        if (!sr->events[i])
            return SKIFF_ENOMEM;
        sr->nevents++;
    }
    /* The array form closes with "\n]"; an empty array is "[]". */
    if (!c->sse)
        sr->tail = strdup(n ? SKIFF_SIM_ARRAY_END : "[]");
    return 0;
}

/*
 * A raw mid-stream error after the events: on SSE the bare {"error":...} object the SDKs
 * parse from a non-data line; on the array form one more element before "\n]".
 */
static int
plan_tail_error(struct sim_req *sr, const struct call *c, const json_t *err)
{
    int code = (int)json_integer_value(json_object_get(err, "code"));
    const char *msg = json_string_value(json_object_get(err, "message"));
    const char *st = json_string_value(json_object_get(err, "status"));
    char *body = skiff_gerr_body(code, st, msg ? msg : default_message(code), NULL, 0);
    if (!body)
        return SKIFF_ENOMEM;
    free(sr->tail);
    size_t n = strlen(body) + 16;
    sr->tail = malloc(n);
    if (!sr->tail) {
        free(body);
        return SKIFF_ENOMEM;
    }
    if (c->sse)
        snprintf(sr->tail, n, "%s", body);
    else if (sr->nevents)
        /* Drop the body's final newline: array elements end with "}" before the separator. */
        snprintf(sr->tail, n, "\n,\r\n%.*s\n]", (int)(strlen(body) - 1), body);
    else
        snprintf(sr->tail, n, "[%.*s\n]", (int)(strlen(body) - 1), body);
    free(body);
    return 0;
}

static long
pick(struct sim_req *sr, long lo, long hi)
{
    return (long)skiff_sim_rng_range(&sr->rng, (uint64_t)lo, (uint64_t)hi);
}

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

/* Reads the key (header first, then ?key=) and notes a Bearer credential. */
static void
read_credentials(const struct skiff_request *req, struct call *c)
{
    size_t len;
    const char *h = skiff_http_header(req, "x-goog-api-key", &len);
    if (h) {
        size_t n = len < sizeof c->key - 1 ? len : sizeof c->key - 1;
        memcpy(c->key, h, n);
        c->key[n] = '\0';
        c->has_key = 1;
    } else if (skiff_http_query(req, "key", c->key, sizeof c->key) >= 0) {
        c->has_key = 1;
    }
    const char *auth = skiff_http_header(req, "authorization", &len);
    c->bearer = auth && len >= 7 && strncasecmp(auth, "Bearer ", 7) == 0;
}

/* Google's answer for a key that may not call; 0 when the key is good. */
static int
plan_auth(struct sim_req *sr, const struct call *c)
{
    int arr = is_stream_array(c);
    if (c->bearer) {
        plan_error(sr, 401, "UNAUTHENTICATED", default_message(401), NULL, arr);
        return -1;
    }
    if (!c->has_key) {
        plan_error(sr, 403, "PERMISSION_DENIED",
                   "Method doesn't allow unregistered callers (callers without established "
                   "identity). Please use API Key or other form of API consumer identity to call "
                   "this API.",
                   NULL, arr);
        return -1;
    }
    switch (skiff_sim_conf_key(&sr->sim->conf, c->key)) {
    case SKIFF_SIM_KEY_VALID:
        return 0;
    case SKIFF_SIM_KEY_REGION_BLOCKED:
        plan_error(sr, 400, "FAILED_PRECONDITION",
                   "User location is not supported for the API use.", NULL, arr);
        return -1;
    case SKIFF_SIM_KEY_DENIED:
        plan_error(sr, 403, "PERMISSION_DENIED", "The caller does not have permission", NULL, arr);
        return -1;
    case SKIFF_SIM_KEY_INVALID: {
        const char *msg = "API key not valid. Please pass a valid API key.";
        json_t *d = json_array();
        json_array_append_new(
            d, skiff_gerr_error_info(
                   "API_KEY_INVALID", "googleapis.com",
                   json_pack("{s:s}", "service", "generativelanguage.googleapis.com")));
        json_array_append_new(d, skiff_gerr_localized(msg));
        plan_error(sr, 400, "INVALID_ARGUMENT", msg, d, arr);
        return -1;
    }
    }
    return -1;
}

static void
plan_invalid(struct sim_req *sr, const struct call *c, struct skiff_sim_invalid *inv)
{
    plan_error(sr, inv->status, inv->gstatus, inv->message, inv->details, is_stream_array(c));
    inv->details = NULL;
}

/*
 * The tokens of the request's cachedContent (0 when it names none), or SKIFF_EINVAL with
 * inv set when the cache may not be used (another project's, another model, ...).
 */
static long
use_cache(struct sim *sim, const struct call *c, const json_t *body, struct skiff_sim_invalid *inv)
{
    const char *name = json_string_value(json_object_get(body, "cachedContent"));
    if (!name)
        return 0;
    struct skiff_sim_res_reply r;
    memset(&r, 0, sizeof r);
    long t =
        skiff_sim_caches_use(sim->caches, c->key, name, c->model->target, body, skiff_now_ms(), &r);
    if (t >= 0)
        return t;
    inv->status = r.status;
    inv->gstatus = r.gstatus;
    snprintf(inv->message, sizeof inv->message, "%s", r.message);
    return SKIFF_EINVAL;
}

/* Adds a cache's tokens to a rendered response's usageMetadata (the prompt has them). */
static void
add_cached_usage(json_t *response, long cached)
{
    json_t *u = json_object_get(response, "usageMetadata");
    if (!cached || !u)
        return;
    json_object_set_new(u, "cachedContentTokenCount", json_integer(cached));
    json_object_set_new(
        u, "cacheTokensDetails",
        json_pack("[{s:s,s:I}]", "modality", "TEXT", "tokenCount", (json_int_t)cached));
}

/*
 * A long thought on a stream that shows thoughts: the first event's thought part becomes an
 * event of its own, and the answer's first text follows it after sr->think_ms (step() waits
 * think_gap after the first event). Returns 1 when the thought was split off.
 */
static int
split_thought(struct sim_req *sr, json_t *events)
{
    json_t *first = json_array_get(events, 0);
    json_t *cand = json_array_get(json_object_get(first, "candidates"), 0);
    json_t *parts = json_object_get(json_object_get(cand, "content"), "parts");
    if (!json_is_true(json_object_get(json_array_get(parts, 0), "thought")))
        return 0;
    json_t *thought = json_deep_copy(first);
    json_t *tcand = json_array_get(json_object_get(thought, "candidates"), 0);
    json_t *tparts = json_object_get(json_object_get(tcand, "content"), "parts");
    if (!thought || !tparts)
        goto out_free;
    while (json_array_size(tparts) > 1)
        json_array_remove(tparts, 1);
    json_object_del(tcand, "finishReason");
    json_object_del(tcand, "finishMessage");
    if (json_array_remove(parts, 0) != 0 || json_array_insert_new(events, 0, thought) != 0)
        goto out_free;
    sr->think_gap = sr->think_ms;
    return 1;
out_free:
    json_decref(thought);
    return 0;
}

/* Builds and frames the generated answer (whole, or as stream events). */
static int
plan_answer(struct sim_req *sr, const struct call *c, const json_t *body,
            const struct skiff_sim_gen *g, const struct skiff_sim_prompt *prompt, long cached)
{
    struct skiff_sim_ask ask;
    skiff_sim_tools_plan(body, prompt->hash, g->thinking_budget != 0, &ask);
    struct skiff_sim_answer a;
    struct skiff_sim_answer_opts o = {
        .prompt = prompt,
        .max_output_tokens = g->max_output_tokens,
        .thinking_budget = g->thinking_budget,
        .include_thoughts = g->include_thoughts,
        .model_version = c->model->target,
        .id_seed = skiff_sim_rng_next(&sr->rng),
        .text = ask.text,
        .calls = ask.calls,
        .sign_calls = ask.sign,
        .stops = skiff_sim_field(skiff_sim_field(body, "generationConfig"), "stopSequences"),
    };
    int made = skiff_sim_answer_make(&a, &o);
    skiff_sim_ask_release(&ask);
    if (made != 0)
        return SKIFF_ENOMEM;
    int rc = 0;
    if (!c->stream) {
        json_t *r = skiff_sim_render_response(&a, SIZE_MAX);
        add_cached_usage(r, cached);
        /* candidateCount > 1 (2.x models): more candidates with the same text and usage. */
        json_t *cands = json_object_get(r, "candidates");
        for (long i = 1; i < g->candidate_count; i++) {
            json_t *copy = json_deep_copy(json_array_get(cands, 0));
            json_object_set_new(copy, "index", json_integer(i));
            json_array_append_new(cands, copy);
        }
        plan_json(sr, 200, r);
        json_decref(r);
        if (a.thoughts_tokens > 0)
            sr->think_wait = sr->think_ms;
    } else {
        json_t *events = json_array();
        for (size_t i = 0; i < a.nchunks; i++) {
            json_t *ev = skiff_sim_render_response(&a, i);
            add_cached_usage(ev, cached);
            json_array_append_new(events, ev);
        }
        if (a.thoughts_tokens > 0 && sr->think_ms > 0 && !split_thought(sr, events))
            sr->think_wait = sr->think_ms;
        rc = plan_events(sr, c, events);
        json_decref(events);
    }
    skiff_sim_answer_release(&a);
    return rc;
}

/* Refuses a generation that references another project's (or no live) file. */
static int
check_references(struct sim *sim, const struct call *c, const json_t *contents,
                 const json_t *system_instruction, struct skiff_sim_invalid *inv)
{
    struct skiff_sim_res_reply r;
    memset(&r, 0, sizeof r);
    if (skiff_sim_files_check_contents(sim->files, c->key, contents, system_instruction,
                                       skiff_now_ms(), &r) == 0)
        return 0;
    inv->status = r.status;
    inv->gstatus = r.gstatus;
    snprintf(inv->message, sizeof inv->message, "%s", r.message);
    return SKIFF_EINVAL;
}

/* Runs a scripted reply that replaces the simulator's own (every kind but ANSWER). */
static void
plan_scripted(struct sim_req *sr, const struct call *c, const struct skiff_sim_reply *r)
{
    int arr = is_stream_array(c);
    switch (r->kind) {
    case SKIFF_SIM_REPLY_HANG:
        sr->plan = PLAN_HANG;
        return;
    case SKIFF_SIM_REPLY_RESET:
        sr->plan = PLAN_RESET;
        return;
    case SKIFF_SIM_REPLY_ERROR:
        plan_error(sr, r->status, r->error_status,
                   r->message ? r->message : default_message(r->status),
                   r->details ? json_incref(r->details) : NULL, arr);
        return;
    case SKIFF_SIM_REPLY_BODY:
        plan_body(sr, r->status, r->content_type ? r->content_type : JSON_TYPE,
                  malloc(r->body_len + 1), r->body_len);
        if (sr->body && r->body_len)
            memcpy(sr->body, r->body, r->body_len);
        return;
    case SKIFF_SIM_REPLY_QUOTA: {
        struct skiff_sim_limits lim;
        const char *model = c->model ? c->model->target : c->model_id;
        skiff_sim_conf_limits(&sr->sim->conf, model, &lim);
        int64_t now = skiff_now_ms();
        struct skiff_sim_verdict v = {0};
        long minute = r->retry_ms >= 0 ? r->retry_ms : 60000 - now % 60000;
        long day = r->retry_ms >= 0 ? r->retry_ms : skiff_pacific_next_midnight_ms(now) - now;
        switch (r->quota) {
        case SKIFF_SIM_QR_MINUTE:
            v.v[v.n++] = (struct skiff_sim_violation){
                SKIFF_SIM_QUOTA_RPM, r->quota_limit >= 0 ? r->quota_limit : lim.rpm, minute};
            break;
        case SKIFF_SIM_QR_TOKENS:
            v.v[v.n++] = (struct skiff_sim_violation){
                SKIFF_SIM_QUOTA_TPM, r->quota_limit >= 0 ? r->quota_limit : lim.tpm, minute};
            break;
        case SKIFF_SIM_QR_DAY:
            v.v[v.n++] = (struct skiff_sim_violation){
                SKIFF_SIM_QUOTA_RPD, r->quota_limit >= 0 ? r->quota_limit : lim.rpd, day};
            break;
        case SKIFF_SIM_QR_ZERO:
            v.v[v.n++] = (struct skiff_sim_violation){SKIFF_SIM_QUOTA_RPM, 0, minute};
            v.v[v.n++] = (struct skiff_sim_violation){SKIFF_SIM_QUOTA_TPM, 0, minute};
            v.v[v.n++] = (struct skiff_sim_violation){SKIFF_SIM_QUOTA_RPD, 0, day};
            break;
        }
        /* A scripted minute/day 429 on a model configured "unlimited" (or 0) shows the
         * model's free-tier figure: a quotaValue of "0" would say "no quota at all", which
         * is the "zero" kind's meaning, not this one's. */
        const struct skiff_sim_model *m = c->model;
        for (int i = 0; r->quota != SKIFF_SIM_QR_ZERO && i < v.n; i++) {
            if (v.v[i].limit > 0)
                continue;
            long dflt = !m                                   ? 10
                        : v.v[i].kind == SKIFF_SIM_QUOTA_RPM ? m->free_rpm
                        : v.v[i].kind == SKIFF_SIM_QUOTA_TPM ? m->free_tpm
                                                             : m->free_rpd;
            v.v[i].limit = dflt > 0 ? dflt : 10;
        }
        plan_quota(sr, c, &v);
        return;
    }
    case SKIFF_SIM_REPLY_STREAM:
        if (!c->stream) {
            /* A non-streaming call gets the last event as its whole body. */
            size_t n = json_array_size(r->events);
            if (n)
                plan_json(sr, 200, json_array_get(r->events, n - 1));
            else
                plan_body(sr, 200, JSON_TYPE, strdup("{}\n"), 3);
            return;
        }
        if (plan_events(sr, c, r->events) != 0)
            plan_body(sr, 500, JSON_TYPE, NULL, 0);
        return;
    case SKIFF_SIM_REPLY_ANSWER:
        return;
    }
}

/* Applies the stream overrides of a scripted reply (ANSWER or STREAM) to the plan. */
static void
apply_stream_overrides(struct sim_req *sr, const struct call *c, const struct skiff_sim_reply *r)
{
    if (sr->plan != PLAN_STREAM)
        return;
    if (r->chunk_ms >= 0)
        sr->chunk_min = sr->chunk_max = r->chunk_ms;
    if (r->reset_after >= 0)
        sr->reset_after = r->reset_after;
    if (r->error_after)
        plan_tail_error(sr, c, r->error_after);
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

/* ---- stored resources (files, ...): their own modules plan the reply ---- */

/* Copies header name of req into out ("" when absent). */
static void
header_into(const struct skiff_request *req, const char *name, char *out, size_t outlen)
{
    size_t len;
    const char *h = skiff_http_header(req, name, &len);
    snprintf(out, outlen, "%.*s", h ? (int)len : 0, h ? h : "");
}

/*
 * A request on a resource route (files): script, credentials (a resumable chunk is
 * authorised by its upload id), then the module's reply. Returns 0 with the reply planned,
 * or -1 when the path is not a resource route.
 */
static int
plan_resource(struct sim *sim, struct skiff_request *req, struct sim_req *sr, struct call *c,
              struct skiff_sim_log_entry *e, long *latency)
{
    struct skiff_sim_res_req q;
    memset(&q, 0, sizeof q);
    const char *p = req->path;
    size_t n = req->path_len;
    if (n >= 15 && memcmp(p, "/upload/v1beta/", 15) == 0) {
        q.upload = 1;
        q.rest = p + 15;
    } else if (n >= 8 && memcmp(p, "/v1beta/", 8) == 0) {
        q.rest = p + 8;
    } else {
        return -1;
    }
    q.rest_len = n - (size_t)(q.rest - p);
    q.http_method = req->method;
    const char *method = skiff_sim_files_route(&q);
    int is_file = method != NULL;
    int is_cache = 0;
    if (!method && (method = skiff_sim_caches_route(&q)) != NULL)
        is_cache = 1;
    if (!method)
        method = skiff_sim_batches_route(&q);
    if (!method)
        return -1;

    char page_size[24], page_token[128], upload_id[64], mask[256], ct[256], proto[32], cmd[64],
        off[32], ulen[32], utype[128], host[256], base[300];
    if (skiff_http_query(req, "pageSize", page_size, sizeof page_size) < 0)
        page_size[0] = '\0';
    if (skiff_http_query(req, "pageToken", page_token, sizeof page_token) < 0)
        page_token[0] = '\0';
    if (skiff_http_query(req, "upload_id", upload_id, sizeof upload_id) < 0)
        upload_id[0] = '\0';
    if (skiff_http_query(req, "updateMask", mask, sizeof mask) < 0)
        mask[0] = '\0';
    header_into(req, "content-type", ct, sizeof ct);
    header_into(req, "x-goog-upload-protocol", proto, sizeof proto);
    header_into(req, "x-goog-upload-command", cmd, sizeof cmd);
    header_into(req, "x-goog-upload-offset", off, sizeof off);
    header_into(req, "x-goog-upload-header-content-length", ulen, sizeof ulen);
    header_into(req, "x-goog-upload-header-content-type", utype, sizeof utype);
    header_into(req, "host", host, sizeof host);
    snprintf(base, sizeof base, "http://%s", host[0] ? host : "localhost");
    q.page_size = page_size;
    q.page_token = page_token;
    q.upload_id = upload_id;
    q.update_mask = mask;
    q.content_type = ct;
    q.up_protocol = proto;
    q.up_command = cmd;
    q.up_offset = off;
    q.up_len = ulen;
    q.up_type = utype;
    q.base = base;
    q.body = req->body;
    q.body_len = req->body_len;
    q.now_ms = skiff_now_ms();
    q.id_seed = skiff_sim_rng_next(&sr->rng);

    c->version = "v1beta";
    snprintf(c->method, sizeof c->method, "%s", method);
    read_credentials(req, c);
    q.project = c->has_key ? c->key : "";
    snprintf(e->version, sizeof e->version, "v1beta");
    snprintf(e->method, sizeof e->method, "%s", method);
    snprintf(e->key, sizeof e->key, "%s", c->key);
    e->has_key = c->has_key;

    struct skiff_sim_reply *script =
        skiff_sim_script_take(&sim->script, "", NULL, c->has_key ? c->key : NULL, c->method);
    if (script) {
        e->scripted = 1;
        if (script->latency_ms >= 0)
            *latency = script->latency_ms;
        sr->headers = script->headers ? json_incref(script->headers) : NULL;
        if (script->kind != SKIFF_SIM_REPLY_ANSWER) {
            plan_scripted(sr, c, script);
            skiff_sim_reply_unref(script);
            return 0;
        }
        skiff_sim_reply_unref(script);
    }
    if (!upload_id[0] && plan_auth(sr, c) < 0)
        return 0;
    struct skiff_sim_res_reply r;
    memset(&r, 0, sizeof r);
    if (is_file)
        skiff_sim_files_handle(sim->files, &q, &r);
    else if (is_cache)
        skiff_sim_caches_handle(sim->caches, sim->files, &q, &r);
    else
        skiff_sim_batches_handle(sim->batches, &q, &r);
    if (r.status == 200) {
        if (r.body)
            plan_json(sr, 200, r.body);
        else
            plan_body(sr, 200, "text/plain; charset=utf-8", strdup(""), 0);
    } else {
        plan_error(sr, r.status, r.gstatus, r.message, NULL, 0);
    }
    if (r.headers) {
        if (!sr->headers)
            sr->headers = json_object();
        json_object_update(sr->headers, r.headers);
    }
    json_decref(r.body);
    json_decref(r.headers);
    return 0;
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
    if (skiff_sim_compat(&sim->conf, &sim->script, req, e, &cr)) {
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

/* ---- control endpoints ---- */

static void
respond_json(struct skiff_request *req, int status, json_t *j)
{
    size_t len = 0;
    char *s = skiff_sim_render_pretty(j, &len);
    json_decref(j);
    if (!s) {
        skiff_http_abort(req, "out of memory");
        return;
    }
    skiff_http_respond(req, status, JSON_TYPE, s, len);
    free(s);
}

/* POST /_sim/expire {"name": "files/x"}: the resource expires now, as if its time ran out. */
static void
expire_resource(struct sim *sim, struct skiff_request *req)
{
    json_t *j = json_loadb(req->body, req->body_len, 0, NULL);
    const char *name = json_string_value(json_object_get(j, "name"));
    int rc = -1;
    if (name && strncmp(name, "files/", 6) == 0)
        rc = skiff_sim_files_expire(sim->files, name, skiff_now_ms());
    else if (name && strncmp(name, "cachedContents/", 15) == 0)
        rc = skiff_sim_caches_expire(sim->caches, name, skiff_now_ms());
    if (rc < 0)
        skiff_gerr_respond(req, 404, "NOT_FOUND",
                           "No such resource: /_sim/expire takes {\"name\": \"files/ID\"} or "
                           "{\"name\": \"cachedContents/ID\"}.",
                           NULL);
    else
        respond_json(req, 200, json_pack("{s:s}", "expired", name));
    json_decref(j);
}

static void
handle_control(struct sim *sim, struct skiff_request *req)
{
    const char *p = req->path;
    size_t n = req->path_len;
#define IS(path, m) (n == strlen(path) && memcmp(p, path, n) == 0 && strcmp(req->method, m) == 0)
    if (IS("/_sim/log", "GET")) {
        respond_json(req, 200, skiff_sim_log_json(&sim->log));
    } else if (IS("/_sim/script", "GET")) {
        respond_json(req, 200, json_pack("{s:I}", "pending", (json_int_t)sim->script.n));
    } else if (IS("/_sim/script", "POST")) {
        json_error_t je;
        json_t *j = json_loadb(req->body, req->body_len, 0, &je);
        char err[512];
        int rc;
        if (!j) {
            snprintf(err, sizeof err, "invalid JSON at line %d: %s", je.line, je.text);
            rc = SKIFF_EINVAL;
        } else {
            rc = skiff_sim_script_add(&sim->script, j, err, sizeof err);
        }
        json_decref(j);
        if (rc < 0)
            skiff_gerr_respond(req, 400, NULL, err, NULL);
        else
            respond_json(
                req, 200,
                json_pack("{s:i,s:I}", "queued", rc, "pending", (json_int_t)sim->script.n));
    } else if (IS("/_sim/reset", "POST")) {
        skiff_sim_script_clear(&sim->script);
        skiff_sim_quota_clear(sim->quota);
        skiff_sim_log_clear(&sim->log);
        skiff_sim_files_clear(sim->files);
        skiff_sim_caches_clear(sim->caches);
        skiff_sim_batches_clear(sim->batches);
        skiff_sim_rng_seed(&sim->rng, sim->conf.seed);
        respond_json(req, 200,
                     json_pack("{s:b,s:I}", "reset", 1, "seed", (json_int_t)sim->conf.seed));
    } else if (IS("/_sim/expire", "POST")) {
        expire_resource(sim, req);
    } else {
        skiff_gerr_respond(req, 404, "NOT_FOUND", "Method not found.", NULL);
    }
#undef IS
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
    if (!sim.quota || !sim.files || !sim.caches || !sim.batches ||
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
    skiff_sim_conf_release(&sim.conf);
    return rc;
}
