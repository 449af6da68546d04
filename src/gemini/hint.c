#include "gemini/hint.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gemini/advice.h"
#include "gemini/classify.h"
#include "gemini/error.h"
#include "gemini/pacific.h"

#define LONG_INPUT_BYTES (256u * 1024) /* about 64k tokens: "long" for the 500 advice */

static int64_t
clock_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *
plural(int n)
{
    return n == 1 ? "" : "s";
}

/* The one-line hint for a classified error. */
static void
compose(int status, const struct skiff_verdict *v, const struct skiff_advice *a,
        const struct skiff_hint_ctx *ctx, char *out, size_t cap)
{
    const char *model = ctx->model && *ctx->model ? ctx->model : "this model";
    switch (v->fault) {
    case SKIFF_FAULT_KEY_INVALID:
        snprintf(out, cap,
                 "the API key is not valid (API_KEY_INVALID): create or copy a valid "
                 "key in Google AI Studio and replace it in upstreams.gemini.keys");
        return;
    case SKIFF_FAULT_KEY_DENIED:
        if (strcmp(a->kind, "no API key") == 0)
            snprintf(out, cap, "no API key reached Google: send it in x-goog-api-key");
        else
            snprintf(out, cap,
                     "permission denied: check in Google Cloud Console that the key's "
                     "API restrictions allow the Generative Language API and that the "
                     "API is enabled for its project");
        return;
    case SKIFF_FAULT_KEY_REGION:
        snprintf(out, cap,
                 "the free tier is not offered in the caller's region: enable billing "
                 "on the project in Google AI Studio, or route skiff's upstream "
                 "through a proxy in a supported region (upstreams.gemini.proxy%s)",
                 ctx->proxy_configured ? "; the configured proxy's exit is not in one" : "");
        return;
    case SKIFF_FAULT_QUOTA_MINUTE:
        if (v->retry_delay_s >= 0)
            snprintf(out, cap,
                     "per-minute quota of %s exhausted: it frees up in %.0fs; spread "
                     "load over more keys or request a higher tier",
                     model, v->retry_delay_s < 1 ? 1 : v->retry_delay_s);
        else
            snprintf(out, cap,
                     "per-minute quota of %s exhausted: it frees up within a minute; "
                     "spread load over more keys or request a higher tier",
                     model);
        return;
    case SKIFF_FAULT_QUOTA_DAY: {
        int64_t now = ctx->now_ms ? ctx->now_ms : clock_ms();
        int64_t at = ctx->day_reset_ms ? ctx->day_reset_ms : skiff_pacific_next_midnight_ms(now);
        time_t t = (time_t)(at / 1000);
        struct tm tm;
        char when[32];
        gmtime_r(&t, &tm);
        strftime(when, sizeof when, "%Y-%m-%dT%H:%MZ", &tm);
        long mins = at > now ? (long)((at - now + 59999) / 60000) : 0;
        snprintf(out, cap,
                 "per-day quota of %s exhausted: it resets at midnight Pacific "
                 "(%s, in %ldh%02ldm), not when RetryInfo says; use another key or "
                 "model until then, or enable billing",
                 model, when, mins / 60, mins % 60);
        return;
    }
    case SKIFF_FAULT_QUOTA_ZERO:
        snprintf(out, cap,
                 "the key has no quota at all for %s (quotaValue 0, as free keys on "
                 "Pro models): use a paid key or another model",
                 model);
        return;
    case SKIFF_FAULT_QUOTA_OTHER:
        snprintf(out, cap,
                 "rate limited: retry with backoff, add keys, or request a quota "
                 "increase");
        return;
    default:
        break;
    }
    switch (status) {
    case 500:
        if (ctx->input_bytes >= LONG_INPUT_BYTES)
            snprintf(out, cap,
                     "internal error with a long input (%zu KiB): reduce the context "
                     "or switch to another model (Pro to Flash); skiff tried %d "
                     "time%s",
                     ctx->input_bytes / 1024, ctx->attempts, plural(ctx->attempts));
        else
            snprintf(out, cap,
                     "internal error on Google's side: skiff tried %d time%s; retry "
                     "later, or switch model if it persists",
                     ctx->attempts, plural(ctx->attempts));
        return;
    case 502:
    case 503:
        snprintf(out, cap,
                 "the model is overloaded: skiff already retried %d time%s across %d "
                 "key%s and %d model%s; retry later, or add fallbacks (fallbacks: "
                 "{%s: [...]})",
                 ctx->attempts, plural(ctx->attempts), ctx->keys_tried, plural(ctx->keys_tried),
                 ctx->models_tried, plural(ctx->models_tried), model);
        return;
    case 504:
        snprintf(out, cap,
                 "the deadline passed: raise the client's timeout and skiff's "
                 "retry.deadline_ms (now %d ms), or shorten the prompt",
                 ctx->deadline_ms);
        return;
    case 404:
        if (strcmp(a->kind, "model retired") == 0)
            snprintf(out, cap,
                     "%s is closed to new users: switch to the model the message "
                     "names",
                     model);
        else
            snprintf(out, cap,
                     "not found: check the model name and method with GET "
                     "/v1beta/models, and file URIs");
        return;
    case 400:
        snprintf(out, cap,
                 "the request is malformed: check it against the API reference "
                 "(skiff explain 400); beta features need /v1beta");
        return;
    case 403:
        if (strcmp(a->kind, "no API key") == 0)
            snprintf(out, cap, "no API key reached Google: send it in x-goog-api-key");
        else
            snprintf(out, cap,
                     "permission denied for something the request refers to or "
                     "sends (a file, cached content or tuned model of another project "
                     "is not accessible with skiff's keys); no key was blamed. If every "
                     "request gets it, check the keys with skiff doctor");
        return;
    default:
        snprintf(out, cap, "%s", a->fix);
    }
}

