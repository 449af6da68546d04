#include "gemini/thinking.h"

#include <stdlib.h>
#include <string.h>

#include "base/err.h"

int
skiff_thinking_default(const struct skiff_config *cfg, const char *token, const char *model,
                       int *budget)
{
    int best = 0; /* 4: token+model, 3: token+*, 2: model, 1: * */
    for (size_t i = 0; i < cfg->nthinking; i++) {
        const struct skiff_thinking_default *d = &cfg->thinking[i];
        int any = strcmp(d->model, "*") == 0;
        if (!any && strcmp(d->model, model) != 0)
            continue;
        int rank;
        if (d->token) {
            if (!token || strcmp(d->token, token) != 0)
                continue;
            rank = any ? 3 : 4;
        } else {
            rank = any ? 1 : 2;
        }
        if (rank > best) {
            best = rank;
            *budget = d->budget;
        }
    }
    return best > 0;
}

int
skiff_thinking_accepts(const struct skiff_model_info *m, int b)
{
    if (!m)
        return 1;
    if (!m->thinking)
        return 0;
    if (b == -1)
        return 1;
    if (b == 0)
        return m->budget_zero_ok;
    return m->budget_max == 0 || (b >= m->budget_min && b <= m->budget_max);
}

/* Whether the model would accept the budget, as far as the catalog knows. */
static int
acceptable(const struct skiff_catalog *cat, const char *model, int b)
{
    struct skiff_model_info m;
    if (!cat || !skiff_catalog_lookup(cat, model, strlen(model), &m))
        return 1;
    return skiff_thinking_accepts(&m, b);
}

int
skiff_thinking_least(const struct skiff_model_info *info, const char *model, json_t *tc)
{
    if (strncmp(model, "models/", 7) == 0)
        model += 7;
    if (info && info->target[0])
        model = info->target;
    if (strncmp(model, "gemini-3", 8) == 0) {
        const char *level = strstr(model, "-pro") ? "LOW" : "MINIMAL";
        return json_object_set_new(tc, "thinkingLevel", json_string(level)) ? SKIFF_ENOMEM : 0;
    }
    int b = !info || info->budget_zero_ok ? 0 : info->budget_min;
    return json_object_set_new(tc, "thinkingBudget", json_integer(b)) ? SKIFF_ENOMEM : 0;
}

static json_t *
get2(json_t *o, const char *camel, const char *snake, const char **used)
{
    json_t *v = json_object_get(o, camel);
    *used = camel;
    if (!v) {
        v = json_object_get(o, snake);
        *used = v ? snake : camel;
    }
    return v;
}

char *
skiff_thinking_apply(const struct skiff_config *cfg, const struct skiff_catalog *cat,
                     const char *token, const char *version, const char *model, const char *body,
                     size_t len, size_t *new_len)
{
    int budget;
    *new_len = 0;
    if (!cfg || !cfg->nthinking || !model || (version && strcmp(version, "v1") == 0))
        return NULL;
    if (strncmp(model, "models/", 7) == 0)
        model += 7;
    if (!skiff_thinking_default(cfg, token, model, &budget) || !acceptable(cat, model, budget))
        return NULL;
    json_t *root = json_loadb(body ? body : "", len, 0, NULL);
    if (!json_is_object(root)) {
        json_decref(root);
        return NULL;
    }
    const char *gk, *tk, *unused;
    json_t *gc = get2(root, "generationConfig", "generation_config", &gk);
    int snake = strcmp(gk, "generation_config") == 0;
    if (gc && !json_is_object(gc)) {
        json_decref(root);
        return NULL; /* a shape the upstream will judge */
    }
    if (!gc) {
        gc = json_object();
        json_object_set_new(root, gk, gc);
    }
    json_t *tc = get2(gc, "thinkingConfig", "thinking_config", &tk);
    if (snake && !tc)
        tk = "thinking_config";
    if (tc && (!json_is_object(tc) || get2(tc, "thinkingBudget", "thinking_budget", &unused) ||
               get2(tc, "thinkingLevel", "thinking_level", &unused))) {
        json_decref(root);
        return NULL; /* the client chose */
    }
    if (!tc) {
        tc = json_object();
        json_object_set_new(gc, tk, tc);
    }
    json_object_set_new(tc, snake ? "thinking_budget" : "thinkingBudget", json_integer(budget));
    char *out = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(root);
    if (out)
        *new_len = strlen(out);
    return out;
}
