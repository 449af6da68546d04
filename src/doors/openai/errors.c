#include "doors/openai/errors.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"

const char *
skiff_oai_error_type(int status)
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
    case 409:
        return "conflict_error";
    case 413:
        return "request_too_large";
    case 422:
        return "unprocessable_entity_error";
    case 429:
        return "rate_limit_error";
    default:
        return status >= 400 && status < 500 ? "invalid_request_error" : "api_error";
    }
}

int
skiff_oai_error_set(struct skiff_oai_error *e, int status, const char *param, const char *code,
                    const char *fmt, ...)
{
    e->status = status;
    snprintf(e->param, sizeof e->param, "%s", param ? param : "");
    snprintf(e->code, sizeof e->code, "%s", code ? code : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
    e->retry_after_s = -1;
    return SKIFF_EINVAL;
}

json_t *
skiff_oai_error_json(const struct skiff_oai_error *e)
{
    json_t *in = json_pack("{s:s, s:s, s:o, s:o}", "message", e->message, "type",
                           skiff_oai_error_type(e->status), "param",
                           e->param[0] ? json_string(e->param) : json_null(), "code",
                           e->code[0] ? json_string(e->code) : json_null());
    if (!in)
        return NULL;
    return json_pack("{s:o}", "error", in);
}

/* "12s" or "1.5s" (a protobuf Duration in JSON) in whole seconds, rounded up; -1 if not. */
static long
duration_s(const char *s)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end != 's' || end[1] || v < 0 || v > 86400.0 * 365)
        return -1;
    long whole = (long)v;
    return v > (double)whole ? whole + 1 : whole;
}

static long
retry_delay(const json_t *details)
{
    size_t i;
    const json_t *d;
    json_array_foreach(details, i, d)
    {
        const char *t = json_string_value(json_object_get(d, "@type"));
        const char *delay = json_string_value(json_object_get(d, "retryDelay"));
        if (t && delay && strstr(t, "google.rpc.RetryInfo"))
            return duration_s(delay);
    }
    return -1;
}

void
skiff_oai_error_from_google_json(int status, const json_t *body, struct skiff_oai_error *out)
{
    if (json_is_array(body))
        body = json_array_get(body, 0);
    const json_t *err = json_object_get(body, "error");
    if (!json_is_object(err))
        err = body;
    json_int_t code = json_integer_value(json_object_get(err, "code"));
    if (status <= 0)
        status = code >= 400 && code <= 599 ? (int)code : 500;
    const char *msg = json_string_value(json_object_get(err, "message"));
    const char *gstatus = json_string_value(json_object_get(err, "status"));
    if (msg && msg[0])
        skiff_oai_error_set(out, status, NULL, NULL, "%s", msg);
    else
        skiff_oai_error_set(out, status, NULL, NULL,
                            "The Gemini API answered %d without an error message.", status);
    if (status == 404 && (!msg || strstr(msg, "model") || strstr(msg, "Model")))
        snprintf(out->code, sizeof out->code, "model_not_found");
    else if (gstatus) {
        size_t i = 0;
        for (; gstatus[i] && i + 1 < sizeof out->code; i++)
            out->code[i] = (char)tolower((unsigned char)gstatus[i]);
        out->code[i] = '\0';
    }
    out->retry_after_s = retry_delay(json_object_get(err, "details"));
}

void
skiff_oai_error_from_google(int status, const char *body, size_t len, struct skiff_oai_error *out)
{
    json_t *j = body ? json_loadb(body, len, 0, NULL) : NULL;
    skiff_oai_error_from_google_json(status, j, out);
    json_decref(j);
}
