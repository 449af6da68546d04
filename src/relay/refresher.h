/*
 * Keeps the model catalog fresh: a thread that reads the upstream's models.list at start
 * and every catalog.refresh_s seconds, with a key the pool considers healthy. The catalog
 * keeps its previous table when a refresh fails.
 */
#ifndef SKIFF_REFRESHER_H
#define SKIFF_REFRESHER_H

#include "config/config.h"
#include "gemini/catalog.h"
#include "relay/keypool.h"

struct skiff_refresher;

/* Starts the thread (nothing when catalog.refresh_s is 0 or no key is configured).
 * cat, cfg and pool must outlive it. NULL when nothing was started. */
struct skiff_refresher *skiff_refresher_start(struct skiff_catalog *cat,
                                              const struct skiff_config *cfg,
                                              struct skiff_keypool *pool);

/* Stops and joins the thread, within about a second even while a refresh is under way
 * (the upstream may hang). NULL is fine. */
void skiff_refresher_stop(struct skiff_refresher *r);

#endif
