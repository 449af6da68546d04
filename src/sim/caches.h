#ifndef SKIFF_SIM_CACHES_H
#define SKIFF_SIM_CACHES_H

/*
 * cachedContents of the simulator: create, get, list, patch (ttl / expireTime), delete,
 * and their use by a generation (`cachedContent: "cachedContents/{id}"`).
 *
 * A cache keeps only what the simulator needs of it: its model, display name, times and
 * token count (contents and systemInstruction are counted as a prompt is, then dropped; the
 * API never returns them either). It belongs to the project of the key that created it
 * (resource.h) and lives until its expireTime (ttl default 1 hour [D]). At most max caches
 * are held; a create beyond that is a 429 RESOURCE_EXHAUSTED. Single-threaded.
 */

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "sim/files.h"
#include "sim/resource.h"

struct skiff_sim_caches;

/* A new empty store; NULL when out of memory. */
struct skiff_sim_caches *skiff_sim_caches_new(size_t max);
void skiff_sim_caches_free(struct skiff_sim_caches *c);
void skiff_sim_caches_clear(struct skiff_sim_caches *c);

/*
 * The API method of a cachedContents request ("cachedContents.create", ".list", ".get",
 * ".patch", ".delete"), or NULL when q is not one. Static strings.
 */
const char *skiff_sim_caches_route(const struct skiff_sim_res_req *q);

/*
 * Handles a cachedContents request. files checks the fileData references of a new cache's
 * contents. Returns 0 with r set (the caller owns r->body and r->headers), or -1 when q is
 * not a cachedContents request.
 */
int skiff_sim_caches_handle(struct skiff_sim_caches *c, struct skiff_sim_files *files,
                            const struct skiff_sim_res_req *q, struct skiff_sim_res_reply *r);

/*
 * A generation's use of cache `name` ("cachedContents/{id}") by project on model (the
 * request's concrete model id). body is the GenerateContentRequest. Returns the cache's
 * token count (>= 0), or -1 with r set: another project's, missing or expired cache (403),
 * another model (400), or a request that sets systemInstruction, tools or toolConfig (400).
 */
long skiff_sim_caches_use(struct skiff_sim_caches *c, const char *project, const char *name,
                          const char *model, const json_t *body, int64_t now_ms,
                          struct skiff_sim_res_reply *r);

/* Makes "cachedContents/{id}" expire at now_ms. Returns 0, or -1 when there is none. */
int skiff_sim_caches_expire(struct skiff_sim_caches *c, const char *name, int64_t now_ms);

#endif
