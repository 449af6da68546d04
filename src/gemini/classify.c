#include "gemini/classify.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * Reads "<digits>[.<digits>]" followed by end (the syntax of a protobuf Duration's seconds
 * and of Retry-After's delay-seconds), clamped to SKIFF_MAX_RETRY_DELAY_S. Nothing else is
 * taken: no sign, exponent, hex, "inf" or "nan", so the result is always finite. Returns -1
 * when s is not one.
 */
static double
parse_seconds(const char *s, const char *end_mark)
{
    const char *p = s;
    double v = 0;
    int digits = 0;
    for (; *p >= '0' && *p <= '9'; p++, digits++)
        if (v < SKIFF_MAX_RETRY_DELAY_S)
            v = v * 10 + (*p - '0');
    if (!digits)
        return -1;
    if (*p == '.') {
        double scale = 0.1;
        int frac = 0;
        /* NOLINTNEXTLINE(cert-flp30-c): p counts the loop; scale only follows the digit place. */
        for (p++; *p >= '0' && *p <= '9'; p++, frac++, scale /= 10)
            if (frac < 9)
                v += (*p - '0') * scale;
        if (!frac)
            return -1;
    }
    if (strcmp(p, end_mark) != 0)
        return -1;
    return v > SKIFF_MAX_RETRY_DELAY_S ? SKIFF_MAX_RETRY_DELAY_S : v;
}

double
skiff_parse_duration(const char *s)
{
    return s ? parse_seconds(s, "s") : -1;
}

void
skiff_classify_live_close(int code, const char *reason, size_t len, struct skiff_verdict *v)
{
    static const struct {
        int code;
        const char *says;
        enum skiff_fault fault;
    } known[] = {
        {1007, "API key not valid", SKIFF_FAULT_KEY_INVALID},
        {1007, "API key expired", SKIFF_FAULT_KEY_INVALID},
        {1007, "User location is not supported", SKIFF_FAULT_KEY_REGION},
        {1008, "The caller does not have permission", SKIFF_FAULT_KEY_DENIED},
        {1011, "exceeded your current quota", SKIFF_FAULT_QUOTA_OTHER},
    };
    memset(v, 0, sizeof *v);
    v->retry_delay_s = -1;
    v->fault = code == 0 || code == 1011 || code == 1013 || code == 1006 ? SKIFF_FAULT_TRANSIENT
                                                                         : SKIFF_FAULT_CLIENT;
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (code == known[i].code && memmem(reason, len, known[i].says, strlen(known[i].says)))
            v->fault = known[i].fault;
    if (code)
        snprintf(v->reason, sizeof v->reason, "close %d: %.*s", code, (int)(len < 100 ? len : 100),
                 reason);
    else
        snprintf(v->reason, sizeof v->reason, "the session ended without a close frame");
}

int
skiff_fault_retryable(enum skiff_fault f)
{
    return f != SKIFF_FAULT_NONE && f != SKIFF_FAULT_CLIENT;
}

int
skiff_fault_needs_probe(enum skiff_fault f)
{
    return f == SKIFF_FAULT_KEY_INVALID || f == SKIFF_FAULT_KEY_DENIED ||
           f == SKIFF_FAULT_KEY_REGION;
}

int
skiff_fault_blames_key(enum skiff_fault f)
{
    return f >= SKIFF_FAULT_QUOTA_MINUTE;
}

const char *
skiff_fault_name(enum skiff_fault f)
{
    static const char *const names[] = {"none",       "client",     "transient", "quota-minute",
                                        "quota-day",  "quota-zero", "quota",     "key-invalid",
                                        "key-denied", "key-region"};
    return (unsigned)f < sizeof names / sizeof names[0] ? names[f] : "unknown";
}

static void
set(struct skiff_verdict *v, enum skiff_fault f, const char *fmt, const char *arg)
{
    v->fault = f;
    /* cppcheck-suppress wrongPrintfScanfArgNum ; a reason without %s ignores arg (C11 7.21.6.1) */
    snprintf(v->reason, sizeof v->reason, fmt, arg ? arg : "");
}

