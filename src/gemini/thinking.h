/*
 * The thinking policy: what thinking a request gets when the client said nothing of it, and
 * what "no thinking" means on a model that cannot stop. Shared by every door: the Gemini door
 * fills in the operator's default budget, the OpenAI and Anthropic doors translate "none".
 */
#ifndef SKIFF_GEMINI_THINKING_H
#define SKIFF_GEMINI_THINKING_H

#include <stddef.h>

#include <jansson.h>

#include "config/config.h"
#include "gemini/catalog.h"

/*
 * The configured default thinkingBudget for (token name, model): an entry for this token
 * and model beats this token and "*", which beats every client and this model, which beats
 * every client and "*". token may be NULL. Returns 1 with *budget set, or 0 (no default).
 */
int skiff_thinking_default(const struct skiff_config *cfg, const char *token, const char *model,
                           int *budget);

/*
 * Applies the thinking policy to a generateContent/streamGenerateContent body for model on
 * version: when a default applies and the client set neither thinkingBudget nor
 * thinkingLevel, returns a new malloc'd body (compact JSON, the client's other fields kept)
 * with generationConfig.thinkingConfig.thinkingBudget set, and its length in *new_len.
 * Returns NULL when the body is to go as it is (no default, the client chose, /v1 which has
 * no thinkingConfig, or a body that is not a JSON object). With a catalog (may be NULL), a
 * default the model would refuse (a model that cannot think, 0 on a model that cannot turn
 * thinking off, a budget outside its range) is not applied: the policy never causes a 400.
 */
char *skiff_thinking_apply(const struct skiff_config *cfg, const struct skiff_catalog *cat,
                           const char *token, const char *version, const char *model,
                           const char *body, size_t len, size_t *new_len);

/* Whether a model (info from the catalog; NULL: unknown, then yes) takes thinkingBudget b. */
int skiff_thinking_accepts(const struct skiff_model_info *info, int b);

/*
 * The least thinking model can do, set in tc (a thinkingConfig object): thinkingBudget 0
 * where the model may stop thinking, else its minimum budget; on Gemini 3, which cannot
 * stop, its lowest thinkingLevel (LOW on Pro, MINIMAL on the others). model is the Gemini
 * name ("models/" allowed); info (may be NULL: unknown, then budget 0) resolves an alias to
 * its target. 0 or SKIFF_ENOMEM.
 */
int skiff_thinking_least(const struct skiff_model_info *info, const char *model, json_t *tc);

#endif
