/*
 * The lists and free-keyed maps of the configuration: tokens and upstreams.gemini.keys (lists
 * of secrets, each item the bare value or a mapping read against its item table), fallbacks,
 * models and the thinking budgets (maps whose keys are model or token names). Each reader
 * replaces what was there; each free function empties its array.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/loader.h"

/* tokens, upstreams.gemini.keys. */

void
cfg_free_tokens(struct skiff_config *cfg)
{
    for (size_t i = 0; i < cfg->ntokens; i++) {
        free(cfg->tokens[i].name);
        free(cfg->tokens[i].token);
    }
    free(cfg->tokens);
    cfg->tokens = NULL;
    cfg->ntokens = 0;
}

void
cfg_free_keys(struct skiff_config *cfg)
{
    for (size_t i = 0; i < cfg->nkeys; i++) {
        free(cfg->keys[i].key);
        free(cfg->keys[i].label);
    }
    free(cfg->keys);
    cfg->keys = NULL;
    cfg->nkeys = 0;
}

int
cfg_token_clash(const struct skiff_config *cfg, size_t n, size_t *j)
{
    const struct skiff_token *t = &cfg->tokens[n];
    for (*j = 0; *j < n; ++*j) {
        if (!strcmp(cfg->tokens[*j].token, t->token))
            return 1;
        if (!strcmp(cfg->tokens[*j].name, t->name))
            return 2;
    }
    return 0;
}

int
cfg_key_clash(const struct skiff_config *cfg, size_t n, size_t *j)
{
    const struct skiff_key *k = &cfg->keys[n];
    for (*j = 0; *j < n; ++*j) {
        if (!strcmp(cfg->keys[*j].key, k->key))
            return 1;
        if (!strcmp(cfg->keys[*j].label, k->label))
            return 2;
    }
    return 0;
}

/*
 * Reads tokens[i]: either the token alone (named "token#N") or {name, token}. Called with
 * tokens[0..i-1] already read, so duplicates are caught against those.
 */
static int
read_token(struct loader *ld, const yaml_node_t *item, size_t i)
{
    struct skiff_token *t = &ld->cfg->tokens[i];
    yaml_node_t *seen[2] = {NULL, NULL};
    char msg[160], buf[96];
    const char *v, *why;
    size_t j;

    if (item->type == YAML_MAPPING_NODE) {
        if (cfg_walk_nodes(ld, item, &cfg_token_item, t, seen) < 0)
            return -1;
        if (!t->token)
            return cfg_fail_at(ld, item, "has no 'token'");
    } else {
        if (cfg_get_string(ld, item, "a token, or a mapping {name, token}", &v) < 0)
            return -1;
        if ((why = cfg_check_token(v)))
            return cfg_fail_at(ld, item, "%s", why);
        if (cfg_set_string(ld, &t->token, v, 0) < 0)
            return -1;
    }
    if (!t->name) {
        snprintf(msg, sizeof msg, "token#%zu", i + 1);
        if (cfg_set_string(ld, &t->name, msg, 0) < 0)
            return -1;
    }
    switch (cfg_token_clash(ld->cfg, i, &j)) {
    case 1:
        snprintf(msg, sizeof msg, "the same token as tokens[%zu]", j);
        return cfg_fail_item(ld, item, seen[1], "token", msg);
    case 2:
        snprintf(msg, sizeof msg, "the name %s is already used by tokens[%zu]",
                 cfg_quote_with(t->name, '\'', buf, sizeof buf), j);
        return cfg_fail_item(ld, item, seen[0], "name", msg);
    default:
        return 0;
    }
}

