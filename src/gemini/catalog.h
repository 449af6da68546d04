/*
 * The relay's model catalog: what each Gemini model accepts (token limits, methods,
 * temperature range, thinking budgets), for local validation and hints.
 *
 * It starts as a built-in list (the models of gemini-api.md §6.2, from the one model table
 * gemini/models.def that the simulator is built from too) and is replaced whole by the
 * upstream's models.list when skiff_catalog_refresh (relay/fetch.h, which fetches it)
 * succeeds. The source matters to validation: a model missing from a catalog fetched from the
 * upstream does not exist for that key, while a model missing from the built-in list may
 * simply be newer than skiff (docs/internals/validation.md).
 *
 * Threads: a catalog is shared by every worker. Readers take a read lock for the length of
 * one lookup and get a copy; skiff_catalog_refresh builds the new table without the lock
 * and swaps it in under the write lock, so a slow upstream never blocks a request.
 */
#ifndef SKIFF_GEMINI_CATALOG_H
#define SKIFF_GEMINI_CATALOG_H

#include <stdatomic.h>

#include <stddef.h>

#include <jansson.h>

#include "base/editdist.h" /* skiff_catalog_suggest measures with it; callers too */
#include "gemini/router.h"

/* Bits of struct skiff_model_info.methods. */
#define SKIFF_CAT_GENERATE 0x1u    /* generateContent (implies streamGenerateContent) */
#define SKIFF_CAT_COUNT 0x2u       /* countTokens */
#define SKIFF_CAT_EMBED 0x4u       /* embedContent (implies batchEmbedContents) */
#define SKIFF_CAT_BATCH_EMBED 0x8u /* batchEmbedContents or asyncBatchEmbedContent listed */
#define SKIFF_CAT_OTHER 0x10u      /* some other method (generateAnswer, predict, ...) */

enum skiff_catalog_source {
    SKIFF_CATALOG_BUILTIN = 0, /* skiff's own list: may be older than the API */
    SKIFF_CATALOG_UPSTREAM,    /* the upstream's models.list: authoritative */
};

struct skiff_model_info {
    char name[96];     /* "gemini-2.5-flash": no "models/" prefix */
    char target[96];   /* the concrete model an alias serves ("" when unknown or not an alias) */
    long input_limit;  /* inputTokenLimit; 0 when unknown */
    long output_limit; /* outputTokenLimit; 0 when unknown */
    unsigned methods;  /* SKIFF_CAT_* bits; 0 when unknown (then no method is refused) */
    double max_temperature; /* < 0 when unknown or absent (then 2.0, the API's bound, applies) */
    int sampling;           /* the model takes temperature/topP/topK (embedding models do not) */
    int thinking;           /* the model thinks */
    /* thinkingBudget: -1 (dynamic) is always accepted on a thinking model; 0 only when
     * budget_zero_ok; otherwise [budget_min, budget_max]. budget_max 0: range unknown. */
    int budget_min;
    int budget_max;
    int budget_zero_ok;
    int v1; /* also served on /v1 (1), v1beta only (0), or unknown (-1) */
};

struct skiff_catalog;

/* A new catalog holding the built-in list; NULL on OOM. Free with skiff_catalog_free. */
struct skiff_catalog *skiff_catalog_new(void);
void skiff_catalog_free(struct skiff_catalog *cat);

/*
 * Finds a model by name: "gemini-2.5-flash", "models/gemini-2.5-flash", an alias such as
 * "gemini-flash-latest" (aliases are entries of their own, as on the API). name is len
 * bytes, not NUL-terminated. Copies the entry into *out and returns 1, or returns 0.
 */
int skiff_catalog_lookup(const struct skiff_catalog *cat, const char *name, size_t len,
                         struct skiff_model_info *out);

/* The i-th model of the current table (0-based), copied into *out: 1, or 0 past the end. For
 * listings (GET /v1/models); the table may be replaced between two calls. */
int skiff_catalog_at(const struct skiff_catalog *cat, size_t i, struct skiff_model_info *out);

/*
 * The catalog name closest to name by edit distance, copied into out (NUL-terminated), when
 * it is close enough to be a likely typo (at most one edit per four letters, and at most
 * 3). Returns 1 when found, else 0 and out = "".
 */
int skiff_catalog_suggest(const struct skiff_catalog *cat, const char *name, size_t len, char *out,
                          size_t outlen);

/* Where the current table came from, and how many models it holds. */
enum skiff_catalog_source skiff_catalog_source(const struct skiff_catalog *cat);
size_t skiff_catalog_count(const struct skiff_catalog *cat);

/*
 * Replaces the table with the models of a models.list answer: models is the "models"
 * array (borrowed). Entries the built-in list knows keep its thinking budgets and /v1 flag
 * (models.list does not carry them). Returns the number of models taken, or -1 (table
 * unchanged) when the array holds no usable model.
 */
int skiff_catalog_apply_list(struct skiff_catalog *cat, json_t *models);

/* Whether info says the model answers method (stream is implied by generate, batch embed by
 * embed). A model with unknown methods (0) answers everything. */
int skiff_model_supports(const struct skiff_model_info *m, enum skiff_method method);

#endif
