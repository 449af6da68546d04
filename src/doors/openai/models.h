/*
 * OpenAI's GET /v1/models and GET /v1/models/{id} answers, from the catalog and the names of
 * the models: map (src/doors/models.h decides what a name maps to). Pure: no I/O.
 */
#ifndef SKIFF_DOORS_OPENAI_MODELS_H
#define SKIFF_DOORS_OPENAI_MODELS_H

#include <stddef.h>

#include <jansson.h>

#include "doors/models.h"
#include "gemini/catalog.h"

/* {"object": "list", "data": [{"id", "object": "model", "created", "owned_by"}]}: every
 * catalog model (owned_by "google"), then each exact (non-glob) name of map (owned_by
 * "skiff"), each name once. New reference; NULL on OOM. */
json_t *skiff_oai_models_list(const struct skiff_catalog *cat, const struct skiff_model_alias *map,
                              size_t n, long created);

/* The one model id as GET /v1/models/{id} answers it, or NULL when id neither is a catalog
 * model nor maps to one through map (the door answers 404 model_not_found). New reference. */
json_t *skiff_oai_model_get(const struct skiff_catalog *cat, const struct skiff_model_alias *map,
                            size_t n, const char *id, long created);

#endif
