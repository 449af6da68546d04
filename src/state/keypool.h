/*
 * The key pool: the only place an upstream key lives, and what it knows about each key's
 * health per model. Gemini quotas are per key (project) *and* per model, per minute *and*
 * per day, so health is tracked per (key, model):
 *
 *   resting   until a time: a per-minute 429 (RetryInfo's delay), a per-day 429 (midnight
 *             Pacific), a bare 429 (a short default);
 *   retired   for one model (quotaValue "0": no quota for it at all), or for every model
 *             (invalid key, no permission, region or billing), with the reason recorded.
 *
 * Two models never share health: names are compared whole. Catalog models keep their
 * entry; other names (newer models, or whatever a client typed) live in a bounded table
 * that forgets the least recently used one (skiff_keypool_pin).
 *
 * Others name a key by index and label; only skiff_keypool_secret hands out the key, to be
 * put in the x-goog-api-key header of an upstream call and nowhere else.
 *
 * What it learns goes to a state backend (state/backend.h) and only there: the pool knows
 * no database, and merges what other instances report (skiff_keypool_merge). It knows no
 * dialect either: what a call's failure means for its key (a rest of how long, a
 * retirement) is decided by the engine and handed in as a plain verdict
 * (skiff_keypool_report), and the quota's calendar day comes from the opts.
 *
 * Shared by every worker thread: one mutex, held for table lookups only, never across I/O.
 * Times are Unix milliseconds, passed in so tests control the clock.
 */
#ifndef SKIFF_STATE_KEYPOOL_H
#define SKIFF_STATE_KEYPOOL_H

#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "state/backend.h"

struct skiff_keypool;

struct skiff_keypool_opts {
    /* Where state goes and comes from (copied); NULL: nowhere (memory only). */
    const struct skiff_state_backend *backend;
    /* The quota's calendar: the day number of now_ms, and its date "YYYY-MM-DD" (usage
     * counts restart with a new day). NULL: UTC days. */
    int64_t (*day)(int64_t now_ms);
    void (*date)(int64_t now_ms, char out[11]);
};

/*
 * A pool over cfg's keys; cfg must outlive it, and so must the backend's impl. Subscribes to
 * the backend when it can hear other instances (then their states are merged as they come).
 * NULL on OOM.
 */
struct skiff_keypool *skiff_keypool_open(const struct skiff_config *cfg,
                                         const struct skiff_keypool_opts *opts);
/* Unsubscribes from the backend, then frees the pool. NULL is fine. */
void skiff_keypool_free(struct skiff_keypool *p);

/*
 * Health is kept apart for every model name. Models for which known(ud, name, len) says 1
 * (asked when their slot is made, and now for slots already made) keep their slot for
 * good; any other name shares a bounded table whose least recently used entry is emptied
 * for a new one. known runs with the pool's lock held and must not call into the pool; ud
 * must outlive the pool. known NULL: no model is kept for good.
 */
typedef int skiff_keypool_known_fn(void *ud, const char *model, size_t len);
void skiff_keypool_pin(struct skiff_keypool *p, skiff_keypool_known_fn *known, void *ud);

/* Identifies cfg's key set (16 hex digits), so the store forgets retirements decided for
 * another set of keys ("until the config changes"). */
void skiff_keypool_fingerprint(const struct skiff_config *cfg, char out[17]);

/* Reads the persisted state back through the backend (call before the workers start):
 * states as skiff_keypool_merge takes them, and today's usage. */
void skiff_keypool_restore(struct skiff_keypool *p, int64_t now_ms);

/*
 * Takes in a state another instance (or an earlier run) recorded for (st->key_id,
 * st->model): the later rest wins, and the key is retired if either side says so; model
 * "*" is the key as a whole. A key not in this pool is ignored. Nothing is written back to
 * the backend (it came from there). Logged as key_health with "from": "backend" when it
 * changes what this pool knows.
 */
void skiff_keypool_merge(struct skiff_keypool *p, const struct skiff_key_state *st, int64_t now_ms);

size_t skiff_keypool_size(const struct skiff_keypool *p);

/*
 * Takes the best key for a call on model at now: neither retired nor resting for the model,
 * then fewest calls in flight, then least recently used. Returns its index (release it with
 * skiff_keypool_release), or -1 when none can serve; then *back_at_ms is when the first one
 * comes back (INT64_MAX: never, every key is retired for this model).
 */
int skiff_keypool_acquire(struct skiff_keypool *p, const char *model, int64_t now_ms,
                          int64_t *back_at_ms);

