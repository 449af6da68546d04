#include "sim/answer.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "base/clock.h"
#include "base/err.h"
#include "sim/caches.h"
#include "sim/files.h"
#include "sim/render.h"
#include "sim/resource.h"
#include "sim/tools.h"

/*
 * The tokens of the request's cachedContent (0 when it names none), or SKIFF_EINVAL with
 * inv set when the cache may not be used (another project's, another model, ...).
 */
long
use_cache(struct sim *sim, const struct call *c, const json_t *body, struct skiff_sim_invalid *inv)
{
    const char *name = json_string_value(json_object_get(body, "cachedContent"));
    if (!name)
        return 0;
    struct skiff_sim_res_reply r;
    memset(&r, 0, sizeof r);
    long t =
        skiff_sim_caches_use(sim->caches, c->key, name, c->model->target, body, skiff_now_ms(), &r);
    if (t >= 0)
        return t;
    inv->status = r.status;
    inv->gstatus = r.gstatus;
    snprintf(inv->message, sizeof inv->message, "%s", r.message);
    return SKIFF_EINVAL;
}

/* Adds a cache's tokens to a rendered response's usageMetadata (the prompt has them). */
static void
add_cached_usage(json_t *response, long cached)
{
    json_t *u = json_object_get(response, "usageMetadata");
    if (!cached || !u)
        return;
    json_object_set_new(u, "cachedContentTokenCount", json_integer(cached));
    json_object_set_new(
        u, "cacheTokensDetails",
        json_pack("[{s:s,s:I}]", "modality", "TEXT", "tokenCount", (json_int_t)cached));
}

/*
 * A long thought on a stream that shows thoughts: the first event's thought part becomes an
 * event of its own, and the answer's first text follows it after sr->think_ms (step() waits
 * think_gap after the first event). Returns 1 when the thought was split off.
 */
static int
split_thought(struct sim_req *sr, json_t *events)
{
    json_t *first = json_array_get(events, 0);
    json_t *cand = json_array_get(json_object_get(first, "candidates"), 0);
    json_t *parts = json_object_get(json_object_get(cand, "content"), "parts");
    if (!json_is_true(json_object_get(json_array_get(parts, 0), "thought")))
        return 0;
    json_t *thought = json_deep_copy(first);
    json_t *tcand = json_array_get(json_object_get(thought, "candidates"), 0);
    json_t *tparts = json_object_get(json_object_get(tcand, "content"), "parts");
    if (!thought || !tparts)
        goto out_free;
    while (json_array_size(tparts) > 1)
        json_array_remove(tparts, 1);
    json_object_del(tcand, "finishReason");
    json_object_del(tcand, "finishMessage");
    if (json_array_remove(parts, 0) != 0 || json_array_insert_new(events, 0, thought) != 0)
        goto out_free;
    sr->think_gap = sr->think_ms;
    return 1;
out_free:
    json_decref(thought);
    return 0;
}

/* Builds and frames the generated answer (whole, or as stream events). */
int
plan_answer(struct sim_req *sr, const struct call *c, const json_t *body,
            const struct skiff_sim_gen *g, const struct skiff_sim_prompt *prompt, long cached)
{
    struct skiff_sim_ask ask;
    skiff_sim_tools_plan(body, prompt->hash, g->thinking_budget != 0, &ask);
    struct skiff_sim_answer a;
    struct skiff_sim_answer_opts o = {
        .prompt = prompt,
        .max_output_tokens = g->max_output_tokens,
        .thinking_budget = g->thinking_budget,
        .include_thoughts = g->include_thoughts,
        .model_version = c->model->target,
        .id_seed = skiff_sim_rng_next(&sr->rng),
        .text = ask.text,
        .calls = ask.calls,
        .sign_calls = ask.sign,
        .stops = skiff_sim_field(skiff_sim_field(body, "generationConfig"), "stopSequences"),
    };
    int made = skiff_sim_answer_make(&a, &o);
    skiff_sim_ask_release(&ask);
    if (made != 0)
        return SKIFF_ENOMEM;
    int rc = 0;
    if (!c->stream) {
        json_t *r = skiff_sim_render_response(&a, SIZE_MAX);
        add_cached_usage(r, cached);
        /* candidateCount > 1 (2.x models): more candidates with the same text and usage. */
        json_t *cands = json_object_get(r, "candidates");
        for (long i = 1; i < g->candidate_count; i++) {
            json_t *copy = json_deep_copy(json_array_get(cands, 0));
            json_object_set_new(copy, "index", json_integer(i));
            json_array_append_new(cands, copy);
        }
        plan_json(sr, 200, r);
        json_decref(r);
        if (a.thoughts_tokens > 0)
            sr->think_wait = sr->think_ms;
    } else {
        json_t *events = json_array();
        for (size_t i = 0; i < a.nchunks; i++) {
            json_t *ev = skiff_sim_render_response(&a, i);
            add_cached_usage(ev, cached);
            json_array_append_new(events, ev);
        }
        if (a.thoughts_tokens > 0 && sr->think_ms > 0 && !split_thought(sr, events))
            sr->think_wait = sr->think_ms;
        rc = plan_events(sr, c, events);
        json_decref(events);
    }
    skiff_sim_answer_release(&a);
    return rc;
}

/* Refuses a generation that references another project's (or no live) file. */
int
check_references(struct sim *sim, const struct call *c, const json_t *contents,
                 const json_t *system_instruction, struct skiff_sim_invalid *inv)
{
    struct skiff_sim_res_reply r;
    memset(&r, 0, sizeof r);
    if (skiff_sim_files_check_contents(sim->files, c->key, contents, system_instruction,
                                       skiff_now_ms(), &r) == 0)
        return 0;
    inv->status = r.status;
    inv->gstatus = r.gstatus;
    snprintf(inv->message, sizeof inv->message, "%s", r.message);
    return SKIFF_EINVAL;
}
