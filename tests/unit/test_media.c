/* doors/media.c against a real HTTP server on a real socket, on the same libuv loop as
 * skiff's upstream client: what a door gets for a media URL, and every refusal. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <cmocka.h>
#include <uv.h>

#include "base/err.h"
#include "doors/media.h"
#include "relay/upstream.h"

static const unsigned char png[] = "\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\1\0\0\0\1";
#define PNG_LEN (sizeof png - 1)

/* ---- a tiny HTTP server: one answer per path ------------------------------------------- */

struct sconn {
    uv_tcp_t tcp;
    char buf[4096];
    size_t len;
    int answered;
};

static uv_tcp_t server;
static int port;
static int requests;

static void
sclosed(uv_handle_t *h)
{
    free(h->data);
}

static void
written(uv_write_t *w, int status)
{
    free(w->data);
    free(w);
}

static void
send_text(struct sconn *c, const void *p, size_t n)
{
    uv_write_t *w = malloc(sizeof *w);
    char *copy = malloc(n);
    memcpy(copy, p, n);
    w->data = copy;
    uv_buf_t b = uv_buf_init(copy, (unsigned)n);
    uv_write(w, (uv_stream_t *)&c->tcp, &b, 1, written);
}

static void
answer(struct sconn *c, const char *path)
{
    char head[512];
    requests++;
    if (!strcmp(path, "/img.png") || !strcmp(path, "/noct") || !strcmp(path, "/typed")) {
        int n = snprintf(head, sizeof head, "HTTP/1.1 200 OK\r\n%scontent-length: %zu\r\n\r\n",
                         !strcmp(path, "/img.png") ? "content-type: image/png\r\n"
                         : !strcmp(path, "/typed") ? "content-type: Image/JPEG; q=1\r\n"
                                                   : "",
                         PNG_LEN);
        send_text(c, head, (size_t)n);
        send_text(c, png, PNG_LEN);
    } else if (!strcmp(path, "/text")) {
        const char *r = "HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello";
        send_text(c, r, strlen(r));
    } else if (!strcmp(path, "/big")) {
        const char *r =
            "HTTP/1.1 200 OK\r\ncontent-type: image/png\r\ncontent-length: 5000\r\n\r\n";
        send_text(c, r, strlen(r));
        static char zeros[5000];
        send_text(c, zeros, sizeof zeros);
    } else if (!strcmp(path, "/bigchunked")) {
        const char *r = "HTTP/1.1 200 OK\r\ncontent-type: image/png\r\ntransfer-encoding: "
                        "chunked\r\n\r\n";
        send_text(c, r, strlen(r));
        static char chunk[1200 + 16];
        memcpy(chunk, "4b0\r\n", 5);
        memset(chunk + 5, 'x', 1200);
        memcpy(chunk + 1205, "\r\n", 2);
        for (int i = 0; i < 4; i++)
            send_text(c, chunk, 1207);
        send_text(c, "0\r\n\r\n", 5);
    } else if (!strcmp(path, "/redir")) {
        const char *r = "HTTP/1.1 302 Found\r\nlocation: /img.png\r\ncontent-length: 0\r\n\r\n";
        send_text(c, r, strlen(r));
    } else if (!strcmp(path, "/redir-rel")) {
        const char *r = "HTTP/1.1 301 Moved\r\nlocation: img.png\r\ncontent-length: 0\r\n\r\n";
        send_text(c, r, strlen(r));
    } else if (!strcmp(path, "/loop")) {
        const char *r = "HTTP/1.1 307 Again\r\nlocation: /loop\r\ncontent-length: 0\r\n\r\n";
        send_text(c, r, strlen(r));
    } else if (!strcmp(path, "/slow")) {
        return; /* never answers */
    } else {
        const char *r = "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n";
        send_text(c, r, strlen(r));
    }
}

static void
salloc(uv_handle_t *h, size_t sz, uv_buf_t *b)
{
    struct sconn *c = h->data;
    *b = uv_buf_init(c->buf + c->len, (unsigned)(sizeof c->buf - c->len - 1));
}

