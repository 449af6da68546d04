#include "relay/keypool.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gemini/catalog.h"
#include "gemini/pacific.h"
#include "base/hash.h"
#include "base/log.h"
#include "store/store.h"

/*
 * Health is kept per (key, model slot). A slot belongs to one model name, compared whole, so
 * two models never share health. Models of the catalog (known when their slot is made)
 * keep their slot for good, up to MAX_PINNED of them; any other name (a model newer than
 * the catalog, or whatever a client typed) takes one of the other slots, and when none is
 * free the least recently used of those is emptied and reused, an idle one first. Acquiring
 * never makes a slot: a model with none is healthy everywhere. A name longer than
 * MAX_MODEL_NAME gets no slot, so nothing is recorded for it but key-wide retirements.
 */
#define MAX_MODELS 256
#define MAX_PINNED 192
#define MAX_MODEL_NAME 128

/* Health of one (key, model). */
struct health {
    int64_t rest_until_ms;
    int retired;
    int64_t day;      /* the Pacific day the counts below belong to */
    int64_t requests; /* today */
    int64_t tokens;
};

struct key {
    int retired; /* for every model */
    char reason[160];
    int inflight;
    uint64_t last_used; /* a pool-wide sequence number */
    int64_t last_429_ms;
    char id[17];
    int probing;       /* a probe of the key is running (skiff_keypool_probe_claim) */
    uint64_t probes;   /* probes ended */
    int probe_outcome; /* how the last one ended */
};

/* One model's slot in the health table. */
struct mslot {
    char name[MAX_MODEL_NAME + 1];
    uint64_t hash;
    uint64_t used; /* model_seq at the last use */
    int pinned;    /* a catalog model: never evicted */
};

struct skiff_keypool {
    const struct skiff_config *cfg;
    struct skiff_store *store;
    pthread_mutex_t mu;
    size_t nkeys;
    struct key *keys;
    struct mslot models[MAX_MODELS];
    size_t nmodels; /* slots ever used: [0, nmodels) */
    size_t npinned;
    uint64_t model_seq;              /* orders the slots by last use */
    const struct skiff_catalog *cat; /* what pins a slot; NULL: nothing is pinned */
    struct health *health;           /* [nkeys][MAX_MODELS] */
    uint64_t seq;
    int64_t pool_rest_until_ms;
    int64_t usage_day;   /* the Pacific day usage_date names (store call site) */
    char usage_date[11]; /* "2026-11-23", formatted once a day, not per request */
};

struct skiff_keypool *
skiff_keypool_new(const struct skiff_config *cfg, struct skiff_store *store)
{
    struct skiff_keypool *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->cfg = cfg;
    p->store = store;
    p->nkeys = cfg->nkeys;
    p->keys = calloc(p->nkeys ? p->nkeys : 1, sizeof *p->keys);
    p->health = calloc((p->nkeys ? p->nkeys : 1) * MAX_MODELS, sizeof *p->health);
    if (!p->keys || !p->health) {
        free(p->keys);
        free(p->health);
        free(p);
        return NULL;
    }
    for (size_t i = 0; i < p->nkeys; i++)
        skiff_store_key_id(cfg->keys[i].key, p->keys[i].id);
    pthread_mutex_init(&p->mu, NULL);
    return p;
}

void
skiff_keypool_free(struct skiff_keypool *p)
{
    if (!p)
        return;
    pthread_mutex_destroy(&p->mu);
    free(p->keys);
    free(p->health);
    free(p);
}

size_t
skiff_keypool_size(const struct skiff_keypool *p)
{
    return p->nkeys;
}

static struct health *health_of(struct skiff_keypool *p, size_t key, size_t slot);
static int64_t available_at(struct skiff_keypool *p, size_t key, long slot);

