#ifndef SKIFF_SIM_PREDICT_H
#define SKIFF_SIM_PREDICT_H

/*
 * Predictions of the simulator: `models/{m}:predict` as Imagen answers it and
 * `models/{m}:predictLongRunning` as Veo answers it, then `models/{m}/operations/{id}` get.
 *
 *   :predict {"instances": [{"prompt": "..."}], "parameters": {"sampleCount": n}}
 *     -> {"predictions": [{"mimeType": "image/png", "bytesBase64Encoded": "..."}, ...]}
 *   n images (1 to 4, default 4 as the API [U]), each a small valid PNG derived from the
 *   prompt and its index (the same prompt gives the same images).
 *
 *   :predictLongRunning (same body) -> {"name": "models/{m}/operations/{id}"}
 *   then GET that name: {"name"} until the delay (`--batch-ms`) has passed since the
 *   creation, then {"name", "done": true, "response": {"@type": ...,
 *   "generateVideoResponse": {"generatedSamples": [{"video": {"uri": ...}}]}}}, the uri a
 *   Files download URL of the simulator (`{base}/v1beta/files/{id}:download?alt=media`;
 *   the simulator serves no bytes there).
 *
 * An operation belongs to the project of the key that created it (resource.h): another
 * key, a missing id or an id under another model gets 403 PERMISSION_DENIED. At most max
 * operations are held (then 429). Single-threaded.
 */

#include <stddef.h>

#include "sim/resource.h"

struct skiff_sim_predict;

/* A new empty store; NULL when out of memory. delay_ms: creation to done. */
struct skiff_sim_predict *skiff_sim_predict_new(size_t max, long delay_ms);
void skiff_sim_predict_free(struct skiff_sim_predict *p);
void skiff_sim_predict_clear(struct skiff_sim_predict *p);

/*
 * The API method of a prediction request ("models.predict", "models.predictLongRunning",
 * "models.operations.get"), or NULL when q is not one. Static strings.
 */
const char *skiff_sim_predict_route(const struct skiff_sim_res_req *q);

/* Handles it: 0 with r set (the caller owns r->body), or -1 when q is not one. */
int skiff_sim_predict_handle(struct skiff_sim_predict *p, const struct skiff_sim_res_req *q,
                             struct skiff_sim_res_reply *r);

#endif
