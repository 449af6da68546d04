#include "cli/serve.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/clock.h"
#include "config/config.h"
#include "gemini/catalog.h"
#include "base/log.h"
#include "doors/dispatch.h"
#include "relay/budget.h"
#include "relay/keypool.h"
#include "relay/refresher.h"
#include "server/server.h"
#include "state/affinity.h"
#include "state/sigcache.h"
#include "state/store.h"
#include "base/url.h"

static int
usage(void)
{
    fprintf(stderr, "usage: skiff serve [--config FILE]\n"
                    "  Relays the Gemini API. Without --config, defaults plus the environment\n"
                    "  (GEMINI_API_KEYS, SKIFF_TOKENS, SKIFF_LISTEN, SKIFF_GEMINI_BASE_URL).\n");
    return 2;
}

int
skiff_serve_main(int argc, char **argv)
{
    const char *path = NULL;
    for (int i = 1; i < argc; i++) {
        if (!skiff_config_arg(argc, argv, &i, &path))
            return usage();
    }

    char err[512];
    struct skiff_config *cfg = skiff_config_load(path, err, sizeof err);
    if (!cfg) {
        fprintf(stderr, "skiff: %s\n", err);
        return 1;
    }
    struct skiff_store *store = NULL;
    if (cfg->storage.sqlite && *cfg->storage.sqlite) {
        char fp[17];
        skiff_keypool_fingerprint(cfg, fp);
        store = skiff_store_open(cfg->storage.sqlite, fp, err, sizeof err);
        if (!store) {
            fprintf(stderr, "skiff: %s\n", err);
            skiff_config_free(cfg);
            return 1;
        }
    }
    struct skiff_keypool *pool = skiff_keypool_new(cfg, store);
    int sig_ok = skiff_sigcache_init(SKIFF_SIGCACHE_DEFAULT_MAX, store) == 0;
    skiff_affinity_init(store);
    struct skiff_budget *budget = skiff_budget_new(0.2, 5.0);
    if (pool)
        skiff_keypool_restore(pool, skiff_now_ms());
    struct skiff_catalog *cat = skiff_catalog_new();
    if (pool && cat)
        skiff_keypool_use_catalog(pool, cat);
    struct skiff_engine_shared shared = {.cfg = cfg, .pool = pool, .budget = budget, .cat = cat};
    struct skiff_server_opts opts = {
        .host = cfg->listen_host,
        .port = cfg->listen_port,
        .workers = cfg->workers,
        .max_body_bytes = cfg->limits.max_body_bytes,
        .max_upload_bytes = cfg->limits.max_upload_bytes,
        .header_timeout_ms = cfg->limits.header_timeout_ms,
        .idle_timeout_ms = cfg->limits.idle_timeout_ms,
        .body_timeout_ms = cfg->limits.body_timeout_ms,
        .send_timeout_ms = cfg->limits.send_timeout_ms,
        .max_buffered_bytes = cfg->limits.max_buffered_bytes,
        .max_connections = cfg->limits.max_connections,
        .on_head = skiff_dispatch_head,
        .handler = skiff_dispatch_handle,
        .error = skiff_dispatch_http_error,
        .cut = skiff_dispatch_cut,
        .drain_timeout_ms = cfg->shutdown.drain_timeout_ms,
        .worker_init = skiff_dispatch_worker_init,
        .worker_fini = skiff_dispatch_worker_fini,
        .data = &shared,
        .name = "skiff",
    };
    int ok = pool && budget && cat && sig_ok;
    struct skiff_server *srv = ok ? skiff_server_new(&opts, err, sizeof err) : NULL;
    if (!srv) {
        fprintf(stderr, "skiff: %s\n", ok ? err : "out of memory");
        skiff_catalog_free(cat);
        skiff_budget_free(budget);
        skiff_keypool_free(pool);
        skiff_sigcache_fini();
        skiff_affinity_fini();
        skiff_store_close(store);
        skiff_config_free(cfg);
        return 1;
    }
    /* From here on lines go through the log thread: no loop ever waits for stderr. */
    skiff_log_start();
    int v6 = strchr(cfg->listen_host, ':') != NULL;
    char upstream[256];
    printf("skiff serve listening on http://%s%s%s:%u (%d worker%s, %zu key%s, %s, upstream %s)\n",
           v6 ? "[" : "", cfg->listen_host, v6 ? "]" : "", skiff_server_port(srv), cfg->workers,
           cfg->workers == 1 ? "" : "s", cfg->nkeys, cfg->nkeys == 1 ? "" : "s",
           cfg->ntokens ? "tokens required" : "open on loopback (no tokens)",
           skiff_url_redact(cfg->base_url, upstream, sizeof upstream));
    fflush(stdout);
    struct skiff_refresher *refresher = skiff_refresher_start(cat, cfg, pool);
    int rc = skiff_server_run(srv);
    skiff_refresher_stop(refresher);
    skiff_server_free(srv);
    skiff_catalog_free(cat);
    skiff_budget_free(budget);
    skiff_keypool_free(pool);
    skiff_sigcache_fini();
    skiff_affinity_fini();
    skiff_store_close(store);
    skiff_config_free(cfg);
    skiff_log_stop(SKIFF_LOG_STOP_TIMEOUT_MS);
    return rc;
}
