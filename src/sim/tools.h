/*
 * What the simulator answers beyond free text, as Gemini does (gemini-api.md §2.3, §2.4,
 * §2.7, §3.1): function calls when the prompt asks for a declared tool, an answer that uses
 * the function responses a client gave back, JSON that satisfies the request's schema, and
 * thought signatures that a Gemini 3 model checks when a client replays its calls.
 *
 * A signature is what the simulator issued for that function name; a client that drops it
 * or makes one up gets Gemini 3's 400, so a relay that loses signatures fails its tests.
 * Google's documented dummy signatures ("skip_thought_signature_validator",
 * "context_engineering_is_the_way_to_go") are accepted, as the API accepts them.
 */
#ifndef SKIFF_SIM_TOOLS_H
#define SKIFF_SIM_TOOLS_H

#include <stdint.h>

#include <jansson.h>

#include "sim/catalog.h"
#include "sim/validate.h"

/* What a generate request asks of the answer, beyond the prompt's text. */
struct skiff_sim_ask {
    json_t *calls; /* functionCall objects ({name, args}) to answer with, or NULL; owned */
    char *text;    /* the answer's text instead of the composed one, or NULL; owned */
    int sign;      /* the first call carries a thoughtSignature (the model thinks) */
};

/*
 * Gemini 3's check of the calls a client gives back: in the current turn (the model turns
 * after the last user turn that is not only function responses), the first functionCall
 * part of every model turn must carry a signature the simulator issued for that name.
 * Models before 3.x do not check. Returns 0, or SKIFF_EINVAL with the API's 400 in *err.
 */
int skiff_sim_tools_check(const struct skiff_sim_model *m, const json_t *body,
                          struct skiff_sim_invalid *err);

/*
 * Decides what the answer is: calls of the declared functions whose names the last user
 * text mentions (all of them, in declaration order: parallel calls), or of the first
 * allowed one when functionCallingConfig.mode is ANY; none when the mode is NONE or the
 * last turn gave function responses back (the answer then uses them). With
 * responseMimeType application/json (or text/x.enum), the text is a value of the schema.
 * thinks: the model thinks on this request (its calls are then signed). Never fails: *out
 * may stay empty; out->calls and out->text are NULL on allocation failure.
 */
void skiff_sim_tools_plan(const json_t *body, uint64_t seed, int thinks, struct skiff_sim_ask *out);
void skiff_sim_ask_release(struct skiff_sim_ask *a);

/* The signature the simulator gives a call of name: base64, malloc'd (NULL on OOM). */
char *skiff_sim_signature(const char *name);

/* Whether sig is the simulator's signature for name (or a documented dummy). */
int skiff_sim_signature_ok(const char *sig, const char *name);

/*
 * A value that satisfies schema: JSON Schema (type, enum, const, properties, required,
 * items, minItems, maxItems, minimum, maximum, minLength, maxLength, format, anyOf, oneOf,
 * allOf, $ref into $defs/definitions) or Gemini's Schema (upper-case types, nullable,
 * propertyOrdering). The same schema and seed give the same value. New reference.
 */
json_t *skiff_sim_schema_value(const json_t *schema, uint64_t seed);

#endif
