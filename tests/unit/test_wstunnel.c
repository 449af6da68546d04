/*
 * The WebSocket tunnel to the upstream (relay/wstunnel.c) against a raw TCP server on the same
 * loop that answers the handshake the way each scenario needs: a right 101 followed at once by
 * session bytes, a 101 with a wrong accept value, a refusal with a body, no server at all.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <uv.h>

#include "relay/wstunnel.h"
#include "server/websocket.h"

enum mode { GOOD, BAD_ACCEPT, REFUSE };

struct srv {
    uv_loop_t *loop;
    uv_tcp_t listener;
    uv_tcp_t peer;
    int port;
    enum mode mode;
    char req[8192];
    size_t have;
    int answered;
    char echoed[256];
    size_t nechoed;
};

struct result {
    int opened, refused, closed, status;
    char error[512];
    char body[256];
    char read[256];
    size_t nread;
    struct skiff_wstunnel *t;
    struct srv *s;
};

static void
alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
    static char buf[65536];
    *b = uv_buf_init(buf, sizeof buf);
}

static void
write_str(uv_stream_t *s, const char *str)
{
    uv_buf_t b = uv_buf_init((char *)str, (unsigned)strlen(str));
    assert_int_equal(uv_try_write(s, &b, 1), (int)strlen(str));
}

static void
srv_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
    struct srv *s = st->data;
    if (n <= 0) {
        uv_close((uv_handle_t *)st, NULL);
        return;
    }
    if (s->answered) {
        /* The session's bytes: echoed back. */
        memcpy(s->echoed + s->nechoed, b->base, (size_t)n);
        s->nechoed += (size_t)n;
        uv_buf_t e = uv_buf_init(b->base, (unsigned)n);
        uv_try_write(st, &e, 1);
        return;
    }
    memcpy(s->req + s->have, b->base, (size_t)n);
    s->have += (size_t)n;
    s->req[s->have] = '\0';
    if (!strstr(s->req, "\r\n\r\n"))
        return;
    s->answered = 1;
    const char *k = strstr(s->req, "sec-websocket-key: ");
    assert_non_null(k);
    k += strlen("sec-websocket-key: ");
    char accept[29];
    skiff_ws_accept(k, 24, accept);
    char out[1024];
    if (s->mode == GOOD)
        snprintf(out, sizeof out,
                 "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                 "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\nFIRST",
                 accept);
    else if (s->mode == BAD_ACCEPT)
        snprintf(
            out, sizeof out,
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Accept: AAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n\r\n");
    else
        snprintf(out, sizeof out,
                 "HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\n"
                 "Content-Length: 17\r\n\r\n{\"error\":\"nope\"}\n");
    write_str(st, out);
}

static void
srv_conn(uv_stream_t *l, int status)
{
    struct srv *s = l->data;
    uv_tcp_init(s->loop, &s->peer);
    s->peer.data = s;
    assert_int_equal(uv_accept(l, (uv_stream_t *)&s->peer), 0);
    uv_read_start((uv_stream_t *)&s->peer, alloc_cb, srv_read);
}

static void
srv_start(struct srv *s, uv_loop_t *loop, enum mode m)
{
    memset(s, 0, sizeof *s);
    s->loop = loop;
    s->mode = m;
    uv_tcp_init(loop, &s->listener);
    s->listener.data = s;
    struct sockaddr_in a;
    uv_ip4_addr("127.0.0.1", 0, &a);
    assert_int_equal(uv_tcp_bind(&s->listener, (struct sockaddr *)&a, 0), 0);
    assert_int_equal(uv_listen((uv_stream_t *)&s->listener, 8, srv_conn), 0);
    struct sockaddr_in got;
    int len = sizeof got;
    uv_tcp_getsockname(&s->listener, (struct sockaddr *)&got, &len);
    s->port = ntohs(got.sin_port);
}

static void
t_open(struct skiff_wstunnel *t, const char *h, size_t len)
{
    struct result *r = skiff_wstunnel_data(t);
    r->opened = 1;
}

static void
t_refused(struct skiff_wstunnel *t, int status, const char *h, size_t hl, const char *body,
          size_t bl, const char *error)
{
    struct result *r = skiff_wstunnel_data(t);
    r->refused = 1;
    r->status = status;
    snprintf(r->error, sizeof r->error, "%s", error ? error : "");
    snprintf(r->body, sizeof r->body, "%.*s", (int)bl, body);
    r->t = NULL;
    if (r->s && !uv_is_closing((uv_handle_t *)&r->s->listener))
        uv_close((uv_handle_t *)&r->s->listener, NULL);
}

