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
#include "base/hash.h"
#include "base/log.h"

/*
 * Threads and locks (docs/internals/store.md says the same at more length):
 *
 *   q_lock   guards the pending tables and the counters beside them. Producers on event
 *            loops hold it for a hash lookup and a struct copy, never across I/O, so
 *            put_state and add_usage never wait for the disk.
 *   db_lock  guards the SQLite connection. The store thread holds it while it writes a
 *            batch; skiff_store_load holds it while it reads. Since every use of the
 *            connection is serialised here, the connection is opened SQLITE_OPEN_NOMUTEX.
 *
 * The two locks are never held together, so there is no lock order to get wrong.
 *
 * What is pending is not a queue but two tables: the newest state per (key, model), which
 * a later put replaces, and the usage added per (key, model, day) since the last write,
 * which a later add increases. Neither can lose a row to a burst of the other, both are
 * bounded by the number of distinct rows rather than by the request rate, and a write that
 * fails puts its rows back (unless a newer state arrived meanwhile) to be tried again.
 */

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

/* Steps a statement that returns no rows and resets it for its next use. */
static int
run(sqlite3_stmt *stmt)
{
    int rc = sqlite3_step(stmt);
    sqlite3_reset(stmt);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? SQLITE_OK : rc;
}

/* ---- pending tables ---- */

static uint64_t
row_hash(enum row_kind kind, const struct row *r)
{
    uint64_t h = SKIFF_FNV64_BASIS;
    if (kind == ROW_SIG) {
        h = skiff_fnv1a64(h, r->sg.id, strlen(r->sg.id));
    } else if (kind == ROW_AFF) {
        h = skiff_fnv1a64(h, r->af.name, strlen(r->af.name));
    } else if (kind == ROW_STATE) {
        h = skiff_fnv1a64(h, r->st.key_id, strnlen(r->st.key_id, sizeof r->st.key_id));
        h = skiff_fnv1a64(h, "", 1);
        h = skiff_fnv1a64(h, r->st.model, strnlen(r->st.model, sizeof r->st.model));
    } else {
        h = skiff_fnv1a64(h, r->u.key_id, strnlen(r->u.key_id, sizeof r->u.key_id));
        h = skiff_fnv1a64(h, "", 1);
        h = skiff_fnv1a64(h, r->u.model, strnlen(r->u.model, sizeof r->u.model));
        h = skiff_fnv1a64(h, "", 1);
        h = skiff_fnv1a64(h, r->u.day, strnlen(r->u.day, sizeof r->u.day));
    }
    return h;
}

static int
same_key(enum row_kind kind, const struct row *a, const struct row *b)
{
    if (a->hash != b->hash)
        return 0;
    if (kind == ROW_SIG)
        return strcmp(a->sg.id, b->sg.id) == 0;
    if (kind == ROW_AFF)
        return strcmp(a->af.name, b->af.name) == 0;
    if (kind == ROW_STATE)
        return strncmp(a->st.key_id, b->st.key_id, sizeof a->st.key_id) == 0 &&
               strncmp(a->st.model, b->st.model, sizeof a->st.model) == 0;
    return strncmp(a->u.key_id, b->u.key_id, sizeof a->u.key_id) == 0 &&
           strncmp(a->u.model, b->u.model, sizeof a->u.model) == 0 &&
           strncmp(a->u.day, b->u.day, sizeof a->u.day) == 0;
}

static void
aff_row_free(struct aff_row *r)
{
    free(r->name);
    free(r->label);
    free(r->value);
}

/* Frees the strings of a signature or owner table's rows (they stay in the table: clear it
 * next). */
static void
table_free_sigs(struct table *t)
{
    for (size_t i = 0; t->kind == ROW_SIG && i < t->n; i++) {
        free(t->rows[i].sg.id);
        free(t->rows[i].sg.sig);
    }
    for (size_t i = 0; t->kind == ROW_AFF && i < t->n; i++)
        aff_row_free(&t->rows[i].af);
}

static void
table_release(struct table *t)
{
    table_free_sigs(t);
    free(t->rows);
    free(t->slots);
    t->rows = NULL;
    t->slots = NULL;
    t->n = t->cap = t->nslots = 0;
}

/* Empties t, keeping its memory for the next rows. */
static void
table_clear(struct table *t)
{
    t->n = 0;
    if (t->slots)
        memset(t->slots, 0, t->nslots * sizeof *t->slots);
}

static void
slot_insert(uint32_t *slots, size_t nslots, uint64_t hash, uint32_t idx)
{
    size_t i = (size_t)hash & (nslots - 1);
    while (slots[i])
        i = (i + 1) & (nslots - 1);
    slots[i] = idx + 1;
}

