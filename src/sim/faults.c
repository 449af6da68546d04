#include "sim/faults.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "sim/catalog.h"

static const char *const names[SKIFF_SIM_FAULT_COUNT] = {"none",  "500",  "503", "504",
                                                         "reset", "hang", "429"};

const char *
skiff_sim_fault_name(enum skiff_sim_fault f)
{
    return (unsigned)f < SKIFF_SIM_FAULT_COUNT ? names[f] : "none";
}

void
skiff_sim_rng_seed(struct skiff_sim_rng *r, uint64_t seed)
{
    r->state = seed;
}

uint64_t
skiff_sim_mix(uint64_t z)
{
    /* splitmix64 (Steele, Lea, Flood 2014): one add and a finaliser; every seed is good. */
    z += 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

uint64_t
skiff_sim_rng_next(struct skiff_sim_rng *r)
{
    uint64_t z = skiff_sim_mix(r->state);
    r->state += 0x9e3779b97f4a7c15ULL;
    return z;
}

double
skiff_sim_rng_unit(struct skiff_sim_rng *r)
{
    return (double)(skiff_sim_rng_next(r) >> 11) * 0x1.0p-53;
}

uint64_t
skiff_sim_rng_range(struct skiff_sim_rng *r, uint64_t lo, uint64_t hi)
{
    uint64_t span = hi - lo + 1;
    if (span == 0) /* the whole 64-bit range */
        return skiff_sim_rng_next(r);
    return lo + skiff_sim_rng_next(r) % span;
}

void
skiff_sim_faults_init(struct skiff_sim_faults *f)
{
    memset(f, 0, sizeof *f);
}

void
skiff_sim_faults_release(struct skiff_sim_faults *f)
{
    for (size_t i = 0; i < f->nmodels; i++)
        free(f->models[i].model);
    free(f->models);
    skiff_sim_faults_init(f);
}

static struct skiff_sim_fault_model *
model_entry(const struct skiff_sim_faults *f, const char *model)
{
    for (size_t i = 0; i < f->nmodels; i++)
        if (strcmp(f->models[i].model, model) == 0)
            return &f->models[i];
    return NULL;
}

static struct skiff_sim_fault_model *
add_model(struct skiff_sim_faults *f, const char *model, size_t len)
{
    struct skiff_sim_fault_model *m = realloc(f->models, (f->nmodels + 1) * sizeof *m);
    if (!m)
        return NULL;
    f->models = m;
    m = &f->models[f->nmodels];
    m->model = strndup(model, len);
    if (!m->model)
        return NULL;
    for (int k = 0; k < SKIFF_SIM_FAULT_COUNT; k++)
        m->p[k] = -1;
    f->nmodels++;
    return m;
}

double
skiff_sim_faults_p(const struct skiff_sim_faults *f, const char *model, enum skiff_sim_fault k)
{
    const struct skiff_sim_fault_model *m = model ? model_entry(f, model) : NULL;
    if (m && m->p[k] >= 0)
        return m->p[k];
    return f->p[k];
}

static double
sum_for(const struct skiff_sim_faults *f, const char *model)
{
    double s = 0;
    for (int k = 1; k < SKIFF_SIM_FAULT_COUNT; k++)
        s += skiff_sim_faults_p(f, model, (enum skiff_sim_fault)k);
    return s;
}

/* Parses one "[MODEL:]KIND=P" item of len bytes. */
static int
parse_item(struct skiff_sim_faults *f, const char *item, size_t len, char *err, size_t errlen)
{
    const char *eq = memchr(item, '=', len);
    if (!eq) {
        snprintf(err, errlen, "--faults: item \"%.*s\" is not KIND=PROBABILITY", (int)len, item);
        return SKIFF_EINVAL;
    }
    /* The model part ends at the last ':' before '=' (model ids contain no ':'). */
    const char *kind = item;
    const char *colon = NULL;
    for (const char *p = item; p < eq; p++)
        if (*p == ':')
            colon = p;
    double *slot;
    struct skiff_sim_fault_model *m = NULL;
    if (colon) {
        if (!skiff_sim_catalog_find(item, (size_t)(colon - item))) {
            snprintf(err, errlen, "--faults: unknown model \"%.*s\" in \"%.*s\"",
                     (int)(colon - item), item, (int)len, item);
            return SKIFF_EINVAL;
        }
        for (size_t i = 0; i < f->nmodels; i++)
            if (strlen(f->models[i].model) == (size_t)(colon - item) &&
                memcmp(f->models[i].model, item, (size_t)(colon - item)) == 0)
                m = &f->models[i];
        if (!m && !(m = add_model(f, item, (size_t)(colon - item)))) {
            snprintf(err, errlen, "--faults: out of memory");
            return SKIFF_ENOMEM;
        }
        kind = colon + 1;
    }
    size_t klen = (size_t)(eq - kind);
    int k;
    for (k = 1; k < SKIFF_SIM_FAULT_COUNT; k++)
        if (strlen(names[k]) == klen && memcmp(names[k], kind, klen) == 0)
            break;
    if (k == SKIFF_SIM_FAULT_COUNT) {
        snprintf(
            err, errlen,
            "--faults: unknown fault \"%.*s\" in \"%.*s\" (use 500, 503, 504, reset, hang, 429)",
            (int)klen, kind, (int)len, item);
        return SKIFF_EINVAL;
    }
    slot = m ? &m->p[k] : &f->p[k];

    char num[32];
    size_t nlen = (size_t)(item + len - (eq + 1));
    if (nlen == 0 || nlen >= sizeof num) {
        snprintf(err, errlen, "--faults: bad probability in \"%.*s\"", (int)len, item);
        return SKIFF_EINVAL;
    }
    memcpy(num, eq + 1, nlen);
    num[nlen] = '\0';
    char *end;
    errno = 0;
    double p = strtod(num, &end);
    if (errno || *end || !(p >= 0 && p <= 1)) {
        snprintf(err, errlen, "--faults: probability in \"%.*s\" must be a number in [0, 1]",
                 (int)len, item);
        return SKIFF_EINVAL;
    }
    *slot = p;
    return 0;
}

int
skiff_sim_faults_parse(struct skiff_sim_faults *f, const char *spec, char *err, size_t errlen)
{
    skiff_sim_faults_init(f);
    const char *p = spec;
    while (*p) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        /* Tolerate spaces around items, as YAML users write them. */
        while (len && *p == ' ') {
            p++;
            len--;
        }
        while (len && p[len - 1] == ' ')
            len--;
        if (len) {
            int rc = parse_item(f, p, len, err, errlen);
            if (rc)
                return rc;
        }
        if (!end)
            break;
        p = end + 1;
    }
    if (sum_for(f, NULL) > 1 + 1e-9) {
        snprintf(err, errlen, "--faults: probabilities add up to %.3g, more than 1",
                 sum_for(f, NULL));
        return SKIFF_EINVAL;
    }
    for (size_t i = 0; i < f->nmodels; i++) {
        double s = sum_for(f, f->models[i].model);
        if (s > 1 + 1e-9) {
            snprintf(err, errlen, "--faults: probabilities for %s add up to %.3g, more than 1",
                     f->models[i].model, s);
            return SKIFF_EINVAL;
        }
    }
    return 0;
}

enum skiff_sim_fault
skiff_sim_faults_pick(const struct skiff_sim_faults *f, const char *model, double u)
{
    double acc = 0;
    for (int k = 1; k < SKIFF_SIM_FAULT_COUNT; k++) {
        double p = skiff_sim_faults_p(f, model, (enum skiff_sim_fault)k);
        acc += p;
        if (p > 0 && u < acc)
            return (enum skiff_sim_fault)k;
    }
    return SKIFF_SIM_FAULT_NONE;
}
