#include "doors/anthropic/errors.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "base/err.h"

const char *
skiff_anth_error_type(int status)
{
    switch (status) {
    case 400:
        return "invalid_request_error";
    case 401:
        return "authentication_error";
    case 403:
        return "permission_error";
    case 404:
        return "not_found_error";
    case 413:
        return "request_too_large";
    case 429:
        return "rate_limit_error";
    case 529:
        return "overloaded_error";
    default:
        return "api_error";
    }
}

/* A message cut to fit must not end inside a UTF-8 sequence (jansson refuses it). */
static void
trim_utf8(char *s)
{
    size_t n = strlen(s);
    if (n < SKIFF_ANTH_MSG_MAX - 1)
        return;
    size_t i = n;
    while (i > 0 && ((unsigned char)s[i - 1] & 0xC0) == 0x80)
        i--;
    if (i > 0 && ((unsigned char)s[i - 1] & 0x80))
        s[i - 1] = '\0';
}

static void
set(struct skiff_anth_error *e, int status, const char *msg)
{
    e->status = status;
    e->type = skiff_anth_error_type(status);
    snprintf(e->message, sizeof e->message, "%s", msg);
    trim_utf8(e->message);
}

int
skiff_anth_fail(struct skiff_anth_error *e, int status, const char *fmt, ...)
{
    va_list ap;
    e->status = status;
    e->type = skiff_anth_error_type(status);
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
    trim_utf8(e->message);
    return SKIFF_EINVAL;
}

/* Anthropic defines only the statuses of the table; every other one is folded onto it. */
static int
anthropic_status(int status, const char *gs, const char *msg)
{
    if (status == 503 || (gs && strcmp(gs, "UNAVAILABLE") == 0))
        return 529;
    if ((status == 500 || status == 504) && msg && strcasestr(msg, "overloaded"))
        return 529;
    switch (status) {
    case 400:
    case 401:
    case 403:
    case 404:
    case 413:
    case 429:
        return status;
    case 409:
    case 412:
    case 422:
        return 400;
    default:
        return 500;
    }
}

void
skiff_anth_error_from_google(int status, const char *google_status, const char *message,
                             struct skiff_anth_error *out)
{
    int st = anthropic_status(status, google_status, message);
    if (message && *message) {
        set(out, st, message);
        return;
    }
    switch (st) {
    case 529:
        set(out, st, "Overloaded: the upstream stayed unavailable after retries and fallbacks.");
        break;
    case 429:
        set(out, st, "Rate limited: every upstream key is out of quota; retry later.");
        break;
    default:
        set(out, st, "The upstream failed without saying why.");
    }
}

void
skiff_anth_error_from_google_body(int status, const char *body, size_t len,
                                  struct skiff_anth_error *out)
{
    json_t *root = body ? json_loadb(body, len, 0, NULL) : NULL;
    const json_t *obj = root;
    if (json_is_array(obj))
        obj = json_array_get(obj, 0);
    const json_t *err = json_object_get(obj, "error");
    const char *gs = json_string_value(json_object_get(err, "status"));
    const char *msg = json_string_value(json_object_get(err, "message"));
    skiff_anth_error_from_google(status, gs, msg, out);
    json_decref(root);
}

char *
skiff_anth_error_body(const struct skiff_anth_error *e)
{
    json_t *j = json_pack("{s:s,s:{s:s,s:s}}", "type", "error", "error", "type",
                          e->type ? e->type : "api_error", "message", e->message);
    if (!j) /* a message that is not UTF-8 */
        j = json_pack("{s:s,s:{s:s,s:s}}", "type", "error", "error", "type",
                      e->type ? e->type : "api_error", "message", "(message not UTF-8)");
    if (!j)
        return NULL;
    char *s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    return s;
}
