/*
 * Request validation as the Gemini API does it (gemini-api.md §2.1, §2.4, §2.5, §4.2, §8):
 * invalid JSON, unknown fields, missing contents, sampling parameters out of range,
 * thinking budgets, and the embedding and countTokens request shapes. Field names are
 * accepted in lowerCamelCase and snake_case, as the API does.
 *
 * Every function fills a struct skiff_sim_invalid on failure and returns SKIFF_EINVAL;
 * the caller turns it into a Google error body. details in it is a new reference the
 * caller takes (or NULL).
 */
#ifndef SKIFF_SIM_VALIDATE_H
#define SKIFF_SIM_VALIDATE_H

#include <stddef.h>

#include <jansson.h>

#include "sim/catalog.h"

struct skiff_sim_invalid {
    int status;          /* HTTP status, 400 */
    const char *gstatus; /* google.rpc.Code name; NULL: from status */
    char message[1024];
    json_t *details;
};

/* What a valid generate request asks for. Pointers are borrowed from the body. */
struct skiff_sim_gen {
    const json_t *contents;
    const json_t *system_instruction; /* NULL when absent */
    long max_output_tokens;           /* the request's, else the model's limit */
    long thinking_budget;             /* -1 dynamic, 0 off, else the cap */
    int include_thoughts;
    long candidate_count;
};

/*
 * Parses a request body. An empty body is {}. Returns a new reference, or NULL with the
 * API's "Invalid JSON payload received. ..." message in err.
 */
json_t *skiff_sim_parse_body(const char *body, size_t len, struct skiff_sim_invalid *err);

/* generateContent / streamGenerateContent; what = "GenerateContentRequest". */
int skiff_sim_validate_generate(const struct skiff_sim_model *m, const char *version,
                                const json_t *body, struct skiff_sim_gen *out,
                                struct skiff_sim_invalid *err);

/*
 * countTokens: {"contents":[...]} or {"generateContentRequest":{...}}. On success *contents
 * and *system_instruction point into body.
 */
int skiff_sim_validate_count(const struct skiff_sim_model *m, const char *version,
                             const json_t *body, const json_t **contents,
                             const json_t **system_instruction, struct skiff_sim_invalid *err);

/* embedContent: *content is the Content to embed; *dims the output dimensionality. */
int skiff_sim_validate_embed(const struct skiff_sim_model *m, const json_t *body,
                             const json_t **content, long *dims, struct skiff_sim_invalid *err);

/* batchEmbedContents: every inner request must name the URL's model. */
int skiff_sim_validate_batch_embed(const struct skiff_sim_model *m, const json_t *body,
                                   struct skiff_sim_invalid *err);

/* A field by its camelCase name, also found under its snake_case spelling. Borrowed. */
const json_t *skiff_sim_field(const json_t *obj, const char *camel);

#endif
