/*
 * The simulator's Live API (docs/internals/sim.md, "The Live API"): the WebSocket of
 * GenerativeService.BidiGenerateContent (an API key) and BidiGenerateContentConstrained (an
 * ephemeral token from POST /v1alpha/auth_tokens), as Google serves them: the handshake,
 * `setup` then `setupComplete`, a text turn answered with the simulator's deterministic text
 * and `usageMetadata`, session resumption handles, `goAway` when the session limit
 * (--live-session-ms) is reached and the close after it, Google's close codes and reasons for
 * a refused key, model, message or quota. Every session is one entry of the request log, with
 * when it opened and closed.
 *
 * Bounded: at most max_sessions open at once (more are refused 503 at the handshake), a client
 * message of at most 1 MiB (larger: close 1009), max_tokens ephemeral tokens and as many
 * resumption handles, the oldest forgotten first. Not thread-safe: the simulator runs one
 * worker.
 */
#ifndef SKIFF_SIM_LIVE_H
#define SKIFF_SIM_LIVE_H

#include <stddef.h>

#include "server/http.h"
#include "sim/compat.h"
#include "sim/script.h"

struct sim;
struct skiff_sim_live;

/* A new Live state: no session, token or handle yet. NULL on OOM. */
struct skiff_sim_live *skiff_sim_live_new(size_t max_sessions, size_t max_tokens);

/* Frees the tables. Sessions must be gone (the server closes them before it returns). */
void skiff_sim_live_free(struct skiff_sim_live *l);

/* POST /_sim/reset: forgets every token and handle; open sessions go on. */
void skiff_sim_live_clear(struct skiff_sim_live *l);

/*
 * A request on a Live path (gemini/live.h): checks the WebSocket handshake, answers 101 and
 * runs the session, or answers the handshake's refusal. Logs it. Ends req either way.
 */
void skiff_sim_live_accept(struct sim *sim, struct skiff_request *req);

/*
 * POST /v1alpha/auth_tokens on x-goog-api-key: a new ephemeral token of the key's project with
 * the body's expireTime (default 30 minutes), newSessionExpireTime (default 60 s) and uses
 * (default 1; 0 is no limit). Returns 1 and renders the reply into out (logged in e) when req
 * is that path, 0 for any other.
 */
int skiff_sim_live_auth_token(struct sim *sim, const struct skiff_request *req,
                              struct skiff_sim_log_entry *e, struct skiff_sim_compat_reply *out);

#endif
