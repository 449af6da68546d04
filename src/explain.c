#include "explain.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* The guide's table, one row per case the relay tells apart. */
static const struct skiff_advice table[] = {
    {400, "INVALID_ARGUMENT", "malformed request",
     "The request body is malformed: a typo, a missing required field, or a value out of range.",
     "A misspelt model name or field, empty contents, a parameter outside its range (candidateCount "
     "1-8, temperature 0-2, topP 0-1, maxOutputTokens up to the model's limit), or a feature of "
     "/v1beta sent to /v1.",
     "Check the request against the API reference; use /v1beta for beta features (systemInstruction, "
     "tools, thinkingConfig, responseSchema); check the model name with GET /v1beta/models.",
     0},
    {400, "INVALID_ARGUMENT", "invalid API key",
     "The API key is not valid (ErrorInfo reason API_KEY_INVALID).",
     "The key was mistyped, deleted or rotated, or it is not a Gemini API key.",
     "Create or copy a valid key in Google AI Studio; skiff retires an invalid key from its pool "
     "and tries another one.",
     1},
    {400, "FAILED_PRECONDITION", "region or billing",
     "Gemini API free tier is not available in your country, or the location is not supported.",
     "The request comes from a region where the free tier is not offered and the project has no "
     "billing.",
     "Enable billing on the project in Google AI Studio, or route the upstream through a proxy in "
     "a supported region (upstreams.gemini.proxy).",
     1},
    {401, "UNAUTHENTICATED", "bad credentials",
     "The request had invalid authentication credentials.",
     "To skiff: a missing or unknown skiff token. To Google: an Authorization: Bearer header with "
     "an API key on a native endpoint.",
     "Send skiff's own token as x-goog-api-key (the SDKs' apiKey), ?key= or Bearer; send Gemini "
     "keys only in x-goog-api-key.",
     0},
    {403, "PERMISSION_DENIED", "no permission",
     "The API key doesn't have the required permissions.",
     "The wrong key, a key whose API restrictions exclude the Generative Language API, a "
     "suspended consumer, or a tuned model used without proper authentication.",
     "Check in Google Cloud Console that the key is valid, that the Generative Language API is "
     "enabled, and that the key's restrictions allow it; skiff retires the key and uses others.",
     1},
    {404, "NOT_FOUND", "not found",
     "The requested resource wasn't found.",
     "An unknown or retired model name, a method the model does not support, or a file "
     "referenced in the request that does not exist.",
     "List the models (GET /v1beta/models) and their supportedGenerationMethods; check file URIs "
     "and the API version.",
     0},
    {429, "RESOURCE_EXHAUSTED", "per-minute quota",
     "You exceeded a per-minute rate limit (requests or tokens per minute) for this model.",
     "Too many requests or tokens per minute for the key's tier; quotas are per project and per "
     "model.",
     "Wait for the RetryInfo delay (seconds), spread load over several keys, or request a higher "
     "tier; skiff rests that key for that model and serves from others.",
     1},
    {429, "RESOURCE_EXHAUSTED", "per-day quota",
     "You exhausted the requests-per-day quota of this model on this key.",
     "The daily quota (free tier: tens to hundreds of requests a day per model) is spent; it "
     "resets at midnight Pacific time, whatever RetryInfo says.",
     "Use another key or another model until midnight America/Los_Angeles, or enable billing; "
     "skiff rests the key for that model until then.",
     1},
    {429, "RESOURCE_EXHAUSTED", "no quota for this model",
     "The key has no quota at all for this model (quotaValue \"0\").",
     "Free-tier keys get no quota for some models (for example the Pro models in 2026).",
     "Use a paid key for this model or a model the key has quota for; skiff retires the key for "
     "this model.",
     0},
    {429, "RESOURCE_EXHAUSTED", "rate limit",
     "You've exceeded the rate limit.",
     "Too many requests for the key's tier.",
     "Retry with exponential backoff, spread load over several keys, or request a quota "
     "increase.",
     1},
    {500, "INTERNAL", "internal error",
     "An unexpected error occurred on Google's side.",
     "Often an input context that is too long, or a transient failure.",
     "Retry after a short wait; reduce the input context or switch to another model (for "
     "example from a Pro model to a Flash one).",
     1},
    {503, "UNAVAILABLE", "overloaded",
     "The service is temporarily overloaded or down (\"The model is overloaded\").",
     "The model is running out of capacity; Pro models are hit first.",
     "Retry with backoff and fall back to another model (Pro to Flash): skiff does both "
     "(retry.*, fallbacks).",
     1},
    {504, "DEADLINE_EXCEEDED", "deadline exceeded",
     "The service could not finish processing within the deadline.",
     "The prompt or context is too large to be processed in time.",
     "Set a larger timeout in the client (and retry.deadline_ms in skiff), or shorten the prompt.",
     1},
};

