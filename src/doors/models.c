#include "doors/models.h"

#include <string.h>

#include "gemini/catalog.h"

int
skiff_models_glob(const char *glob, const char *s)
{
    /* Iterative matching with one backtrack point: linear in practice, never exponential. */
    const char *star = NULL, *resume = NULL;
    while (*s) {
        if (*glob == '*') {
            star = glob++;
            resume = s;
        } else if (*glob == *s) {
            glob++;
            s++;
        } else if (star) {
            glob = star + 1;
            s = ++resume;
        } else {
            return 0;
        }
    }
    while (*glob == '*')
        glob++;
    return *glob == '\0';
}

static int
is_gemini(const struct skiff_catalog *cat, const char *name)
{
    if (strncmp(name, "gemini-", 7) == 0 || strncmp(name, "models/", 7) == 0)
        return 1;
    struct skiff_model_info info;
    return cat && skiff_catalog_lookup(cat, name, strlen(name), &info);
}

static size_t
literal_len(const char *glob)
{
    size_t n = 0;
    for (; *glob; glob++)
        n += *glob != '*';
    return n;
}

const char *
skiff_models_resolve(const struct skiff_model_alias *map, size_t n, const struct skiff_catalog *cat,
                     const char *name)
{
    if (!name || !name[0])
        return NULL;
    if (is_gemini(cat, name))
        return name;
    for (size_t i = 0; i < n; i++)
        if (!strchr(map[i].pattern, '*') && strcmp(map[i].pattern, name) == 0)
            return map[i].target;
    const char *best = NULL;
    size_t best_len = 0;
    for (size_t i = 0; i < n; i++) {
        if (!strchr(map[i].pattern, '*') || !skiff_models_glob(map[i].pattern, name))
            continue;
        size_t l = literal_len(map[i].pattern);
        if (!best || l > best_len) {
            best = map[i].target;
            best_len = l;
        }
    }
    return best;
}
