/*
 * Hints on upstream errors: the guide's advice for the case at hand, added to the error a
 * client receives as a google.rpc.Help detail and as a one-line x-skiff-hint header. The
 * upstream's code, status and message are kept as they were; only error.details grows.
 * The advice comes from the one table in gemini/advice.c.
 */
#ifndef SKIFF_GEMINI_HINT_H
#define SKIFF_GEMINI_HINT_H

#include <stddef.h>
#include <stdint.h>

/* What the relay knows about the request when it answers with an upstream error. */
struct skiff_hint_ctx {
    int attempts;         /* upstream calls made */
    int keys_tried;       /* distinct keys used */
    int models_tried;     /* distinct models tried (the asked one and fallbacks) */
    int deadline_ms;      /* the request's deadline (retry.deadline_ms or the client's) */
    const char *model;    /* the model of the last attempt (NULL: unknown) */
    int64_t day_reset_ms; /* Unix ms when per-day quotas reset; 0: next midnight Pacific */
    int64_t now_ms;       /* Unix ms; 0: the clock */
    size_t input_bytes;   /* the request body's size (for the 500 "long input" advice) */
    int proxy_configured; /* upstreams.gemini.proxy is set */
    const char *override; /* the hint to give instead of the guide's (NULL: the guide's) */
};

/*
 * Builds the hint for an upstream error (status >= 400) with body (len bytes; a Google
 * error object, a one-element array of one, or anything else). Always writes the one-line
 * hint into hint (NUL-terminated, printable ASCII, "" for a status below 400).
 *
 * Returns 1 with *new_body / *new_len set to a new malloc'd body (the caller frees it): the
 * same error with a google.rpc.Help detail appended to error.details (pretty-printed with a
 * 2-space indent and a trailing newline, as the API writes errors). Returns 0 when the body
 * is left as it is (not a Google error, or status < 400): *new_body is NULL. -1 on OOM.
 */
int skiff_hint_apply(int status, const char *body, size_t len, const struct skiff_hint_ctx *ctx,
                     char **new_body, size_t *new_len, char *hint, size_t hintlen);

#endif