const struct skiff_advice *
skiff_explain_lookup(const char *arg)
{
    char *end;
    long code = strtol(arg, &end, 10);
    int numeric = *arg && *end == '\0';
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        if (numeric ? table[i].code == code : strcasecmp(table[i].status, arg) == 0)
            return &table[i];
    }
    return NULL;
}

static const struct skiff_advice *
by_kind(const char *kind)
{
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (strcmp(table[i].kind, kind) == 0)
            return &table[i];
    return NULL;
}

const struct skiff_advice *
skiff_explain_error(json_t *body)
{
    if (json_is_array(body) && json_array_size(body) == 1)
        body = json_array_get(body, 0);
    json_t *err = json_object_get(body, "error");
    if (!json_is_object(err))
        return NULL;
    int code = (int)json_integer_value(json_object_get(err, "code"));
    const char *status = json_string_value(json_object_get(err, "status"));
    const char *msg = json_string_value(json_object_get(err, "message"));
    json_t *details = json_object_get(err, "details");
    size_t i;
    json_t *d;
    json_array_foreach(details, i, d) {
        const char *reason = json_string_value(json_object_get(d, "reason"));
        if (reason && strcmp(reason, "API_KEY_INVALID") == 0)
            return by_kind("invalid API key");
        json_t *violations = json_object_get(d, "violations");
        size_t j;
        json_t *v;
        json_array_foreach(violations, j, v) {
            const char *qid = json_string_value(json_object_get(v, "quotaId"));
            const char *qv = json_string_value(json_object_get(v, "quotaValue"));
            if (qv && strcmp(qv, "0") == 0)
                return by_kind("no quota for this model");
            if (qid && strstr(qid, "PerDay"))
                return by_kind("per-day quota");
            if (qid && strstr(qid, "PerMinute"))
                return by_kind("per-minute quota");
        }
    }
    if (status && strcmp(status, "FAILED_PRECONDITION") == 0)
        return by_kind("region or billing");
    if (code == 400 && msg && strstr(msg, "API key"))
        return by_kind("invalid API key");
    if (status) {
        const struct skiff_advice *a = skiff_explain_lookup(status);
        if (a)
            return a;
    }
    char c[8];
    snprintf(c, sizeof c, "%d", code);
    return skiff_explain_lookup(c);
}

static void
print_advice(const struct skiff_advice *a)
{
    printf("%d %s (%s)\n\n", a->code, a->status, a->kind);
    printf("What it means: %s\n\n", a->meaning);
    printf("Likely cause:  %s\n\n", a->cause);
    printf("Fix:           %s\n\n", a->fix);
    printf("skiff retries it: %s\n", a->retryable ? "yes" : "no (the client must change the request)");
}

int
skiff_explain_main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: skiff explain CODE|STATUS|-\n"
                        "  skiff explain 503\n"
                        "  skiff explain RESOURCE_EXHAUSTED\n"
                        "  curl ... | skiff explain -     (a Google error body on stdin)\n");
        return 2;
    }
    const struct skiff_advice *a;
    if (strcmp(argv[1], "-") == 0) {
        json_error_t e;
        json_t *body = json_loadf(stdin, JSON_DISABLE_EOF_CHECK, &e);
        if (!body) {
            fprintf(stderr, "skiff explain: stdin is not JSON (%s at line %d)\n", e.text, e.line);
            return 2;
        }
        a = skiff_explain_error(body);
        json_decref(body);
    } else {
        a = skiff_explain_lookup(argv[1]);
    }
    if (!a) {
        fprintf(stderr, "skiff explain: no advice for '%s'; try one of 400 401 403 404 429 500 "
                        "503 504 or a google.rpc status name\n", argv[1]);
        return 1;
    }
    print_advice(a);
    return 0;
}
