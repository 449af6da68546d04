#include <setjmp.h>
#include <stdarg.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "gemini/catalog.h"
#include "gemini/pacific.h"
#include "relay/keypool.h"

/* 2026-11-23 17:00:00 UTC = 09:00 PST. */
#define NOW 1795453200000LL

static struct skiff_key keys[] = {
    {"AIzaKeyA-secret-0001", "a"}, {"AIzaKeyB-secret-0002", "b"}, {"AIzaKeyC-secret-0003", "c"}};
static struct skiff_config cfg = {.keys = keys, .nkeys = 3};

static int
acquire(struct skiff_keypool *p, const char *model, int64_t now)
{
    int64_t back;
    return skiff_keypool_acquire(p, model, now, &back);
}

static void
test_least_recently_used_then_fewest_in_flight(void **state)
{
    struct skiff_keypool *p = skiff_keypool_new(&cfg, NULL);
    int a = acquire(p, "m", NOW), b = acquire(p, "m", NOW), c = acquire(p, "m", NOW);
    assert_int_equal(a + b + c, 0 + 1 + 2); /* three different keys while all are busy */
    skiff_keypool_release(p, b, "m", SKIFF_FAULT_NONE, -1, NULL, 10, NOW);
    assert_int_equal(acquire(p, "m", NOW), b); /* the only one with nothing in flight */
    skiff_keypool_free(p);
}

static void
test_per_minute_rest_is_per_model(void **state)
{
    struct skiff_keypool *p = skiff_keypool_new(&cfg, NULL);
    int k = acquire(p, "flash", NOW);
    skiff_keypool_release(p, k, "flash", SKIFF_FAULT_QUOTA_MINUTE, 30.5, "rpm", 0, NOW);
    assert_string_equal(skiff_keypool_status(p, k, "flash", NOW), "resting");
    assert_string_equal(skiff_keypool_status(p, k, "pro", NOW), "ok");
    assert_string_equal(skiff_keypool_status(p, k, "flash", NOW + 30600), "ok");
    for (int i = 0; i < 10; i++) {
        int x = acquire(p, "flash", NOW + 1000);
        assert_int_not_equal(x, k);
        skiff_keypool_release(p, x, "flash", SKIFF_FAULT_NONE, -1, NULL, 0, NOW + 1000);
    }
    skiff_keypool_free(p);
}

static void
test_per_day_rests_until_midnight_pacific(void **state)
{
    struct skiff_keypool *p = skiff_keypool_new(&cfg, NULL);
    int k = acquire(p, "flash", NOW);
    /* A per-day 429 may say retryDelay "0s": the day still decides. */
    skiff_keypool_release(p, k, "flash", SKIFF_FAULT_QUOTA_DAY, 0, "rpd", 0, NOW);
    int64_t midnight = skiff_pacific_next_midnight_ms(NOW);
    assert_int_equal(midnight, 1795507200000LL); /* 2026-11-24 08:00 UTC = 00:00 PST */
    assert_string_equal(skiff_keypool_status(p, k, "flash", midnight - 1), "resting");
    assert_string_equal(skiff_keypool_status(p, k, "flash", midnight), "ok");
    skiff_keypool_free(p);
}

static void
test_every_key_resting_says_when_the_first_comes_back(void **state)
{
    struct skiff_keypool *p = skiff_keypool_new(&cfg, NULL);
    for (int i = 0; i < 3; i++) {
        int k = acquire(p, "flash", NOW);
        skiff_keypool_release(p, k, "flash", SKIFF_FAULT_QUOTA_MINUTE, 10 + 10 * k, "rpm", 0, NOW);
    }
    int64_t back;
    assert_int_equal(skiff_keypool_acquire(p, "flash", NOW + 5000, &back), -1);
    assert_int_equal(back, NOW + 10000);
    skiff_keypool_free(p);
}

static void
test_retirements(void **state)
{
    struct skiff_keypool *p = skiff_keypool_new(&cfg, NULL);
    skiff_keypool_release(p, 0, "pro", SKIFF_FAULT_QUOTA_ZERO, -1, "quotaValue 0", 0, NOW);
    assert_string_equal(skiff_keypool_status(p, 0, "pro", NOW + 86400000LL * 30), "retired");
    assert_string_equal(skiff_keypool_status(p, 0, "flash", NOW), "ok");
    skiff_keypool_release(p, 1, "flash", SKIFF_FAULT_KEY_INVALID, -1, "API_KEY_INVALID", 0, NOW);
    assert_string_equal(skiff_keypool_status(p, 1, "flash", NOW), "retired");
    assert_string_equal(skiff_keypool_status(p, 1, "anything", NOW), "retired");
    int64_t back;
    skiff_keypool_release(p, 2, "x", SKIFF_FAULT_KEY_REGION, -1, "location", 0, NOW);
    skiff_keypool_release(p, 0, "x", SKIFF_FAULT_KEY_DENIED, -1, "denied", 0, NOW);
    assert_int_equal(skiff_keypool_acquire(p, "flash", NOW, &back), -1);
    assert_true(back == INT64_MAX);
    assert_int_equal(skiff_keypool_enable(p, "b"), 0);
    assert_int_equal(skiff_keypool_acquire(p, "flash", NOW, &back), 1);
    assert_int_equal(skiff_keypool_enable(p, "nope"), -1);
    skiff_keypool_free(p);
}