/* Reads keys[i]: either the key alone (labelled "key#N") or {key, label}. */
static int
read_key(struct loader *ld, const yaml_node_t *item, size_t i)
{
    struct skiff_key *k = &ld->cfg->keys[i];
    yaml_node_t *seen[2] = {NULL, NULL};
    char msg[160], buf[96];
    const char *v, *why;
    size_t j;

    if (item->type == YAML_MAPPING_NODE) {
        if (cfg_walk_nodes(ld, item, &cfg_key_item, k, seen) < 0)
            return -1;
        if (!k->key)
            return cfg_fail_at(ld, item, "has no 'key'");
    } else {
        if (cfg_get_string(ld, item, "a key, or a mapping {key, label}", &v) < 0)
            return -1;
        if ((why = cfg_check_key(v)))
            return cfg_fail_at(ld, item, "%s", why);
        if (cfg_set_string(ld, &k->key, v, 0) < 0)
            return -1;
    }
    if (!k->label) {
        snprintf(msg, sizeof msg, "key#%zu", i + 1);
        if (cfg_set_string(ld, &k->label, msg, 0) < 0)
            return -1;
    }
    switch (cfg_key_clash(ld->cfg, i, &j)) {
    case 1:
        snprintf(msg, sizeof msg, "the same key as keys[%zu]", j);
        return cfg_fail_item(ld, item, seen[0], "key", msg);
    case 2:
        snprintf(msg, sizeof msg, "the label %s is already used by keys[%zu]",
                 cfg_quote_with(k->label, '\'', buf, sizeof buf), j);
        return cfg_fail_item(ld, item, seen[1], "label", msg);
    default:
        return 0;
    }
}

/* Reads tokens, replacing the defaults (none). The whole list is secret: no value is quoted. */
int
cfg_read_tokens(struct loader *ld, const yaml_node_t *n, void *base)
{
    struct skiff_config *cfg = ld->cfg;
    int rc = 0;
    cfg_free_tokens(cfg);
    if (cfg_is_null(n))
        return 0;
    ld->secret = 1;
    if (n->type != YAML_SEQUENCE_NODE) {
        rc = cfg_fail_type(ld, n, "a list of tokens");
        goto out;
    }
    size_t count = cfg_seq_len(n);
    if (count) {
        cfg->tokens = calloc(count, sizeof *cfg->tokens);
        if (!cfg->tokens) {
            rc = cfg_fail_nomem(ld);
            goto out;
        }
        cfg->ntokens = count;
    }
    for (size_t i = 0; i < count && rc == 0; i++) {
        size_t saved = cfg_path_push_index(ld, i);
        rc = read_token(ld, cfg_seq_item(ld, n, i), i);
        cfg_path_pop(ld, saved);
    }
out:
    ld->secret = 0;
    return rc;
}

/* Reads the key list, replacing the defaults (none). The whole list is secret. */
int
cfg_read_keys(struct loader *ld, const yaml_node_t *n, void *base)
{
    struct skiff_config *cfg = ld->cfg;
    int rc = 0;
    cfg_free_keys(cfg);
    if (cfg_is_null(n))
        return 0;
    ld->secret = 1;
    if (n->type != YAML_SEQUENCE_NODE) {
        rc = cfg_fail_type(ld, n, "a list of keys");
        goto out;
    }
    size_t count = cfg_seq_len(n);
    if (count) {
        cfg->keys = calloc(count, sizeof *cfg->keys);
        if (!cfg->keys) {
            rc = cfg_fail_nomem(ld);
            goto out;
        }
        cfg->nkeys = count;
    }
    for (size_t i = 0; i < count && rc == 0; i++) {
        size_t saved = cfg_path_push_index(ld, i);
        rc = read_key(ld, cfg_seq_item(ld, n, i), i);
        cfg_path_pop(ld, saved);
    }
out:
    ld->secret = 0;
    return rc;
}

/* fallbacks. */

void
cfg_free_fallbacks(struct skiff_config *cfg)
{
    for (size_t i = 0; i < cfg->nfallbacks; i++) {
        struct skiff_fallback *f = &cfg->fallbacks[i];
        for (size_t j = 0; j < f->nchain; j++)
            free(f->chain[j]);
        free(f->chain);
        free(f->model);
    }
    free(cfg->fallbacks);
    cfg->fallbacks = NULL;
    cfg->nfallbacks = 0;
}

/*
 * Reads one "MODEL: [MODEL, ...]" entry into the next free slot. The slots were allocated for
 * every pair beforehand, and nfallbacks counts the slots filled so far.
 */
