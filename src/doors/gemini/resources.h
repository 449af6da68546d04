/*
 * The Gemini door's stored resources (files, cachedContents, batches, operations, uploads):
 * the key a call is pinned to, and what a successful create records (state/affinity.h).
 */
#ifndef SKIFF_DOORS_GEMINI_RESOURCES_H
#define SKIFF_DOORS_GEMINI_RESOURCES_H

#include <stddef.h>

#include "engine/engine.h"
#include "gemini/router.h"
#include "server/http.h"
#include "state/affinity.h"

struct skiff_keypool;

#define SKIFF_GEMINI_MAX_UNKNOWN 8

struct skiff_gemini_pin {
    int key; /* 1 + the owning key's index (plan.pin_key), or 0: any key */
    /* The resources named that skiff knows no owner of (up to SKIFF_GEMINI_MAX_UNKNOWN):
     * the door looks them up (lookup.h) and asks again. */
    int n_unknown;
    /* The buffers last: a new pin zeroes what comes before them, and their first bytes. */
    char name[320];      /* the resource that decided it, for messages */
    char upload_id[512]; /* an upload chunk: the upstream's own upload id */
    char unknown[SKIFF_GEMINI_MAX_UNKNOWN][SKIFF_AFFINITY_MAX_NAME];
};

/*
 * The key the call must use: the owner of the resource the path names, of the upload session
 * a chunk names, or of every file and cache a generation's body names. Returns 0 with *pin
 * set (key 0 when nothing skiff knows of is named; pin->unknown lists the names skiff knows
 * no owner of), or an HTTP status with msg: 400 when the body names resources of two keys,
 * 403 for one no pool key can see (lookup.h), 404 for an upload session skiff does not know.
 */
int skiff_gemini_pin_of(const struct skiff_keypool *pool, const struct skiff_request *req,
                        const struct skiff_route *rt, struct skiff_gemini_pin *pin, char *msg,
                        size_t cap);

/*
 * Whether req carries a file's bytes that skiff streams through instead of reading whole: a
 * resumable chunk (POST on skiff's upload session, X-Goog-Upload-Command "upload" or
 * "upload, finalize") or a multipart upload (X-Goog-Upload-Protocol: multipart, whose body
 * goes as it came); from its head alone.
 */
int skiff_gemini_upload_streams(const struct skiff_request *req, const struct skiff_route *rt);

/*
 * After a 2xx answer a on route rt: records what a create made as the answering key's (a
 * DELETE forgets it), with owner (the creating client's tag, doors/gemini/tenancy.h; NULL in
 * open mode) as the entry's value, and puts skiff's own upload session in x-goog-upload-url
 * for a new resumable upload. Call before the answer is written.
 */
void skiff_gemini_learn(struct skiff_request *req, const struct skiff_keypool *pool,
                        const struct skiff_route *rt, const struct skiff_engine_answer *a,
                        const char *owner);

/*
 * A 2xx answer a on an operation (a poll of one, or the :predictLongRunning that made it):
 * every URL in it that starts with upstream_base (cfg's base_url: a finished Veo operation's
 * generatedSamples[].video.uri) is rewritten to name skiff as the client reached it (the base
 * the upload session's URL uses too), and the file each one downloads (files/{id}) recorded
 * as the answering key's for 48 hours, with the operation's creator (or owner) as its value
 * (tenancy.h). Returns the new body (malloc'd, *len set), or NULL when nothing was rewritten
 * (the answer passes through as it came).
 */
char *skiff_gemini_rewrite_operation(const struct skiff_request *req,
                                     const struct skiff_keypool *pool, const char *upstream_base,
                                     const struct skiff_route *rt,
                                     const struct skiff_engine_answer *a, const char *owner,
                                     size_t *len);

/*
 * Calls fn(name, ctx) for each stored resource a generation's body names ("files/{id}" from
 * every fileData.fileUri, "cachedContents/{id}" from every cachedContent; a scan, no DOM).
 * Stops at fn's first nonzero return and returns it; 0 when every call returned 0.
 */
int skiff_gemini_body_refs(const char *body, size_t len, int (*fn)(const char *name, void *ctx),
                           void *ctx);

#endif