static void
test_client_and_transient_faults_blame_no_key(void **state)
{
    struct skiff_keypool *p = skiff_keypool_new(&cfg, NULL);
    skiff_keypool_release(p, 0, "m", SKIFF_FAULT_CLIENT, -1, "400", 0, NOW);
    skiff_keypool_release(p, 0, "m", SKIFF_FAULT_TRANSIENT, 5, "503", 0, NOW);
    assert_string_equal(skiff_keypool_status(p, 0, "m", NOW), "ok");
    skiff_keypool_free(p);
}

static void
test_many_keys_throttled_at_once_rest_the_pool(void **state)
{
    struct skiff_key many[] = {{"k1-0000000000", "1"},
                               {"k2-0000000000", "2"},
                               {"k3-0000000000", "3"},
                               {"k4-0000000000", "4"},
                               {"k5-0000000000", "5"}};
    struct skiff_config c = {.keys = many, .nkeys = 5};
    struct skiff_keypool *p = skiff_keypool_new(&c, NULL);
    for (int i = 0; i < SKIFF_KEYPOOL_STORM_KEYS; i++)
        skiff_keypool_release(p, i, "m", SKIFF_FAULT_QUOTA_OTHER, 0.5, "429", 0, NOW + 100 * i);
    int64_t back;
    /* Keys 4 and 5 are healthy, but the pool as a whole backs off. */
    assert_int_equal(skiff_keypool_acquire(p, "m", NOW + 400, &back), -1);
    assert_true(back > NOW + 400 && back <= NOW + 400 + SKIFF_KEYPOOL_STORM_REST_MS);
    assert_true(skiff_keypool_acquire(p, "m", back, &back) >= 0); /* then every key serves */
    skiff_keypool_free(p);
}

/* The finding of issue 10: 130 client-chosen model names later, a per-day 429 on
 * gemini-2.5-pro rested the key for gemini-2.5-flash-lite (both fell in the last slot). */
static void
test_client_model_names_never_share_health(void **state)
{
    struct skiff_catalog *cat = skiff_catalog_new();
    struct skiff_keypool *p = skiff_keypool_new(&cfg, NULL);
    skiff_keypool_use_catalog(p, cat);
    /* A catalog model's rest from before the flood must survive it. */
    skiff_keypool_release(p, 2, "gemini-2.5-flash", SKIFF_FAULT_QUOTA_DAY, -1, "rpd", 0, NOW);
    char name[64];
    for (int i = 0; i < 1000; i++) {
        snprintf(name, sizeof name, "junk-model-%d", i);
        int k = i % 2 ? 0 : acquire(p, name, NOW);
        skiff_keypool_release(p, k, name, i % 2 ? SKIFF_FAULT_QUOTA_MINUTE : SKIFF_FAULT_NONE, 50,
                              "rpm", 0, NOW);
    }
    skiff_keypool_release(p, 0, "gemini-2.5-pro", SKIFF_FAULT_QUOTA_DAY, -1, "rpd", 0, NOW + 1);
    assert_string_equal(skiff_keypool_status(p, 0, "gemini-2.5-pro", NOW + 2), "resting");
    assert_string_equal(skiff_keypool_status(p, 0, "gemini-2.5-flash-lite", NOW + 2), "ok");
    assert_string_equal(skiff_keypool_status(p, 2, "gemini-2.5-flash", NOW + 2), "resting");
    for (int k = 0; k < 3; k++)
        assert_string_equal(skiff_keypool_status(p, k, "gemini-3-flash-preview", NOW + 2), "ok");
    /* A name never seen is healthy, whatever the junk before it did. */
    assert_string_equal(skiff_keypool_status(p, 0, "junk-model-never", NOW + 2), "ok");
    assert_string_equal(skiff_keypool_status(p, 1, "junk-model-never", NOW + 2), "ok");
    /* The latest junk rests are still known: the table forgets the oldest. */
    assert_string_equal(skiff_keypool_status(p, 0, "junk-model-999", NOW + 2), "resting");
    /* Every key still serves the lite model at once. */
    int64_t back;
    assert_true(skiff_keypool_acquire(p, "gemini-2.5-flash-lite", NOW + 2, &back) >= 0);
    skiff_keypool_free(p);
    skiff_catalog_free(cat);
}

/* Without a catalog (or for models newer than it) names still never share health, and a
 * name too long to track is never mistaken for another one. */
