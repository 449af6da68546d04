#include "gemini/error.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/http.h"

#define TYPE_PREFIX "type.googleapis.com/google.rpc."

const char *
skiff_gerr_status_for(int http_status)
{
    switch (http_status) {
    case 400: return "INVALID_ARGUMENT";
    case 401: return "UNAUTHENTICATED";
    case 403: return "PERMISSION_DENIED";
    case 404: return "NOT_FOUND";
    case 409: return "ABORTED";
    case 413: return "INVALID_ARGUMENT"; /* Google answers oversized bodies with 400/413 */
    case 429: return "RESOURCE_EXHAUSTED";
    case 499: return "CANCELLED";
    case 500: return "INTERNAL";
    case 501: return "UNIMPLEMENTED";
    case 502: return "UNAVAILABLE";
    case 503: return "UNAVAILABLE";
    case 504: return "DEADLINE_EXCEEDED";
    default: return http_status >= 500 ? "INTERNAL" : "FAILED_PRECONDITION";
    }
}

char *
skiff_gerr_body(int code, const char *status, const char *message, json_t *details, int as_array)
{
    json_t *err = json_object();
    json_object_set_new(err, "code", json_integer(code));
    json_object_set_new(err, "message", json_string(message ? message : ""));
    json_object_set_new(err, "status", json_string(status ? status : skiff_gerr_status_for(code)));
    if (details && json_array_size(details) > 0)
        json_object_set(err, "details", details);
    json_decref(details);

    json_t *root = json_pack("{s:o}", "error", err);
    char *s = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(root);
    if (!s)
        return NULL;
    /* The API ends error bodies with a newline; on the JSON-array stream form it wraps the
     * object as the stream's only element: "[{" ... "}\n]", the object not indented further. */
    size_t n = strlen(s);
    char *out = malloc(n + 4);
    if (out) {
        if (as_array)
            snprintf(out, n + 4, "[%s\n]", s);
        else
            snprintf(out, n + 4, "%s\n", s);
    }
    free(s);
    return out;
}

void
skiff_gerr_respond(struct skiff_request *req, int code, const char *status, const char *message,
                   json_t *details)
{
    char *body = skiff_gerr_body(code, status, message, details, 0);
    if (!body) {
        skiff_http_abort(req, "out of memory building an error");
        return;
    }
    skiff_http_respond(req, code, "application/json; charset=UTF-8", body, strlen(body));
    free(body);
}

static json_t *
detail(const char *type)
{
    char t[96];
    snprintf(t, sizeof t, TYPE_PREFIX "%s", type);
    return json_pack("{s:s}", "@type", t);
}

json_t *
skiff_gerr_help(const char *description, const char *url)
{
    json_t *d = detail("Help");
    json_object_set_new(d, "links",
                        json_pack("[{s:s,s:s}]", "description", description, "url", url));
    return d;
}

json_t *
skiff_gerr_retry_info(double seconds)
{
    char buf[32];
    if (seconds < 0)
        seconds = 0;
    /* The API writes whole seconds in RetryInfo (the message carries the fraction). */
    snprintf(buf, sizeof buf, "%.0fs", ceil(seconds));
    json_t *d = detail("RetryInfo");
    json_object_set_new(d, "retryDelay", json_string(buf));
    return d;
}

json_t *
skiff_gerr_error_info(const char *reason, const char *domain, json_t *metadata)
{
    json_t *d = detail("ErrorInfo");
    json_object_set_new(d, "reason", json_string(reason));
    json_object_set_new(d, "domain", json_string(domain));
    if (metadata)
        json_object_set_new(d, "metadata", metadata);
    return d;
}

json_t *
skiff_gerr_localized(const char *message)
{
    json_t *d = detail("LocalizedMessage");
    json_object_set_new(d, "locale", json_string("en-US"));
    json_object_set_new(d, "message", json_string(message));
    return d;
}

json_t *
skiff_gerr_bad_request(const char *field, const char *description)
{
    json_t *v = json_object();
    if (field)
        json_object_set_new(v, "field", json_string(field));
    json_object_set_new(v, "description", json_string(description));
    json_t *d = detail("BadRequest");
    json_object_set_new(d, "fieldViolations", json_pack("[o]", v));
    return d;
}