/* Makes room for one more row; returns 0, or -1 when t is at TABLE_MAX or out of memory. */
static int
table_reserve(struct table *t)
{
    if (t->n == TABLE_MAX)
        return -1;
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        struct row *rows = realloc(t->rows, cap * sizeof *rows);
        if (!rows)
            return -1;
        t->rows = rows;
        t->cap = cap;
    }
    if ((t->n + 1) * 2 > t->nslots) { /* load factor at most 1/2 */
        size_t nslots = t->nslots ? t->nslots * 2 : 32;
        uint32_t *slots = calloc(nslots, sizeof *slots);
        if (!slots)
            return -1;
        for (size_t i = 0; i < t->n; i++)
            slot_insert(slots, nslots, t->rows[i].hash, (uint32_t)i);
        free(t->slots);
        t->slots = slots;
        t->nslots = nslots;
    }
    return 0;
}

/*
 * The row of t with r's key, or NULL. With add set, a missing row is added as a copy of r
 * and *added set; NULL then means the table is full.
 */
static struct row *
table_get(struct table *t, const struct row *r, int add, int *added)
{
    if (t->nslots) {
        size_t i = (size_t)r->hash & (t->nslots - 1);
        for (; t->slots[i]; i = (i + 1) & (t->nslots - 1)) {
            struct row *have = &t->rows[t->slots[i] - 1];
            if (same_key(t->kind, have, r))
                return have;
        }
    }
    if (!add || table_reserve(t) != 0)
        return NULL;
    t->rows[t->n] = *r;
    slot_insert(t->slots, t->nslots, r->hash, (uint32_t)t->n);
    *added = 1;
    return &t->rows[t->n++];
}

/* Puts a state in t: a newer one replaces the row. Returns 0, or -1 when t is full. */
static int
merge_state(struct table *t, const struct row *r, int keep_newer)
{
    int added = 0;
    struct row *have = table_get(t, r, 1, &added);
    if (!have)
        return -1;
    if (!added && !keep_newer)
        *have = *r;
    return 0;
}

/* Adds usage into t. Returns 0, or -1 when t is full. */
static int
merge_usage(struct table *t, const struct row *r)
{
    int added = 0;
    struct row *have = table_get(t, r, 1, &added);
    if (!have)
        return -1;
    if (!added) {
        have->u.requests += r->u.requests;
        have->u.tokens += r->u.tokens;
    }
    return 0;
}

/*
 * Puts a signature row in t, which takes its strings: a newer one replaces the row (the
 * older strings are freed); with keep_newer an existing row wins and r's strings are freed.
 * Returns 0, or -1 when t is full (r's strings freed too).
 */
static int
merge_sig(struct table *t, struct row *r, int keep_newer)
{
    int added = 0;
    struct row *have = table_get(t, r, 1, &added);
    if (added)
        return 0;
    struct sig_row drop = r->sg;
    if (have && !keep_newer) {
        drop = have->sg;
        have->sg = r->sg;
    }
    free(drop.id);
    free(drop.sig);
    return have ? 0 : -1;
}

/* Like merge_sig, for an owner row. */
static int
merge_aff(struct table *t, struct row *r, int keep_newer)
{
    int added = 0;
    struct row *have = table_get(t, r, 1, &added);
    if (added)
        return 0;
    struct aff_row drop = r->af;
    if (have && !keep_newer) {
        drop = have->af;
        have->af = r->af;
    }
    aff_row_free(&drop);
    return have ? 0 : -1;
}

/* ---- writing ---- */

static int64_t
mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int
write_state(struct skiff_store *s, const struct skiff_key_state *st)
{
    sqlite3_stmt *stmt = s->put_state;
    bind_field(stmt, 1, st->key_id, sizeof st->key_id);
    bind_field(stmt, 2, st->model, sizeof st->model);
    bind_field(stmt, 3, st->label, sizeof st->label);
    sqlite3_bind_int64(stmt, 4, st->rest_until_ms);
    /* cppcheck-suppress invalidFunctionArgBool ; the column is an INTEGER 0/1 flag on purpose */
    sqlite3_bind_int(stmt, 5, st->retired != 0);
    bind_field(stmt, 6, st->reason, sizeof st->reason);
    sqlite3_bind_int64(stmt, 7, st->updated_ms);
    return run(stmt);
}

static int
write_usage(struct skiff_store *s, const struct skiff_key_usage *u)
{
    sqlite3_stmt *stmt = s->add_usage;
    bind_field(stmt, 1, u->key_id, sizeof u->key_id);
    bind_field(stmt, 2, u->model, sizeof u->model);
    bind_field(stmt, 3, u->day, sizeof u->day);
    sqlite3_bind_int64(stmt, 4, u->requests);
    sqlite3_bind_int64(stmt, 5, u->tokens);
    return run(stmt);
}

