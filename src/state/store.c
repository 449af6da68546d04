/*
 * Opening and closing the store: the connection settings, the schema and its version, the
 * config fingerprint rule, the prepared statements, the reading connection, the store
 * thread's start; flush, stats and close. The rest of the store is in store_table.c,
 * store_writer.c, store_sig.c, store_affinity.c and store_read.c (state/store_internal.h
 * says which is what).
 */
#include "state/store.h"

#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

#include "base/err.h"
#include "base/log.h"
#include "state/store_internal.h"

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
                                 " value TEXT NOT NULL);"
                                 "CREATE TABLE IF NOT EXISTS sig_cache ("
                                 " id TEXT PRIMARY KEY,"
                                 " sig TEXT NOT NULL,"
                                 " updated_ms INTEGER NOT NULL DEFAULT 0);"
                                 "CREATE TABLE IF NOT EXISTS affinity ("
                                 " name TEXT PRIMARY KEY,"
                                 " label TEXT NOT NULL,"
                                 " value TEXT,"
                                 " expire_ms INTEGER NOT NULL);";

static const char put_state_sql[] =
    "INSERT INTO key_state (key_id, model, label, rest_until_ms, retired, reason, updated_ms)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
    " ON CONFLICT (key_id, model) DO UPDATE SET"
    " label = excluded.label, rest_until_ms = excluded.rest_until_ms,"
    " retired = excluded.retired, reason = excluded.reason, updated_ms = excluded.updated_ms";

/*
 * REPLACE deletes the old row of the id and inserts a new one, with a rowid past every
 * other: rowids order the rows by when they were written, by any instance sharing the file.
 */
static const char put_sig_sql[] =
    "INSERT OR REPLACE INTO sig_cache (id, sig, updated_ms) VALUES (?1, ?2, ?3)";

/* Keeps the ?1 rows written last (the rowid order is the table's own b-tree). */
static const char prune_sigs_sql[] =
    "DELETE FROM sig_cache WHERE rowid IN"
    " (SELECT rowid FROM sig_cache ORDER BY rowid DESC LIMIT -1 OFFSET ?1)";

static const char put_aff_sql[] =
    "INSERT OR REPLACE INTO affinity (name, label, value, expire_ms) VALUES (?1, ?2, ?3, ?4)";
