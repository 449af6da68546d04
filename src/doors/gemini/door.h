/*
 * The Gemini-native door: /v1beta and /v1 model calls passed through to Gemini as they came
 * (route, auth, local validation, the thinking policy, helpful 404s, 405s, Google-format
 * errors), on top of the engine. Its answers are the upstream's bytes, never re-encoded.
 */
#ifndef SKIFF_DOORS_GEMINI_DOOR_H
#define SKIFF_DOORS_GEMINI_DOOR_H

#include <stddef.h>

#include "doors/door.h"
#include "gemini/router.h"
#include "server/http.h"

extern const struct skiff_door skiff_gemini_door;

/* A Google-format refusal before any attempt: the x-skiff-* headers of a refusal, then the
 * error body. */
void skiff_gemini_error(struct skiff_request *req, int status, const char *message);

/* notfound.c: the helpful 404s. */

/* The message of a 404 for a path skiff does not serve: what the path is (an OpenAI path, a
 * Gemini family skiff does not relay yet) or the nearest path it serves. */
void skiff_gemini_no_route_message(const struct skiff_request *req, char *msg, size_t msglen);
/* The path for a message: bytes that are not printable ASCII become %XX. */
void skiff_gemini_printable_path(const struct skiff_request *req, char *out, size_t outlen);

#endif