static int
write_sig(struct skiff_store *s, const struct sig_row *r)
{
    sqlite3_stmt *stmt = s->put_sig;
    sqlite3_bind_text(stmt, 1, r->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 2, r->sig, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 3, r->updated_ms);
    int rc = run(stmt);
    sqlite3_clear_bindings(stmt); /* the strings are freed after the write */
    return rc;
}

static int
write_aff(struct skiff_store *s, const struct aff_row *r)
{
    sqlite3_stmt *stmt = r->label ? s->put_aff : s->del_aff;
    sqlite3_bind_text(stmt, 1, r->name, -1, SQLITE_STATIC);
    if (r->label) {
        sqlite3_bind_text(stmt, 2, r->label, -1, SQLITE_STATIC);
        if (r->value)
            sqlite3_bind_text(stmt, 3, r->value, -1, SQLITE_STATIC);
        else
            sqlite3_bind_null(stmt, 3);
        sqlite3_bind_int64(stmt, 4, r->expire_ms);
    }
    int rc = run(stmt);
    sqlite3_clear_bindings(stmt);
    return rc;
}

/*
 * Whether a failure is about the database as a whole (another writer, a full disk, a
 * read-only file, I/O) and so worth retrying, rather than about one row (a missing table, a
 * constraint), which would fail the same way every time.
 */
static int
retryable(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_FULL:
    case SQLITE_READONLY:
    case SQLITE_IOERR:
    case SQLITE_CANTOPEN:
    case SQLITE_NOMEM:
    case SQLITE_PROTOCOL:
        return 1;
    default:
        return 0;
    }
}

/* What one write attempt did, for the log and the counters. */
struct attempt {
    int failed;       /* nothing was committed; every row is to be retried */
    const char *step; /* where it failed */
    char error[256];  /* SQLite's message for the first failure */
    size_t bad;       /* rows SQLite refused for good (counted lost) */
    size_t rows;
};

static void
attempt_error(struct skiff_store *s, struct attempt *a, const char *step)
{
    if (a->error[0])
        return;
    a->step = step;
    snprintf(a->error, sizeof a->error, "%s", sqlite3_errmsg(s->db));
}

/*
 * Keeps sig_cache at its bound: the oldest rows past sig_max go. The delete walks the
 * table's index, so it runs when an eighth of the bound was written since the last one (and
 * once after open), not per batch: the table holds at most sig_max * 9/8 rows. Inside the
 * write transaction; a failure of the database fails the attempt, one of the statement is
 * left for the next prune.
 */
static void
prune_sigs(struct skiff_store *s, struct attempt *a)
{
    s->sigs_since_prune += s->w_sigs.n;
    size_t max = s->w_sig_max;
    if (!max || (s->pruned && s->sigs_since_prune * 8 < max))
        return;
    sqlite3_bind_int64(s->prune_sigs, 1, (sqlite3_int64)max);
    int rc = run(s->prune_sigs);
    if (rc == SQLITE_OK) {
        s->sigs_since_prune = 0;
        s->pruned = 1;
        return;
    }
    attempt_error(s, a, "prune");
    if (retryable(rc))
        a->failed = 1;
}

static int64_t wall_ms(void);

/* Deletes the owners whose expiry passed, at most once a minute (and at the first write of
 * owners after open), inside the write transaction; a failure waits for the next one. */
static void
prune_affs(struct skiff_store *s)
{
    int64_t now = wall_ms();
    if (s->aff_pruned_ms && now - s->aff_pruned_ms < 60000)
        return;
    sqlite3_bind_int64(s->prune_aff, 1, now);
    if (run(s->prune_aff) == SQLITE_OK)
        s->aff_pruned_ms = now;
}

/*
 * Writes the rows being written in one transaction. A row refused for a reason of its own
 * is skipped and counted lost, so it does not cost the others; a failure of the database
 * as a whole (BEGIN, COMMIT, or a row failing with a retryable code) rolls everything back,
 * to be tried again. Called on the store thread with db_lock held.
 */
