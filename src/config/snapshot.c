/*
 * Config snapshots: a loaded struct skiff_config is immutable and reference-counted, so that a
 * reload can put a new one in place while requests still hold the old one; the old one is
 * freed when its last holder lets go. struct skiff_config_current is the place a reload swaps.
 */
#include <pthread.h>
#include <stdlib.h>

#include "config/config.h"
#include "config/loader.h"

const struct skiff_config *
skiff_config_ref(const struct skiff_config *cfg)
{
    if (cfg) {
        /* The count is the one mutable part of a snapshot; every holder may touch it. */
        struct skiff_config *c = (struct skiff_config *)cfg;
        __atomic_add_fetch(&c->refs, 1, __ATOMIC_RELAXED);
    }
    return cfg;
}

void
skiff_config_unref(const struct skiff_config *cfg)
{
    if (!cfg)
        return;
    struct skiff_config *c = (struct skiff_config *)cfg;
    /* Release orders this holder's reads before the free; acquire, the free after them all. */
    if (__atomic_sub_fetch(&c->refs, 1, __ATOMIC_ACQ_REL) == 0)
        cfg_destroy(c);
}

void
skiff_config_free(struct skiff_config *cfg)
{
    skiff_config_unref(cfg);
}

struct skiff_config_current {
    pthread_mutex_t lock;
    const struct skiff_config *cfg; /* one reference, owned */
};

struct skiff_config_current *
skiff_config_current_new(struct skiff_config *cfg)
{
    struct skiff_config_current *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    pthread_mutex_init(&c->lock, NULL);
    c->cfg = cfg;
    return c;
}

const struct skiff_config *
skiff_config_current_get(struct skiff_config_current *c)
{
    pthread_mutex_lock(&c->lock);
    const struct skiff_config *cfg = skiff_config_ref(c->cfg);
    pthread_mutex_unlock(&c->lock);
    return cfg;
}

void
skiff_config_current_set(struct skiff_config_current *c, struct skiff_config *cfg)
{
    pthread_mutex_lock(&c->lock);
    const struct skiff_config *old = c->cfg;
    c->cfg = cfg;
    pthread_mutex_unlock(&c->lock);
    skiff_config_unref(old);
}

void
skiff_config_current_free(struct skiff_config_current *c)
{
    if (!c)
        return;
    skiff_config_unref(c->cfg);
    pthread_mutex_destroy(&c->lock);
    free(c);
}
