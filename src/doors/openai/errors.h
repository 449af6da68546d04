/*
 * OpenAI's error shape, {"error": {"message", "type", "param", "code"}}, for the OpenAI door:
 * built from skiff's own refusals (a struct the translators fill) and from the upstream's
 * Google error bodies, which are never forwarded raw (an array-shaped Google body breaks the
 * OpenAI SDKs' error parsing).
 *
 * Pure: no I/O. The door's error writer turns a struct skiff_oai_error into the status line,
 * the body of skiff_oai_error_json and, on a 429, a Retry-After header.
 */
#ifndef SKIFF_DOORS_OPENAI_ERRORS_H
#define SKIFF_DOORS_OPENAI_ERRORS_H

#include <stddef.h>

#include <jansson.h>

struct skiff_oai_error {
    int status;         /* the HTTP status to answer with */
    char param[128];    /* the request field at fault ("messages[2].content"), "" for none */
    char code[48];      /* OpenAI's code ("model_not_found"), "" for null */
    char message[1024]; /* what is wrong and how to fix it (Google's message is kept here) */
    long retry_after_s; /* from Google's RetryInfo.retryDelay; -1 when absent */
};

/* OpenAI's error type for an HTTP status: 400 invalid_request_error, 401
 * authentication_error, 403 permission_error, 404 not_found_error, 409 conflict_error, 413
 * request_too_large, 422 unprocessable_entity_error, 429 rate_limit_error, else (5xx)
 * api_error. A static string. */
const char *skiff_oai_error_type(int status);

/* Fills *e (status, param or NULL, code or NULL, printf-style message); retry_after_s = -1.
 * Returns SKIFF_EINVAL so that a translator can `return skiff_oai_error_set(...)`. */
int skiff_oai_error_set(struct skiff_oai_error *e, int status, const char *param, const char *code,
                        const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* {"error": {"message", "type", "param", "code"}} with null for an empty param or code.
 * New reference; NULL on OOM. */
json_t *skiff_oai_error_json(const struct skiff_oai_error *e);

/*
 * Translates an upstream error answer: status is the HTTP status the upstream gave (or, for
 * an error event inside a stream, 0: the body's error.code is used), body/len Google's
 * body, which may be an object {"error": {...}}, the array [{"error": {...}}] of the
 * OpenAI-compatible endpoint, or anything else (then a generic message that names the
 * status). Google's message is kept; code is Google's status in lower case
 * ("resource_exhausted"), or model_not_found for a 404 on a model; retry_after_s comes from a
 * RetryInfo detail. Always fills *out.
 */
void skiff_oai_error_from_google(int status, const char *body, size_t len,
                                 struct skiff_oai_error *out);

/* The same from a parsed Google error object (the value of "error", or the whole body). */
void skiff_oai_error_from_google_json(int status, const json_t *body, struct skiff_oai_error *out);

#endif
