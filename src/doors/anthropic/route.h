/*
 * The Anthropic door's routes and what it answers without the upstream: path → route, the models:
 * map's 404, and GET /v1/models from the map. Pure: no I/O, no engine
 * (docs/internals/anthropic.md).
 *
 * Routes, each also under /anthropic (an unambiguous prefix; a `?beta=true` query and the
 * anthropic-version / anthropic-beta headers are accepted and change nothing):
 *   POST /v1/messages                → SKIFF_ANTH_ROUTE_MESSAGES
 *   POST /v1/messages/count_tokens   → SKIFF_ANTH_ROUTE_COUNT_TOKENS
 *   GET  /v1/models                  → SKIFF_ANTH_ROUTE_MODELS
 *   GET  /v1/models/{id}             → SKIFF_ANTH_ROUTE_MODEL
 */
#ifndef SKIFF_DOORS_ANTHROPIC_ROUTE_H
#define SKIFF_DOORS_ANTHROPIC_ROUTE_H

#include <stddef.h>

#include "doors/anthropic/errors.h"

struct skiff_model_alias;
struct skiff_catalog;

enum skiff_anth_route_kind {
    SKIFF_ANTH_ROUTE_NONE = 0,
    SKIFF_ANTH_ROUTE_MESSAGES,
    SKIFF_ANTH_ROUTE_COUNT_TOKENS,
    SKIFF_ANTH_ROUTE_MODELS,
    SKIFF_ANTH_ROUTE_MODEL,
};

#define SKIFF_ANTH_MODEL_ID_MAX 128

struct skiff_anth_route {
    enum skiff_anth_route_kind kind;
    char model_id[SKIFF_ANTH_MODEL_ID_MAX + 1]; /* SKIFF_ANTH_ROUTE_MODEL: the {id} */
};

/*
 * path (without the query) and method → route. Returns 0 with *r filled; SKIFF_EINVAL with
 * a 404 not_found_error (an unknown path) or a 405 invalid_request_error (a known path, the
 * wrong method) in *err.
 */
int skiff_anth_route(const char *method, const char *path, size_t path_len,
                     struct skiff_anth_route *r, struct skiff_anth_error *err);

/*
 * The 404 for a model name the models: map does not map: not_found_error naming the key to
 * add (the name itself, and for a Claude name the family glob, "claude-haiku-*"). Returns
 * SKIFF_EINVAL.
 */
int skiff_anth_model_unmapped(const char *name, struct skiff_anth_error *err);

/*
 * GET /v1/models: the exact names of map[0..n) (globs cannot be listed), each once, in map
 * order, with display names "<id> (<gemini model>)", paged as skiff_anth_models_list does.
 * Malloc'd JSON, NULL on OOM.
 */
char *skiff_anth_models_page(const struct skiff_model_alias *map, size_t n, const char *after_id,
                             const char *before_id, long limit);

/*
 * GET /v1/models/{id}: the model the map resolves id to (a glob's name too), as Anthropic's
 * model object. Malloc'd JSON; NULL with the 404 of skiff_anth_model_unmapped in *err (or,
 * on OOM, a 500).
 */
char *skiff_anth_model_get(const struct skiff_model_alias *map, size_t n,
                           const struct skiff_catalog *cat, const char *id,
                           struct skiff_anth_error *err);

#endif
