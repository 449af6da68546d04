/*
 * Reading the store back: skiff_store_load (the states that matter and a day's usage, at
 * start, through the writing connection under db_lock) and the watch of what other
 * instances commit (a thread of its own, through the reading connection under r_lock).
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

#include "base/err.h"
#include "base/log.h"
#include "state/store_internal.h"

/* Copies a column into a fixed-size field, cutting what does not fit. */
static void
copy_column(char *dst, size_t size, sqlite3_stmt *stmt, int col)
{
    const unsigned char *v = sqlite3_column_text(stmt, col);
    snprintf(dst, size, "%s", v ? (const char *)v : "");
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

int64_t
store_wall_ms(void)
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
        store_deadline_at(&ts, store_mono_ms() + s->w_interval_ms);
        pthread_cond_timedwait(&s->w_cv, &s->w_lock, &ts);
        if (s->w_stop)
            break;
        pthread_mutex_unlock(&s->w_lock);

        v.n = 0;
        pthread_mutex_lock(&s->r_lock);
        int64_t version = data_version(version_stmt);
        if (version != seen_version &&
            step_states(states_stmt, store_wall_ms(), collect_state, &v) == SQLITE_OK)
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
