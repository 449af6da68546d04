/*
 * The owner of a resource skiff did not create (lookup.h). A lookup is a small state machine
 * on the worker's loop: for each name, a GET on each pool key in turn until one answers 200;
 * one call at a time, started from a step timer (never from inside a callback of the call
 * that ended), a deadline timer for the whole lookup. Freed in the close callbacks of both.
 */
#include "doors/gemini/lookup.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "base/buf.h"
#include "base/clock.h"
#include "gemini/router.h"
#include "relay/keypool.h"
#include "relay/uprequest.h"
#include "relay/upstream.h"
#include "state/affinity.h"

#define MAX_NAMES 8
#define BODY_MAX (64 * 1024) /* a resource's metadata; more is not read */
#define HOUR_MS (3600LL * 1000)

struct lookup {
    struct skiff_request *req;
    struct skiff_engine *e;
    void (*done)(struct skiff_request *req, void *data);
    void (*drop)(void *data);
    void *data;
    uv_timer_t deadline, step;
    int closing, nclosed, finished;
    struct skiff_upcall *call;
    char names[MAX_NAMES][SKIFF_AFFINITY_MAX_NAME];
    int n, at;     /* the names, and the one being looked up */
    int key;       /* the key being asked */
    int transient; /* a key of the current name could not answer */
    int status;    /* the current call's */
    struct skiff_buf body;
    char path[SKIFF_AFFINITY_MAX_NAME + 16];
    struct skiff_route rt; /* points into path */
};

int
skiff_gemini_no_owner(const char *label)
{
    return strcmp(label, SKIFF_GEMINI_NO_OWNER) == 0;
}

void
skiff_gemini_no_owner_message(const char *name, char *msg, size_t cap)
{
    static const struct {
        const char *prefix, *kind;
    } kinds[] = {{"files/", "File"},
                 {"cachedContents/", "CachedContent"},
                 {"batches/", "Batch"},
                 {"operations/", "Operation"}};
    const char *kind = "resource", *id = name;
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (strncmp(name, kinds[i].prefix, strlen(kinds[i].prefix)) == 0) {
            kind = kinds[i].kind;
            id = name + strlen(kinds[i].prefix);
        }
    if (strstr(name, "/operations/"))
        kind = "Operation";
    snprintf(msg, cap,
             "You do not have permission to access the %s %s or it may not exist. (skiff asked "
             "every key of its pool and none can see %s: it was made with a key skiff does not "
             "have, or it expired or was deleted.)",
             kind, id, name);
}

/* ---- the end ----------------------------------------------------------------------------- */

static void
closed(uv_handle_t *h)
{
    struct lookup *l = h->data;
    if (++l->nclosed < 2)
        return;
    skiff_buf_release(&l->body);
    free(l);
}

static void
destroy(struct lookup *l)
{
    if (l->closing)
        return;
    l->closing = 1;
    if (l->call) {
        skiff_upcall_cancel(l->call);
        l->call = NULL;
    }
    l->req->data = NULL;
    l->req->on_abort = NULL;
    uv_close((uv_handle_t *)&l->deadline, closed);
    uv_close((uv_handle_t *)&l->step, closed);
}

static void
finish(struct lookup *l)
{
    if (l->finished)
        return;
    l->finished = 1;
    struct skiff_request *req = l->req;
    void (*done)(struct skiff_request *, void *) = l->done;
    void *data = l->data;
    destroy(l);
    done(req, data);
}

/* The request will not be answered through the lookup: its data dropped, done never. */
static void
drop_lookup(struct lookup *l)
{
    l->finished = 1;
    void (*drop)(void *) = l->drop;
    void *data = l->data;
    destroy(l);
    drop(data);
}

static void
on_client_abort(struct skiff_request *req)
{
    drop_lookup(req->data);
}

/* ---- one probe --------------------------------------------------------------------------- */

/* Unix ms of an RFC 3339 time, or -1. */
static int64_t
parse_time(const char *s)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *r = s ? strptime(s, "%Y-%m-%dT%H:%M:%S", &tm) : NULL;
    return r ? (int64_t)timegm(&tm) * 1000 : -1;
}

/* The owner answered: recorded until the resource's own expiry when its metadata says it. */
static void
record_owner(struct lookup *l)
{
    const struct skiff_keypool *pool = skiff_engine_shared(l->e)->pool;
    const char *name = l->names[l->at];
    int64_t now = skiff_now_ms();
    int64_t exp = now + (strncmp(name, "files/", 6) == 0 ? 48 * HOUR_MS : 30 * 24 * HOUR_MS);
    json_t *j = l->body.len ? json_loadb(l->body.data, l->body.len, 0, NULL) : NULL;
    const char *t = json_string_value(json_object_get(j, "expirationTime"));
    if (!t)
        t = json_string_value(json_object_get(j, "expireTime"));
    int64_t at = parse_time(t);
    if (at > now)
        exp = at;
    json_decref(j);
    skiff_affinity_put(name, skiff_keypool_label(pool, l->key), NULL, exp);
}

static int
on_status(struct skiff_upcall *call, int status, const char *headers, size_t len)
{
    struct lookup *l = skiff_upcall_data(call);
    l->status = status;
    return 0;
}

static int
on_body(struct skiff_upcall *call, const char *data, size_t len)
{
    struct lookup *l = skiff_upcall_data(call);
    if (l->status == 200 && skiff_buf_add(&l->body, data, len))
        skiff_buf_reset(&l->body); /* too long to read: its expiry is the default */
    return 0;
}