/* The slot of model, or -1. Called with the lock held. */
static long
find_slot(struct skiff_keypool *p, const char *model)
{
    size_t len = strnlen(model, MAX_MODEL_NAME + 1);
    if (len > MAX_MODEL_NAME)
        return -1;
    uint64_t h = skiff_fnv1a64(SKIFF_FNV64_BASIS, model, len);
    for (size_t i = 0; i < p->nmodels; i++) {
        struct mslot *m = &p->models[i];
        if (m->hash == h && strcmp(m->name, model) == 0) {
            m->used = ++p->model_seq;
            return (long)i;
        }
    }
    return -1;
}

/* Whether slot holds anything that matters at now: a rest not over, or a retirement. */
static int
slot_busy(struct skiff_keypool *p, size_t slot, int64_t now_ms)
{
    for (size_t k = 0; k < p->nkeys; k++) {
        struct health *h = health_of(p, k, slot);
        if (h->retired || h->rest_until_ms > now_ms)
            return 1;
    }
    return 0;
}

/*
 * The slot of model, made when new: a free slot, else the unpinned slot used least
 * recently (an idle one before one that holds a rest). -1 when the name is too long to be
 * tracked. Called with the lock held.
 */
static long
model_slot(struct skiff_keypool *p, const char *model, int64_t now_ms)
{
    long found = find_slot(p, model);
    if (found >= 0)
        return found;
    size_t len = strnlen(model, MAX_MODEL_NAME + 1);
    if (len > MAX_MODEL_NAME)
        return -1;
    struct skiff_model_info info;
    int pin = p->cat && p->npinned < MAX_PINNED && skiff_catalog_lookup(p->cat, model, len, &info);
    size_t slot;
    if (p->nmodels < MAX_MODELS) {
        slot = p->nmodels++;
    } else {
        long idle = -1, any = -1;
        for (size_t i = 0; i < MAX_MODELS; i++) {
            const struct mslot *m = &p->models[i];
            if (m->pinned)
                continue;
            if (any < 0 || m->used < p->models[any].used)
                any = (long)i;
            if (!slot_busy(p, i, now_ms) && (idle < 0 || m->used < p->models[idle].used))
                idle = (long)i;
        }
        slot = (size_t)(idle >= 0 ? idle : any); /* MAX_PINNED < MAX_MODELS: any >= 0 */
        for (size_t k = 0; k < p->nkeys; k++)
            *health_of(p, k, slot) = (struct health){0};
    }
    struct mslot *m = &p->models[slot];
    memcpy(m->name, model, len + 1);
    m->hash = skiff_fnv1a64(SKIFF_FNV64_BASIS, model, len);
    m->used = ++p->model_seq;
    m->pinned = pin;
    p->npinned += (size_t)pin;
    return (long)slot;
}

void
skiff_keypool_use_catalog(struct skiff_keypool *p, const struct skiff_catalog *cat)
{
    pthread_mutex_lock(&p->mu);
    p->cat = cat;
    for (size_t i = 0; cat && i < p->nmodels && p->npinned < MAX_PINNED; i++) {
        struct mslot *m = &p->models[i];
        struct skiff_model_info info;
        if (!m->pinned && skiff_catalog_lookup(cat, m->name, strlen(m->name), &info)) {
            m->pinned = 1;
            p->npinned++;
        }
    }
    pthread_mutex_unlock(&p->mu);
}

static struct health *
health_of(struct skiff_keypool *p, size_t key, size_t slot)
{
    return &p->health[key * MAX_MODELS + slot];
}

static int
find_key(const struct skiff_keypool *p, const char *id)
{
    for (size_t i = 0; i < p->nkeys; i++)
        if (strcmp(p->keys[i].id, id) == 0)
            return (int)i;
    return -1;
}

