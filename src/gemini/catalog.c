/*
 * The model catalog: a built-in table, replaced by the upstream's models.list. See
 * catalog.h for the contract and docs/internals/validation.md for why the source matters.
 */
#include "gemini/catalog.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/hash.h"
#include "gemini/models.h"

#define MAX_MODELS 2000 /* a models.list this long is not a Gemini API */

struct table {
    size_t n;
    struct skiff_model_info *m;
    uint32_t *hash; /* FNV-1a of each name, so a lookup compares integers first */
    enum skiff_catalog_source source;
};

struct skiff_catalog {
    pthread_rwlock_t lock;
    struct table *t; /* replaced whole under the write lock; readers copy what they need */
};

/* ---- the built-in list ------------------------------------------------------------------ */

/* A row of the model table (gemini/models.def), as the catalog reads it. */
struct builtin {
    const char *name, *target;
    long in, out;
    unsigned methods;
    double temperature, max_temperature; /* < 0: absent */
    int thinks, budget_min, budget_max, budget_zero_ok;
    int flags; /* SKIFF_MODEL_* */
};

/* The method lists of the table, as SKIFF_CAT_* bits. */
#define MBITS_gen_methods (SKIFF_CAT_GENERATE | SKIFF_CAT_COUNT)
#define MBITS_image_methods MBITS_gen_methods
#define MBITS_tts_methods MBITS_gen_methods
#define MBITS_gemma_methods MBITS_gen_methods
#define MBITS_embed_methods (SKIFF_CAT_EMBED | SKIFF_CAT_BATCH_EMBED | SKIFF_CAT_COUNT)
#define MBITS_aqa_methods SKIFF_CAT_OTHER
#define MBITS_imagen_methods SKIFF_CAT_OTHER
#define MBITS_veo_methods SKIFF_CAT_OTHER
#define MBITS_live_methods (SKIFF_CAT_COUNT | SKIFF_CAT_OTHER)
#define SAMPLING_OF(temperature, top_p, top_k, max_temperature) temperature, max_temperature
#define THINKING_OF(thinks, bmin, bmax, zero_ok, by_default) thinks, bmin, bmax, zero_ok
#define SKIFF_MODEL(id, target, version, display, desc, in, out, methods, sampling, thinking,      \
                    cand, flags, rpm, tpm, rpd)                                                    \
    {id, target, in, out, MBITS_##methods, SAMPLING_OF sampling, THINKING_OF thinking, flags},

static const struct builtin builtin[] = {
#include "gemini/models.def"
};
#undef SKIFF_MODEL
#undef SAMPLING_OF
#undef THINKING_OF

#define NBUILTIN (sizeof builtin / sizeof builtin[0])

/* The table's hash: the low half of FNV-1a 64. */
static uint32_t
fnv1a(const char *s, size_t n)
{
    return (uint32_t)skiff_fnv1a64(SKIFF_FNV64_BASIS, s, n);
}

static void
table_free(struct table *t)
{
    if (!t)
        return;
    free(t->m);
    free(t->hash);
    free(t);
}

static struct table *
table_new(size_t n, enum skiff_catalog_source source)
{
    struct table *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->m = calloc(n ? n : 1, sizeof *t->m);
    t->hash = calloc(n ? n : 1, sizeof *t->hash);
    if (!t->m || !t->hash) {
        table_free(t);
        return NULL;
    }
    t->source = source;
    return t;
}

/*
 * A table row as the catalog's entry. The table's thinking budgets of 3.x models are the
 * simulator's guesses, so skiff checks only that those models refuse 0 (when the table says
 * so); a model that does not think has no budget at all.
 */
static void
from_builtin(struct skiff_model_info *m, const struct builtin *b)
{
    memset(m, 0, sizeof *m);
    snprintf(m->name, sizeof m->name, "%s", b->name);
    /* An entry's target is "" unless it is an alias. */
    snprintf(m->target, sizeof m->target, "%s", strcmp(b->target, b->name) ? b->target : "");
    m->input_limit = b->in;
    m->output_limit = b->out;
    m->methods = b->methods;
    m->max_temperature = b->max_temperature;
    m->sampling = b->temperature >= 0;
    m->thinking = b->thinks;
    if (!b->thinks) {
        m->budget_min = m->budget_max = m->budget_zero_ok = 0;
    } else if (b->flags & SKIFF_MODEL_GEMINI3) {
        m->budget_zero_ok = b->budget_zero_ok;
        m->budget_min = b->budget_zero_ok ? 0 : 1;
        m->budget_max = 0; /* unknown: unchecked */
    } else {
        m->budget_min = b->budget_min;
        m->budget_max = b->budget_max;
        m->budget_zero_ok = b->budget_zero_ok;
    }
    m->v1 = (b->flags & SKIFF_MODEL_V1) != 0;
}

static const struct builtin *
builtin_find(const char *name)
{
    for (size_t i = 0; i < NBUILTIN; i++)
        if (strcmp(builtin[i].name, name) == 0)
            return &builtin[i];
    return NULL;
}

static struct table *
builtin_table(void)
{
    struct table *t = table_new(NBUILTIN, SKIFF_CATALOG_BUILTIN);
    if (!t)
        return NULL;
    for (size_t i = 0; i < NBUILTIN; i++) {
        from_builtin(&t->m[i], &builtin[i]);
        t->hash[i] = fnv1a(t->m[i].name, strlen(t->m[i].name));
    }
    t->n = NBUILTIN;
    return t;
}

/* ---- lifetime and lookups --------------------------------------------------------------- */

struct skiff_catalog *
skiff_catalog_new(void)
{
    struct skiff_catalog *cat = calloc(1, sizeof *cat);
    if (!cat)
        return NULL;
    cat->t = builtin_table();
    if (!cat->t || pthread_rwlock_init(&cat->lock, NULL) != 0) {
        table_free(cat->t);
        free(cat);
        return NULL;
    }
    return cat;
}

void
skiff_catalog_free(struct skiff_catalog *cat)
{
    if (!cat)
        return;
    pthread_rwlock_destroy(&cat->lock);
    table_free(cat->t);
    free(cat);
}

/* The lock is part of a logically const catalog: lookups do not change what it holds. */
static void
rdlock(const struct skiff_catalog *cat)
{
    pthread_rwlock_rdlock((pthread_rwlock_t *)&cat->lock);
}

static void
unlock(const struct skiff_catalog *cat)
{
    pthread_rwlock_unlock((pthread_rwlock_t *)&cat->lock);
}

static void
strip_prefix(const char **name, size_t *len)
{
    if (*len > 7 && memcmp(*name, "models/", 7) == 0) {
        *name += 7;
        *len -= 7;
    }
}

int
skiff_catalog_lookup(const struct skiff_catalog *cat, const char *name, size_t len,
                     struct skiff_model_info *out)
{
    strip_prefix(&name, &len);
    uint32_t h = fnv1a(name, len);
    int found = 0;
    rdlock(cat);
    const struct table *t = cat->t;
    for (size_t i = 0; i < t->n; i++) {
        if (t->hash[i] == h && strlen(t->m[i].name) == len &&
            memcmp(t->m[i].name, name, len) == 0) {
            *out = t->m[i];
            found = 1;
            break;
        }
    }
    unlock(cat);
    return found;
}

int
skiff_catalog_at(const struct skiff_catalog *cat, size_t i, struct skiff_model_info *out)
{
    int found = 0;
    rdlock(cat);
    if (i < cat->t->n) {
        *out = cat->t->m[i];
        found = 1;
    }
    unlock(cat);
    return found;
}

int
skiff_catalog_suggest(const struct skiff_catalog *cat, const char *name, size_t len, char *out,
                      size_t outlen)
{
    strip_prefix(&name, &len);
    size_t bestd = SIZE_MAX;
    if (outlen)
        out[0] = '\0';
    rdlock(cat);
    const struct table *t = cat->t;
    for (size_t i = 0; i < t->n; i++) {
        size_t d = skiff_edit_distance(name, len, t->m[i].name, strlen(t->m[i].name));
        if (d < bestd) {
            bestd = d;
            snprintf(out, outlen, "%s", t->m[i].name);
        }
    }
    unlock(cat);
    size_t allowed = 1 + strlen(out) / 4;
    if (allowed > 3)
        allowed = 3;
    if (bestd == SIZE_MAX || bestd > allowed) {
        if (outlen)
            out[0] = '\0';
        return 0;
    }
    return 1;
}

enum skiff_catalog_source
skiff_catalog_source(const struct skiff_catalog *cat)
{
    rdlock(cat);
    enum skiff_catalog_source s = cat->t->source;
    unlock(cat);
    return s;
}

size_t
skiff_catalog_count(const struct skiff_catalog *cat)
{
    rdlock(cat);
    size_t n = cat->t->n;
    unlock(cat);
    return n;
}

int
skiff_model_supports(const struct skiff_model_info *m, enum skiff_method method)
{
    if (m->methods == 0)
        return 1;
    switch (method) {
    case SKIFF_M_GENERATE:
    case SKIFF_M_STREAM:
        return (m->methods & SKIFF_CAT_GENERATE) != 0;
    case SKIFF_M_COUNT_TOKENS:
        /* The API lists countTokens for every model that counts; a model without it in
         * its list may still count through generateContent's usage, but not this way. */
        return (m->methods & (SKIFF_CAT_COUNT | SKIFF_CAT_GENERATE)) != 0;
    case SKIFF_M_EMBED:
        return (m->methods & SKIFF_CAT_EMBED) != 0;
    case SKIFF_M_BATCH_EMBED:
        /* The SDKs embed through batchEmbedContents even when the list does not name it. */
        return (m->methods & (SKIFF_CAT_EMBED | SKIFF_CAT_BATCH_EMBED)) != 0;
    default:
        return 1;
    }
}

/* ---- models.list ------------------------------------------------------------------------ */

static unsigned
methods_of(json_t *list)
{
    unsigned bits = 0;
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v)
    {
        const char *s = json_string_value(v);
        if (!s)
            continue;
        if (strcmp(s, "generateContent") == 0 || strcmp(s, "streamGenerateContent") == 0)
            bits |= SKIFF_CAT_GENERATE;
        else if (strcmp(s, "countTokens") == 0)
            bits |= SKIFF_CAT_COUNT;
        else if (strcmp(s, "embedContent") == 0)
            bits |= SKIFF_CAT_EMBED;
        else if (strcmp(s, "batchEmbedContents") == 0 || strcmp(s, "asyncBatchEmbedContent") == 0)
            bits |= SKIFF_CAT_BATCH_EMBED;
        else
            bits |= SKIFF_CAT_OTHER;
    }
    return bits;
}

