#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "relay/h1resp.h"

/* Parses a head given as a whole string; the kept header lines land in *out. */
static int
parse(struct skiff_h1resp *p, const char *head, struct skiff_buf *out)
{
    memset(p, 0, sizeof *p);
    skiff_buf_init(out, 64 * 1024);
    return skiff_h1_parse_head(p, head, strlen(head), 0, out);
}

/* Runs body bytes through the decoder `step` bytes at a time (0: all at once) and returns
 * the decoded body (caller frees), or NULL on a framing error. *rest gets the bytes left
 * over after the end of the body. */
static char *
decode(struct skiff_h1resp *p, const char *in, size_t step, size_t *rest)
{
    size_t len = strlen(in), off = 0, olen = 0;
    char *out = calloc(1, len + 1);
    while (off < len && p->state != SKIFF_H1_DONE) {
        size_t avail = step && len - off > step ? step : len - off;
        const char *piece;
        size_t plen;
        ssize_t n = skiff_h1_body(p, in + off, avail, &piece, &plen);
        if (n < 0) {
            free(out);
            return NULL;
        }
        assert_true(piece >= in + off && piece + plen <= in + off + avail);
        memcpy(out + olen, piece, plen);
        olen += plen;
        off += (size_t)n;
        assert_true(n > 0 || p->state == SKIFF_H1_DONE);
    }
    *rest = len - off;
    return out;
}

static void
test_head_end(void **state)
{
    const char *crlf = "HTTP/1.1 200 OK\r\nA: b\r\n\r\nbody";
    assert_int_equal(skiff_h1_head_end(crlf, strlen(crlf), 0), strlen(crlf) - 4);
    const char *lf = "HTTP/1.1 200 OK\nA: b\n\nbody";
    assert_int_equal(skiff_h1_head_end(lf, strlen(lf), 0), strlen(lf) - 4);
    const char *partial = "HTTP/1.1 200 OK\r\nA: b\r\n\r";
    assert_int_equal(skiff_h1_head_end(partial, strlen(partial), 0), 0);
    /* Resuming the search three bytes before the old end still finds a split blank line. */
    const char *whole = "HTTP/1.1 200 OK\r\nA: b\r\n\r\n";
    assert_int_equal(skiff_h1_head_end(whole, strlen(whole), strlen(partial) - 3), strlen(whole));
}

