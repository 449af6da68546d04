#include "sim/validate.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "gemini/error.h"

/* Converts a snake_case name to lowerCamelCase into out (names are short, so truncation only
 * makes an unknown name stay unknown). */
static void
camel(const char *name, char *out, size_t outlen)
{
    size_t n = 0;
    int up = 0;
    for (const char *p = name; *p && n + 1 < outlen; p++) {
        if (*p == '_' && p != name) {
            up = 1;
            continue;
        }
        out[n++] = up ? (char)toupper((unsigned char)*p) : *p;
        up = 0;
    }
    out[n] = '\0';
}

static void
snake(const char *name, char *out, size_t outlen)
{
    size_t n = 0;
    for (const char *p = name; *p && n + 2 < outlen; p++) {
        if (isupper((unsigned char)*p)) {
            out[n++] = '_';
            out[n++] = (char)tolower((unsigned char)*p);
        } else {
            out[n++] = *p;
        }
    }
    out[n] = '\0';
}

const json_t *
skiff_sim_field(const json_t *obj, const char *name)
{
    const json_t *v = json_object_get(obj, name);
    if (v)
        return v;
    char s[64];
    snake(name, s, sizeof s);
    return json_object_get(obj, s);
}

static int fail(struct skiff_sim_invalid *err, const char *gstatus, json_t *details,
                const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static int
fail(struct skiff_sim_invalid *err, const char *gstatus, json_t *details, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    err->status = 400;
    err->gstatus = gstatus;
    err->details = details;
    return SKIFF_EINVAL;
}

/* "Unknown name" for the first field of obj not in allowed (camelCase names). */
static int
check_fields(const json_t *obj, const char *const *allowed, const char *at,
             struct skiff_sim_invalid *err)
{
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)obj, key, v)
    {
        char c[64];
        camel(key, c, sizeof c);
        int ok = 0;
        for (const char *const *a = allowed; *a && !ok; a++)
            ok = strcmp(*a, c) == 0 || strcmp(*a, key) == 0;
        if (ok)
            continue;
        char msg[512];
        if (at)
            snprintf(msg, sizeof msg,
                     "Invalid JSON payload received. Unknown name \"%.200s\" at '%s': Cannot find "
                     "field.",
                     key, at);
        else
            snprintf(msg, sizeof msg,
                     "Invalid JSON payload received. Unknown name \"%.200s\": Cannot find field.",
                     key);
        json_t *d = json_array();
        json_array_append_new(d, skiff_gerr_bad_request(at, msg));
        return fail(err, NULL, d, "%s", msg);
    }
    return 0;
}

json_t *
skiff_sim_parse_body(const char *body, size_t len, struct skiff_sim_invalid *err)
{
    if (len == 0)
        return json_object();
    json_error_t je;
    json_t *j = json_loadb(body, len, 0, &je);
    if (!j) {
        /*
         * The API quotes the offending line with a caret under the error; a short excerpt
         * with non-printable bytes folded keeps the message valid UTF-8.
         */
        size_t pos = je.position > 0 ? (size_t)je.position - 1 : 0;
        if (pos > len)
            pos = len;
        size_t from = pos > 30 ? pos - 30 : 0;
        for (size_t i = from; i < pos; i++)
            if (body[i] == '\n')
                from = i + 1;
        char line[72];
        size_t n = 0;
        for (size_t i = from; i < len && n < 60 && body[i] != '\n'; i++)
            line[n++] = (body[i] >= 0x20 && body[i] < 0x7f) ? body[i] : '?';
        line[n] = '\0';
        char caret[64];
        size_t c = pos - from < sizeof caret - 2 ? pos - from : sizeof caret - 2;
        memset(caret, ' ', c);
        caret[c] = '^';
        caret[c + 1] = '\0';
        char msg[256];
        snprintf(msg, sizeof msg, "Invalid JSON payload received. Unexpected token.\n%s\n%s", line,
                 caret);
        json_t *d = json_array();
        json_array_append_new(d, skiff_gerr_bad_request(NULL, msg));
        fail(err, NULL, d, "%s", msg);
        return NULL;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        const char *msg =
            "Invalid JSON payload received. Unknown name \"\": Root element must be a message.";
        json_t *d = json_array();
        json_array_append_new(d, skiff_gerr_bad_request(NULL, msg));
        fail(err, NULL, d, "%s", msg);
        return NULL;
    }
    return j;
}

