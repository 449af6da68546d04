/*
 * The engine's side of the key pool (state/keypool.h): what a Gemini verdict
 * (gemini/classify.h) means for the key that got it, in the plain terms the pool takes, and
 * the pool as skiff serves it (Pacific days, the SQLite backend). The pool itself knows
 * neither Gemini nor SQLite; this file is where the two meet.
 */
#ifndef SKIFF_RELAY_KEYPOOL_H
#define SKIFF_RELAY_KEYPOOL_H

#include <stdint.h>

#include "gemini/classify.h"
#include "state/keypool.h"

struct skiff_store;

/*
 * What a call's end means for its key: fault and retry_delay_s from skiff_classify, reason
 * its words (borrowed into *out; NULL: the fault's name for a key-wide retirement).
 *   NONE → served; CLIENT, TRANSIENT → neutral;
 *   QUOTA_MINUTE → rest RetryInfo's delay, at least 1 s, 60 s (the window) without one;
 *   QUOTA_DAY → rest until midnight Pacific, whatever RetryInfo says;
 *   QUOTA_OTHER → rest RetryInfo's delay, SKIFF_KEYPOOL_BARE_429_REST_MS without one;
 *   QUOTA_ZERO → retired for the model; KEY_INVALID, KEY_DENIED, KEY_REGION → retired.
 * The three rests count toward the pool-wide backoff except QUOTA_DAY.
 */
void skiff_keypool_verdict(enum skiff_fault fault, double retry_delay_s, const char *reason,
                           int64_t now_ms, struct skiff_key_verdict *out);

/*
 * The pool skiff serves with: Gemini quota days (midnight Pacific) and the SQLite backend
 * over store (NULL: memory only). cfg and store must outlive it.
 */
struct skiff_keypool *skiff_keypool_new(const struct skiff_config *cfg, struct skiff_store *store);

/* Pins the catalog's models (skiff_keypool_pin over skiff_catalog_lookup); cat must outlive
 * the pool. */
struct skiff_catalog;
void skiff_keypool_use_catalog(struct skiff_keypool *p, const struct skiff_catalog *cat);

/* skiff_keypool_report with skiff_keypool_verdict(fault, retry_delay_s, reason, now_ms). */
void skiff_keypool_release(struct skiff_keypool *p, int key, const char *model,
                           enum skiff_fault fault, double retry_delay_s, const char *reason,
                           int64_t tokens, int64_t now_ms);

#endif
