/*
 * Inside the engine (engine.h): one call's state and the functions its files share. Only
 * the files of src/engine/ include this.
 *
 *   engine.c   the plan, the attempt loop (acquire, launch, classify, retry, fall back),
 *              the deadline, the end of a call
 *   answer.c   everything that answers: upstream errors, skiff's errors, whole successes
 *   hold.c     the upstream callbacks: the hold before commit, the commit, delivery of a
 *              committed stream to the filters and the door
 *   confirm.c  the probe that confirms a retirement before a key is blamed for every model
 *   quality.c  the config's quality filters (the repetition guard, the RECITATION re-ask)
 */
#ifndef SKIFF_ENGINE_CALL_H
#define SKIFF_ENGINE_CALL_H

#include <stdint.h>

#include "base/buf.h"
#include "engine/engine.h"
#include "gemini/classify.h"
#include "gemini/stream.h"
#include "relay/probe.h"
#include "relay/upstream.h"
#include "relay/wstunnel.h"

#define MAX_UPSTREAM_ERROR (1024u * 1024) /* an error body we may need to read */
#define MAX_HOLD (4u * 1024 * 1024)       /* held: a stream's prefix, or a whole success */
#define STREAM_HIGH_WATER (1024u * 1024)  /* pause the upstream above this */
#define FILTER_CARRY (1024u * 1024)       /* an event the filters alone read */
#define MAX_CHAIN 8                       /* models in a fallback chain */
#define MAX_ASKED_MODEL 128               /* the asked model is cut to this many bytes */
#define MAX_FILTERS (SKIFF_ENGINE_MAX_FILTERS + 2)

struct skiff_engine {
    const struct skiff_engine_shared *sh;
    const struct skiff_config *cfg;
    struct skiff_upstream *up;
    struct skiff_wsclient *ws; /* Live sessions' tunnels (live.c), made on first use */
    uv_loop_t *loop;
    uint64_t rng;
};

struct call {
    struct skiff_request *req; /* NULL once the client is gone or answered */
    struct skiff_engine *w;
    const struct skiff_engine_ops *ops;
    void *door;
    struct skiff_route route;
    struct skiff_upquery query;
    /* The asked model (asked[] below), then its fallbacks: the configuration's own strings,
     * which outlive every request (the config is freed only after the server is). */
    const char *chain[MAX_CHAIN];
    int nchain;
    int model_i;         /* the model being tried */
    int attempts;        /* upstream calls made */
    int model_attempts;  /* calls made on the current model */
    int share;           /* calls each model gets before the next one is tried */
    uint64_t keys_used;  /* a bit per key tried (first 64), for the hint */
    int key;             /* the key held by the call in flight, or -1 */
    int pin_key;         /* plan.pin_key: 1 + the only key the call may use, or 0 */
    int last_key;        /* the key of the latest call (for the headers and logs), or -1 */
    int64_t deadline_ms; /* Unix ms: no attempt, wait or fallback starts after it */
    int deadline_total_ms;
    int hard_total_ms;   /* the client's x-skiff-deadline-ms: cuts everything; 0: none */
    int hard_armed;      /* deadline_timer is set for hard_total_ms */
    int deadline_passed; /* deadline_ms passed while an attempt was in flight */
    int retry_timeouts;  /* x-skiff-retry-timeouts: on */
    int timed_out_sent;  /* the last attempt timed out after its request was sent */
    int forward_head;    /* plan.forward_head */
    size_t hdrs_mark;    /* the response headers' length before this call added any */
    uv_timer_t deadline_timer, wait_timer;
    int handles_open;
    int over; /* call_done ran: no op follows */
    struct skiff_upcall *call;
    int up_status;
    double up_retry_s; /* the last verdict's retry delay, or -1 */
    struct skiff_buf up_headers;
    struct skiff_buf body;               /* a buffered upstream body, or a held stream prefix */
    size_t scanned;                      /* how much of a held stream has been judged */
    struct skiff_stream_scan scan;       /* where the held stream's units end */
    struct skiff_stream_scan ev_scan;    /* where the committed stream's events (carry) end */
    struct skiff_buf carry;              /* a committed event not yet complete */
    int split;                           /* committed bytes are cut into events (carry) */
    int started;                         /* the client's response has begun */
    int sse;                             /* a stream in the SSE form (?alt=sse) */
    int stream_failed;                   /* a held stream turned out to be an error or empty */
    struct skiff_verdict stream_verdict; /* what a held stream that failed amounted to */
    int stream_error_code;
    int64_t tokens;
    char *last_error;               /* a transport failure of the last call (owned), or NULL */
    struct skiff_probe *probe;      /* the probe of key this call runs (relay/probe.h) */
    int probe_waiting;              /* waiting (wait_timer) for another call's probe of key */
    uint64_t probe_gen;             /* the key's probe count when the wait began */
    struct skiff_verdict probe_for; /* the verdict the probe is to confirm */
    int key_cleared;                /* a probe found the key working: the request was refused */
    struct {
        const struct skiff_engine_filter *f;
        void *st;
    } filters[MAX_FILTERS];
    int nfilters;
    const char *reqbody; /* the body each attempt sends: owned, or borrowed */
    size_t reqbody_len;
    char *owned; /* the owned one (a door's translation, the thinking policy, a re-ask) */
    /* A streamed request body (plan.stream_body, upload.c): */
    int stream_body;
    int body_end_seen;  /* the client's body is all read */
    uint64_t body_sent; /* its bytes handed to an upstream call: no attempt may follow */
    char asked[];       /* chain[0]: the asked model, NUL-terminated (allocated with the call) */
};

