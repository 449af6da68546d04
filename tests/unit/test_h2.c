/*
 * relay/h2client.c against a real nghttp2 server session, in memory: what the client sends
 * is fed to the server and back, so every frame is real HTTP/2. Covers the one thing the
 * module parses itself (the call's HTTP/1.1 request head becomes HTTP/2 fields), the answer
 * handed on, a paused stream that holds up no other, and how a stream's end is judged.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <nghttp2/nghttp2.h>

#include "relay/h2client.h"

/* ---- the server ---- */

struct srv {
    nghttp2_session *s;
    char fields[2][2048]; /* "name=value;" per stream, the first two streams */
    int32_t ids[8];
    int nstreams;
    char body[2][256];
    size_t body_len[2];
    size_t got[2]; /* DATA bytes per stream, also past what body keeps */
};

static struct srv S;

static int
srv_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *n, size_t nl,
           const uint8_t *v, size_t vl, uint8_t fl, void *ud)
{
    (void)s, (void)fl, (void)ud;
    int i = S.nstreams && S.ids[0] == f->hd.stream_id ? 0 : 1;
    char *p = S.fields[i];
    snprintf(p + strlen(p), sizeof S.fields[i] - strlen(p), "%.*s=%.*s;", (int)nl, n, (int)vl, v);
    return 0;
}

static int
srv_begin(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
    (void)s, (void)ud;
    if (f->hd.type == NGHTTP2_HEADERS && S.nstreams < 8)
        S.ids[S.nstreams++] = f->hd.stream_id;
    return 0;
}

static int
srv_data(nghttp2_session *s, uint8_t fl, int32_t id, const uint8_t *d, size_t len, void *ud)
{
    (void)s, (void)fl, (void)ud;
    int i = S.ids[0] == id ? 0 : 1;
    S.got[i] += len;
    if (S.body_len[i] + len > sizeof S.body[i])
        return 0;
    memcpy(S.body[i] + S.body_len[i], d, len);
    S.body_len[i] += len;
    return 0;
}

static void
srv_new(uint32_t window)
{
    memset(&S, 0, sizeof S);
    nghttp2_session_callbacks *cb;
    nghttp2_session_callbacks_new(&cb);
    nghttp2_session_callbacks_set_on_header_callback(cb, srv_header);
    nghttp2_session_callbacks_set_on_begin_headers_callback(cb, srv_begin);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, srv_data);
    assert_int_equal(nghttp2_session_server_new(&S.s, cb, NULL), 0);
    nghttp2_session_callbacks_del(cb);
    nghttp2_settings_entry iv[] = {{NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 100},
                                   {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, window}};
    nghttp2_submit_settings(S.s, NGHTTP2_FLAG_NONE, iv, 2);
}

/* ---- the client's side ---- */

struct call {
    int status;
    char headers[1024];
    char data[1 << 20];
    size_t len;
    int pause, ended, not_processed, drains;
    char error[300];
};

static int
c_send(void *conn, const char *data, size_t len)
{
    (void)conn;
    return nghttp2_session_mem_recv(S.s, (const uint8_t *)data, len) == (ssize_t)len ? 0 : -1;
}

static void
c_head(void *call, int status, const char *h, size_t len)
{
    struct call *c = call;
    c->status = status;
    snprintf(c->headers, sizeof c->headers, "%.*s", (int)len, h);
}

static int
c_data(void *call, const char *d, size_t len)
{
    struct call *c = call;
    memcpy(c->data + c->len, d, len);
    c->len += len;
    return c->pause;
}

static void
c_end(void *call, const char *error, int not_processed)
{
    struct call *c = call;
    c->ended++;
    c->not_processed = not_processed;
    snprintf(c->error, sizeof c->error, "%s", error ? error : "");
}

static void
c_drain(void *call)
{
    struct call *c = call;
    c->drains++;
}

static const struct skiff_h2_ops ops = {c_send, c_head, c_data, c_end, c_drain};

