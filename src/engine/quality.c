/*
 * The config's quality features as filters on a call's answer (engine.h): they read what
 * the upstream sent and say what should happen; the engine does it.
 *
 *   repetition guard (quality.repetition_guard, SSE streams): a stream stuck repeating
 *     itself is stopped, so nobody pays for the loop: the upstream call is cancelled and the
 *     stream ends cleanly with a last event whose finishReason is OTHER and whose
 *     finishMessage says why.
 *   RECITATION re-ask (quality.retry_recitation, non-stream answers): an answer cut short for
 *     RECITATION is asked for once more with a temperature of at least 0.8, as the guide
 *     advises.
 */
#include "engine/call.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "gemini/diagnose.h"

static enum skiff_filter_verdict
guard_event(void *st, const struct skiff_filter_ctx *c, const char *ev, size_t len, char **last,
            size_t *last_len)
{
    enum skiff_rep rep = skiff_repguard_feed_event(st, ev, len);
    if (!rep)
        return SKIFF_FILTER_PASS;
    char msg[256];
    snprintf(msg, sizeof msg, "skiff stopped the stream: %s", skiff_rep_explain(rep));
    json_t *e = json_pack("{s:[{s:{s:[{s:s}],s:s},s:s,s:s,s:i}],s:s}", "candidates", "content",
                          "parts", "text", "", "role", "model", "finishReason", "OTHER",
                          "finishMessage", msg, "index", 0, "modelVersion", c->model);
    char *json = e ? json_dumps(e, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(e);
    if (json) {
        size_t n = strlen(json);
        char *out = malloc(n + 11);
        if (out) {
            snprintf(out, n + 11, "data: %s\r\n\r\n", json);
            *last = out;
            *last_len = n + 10;
        }
        free(json);
    }
    struct skiff_log l;
    skiff_log_begin(&l, SKIFF_LOG_WARN, "repetition_stopped");
    skiff_log_str(&l, "id", c->id);
    skiff_log_str(&l, "model", c->model);
    skiff_log_str(&l, "loop", skiff_rep_explain(rep));
    skiff_log_end(&l);
    return SKIFF_FILTER_STOP;
}

static const struct skiff_engine_filter repetition_guard = {
    .name = "repetition_guard",
    .on_event = guard_event,
    .free = free,
};

/* The state is whether the re-ask was made: once per call. */
static enum skiff_filter_verdict
recitation_answer(void *st, const struct skiff_filter_ctx *c, const char *answer, size_t alen,
                  const char *request, size_t rlen, char **out, size_t *out_len)
{
    int *recited = st;
    struct skiff_finish f;
    if (*recited || !skiff_diagnose_finish(answer, alen, &f) || strcmp(f.reason, "RECITATION"))
        return SKIFF_FILTER_PASS;
    json_t *root = json_loadb(request, rlen, 0, NULL);
    json_t *gc = json_object_get(root, "generationConfig");
    if (!json_is_object(root) || (gc && !json_is_object(gc))) {
        json_decref(root);
        return SKIFF_FILTER_PASS;
    }
    if (!gc) {
        gc = json_object();
        json_object_set_new(root, "generationConfig", gc);
    }
    json_t *t = json_object_get(gc, "temperature");
    if (!json_is_number(t) || json_number_value(t) < 0.8)
        json_object_set_new(gc, "temperature", json_real(0.8));
    char *body = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(root);
    if (!body)
        return SKIFF_FILTER_PASS;
    *recited = 1;
    *out = body;
    *out_len = strlen(body);
    return SKIFF_FILTER_REASK;
}

static const struct skiff_engine_filter recitation = {
    .name = "retry_recitation",
    .reask_reason = "RECITATION: asking again with temperature >= 0.8",
    .on_answer = recitation_answer,
    .free = free,
};

static void
add(struct call *c, const struct skiff_engine_filter *f, void *st)
{
    if (!st)
        return; /* out of memory: the call goes on without the filter */
    if (c->nfilters == MAX_FILTERS) {
        free(st);
        return;
    }
    c->filters[c->nfilters].f = f;
    c->filters[c->nfilters++].st = st;
}

void
call_add_quality_filters(struct call *c)
{
    const struct skiff_config *cfg = c->w->cfg;
    if (c->route.kind == SKIFF_ROUTE_COMPAT)
        return; /* Google's OpenAI-compatible answers are not Gemini's: not read */
    if (cfg->quality.repetition_guard && c->sse) {
        struct skiff_repguard *g = calloc(1, sizeof *g);
        if (g)
            skiff_repguard_init(g);
        add(c, &repetition_guard, g);
    }
    if (cfg->quality.retry_recitation && !call_is_stream(c))
        add(c, &recitation, calloc(1, sizeof(int)));
}
