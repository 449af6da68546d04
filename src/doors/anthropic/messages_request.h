/*
 * A Messages API request (POST /v1/messages) translated to a Gemini generateContent
 * request, with what the door must remember to translate the answer back. Pure: no I/O,
 * no engine, no model map (docs/internals/anthropic.md has the mapping tables).
 *
 * Thought signatures: Gemini 3 checks that the first functionCall of each model step it
 * gets back carries the thoughtSignature it gave. A signature reaches the request two ways,
 * the first that holds one winning:
 *   1. the signature cache: lookup(ud, tool_use_id) returns what skiff stored when it made
 *      that tool_use id (the id is only a key, never the signature);
 *   2. a signed `thinking` block of the same assistant turn: its signature goes onto the
 *      next functionCall part after it (or, with none, the next part of the turn).
 * Either way the signature is the one Gemini gave, on the part Gemini gave it on.
 */
#ifndef SKIFF_DOORS_ANTHROPIC_MESSAGES_REQUEST_H
#define SKIFF_DOORS_ANTHROPIC_MESSAGES_REQUEST_H

#include <stddef.h>

#include <jansson.h>

#include "doors/anthropic/errors.h"
#include "gemini/catalog.h"

/* Looks up the signature skiff stored for a tool_use id it made: borrowed, valid until
 * skiff_anth_request_parse returns; NULL when unknown. */
typedef const char *skiff_anth_sig_lookup(void *ud, const char *tool_use_id);

/* An image or document given by URL. The translator puts a placeholder part,
 * {"inlineData": {"mimeType": "", "data": ""}}, where it goes; the door fetches url (under
 * the media.* rules) and sets that part's mimeType and data. */
struct skiff_anth_media {
    char *url;    /* owned */
    json_t *part; /* borrowed: the placeholder inside the request's JSON */
    int document; /* 1: a `document` block (a PDF is expected), 0: an `image` block */
};

enum skiff_anth_thinking {
    SKIFF_ANTH_THINKING_UNSET = 0, /* no `thinking` field: the door decides (door.c) */
    SKIFF_ANTH_THINKING_ENABLED,   /* {type: enabled, budget_tokens}: thoughts shown */
    SKIFF_ANTH_THINKING_ADAPTIVE,  /* {type: adaptive}: dynamic budget, thoughts shown */
    SKIFF_ANTH_THINKING_DISABLED,  /* {type: disabled}: the least the model can do */
};

struct skiff_anth_request {
    json_t *gemini; /* the generateContent request body; owned (one reference) */
    char *model;    /* the model name the client asked for; owned */
    int stream;     /* "stream": true */
    long max_tokens;
    json_t *stop_sequences; /* array of strings, or NULL; owned */
    enum skiff_anth_thinking thinking;
    long budget_tokens;             /* with SKIFF_ANTH_THINKING_ENABLED */
    int single_tool_call;           /* disable_parallel_tool_use: keep only the first call */
    struct skiff_anth_media *media; /* URL media to fetch, in request order; owned */
    size_t n_media;
};

/*
 * Translates body (len bytes of JSON). lookup may be NULL (no cache). On success returns 0
 * and fills *out (release it with skiff_anth_request_release). On a client mistake returns
 * SKIFF_EINVAL with a 400 invalid_request_error in *err whose message names the field and
 * says what to send; SKIFF_ENOMEM on allocation failure. *out is empty on failure.
 */
int skiff_anth_request_parse(const char *body, size_t len, skiff_anth_sig_lookup *lookup, void *ud,
                             struct skiff_anth_request *out, struct skiff_anth_error *err);

/*
 * Fits the thinking settings to the Gemini model the door chose (m from the catalog, NULL
 * when unknown: then nothing changes), named model. A model that does not think gets no
 * thinkingConfig; `disabled` gets the least thinking the model can do (budget 0, else its
 * minimum, or Gemini 3's lowest level: gemini/thinking.h) and shows no thoughts; an
 * `enabled` budget outside the model's range is clamped into it. Call after
 * skiff_anth_request_parse, before sending. 0 or SKIFF_ENOMEM.
 */
int skiff_anth_request_fit(struct skiff_anth_request *r, const struct skiff_model_info *m,
                           const char *model);

void skiff_anth_request_release(struct skiff_anth_request *r);

/*
 * A count_tokens request (POST /v1/messages/count_tokens: the same body without max_tokens)
 * as a Gemini countTokens body, {"generateContentRequest": {"model": "models/<gemini_model>",
 * ...}}, which counts system, tools and contents. New reference in *out; same errors.
 */
int skiff_anth_count_request(const char *body, size_t len, const char *gemini_model,
                             skiff_anth_sig_lookup *lookup, void *ud, json_t **out,
                             struct skiff_anth_error *err);

/* A countTokens answer ({"totalTokens": N}) as count_tokens' {"input_tokens": N}: malloc'd
 * JSON, or NULL when the answer has no totalTokens (or on OOM). */
char *skiff_anth_count_response(const char *body, size_t len);

#endif
