#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "relay/proxy.h"

static void
test_parse(void **state)
{
    (void)state;
    struct skiff_proxy p;
    assert_int_equal(skiff_proxy_parse("http://u%40x:p%3Ass@10.0.0.1:3128", &p), 0);
    assert_int_equal(p.kind, SKIFF_PROXY_HTTP);
    assert_string_equal(p.host, "10.0.0.1");
    assert_string_equal(p.port, "3128");
    assert_string_equal(p.user, "u@x");
    assert_string_equal(p.pass, "p:ss");
    assert_int_equal(skiff_proxy_parse("socks5h://[::1]/", &p), 0);
    assert_int_equal(p.kind, SKIFF_PROXY_SOCKS5H);
    assert_string_equal(p.host, "::1");
    assert_string_equal(p.port, "1080");
    assert_string_equal(p.user, "");
    assert_int_equal(skiff_proxy_parse("http://proxy.example", &p), 0);
    assert_string_equal(p.port, "80");
    assert_int_equal(skiff_proxy_parse("socks5://10.0.0.1:1080", &p), 0);
    assert_int_equal(p.kind, SKIFF_PROXY_SOCKS5);
    /* https://: TLS to the proxy (default port 443), then CONNECT as over http://; the
     * scheme in any case, as the config accepts it. */
    assert_int_equal(skiff_proxy_parse("https://10.0.0.1", &p), 0);
    assert_int_equal(p.kind, SKIFF_PROXY_HTTP);
    assert_int_equal(p.tls, 1);
    assert_string_equal(p.port, "443");
    assert_int_equal(skiff_proxy_parse("HTTPS://u:pw@proxy.example:8443", &p), 0);
    assert_int_equal(p.tls, 1);
    assert_string_equal(p.host, "proxy.example");
    assert_string_equal(p.port, "8443");
    assert_string_equal(p.user, "u");
    assert_string_equal(p.pass, "pw");
    assert_int_equal(skiff_proxy_parse("http://10.0.0.1", &p), 0);
    assert_int_equal(p.tls, 0);
    assert_int_equal(skiff_proxy_parse("socks4://10.0.0.1", &p), -1);
    assert_int_equal(skiff_proxy_parse("http://h:80x", &p), -1);
    assert_int_equal(skiff_proxy_parse("http://u:%zz@h", &p), -1);
    assert_int_equal(skiff_proxy_parse("http://:8080", &p), -1);
}

/* Credentials in a URL (an upstream's base_url, a proxy's): decoded, then basic auth. */
static void
test_basic_auth(void **state)
{
    (void)state;
    char u[256], pw[256];
    assert_int_equal(skiff_userinfo_decode("al%40ice:s%3Acret", 17, u, sizeof u, pw, sizeof pw), 0);
    assert_string_equal(u, "al@ice");
    assert_string_equal(pw, "s:cret");
    assert_int_equal(skiff_userinfo_decode("bob", 3, u, sizeof u, pw, sizeof pw), 0);
    assert_string_equal(u, "bob");
    assert_string_equal(pw, "");
    assert_int_equal(skiff_userinfo_decode("b%zz:x", 6, u, sizeof u, pw, sizeof pw), -1);
    struct skiff_buf b;
    skiff_buf_init(&b, 4096);
    assert_int_equal(skiff_basic_auth_header("authorization", "Aladdin", "open sesame", &b), 0);
    assert_int_equal(b.len, strlen("authorization: Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==\r\n"));
    assert_memory_equal(b.data, "authorization: Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==\r\n", b.len);
    skiff_buf_release(&b);
}

/* Runs a whole proxy conversation: `replies` are the proxy's answers, fed `step` bytes at a
 * time; `sent` gets every byte skiff sent the proxy. Returns 1 when the tunnel opened, 0
 * when it was refused (err set). *extra gets the bytes after the tunnel opened. */
static int
converse(const struct skiff_proxy *p, const char *replies, size_t rlen, size_t step,
         struct skiff_buf *sent, char *err, size_t *extra)
{
    struct skiff_proxy_hs hs;
    skiff_buf_init(sent, 64 * 1024);
    assert_int_equal(skiff_proxy_begin(&hs, p, "generativelanguage.googleapis.com", "443", sent),
                     0);
    size_t off = 0;
    *extra = 0;
    while (off < rlen) {
        size_t n = step && rlen - off > step ? step : rlen - off;
        int done = 0;
        ssize_t used = skiff_proxy_feed(&hs, replies + off, n, sent, &done, err, 300);
        if (used < 0)
            return 0;
        off += (size_t)used;
        if (done) {
            *extra = rlen - off;
            return 1;
        }
        assert_int_equal((size_t)used, n);
    }
    return -1; /* the replies ran out */
}