static void
write_rows(struct skiff_store *s, struct attempt *a)
{
    a->rows = s->w_states.n + s->w_usage.n + s->w_sigs.n + s->w_affs.n;
    int rc = run(s->begin);
    if (rc != SQLITE_OK) {
        attempt_error(s, a, "begin");
        a->failed = 1;
        return;
    }
    for (size_t i = 0; i < s->w_states.n + s->w_usage.n && !a->failed; i++) {
        rc = i < s->w_states.n ? write_state(s, &s->w_states.rows[i].st)
                               : write_usage(s, &s->w_usage.rows[i - s->w_states.n].u);
        if (rc == SQLITE_OK)
            continue;
        attempt_error(s, a, "write");
        if (retryable(rc))
            a->failed = 1;
        else
            a->bad++;
    }
    for (size_t i = 0; i < s->w_sigs.n && !a->failed; i++) {
        rc = write_sig(s, &s->w_sigs.rows[i].sg);
        if (rc == SQLITE_OK)
            continue;
        attempt_error(s, a, "write");
        if (retryable(rc))
            a->failed = 1;
        else
            a->bad++;
    }
    for (size_t i = 0; i < s->w_affs.n && !a->failed; i++) {
        rc = write_aff(s, &s->w_affs.rows[i].af);
        if (rc == SQLITE_OK)
            continue;
        attempt_error(s, a, "write");
        if (retryable(rc))
            a->failed = 1;
        else
            a->bad++;
    }
    if (!a->failed && s->w_sigs.n)
        prune_sigs(s, a);
    if (!a->failed && s->w_affs.n)
        prune_affs(s);
    if (!a->failed && run(s->commit) != SQLITE_OK) {
        attempt_error(s, a, "commit");
        a->failed = 1;
    }
    /* A failed statement or COMMIT may leave the transaction open; close it. */
    if (a->failed && !sqlite3_get_autocommit(s->db))
        run(s->rollback);
}

/*
 * Logs the first failure of a run of failures only: a full disk would otherwise log on
 * every retry. The log names the path and SQLite's message, never row contents.
 */
static void
log_failure(struct skiff_store *s, const struct attempt *a, int64_t retry_ms)
{
    struct skiff_log l;
    skiff_log_begin(&l, SKIFF_LOG_ERROR, "store_write_failed");
    skiff_log_str(&l, "path", s->path);
    skiff_log_str(&l, "step", a->step);
    skiff_log_str(&l, "error", a->error);
    if (a->failed) {
        skiff_log_int(&l, "rows_kept", (long long)a->rows);
        skiff_log_int(&l, "retry_in_ms", (long long)retry_ms);
        skiff_log_str(&l, "msg",
                      "state is kept in memory and written when the database takes "
                      "writes again; only the first failure is logged");
    } else {
        skiff_log_int(&l, "rows_lost", (long long)a->bad);
    }
    skiff_log_end(&l);
}

/*
 * After an attempt, with q_lock held: a failed one puts its rows back into the pending
 * tables (a state only when no newer one arrived meanwhile; usage is added back) and sets
 * the retry time; a good one resets the backoff.
 */
static void
settle(struct skiff_store *s, const struct attempt *a, int64_t now)
{
    s->stats.rows_lost += a->bad;
    if (!a->failed) {
        s->stats.rows_written += a->rows - a->bad;
        s->backoff_ms = 0;
        s->retry_at_ms = 0;
        table_clear(&s->w_states);
        table_clear(&s->w_usage);
        table_free_sigs(&s->w_sigs);
        table_clear(&s->w_sigs);
        table_free_sigs(&s->w_affs);
        table_clear(&s->w_affs);
        return;
    }
    s->stats.write_failures++;
    s->backoff_ms = s->backoff_ms ? s->backoff_ms * 2 : RETRY_MIN_MS;
    if (s->backoff_ms > RETRY_MAX_MS)
        s->backoff_ms = RETRY_MAX_MS;
    s->retry_at_ms = now + s->backoff_ms;
    for (size_t i = 0; i < s->w_states.n; i++)
        if (merge_state(&s->states, &s->w_states.rows[i], 1) != 0)
            s->stats.rows_lost++;
    for (size_t i = 0; i < s->w_usage.n; i++)
        if (merge_usage(&s->usage, &s->w_usage.rows[i]) != 0)
            s->stats.rows_lost++;
    for (size_t i = 0; i < s->w_sigs.n; i++)
        if (merge_sig(&s->sigs, &s->w_sigs.rows[i], 1) != 0)
            s->stats.rows_lost++;
    for (size_t i = 0; i < s->w_affs.n; i++)
        if (merge_aff(&s->affs, &s->w_affs.rows[i], 1) != 0)
            s->stats.rows_lost++;
    if (s->usage.n && !s->usage_due_ms)
        s->usage_due_ms = now;
    table_clear(&s->w_states);
    table_clear(&s->w_usage);
    table_clear(&s->w_sigs); /* its strings moved into s->sigs, or were freed */
    table_clear(&s->w_affs);
}

static void
swap_tables(struct table *a, struct table *b)
{
    struct table t = *a;
    *a = *b;
    *b = t;
}

static void
deadline_at(struct timespec *ts, int64_t mono)
{
    ts->tv_sec = (time_t)(mono / 1000);
    ts->tv_nsec = (long)(mono % 1000) * 1000000L;
}

/*
 * The store thread. States are written as soon as they arrive (they are rare and they are
 * what a restart needs); usage USAGE_FLUSH_MS after the first count since the last write;
 * after a failure nothing before retry_at_ms. A flush, and close, write everything pending
 * at once, whatever the timers say. It leaves only when stopping is set and one last
 * attempt has been made, so close writes everything it can.
 */