static int
fallback_pair(struct loader *ld, int which, const yaml_node_t *key, const yaml_node_t *value,
              void *ctx)
{
    struct skiff_config *cfg = ld->cfg;
    struct skiff_fallback *f = &cfg->fallbacks[cfg->nfallbacks++];
    const char *model = cfg_scalar(key), *why, *v;
    char buf[96];

    if ((why = cfg_check_model(model)))
        return cfg_fail_at(ld, key, "the model name %s", why);
    if (value->type != YAML_SEQUENCE_NODE)
        return cfg_fail_type(ld, value, "a list of models to try after this one");
    size_t count = cfg_seq_len(value);
    if (count == 0)
        return cfg_fail_at(ld, value, "is empty: list the models to try, or remove the entry");
    if (cfg_set_string(ld, &f->model, model, 0) < 0)
        return -1;
    f->chain = calloc(count, sizeof *f->chain);
    if (!f->chain)
        return cfg_fail_nomem(ld);
    f->nchain = count;

    for (size_t i = 0; i < count; i++) {
        yaml_node_t *item = cfg_seq_item(ld, value, i);
        size_t saved = cfg_path_push_index(ld, i);
        int rc = cfg_get_string(ld, item, "a model name", &v);
        if (rc == 0 && (why = cfg_check_model(v)))
            rc = cfg_fail_at(ld, item, "%s", why);
        if (rc == 0 && !strcmp(v, model))
            rc = cfg_fail_at(ld, item, "falls back to %s itself",
                             cfg_quote_with(model, '\'', buf, sizeof buf));
        for (size_t j = 0; rc == 0 && j < i; j++)
            if (!strcmp(f->chain[j], v))
                rc = cfg_fail_at(ld, item, "%s is listed twice (also at [%zu])",
                                 cfg_quote_with(v, '\'', buf, sizeof buf), j);
        if (rc == 0)
            rc = cfg_set_string(ld, &f->chain[i], v, 0);
        cfg_path_pop(ld, saved);
        if (rc < 0)
            return -1;
    }
    return 0;
}

/* Reads fallbacks, replacing the default chain; "fallbacks: {}" turns fallback off. */
int
cfg_read_fallbacks(struct loader *ld, const yaml_node_t *n, void *base)
{
    struct skiff_config *cfg = ld->cfg;
    cfg_free_fallbacks(cfg);
    if (n->type == YAML_MAPPING_NODE) {
        size_t count = cfg_map_len(n);
        if (count && !(cfg->fallbacks = calloc(count, sizeof *cfg->fallbacks)))
            return cfg_fail_nomem(ld);
    }
    return cfg_each_pair(ld, n, NULL, fallback_pair, NULL);
}

/* models: client model names to Gemini models, for doors/models.h. */

void
cfg_free_models(struct skiff_config *cfg)
{
    for (size_t i = 0; i < cfg->n_models; i++) {
        free((char *)cfg->models[i].pattern);
        free((char *)cfg->models[i].target);
    }
    free(cfg->models);
    cfg->models = NULL;
    cfg->n_models = 0;
}

/* A client model name or glob: it is matched, never sent upstream, so any printable name. */
static const char *
check_pattern(const char *v)
{
    if (!*v)
        return "is empty";
    if (strlen(v) > CFG_MAX_MODEL_LEN)
        return "is longer than 128 characters";
    if (!cfg_is_visible_ascii(v))
        return "may contain only printable ASCII characters, without spaces";
    /* skiff_models_resolve answers a Gemini name as itself before it reads the map. */
    if (!strncmp(v, "gemini-", 7) || !strncmp(v, "models/", 7))
        return "is a Gemini model name, which always maps to itself: this entry would never "
               "apply (map client names such as gpt-4o or \"claude-*\")";
    return NULL;
}

