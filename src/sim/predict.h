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
 *   Files download URL of the simulator (`{base}/v1beta/files/{id}:download?alt=media`).
 *
 *   GET files/{id}:download (?alt=media) of such a video -> its bytes (video/mp4: a small
 *   MP4 file type box and a media box drawn from the id), for the project that ran the
 *   operation, from when it is done until the file expires 48 hours later (or when
 *   /_sim/expire names it: skiff_sim_predict_expire); another key, an expired or unknown
 *   file gets the Files API's 403 PERMISSION_DENIED. GET files/{id} of it answers its File
 *   resource (skiff_sim_predict_file).
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
 * "models.operations.get", "files.download"), or NULL when q is not one. Static strings.
 */
const char *skiff_sim_predict_route(const struct skiff_sim_res_req *q);

/* GET files/{id} of such a video (files.get, as the Files API answers a generated file:
 * "source": "GENERATED"): 0 with r set, or -1 when q is no live video of q's project (the
 * Files store answers it). */
int skiff_sim_predict_file(struct skiff_sim_predict *p, const struct skiff_sim_res_req *q,
                           struct skiff_sim_res_reply *r);

/* Makes the video file "files/{id}" (or "{id}") expire at now_ms; 0, or -1 when none. */
int skiff_sim_predict_expire(struct skiff_sim_predict *p, const char *name, int64_t now_ms);

/* Handles it: 0 with r set (the caller owns r->body), or -1 when q is not one. */
int skiff_sim_predict_handle(struct skiff_sim_predict *p, const struct skiff_sim_res_req *q,
                             struct skiff_sim_res_reply *r);

#endif