/* A number field: absent (returns 0, *present = 0), a number, or a type error. */
static int
number_field(const json_t *obj, const char *name, const char *at, const char *type, double *out,
             int *present, struct skiff_sim_invalid *err)
{
    const json_t *v = skiff_sim_field(obj, name);
    *present = v != NULL && !json_is_null(v);
    if (!*present)
        return 0;
    if (json_is_number(v)) {
        *out = json_number_value(v);
        return 0;
    }
    char snake_name[64];
    snake(name, snake_name, sizeof snake_name);
    char *dump = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
    char field[128];
    snprintf(field, sizeof field, "%s.%s", at, snake_name);
    char msg[512];
    snprintf(msg, sizeof msg, "Invalid value at '%s' (%s), %.200s", field, type, dump ? dump : "?");
    free(dump);
    json_t *d = json_array();
    json_array_append_new(d, skiff_gerr_bad_request(field, msg));
    return fail(err, NULL, d, "%s", msg);
}

static const char *const generate_fields_v1beta[] = {"contents",       "systemInstruction",
                                                     "tools",          "toolConfig",
                                                     "safetySettings", "generationConfig",
                                                     "cachedContent",  "serviceTier",
                                                     "model",          "labels",
                                                     "store",          NULL};
static const char *const generate_fields_v1[] = {"contents", "safetySettings", "generationConfig",
                                                 "model", NULL};
static const char *const gencfg_fields_v1beta[] = {"candidateCount",
                                                   "stopSequences",
                                                   "maxOutputTokens",
                                                   "temperature",
                                                   "topP",
                                                   "topK",
                                                   "seed",
                                                   "responseMimeType",
                                                   "responseSchema",
                                                   "responseJsonSchema",
                                                   "_responseJsonSchema",
                                                   "presencePenalty",
                                                   "frequencyPenalty",
                                                   "responseLogprobs",
                                                   "logprobs",
                                                   "enableEnhancedCivicAnswers",
                                                   "responseModalities",
                                                   "speechConfig",
                                                   "thinkingConfig",
                                                   "imageConfig",
                                                   "mediaResolution",
                                                   NULL};
static const char *const gencfg_fields_v1[] = {"candidateCount",
                                               "stopSequences",
                                               "maxOutputTokens",
                                               "temperature",
                                               "topP",
                                               "topK",
                                               "seed",
                                               "presencePenalty",
                                               "frequencyPenalty",
                                               "responseLogprobs",
                                               "logprobs",
                                               "enableEnhancedCivicAnswers",
                                               NULL};
static const char *const thinking_fields[] = {"thinkingBudget", "includeThoughts", "thinkingLevel",
                                              NULL};

/* contents must be a non-empty array of Contents with non-empty parts. */
static int
check_contents(const json_t *contents, const char *what, struct skiff_sim_invalid *err)
{
    if (!contents || !json_is_array(contents) || json_array_size(contents) == 0)
        return fail(err, NULL, NULL, "* %s.contents: contents is not specified\n", what);
    size_t i;
    const json_t *c;
    json_array_foreach(contents, i, c)
    {
        const json_t *parts = json_object_get(c, "parts");
        if (!json_is_object(c) || !json_is_array(parts) || json_array_size(parts) == 0)
            return fail(err, NULL, NULL,
                        "* %s.contents[%zu].parts: contents.parts must not be empty.\n", what, i);
    }
    return 0;
}

int
skiff_sim_validate_generate(const struct skiff_sim_model *m, const char *version,
                            const json_t *body, struct skiff_sim_gen *out,
                            struct skiff_sim_invalid *err)
{
    const char *what = "GenerateContentRequest";
    int v1 = strcmp(version, "v1") == 0;
    memset(out, 0, sizeof *out);
    if (check_fields(body, v1 ? generate_fields_v1 : generate_fields_v1beta, NULL, err))
        return SKIFF_EINVAL;
    out->contents = skiff_sim_field(body, "contents");
    out->system_instruction = skiff_sim_field(body, "systemInstruction");
    if (check_contents(out->contents, what, err))
        return SKIFF_EINVAL;

    out->max_output_tokens = m->output_limit;
    out->thinking_budget = m->thinks_default ? -1 : 0;
    out->candidate_count = 1;

