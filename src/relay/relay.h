/*
 * The Gemini-native front door of `skiff serve`: routes a client request, authenticates it,
 * swaps the client's token for a pool key, calls the upstream and streams the answer back.
 */
#ifndef SKIFF_RELAY_H
#define SKIFF_RELAY_H

#include <uv.h>

#include "config/config.h"
#include "relay/keypool.h"
#include "server/http.h"

struct skiff_budget;
struct skiff_catalog;

/* What every worker shares: read-only config, the key pool and the retry budget (both
 * thread-safe). */
struct skiff_relay_shared {
    const struct skiff_config *cfg;
    struct skiff_keypool *pool;
    struct skiff_budget *budget;
    struct skiff_catalog *cat; /* the model catalog behind validation */
};

/* Server hooks (see server.h): per-worker state, the handler, and the HTTP-level errors. */
void *skiff_relay_worker_init(uv_loop_t *loop, int index, void *shared);
void skiff_relay_worker_fini(void *worker);
void skiff_relay_handle(struct skiff_request *req, void *worker);
void skiff_relay_head(struct skiff_request *req, void *worker);
void skiff_relay_http_error(struct skiff_request *req, int status, const char *message);
/* The drain's end (server.h skiff_cut_cb): a 503 if nothing was sent, else a visible cut. */
void skiff_relay_cut(struct skiff_request *req, void *worker);

#endif