static void *
store_main(void *arg)
{
    struct skiff_store *s = arg;
    pthread_mutex_lock(&s->q_lock);
    for (;;) {
        int64_t now = mono_ms();
        int urgent = s->stopping || s->flush_req > s->flush_done;
        int held = !urgent && s->retry_at_ms > now;
        int take_states = s->states.n > 0 && !held;
        int take_sigs = s->sigs.n > 0 && !held;
        int take_affs = s->affs.n > 0 && !held;
        int take_usage = s->usage.n > 0 && !held && (urgent || now >= s->usage_due_ms);
        if (!take_states && !take_usage && !take_sigs && !take_affs) {
            if (urgent) {
                s->flush_done = s->flush_req;
                pthread_cond_broadcast(&s->done_cv);
                if (s->stopping)
                    break;
                continue;
            }
            int64_t next = INT64_MAX;
            if (s->states.n || s->sigs.n || s->affs.n)
                next = s->retry_at_ms;
            if (s->usage.n) {
                int64_t u = s->usage_due_ms > s->retry_at_ms ? s->usage_due_ms : s->retry_at_ms;
                next = u < next ? u : next;
            }
            if (next == INT64_MAX) {
                pthread_cond_wait(&s->wake, &s->q_lock);
            } else {
                struct timespec ts;
                deadline_at(&ts, next);
                pthread_cond_timedwait(&s->wake, &s->q_lock, &ts);
            }
            continue;
        }

        uint64_t flush_upto = s->flush_req;
        if (take_states)
            swap_tables(&s->states, &s->w_states);
        if (take_sigs)
            swap_tables(&s->sigs, &s->w_sigs);
        if (take_affs)
            swap_tables(&s->affs, &s->w_affs);
        s->w_sig_max = s->sig_max;
        if (take_usage) {
            swap_tables(&s->usage, &s->w_usage);
            s->usage_due_ms = 0;
        }
        uint64_t refused = s->dropped_burst;
        s->dropped_burst = 0;
        int stopping = s->stopping;
        pthread_mutex_unlock(&s->q_lock);

        if (refused) {
            struct skiff_log l;
            skiff_log_begin(&l, SKIFF_LOG_ERROR, "store_rows_dropped");
            skiff_log_str(&l, "path", s->path);
            skiff_log_int(&l, "dropped", (long long)refused);
            skiff_log_int(&l, "table_max", TABLE_MAX);
            skiff_log_end(&l);
        }
        struct attempt a = {0};
        pthread_mutex_lock(&s->db_lock);
        if (stopping)
            sqlite3_busy_timeout(s->db, CLOSE_BUSY_TIMEOUT_MS);
        write_rows(s, &a);
        pthread_mutex_unlock(&s->db_lock);

        pthread_mutex_lock(&s->q_lock);
        now = mono_ms();
        int problem = a.failed || a.bad;
        int first = problem && !s->stats.failing;
        int recovered = !problem && s->stats.failing;
        settle(s, &a, now);
        s->stats.failing = problem;
        if (urgent) {
            if (flush_upto > s->flush_done)
                s->flush_done = flush_upto;
            pthread_cond_broadcast(&s->done_cv);
        }
        int64_t retry_ms = s->backoff_ms;
        pthread_mutex_unlock(&s->q_lock);

        s->run_failures += problem;
        if (first)
            log_failure(s, &a, retry_ms);
        if (recovered) {
            struct skiff_log l;
            skiff_log_begin(&l, SKIFF_LOG_INFO, "store_write_recovered");
            skiff_log_str(&l, "path", s->path);
            skiff_log_int(&l, "failed_attempts", (long long)s->run_failures);
            skiff_log_int(&l, "rows", (long long)a.rows);
            skiff_log_end(&l);
            s->run_failures = 0;
        }
        pthread_mutex_lock(&s->q_lock);
        if (stopping && a.failed)
            break; /* the last attempt at close failed: what is left is lost (close says so) */
    }
    pthread_mutex_unlock(&s->q_lock);
    return NULL;
}

/*
 * Opens the reading connection of skiff_store_get_sig, once the schema is there. A lookup
 * runs on an event loop, so it waits at most READ_BUSY_TIMEOUT_MS for a lock (in WAL mode
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
    table_release(&s->states);
    table_release(&s->usage);
    table_release(&s->w_states);
    table_release(&s->w_usage);
    table_release(&s->sigs);
    table_release(&s->w_sigs);
    table_release(&s->affs);
    table_release(&s->w_affs);
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

/* Logs the first row a full table refused; the store thread reports the count later. */
static void
log_refused(struct skiff_store *s)
{
    struct skiff_log l;
    skiff_log_begin(&l, SKIFF_LOG_ERROR, "store_table_full");
    skiff_log_str(&l, "path", s->path);
    skiff_log_int(&l, "table_max", TABLE_MAX);
    skiff_log_str(&l, "msg", "too many distinct rows waiting for the disk: new ones are dropped");
    skiff_log_end(&l);
}

