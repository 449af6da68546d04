/*
 * A Gemini GenerateContentResponse translated to an Anthropic message, and the two mappings
 * both answers (whole and streamed) share: the stop reason and the usage.
 */
#ifndef SKIFF_DOORS_ANTHROPIC_MESSAGES_RESPONSE_H
#define SKIFF_DOORS_ANTHROPIC_MESSAGES_RESPONSE_H

#include <stddef.h>

#include <jansson.h>

#include "doors/anthropic/blocks.h"
#include "doors/anthropic/errors.h"

/*
 * The stop_reason for a Gemini finish: always a value Anthropic defines.
 *   blocked prompt (block_reason set), SAFETY, RECITATION, BLOCKLIST, PROHIBITED_CONTENT,
 *   SPII and the IMAGE_ safety family  → "refusal"
 *   MAX_TOKENS                          → "max_tokens"
 *   any finish of an answer with calls  → "tool_use"
 *   STOP with stop_sequences given      → "stop_sequence"
 *   anything else (STOP, OTHER, MALFORMED_FUNCTION_CALL, unknown values, none) → "end_turn"
 *
 * Gemini stops before a stop sequence and says only STOP, never which one, and a natural
 * end looks the same. What can be known: Gemini cuts the text before the first sequence it
 * meets, so a sequence that occurs in the visible text (bit i of stops_seen) did not fire.
 * The rest are the candidates. skiff decides: with no candidate left, a STOP is end_turn;
 * with candidates, it is stop_sequence (a client that sets them is waiting for one; a
 * natural end whose text holds none of them is reported so too: that cannot be told
 * apart), and *matched is the candidate when exactly one is left, else NULL (unknown).
 * *matched is a borrowed string of stop_sequences, or NULL for every other reason.
 */
const char *skiff_anth_stop_reason(const char *finish, const char *block_reason, size_t n_calls,
                                   const json_t *stop_sequences, unsigned stops_seen,
                                   const char **matched);

/* Gemini's usageMetadata (may be NULL) as Anthropic's usage, a new reference:
 * {"input_tokens": prompt - cached + tool-use prompt, "cache_creation_input_tokens": 0,
 *  "cache_read_input_tokens": cached, "output_tokens": candidates + thoughts}. */
json_t *skiff_anth_usage(const json_t *usage_metadata);

/*
 * body (len bytes, a GenerateContentResponse) as the Anthropic message, compact JSON:
 * {"id", "type": "message", "role": "assistant", "model": reply->model, "content",
 *  "stop_reason", "stop_sequence", "usage"}. Malloc'd; NULL with a 500 api_error in *err
 * when the body is not a response (or on OOM).
 */
char *skiff_anth_response(const char *body, size_t len, const struct skiff_anth_reply *reply,
                          struct skiff_anth_error *err);

#endif
