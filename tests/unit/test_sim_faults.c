#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "base/err.h"
#include "sim/faults.h"

static void
test_parse_global_and_model(void **state)
{
    (void)state;
    struct skiff_sim_faults f;
    char err[256] = "";
    assert_int_equal(skiff_sim_faults_parse(&f,
                                            "503=0.3,500=0.05, 504=0.01 ,reset=0.02,hang=0.01,"
                                            "gemini-2.5-pro:503=0.5",
                                            err, sizeof err),
                     0);
    assert_true(skiff_sim_faults_p(&f, "gemini-2.5-flash", SKIFF_SIM_FAULT_503) == 0.3);
    assert_true(skiff_sim_faults_p(&f, "gemini-2.5-pro", SKIFF_SIM_FAULT_503) == 0.5);
    /* The override replaces one kind; the others are inherited. */
    assert_true(skiff_sim_faults_p(&f, "gemini-2.5-pro", SKIFF_SIM_FAULT_500) == 0.05);
    assert_true(skiff_sim_faults_p(&f, "gemini-2.5-pro", SKIFF_SIM_FAULT_HANG) == 0.01);
    skiff_sim_faults_release(&f);
}

static void
expect_error(const char *spec, const char *needle)
{
    struct skiff_sim_faults f;
    char err[256] = "";
    assert_int_equal(skiff_sim_faults_parse(&f, spec, err, sizeof err), SKIFF_EINVAL);
    if (!strstr(err, needle))
        fail_msg("spec \"%s\": message \"%s\" lacks \"%s\"", spec, err, needle);
    assert_non_null(strstr(err, "--faults"));
    skiff_sim_faults_release(&f);
}

static void
test_parse_errors(void **state)
{
    (void)state;
    expect_error("503", "not KIND=PROBABILITY");
    expect_error("502=0.1", "unknown fault \"502\"");
    expect_error("503=1.5", "must be a number in [0, 1]");
    expect_error("503=-0.1", "must be a number in [0, 1]");
    expect_error("503=abc", "must be a number");
    expect_error("503=", "bad probability");
    expect_error("no-such-model:503=0.1", "unknown model \"no-such-model\"");
    expect_error("503=0.6,500=0.6", "add up to 1.2");
    expect_error("503=0.5,gemini-2.5-pro:500=0.6", "for gemini-2.5-pro add up to 1.1");
}

static void
test_pick_lays_kinds_end_to_end(void **state)
{
    (void)state;
    struct skiff_sim_faults f;
    char err[256];
    assert_int_equal(skiff_sim_faults_parse(&f, "500=0.1,503=0.2,hang=0.1", err, sizeof err), 0);
    assert_int_equal(skiff_sim_faults_pick(&f, "m", 0.05), SKIFF_SIM_FAULT_500);
    assert_int_equal(skiff_sim_faults_pick(&f, "m", 0.15), SKIFF_SIM_FAULT_503);
    assert_int_equal(skiff_sim_faults_pick(&f, "m", 0.35), SKIFF_SIM_FAULT_HANG);
    assert_int_equal(skiff_sim_faults_pick(&f, "m", 0.45), SKIFF_SIM_FAULT_NONE);
    skiff_sim_faults_release(&f);

    /* An empty spec never faults. */
    assert_int_equal(skiff_sim_faults_parse(&f, "", err, sizeof err), 0);
    assert_int_equal(skiff_sim_faults_pick(&f, "m", 0.0), SKIFF_SIM_FAULT_NONE);
    skiff_sim_faults_release(&f);
}

/* Resets, hangs and quota 429s take their place after the older kinds, so a spec without
 * them draws exactly as before. */
