/*
 * The Gemini door's 404s: a path skiff does not serve gets a message that says what it is
 * (an OpenAI path, a Gemini family not relayed yet) or the nearest path skiff serves.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "doors/gemini/door.h"
#include "gemini/catalog.h"

/* The path for a message: bytes that are not printable ASCII become %XX, so that the JSON
 * body (which must be UTF-8) keeps its message whatever the client sent. */
void
skiff_gemini_printable_path(const struct skiff_request *req, char *out, size_t outlen)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (size_t i = 0; i < req->path_len && i < 100 && o + 4 <= outlen; i++) {
        unsigned char c = (unsigned char)req->path[i];
        if (c > 0x20 && c < 0x7f) {
            out[o++] = (char)c;
        } else {
            out[o++] = '%';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    out[o] = '\0';
}

/* Whether the path starts with lit. */
static int
path_is(const struct skiff_request *req, const char *lit)
{
    size_t n = strlen(lit);
    return req->path_len >= n && memcmp(req->path, lit, n) == 0;
}

/* Whether the path holds lit anywhere. */
static int
path_has(const struct skiff_request *req, const char *lit)
{
    size_t n = strlen(lit);
    for (size_t i = 0; i + n <= req->path_len; i++)
        if (memcmp(req->path + i, lit, n) == 0)
            return 1;
    return 0;
}

static const char openai_msg[] =
    "%s is an OpenAI path that reached skiff's Gemini door: skiff's OpenAI door serves "
    "/v1/chat/completions, /v1/responses, /v1/embeddings and /v1/models (also under "
    "/openai/v1/) to requests with skiff's token as Authorization: Bearer and no Gemini "
    "credential (x-goog-api-key, ?key=, x-goog-api-client); point the OpenAI SDK's base URL "
    "at http://HOST:PORT/v1. The Gemini API is at /v1beta/models/{model}:generateContent (and "
    "streamGenerateContent, countTokens, embedContent, batchEmbedContents; GET /v1beta/models "
    "lists the models), called with x-goog-api-key";

/*
 * The message of a 404 for a path skiff does not serve: what the path is (an OpenAI path, a
 * Gemini family skiff does not relay yet) or the nearest path it serves, by edit distance
 * over the served shapes with the model the path names.
 */
void
skiff_gemini_no_route_message(const struct skiff_request *req, char *msg, size_t msglen)
{
    static const char serves[] = "skiff serves /v1beta/models/{model}:{method} (generateContent, "
                                 "streamGenerateContent, countTokens, embedContent, "
                                 "batchEmbedContents, batchGenerateContent, "
                                 "asyncBatchEmbedContent, predict, predictLongRunning), "
                                 "/v1beta/models and /v1beta/models/{model}, /v1beta/files, "
                                 "/upload/v1beta/files, /v1beta/cachedContents, /v1beta/batches "
                                 "and /v1beta/operations, and the same under /v1; the model "
                                 "calls, models and auth_tokens under /v1alpha; and Google's "
                                 "OpenAI-compatible /v1beta/openai/chat/completions, "
                                 "/v1beta/openai/embeddings and /v1beta/openai/models";
    static const struct {
        const char *part, *what;
    } families[] = {
        {"/tunedModels", "tunedModels"},
        {"/corpora", "corpora"},
        {"/fileSearchStores", "fileSearchStores"},
        {"/openai/", "Google's OpenAI-compatible endpoint's other calls (/v1beta/openai/)"},
    };
    char path[304];
    skiff_gemini_printable_path(req, path, sizeof path);
    if (path_is(req, "/v1/chat/") || path_is(req, "/v1/completions") ||
        path_is(req, "/v1/embeddings") || path_is(req, "/v1/responses") ||
        path_is(req, "/v1/images/") || path_is(req, "/v1/audio/") || path_is(req, "/chat/") ||
        path_is(req, "/openai/")) {
        snprintf(msg, msglen, openai_msg, path);
        return;
    }
    int gemini = path_is(req, "/v1beta/") || path_is(req, "/v1/") || path_is(req, "/v1alpha/") ||
                 path_is(req, "/upload/");
    for (size_t i = 0; gemini && i < sizeof families / sizeof families[0]; i++) {
        if (path_has(req, families[i].part)) {
            snprintf(msg, msglen, "skiff has no route for %s: %s %s not relayed by skiff yet; %s",
                     path, families[i].what, families[i].part[0] == ':' ? "is" : "are", serves);
            return;
        }
    }
    if (path_is(req, "/v1alpha/")) {
        snprintf(msg, msglen,
                 "skiff has no route for %s: on /v1alpha skiff relays the model calls, "
                 "models and auth_tokens only; %s",
                 path, serves);
        return;
    }
    /* The model the path names: its last segment, before any ':'. */
    const char *p = req->path, *end = req->path + req->path_len;
    const char *seg = p;
    for (const char *c = p; c < end; c++)
        if (*c == '/')
            seg = c + 1;
    const char *colon = memchr(seg, ':', (size_t)(end - seg));
    size_t mlen = (size_t)((colon ? colon : end) - seg);
    char model[72] = "{model}";
    if (mlen && mlen < sizeof model && skiff_model_name_ok(seg, mlen))
        snprintf(model, sizeof model, "%.*s", (int)mlen, seg);
    static const char *const versions[] = {"v1beta", "v1"};
    static const char *const methods[] = {"generateContent", "streamGenerateContent", "countTokens",
                                          "embedContent", "batchEmbedContents"};
    char best[160] = "", cand[160];
    size_t best_d = SIZE_MAX;
    for (size_t v = 0; v < 2; v++) {
        for (size_t m = 0; m < 7; m++) {
            int n;
            if (m == 0)
                n = snprintf(cand, sizeof cand, "/%s/models", versions[v]);
            else if (m == 1)
                n = snprintf(cand, sizeof cand, "/%s/models/%s", versions[v], model);
            else
                n = snprintf(cand, sizeof cand, "/%s/models/%s:%s", versions[v], model,
                             methods[m - 2]);
            size_t d = skiff_edit_distance(req->path, req->path_len, cand, (size_t)n);
            if (d < best_d) {
                best_d = d;
                snprintf(best, sizeof best, "%s", cand);
            }
        }
    }
    size_t d = skiff_edit_distance(req->path, req->path_len, "/healthz", 8);
    if (d < best_d) {
        best_d = d;
        snprintf(best, sizeof best, "/healthz");
    }
    /* A likely typo: at most one edit per three bytes of the served path, and eight in all. */
    if (best_d && best_d <= 8 && best_d * 3 <= strlen(best))
        snprintf(msg, msglen, "skiff has no route for %s: did you mean %s? (%s)", path, best,
                 serves);
    else
        snprintf(msg, msglen, "skiff has no route for %s: %s", path, serves);
}
