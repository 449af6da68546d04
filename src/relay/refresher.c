#include "relay/refresher.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/clock.h"
#include "base/log.h"
#include "relay/fetch.h"

struct skiff_refresher {
    struct skiff_catalog *cat;
    const struct skiff_config *cfg;
    struct skiff_keypool *pool;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    atomic_int stop; /* set under mu (for cv) and polled by the refresh's call (relay/fetch.h) */
};

static void
refresh_once(struct skiff_refresher *r)
{
    int64_t now = skiff_now_ms();
    for (size_t k = 0; k < skiff_keypool_size(r->pool); k++) {
        if (strcmp(skiff_keypool_status(r->pool, (int)k, "models", now), "retired") == 0)
            continue;
        char err[256];
        int n = skiff_catalog_refresh_until(r->cat, r->cfg->base_url,
                                            skiff_keypool_secret(r->pool, (int)k), r->cfg->proxy,
                                            r->cfg->ca_file, &r->stop, err, sizeof err);
        if (n < 0 && atomic_load(&r->stop))
            return; /* stopped: not a failure worth a warning */
        struct skiff_log l;
        skiff_log_begin(&l, n >= 0 ? SKIFF_LOG_INFO : SKIFF_LOG_WARN, "catalog_refresh");
        skiff_log_str(&l, "key", skiff_keypool_label(r->pool, (int)k));
        if (n >= 0)
            skiff_log_int(&l, "models", n);
        else
            skiff_log_str(&l, "error", err);
        skiff_log_end(&l);
        return; /* one try per round: a failure keeps the previous table */
    }
}

static void *
refresher_main(void *arg)
{
    struct skiff_refresher *r = arg;
    pthread_mutex_lock(&r->mu);
    while (!r->stop) {
        pthread_mutex_unlock(&r->mu);
        refresh_once(r);
        pthread_mutex_lock(&r->mu);
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += r->cfg->catalog_refresh_s;
        while (!r->stop && pthread_cond_timedwait(&r->cv, &r->mu, &until) != ETIMEDOUT)
            ;
    }
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

struct skiff_refresher *
skiff_refresher_start(struct skiff_catalog *cat, const struct skiff_config *cfg,
                      struct skiff_keypool *pool)
{
    if (cfg->catalog_refresh_s <= 0 || skiff_keypool_size(pool) == 0)
        return NULL;
    struct skiff_refresher *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->cat = cat;
    r->cfg = cfg;
    r->pool = pool;
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
    if (pthread_create(&r->thread, NULL, refresher_main, r) != 0) {
        pthread_cond_destroy(&r->cv);
        pthread_mutex_destroy(&r->mu);
        free(r);
        return NULL;
    }
    return r;
}

void
skiff_refresher_stop(struct skiff_refresher *r)
{
    if (!r)
        return;
    pthread_mutex_lock(&r->mu);
    atomic_store(&r->stop, 1);
    pthread_cond_signal(&r->cv);
    pthread_mutex_unlock(&r->mu);
    pthread_join(r->thread, NULL);
    pthread_cond_destroy(&r->cv);
    pthread_mutex_destroy(&r->mu);
    free(r);
}
