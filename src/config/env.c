/*
 * The environment overrides, applied after the file (handy for containers and secrets
 * managers): GEMINI_API_KEYS and SKIFF_TOKENS replace the key and token lists,
 * SKIFF_LISTEN and SKIFF_GEMINI_BASE_URL one key each. A variable that is unset or blank is
 * ignored. Values go through the same checks as the file's; messages name the variable (and
 * the item), never a secret.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/list.h"
#include "config/loader.h"

/* A variable's value, or NULL when it is unset or blank (as `VAR=` in a compose file leaves it). */
static const char *
env_value(const char *name)
{
    const char *v = getenv(name);
    if (!v)
        return NULL;
    for (const char *p = v; *p; p++)
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r')
            return v;
    return NULL;
}

static int
is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* GEMINI_API_KEYS replaces the file's keys; they are labelled key#N by position. */
static int
env_keys(struct loader *ld)
{
    static const char var[] = "GEMINI_API_KEYS";
    struct skiff_config *cfg = ld->cfg;
    const char *list = env_value(var), *item, *why;
    size_t len, n = 0, j, count = skiff_list_count(list);
    char label[32];

    if (!count)
        return 0;
    cfg_free_keys(cfg);
    cfg->keys = calloc(count, sizeof *cfg->keys);
    if (!cfg->keys)
        return cfg_fail_nomem(ld);
    cfg->nkeys = count;
    while (skiff_list_next(&list, &item, &len)) {
        if (!len)
            continue;
        struct skiff_key *k = &cfg->keys[n++];
        snprintf(label, sizeof label, "key#%zu", n);
        if (cfg_set_stringn(ld, &k->key, item, len, 0) < 0 ||
            cfg_set_string(ld, &k->label, label, 0) < 0)
            return -1;
        if ((why = cfg_check_key(k->key)))
            return cfg_fail(ld, "%s: item %zu: the key %s", var, n, why);
        if (cfg_key_clash(cfg, n - 1, &j))
            return cfg_fail(ld, "%s: item %zu: the same key as item %zu", var, n, j + 1);
    }
    return 0;
}

/* SKIFF_TOKENS replaces the file's tokens; an item is "token" (named token#N) or "name:token". */
static int
env_tokens(struct loader *ld)
{
    static const char var[] = "SKIFF_TOKENS";
    struct skiff_config *cfg = ld->cfg;
    const char *list = env_value(var), *item, *why;
    size_t len, n = 0, j, count = skiff_list_count(list);
    char name[32];

    if (!count)
        return 0;
    cfg_free_tokens(cfg);
    cfg->tokens = calloc(count, sizeof *cfg->tokens);
    if (!cfg->tokens)
        return cfg_fail_nomem(ld);
    cfg->ntokens = count;
    while (skiff_list_next(&list, &item, &len)) {
        if (!len)
            continue;
        struct skiff_token *t = &cfg->tokens[n++];
        const char *colon = memchr(item, ':', len);
        if (colon) {
            const char *nend = colon, *tok = colon + 1;
            while (nend > item && is_blank(nend[-1]))
                nend--;
            while (tok < item + len && is_blank(*tok))
                tok++;
            if (cfg_set_stringn(ld, &t->name, item, (size_t)(nend - item), 0) < 0 ||
                cfg_set_stringn(ld, &t->token, tok, (size_t)(item + len - tok), 0) < 0)
                return -1;
            if ((why = cfg_check_name(t->name)))
                return cfg_fail(ld, "%s: item %zu: the name before ':' %s", var, n, why);
        } else {
            snprintf(name, sizeof name, "token#%zu", n);
            if (cfg_set_string(ld, &t->name, name, 0) < 0 ||
                cfg_set_stringn(ld, &t->token, item, len, 0) < 0)
                return -1;
        }
        if ((why = cfg_check_token(t->token)))
            return cfg_fail(ld, "%s: item %zu: the token %s", var, n, why);
        switch (cfg_token_clash(cfg, n - 1, &j)) {
        case 1:
            return cfg_fail(ld, "%s: item %zu: the same token as item %zu", var, n, j + 1);
        case 2:
            return cfg_fail(ld, "%s: item %zu: the same name as item %zu", var, n, j + 1);
        default:
            break;
        }
    }
    return 0;
}

static int
env_listen(struct loader *ld)
{
    static const char var[] = "SKIFF_LISTEN";
    const char *v = env_value(var), *why;
    char *host = NULL;
    uint16_t port;
    char buf[128];
    if (!v)
        return 0;
    enum cfg_listen r = cfg_parse_listen(v, &host, &port, &why);
    if (r == CFG_LISTEN_NOMEM)
        return cfg_fail_nomem(ld);
    if (r == CFG_LISTEN_BAD)
        return cfg_fail(ld, "%s: %s, got %s", var, why, cfg_quote(v, buf, sizeof buf));
    free(ld->cfg->listen_host);
    ld->cfg->listen_host = host;
    ld->cfg->listen_port = port;
    ld->listen_from = var;
    return 0;
}

/* The variables that replace one string key, read with that key's check and flags. */
static const struct {
    const char *var;
    const char *key; /* the dotted key path in the tables */
} env_strings[] = {
    {"SKIFF_GEMINI_BASE_URL", "upstreams.gemini.base_url"},
};

static int
env_string(struct loader *ld, const char *var, const char *key)
{
    const struct cfg_field *f = cfg_find(&cfg_root, key);
    const char *v = env_value(var), *why;
    char buf[128];
    if (!v || !f)
        return 0;
    if (f->check && (why = f->check(v))) {
        if (f->flags & CFG_HIDE)
            return cfg_fail(ld, "%s: %s", var, why);
        return cfg_fail(ld, "%s: %s, got %s", var, why,
                        f->flags & CFG_URL ? cfg_quote_url(v, buf, sizeof buf)
                                           : cfg_quote(v, buf, sizeof buf));
    }
    return cfg_store_string(ld, f, v, ld->cfg);
}

int
cfg_apply_env(struct loader *ld)
{
    if (env_keys(ld) < 0 || env_tokens(ld) < 0 || env_listen(ld) < 0)
        return -1;
    for (size_t i = 0; i < sizeof env_strings / sizeof env_strings[0]; i++)
        if (env_string(ld, env_strings[i].var, env_strings[i].key) < 0)
            return -1;
    return 0;
}
