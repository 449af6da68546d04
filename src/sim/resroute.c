#include "sim/resroute.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "server/http.h"
#include "sim/auth.h"
#include "sim/batches.h"
#include "sim/caches.h"
#include "sim/files.h"
#include "sim/predict.h"
#include "sim/resource.h"

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
int
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
    int is_predict = !method && (method = skiff_sim_predict_route(&q)) != NULL;
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
    q.streamed = req->body_streamed;
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
    if (is_file && strcmp(method, "files.get") == 0 &&
        skiff_sim_predict_file(sim->predict, &q, &r) == 0)
        ; /* a generated video's file */
    else if (is_file)
        skiff_sim_files_handle(sim->files, &q, &r);
    else if (is_cache)
        skiff_sim_caches_handle(sim->caches, sim->files, &q, &r);
    else if (is_predict)
        skiff_sim_predict_handle(sim->predict, &q, &r);
    else
        skiff_sim_batches_handle(sim->batches, &q, &r);
    if (r.status == 200) {
        if (r.raw) {
            plan_body(sr, 200, r.raw_type, r.raw, r.raw_len);
            r.raw = NULL;
        } else if (r.body)
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
    free(r.raw);
    return 0;
}
