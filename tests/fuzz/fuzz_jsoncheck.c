/*
 * jsoncheck (src/jsoncheck.c) on any bytes, checked against jansson: a document jansson
 * accepts is valid JSON, so jsoncheck must accept it too (unless it nests deeper than
 * jsoncheck's documented 512 levels, or holds a NUL byte, where jansson stops reading).
 * A refusal must point inside the input.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/jsoncheck.h"

static size_t
brackets(const uint8_t *p, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        k += p[i] == '[' || p[i] == '{';
    return k;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* An exact-size copy: a read one past the end is caught. */
    char *p = malloc(size ? size : 1);
    if (!p)
        return 0;
    memcpy(p, data, size);
    size_t off = (size_t)-1;
    const char *why = NULL;
    int rc = skiff_json_check(p, size, &off, &why);
    if (rc != 0 && (off > size || !why))
        abort();
    /* jansson ends its input at a NUL byte, so it is no judge of those. */
    if (rc != 0 && brackets(data, size) < 500 && !memchr(data, '\0', size)) {
        json_error_t e;
        json_t *j = json_loadb(p, size, JSON_DECODE_ANY | JSON_ALLOW_NUL, &e);
        if (j)
            abort(); /* jansson took it: jsoncheck refused valid JSON */
    }
    free(p);
    return 0;
}