static void next_step(uv_timer_t *t);

static void
on_done(struct skiff_upcall *call, const char *error)
{
    struct lookup *l = skiff_upcall_data(call);
    l->call = NULL;
    int st = error ? 0 : l->status;
    if (st == 200) {
        record_owner(l);
        l->at++;
        l->key = 0;
        l->transient = 0;
    } else {
        /* 400, 401, 403, 404: this key cannot see it (or is no key at all); anything else
         * says nothing. */
        if (!(st == 400 || st == 401 || st == 403 || st == 404))
            l->transient = 1;
        l->key++;
    }
    uv_timer_start(&l->step, next_step, 0, 0);
}

static const struct skiff_upcall_ops lookup_ops = {on_status, on_body, on_done};

/* Starts the GET of the current name on the current key; 0, or -1 when none could start. */
static int
start_probe(struct lookup *l)
{
    const struct skiff_engine_shared *sh = skiff_engine_shared(l->e);
    const struct skiff_config *cfg = sh->cfg;
    int n = snprintf(l->path, sizeof l->path, "/v1beta/%s", l->names[l->at]);
    skiff_route("GET", l->path, (size_t)n, &l->rt);
    if (l->rt.kind != SKIFF_ROUTE_RESOURCE || !l->rt.res_id || !l->rt.http_method_ok)
        return -1;
    struct skiff_upquery q;
    memset(&q, 0, sizeof q);
    struct skiff_uprequest u;
    if (skiff_uprequest_build(&u, cfg, l->req, &l->rt, &q, NULL,
                              skiff_keypool_secret(sh->pool, l->key)))
        return -1;
    l->status = 0;
    skiff_buf_reset(&l->body);
    /* One key that hangs must leave time for the others. */
    long fbt = cfg->retry.first_byte_timeout_ms > 0 &&
                       cfg->retry.first_byte_timeout_ms < SKIFF_GEMINI_LOOKUP_MS / 2
                   ? cfg->retry.first_byte_timeout_ms
                   : SKIFF_GEMINI_LOOKUP_MS / 2;
    struct skiff_upcall_opts o = {
        .method = "GET",
        .url = u.url,
        .headers = u.headers,
        .proxy = cfg->proxy,
        .ca_file = cfg->ca_file,
        .connect_timeout_ms =
            cfg->retry.connect_timeout_ms < fbt ? cfg->retry.connect_timeout_ms : fbt,
        .first_byte_timeout_ms = fbt,
        .idle_timeout_ms = fbt,
        .ops = &lookup_ops,
        .data = l,
    };
    l->call = skiff_upcall_start(skiff_engine_upstream(l->e), &o);
    skiff_uprequest_wipe(&u);
    return l->call ? 0 : -1;
}

/* The next probe, or the end: from the loop. */
static void
next_step(uv_timer_t *t)
{
    struct lookup *l = t->data;
    size_t nkeys = skiff_keypool_size(skiff_engine_shared(l->e)->pool);
    while (l->at < l->n) {
        if ((size_t)l->key >= nkeys) {
            /* Every key answered and none owns it: remembered for a while. */
            if (!l->transient)
                skiff_affinity_put(l->names[l->at], SKIFF_GEMINI_NO_OWNER, NULL,
                                   skiff_now_ms() + SKIFF_GEMINI_NO_OWNER_MS);
            l->at++;
            l->key = 0;
            l->transient = 0;
            continue;
        }
        if (start_probe(l) == 0)
            return;
        l->transient = 1; /* could not ask this key */
        l->key++;
    }
    finish(l);
}

static void
deadline_cb(uv_timer_t *t)
{
    finish(t->data); /* what is unknown stays so: the call goes out unpinned */
}

int
skiff_gemini_lookup(struct skiff_request *req, struct skiff_engine *e, const char *const *names,
                    int n, void (*done)(struct skiff_request *req, void *data),
                    void (*drop)(void *data), void *data)
{
    struct lookup *l = calloc(1, sizeof *l);
    if (!l)
        return -1;
    *l = (struct lookup){.req = req, .e = e, .done = done, .drop = drop, .data = data};
    for (int i = 0; i < n && l->n < MAX_NAMES; i++)
        if (strlen(names[i]) < SKIFF_AFFINITY_MAX_NAME)
            snprintf(l->names[l->n++], SKIFF_AFFINITY_MAX_NAME, "%s", names[i]);
    skiff_buf_init(&l->body, BODY_MAX);
    uv_loop_t *loop = skiff_http_loop(req);
    uv_timer_init(loop, &l->deadline);
    uv_timer_init(loop, &l->step);
    l->deadline.data = l->step.data = l;
    const struct skiff_config *cfg = skiff_engine_shared(e)->cfg;
    long ms = SKIFF_GEMINI_LOOKUP_MS;
    if (cfg->retry.deadline_ms > 0 && cfg->retry.deadline_ms < ms)
        ms = cfg->retry.deadline_ms;
    req->data = l;
    req->on_abort = on_client_abort;
    uv_timer_start(&l->deadline, deadline_cb, (uint64_t)ms, 0);
    uv_timer_start(&l->step, next_step, 0, 0);
    return 0;
}

int
skiff_gemini_lookup_cut(struct skiff_request *req)
{
    if (req->on_abort != on_client_abort)
        return 0;
    drop_lookup(req->data);
    return 1;
}
