/*
 * The `models:` map every door shares: client model names ("gpt-4o-mini", "claude-*") to
 * Gemini models. Door-neutral and pure: the caller keeps the (pattern, target) pairs (from
 * the config) and asks for one name at a time.
 *
 * Rules: a Gemini model name ("gemini-...", "models/...", or a name the catalog knows) always
 * maps to itself, even when an entry names it. Then an exact pattern wins over any glob; among
 * globs the most specific wins (the most literal characters, then the earliest entry); `*` matches
 * any run of characters, including none. So `"*": gemini-2.5-flash` never turns a request for
 * gemini-2.5-pro into Flash.
 */
#ifndef SKIFF_DOORS_MODELS_H
#define SKIFF_DOORS_MODELS_H

#include <stddef.h>

#include "config/config.h" /* struct skiff_model_alias */

struct skiff_catalog;

/*
 * The Gemini model for name: the target of the best matching entry of map[0..n), or name
 * itself when it is a Gemini model (cat may be NULL: then only the "gemini-" and "models/"
 * prefixes say so), or NULL when nothing matches (the door answers 404 model_not_found).
 * The result is borrowed from map or is name itself; a "models/" prefix is kept as given.
 */
const char *skiff_models_resolve(const struct skiff_model_alias *map, size_t n,
                                 const struct skiff_catalog *cat, const char *name);

/* Whether glob (with '*') matches the whole of s. */
int skiff_models_glob(const char *glob, const char *s);

#endif
