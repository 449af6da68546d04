/*
 * The store's insides, shared by its files and by nothing else (internal to src/state/;
 * everyone else includes state/store.h). docs/internals/store.md is the long form.
 *
 *   store.c         open (connection settings, schema, fingerprint rule, statements, the
 *                   reading connection, the store thread's start), flush, stats, close
 *   store_table.c   the pending tables: hash tables of rows by key, merged by kind
 *   store_writer.c  the producers (put_state, add_usage) and the store thread: one
 *                   transaction per attempt, kept and retried when the database refuses it
 *   store_sig.c     the signature table: put_sig, get_sig, its rows in a write, pruning
 *   store_affinity.c the affinity table (owners of resources): put_owner, forget_owner,
 *                   get_owner, its rows in a write, pruning of expired owners
 *   store_read.c    reading back: load at start, and the watcher of other instances
 *
 * Threads and locks (docs/internals/store.md says the same at more length):
 *
 *   q_lock   guards the pending tables and the counters beside them. Producers on event
 *            loops hold it for a hash lookup and a struct copy, never across I/O, so
 *            put_state and add_usage never wait for the disk.
 *   db_lock  guards the SQLite connection. The store thread holds it while it writes a
 *            batch; skiff_store_load holds it while it reads. Since every use of the
 *            connection is serialised here, the connection is opened SQLITE_OPEN_NOMUTEX.
 *   r_lock   guards the reading connection rdb (skiff_store_get_sig, skiff_store_get_owner,
 *            the watcher).
 *   w_lock   guards the watcher's fields (w_stop, watching, w_fn).
 *
 * q_lock and db_lock are never held together, so there is no lock order to get wrong;
 * get_sig and get_owner take q_lock, let go, then take r_lock.
 *
 * What is pending is not a queue but tables: the newest state per (key, model), which a
 * later put replaces, the usage added per (key, model, day) since the last write, which a
 * later add increases, the newest signature per id and the newest owner per name. Neither can lose
 * a row to a burst of the other, both are bounded by the number of distinct rows rather than by the
 * request rate, and a write that fails puts its rows back (unless a newer state arrived meanwhile)
 * to be tried again.
 */
#ifndef SKIFF_STATE_STORE_INTERNAL_H
#define SKIFF_STATE_STORE_INTERNAL_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <sqlite3.h>

#include "state/store.h"

#define SCHEMA_VERSION 1
#define TABLE_MAX 65536     /* distinct pending rows per table; past this a new row is dropped */
#define USAGE_FLUSH_MS 2000 /* usage is written at most this long after it was counted */
#define RETRY_MIN_MS 1000   /* after a failed write; doubles up to RETRY_MAX_MS */
#define RETRY_MAX_MS 30000
#define BUSY_TIMEOUT_MS 1000       /* a write waits this long for another writer, then is retried */
#define CLOSE_BUSY_TIMEOUT_MS 5000 /* the last write, at close, waits longer */
#define READ_BUSY_TIMEOUT_MS 100   /* a signature lookup (on an event loop) waits at most this */

enum row_kind { ROW_STATE, ROW_USAGE, ROW_SIG, ROW_AFF };

/* A pending thought signature: both strings malloc'd, owned by the row's table. */
struct sig_row {
    char *id;
    char *sig;
    int64_t updated_ms;
};

/* A pending owner of a resource (state/affinity.h): strings malloc'd, owned by the row's
 * table; label NULL means the name is to be forgotten. */
struct aff_row {
    char *name;
    char *label;
    char *value; /* NULL: none */
    int64_t expire_ms;
};

/* A pending row: the state to write, the usage to add, a signature or an owner to keep. */
struct row {
    uint64_t hash;
    union {
        struct skiff_key_state st;
        struct skiff_key_usage u;
        struct sig_row sg;
        struct aff_row af;
    };
};

/* Rows by key, dense; slots hold index + 1 (0: empty), open addressing, a power of two. */
struct table {
    enum row_kind kind;
    struct row *rows;
    size_t n, cap;
    uint32_t *slots;
    size_t nslots;
};

struct skiff_store {
    char *path;
    sqlite3 *db;
    sqlite3_stmt *put_state;
    sqlite3_stmt *add_usage;
    sqlite3_stmt *begin;
    sqlite3_stmt *commit;
    sqlite3_stmt *rollback;
    sqlite3_stmt *put_sig;
    sqlite3_stmt *prune_sigs;
    sqlite3_stmt *put_aff;
    sqlite3_stmt *del_aff;
    sqlite3_stmt *prune_aff;

    pthread_mutex_t db_lock;

    /* A second connection for skiff_store_get_sig: in WAL mode it reads while the store
     * thread writes, so a lookup never waits for a write. Guarded by r_lock. */
    sqlite3 *rdb;
    sqlite3_stmt *get_sig;
    sqlite3_stmt *get_aff;
    pthread_mutex_t r_lock;

    /* The watcher (skiff_store_watch): its own thread, reading through rdb. */
    pthread_mutex_t w_lock;
    pthread_cond_t w_cv;
    int w_stop;
    int watching;
    int w_interval_ms;
    skiff_state_cb *w_fn;
    void *w_ud;
    pthread_t w_thread;