static inline const char *
call_model(const struct call *c)
{
    return c->chain[c->model_i];
}

static inline int
call_is_stream(const struct call *c)
{
    return c->route.method == SKIFF_M_STREAM;
}

/* engine.c */
void call_done(struct call *c);
void call_release_key(struct call *c, enum skiff_fault fault, double delay_s, const char *reason);
void call_log_attempt(const struct call *c, int status, const struct skiff_verdict *v,
                      const char *next, int64_t delay_ms);
void call_next_attempt(struct call *c);
void call_after_failure(struct call *c, const struct skiff_verdict *v);
void call_on_done(struct skiff_upcall *up, const char *error);
const char *call_label(const struct call *c, int key);
int call_first_byte_timeout(const struct call *c);

/* answer.c */
void call_decorate(struct call *c);
void call_forward_head(struct call *c);
const char *call_content_type(const struct call *c, char *out, size_t outlen);
const char *call_upstream_header(const struct call *c, const char *name, char *out, size_t outlen);
void call_note_finish(struct call *c, const char *data, size_t len);
void call_forward_answer(struct call *c);
void call_give_up(struct call *c);
void call_exhausted(struct call *c, int64_t back_at);
/* skiff's own error: answered while nothing was sent, else the door's mid-stream error and
 * an aborted body. Cancels the call in flight (its key released as transient) and ends. */
void call_fail(struct call *c, int code, const char *gstatus, const char *msg, const char *why);

/* hold.c */
extern const struct skiff_upcall_ops skiff_engine_upcall_ops;
/* The head and whatever was held go to the door: from here on, no retry. */
void call_commit(struct call *c);
/* A committed stream ended cleanly: the rest of the carry, on_end, the end of the body. */
void call_finish_stream(struct call *c);
/* The last "totalTokenCount": N in data, or -1. */
int64_t call_scan_tokens(const char *data, size_t len);

/* confirm.c */
void call_confirm_key(struct call *c, const struct skiff_verdict *v);

/* upload.c: a streamed body (an upload's bytes) through the call in flight. */
void call_upload_opts(struct call *c, struct skiff_upcall_opts *o);
void call_upload_attach(struct call *c);
int call_upload_spent(const struct call *c);

/* quality.c: installs the config's quality filters on c. */
void call_add_quality_filters(struct call *c);

#endif