/* Reads one "CLIENT_MODEL: GEMINI_MODEL" into the next slot, allocated beforehand. */
static int
model_pair(struct loader *ld, int which, const yaml_node_t *key, const yaml_node_t *value,
           void *ctx)
{
    struct skiff_config *cfg = ld->cfg;
    const char *pattern = cfg_scalar(key), *why, *v;
    char buf[96];
    if ((why = check_pattern(pattern)))
        return cfg_fail_at(ld, key, "the client model name %s %s",
                           cfg_quote_with(pattern, '\'', buf, sizeof buf), why);
    if (cfg_get_string(ld, value, "a Gemini model name", &v) < 0)
        return -1;
    if ((why = cfg_check_model(v)))
        return cfg_fail_at(ld, value, "%s %s", cfg_quote(v, buf, sizeof buf), why);
    struct skiff_model_alias *a = &cfg->models[cfg->n_models];
    char *pat = strdup(pattern), *target = strdup(v);
    if (!pat || !target) {
        free(pat);
        free(target);
        return cfg_fail_nomem(ld);
    }
    a->pattern = pat;
    a->target = target;
    cfg->n_models++;
    return 0;
}

/* Reads models, in file order (the doors pick exact names first, then the most specific glob). */
int
cfg_read_models(struct loader *ld, const yaml_node_t *n, void *base)
{
    struct skiff_config *cfg = ld->cfg;
    cfg_free_models(cfg);
    if (n->type == YAML_MAPPING_NODE) {
        size_t count = cfg_map_len(n);
        if (count && !(cfg->models = calloc(count, sizeof *cfg->models)))
            return cfg_fail_nomem(ld);
    }
    return cfg_each_pair(ld, n, NULL, model_pair, NULL);
}

/* thinking.default_budget, thinking.tokens. */

void
cfg_free_thinking(struct skiff_config *cfg)
{
    for (size_t i = 0; i < cfg->nthinking; i++) {
        free(cfg->thinking[i].token);
        free(cfg->thinking[i].model);
    }
    free(cfg->thinking);
    cfg->thinking = NULL;
    cfg->nthinking = 0;
}

/* Reads one "MODEL: N" into a new thinking slot; ctx is the token name or NULL. */
static int
budget_pair(struct loader *ld, int which, const yaml_node_t *key, const yaml_node_t *value,
            void *ctx)
{
    struct skiff_config *cfg = ld->cfg;
    const char *model = cfg_scalar(key), *why;
    long long v;
    if (strcmp(model, "*") != 0 && (why = cfg_check_model(model)))
        return cfg_fail_at(ld, key, "the model name %s", why);
    if (cfg_get_int(ld, value, -1, 65536,
                    "a thinking budget: -1 (dynamic), 0 (off) or a number of tokens up to 65536",
                    &v) < 0)
        return -1;
    struct skiff_thinking_default *d = realloc(cfg->thinking, (cfg->nthinking + 1) * sizeof *d);
    if (!d)
        return cfg_fail_nomem(ld);
    cfg->thinking = d;
    d = &cfg->thinking[cfg->nthinking++];
    memset(d, 0, sizeof *d);
    d->budget = (int)v;
    if (cfg_set_string(ld, &d->model, model, 0) < 0)
        return -1;
    if (ctx && cfg_set_string(ld, &d->token, ctx, 0) < 0)
        return -1;
    return 0;
}

static int
token_budgets_pair(struct loader *ld, int which, const yaml_node_t *key, const yaml_node_t *value,
                   void *ctx)
{
    const char *name = cfg_scalar(key), *why;
    if ((why = cfg_check_name(name)))
        return cfg_fail_at(ld, key, "the token name %s", why);
    return cfg_each_pair(ld, value, NULL, budget_pair, (void *)name);
}

/* thinking.default_budget: {MODEL: N}, for every client. */
int
cfg_read_budgets(struct loader *ld, const yaml_node_t *n, void *base)
{
    return cfg_each_pair(ld, n, NULL, budget_pair, NULL);
}

/* thinking.tokens: {TOKEN_NAME: {MODEL: N}}. */
int
cfg_read_token_budgets(struct loader *ld, const yaml_node_t *n, void *base)
{
    return cfg_each_pair(ld, n, NULL, token_budgets_pair, NULL);
}
