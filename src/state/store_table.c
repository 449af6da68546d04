/*
 * The store's pending tables: rows by key, dense, with open addressing over a power-of-two
 * slot array, grown by doubling, at most TABLE_MAX rows. A state replaces the row of its
 * (key, model), usage adds to the row of its (key, model, day), a signature replaces the
 * row of its id, an owner the row of its name. Not thread-safe: the caller holds q_lock (or owns
 * the table: the store thread's w_ tables).
 */
#include <stdlib.h>
#include <string.h>

#include "base/hash.h"
#include "state/store_internal.h"

uint64_t
store_row_hash(enum row_kind kind, const struct row *r)
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

void
store_aff_row_free(struct aff_row *r)
{
    free(r->name);
    free(r->label);
    free(r->value);
}

/* Frees the strings of a signature or owner table's rows (they stay in the table: clear it
 * next). */
void
store_table_free_sigs(struct table *t)
{
    for (size_t i = 0; t->kind == ROW_SIG && i < t->n; i++) {
        free(t->rows[i].sg.id);
        free(t->rows[i].sg.sig);
    }
    for (size_t i = 0; t->kind == ROW_AFF && i < t->n; i++)
        store_aff_row_free(&t->rows[i].af);
}

void
store_table_release(struct table *t)
{
    store_table_free_sigs(t);
    free(t->rows);
    free(t->slots);
    t->rows = NULL;
    t->slots = NULL;
    t->n = t->cap = t->nslots = 0;
}

/* Empties t, keeping its memory for the next rows. */
void
store_table_clear(struct table *t)
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
struct row *
store_table_get(struct table *t, const struct row *r, int add, int *added)
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
int
store_merge_state(struct table *t, const struct row *r, int keep_newer)
{
    int added = 0;
    struct row *have = store_table_get(t, r, 1, &added);
    if (!have)
        return -1;
    if (!added && !keep_newer)
        *have = *r;
    return 0;
}

/* Adds usage into t. Returns 0, or -1 when t is full. */
int
store_merge_usage(struct table *t, const struct row *r)
{
    int added = 0;
    struct row *have = store_table_get(t, r, 1, &added);
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
int
store_merge_sig(struct table *t, struct row *r, int keep_newer)
{
    int added = 0;
    struct row *have = store_table_get(t, r, 1, &added);
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

/* Like store_merge_sig, for an owner row. */
int
store_merge_aff(struct table *t, struct row *r, int keep_newer)
{
    int added = 0;
    struct row *have = store_table_get(t, r, 1, &added);
    if (added)
        return 0;
    struct aff_row drop = r->af;
    if (have && !keep_newer) {
        drop = have->af;
        have->af = r->af;
    }
    store_aff_row_free(&drop);
    return have ? 0 : -1;
}
