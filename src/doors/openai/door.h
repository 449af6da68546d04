/*
 * The OpenAI door: routes, auth, translation and answers for OpenAI's API, in front of the
 * engine (docs/internals/openai.md). door.c takes a request from the dispatch table up to a
 * Gemini body; door_engine.c drives the engine with it and translates the answer back.
 */
#ifndef SKIFF_DOORS_OPENAI_DOOR_H
#define SKIFF_DOORS_OPENAI_DOOR_H

#include <stddef.h>

#include <jansson.h>
#include <uv.h>

#include "base/buf.h"
#include "config/config.h"
#include "doors/door.h"
#include "doors/openai/chat_request.h"
#include "doors/openai/chat_response.h"
#include "doors/openai/chat_stream.h"
#include "doors/openai/embeddings.h"
#include "doors/openai/errors.h"
#include "gemini/catalog.h"
#include "server/http.h"

struct skiff_upstream;
struct skiff_media;
struct skiff_responses_stream;

enum skiff_oai_route {
    SKIFF_OAI_NONE,    /* not under /v1 or /openai/v1 */
    SKIFF_OAI_UNKNOWN, /* under them, but no OpenAI route */
    SKIFF_OAI_CHAT,
    SKIFF_OAI_RESPONSES,
    SKIFF_OAI_EMBEDDINGS,
    SKIFF_OAI_MODELS,
    SKIFF_OAI_MODEL,
};

/* What the door needs of its worker; borrowed for the request's life. */
struct skiff_oai_env {
    const struct skiff_config *cfg;
    const struct skiff_catalog *cat;
    uv_loop_t *loop;
    struct skiff_upstream *upstream; /* media URLs are fetched through it */
    struct skiff_engine *engine;
};

/* One request in the door (door.c makes it, door_engine.c answers it). */
struct skiff_oai_req {
    struct skiff_request *req;
    struct skiff_oai_env env;
    enum skiff_oai_route route;
    json_t *json; /* the client's body */
    struct skiff_oai_chat chat;
    int have_chat;
    struct skiff_oai_embed emb;
    int have_emb;
    int stream;
    char target[128]; /* the Gemini model the models: map chose */
    char *sigs[64];   /* signatures the cache gave, freed with the request */
    size_t nsigs;
    struct skiff_media *media; /* the fetch in flight, or NULL */
    size_t media_i;
    char media_param[160];
    char *gbody; /* the Gemini request, compact JSON */
    size_t gbody_len;
    struct skiff_oai_stream *cs;  /* chat stream translator */
    struct skiff_oai_rstream *rs; /* Responses stream translator */
    struct skiff_buf out;         /* translated bytes to write */
};

/* The door in the dispatch table (doors/dispatch.c). */
extern const struct skiff_door skiff_openai_door;

/* The route of req's path (model_id gets the {id} of /v1/models/{id}). Pure. */
enum skiff_oai_route skiff_oai_route(const struct skiff_request *req, char *model_id, size_t idlen);

/* The door's entry for a request the dispatch gave it (body read). Answers it, now or later. */
void skiff_oai_handle(struct skiff_request *req, struct skiff_engine *e);

/* The head hook: route, method and token, answered before the body is read. */
void skiff_oai_head(struct skiff_request *req, struct skiff_engine *e);

/* skiff's own refusal before any attempt, in OpenAI's shape (the dispatch's CORS and open-mode
 * refusals). */
void skiff_oai_error(struct skiff_request *req, int status, const char *message);

/* The head hook: refuses a request without a valid token before its body is read; returns 1
 * when it answered. */
int skiff_oai_refuse_client(const struct skiff_config *cfg, struct skiff_request *req);

/* The error writer: e as status + OpenAI's body; a 429 gets Retry-After from e, else from
 * retry_after_s (skiff's rest; -1: none). Ends the request. */
void skiff_oai_respond_error(struct skiff_request *req, const struct skiff_oai_error *e,
                             long retry_after_s);
void skiff_oai_respond_status(struct skiff_request *req, int status, const char *param,
                              const char *code, const char *msg);

/* The answer options for st's translators (the signature cache's write side included). */
void skiff_oai_answer_opts(const struct skiff_oai_req *st, struct skiff_oai_answer_opts *o);

/* Frees st and everything it holds (a media fetch in flight is cancelled). */
void skiff_oai_req_free(struct skiff_oai_req *st);

/* door_engine.c: hands st's Gemini body to the engine; the answer ends the request and frees
 * st (also when the engine cannot start: then the door answers 500 here). */
void skiff_oai_submit(struct skiff_oai_req *st);

#endif