static void
restore_state(const struct skiff_key_state *st, void *ud)
{
    struct skiff_keypool *p = ud;
    int k = find_key(p, st->key_id);
    if (k < 0)
        return; /* a key no longer configured */
    if (strcmp(st->model, "*") == 0) {
        p->keys[k].retired = st->retired;
        snprintf(p->keys[k].reason, sizeof p->keys[k].reason, "%s", st->reason);
        return;
    }
    long slot = model_slot(p, st->model, 0);
    if (slot < 0)
        return;
    struct health *h = health_of(p, (size_t)k, (size_t)slot);
    h->rest_until_ms = st->rest_until_ms;
    h->retired = st->retired;
}

static void
restore_usage(const struct skiff_key_usage *u, void *ud)
{
    struct skiff_keypool *p = ud;
    int k = find_key(p, u->key_id);
    if (k < 0)
        return;
    long slot = model_slot(p, u->model, 0);
    if (slot < 0)
        return;
    struct health *h = health_of(p, (size_t)k, (size_t)slot);
    h->requests = u->requests;
    h->tokens = u->tokens;
}

void
skiff_keypool_fingerprint(const struct skiff_config *cfg, char out[17])
{
    uint64_t h = SKIFF_FNV64_BASIS;
    for (size_t i = 0; i < cfg->nkeys; i++) {
        char id[17];
        skiff_store_key_id(cfg->keys[i].key, id);
        h = skiff_fnv1a64(h, id, 16);
    }
    snprintf(out, 17, "%016llx", (unsigned long long)h);
}

void
skiff_keypool_restore(struct skiff_keypool *p, int64_t now_ms)
{
    if (!p->store)
        return;
    char day[11];
    skiff_pacific_date(now_ms, day);
    int64_t today = skiff_pacific_day(now_ms);
    pthread_mutex_lock(&p->mu);
    skiff_store_load(p->store, now_ms, day, restore_state, restore_usage, p);
    for (size_t k = 0; k < p->nkeys; k++)
        for (size_t m = 0; m < MAX_MODELS; m++)
            health_of(p, k, m)->day = today;
    pthread_mutex_unlock(&p->mu);
}

/* When key can serve slot again: now or earlier if it can, INT64_MAX if never. slot -1 (a
 * model with no slot) has no health of its own. */
static int64_t
available_at(struct skiff_keypool *p, size_t key, long slot)
{
    if (p->keys[key].retired)
        return INT64_MAX;
    if (slot < 0)
        return 0;
    struct health *h = health_of(p, key, (size_t)slot);
    if (h->retired)
        return INT64_MAX;
    return h->rest_until_ms;
}

/* The least busy usable key among all (only < 0) or key only alone. */
static int
acquire(struct skiff_keypool *p, int only, const char *model, int64_t now_ms, int64_t *back_at_ms)
{
    int best = -1;
    int64_t first_back = INT64_MAX;
    pthread_mutex_lock(&p->mu);
    long slot = find_slot(p, model);
    for (size_t k = only < 0 ? 0 : (size_t)only; k < p->nkeys && (only < 0 || k == (size_t)only);
         k++) {
        int64_t at = available_at(p, k, slot);
        if (at > now_ms) {
            if (at < first_back)
                first_back = at;
            continue;
        }
        struct key *c = &p->keys[k];
        if (best < 0 || c->inflight < p->keys[best].inflight ||
            (c->inflight == p->keys[best].inflight && c->last_used < p->keys[best].last_used))
            best = (int)k;
    }
    if (best >= 0 && p->pool_rest_until_ms > now_ms) {
        /* The whole pool is backing off; every healthy key comes back when it ends. */
        first_back = p->pool_rest_until_ms;
        best = -1;
    }
    if (best >= 0) {
        p->keys[best].inflight++;
        p->keys[best].last_used = ++p->seq;
    }
    pthread_mutex_unlock(&p->mu);
    *back_at_ms = first_back;
    return best;
}

int
skiff_keypool_acquire(struct skiff_keypool *p, const char *model, int64_t now_ms,
                      int64_t *back_at_ms)
{
    return acquire(p, -1, model, now_ms, back_at_ms);
}

