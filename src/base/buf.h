/*
 * A growable byte buffer with a hard maximum (after curl's dynbuf). Every buffer that grows
 * from network input is one of these, so crossing a limit is an error the caller turns into
 * a 4xx, never an unbounded allocation.
 */
#ifndef SKIFF_BUF_H
#define SKIFF_BUF_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct skiff_buf {
    char *data; /* NUL-terminated when len > 0; NULL until the first append */
    size_t len;
    size_t cap;
    size_t max; /* appends that would pass this fail with SKIFF_ETOOBIG */
};

/* Sets up an empty buffer that may hold at most max bytes. Allocates nothing. */
void skiff_buf_init(struct skiff_buf *b, size_t max);

/* Appends n bytes; returns 0, SKIFF_ETOOBIG or SKIFF_ENOMEM (the buffer is then unchanged).
 * Inline when the bytes fit: every header of every request and response passes here. */
int skiff_buf_add_grow(struct skiff_buf *b, const void *p, size_t n);

static inline int
skiff_buf_add(struct skiff_buf *b, const void *p, size_t n)
{
    if (n >= b->cap - b->len || n > b->max - b->len)
        return skiff_buf_add_grow(b, p, n);
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

/* Makes room for n more bytes at once (a known Content-Length), so appends do not grow
 * the buffer piece by piece. Same returns as skiff_buf_add; appends nothing. */
int skiff_buf_reserve(struct skiff_buf *b, size_t n);

/* Appends a NUL-terminated string. */
int skiff_buf_adds(struct skiff_buf *b, const char *s);

/* Appends v in decimal; same returns as skiff_buf_add. */
int skiff_buf_add_uint(struct skiff_buf *b, uint64_t v);

/* Appends printf-style output; same returns as skiff_buf_add. */
int skiff_buf_printf(struct skiff_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Empties the buffer but keeps its memory for reuse. */
void skiff_buf_reset(struct skiff_buf *b);

/* Frees the memory; the buffer may be used again after skiff_buf_init. */
void skiff_buf_release(struct skiff_buf *b);

/* Hands the data to the caller (who frees it) and leaves the buffer empty. */
char *skiff_buf_take(struct skiff_buf *b);

#endif