    const json_t *gc = skiff_sim_field(body, "generationConfig");
    if (gc && !json_is_object(gc))
        return fail(err, NULL, NULL,
                    "Invalid JSON payload received. Unknown name \"generationConfig\": Proto "
                    "field is not repeating, cannot start list.");
    if (gc) {
        if (check_fields(gc, v1 ? gencfg_fields_v1 : gencfg_fields_v1beta, "generation_config",
                         err))
            return SKIFF_EINVAL;
        const char *at = "generation_config";
        double t, p, mo, cc, pp, fp;
        int has_t, has_p, has_mo, has_cc, has_pp, has_fp;
        if (number_field(gc, "temperature", at, "TYPE_FLOAT", &t, &has_t, err) ||
            number_field(gc, "topP", at, "TYPE_FLOAT", &p, &has_p, err) ||
            number_field(gc, "maxOutputTokens", at, "TYPE_INT32", &mo, &has_mo, err) ||
            number_field(gc, "candidateCount", at, "TYPE_INT32", &cc, &has_cc, err) ||
            number_field(gc, "presencePenalty", at, "TYPE_FLOAT", &pp, &has_pp, err) ||
            number_field(gc, "frequencyPenalty", at, "TYPE_FLOAT", &fp, &has_fp, err))
            return SKIFF_EINVAL;

        /* Range errors are collected into one "* field: ...\n" list, as the API does. */
        char list[1024] = "";
        size_t n = 0;
        double tmax = m->max_temperature >= 0 ? m->max_temperature : 2.0;
        if (has_t && (t < 0 || t > tmax))
            n += (size_t)snprintf(list + n, sizeof list - n,
                                  "* %s.generation_config.temperature: temperature must be in "
                                  "the range [0.0, %.1f].\n",
                                  what, tmax);
        if (has_p && (p < 0 || p > 1) && n < sizeof list)
            n += (size_t)snprintf(list + n, sizeof list - n,
                                  "* %s.generation_config.top_p: top_p must be in the range "
                                  "[0.0, 1.0].\n",
                                  what);
        if (has_cc && !(m->flags & SKIFF_SIM_GEMINI3) && (cc < 0 || cc > 8) && n < sizeof list)
            n += (size_t)snprintf(list + n, sizeof list - n,
                                  "* %s.generation_config.candidate_count: candidate_count must "
                                  "be in the range [1, 8].\n",
                                  what);
        const json_t *stops = skiff_sim_field(gc, "stopSequences");
        if (json_is_array(stops) && json_array_size(stops) > 5 && n < sizeof list)
            n += (size_t)snprintf(list + n, sizeof list - n,
                                  "* %s.generation_config.stop_sequences: stop_sequences must "
                                  "have at most 5 elements.\n",
                                  what);
        if (n)
            return fail(err, NULL, NULL, "%s", list);

        if (has_cc && cc > 1 && (m->flags & SKIFF_SIM_GEMINI3))
            return fail(err, NULL, NULL, "Multiple candidates is not enabled for this model");
        if (has_cc && cc >= 1)
            out->candidate_count = (long)cc;
        if (has_mo && (mo < 0 || mo > m->output_limit))
            return fail(err, NULL, NULL,
                        "Unable to submit request because it has a maxOutputTokens value of %.0f "
                        "but the supported range is from 1 (inclusive) to %d (exclusive). Update "
                        "the value and try again.",
                        mo, m->output_limit + 1);
        if (has_mo && mo >= 1)
            out->max_output_tokens = (long)mo;
        if ((has_pp && pp != 0) || (has_fp && fp != 0))
            return fail(err, NULL, NULL, "Penalty is not enabled for this model");

        const json_t *tc = skiff_sim_field(gc, "thinkingConfig");
        if (tc && !json_is_object(tc))
            return fail(err, NULL, NULL, "Request contains an invalid argument.");
        if (tc) {
            if (check_fields(tc, thinking_fields, "generation_config.thinking_config", err))
                return SKIFF_EINVAL;
            double b;
            int has_b;
            if (number_field(tc, "thinkingBudget", "generation_config.thinking_config",
                             "TYPE_INT32", &b, &has_b, err))
                return SKIFF_EINVAL;
            const json_t *level = skiff_sim_field(tc, "thinkingLevel");
            out->include_thoughts = json_is_true(skiff_sim_field(tc, "includeThoughts"));
            if (!m->thinking && (has_b || level))
                return fail(err, NULL, NULL, "Thinking is not supported for this model.");
            if (has_b && level)
                return fail(err, NULL, NULL,
                            "You can only set only one of thinking budget and thinking level.");
            if (level && !(m->flags & SKIFF_SIM_GEMINI3))
                return fail(err, NULL, NULL, "Request contains an invalid argument.");
            if (has_b && b == 0 && !m->budget_zero_ok) {
                if (m->flags & SKIFF_SIM_GEMINI3)
                    return fail(err, NULL, NULL, "Request contains an invalid argument.");
                return fail(err, NULL, NULL,
                            "Budget 0 is invalid. This model only works in thinking mode.");
            }
            if (has_b && b != -1 && b != 0 && (b < m->budget_min || b > m->budget_max))
                return fail(err, NULL, NULL, "The thinking budget (%.0f) is invalid.", b);
            if (has_b)
                out->thinking_budget = (long)b;
            else if (level || out->include_thoughts)
                out->thinking_budget = -1;
        }
    }
    return 0;
}

