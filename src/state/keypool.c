#include "state/keypool.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/hash.h"
#include "base/log.h"

/*
 * Health is kept per (key, model slot). A slot belongs to one model name, compared whole, so
 * two models never share health. Known models (skiff_keypool_pin, when their slot is made)
 * keep their slot for good, up to MAX_PINNED of them; any other name (a model newer than
 * what is known, or whatever a client typed) takes one of the other slots, and when none is
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
    int pinned;    /* a known model (skiff_keypool_pin): never evicted */
};

struct skiff_keypool {
    const struct skiff_config *cfg;
    struct skiff_state_backend be; /* every operation NULL when there is none */
    int subscribed;
    int64_t (*day)(int64_t now_ms);
    void (*date)(int64_t now_ms, char out[11]);
    pthread_mutex_t mu;
    size_t nkeys;
    struct key *keys;
    struct mslot models[MAX_MODELS];
    size_t nmodels; /* slots ever used: [0, nmodels) */
    size_t npinned;
    uint64_t model_seq;            /* orders the slots by last use */
    skiff_keypool_known_fn *known; /* what pins a slot; NULL: nothing is pinned */
    void *known_ud;
    struct health *health; /* [nkeys][MAX_MODELS] */
    uint64_t seq;
    int64_t pool_rest_until_ms;
    int64_t usage_day;   /* the day usage_date names (backend call site) */
    char usage_date[11]; /* "2026-11-23", formatted once a day, not per request */
};

static int64_t
utc_day(int64_t now_ms)
{
    return now_ms >= 0 ? now_ms / 86400000 : (now_ms - 86399999) / 86400000;
}

static void
utc_date(int64_t now_ms, char out[11])
{
    time_t t = (time_t)(utc_day(now_ms) * 86400);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 11, "%Y-%m-%d", &tm);
}

static void on_remote_state(const struct skiff_key_state *st, void *ud);

struct skiff_keypool *
skiff_keypool_open(const struct skiff_config *cfg, const struct skiff_keypool_opts *opts)
{
    struct skiff_keypool *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->cfg = cfg;
    if (opts && opts->backend)
        p->be = *opts->backend;
    p->day = opts && opts->day ? opts->day : utc_day;
    p->date = opts && opts->date ? opts->date : utc_date;
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
        skiff_state_key_id(cfg->keys[i].key, p->keys[i].id);
    pthread_mutex_init(&p->mu, NULL);
    /* Other instances' states can arrive from here on, on the backend's thread. */
    if (p->be.subscribe && p->be.unsubscribe)
        p->subscribed = p->be.subscribe(p->be.impl, on_remote_state, p) == 0;
    return p;
}

