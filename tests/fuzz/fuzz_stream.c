/*
 * The stream scanner (src/gemini/stream.c) as the relay uses it on a held stream: cut the
 * body into units (SSE events or JSON-array elements), judge each, find the JSON inside,
 * and judge the incomplete tail; each unit and the tail also go through the tokenizer's
 * member walk, the finish diagnostics and the repetition guard.
 *
 * Input: byte 0 bit 0 picks SSE (1) or the JSON-array form (0); the rest is the body.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/json.h"
#include "gemini/diagnose.h"
#include "gemini/stream.h"

struct span {
    const char *p;
    size_t n;
};

/* Every member handed out lies inside the input, its key quoted. */
static int
member(const struct skiff_json_tok *k, const struct skiff_json_tok *v, int depth, void *ud)
{
    const struct span *s = ud;
    if (k->p < s->p || k->p + k->n > s->p + s->n || v->p < k->p + k->n ||
        v->p + v->n > s->p + s->n || k->n < 2 || k->p[0] != '"' || depth < 1)
        abort();
    return 0;
}

static void
judge(const char *p, size_t n)
{
    struct span s = {p, n};
    skiff_stream_each_member(p, n, member, &s);
    struct skiff_finish f;
    if (skiff_diagnose_finish(p, n, &f) && (!memchr(f.header, '\0', sizeof f.header) || !f.advice))
        abort();
    struct skiff_repguard g;
    skiff_repguard_init(&g);
    skiff_repguard_feed_event(&g, p, n);
    enum skiff_unit u = skiff_stream_judge(p, n);
    if (u < SKIFF_UNIT_CONTENT || u > SKIFF_UNIT_ERROR)
        abort();
    size_t jl = (size_t)-1;
    const char *j = skiff_stream_json(p, n, &jl);
    if (j < p || jl > n || j + jl != p + n)
        abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int sse = data[0] & 1;
    data++;
    size--;
    char *body = malloc(size ? size : 1);
    if (!body)
        return 0;
    memcpy(body, data, size);
    size_t off = 0, end;
    while (off < size && (end = skiff_stream_unit_end(body + off, size - off, sse)) > 0) {
        if (end > size - off)
            abort();
        /* A unit in its own allocation: judging it must not read the next one. */
        char *unit = malloc(end);
        if (!unit)
            abort();
        memcpy(unit, body + off, end);
        judge(unit, end);
        free(unit);
        off += end;
    }
    judge(body + off, size - off);
    free(body);
    return 0;
}
