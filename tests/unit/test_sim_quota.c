#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "gemini/pacific.h"
#include "sim/quota.h"

/* Instants checked against the tz database (python zoneinfo, America/Los_Angeles). */
#define T_0308_0959_59 1772963999000LL /* 01:59:59 PST, one second before DST starts */
#define T_0308_1000 1772964000000LL    /* 03:00 PDT */
#define T_0309_0700 1773039600000LL    /* midnight PDT after the spring switch */
#define T_1101_0859_59 1793523599000LL /* 01:59:59 PDT, one second before DST ends */
#define T_1101_0900 1793523600000LL    /* 01:00 PST (the second time) */
#define T_1102_0800 1793606400000LL    /* midnight PST after the autumn switch */

static void
test_pacific_offset_spring(void **state)
{
    (void)state;
    assert_int_equal(skiff_pacific_offset(T_0308_0959_59 / 1000), -8 * 3600);
    assert_int_equal(skiff_pacific_offset(T_0308_1000 / 1000), -7 * 3600);
}

static void
test_pacific_offset_autumn(void **state)
{
    (void)state;
    assert_int_equal(skiff_pacific_offset(T_1101_0859_59 / 1000), -7 * 3600);
    assert_int_equal(skiff_pacific_offset(T_1101_0900 / 1000), -8 * 3600);
    /* Mid-winter and mid-summer of another year. */
    assert_int_equal(skiff_pacific_offset(1704067200), -8 * 3600); /* 2024-01-01 */
    assert_int_equal(skiff_pacific_offset(1719792000), -7 * 3600); /* 2024-07-01 */
}

static void
test_next_midnight_across_switches(void **state)
{
    (void)state;
    /* Before midnight on the eve of the spring switch: midnight PST, 08:00 UTC. */
    assert_int_equal(skiff_pacific_next_midnight_ms(1772955000000LL), 1772956800000LL);
    /* On the 23-hour day, both before and after 02:00: the next midnight is in PDT. */
    assert_int_equal(skiff_pacific_next_midnight_ms(T_0308_0959_59), T_0309_0700);
    assert_int_equal(skiff_pacific_next_midnight_ms(T_0308_1000), T_0309_0700);
    /* On the 25-hour day: the next midnight is in PST, 08:00 UTC. */
    assert_int_equal(skiff_pacific_next_midnight_ms(1793518200000LL), T_1102_0800);
    assert_int_equal(skiff_pacific_next_midnight_ms(T_1101_0859_59), T_1102_0800);
    assert_int_equal(skiff_pacific_next_midnight_ms(T_1101_0900), T_1102_0800);
    /* Half a second before a summer midnight, and exactly at it. */
    assert_int_equal(skiff_pacific_next_midnight_ms(1784098799500LL), 1784098800000LL);
    assert_int_equal(skiff_pacific_next_midnight_ms(1784098800000LL), 1784185200000LL);
}

static void
test_pacific_day_changes_at_local_midnight(void **state)
{
    (void)state;
    assert_int_equal(skiff_pacific_day(1784098799999LL) + 1,
                     skiff_pacific_day(1784098800000LL));
    assert_int_equal(skiff_pacific_day(T_1101_0859_59), skiff_pacific_day(T_1101_0900));
}

static const struct skiff_sim_limits free_flash = {10, 250000, 250};

static void
test_rpm_window_and_retry(void **state)
{
    (void)state;
    struct skiff_sim_quota *q = skiff_sim_quota_new(100);
    struct skiff_sim_verdict v;
    int64_t t0 = 1784000000000LL;
    for (int i = 0; i < 10; i++) {
        skiff_sim_quota_check(q, "AIzaA", "gemini-2.5-flash", &free_flash, 10, t0 + i * 100, &v);
        assert_int_equal(v.n, 0);
        assert_int_equal(skiff_sim_quota_spend(q, "AIzaA", "gemini-2.5-flash", 10, t0 + i * 100), 0);
    }
    /* The 11th request 12.345 s after the window opened waits for the rest of it. */
    skiff_sim_quota_check(q, "AIzaA", "gemini-2.5-flash", &free_flash, 10, t0 + 12345, &v);
    assert_int_equal(v.n, 1);
    assert_int_equal(v.v[0].kind, SKIFF_SIM_QUOTA_RPM);
    assert_int_equal(v.v[0].limit, 10);
    assert_int_equal(v.v[0].retry_ms, 60000 - 12345);
    /* Another model and another key are counted apart. */
    skiff_sim_quota_check(q, "AIzaA", "gemini-2.5-pro", &free_flash, 10, t0 + 12345, &v);
    assert_int_equal(v.n, 0);
    skiff_sim_quota_check(q, "AIzaB", "gemini-2.5-flash", &free_flash, 10, t0 + 12345, &v);
    assert_int_equal(v.n, 0);
    /* Once the window ends the key may go again. */
    skiff_sim_quota_check(q, "AIzaA", "gemini-2.5-flash", &free_flash, 10, t0 + 60000, &v);
    assert_int_equal(v.n, 0);
    skiff_sim_quota_free(q);
}

