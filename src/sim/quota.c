#include "sim/quota.h"

#include "gemini/pacific.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/err.h"
#include "gemini/error.h"
#include "base/hash.h"

#define MINUTE_MS 60000
#define NBUCKETS 1024

struct entry {
    struct entry *next;
    char *key;   /* "KEY\0MODEL", owned */
    size_t klen; /* both parts and the NUL between them */
    int64_t minute_start_ms;
    long minute_requests;
    long minute_tokens;
    int64_t day;
    long day_requests;
};

struct skiff_sim_quota {
    struct entry *buckets[NBUCKETS];
    size_t n;
    size_t max;
};

/* ---- the table ---- */

static uint64_t
hash(const char *p, size_t n)
{
    return skiff_fnv1a64(SKIFF_FNV64_BASIS, p, n);
}

struct skiff_sim_quota *
skiff_sim_quota_new(size_t max_entries)
{
    struct skiff_sim_quota *q = calloc(1, sizeof *q);
    if (!q)
        return NULL;
    q->max = max_entries;
    return q;
}

void
skiff_sim_quota_clear(struct skiff_sim_quota *q)
{
    for (size_t b = 0; b < NBUCKETS; b++) {
        struct entry *e = q->buckets[b];
        while (e) {
            struct entry *next = e->next;
            free(e->key);
            free(e);
            e = next;
        }
        q->buckets[b] = NULL;
    }
    q->n = 0;
}

void
skiff_sim_quota_free(struct skiff_sim_quota *q)
{
    if (!q)
        return;
    skiff_sim_quota_clear(q);
    free(q);
}

/* Builds "KEY\0MODEL" into a bounded buffer; returns its length or 0 when too long. */
static size_t
make_id(char *out, size_t outlen, const char *key, const char *model)
{
    size_t kl = strlen(key), ml = strlen(model);
    if (kl + ml + 1 > outlen)
        return 0;
    memcpy(out, key, kl);
    out[kl] = '\0';
    memcpy(out + kl + 1, model, ml);
    return kl + 1 + ml;
}

static struct entry *
find(struct skiff_sim_quota *q, const char *id, size_t len)
{
    for (struct entry *e = q->buckets[hash(id, len) % NBUCKETS]; e; e = e->next)
        if (e->klen == len && memcmp(e->key, id, len) == 0)
            return e;
    return NULL;
}

/* Drops entries whose windows have all expired: they hold nothing a request could meet. */
static void
sweep(struct skiff_sim_quota *q, int64_t now_ms)
{
    int64_t today = skiff_pacific_day(now_ms);
    for (size_t b = 0; b < NBUCKETS; b++) {
        struct entry **pp = &q->buckets[b];
        while (*pp) {
            struct entry *e = *pp;
            if (now_ms >= e->minute_start_ms + MINUTE_MS && e->day != today) {
                *pp = e->next;
                free(e->key);
                free(e);
                q->n--;
            } else {
                pp = &e->next;
            }
        }
    }
}

int
skiff_sim_quota_check(struct skiff_sim_quota *q, const char *key, const char *model,
                      const struct skiff_sim_limits *lim, long tokens, int64_t now_ms,
                      struct skiff_sim_verdict *out)
{
    char id[1024];
    size_t len = make_id(id, sizeof id, key, model);
    struct entry *e = len ? find(q, id, len) : NULL;
    long mreq = 0, mtok = 0, dreq = 0;
    int64_t minute_left = MINUTE_MS - (now_ms % MINUTE_MS);

    if (e && now_ms < e->minute_start_ms + MINUTE_MS) {
        mreq = e->minute_requests;
        mtok = e->minute_tokens;
        minute_left = e->minute_start_ms + MINUTE_MS - now_ms;
    }
    if (e && e->day == skiff_pacific_day(now_ms))
        dreq = e->day_requests;

    out->n = 0;
    if (lim->rpm != SKIFF_SIM_UNLIMITED && mreq + 1 > lim->rpm)
        out->v[out->n++] = (struct skiff_sim_violation){SKIFF_SIM_QUOTA_RPM, lim->rpm, minute_left};
    if (lim->tpm != SKIFF_SIM_UNLIMITED && mtok + tokens > lim->tpm)
        out->v[out->n++] = (struct skiff_sim_violation){SKIFF_SIM_QUOTA_TPM, lim->tpm, minute_left};
    if (lim->rpd != SKIFF_SIM_UNLIMITED && dreq + 1 > lim->rpd)
        out->v[out->n++] = (struct skiff_sim_violation){
            SKIFF_SIM_QUOTA_RPD, lim->rpd, skiff_pacific_next_midnight_ms(now_ms) - now_ms};
    return 0;
}

