/*
 * OpenAI embeddings ↔ Gemini embedContent / batchEmbedContents. Pure: no I/O.
 *
 * A string input goes to embedContent; an array of strings to batchEmbedContents (one
 * request per string, in order). Token arrays (arrays of integers) cannot be translated:
 * Gemini takes text only, and skiff does not hold OpenAI's tokenizers.
 */
#ifndef SKIFF_DOORS_OPENAI_EMBEDDINGS_H
#define SKIFF_DOORS_OPENAI_EMBEDDINGS_H

#include <stddef.h>

#include <jansson.h>

#include "doors/openai/errors.h"

/* Inputs per request at most (batchEmbedContents takes 100 requests). */
#define SKIFF_OAI_MAX_EMBED_INPUTS 100

struct skiff_oai_embed {
    json_t *body; /* the embedContent or batchEmbedContents request; owned */
    int batch;    /* 1: POST :batchEmbedContents, 0: :embedContent */
    int base64;   /* encoding_format "base64" */
    size_t count; /* inputs */
    char *model;  /* the name the client asked for; owned */
};

/*
 * Translates req (borrowed) for gemini_model ("gemini-embedding-001": the batch's inner
 * "model" fields say "models/<it>", as the API demands). dimensions → outputDimensionality.
 * Returns 0, SKIFF_EINVAL with the 400 in *err, or SKIFF_ENOMEM.
 */
int skiff_oai_embeddings_request(const json_t *req, const char *gemini_model,
                                 struct skiff_oai_embed *out, struct skiff_oai_error *err);

/*
 * OpenAI's answer {"object": "list", "data": [{"object": "embedding", "index", "embedding"}],
 * "model", "usage"} for Gemini's answer resp (borrowed) to e's request: each embedding a
 * float array, or with base64 the little-endian float32 bytes in base64 (as OpenAI sends
 * them). Returns a new reference, or NULL with a 502 in *err when resp does not hold e->count
 * embeddings.
 */
json_t *skiff_oai_embeddings_response(const json_t *resp, const struct skiff_oai_embed *e,
                                      struct skiff_oai_error *err);

void skiff_oai_embed_release(struct skiff_oai_embed *e);

#endif
