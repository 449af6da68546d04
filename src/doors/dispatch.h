/*
 * The dispatcher: the server's hooks (server.h) for `skiff serve`. It owns what is outside
 * any door (CORS, /healthz) and picks a door (doors/door.h) for everything else, from its
 * table. The worker state it gives the server is the worker's engine.
 */
#ifndef SKIFF_DISPATCH_H
#define SKIFF_DISPATCH_H

#include <uv.h>

#include "doors/door.h"
#include "engine/engine.h"
#include "server/http.h"

/* The dialect a request's head speaks (docs/ARCHITECTURE.md, "Dispatch"):
 *   /openai/v1/... and /anthropic/v1/...: those doors' unambiguous prefixes;
 *   /v1beta/..., /v1alpha/..., /upload/..., any .../models/{m}:{method}: Gemini;
 *   other /v1/... paths: a Gemini credential or SDK header (x-goog-api-key, ?key=,
 *   x-goog-api-client) means Gemini; anthropic-version or x-api-key means Anthropic;
 *   anything else (Authorization: Bearer, or no credential) means OpenAI;
 *   any other path: Gemini (whose door answers the helpful 404). */
enum skiff_style { SKIFF_STYLE_GEMINI = 0, SKIFF_STYLE_OPENAI, SKIFF_STYLE_ANTHROPIC };
enum skiff_style skiff_dispatch_style(const struct skiff_request *req);

/*
 * Puts a door in front of the built-in table (tests/door does, to show that a door needs no
 * change to the engine). Call before the server starts; at most 4. 0, or -1 when full.
 */
int skiff_dispatch_add_door(const struct skiff_door *d);

/* Server hooks (server.h): shared is a struct skiff_engine_shared. */
void *skiff_dispatch_worker_init(uv_loop_t *loop, int index, void *shared);
void skiff_dispatch_worker_fini(void *worker);
void skiff_dispatch_head(struct skiff_request *req, void *worker);
void skiff_dispatch_handle(struct skiff_request *req, void *worker);
/* The HTTP layer's refusals (a malformed head, a body too large): the default door's form. */
void skiff_dispatch_http_error(struct skiff_request *req, int status, const char *message);
void skiff_dispatch_cut(struct skiff_request *req, void *worker);

#endif
