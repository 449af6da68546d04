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
    /* The three below name the key, so they retire it for every model, once a probe with
     * the key alone confirms them (skiff_fault_needs_probe). A 401 or 403 that names no key
     * (a file or cache of another project, a client's header) is SKIFF_FAULT_CLIENT. */
    SKIFF_FAULT_KEY_INVALID, /* API_KEY_INVALID, API_KEY_EXPIRED (or a non-Google 401) */
    SKIFF_FAULT_KEY_DENIED,  /* SERVICE_DISABLED, CONSUMER_SUSPENDED, API_KEY_*_BLOCKED... */
    SKIFF_FAULT_KEY_REGION,  /* FAILED_PRECONDITION about location or billing */
};

struct skiff_verdict {
    enum skiff_fault fault;
    double retry_delay_s; /* from RetryInfo (or Retry-After), in [0, SKIFF_MAX_RETRY_DELAY_S];
                           * -1 when the upstream gave none (or nothing readable) */
    char reason[128];     /* one line for logs and hints: "per-day quota (GenerateRe...)" */
};

/*
 * Classifies an upstream answer: status (0 for a transport failure), its body (may be NULL,
 * non-JSON, truncated, or a one-element array) and its Retry-After header value (may be
 * NULL). Always fills *v.
 */
void skiff_classify(int status, const char *body, size_t len, const char *retry_after,
                    struct skiff_verdict *v);

/*
 * Classifies how the Live API (a WebSocket) ended a session before its setupComplete: the
 * close frame's code and reason (reason[0..len), UTF-8; code 0: the connection ended without
 * one). Google accepts every handshake and refuses in the close: 1007 "API key not valid"
 * (KEY_INVALID) or "User location is not supported" (KEY_REGION), 1008 "The caller does not
 * have permission" (KEY_DENIED), 1011 "You exceeded your current quota" (QUOTA_OTHER), any
 * other 1011, 1013 or no close (TRANSIENT); the rest (an invalid argument, an unknown model,
 * an ephemeral token refused) is the client's. Always fills *v.
 */
void skiff_classify_live_close(int code, const char *reason, size_t len, struct skiff_verdict *v);

/* Whether the relay may try again (on another key, model, or after a wait). */
int skiff_fault_retryable(enum skiff_fault f);

/* Whether the fault would retire the key for every model: a verdict to confirm first with
 * a probe that carries the key and nothing of the client's (relay/probe.h). */
int skiff_fault_needs_probe(enum skiff_fault f);

/* Whether the fault is about the key rather than the request or the service. */
int skiff_fault_blames_key(enum skiff_fault f);

/* A short name for logs: "transient", "quota-minute", ... */
const char *skiff_fault_name(enum skiff_fault f);

/* The longest wait skiff takes from an upstream (RetryInfo, Retry-After): a day. Longer
 * values are cut to it; the per-day quota has its own rule (midnight Pacific). */
#define SKIFF_MAX_RETRY_DELAY_S 86400.0

/* Parses a protobuf Duration ("45.837906927s", "0s"): decimal seconds and the "s", nothing
 * else (no sign, exponent, hex, inf or nan). Returns the seconds clamped to
 * [0, SKIFF_MAX_RETRY_DELAY_S], or -1 when s is not a Duration. */
double skiff_parse_duration(const char *s);

#endif
