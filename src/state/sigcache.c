#include "state/sigcache.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/err.h"
#include "base/hash.h"
#include "store/store.h"

/*
 * A hash table of nodes (chained, a power of two of buckets, sized once from max_entries)
 * threaded on a doubly linked list from the most to the least recently used. Everything is
 * guarded by `mu`; the store is called with `mu` let go (its put only takes its own queue
 * lock, its get may read the disk).
 */

struct node {
    struct node *chain; /* the next node of the bucket */
    struct node *newer, *older;
    uint64_t hash;
    size_t bytes; /* id + sig, what counts against MAX_BYTES */
    char *sig;
    char id[]; /* NUL-terminated */
};

struct cache {
    int ready;
    size_t max_entries;
    struct skiff_store *store;
    struct node **buckets;
    size_t nbuckets; /* a power of two */
    struct node *newest, *oldest;
    struct skiff_sigcache_stats stats;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct cache C;

static uint64_t
id_hash(const char *id, size_t len)
{
    return skiff_fnv1a64(SKIFF_FNV64_BASIS, id, len);
}

/* The node of id, or NULL; with prev set, *prev is the bucket pointer that points at it. */
static struct node *
find(const char *id, uint64_t h, struct node ***prev)
{
    struct node **p = &C.buckets[h & (C.nbuckets - 1)];
    for (; *p; p = &(*p)->chain) {
        if ((*p)->hash == h && strcmp((*p)->id, id) == 0) {
            if (prev)
                *prev = p;
            return *p;
        }
    }
    return NULL;
}

static void
list_unlink(struct node *n)
{
    if (n->newer)
        n->newer->older = n->older;
    else
        C.newest = n->older;
    if (n->older)
        n->older->newer = n->newer;
    else
        C.oldest = n->newer;
    n->newer = n->older = NULL;
}

static void
list_push_newest(struct node *n)
{
    n->older = C.newest;
    n->newer = NULL;
    if (C.newest)
        C.newest->newer = n;
    C.newest = n;
    if (!C.oldest)
        C.oldest = n;
}

/* Takes n out of the table and the list and frees it. */
static void
drop(struct node *n)
{
    struct node **p = NULL;
    find(n->id, n->hash, &p);
    *p = n->chain;
    list_unlink(n);
    C.stats.entries--;
    C.stats.bytes -= n->bytes;
    free(n->sig);
    free(n);
}

/* Drops the least recently used until both bounds hold. */
static void
evict(void)
{
    while (C.oldest &&
           (C.stats.entries > C.max_entries || C.stats.bytes > SKIFF_SIGCACHE_MAX_BYTES)) {
        drop(C.oldest);
        C.stats.evictions++;
    }
}

/*
 * Sets id's signature in memory, taking ownership of sig (a malloc'd string of sig_len
 * bytes); id is copied. Called with mu held. Returns 0 or SKIFF_ENOMEM (sig freed).
 */
static int
set_locked(const char *id, size_t id_len, char *sig, size_t sig_len)
{
    uint64_t h = id_hash(id, id_len);
    struct node *n = find(id, h, NULL);
    if (n) {
        free(n->sig);
        n->sig = sig;
        C.stats.bytes = C.stats.bytes - n->bytes + id_len + sig_len;
        n->bytes = id_len + sig_len;
        list_unlink(n);
        list_push_newest(n);
        evict();
        return 0;
    }
    n = malloc(sizeof *n + id_len + 1);
    if (!n) {
        free(sig);
        return SKIFF_ENOMEM;
    }
    memcpy(n->id, id, id_len + 1);
    n->hash = h;
    n->sig = sig;
    n->bytes = id_len + sig_len;
    struct node **b = &C.buckets[h & (C.nbuckets - 1)];
    n->chain = *b;
    *b = n;
    list_push_newest(n);
    C.stats.entries++;
    C.stats.bytes += n->bytes;
    evict();
    return 0;
}

int
skiff_sigcache_init(size_t max_entries, struct skiff_store *store)
{
    if (max_entries == 0)
        return SKIFF_EINVAL;
    int rc = 0;
    pthread_mutex_lock(&mu);
    if (C.ready) {
        rc = SKIFF_EINVAL;
        goto out_unlock;
    }
    /* About one node per bucket when full; never more than 2^20 buckets (8 MiB). */
    size_t nb = 16;
    while (nb < max_entries && nb < ((size_t)1 << 20))
        nb <<= 1;
    C = (struct cache){0};
    C.buckets = calloc(nb, sizeof(struct node *));
    if (!C.buckets) {
        rc = SKIFF_ENOMEM;
        goto out_unlock;
    }
    C.nbuckets = nb;
    C.max_entries = max_entries;
    C.store = store;
    C.ready = 1;
out_unlock:
    pthread_mutex_unlock(&mu);
    if (rc == 0)
        skiff_store_sig_limit(store, max_entries);
    return rc;
}

void
skiff_sigcache_fini(void)
{
    pthread_mutex_lock(&mu);
    while (C.oldest)
        drop(C.oldest);
    free(C.buckets);
    C = (struct cache){0};
    pthread_mutex_unlock(&mu);
}

int
skiff_sigcache_put(const char *id, const char *sig)
{
    if (!id || !sig || !*id || !*sig)
        return SKIFF_EINVAL;
    size_t id_len = strnlen(id, SKIFF_SIGCACHE_MAX_ID + 1);
    size_t sig_len = strnlen(sig, SKIFF_SIGCACHE_MAX_SIG + 1);
    if (id_len > SKIFF_SIGCACHE_MAX_ID || sig_len > SKIFF_SIGCACHE_MAX_SIG)
        return SKIFF_ETOOBIG;
    /* The copy is made before the lock is taken: a signature can be KBs. */
    char *copy = malloc(sig_len + 1);
    if (!copy)
        return SKIFF_ENOMEM;
    memcpy(copy, sig, sig_len + 1);

    pthread_mutex_lock(&mu);
    if (!C.ready) {
        pthread_mutex_unlock(&mu);
        free(copy);
        return SKIFF_EINVAL;
    }
    struct skiff_store *store = C.store;
    int rc = set_locked(id, id_len, copy, sig_len);
    pthread_mutex_unlock(&mu);
    /* Memory is the truth while skiff runs; the store only its memory across restarts and
     * instances, so a write it cannot queue costs nothing here (the store counts it). */
    if (rc == 0 && store)
        skiff_store_put_sig(store, id, sig, skiff_now_ms());
    return rc;
}

char *
skiff_sigcache_get(const char *id)
{
    if (!id || !*id)
        return NULL;
    size_t id_len = strnlen(id, SKIFF_SIGCACHE_MAX_ID + 1);
    if (id_len > SKIFF_SIGCACHE_MAX_ID)
        return NULL; /* never put */
    uint64_t h = id_hash(id, id_len);
    char *out = NULL;

    pthread_mutex_lock(&mu);
    if (!C.ready) {
        pthread_mutex_unlock(&mu);
        return NULL;
    }
    struct node *n = find(id, h, NULL);
    if (n) {
        list_unlink(n);
        list_push_newest(n);
        out = strdup(n->sig);
        C.stats.hits += out != NULL;
        pthread_mutex_unlock(&mu);
        return out;
    }
    struct skiff_store *store = C.store;
    if (!store)
        C.stats.misses++;
    pthread_mutex_unlock(&mu);
    if (!store)
        return NULL;

    /* Another instance, or this one before a restart, may have put it. */
    out = skiff_store_get_sig(store, id);
    char *keep = out ? strdup(out) : NULL;
    pthread_mutex_lock(&mu);
    if (!C.ready) {
        free(keep);
    } else if (!out) {
        C.stats.misses++;
    } else {
        C.stats.store_hits++;
        /* A put since the read is newer than what the store gave: it wins. */
        if (keep && !find(id, h, NULL))
            set_locked(id, id_len, keep, strlen(keep));
        else
            free(keep);
    }
    pthread_mutex_unlock(&mu);
    return out;
}

void
skiff_sigcache_stats(struct skiff_sigcache_stats *out)
{
    pthread_mutex_lock(&mu);
    *out = C.stats;
    pthread_mutex_unlock(&mu);
}
