/*
 * The Anthropic door: the Messages API (POST /v1/messages, count_tokens, GET /v1/models)
 * translated to Gemini by the pure translators of this folder, on top of the engine
 * (engine/engine.h). Its requests are those skiff_dispatch_style calls Anthropic's
 * (/anthropic/v1/..., or /v1/... with anthropic-version or x-api-key). Every answer, errors
 * included, is in Anthropic's dialect (docs/internals/anthropic.md, "The door").
 */
#ifndef SKIFF_DOORS_ANTHROPIC_DOOR_H
#define SKIFF_DOORS_ANTHROPIC_DOOR_H

#include "doors/door.h"

/* The interval of `event: ping` while a stream has nothing to send. */
#define SKIFF_ANTH_PING_MS 5000

extern const struct skiff_door skiff_anthropic_door;

#endif
