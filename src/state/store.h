/*
 * Persistence of the key pool's state in SQLite (storage.sqlite), so a restart does not
 * forget that a key is spent for today or retired. Writes are coalesced in memory (the
 * newest state per key and model, usage summed per key, model and day) and written by one
 * store thread: callers on an event loop never wait for the disk, and a write that fails
 * (a full disk, a locked or read-only file) is kept and retried. Key state is read once,
 * at start, before the workers run. It also keeps the thought signatures of the signature
 * cache (state/sigcache.h), read one at a time on a miss.
 *
 * Keys are identified by key_id, a fingerprint of the key (never the key itself), plus
 * their label for humans.
 */
#ifndef SKIFF_STATE_STORE_H
#define SKIFF_STATE_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "state/backend.h"

struct skiff_store;

/*
 * Opens (creating if needed) the database at path and starts the store thread.
 * config_fingerprint identifies the configured key set: when it differs from the one the
 * database was last used with, key-wide retirements are forgotten ("until the config
 * changes"). Returns NULL with a message in err (naming the path) on failure.
 */
struct skiff_store *skiff_store_open(const char *path, const char *config_fingerprint, char *err,
                                     size_t errlen);

/* Writes what is pending (one last attempt), stops the thread, closes the database; logs
 * what could not be written. NULL is fine. */
void skiff_store_close(struct skiff_store *s);

/*
 * Sets the state of (key, model) to *st (copied): it replaces any state of that row still
 * waiting, and is written at once. Never blocks on the disk.
 */
void skiff_store_put_state(struct skiff_store *s, const struct skiff_key_state *st);

/*
 * Adds u's requests and tokens to (key, model, day). Counts are summed in memory and
 * written within a few seconds (or at flush and close). Never blocks on the disk.
 */
void skiff_store_add_usage(struct skiff_store *s, const struct skiff_key_usage *u);

/* What the store has done since open (for logs, tests and metrics). */
struct skiff_store_stats {
    uint64_t rows_written;
    uint64_t write_failures; /* attempts that failed as a whole; their rows were kept */
    uint64_t rows_lost;      /* refused by SQLite for good, or by a full table */
    size_t pending_states;   /* waiting for the next write */
    size_t pending_usage;
    size_t pending_sigs;
    size_t pending_affs; /* owners of resources (and forgets) waiting */
    int failing;         /* the last attempt failed */
};
void skiff_store_stats(struct skiff_store *s, struct skiff_store_stats *out);

/*
 * Reads every state row whose rest has not ended at now_ms or that is retired, calling
 * fn for each; and every usage row of `day`, calling ufn. Call before the workers start.
 * Returns 0 or a negative skiff_err.
 */
int skiff_store_load(struct skiff_store *s, int64_t now_ms, const char *day,
                     void (*fn)(const struct skiff_key_state *st, void *ud),
                     void (*ufn)(const struct skiff_key_usage *u, void *ud), void *ud);

/*
 * Writes everything pending now, whatever the timers say, and waits until that attempt is
 * over: on return what was put before the call is on disk, unless the database refused it
 * (then it is still pending, and retried). Tests, shutdown.
 */
void skiff_store_flush(struct skiff_store *s);

/*
 * Watches the file for states other instances (or anything else) commit: every interval_ms,
 * when the file changed since the last look, calls fn(st, ud) on a thread of the store's
 * for every state row whose rest has not ended or that is retired, this store's own rows
 * included (the receiver merges, so a repeat is nothing). No lock of the store is held
 * while fn runs; fn must not call skiff_store_unwatch. One watch per store. Returns 0 or a
 * negative skiff_err.
 */
int skiff_store_watch(struct skiff_store *s, int interval_ms, skiff_state_cb *fn, void *ud);

/* Stops the watch and waits for a call of fn in progress. Nothing when none. close calls
 * it. */
void skiff_store_unwatch(struct skiff_store *s);

/*
 * Thought signatures (state/sigcache.h is their user): id → signature, in the sig_cache
 * table, so a restart or another skiff sharing the file finds them.
 *
 * skiff_store_put_sig copies id and sig into the pending signatures (a later put of the
 * same id replaces it) and the store thread writes them at once, as it does states; it
 * never blocks on the disk. now_ms (Unix ms) orders the rows for pruning. Returns 0,
 * SKIFF_EINVAL (a NULL argument), SKIFF_ENOMEM, or SKIFF_ETOOBIG when 65,536 signatures
 * are already waiting for a database that refuses writes (the new one is dropped, counted in
 * rows_lost).
 */
int skiff_store_put_sig(struct skiff_store *s, const char *id, const char *sig, int64_t now_ms);

/*
 * The signature stored for id: malloc'd (the caller frees it), or NULL when there is none
 * (or on OOM). Looks at the pending signatures first, then reads sig_cache through a
 * connection of its own, so it does not wait for a write in progress (at most 100 ms for a
 * lock). May be called from any thread, at any time between open and close.
 */
char *skiff_store_get_sig(struct skiff_store *s, const char *id);

/* How many signatures sig_cache keeps: past max_rows (plus an eighth, between prunes) the
 * oldest are deleted by the store thread. 0 (the default) keeps every one. */
void skiff_store_sig_limit(struct skiff_store *s, size_t max_rows);

/*
 * Owners of stored resources (state/affinity.h is their user): name -> (key label, value,
 * expiry), in the affinity table, so a restart or another skiff sharing the file finds them.
 * Expired rows are deleted by the store thread (at most once a minute, when it writes
 * owners) and never returned.
 *
 * skiff_store_put_owner copies its arguments into the pending owners (value may be NULL;
 * a later put or forget of the same name replaces it) and the store thread writes them at
 * once; skiff_store_forget_owner queues the deletion of name's row the same way. Neither
 * blocks on the disk. They return 0, SKIFF_EINVAL, SKIFF_ENOMEM, or SKIFF_ETOOBIG when
 * 65,536 are already waiting for a database that refuses writes (counted in rows_lost).
 */
int skiff_store_put_owner(struct skiff_store *s, const char *name, const char *label,
                          const char *value, int64_t expire_ms);
int skiff_store_forget_owner(struct skiff_store *s, const char *name);

/*
 * The owner stored for name at now_ms (wall clock): 0 with label and value ("" when none;
 * value may be NULL) copied NUL-terminated and *expire_ms set (when not NULL); -1 when
 * there is none, it expired, a forget of it is pending, or a string does not fit. Looks
 * at the pending rows first, then reads through the reading connection (at most 100 ms
 * for a lock). Any thread, between open and close.
 */
int skiff_store_get_owner(struct skiff_store *s, const char *name, int64_t now_ms, char *label,
                          size_t label_cap, char *value, size_t value_cap, int64_t *expire_ms);

#endif
