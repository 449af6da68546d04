#include "relay/keypool.h"

#include "gemini/catalog.h"
#include "gemini/pacific.h"
#include "state/sqlite.h"

/* A delay from the upstream in ms, cut to SKIFF_MAX_RETRY_DELAY_S; -1 for none (negative,
 * NaN). The conversion to an integer is defined for every double that comes in. */
static int64_t
delay_ms(double s)
{
    if (!(s >= 0))
        return -1;
    if (s > SKIFF_MAX_RETRY_DELAY_S)
        s = SKIFF_MAX_RETRY_DELAY_S;
    return (int64_t)(s * 1000);
}

void
skiff_keypool_verdict(enum skiff_fault fault, double retry_delay_s, const char *reason,
                      int64_t now_ms, struct skiff_key_verdict *out)
{
    int64_t d = delay_ms(retry_delay_s);
    *out = (struct skiff_key_verdict){.outcome = SKIFF_KEY_NEUTRAL, .reason = reason};
    switch (fault) {
    case SKIFF_FAULT_NONE:
        out->outcome = SKIFF_KEY_SERVED;
        break;
    case SKIFF_FAULT_CLIENT:
    case SKIFF_FAULT_TRANSIENT:
        break;
    case SKIFF_FAULT_QUOTA_MINUTE:
        out->outcome = SKIFF_KEY_REST;
        out->rest_ms = d >= 1000 ? d : d >= 0 ? 1000 : 60000;
        out->throttled = 1;
        break;
    case SKIFF_FAULT_QUOTA_DAY:
        out->outcome = SKIFF_KEY_REST;
        out->rest_ms = skiff_pacific_next_midnight_ms(now_ms) - now_ms;
        break;
    case SKIFF_FAULT_QUOTA_OTHER:
        out->outcome = SKIFF_KEY_REST;
        out->rest_ms = d > 0 ? d : SKIFF_KEYPOOL_BARE_429_REST_MS;
        out->throttled = 1;
        break;
    case SKIFF_FAULT_QUOTA_ZERO:
        out->outcome = SKIFF_KEY_RETIRE_MODEL;
        break;
    case SKIFF_FAULT_KEY_INVALID:
    case SKIFF_FAULT_KEY_DENIED:
    case SKIFF_FAULT_KEY_REGION:
        out->outcome = SKIFF_KEY_RETIRE_KEY;
        if (!reason)
            out->reason = skiff_fault_name(fault);
        break;
    }
}

struct skiff_keypool *
skiff_keypool_new(const struct skiff_config *cfg, struct skiff_store *store)
{
    struct skiff_state_backend be;
    skiff_state_sqlite(store, &be);
    struct skiff_keypool_opts o = {
        .backend = store ? &be : NULL,
        .day = skiff_pacific_day,
        .date = skiff_pacific_date,
    };
    return skiff_keypool_open(cfg, &o);
}

void
skiff_keypool_release(struct skiff_keypool *p, int key, const char *model, enum skiff_fault fault,
                      double retry_delay_s, const char *reason, int64_t tokens, int64_t now_ms)
{
    struct skiff_key_verdict v;
    skiff_keypool_verdict(fault, retry_delay_s, reason, now_ms, &v);
    skiff_keypool_report(p, key, model, &v, tokens, now_ms);
}

static int
in_catalog(void *ud, const char *model, size_t len)
{
    struct skiff_model_info info;
    return skiff_catalog_lookup(ud, model, len, &info);
}

void
skiff_keypool_use_catalog(struct skiff_keypool *p, const struct skiff_catalog *cat)
{
    /* The catalog is only read (skiff_catalog_lookup takes it const). */
    skiff_keypool_pin(p, cat ? in_catalog : NULL, (void *)cat);
}