static void
test_uncatalogued_names_are_bounded_and_apart(void **state)
{
    struct skiff_keypool *p = skiff_keypool_new(&cfg, NULL);
    char name[64];
    for (int i = 0; i < 600; i++) {
        snprintf(name, sizeof name, "model-%d", i);
        skiff_keypool_release(p, 0, name, SKIFF_FAULT_QUOTA_MINUTE, 30, "rpm", 0, NOW);
        assert_string_equal(skiff_keypool_status(p, 0, name, NOW + 1), "resting");
        snprintf(name, sizeof name, "model-%d-other", i);
        assert_string_equal(skiff_keypool_status(p, 0, name, NOW + 1), "ok");
    }
    char a[200], b[200];
    memset(a, 'x', sizeof a - 1);
    a[sizeof a - 1] = '\0';
    memcpy(b, a, sizeof b);
    b[sizeof b - 2] = 'y';
    skiff_keypool_release(p, 1, a, SKIFF_FAULT_QUOTA_DAY, -1, "rpd", 0, NOW);
    assert_string_equal(skiff_keypool_status(p, 1, b, NOW + 1), "ok");
    assert_string_equal(skiff_keypool_status(p, 1, "model-x", NOW + 1), "ok");
    skiff_keypool_free(p);
}

/* Whatever delay comes in (a caller that did not clamp it), a rest lasts at most a day and
 * is never undefined: 1e300 and infinity rest a day, NaN and negatives take the default. */
static void
test_hostile_delays_rest_at_most_a_day(void **state)
{
    struct skiff_keypool *p = skiff_keypool_new(&cfg, NULL);
    const double delays[] = {1e300, INFINITY, -INFINITY, NAN, -5};
    const int64_t expect[] = {86400000, 86400000, 60000, 60000, 60000};
    for (size_t i = 0; i < sizeof delays / sizeof delays[0]; i++) {
        int64_t now = NOW + (int64_t)i * 100000000;
        int k = acquire(p, "flash", now);
        skiff_keypool_release(p, k, "flash", SKIFF_FAULT_QUOTA_MINUTE, delays[i], "rpm", 0, now);
        assert_string_equal(skiff_keypool_status(p, k, "flash", now + expect[i] - 1), "resting");
        assert_string_equal(skiff_keypool_status(p, k, "flash", now + expect[i]), "ok");
        k = acquire(p, "lite", now);
        skiff_keypool_release(p, k, "lite", SKIFF_FAULT_QUOTA_OTHER, delays[i], "429", 0, now);
        int64_t other = expect[i] == 60000 ? SKIFF_KEYPOOL_BARE_429_REST_MS : expect[i];
        assert_string_equal(skiff_keypool_status(p, k, "lite", now + other - 1), "resting");
        assert_string_equal(skiff_keypool_status(p, k, "lite", now + other), "ok");
    }
    skiff_keypool_free(p);
}

static void
test_redaction(void **state)
{
    struct skiff_keypool *p = skiff_keypool_new(&cfg, NULL);
    char body[] = "{\"detail\": \"Invalid API key: AIzaKeyB-secret-0002\"}";
    assert_true(skiff_keypool_leaks(p, body, strlen(body)));
    skiff_keypool_redact(p, body, strlen(body));
    assert_false(skiff_keypool_leaks(p, body, strlen(body)));
    assert_non_null(strstr(body, "********************"));
    skiff_keypool_free(p);
}

/* A key made of '*' (or holding some) is found in its own mask: redaction still ends. */
static void
test_redaction_of_a_key_of_stars_ends(void **state)
{
    static struct skiff_key stars[] = {{"***", "stars"}, {"a*b", "mixed"}};
    static struct skiff_config scfg = {.keys = stars, .nkeys = 2};
    struct skiff_keypool *p = skiff_keypool_new(&scfg, NULL);
    char body[] = "{\"detail\": \"Invalid API key: ***** a*ba*b\"}";
    skiff_keypool_redact(p, body, strlen(body));
    assert_string_equal(body, "{\"detail\": \"Invalid API key: ***** ******\"}");
    skiff_keypool_free(p);
}

static void
test_pacific_date(void **state)
{
    char d[11];
    skiff_pacific_date(NOW, d);
    assert_string_equal(d, "2026-11-23");
    skiff_pacific_date(1795507200000LL - 1, d); /* 23:59:59.999 PST */
    assert_string_equal(d, "2026-11-23");
    skiff_pacific_date(1795507200000LL, d);
    assert_string_equal(d, "2026-11-24");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_least_recently_used_then_fewest_in_flight),
        cmocka_unit_test(test_per_minute_rest_is_per_model),
        cmocka_unit_test(test_per_day_rests_until_midnight_pacific),
        cmocka_unit_test(test_every_key_resting_says_when_the_first_comes_back),
        cmocka_unit_test(test_retirements),
        cmocka_unit_test(test_client_and_transient_faults_blame_no_key),
        cmocka_unit_test(test_many_keys_throttled_at_once_rest_the_pool),
        cmocka_unit_test(test_hostile_delays_rest_at_most_a_day),
        cmocka_unit_test(test_client_model_names_never_share_health),
        cmocka_unit_test(test_uncatalogued_names_are_bounded_and_apart),
        cmocka_unit_test(test_redaction),
        cmocka_unit_test(test_redaction_of_a_key_of_stars_ends),
        cmocka_unit_test(test_pacific_date),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
