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

#define M1 1048576
#define SAMPLING 1.0, 0.95, 64, 2.0
#define NO_SAMPLING -1.0, -1.0, -1, -1.0

/* Budgets of §2.5: pro thinks always, flash may turn off, flash-lite thinks only on request. */
#define PRO_THINKING 1, 128, 32768, 0, 1
#define FLASH_THINKING 1, 0, 24576, 1, 1
#define LITE_THINKING 1, 512, 24576, 1, 0
#define G3_PRO_THINKING 1, 128, 32768, 0, 1
#define G3_FLASH_THINKING 1, 1, 24576, 0, 1
#define NO_THINKING 0, 0, 0, 1, 0

/*
 * The listing order follows a live models.list: stable 2.5 models, aliases, previews, newer
 * releases, then special-purpose models. Figures not confirmed by gemini-api.md (versions of
 * 3.5+ models, alias targets, quotas of models missing from §5) are plausible guesses and
 * are marked [U] in docs/internals/sim.md.
 */
static const struct skiff_sim_model models[] = {
    {"gemini-2.5-pro", "gemini-2.5-pro", "2.5", "Gemini 2.5 Pro",
     "Stable release (June 17th, 2025) of Gemini 2.5 Pro", M1, 65536, gen_methods, SAMPLING,
     PRO_THINKING, 8, SKIFF_SIM_V1, 5, 250000, 100},
    {"gemini-2.5-flash", "gemini-2.5-flash", "001", "Gemini 2.5 Flash",
     "Stable version of Gemini 2.5 Flash, our mid-size multimodal model that supports up to 1 "
     "million tokens, released in June of 2025.",
     M1, 65536, gen_methods, SAMPLING, FLASH_THINKING, 8, SKIFF_SIM_V1, 10, 250000, 250},
    {"gemini-2.5-flash-lite", "gemini-2.5-flash-lite", "001", "Gemini 2.5 Flash-Lite",
     "Stable version of Gemini 2.5 Flash-Lite, released in July of 2025", M1, 65536, gen_methods,
     SAMPLING, LITE_THINKING, 8, SKIFF_SIM_V1, 15, 250000, 1000},
    {"gemini-flash-latest", "gemini-3.6-flash", "Gemini Flash Latest", "Gemini Flash Latest",
     "Latest release of Gemini Flash", M1, 65536, gen_methods, SAMPLING, G3_FLASH_THINKING, 1,
     SKIFF_SIM_V1 | SKIFF_SIM_GEMINI3, 10, 250000, 250},
    {"gemini-flash-lite-latest", "gemini-3.5-flash-lite", "Gemini Flash-Lite Latest",
     "Gemini Flash-Lite Latest", "Latest release of Gemini Flash-Lite", M1, 65536, gen_methods,
     SAMPLING, G3_FLASH_THINKING, 1, SKIFF_SIM_V1 | SKIFF_SIM_GEMINI3, 15, 250000, 1000},
    {"gemini-pro-latest", "gemini-3.1-pro-preview", "Gemini Pro Latest", "Gemini Pro Latest",
     "Latest release of Gemini Pro", M1, 65536, gen_methods, SAMPLING, G3_PRO_THINKING, 1,
     SKIFF_SIM_V1 | SKIFF_SIM_GEMINI3, 5, 250000, 100},
    {"gemini-3-flash-preview", "gemini-3-flash-preview", "3-flash-preview-12-2025",
     "Gemini 3 Flash Preview", "Gemini 3 Flash Preview", M1, 65536, gen_methods, SAMPLING,
     G3_FLASH_THINKING, 1, SKIFF_SIM_GEMINI3, 10, 250000, 250},
    {"gemini-3.1-pro-preview", "gemini-3.1-pro-preview", "3.1-pro-preview-01-2026",
     "Gemini 3.1 Pro Preview", "Gemini 3.1 Pro Preview", M1, 65536, gen_methods, SAMPLING,
     G3_PRO_THINKING, 1, SKIFF_SIM_GEMINI3, 5, 250000, 100},
    {"gemini-3.1-flash-lite", "gemini-3.1-flash-lite", "3.1-flash-lite-05-2026",
     "Gemini 3.1 Flash-Lite", "Gemini 3.1 Flash-Lite", M1, 65536, gen_methods, SAMPLING,
     G3_FLASH_THINKING, 1, SKIFF_SIM_V1 | SKIFF_SIM_GEMINI3, 15, 250000, 1000},
    {"gemini-3.5-flash", "gemini-3.5-flash", "3.5-flash-06-2026", "Gemini 3.5 Flash",
     "Gemini 3.5 Flash", M1, 65536, gen_methods, SAMPLING, G3_FLASH_THINKING, 1,
     SKIFF_SIM_V1 | SKIFF_SIM_GEMINI3, 10, 250000, 250},
    {"gemini-3.5-flash-lite", "gemini-3.5-flash-lite", "3.5-flash-lite-07-2026",
     "Gemini 3.5 Flash-Lite", "Gemini 3.5 Flash-Lite", M1, 65536, gen_methods, SAMPLING,
     G3_FLASH_THINKING, 1, SKIFF_SIM_V1 | SKIFF_SIM_GEMINI3, 15, 250000, 1000},
    {"gemini-3.6-flash", "gemini-3.6-flash", "3.6-flash-07-2026", "Gemini 3.6 Flash",
     "Gemini 3.6 Flash", M1, 65536, gen_methods, SAMPLING, G3_FLASH_THINKING, 1,
     SKIFF_SIM_V1 | SKIFF_SIM_GEMINI3, 10, 250000, 250},
    {"gemini-3.7-flash", "gemini-3.7-flash", "3.7-flash-08-2026", "Gemini 3.7 Flash",
     "Gemini 3.7 Flash", M1, 65536, gen_methods, SAMPLING, G3_FLASH_THINKING, 1,
     SKIFF_SIM_V1 | SKIFF_SIM_GEMINI3, 10, 250000, 250},
    {"gemini-3.8-flash", "gemini-3.8-flash", "3.8-flash-08-2026", "Gemini 3.8 Flash",
     "Gemini 3.8 Flash", M1, 65536, gen_methods, SAMPLING, G3_FLASH_THINKING, 1,
     SKIFF_SIM_V1 | SKIFF_SIM_GEMINI3, 10, 250000, 250},
    {"gemini-2.5-flash-image", "gemini-2.5-flash-image", "2.0", "Nano Banana",
     "Gemini 2.5 Flash Image", 32768, 32768, image_methods, 1.0, 0.95, 64, 1.0, NO_THINKING, 8,
     0, 10, 250000, 100},
    {"gemini-2.5-flash-preview-tts", "gemini-2.5-flash-preview-tts",
     "gemini-2.5-flash-exp-tts-2025-05-19", "Gemini 2.5 Flash Preview TTS",
     "Gemini 2.5 Flash Preview TTS", 8192, 16384, tts_methods, SAMPLING, NO_THINKING, 1, 0, 3,
     10000, 15},
    {"gemma-4-31b-it", "gemma-4-31b-it", "001", "Gemma 4 31B", "Gemma 4 31B instruction-tuned",
     262144, 32768, gemma_methods, SAMPLING, FLASH_THINKING, 1, 0, 30, 15000, 14400},
    {"gemma-4-26b-a4b-it", "gemma-4-26b-a4b-it", "001", "Gemma 4 26B A4B",
     "Gemma 4 26B A4B instruction-tuned", 262144, 32768, gemma_methods, SAMPLING,
     FLASH_THINKING, 1, 0, 30, 15000, 14400},
    {"gemini-embedding-001", "gemini-embedding-001", "001", "Gemini Embedding 001",
     "Obtain a distributed representation of a text.", 2048, 1, embed_methods, NO_SAMPLING,
     NO_THINKING, 1, SKIFF_SIM_V1 | SKIFF_SIM_EMBEDDING, 100, 30000, 1000},
    {"gemini-embedding-2", "gemini-embedding-2", "2", "Gemini Embedding 2",
     "Obtain a distributed representation of a text.", 8192, 1, embed_methods, NO_SAMPLING,
     NO_THINKING, 1, SKIFF_SIM_EMBEDDING, 100, 30000, 1000},
    {"gemini-embedding-2-preview", "gemini-embedding-2-preview", "2",
     "Gemini Embedding 2 Preview", "Obtain a distributed representation of a text.", 8192, 1,
     embed_methods, NO_SAMPLING, NO_THINKING, 1, SKIFF_SIM_EMBEDDING, 100, 30000, 1000},
    {"aqa", "aqa", "001", "Model that performs Attributed Question Answering.",
     "Model trained to return answers to questions that are grounded in provided sources, along "
     "with estimating answerable probability.",
     7168, 1024, aqa_methods, 0.2, 1.0, 40, -1.0, NO_THINKING, 1, 0, 10, 250000, 250},
};

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
    if (strcmp(version, "v1beta") == 0)
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