int
skiff_sim_validate_count(const struct skiff_sim_model *m, const char *version, const json_t *body,
                         const json_t **contents, const json_t **system_instruction,
                         struct skiff_sim_invalid *err)
{
    static const char *const fields[] = {"contents", "generateContentRequest", NULL};
    if (check_fields(body, fields, NULL, err))
        return SKIFF_EINVAL;
    const json_t *c = skiff_sim_field(body, "contents");
    const json_t *g = skiff_sim_field(body, "generateContentRequest");
    *system_instruction = NULL;
    if (c && g)
        return fail(err, NULL, NULL,
                    "* CountTokensRequest: only one of contents and generate_content_request may "
                    "be set.\n");
    if (!g) {
        *contents = c;
        return check_contents(c, "CountTokensRequest", err);
    }
    char list[512] = "";
    size_t n = 0;
    const json_t *gcontents = skiff_sim_field(g, "contents");
    const json_t *model = json_object_get(g, "model");
    if (!json_is_array(gcontents) || json_array_size(gcontents) == 0)
        n += (size_t)snprintf(list + n, sizeof list - n,
                              "* CountTokensRequest.generate_content_request.contents: contents "
                              "is not specified\n");
    if (!json_is_string(model))
        n += (size_t)snprintf(list + n, sizeof list - n,
                              "* CountTokensRequest.generate_content_request.model: model is "
                              "not specified\n");
    if (n)
        return fail(err, NULL, NULL, "%s", list);
    struct skiff_sim_gen gen;
    if (skiff_sim_validate_generate(m, version, g, &gen, err))
        return SKIFF_EINVAL;
    *contents = gen.contents;
    *system_instruction = gen.system_instruction;
    return 0;
}

static int
check_model_name(const struct skiff_sim_model *m, const json_t *model, const char *where,
                 struct skiff_sim_invalid *err)
{
    if (!model)
        return 0;
    const char *s = json_string_value(model);
    if (s && strncmp(s, "models/", 7) == 0)
        s += 7;
    if (!s || strcmp(s, m->id) != 0)
        return fail(err, NULL, NULL,
                    "* %s.model: the model in the request must match the model in the URL "
                    "(models/%s).\n",
                    where, m->id);
    return 0;
}

int
skiff_sim_validate_embed(const struct skiff_sim_model *m, const json_t *body,
                         const json_t **content, long *dims, struct skiff_sim_invalid *err)
{
    static const char *const fields[] = {
        "model", "content", "taskType", "title", "outputDimensionality", NULL};
    if (check_fields(body, fields, NULL, err))
        return SKIFF_EINVAL;
    *content = skiff_sim_field(body, "content");
    const json_t *parts = json_object_get(*content, "parts");
    if (!json_is_object(*content) || !json_is_array(parts) || json_array_size(parts) == 0)
        return fail(err, NULL, NULL, "* EmbedContentRequest.content: content is not specified\n");
    double d;
    int has_d;
    if (number_field(body, "outputDimensionality", "", "TYPE_INT32", &d, &has_d, err))
        return SKIFF_EINVAL;
    /* gemini-embedding-001 gives 3072 values unless asked for fewer. */
    *dims = 3072;
    if (has_d) {
        if (d < 1 || d > 3072)
            return fail(err, NULL, NULL,
                        "* EmbedContentRequest.output_dimensionality: output_dimensionality "
                        "must be in the range [1, 3072].\n");
        *dims = (long)d;
    }
    return 0;
}

int
skiff_sim_validate_batch_embed(const struct skiff_sim_model *m, const json_t *body,
                               struct skiff_sim_invalid *err)
{
    static const char *const fields[] = {"requests", NULL};
    if (check_fields(body, fields, NULL, err))
        return SKIFF_EINVAL;
    const json_t *reqs = json_object_get(body, "requests");
    if (!json_is_array(reqs) || json_array_size(reqs) == 0)
        return fail(err, NULL, NULL,
                    "* BatchEmbedContentsRequest.requests: requests is not specified\n");
    if (json_array_size(reqs) > 100)
        return fail(err, NULL, NULL,
                    "* BatchEmbedContentsRequest.requests: at most 100 requests can be in one "
                    "batch\n");
    size_t i;
    const json_t *r;
    json_array_foreach(reqs, i, r)
    {
        char where[64];
        snprintf(where, sizeof where, "BatchEmbedContentsRequest.requests[%zu]", i);
        if (!json_is_object(r))
            return fail(err, NULL, NULL, "* %s: must be an EmbedContentRequest\n", where);
        const json_t *content;
        long dims;
        if (check_model_name(m, json_object_get(r, "model"), where, err) ||
            skiff_sim_validate_embed(m, r, &content, &dims, err))
            return SKIFF_EINVAL;
    }
    return 0;
}