/* Moves what the server has to send into the client, until neither side has anything. */
static void
pump(struct skiff_h2 *h)
{
    for (int round = 0; round < 100; round++) {
        const uint8_t *p;
        ssize_t n, total = 0;
        while ((n = nghttp2_session_mem_send(S.s, &p)) > 0) {
            total += n;
            assert_int_equal(skiff_h2_recv(h, (const char *)p, (size_t)n), 0);
        }
        assert_int_equal(skiff_h2_flush(h), 0);
        if (!total)
            return;
    }
}

#define FIELD(n, v)                                                                                \
    {                                                                                              \
        .name = n, .name_len = sizeof n - 1, .value = v, .value_len = sizeof v - 1                 \
    }
static const struct skiff_h2_field FIELDS[] = {
    FIELD("Content-Type", "application/json"),
    FIELD("Connection", "keep-alive"),
    FIELD("Keep-Alive", "timeout=5"),
    FIELD("X-Goog-Api-Key", "AIzaKey"),
    FIELD("TE", "trailers"),
    FIELD("content-length", "5"),
};
#undef FIELD
#define PART(f, s) .f = s, .f##_len = sizeof s - 1
static const struct skiff_h2_req POST = {
    PART(method, "POST"),
    PART(path, "/v1beta/models/m:generateContent?alt=sse"),
    PART(authority, "generativelanguage.googleapis.com"),
    .fields = FIELDS,
    .nfields = sizeof FIELDS / sizeof FIELDS[0],
};
static const struct skiff_h2_req GET = {PART(method, "GET"), PART(path, "/a"),
                                        PART(authority, "up")};

static void
respond(int32_t id, const char *body, int end)
{
    nghttp2_nv nv[] = {
        {(uint8_t *)":status", (uint8_t *)"200", 7, 3, 0},
        {(uint8_t *)"content-type", (uint8_t *)"text/event-stream", 12, 17, 0},
        {(uint8_t *)"x-upstream", (uint8_t *)"yes", 10, 3, 0},
    };
    assert_int_equal(nghttp2_submit_headers(S.s, 0, id, NULL, nv, 3, NULL), 0);
    (void)body;
    (void)end;
}

