/*
 * GET /v1/models and GET /v1/models/{id} in Anthropic's shape. Only the rendering: the
 * names come from the door-neutral models map (src/doors/models.c), as (id, display name)
 * pairs of the Claude names a client may ask for.
 */
#ifndef SKIFF_DOORS_ANTHROPIC_MODELS_H
#define SKIFF_DOORS_ANTHROPIC_MODELS_H

#include <stddef.h>

struct skiff_anth_model {
    const char *id;           /* "claude-sonnet-4-5" */
    const char *display_name; /* "Claude Sonnet 4.5 (gemini-2.5-pro)"; NULL: the id */
    const char *created_at;   /* RFC 3339; NULL: "1970-01-01T00:00:00Z" (unknown) */
};

/* One model: {"type": "model", "id", "display_name", "created_at"}. Malloc'd JSON, NULL on
 * OOM. */
char *skiff_anth_model_json(const struct skiff_anth_model *m);

/*
 * The list page, {"data": [...], "has_more", "first_id", "last_id"}, with Anthropic's
 * paging: at most limit models (1..1000; 0 means the default, 20), after the model named
 * after_id or before the one named before_id (either NULL). Malloc'd JSON, NULL on OOM.
 */
char *skiff_anth_models_list(const struct skiff_anth_model *models, size_t n, const char *after_id,
                             const char *before_id, long limit);

#endif
