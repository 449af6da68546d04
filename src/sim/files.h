#ifndef SKIFF_SIM_FILES_H
#define SKIFF_SIM_FILES_H

/*
 * The Files API of the simulator: uploads (the resumable protocol with start, upload,
 * finalize, query and cancel; the multipart protocol), files.get, files.list and
 * files.delete, and the check of every fileData.fileUri a generation references.
 *
 * Bytes are not kept: an upload streams through a SHA-256 and a byte count (a resumable
 * chunk's bytes as they arrive, skiff_sim_files_feed), so a file of any size costs one small
 * record (the simulator never serves a file's bytes back). The
 * store holds at most max_files files and max_uploads open upload sessions; a start beyond
 * that drops the oldest session, a file beyond that is a 429 RESOURCE_EXHAUSTED.
 *
 * A file lives 48 hours (expirationTime) and belongs to the project of the key that
 * started its upload (resource.h). Single-threaded, like all of the simulator's state.
 */

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "sim/resource.h"

struct skiff_sim_files;

/* A new empty store; NULL when out of memory. */
struct skiff_sim_files *skiff_sim_files_new(size_t max_files, size_t max_uploads);
void skiff_sim_files_free(struct skiff_sim_files *f);

/* Drops every file and upload session. */
void skiff_sim_files_clear(struct skiff_sim_files *f);

/*
 * The API method of a Files request ("files.upload", "files.list", "files.get",
 * "files.delete"), or NULL when q is not one. Static strings.
 */
const char *skiff_sim_files_route(const struct skiff_sim_res_req *q);

/*
 * Handles a request on /upload/v1beta/files or /v1beta/files[/{id}]. Returns 0 with r set
 * (the caller owns r->body and r->headers), or -1 when the path is not a Files path.
 * A resumable chunk (upload_id set) is authorised by its session, whatever key it carries.
 */
int skiff_sim_files_handle(struct skiff_sim_files *f, const struct skiff_sim_res_req *q,
                           struct skiff_sim_res_reply *r);

/*
 * Checks every fileData.fileUri in contents (an array of Content) and in
 * system_instruction (a Content; either may be NULL). A URI naming a file that is not the
 * project's own, live one gets r set to the refusal and returns -1; URIs that are not
 * Files API URIs (gs://, https://www.youtube.com/...) are not the simulator's business.
 */
int skiff_sim_files_check_contents(struct skiff_sim_files *f, const char *project,
                                   const json_t *contents, const json_t *system_instruction,
                                   int64_t now_ms, struct skiff_sim_res_reply *r);

/*
 * A piece of a resumable chunk's bytes as they arrive (the simulator streams "upload"
 * chunks: a 2 GB file never sits in its memory): hashed into session upload_id when the
 * chunk's offset (X-Goog-Upload-Offset) is where the session stands, else only counted. The
 * chunk's request then goes to skiff_sim_files_handle with q->streamed set.
 */
void skiff_sim_files_feed(struct skiff_sim_files *f, const char *upload_id, const char *offset,
                          const char *data, size_t len);

/*
 * The streamed chunk broke off (its client went away): what arrived of it is kept, as the
 * API keeps a resumable upload's bytes (a query then says X-Goog-Upload-Size-Received).
 */
void skiff_sim_files_feed_cut(struct skiff_sim_files *f, const char *upload_id);

/* Makes "files/{id}" (or "{id}") expire at now_ms. Returns 0, or -1 when there is none. */
int skiff_sim_files_expire(struct skiff_sim_files *f, const char *name, int64_t now_ms);

#endif