static void
sread(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    struct sconn *c = s->data;
    if (n < 0) {
        uv_close((uv_handle_t *)s, sclosed);
        return;
    }
    c->len += (size_t)n;
    c->buf[c->len] = '\0';
    char *end = strstr(c->buf, "\r\n\r\n");
    if (!end)
        return;
    char path[256] = "";
    sscanf(c->buf, "GET %255s", path);
    memmove(c->buf, end + 4, c->len - (size_t)(end + 4 - c->buf) + 1);
    c->len -= (size_t)(end + 4 - c->buf);
    answer(c, path);
}

static void
on_conn(uv_stream_t *srv, int status)
{
    struct sconn *c = calloc(1, sizeof *c);
    uv_tcp_init(srv->loop, &c->tcp);
    c->tcp.data = c;
    uv_accept(srv, (uv_stream_t *)&c->tcp);
    uv_read_start((uv_stream_t *)&c->tcp, salloc, sread);
}

/* ---- fetching ------------------------------------------------------------------------------ */

struct outcome {
    int done, status;
    char error[1000], mime[64];
    char *b64;
    size_t bytes;
};

static void
got(void *data, const struct skiff_media_result *r)
{
    struct outcome *o = data;
    o->done++;
    o->status = r->status;
    if (r->status) {
        snprintf(o->error, sizeof o->error, "%s", r->error);
    } else {
        snprintf(o->mime, sizeof o->mime, "%s", r->mime);
        o->b64 = strndup(r->b64, r->b64_len);
        o->bytes = r->bytes;
    }
}

static uv_loop_t loop;
static struct skiff_upstream *up;

static int
setup(void **state)
{
    uv_loop_init(&loop);
    uv_tcp_init(&loop, &server);
    struct sockaddr_in a;
    uv_ip4_addr("127.0.0.1", 0, &a);
    uv_tcp_bind(&server, (const struct sockaddr *)&a, 0);
    uv_listen((uv_stream_t *)&server, 16, on_conn);
    struct sockaddr_in bound;
    int len = sizeof bound;
    uv_tcp_getsockname(&server, (struct sockaddr *)&bound, &len);
    port = ntohs(bound.sin_port);
    up = skiff_upstream_new(&loop);
    return up ? 0 : -1;
}

static void
close_walk(uv_handle_t *h, void *arg)
{
    if (!uv_is_closing(h))
        uv_close(h, h == (uv_handle_t *)&server ? NULL : sclosed);
}

static int
teardown(void **state)
{
    skiff_upstream_close(up);
    uv_close((uv_handle_t *)&server, NULL);
    uv_run(&loop, UV_RUN_NOWAIT);
    uv_walk(&loop, close_walk, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    return uv_loop_close(&loop) == 0 ? 0 : -1;
}

static struct skiff_media_rules open_rules = {
    .fetch_urls = 1, .max_bytes = 1000, .timeout_ms = 2000, .allow_private = 1};

static void
fetch(const char *url_or_path, const struct skiff_media_rules *rules, struct outcome *o)
{
    char url[512];
    if (url_or_path[0] == '/')
        snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, url_or_path);
    else
        snprintf(url, sizeof url, "%s", url_or_path);
    memset(o, 0, sizeof *o);
    struct skiff_media *m = skiff_media_fetch(&loop, up, url, rules, got, o);
    assert_non_null(m);
    assert_int_equal(o->done, 0); /* never from inside the start */
    while (!o->done)
        uv_run(&loop, UV_RUN_ONCE);
    assert_int_equal(o->done, 1);
}

