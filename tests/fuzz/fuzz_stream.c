/*
 * The stream scanner (src/gemini/stream.c) as the relay uses it on a held stream: cut the
 * body into units (SSE events or JSON-array elements), judge each, find the JSON inside,
 * and judge the incomplete tail.
 *
 * Input: byte 0 bit 0 picks SSE (1) or the JSON-array form (0); the rest is the body.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gemini/stream.h"

static void
judge(const char *p, size_t n)
{
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
