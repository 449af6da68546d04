/*
 * Comma lists as people write them in environment variables and flags
 * ("key1, key2,,key3"): one reader for every such list. Pure: no allocation, nothing copied.
 */
#ifndef SKIFF_LIST_H
#define SKIFF_LIST_H

#include <stddef.h>

/*
 * Steps through the comma list at *cursor (NULL: at the end): points *item and *len at the
 * next item with its surrounding blanks (space, tab, CR, LF) trimmed, possibly empty, advances
 * *cursor past it and returns 1; returns 0 at the end. "a,,b" gives "a", "", "b".
 */
int skiff_list_next(const char **cursor, const char **item, size_t *len);

/* The number of non-empty items in list (NULL: 0). */
size_t skiff_list_count(const char *list);

#endif
