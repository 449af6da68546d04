/*
 * The attempt engine: one Gemini call, made of one or more upstream attempts, answered to the
 * client exactly once. It knows the upstream (Gemini's classification, its stream framing, the
 * key pool, the budget) and no client dialect: a door (src/doors/) turns a client's request
 * into a plan, and turns what the engine reports back into its own dialect, through the ops
 * below. The engine includes no door header; a door includes this one.
 *
 * What the engine decides, so that no door can get it wrong:
 *   - the model chain (the asked model, then cfg fallbacks for generateContent and
 *     streamGenerateContent unless x-skiff-fallback: off), each model's share of
 *     retry.max_attempts, the deadline (retry.deadline_ms, shortened by x-skiff-deadline-ms,
 *     which is also a hard limit on the whole answer), the retry budget, backoff with full
 *     jitter, waiting for a resting key, the probe before a key is retired;
 *   - a key acquired is released exactly once, with its call's verdict;
 *   - a stream is held (up to 4 MiB) until its first event with content; until then a
 *     failure, even a 200 whose first event is an error or an empty answer, is retried
 *     invisibly. Once committed nothing is retried: two generations are never spliced, and a
 *     failure ends the answer visibly (on_error with after_start, then an aborted body);
 *   - the headers every answer carries: x-skiff-attempts, x-skiff-model, x-skiff-key (a label),
 *     x-skiff-hint when there is advice, x-skiff-finish for a notable finishReason, and (with
 *     plan.forward_head) the upstream's allowlisted headers. They are added to the request's
 *     response headers before the op that answers is called; the door only starts or writes
 *     the response;
 *   - pool keys never reach a client through a door: an upstream error body and every
 *     committed stream byte or event are redacted before an op sees them (a whole success is
 *     handed over as it came; Google does not echo a key in one).
 * Everything an op is handed is borrowed for the duration of the op.
 *
 * The life of a call, as a door sees it:
 *
 *   door handle():  route, auth, validate, translate -> plan -> skiff_engine_start(). From a
 *                   return of 0 the engine owns req->data, req->on_abort and req->on_drain.
 *
 *   A non-stream call (plan.route.method is not SKIFF_M_STREAM):
 *     on_body(answer)   a 2xx answer, whole: the door answers it (skiff_http_respond), e.g.
 *                       as it came (Gemini) or translated (JSON in, JSON out). A success
 *                       larger than 4 MiB is instead forwarded as it comes through on_head +
 *                       on_data + on_end when the door has on_data; without on_data it is a
 *                       502 through on_error.
 *     on_error(e)       e->after_start == 0: the door answers with its dialect's error body
 *                       (skiff_http_respond) and nothing else.
 *
 *   A stream (plan.route.method == SKIFF_M_STREAM; a translating door asks for
 *   plan.query.alt = SKIFF_ALT_SSE):
 *     on_head(h)        once, at commit (the first event with content arrived): the door
 *                       starts its response (skiff_http_start with its content type).
 *     on_event(ev)      each complete upstream event, in order, after the hold layer and the
 *                       filters: for SSE, "data: {...}\r\n\r\n" with its blank line (read its
 *                       JSON with skiff_stream_json, gemini/stream.h). The door writes its own
 *                       dialect's events (skiff_http_write); it may keep per-stream state in
 *                       plan.door. Returns 0, or -1 when it cannot go on (the engine ends the
 *                       answer as a failure).
 *     on_data(bytes)    instead of on_event, for a passthrough door: the upstream's bytes as
 *                       they come (the held prefix first, in one call), never parsed.
 *     on_end()          the upstream ended cleanly: the door writes its last events (e.g.
 *                       "data: [DONE]"); the engine then ends the body (skiff_http_end).
 *     on_error(e)       before on_head: as for a non-stream call (the door answers). After
 *                       it (e->after_start == 1): the door writes its mid-stream error event,
 *                       if its dialect has one, and nothing else; the engine then aborts the
 *                       body (no clean end, so the client sees the failure).
 *   Backpressure is the engine's: it pauses the upstream while more than 1 MiB waits for the
 *   client, and resumes it as the client drains.
 *
 *   on_free(door)      exactly once, after the last op, also when the client went away
 *                      (no op is called after an abort). The door frees plan.door.
 *
 * Filters (skiff_engine_filter) see a call's upstream answer between the hold layer and the
 * door: each complete event of a committed stream, and a whole non-stream success. They may
 * end a stream with a last event of their own (the repetition guard) or ask for one more
 * attempt with a new request body (the RECITATION re-ask); the engine acts on the verdict, so
 * a filter never calls into the attempt loop. The engine installs the quality filters of the
 * config (engine/quality.c) on every call; a door may add its own in the plan.
 */
