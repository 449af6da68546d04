/*
 * Google-format errors: {"error":{"code":N,"message":"...","status":"...","details":[...]}},
 * pretty-printed with a 2-space indent and a trailing newline, as the Gemini API sends them.
 * Every error skiff itself answers leaves through skiff_gerr_respond; the simulator builds
 * its bodies here too.
 */
#ifndef SKIFF_GEMINI_ERROR_H
#define SKIFF_GEMINI_ERROR_H

#include <jansson.h>

struct skiff_request;

/* The google.rpc.Code name for an HTTP status (400 -> "INVALID_ARGUMENT"). */
const char *skiff_gerr_status_for(int http_status);

/*
 * A new error body. status NULL: derived from code. details: an array, stolen (NULL: none).
 * as_array: wrap the object in a one-element array, as the API does on the JSON-array form
 * of streamGenerateContent. Returns a malloc'd NUL-terminated string (NULL on OOM).
 */
char *skiff_gerr_body(int code, const char *status, const char *message, json_t *details,
                      int as_array);

/*
 * Answers req with an error (the single exit for skiff's own client-visible failures).
 * details is stolen. Adds content-type application/json; charset=UTF-8.
 */
void skiff_gerr_respond(struct skiff_request *req, int code, const char *status,
                        const char *message, json_t *details);

/* Detail objects (new references), each with its "@type". */
json_t *skiff_gerr_help(const char *description, const char *url);
json_t *skiff_gerr_retry_info(double seconds); /* retryDelay as a protobuf Duration "38s" */
json_t *skiff_gerr_error_info(const char *reason, const char *domain, json_t *metadata);
json_t *skiff_gerr_localized(const char *message);
json_t *skiff_gerr_bad_request(const char *field, const char *description); /* field may be NULL */

#endif
