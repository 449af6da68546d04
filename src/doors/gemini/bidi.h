/*
 * The Gemini door's Live API (a WebSocket per session, engine.h's skiff_session): the
 * handshake checked and answered at the head, the client's credential swapped for a pool key
 * (or an ephemeral token's recorded key), the first message (the setup) read with wslay's
 * frame parser for its model, then the bytes relayed both ways as they came.
 */
#ifndef SKIFF_DOORS_GEMINI_BIDI_H
#define SKIFF_DOORS_GEMINI_BIDI_H

#include <stddef.h>

#include "engine/engine.h"
#include "server/http.h"

/* When req is on a Live path, returns 1 after checking it (the handshake, the credential, a
 * pool key) and answering a refusal; with upgrade (the handler: the server switches
 * protocols only there) a request that passed is answered 101 and its session begins;
 * without (the head hook), it is left for the handler. 0 for any other path (req untouched). */
int skiff_gemini_live(struct skiff_request *req, struct skiff_engine *e, int upgrade);

/* The affinity entry's name for an ephemeral token (the token's name, "auth_tokens/..."):
 * "live_tokens/" and the SHA-256 of the name in hex, so the store never holds the token
 * itself. out needs 12 + 64 + 1 bytes. */
#define SKIFF_LIVE_TOKEN_ENTRY 77
void skiff_gemini_live_token_entry(const char *token, size_t len, char out[SKIFF_LIVE_TOKEN_ENTRY]);

#endif
