#include "gemini/advice.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define L_TROUBLE "https://ai.google.dev/gemini-api/docs/troubleshooting"
#define L_KEY "https://ai.google.dev/gemini-api/docs/api-key"
#define L_BILLING "https://ai.google.dev/gemini-api/docs/billing"
#define L_REGIONS "https://ai.google.dev/gemini-api/docs/available-regions"
#define L_RATES "https://ai.google.dev/gemini-api/docs/rate-limits"
#define L_MODELS "https://ai.google.dev/gemini-api/docs/models"
#define L_VERSIONS "https://ai.google.dev/gemini-api/docs/api-versions"

/* The guide's table, one row per case the relay tells apart; the first row of a code is
 * its main case. */
static const struct skiff_advice table[] = {
    {400, "INVALID_ARGUMENT", "malformed request",
     "The request body is malformed: a typo, a missing required field, or a value out of range.",
     "A misspelt model name or field, empty contents, a parameter outside its range "
     "(candidateCount "
     "1-8, temperature 0-2, topP 0-1, maxOutputTokens up to the model's limit), or a feature of "
     "/v1beta sent to /v1.",
     "Check the request against the API reference; use /v1beta for beta features "
     "(systemInstruction, "
     "tools, thinkingConfig, responseSchema); check the model name with GET /v1beta/models.",
     0, L_VERSIONS},
    {400, "INVALID_ARGUMENT", "invalid API key",
     "The API key is not valid (ErrorInfo reason API_KEY_INVALID).",
     "The key was mistyped, deleted or rotated, or it is not a Gemini API key.",
     "Create or copy a valid key in Google AI Studio; skiff retires an invalid key from its pool "
     "and tries another one.",
     1, L_KEY},
    {400, "FAILED_PRECONDITION", "region or billing",
     "Gemini API free tier is not available in your country, or the location is not supported.",
     "The request comes from a region where the free tier is not offered and the project has no "
     "billing.",
     "Enable billing on the project in Google AI Studio, or route the upstream through a proxy in "
     "a supported region (upstreams.gemini.proxy).",
     1, L_REGIONS},
    {401, "UNAUTHENTICATED", "bad credentials",
     "The request had invalid authentication credentials.",
     "To skiff: a missing or unknown skiff token. To Google: an Authorization: Bearer header with "
     "an API key on a native endpoint.",
     "Send skiff's own token as x-goog-api-key (the SDKs' apiKey), ?key= or Bearer; send Gemini "
     "keys only in x-goog-api-key.",
     0, L_KEY},
    {403, "PERMISSION_DENIED", "no permission",
     "The API key doesn't have the required permissions.",
     "The wrong key, a key whose API restrictions exclude the Generative Language API, a "
     "suspended consumer, or a tuned model used without proper authentication.",
     "Check in Google Cloud Console that the key is valid, that the Generative Language API is "
     "enabled, and that the key's restrictions allow it. skiff retires a key only when the 403 "
     "names it (ErrorInfo SERVICE_DISABLED, CONSUMER_SUSPENDED, API_KEY_SERVICE_BLOCKED...) and a "
     "probe with the key alone confirms it; a 403 that names no key is about the request (a "
     "file or cache of another project) and is answered as it came.",
     1, L_KEY},
    {403, "PERMISSION_DENIED", "no API key",
     "The request carried no API key (\"Method doesn't allow unregistered callers\").",
     "No x-goog-api-key header and no ?key= parameter reached Google.",
     "Send the key in the x-goog-api-key header (what the SDKs do); behind skiff, check that "
     "upstreams.gemini.keys (or GEMINI_API_KEYS) is set.",
     0, L_KEY},
    {404, "NOT_FOUND", "not found", "The requested resource wasn't found.",
     "An unknown or retired model name, a method the model does not support, or a file "
     "referenced in the request that does not exist.",
     "List the models (GET /v1beta/models) and their supportedGenerationMethods; check file URIs "
     "and the API version.",
     0, L_MODELS},
    {404, "NOT_FOUND", "model retired",
     "The model is no longer available to new users (it may still be listed).",
     "Google closes older models to new projects before it shuts them down.",
     "Switch to the model the message names (for example gemini-3.6-flash for gemini-2.5-flash).",
     0, L_MODELS},
    {429, "RESOURCE_EXHAUSTED", "rate limit", "You've exceeded the rate limit.",
     "Too many requests for the key's tier; without quota details it is not clear which limit.",
     "Retry with exponential backoff, spread load over several keys, or request a quota "
     "increase.",
     1, L_RATES},
    {429, "RESOURCE_EXHAUSTED", "per-minute quota",
     "You exceeded a per-minute rate limit (requests or tokens per minute) for this model.",
     "Too many requests or tokens per minute for the key's tier; quotas are per project and per "
     "model.",
     "Wait for the RetryInfo delay (seconds), spread load over several keys, or request a higher "
     "tier; skiff rests that key for that model and serves from others.",
     1, L_RATES},
    {429, "RESOURCE_EXHAUSTED", "per-day quota",
     "You exhausted the requests-per-day quota of this model on this key.",
     "The daily quota (free tier: tens to hundreds of requests a day per model) is spent; it "
     "resets at midnight Pacific time, whatever RetryInfo says.",
     "Use another key or another model until midnight America/Los_Angeles, or enable billing; "
     "skiff rests the key for that model until then.",
     1, L_RATES},
    {429, "RESOURCE_EXHAUSTED", "no quota for this model",
     "The key has no quota at all for this model (quotaValue \"0\").",
     "Free-tier keys get no quota for some models (for example the Pro models in 2026).",
     "Use a paid key for this model or a model the key has quota for; skiff retires the key for "
     "this model.",
     0, L_BILLING},
    {500, "INTERNAL", "internal error", "An unexpected error occurred on Google's side.",
     "Often an input context that is too long, or a transient failure.",
     "Retry after a short wait; reduce the input context or switch to another model (for "
     "example from a Pro model to a Flash one). If it persists, report it with Send feedback in "
     "Google AI Studio.",
     1, L_TROUBLE},
    {503, "UNAVAILABLE", "overloaded",
     "The service is temporarily overloaded or down (\"The model is overloaded\").",
     "The model is running out of capacity; Pro models are hit first.",
     "Retry with backoff and fall back to another model (Pro to Flash): skiff does both "
     "(retry.*, fallbacks).",
     1, L_TROUBLE},
    {504, "DEADLINE_EXCEEDED", "deadline exceeded",
     "The service could not finish processing within the deadline.",
     "The prompt or context is too large to be processed in time.",
     "Set a larger timeout in the client (and retry.deadline_ms in skiff), or shorten the prompt.",
     1, L_TROUBLE},
};

