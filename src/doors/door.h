/*
 * What a door is to the dispatcher (doors/dispatch.c): a client dialect's front door, found
 * by its match on the request's head, on top of the engine (engine/engine.h). Adding a door
 * is its folder under src/doors/ plus one entry in dispatch.c's table.
 *
 * The server's hooks run through the dispatcher in this order: CORS (for every door), then
 * /healthz (outside any door), then the first door in the table whose match says yes; the
 * last entry matches everything. Each function below runs on the worker's loop and gets the
 * worker's engine.
 */
#ifndef SKIFF_DOOR_H
#define SKIFF_DOOR_H

#include "engine/engine.h"
#include "server/http.h"

struct skiff_door {
    const char *name; /* "gemini", "openai", ... (logs) */
    /* Whether the door serves req, from its head alone (method, path, query, headers); pure.
     * skiff_dispatch_style (dispatch.h) says which dialect a request speaks. */
    int (*match)(const struct skiff_request *req);
    /* The head hook (server.h on_head): what the head alone decides (route, method, auth) is
     * answered before a byte of the body is read. May leave req unanswered. */
    void (*on_head)(struct skiff_request *req, struct skiff_engine *e);
    /* The whole request: answer it at once, or plan a call and hand it to the engine. */
    void (*handle)(struct skiff_request *req, struct skiff_engine *e);
    /* skiff's own refusal in the door's dialect, before any attempt (a CORS refusal, open
     * mode's Host rule, /healthz's 405): status, message, and the x-skiff-* headers of a
     * refusal (skiff_engine_decorate). Ends the request. */
    void (*error)(struct skiff_request *req, int status, const char *message);
    /* The drain's end for a request still in flight (server.h skiff_cut_cb); NULL:
     * skiff_engine_cut, right for any request the door handed to the engine. */
    void (*cut)(struct skiff_request *req, struct skiff_engine *e);
};

#endif