#ifndef SKIFF_ENGINE_H
#define SKIFF_ENGINE_H

#include <jansson.h>
#include <stddef.h>
#include <uv.h>

#include "config/config.h"
#include "gemini/router.h"
#include "relay/uprequest.h"
#include "server/http.h"

struct skiff_keypool;
struct skiff_budget;
struct skiff_catalog;
struct skiff_upstream;

/* What every worker shares: read-only config, the key pool and the retry budget (both
 * thread-safe), and the model catalog. Borrowed; they outlive the server. */
struct skiff_engine_shared {
    const struct skiff_config *cfg;
    struct skiff_keypool *pool;
    struct skiff_budget *budget;
    struct skiff_catalog *cat;
};

/* One per worker thread: its upstream client and jitter source. */
struct skiff_engine;

/* NULL when the worker's upstream client cannot be made. */
struct skiff_engine *skiff_engine_new(uv_loop_t *loop, int index,
                                      const struct skiff_engine_shared *sh);
void skiff_engine_free(struct skiff_engine *e);
/* The shared state the engine was made with (borrowed). */
const struct skiff_engine_shared *skiff_engine_shared(const struct skiff_engine *e);
/* The worker's upstream client (borrowed), for a door's own one-off fetches that are not
 * Gemini calls (doors/media.c: the image URLs a client names). */
struct skiff_upstream *skiff_engine_upstream(struct skiff_engine *e);

/* ---- what the engine reports to a door ------------------------------------------------ */

/* The answer's head, at commit. */
struct skiff_engine_head {
    int status;               /* the upstream's (2xx) */
    const char *content_type; /* the upstream's, checked (uprequest.h); for a passthrough */
    const char *model;        /* the Gemini model that answers (a fallback, maybe) */
};

/* A whole 2xx answer (non-stream). Borrowed for the duration of the op. */
struct skiff_engine_answer {
    int status;
    const char *content_type;
    const char *body;
    size_t len;
    const char *model; /* the Gemini model that answered (a fallback, maybe) */
    int key;           /* the pool key that answered (an index: relay/keypool.h) */
    /* The upstream's response head (header lines; pool keys starred out), for a door that
     * reads a header the passthrough does not copy (the upload protocol's session URL). */
    const char *up_headers;
    size_t up_headers_len;
};

/*
 * An error to answer. Either the upstream's own error (body set: a Google error, redacted,
 * with a google.rpc.Help detail added when skiff has advice; a door that translates reads
 * error.code/status/message from it) or skiff's (body NULL: status, gstatus, message,
 * details). Everything is borrowed for the duration of the op; details is a JSON array or
 * NULL (take a reference to keep it).
 */
struct skiff_engine_error {
    int status;          /* the HTTP status to answer with */
    const char *gstatus; /* Google's status name ("UNAVAILABLE"), or NULL: the status's own */
    const char *message; /* skiff's message (printable, UTF-8); set when body is NULL */
    json_t *details;     /* Google error details (RetryInfo, Help) or NULL */
    const char *body;    /* the upstream's error body, or NULL */
    size_t body_len;
    const char *content_type; /* the upstream's content type when body is set */
    const char *hint;         /* the advice also sent as x-skiff-hint, or NULL */
    double retry_after_s;     /* when the client may retry (429), or -1 */
    int after_start;          /* 1: the response has begun (mid-stream failure) */
    int sse;                  /* the upstream stream was SSE (?alt=sse) */
    const char *why;          /* a short reason for the log (the abort's reason) */
    const char *model;        /* the Gemini model of the last attempt (or the asked one) */
};

struct skiff_engine_ops {
    void (*on_head)(void *door, struct skiff_request *req, const struct skiff_engine_head *h);
    int (*on_event)(void *door, struct skiff_request *req, const char *ev, size_t len);
    int (*on_data)(void *door, struct skiff_request *req, const char *data, size_t len);
    void (*on_body)(void *door, struct skiff_request *req, const struct skiff_engine_answer *a);
    void (*on_end)(void *door, struct skiff_request *req);
    void (*on_error)(void *door, struct skiff_request *req, const struct skiff_engine_error *e);
    void (*on_free)(void *door);
};

/* ---- filters -------------------------------------------------------------------------- */

enum skiff_filter_verdict {
    SKIFF_FILTER_PASS = 0, /* go on */
    SKIFF_FILTER_STOP,     /* on_event: end the stream cleanly after this event and *last */
    SKIFF_FILTER_REASK,    /* on_answer: one more attempt with *body instead of this answer */
};

/* What a filter may know of its call. */
struct skiff_filter_ctx {
    const char *id;    /* the request's x-request-id */
    const char *model; /* the model that answered */
    const struct skiff_config *cfg;
};

