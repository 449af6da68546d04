/*
 * The HTTP/2 glue (src/relay/h2client.c) as the upstream client drives it, with whatever the
 * upstream sends: two calls on one session (a GET, and a POST with a body larger than the
 * first window), the input fed in reads, calls pausing, resuming and cancelling as the input
 * says, then the connection failing. Nothing may crash, leak, call a call back after its end,
 * or end a call twice.
 *
 * Input: byte 0 is the read size (1 to 255, 0 for one read); byte 1's bits: 0 pause the
 * first call on each piece, 1 resume it after every read, 2 cancel the second call on its
 * head. The rest is what the upstream sends (it must begin with a SETTINGS frame).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "relay/h2client.h"

struct call {
    int ended, heads, cancel_on_head, pause;
    struct skiff_h2 *h;
};

static int
c_send(void *conn, const char *data, size_t len)
{
    (void)conn;
    (void)data;
    (void)len;
    return 0;
}

static void
c_head(void *call, int status, const char *h, size_t len)
{
    struct call *c = call;
    if (c->ended || status < 200 || status > 999 || (len && !h))
        abort();
    c->heads++;
    if (c->cancel_on_head) {
        skiff_h2_cancel(c->h, c);
        c->ended = 2; /* cancelled: no callback may follow */
    }
}

static int
c_data(void *call, const char *d, size_t len)
{
    struct call *c = call;
    if (c->ended || !c->heads || (len && !d))
        abort();
    return c->pause;
}

static void
c_end(void *call, const char *error, int not_processed)
{
    struct call *c = call;
    (void)error;
    (void)not_processed;
    if (c->ended)
        abort();
    c->ended = 1;
}

static const struct skiff_h2_ops ops = {c_send, c_head, c_data, c_end, NULL};

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    size_t step = data[0] ? data[0] : size;
    uint8_t flags = data[1];
    data += 2;
    size -= 2;
    struct skiff_h2 *h = skiff_h2_new(&ops, NULL);
    if (!h)
        return 0;
    static char body[100000];
    struct call a = {.pause = flags & 1, .h = h}, b = {.cancel_on_head = (flags >> 2) & 1, .h = h};
    static const struct skiff_h2_field ct[] = {
        {"content-type", "application/json", 12, 16},
        {"content-length", "100000", 14, 6},
    };
    static const struct skiff_h2_req get = {"GET", "/v1beta/models", "up", 3, 14, 2, NULL, 0};
    static const struct skiff_h2_req post = {
        "POST", "/v1beta/models/m:generateContent", "up", 4, 32, 2, ct, 2};
    if (skiff_h2_submit(h, &get, NULL, 0, &a) < 0 ||
        skiff_h2_submit(h, &post, body, sizeof body, &b) < 0)
        abort();
    skiff_h2_flush(h);
    for (size_t at = 0; at < size;) {
        size_t n = size - at < step ? size - at : step;
        if (skiff_h2_recv(h, (const char *)data + at, n) < 0)
            break;
        at += n;
        if ((flags & 2) && !a.ended)
            skiff_h2_resume(h, &a);
    }
    a.pause = 0;
    if (!a.ended)
        skiff_h2_resume(h, &a);
    skiff_h2_fail(h, "the upstream closed the connection");
    if (!a.ended || !b.ended || skiff_h2_calls(h) != 0)
        abort();
    skiff_h2_free(h);
    return 0;
}