static void
test_connect(void **state)
{
    (void)state;
    struct skiff_proxy p;
    assert_int_equal(skiff_proxy_parse("http://skiff:secret@127.0.0.1:3128", &p), 0);
    const char ok[] = "HTTP/1.0 200 Connection established\r\nProxy-agent: tinyproxy\r\n\r\nTLS";
    for (size_t step = 0; step < sizeof ok; step++) {
        struct skiff_buf sent;
        char err[300] = "";
        size_t extra;
        assert_int_equal(converse(&p, ok, sizeof ok - 1, step, &sent, err, &extra), 1);
        assert_int_equal(extra, 3);
        /* base64("skiff:secret") */
        const char want[] = "CONNECT generativelanguage.googleapis.com:443 HTTP/1.1\r\n"
                            "host: generativelanguage.googleapis.com:443\r\n"
                            "proxy-authorization: Basic c2tpZmY6c2VjcmV0\r\n\r\n";
        assert_int_equal(sent.len, sizeof want - 1);
        assert_memory_equal(sent.data, want, sizeof want - 1);
        skiff_buf_release(&sent);
    }
    const char no[] = "HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n";
    struct skiff_buf sent;
    char err[300] = "";
    size_t extra;
    assert_int_equal(converse(&p, no, sizeof no - 1, 7, &sent, err, &extra), 0);
    assert_non_null(strstr(err, "HTTP 407 Proxy Authentication Required"));
    assert_null(strstr(err, "secret"));
    skiff_buf_release(&sent);
    assert_int_equal(converse(&p, "<html>", 6, 0, &sent, err, &extra), -1);
    skiff_buf_release(&sent);
    assert_int_equal(converse(&p, "SSH-2.0-OpenSSH\r\n\r\n", 19, 0, &sent, err, &extra), 0);
    skiff_buf_release(&sent);
}

static void
test_socks5h(void **state)
{
    (void)state;
    struct skiff_proxy p;
    assert_int_equal(skiff_proxy_parse("socks5h://alice:pw@127.0.0.1:1080", &p), 0);
    /* method 2 (username/password), auth ok, CONNECT ok with an IPv4 bound address. */
    const char r[] = "\x05\x02"
                     "\x01\x00"
                     "\x05\x00\x00\x01\x7f\x00\x00\x01\x04\x38";
    for (size_t step = 0; step < sizeof r; step++) {
        struct skiff_buf sent;
        char err[300] = "";
        size_t extra;
        assert_int_equal(converse(&p, r, sizeof r - 1, step, &sent, err, &extra), 1);
        assert_int_equal(extra, 0);
        const char want[] = "\x05\x02\x00\x02"
                            "\x01\x05"
                            "alice"
                            "\x02"
                            "pw"
                            "\x05\x01\x00\x03\x21"
                            "generativelanguage.googleapis.com"
                            "\x01\xbb";
        assert_int_equal(sent.len, sizeof want - 1);
        assert_memory_equal(sent.data, want, sizeof want - 1);
        skiff_buf_release(&sent);
    }
    /* A bound address given as a name, then bytes from the upstream. */
    struct skiff_proxy q;
    assert_int_equal(skiff_proxy_parse("socks5h://127.0.0.1", &q), 0);
    const char r2[] = "\x05\x00"
                      "\x05\x00\x00\x03\x04host\x00\x50"
                      "xy";
    struct skiff_buf sent;
    char err[300] = "";
    size_t extra;
    assert_int_equal(converse(&q, r2, sizeof r2 - 1, 1, &sent, err, &extra), 1);
    assert_int_equal(extra, 2);
    skiff_buf_release(&sent);
    /* Refusals, in words. */
    const char refused[] = "\x05\x00"
                           "\x05\x05\x00\x01\0\0\0\0\0\0";
    assert_int_equal(converse(&q, refused, sizeof refused - 1, 0, &sent, err, &extra), 0);
    assert_non_null(strstr(err, "connection refused"));
    skiff_buf_release(&sent);
    const char nomethod[] = "\x05\xff";
    assert_int_equal(converse(&q, nomethod, 2, 0, &sent, err, &extra), 0);
    assert_non_null(strstr(err, "user and password"));
    skiff_buf_release(&sent);
    const char badauth[] = "\x05\x02"
                           "\x01\x01";
    assert_int_equal(converse(&p, badauth, 4, 0, &sent, err, &extra), 0);
    assert_non_null(strstr(err, "refused the credentials"));
    assert_null(strstr(err, "pw"));
    skiff_buf_release(&sent);
}

static void
test_socks5(void **state)
{
    (void)state;
    struct skiff_proxy p;
    assert_int_equal(skiff_proxy_parse("socks5://127.0.0.1:1080", &p), 0);
    struct skiff_proxy_hs hs;
    struct skiff_buf out;
    skiff_buf_init(&out, 4096);
    /* socks5:// takes an address only: the caller resolves the name. */
    assert_int_equal(skiff_proxy_begin(&hs, &p, "generativelanguage.googleapis.com", "443", &out),
                     -1);
    skiff_buf_reset(&out);
    assert_int_equal(skiff_proxy_begin(&hs, &p, "142.250.1.2", "443", &out), 0);
    int done = 0;
    char err[300];
    assert_int_equal(skiff_proxy_feed(&hs, "\x05\x00", 2, &out, &done, err, sizeof err), 2);
    const char want[] = "\x05\x01\x00"
                        "\x05\x01\x00\x01\x8e\xfa\x01\x02\x01\xbb";
    assert_int_equal(out.len, sizeof want - 1);
    assert_memory_equal(out.data, want, sizeof want - 1);
    skiff_buf_reset(&out);
    assert_int_equal(skiff_proxy_begin(&hs, &p, "2001:db8::1", "443", &out), 0);
    assert_int_equal(skiff_proxy_feed(&hs, "\x05\x00", 2, &out, &done, err, sizeof err), 2);
    assert_int_equal(out.len, 3 + 4 + 16 + 2);
    assert_int_equal((unsigned char)out.data[3 + 3], 4);
    skiff_buf_release(&out);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),   cmocka_unit_test(test_basic_auth),
        cmocka_unit_test(test_connect), cmocka_unit_test(test_socks5h),
        cmocka_unit_test(test_socks5),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
