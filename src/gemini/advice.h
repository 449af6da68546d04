/*
 * The troubleshooting knowledge of the Gemini API guide (../shared/seeds): for each error,
 * what it means, the likely cause and the fix. One table, used by `skiff explain`
 * (cli/explain.c), by the relay's error hints (gemini/hint.h) and by `skiff doctor`.
 */
#ifndef SKIFF_GEMINI_ADVICE_H
#define SKIFF_GEMINI_ADVICE_H

#include <stddef.h>

#include <jansson.h>

#include "gemini/classify.h"

struct skiff_advice {
    int code;           /* HTTP status */
    const char *status; /* google.rpc.Code name */
    const char *kind;   /* a short name for the case, e.g. "per-day quota" */
    const char *meaning;
    const char *cause;
    const char *fix;
    int retryable;    /* the relay retries it (with backoff, or on another key) */
    const char *link; /* the page of Google's documentation for the case */
};

/* Advice for a status code or a google.rpc status name ("503", "RESOURCE_EXHAUSTED"): the
 * main case of that code. NULL when unknown. */
const struct skiff_advice *skiff_advice_lookup(const char *code_or_status);

/* The main row of an HTTP status, or a generic row when the table has none (0 gives the
 * generic row). Never NULL; static storage. */
const struct skiff_advice *skiff_advice_code(int status);

/* The advice row of a kind ("per-day quota"); NULL when unknown. Static storage. */
const struct skiff_advice *skiff_advice_kind(const char *kind);

/*
 * Every row matching a code or status name, main case first, into out (up to max).
 * Returns how many matched (may exceed max).
 */
size_t skiff_advice_all(const char *code_or_status, const struct skiff_advice **out, size_t max);

/*
 * Advice for a whole Google error body (an object, or a one-element array), reading the
 * details: ErrorInfo reason, QuotaFailure quotaId/quotaValue, and the message.
 * NULL when the JSON is not a Google error.
 */
const struct skiff_advice *skiff_advice_error(json_t *body);

/*
 * Advice for an upstream answer already classified (gemini/classify.h): status and verdict
 * pick the row (per-day vs per-minute 429, invalid key vs permission, region, ...); body
 * (may be NULL) refines the message-only cases (no API key sent, a retired model).
 * Never NULL for status >= 400 (falls back to the status's main row, then to a generic one).
 */
const struct skiff_advice *skiff_advice_verdict(int status, const struct skiff_verdict *v,
                                                const char *body, size_t len);

#endif
