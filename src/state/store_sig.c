/*
 * Thought signatures in the store (the sig_cache table; state/sigcache.c is their user):
 * put into the pending signatures, looked up there and then through the reading connection,
 * written in the store thread's transaction and pruned to the cache's bound.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "base/err.h"
#include "state/store_internal.h"

int
store_write_sig(struct skiff_store *s, const struct sig_row *r)
{
    sqlite3_stmt *stmt = s->put_sig;
    sqlite3_bind_text(stmt, 1, r->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 2, r->sig, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 3, r->updated_ms);
    int rc = store_run(stmt);
    sqlite3_clear_bindings(stmt); /* the strings are freed after the write */
    return rc;
}

/*
 * Keeps sig_cache at its bound: the oldest rows past sig_max go. The delete walks the
 * table's index, so it runs when an eighth of the bound was written since the last one (and
 * once after open), not per batch: the table holds at most sig_max * 9/8 rows. Inside the
 * write transaction; a failure of the database fails the attempt, one of the statement is
 * left for the next prune.
 */
void
store_prune_sigs(struct skiff_store *s, struct attempt *a)
{
    s->sigs_since_prune += s->w_sigs.n;
    size_t max = s->w_sig_max;
    if (!max || (s->pruned && s->sigs_since_prune * 8 < max))
        return;
    sqlite3_bind_int64(s->prune_sigs, 1, (sqlite3_int64)max);
    int rc = store_run(s->prune_sigs);
    if (rc == SQLITE_OK) {
        s->sigs_since_prune = 0;
        s->pruned = 1;
        return;
    }
    store_attempt_error(s, a, "prune");
    if (store_retryable(rc))
        a->failed = 1;
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
    r.hash = store_row_hash(ROW_SIG, &r);
    pthread_mutex_lock(&s->q_lock);
    int refused = store_merge_sig(&s->sigs, &r, 0) != 0;
    int first = refused && s->dropped_burst++ == 0;
    s->stats.rows_lost += refused;
    pthread_cond_signal(&s->wake);
    pthread_mutex_unlock(&s->q_lock);
    if (first)
        store_log_refused(s);
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
    key.hash = store_row_hash(ROW_SIG, &key);
    pthread_mutex_lock(&s->q_lock);
    struct row *have = store_table_get(&s->sigs, &key, 0, NULL);
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