/* As skiff_keypool_acquire, but only key may serve (affinity: the key that owns a resource
 * the call names); -1 with *back_at_ms when it cannot now (INT64_MAX: retired, or no such
 * key). */
int skiff_keypool_acquire_only(struct skiff_keypool *p, int key, const char *model, int64_t now_ms,
                               int64_t *back_at_ms);

/* The index of the key labelled label, or -1. */
int skiff_keypool_find(const struct skiff_keypool *p, const char *label);

/* What a call's end means for its key, decided by the engine from the upstream's answer. */
enum skiff_key_outcome {
    SKIFF_KEY_SERVED,       /* the call was served: counts as today's use of the model */
    SKIFF_KEY_NEUTRAL,      /* says nothing about the key (the client's fault, a blip) */
    SKIFF_KEY_REST,         /* the key rests for the model for rest_ms */
    SKIFF_KEY_RETIRE_MODEL, /* the key has no quota for the model at all */
    SKIFF_KEY_RETIRE_KEY,   /* the key is unusable for every model (invalid, denied...) */
};

struct skiff_key_verdict {
    enum skiff_key_outcome outcome;
    int64_t rest_ms;    /* SKIFF_KEY_REST: how long, > 0 */
    int throttled;      /* a rate limit: counts toward the pool-wide backoff (STORM_*) */
    const char *reason; /* for the log and the backend; NULL: none */
};

/*
 * Gives back a key that skiff_keypool_acquire handed out, with what its call meant for it
 * (v, borrowed): tokens is the call's totalTokenCount (0 unknown) for a served call. Rests
 * and retirements are logged (key_health) and put to the backend; a served call's usage is
 * added there.
 */
void skiff_keypool_report(struct skiff_keypool *p, int key, const char *model,
                          const struct skiff_key_verdict *v, int64_t tokens, int64_t now_ms);

/*
 * Coalescing the probes that confirm a retirement (relay/probe.h): one runs per key at a
 * time, across every worker. skiff_keypool_probe_claim says what the caller is to do:
 * RUN the probe (then report its outcome with skiff_keypool_probe_end, always, also when
 * it is cancelled), WAIT for the one running (poll skiff_keypool_probe_outcome with *gen),
 * or nothing, because the key is already RETIRED for every model. *gen is the number of
 * probes of the key ended so far.
 */
enum skiff_keypool_probe {
    SKIFF_KEYPOOL_PROBE_RUN,
    SKIFF_KEYPOOL_PROBE_WAIT,
    SKIFF_KEYPOOL_PROBE_RETIRED,
};
enum skiff_keypool_probe skiff_keypool_probe_claim(struct skiff_keypool *p, int key, uint64_t *gen);
/* Ends the running probe of key with outcome (the prober's code, kept for the waiters). */
void skiff_keypool_probe_end(struct skiff_keypool *p, int key, int outcome);
/* 1 with *outcome once a probe of key ended after gen (the value claim gave), else 0. */
int skiff_keypool_probe_outcome(struct skiff_keypool *p, int key, uint64_t gen, int *outcome);

/* How many keys are not retired for every model (what /healthz reports). */
size_t skiff_keypool_usable(struct skiff_keypool *p);

/* Brings a retired key back for every model (an operator's decision). 0 or -1 if unknown. */
int skiff_keypool_enable(struct skiff_keypool *p, const char *label);

const char *skiff_keypool_label(const struct skiff_keypool *p, int key);
const char *skiff_keypool_secret(const struct skiff_keypool *p, int key);

/* The status of a key for a model at now, for logs and tests: "ok", "resting", "retired". */
const char *skiff_keypool_status(struct skiff_keypool *p, int key, const char *model,
                                 int64_t now_ms);

/* Whether any pool key occurs in data[0..len): an upstream error body that echoes a key
 * (DebugInfo "Invalid API key: ...") must be redacted before a client sees it. */
int skiff_keypool_leaks(const struct skiff_keypool *p, const char *data, size_t len);

/* Overwrites each pool key in data[0..len) with '*'s. */
void skiff_keypool_redact(const struct skiff_keypool *p, char *data, size_t len);

/* How long a key rests after a 429 that says nothing of its quota. */
#define SKIFF_KEYPOOL_BARE_429_REST_MS 5000
/* The pool rests whole when this many distinct keys get a 429 within the window below:
 * the API also throttles by client IP, and burning every key then helps no one. */
#define SKIFF_KEYPOOL_STORM_KEYS 3
#define SKIFF_KEYPOOL_STORM_WINDOW_MS 1000
#define SKIFF_KEYPOOL_STORM_REST_MS 2000

#endif