void
skiff_keypool_free(struct skiff_keypool *p)
{
    if (!p)
        return;
    if (p->subscribed)
        p->be.unsubscribe(p->be.impl);
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
    int pin = p->known && p->npinned < MAX_PINNED && p->known(p->known_ud, model, len);
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
skiff_keypool_pin(struct skiff_keypool *p, skiff_keypool_known_fn *known, void *ud)
{
    pthread_mutex_lock(&p->mu);
    p->known = known;
    p->known_ud = ud;
    for (size_t i = 0; known && i < p->nmodels && p->npinned < MAX_PINNED; i++) {
        struct mslot *m = &p->models[i];
        if (!m->pinned && known(ud, m->name, strlen(m->name))) {
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

static void log_health(const struct skiff_keypool *p, size_t key, const char *model,
                       const char *what, int64_t until_ms, int64_t now_ms, const char *reason,
                       const char *from);

/*
 * Merges a state from the backend into the pool, with the lock held: the later rest wins,
 * retired if either side says so. Returns what changed, for the caller's log: 0 nothing,
 * else 1 and *what / *until set.
 */
static int
merge_locked(struct skiff_keypool *p, const struct skiff_key_state *st, int64_t now_ms, size_t *key,
             const char **what, int64_t *until)
{
    int k = find_key(p, st->key_id);
    if (k < 0)
        return 0; /* a key not (or no longer) configured here */
    *key = (size_t)k;
    *until = 0;
    if (strcmp(st->model, "*") == 0) {
        struct key *c = &p->keys[k];
        if (!st->retired || c->retired)
            return 0;
        c->retired = 1;
        snprintf(c->reason, sizeof c->reason, "%s", st->reason);
        *what = "retired";
        return 1;
    }
    long slot = model_slot(p, st->model, now_ms);
    if (slot < 0)
        return 0;
    struct health *h = health_of(p, (size_t)k, (size_t)slot);
    int changed = 0;
    if (st->rest_until_ms > h->rest_until_ms) {
        h->rest_until_ms = st->rest_until_ms;
        /* A rest already over changes nothing anyone sees. */
        if (st->rest_until_ms > now_ms && !h->retired) {
            *what = "resting";
            *until = st->rest_until_ms;
            changed = 1;
        }
    }
    if (st->retired && !h->retired) {
        h->retired = 1;
        *what = "retired";
        *until = 0;
        changed = 1;
    }
    return changed;
}

void
skiff_keypool_merge(struct skiff_keypool *p, const struct skiff_key_state *st, int64_t now_ms)
{
    size_t key = 0;
    const char *what = NULL;
    int64_t until = 0;
    pthread_mutex_lock(&p->mu);
    if (merge_locked(p, st, now_ms, &key, &what, &until))
        log_health(p, key, st->model, what, until, now_ms, st->reason, "backend");
    pthread_mutex_unlock(&p->mu);
}

/* The backend's subscription: another instance put st. */
static void
on_remote_state(const struct skiff_key_state *st, void *ud)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    skiff_keypool_merge(ud, st, (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
}

/* A state read back at start: merged into a pool that knows nothing yet, silently. */
struct restoring {
    struct skiff_keypool *p;
    int64_t now_ms;
};

static void
restore_state(const struct skiff_key_state *st, void *ud)
{
    struct restoring *r = ud;
    size_t key;
    const char *what;
    int64_t until;
    merge_locked(r->p, st, r->now_ms, &key, &what, &until);
}

static void
restore_usage(const struct skiff_key_usage *u, void *ud)
{
    struct skiff_keypool *p = ((struct restoring *)ud)->p;
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
        skiff_state_key_id(cfg->keys[i].key, id);
        h = skiff_fnv1a64(h, id, 16);
    }
    snprintf(out, 17, "%016llx", (unsigned long long)h);
}

void
skiff_keypool_restore(struct skiff_keypool *p, int64_t now_ms)
{
    if (!p->be.load)
        return;
    char day[11];
    p->date(now_ms, day);
    int64_t today = p->day(now_ms);
    struct restoring r = {.p = p, .now_ms = now_ms};
    pthread_mutex_lock(&p->mu);
    p->be.load(p->be.impl, now_ms, day, restore_state, restore_usage, &r);
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

/* Puts the (key, model) state to the backend. Called with the lock held. */
static void
persist(struct skiff_keypool *p, size_t key, const char *model, int64_t rest_until, int retired,
        const char *reason, int64_t now_ms)
{
    if (!p->be.put_state)
        return;
    struct skiff_key_state st = {
        .rest_until_ms = rest_until, .retired = retired, .updated_ms = now_ms};
    memcpy(st.key_id, p->keys[key].id, sizeof st.key_id);
    snprintf(st.label, sizeof st.label, "%s", p->cfg->keys[key].label);
    snprintf(st.model, sizeof st.model, "%s", model);
    snprintf(st.reason, sizeof st.reason, "%s", reason ? reason : "");
    p->be.put_state(p->be.impl, &st);
}

static void
log_health(const struct skiff_keypool *p, size_t key, const char *model, const char *what,
           int64_t until_ms, int64_t now_ms, const char *reason, const char *from)
{
    struct skiff_log l;
    skiff_log_begin(&l, SKIFF_LOG_WARN, "key_health");
    skiff_log_str(&l, "key", p->cfg->keys[key].label);
    skiff_log_str(&l, "model", model);
    skiff_log_str(&l, "state", what);
    if (until_ms > 0)
        skiff_log_int(&l, "for_ms", until_ms - now_ms);
    skiff_log_str(&l, "reason", reason);
    if (from)
        skiff_log_str(&l, "from", from);
    skiff_log_end(&l);
}

void
skiff_keypool_report(struct skiff_keypool *p, int key, const char *model,
                     const struct skiff_key_verdict *v, int64_t tokens, int64_t now_ms)
{
    if (key < 0 || (size_t)key >= p->nkeys)
        return;
    size_t k = (size_t)key;
    const char *reason = v->reason;
    pthread_mutex_lock(&p->mu);
    struct key *c = &p->keys[k];
    if (c->inflight > 0)
        c->inflight--;
    /* Only what records something per model makes a slot: usage, rests, model retirements. */
    int per_model = v->outcome == SKIFF_KEY_SERVED || v->outcome == SKIFF_KEY_REST ||
                    v->outcome == SKIFF_KEY_RETIRE_MODEL;
    long slot = per_model ? model_slot(p, model, now_ms) : find_slot(p, model);
    struct health untracked = {0};
    struct health *h = slot >= 0 ? health_of(p, k, (size_t)slot) : &untracked;
    int64_t today = p->day(now_ms);
    if (h->day != today) {
        h->day = today;
        h->requests = 0;
        h->tokens = 0;
    }
    switch (v->outcome) {
    case SKIFF_KEY_SERVED:
    case SKIFF_KEY_NEUTRAL:
        break;
    case SKIFF_KEY_REST:
        if (v->rest_ms > 0) {
            int64_t until = now_ms + v->rest_ms;
            if (until > h->rest_until_ms)
                h->rest_until_ms = until;
            log_health(p, k, model, "resting", h->rest_until_ms, now_ms, reason, NULL);
            persist(p, k, model, h->rest_until_ms, 0, reason, now_ms);
        }
        break;
    case SKIFF_KEY_RETIRE_MODEL:
        h->retired = 1;
        log_health(p, k, model, "retired", 0, now_ms, reason, NULL);
        persist(p, k, model, 0, 1, reason, now_ms);
        break;
    case SKIFF_KEY_RETIRE_KEY:
        if (c->retired)
            break; /* several calls saw it (they wait for one probe): logged and kept once */
        c->retired = 1;
        snprintf(c->reason, sizeof c->reason, "%s", reason ? reason : "retired");
        log_health(p, k, "*", "retired", 0, now_ms, c->reason, NULL);
        persist(p, k, "*", 0, 1, c->reason, now_ms);
        break;
    }
    if (v->throttled) {
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
    if (v->outcome == SKIFF_KEY_SERVED) {
        h->requests++;
        h->tokens += tokens;
        if (p->be.add_usage) {
            struct skiff_key_usage u = {.requests = 1, .tokens = tokens};
            memcpy(u.key_id, c->id, sizeof u.key_id);
            memcpy(u.model, model, strnlen(model, sizeof u.model - 1));
            if (p->usage_day != today || !p->usage_date[0]) {
                p->date(now_ms, p->usage_date);
                p->usage_day = today;
            }
            memcpy(u.day, p->usage_date, sizeof u.day);
            p->be.add_usage(p->be.impl, &u);
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
            struct health *h = health_of(p, k, m);
            /* The model's row is cleared too: the backend would hand it back otherwise. */
            if (m < p->nmodels && (h->retired || h->rest_until_ms))
                persist(p, k, p->models[m].name, 0, 0, "enabled by an operator", 0);
            h->retired = 0;
            h->rest_until_ms = 0;
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
