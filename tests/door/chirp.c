/*
 * The chirp door (chirp.h): everything a translating door does, in miniature. It includes
 * the engine's contract and nothing of the engine's insides.
 */
#include "chirp.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "doors/auth.h"
#include "gemini/stream.h"

/* Per-request state: the name asked, and how many events the stream has translated. */
struct chirp {
    char model[64];
    int events;
};

static int
chirp_match(const struct skiff_request *req)
{
    return req->path_len >= 7 && memcmp(req->path, "/chirp/", 7) == 0;
}

static void
oops(struct skiff_request *req, int status, const char *message)
{
    json_t *j = json_pack("{s:{s:i,s:s}}", "oops", "status", status, "message", message);
    char *body = json_dumps(j, JSON_COMPACT);
    skiff_http_respond(req, status, "application/json", body ? body : "{}",
                       body ? strlen(body) : 2);
    free(body);
    json_decref(j);
}

static void
chirp_error(struct skiff_request *req, int status, const char *message)
{
    skiff_engine_decorate(req, NULL, 0);
    oops(req, status, message);
}

/* The text of a Gemini answer (a generateContent body or one stream event's JSON). */
static char *
text_of(const char *json, size_t len)
{
    json_t *j = json_loadb(json, len, JSON_DISABLE_EOF_CHECK, NULL);
    json_t *parts = json_object_get(
        json_object_get(json_array_get(json_object_get(j, "candidates"), 0), "content"), "parts");
    size_t cap = 1, n = 0;
    for (size_t i = 0; i < json_array_size(parts); i++)
        cap += json_string_length(json_object_get(json_array_get(parts, i), "text"));
    char *out = malloc(cap);
    for (size_t i = 0; out && i < json_array_size(parts); i++) {
        json_t *t = json_object_get(json_array_get(parts, i), "text");
        memcpy(out + n, json_string_value(t) ? json_string_value(t) : "", json_string_length(t));
        n += json_string_length(t);
    }
    if (out)
        out[n] = '\0';
    json_decref(j);
    return out;
}

/* ---- the engine's ops ----------------------------------------------------------------- */

static void
c_head(void *door, struct skiff_request *req, const struct skiff_engine_head *h)
{
    skiff_http_start(req, 200, "text/plain; charset=utf-8");
}

static int
c_event(void *door, struct skiff_request *req, const char *ev, size_t len)
{
    struct chirp *c = door;
    size_t jl;
    const char *j = skiff_stream_json(ev, len, &jl);
    char *text = text_of(j, jl);
    if (!text)
        return -1;
    char line[64];
    int n = snprintf(line, sizeof line, "chirp %d: ", ++c->events);
    skiff_http_write(req, line, (size_t)n);
    skiff_http_write(req, text, strlen(text));
    skiff_http_write(req, "\n", 1);
    free(text);
    return 0;
}

static void
c_body(void *door, struct skiff_request *req, const struct skiff_engine_answer *a)
{
    struct chirp *c = door;
    char *text = text_of(a->body, a->len);
    json_t *j = json_pack("{s:s,s:s}", "heard", text ? text : "", "model", c->model);
    char *body = json_dumps(j, JSON_COMPACT);
    skiff_http_respond(req, a->status, "application/json", body ? body : "{}",
                       body ? strlen(body) : 2);
    free(body);
    json_decref(j);
    free(text);
}

static void
c_end(void *door, struct skiff_request *req)
{
    skiff_http_write(req, "fin\n", 4);
}

static void
c_error(void *door, struct skiff_request *req, const struct skiff_engine_error *e)
{
    char msg[600];
    const char *m = e->message;
    if (!m) {
        /* The upstream's Google error: its message, in chirp's shape. */
        json_t *j = json_loadb(e->body, e->body_len, 0, NULL);
        snprintf(msg, sizeof msg, "%s",
                 json_string_value(json_object_get(json_object_get(j, "error"), "message"))
                     ? json_string_value(json_object_get(json_object_get(j, "error"), "message"))
                     : "the upstream failed");
        json_decref(j);
        m = msg;
    }
    if (e->after_start) {
        skiff_http_write(req, "oops: ", 6);
        skiff_http_write(req, m, strlen(m));
        skiff_http_write(req, "\n", 1);
        return;
    }
    oops(req, e->status, m);
}

static const struct skiff_engine_ops chirp_ops = {
    .on_head = c_head,
    .on_event = c_event,
    .on_body = c_body,
    .on_end = c_end,
    .on_error = c_error,
    .on_free = free,
};

/* ---- the door ------------------------------------------------------------------------- */

static void
chirp_head(struct skiff_request *req, struct skiff_engine *e)
{
    const char *who;
    if (req->path_len != 13 || memcmp(req->path, "/chirp/v1/say", 13) != 0)
        chirp_error(req, 404, "chirp has one path: POST /chirp/v1/say");
    else if (strcmp(req->method, "POST") != 0)
        chirp_error(req, 405, "POST only");
    else if (skiff_auth_check(skiff_engine_shared(e)->cfg, req, &who) != SKIFF_AUTH_OK)
        chirp_error(req, 401, "send the skiff token as Authorization: Bearer");
}

static void
chirp_handle(struct skiff_request *req, struct skiff_engine *e)
{
    const char *who;
    if (req->path_len != 13 || memcmp(req->path, "/chirp/v1/say", 13) != 0 ||
        strcmp(req->method, "POST") != 0 ||
        skiff_auth_check(skiff_engine_shared(e)->cfg, req, &who) != SKIFF_AUTH_OK) {
        chirp_head(req, e);
        return;
    }
    json_t *in = json_loadb(req->body, req->body_len, 0, NULL);
    const char *model = json_string_value(json_object_get(in, "model"));
    const char *say = json_string_value(json_object_get(in, "say"));
    if (!model || !say || strlen(model) >= 64) {
        json_decref(in);
        chirp_error(req, 400, "chirp needs {\"model\": ..., \"say\": ...}");
        return;
    }
    struct chirp *c = calloc(1, sizeof *c);
    json_t *gem =
        json_pack("{s:[{s:s,s:[{s:s}]}]}", "contents", "role", "user", "parts", "text", say);
    char *body = gem ? json_dumps(gem, JSON_COMPACT) : NULL;
    json_decref(gem);
    if (!c || !body) {
        free(c);
        free(body);
        json_decref(in);
        chirp_error(req, 500, "out of memory");
        return;
    }
    snprintf(c->model, sizeof c->model, "%s", model);
    const char *gm = strcmp(model, "pro") == 0     ? "gemini-2.5-pro"
                     : strcmp(model, "flash") == 0 ? "gemini-2.5-flash"
                                                   : c->model;
    int stream = json_is_true(json_object_get(in, "stream"));
    struct skiff_engine_plan plan = {
        .model = gm,
        .model_len = strlen(gm),
        .owned_body = body,
        .owned_len = strlen(body),
        .ops = &chirp_ops,
        .door = c,
    };
    skiff_engine_route(&plan.route, stream ? SKIFF_M_STREAM : SKIFF_M_GENERATE);
    plan.query.alt = stream ? SKIFF_ALT_SSE : SKIFF_ALT_NONE;
    json_decref(in);
    if (skiff_engine_start(e, req, &plan)) {
        free(plan.owned_body);
        free(c);
        chirp_error(req, 500, "out of memory");
    }
}

const struct skiff_door chirp_door = {
    .name = "chirp",
    .match = chirp_match,
    .on_head = chirp_head,
    .handle = chirp_handle,
    .error = chirp_error,
};
