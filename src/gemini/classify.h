/*
 * What an upstream failure means for the relay: whether to retry, whom to blame, and for how
 * long to rest a key. Decided from the HTTP status *and* the error details (ErrorInfo reason,
 * QuotaFailure quotaId and quotaValue, RetryInfo retryDelay), because a Gemini 429 may mean
 * "wait 40 s", "wait until midnight Pacific" or "this key never gets this model".
 * Pure: no I/O; parses only error bodies.
 */
#ifndef SKIFF_CLASSIFY_H
#define SKIFF_CLASSIFY_H

#include <stddef.h>

enum skiff_fault {
    SKIFF_FAULT_NONE = 0,     /* success */
    SKIFF_FAULT_CLIENT,       /* the request is wrong: answer it, no retry, no key blamed */
    SKIFF_FAULT_TRANSIENT,    /* 500/502/503/504, reset, timeout: retry with backoff */
    SKIFF_FAULT_QUOTA_MINUTE, /* per-minute quota: rest (key, model) for the RetryInfo delay */
    SKIFF_FAULT_QUOTA_DAY,    /* per-day quota: rest (key, model) until midnight Pacific */
    SKIFF_FAULT_QUOTA_ZERO,   /* quotaValue "0": the key has no quota for the model at all */
    SKIFF_FAULT_QUOTA_OTHER,  /* a 429 without quota details: rest (key, model) briefly */
    SKIFF_FAULT_KEY_INVALID,  /* API_KEY_INVALID: retire the key for every model */
    SKIFF_FAULT_KEY_DENIED,   /* PERMISSION_DENIED: retire the key */
    SKIFF_FAULT_KEY_REGION,   /* FAILED_PRECONDITION (location, billing): retire the key */
};

struct skiff_verdict {
    enum skiff_fault fault;
    double retry_delay_s; /* from RetryInfo (or Retry-After), at most 86400; < 0 when none */
    char reason[128];     /* one line for logs and hints: "per-day quota (GenerateRe...)" */
};

/*
 * Classifies an upstream answer: status (0 for a transport failure), its body (may be NULL,
 * non-JSON, truncated, or a one-element array) and its Retry-After header value (may be
 * NULL). Always fills *v.
 */
void skiff_classify(int status, const char *body, size_t len, const char *retry_after,
                    struct skiff_verdict *v);

/* Whether the relay may try again (on another key, model, or after a wait). */
int skiff_fault_retryable(enum skiff_fault f);

/* Whether the fault is about the key rather than the request or the service. */
int skiff_fault_blames_key(enum skiff_fault f);

/* A short name for logs: "transient", "quota-minute", ... */
const char *skiff_fault_name(enum skiff_fault f);

/* Parses a protobuf Duration ("45.837906927s", "0s"); returns -1 when it is not one or not
 * finite, and at most 86400 (a day). */
double skiff_parse_duration(const char *s);

#endif
