#include "store/store.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "err.h"
#include "hash.h"
#include "obs/log.h"

/*
 * Threads and locks (docs/internals/store.md says the same at more length):
 *
 *   q_lock   guards the queue (ring, counters, stopping). Producers on event loops hold it
 *            for a struct copy, never across I/O, so put_state and add_usage never wait for
 *            the disk.
 *   db_lock  guards the SQLite connection. The store thread holds it while it writes a
 *            batch; skiff_store_load holds it while it reads. Since every use of the
 *            connection is serialised here, the connection is opened SQLITE_OPEN_NOMUTEX.
 *
 * The two locks are never held together, so there is no lock order to get wrong.
 */

#define SCHEMA_VERSION 1
#define QUEUE_CAP 10000 /* items; past this the oldest are dropped, callers never block */
#define BATCH_MAX 1024  /* items written in one transaction */
#define BUSY_TIMEOUT_MS 5000

enum item_kind { ITEM_STATE, ITEM_USAGE };

struct item {
    enum item_kind kind;
    union {
        struct skiff_key_state st;
        struct skiff_key_usage u;
    };
};

struct skiff_store {
    char *path;
    sqlite3 *db;
    sqlite3_stmt *put_state;
    sqlite3_stmt *add_usage;
    sqlite3_stmt *begin;
    sqlite3_stmt *commit;
    sqlite3_stmt *rollback;

    pthread_mutex_t db_lock;

    pthread_mutex_t q_lock;
    pthread_cond_t wake;    /* work arrived or stopping was set */
    pthread_cond_t done_cv; /* done advanced */
    struct item *ring;
    size_t head;            /* index of the oldest queued item */
    size_t count;           /* items in the ring */
    uint64_t queued;        /* items ever queued, dropped ones included: the last one's sequence */
    uint64_t done;          /* every item with a sequence up to this one is written or dropped */
    uint64_t dropped_burst; /* drops since the store thread last reported them */
    uint64_t dropped_total;
    int stopping;

    /* Owned by the store thread. */
    struct item *batch;
    int failing; /* the last batch failed: later failures are not logged until one succeeds */
    uint64_t failed_batches;

    pthread_t thread;
};

static const char schema_sql[] = "CREATE TABLE IF NOT EXISTS key_state ("
                                 " key_id TEXT NOT NULL,"
                                 " model TEXT NOT NULL,"
                                 " label TEXT NOT NULL DEFAULT '',"
                                 " rest_until_ms INTEGER NOT NULL DEFAULT 0,"
                                 " retired INTEGER NOT NULL DEFAULT 0,"
                                 " reason TEXT NOT NULL DEFAULT '',"
                                 " updated_ms INTEGER NOT NULL DEFAULT 0,"
                                 " PRIMARY KEY (key_id, model));"
                                 "CREATE TABLE IF NOT EXISTS key_usage ("
                                 " key_id TEXT NOT NULL,"
                                 " model TEXT NOT NULL,"
                                 " day TEXT NOT NULL,"
                                 " requests INTEGER NOT NULL DEFAULT 0,"
                                 " tokens INTEGER NOT NULL DEFAULT 0,"
                                 " PRIMARY KEY (key_id, model, day));"
                                 "CREATE TABLE IF NOT EXISTS meta ("
                                 " name TEXT PRIMARY KEY,"
                                 " value TEXT NOT NULL);";

static const char put_state_sql[] =
    "INSERT INTO key_state (key_id, model, label, rest_until_ms, retired, reason, updated_ms)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
    " ON CONFLICT (key_id, model) DO UPDATE SET"
    " label = excluded.label, rest_until_ms = excluded.rest_until_ms,"
    " retired = excluded.retired, reason = excluded.reason, updated_ms = excluded.updated_ms";

static const char add_usage_sql[] =
    "INSERT INTO key_usage (key_id, model, day, requests, tokens) VALUES (?1, ?2, ?3, ?4, ?5)"
    " ON CONFLICT (key_id, model, day) DO UPDATE SET"
    " requests = requests + excluded.requests, tokens = tokens + excluded.tokens";