static ssize_t
src_read(nghttp2_session *s, int32_t id, uint8_t *buf, size_t len, uint32_t *flags,
         nghttp2_data_source *src, void *ud)
{
    (void)s, (void)id, (void)ud;
    size_t *left = src->ptr;
    size_t n = *left < len ? *left : len;
    memset(buf, 'x', n);
    *left -= n;
    if (!*left)
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

static void
test_request_fields(void **state)
{
    (void)state;
    srv_new(65535);
    struct skiff_h2 *h = skiff_h2_new(&ops, NULL);
    static struct call c;
    memset(&c, 0, sizeof c);
    assert_int_equal(skiff_h2_submit(h, &POST, "hello", 5, &c), 0);
    pump(h);
    assert_string_equal(S.fields[0], ":method=POST;:scheme=https;:path=/v1beta/models/"
                                     "m:generateContent?alt=sse;:authority=generativelanguage."
                                     "googleapis.com;content-type=application/json;x-goog-api-"
                                     "key=AIzaKey;content-length=5;");
    assert_int_equal(S.body_len[0], 5);
    assert_memory_equal(S.body[0], "hello", 5);
    /* Requests that are not one: no method, no path, no authority. */
    struct skiff_h2_req bad = GET;
    bad.method_len = 0;
    assert_int_equal(skiff_h2_submit(h, &bad, NULL, 0, &c), -1);
    bad = GET;
    bad.path_len = 0;
    assert_int_equal(skiff_h2_submit(h, &bad, NULL, 0, &c), -1);
    bad = GET;
    bad.authority_len = 0;
    assert_int_equal(skiff_h2_submit(h, &bad, NULL, 0, &c), -1);
    assert_int_equal(skiff_h2_calls(h), 1);
    skiff_h2_free(h);
    nghttp2_session_del(S.s);
}

/* A paused call's stream keeps what comes (its window's worth); another stream on the same
 * session is answered meanwhile; resume delivers the rest and the end. */
static void
test_pause_does_not_stall_others(void **state)
{
    (void)state;
    srv_new(65535);
    struct skiff_h2 *h = skiff_h2_new(&ops, NULL);
    static struct call a, b;
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    assert_int_equal(skiff_h2_submit(h, &GET, NULL, 0, &a), 0);
    assert_int_equal(skiff_h2_submit(h, &GET, NULL, 0, &b), 0);
    pump(h);
    assert_int_equal(S.nstreams, 2);
    static size_t left_a = 600000, left_b = 1000;
    left_a = 600000;
    left_b = 1000;
    nghttp2_data_provider pa = {.source = {.ptr = &left_a}, .read_callback = src_read};
    nghttp2_data_provider pb = {.source = {.ptr = &left_b}, .read_callback = src_read};
    nghttp2_nv nv[] = {{(uint8_t *)":status", (uint8_t *)"200", 7, 3, 0},
                       {(uint8_t *)"x-upstream", (uint8_t *)"yes", 10, 3, 0}};
    a.pause = 1; /* the first piece pauses the call */
    nghttp2_submit_response(S.s, S.ids[0], nv, 2, &pa);
    pump(h);
    assert_int_equal(a.status, 200);
    assert_string_equal(a.headers, "x-upstream: yes\r\n");
    assert_true(a.len > 0 && a.len < 600000);
    assert_true(left_a > 0); /* the window stopped the server */
    nghttp2_submit_response(S.s, S.ids[1], nv, 2, &pb);
    pump(h);
    assert_int_equal(b.ended, 1);
    assert_string_equal(b.error, "");
    assert_int_equal(b.len, 1000);
    assert_int_equal(a.ended, 0);
    a.pause = 0;
    for (int i = 0; i < 100 && !a.ended; i++) {
        skiff_h2_resume(h, &a);
        pump(h);
        a.pause = 0;
    }
    assert_int_equal(a.ended, 1);
    assert_string_equal(a.error, "");
    assert_int_equal(a.len, 600000);
    skiff_h2_free(h);
    nghttp2_session_del(S.s);
}

/* A streamed body (an upload) goes as DATA only as the upstream's window allows: what the
 * window does not take waits in the stream's queue, goes once the window opens again, and
 * the queue's falling tells the writer (on_drain); the end is END_STREAM after the last. */
static void
test_streamed_body_flow_control(void **state)
{
    (void)state;
    srv_new(16384);
    struct skiff_h2 *h = skiff_h2_new(&ops, NULL);
    static struct call c;
    memset(&c, 0, sizeof c);
    static const struct skiff_h2_req post = {PART(method, "POST"), PART(path, "/upload"),
                                             PART(authority, "up")};
    assert_int_equal(skiff_h2_submit(h, &post, skiff_h2_streamed, 0, &c), 0);
    pump(h);
    assert_int_equal(S.nstreams, 1);
    assert_int_equal(S.got[0], 0); /* nothing written yet: no DATA, no END_STREAM */
    assert_int_equal(nghttp2_session_get_stream_remote_close(S.s, S.ids[0]), 0);
    static char bytes[100000];
    memset(bytes, 'u', sizeof bytes);
    size_t q = skiff_h2_body_write(h, &c, bytes, sizeof bytes);
    /* The server has not answered with a WINDOW_UPDATE yet: one window's worth went. */
    assert_true(S.got[0] > 0 && S.got[0] <= 16384);
    assert_int_equal(q, sizeof bytes - S.got[0]);
    pump(h);
    assert_int_equal(S.got[0], sizeof bytes);
    assert_true(c.drains > 0);
    assert_int_equal(nghttp2_session_get_stream_remote_close(S.s, S.ids[0]), 0);
    skiff_h2_body_end(h, &c);
    pump(h);
    assert_int_equal(nghttp2_session_get_stream_remote_close(S.s, S.ids[0]), 1);
    assert_int_equal(S.got[0], sizeof bytes);
    assert_int_equal(skiff_h2_body_write(h, &c, "late", 4), 0); /* after the end: dropped */
    skiff_h2_free(h);
    nghttp2_session_del(S.s);
}

static void
test_ends(void **state)
{
    (void)state;
    srv_new(65535);
    struct skiff_h2 *h = skiff_h2_new(&ops, NULL);
    static struct call a, b, c, d;
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    memset(&c, 0, sizeof c);
    memset(&d, 0, sizeof d);
    assert_int_equal(skiff_h2_submit(h, &GET, NULL, 0, &a), 0);
    assert_int_equal(skiff_h2_submit(h, &GET, NULL, 0, &b), 0);
    assert_int_equal(skiff_h2_submit(h, &POST, "hello", 5, &c), 0);
    pump(h);
    /* REFUSED_STREAM: never processed, may go again. */
    nghttp2_submit_rst_stream(S.s, 0, S.ids[0], NGHTTP2_REFUSED_STREAM);
    /* Headers, then a reset: a failure after the answer began. */
    respond(S.ids[1], NULL, 0);
    pump(h);
    nghttp2_submit_rst_stream(S.s, 0, S.ids[1], NGHTTP2_INTERNAL_ERROR);
    /* The whole answer, then RST_STREAM(NO_ERROR): a success (RFC 9113 §8.1). */
    static size_t left = 10;
    nghttp2_data_provider p = {.source = {.ptr = &left}, .read_callback = src_read};
    nghttp2_nv nv[] = {{(uint8_t *)":status", (uint8_t *)"429", 7, 3, 0}};
    nghttp2_submit_response(S.s, S.ids[2], nv, 1, &p);
    pump(h);
    nghttp2_submit_rst_stream(S.s, 0, S.ids[2], NGHTTP2_NO_ERROR);
    pump(h);
    assert_int_equal(a.ended, 1);
    assert_int_equal(a.not_processed, 1);
    assert_string_equal(a.error, "the upstream refused the stream (REFUSED_STREAM)");
    assert_int_equal(b.ended, 1);
    assert_int_equal(b.not_processed, 0);
    assert_string_equal(
        b.error, "the upstream reset the stream before the response was complete (INTERNAL_ERROR)");
    assert_int_equal(c.ended, 1);
    assert_int_equal(c.status, 429);
    assert_string_equal(c.error, "");
    /* The connection goes: a call whose answer had not come fails, not cleanly. */
    assert_int_equal(skiff_h2_submit(h, &GET, NULL, 0, &d), 0);
    pump(h);
    skiff_h2_fail(h, "the upstream closed the connection");
    assert_int_equal(d.ended, 1);
    assert_int_equal(d.not_processed, 0);
    assert_string_equal(d.error, "the upstream closed the connection without answering");
    assert_int_equal(skiff_h2_calls(h), 0);
    assert_true(skiff_h2_finished(h));
    skiff_h2_free(h);
    nghttp2_session_del(S.s);
}

/* GOAWAY: streams above its last stream id end as not processed; the session takes no new
 * stream and is finished once the rest are done. */
static void
test_goaway(void **state)
{
    (void)state;
    srv_new(65535);
    struct skiff_h2 *h = skiff_h2_new(&ops, NULL);
    static struct call a, b;
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    assert_int_equal(skiff_h2_submit(h, &GET, NULL, 0, &a), 0);
    assert_int_equal(skiff_h2_submit(h, &GET, NULL, 0, &b), 0);
    pump(h);
    nghttp2_submit_goaway(S.s, 0, S.ids[0], NGHTTP2_NO_ERROR, NULL, 0);
    pump(h);
    assert_int_equal(b.ended, 1);
    assert_int_equal(b.not_processed, 1);
    assert_int_equal(a.ended, 0);
    assert_false(skiff_h2_can_open(h));
    assert_false(skiff_h2_finished(h));
    static size_t left = 3;
    nghttp2_data_provider p = {.source = {.ptr = &left}, .read_callback = src_read};
    nghttp2_nv nv[] = {{(uint8_t *)":status", (uint8_t *)"200", 7, 3, 0}};
    nghttp2_submit_response(S.s, S.ids[0], nv, 1, &p);
    pump(h);
    assert_int_equal(a.ended, 1);
    assert_string_equal(a.error, "");
    assert_true(skiff_h2_finished(h));
    skiff_h2_free(h);
    nghttp2_session_del(S.s);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_fields),
        cmocka_unit_test(test_pause_does_not_stall_others),
        cmocka_unit_test(test_streamed_body_flow_control),
        cmocka_unit_test(test_ends),
        cmocka_unit_test(test_goaway),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