static void
test_status_and_headers(void **state)
{
    struct skiff_h1resp p;
    struct skiff_buf out;
    assert_int_equal(parse(&p,
                           "HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\n"
                           "Connection: keep-alive\r\nContent-Length: 12\r\nAlt-Svc: h3\r\n"
                           "Retry-After:   7  \r\nTransfer-Encoding: identity, chunked\r\n\r\n",
                           &out),
                     0);
    assert_int_equal(p.status, 429);
    /* Hop-by-hop and framing fields stay here; the value's outer whitespace goes. */
    assert_string_equal(out.data, "Content-Type: application/json\r\nRetry-After: 7\r\n");
    /* Chunked wins over Content-Length, and the connection ends after such a body. */
    assert_int_equal(p.state, SKIFF_H1_CHUNK_SIZE);
    assert_int_equal(p.keep_alive, 0);
    skiff_buf_release(&out);

    assert_int_equal(parse(&p, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", &out), 0);
    assert_int_equal(p.state, SKIFF_H1_LENGTH);
    assert_int_equal(p.left, 5);
    assert_int_equal(p.keep_alive, 1);
    skiff_buf_release(&out);

    assert_int_equal(parse(&p, "HTTP/1.1 200\nconnection: Close\n\n", &out), 0);
    assert_int_equal(p.status, 200);
    assert_int_equal(p.keep_alive, 0);
    assert_int_equal(p.state, SKIFF_H1_UNTIL_EOF);
    skiff_buf_release(&out);

    assert_int_equal(parse(&p, "HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", &out), 0);
    assert_int_equal(p.keep_alive, 0);
    assert_int_equal(p.state, SKIFF_H1_DONE);
    skiff_buf_release(&out);
    assert_int_equal(
        parse(&p, "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\n", &out),
        0);
    assert_int_equal(p.keep_alive, 1);
    skiff_buf_release(&out);

    assert_int_equal(parse(&p, "HTTP/1.1 204 No Content\r\n\r\n", &out), 0);
    assert_int_equal(p.state, SKIFF_H1_DONE);
    skiff_buf_release(&out);

    /* An informational answer: the real head follows. */
    assert_int_equal(parse(&p, "HTTP/1.1 100 Continue\r\n\r\n", &out), 0);
    assert_int_equal(p.state, SKIFF_H1_HEAD);
    skiff_buf_release(&out);

    assert_int_equal(parse(&p, "HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\n", &out), 0);
    assert_int_equal(p.left, 5);
    skiff_buf_release(&out);
}

static void
test_garbage_heads(void **state)
{
    const char *bad[] = {
        "<html>502 Bad Gateway</html>\r\n\r\n",
        "HTTP/2 200\r\n\r\n",
        "HTTP/1.1 2x0 OK\r\n\r\n",
        "HTTP/1.1 099 Low\r\n\r\n",
        "HTTP/1.1 101 Switching Protocols\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n",
        "HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
        "HTTP/1.1 200 OK\r\nA : b\r\n\r\n",
        "HTTP/1.1 200 OK\r\nA: b\r\n folded\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct skiff_h1resp p;
        struct skiff_buf out;
        assert_int_equal(parse(&p, bad[i], &out), -1);
        skiff_buf_release(&out);
    }
}

static void
test_header_block_limit(void **state)
{
    struct skiff_h1resp p;
    struct skiff_buf out;
    memset(&p, 0, sizeof p);
    skiff_buf_init(&out, 16);
    const char *h = "HTTP/1.1 200 OK\r\nX-Long: 0123456789abcdef\r\n\r\n";
    assert_int_equal(skiff_h1_parse_head(&p, h, strlen(h), 0, &out), -1);
    skiff_buf_release(&out);
}

static void
test_chunked_any_split(void **state)
{
    const char *wire = "5\r\nhello\r\n7;ext=\"a\"\r\n, world\r\nA \r\n0123456789\r\n"
                       "0\r\nX-Trailer: 1\r\n\r\nNEXT";
    for (size_t step = 0; step <= 7; step++) {
        struct skiff_h1resp p = {.state = SKIFF_H1_CHUNK_SIZE};
        size_t rest;
        char *body = decode(&p, wire, step, &rest);
        assert_non_null(body);
        assert_string_equal(body, "hello, world0123456789");
        assert_int_equal(p.state, SKIFF_H1_DONE);
        assert_int_equal(rest, 4); /* "NEXT" is not part of this response */
        free(body);
    }
    /* Bare LF line ends are read too. */
    struct skiff_h1resp p = {.state = SKIFF_H1_CHUNK_SIZE};
    size_t rest;
    char *body = decode(&p, "3\nabc\n0\n\n", 1, &rest);
    assert_string_equal(body, "abc");
    assert_int_equal(p.state, SKIFF_H1_DONE);
    free(body);
}

static void
test_chunked_garbage(void **state)
{
    const char *bad[] = {"zz\r\nabc\r\n0\r\n\r\n", "3\r\nabcX\r\n0\r\n\r\n", "\r\n",
                         "1234567890abcdef0\r\n"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct skiff_h1resp p = {.state = SKIFF_H1_CHUNK_SIZE};
        size_t rest;
        assert_null(decode(&p, bad[i], 0, &rest));
    }
    /* A chunk-size line that never ends is garbage, not a reason to buffer forever. */
    char *longline = malloc(5001);
    memset(longline, ';', 5000);
    longline[0] = '1';
    longline[5000] = '\0';
    struct skiff_h1resp p = {.state = SKIFF_H1_CHUNK_SIZE};
    size_t rest;
    assert_null(decode(&p, longline, 0, &rest));
    free(longline);
}

static void
test_length_and_eof(void **state)
{
    struct skiff_h1resp p = {.state = SKIFF_H1_LENGTH, .left = 5};
    size_t rest;
    char *body = decode(&p, "hello world", 3, &rest);
    assert_string_equal(body, "hello");
    assert_int_equal(rest, 6);
    assert_int_equal(skiff_h1_eof(&p), 0);
    free(body);

    struct skiff_h1resp cut = {.state = SKIFF_H1_LENGTH, .left = 50};
    body = decode(&cut, "hello", 0, &rest);
    assert_int_equal(skiff_h1_eof(&cut), -1); /* 45 bytes short */
    free(body);

    struct skiff_h1resp chunk = {.state = SKIFF_H1_CHUNK_SIZE};
    body = decode(&chunk, "5\r\nhel", 0, &rest);
    assert_int_equal(skiff_h1_eof(&chunk), -1); /* no last chunk */
    free(body);

    struct skiff_h1resp close = {.state = SKIFF_H1_UNTIL_EOF};
    body = decode(&close, "anything at all", 4, &rest);
    assert_string_equal(body, "anything at all");
    assert_int_equal(skiff_h1_eof(&close), 0);
    assert_int_equal(close.state, SKIFF_H1_DONE);
    free(body);
}

static void
test_hop_by_hop(void **state)
{
    assert_true(skiff_h1_hop_by_hop("Transfer-Encoding", 17));
    assert_true(skiff_h1_hop_by_hop("connection", 10));
    assert_false(skiff_h1_hop_by_hop("content-type", 12));
    assert_false(skiff_h1_hop_by_hop("te-x", 4));
    /* A name with a NUL inside (garbage from an upstream) matches nothing, and the lookup
     * reads no further than the listed names themselves. */
    assert_false(skiff_h1_hop_by_hop("te\0xxxxxxxxx", 12));
    assert_true(skiff_h1_hop_by_hop("TE", 2));
}

/* Fields the upstream's Connection header names are hop-by-hop too, wherever they come. */
static void
test_connection_named_fields(void **state)
{
    struct skiff_h1resp p;
    struct skiff_buf out;
    assert_int_equal(parse(&p,
                           "HTTP/1.1 200 OK\r\nServer-Timing: a\r\nConnection: keep-alive, "
                           "Server-Timing\r\nContent-Type: text/plain\r\nconnection: x-late"
                           "\r\nX-Late: 1\r\nVary: Origin\r\nContent-Length: 0\r\n\r\n",
                           &out),
                     0);
    assert_string_equal(out.data, "Content-Type: text/plain\r\nVary: Origin\r\n");
    assert_true(p.keep_alive);
    skiff_buf_release(&out);

    /* The same on a block a transport built itself, after what came before it. */
    skiff_buf_init(&out, 1024);
    const char blk[] = "keep: 1\r\nA: 1\r\nB: 2\r\nConnection: a,,b\r\nC: 3\r\n";
    skiff_buf_add(&out, blk, sizeof blk - 1);
    skiff_h1_drop_connection(&out, 9); /* from "A: 1": "keep" is before the range */
    assert_string_equal(out.data, "keep: 1\r\nC: 3\r\n");
    skiff_buf_release(&out);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_head_end),
        cmocka_unit_test(test_status_and_headers),
        cmocka_unit_test(test_garbage_heads),
        cmocka_unit_test(test_header_block_limit),
        cmocka_unit_test(test_chunked_any_split),
        cmocka_unit_test(test_chunked_garbage),
        cmocka_unit_test(test_length_and_eof),
        cmocka_unit_test(test_hop_by_hop),
        cmocka_unit_test(test_connection_named_fields),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
