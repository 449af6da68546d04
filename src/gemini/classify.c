#include "gemini/classify.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Longest wait an upstream may ask for; NaN, infinities and longer waits are not taken as
 * given (they would overflow the milliseconds the key pool computes from them). */
#define MAX_DELAY_S 86400.0

/* A delay in seconds, or -1 when d is not a finite number >= 0; clamped to a day. */
static double
sane_delay(double d)
{
    if (!isfinite(d) || d < 0)
        return -1;
    return d > MAX_DELAY_S ? MAX_DELAY_S : d;
}

double
skiff_parse_duration(const char *s)
{
    if (!s || !*s)
        return -1;
    char *end;
    double d = strtod(s, &end);
    if (end == s || strcmp(end, "s") != 0)
        return -1;
    return sane_delay(d);
}

int
skiff_fault_retryable(enum skiff_fault f)
{
    return f != SKIFF_FAULT_NONE && f != SKIFF_FAULT_CLIENT;
}

int
skiff_fault_blames_key(enum skiff_fault f)
{
    return f >= SKIFF_FAULT_QUOTA_MINUTE;
}

const char *
skiff_fault_name(enum skiff_fault f)
{
    static const char *const names[] = {"none", "client", "transient", "quota-minute",
                                        "quota-day", "quota-zero", "quota", "key-invalid",
                                        "key-denied", "key-region"};
    return (unsigned)f < sizeof names / sizeof names[0] ? names[f] : "unknown";
}

static void
set(struct skiff_verdict *v, enum skiff_fault f, const char *fmt, const char *arg)
{
    v->fault = f;
    snprintf(v->reason, sizeof v->reason, fmt, arg ? arg : "");
}

/* Reads the details of a Google error object into v; returns 1 when they decided it. */
static int
from_details(json_t *err, int status, struct skiff_verdict *v)
{
    json_t *details = json_object_get(err, "details");
    const char *gstatus = json_string_value(json_object_get(err, "status"));
    const char *reason = NULL, *quota_id = NULL, *quota_value = NULL;
    size_t i;
    json_t *d;
    json_array_foreach(details, i, d) {
        const char *r = json_string_value(json_object_get(d, "reason"));
        if (r && !reason)
            reason = r;
        const char *delay = json_string_value(json_object_get(d, "retryDelay"));
        if (delay)
            v->retry_delay_s = skiff_parse_duration(delay);
        size_t j;
        json_t *q;
        json_array_foreach(json_object_get(d, "violations"), j, q) {
            const char *id = json_string_value(json_object_get(q, "quotaId"));
            const char *val = json_string_value(json_object_get(q, "quotaValue"));
            /* With several violations, the longest wait decides: a day beats a minute. */
            if (id && (!quota_id || strstr(id, "PerDay"))) {
                quota_id = id;
                quota_value = val;
            }
        }
    }

    const char *msg = json_string_value(json_object_get(err, "message"));
    if ((reason && strcmp(reason, "API_KEY_INVALID") == 0) ||
        (status == 400 && msg && strcasestr(msg, "API key") &&
         (strstr(msg, "not valid") || strstr(msg, "not found")))) {
        set(v, SKIFF_FAULT_KEY_INVALID, "invalid API key (API_KEY_INVALID)", NULL);
        return 1;
    }
    if (status == 429) {
        if (quota_value && strcmp(quota_value, "0") == 0) {
            set(v, SKIFF_FAULT_QUOTA_ZERO, "no quota for this model (%s, quotaValue 0)", quota_id);
            return 1;
        }
        if (quota_id && strstr(quota_id, "PerDay")) {
            set(v, SKIFF_FAULT_QUOTA_DAY, "per-day quota (%s)", quota_id);
            return 1;
        }
        if (quota_id && strstr(quota_id, "PerMinute")) {
            set(v, SKIFF_FAULT_QUOTA_MINUTE, "per-minute quota (%s)", quota_id);
            return 1;
        }
        set(v, SKIFF_FAULT_QUOTA_OTHER, "rate limited (429 without quota details)", NULL);
        return 1;
    }
    if (gstatus && strcmp(gstatus, "FAILED_PRECONDITION") == 0) {
        set(v, SKIFF_FAULT_KEY_REGION, "location or billing (FAILED_PRECONDITION)", NULL);
        return 1;
    }
    if (status == 403 || (gstatus && strcmp(gstatus, "PERMISSION_DENIED") == 0)) {
        set(v, SKIFF_FAULT_KEY_DENIED, "permission denied (%s)", reason ? reason : "PERMISSION_DENIED");
        return 1;
    }
    return 0;
}

void
skiff_classify(int status, const char *body, size_t len, const char *retry_after,
               struct skiff_verdict *v)
{
    memset(v, 0, sizeof *v);
    v->retry_delay_s = -1;
    if (retry_after) {
        char *end;
        double s = strtod(retry_after, &end);
        if (end != retry_after)
            v->retry_delay_s = sane_delay(s);
    }
    if (status >= 200 && status < 300) {
        v->fault = SKIFF_FAULT_NONE;
        return;
    }
    if (status == 0) {
        set(v, SKIFF_FAULT_TRANSIENT, "no answer from the upstream", NULL);
        return;
    }

    json_t *root = body && len ? json_loadb(body, len, 0, NULL) : NULL;
    json_t *obj = root;
    if (json_is_array(obj) && json_array_size(obj) == 1)
        obj = json_array_get(obj, 0);
    json_t *err = json_object_get(obj, "error");
    int google = json_is_object(err);
    int decided = google && from_details(err, status, v);
    json_decref(root);
    if (decided)
        return;

    switch (status) {
    case 401:
        set(v, SKIFF_FAULT_KEY_INVALID, "the upstream refused the key (401)", NULL);
        break;
    case 403:
        set(v, SKIFF_FAULT_KEY_DENIED, "permission denied (403)", NULL);
        break;
    case 429:
        set(v, SKIFF_FAULT_QUOTA_OTHER, "rate limited (429)", NULL);
        break;
    case 408:
    case 500:
    case 502:
    case 503:
    case 504:
        v->fault = SKIFF_FAULT_TRANSIENT;
        snprintf(v->reason, sizeof v->reason, "%d %s", status,
                 google ? "from the upstream" : "with a body that is not a Google error");
        break;
    default:
        if (status >= 500) {
            snprintf(v->reason, sizeof v->reason, "%d from the upstream", status);
            v->fault = SKIFF_FAULT_TRANSIENT;
        } else {
            snprintf(v->reason, sizeof v->reason, "%d: the request was refused", status);
            v->fault = SKIFF_FAULT_CLIENT;
        }
    }
}