int
skiff_keypool_acquire_only(struct skiff_keypool *p, int key, const char *model, int64_t now_ms,
                           int64_t *back_at_ms)
{
    if (key < 0 || (size_t)key >= p->nkeys) {
        *back_at_ms = INT64_MAX;
        return -1;
    }
    return acquire(p, key, model, now_ms, back_at_ms);
}

int
skiff_keypool_find(const struct skiff_keypool *p, const char *label)
{
    for (size_t k = 0; k < p->nkeys; k++)
        if (strcmp(p->cfg->keys[k].label, label) == 0)
            return (int)k;
    return -1;
}

/* Queues the (key, model) state for the store. Called with the lock held. */
static void
persist(struct skiff_keypool *p, size_t key, const char *model, int64_t rest_until, int retired,
        const char *reason, int64_t now_ms)
{
    if (!p->store)
        return;
    struct skiff_key_state st = {
        .rest_until_ms = rest_until, .retired = retired, .updated_ms = now_ms};
    memcpy(st.key_id, p->keys[key].id, sizeof st.key_id);
    snprintf(st.label, sizeof st.label, "%s", p->cfg->keys[key].label);
    snprintf(st.model, sizeof st.model, "%s", model);
    snprintf(st.reason, sizeof st.reason, "%s", reason ? reason : "");
    skiff_store_put_state(p->store, &st);
}

static void
log_health(const struct skiff_keypool *p, size_t key, const char *model, const char *what,
           int64_t until_ms, int64_t now_ms, const char *reason)
{
    struct skiff_log l;
    skiff_log_begin(&l, SKIFF_LOG_WARN, "key_health");
    skiff_log_str(&l, "key", p->cfg->keys[key].label);
    skiff_log_str(&l, "model", model);
    skiff_log_str(&l, "state", what);
    if (until_ms > 0)
        skiff_log_int(&l, "for_ms", until_ms - now_ms);
    skiff_log_str(&l, "reason", reason);
    skiff_log_end(&l);
}

/* A delay from the upstream in ms, cut to SKIFF_MAX_RETRY_DELAY_S; -1 for none (negative,
 * NaN). The conversion to an integer is defined for every double that comes in. */
static int64_t
delay_ms(double s)
{
    if (!(s >= 0))
        return -1;
    if (s > SKIFF_MAX_RETRY_DELAY_S)
        s = SKIFF_MAX_RETRY_DELAY_S;
    return (int64_t)(s * 1000);
}

