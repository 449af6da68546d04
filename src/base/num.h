/*
 * Numbers to and from text on the hot path, without printf or strtol: response heads,
 * request ids, chunk sizes, and the hex digits of chunk sizes and \u escapes.
 */
#ifndef SKIFF_NUM_H
#define SKIFF_NUM_H

#include <stddef.h>
#include <stdint.h>

/* Writes v in base 10 or 16 (lowercase) at out, which has room for 20 bytes; returns the
 * number of digits. No NUL. */
size_t skiff_fmt_uint(char *out, uint64_t v, unsigned base);

/* The value of a hex digit (either case), or -1 when c is not one. */
int skiff_hexdigit(char c);

#endif
