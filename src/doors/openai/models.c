#include "doors/openai/models.h"

#include <string.h>

static json_t *
entry(const char *id, const char *owner, long created)
{
    return json_pack("{s:s, s:s, s:I, s:s}", "id", id, "object", "model", "created",
                     (json_int_t)created, "owned_by", owner);
}

json_t *
skiff_oai_models_list(const struct skiff_catalog *cat, const struct skiff_model_alias *map,
                      size_t n, long created)
{
    json_t *data = json_array();
    json_t *seen = json_object();
    json_t *out = json_pack("{s:s, s:o}", "object", "list", "data", data);
    struct skiff_model_info m;
    if (!out || !seen)
        goto fail;
    for (size_t i = 0; cat && skiff_catalog_at(cat, i, &m); i++) {
        if (json_object_get(seen, m.name))
            continue;
        if (json_object_set_new(seen, m.name, json_true()) ||
            json_array_append_new(data, entry(m.name, "google", created)))
            goto fail;
    }
    for (size_t i = 0; i < n; i++) {
        const char *p = map[i].pattern;
        if (strchr(p, '*') || json_object_get(seen, p))
            continue;
        if (json_object_set_new(seen, p, json_true()) ||
            json_array_append_new(data, entry(p, "skiff", created)))
            goto fail;
    }
    json_decref(seen);
    return out;
fail:
    json_decref(seen);
    json_decref(out);
    return NULL;
}

json_t *
skiff_oai_model_get(const struct skiff_catalog *cat, const struct skiff_model_alias *map, size_t n,
                    const char *id, long created)
{
    struct skiff_model_info m;
    if (cat && skiff_catalog_lookup(cat, id, strlen(id), &m))
        return entry(m.name, "google", created);
    const char *target = skiff_models_resolve(map, n, cat, id);
    if (!target)
        return NULL;
    /* A Gemini-looking name that the catalog does not know is not listed as existing. */
    if (target == id)
        return NULL;
    return entry(id, "skiff", created);
}