/* Formats "storage.sqlite <path>: <what>" into err, the shape every open error takes. */
static void
open_error(char *err, size_t errlen, const char *path, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return;
    int n = snprintf(err, errlen, "storage.sqlite %s: ", path);
    if (n < 0 || (size_t)n >= errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
    va_end(ap);
}

/*
 * Binds a fixed-size string field of a row. The bound is the field's size, so a caller that
 * filled the array without a terminating NUL gets a cut string, not a read past the struct.
 */
static int
bind_field(sqlite3_stmt *stmt, int idx, const char *field, size_t size)
{
    return sqlite3_bind_text(stmt, idx, field, (int)strnlen(field, size), SQLITE_TRANSIENT);
}

/* Copies a column into a fixed-size field, cutting what does not fit. */
static void
copy_column(char *dst, size_t size, sqlite3_stmt *stmt, int col)
{
    const unsigned char *v = sqlite3_column_text(stmt, col);
    snprintf(dst, size, "%s", v ? (const char *)v : "");
}

/* Runs SQL whose rows, if any, are not needed; returns the SQLite code. */
static int
exec_sql(sqlite3 *db, const char *sql)
{
    return sqlite3_exec(db, sql, NULL, NULL, NULL);
}

static int
read_user_version(sqlite3 *db, int *version)
{
    sqlite3_stmt *stmt;
    int rc = sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &stmt, NULL);
    if (rc != SQLITE_OK)
        return rc;
    rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) {
        *version = sqlite3_column_int(stmt, 0);
        rc = SQLITE_OK;
    }
    sqlite3_finalize(stmt);
    return rc;
}

/*
 * Compares the stored config fingerprint with fp. When they differ (or none is stored yet
 * over existing rows), retirements were decided for another key set and are forgotten;
 * rests and usage counts belong to the key itself (key_id is the key's hash) and are kept.
 * Runs inside the open transaction.
 */
