/*
 * The producers (skiff_store_put_state, skiff_store_add_usage) and the store thread that
 * writes what they leave in the pending tables: one transaction per attempt, rows put back
 * and retried with a backoff when the database refuses it as a whole, a run of failures
 * logged once.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

#include "base/log.h"
#include "state/store_internal.h"

/*
 * Binds a fixed-size string field of a row. The bound is the field's size, so a caller that
 * filled the array without a terminating NUL gets a cut string, not a read past the struct.
 */
static int
bind_field(sqlite3_stmt *stmt, int idx, const char *field, size_t size)
{
    return sqlite3_bind_text(stmt, idx, field, (int)strnlen(field, size), SQLITE_TRANSIENT);
}

/* Steps a statement that returns no rows and resets it for its next use. */
int
store_run(sqlite3_stmt *stmt)
{
    int rc = sqlite3_step(stmt);
    sqlite3_reset(stmt);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? SQLITE_OK : rc;
}

int64_t
store_mono_ms(void)
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
    return store_run(stmt);
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
    return store_run(stmt);
}

/*
 * Whether a failure is about the database as a whole (another writer, a full disk, a
 * read-only file, I/O) and so worth retrying, rather than about one row (a missing table, a
 * constraint), which would fail the same way every time.
 */
int
store_retryable(int rc)
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

void
store_attempt_error(struct skiff_store *s, struct attempt *a, const char *step)
{
    if (a->error[0])
        return;
    a->step = step;
    snprintf(a->error, sizeof a->error, "%s", sqlite3_errmsg(s->db));
}

/*
 * Writes the rows being written in one transaction. A row refused for a reason of its own
 * is skipped and counted lost, so it does not cost the others; a failure of the database
 * as a whole (BEGIN, COMMIT, or a row failing with a retryable code) rolls everything back,
 * to be tried again. Called on the store thread with db_lock held.
 */
/* One row's write: a refusal worth retrying fails the attempt, any other costs that row. */
static void
note_write(struct skiff_store *s, struct attempt *a, int rc)
{
    if (rc == SQLITE_OK)
        return;
    store_attempt_error(s, a, "write");
    if (store_retryable(rc))
        a->failed = 1;
    else
        a->bad++;
}

static void
write_rows(struct skiff_store *s, struct attempt *a)
{
    a->rows = s->w_states.n + s->w_usage.n + s->w_sigs.n + s->w_affs.n;
    int rc = store_run(s->begin);
    if (rc != SQLITE_OK) {
        store_attempt_error(s, a, "begin");
        a->failed = 1;
        return;
    }
    for (size_t i = 0; i < s->w_states.n && !a->failed; i++)
        note_write(s, a, write_state(s, &s->w_states.rows[i].st));
    for (size_t i = 0; i < s->w_usage.n && !a->failed; i++)
        note_write(s, a, write_usage(s, &s->w_usage.rows[i].u));
    for (size_t i = 0; i < s->w_sigs.n && !a->failed; i++)
        note_write(s, a, store_write_sig(s, &s->w_sigs.rows[i].sg));
    for (size_t i = 0; i < s->w_affs.n && !a->failed; i++)
        note_write(s, a, store_write_aff(s, &s->w_affs.rows[i].af));
    if (!a->failed && s->w_sigs.n)
        store_prune_sigs(s, a);
    if (!a->failed && s->w_affs.n)
        store_prune_affs(s);
    if (!a->failed && store_run(s->commit) != SQLITE_OK) {
        store_attempt_error(s, a, "commit");
        a->failed = 1;
    }
    /* A failed statement or COMMIT may leave the transaction open; close it. */
    if (a->failed && !sqlite3_get_autocommit(s->db))
        store_run(s->rollback);
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
        store_table_clear(&s->w_states);
        store_table_clear(&s->w_usage);
        store_table_free_sigs(&s->w_sigs);
        store_table_clear(&s->w_sigs);
        store_table_free_sigs(&s->w_affs);
        store_table_clear(&s->w_affs);
        return;
    }
    s->stats.write_failures++;
    s->backoff_ms = s->backoff_ms ? s->backoff_ms * 2 : RETRY_MIN_MS;
    if (s->backoff_ms > RETRY_MAX_MS)
        s->backoff_ms = RETRY_MAX_MS;
    s->retry_at_ms = now + s->backoff_ms;
    for (size_t i = 0; i < s->w_states.n; i++)
        if (store_merge_state(&s->states, &s->w_states.rows[i], 1) != 0)
            s->stats.rows_lost++;
    for (size_t i = 0; i < s->w_usage.n; i++)
        if (store_merge_usage(&s->usage, &s->w_usage.rows[i]) != 0)
            s->stats.rows_lost++;
    for (size_t i = 0; i < s->w_sigs.n; i++)
        if (store_merge_sig(&s->sigs, &s->w_sigs.rows[i], 1) != 0)
            s->stats.rows_lost++;
    for (size_t i = 0; i < s->w_affs.n; i++)
        if (store_merge_aff(&s->affs, &s->w_affs.rows[i], 1) != 0)
            s->stats.rows_lost++;
    if (s->usage.n && !s->usage_due_ms)
        s->usage_due_ms = now;
    store_table_clear(&s->w_states);
    store_table_clear(&s->w_usage);
    store_table_clear(&s->w_sigs); /* its strings moved into s->sigs, or were freed */
    store_table_clear(&s->w_affs);
}

static void
swap_tables(struct table *a, struct table *b)
{
    struct table t = *a;
    *a = *b;
    *b = t;
}

void
store_deadline_at(struct timespec *ts, int64_t mono)
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
void *
store_main(void *arg)
{
    struct skiff_store *s = arg;
    pthread_mutex_lock(&s->q_lock);
    for (;;) {
        int64_t now = store_mono_ms();
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
                store_deadline_at(&ts, next);
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
        now = store_mono_ms();
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

/* Logs the first row a full table refused; the store thread reports the count later. */
void
store_log_refused(struct skiff_store *s)
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
    r.hash = store_row_hash(ROW_STATE, &r);
    pthread_mutex_lock(&s->q_lock);
    int refused = store_merge_state(&s->states, &r, 0) != 0;
    int first = refused && s->dropped_burst++ == 0;
    s->stats.rows_lost += refused;
    pthread_cond_signal(&s->wake);
    pthread_mutex_unlock(&s->q_lock);
    if (first)
        store_log_refused(s);
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
    r.hash = store_row_hash(ROW_USAGE, &r);
    pthread_mutex_lock(&s->q_lock);
    int was_empty = s->usage.n == 0;
    int refused = store_merge_usage(&s->usage, &r) != 0;
    int first = refused && s->dropped_burst++ == 0;
    s->stats.rows_lost += refused;
    if (was_empty && !refused) {
        if (!s->usage_due_ms)
            s->usage_due_ms = store_mono_ms() + USAGE_FLUSH_MS;
        pthread_cond_signal(&s->wake);
    }
    pthread_mutex_unlock(&s->q_lock);
    if (first)
        store_log_refused(s);
}
