#include "state/affinity.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/hash.h"
#include "state/store.h"

#define BUCKETS 65536 /* a power of two */

struct entry {
    struct entry *next;          /* in its bucket */
    struct entry *older, *newer; /* in insertion order, for the bound */
    int64_t expire_ms;
    char label[SKIFF_AFFINITY_MAX_LABEL];
    char *value; /* NULL: none */
    char name[]; /* NUL-terminated */
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct entry **table;
static struct entry *oldest, *newest;
static size_t count;
static struct skiff_store *store; /* NULL: memory only */

static size_t
bucket_of(const char *name)
{
    return (size_t)skiff_fnv1a64(SKIFF_FNV64_BASIS, name, strlen(name)) & (BUCKETS - 1);
}

/* Finds name's entry and the link that points at it. Called with mu held. */
static struct entry **
link_of(const char *name)
{
    struct entry **l = &table[bucket_of(name)];
    while (*l && strcmp((*l)->name, name) != 0)
        l = &(*l)->next;
    return l;
}

/* Unlinks *l from its bucket and the order, and frees it. Called with mu held. */
static void
drop(struct entry **l)
{
    struct entry *e = *l;
    *l = e->next;
    if (e->older)
        e->older->newer = e->newer;
    else
        oldest = e->newer;
    if (e->newer)
        e->newer->older = e->older;
    else
        newest = e->older;
    count--;
    free(e->value);
    free(e);
}

/* Puts the entry in memory; with only_new, an entry name already has wins (a put since a
 * store read is newer than what the store gave). */
static int
put_mem(const char *name, const char *label, const char *value, int64_t expire_ms, int only_new)
{
    size_t nl = strlen(name);
    if (nl == 0 || nl > SKIFF_AFFINITY_MAX_NAME || strlen(label) >= SKIFF_AFFINITY_MAX_LABEL ||
        (value && strlen(value) > SKIFF_AFFINITY_MAX_VALUE))
        return -1;
    struct entry *e = calloc(1, sizeof *e + nl + 1);
    if (!e)
        return -1;
    memcpy(e->name, name, nl + 1);
    snprintf(e->label, sizeof e->label, "%s", label);
    e->expire_ms = expire_ms;
    if (value && !(e->value = strdup(value))) {
        free(e);
        return -1;
    }
    pthread_mutex_lock(&mu);
    if (!table && !(table = calloc(BUCKETS, sizeof(struct entry *)))) {
        pthread_mutex_unlock(&mu);
        free(e->value);
        free(e);
        return -1;
    }
    struct entry **l = link_of(name);
    if (*l && only_new) {
        pthread_mutex_unlock(&mu);
        free(e->value);
        free(e);
        return 0;
    }
    if (*l)
        drop(l);
    while (count >= SKIFF_AFFINITY_MAX && oldest)
        drop(link_of(oldest->name));
    l = &table[bucket_of(name)];
    e->next = *l;
    *l = e;
    e->older = newest;
    if (newest)
        newest->newer = e;
    else
        oldest = e;
    newest = e;
    count++;
    pthread_mutex_unlock(&mu);
    return 0;
}

int
skiff_affinity_put(const char *name, const char *label, const char *value, int64_t expire_ms)
{
    if (put_mem(name, label, value, expire_ms, 0) != 0)
        return -1;
    pthread_mutex_lock(&mu);
    struct skiff_store *s = store;
    pthread_mutex_unlock(&mu);
    /* Memory is the truth while skiff runs; a write the store cannot queue costs nothing
     * here (the store counts and logs it). */
    if (s)
        skiff_store_put_owner(s, name, label, value, expire_ms);
    return 0;
}

int
skiff_affinity_get(const char *name, int64_t now_ms, char *label, size_t label_cap, char *value,
                   size_t value_cap)
{
    int rc = -1;
    struct skiff_store *s = NULL;
    pthread_mutex_lock(&mu);
    struct entry **l = table ? link_of(name) : NULL;
    if (l && *l && (*l)->expire_ms <= now_ms) {
        drop(l);
    } else if (l && *l) {
        snprintf(label, label_cap, "%s", (*l)->label);
        if (value)
            snprintf(value, value_cap, "%s", (*l)->value ? (*l)->value : "");
        rc = 0;
    }
    if (rc != 0)
        s = store;
    pthread_mutex_unlock(&mu);
    if (rc == 0 || !s)
        return rc;

    /* Another instance, or this one before a restart, may have made it. */
    char lb[SKIFF_AFFINITY_MAX_LABEL], v[SKIFF_AFFINITY_MAX_VALUE + 1];
    int64_t exp = 0;
    if (skiff_store_get_owner(s, name, now_ms, lb, sizeof lb, v, sizeof v, &exp) != 0)
        return -1;
    put_mem(name, lb, v[0] ? v : NULL, exp, 1);
    snprintf(label, label_cap, "%s", lb);
    if (value)
        snprintf(value, value_cap, "%s", v);
    return 0;
}

void
skiff_affinity_forget(const char *name)
{
    pthread_mutex_lock(&mu);
    struct entry **l = table ? link_of(name) : NULL;
    if (l && *l)
        drop(l);
    struct skiff_store *s = store;
    pthread_mutex_unlock(&mu);
    if (s)
        skiff_store_forget_owner(s, name);
}

void
skiff_affinity_init(struct skiff_store *s)
{
    pthread_mutex_lock(&mu);
    store = s;
    pthread_mutex_unlock(&mu);
}

void
skiff_affinity_fini(void)
{
    skiff_affinity_clear();
    pthread_mutex_lock(&mu);
    store = NULL;
    pthread_mutex_unlock(&mu);
}

void
skiff_affinity_clear(void)
{
    pthread_mutex_lock(&mu);
    while (oldest)
        drop(link_of(oldest->name));
    free(table);
    table = NULL;
    pthread_mutex_unlock(&mu);
}
