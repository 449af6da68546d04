/* The one edit distance of the project: what every did-you-mean (config keys, model names,
 * paths) measures with. */
#ifndef SKIFF_EDITDIST_H
#define SKIFF_EDITDIST_H

#include <stddef.h>

/*
 * Optimal string alignment distance between a[0..la) and b[0..lb), ASCII case-insensitive:
 * like Levenshtein, but a swap of two neighbours ("retyr" for "retry") is one edit, the typo
 * people make most. A string of 128 bytes or more gives SIZE_MAX / 2 (never "close").
 * No allocation; safe from any thread.
 */
size_t skiff_edit_distance(const char *a, size_t la, const char *b, size_t lb);

#endif
