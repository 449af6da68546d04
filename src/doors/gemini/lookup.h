/*
 * The owner of a stored resource skiff did not create (uploaded elsewhere with one of the
 * pool's keys), found with a metadata GET on each pool key in turn (GET files/{id},
 * GET cachedContents/{id}, GET batches/{id}, GET operations/{id}), never by sending the
 * generation to key after key. The answer is recorded in state/affinity.h: the owner, or for
 * SKIFF_GEMINI_NO_OWNER_MS a label no key can have (SKIFF_GEMINI_NO_OWNER) that says no key
 * of the pool can see it; a call that names it then gets Google's 403 at once. A lookup that
 * fails for a transient reason (no answer, a timeout, a 429, a 5xx) records nothing.
 *
 * The probes run on the worker's loop through the worker's upstream client, built by
 * relay/uprequest.h (its allowlists, the key as x-goog-api-key), one at a time, all within
 * SKIFF_GEMINI_LOOKUP_MS (or retry.deadline_ms when shorter).
 */
#ifndef SKIFF_DOORS_GEMINI_LOOKUP_H
#define SKIFF_DOORS_GEMINI_LOOKUP_H

#include <stddef.h>

#include "engine/engine.h"
#include "server/http.h"

#define SKIFF_GEMINI_NO_OWNER "(no pool key)" /* a label: key labels hold no space */
#define SKIFF_GEMINI_NO_OWNER_MS (60 * 1000)
#define SKIFF_GEMINI_LOOKUP_MS 10000

/* Whether an affinity label is the negative entry. */
int skiff_gemini_no_owner(const char *label);

/* The message of the 403 for name (a resource no pool key can see): Google's, then skiff's
 * hint. */
void skiff_gemini_no_owner_message(const char *name, char *msg, size_t cap);

/*
 * Looks up the owner of each of names[0..n) (resource names, copied), then calls
 * done(req, data) from the loop, never from inside this call. Until then the lookup owns
 * req->data and req->on_abort; when the client goes away first, drop(data) is called (and
 * done never). Returns 0, or -1 (out of memory): nothing was started or taken.
 */
int skiff_gemini_lookup(struct skiff_request *req, struct skiff_engine *e, const char *const *names,
                        int n, void (*done)(struct skiff_request *req, void *data),
                        void (*drop)(void *data), void *data);

/* The drain's end: when req is waiting for a lookup, stops it, drops its data and returns 1
 * (the caller answers); 0 when req is not the lookup's. */
int skiff_gemini_lookup_cut(struct skiff_request *req);

#endif