void
skiff_keypool_release(struct skiff_keypool *p, int key, const char *model, enum skiff_fault fault,
                      double retry_delay_s, const char *reason, int64_t tokens, int64_t now_ms)
{
    if (key < 0 || (size_t)key >= p->nkeys)
        return;
    size_t k = (size_t)key;
    pthread_mutex_lock(&p->mu);
    struct key *c = &p->keys[k];
    if (c->inflight > 0)
        c->inflight--;
    /* Only what records something per model makes a slot: usage and quota verdicts. */
    int per_model = fault == SKIFF_FAULT_NONE ||
                    (fault >= SKIFF_FAULT_QUOTA_MINUTE && fault <= SKIFF_FAULT_QUOTA_OTHER);
    long slot = per_model ? model_slot(p, model, now_ms) : find_slot(p, model);
    struct health untracked = {0};
    struct health *h = slot >= 0 ? health_of(p, k, (size_t)slot) : &untracked;
    int64_t today = skiff_pacific_day(now_ms);
    if (h->day != today) {
        h->day = today;
        h->requests = 0;
        h->tokens = 0;
    }
    int64_t rest = 0;
    switch (fault) {
    case SKIFF_FAULT_NONE:
    case SKIFF_FAULT_CLIENT:
    case SKIFF_FAULT_TRANSIENT:
        break;
    case SKIFF_FAULT_QUOTA_MINUTE:
        /* RetryInfo's delay, at least a second; 60 s (the window) when it gave none. */
        rest = delay_ms(retry_delay_s) >= 1000 ? delay_ms(retry_delay_s)
               : delay_ms(retry_delay_s) >= 0  ? 1000
                                               : 60000;
        break;
    case SKIFF_FAULT_QUOTA_DAY:
        /* Whatever RetryInfo says: the daily quota comes back at midnight Pacific. */
        rest = skiff_pacific_next_midnight_ms(now_ms) - now_ms;
        break;
    case SKIFF_FAULT_QUOTA_OTHER:
        rest =
            delay_ms(retry_delay_s) > 0 ? delay_ms(retry_delay_s) : SKIFF_KEYPOOL_BARE_429_REST_MS;
        break;
    case SKIFF_FAULT_QUOTA_ZERO:
        h->retired = 1;
        log_health(p, k, model, "retired", 0, now_ms, reason);
        persist(p, k, model, 0, 1, reason, now_ms);
        break;
    case SKIFF_FAULT_KEY_INVALID:
    case SKIFF_FAULT_KEY_DENIED:
    case SKIFF_FAULT_KEY_REGION:
        if (c->retired)
            break; /* several calls saw it (they wait for one probe): logged and kept once */
        c->retired = 1;
        snprintf(c->reason, sizeof c->reason, "%s", reason ? reason : skiff_fault_name(fault));
        log_health(p, k, "*", "retired", 0, now_ms, c->reason);
        persist(p, k, "*", 0, 1, c->reason, now_ms);
        break;
    }
    if (rest > 0) {
        int64_t until = now_ms + rest;
        if (until > h->rest_until_ms)
            h->rest_until_ms = until;
        log_health(p, k, model, "resting", h->rest_until_ms, now_ms, reason);
        persist(p, k, model, h->rest_until_ms, 0, reason, now_ms);
    }
    if (fault == SKIFF_FAULT_QUOTA_MINUTE || fault == SKIFF_FAULT_QUOTA_OTHER) {
        /* Several keys throttled at once: the API is limiting us as a client, not a key. */
        c->last_429_ms = now_ms;
        size_t recent = 0;
        for (size_t i = 0; i < p->nkeys; i++)
            if (p->keys[i].last_429_ms &&
                now_ms - p->keys[i].last_429_ms < SKIFF_KEYPOOL_STORM_WINDOW_MS)
                recent++;
        if (p->nkeys >= SKIFF_KEYPOOL_STORM_KEYS && recent >= SKIFF_KEYPOOL_STORM_KEYS &&
            p->pool_rest_until_ms < now_ms) {
            p->pool_rest_until_ms = now_ms + SKIFF_KEYPOOL_STORM_REST_MS;
            skiff_log_msg(SKIFF_LOG_WARN, "pool_backoff",
                          "several keys were throttled within a second: the whole pool rests");
        }
    }
    if (fault == SKIFF_FAULT_NONE) {
        h->requests++;
        h->tokens += tokens;
        if (p->store) {
            struct skiff_key_usage u = {.requests = 1, .tokens = tokens};
            memcpy(u.key_id, c->id, sizeof u.key_id);
            memcpy(u.model, model, strnlen(model, sizeof u.model - 1));
            if (p->usage_day != today || !p->usage_date[0]) {
                skiff_pacific_date(now_ms, p->usage_date);
                p->usage_day = today;
            }
            memcpy(u.day, p->usage_date, sizeof u.day);
            skiff_store_add_usage(p->store, &u);
        }
    }
    pthread_mutex_unlock(&p->mu);
}

size_t
skiff_keypool_usable(struct skiff_keypool *p)
{
    size_t n = 0;
    pthread_mutex_lock(&p->mu);
    for (size_t k = 0; k < p->nkeys; k++)
        n += !p->keys[k].retired;
    pthread_mutex_unlock(&p->mu);
    return n;
}

