/*
 * The troubleshooting knowledge of the Gemini API guide (../shared/seeds): for each error,
 * what it means, the likely cause and the fix. Used by `skiff explain` (and later by the
 * relay's error hints and `skiff doctor`).
 */
#ifndef SKIFF_EXPLAIN_H
#define SKIFF_EXPLAIN_H

#include <jansson.h>

struct skiff_advice {
    int code;            /* HTTP status */
    const char *status;  /* google.rpc.Code name */
    const char *kind;    /* a short name for the case, e.g. "per-day quota" */
    const char *meaning;
    const char *cause;
    const char *fix;
    int retryable;       /* the relay retries it (with backoff, or on another key) */
};

/* Advice for a status code or a google.rpc status name ("503", "RESOURCE_EXHAUSTED").
 * NULL when unknown. */
const struct skiff_advice *skiff_explain_lookup(const char *code_or_status);

/*
 * Advice for a whole Google error body (an object, or a one-element array), reading the
 * details: ErrorInfo reason, QuotaFailure quotaId/quotaValue, and the message.
 * NULL when the JSON is not a Google error.
 */
const struct skiff_advice *skiff_explain_error(json_t *body);

/* `skiff explain ARG`: prints the advice; 0 when found, 1 when not, 2 on usage errors. */
int skiff_explain_main(int argc, char **argv);

#endif