/*
 * Replaces the pending state of (key, model): only the newest matters, so a burst of other
 * writes can never push it out. Wakes the store thread, which writes states at once.
 */
void
skiff_store_put_state(struct skiff_store *s, const struct skiff_key_state *st)
{
    if (!s || !st)
        return;
    struct row r;
    r.st = *st;
    r.hash = row_hash(ROW_STATE, &r);
    pthread_mutex_lock(&s->q_lock);
    int refused = merge_state(&s->states, &r, 0) != 0;
    int first = refused && s->dropped_burst++ == 0;
    s->stats.rows_lost += refused;
    pthread_cond_signal(&s->wake);
    pthread_mutex_unlock(&s->q_lock);
    if (first)
        log_refused(s);
}

/*
 * Adds to the pending usage of (key, model, day). The first count since the last write
 * arms the flush timer; later ones are an addition under q_lock and nothing else.
 */
void
skiff_store_add_usage(struct skiff_store *s, const struct skiff_key_usage *u)
{
    if (!s || !u)
        return;
    struct row r;
    r.u = *u;
    r.hash = row_hash(ROW_USAGE, &r);
    pthread_mutex_lock(&s->q_lock);
    int was_empty = s->usage.n == 0;
    int refused = merge_usage(&s->usage, &r) != 0;
    int first = refused && s->dropped_burst++ == 0;
    s->stats.rows_lost += refused;
    if (was_empty && !refused) {
        if (!s->usage_due_ms)
            s->usage_due_ms = mono_ms() + USAGE_FLUSH_MS;
        pthread_cond_signal(&s->wake);
    }
    pthread_mutex_unlock(&s->q_lock);
    if (first)
        log_refused(s);
}

static const char states_sql[] = "SELECT key_id, model, label, rest_until_ms, retired, reason,"
                                 " updated_ms FROM key_state"
                                 " WHERE retired != 0 OR rest_until_ms > ?1";

/* Runs the prepared states_sql for now_ms, calling fn per row; resets stmt. */
static int
step_states(sqlite3_stmt *stmt, int64_t now_ms,
            void (*fn)(const struct skiff_key_state *st, void *ud), void *ud)
{
    int rc;
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
    sqlite3_reset(stmt);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static int
load_states(sqlite3 *db, int64_t now_ms, void (*fn)(const struct skiff_key_state *st, void *ud),
            void *ud)
{
    sqlite3_stmt *stmt;
    int rc = sqlite3_prepare_v2(db, states_sql, -1, &stmt, NULL);
    if (rc != SQLITE_OK)
        return rc;
    rc = step_states(stmt, now_ms, fn, ud);
    sqlite3_finalize(stmt);
    return rc;
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
        rc = load_states(s->db, now_ms, fn, ud);
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

void
skiff_store_sig_limit(struct skiff_store *s, size_t max_rows)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->q_lock);
    s->sig_max = max_rows;
    pthread_mutex_unlock(&s->q_lock);
}

/*
 * Copies id and sig into the pending signatures, replacing a pending one of the same id,
 * and wakes the store thread, which writes them at once (like states). The copies are made
 * before q_lock is taken.
 */
int
skiff_store_put_sig(struct skiff_store *s, const char *id, const char *sig, int64_t now_ms)
{
    if (!s || !id || !sig)
        return SKIFF_EINVAL;
    struct row r = {0};
    r.sg.id = strdup(id);
    r.sg.sig = strdup(sig);
    r.sg.updated_ms = now_ms;
    if (!r.sg.id || !r.sg.sig) {
        free(r.sg.id);
        free(r.sg.sig);
        return SKIFF_ENOMEM;
    }
    r.hash = row_hash(ROW_SIG, &r);
    pthread_mutex_lock(&s->q_lock);
    int refused = merge_sig(&s->sigs, &r, 0) != 0;
    int first = refused && s->dropped_burst++ == 0;
    s->stats.rows_lost += refused;
    pthread_cond_signal(&s->wake);
    pthread_mutex_unlock(&s->q_lock);
    if (first)
        log_refused(s);
    return refused ? SKIFF_ETOOBIG : 0;
}

/*
 * A pending signature first (under q_lock: one the database refused for a while is still
 * found), then the reading connection (under r_lock, never db_lock, so a write in progress
 * does not hold the lookup up). Rows the store thread is writing at this moment are in
 * neither place until their commit; the caller's memory holds them meanwhile.
 */
