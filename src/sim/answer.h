#ifndef SKIFF_SIM_ANSWER_H
#define SKIFF_SIM_ANSWER_H

/*
 * Inside `skiff sim`: a generation's answer, and the checks of the resources it
 * references, which only the caller's project passes. The names are sim.c's former
 * statics (plan.h).
 */

#include <jansson.h>

#include "sim/plan.h"
#include "sim/render.h"
#include "sim/validate.h"

/*
 * The tokens of the request's cachedContent (0 when it names none), or SKIFF_EINVAL with
 * inv set when the cache may not be used (another project's, another model, ...).
 */
long use_cache(struct sim *sim, const struct call *c, const json_t *body,
               struct skiff_sim_invalid *inv);

/*
 * Refuses a generation whose contents or systemInstruction reference a file that is not a
 * live file of the caller's project: SKIFF_EINVAL with inv set (403). 0 when they pass.
 */
int check_references(struct sim *sim, const struct call *c, const json_t *contents,
                     const json_t *system_instruction, struct skiff_sim_invalid *inv);

/*
 * Builds the generated answer of a validated generation (body, g and prompt borrowed;
 * cached: the cache's tokens, 0 for none) and plans it, whole or as stream events; a
 * thought may become an event of its own, or wait before the first byte (sr->think_ms).
 * 0, or SKIFF_ENOMEM: the caller then plans an error, which replaces what was planned.
 */
int plan_answer(struct sim_req *sr, const struct call *c, const json_t *body,
                const struct skiff_sim_gen *g, const struct skiff_sim_prompt *prompt, long cached);

#endif
