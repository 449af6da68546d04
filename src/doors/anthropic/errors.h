/*
 * Anthropic's error shape, {"type": "error", "error": {"type", "message"}}, and the one
 * mapping from an HTTP status (and a Google status) to Anthropic's error types:
 *
 *   400 invalid_request_error   401 authentication_error   403 permission_error
 *   404 not_found_error         413 request_too_large      429 rate_limit_error
 *   529 overloaded_error        500 (and anything else) api_error
 *
 * A Google error body (an object, or the array-shaped one the JSON stream sends) is read for
 * its status and message and re-rendered in this shape: it is never forwarded raw.
 */
#ifndef SKIFF_DOORS_ANTHROPIC_ERRORS_H
#define SKIFF_DOORS_ANTHROPIC_ERRORS_H

#include <stddef.h>

#define SKIFF_ANTH_MSG_MAX 512

/* An error a door answers with: the HTTP status, Anthropic's type (a static string) and
 * the message (a sentence saying what is wrong and how to fix it). */
struct skiff_anth_error {
    int status;
    const char *type;
    char message[SKIFF_ANTH_MSG_MAX];
};

/* Fills *e with status, the type that status stands for and a printf-style message
 * (truncated to fit). Returns SKIFF_EINVAL, so a translator can `return skiff_anth_fail(...)`. */
int skiff_anth_fail(struct skiff_anth_error *e, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The Anthropic type for an HTTP status: the table above (a static string). */
const char *skiff_anth_error_type(int status);

/*
 * The error a client of this door sees for an upstream failure the engine reports: the
 * upstream's HTTP status, its Google status ("UNAVAILABLE", may be NULL) and its message
 * (may be NULL). Google's 503 UNAVAILABLE (and 500/504 saying overloaded) becomes 529
 * overloaded_error: the engine reports it only after its retries and fallbacks. A 499
 * CANCELLED or 504 DEADLINE_EXCEEDED is 500 api_error; other statuses map by the table.
 */
void skiff_anth_error_from_google(int status, const char *google_status, const char *message,
                                  struct skiff_anth_error *out);

/*
 * The same from a Google error body of len bytes: {"error": {"code", "message", "status"}},
 * or [{"error": {...}}]. A body that is neither keeps status and gets a generic message.
 */
void skiff_anth_error_from_google_body(int status, const char *body, size_t len,
                                       struct skiff_anth_error *out);

/* The JSON body of e, compact: {"type":"error","error":{"type":...,"message":...}}.
 * Malloc'd, NULL on OOM. */
char *skiff_anth_error_body(const struct skiff_anth_error *e);

#endif
