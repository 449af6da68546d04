/*
 * Blocking calls on skiff's own client (relay/fetch.h): one private libuv loop per call,
 * the upstream client on it, run until the call ends, the total timeout fires or the stop
 * flag is seen (checked every STOP_POLL_MS).
 */
#include "relay/fetch.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <uv.h>

#include "relay/upstream.h"

#define MAX_PAGES 20
#define MAX_GET_BODY (8u * 1024 * 1024)
#define STOP_POLL_MS 100

struct get {
    struct skiff_get_result *out;
    size_t cap;
    struct skiff_upcall *call;
    const atomic_int *stop;
    long timeout_ms;
    uv_timer_t timer; /* the total timeout, and the stop flag's poll */
    uint64_t deadline;
    int done;
};

/* The Retry-After field of a header block ("name: value\r\n" lines), if any. */
static void
take_retry_after(struct skiff_get_result *r, const char *h, size_t len)
{
    const char *end = h + len;
    while (h < end) {
        const char *eol = memchr(h, '\n', (size_t)(end - h));
        size_t n = eol ? (size_t)(eol - h) : (size_t)(end - h);
        if (n > 12 && strncasecmp(h, "retry-after:", 12) == 0) {
            const char *v = h + 12;
            size_t vl = n - 12;
            while (vl && (*v == ' ' || *v == '\t')) {
                v++;
                vl--;
            }
            while (vl && (v[vl - 1] == '\r' || v[vl - 1] == ' ' || v[vl - 1] == '\t'))
                vl--;
            if (vl >= sizeof r->retry_after)
                vl = sizeof r->retry_after - 1;
            memcpy(r->retry_after, v, vl);
            r->retry_after[vl] = '\0';
        }
        h += n + (eol != NULL);
    }
}

static int
on_status(struct skiff_upcall *call, int status, const char *headers, size_t len)
{
    struct get *g = skiff_upcall_data(call);
    g->out->status = status;
    take_retry_after(g->out, headers, len);
    return 0;
}

static int
on_body(struct skiff_upcall *call, const char *data, size_t len)
{
    struct get *g = skiff_upcall_data(call);
    struct skiff_get_result *r = g->out;
    if (r->len + len > MAX_GET_BODY) {
        snprintf(r->error, sizeof r->error, "the answer is larger than 8 MiB");
        return -1;
    }
    if (r->len + len + 1 > g->cap) {
        size_t cap = g->cap ? g->cap : 4096;
        while (cap < r->len + len + 1)
            cap *= 2;
        char *b = realloc(r->body, cap);
        if (!b) {
            snprintf(r->error, sizeof r->error, "out of memory");
            return -1;
        }
        r->body = b;
        g->cap = cap;
    }
    memcpy(r->body + r->len, data, len);
    r->len += len;
    r->body[r->len] = '\0';
    return 0;
}

static void
on_done(struct skiff_upcall *call, const char *error)
{
    struct get *g = skiff_upcall_data(call);
    g->call = NULL;
    g->done = 1;
    if (error) {
        g->out->status = 0;
        if (!g->out->error[0]) /* a cause of our own (too big) comes first */
            snprintf(g->out->error, sizeof g->out->error, "%s", error);
    }
}

/* Ends the call with a cause of our own. */
static void
give_up(struct get *g, const char *why)
{
    skiff_upcall_cancel(g->call);
    g->call = NULL;
    g->done = 1;
    g->out->status = 0;
    snprintf(g->out->error, sizeof g->out->error, "%s", why);
}

static void
tick(uv_timer_t *t)
{
    struct get *g = t->data;
    if (g->done)
        return;
    if (g->stop && atomic_load(g->stop)) {
        give_up(g, "stopped");
        return;
    }
    if (uv_now(t->loop) >= g->deadline) {
        char why[96];
        snprintf(why, sizeof why, "no complete answer within %ld ms", g->timeout_ms);
        give_up(g, why);
    }
}

static const struct skiff_upcall_ops get_ops = {on_status, on_body, on_done};

static long
since_ms(uv_loop_t *loop, uint64_t t0)
{
    uv_update_time(loop);
    return (long)(uv_now(loop) - t0);
}

