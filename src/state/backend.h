/*
 * Where the key pool keeps what it learns, behind one interface: the pool (state/keypool.h)
 * talks only to a struct skiff_state_backend, so SQLite today (state/sqlite.h) and Redis
 * later are interchangeable without a change to the pool.
 *
 * What travels is two kinds of rows: the state of a (key, model), of which the newest is
 * the only one that matters, and today's usage of a (key, model), which adds up. Keys are
 * named by key_id, a fingerprint (skiff_state_key_id), never by the key itself.
 *
 * Contract of every backend:
 *   - put_state and add_usage never block on I/O: they are called on event loops, with
 *     the key pool's lock held. They copy what they are given.
 *   - load runs on the caller's thread at start, before the workers run; its callbacks
 *     run before it returns and must not call back into the backend.
 *   - subscribe (NULL when the backend has no way to hear other instances) makes the
 *     backend call on_state, from a thread of its own, for each state another instance
 *     put, until unsubscribe returns. on_state may take the pool's lock: the backend
 *     holds none of its own locks that put_state takes while it calls on_state.
 *   - Failures are the backend's to count and log: the pool in memory is the truth while
 *     skiff runs; the backend is its memory across restarts and its link to other
 *     instances.
 */
#ifndef SKIFF_STATE_BACKEND_H
#define SKIFF_STATE_BACKEND_H

#include <stddef.h>
#include <stdint.h>

/* One (key, model) state row. model "*" stands for every model (a key-wide retirement). */
struct skiff_key_state {
    char key_id[17]; /* 16 hex digits */
    char label[64];
    char model[129];
    int64_t rest_until_ms; /* Unix ms; 0 when not resting */
    int retired;           /* 1: retired until an operator re-enables it */
    char reason[160];
    int64_t updated_ms;
};

/* Today's use of one (key, model); day is the quota's calendar date, "2026-11-23". */
struct skiff_key_usage {
    char key_id[17];
    char model[129];
    char day[11];
    int64_t requests;
    int64_t tokens;
};

typedef void skiff_state_cb(const struct skiff_key_state *st, void *ud);
typedef void skiff_usage_cb(const struct skiff_key_usage *u, void *ud);

struct skiff_state_backend {
    void *impl; /* the backend's own handle, passed to every operation */
    /* Sets the state of (st->key_id, st->model) to *st. */
    void (*put_state)(void *impl, const struct skiff_key_state *st);
    /* Adds u's requests and tokens to (key, model, day). */
    void (*add_usage)(void *impl, const struct skiff_key_usage *u);
    /* Calls fn for every state whose rest has not ended at now_ms or that is retired, and
     * ufn for every usage row of day. 0 or a negative skiff_err. */
    int (*load)(void *impl, int64_t now_ms, const char *day, skiff_state_cb *fn,
                skiff_usage_cb *ufn, void *ud);
    /* Starts calling on_state(st, ud) for the states other instances put. 0 or a negative
     * skiff_err. NULL: the backend hears no one. */
    int (*subscribe)(void *impl, skiff_state_cb *on_state, void *ud);
    /* Stops those calls; none is running or will run when it returns. */
    void (*unsubscribe)(void *impl);
};

/* The fingerprint of a key: 16 hex digits of FNV-1a 64 (fixed across builds, never
 * reversible to the key). */
void skiff_state_key_id(const char *key, char out[17]);

#endif