static void
test_tpm_and_rpd(void **state)
{
    (void)state;
    struct skiff_sim_limits lim = {SKIFF_SIM_UNLIMITED, 1000, 3};
    struct skiff_sim_quota *q = skiff_sim_quota_new(100);
    struct skiff_sim_verdict v;
    int64_t t0 = T_0308_1000;
    skiff_sim_quota_spend(q, "k", "m", 900, t0);
    skiff_sim_quota_check(q, "k", "m", &lim, 101, t0 + 1000, &v);
    assert_int_equal(v.n, 1);
    assert_int_equal(v.v[0].kind, SKIFF_SIM_QUOTA_TPM);
    assert_int_equal(v.v[0].retry_ms, 59000);
    skiff_sim_quota_check(q, "k", "m", &lim, 100, t0 + 1000, &v);
    assert_int_equal(v.n, 0);

    skiff_sim_quota_spend(q, "k", "m", 1, t0 + 61000);
    skiff_sim_quota_spend(q, "k", "m", 1, t0 + 122000);
    skiff_sim_quota_check(q, "k", "m", &lim, 1, t0 + 183000, &v);
    assert_int_equal(v.n, 1);
    assert_int_equal(v.v[0].kind, SKIFF_SIM_QUOTA_RPD);
    assert_int_equal(v.v[0].retry_ms, T_0309_0700 - (t0 + 183000));
    /* The daily count starts again at Pacific midnight. */
    skiff_sim_quota_check(q, "k", "m", &lim, 1, T_0309_0700, &v);
    assert_int_equal(v.n, 0);
    skiff_sim_quota_free(q);
}

static void
test_zero_quota_refuses_everything(void **state)
{
    (void)state;
    struct skiff_sim_limits lim = {SKIFF_SIM_UNLIMITED, SKIFF_SIM_UNLIMITED, 0};
    struct skiff_sim_quota *q = skiff_sim_quota_new(100);
    struct skiff_sim_verdict v;
    skiff_sim_quota_check(q, "k", "gemini-2.5-pro", &lim, 1, T_0308_1000, &v);
    assert_int_equal(v.n, 1);
    assert_int_equal(v.v[0].limit, 0);
    assert_int_equal(v.v[0].kind, SKIFF_SIM_QUOTA_RPD);
    skiff_sim_quota_free(q);
}

static void
test_full_table_forgets_idle_entries(void **state)
{
    (void)state;
    struct skiff_sim_limits lim = {1, SKIFF_SIM_UNLIMITED, SKIFF_SIM_UNLIMITED};
    struct skiff_sim_quota *q = skiff_sim_quota_new(2);
    struct skiff_sim_verdict v;
    int64_t t0 = 1784000000000LL;
    skiff_sim_quota_spend(q, "a", "m", 1, t0);
    skiff_sim_quota_spend(q, "b", "m", 1, t0);
    /* Full of live entries: "c" is not counted rather than refused. */
    skiff_sim_quota_spend(q, "c", "m", 1, t0);
    skiff_sim_quota_check(q, "c", "m", &lim, 1, t0, &v);
    assert_int_equal(v.n, 0);
    skiff_sim_quota_check(q, "a", "m", &lim, 1, t0, &v);
    assert_int_equal(v.n, 1);
    skiff_sim_quota_clear(q);
    skiff_sim_quota_check(q, "a", "m", &lim, 1, t0, &v);
    assert_int_equal(v.n, 0);
    skiff_sim_quota_free(q);
}