char *
skiff_store_get_sig(struct skiff_store *s, const char *id)
{
    if (!s || !id)
        return NULL;
    char *out = NULL;
    struct row key = {0};
    key.sg.id = (char *)id;
    key.hash = row_hash(ROW_SIG, &key);
    pthread_mutex_lock(&s->q_lock);
    struct row *have = table_get(&s->sigs, &key, 0, NULL);
    int found = have != NULL;
    if (have)
        out = strdup(have->sg.sig);
    pthread_mutex_unlock(&s->q_lock);
    if (found)
        return out;

    pthread_mutex_lock(&s->r_lock);
    sqlite3_stmt *stmt = s->get_sig;
    sqlite3_bind_text(stmt, 1, id, -1, SQLITE_STATIC);
    if (sqlite3_step(stmt) == SQLITE_ROW) {
        const unsigned char *v = sqlite3_column_text(stmt, 0);
        if (v)
            out = strdup((const char *)v);
    }
    sqlite3_reset(stmt);
    sqlite3_clear_bindings(stmt);
    pthread_mutex_unlock(&s->r_lock);
    return out;
}

/* ---- owners of resources (state/affinity.h) ---- */

/* Queues r (which gives its strings up) for the store thread, like a signature. */
static int
queue_aff(struct skiff_store *s, struct row *r)
{
    r->hash = row_hash(ROW_AFF, r);
    pthread_mutex_lock(&s->q_lock);
    int refused = merge_aff(&s->affs, r, 0) != 0;
    int first = refused && s->dropped_burst++ == 0;
    s->stats.rows_lost += refused;
    pthread_cond_signal(&s->wake);
    pthread_mutex_unlock(&s->q_lock);
    if (first)
        log_refused(s);
    return refused ? SKIFF_ETOOBIG : 0;
}

int
skiff_store_put_owner(struct skiff_store *s, const char *name, const char *label, const char *value,
                      int64_t expire_ms)
{
    if (!s || !name || !label)
        return SKIFF_EINVAL;
    struct row r = {0};
    r.af.name = strdup(name);
    r.af.label = strdup(label);
    r.af.value = value ? strdup(value) : NULL;
    r.af.expire_ms = expire_ms;
    if (!r.af.name || !r.af.label || (value && !r.af.value)) {
        aff_row_free(&r.af);
        return SKIFF_ENOMEM;
    }
    return queue_aff(s, &r);
}

int
skiff_store_forget_owner(struct skiff_store *s, const char *name)
{
    if (!s || !name)
        return SKIFF_EINVAL;
    struct row r = {0};
    r.af.name = strdup(name);
    if (!r.af.name)
        return SKIFF_ENOMEM;
    return queue_aff(s, &r);
}

/* Copies a string into a caller's buffer; -1 when it does not fit. */
static int
copy_out(char *dst, size_t cap, const char *v)
{
    if (!dst)
        return 0;
    size_t n = strlen(v);
    if (n >= cap)
        return -1;
    memcpy(dst, v, n + 1);
    return 0;
}

/*
 * A pending row first (a forget there is an answer: none), then the reading connection,
 * as skiff_store_get_sig does.
 */
int
skiff_store_get_owner(struct skiff_store *s, const char *name, int64_t now_ms, char *label,
                      size_t label_cap, char *value, size_t value_cap, int64_t *expire_ms)
{
    if (!s || !name || !label)
        return -1;
    int rc = -1, found = 0;
    struct row key = {0};
    key.af.name = (char *)name;
    key.hash = row_hash(ROW_AFF, &key);
    pthread_mutex_lock(&s->q_lock);
    struct row *have = table_get(&s->affs, &key, 0, NULL);
    if (have) {
        found = 1;
        if (have->af.label && have->af.expire_ms > now_ms &&
            copy_out(label, label_cap, have->af.label) == 0 &&
            copy_out(value, value_cap, have->af.value ? have->af.value : "") == 0) {
            if (expire_ms)
                *expire_ms = have->af.expire_ms;
            rc = 0;
        }
    }
    pthread_mutex_unlock(&s->q_lock);
    if (found)
        return rc;

    pthread_mutex_lock(&s->r_lock);
    sqlite3_stmt *stmt = s->get_aff;
    sqlite3_bind_text(stmt, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 2, now_ms);
    if (sqlite3_step(stmt) == SQLITE_ROW) {
        const unsigned char *l = sqlite3_column_text(stmt, 0);
        const unsigned char *v = sqlite3_column_text(stmt, 1);
        if (l && copy_out(label, label_cap, (const char *)l) == 0 &&
            copy_out(value, value_cap, v ? (const char *)v : "") == 0) {
            if (expire_ms)
                *expire_ms = sqlite3_column_int64(stmt, 2);
            rc = 0;
        }
    }
    sqlite3_reset(stmt);
    sqlite3_clear_bindings(stmt);
    pthread_mutex_unlock(&s->r_lock);
    return rc;
}