static void
test_reset_hang_and_429(void **state)
{
    (void)state;
    struct skiff_sim_faults f;
    char err[256];
    assert_int_equal(skiff_sim_faults_parse(&f,
                                            "503=0.3,429=0.1,reset=0.05,hang=0.05,"
                                            "gemini-2.5-pro:429=0.5",
                                            err, sizeof err),
                     0);
    assert_string_equal(skiff_sim_fault_name(SKIFF_SIM_FAULT_429), "429");
    assert_string_equal(skiff_sim_fault_name(SKIFF_SIM_FAULT_RESET), "reset");
    assert_string_equal(skiff_sim_fault_name(SKIFF_SIM_FAULT_HANG), "hang");
    assert_true(skiff_sim_faults_p(&f, "gemini-2.5-flash", SKIFF_SIM_FAULT_429) == 0.1);
    assert_true(skiff_sim_faults_p(&f, "gemini-2.5-pro", SKIFF_SIM_FAULT_429) == 0.5);
    /* 503 [0, 0.3), reset [0.3, 0.35), hang [0.35, 0.4), 429 [0.4, 0.5). */
    assert_int_equal(skiff_sim_faults_pick(&f, "m", 0.29), SKIFF_SIM_FAULT_503);
    assert_int_equal(skiff_sim_faults_pick(&f, "m", 0.32), SKIFF_SIM_FAULT_RESET);
    assert_int_equal(skiff_sim_faults_pick(&f, "m", 0.37), SKIFF_SIM_FAULT_HANG);
    assert_int_equal(skiff_sim_faults_pick(&f, "m", 0.45), SKIFF_SIM_FAULT_429);
    assert_int_equal(skiff_sim_faults_pick(&f, "m", 0.55), SKIFF_SIM_FAULT_NONE);
    assert_int_equal(skiff_sim_faults_pick(&f, "gemini-2.5-pro", 0.85), SKIFF_SIM_FAULT_429);
    skiff_sim_faults_release(&f);

    expect_error("503=0.6,429=0.5", "add up to 1.1");
    expect_error("430=0.1", "429)");
}

static void
test_per_model_override_only_hits_that_model(void **state)
{
    (void)state;
    struct skiff_sim_faults f;
    char err[256];
    assert_int_equal(skiff_sim_faults_parse(&f, "gemini-2.5-pro:503=1", err, sizeof err), 0);
    struct skiff_sim_rng r;
    skiff_sim_rng_seed(&r, 7);
    for (int i = 0; i < 100; i++) {
        double u = skiff_sim_rng_unit(&r);
        assert_int_equal(skiff_sim_faults_pick(&f, "gemini-2.5-pro", u), SKIFF_SIM_FAULT_503);
        assert_int_equal(skiff_sim_faults_pick(&f, "gemini-2.5-flash", u), SKIFF_SIM_FAULT_NONE);
    }
    skiff_sim_faults_release(&f);
}

static void
test_seeded_reproducible(void **state)
{
    (void)state;
    struct skiff_sim_faults f;
    char err[256];
    assert_int_equal(skiff_sim_faults_parse(&f, "503=0.3,500=0.05,reset=0.1", err, sizeof err), 0);
    struct skiff_sim_rng a, b, c;
    skiff_sim_rng_seed(&a, 42);
    skiff_sim_rng_seed(&b, 42);
    skiff_sim_rng_seed(&c, 43);
    int same_as_other_seed = 0, n503 = 0;
    for (int i = 0; i < 1000; i++) {
        double ua = skiff_sim_rng_unit(&a), ub = skiff_sim_rng_unit(&b),
               uc = skiff_sim_rng_unit(&c);
        assert_true(ua >= 0 && ua < 1);
        enum skiff_sim_fault fa = skiff_sim_faults_pick(&f, "m", ua);
        assert_int_equal(fa, skiff_sim_faults_pick(&f, "m", ub));
        same_as_other_seed += fa == skiff_sim_faults_pick(&f, "m", uc);
        n503 += fa == SKIFF_SIM_FAULT_503;
    }
    /* Another seed gives another sequence, and the rate is about what was asked. */
    assert_true(same_as_other_seed < 1000);
    assert_in_range(n503, 240, 360);
    skiff_sim_faults_release(&f);

    /* A known splitmix64 value pins the generator (seed 0, first output). */
    struct skiff_sim_rng z;
    skiff_sim_rng_seed(&z, 0);
    assert_true(skiff_sim_rng_next(&z) == 0xe220a8397b1dcdafULL);
    for (int i = 0; i < 100; i++) {
        uint64_t v = skiff_sim_rng_range(&z, 5, 9);
        assert_in_range(v, 5, 9);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_global_and_model),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_pick_lays_kinds_end_to_end),
        cmocka_unit_test(test_reset_hang_and_429),
        cmocka_unit_test(test_per_model_override_only_hits_that_model),
        cmocka_unit_test(test_seeded_reproducible),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
