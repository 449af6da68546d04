/*
 * The upstream response framing (src/relay/h1resp.c) as skiff's HTTP/1.1 client drives it:
 * the head accumulated across reads until skiff_h1_head_end finds its end, parsed once
 * (again after a 1xx), then the body fed in pieces until the framing reports the end or an
 * error, then EOF.
 *
 * Input: byte 0 is the read size (1 to 128, or 0 for one read), byte 1 bit 0 says whether
 * the request was a HEAD; the rest is what the upstream sends.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "relay/h1resp.h"

struct call {
    struct skiff_h1resp p;
    struct skiff_buf head, out;
    int head_request;
    int failed;
};

/* One read: returns when it is used up, the response is done, or framing failed. */
static void
feed(struct call *c, const char *in, size_t len)
{
    while (len > 0 && !c->failed && c->p.state != SKIFF_H1_DONE) {
        if (c->p.state == SKIFF_H1_HEAD) {
            size_t old = c->head.len;
            if (skiff_buf_add(&c->head, in, len)) {
                c->failed = 1;
                return;
            }
            size_t end = skiff_h1_head_end(c->head.data, c->head.len, old > 3 ? old - 3 : 0);
            if (!end)
                return;
            if (end > c->head.len || end <= old)
                abort();
            /* A private copy of exactly the head: the parser must not read past it. */
            char *h = malloc(end);
            if (!h)
                abort();
            memcpy(h, c->head.data, end);
            skiff_buf_reset(&c->out);
            int rc = skiff_h1_parse_head(&c->p, h, end, c->head_request, &c->out);
            free(h);
            skiff_buf_reset(&c->head);
            if (rc < 0) {
                c->failed = 1;
                return;
            }
            if (c->p.status < 100 || c->p.status > 999)
                abort();
            in += end - old;
            len -= end - old;
            continue;
        }
        const char *piece = NULL;
        size_t plen = 0;
        ssize_t used = skiff_h1_body(&c->p, in, len, &piece, &plen);
        if (used < 0) {
            c->failed = 1;
            return;
        }
        if ((size_t)used > len || c->p.left < 0)
            abort();
        if (plen && (piece < in || piece + plen > in + used))
            abort(); /* the piece must lie within what was consumed */
        if (used == 0)
            return;
        in += used;
        len -= (size_t)used;
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    size_t step = data[0] % 129;
    struct call c;
    memset(&c, 0, sizeof c);
    c.head_request = data[1] & 1;
    data += 2;
    size -= 2;
    skiff_buf_init(&c.head, 64 * 1024);
    skiff_buf_init(&c.out, 64 * 1024);

    for (size_t off = 0; off < size && !c.failed && c.p.state != SKIFF_H1_DONE;) {
        size_t n = step ? step : size;
        if (n > size - off)
            n = size - off;
        /* Each read in its own allocation, so a read past it is caught. */
        char *rd = malloc(n);
        if (!rd)
            abort();
        memcpy(rd, data + off, n);
        off += n;
        feed(&c, rd, n);
        free(rd);
    }
    if (!c.failed && c.p.state != SKIFF_H1_HEAD)
        (void)skiff_h1_eof(&c.p);
    skiff_buf_release(&c.head);
    skiff_buf_release(&c.out);
    return 0;
}
