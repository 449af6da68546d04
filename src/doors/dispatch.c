/*
 * Request -> door. The table below is tried in order and its last entry takes everything;
 * what no door owns (CORS, /healthz) is answered here. See doors/door.h for the contract and
 * docs/ARCHITECTURE.md for the dispatch rule of the paths several APIs claim.
 */
#include "doors/dispatch.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "doors/anthropic/door.h"
#include "doors/auth.h"
#include "doors/gemini/door.h"
#include "doors/openai/door.h"
#include "gemini/live.h"
#include "relay/keypool.h"

/* The built-in doors, most specific first; the last one matches every request. */
static const struct skiff_door *const builtin[] = {
    &skiff_openai_door,
    &skiff_anthropic_door,
    &skiff_gemini_door,
};

#define MAX_EXTRA 4
static const struct skiff_door *extra[MAX_EXTRA];
static int nextra;

int
skiff_dispatch_add_door(const struct skiff_door *d)
{
    if (nextra == MAX_EXTRA)
        return -1;
    extra[nextra++] = d;
    return 0;
}

static const struct skiff_door *
pick(const struct skiff_request *req)
{
    for (int i = 0; i < nextra; i++)
        if (extra[i]->match(req))
            return extra[i];
    size_t n = sizeof builtin / sizeof builtin[0];
    for (size_t i = 0; i + 1 < n; i++)
        if (builtin[i]->match(req))
            return builtin[i];
    return builtin[n - 1];
}

static int
starts(const struct skiff_request *req, const char *lit)
{
    size_t n = strlen(lit);
    return req->path_len >= n && memcmp(req->path, lit, n) == 0;
}

enum skiff_style
skiff_dispatch_style(const struct skiff_request *req)
{
    size_t n;
    char q[8];
    if (starts(req, "/openai/v1/") || (req->path_len == 10 && starts(req, "/openai/v1")))
        return SKIFF_STYLE_OPENAI;
    if (starts(req, "/anthropic/v1/") || (req->path_len == 13 && starts(req, "/anthropic/v1")))
        return SKIFF_STYLE_ANTHROPIC;
    if (!starts(req, "/v1/"))
        return SKIFF_STYLE_GEMINI;
    /* /v1/models/{model}:{method} is Gemini's only. */
    if (starts(req, "/v1/models/") && memchr(req->path + 11, ':', req->path_len - 11))
        return SKIFF_STYLE_GEMINI;
    if (skiff_http_header(req, "x-goog-api-key", &n) ||
        skiff_http_header(req, "x-goog-api-client", &n) ||
        skiff_http_query(req, "key", q, sizeof q) >= 0)
        return SKIFF_STYLE_GEMINI;
    if (skiff_http_header(req, "anthropic-version", &n) || skiff_http_header(req, "x-api-key", &n))
        return SKIFF_STYLE_ANTHROPIC;
    return SKIFF_STYLE_OPENAI;
}

/*
 * CORS (config cors.origins), first thing in the head hook, for every door: a preflight
 * (OPTIONS with Origin and Access-Control-Request-Method) carries no token, so it is answered
 * here, before auth: 204 with the methods and headers the SDKs send when its Origin is
 * listed, 403 (in the door's form) without any CORS header when not. Every other answer to a
 * listed Origin (errors included, whatever answers later) carries Access-Control-Allow-Origin
 * and the exposed headers, added to the response headers now. Returns 1 when it answered.
 */
