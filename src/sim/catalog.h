/*
 * The simulator's model catalog: the models of gemini-api.md §6.2 with their token limits,
 * methods, sampling defaults, thinking budgets and free-tier quotas, from the one model
 * table (gemini/models.def) that skiff's own catalog is built from too. The table is static
 * and read-only, so it may be read from any thread.
 *
 * Aliases (gemini-flash-latest, ...) are entries of their own, listed and addressable like
 * any model; their `target` names the concrete model that answers (modelVersion) and whose
 * quota they spend.
 */
#ifndef SKIFF_SIM_CATALOG_H
#define SKIFF_SIM_CATALOG_H

#include <stddef.h>

#include <jansson.h>

#include "gemini/models.h"

/* Flags for struct skiff_sim_model.flags: those of the model table. */
#define SKIFF_SIM_V1 SKIFF_MODEL_V1
#define SKIFF_SIM_GEMINI3 SKIFF_MODEL_GEMINI3
#define SKIFF_SIM_EMBEDDING SKIFF_MODEL_EMBEDDING

struct skiff_sim_model {
    const char *id;     /* "gemini-2.5-flash", as in the URL (no "models/") */
    const char *target; /* the concrete model that answers; == id unless an alias */
    const char *version;
    const char *display_name;
    const char *description;
    int input_limit;
    int output_limit;
    const char *const *methods; /* supportedGenerationMethods, NULL-terminated, in API order */
    /* Sampling defaults; a negative value means the field is absent (embedding models). */
    double temperature;
    double top_p;
    int top_k;
    double max_temperature;
    int thinking; /* the catalog's "thinking" field */
    /* thinkingBudget: accepted range [budget_min, budget_max]; -1 is always "dynamic". */
    int budget_min;
    int budget_max;
    int budget_zero_ok; /* 0 turns thinking off (else 0 is a 400) */
    int thinks_default; /* thinks when the request sets no thinkingConfig */
    int max_candidates; /* candidateCount upper bound */
    int flags;
    /* Free-tier quotas, the defaults of --rpm/--tpm/--rpd. */
    long free_rpm;
    long free_tpm;
    long free_rpd;
};

/*
 * The model with this id (len bytes, not NUL-terminated), or NULL. A leading "models/" is
 * not accepted: callers pass the URL segment after it. Returns a borrowed static entry.
 */
const struct skiff_sim_model *skiff_sim_catalog_find(const char *id, size_t len);

/* The model at index i (0 <= i < skiff_sim_catalog_count()), in listing order. */
const struct skiff_sim_model *skiff_sim_catalog_at(size_t i);
size_t skiff_sim_catalog_count(void);

/* Whether the model is served on this API version ("v1" or "v1beta"). */
int skiff_sim_model_on_version(const struct skiff_sim_model *m, const char *version);

/*
 * Whether the model answers an API method ("generateContent", "streamGenerateContent",
 * "countTokens", "embedContent", "batchEmbedContents"). streamGenerateContent is implied by
 * generateContent, batchEmbedContents by embedContent, as on the real API.
 */
int skiff_sim_model_supports(const struct skiff_sim_model *m, const char *method);

/* A models.get body for m, keys in proto field order. Returns a new reference. */
json_t *skiff_sim_catalog_model_json(const struct skiff_sim_model *m);

/*
 * A models.list page: {"models":[...],"nextPageToken":"..."} with the token absent on the
 * last page. page_size <= 0 means the default (50); above 1000 it is clamped to 1000.
 * page_token NULL or "" starts at the beginning. Returns a new reference, or NULL when the
 * page token is not one this catalog issued.
 */
json_t *skiff_sim_catalog_list_json(const char *version, long page_size, const char *page_token);

#endif
