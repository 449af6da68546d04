#include "doors/openai/embeddings.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"

static int
nomem(struct skiff_oai_error *err)
{
    skiff_oai_error_set(err, 500, NULL, NULL, "skiff ran out of memory translating the request.");
    return SKIFF_ENOMEM;
}

static json_t *
content(const char *text)
{
    return json_pack("{s:[{s:s}]}", "parts", "text", text);
}

int
skiff_oai_embeddings_request(const json_t *req, const char *gemini_model,
                             struct skiff_oai_embed *out, struct skiff_oai_error *err)
{
    memset(out, 0, sizeof *out);
    if (!json_is_object(req))
        return skiff_oai_error_set(err, 400, NULL, NULL, "The request body must be a JSON object.");
    const char *model = json_string_value(json_object_get(req, "model"));
    if (!model || !model[0])
        return skiff_oai_error_set(err, 400, "model", NULL, "model is required (a string).");
    const json_t *input = json_object_get(req, "input");
    const json_t *dims = json_object_get(req, "dimensions");
    const json_t *fmt = json_object_get(req, "encoding_format");
    if (dims && !json_is_null(dims) && (!json_is_integer(dims) || json_integer_value(dims) < 1))
        return skiff_oai_error_set(err, 400, "dimensions", NULL,
                                   "dimensions must be a positive integer.");
    if (fmt && !json_is_null(fmt)) {
        const char *f = json_string_value(fmt);
        if (!f || (strcmp(f, "float") && strcmp(f, "base64")))
            return skiff_oai_error_set(err, 400, "encoding_format", NULL,
                                       "encoding_format must be \"float\" or \"base64\".");
        out->base64 = strcmp(f, "base64") == 0;
    }
    size_t i;
    const json_t *v;
    if (json_is_string(input)) {
        out->count = 1;
    } else if (json_is_array(input) && json_array_size(input) > 0) {
        if (json_array_size(input) > SKIFF_OAI_MAX_EMBED_INPUTS)
            return skiff_oai_error_set(err, 400, "input", NULL,
                                       "input holds %zu strings; at most %d per request.",
                                       json_array_size(input), SKIFF_OAI_MAX_EMBED_INPUTS);
        json_array_foreach(input, i, v) if (!json_is_string(v)) return skiff_oai_error_set(
            err, 400, "input", NULL,
            "input must be a string or an array of strings; token arrays cannot be sent to "
            "Gemini, which embeds text.");
        out->count = json_array_size(input);
        out->batch = 1;
    } else {
        return skiff_oai_error_set(err, 400, "input", NULL,
                                   "input must be a non-empty string or array of strings.");
    }
    char mname[192];
    snprintf(mname, sizeof mname, "%s%s", strncmp(gemini_model, "models/", 7) ? "models/" : "",
             gemini_model);
    out->model = strdup(model);
    if (!out->model)
        goto nomem;
    if (!out->batch) {
        out->body = json_pack("{s:o}", "content", content(json_string_value(input)));
        if (!out->body)
            goto nomem;
        if (json_is_integer(dims) &&
            json_object_set(out->body, "outputDimensionality", (json_t *)dims))
            goto nomem;
        return 0;
    }
    json_t *reqs = json_array();
    out->body = json_pack("{s:o}", "requests", reqs);
    if (!out->body)
        goto nomem;
    json_array_foreach(input, i, v)
    {
        json_t *r =
            json_pack("{s:s, s:o}", "model", mname, "content", content(json_string_value(v)));
        if (!r || json_array_append_new(reqs, r))
            goto nomem;
        if (json_is_integer(dims) && json_object_set(r, "outputDimensionality", (json_t *)dims))
            goto nomem;
    }
    return 0;
nomem:
    skiff_oai_embed_release(out);
    return nomem(err);
}

static char *
base64_floats(const json_t *values)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t n = json_array_size(values), bytes = n * 4;
    unsigned char *raw = malloc(bytes ? bytes : 1);
    char *outs = malloc((bytes + 2) / 3 * 4 + 1);
    if (!raw || !outs) {
        free(raw);
        free(outs);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        float f = (float)json_number_value(json_array_get(values, i));
        uint32_t u;
        memcpy(&u, &f, 4);
        raw[4 * i] = (unsigned char)u;
        raw[4 * i + 1] = (unsigned char)(u >> 8);
        raw[4 * i + 2] = (unsigned char)(u >> 16);
        raw[4 * i + 3] = (unsigned char)(u >> 24);
    }
    size_t o = 0;
    for (size_t i = 0; i < bytes; i += 3) {
        uint32_t v = (uint32_t)raw[i] << 16;
        if (i + 1 < bytes)
            v |= (uint32_t)raw[i + 1] << 8;
        if (i + 2 < bytes)
            v |= raw[i + 2];
        outs[o++] = tab[(v >> 18) & 63];
        outs[o++] = tab[(v >> 12) & 63];
        outs[o++] = i + 1 < bytes ? tab[(v >> 6) & 63] : '=';
        outs[o++] = i + 2 < bytes ? tab[v & 63] : '=';
    }
    outs[o] = '\0';
    free(raw);
    return outs;
}

json_t *
skiff_oai_embeddings_response(const json_t *resp, const struct skiff_oai_embed *e,
                              struct skiff_oai_error *err)
{
    json_t *list = NULL;
    if (e->batch)
        list = json_incref(json_object_get(resp, "embeddings"));
    else if (json_object_get(resp, "embedding"))
        list = json_pack("[O]", json_object_get(resp, "embedding"));
    if (json_array_size(list) != e->count) {
        json_decref(list);
        skiff_oai_error_set(err, 502, NULL, NULL,
                            "The Gemini API answered %zu embeddings for %zu inputs.",
                            json_array_size(list), e->count);
        return NULL;
    }
    json_t *data = json_array();
    json_t *out = json_pack("{s:s, s:o, s:s, s:{s:i, s:i}}", "object", "list", "data", data,
                            "model", e->model, "usage", "prompt_tokens", 0, "total_tokens", 0);
    size_t i;
    const json_t *emb;
    if (!out)
        goto nomem;
    json_array_foreach(list, i, emb)
    {
        const json_t *values = json_object_get(emb, "values");
        if (!json_is_array(values)) {
            skiff_oai_error_set(err, 502, NULL, NULL,
                                "The Gemini API answered an embedding without values.");
            goto fail;
        }
        json_t *vec;
        if (e->base64) {
            char *b = base64_floats(values);
            vec = b ? json_string(b) : NULL;
            free(b);
        } else {
            vec = json_deep_copy(values);
        }
        json_t *item = json_pack("{s:s, s:I, s:o}", "object", "embedding", "index", (json_int_t)i,
                                 "embedding", vec);
        if (!item || json_array_append_new(data, item))
            goto nomem;
    }
    json_decref(list);
    return out;
nomem:
    nomem(err);
fail:
    json_decref(list);
    json_decref(out);
    return NULL;
}

void
skiff_oai_embed_release(struct skiff_oai_embed *e)
{
    json_decref(e->body);
    free(e->model);
    memset(e, 0, sizeof *e);
}
