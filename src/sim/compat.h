/*
 * The simulator's side of Google's OpenAI-compatible endpoint (gemini-api.md §1.9, §4.6):
 * POST /v1beta/openai/chat/completions (whole and streamed), POST /v1beta/openai/embeddings
 * and GET /v1beta/openai/models[/{id}],
 * authenticated by Authorization: Bearer <key> with the native API's key rules, answered
 * with the native API's deterministic text; errors are Google's, as a JSON array.
 * (POST /v1alpha/auth_tokens is the Live API's: live.h.)
 */
#ifndef SKIFF_SIM_COMPAT_H
#define SKIFF_SIM_COMPAT_H

#include <stddef.h>

#include "server/http.h"
#include "sim/script.h"
#include "sim/simconf.h"

struct skiff_sim_compat_reply {
    int status;
    const char *content_type; /* static */
    char *body;               /* malloc'd (NULL on OOM) */
    size_t len;
};

/*
 * When req is a /v1beta/openai/ call: logs it in e (its key, model,
 * method), renders the reply into out (a scripted reply for the model, key and method
 * "chat.completions" or "models.list" first) and returns 1. Returns 0 for any other path.
 */
int skiff_sim_compat(const struct skiff_sim_conf *conf, struct skiff_sim_script *script,
                     const struct skiff_request *req, struct skiff_sim_log_entry *e,
                     struct skiff_sim_compat_reply *out);

#endif
