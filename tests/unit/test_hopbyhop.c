#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "base/hopbyhop.h"
#include "relay/h1resp.h"

static int
hop(const char *name)
{
    return skiff_hop_by_hop(name, strlen(name));
}

static void
test_the_list(void **state)
{
    (void)state;
    const char *yes[] = {"connection", "Keep-Alive",        "proxy-connection", "TE",
                         "trailer",    "Transfer-Encoding", "upgrade"};
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++)
        assert_true(hop(yes[i]));
    const char *no[] = {"content-type", "content-length", "t", "tee", "connectio", "", "alt-svc"};
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
        assert_false(hop(no[i]));
    /* The length is the name's: a longer buffer is not read past n. */
    assert_true(skiff_hop_by_hop("te: trailers", 2));
}

/* The upstream response drops the same fields, and what its framing consumed. */
static void
test_response_side_builds_on_it(void **state)
{
    (void)state;
    assert_true(skiff_h1_hop_by_hop("upgrade", 7));
    assert_true(skiff_h1_hop_by_hop("Content-Length", 14));
    assert_true(skiff_h1_hop_by_hop("alt-svc", 7));
    assert_true(skiff_h1_hop_by_hop("proxy-authenticate", 18));
    assert_false(skiff_h1_hop_by_hop("content-type", 12));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_the_list),
        cmocka_unit_test(test_response_side_builds_on_it),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
