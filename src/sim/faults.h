/*
 * Fault injection: the --faults spec, and the simulator's seeded random numbers.
 *
 * A spec is a comma-separated list of KIND=P items, P a probability in [0, 1] per request;
 * KIND is 500, 503, 504, reset, hang or 429. An item written MODEL:KIND=P applies to that model
 * only and overrides the global probability of that kind for it (other kinds are
 * inherited). For every model the probabilities must add up to at most 1; the rest is the
 * chance of a normal answer.
 *
 * Randomness comes from one splitmix64 generator owned by the simulator, so the same seed
 * and the same sequence of requests give the same faults, latencies and reply ids.
 */
#ifndef SKIFF_SIM_FAULTS_H
#define SKIFF_SIM_FAULTS_H

#include <stddef.h>
#include <stdint.h>

enum skiff_sim_fault {
    SKIFF_SIM_FAULT_NONE,
    SKIFF_SIM_FAULT_500,   /* 500 INTERNAL */
    SKIFF_SIM_FAULT_503,   /* 503 UNAVAILABLE "The model is overloaded..." */
    SKIFF_SIM_FAULT_504,   /* 504 DEADLINE_EXCEEDED */
    SKIFF_SIM_FAULT_RESET, /* connection reset: before the reply, or mid-stream */
    SKIFF_SIM_FAULT_HANG,  /* never answer */
    SKIFF_SIM_FAULT_429,   /* a per-minute quota 429 (RetryInfo 1-4 s) without the quota spent */
    SKIFF_SIM_FAULT_COUNT
};

/* The spec's name of a fault kind ("503", "reset"); "none" for SKIFF_SIM_FAULT_NONE. */
const char *skiff_sim_fault_name(enum skiff_sim_fault f);

struct skiff_sim_rng {
    uint64_t state;
};

void skiff_sim_rng_seed(struct skiff_sim_rng *r, uint64_t seed);
uint64_t skiff_sim_rng_next(struct skiff_sim_rng *r);
/* One splitmix64 step as a pure function of z: what rng_next returns from state z. The
 * simulator's deterministic choices (answer words, ids, schema values) hash with it. */
uint64_t skiff_sim_mix(uint64_t z);
/* Uniform in [0, 1). */
double skiff_sim_rng_unit(struct skiff_sim_rng *r);
/* Uniform in [lo, hi] (lo <= hi). */
uint64_t skiff_sim_rng_range(struct skiff_sim_rng *r, uint64_t lo, uint64_t hi);

struct skiff_sim_fault_model {
    char *model;                     /* owned */
    double p[SKIFF_SIM_FAULT_COUNT]; /* < 0: inherit the global value */
};

struct skiff_sim_faults {
    double p[SKIFF_SIM_FAULT_COUNT];      /* global; p[SKIFF_SIM_FAULT_NONE] is unused */
    struct skiff_sim_fault_model *models; /* owned */
    size_t nmodels;
};

/* An empty spec: no faults. */
void skiff_sim_faults_init(struct skiff_sim_faults *f);
void skiff_sim_faults_release(struct skiff_sim_faults *f);

/*
 * Parses spec into f (initialised here; release it even on failure). Model names must be
 * in the catalog. Returns 0, or SKIFF_EINVAL with a message naming the bad item in err.
 */
int skiff_sim_faults_parse(struct skiff_sim_faults *f, const char *spec, char *err, size_t errlen);

/* The probability of fault kind k for a model (its override, else the global value). */
double skiff_sim_faults_p(const struct skiff_sim_faults *f, const char *model,
                          enum skiff_sim_fault k);

/*
 * The fault for one request to model, given u uniform in [0, 1): the kinds' probabilities
 * are laid end to end in enum order and u picks one, or none past their sum.
 */
enum skiff_sim_fault skiff_sim_faults_pick(const struct skiff_sim_faults *f, const char *model,
                                           double u);

#endif