    pthread_mutex_t q_lock;
    pthread_cond_t wake;    /* work arrived, a flush was asked for, or stopping was set */
    pthread_cond_t done_cv; /* flush_done advanced */
    struct table states;    /* pending: producers write here */
    struct table usage;
    struct table sigs;
    struct table affs;
    size_t sig_max;         /* rows sig_cache keeps (skiff_store_sig_limit); 0: no pruning */
    int64_t usage_due_ms;   /* monotonic: when pending usage is written; 0 when none is */
    int64_t retry_at_ms;    /* monotonic: no write before this after a failure */
    uint64_t flush_req;     /* flushes asked for */
    uint64_t flush_done;    /* flushes answered: everything pending before them was tried */
    uint64_t dropped_burst; /* rows refused (table full) since the store thread reported them */
    int stopping;
    struct skiff_store_stats stats;

    /* Owned by the store thread: the rows being written. */
    struct table w_states;
    struct table w_usage;
    struct table w_sigs;
    struct table w_affs;
    int64_t aff_pruned_ms;   /* wall clock of the last prune of expired owners; 0: none yet */
    size_t sigs_since_prune; /* signature rows written since sig_cache was last pruned */
    int pruned;              /* sig_cache was pruned once since open */
    size_t w_sig_max;        /* sig_max, read when the rows were taken */
    int64_t backoff_ms;
    uint64_t run_failures; /* attempts with a failure since writes last worked */

    pthread_t thread;
};

/* ---- pending tables (store_table.c); callers hold the lock that guards the table ---- */

/* The hash of r's key (its kind's fields); set r->hash to it before a lookup or a merge. */
uint64_t store_row_hash(enum row_kind kind, const struct row *r);

/*
 * The row of t with r's key, or NULL. With add set, a missing row is added as a copy of r
 * and *added set; NULL then means the table is full (TABLE_MAX rows) or out of memory.
 */
struct row *store_table_get(struct table *t, const struct row *r, int add, int *added);

/* Puts a state in t: a newer one replaces the row, unless keep_newer (then the row in t
 * wins). Returns 0, or -1 when t is full. */
int store_merge_state(struct table *t, const struct row *r, int keep_newer);

/* Adds usage into t. Returns 0, or -1 when t is full. */
int store_merge_usage(struct table *t, const struct row *r);

/*
 * Puts a signature row in t, which takes its strings: a newer one replaces the row (the
 * older strings are freed); with keep_newer an existing row wins and r's strings are freed.
 * Returns 0, or -1 when t is full (r's strings freed too).
 */
int store_merge_sig(struct table *t, struct row *r, int keep_newer);

/* Like store_merge_sig, for an owner row. */
int store_merge_aff(struct table *t, struct row *r, int keep_newer);

/* Frees an owner row's strings. */
void store_aff_row_free(struct aff_row *r);

/* Frees the strings of a signature or owner table's rows (they stay in the table: clear it
 * next). */
void store_table_free_sigs(struct table *t);
/* Empties t, keeping its memory for the next rows. */
void store_table_clear(struct table *t);
/* Frees t's rows (and their strings) and memory; t is empty and reusable. */
void store_table_release(struct table *t);

/* ---- the store thread (store_writer.c) ---- */

/* What one write attempt did, for the log and the counters. */
struct attempt {
    int failed;       /* nothing was committed; every row is to be retried */
    const char *step; /* where it failed */
    char error[256];  /* SQLite's message for the first failure */
    size_t bad;       /* rows SQLite refused for good (counted lost) */
    size_t rows;
};

/* The store thread's body; skiff_store_open starts it, skiff_store_close joins it. */
void *store_main(void *arg);

/* Steps a statement that returns no rows and resets it for its next use; the SQLite code
 * (SQLITE_OK for a row or done). */
int store_run(sqlite3_stmt *stmt);

/* Whether a failure is about the database as a whole (worth retrying), not about one row. */
int store_retryable(int rc);

/* Records SQLite's message for the attempt's first failure, at step. */
void store_attempt_error(struct skiff_store *s, struct attempt *a, const char *step);

/* Logs the first row a full table refused (q_lock not held); the store thread reports the
 * count later. */
void store_log_refused(struct skiff_store *s);

/* CLOCK_MONOTONIC in ms, the clock of every timer here; and a deadline on it for a
 * condition variable made with that clock. */
int64_t store_mono_ms(void);
void store_deadline_at(struct timespec *ts, int64_t mono);

/* CLOCK_REALTIME in ms, the clock of the rows' expiries and updated_ms (store_read.c). */
int64_t store_wall_ms(void);

/* ---- signatures in a write (store_sig.c); store thread, db_lock held ---- */

/* Writes one signature row in the open transaction; the SQLite code. */
int store_write_sig(struct skiff_store *s, const struct sig_row *r);

/* Deletes the oldest sig_cache rows past w_sig_max, every eighth of the bound written (and
 * once after open); a failure of the database fails a. */
void store_prune_sigs(struct skiff_store *s, struct attempt *a);

/* ---- owners in a write (store_affinity.c); store thread, db_lock held ---- */

/* Writes (or, with label NULL, deletes) one owner row in the open transaction; the SQLite
 * code. */
int store_write_aff(struct skiff_store *s, const struct aff_row *r);

/* Deletes the owners whose expiry passed, at most once a minute (and at the first write of
 * owners after open); a failure waits for the next one. */
void store_prune_affs(struct skiff_store *s);

#endif
