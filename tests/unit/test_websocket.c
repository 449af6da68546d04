/* server/websocket.c: the accept value (RFC 6455's own example) and the handshake's checks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "server/websocket.h"

static void
test_accept_is_the_rfc_example(void **state)
{
    char out[29];
    skiff_ws_accept("dGhlIHNhbXBsZSBub25jZQ==", 24, out);
    assert_string_equal(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

/* A request with the given headers (name, value pairs). */
static void
fill(struct skiff_request *r, const char *method, const char *const *h, int n)
{
    memset(r, 0, sizeof *r);
    r->method = method;
    skiff_buf_init(&r->out_hdrs, 4096);
    for (int i = 0; i < n; i++) {
        r->headers[i].name = h[2 * i];
        r->headers[i].name_len = (uint32_t)strlen(h[2 * i]);
        r->headers[i].value = h[2 * i + 1];
        r->headers[i].value_len = (uint32_t)strlen(h[2 * i + 1]);
    }
    r->nheaders = n;
}

static void
test_check(void **state)
{
    struct skiff_request r;
    const char *msg;
    const char *good[] = {"Connection",        "keep-alive, Upgrade",     "Upgrade",
                          "WebSocket",         "Sec-WebSocket-Version",   "13",
                          "Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="};
    fill(&r, "GET", good, 4);
    assert_int_equal(skiff_ws_check(&r, &msg), 0);
    fill(&r, "POST", good, 4);
    assert_int_equal(skiff_ws_check(&r, &msg), 400);
    fill(&r, "GET", good, 1); /* Connection only: no upgrade asked */
    assert_int_equal(skiff_ws_check(&r, &msg), 400);

    const char *v8[] = {"Connection",
                        "Upgrade",
                        "Upgrade",
                        "websocket",
                        "Sec-WebSocket-Version",
                        "8",
                        "Sec-WebSocket-Key",
                        "dGhlIHNhbXBsZSBub25jZQ=="};
    fill(&r, "GET", v8, 4);
    assert_int_equal(skiff_ws_check(&r, &msg), 426);
    assert_non_null(strstr(r.out_hdrs.data, "sec-websocket-version: 13\r\n"));
    skiff_buf_release(&r.out_hdrs);

    const char *badkey[] = {
        "Connection", "Upgrade",           "Upgrade", "websocket", "Sec-WebSocket-Version",
        "13",         "Sec-WebSocket-Key", "short=="};
    fill(&r, "GET", badkey, 4);
    assert_int_equal(skiff_ws_check(&r, &msg), 400);
    assert_non_null(strstr(msg, "Sec-WebSocket-Key"));
    fill(&r, "GET", badkey, 3); /* no key at all */
    assert_int_equal(skiff_ws_check(&r, &msg), 400);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accept_is_the_rfc_example),
        cmocka_unit_test(test_check),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
