/*
 * OpenAI Chat Completions request → Gemini generateContent request (docs/internals/openai.md
 * has the field tables). Pure: no I/O, no engine. What the answer's translators need later
 * (the asked model, stream options, whether thoughts were asked...) is returned with the body.
 *
 * Media given by http(s) URL are not fetched here: each becomes an inlineData part whose
 * mimeType and data are empty, listed in media with its URL, for the door to fetch (under
 * its media rules) and fill with skiff_oai_chat_fill_media before sending.
 */
#ifndef SKIFF_DOORS_OPENAI_CHAT_REQUEST_H
#define SKIFF_DOORS_OPENAI_CHAT_REQUEST_H

#include <stddef.h>

#include <jansson.h>

#include "doors/openai/errors.h"
#include "gemini/catalog.h"

/* The signature cache's read side: the thought signature stored for a tool-call id, or NULL.
 * The string is borrowed and must stay valid until skiff_oai_chat_request returns. */
typedef const char *skiff_oai_sig_lookup(void *ud, const char *call_id);

/* Gemini takes at most 5 stop sequences; more is a 400 on param "stop". */
#define SKIFF_OAI_MAX_STOP 5

struct skiff_oai_chat_opts {
    const char *gemini_model; /* the model the request goes to (after the models: map) */
    /* The catalog's facts about it, or NULL when unknown (then reasoning_effort is checked by
     * the model's name only). Borrowed. */
    const struct skiff_model_info *info;
    skiff_oai_sig_lookup *lookup; /* NULL: no cache */
    void *ud;
    int include_thoughts; /* the config's thinking.include_thoughts default */
};

struct skiff_oai_chat {
    json_t *body;         /* the generateContent request; owned */
    char *model;          /* the model name the client asked for; owned */
    int stream;           /* "stream": true */
    int include_usage;    /* stream_options.include_usage */
    int n;                /* choices asked (candidateCount), 1 by default */
    int include_thoughts; /* thoughts are asked for: answer them as reasoning_content */
    int parallel_calls;   /* 0 when parallel_tool_calls is false: answer only the first call */
    json_t *call_names;   /* {tool_call_id: function name} of the history; owned */
    json_t *media; /* [{"url", "param" (the field, for errors), "inlineData": <the part>}]; owned */
};

/*
 * Translates req (borrowed) for opts->gemini_model. Returns 0 with *out filled (release it
 * with skiff_oai_chat_release), or SKIFF_EINVAL with the 400 in *err (status, param, message
 * that says what to change), or SKIFF_ENOMEM. Unknown fields are ignored, never forwarded.
 */
int skiff_oai_chat_request(const json_t *req, const struct skiff_oai_chat_opts *opts,
                           struct skiff_oai_chat *out, struct skiff_oai_error *err);

/* Fills media entry i (fetched by the door): mime type and base64 data (copied). 0 or
 * SKIFF_EINVAL (no such entry) or SKIFF_ENOMEM. */
int skiff_oai_chat_fill_media(struct skiff_oai_chat *c, size_t i, const char *mime,
                              const char *b64);

void skiff_oai_chat_release(struct skiff_oai_chat *c);

#endif
