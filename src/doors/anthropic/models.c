#include "doors/anthropic/models.h"

#include <string.h>

#include <jansson.h>

static json_t *
model(const struct skiff_anth_model *m)
{
    return json_pack("{s:s,s:s,s:s,s:s}", "type", "model", "id", m->id, "display_name",
                     m->display_name ? m->display_name : m->id, "created_at",
                     m->created_at ? m->created_at : "1970-01-01T00:00:00Z");
}

static char *
dump(json_t *j)
{
    char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    return s;
}

char *
skiff_anth_model_json(const struct skiff_anth_model *m)
{
    return dump(model(m));
}

static size_t
find(const struct skiff_anth_model *models, size_t n, const char *id)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(models[i].id, id) == 0)
            return i;
    return n;
}

char *
skiff_anth_models_list(const struct skiff_anth_model *models, size_t n, const char *after_id,
                       const char *before_id, long limit)
{
    if (limit <= 0)
        limit = 20;
    if (limit > 1000)
        limit = 1000;
    size_t lo = 0, hi = n; /* the window [lo, hi) the page is cut from */
    if (after_id) {
        size_t k = find(models, n, after_id);
        lo = k < n ? k + 1 : n;
    }
    if (before_id) {
        size_t k = find(models, n, before_id);
        hi = k < n ? k : 0;
    }
    size_t first = lo, last = lo;
    int more = 0;
    if (lo < hi) {
        /* before_id pages backwards: the models just before it. */
        if (before_id && !after_id && hi - lo > (size_t)limit)
            first = hi - (size_t)limit;
        last = first + (size_t)limit < hi ? first + (size_t)limit : hi;
        more = before_id && !after_id ? first > lo : last < hi;
    }
    json_t *data = json_array();
    json_t *page = NULL;
    if (!data)
        return NULL;
    for (size_t i = first; i < last; i++)
        if (json_array_append_new(data, model(&models[i]))) {
            json_decref(data);
            return NULL;
        }
    page = json_pack("{s:o,s:b,s:o,s:o}", "data", data, "has_more", more, "first_id",
                     last > first ? json_string(models[first].id) : json_null(), "last_id",
                     last > first ? json_string(models[last - 1].id) : json_null());
    return dump(page);
}