static const char del_aff_sql[] = "DELETE FROM affinity WHERE name = ?1";
static const char prune_aff_sql[] = "DELETE FROM affinity WHERE expire_ms <= ?1";
static const char get_aff_sql[] =
    "SELECT label, value, expire_ms FROM affinity WHERE name = ?1 AND expire_ms > ?2";

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
    sqlite3_finalize(s->put_sig);
    sqlite3_finalize(s->prune_sigs);
    sqlite3_finalize(s->get_sig);
    sqlite3_finalize(s->put_aff);
    sqlite3_finalize(s->del_aff);
    sqlite3_finalize(s->prune_aff);
    sqlite3_finalize(s->get_aff);
    s->put_aff = s->del_aff = s->prune_aff = s->get_aff = NULL;
    s->put_state = s->add_usage = s->begin = s->commit = s->rollback = NULL;
    s->put_sig = s->prune_sigs = s->get_sig = NULL;
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
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(s->db, put_sig_sql, -1, &s->put_sig, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(s->db, prune_sigs_sql, -1, &s->prune_sigs, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(s->db, put_aff_sql, -1, &s->put_aff, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(s->db, del_aff_sql, -1, &s->del_aff, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(s->db, prune_aff_sql, -1, &s->prune_aff, NULL);
    return rc;
}

/*
 * Opens the reading connection of skiff_store_get_sig and _get_owner, once the schema is there. A
 * lookup runs on an event loop, so it waits at most READ_BUSY_TIMEOUT_MS for a lock (in WAL mode
 * only a checkpoint or a recovery takes one that stops readers).
 */
static int
open_reader(struct skiff_store *s)
{
    int rc = sqlite3_open_v2(s->path, &s->rdb, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK)
        return rc;
    sqlite3_busy_timeout(s->rdb, READ_BUSY_TIMEOUT_MS);
    /* It reads one row at a time (a signature, the few rows of key_state): a small page
     * cache is plenty, and keeps the connection's memory flat. */
    rc = exec_sql(s->rdb, "PRAGMA cache_size = -128");
    if (rc != SQLITE_OK)
        return rc;
    rc = sqlite3_prepare_v2(s->rdb, "SELECT sig FROM sig_cache WHERE id = ?1", -1, &s->get_sig,
                            NULL);
    if (rc != SQLITE_OK)
        return rc;
    return sqlite3_prepare_v2(s->rdb, get_aff_sql, -1, &s->get_aff, NULL);
}

/* Frees what open built; the thread must not be running. */
void
store_free(struct skiff_store *s)
{
    finalize_statements(s);
    if (s->db)
        sqlite3_close(s->db);
    pthread_mutex_destroy(&s->db_lock);
    pthread_mutex_destroy(&s->q_lock);
    pthread_cond_destroy(&s->wake);
    pthread_cond_destroy(&s->done_cv);
    store_table_release(&s->states);
    store_table_release(&s->usage);
    store_table_release(&s->w_states);
    store_table_release(&s->w_usage);
    store_table_release(&s->sigs);
    store_table_release(&s->w_sigs);
    store_table_release(&s->affs);
    store_table_release(&s->w_affs);
    if (s->rdb)
        sqlite3_close(s->rdb);
    pthread_mutex_destroy(&s->r_lock);
    pthread_mutex_destroy(&s->w_lock);
    pthread_cond_destroy(&s->w_cv);
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
    pthread_mutex_init(&s->r_lock, NULL);
    pthread_mutex_init(&s->w_lock, NULL);
    /* The store thread's timers are monotonic: a clock step must not delay a write. */
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->wake, &ca);
    pthread_cond_init(&s->w_cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_cond_init(&s->done_cv, NULL);
    s->states.kind = s->w_states.kind = ROW_STATE;
    s->usage.kind = s->w_usage.kind = ROW_USAGE;
    s->sigs.kind = s->w_sigs.kind = ROW_SIG;
    s->affs.kind = s->w_affs.kind = ROW_AFF;
    s->path = strdup(path);
    if (!s->path) {
        open_error(err, errlen, path, "out of memory");
        goto out_free;
    }

    /* NOMUTEX: db_lock serialises every use of the connection (state/store_internal.h). */
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
    /* At open, another writer is waited for as long as at close. */
    sqlite3_busy_timeout(s->db, CLOSE_BUSY_TIMEOUT_MS);
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
    sqlite3_busy_timeout(s->db, BUSY_TIMEOUT_MS);
    if (open_reader(s) != SQLITE_OK) {
        open_error(err, errlen, path, "%s",
                   s->rdb ? sqlite3_errmsg(s->rdb) : "cannot open a second connection");
        goto out_free;
    }
    /* The thread inherits this mask: a SIGTERM must reach the thread that waits for it. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    rc = pthread_create(&s->thread, NULL, store_main, s);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
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
    uint64_t target = ++s->flush_req;
    pthread_cond_signal(&s->wake);
    while (s->flush_done < target)
        pthread_cond_wait(&s->done_cv, &s->q_lock);
    pthread_mutex_unlock(&s->q_lock);
}

void
skiff_store_stats(struct skiff_store *s, struct skiff_store_stats *out)
{
    memset(out, 0, sizeof *out);
    if (!s)
        return;
    pthread_mutex_lock(&s->q_lock);
    *out = s->stats;
    out->pending_states = s->states.n;
    out->pending_usage = s->usage.n;
    out->pending_sigs = s->sigs.n;
    out->pending_affs = s->affs.n;
    pthread_mutex_unlock(&s->q_lock);
}

void
skiff_store_close(struct skiff_store *s)
{
    if (!s)
        return;
    skiff_store_unwatch(s);
    pthread_mutex_lock(&s->q_lock);
    s->stopping = 1;
    pthread_cond_signal(&s->wake);
    pthread_mutex_unlock(&s->q_lock);
    /* The thread writes what is pending before it leaves, so joining it is the final flush. */
    pthread_join(s->thread, NULL);
    s->stats.rows_lost += s->states.n + s->usage.n + s->sigs.n + s->affs.n;
    if (s->stats.rows_lost) {
        struct skiff_log l;
        skiff_log_begin(&l, SKIFF_LOG_WARN, "store_closed");
        skiff_log_str(&l, "path", s->path);
        skiff_log_int(&l, "rows_lost", (long long)s->stats.rows_lost);
        skiff_log_int(&l, "unwritten_states", (long long)s->states.n);
        skiff_log_int(&l, "unwritten_usage", (long long)s->usage.n);
        skiff_log_int(&l, "unwritten_signatures", (long long)s->sigs.n);
        skiff_log_int(&l, "unwritten_owners", (long long)s->affs.n);
        skiff_log_end(&l);
    }
    store_free(s);
}
