#include "cli/doctor.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "gemini/advice.h"
#include "gemini/catalog.h"
#include "base/url.h"
#include "relay/fetch.h"

#define CHECK_TIMEOUT_MS 20000L

enum skiff_key_state
skiff_doctor_judge(int status, const struct skiff_verdict *v)
{
    if (status == 0)
        return SKIFF_KEY_UNREACHABLE;
    /* doctor's call carries the key and nothing else: a refusal that names no key is still
     * the key's here. */
    if (v->fault == SKIFF_FAULT_CLIENT && (status == 401 || status == 403))
        return status == 401 ? SKIFF_KEY_INVALID : SKIFF_KEY_DENIED;
    switch (v->fault) {
    case SKIFF_FAULT_NONE:
        return SKIFF_KEY_VALID;
    case SKIFF_FAULT_KEY_INVALID:
        return SKIFF_KEY_INVALID;
    case SKIFF_FAULT_KEY_DENIED:
        return SKIFF_KEY_DENIED;
    case SKIFF_FAULT_KEY_REGION:
        return SKIFF_KEY_REGION;
    case SKIFF_FAULT_QUOTA_MINUTE:
        return SKIFF_KEY_RATE_MINUTE;
    case SKIFF_FAULT_QUOTA_DAY:
        return SKIFF_KEY_RATE_DAY;
    case SKIFF_FAULT_QUOTA_ZERO:
        return SKIFF_KEY_NO_QUOTA;
    case SKIFF_FAULT_QUOTA_OTHER:
        return SKIFF_KEY_RATE_OTHER;
    default:
        return SKIFF_KEY_UPSTREAM_ERROR;
    }
}

const char *
skiff_key_state_name(enum skiff_key_state s)
{
    static const char *const names[] = {"valid",
                                        "invalid",
                                        "no permission",
                                        "region-blocked",
                                        "rate-limited (per-minute)",
                                        "rate-limited (per-day)",
                                        "no quota",
                                        "rate-limited",
                                        "upstream error",
                                        "unreachable"};
    return (unsigned)s < sizeof names / sizeof names[0] ? names[s] : "unknown";
}

static int
usage(void)
{
    fprintf(stderr, "usage: skiff doctor [--config FILE]\n"
                    "  Checks the configuration, then each upstream key with one cheap call\n"
                    "  (models.list through the configured proxy). Exit 0 when at least one key\n"
                    "  works, 1 when none does, 2 when the configuration does not load.\n");
    return 2;
}

struct result {
    enum skiff_key_state state;
    char detail[512];
};

/* One key: the call, the verdict, the line of progress. */
static void
check_key(const struct skiff_config *cfg, size_t i, struct result *res)
{
    char url[2048];
    snprintf(url, sizeof url, "%s/v1beta/models?pageSize=1", cfg->base_url);
    struct skiff_get_result r;
    long connect_ms = cfg->retry.connect_timeout_ms < CHECK_TIMEOUT_MS
                          ? cfg->retry.connect_timeout_ms
                          : CHECK_TIMEOUT_MS;
    skiff_gemini_get(url, cfg->keys[i].key, cfg->proxy, cfg->ca_file, connect_ms, CHECK_TIMEOUT_MS,
                     &r);
    struct skiff_verdict v;
    skiff_classify(r.status, r.body, r.len, r.retry_after[0] ? r.retry_after : NULL, &v);
    res->state = skiff_doctor_judge(r.status, &v);
    switch (res->state) {
    case SKIFF_KEY_VALID:
        snprintf(res->detail, sizeof res->detail, "HTTP 200 in %ld ms", r.ms);
        break;
    case SKIFF_KEY_UNREACHABLE:
        snprintf(res->detail, sizeof res->detail, "%s%s", r.error,
                 cfg->proxy ? " (through the configured proxy)" : "");
        break;
    case SKIFF_KEY_RATE_MINUTE:
        if (v.retry_delay_s >= 0) {
            snprintf(res->detail, sizeof res->detail, "HTTP 429, free again in %.0f s",
                     v.retry_delay_s);
            break;
        }
        /* fall through */
    default: {
        const struct skiff_advice *a = skiff_advice_verdict(r.status, &v, r.body, r.len);
        snprintf(res->detail, sizeof res->detail, "HTTP %d %s: %s", r.status, a->status, v.reason);
    }
    }
    skiff_get_result_release(&r);
}

static int
works(enum skiff_key_state s)
{
    return s == SKIFF_KEY_VALID;
}

