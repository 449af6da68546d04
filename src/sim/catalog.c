#include "sim/catalog.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const gen_methods[] = {"generateContent", "countTokens", "createCachedContent",
                                          "batchGenerateContent", NULL};
static const char *const image_methods[] = {"generateContent", "countTokens",
                                            "batchGenerateContent", NULL};
static const char *const tts_methods[] = {"countTokens", "generateContent", NULL};
static const char *const gemma_methods[] = {"generateContent", "countTokens", NULL};
static const char *const embed_methods[] = {"embedContent", "countTextTokens", "countTokens",
                                            "asyncBatchEmbedContent", NULL};
static const char *const aqa_methods[] = {"generateAnswer", NULL};
static const char *const imagen_methods[] = {"predict", NULL};
static const char *const veo_methods[] = {"predictLongRunning", NULL};
static const char *const live_methods[] = {"bidiGenerateContent", "countTokens", NULL};

#define UNPACK(...) __VA_ARGS__
#define SKIFF_MODEL(id, target, version, display, desc, in, out, methods, sampling, thinking,      \
                    cand, flags, rpm, tpm, rpd)                                                    \
    {id,   target, version, display, desc, in, out, methods, UNPACK sampling, UNPACK thinking,     \
     cand, flags,  rpm,     tpm,     rpd},

/* The one model table (gemini/models.def), as the simulator serves it. */
static const struct skiff_sim_model models[] = {
#include "gemini/models.def"
};
#undef SKIFF_MODEL
#undef UNPACK

#define NMODELS (sizeof models / sizeof models[0])

const struct skiff_sim_model *
skiff_sim_catalog_find(const char *id, size_t len)
{
    for (size_t i = 0; i < NMODELS; i++)
        if (strlen(models[i].id) == len && memcmp(models[i].id, id, len) == 0)
            return &models[i];
    return NULL;
}

const struct skiff_sim_model *
skiff_sim_catalog_at(size_t i)
{
    return i < NMODELS ? &models[i] : NULL;
}

size_t
skiff_sim_catalog_count(void)
{
    return NMODELS;
}

int
skiff_sim_model_on_version(const struct skiff_sim_model *m, const char *version)
{
    if (strcmp(version, "v1beta") == 0 || strcmp(version, "v1alpha") == 0)
        return 1;
    return strcmp(version, "v1") == 0 && (m->flags & SKIFF_SIM_V1);
}

static int
lists(const struct skiff_sim_model *m, const char *method)
{
    for (const char *const *p = m->methods; *p; p++)
        if (strcmp(*p, method) == 0)
            return 1;
    return 0;
}

int
skiff_sim_model_supports(const struct skiff_sim_model *m, const char *method)
{
    if (strcmp(method, "streamGenerateContent") == 0)
        method = "generateContent";
    else if (strcmp(method, "batchEmbedContents") == 0)
        method = "embedContent";
    return lists(m, method);
}

/* Protobuf JSON writes a float that holds an integer without a fraction: "temperature": 1. */
static json_t *
number(double v)
{
    if (v == (double)(long long)v)
        return json_integer((long long)v);
    return json_real(v);
}

json_t *
skiff_sim_catalog_model_json(const struct skiff_sim_model *m)
{
    char name[128];
    snprintf(name, sizeof name, "models/%s", m->id);
    json_t *o = json_object();
    json_object_set_new(o, "name", json_string(name));
    json_object_set_new(o, "version", json_string(m->version));
    json_object_set_new(o, "displayName", json_string(m->display_name));
    json_object_set_new(o, "description", json_string(m->description));
    json_object_set_new(o, "inputTokenLimit", json_integer(m->input_limit));
    json_object_set_new(o, "outputTokenLimit", json_integer(m->output_limit));
    json_t *methods = json_array();
    for (const char *const *p = m->methods; *p; p++)
        json_array_append_new(methods, json_string(*p));
    json_object_set_new(o, "supportedGenerationMethods", methods);
    if (m->temperature >= 0)
        json_object_set_new(o, "temperature", number(m->temperature));
    if (m->top_p >= 0)
        json_object_set_new(o, "topP", number(m->top_p));
    if (m->top_k >= 0)
        json_object_set_new(o, "topK", json_integer(m->top_k));
    if (m->max_temperature >= 0)
        json_object_set_new(o, "maxTemperature", number(m->max_temperature));
    /* A proto bool at its default (false) is omitted. */
    if (m->thinking)
        json_object_set_new(o, "thinking", json_true());
    return o;
}

/*
 * Page tokens are opaque to clients; ours are "o" followed by the offset in lower-case hex,
 * wrapped in a fixed prefix so a token from another service is recognised as foreign.
 */
#define TOKEN_PREFIX "Cg9za2lmZi1zaW0t"

static int
token_offset(const char *token, size_t *offset)
{
    size_t plen = strlen(TOKEN_PREFIX);
    if (strncmp(token, TOKEN_PREFIX, plen) != 0)
        return -1;
    const char *p = token + plen;
    if (*p != 'o' || !p[1])
        return -1;
    size_t v = 0;
    for (p++; *p; p++) {
        int d;
        if (*p >= '0' && *p <= '9')
            d = *p - '0';
        else if (*p >= 'a' && *p <= 'f')
            d = *p - 'a' + 10;
        else
            return -1;
        if (v > NMODELS * 16)
            return -1;
        v = v * 16 + (size_t)d;
    }
    *offset = v;
    return 0;
}

json_t *
skiff_sim_catalog_list_json(const char *version, long page_size, const char *page_token)
{
    size_t offset = 0;
    if (page_token && *page_token && token_offset(page_token, &offset) < 0)
        return NULL;
    if (page_size <= 0)
        page_size = 50;
    if (page_size > 1000)
        page_size = 1000;

    /* Offsets count models visible on this version, so pages have no holes. */
    json_t *list = json_array();
    size_t seen = 0;
    size_t i;
    for (i = 0; i < NMODELS; i++) {
        if (!skiff_sim_model_on_version(&models[i], version))
            continue;
        if (seen++ < offset)
            continue;
        if (json_array_size(list) == (size_t)page_size)
            break;
        json_array_append_new(list, skiff_sim_catalog_model_json(&models[i]));
    }
    json_t *o = json_object();
    json_object_set_new(o, "models", list);
    if (i < NMODELS) {
        char tok[64];
        snprintf(tok, sizeof tok, TOKEN_PREFIX "o%zx", offset + (size_t)page_size);
        json_object_set_new(o, "nextPageToken", json_string(tok));
    }
    return o;
}
