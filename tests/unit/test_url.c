/* base/url.c: the one splitter of an upstream or proxy URL into its parts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "base/url.h"

static void
expect(const char *url, int tls, const char *ui, const char *authority, const char *host,
       const char *port, const char *target)
{
    struct skiff_url_parts p;
    if (skiff_url_split(url, &p) != 0)
        fail_msg("refused: %s", url);
    assert_int_equal(p.tls, tls);
    assert_int_equal(p.userinfo_len, strlen(ui));
    assert_memory_equal(p.userinfo, ui, strlen(ui));
    assert_int_equal(p.authority_len, strlen(authority));
    assert_memory_equal(p.authority, authority, strlen(authority));
    assert_int_equal(p.host_len, strlen(host));
    assert_memory_equal(p.host, host, strlen(host));
    assert_int_equal(p.port_len, strlen(port));
    assert_memory_equal(p.port, port, strlen(port));
    assert_string_equal(p.target, target);
}

static void
test_split(void **state)
{
    (void)state;
    expect("https://generativelanguage.googleapis.com", 1, "", "generativelanguage.googleapis.com",
           "generativelanguage.googleapis.com", "", "");
    expect("http://127.0.0.1:8080/v1beta/models?x=1", 0, "", "127.0.0.1:8080", "127.0.0.1", "8080",
           "/v1beta/models?x=1");
    expect("HTTP://[::1]:9/ws", 0, "", "[::1]:9", "::1", "9", "/ws");
    expect("https://[2001:db8::1]?k", 1, "", "[2001:db8::1]", "2001:db8::1", "", "?k");
    /* Credentials end at the authority's last '@' (a raw '@' in a password stays in it). */
    expect("http://bob:p@ss@proxy:3128", 0, "bob:p@ss", "proxy:3128", "proxy", "3128", "");
    expect("http://@host/", 0, "", "host", "host", "", "/");
    expect("http://host/a@b", 0, "", "host", "host", "", "/a@b");
}

static void
test_refused(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "ftp://host/",     "host:80",      "http://",        "http://:80/",   "http://host:/",
        "http://host:8a/", "http://[::1/", "http://[::1]x/", "http://user@/", "socks5://h:1080",
    };
    struct skiff_url_parts p;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (skiff_url_split(bad[i], &p) != -1)
            fail_msg("accepted: %s", bad[i]);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_split),
        cmocka_unit_test(test_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
