/*
 * The thought-signature cache: tool-call id → the thoughtSignature Gemini gave on that call.
 *
 * Gemini 2.5 and 3 want the signature of a model step back on its first functionCall when a
 * client replays the conversation. Clients of the OpenAI and Anthropic doors often drop
 * whatever skiff puts beside the call (extra_content, a thinking block), so the doors also
 * keep each signature here under the tool-call id skiff made, and look it up when the id
 * comes back. The id is only a key: a signature never travels inside an id.
 *
 * One cache per process, shared by every worker thread (one mutex, held for a hash lookup, a
 * list splice and a copy; never across I/O). Bounded twice: at most max_entries signatures
 * and SKIFF_SIGCACHE_MAX_BYTES of them in memory; past either, the least recently used go.
 *
 * With a store (storage.sqlite), every put is also written to the sig_cache table by the
 * store thread (off the request path), and a get that misses memory reads that table, so
 * a restart, or another skiff sharing the file, still finds the signature; the table keeps
 * the max_entries newest (store/store.h, skiff_store_sig_limit). Without one, memory only.
 *
 * Lifecycle: init before the workers start, fini after they stopped and before the store
 * is closed. Calls before init or after fini do nothing (put returns SKIFF_EINVAL, get NULL).
 */
#ifndef SKIFF_STATE_SIGCACHE_H
#define SKIFF_STATE_SIGCACHE_H

#include <stddef.h>
#include <stdint.h>

struct skiff_store;

#define SKIFF_SIGCACHE_DEFAULT_MAX 100000
/* A longer id or signature is refused (SKIFF_ETOOBIG): ids skiff makes are ~30 bytes,
 * Gemini's signatures a few KB. */
#define SKIFF_SIGCACHE_MAX_ID 256
#define SKIFF_SIGCACHE_MAX_SIG (256 * 1024)
/* What the signatures held in memory may add up to, whatever max_entries says. */
#define SKIFF_SIGCACHE_MAX_BYTES ((size_t)256 * 1024 * 1024)

/*
 * Sets the cache up for at most max_entries signatures (> 0; SKIFF_SIGCACHE_DEFAULT_MAX is
 * the default the config uses), persisted through store when it is not NULL (borrowed: it
 * must stay open until fini). Returns 0, SKIFF_EINVAL (max_entries 0, or already set up:
 * fini first) or SKIFF_ENOMEM.
 */
int skiff_sigcache_init(size_t max_entries, struct skiff_store *store);

/*
 * Remembers sig for id (both borrowed: the cache copies them), replacing what id had.
 * Returns 0; SKIFF_EINVAL for a NULL or empty argument or before init; SKIFF_ETOOBIG for an
 * id longer than SKIFF_SIGCACHE_MAX_ID or a signature longer than SKIFF_SIGCACHE_MAX_SIG;
 * SKIFF_ENOMEM. A failure to queue the write for the store still keeps it in memory (0).
 */
int skiff_sigcache_put(const char *id, const char *sig);

/*
 * The signature kept for id: a malloc'd copy the caller frees, or NULL when there is none
 * (or before init, or on OOM). A memory miss reads the store (a few tens of µs, on the
 * caller's thread) and keeps what it found in memory.
 */
char *skiff_sigcache_get(const char *id);

/* Forgets everything in memory (what the store wrote stays there) and lets go of the
 * store. Safe to call without init, and twice. */
void skiff_sigcache_fini(void);

struct skiff_sigcache_stats {
    size_t entries;      /* signatures in memory */
    size_t bytes;        /* their ids and signatures */
    uint64_t hits;       /* gets answered from memory */
    uint64_t store_hits; /* gets answered by the store after a memory miss */
    uint64_t misses;     /* gets with no answer */
    uint64_t evictions;  /* signatures memory dropped for the bounds */
};
/* A snapshot of the counters (zeros before init). */
void skiff_sigcache_stats(struct skiff_sigcache_stats *out);

#endif