struct skiff_engine_filter {
    const char *name;         /* for logs */
    const char *reask_reason; /* the attempt log's reason for a REASK (NULL: name) */
    /* A complete event of a committed stream (SSE or a JSON-array element), before the door
     * sees it. SKIFF_FILTER_STOP: the upstream call is cancelled (the key released as a
     * success), the door gets this event, then *last (a malloc'd event the engine frees, or
     * NULL), then on_end. May be NULL. */
    enum skiff_filter_verdict (*on_event)(void *st, const struct skiff_filter_ctx *c,
                                          const char *ev, size_t len, char **last,
                                          size_t *last_len);
    /* A whole non-stream 2xx answer, and the request body that earned it. REASK: *body (a
     * malloc'd request body the engine takes) goes out as one more attempt, when
     * retry.max_attempts allows. May be NULL. */
    enum skiff_filter_verdict (*on_answer)(void *st, const struct skiff_filter_ctx *c,
                                           const char *answer, size_t alen, const char *request,
                                           size_t rlen, char **body, size_t *body_len);
    void (*free)(void *st); /* releases st when the call ends; may be NULL */
};

#define SKIFF_ENGINE_MAX_FILTERS 4

/* ---- the plan ------------------------------------------------------------------------- */

/*
 * A call as a door asks for it. The engine copies what it keeps; strings are borrowed only
 * where said.
 */
struct skiff_engine_plan {
    /* The Gemini call: route.kind (SKIFF_ROUTE_MODELS, _MODEL or _GENERATE), route.version
     * and route.method say the URL and the HTTP method (POST for _GENERATE, else GET);
     * route.model is ignored (the chain below decides). */
    struct skiff_route route;
    struct skiff_upquery query; /* alt, page parameters (slices borrowed from the request) */
    const char *model;          /* the asked model (cut to 128 bytes), or NULL for models.list */
    size_t model_len;
    const char *body; /* the Gemini request body, borrowed (must outlive the call: req->body,
                       * or memory owned by plan.door) */
    size_t body_len;
    char *owned_body; /* or a malloc'd body the engine takes (and frees); wins over body */
    size_t owned_len;
    int forward_head; /* add the upstream's allowlisted response headers (a passthrough) */
    /* Affinity: 1 + the index of the one pool key every attempt of the call must use (the
     * key that owns a file, cache, batch, operation or upload the call names), retries and
     * fallbacks included; 0: any key. When that key rests past retry.max_wait_ms, the
     * answer is a 429 that names it. */
    int pin_key;
    /* The request's body is streamed (req->body_streamed, server/http.h: an upload's bytes):
     * it goes to the upstream as it is read, on one attempt once a byte of it has gone (an
     * attempt that failed before, a connect, may be followed by another on the same key);
     * no fallback. body/owned_body are ignored. */
    int stream_body;
    const struct skiff_engine_ops *ops;
    void *door; /* per-request door state, handed to every op; freed by ops->on_free */
    struct {
        const struct skiff_engine_filter *f;
        void *st;
    } filters[SKIFF_ENGINE_MAX_FILTERS]; /* the door's own, run before the engine's */
    int nfilters;
};

/*
 * Starts the call; the first attempt may go out before this returns, and (with a pool that
 * cannot serve) the answer may be given before it returns. Returns 0: the engine owns the
 * request until it is answered (req->data, on_abort, on_drain are the engine's), ops->on_free
 * runs once at the end, and owned_body and the filters' states are the engine's. -1 (out of
 * memory): nothing was sent or taken: the door still owns req, plan.door, plan.owned_body and
 * its filters' states, and answers.
 */
int skiff_engine_start(struct skiff_engine *e, struct skiff_request *req,
                       struct skiff_engine_plan *plan);

/*
 * From inside ops->on_body only, instead of answering: the request goes on as a new call of
 * plan (a door that needs another upstream answer before it can answer, such as the next
 * page of a list), as skiff_engine_start would start it but from the loop, after this call
 * has ended. The response headers the engine added for this call are taken back (the new
 * call adds its own); this call's door state is still freed by its on_free, so plan.door
 * must be a new one. The request stays the engine's throughout: a client that goes away
 * ends the new call. Returns 0, or -1 (out of memory, or not inside on_body): nothing was
 * taken and the door answers.
 */
int skiff_engine_again(struct skiff_request *req, struct skiff_engine_plan *plan);

/*
 * A route for a Gemini call a translating door makes: /v1beta/models/{model}:{method}
 * (POST). With method SKIFF_M_STREAM, set plan.query.alt = SKIFF_ALT_SSE to get SSE events.
 */