static int
check_fingerprint(sqlite3 *db, const char *fp)
{
    sqlite3_stmt *stmt;
    int same = 0;
    int rc = sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE name = 'config_fingerprint'", -1,
                                &stmt, NULL);
    if (rc != SQLITE_OK)
        return rc;
    rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) {
        const unsigned char *v = sqlite3_column_text(stmt, 0);
        same = v && strcmp((const char *)v, fp) == 0;
        rc = SQLITE_OK;
    } else if (rc == SQLITE_DONE) {
        rc = SQLITE_OK;
    }
    sqlite3_finalize(stmt);
    if (rc != SQLITE_OK || same)
        return rc;

    rc = exec_sql(db, "DELETE FROM key_state WHERE retired != 0");
    if (rc != SQLITE_OK)
        return rc;
    rc = sqlite3_prepare_v2(db,
                            "INSERT INTO meta (name, value) VALUES ('config_fingerprint', ?1)"
                            " ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                            -1, &stmt, NULL);
    if (rc != SQLITE_OK)
        return rc;
    sqlite3_bind_text(stmt, 1, fp, -1, SQLITE_STATIC);
    rc = sqlite3_step(stmt);
    sqlite3_finalize(stmt);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/*
 * Brings the schema to SCHEMA_VERSION and applies the fingerprint rule, in one transaction
 * so a crash leaves the old state whole. Rests that ended are left alone: load filters them
 * by the caller's clock, and the upsert keeps key_state at one row per (key, model).
 * On failure, err says what went wrong (the caller closes the connection).
 */
static int
prepare_schema(sqlite3 *db, const char *path, const char *fp, char *err, size_t errlen)
{
    int version = 0;
    int rc = read_user_version(db, &version);
    if (rc != SQLITE_OK)
        goto out_sqlite_error;
    if (version > SCHEMA_VERSION) {
        open_error(err, errlen, path, "schema version %d is newer than this skiff understands (%d)",
                   version, SCHEMA_VERSION);
        return SKIFF_EINVAL;
    }
    rc = exec_sql(db, "BEGIN IMMEDIATE");
    if (rc != SQLITE_OK)
        goto out_sqlite_error;
    rc = exec_sql(db, schema_sql);
    if (rc == SQLITE_OK && version < SCHEMA_VERSION) {
        char sql[64];
        snprintf(sql, sizeof sql, "PRAGMA user_version = %d", SCHEMA_VERSION);
        rc = exec_sql(db, sql);
    }
    if (rc == SQLITE_OK)
        rc = check_fingerprint(db, fp);
    if (rc != SQLITE_OK)
        goto out_rollback;
    rc = exec_sql(db, "COMMIT");
    if (rc != SQLITE_OK)
        goto out_rollback;
    return 0;

out_rollback:
    /* The message is taken before the rollback, which would replace it. */
    open_error(err, errlen, path, "%s", sqlite3_errmsg(db));
    exec_sql(db, "ROLLBACK");
    return SKIFF_EIO;
out_sqlite_error:
    open_error(err, errlen, path, "%s", sqlite3_errmsg(db));
    return SKIFF_EIO;
}

static void
finalize_statements(struct skiff_store *s)
{
    sqlite3_finalize(s->put_state);
    sqlite3_finalize(s->add_usage);
    sqlite3_finalize(s->begin);
    sqlite3_finalize(s->commit);
    sqlite3_finalize(s->rollback);
    s->put_state = s->add_usage = s->begin = s->commit = s->rollback = NULL;
}

static int
prepare_statements(struct skiff_store *s)
{
    int rc = sqlite3_prepare_v2(s->db, put_state_sql, -1, &s->put_state, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(s->db, add_usage_sql, -1, &s->add_usage, NULL);
    /* IMMEDIATE takes the write lock up front, so a busy database waits at BEGIN. */
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(s->db, "BEGIN IMMEDIATE", -1, &s->begin, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(s->db, "COMMIT", -1, &s->commit, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(s->db, "ROLLBACK", -1, &s->rollback, NULL);
    return rc;
}

/* Steps a statement that returns no rows and resets it for its next use. */
static int
run(sqlite3_stmt *stmt)
{
    int rc = sqlite3_step(stmt);
    sqlite3_reset(stmt);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? SQLITE_OK : rc;
}

static int
write_item(struct skiff_store *s, const struct item *it)
{
    sqlite3_stmt *stmt;
    if (it->kind == ITEM_STATE) {
        const struct skiff_key_state *st = &it->st;
        stmt = s->put_state;
        bind_field(stmt, 1, st->key_id, sizeof st->key_id);
        bind_field(stmt, 2, st->model, sizeof st->model);
        bind_field(stmt, 3, st->label, sizeof st->label);
        sqlite3_bind_int64(stmt, 4, st->rest_until_ms);
        sqlite3_bind_int(stmt, 5, st->retired != 0);
        bind_field(stmt, 6, st->reason, sizeof st->reason);
        sqlite3_bind_int64(stmt, 7, st->updated_ms);
    } else {
        const struct skiff_key_usage *u = &it->u;
        stmt = s->add_usage;
        bind_field(stmt, 1, u->key_id, sizeof u->key_id);
        bind_field(stmt, 2, u->model, sizeof u->model);
        bind_field(stmt, 3, u->day, sizeof u->day);
        sqlite3_bind_int64(stmt, 4, u->requests);
        sqlite3_bind_int64(stmt, 5, u->tokens);
    }
    return run(stmt);
}

/*
 * Logs a failed batch, but only the first of a run of failures: a full disk would otherwise
 * log on every wake-up. The log names the path and SQLite's message, never row contents.
 */
static void
log_write_failure(struct skiff_store *s, const char *step, const char *error, size_t lost)
{
    s->failed_batches++;
    if (s->failing)
        return;
    s->failing = 1;
    struct skiff_log l;
    skiff_log_begin(&l, SKIFF_LOG_ERROR, "store_write_failed");
    skiff_log_str(&l, "path", s->path);
    skiff_log_str(&l, "step", step);
    skiff_log_str(&l, "error", error);
    skiff_log_int(&l, "lost", (long long)lost);
    skiff_log_end(&l);
}

/*
 * Writes n items in one transaction. A row that fails is skipped (and counted) so one bad
 * row does not cost the others; a failed BEGIN or COMMIT loses the batch. Either way the
 * store goes on: the key pool in memory is the truth, the database only its memory across
 * restarts. Called on the store thread with db_lock held.
 */
static void
write_batch(struct skiff_store *s, const struct item *items, size_t n)
{
    char first_error[256] = "";
    size_t bad = 0;
    if (run(s->begin) != SQLITE_OK) {
        log_write_failure(s, "begin", sqlite3_errmsg(s->db), n);
        return;
    }
    for (size_t i = 0; i < n; i++)
        if (write_item(s, &items[i]) != SQLITE_OK) {
            /* Kept now: the COMMIT below replaces the connection's message. */
            if (bad++ == 0)
                snprintf(first_error, sizeof first_error, "%s", sqlite3_errmsg(s->db));
        }
    if (run(s->commit) != SQLITE_OK) {
        log_write_failure(s, "commit", sqlite3_errmsg(s->db), n);
        /* A failed COMMIT may leave the transaction open; close it so the next BEGIN works. */
        if (!sqlite3_get_autocommit(s->db))
            run(s->rollback);
        return;
    }
    if (bad) {
        log_write_failure(s, "write", first_error, bad);
        return;
    }
    if (s->failing) {
        struct skiff_log l;
        skiff_log_begin(&l, SKIFF_LOG_INFO, "store_write_recovered");
        skiff_log_str(&l, "path", s->path);
        skiff_log_int(&l, "failed_batches", (long long)s->failed_batches);
        skiff_log_end(&l);
        s->failing = 0;
        s->failed_batches = 0;
    }
}

/*
 * The store thread: waits for work, moves up to BATCH_MAX items out of the ring (so
 * producers are free again at once), writes them in one transaction, then tells flushers
 * how far it got. It leaves only when stopping is set and the queue is empty, so close
 * writes everything queued before it.
 */
static void *
store_main(void *arg)
{
    struct skiff_store *s = arg;
    pthread_mutex_lock(&s->q_lock);
    for (;;) {
        while (s->count == 0 && !s->stopping)
            pthread_cond_wait(&s->wake, &s->q_lock);
        if (s->count == 0)
            break;

        size_t n = s->count < BATCH_MAX ? s->count : BATCH_MAX;
        for (size_t i = 0; i < n; i++)
            s->batch[i] = s->ring[(s->head + i) % QUEUE_CAP];
        s->head = (s->head + n) % QUEUE_CAP;
        s->count -= n;
        /* The newest item taken; everything older was taken before or dropped. */
        uint64_t upto = s->queued - s->count;
        uint64_t dropped = s->dropped_burst;
        s->dropped_burst = 0;
        pthread_mutex_unlock(&s->q_lock);

        if (dropped) {
            struct skiff_log l;
            skiff_log_begin(&l, SKIFF_LOG_WARN, "store_queue_dropped");
            skiff_log_str(&l, "path", s->path);
            skiff_log_int(&l, "dropped", (long long)dropped);
            skiff_log_end(&l);
        }
        pthread_mutex_lock(&s->db_lock);
        write_batch(s, s->batch, n);
        pthread_mutex_unlock(&s->db_lock);

        pthread_mutex_lock(&s->q_lock);
        s->done = upto;
        pthread_cond_broadcast(&s->done_cv);
    }
    pthread_mutex_unlock(&s->q_lock);
    return NULL;
}

/* Frees what open built; the thread must not be running. */
static void
store_free(struct skiff_store *s)
{
    finalize_statements(s);
    if (s->db)
        sqlite3_close(s->db);
    pthread_mutex_destroy(&s->db_lock);
    pthread_mutex_destroy(&s->q_lock);
    pthread_cond_destroy(&s->wake);
    pthread_cond_destroy(&s->done_cv);
    free(s->batch);
    free(s->ring);
    free(s->path);
    free(s);
}

struct skiff_store *
skiff_store_open(const char *path, const char *config_fingerprint, char *err, size_t errlen)
{
    if (err && errlen)
        err[0] = '\0';
    if (!path || !*path) {
        open_error(err, errlen, path ? path : "(null)", "no path given");
        return NULL;
    }
    if (!config_fingerprint)
        config_fingerprint = "";

    struct skiff_store *s = calloc(1, sizeof *s);
    if (!s) {
        open_error(err, errlen, path, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&s->db_lock, NULL);
    pthread_mutex_init(&s->q_lock, NULL);
    pthread_cond_init(&s->wake, NULL);
    pthread_cond_init(&s->done_cv, NULL);
    s->path = strdup(path);
    s->ring = malloc(QUEUE_CAP * sizeof *s->ring);
    s->batch = malloc(BATCH_MAX * sizeof *s->batch);
    if (!s->path || !s->ring || !s->batch) {
        open_error(err, errlen, path, "out of memory");
        goto out_free;
    }

    /* NOMUTEX: db_lock serialises every use of the connection (see the top of this file). */
    int rc = sqlite3_open_v2(
        path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        open_error(err, errlen, path, "%s", s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
        goto out_free;
    }
    /*
     * A write-protected file opens read-only without an error; every write would then fail
     * at run time, so say so now, while the operator is looking.
     */
    if (sqlite3_db_readonly(s->db, "main") == 1) {
        open_error(err, errlen, path, "attempt to write a readonly database");
        goto out_free;
    }
    sqlite3_busy_timeout(s->db, BUSY_TIMEOUT_MS);
    /*
     * WAL lets a second process (sqlite3 shell, a test) read while we write; NORMAL syncs at
     * checkpoints only, so a power cut may lose the last few writes but never corrupts,
     * which is the right trade for state that is a cache of what the pool knows.
     */
    rc = exec_sql(s->db, "PRAGMA journal_mode = WAL");
    if (rc == SQLITE_OK)
        rc = exec_sql(s->db, "PRAGMA synchronous = NORMAL");
    if (rc != SQLITE_OK) {
        open_error(err, errlen, path, "%s", sqlite3_errmsg(s->db));
        goto out_free;
    }
    if (prepare_schema(s->db, path, config_fingerprint, err, errlen) != 0)
        goto out_free;
    if (prepare_statements(s) != SQLITE_OK) {
        open_error(err, errlen, path, "%s", sqlite3_errmsg(s->db));
        goto out_free;
    }
    rc = pthread_create(&s->thread, NULL, store_main, s);
    if (rc != 0) {
        open_error(err, errlen, path, "cannot start the store thread: %s", strerror(rc));
        goto out_free;
    }
    return s;

out_free:
    store_free(s);
    return NULL;
}

void
skiff_store_flush(struct skiff_store *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->q_lock);
    uint64_t target = s->queued;
    while (s->done < target)
        pthread_cond_wait(&s->done_cv, &s->q_lock);
    pthread_mutex_unlock(&s->q_lock);
}

void
skiff_store_close(struct skiff_store *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->q_lock);
    s->stopping = 1;
    pthread_cond_signal(&s->wake);
    pthread_mutex_unlock(&s->q_lock);
    /* The thread drains the queue before it leaves, so joining it is the final flush. */
    pthread_join(s->thread, NULL);
    if (s->dropped_total) {
        struct skiff_log l;
        skiff_log_begin(&l, SKIFF_LOG_WARN, "store_closed");
        skiff_log_str(&l, "path", s->path);
        skiff_log_int(&l, "dropped_total", (long long)s->dropped_total);
        skiff_log_end(&l);
    }
    store_free(s);
}

/*
 * Puts one item at the tail of the ring. When the ring is full the oldest item is dropped
 * instead of making the caller wait: the caller is an event loop (often holding the key
 * pool's lock), and the newest state of a key matters more than an old one. The first drop
 * of a burst is logged here; the store thread reports the count when it catches up.
 */
static void
enqueue(struct skiff_store *s, const struct item *it)
{
    int first_drop = 0;
    pthread_mutex_lock(&s->q_lock);
    if (s->count == QUEUE_CAP) {
        s->head = (s->head + 1) % QUEUE_CAP;
        s->count--;
        first_drop = s->dropped_burst == 0;
        s->dropped_burst++;
        s->dropped_total++;
    }
    s->ring[(s->head + s->count) % QUEUE_CAP] = *it;
    s->count++;
    s->queued++;
    pthread_cond_signal(&s->wake);
    pthread_mutex_unlock(&s->q_lock);

    if (first_drop) {
        struct skiff_log l;
        skiff_log_begin(&l, SKIFF_LOG_WARN, "store_queue_full");
        skiff_log_str(&l, "path", s->path);
        skiff_log_int(&l, "capacity", QUEUE_CAP);
        skiff_log_str(&l, "msg", "the disk is not keeping up: dropping the oldest writes");
        skiff_log_end(&l);
    }
}

void
skiff_store_put_state(struct skiff_store *s, const struct skiff_key_state *st)
{
    if (!s || !st)
        return;
    struct item it = {.kind = ITEM_STATE};
    it.st = *st;
    enqueue(s, &it);
}

void
skiff_store_add_usage(struct skiff_store *s, const struct skiff_key_usage *u)
{
    if (!s || !u)
        return;
    struct item it = {.kind = ITEM_USAGE};
    it.u = *u;
    enqueue(s, &it);
}

static int
load_states(struct skiff_store *s, int64_t now_ms,
            void (*fn)(const struct skiff_key_state *st, void *ud), void *ud)
{
    sqlite3_stmt *stmt;
    int rc = sqlite3_prepare_v2(s->db,
                                "SELECT key_id, model, label, rest_until_ms, retired, reason,"
                                " updated_ms FROM key_state"
                                " WHERE retired != 0 OR rest_until_ms > ?1",
                                -1, &stmt, NULL);
    if (rc != SQLITE_OK)
        return rc;
    sqlite3_bind_int64(stmt, 1, now_ms);
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        struct skiff_key_state st;
        memset(&st, 0, sizeof st);
        copy_column(st.key_id, sizeof st.key_id, stmt, 0);
        copy_column(st.model, sizeof st.model, stmt, 1);
        copy_column(st.label, sizeof st.label, stmt, 2);
        st.rest_until_ms = sqlite3_column_int64(stmt, 3);
        st.retired = sqlite3_column_int(stmt, 4) != 0;
        copy_column(st.reason, sizeof st.reason, stmt, 5);
        st.updated_ms = sqlite3_column_int64(stmt, 6);
        fn(&st, ud);
    }
    sqlite3_finalize(stmt);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static int
load_usage(struct skiff_store *s, const char *day,
           void (*ufn)(const struct skiff_key_usage *u, void *ud), void *ud)
{
    sqlite3_stmt *stmt;
    int rc = sqlite3_prepare_v2(s->db,
                                "SELECT key_id, model, day, requests, tokens FROM key_usage"
                                " WHERE day = ?1",
                                -1, &stmt, NULL);
    if (rc != SQLITE_OK)
        return rc;
    sqlite3_bind_text(stmt, 1, day, -1, SQLITE_STATIC);
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        struct skiff_key_usage u;
        memset(&u, 0, sizeof u);
        copy_column(u.key_id, sizeof u.key_id, stmt, 0);
        copy_column(u.model, sizeof u.model, stmt, 1);
        copy_column(u.day, sizeof u.day, stmt, 2);
        u.requests = sqlite3_column_int64(stmt, 3);
        u.tokens = sqlite3_column_int64(stmt, 4);
        ufn(&u, ud);
    }
    sqlite3_finalize(stmt);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/*
 * Reads on the caller's thread, holding db_lock so the store thread cannot use the
 * connection at the same time; it may therefore be called at any moment, but it sees only
 * what is committed (flush first to include what is queued). The callbacks run with
 * db_lock held: they must not call back into the store.
 */
int
skiff_store_load(struct skiff_store *s, int64_t now_ms, const char *day,
                 void (*fn)(const struct skiff_key_state *st, void *ud),
                 void (*ufn)(const struct skiff_key_usage *u, void *ud), void *ud)
{
    if (!s)
        return SKIFF_EINVAL;
    int rc = SQLITE_OK;
    pthread_mutex_lock(&s->db_lock);
    if (fn)
        rc = load_states(s, now_ms, fn, ud);
    if (rc == SQLITE_OK && ufn && day)
        rc = load_usage(s, day, ufn, ud);
    if (rc != SQLITE_OK) {
        struct skiff_log l;
        skiff_log_begin(&l, SKIFF_LOG_ERROR, "store_load_failed");
        skiff_log_str(&l, "path", s->path);
        skiff_log_str(&l, "error", sqlite3_errmsg(s->db));
        skiff_log_end(&l);
    }
    pthread_mutex_unlock(&s->db_lock);
    return rc == SQLITE_OK ? 0 : SKIFF_EIO;
}

/*
 * FNV-1a, 64 bits. It is an identifier, not a protection: a key has far more entropy than
 * 64 bits, so the hash cannot give it back, and collisions in a pool of keys are
 * vanishingly unlikely. Being fixed, it stays the same across restarts and builds.
 */
void
skiff_store_key_id(const char *key, char out[17])
{
    static const char hex[] = "0123456789abcdef";
    const char *k = key ? key : "";
    uint64_t h = skiff_fnv1a64(SKIFF_FNV64_BASIS, k, strlen(k));
    for (int i = 15; i >= 0; i--) {
        out[i] = hex[h & 0xf];
        h >>= 4;
    }
    out[16] = '\0';
}
