#include "sim/control.h"

#include <stdio.h>
#include <string.h>

#include "base/clock.h"
#include "base/err.h"
#include "gemini/error.h"
#include "server/http.h"
#include "sim/batches.h"
#include "sim/caches.h"
#include "sim/files.h"
#include "sim/live.h"
#include "sim/plan.h"
#include "sim/predict.h"
#include "sim/quota.h"
#include "sim/render.h"

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

void
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
        skiff_sim_predict_clear(sim->predict);
        skiff_sim_live_clear(sim->live);
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
