/*
 * Owners of stored resources in the store (the affinity table; state/affinity.c is their
 * user): put into the pending owners, looked up there and then through the reading
 * connection, written (or deleted) in the store thread's transaction, expired rows pruned.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "base/err.h"
#include "state/store_internal.h"

int
store_write_aff(struct skiff_store *s, const struct aff_row *r)
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
    int rc = store_run(stmt);
    sqlite3_clear_bindings(stmt); /* the strings are freed after the write */
    return rc;
}

/* Deletes the owners whose expiry passed, at most once a minute (and at the first write of
 * owners after open), inside the write transaction; a failure waits for the next one. */
void
store_prune_affs(struct skiff_store *s)
{
    int64_t now = store_wall_ms();
    if (s->aff_pruned_ms && now - s->aff_pruned_ms < 60000)
        return;
    sqlite3_bind_int64(s->prune_aff, 1, now);
    if (store_run(s->prune_aff) == SQLITE_OK)
        s->aff_pruned_ms = now;
}

/* Queues r (which gives its strings up) for the store thread, like a signature. */
static int
queue_aff(struct skiff_store *s, struct row *r)
{
    r->hash = store_row_hash(ROW_AFF, r);
    pthread_mutex_lock(&s->q_lock);
    int refused = store_merge_aff(&s->affs, r, 0) != 0;
    int first = refused && s->dropped_burst++ == 0;
    s->stats.rows_lost += refused;
    pthread_cond_signal(&s->wake);
    pthread_mutex_unlock(&s->q_lock);
    if (first)
        store_log_refused(s);
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
        store_aff_row_free(&r.af);
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
    key.hash = store_row_hash(ROW_AFF, &key);
    pthread_mutex_lock(&s->q_lock);
    struct row *have = store_table_get(&s->affs, &key, 0, NULL);
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
