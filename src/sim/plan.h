#ifndef SKIFF_SIM_PLAN_H
#define SKIFF_SIM_PLAN_H

/*
 * Inside `skiff sim` (only the files of src/sim/ include this): the simulator's state, one
 * API request's state, and its reply, planned in advance and then sent by plan.c. A handler
 * fills the plan through the plan_* functions and hands the request to go(); from then on
 * plan.c owns it (docs/internals/sim.md, "Request state").
 *
 * The names are those the functions had as statics of sim.c, kept so that the move out of
 * sim.c changed no line of the handlers that call them.
 */

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <uv.h>

#include "server/http.h"
#include "sim/faults.h"
#include "sim/quota.h"
#include "sim/script.h"
#include "sim/simconf.h"
#include "sim/validate.h"

#define JSON_TYPE "application/json; charset=UTF-8"
#define SSE_TYPE "text/event-stream"

struct skiff_sim_model;
struct skiff_sim_files;
struct skiff_sim_caches;
struct skiff_sim_batches;

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
    struct skiff_sim_predict *predict; /* :predict, :predictLongRunning, their operations */
    struct skiff_sim_live *live;       /* Live API sessions, ephemeral tokens (live.h) */
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

/* ---- sending ---- */

/*
 * The request's on_abort: the client went away before the response ended. Marks the log
 * entry aborted and frees sr (or, inside a call that may end the request, marks it gone
 * for step() to free on the way out).
 */
void on_abort(struct skiff_request *req);

/*
 * Sends the plan after latency_ms (at once when 0): the whole body, the stream events with
 * their chunk delays, a reset or nothing (hang). sr and sr->req belong to plan.c from here
 * on; the caller touches neither again. The log entry gets the status, events, end, reset.
 */
void go(struct sim_req *sr, long latency_ms);

/* ---- planning ---- */

/* Plans a whole reply; body (malloc'ed, stolen) of len bytes. A NULL body plans a 500. */
void plan_body(struct sim_req *sr, int status, const char *type, char *body, size_t len);

/* Plans j pretty-printed as a JSON reply (j is borrowed). */
void plan_json(struct sim_req *sr, int status, const json_t *j);

/* A Google error body; array: the JSON-array stream form wraps it. details is stolen. */
void plan_error(struct sim_req *sr, int status, const char *gstatus, const char *message,
                json_t *details, int array);

/* Plans inv's error (its details are stolen: inv->details is NULL after). */
void plan_invalid(struct sim_req *sr, const struct call *c, struct skiff_sim_invalid *inv);

/* Plans the quota module's 429 body for the verdict v. */
void plan_quota(struct sim_req *sr, const struct call *c, const struct skiff_sim_verdict *v);

/*
 * Frames pre-built events (an array of objects, borrowed) for the request's stream form:
 * SSE, or the JSON array with its closing tail. 0, or SKIFF_ENOMEM.
 */
int plan_events(struct sim_req *sr, const struct call *c, const json_t *events);

/* Plans a scripted reply that replaces the simulator's own (every kind but ANSWER). */
void plan_scripted(struct sim_req *sr, const struct call *c, const struct skiff_sim_reply *r);

/* Applies the stream overrides of a scripted reply (chunkMs, resetAfter, error) to a
 * PLAN_STREAM plan; other plans are left alone. */
void apply_stream_overrides(struct sim_req *sr, const struct call *c,
                            const struct skiff_sim_reply *r);

/* The API's message for an error status ("The model is overloaded. ..." for 503). */
const char *default_message(int status);

/* 1 for streamGenerateContent without alt=sse: errors are wrapped in an array. */
int is_stream_array(const struct call *c);

/* A value in [lo, hi] from the request's generator. */
long pick(struct sim_req *sr, long lo, long hi);

#endif
