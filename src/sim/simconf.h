/*
 * The simulator's own configuration: command-line flags and an optional YAML file with the
 * same names as keys (a flat mapping). The file is read first and flags override it, in
 * whatever order they are given.
 *
 *   --listen HOST:PORT      default 127.0.0.1:8090; port 0 picks a free one
 *   --keys LIST             valid keys, comma separated; items KEY, KEY=region_blocked,
 *                           KEY=denied, and PREFIX* (any key starting with PREFIX).
 *                           Default: "AIza*"
 *   --rpm LIST, --tpm LIST, --rpd LIST
 *                           limits per key and model: items N (every model) and MODEL:N;
 *                           N is a count, 0 (no quota at all) or "unlimited".
 *                           Default: each model's free-tier figure (catalog.h)
 *   --faults SPEC           faults.h
 *   --latency-ms A[:B]      time to first byte, uniform in [A, B]
 *   --chunk-ms A[:B]        delay between stream events
 *   --think-ms A[:B]        how long a thinking model thinks: on a stream that shows
 *                           thoughts, the gap between the thought and the answer's first
 *                           text (the thought is an event of its own); otherwise added to
 *                           the time to first byte. Default 0
 *   --seed N                random seed (default: from the clock, printed at start)
 *   --batch-ms N            a batch's creation to BATCH_STATE_SUCCEEDED (default 2000)
 *   --live-session-ms N     a Live session's limit from its opening: then goAway (default
 *                           600000, Google's 10 minutes; 0: no limit)
 *   --live-goaway-ms N      goAway's timeLeft: the client's time to close before the
 *                           simulator closes with 1008 (default 5000)
 *   --config FILE           the YAML file
 *
 * In YAML, a LIST may also be a sequence (keys: [AIzaA, AIzaB=denied]) and numbers may be
 * plain integers.
 */
#ifndef SKIFF_SIM_SIMCONF_H
#define SKIFF_SIM_SIMCONF_H

#include <stddef.h>
#include <stdint.h>

#include "sim/faults.h"
#include "sim/quota.h"

enum skiff_sim_key_kind {
    SKIFF_SIM_KEY_VALID,
    SKIFF_SIM_KEY_REGION_BLOCKED, /* 400 FAILED_PRECONDITION "User location is not supported" */
    SKIFF_SIM_KEY_DENIED,         /* 403 PERMISSION_DENIED */
    SKIFF_SIM_KEY_INVALID,        /* not configured: 400 API_KEY_INVALID */
};

struct skiff_sim_key_rule {
    char *key; /* owned; for a prefix rule, without the '*' */
    int prefix;
    enum skiff_sim_key_kind kind;
};

/* A limit override: model NULL for every model. */
struct skiff_sim_limit_rule {
    char *model;
    long value; /* a count, 0, or SKIFF_SIM_UNLIMITED */
};

struct skiff_sim_conf {
    char host[256];
    uint16_t port;
    struct skiff_sim_key_rule *keys;
    size_t nkeys;
    struct skiff_sim_limit_rule *limits[3]; /* rpm, tpm, rpd */
    size_t nlimits[3];
    struct skiff_sim_faults faults;
    long latency_min, latency_max;
    long chunk_min, chunk_max;
    long batch_ms;        /* a batch's creation to its end (batches.h) */
    long live_session_ms; /* a Live session's limit: then goAway (0: none) */
    long live_goaway_ms;  /* goAway's timeLeft: then the close */
    long think_min, think_max;
    uint64_t seed;
    int seed_set;
};

/*
 * Fills conf from argv (argv[0] is "sim"). Returns 0; 1 when --help was asked (usage is
 * in err); SKIFF_EINVAL with a message naming the flag or the file and key in err.
 * Release conf in every case.
 */
int skiff_sim_conf_parse(struct skiff_sim_conf *conf, int argc, char **argv, char *err,
                         size_t errlen);
void skiff_sim_conf_release(struct skiff_sim_conf *conf);

/* How a key is treated; exact rules win over prefix rules. key may be NULL (INVALID). */
enum skiff_sim_key_kind skiff_sim_conf_key(const struct skiff_sim_conf *conf, const char *key);

/* The limits for a concrete model: overrides first (a MODEL:N item beats an N item), then the
 * catalog's free-tier figures. */
void skiff_sim_conf_limits(const struct skiff_sim_conf *conf, const char *model,
                           struct skiff_sim_limits *out);

/* The usage text. */
extern const char skiff_sim_usage[];

#endif
