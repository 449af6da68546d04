/*
 * `skiff doctor [--config FILE]`: loads the configuration with the serve loader, then checks
 * each upstream key with one cheap call (GET /v1beta/models?pageSize=1 through the
 * configured proxy) and reports, per key label (never the key): valid, invalid, no
 * permission, region-blocked, rate-limited (per minute or per day), no quota, upstream
 * error, or unreachable. Exit status: 0 when at least one key works, 1 when none does,
 * 2 for a configuration that does not load.
 */
#ifndef SKIFF_DOCTOR_H
#define SKIFF_DOCTOR_H

#include "gemini/classify.h"

enum skiff_key_state {
    SKIFF_KEY_VALID = 0,
    SKIFF_KEY_INVALID,
    SKIFF_KEY_DENIED,
    SKIFF_KEY_REGION,
    SKIFF_KEY_RATE_MINUTE,
    SKIFF_KEY_RATE_DAY,
    SKIFF_KEY_NO_QUOTA,
    SKIFF_KEY_RATE_OTHER,
    SKIFF_KEY_UPSTREAM_ERROR, /* a 5xx or another unexpected answer */
    SKIFF_KEY_UNREACHABLE,    /* no answer at all (DNS, connect, proxy, TLS, timeout) */
};

/* What a check's answer means for the key: status 0 is a transport failure. Pure. */
enum skiff_key_state skiff_doctor_judge(int status, const struct skiff_verdict *v);

/* The report's word for a state: "valid", "rate-limited (per-day)", ... (static). */
const char *skiff_key_state_name(enum skiff_key_state s);

/* The subcommand; argv[0] is "doctor". */
int skiff_doctor_main(int argc, char **argv);

#endif
