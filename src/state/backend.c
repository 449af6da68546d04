#include "state/backend.h"

#include <string.h>

#include "base/hash.h"

/*
 * FNV-1a, 64 bits. It is an identifier, not a protection: a key has far more entropy than
 * 64 bits, so the hash cannot give it back, and collisions in a pool of keys are
 * vanishingly unlikely. Being fixed, it stays the same across restarts and builds.
 */
void
skiff_state_key_id(const char *key, char out[17])
{
    static const char hex[] = "0123456789abcdef";
    const char *k = key ? key : "";
    uint64_t h = skiff_fnv1a64(SKIFF_FNV64_BASIS, k, strlen(k));
    for (int i = 15; i >= 0; i--) {
        out[i] = hex[h & 0xf];
        h >>= 4;
    }
    out[16] = '\0';
}