static int
cors(const struct skiff_config *cfg, struct skiff_request *req, const struct skiff_door *d)
{
    if (!cfg->ncors_origins)
        return 0;
    /* The answer depends on Origin, so caches must key on it. */
    skiff_http_add_header(req, "vary", "Origin");
    char buf[256];
    const char *allow = skiff_auth_cors(cfg, req, buf, sizeof buf);
    size_t n, on;
    const char *origin = skiff_http_header(req, "origin", &on);
    int preflight = strcmp(req->method, "OPTIONS") == 0 && origin &&
                    skiff_http_header(req, "access-control-request-method", &n);
    if (preflight && !allow) {
        char msg[512], q[100];
        size_t o = 0;
        for (size_t i = 0; i < on && o + 1 < sizeof q && i < 80; i++)
            q[o++] = origin[i] > 0x20 && origin[i] < 0x7f && origin[i] != '"' && origin[i] != '\\'
                         ? origin[i]
                         : '?';
        q[o] = '\0';
        snprintf(msg, sizeof msg,
                 "the origin \"%s\" may not call skiff from a browser: it is not listed in the "
                 "config's cors.origins (add it there, as scheme://host[:port])",
                 q);
        d->error(req, 403, msg);
        return 1;
    }
    if (preflight) {
        /* Open mode's Host rule holds for preflights too (a listed origin passes its Origin
         * rule: without tokens the config lists only loopback origins). */
        char msg[640];
        int code = skiff_auth_open_check(cfg, req, msg, sizeof msg);
        if (code) {
            d->error(req, code, msg);
            return 1;
        }
    }
    if (!allow)
        return 0;
    skiff_http_add_header(req, "access-control-allow-origin", allow);
    skiff_http_add_header(req, "access-control-expose-headers",
                          "x-skiff-attempts, x-skiff-model, x-skiff-key, x-skiff-hint, "
                          "x-skiff-finish, x-request-id, server-timing, x-goog-upload-url, "
                          "x-goog-upload-status");
    if (!preflight)
        return 0;
    skiff_http_add_header(req, "access-control-allow-methods", "GET, POST, DELETE, PATCH");
    skiff_http_add_header(req, "access-control-allow-headers",
                          "x-goog-api-key, x-goog-api-client, content-type, authorization, "
                          "x-goog-upload-protocol, x-goog-upload-command, "
                          "x-goog-upload-offset, x-goog-upload-header-content-length, "
                          "x-goog-upload-header-content-type, x-goog-upload-file-name, "
                          "x-skiff-deadline-ms, x-skiff-fallback, x-skiff-retry-timeouts, "
                          "x-server-timeout, x-request-id, traceparent, tracestate");
    skiff_http_add_header(req, "access-control-max-age", "600");
    const char *pna = skiff_http_header(req, "access-control-request-private-network", &n);
    if (pna && n == 4 && strncasecmp(pna, "true", 4) == 0)
        skiff_http_add_header(req, "access-control-allow-private-network", "true");
    skiff_http_respond(req, 204, NULL, NULL, 0);
    return 1;
}

/* ---- /healthz, outside any door ------------------------------------------------------- */

static int
is_health(const struct skiff_request *req)
{
    return req->path_len == 8 && memcmp(req->path, "/healthz", 8) == 0;
}

/* A wrong method on /healthz: 405 with Allow; returns 1 when it answered. */
static int
health_method(struct skiff_request *req, const struct skiff_door *d)
{
    if (strcmp(req->method, "GET") == 0 || strcmp(req->method, "HEAD") == 0)
        return 0;
    skiff_http_add_header(req, "allow", "GET");
    d->error(req, 405, "method not allowed on this path");
    return 1;
}

/* Healthy while at least one key can serve; load balancers take the rest. */
static void
health(struct skiff_request *req, struct skiff_engine *e)
{
    struct skiff_keypool *pool = skiff_engine_shared(e)->pool;
    size_t usable = skiff_keypool_usable(pool);
    char body[128];
    int n = snprintf(body, sizeof body, "{\"status\":\"%s\",\"keys\":%zu,\"usable_keys\":%zu}\n",
                     usable ? "ok" : "unavailable", skiff_keypool_size(pool), usable);
    skiff_engine_decorate(req, NULL, 0);
    skiff_http_respond(req, usable ? 200 : 503, "application/json", body, (size_t)n);
}

/* ---- the server's hooks --------------------------------------------------------------- */

void
skiff_dispatch_head(struct skiff_request *req, void *worker)
{
    struct skiff_engine *e = worker;
    const struct skiff_config *cfg = skiff_engine_shared(e)->cfg;
    const struct skiff_door *d = pick(req);
    if (cors(cfg, req, d))
        return;
    /* WebSocket (or any other) upgrades are the Live API's alone, before any credential. */
    if (skiff_http_upgrade_token(req, NULL) && !skiff_live_path(req->path, req->path_len, NULL)) {
        d->error(req, 400, skiff_live_upgrade_elsewhere);
        return;
    }
    if (is_health(req)) {
        if (health_method(req, d))
            return;
        char msg[640];
        int code = skiff_auth_open_check(cfg, req, msg, sizeof msg);
        if (code)
            d->error(req, code, msg);
        return;
    }
    d->on_head(req, e);
}

void
skiff_dispatch_handle(struct skiff_request *req, void *worker)
{
    struct skiff_engine *e = worker;
    const struct skiff_door *d = pick(req);
    if (is_health(req)) {
        if (!health_method(req, d))
            health(req, e);
        return;
    }
    d->handle(req, e);
}

void
skiff_dispatch_http_error(struct skiff_request *req, int status, const char *message)
{
    size_t n = sizeof builtin / sizeof builtin[0];
    builtin[n - 1]->error(req, status, message);
}

void
skiff_dispatch_cut(struct skiff_request *req, void *worker)
{
    const struct skiff_door *d = pick(req);
    if (d->cut)
        d->cut(req, worker);
    else
        skiff_engine_cut(req);
}

void *
skiff_dispatch_worker_init(uv_loop_t *loop, int index, void *shared)
{
    return skiff_engine_new(loop, index, shared);
}

void
skiff_dispatch_worker_fini(void *worker)
{
    skiff_engine_free(worker);
}
