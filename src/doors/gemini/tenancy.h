/*
 * Tenancy for the Gemini door's stored resources: with client tokens configured (config
 * `tokens`), a file, cache, batch or operation is the creating token's. The affinity entry
 * that records a resource's key (state/affinity.h) carries the creator as its value: the tag
 * "token:<token name>" (the name from the config, never the token itself).
 *
 *   get / delete / patch / cancel / download of another token's resource: 404 NOT_FOUND,
 *     as if it did not exist; nothing goes upstream.
 *   a generation naming another token's file or cache: Google's own 403 for a file or cache
 *     that does not exist (see skiff_tenancy_refuse).
 *   list: only the caller's resources, walked key by key: page 1 is key 0's first page, and
 *     skiff's nextPageToken ("skf1.<key>.<hex of the upstream's token>") says which key's
 *     listing comes next and where it stands, until the last key's last page.
 *
 * A resource skiff has no creator for (made with one of the pool's keys elsewhere, or before
 * tokens were configured) is the operator's: any token may name it, no token's list shows it.
 * Open mode (no tokens): nothing here applies; a list is whatever key the pool picks.
 */
#ifndef SKIFF_DOORS_GEMINI_TENANCY_H
#define SKIFF_DOORS_GEMINI_TENANCY_H

#include <stddef.h>

#include "config/config.h"
#include "engine/engine.h"
#include "gemini/router.h"
#include "server/http.h"

struct skiff_keypool;

#define SKIFF_TENANCY_MAX_TAG 96

/* A list call under tenancy: where it goes and the upstream page token it sends. */
struct skiff_tenancy_list {
    int active; /* 0: not a list under tenancy (the rest unused) */
    int key;    /* the key whose listing this page is (an index) */
    char tag[SKIFF_TENANCY_MAX_TAG];
    char up_token[3 * 2048 + 1]; /* the upstream's token, %-encoded; "" for the first page */
};

/* The creator tag of client who under cfg into out ("" in open mode); out or NULL. */
const char *skiff_tenancy_tag(const struct skiff_config *cfg, const char *who, char *out,
                              size_t cap);

/*
 * Before the plan: whether the call names another token's resource: the path's (404
 * NOT_FOUND) or, for a generation, any file or cache its body names (403 PERMISSION_DENIED).
 * A list under tenancy fills *list from the client's pageToken (one skiff did not issue is a
 * 400 INVALID_ARGUMENT). Returns 0 when the call may go on (always, with list->active 0, in
 * open mode), or the HTTP status with Google's status in *gstatus and the message in msg.
 */
int skiff_tenancy_refuse(const struct skiff_config *cfg, const struct skiff_keypool *pool,
                         const struct skiff_request *req, const struct skiff_route *rt,
                         const char *who, struct skiff_tenancy_list *list, const char **gstatus,
                         char *msg, size_t cap);

/*
 * A 2xx list answer a under tenancy: writes the answer with only list's tag's resources and
 * skiff's nextPageToken. Returns 1 when it answered, 0 when the door should pass a through.
 */
int skiff_tenancy_list_answer(struct skiff_request *req, const struct skiff_keypool *pool,
                              const struct skiff_route *rt, const struct skiff_tenancy_list *list,
                              const struct skiff_engine_answer *a);

#endif
