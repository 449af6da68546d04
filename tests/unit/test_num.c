#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "base/num.h"

static void
expect_fmt(uint64_t v, unsigned base, const char *want)
{
    char out[21];
    size_t n = skiff_fmt_uint(out, v, base);
    out[n] = '\0';
    assert_string_equal(out, want);
}

static void
test_fmt_uint(void **state)
{
    expect_fmt(0, 10, "0");
    expect_fmt(7, 10, "7");
    expect_fmt(1234567890, 10, "1234567890");
    expect_fmt(UINT64_MAX, 10, "18446744073709551615"); /* all 20 digits */
    expect_fmt(0, 16, "0");
    expect_fmt(0xabcdef, 16, "abcdef");
    expect_fmt(UINT64_MAX, 16, "ffffffffffffffff");
}

static void
test_hexdigit(void **state)
{
    const char *digits = "0123456789abcdef";
    for (int i = 0; i < 16; i++) {
        assert_int_equal(skiff_hexdigit(digits[i]), i);
        if (i >= 10)
            assert_int_equal(skiff_hexdigit((char)(digits[i] - 'a' + 'A')), i);
    }
    const char *bad = "gG/:@`xz \r\n";
    for (const char *p = bad; *p; p++)
        assert_int_equal(skiff_hexdigit(*p), -1);
    assert_int_equal(skiff_hexdigit('\0'), -1);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fmt_uint),
        cmocka_unit_test(test_hexdigit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
