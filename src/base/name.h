/* The names skiff puts into an upstream URL's path (model names, resource ids), checked
 * against one strict charset so no client byte can change the path's meaning. */
#ifndef SKIFF_BASE_NAME_H
#define SKIFF_BASE_NAME_H

#include <stddef.h>

/*
 * Whether s[0..n) is a model name as it may appear in an upstream URL: 1 to 128 letters,
 * digits, '-', '.' and '_', starting with a letter or a digit (so never "." or "..").
 */
int skiff_model_name_ok(const char *s, size_t n);

#endif