int
skiff_keypool_enable(struct skiff_keypool *p, const char *label)
{
    int rc = -1;
    pthread_mutex_lock(&p->mu);
    for (size_t k = 0; k < p->nkeys; k++) {
        if (strcmp(p->cfg->keys[k].label, label) != 0)
            continue;
        p->keys[k].retired = 0;
        p->keys[k].reason[0] = '\0';
        for (size_t m = 0; m < MAX_MODELS; m++) {
            health_of(p, k, m)->retired = 0;
            health_of(p, k, m)->rest_until_ms = 0;
        }
        persist(p, k, "*", 0, 0, "enabled by an operator", 0);
        rc = 0;
    }
    pthread_mutex_unlock(&p->mu);
    return rc;
}

const char *
skiff_keypool_status(struct skiff_keypool *p, int key, const char *model, int64_t now_ms)
{
    pthread_mutex_lock(&p->mu);
    int64_t at = available_at(p, (size_t)key, find_slot(p, model));
    pthread_mutex_unlock(&p->mu);
    return at == INT64_MAX ? "retired" : at > now_ms ? "resting" : "ok";
}

const char *
skiff_keypool_label(const struct skiff_keypool *p, int key)
{
    if (key < 0 || (size_t)key >= p->nkeys)
        return "none";
    return p->cfg->keys[key].label;
}

const char *
skiff_keypool_secret(const struct skiff_keypool *p, int key)
{
    return p->cfg->keys[key].key;
}

int
skiff_keypool_leaks(const struct skiff_keypool *p, const char *data, size_t len)
{
    for (size_t i = 0; i < p->nkeys; i++) {
        const char *k = p->cfg->keys[i].key;
        if (memmem(data, len, k, strlen(k)))
            return 1;
    }
    return 0;
}

void
skiff_keypool_redact(const struct skiff_keypool *p, char *data, size_t len)
{
    for (size_t i = 0; i < p->nkeys; i++) {
        const char *k = p->cfg->keys[i].key;
        size_t kl = strlen(k);
        if (!kl)
            continue;
        /* The search goes on after each hit: a key that contains '*' must not be found
         * again in its own mask. */
        char *from = data, *end = data + len, *hit;
        while ((hit = memmem(from, (size_t)(end - from), k, kl))) {
            memset(hit, '*', kl);
            from = hit + kl;
        }
    }
}

enum skiff_keypool_probe
skiff_keypool_probe_claim(struct skiff_keypool *p, int key, uint64_t *gen)
{
    enum skiff_keypool_probe rc = SKIFF_KEYPOOL_PROBE_RETIRED;
    if (key < 0 || (size_t)key >= p->nkeys)
        return rc;
    pthread_mutex_lock(&p->mu);
    struct key *c = &p->keys[key];
    *gen = c->probes;
    if (!c->retired) {
        rc = c->probing ? SKIFF_KEYPOOL_PROBE_WAIT : SKIFF_KEYPOOL_PROBE_RUN;
        c->probing = 1;
    }
    pthread_mutex_unlock(&p->mu);
    return rc;
}

void
skiff_keypool_probe_end(struct skiff_keypool *p, int key, int outcome)
{
    if (key < 0 || (size_t)key >= p->nkeys)
        return;
    pthread_mutex_lock(&p->mu);
    struct key *c = &p->keys[key];
    c->probing = 0;
    c->probe_outcome = outcome;
    c->probes++;
    pthread_mutex_unlock(&p->mu);
}

int
skiff_keypool_probe_outcome(struct skiff_keypool *p, int key, uint64_t gen, int *outcome)
{
    int ended = 0;
    if (key < 0 || (size_t)key >= p->nkeys)
        return 1;
    pthread_mutex_lock(&p->mu);
    const struct key *c = &p->keys[key];
    if (c->probes != gen) {
        ended = 1;
        *outcome = c->probe_outcome;
    }
    pthread_mutex_unlock(&p->mu);
    return ended;
}
