#include "cli/keys.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "base/clock.h"
#include "config/config.h"
#include "gemini/pacific.h"
#include "relay/keypool.h"
#include "state/store.h"

static int
usage(void)
{
    fprintf(stderr,
            "usage: skiff keys [--config FILE]                 list resting and retired keys\n"
            "       skiff keys [--config FILE] enable LABEL    bring a retired key back\n"
            "The state is read from storage.sqlite; a running skiff sees a change when it\n"
            "restarts.\n");
    return 2;
}

struct listing {
    const struct skiff_config *cfg;
    const char *enable; /* a label, or NULL to list */
    struct skiff_store *store;
    int64_t now;
    int rows;
};

static const char *
label_of(const struct skiff_config *cfg, const char *key_id)
{
    for (size_t i = 0; i < cfg->nkeys; i++) {
        char id[17];
        skiff_state_key_id(cfg->keys[i].key, id);
        if (strcmp(id, key_id) == 0)
            return cfg->keys[i].label;
    }
    return NULL;
}

static int
label_known(const struct skiff_config *cfg, const char *label)
{
    for (size_t i = 0; i < cfg->nkeys; i++)
        if (strcmp(cfg->keys[i].label, label) == 0)
            return 1;
    return 0;
}

static void
on_state(const struct skiff_key_state *st, void *ud)
{
    struct listing *l = ud;
    const char *label = label_of(l->cfg, st->key_id);
    if (!label)
        return; /* a key that is no longer configured */
    if (l->enable) {
        if (strcmp(label, l->enable) != 0)
            return;
        struct skiff_key_state cleared = *st;
        cleared.retired = 0;
        cleared.rest_until_ms = 0;
        cleared.updated_ms = l->now;
        snprintf(cleared.reason, sizeof cleared.reason, "enabled by an operator");
        skiff_store_put_state(l->store, &cleared);
        l->rows++;
        return;
    }
    if (l->rows++ == 0)
        printf("%-16s %-28s %-8s %-10s %s\n", "KEY", "MODEL", "STATE", "FOR", "REASON");
    char left[32] = "-";
    if (!st->retired) {
        int64_t s = (st->rest_until_ms - l->now) / 1000;
        snprintf(left, sizeof left, "%lldh%02lldm%02llds", (long long)(s / 3600),
                 (long long)(s / 60 % 60), (long long)(s % 60));
    }
    printf("%-16s %-28s %-8s %-10s %s\n", label, st->model, st->retired ? "retired" : "resting",
           left, st->reason);
}

int
skiff_keys_main(int argc, char **argv)
{
    const char *path = NULL, *enable = NULL;
    for (int i = 1; i < argc; i++) {
        if (skiff_config_arg(argc, argv, &i, &path))
            continue;
        if (strcmp(argv[i], "enable") == 0 && i + 1 < argc)
            enable = argv[++i];
        else
            return usage();
    }
    char err[512];
    struct skiff_config *cfg = skiff_config_load(path, err, sizeof err);
    if (!cfg) {
        fprintf(stderr, "skiff: %s\n", err);
        return 2;
    }
    if (!cfg->storage.sqlite || !*cfg->storage.sqlite) {
        fprintf(stderr, "skiff keys: storage.sqlite is off, so skiff keeps no key state across "
                        "restarts\n");
        skiff_config_free(cfg);
        return 1;
    }
    if (enable && !label_known(cfg, enable)) {
        fprintf(stderr,
                "skiff keys: no key is labelled '%s' in the config (labels are the "
                "configured ones, or key#N by position)\n",
                enable);
        skiff_config_free(cfg);
        return 1;
    }
    /* The same fingerprint as skiff serve's, so opening does not forget retirements. */
    char fp[17];
    skiff_keypool_fingerprint(cfg, fp);
    struct skiff_store *store = skiff_store_open(cfg->storage.sqlite, fp, err, sizeof err);
    if (!store) {
        fprintf(stderr, "skiff: %s\n", err);
        skiff_config_free(cfg);
        return 1;
    }
    struct listing l = {.cfg = cfg, .enable = enable, .store = store, .now = skiff_now_ms()};
    char day[11];
    skiff_pacific_date(l.now, day);
    skiff_store_load(store, l.now, day, on_state, NULL, &l);
    skiff_store_flush(store);
    if (enable)
        printf(l.rows ? "%s: enabled (%d state row%s cleared); restart skiff to apply\n"
                      : "%s: nothing to enable (not resting or retired)\n",
               enable, l.rows, l.rows == 1 ? "" : "s");
    else if (l.rows == 0)
        printf("every configured key is healthy\n");
    skiff_store_close(store);
    skiff_config_free(cfg);
    return 0;
}
