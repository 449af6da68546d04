#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/jsoncheck.h"

static int
check(const char *s)
{
    size_t off;
    const char *why;
    return skiff_json_check(s, strlen(s), &off, &why);
}

static void
test_valid(void **state)
{
    const char *ok[] = {"{}",
                        "[]",
                        " {\"a\": [1, -2.5e+3, true, false, null, \"x\\n\\u00e9\"]} ",
                        "\"s\"",
                        "0",
                        "{\"contents\":[{\"parts\":[{\"text\":\"hi\"}]}]}",
                        "[[],[{}],{\"a\":{}}]"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        assert_int_equal(check(ok[i]), 0);
}

static void
test_invalid_with_offset(void **state)
{
    const char *bad[] = {"",           "{",     "{\"a\"}", "{\"a\":}", "[1,]",
                         "{\"a\":1,}", "01",    "1.",      "tru",      "\"abc",
                         "\"\\x\"",    "{} {}", "{'a':1}", "[1 2]",    "\"a\x01\""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(check(bad[i]), -1);
    size_t off;
    const char *why;
    const char *s = "{\"a\": 1,, }";
    assert_int_equal(skiff_json_check(s, strlen(s), &off, &why), -1);
    assert_int_equal(off, 8);
    assert_non_null(why);
}

static void
test_deep_nesting_is_refused_not_crashed(void **state)
{
    size_t n = 100000;
    char *s = malloc(2 * n + 1);
    memset(s, '[', n);
    memset(s + n, ']', n);
    s[2 * n] = '\0';
    size_t off;
    const char *why;
    assert_int_equal(skiff_json_check(s, 2 * n, &off, &why), -1);
    assert_string_equal(why, "nesting too deep");
    /* 512 levels are fine. */
    assert_int_equal(skiff_json_check(s + n - 512, 1024, &off, &why), 0);
    free(s);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid),
        cmocka_unit_test(test_invalid_with_offset),
        cmocka_unit_test(test_deep_nesting_is_refused_not_crashed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
