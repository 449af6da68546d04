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

#define GEN (SKIFF_CAT_GENERATE | SKIFF_CAT_COUNT)
#define EMB (SKIFF_CAT_EMBED | SKIFF_CAT_BATCH_EMBED | SKIFF_CAT_COUNT)
#define M1 1048576
/* sampling, thinking, budget_min, budget_max, zero_ok: §2.5's table for the 2.5 family; for
 * 3.x only what was seen live (budget 0 refused), so their upper bound stays unchecked. */
#define PRO25 1, 1, 128, 32768, 0
#define FLASH25 1, 1, 0, 24576, 1
#define LITE25 1, 1, 512, 24576, 1
#define G3 1, 1, 1, 0, 0
#define NOTHINK 1, 0, 0, 0, 0
#define EMBED 0, 0, 0, 0, 0

struct builtin {
    const char *name, *target;
    long in, out;
    unsigned methods;
    double max_temperature;
    int sampling, thinking, budget_min, budget_max, budget_zero_ok;
    int v1;
};

/* The same models and limits as src/sim/catalog.c (tests/unit/test_catalog.c checks it). */
static const struct builtin builtin[] = {
    {"gemini-2.5-pro", "", M1, 65536, GEN, 2.0, PRO25, 1},
    {"gemini-2.5-flash", "", M1, 65536, GEN, 2.0, FLASH25, 1},
    {"gemini-2.5-flash-lite", "", M1, 65536, GEN, 2.0, LITE25, 1},
    {"gemini-flash-latest", "gemini-3.6-flash", M1, 65536, GEN, 2.0, G3, 1},
    {"gemini-flash-lite-latest", "gemini-3.5-flash-lite", M1, 65536, GEN, 2.0, G3, 1},
    {"gemini-pro-latest", "gemini-3.1-pro-preview", M1, 65536, GEN, 2.0, G3, 1},
    {"gemini-3-flash-preview", "", M1, 65536, GEN, 2.0, G3, 0},
    {"gemini-3.1-pro-preview", "", M1, 65536, GEN, 2.0, G3, 0},
    {"gemini-3.1-flash-lite", "", M1, 65536, GEN, 2.0, G3, 1},
    {"gemini-3.5-flash", "", M1, 65536, GEN, 2.0, G3, 1},
    {"gemini-3.5-flash-lite", "", M1, 65536, GEN, 2.0, G3, 1},
    {"gemini-3.6-flash", "", M1, 65536, GEN, 2.0, G3, 1},
    {"gemini-3.7-flash", "", M1, 65536, GEN, 2.0, G3, 1},
    {"gemini-3.8-flash", "", M1, 65536, GEN, 2.0, G3, 1},
    {"gemini-2.5-flash-image", "", 32768, 32768, GEN, 1.0, NOTHINK, 0},
    {"gemini-2.5-flash-preview-tts", "", 8192, 16384, GEN, 2.0, NOTHINK, 0},
    {"gemma-4-31b-it", "", 262144, 32768, GEN, 2.0, FLASH25, 0},
    {"gemma-4-26b-a4b-it", "", 262144, 32768, GEN, 2.0, FLASH25, 0},
    {"gemini-embedding-001", "", 2048, 1, EMB, -1.0, EMBED, 1},
    {"gemini-embedding-2", "", 8192, 1, EMB, -1.0, EMBED, 0},
    {"gemini-embedding-2-preview", "", 8192, 1, EMB, -1.0, EMBED, 0},
    {"aqa", "", 7168, 1024, SKIFF_CAT_OTHER, -1.0, 1, 0, 0, 0, 0, 0},
};

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

static void
from_builtin(struct skiff_model_info *m, const struct builtin *b)
{
    memset(m, 0, sizeof *m);
    snprintf(m->name, sizeof m->name, "%s", b->name);
    snprintf(m->target, sizeof m->target, "%s", b->target);
    m->input_limit = b->in;
    m->output_limit = b->out;
    m->methods = b->methods;
    m->max_temperature = b->max_temperature;
    m->sampling = b->sampling;
    m->thinking = b->thinking;
    m->budget_min = b->budget_min;
    m->budget_max = b->budget_max;
    m->budget_zero_ok = b->budget_zero_ok;
    m->v1 = b->v1;
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

static int
lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

size_t
skiff_edit_distance(const char *a, size_t la, const char *b, size_t lb)
{
    enum { MAXLEN = 128 };
    if (la >= MAXLEN || lb >= MAXLEN)
        return SIZE_MAX / 2;
    /* Three rows are enough for the optimal string alignment recurrence. */
    size_t r0[MAXLEN + 1], r1[MAXLEN + 1], r2[MAXLEN + 1];
    size_t *pp = r0, *p = r1, *c = r2;
    for (size_t j = 0; j <= lb; j++)
        p[j] = j;
    for (size_t i = 1; i <= la; i++) {
        c[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            int ca = lower(a[i - 1]), cb = lower(b[j - 1]);
            size_t best = p[j - 1] + (ca != cb);
            if (p[j] + 1 < best)
                best = p[j] + 1;
            if (c[j - 1] + 1 < best)
                best = c[j - 1] + 1;
            if (i > 1 && j > 1 && ca == lower(b[j - 2]) && lower(a[i - 2]) == cb &&
                pp[j - 2] + 1 < best)
                best = pp[j - 2] + 1;
            c[j] = best;
        }
        size_t *tmp = pp;
        pp = p;
        p = c;
        c = tmp;
    }
    return p[lb];
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
