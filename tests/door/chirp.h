/*
 * A test-only door (tests/door/): "chirp", a trivial dialect translated to Gemini through the
 * engine, to show that a door needs no change to the engine to get its retries, fallbacks and
 * hold-before-commit. Not built into skiff.
 *
 *   POST /chirp/v1/say  {"model": "pro" | "flash" | a Gemini name, "say": "text",
 *                        "stream": true | false}, with the skiff token as Authorization: Bearer
 *   answer:      200 {"heard": "the model's text", "model": "the name asked"}
 *   stream:      200 text/plain, a line "chirp N: text" per upstream event, then "fin"
 *   error:       {"oops": {"status": N, "message": "..."}}; mid-stream a line "oops: ...",
 *                then the engine aborts the body
 */
#ifndef SKIFF_TEST_CHIRP_H
#define SKIFF_TEST_CHIRP_H

#include "doors/door.h"

extern const struct skiff_door chirp_door;

#endif
