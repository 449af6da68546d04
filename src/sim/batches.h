#ifndef SKIFF_SIM_BATCHES_H
#define SKIFF_SIM_BATCHES_H

/*
 * Batches of the simulator: `models/{m}:batchGenerateContent` and
 * `models/{m}:asyncBatchEmbedContent` (inlined requests), then `batches` list, and
 * `batches/{id}` get, delete and `:cancel`, as the Gemini Developer API answers them: every
 * batch is a long-running Operation
 *
 *   {"name": "batches/ID", "metadata": {"@type": ..., "model", "displayName", "state",
 *    "createTime", "updateTime", ["endTime"], "batchStats", ["output"]}, "done": bool,
 *    ["response": {"@type": ..., "inlinedResponses": {"inlinedResponses": [...]}}]}
 *
 * A batch is BATCH_STATE_PENDING until a quarter of its delay has passed, then RUNNING,
 * then SUCCEEDED when the delay (`--batch-ms`, default 2000) has passed since its creation;
 * a cancelled one is BATCH_STATE_CANCELLED and has no output. Its answers are made at
 * creation, as a generateContent (or embedContent) would make them, and kept until the
 * batch is deleted. A batch belongs to the project of the key that created it
 * (resource.h): another key gets 403 PERMISSION_DENIED. At most max batches are held.
 * Single-threaded.
 */

#include <stddef.h>
#include <stdint.h>

#include "sim/resource.h"

struct skiff_sim_batches;

/* A new empty store; NULL when out of memory. delay_ms: creation to SUCCEEDED. */
struct skiff_sim_batches *skiff_sim_batches_new(size_t max, long delay_ms);
void skiff_sim_batches_free(struct skiff_sim_batches *b);
void skiff_sim_batches_clear(struct skiff_sim_batches *b);

/*
 * The API method of a batches request ("models.batchGenerateContent",
 * "models.asyncBatchEmbedContent", "batches.list", "batches.get", "batches.delete",
 * "batches.cancel"), or NULL when q is not one. Static strings.
 */
const char *skiff_sim_batches_route(const struct skiff_sim_res_req *q);

/* Handles a batches request: 0 with r set (the caller owns r->body), or -1 when q is not one. */
int skiff_sim_batches_handle(struct skiff_sim_batches *b, const struct skiff_sim_res_req *q,
                             struct skiff_sim_res_reply *r);

#endif
