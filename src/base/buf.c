#include "base/buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/num.h"

void
skiff_buf_init(struct skiff_buf *b, size_t max)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max;
}

/* Makes room for n more bytes plus a NUL. */
static int
grow(struct skiff_buf *b, size_t n)
{
    if (n > b->max || b->len > b->max - n)
        return SKIFF_ETOOBIG;
    size_t need = b->len + n + 1;
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap *= 2;
    char *p = realloc(b->data, cap);
    if (!p)
        return SKIFF_ENOMEM;
    b->data = p;
    b->cap = cap;
    return 0;
}

int
skiff_buf_add_grow(struct skiff_buf *b, const void *p, size_t n)
{
    int rc = grow(b, n);
    if (rc)
        return rc;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int
skiff_buf_reserve(struct skiff_buf *b, size_t n)
{
    return grow(b, n);
}

int
skiff_buf_adds(struct skiff_buf *b, const char *s)
{
    return skiff_buf_add(b, s, strlen(s));
}

int
skiff_buf_add_uint(struct skiff_buf *b, uint64_t v)
{
    char d[20];
    return skiff_buf_add(b, d, skiff_fmt_uint(d, v, 10));
}

int
skiff_buf_printf(struct skiff_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return SKIFF_EINVAL;
    int rc = grow(b, (size_t)n);
    if (rc)
        return rc;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

void
skiff_buf_reset(struct skiff_buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

void
skiff_buf_release(struct skiff_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

char *
skiff_buf_take(struct skiff_buf *b)
{
    char *p = b->data;
    b->data = NULL;
    b->len = b->cap = 0;
    return p;
}