int
skiff_sim_quota_spend(struct skiff_sim_quota *q, const char *key, const char *model, long tokens,
                      int64_t now_ms)
{
    char id[1024];
    size_t len = make_id(id, sizeof id, key, model);
    if (!len)
        return 0;
    struct entry *e = find(q, id, len);
    if (!e) {
        if (q->n >= q->max)
            sweep(q, now_ms);
        if (q->n >= q->max)
            return 0;
        e = calloc(1, sizeof *e);
        if (!e)
            return SKIFF_ENOMEM;
        e->key = malloc(len);
        if (!e->key) {
            free(e);
            return SKIFF_ENOMEM;
        }
        memcpy(e->key, id, len);
        e->klen = len;
        e->minute_start_ms = INT64_MIN / 2;
        e->day = INT64_MIN;
        size_t b = hash(id, len) % NBUCKETS;
        e->next = q->buckets[b];
        q->buckets[b] = e;
        q->n++;
    }
    if (now_ms >= e->minute_start_ms + MINUTE_MS) {
        e->minute_start_ms = now_ms;
        e->minute_requests = 0;
        e->minute_tokens = 0;
    }
    int64_t today = skiff_pacific_day(now_ms);
    if (e->day != today) {
        e->day = today;
        e->day_requests = 0;
    }
    e->minute_requests++;
    e->minute_tokens += tokens;
    e->day_requests++;
    return 0;
}

/* ---- the 429 body ---- */

static const char *const metric_of[] = {
    "generativelanguage.googleapis.com/generate_content_free_tier_requests",
    "generativelanguage.googleapis.com/generate_content_free_tier_input_token_count",
    "generativelanguage.googleapis.com/generate_content_free_tier_requests",
};
static const char *const quota_id_of[] = {
    "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
    "GenerateContentInputTokensPerModelPerMinute-FreeTier",
    "GenerateRequestsPerDayPerProjectPerModel-FreeTier",
};

#define QUOTA_PREAMBLE                                                                             \
    "You exceeded your current quota, please check your plan and billing details. For more "       \
    "information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits. To "   \
    "monitor your current usage, head to: https://ai.dev/rate-limit. "

char *
skiff_sim_quota_body(const struct skiff_sim_verdict *v, const char *model, int as_array)
{
    struct skiff_buf msg;
    skiff_buf_init(&msg, 8192);
    int64_t wait_ms = 0;
    json_t *violations = json_array();
    int rc = skiff_buf_adds(&msg, QUOTA_PREAMBLE);
    for (int i = 0; i < v->n; i++) {
        const struct skiff_sim_violation *x = &v->v[i];
        char limit[32];
        snprintf(limit, sizeof limit, "%ld", x->limit);
        rc |= skiff_buf_printf(&msg, "\n* Quota exceeded for metric: %s, limit: %s, model: %s",
                               metric_of[x->kind], limit, model);
        json_array_append_new(
            violations, json_pack("{s:s,s:s,s:{s:s,s:s},s:s}", "quotaMetric", metric_of[x->kind],
                                  "quotaId", quota_id_of[x->kind], "quotaDimensions", "location",
                                  "global", "model", model, "quotaValue", limit));
        if (x->retry_ms > wait_ms)
            wait_ms = x->retry_ms;
    }
    rc |= skiff_buf_printf(&msg, "\nPlease retry in %lld.%03llds.", (long long)(wait_ms / 1000),
                           (long long)(wait_ms % 1000));
    if (rc != 0) {
        json_decref(violations);
        skiff_buf_release(&msg);
        return NULL;
    }

    /*
     * retryDelay is whole seconds, truncated: a live body said "retry in 38.292227434s" with
     * "retryDelay": "38s". skiff_gerr_retry_info rounds up, so the detail is built here.
     */
    char delay[32];
    snprintf(delay, sizeof delay, "%llds", (long long)(wait_ms / 1000));
    json_t *details = json_array();
    json_array_append_new(details,
                          skiff_gerr_help("Learn more about Gemini API quotas",
                                          "https://ai.google.dev/gemini-api/docs/rate-limits"));
    json_array_append_new(details, json_pack("{s:s,s:o}", "@type",
                                             "type.googleapis.com/google.rpc.QuotaFailure",
                                             "violations", violations));
    json_array_append_new(details, json_pack("{s:s,s:s}", "@type",
                                             "type.googleapis.com/google.rpc.RetryInfo",
                                             "retryDelay", delay));
    char *body = skiff_gerr_body(429, "RESOURCE_EXHAUSTED", msg.data, details, as_array);
    skiff_buf_release(&msg);
    return body;
}