static void
t_read(struct skiff_wstunnel *t, const char *d, size_t len)
{
    struct result *r = skiff_wstunnel_data(t);
    memcpy(r->read + r->nread, d, len);
    r->nread += len;
    if (r->nread == 5)
        skiff_wstunnel_write(t, "ping", 4);
    if (r->nread == 9) {
        skiff_wstunnel_close(t); /* from inside a callback */
        r->t = NULL;
        uv_close((uv_handle_t *)&r->s->listener, NULL);
    }
}

static void
t_drain(struct skiff_wstunnel *t)
{
}

static void
t_close(struct skiff_wstunnel *t, const char *why)
{
    struct result *r = skiff_wstunnel_data(t);
    r->closed = 1;
}

static const struct skiff_wstunnel_ops ops = {t_open, t_refused, t_read, t_drain, t_close};

static void
run(enum mode m, int no_server, struct result *r)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct skiff_wsclient *cl = skiff_wsclient_new(&loop);
    struct srv s;
    char url[256];
    memset(r, 0, sizeof *r);
    if (no_server) {
        srv_start(&s, &loop, m);
        int port = s.port;
        uv_close((uv_handle_t *)&s.listener, NULL);
        uv_run(&loop, UV_RUN_DEFAULT);
        snprintf(url, sizeof url, "http://127.0.0.1:%d/ws/x?key=SECRETKEY", port);
    } else {
        srv_start(&s, &loop, m);
        r->s = &s;
        snprintf(url, sizeof url, "http://127.0.0.1:%d/ws/x?key=SECRETKEY", s.port);
    }
    const char *hdrs[] = {"x-goog-api-client: test", NULL};
    struct skiff_wstunnel_opts o = {
        .url = url,
        .headers = hdrs,
        .connect_timeout_ms = 2000,
        .handshake_timeout_ms = 2000,
        .ops = &ops,
        .data = r,
    };
    r->t = skiff_wstunnel_open(cl, &o);
    assert_non_null(r->t);
    uv_run(&loop, UV_RUN_DEFAULT);
    if (!no_server) {
        assert_non_null(strstr(s.req, "GET /ws/x?key=SECRETKEY HTTP/1.1\r\n"));
        assert_non_null(strstr(s.req, "upgrade: websocket\r\n"));
        assert_non_null(strstr(s.req, "sec-websocket-version: 13\r\n"));
        assert_non_null(strstr(s.req, "x-goog-api-client: test\r\n"));
        if (m == GOOD)
            assert_memory_equal(s.echoed, "ping", 4);
    }
    skiff_wsclient_free(cl);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void
test_open_first_bytes_then_echo(void **st)
{
    struct result r;
    run(GOOD, 0, &r);
    assert_int_equal(r.opened, 1);
    assert_int_equal(r.refused, 0);
    assert_int_equal(r.closed, 0); /* closed by the caller: no callback */
    assert_int_equal(r.nread, 9);
    assert_memory_equal(r.read, "FIRSTping", 9);
}

static void
test_wrong_accept_is_refused(void **st)
{
    struct result r;
    run(BAD_ACCEPT, 0, &r);
    assert_int_equal(r.opened, 0);
    assert_int_equal(r.refused, 1);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.error, "Sec-WebSocket-Accept"));
}

static void
test_refusal_with_body(void **st)
{
    struct result r;
    run(REFUSE, 0, &r);
    assert_int_equal(r.refused, 1);
    assert_int_equal(r.status, 403);
    assert_string_equal(r.body, "{\"error\":\"nope\"}\n");
}

static void
test_connect_refused_names_no_key(void **st)
{
    struct result r;
    run(GOOD, 1, &r);
    assert_int_equal(r.refused, 1);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.error, "could not connect to 127.0.0.1:"));
    assert_null(strstr(r.error, "SECRETKEY"));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open_first_bytes_then_echo),
        cmocka_unit_test(test_wrong_accept_is_refused),
        cmocka_unit_test(test_refusal_with_body),
        cmocka_unit_test(test_connect_refused_names_no_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
