/*
 * FNV-1a, 64-bit: the one non-cryptographic hash of the project (hash tables, key
 * fingerprints, deterministic seeds). Never a secret: a fingerprint of a key identifies it,
 * it does not protect it.
 */
#ifndef SKIFF_HASH_H
#define SKIFF_HASH_H

#include <stddef.h>
#include <stdint.h>

#define SKIFF_FNV64_BASIS UINT64_C(0xcbf29ce484222325)

/* Continues hash h over n bytes at p; start with SKIFF_FNV64_BASIS. */
uint64_t skiff_fnv1a64(uint64_t h, const void *p, size_t n);

#endif