/* The fetched media comes back with its type and base64 bytes, however the server types it. */
static void
test_an_image_url_is_fetched_with_its_type(void **state)
{
    struct outcome o;
    fetch("/img.png", &open_rules, &o);
    assert_int_equal(o.status, 0);
    assert_string_equal(o.mime, "image/png");
    assert_int_equal(o.bytes, PNG_LEN);
    assert_string_equal(o.b64, "iVBORw0KGgoAAAANSUhEUgAAAAEAAAAB");
    free(o.b64);
    fetch("/noct", &open_rules, &o); /* no Content-Type: the bytes say PNG */
    assert_int_equal(o.status, 0);
    assert_string_equal(o.mime, "image/png");
    free(o.b64);
    fetch("/typed", &open_rules, &o); /* the server's type wins, lower case, no parameters */
    assert_string_equal(o.mime, "image/jpeg");
    free(o.b64);
    fetch("/redir", &open_rules, &o);
    assert_int_equal(o.status, 0);
    assert_string_equal(o.mime, "image/png");
    free(o.b64);
    fetch("/redir-rel", &open_rules, &o);
    assert_int_equal(o.status, 0);
    free(o.b64);
}

/* Every refusal is a 400 whose message says what to change. */
static void
test_refusals_say_what_to_change(void **state)
{
    struct outcome o;
    fetch("/big", &open_rules, &o); /* Content-Length past max_bytes */
    assert_int_equal(o.status, 400);
    assert_non_null(strstr(o.error, "larger than media.max_bytes (1000 bytes)"));
    fetch("/bigchunked", &open_rules, &o); /* no length: counted as it comes */
    assert_int_equal(o.status, 400);
    assert_non_null(strstr(o.error, "media.max_bytes"));
    fetch("/missing", &open_rules, &o);
    assert_int_equal(o.status, 400);
    assert_non_null(strstr(o.error, "answered HTTP 404"));
    fetch("/loop", &open_rules, &o);
    assert_int_equal(o.status, 400);
    assert_non_null(strstr(o.error, "redirected more than 5 times"));
    fetch("/text", &open_rules, &o);
    assert_int_equal(o.status, 400);
    assert_non_null(strstr(o.error, "no recognizable type"));
    struct skiff_media_rules quick = open_rules;
    quick.timeout_ms = 200;
    fetch("/slow", &quick, &o);
    assert_int_equal(o.status, 400);
    assert_non_null(strstr(o.error, "media.timeout_ms (200 ms)"));
    struct skiff_media_rules off = open_rules;
    off.fetch_urls = 0;
    int before = requests;
    fetch("/img.png", &off, &o);
    assert_int_equal(o.status, 400);
    assert_non_null(strstr(o.error, "media.fetch_urls: false"));
    assert_int_equal(requests, before); /* nothing was fetched */
    fetch("ftp://example.com/a.png", &open_rules, &o);
    assert_int_equal(o.status, 400);
    fetch("http://user:pw@127.0.0.1/a.png", &open_rules, &o);
    assert_int_equal(o.status, 400);
    assert_null(strstr(o.error, "pw"));
}

/* Loopback is refused on the resolved address: as an IP, as a name, and after a redirect
 * from... itself (the first hop is refused before any byte is sent). */
static void
test_private_addresses_are_refused_unless_allowed(void **state)
{
    struct skiff_media_rules rules = open_rules;
    rules.allow_private = 0;
    struct outcome o;
    int before = requests;
    fetch("/img.png", &rules, &o);
    assert_int_equal(o.status, 400);
    assert_non_null(strstr(o.error, "127.0.0.1, loopback"));
    assert_non_null(strstr(o.error, "media.allow_private: true"));
    char url[200];
    snprintf(url, sizeof url, "http://localhost:%d/img.png", port);
    fetch(url, &rules, &o);
    assert_int_equal(o.status, 400);
    assert_non_null(strstr(o.error, "loopback"));
    assert_int_equal(requests, before); /* the server never saw a request */
}

static void
test_cancel_calls_nothing_back(void **state)
{
    struct outcome o = {0};
    char url[200];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/slow", port);
    struct skiff_media *m = skiff_media_fetch(&loop, up, url, &open_rules, got, &o);
    for (int i = 0; i < 5; i++)
        uv_run(&loop, UV_RUN_NOWAIT);
    skiff_media_cancel(m);
    uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(o.done, 0);
}