/*
 * ErrorInfo reasons that only the key (its project, its restrictions) can earn: any request
 * with that key gets them. Each still needs a probe before a retirement
 * (skiff_fault_needs_probe): a client's header naming another project can earn some too.
 */
static int
key_reason(const char *reason)
{
    static const char *const reasons[] = {"SERVICE_DISABLED",
                                          "CONSUMER_SUSPENDED",
                                          "CONSUMER_INVALID",
                                          "BILLING_DISABLED",
                                          "API_KEY_SERVICE_BLOCKED",
                                          "API_KEY_IP_ADDRESS_BLOCKED",
                                          "API_KEY_HTTP_REFERRER_BLOCKED",
                                          "API_KEY_ANDROID_APP_BLOCKED",
                                          "API_KEY_IOS_APP_BLOCKED",
                                          NULL};
    for (const char *const *r = reasons; *r; r++)
        if (strcmp(*r, reason) == 0)
            return 1;
    return 0;
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
    json_array_foreach(details, i, d)
    {
        const char *r = json_string_value(json_object_get(d, "reason"));
        if (r && !reason)
            reason = r;
        const char *delay = json_string_value(json_object_get(d, "retryDelay"));
        if (delay)
            v->retry_delay_s = skiff_parse_duration(delay);
        size_t j;
        json_t *q;
        json_array_foreach(json_object_get(d, "violations"), j, q)
        {
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
    if ((reason &&
         (strcmp(reason, "API_KEY_INVALID") == 0 || strcmp(reason, "API_KEY_EXPIRED") == 0)) ||
        (status == 400 && msg && strcasestr(msg, "API key") &&
         (strstr(msg, "not valid") || strstr(msg, "not found") || strstr(msg, "expired")))) {
        set(v, SKIFF_FAULT_KEY_INVALID, "invalid API key (%s)",
            reason ? reason : "API_KEY_INVALID");
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
    if (reason && key_reason(reason)) {
        set(v, SKIFF_FAULT_KEY_DENIED, "the key's project or restrictions refuse it (%s)", reason);
        return 1;
    }
    /* The location or billing refusal carries no ErrorInfo in every capture, but may gain one:
     * the message decides, whatever the reason. */
    if (gstatus && strcmp(gstatus, "FAILED_PRECONDITION") == 0 && msg &&
        (strcasestr(msg, "location") || strcasestr(msg, "billing") || strcasestr(msg, "country") ||
         strcasestr(msg, "region"))) {
        set(v, SKIFF_FAULT_KEY_REGION,
            reason ? "location or billing (FAILED_PRECONDITION, %s)"
                   : "location or billing (FAILED_PRECONDITION)%s",
            reason);
        return 1;
    }
    if (status == 401 || status == 403 || (gstatus && strcmp(gstatus, "PERMISSION_DENIED") == 0)) {
        /* Nothing names the key: a file, cache or tuned model of another project, or a header
         * of the client's (X-Goog-User-Project, Authorization). Answered, no key blamed. */
        snprintf(v->reason, sizeof v->reason, "%d %s about the request, not the key%s%s",
                 status ? status : 403, gstatus ? gstatus : "PERMISSION_DENIED", reason ? ": " : "",
                 reason ? reason : "");
        v->fault = SKIFF_FAULT_CLIENT;
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
        /* delay-seconds only (RFC 9110 10.2.3); an HTTP-date is left unread. */
        while (*retry_after == ' ' || *retry_after == '\t')
            retry_after++;
        char digits[32];
        size_t n = strcspn(retry_after, " \t");
        if (n < sizeof digits) {
            memcpy(digits, retry_after, n);
            digits[n] = '\0';
            double s = parse_seconds(digits, "");
            if (s >= 0 && !strchr(digits, '.'))
                v->retry_delay_s = s;
        }
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
        /* Not Google's body (Google answers a bad key 400): a gateway refusing the key. */
        set(v, SKIFF_FAULT_KEY_INVALID, "the upstream refused the key (401, not a Google error)",
            NULL);
        break;
    case 403:
        set(v, SKIFF_FAULT_CLIENT, "403 that names no key (not a Google error)", NULL);
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
