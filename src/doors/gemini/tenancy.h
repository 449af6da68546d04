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
 *   list: only the caller's resources, walked key by key: the walk starts at key 0's first
 *     page, and skiff's nextPageToken ("skf1.<key>.<hex of the upstream's token>") says
 *     which key's listing comes next and where it stands, until the last key's last page;
 *     pages with none of the caller's are skipped (skiff_tenancy_list_answer).
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
#define SKIFF_TENANCY_MAX_UP_TOKEN 1000 /* upstream token bytes skiff wraps (Google's: ~100) */
#define SKIFF_TENANCY_MAX_TOKEN (2 * SKIFF_TENANCY_MAX_UP_TOKEN + 32) /* skiff's, NUL included */
#define SKIFF_TENANCY_MAX_WALK 16 /* upstream list calls one page of a walk may make */

/* A list call under tenancy: where it goes and the upstream page token it sends. */
struct skiff_tenancy_list {
    int active; /* 0: not a list under tenancy (the rest unused) */
    int key;    /* the key whose listing this page is (an index) */
    int calls;  /* upstream list calls this page has made */
    char *held; /* a page found, while the walk looks ahead (owned JSON text), or NULL */
    /* The buffers last: a new list zeroes what comes before them, and their first bytes. */
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

enum skiff_tenancy_step {
    SKIFF_TENANCY_PASS = 0, /* not a list under tenancy: the door passes the answer through */
    SKIFF_TENANCY_ANSWERED, /* the page was answered */
    SKIFF_TENANCY_NEXT,     /* the walk goes on: list says which page to ask for next */
};

/*
 * A 2xx list answer a under tenancy, one step of the walk. The answer's items are filtered
 * to list's tag's. A client's page is never empty while the walk has more of the caller's
 * resources ahead (@google/genai's for-await yields undefined for an empty page): a page
 * with none goes on to the next upstream page, and a page found is answered only after the
 * walk has looked ahead for the next of the caller's, its nextPageToken then naming the
 * upstream page that holds them, or none at the walk's end. A page holds at most pageSize
 * items (one upstream page's, filtered). At most SKIFF_TENANCY_MAX_WALK upstream calls per
 * client page: past them the page is answered as it stands (maybe empty) with a token
 * where the walk stopped. SKIFF_TENANCY_NEXT: list now names the next upstream page (key,
 * up_token), which the door asks for (skiff_engine_again), or answers with
 * skiff_tenancy_list_end when it cannot.
 */
int skiff_tenancy_list_answer(struct skiff_request *req, const struct skiff_keypool *pool,
                              const struct skiff_route *rt, struct skiff_tenancy_list *list,
                              const struct skiff_engine_answer *a);

/*
 * The walk cannot go on (the next upstream page failed, or could not be asked for): answers
 * the page found so far (or an empty one) with a token that resumes at list's position.
 */
void skiff_tenancy_list_end(struct skiff_request *req, struct skiff_tenancy_list *list);

/* Frees what list holds (list->held). */
void skiff_tenancy_list_release(struct skiff_tenancy_list *list);

#endif