static void
test_data_uris_decode_locally(void **state)
{
    char *mime, *b64;
    size_t bytes;
    const char *err;
    assert_int_equal(
        skiff_media_data_uri("data:Image/PNG;base64,iVBORw0KGgo=", 100, &mime, &b64, &bytes, &err),
        0);
    assert_string_equal(mime, "image/png");
    assert_string_equal(b64, "iVBORw0KGgo=");
    assert_int_equal(bytes, 8);
    free(mime);
    free(b64);
    assert_int_equal(skiff_media_data_uri("data:,hi%20there", 100, &mime, &b64, &bytes, &err), 0);
    assert_string_equal(mime, "text/plain");
    assert_string_equal(b64, "aGkgdGhlcmU=");
    free(mime);
    free(b64);
    assert_int_equal(
        skiff_media_data_uri("data:image/png;base64,iV*RB", 100, &mime, &b64, &bytes, &err),
        SKIFF_EINVAL);
    assert_non_null(strstr(err, "base64"));
    assert_int_equal(skiff_media_data_uri("data:image/png;base64", 100, &mime, &b64, &bytes, &err),
                     SKIFF_EINVAL);
    assert_int_equal(
        skiff_media_data_uri("data:image/png;base64,AAAAAAAA", 5, &mime, &b64, &bytes, &err),
        SKIFF_ETOOBIG);
    /* Through the fetch as well, from the loop. */
    struct outcome o;
    fetch("data:image/gif;base64,R0lGODlh", &open_rules, &o);
    assert_int_equal(o.status, 0);
    assert_string_equal(o.mime, "image/gif");
    assert_string_equal(o.b64, "R0lGODlh");
    free(o.b64);
}

static const char *
kind(const char *ip)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    if (strchr(ip, ':')) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        assert_int_equal(inet_pton(AF_INET6, ip, &a->sin6_addr), 1);
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        assert_int_equal(inet_pton(AF_INET, ip, &a->sin_addr), 1);
    }
    const char *k = skiff_media_addr_kind((struct sockaddr *)&ss);
    return k ? k : "public";
}

static void
test_address_kinds(void **state)
{
    assert_string_equal(kind("8.8.8.8"), "public");
    assert_string_equal(kind("142.250.74.46"), "public");
    assert_string_equal(kind("127.0.0.1"), "loopback");
    assert_string_equal(kind("127.255.0.9"), "loopback");
    assert_string_equal(kind("0.0.0.0"), "unspecified");
    assert_string_equal(kind("10.1.2.3"), "private");
    assert_string_equal(kind("172.16.0.1"), "private");
    assert_string_equal(kind("172.31.255.255"), "private");
    assert_string_equal(kind("172.32.0.1"), "public");
    assert_string_equal(kind("192.168.1.1"), "private");
    assert_string_equal(kind("169.254.169.254"), "link-local"); /* cloud metadata */
    assert_string_equal(kind("100.64.0.1"), "shared (CGNAT)");
    assert_string_equal(kind("224.0.0.1"), "multicast");
    assert_string_equal(kind("255.255.255.255"), "reserved");
    assert_string_equal(kind("::"), "unspecified");
    assert_string_equal(kind("::1"), "loopback");
    assert_string_equal(kind("::ffff:127.0.0.1"), "loopback");
    assert_string_equal(kind("::ffff:10.0.0.1"), "private");
    assert_string_equal(kind("64:ff9b::a9fe:a9fe"), "link-local");
    assert_string_equal(kind("fd00::1"), "private");
    assert_string_equal(kind("fe80::1"), "link-local");
    assert_string_equal(kind("ff02::1"), "multicast");
    assert_string_equal(kind("2a00:1450:4001:82a::200e"), "public");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_an_image_url_is_fetched_with_its_type),
        cmocka_unit_test(test_refusals_say_what_to_change),
        cmocka_unit_test(test_private_addresses_are_refused_unless_allowed),
        cmocka_unit_test(test_cancel_calls_nothing_back),
        cmocka_unit_test(test_data_uris_decode_locally),
        cmocka_unit_test(test_address_kinds),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
