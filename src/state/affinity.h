/*
 * Affinity: which pool key owns a stored resource. A file, a cachedContent, a batch or an
 * operation belongs to the Google project of the key that created it (another key gets 403
 * PERMISSION_DENIED), and so does a resumable upload session. The Gemini door records the
 * owner when a create succeeds and pins every later call that names the resource to it.
 *
 * Entries are name -> (key label, optional value, expiry): "files/abc" -> "key-2" until its
 * 48 hours pass; "uploads/<skiff session id>" -> "key-1" with the upstream's own upload id as
 * the value. Labels are stored, not indices, so an entry still means the same key after a
 * restart with the keys in another order.
 *
 * One table per process, shared by the worker threads (one mutex, held for a hash lookup and
 * a copy). Bounded: at most SKIFF_AFFINITY_MAX entries; past it, the oldest go first (a
 * resource whose owner was forgotten is served by any key, and its 403 reaches the client).
 *
 * With a store (storage.sqlite, after skiff_affinity_init), every put and forget is also
 * written to the store's affinity table by the store thread (off the request path), and a
 * get that misses memory reads that table (and keeps what it found in memory), so a
 * restart, or another skiff sharing the file, still knows the owners and upload sessions.
 * Expired rows are pruned by the store. Without a store (or before init), memory only.
 * A forget reaches the other instances' tables, not their memory: one that already read
 * the entry keeps it until it expires or is forgotten there.
 */
#ifndef SKIFF_STATE_AFFINITY_H
#define SKIFF_STATE_AFFINITY_H

#include <stddef.h>
#include <stdint.h>

struct skiff_store;

#define SKIFF_AFFINITY_MAX 200000
#define SKIFF_AFFINITY_MAX_NAME 256  /* a longer name is refused */
#define SKIFF_AFFINITY_MAX_VALUE 512 /* likewise a longer value */
#define SKIFF_AFFINITY_MAX_LABEL 64

/* Remembers that name belongs to label until expire_ms (wall clock), with value (may be NULL).
 * Replaces what name had. Returns 0, or -1 (a name, label or value too long, or no memory). */
int skiff_affinity_put(const char *name, const char *label, const char *value, int64_t expire_ms);

/* The owner of name at now_ms: 0 with label (and value, when value is not NULL; "" when the
 * entry has none) copied, NUL-terminated, or -1 when there is none or it expired. */
int skiff_affinity_get(const char *name, int64_t now_ms, char *label, size_t label_cap, char *value,
                       size_t value_cap);

/* Forgets name. */
void skiff_affinity_forget(const char *name);

/* Forgets everything in memory (tests; what the store wrote stays there). */
void skiff_affinity_clear(void);

/* Persists owners through store (borrowed: it must stay open until fini; NULL: memory
 * only). Call before the workers start. */
void skiff_affinity_init(struct skiff_store *store);

/* Forgets everything in memory and lets go of the store. Safe without init, and twice. */
void skiff_affinity_fini(void);

#endif