/* One models.list entry into m; returns 0, or -1 when it has no usable name. */
static int
from_json(struct skiff_model_info *m, json_t *o)
{
    const char *name = json_string_value(json_object_get(o, "name"));
    if (!name)
        return -1;
    if (strncmp(name, "models/", 7) == 0)
        name += 7;
    if (!*name || strlen(name) >= sizeof m->name)
        return -1;
    memset(m, 0, sizeof *m);
    const struct builtin *b = builtin_find(name);
    if (b) {
        from_builtin(m, b);
    } else {
        snprintf(m->name, sizeof m->name, "%s", name);
        m->v1 = -1;
        m->max_temperature = -1;
    }
    json_t *v;
    if (json_is_integer(v = json_object_get(o, "inputTokenLimit")))
        m->input_limit = (long)json_integer_value(v);
    if (json_is_integer(v = json_object_get(o, "outputTokenLimit")))
        m->output_limit = (long)json_integer_value(v);
    if (json_is_array(v = json_object_get(o, "supportedGenerationMethods")))
        m->methods = methods_of(v);
    if (json_is_number(v = json_object_get(o, "maxTemperature")))
        m->max_temperature = json_number_value(v);
    if (!b) {
        m->sampling = json_object_get(o, "temperature") != NULL ||
                      json_object_get(o, "topP") != NULL || m->max_temperature >= 0;
        m->thinking = json_is_true(json_object_get(o, "thinking"));
    }
    return 0;
}

int
skiff_catalog_apply_list(struct skiff_catalog *cat, json_t *models)
{
    size_t n = json_array_size(models);
    if (n == 0 || n > MAX_MODELS)
        return -1;
    struct table *t = table_new(n, SKIFF_CATALOG_UPSTREAM);
    if (!t)
        return -1;
    size_t i;
    json_t *o;
    json_array_foreach(models, i, o)
    {
        if (from_json(&t->m[t->n], o) == 0) {
            t->hash[t->n] = fnv1a(t->m[t->n].name, strlen(t->m[t->n].name));
            t->n++;
        }
    }
    if (t->n == 0) {
        table_free(t);
        return -1;
    }
    pthread_rwlock_wrlock(&cat->lock);
    struct table *old = cat->t;
    cat->t = t;
    pthread_rwlock_unlock(&cat->lock);
    table_free(old);
    return (int)t->n;
}
