/*
 * Local validation of Gemini-native requests: the client mistakes of the troubleshooting
 * guide (a misspelt model, empty contents, a parameter out of range, a /v1beta feature sent
 * to /v1, a body of the wrong shape) answered at once, without spending a round trip and a
 * request of quota.
 *
 * Conservative by contract: a request is refused only when the API would surely refuse it.
 * Unknown fields are never refused, snake_case and camelCase names are both read, and
 * whatever skiff cannot judge (a number sent as a string, an escaped key, a model newer than
 * the built-in catalog) goes upstream untouched. docs/internals/validation.md lists every
 * rule, its evidence and its cost.
 *
 * Cost: no allocation and no DOM. The body is walked once by a small scanner that descends
 * only into the fields a rule reads and skips the rest (long texts are skipped with memchr).
 */
#ifndef SKIFF_GEMINI_VALIDATE_H
#define SKIFF_GEMINI_VALIDATE_H

#include <stddef.h>

#include <jansson.h>

#include "gemini/catalog.h"
#include "gemini/router.h"

struct skiff_violation {
    int status;           /* 400, or 404 for an unknown model or an unsupported method */
    const char *gstatus;  /* "INVALID_ARGUMENT" or "NOT_FOUND" (static) */
    char field[128];      /* the field path as the client spelt it: "generationConfig.temperature",
                             "contents[0].parts", "model"; "" when it is the whole body */
    char message[640];    /* what is wrong and how to fix it: one paragraph, no newline */
    const char *help_url; /* static */
    const char *help_description; /* static */
};

/*
 * Validates one request for route (version "v1" or "v1beta", the model of the URL as
 * model/model_len without "models/", the API method) and its body (len bytes; already known
 * to be syntactically valid JSON, see jsoncheck.h). cat may be NULL (no model rules).
 * Returns 0 when the request may go upstream, 1 when it must be refused (then *out says why).
 * Thread-safe; allocates nothing.
 */
int skiff_validate(const struct skiff_catalog *cat, const char *version, const char *model,
                   size_t model_len, enum skiff_method method, const char *body, size_t len,
                   struct skiff_violation *out);

/*
 * The syntax check (jsoncheck.h) and, when rules is set, skiff_validate, in one pass of the
 * tokenizer over the body: what a door calls instead of skiff_json_check then
 * skiff_validate, with the same answers. Returns -1 when the body is not one JSON value
 * (*err_off and *why as skiff_json_check sets them; a syntax error wins over a rule, as it
 * does when the check runs first), 1 when a rule refuses the request (*out says why), 0
 * when it may go upstream.
 */
int skiff_validate_body(const struct skiff_catalog *cat, const char *version, const char *model,
                        size_t model_len, enum skiff_method method, const char *body, size_t len,
                        int rules, struct skiff_violation *out, size_t *err_off, const char **why);

/*
 * The details array of the refusal: [google.rpc.BadRequest{fieldViolations: [{field,
 * description}]}, google.rpc.Help{links: [{description, url}]}]. A new reference, ready for
 * skiff_gerr_respond (which steals it). The field is omitted when v->field is "".
 */
json_t *skiff_violation_details(const struct skiff_violation *v);

#endif