/* The fix for a state, from the explain table. */
static const char *
fix_for(enum skiff_key_state s)
{
    const char *kind = NULL;
    switch (s) {
    case SKIFF_KEY_INVALID:
        kind = "invalid API key";
        break;
    case SKIFF_KEY_DENIED:
        kind = "no permission";
        break;
    case SKIFF_KEY_REGION:
        kind = "region or billing";
        break;
    case SKIFF_KEY_RATE_MINUTE:
        kind = "per-minute quota";
        break;
    case SKIFF_KEY_RATE_DAY:
        kind = "per-day quota";
        break;
    case SKIFF_KEY_NO_QUOTA:
        kind = "no quota for this model";
        break;
    case SKIFF_KEY_RATE_OTHER:
        kind = "rate limit";
        break;
    case SKIFF_KEY_UPSTREAM_ERROR:
        kind = "overloaded";
        break;
    case SKIFF_KEY_UNREACHABLE:
        return "check the network, DNS and upstreams.gemini.proxy (http://, https://, socks5://, "
               "socks5h://), and upstreams.gemini.base_url.";
    default:
        return NULL;
    }
    const struct skiff_advice *a = skiff_advice_kind(kind);
    return a ? a->fix : NULL;
}

int
skiff_doctor_main(int argc, char **argv)
{
    const char *path = NULL;
    for (int i = 1; i < argc; i++) {
        if (!skiff_config_arg(argc, argv, &i, &path))
            return usage();
    }
    char err[512];
    struct skiff_config *cfg = skiff_config_load(path, err, sizeof err);
    if (!cfg) {
        printf("config: %s\n", err);
        printf("\nskiff doctor: the configuration does not load; fix it first.\n");
        return 2;
    }
    char upstream[256];
    printf("config: %s loads (%zu key%s, upstream %s, proxy %s)\n",
           path ? path : "(defaults and environment)", cfg->nkeys, cfg->nkeys == 1 ? "" : "s",
           skiff_url_redact(cfg->base_url, upstream, sizeof upstream),
           cfg->proxy ? "configured" : "none");
    if (cfg->nkeys == 0) {
        printf("\nNo upstream key is configured: set upstreams.gemini.keys or GEMINI_API_KEYS.\n");
        skiff_config_free(cfg);
        return 1;
    }
    fflush(stdout);

    struct result *res = calloc(cfg->nkeys, sizeof *res);
    if (!res) {
        skiff_config_free(cfg);
        return 1;
    }
    size_t ok = 0, first_ok = 0, width = 5;
    for (size_t i = 0; i < cfg->nkeys; i++) {
        printf("checking %s (%zu/%zu) ... ", cfg->keys[i].label, i + 1, cfg->nkeys);
        fflush(stdout);
        check_key(cfg, i, &res[i]);
        printf("%s (%s)\n", skiff_key_state_name(res[i].state), res[i].detail);
        fflush(stdout);
        if (works(res[i].state) && ok++ == 0)
            first_ok = i;
        size_t w = strlen(cfg->keys[i].label);
        if (w > width)
            width = w;
    }

    printf("\n%-*s  %-26s  %s\n", (int)width, "KEY", "RESULT", "DETAIL");
    for (size_t i = 0; i < cfg->nkeys; i++)
        printf("%-*s  %-26s  %s\n", (int)width, cfg->keys[i].label,
               skiff_key_state_name(res[i].state), res[i].detail);

    /* One fix per kind of problem, in table order. */
    int shown[SKIFF_KEY_UNREACHABLE + 1] = {0};
    int header = 0;
    for (size_t i = 0; i < cfg->nkeys; i++) {
        enum skiff_key_state s = res[i].state;
        const char *fix = fix_for(s);
        if (!fix || shown[s]++)
            continue;
        if (!header++)
            printf("\nWhat to do:\n");
        printf("  %s: %s\n", skiff_key_state_name(s), fix);
    }

    if (ok) {
        struct skiff_catalog *cat = skiff_catalog_new();
        char cerr[256];
        int n = cat ? skiff_catalog_refresh(cat, cfg->base_url, cfg->keys[first_ok].key, cfg->proxy,
                                            cfg->ca_file, cerr, sizeof cerr)
                    : -1;
        if (n >= 0)
            printf("\ncatalog: %d models listed by the upstream (via %s)\n", n,
                   cfg->keys[first_ok].label);
        else
            printf("\ncatalog: could not list the models (%s); skiff would use its built-in list\n",
                   cat ? cerr : "out of memory");
        skiff_catalog_free(cat);
    }
    printf("\n%zu of %zu key%s work%s.\n", ok, cfg->nkeys, cfg->nkeys == 1 ? "" : "s",
           ok == 1 ? "s" : "");
    free(res);
    skiff_config_free(cfg);
    return ok ? 0 : 1;
}