static void
test_429_body_shape(void **state)
{
    (void)state;
    struct skiff_sim_verdict v = {1, {{SKIFF_SIM_QUOTA_RPM, 15, 38292}}};
    char *body = skiff_sim_quota_body(&v, "gemini-3.5-flash-lite", 0);
    assert_non_null(body);
    json_error_t e;
    json_t *j = json_loads(body, 0, &e);
    assert_non_null(j);
    json_t *err = json_object_get(j, "error");
    assert_int_equal(json_integer_value(json_object_get(err, "code")), 429);
    assert_string_equal(json_string_value(json_object_get(err, "status")), "RESOURCE_EXHAUSTED");
    const char *msg = json_string_value(json_object_get(err, "message"));
    assert_non_null(strstr(msg, "To monitor your current usage, head to: "
                                "https://ai.dev/rate-limit. \n* Quota exceeded for metric: "
                                "generativelanguage.googleapis.com/"
                                "generate_content_free_tier_requests, limit: 15, model: "
                                "gemini-3.5-flash-lite\nPlease retry in 38.292s."));
    json_t *d = json_object_get(err, "details");
    assert_int_equal(json_array_size(d), 3);
    assert_string_equal(json_string_value(json_object_get(json_array_get(d, 0), "@type")),
                        "type.googleapis.com/google.rpc.Help");
    json_t *qf = json_array_get(d, 1);
    assert_string_equal(json_string_value(json_object_get(qf, "@type")),
                        "type.googleapis.com/google.rpc.QuotaFailure");
    json_t *viol = json_array_get(json_object_get(qf, "violations"), 0);
    assert_string_equal(json_string_value(json_object_get(viol, "quotaId")),
                        "GenerateRequestsPerMinutePerProjectPerModel-FreeTier");
    assert_string_equal(json_string_value(json_object_get(viol, "quotaValue")), "15");
    json_t *dims = json_object_get(viol, "quotaDimensions");
    assert_string_equal(json_string_value(json_object_get(dims, "location")), "global");
    assert_string_equal(json_string_value(json_object_get(dims, "model")),
                        "gemini-3.5-flash-lite");
    /* Whole seconds, truncated as in the live body ("38.29s" -> "38s"). */
    assert_string_equal(json_string_value(json_object_get(json_array_get(d, 2), "retryDelay")),
                        "38s");
    /* Pretty-printed with a 2-space indent and a final newline. */
    assert_memory_equal(body, "{\n  \"error\": {\n    \"code\": 429,", 30);
    assert_int_equal(body[strlen(body) - 1], '\n');
    json_decref(j);
    free(body);
}

static void
test_429_body_several_violations_and_array(void **state)
{
    (void)state;
    struct skiff_sim_verdict v = {
        2, {{SKIFF_SIM_QUOTA_TPM, 250000, 1000}, {SKIFF_SIM_QUOTA_RPD, 20, 3600500}}};
    char *body = skiff_sim_quota_body(&v, "gemini-2.5-flash", 1);
    json_t *j = json_loads(body, 0, NULL);
    assert_true(json_is_array(j));
    json_t *err = json_object_get(json_array_get(j, 0), "error");
    const char *msg = json_string_value(json_object_get(err, "message"));
    assert_non_null(strstr(msg, "input_token_count, limit: 250000, model: gemini-2.5-flash\n"));
    assert_non_null(strstr(msg, "requests, limit: 20, model: gemini-2.5-flash\nPlease retry in "
                                "3600.500s."));
    json_t *qf = json_array_get(json_object_get(err, "details"), 1);
    json_t *viol = json_object_get(qf, "violations");
    assert_int_equal(json_array_size(viol), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(viol, 1), "quotaId")),
                        "GenerateRequestsPerDayPerProjectPerModel-FreeTier");
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(json_object_get(err, "details"), 2),
                                          "retryDelay")),
        "3600s");
    json_decref(j);
    free(body);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pacific_offset_spring),
        cmocka_unit_test(test_pacific_offset_autumn),
        cmocka_unit_test(test_next_midnight_across_switches),
        cmocka_unit_test(test_pacific_day_changes_at_local_midnight),
        cmocka_unit_test(test_rpm_window_and_retry),
        cmocka_unit_test(test_tpm_and_rpd),
        cmocka_unit_test(test_zero_quota_refuses_everything),
        cmocka_unit_test(test_full_table_forgets_idle_entries),
        cmocka_unit_test(test_429_body_shape),
        cmocka_unit_test(test_429_body_several_violations_and_array),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
