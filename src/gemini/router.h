/*
 * Request path -> route, for the Gemini-native surface on /v1 and /v1beta (and /v1alpha's
 * model calls), and Google's OpenAI-compatible /v1beta/openai/. Pure: no I/O, no allocation; the
 * route points into the path it was given.
 */
#ifndef SKIFF_ROUTER_H
#define SKIFF_ROUTER_H

#include <stddef.h>

#include "base/name.h" /* skiff_model_name_ok */

enum skiff_route_kind {
    SKIFF_ROUTE_NONE = 0,  /* unknown path: 404 */
    SKIFF_ROUTE_HEALTH,    /* GET /healthz */
    SKIFF_ROUTE_MODELS,    /* GET /{ver}/models */
    SKIFF_ROUTE_MODEL,     /* GET /{ver}/models/{model} */
    SKIFF_ROUTE_GENERATE,  /* POST /{ver}/models/{model}:{method} */
    SKIFF_ROUTE_BAD_MODEL, /* /{ver}/models/{segment}[:...] where the segment is not a model
                            * name (".", "..", "%2e", ""): 400; model points at it */
    SKIFF_ROUTE_RESOURCE,  /* a stored resource (files, cachedContents, batches, operations,
                            * uploads): res, res_id, res_verb and http_verb say which call */
    SKIFF_ROUTE_COMPAT,    /* Google's OpenAI-compatible endpoint, /v1beta/openai/{chat/completions,
                            * embeddings, models[/{id}]}: compat names the call (static),
                            * res_id the bare model id of models/{id}, http_verb the HTTP method */
};

/* The resource families of SKIFF_ROUTE_RESOURCE. */
enum skiff_res {
    SKIFF_RES_NONE = 0,
    SKIFF_RES_FILES,      /* /{ver}/files[/{id}[:download]] */
    SKIFF_RES_UPLOAD,     /* /upload/{ver}/files (a new upload, or a chunk with ?upload_id=) */
    SKIFF_RES_CACHES,     /* /{ver}/cachedContents[/{id}] */
    SKIFF_RES_BATCHES,    /* /{ver}/batches[/{id}[:cancel]] */
    SKIFF_RES_OPERATIONS, /* /{ver}/operations[/{id}[:cancel]], /{ver}/models/{m}/operations/{id} */
    SKIFF_RES_AUTH_TOKENS, /* POST /v1alpha/auth_tokens: an ephemeral token for the Live API */
};

enum skiff_method {
    SKIFF_M_NONE = 0,
    SKIFF_M_GENERATE,     /* generateContent */
    SKIFF_M_STREAM,       /* streamGenerateContent */
    SKIFF_M_COUNT_TOKENS, /* countTokens */
    SKIFF_M_EMBED,        /* embedContent */
    SKIFF_M_BATCH_EMBED,  /* batchEmbedContents */
    /* Calls that create a stored resource on the key that makes them (a batch, an operation). */
    SKIFF_M_BATCH_GENERATE,    /* batchGenerateContent */
    SKIFF_M_ASYNC_BATCH_EMBED, /* asyncBatchEmbedContent */
    SKIFF_M_PREDICT,           /* predict (Imagen) */
    SKIFF_M_PREDICT_LONG,      /* predictLongRunning (Veo) */
};

struct skiff_route {
    enum skiff_route_kind kind;
    const char *version; /* "v1", "v1beta" or "v1alpha" (static) */
    const char *model;   /* points into the path; not NUL-terminated */
    size_t model_len;
    enum skiff_method method;
    const char *method_name; /* "generateContent", ... (static) */
    int http_method_ok;      /* 0: right path, wrong HTTP method (405) */
    /* SKIFF_ROUTE_RESOURCE only: */
    enum skiff_res res;
    const char *res_id; /* the resource's id, into the path (checked: a model-name charset) */
    size_t res_id_len;
    const char *res_verb;  /* "download" or "cancel" (static), or NULL */
    const char *http_verb; /* the call's HTTP method (static): "GET", "POST", "PATCH", "DELETE" */
    const char *allow;     /* the methods the path takes, for a 405's Allow header (static) */
    /* SKIFF_ROUTE_COMPAT only: "chat/completions", "embeddings" or "models" (static); a
     * stream (the body's "stream": true) has method SKIFF_M_STREAM, set by the door. */
    const char *compat;
};

/* The resource name of a route with a resource id ("files/abc", "batches/x",
 * "models/veo-2/operations/y") in out; "" when it names none. */
void skiff_route_res_name(const struct skiff_route *r, char *out, size_t outlen);

/* Routes method + path. Always fills *r; r->kind is SKIFF_ROUTE_NONE for unknown paths. */
void skiff_route(const char *http_method, const char *path, size_t path_len, struct skiff_route *r);

/* The wire name of a method ("streamGenerateContent"); "" for SKIFF_M_NONE. */
const char *skiff_method_name(enum skiff_method m);

#endif
