/*
 * Quota emulation: requests per minute, input tokens per minute and requests per day, per
 * (key, model), as the Gemini API counts them (gemini-api.md §5).
 *
 * Windows. The minute window opens with the first request after the previous one expired
 * and lasts 60 s; RPM and TPM share it, and the time left in it is the RetryInfo of a
 * per-minute 429 (the live API behaves like this rolling-from-first-use window rather than
 * a wall-clock minute). The day window is the Pacific calendar day: it ends at midnight in
 * America/Los_Angeles, with US daylight-saving rules computed here (no TZ database, no
 * setenv("TZ")).
 *
 * Spending is two-step so that refused or faulted requests cost nothing, as on the real
 * API: skiff_sim_quota_check says whether a request fits without counting it, and
 * skiff_sim_quota_spend counts it once the simulator has decided to answer it.
 *
 * Not thread-safe: the simulator runs one worker and owns one table.
 */
#ifndef SKIFF_SIM_QUOTA_H
#define SKIFF_SIM_QUOTA_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/* A limit value: a count, or one of these. */
#define SKIFF_SIM_UNLIMITED (-1L) /* never refused */

struct skiff_sim_limits {
    long rpm; /* 0: the model has no quota at all (every request is a 429 with limit 0) */
    long tpm;
    long rpd;
};

enum skiff_sim_quota_kind {
    SKIFF_SIM_QUOTA_RPM, /* GenerateRequestsPerMinutePerProjectPerModel-FreeTier */
    SKIFF_SIM_QUOTA_TPM, /* GenerateContentInputTokensPerModelPerMinute-FreeTier */
    SKIFF_SIM_QUOTA_RPD, /* GenerateRequestsPerDayPerProjectPerModel-FreeTier */
};

struct skiff_sim_violation {
    enum skiff_sim_quota_kind kind;
    long limit;
    int64_t retry_ms; /* until the window that refused the request ends */
};

struct skiff_sim_verdict {
    int n; /* violations; 0 means the request fits */
    struct skiff_sim_violation v[3];
};

struct skiff_sim_quota;

/* A new empty table that tracks at most max_entries (key, model) pairs. NULL on OOM. */
struct skiff_sim_quota *skiff_sim_quota_new(size_t max_entries);
void skiff_sim_quota_free(struct skiff_sim_quota *q);
/* Forgets every counter (POST /_sim/reset). */
void skiff_sim_quota_clear(struct skiff_sim_quota *q);

/*
 * Whether one request of `tokens` input tokens by key on model fits the limits at now_ms
 * (Unix milliseconds). Fills out (out->n == 0: it fits). Counts nothing. Returns 0.
 */
int skiff_sim_quota_check(struct skiff_sim_quota *q, const char *key, const char *model,
                          const struct skiff_sim_limits *lim, long tokens, int64_t now_ms,
                          struct skiff_sim_verdict *out);

/*
 * Counts one request of `tokens` input tokens. Returns 0, or SKIFF_ENOMEM. When the table
 * is full of live entries the request is not counted (and 0 is returned): the simulator
 * prefers forgetting a counter to refusing service for its own bookkeeping.
 */
int skiff_sim_quota_spend(struct skiff_sim_quota *q, const char *key, const char *model,
                          long tokens, int64_t now_ms);

/*
 * A 429 body in the 2026 form of gemini-api.md §4.5 for the violations of v (n >= 1):
 * message with one "* Quota exceeded for metric: ..." line per violation and "Please retry
 * in S.SSSs.", details Help, QuotaFailure, RetryInfo (the longest wait, whole seconds
 * rounded up). model names the model in quotaDimensions. as_array: wrap as the JSON-array
 * stream form does. Returns a malloc'd string or NULL on OOM.
 */
char *skiff_sim_quota_body(const struct skiff_sim_verdict *v, const char *model, int as_array);

#endif