#define NTABLE (sizeof table / sizeof table[0])

static const struct skiff_advice generic = {0,
                                            "UNKNOWN",
                                            "error",
                                            "The upstream answered with an error.",
                                            "See the error's message.",
                                            "Check the request and the key; retry if it is a 5xx.",
                                            0,
                                            L_TROUBLE};

/* Whether a row matches "503" or "UNAVAILABLE". */
static int
matches(const struct skiff_advice *a, const char *arg)
{
    char *end;
    long code = strtol(arg, &end, 10);
    if (*arg && *end == '\0')
        return a->code == code;
    return strcasecmp(a->status, arg) == 0;
}

const struct skiff_advice *
skiff_advice_lookup(const char *arg)
{
    for (size_t i = 0; i < NTABLE; i++)
        if (matches(&table[i], arg))
            return &table[i];
    return NULL;
}

size_t
skiff_advice_all(const char *arg, const struct skiff_advice **out, size_t max)
{
    size_t n = 0;
    for (size_t i = 0; i < NTABLE; i++) {
        if (!matches(&table[i], arg))
            continue;
        if (n < max)
            out[n] = &table[i];
        n++;
    }
    return n;
}

const struct skiff_advice *
skiff_advice_kind(const char *kind)
{
    for (size_t i = 0; i < NTABLE; i++)
        if (strcmp(table[i].kind, kind) == 0)
            return &table[i];
    return NULL;
}

const struct skiff_advice *
skiff_advice_code(int code)
{
    char c[16];
    snprintf(c, sizeof c, "%d", code);
    const struct skiff_advice *a = skiff_advice_lookup(c);
    return a ? a : &generic;
}

const struct skiff_advice *
skiff_advice_verdict(int status, const struct skiff_verdict *v, const char *body, size_t len)
{
    switch (v->fault) {
    case SKIFF_FAULT_KEY_INVALID:
        return status == 401 ? skiff_advice_code(401) : skiff_advice_kind("invalid API key");
    case SKIFF_FAULT_KEY_DENIED:
        if (body && memmem(body, len, "unregistered callers", 20))
            return skiff_advice_kind("no API key");
        return skiff_advice_kind("no permission");
    case SKIFF_FAULT_KEY_REGION:
        return skiff_advice_kind("region or billing");
    case SKIFF_FAULT_QUOTA_MINUTE:
        return skiff_advice_kind("per-minute quota");
    case SKIFF_FAULT_QUOTA_DAY:
        return skiff_advice_kind("per-day quota");
    case SKIFF_FAULT_QUOTA_ZERO:
        return skiff_advice_kind("no quota for this model");
    case SKIFF_FAULT_QUOTA_OTHER:
        return skiff_advice_kind("rate limit");
    default:
        break;
    }
    if (status == 404 && body && memmem(body, len, "no longer available", 19))
        return skiff_advice_kind("model retired");
    if (status == 403 && body && memmem(body, len, "unregistered callers", 20))
        return skiff_advice_kind("no API key");
    return skiff_advice_code(status);
}

const struct skiff_advice *
skiff_advice_error(json_t *body)
{
    if (json_is_array(body) && json_array_size(body) == 1)
        body = json_array_get(body, 0);
    json_t *err = json_object_get(body, "error");
    if (!json_is_object(err))
        return NULL;
    int code = (int)json_integer_value(json_object_get(err, "code"));
    const char *status = json_string_value(json_object_get(err, "status"));
    if (!code && status) {
        const struct skiff_advice *a = skiff_advice_lookup(status);
        code = a ? a->code : 0;
    }
    char *text = json_dumps(body, JSON_COMPACT);
    struct skiff_verdict v;
    skiff_classify(code ? code : 500, text, text ? strlen(text) : 0, NULL, &v);
    const struct skiff_advice *a =
        skiff_advice_verdict(code ? code : 500, &v, text, text ? strlen(text) : 0);
    free(text);
    /* A status name the table knows beats a bare code (FAILED_PRECONDITION is a 400). */
    if (a == skiff_advice_code(code) && status) {
        const struct skiff_advice *s = skiff_advice_lookup(status);
        if (s && s->code == code)
            return s;
    }
    return a;
}
