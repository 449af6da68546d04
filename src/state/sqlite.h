/*
 * The SQLite state backend (state/backend.h) over the store (state/store.h): put_state,
 * add_usage and load are the store's own, so their contract is the store's (coalesced in
 * memory, written by the store thread, never blocking the caller). subscribe watches the
 * file (skiff_store_watch): instances sharing one storage.sqlite hear each other's rests
 * and retirements within about SKIFF_STATE_SQLITE_WATCH_MS of their commit.
 */
#ifndef SKIFF_STATE_SQLITE_H
#define SKIFF_STATE_SQLITE_H

#include "state/backend.h"

struct skiff_store;

#define SKIFF_STATE_SQLITE_WATCH_MS 1000

/* Fills *out with the backend over s (borrowed: it must stay open while *out is used).
 * s NULL gives a backend whose operations do nothing. */
void skiff_state_sqlite(struct skiff_store *s, struct skiff_state_backend *out);

#endif