void skiff_engine_route(struct skiff_route *rt, enum skiff_method method);

/*
 * The server's drain ended with req still in flight (server.h skiff_cut_cb): a 503 through
 * on_error if nothing was sent, else the visible cut. req->data must be the engine's (or
 * NULL: the body is aborted).
 */
void skiff_engine_cut(struct skiff_request *req);

/*
 * The x-skiff-* headers of an answer skiff gives before any attempt (a refusal): 0 attempts,
 * the asked model (model_len bytes, cut to 128; NULL or empty: "none"), no key.
 */
void skiff_engine_decorate(struct skiff_request *req, const char *model, size_t model_len);

/* ---- a Live API session (engine/live.c) ------------------------------------------------ */

/*
 * A WebSocket session to the upstream for the Live API, held on one pool key for its whole
 * life. The engine chooses the key as it does for a call on the session's model (rests,
 * per-model health, retired keys, fewest in flight), opens the upstream's tunnel with it
 * (relay/wstunnel.h; the key travels in the URL's ?key=, the one place Google's Live
 * endpoint takes it), and on a refusal that is the key's (429, 5xx, a failure to connect, a
 * key-naming 403 a probe confirms) tries the next key within retry.max_attempts,
 * retry.deadline_ms, the retry budget and retry.max_wait_ms. A refusal that is the
 * client's (400, an unknown model, a 403 the probe clears) blames no key. The key is
 * counted as in flight until skiff_session_close or on_close, then released as served.
 *
 * Ops run on the loop, never inside skiff_session_start: on_open or on_fail first,
 * exactly once; after on_open, on_read / on_drain, and on_close once if the upstream goes
 * away. After on_fail or on_close the session is freed (do not touch it again); after
 * skiff_session_close no op runs.
 */
struct skiff_session;

struct skiff_session_ops {
    /* The session is committed: the upstream's first message (or Google's close of a request
     * that is the client's) follows through on_read. key is the label the logs name it by. */
    void (*on_open)(void *door, struct skiff_session *s, const char *key);
    /* No session could be opened: code is the WebSocket close code that fits (1008: the
     * client's request, 1011: the upstream failed, 1013: every key rests, try later),
     * reason a sentence for the client saying what happened and how to fix it (no key
     * material), status the upstream's last HTTP status (0: none). */
    void (*on_fail)(void *door, int code, const char *reason, int status);
    void (*on_read)(void *door, const char *data, size_t len);
    void (*on_drain)(void *door);
    void (*on_close)(void *door, const char *why);
};

struct skiff_session_plan {
    /* The client's handshake: its allowlisted headers go upstream (relay/uprequest.h); read
     * only inside skiff_session_new. */
    const struct skiff_request *req;
    const char *id;      /* the request id, for logs */
    const char *version; /* "v1beta" or "v1alpha" */
    int constrained;     /* BidiGenerateContentConstrained (an ephemeral token's) */
    int pin_key;         /* 1 + the only key the session may use, or 0 */
    const char *token;   /* an ephemeral token to present instead of the pool key (constrained,
                          * pin_key set: the key that created it); copied */
    const struct skiff_session_ops *ops;
    void *door;
};

/* A session for the client's handshake (copied: req may go after this returns), not started:
 * no key is held and no op runs until skiff_session_start. NULL when out of memory. */
struct skiff_session *skiff_session_new(struct skiff_engine *e, const struct skiff_session_plan *p);

/* Starts choosing a key for model (setup.model without "models/", model_len bytes; NULL: the
 * pool chooses, and the model is "unknown") and opening the upstream. pin_key (1 + a key, or
 * 0) pins the session when the plan did not (a resumed session goes to the key whose session
 * issued its handle). Once only. */
void skiff_session_start(struct skiff_session *s, const char *model, size_t model_len, int pin_key);

/* Bytes to the upstream, as they came; returns the bytes still queued (pause the client's
 * side above a threshold, resume on on_drain). Before on_open (from skiff_session_start on)
 * the bytes are also kept, bounded by limits.max_body_bytes, and go again to each key's
 * session: the upstream's first message (setupComplete) commits the session, and only a
 * refusal before it (Google closes a bad key's or an exhausted key's session after the 101)
 * is retried. */
size_t skiff_session_write(struct skiff_session *s, const void *data, size_t len);
void skiff_session_pause(struct skiff_session *s);
void skiff_session_resume(struct skiff_session *s);

/* Ends the session from the door's side: the upstream's tunnel is flushed and closed, the
 * key released, the memory freed. No op follows. */
void skiff_session_close(struct skiff_session *s);

/* The model the session's key was chosen for (the setup's, or "unknown"). */
const char *skiff_session_model(const struct skiff_session *s);

#endif
