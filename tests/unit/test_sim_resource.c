#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "sim/resource.h"

static void
test_time_round_trip(void **state)
{
    (void)state;
    char s[40];
    skiff_sim_res_time(1795425720798LL, s, sizeof s);
    assert_string_equal(s, "2026-11-23T09:22:00.798000Z");
    assert_true(skiff_sim_res_parse_time(s) == 1795425720798LL);
    assert_true(skiff_sim_res_parse_time("2014-10-02T15:01:23Z") == 1412262083000LL);
    /* An offset is accepted and normalised, and extra fraction digits are dropped. */
    assert_true(skiff_sim_res_parse_time("2014-10-02T15:01:23.045123456+05:30") ==
                1412262083045LL - 5 * 3600000LL - 30 * 60000LL);
    assert_true(skiff_sim_res_parse_time("2014-10-02 15:01:23Z") == -1);
    assert_true(skiff_sim_res_parse_time("2014-13-02T15:01:23Z") == -1);
    assert_true(skiff_sim_res_parse_time("2014-10-02T15:01:23") == -1);
    assert_true(skiff_sim_res_parse_time("2014-10-02T15:01:23.Z") == -1);
    assert_true(skiff_sim_res_parse_time("") == -1);
}

static void
test_duration(void **state)
{
    (void)state;
    assert_true(skiff_sim_res_parse_duration("300s") == 300000);
    assert_true(skiff_sim_res_parse_duration("1.5s") == 1500);
    assert_true(skiff_sim_res_parse_duration("0s") == 0);
    assert_true(skiff_sim_res_parse_duration("300") == -1);
    assert_true(skiff_sim_res_parse_duration("-5s") == -1);
    assert_true(skiff_sim_res_parse_duration("5m") == -1);
    assert_true(skiff_sim_res_parse_duration(NULL) == -1);
}

static void
test_ids_and_pages(void **state)
{
    (void)state;
    char a[13], b[13], c[13];
    skiff_sim_res_id(1, a, 12);
    skiff_sim_res_id(1, b, 12);
    skiff_sim_res_id(2, c, 12);
    assert_string_equal(a, b);
    assert_string_not_equal(a, c);
    assert_int_equal(strlen(a), 12);
    assert_int_equal(strspn(a, "abcdefghijklmnopqrstuvwxyz0123456789"), 12);
    assert_int_equal(skiff_sim_res_page_size("", 10, 100), 10);
    assert_int_equal(skiff_sim_res_page_size("0", 10, 100), 10);
    assert_int_equal(skiff_sim_res_page_size("7", 10, 100), 7);
    assert_int_equal(skiff_sim_res_page_size("1000", 10, 100), 100);
    assert_int_equal(skiff_sim_res_page_size("-1", 10, 100), -1);
    assert_int_equal(skiff_sim_res_page_size("ten", 10, 100), -1);
}

static void
test_denied_text(void **state)
{
    (void)state;
    struct skiff_sim_res_reply r = {0};
    skiff_sim_res_denied(&r, "File", "abc123");
    assert_int_equal(r.status, 403);
    assert_string_equal(r.gstatus, "PERMISSION_DENIED");
    assert_string_equal(
        r.message, "You do not have permission to access the File abc123 or it may not exist.");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_time_round_trip),
        cmocka_unit_test(test_duration),
        cmocka_unit_test(test_ids_and_pages),
        cmocka_unit_test(test_denied_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
