#include "base/editdist.h"

#include <stdint.h>

static int
lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

size_t
skiff_edit_distance(const char *a, size_t la, const char *b, size_t lb)
{
    enum { MAXLEN = 128 };
    if (la >= MAXLEN || lb >= MAXLEN)
        return SIZE_MAX / 2;
    /* Three rows are enough for the optimal string alignment recurrence. */
    size_t r0[MAXLEN + 1], r1[MAXLEN + 1], r2[MAXLEN + 1];
    size_t *pp = r0, *p = r1, *c = r2;
    for (size_t j = 0; j <= lb; j++)
        p[j] = j;
    for (size_t i = 1; i <= la; i++) {
        c[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            int ca = lower(a[i - 1]), cb = lower(b[j - 1]);
            size_t best = p[j - 1] + (ca != cb);
            if (p[j] + 1 < best)
                best = p[j] + 1;
            if (c[j - 1] + 1 < best)
                best = c[j - 1] + 1;
            if (i > 1 && j > 1 && ca == lower(b[j - 2]) && lower(a[i - 2]) == cb &&
                pp[j - 2] + 1 < best)
                best = pp[j - 2] + 1;
            c[j] = best;
        }
        size_t *tmp = pp;
        pp = p;
        p = c;
        c = tmp;
    }
    return p[lb];
}