/* Keeps the header value one printable ASCII line. */
static void
sanitize(char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
            *s = ' ';
}

int
skiff_hint_apply(int status, const char *body, size_t len, const struct skiff_hint_ctx *ctx,
                 char **new_body, size_t *new_len, char *hint, size_t hintlen)
{
    static const struct skiff_hint_ctx none = {0};
    if (!ctx)
        ctx = &none;
    *new_body = NULL;
    *new_len = 0;
    if (hintlen)
        hint[0] = '\0';
    if (status < 400)
        return 0;

    struct skiff_verdict v;
    skiff_classify(status, body, len, NULL, &v);
    const struct skiff_advice *a = skiff_advice_verdict(status, &v, body, len);
    char line[512];
    if (ctx->override)
        snprintf(line, sizeof line, "%s", ctx->override);
    else
        compose(status, &v, a, ctx, line, sizeof line);
    sanitize(line);
    if (hintlen)
        snprintf(hint, hintlen, "%s", line);

    json_t *root = body && len ? json_loadb(body, len, 0, NULL) : NULL;
    json_t *obj =
        json_is_array(root) && json_array_size(root) == 1 ? json_array_get(root, 0) : root;
    json_t *err = json_object_get(obj, "error");
    if (!json_is_object(err)) {
        json_decref(root);
        return 0;
    }
    json_t *details = json_object_get(err, "details");
    if (!json_is_array(details)) {
        details = json_array();
        if (json_object_set_new(err, "details", details) < 0) {
            json_decref(root);
            return -1;
        }
    }
    json_array_append_new(details, skiff_gerr_help(line, a->link));
    char *s = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(root);
    if (!s)
        return -1;
    size_t n = strlen(s);
    char *out = realloc(s, n + 2);
    if (!out) {
        free(s);
        return -1;
    }
    out[n] = '\n';
    out[n + 1] = '\0';
    *new_body = out;
    *new_len = n + 1;
    return 1;
}
