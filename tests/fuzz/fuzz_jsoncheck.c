/*
 * The JSON tokenizer (src/base/json.c) and the syntax check on it, on any bytes, checked
 * against jansson: a document jansson accepts is valid JSON, so jsoncheck must accept it too
 * (unless it nests deeper than the documented 512 levels, or holds a NUL byte, where jansson
 * stops reading). A refusal must point inside the input. The token stream must agree with
 * the check: every token inside the input, in order, strings and keys quoted, brackets
 * balanced, keys only in objects; and skipping the first container must end where reading
 * it token by token does.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/json.h"
#include "base/jsoncheck.h"

/* Reads every token; returns the last type and checks the invariants. skip_first: skip the
 * first container with skiff_json_skip instead of reading it. */
static enum skiff_jtype
walk(const char *p, size_t size, int skip_first, size_t *end_off)
{
    struct skiff_json j;
    struct skiff_json_tok t;
    enum skiff_jtype type;
    const char *last = p;
    int skipped = 0;
    skiff_json_init(&j, p, size);
    while ((type = skiff_json_next(&j, &t)) > SKIFF_JSON_END) {
        if (t.p < last || t.p + t.n > p + size || t.n == 0)
            abort();
        last = t.p + t.n;
        if ((type == SKIFF_JSON_STRING || type == SKIFF_JSON_KEY) &&
            (t.n < 2 || t.p[0] != '"' || t.p[t.n - 1] != '"'))
            abort();
        if (type == SKIFF_JSON_CLOSE && *t.p != '}' && *t.p != ']')
            abort();
        if (j.depth < 0 || j.depth > SKIFF_JSON_MAX_DEPTH)
            abort();
        if (skip_first && !skipped && (type == SKIFF_JSON_OBJECT || type == SKIFF_JSON_ARRAY)) {
            skipped = 1;
            int d = j.depth;
            if (skiff_json_skip(&j) == 0 && j.depth != d - 1)
                abort();
            last = j.p;
        }
    }
    if (type == SKIFF_JSON_END && j.depth != 0)
        abort();
    *end_off = skiff_json_offset(&j);
    return type;
}

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
    size_t off1, off2;
    enum skiff_jtype t1 = walk(p, size, 0, &off1), t2 = walk(p, size, 1, &off2);
    if ((t1 == SKIFF_JSON_END) != (rc == 0) || t1 != t2 || off1 != off2 || (rc && off1 != off))
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