/* skiff_gemini_get, ended early once *stop is set; stop may be NULL. */
static int
gemini_get(const char *url, const char *key, const char *proxy, const char *ca_file,
           long connect_timeout_ms, long timeout_ms, const atomic_int *stop,
           struct skiff_get_result *out)
{
    memset(out, 0, sizeof *out);
    uv_loop_t loop;
    if (uv_loop_init(&loop) < 0) {
        snprintf(out->error, sizeof out->error, "could not start an event loop");
        return -1;
    }
    uint64_t t0 = uv_now(&loop);
    struct get g = {.out = out, .stop = stop, .timeout_ms = timeout_ms};
    g.deadline = t0 + (uint64_t)(timeout_ms > 0 ? timeout_ms : 1);
    struct skiff_upstream *u = skiff_upstream_new(&loop);
    /* The key travels only in this header, wiped once the client has copied it. */
    size_t hl = strlen("x-goog-api-key: ") + strlen(key) + 1;
    char *hdr = malloc(hl);
    if (u && hdr) {
        snprintf(hdr, hl, "x-goog-api-key: %s", key);
        const char *headers[] = {hdr, NULL};
        struct skiff_upcall_opts o = {
            .method = "GET",
            .url = url,
            .headers = headers,
            .proxy = proxy && *proxy ? proxy : NULL,
            .ca_file = ca_file && *ca_file ? ca_file : NULL,
            .connect_timeout_ms = connect_timeout_ms,
            .first_byte_timeout_ms = timeout_ms,
            .idle_timeout_ms = timeout_ms,
            .ops = &get_ops,
            .data = &g,
        };
        g.call = skiff_upcall_start(u, &o);
        memset(hdr, 0, hl);
    }
    free(hdr);
    if (!g.call) {
        g.done = 1;
        snprintf(out->error, sizeof out->error,
                 u ? "could not start the call (a URL skiff cannot call?)" : "out of memory");
    }
    uv_timer_init(&loop, &g.timer);
    g.timer.data = &g;
    uv_timer_start(&g.timer, tick, STOP_POLL_MS, STOP_POLL_MS);
    while (!g.done)
        uv_run(&loop, UV_RUN_ONCE);
    out->ms = since_ms(&loop, t0);
    uv_close((uv_handle_t *)&g.timer, NULL);
    skiff_upstream_close(u);
    /* The closes, and a name lookup still on libuv's thread pool (its result is dropped). */
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    if (out->status == 0) {
        free(out->body);
        out->body = NULL;
        out->len = 0;
        return -1;
    }
    return 0;
}

int
skiff_gemini_get(const char *url, const char *key, const char *proxy, const char *ca_file,
                 long connect_timeout_ms, long timeout_ms, struct skiff_get_result *out)
{
    return gemini_get(url, key, proxy, ca_file, connect_timeout_ms, timeout_ms, NULL, out);
}

void
skiff_get_result_release(struct skiff_get_result *r)
{
    free(r->body);
    r->body = NULL;
    r->len = 0;
}

/* ---- models.list into the catalog -------------------------------------------------------- */

/* Appends the models of one page to all (stealing them); returns nextPageToken or NULL. */
static char *
take_page(json_t *all, const struct skiff_get_result *r, char *err, size_t errlen)
{
    json_t *root = json_loadb(r->body ? r->body : "", r->len, 0, NULL);
    json_t *models = json_object_get(root, "models");
    char *next = NULL;
    if (!json_is_array(models)) {
        snprintf(err, errlen, "models.list answered something that is not a model list");
    } else {
        json_array_extend(all, models);
        const char *tok = json_string_value(json_object_get(root, "nextPageToken"));
        if (tok && *tok)
            next = strdup(tok);
    }
    json_decref(root);
    return next;
}

/* Percent-encodes a page token (they are base64-like and may hold + / =). */
static void
add_token(char *url, size_t cap, const char *tok)
{
    size_t o = strlen(url);
    o += (size_t)snprintf(url + o, cap > o ? cap - o : 0, "&pageToken=");
    for (const unsigned char *p = (const unsigned char *)tok; *p && o + 4 < cap; p++) {
        if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
            *p == '-' || *p == '_' || *p == '.' || *p == '~')
            url[o++] = (char)*p;
        else
            o += (size_t)snprintf(url + o, cap - o, "%%%02X", *p);
    }
    url[o < cap ? o : cap - 1] = '\0';
}

int
skiff_catalog_refresh(struct skiff_catalog *cat, const char *base_url, const char *key,
                      const char *proxy, const char *ca_file, char *err, size_t errlen)
{
    return skiff_catalog_refresh_until(cat, base_url, key, proxy, ca_file, NULL, err, errlen);
}

int
skiff_catalog_refresh_until(struct skiff_catalog *cat, const char *base_url, const char *key,
                            const char *proxy, const char *ca_file, const atomic_int *stop,
                            char *err, size_t errlen)
{
    char dummy[8];
    if (!err || !errlen) {
        err = dummy;
        errlen = sizeof dummy;
    }
    err[0] = '\0';
    json_t *all = json_array();
    char *token = NULL;
    int rc = -1;
    for (int page = 0; page < MAX_PAGES; page++) {
        char url[2048];
        snprintf(url, sizeof url, "%s/v1beta/models?pageSize=1000", base_url);
        if (token)
            add_token(url, sizeof url, token);
        free(token);
        token = NULL;
        struct skiff_get_result r;
        if (gemini_get(url, key, proxy, ca_file, 10000, 30000, stop, &r) < 0) {
            snprintf(err, errlen, "models.list failed: %s", r.error);
            skiff_get_result_release(&r);
            goto out;
        }
        if (r.status != 200) {
            snprintf(err, errlen, "models.list answered HTTP %d", r.status);
            skiff_get_result_release(&r);
            goto out;
        }
        token = take_page(all, &r, err, errlen);
        skiff_get_result_release(&r);
        if (err[0])
            goto out;
        if (!token)
            break;
    }
    rc = skiff_catalog_apply_list(cat, all);
    if (rc < 0)
        snprintf(err, errlen, "models.list held no usable model");
out:
    free(token);
    json_decref(all);
    return rc;
}
