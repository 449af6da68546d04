#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "base/editdist.h"

static size_t
d(const char *a, const char *b)
{
    return skiff_edit_distance(a, strlen(a), b, strlen(b));
}

static void
test_edits(void **state)
{
    (void)state;
    assert_int_equal(d("retry", "retry"), 0);
    assert_int_equal(d("retyr", "retry"), 1); /* a swap of neighbours is one edit */
    assert_int_equal(d("abc", ""), 3);
    assert_int_equal(d("", "abc"), 3);
    assert_int_equal(d("kitten", "sitting"), 3);
    assert_int_equal(d("Gemini-2.5-Pro", "gemini-2.5-pro"), 0); /* case does not count */
    assert_int_equal(d("gemini-2.5-flsh", "gemini-2.5-flash"), 1);
    assert_int_equal(d("ca", "abc"), 3); /* OSA, not Damerau: no edit of a swapped pair */
}

static void
test_long_strings_are_never_close(void **state)
{
    (void)state;
    char a[200];
    memset(a, 'x', sizeof a);
    assert_int_equal(skiff_edit_distance(a, 127, a, 127), 0);
    assert_true(skiff_edit_distance(a, 128, a, 128) >= SIZE_MAX / 2);
    assert_true(skiff_edit_distance(a, 200, "x", 1) >= SIZE_MAX / 2);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_edits),
        cmocka_unit_test(test_long_strings_are_never_close),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