/* ---- watching what other instances write ---- */

/* The states one look found, handed to the callback after r_lock is let go. */
struct seen {
    struct skiff_key_state *st;
    size_t n, cap;
};

static void
collect_state(const struct skiff_key_state *st, void *ud)
{
    struct seen *v = ud;
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 16;
        if (cap > TABLE_MAX)
            return; /* far past any pool's keys x models: the rest waits for the next look */
        struct skiff_key_state *m = realloc(v->st, cap * sizeof *m);
        if (!m)
            return;
        v->st = m;
        v->cap = cap;
    }
    v->st[v->n++] = *st;
}

/* PRAGMA data_version of rdb (stmt prepared on it): it changes when another connection (our
 * store thread's, another process's) commits. -1 on failure. Called with r_lock held. */
static int64_t
data_version(sqlite3_stmt *stmt)
{
    int64_t v = -1;
    if (sqlite3_step(stmt) == SQLITE_ROW)
        v = sqlite3_column_int64(stmt, 0);
    sqlite3_reset(stmt);
    return v;
}

static int64_t
wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * The watcher thread: every w_interval_ms, when the file changed since its last look, it
 * reads the states that matter (a rest not over, a retirement: what load reads) and hands
 * each to w_fn with no lock of the store held. Everything is handed again after each
 * change, its own writes included: the receiver merges, which makes a repeat change
 * nothing. A state table holds one row per (key, model), so a look is small.
 */
static void *
watch_main(void *arg)
{
    struct skiff_store *s = arg;
    /* The first look reads whatever is there: a commit between the watch's start and this
     * thread's first look would otherwise be taken for the starting point and never read. */
    int64_t seen_version = -1;
    /* Statements and the row buffer are made once: a look allocates nothing. */
    sqlite3_stmt *version_stmt = NULL, *states_stmt = NULL;
    struct seen v = {0};
    pthread_mutex_lock(&s->r_lock);
    int rc = sqlite3_prepare_v2(s->rdb, "PRAGMA data_version", -1, &version_stmt, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(s->rdb, states_sql, -1, &states_stmt, NULL);
    pthread_mutex_unlock(&s->r_lock);
    if (rc != SQLITE_OK) {
        struct skiff_log l;
        skiff_log_begin(&l, SKIFF_LOG_ERROR, "store_watch_failed");
        skiff_log_str(&l, "path", s->path);
        skiff_log_str(&l, "error", sqlite3_errstr(rc));
        skiff_log_end(&l);
    }
    pthread_mutex_lock(&s->w_lock);
    if (rc != SQLITE_OK)
        s->w_stop = 1;
    while (!s->w_stop) {
        struct timespec ts;
        deadline_at(&ts, mono_ms() + s->w_interval_ms);
        pthread_cond_timedwait(&s->w_cv, &s->w_lock, &ts);
        if (s->w_stop)
            break;
        pthread_mutex_unlock(&s->w_lock);

        v.n = 0;
        pthread_mutex_lock(&s->r_lock);
        int64_t version = data_version(version_stmt);
        if (version != seen_version &&
            step_states(states_stmt, wall_ms(), collect_state, &v) == SQLITE_OK)
            seen_version = version;
        pthread_mutex_unlock(&s->r_lock);
        for (size_t i = 0; i < v.n; i++)
            s->w_fn(&v.st[i], s->w_ud);

        pthread_mutex_lock(&s->w_lock);
    }
    pthread_mutex_unlock(&s->w_lock);
    free(v.st);
    pthread_mutex_lock(&s->r_lock);
    sqlite3_finalize(version_stmt);
    sqlite3_finalize(states_stmt);
    pthread_mutex_unlock(&s->r_lock);
    return NULL;
}

int
skiff_store_watch(struct skiff_store *s, int interval_ms, skiff_state_cb *fn, void *ud)
{
    if (!s || !fn || interval_ms <= 0)
        return SKIFF_EINVAL;
    pthread_mutex_lock(&s->w_lock);
    int rc = 0;
    if (s->watching) {
        rc = SKIFF_EINVAL;
        goto out_unlock;
    }
    s->w_fn = fn;
    s->w_ud = ud;
    s->w_interval_ms = interval_ms;
    s->w_stop = 0;
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    rc = pthread_create(&s->w_thread, NULL, watch_main, s) == 0 ? 0 : SKIFF_EIO;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    s->watching = rc == 0;
out_unlock:
    pthread_mutex_unlock(&s->w_lock);
    return rc;
}

void
skiff_store_unwatch(struct skiff_store *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->w_lock);
    int was = s->watching;
    s->w_stop = 1;
    s->watching = 0;
    pthread_cond_signal(&s->w_cv);
    pthread_mutex_unlock(&s->w_lock);
    if (was)
        pthread_join(s->w_thread, NULL);
}
