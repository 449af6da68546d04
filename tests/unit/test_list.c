/* The comma-list reader (base/list.h) behind GEMINI_API_KEYS and SKIFF_TOKENS. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "base/list.h"

static void
test_items_trimmed_and_empty_kept(void **state)
{
    (void)state;
    const char *cur = " a ,,\tbb\r\n, c", *item;
    size_t len;
    const char *want[] = {"a", "", "bb", "c"};
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(skiff_list_next(&cur, &item, &len), 1);
        assert_int_equal(len, strlen(want[i]));
        assert_memory_equal(item, want[i], len);
    }
    assert_int_equal(skiff_list_next(&cur, &item, &len), 0);
    assert_int_equal(skiff_list_count(" a ,,\tbb\r\n, c"), 3);
    assert_int_equal(skiff_list_count(" , ,"), 0);
    assert_int_equal(skiff_list_count(""), 0);
    assert_int_equal(skiff_list_count(NULL), 0);
    assert_int_equal(skiff_list_count("x,"), 1);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_items_trimmed_and_empty_kept),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
