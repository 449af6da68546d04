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

/* ---- the pool over a state backend (state/backend.h), without Gemini or SQLite ---- */

/* A backend that records what the pool gives it and serves a scripted load. */
struct rec {
    struct skiff_key_state put[32];
    size_t nput;
    struct skiff_key_usage add[32];
    size_t nadd;
    struct skiff_key_state load_rows[8];
    size_t nload;
    skiff_state_cb *on_state; /* what subscribe was given */
    void *on_ud;
    int unsubscribed;
};

static void
rec_put(void *impl, const struct skiff_key_state *st)
{
    struct rec *r = impl;
    assert_true(r->nput < 32);
    r->put[r->nput++] = *st;
}

static void
rec_add(void *impl, const struct skiff_key_usage *u)
{
    struct rec *r = impl;
    assert_true(r->nadd < 32);
    r->add[r->nadd++] = *u;
}

static int
rec_load(void *impl, int64_t now_ms, const char *day, skiff_state_cb *fn, skiff_usage_cb *ufn,
         void *ud)
{
    struct rec *r = impl;
    for (size_t i = 0; i < r->nload; i++)
        fn(&r->load_rows[i], ud);
    return 0;
}

static int
rec_subscribe(void *impl, skiff_state_cb *on_state, void *ud)
{
    struct rec *r = impl;
    r->on_state = on_state;
    r->on_ud = ud;
    return 0;
}

static void
rec_unsubscribe(void *impl)
{
    ((struct rec *)impl)->unsubscribed = 1;
}

/* A calendar of 10-second days, so a test sees usage start a new day. */
static int64_t
short_day(int64_t now_ms)
{
    return now_ms / 10000;
}

static void
short_date(int64_t now_ms, char out[11])
{
    snprintf(out, 11, "d%09u", (unsigned)(now_ms / 10000 % 1000000000));
}

static struct skiff_keypool *
open_rec(struct rec *r)
{
    struct skiff_state_backend be = {
        .impl = r,
        .put_state = rec_put,
        .add_usage = rec_add,
        .load = rec_load,
        .subscribe = rec_subscribe,
        .unsubscribe = rec_unsubscribe,
    };
    struct skiff_keypool_opts o = {.backend = &be, .day = short_day, .date = short_date};
    struct skiff_keypool *p = skiff_keypool_open(&cfg, &o);
    assert_non_null(p);
    return p;
}

static struct skiff_key_state
remote(int key, const char *model, int64_t rest_until, int retired)
{
    struct skiff_key_state st;
    memset(&st, 0, sizeof st);
    skiff_state_key_id(keys[key].key, st.key_id);
    snprintf(st.model, sizeof st.model, "%s", model);
    snprintf(st.reason, sizeof st.reason, "from elsewhere");
    st.rest_until_ms = rest_until;
    st.retired = retired;
    return st;
}

static void
test_verdicts_reach_the_backend_as_plain_rows(void **state)
{
    struct rec r = {0};
    struct skiff_keypool *p = open_rec(&r);
    int k = acquire(p, "m", NOW);
    struct skiff_key_verdict rest = {.outcome = SKIFF_KEY_REST, .rest_ms = 7000, .reason = "rpm"};
    skiff_keypool_report(p, k, "m", &rest, 0, NOW);
    assert_int_equal(r.nput, 1);
    assert_string_equal(r.put[0].model, "m");
    assert_int_equal(r.put[0].rest_until_ms, NOW + 7000);
    assert_int_equal(r.put[0].retired, 0);
    assert_string_equal(r.put[0].reason, "rpm");
    assert_string_equal(r.put[0].label, keys[k].label);
    char id[17];
    skiff_state_key_id(keys[k].key, id);
    assert_string_equal(r.put[0].key_id, id);
    assert_string_equal(skiff_keypool_status(p, k, "m", NOW + 6999), "resting");
    assert_string_equal(skiff_keypool_status(p, k, "m", NOW + 7000), "ok");

    /* Served calls count as usage on the calendar the pool was given. */
    int j = acquire(p, "m", NOW);
    struct skiff_key_verdict ok = {.outcome = SKIFF_KEY_SERVED};
    skiff_keypool_report(p, j, "m", &ok, 42, NOW);
    assert_int_equal(r.nadd, 1);
    assert_int_equal(r.add[0].tokens, 42);
    char want[11];
    short_date(NOW, want);
    assert_string_equal(r.add[0].day, want);
    j = acquire(p, "m", NOW + 10000);
    skiff_keypool_report(p, j, "m", &ok, 1, NOW + 10000);
    short_date(NOW + 10000, want);
    assert_string_equal(r.add[1].day, want);

    /* Neutral says nothing; retirements are put, key-wide as model "*". */
    j = acquire(p, "m", NOW);
    struct skiff_key_verdict neutral = {.outcome = SKIFF_KEY_NEUTRAL};
    skiff_keypool_report(p, j, "m", &neutral, 0, NOW);
    assert_int_equal(r.nput, 1);
    struct skiff_key_verdict gone = {.outcome = SKIFF_KEY_RETIRE_KEY, .reason = "API_KEY_INVALID"};
    skiff_keypool_report(p, j, "m", &gone, 0, NOW);
    assert_int_equal(r.nput, 2);
    assert_string_equal(r.put[1].model, "*");
    assert_int_equal(r.put[1].retired, 1);
    assert_string_equal(skiff_keypool_status(p, j, "other", NOW), "retired");
    skiff_keypool_free(p);
    assert_true(r.unsubscribed);
}

/* The later rest wins; retired if either says so; nothing is echoed to the backend. */
static void
test_merge_takes_the_later_rest_and_any_retirement(void **state)
{
    struct rec r = {0};
    struct skiff_keypool *p = open_rec(&r);
    struct skiff_key_state st = remote(0, "m", NOW + 5000, 0);
    skiff_keypool_merge(p, &st, NOW);
    assert_string_equal(skiff_keypool_status(p, 0, "m", NOW + 4999), "resting");
    assert_string_equal(skiff_keypool_status(p, 0, "other", NOW), "ok");
    /* An earlier rest from elsewhere does not shorten ours. */
    st = remote(0, "m", NOW + 1000, 0);
    skiff_keypool_merge(p, &st, NOW);
    assert_string_equal(skiff_keypool_status(p, 0, "m", NOW + 4999), "resting");
    /* A later one lengthens it. */
    st = remote(0, "m", NOW + 9000, 0);
    skiff_keypool_merge(p, &st, NOW);
    assert_string_equal(skiff_keypool_status(p, 0, "m", NOW + 8999), "resting");
    assert_string_equal(skiff_keypool_status(p, 0, "m", NOW + 9000), "ok");
    /* Our own later rest is not cut by a remote one either. */
    int k = acquire(p, "m", NOW + 9000);
    assert_int_equal(k, 0);
    struct skiff_key_verdict rest = {.outcome = SKIFF_KEY_REST, .rest_ms = 60000};
    skiff_keypool_report(p, k, "m", &rest, 0, NOW + 9000);
    st = remote(0, "m", NOW + 20000, 0);
    skiff_keypool_merge(p, &st, NOW + 9000);
    assert_string_equal(skiff_keypool_status(p, 0, "m", NOW + 68999), "resting");

    /* Retired for the model, or as a key, when the other side says so. */
    st = remote(1, "m", 0, 1);
    skiff_keypool_merge(p, &st, NOW);
    assert_string_equal(skiff_keypool_status(p, 1, "m", NOW), "retired");
    assert_string_equal(skiff_keypool_status(p, 1, "other", NOW), "ok");
    st = remote(2, "*", 0, 1);
    skiff_keypool_merge(p, &st, NOW);
    assert_string_equal(skiff_keypool_status(p, 2, "any", NOW), "retired");
    assert_int_equal(skiff_keypool_usable(p), 2);
    /* A remote "not retired" does not undo a retirement here. */
    st = remote(2, "*", 0, 0);
    skiff_keypool_merge(p, &st, NOW);
    st = remote(1, "m", 0, 0);
    skiff_keypool_merge(p, &st, NOW);
    assert_string_equal(skiff_keypool_status(p, 2, "any", NOW), "retired");
    assert_string_equal(skiff_keypool_status(p, 1, "m", NOW), "retired");

    /* A key this pool does not have is ignored. */
    st = remote(0, "m", NOW + 999999, 1);
    skiff_state_key_id("AIzaSomebodyElse", st.key_id);
    skiff_keypool_merge(p, &st, NOW);
    assert_string_equal(skiff_keypool_status(p, 0, "m", NOW + 70000), "ok");

    assert_int_equal(r.nput, 1); /* only our own rest: merges are not echoed */
    skiff_keypool_free(p);
}

/* What the backend hears from other instances lands in the pool; so does the load. */
static void
test_subscription_and_restore_go_through_merge(void **state)
{
    struct rec r = {0};
    r.load_rows[r.nload++] = remote(0, "m", NOW + 3000, 0);
    r.load_rows[r.nload++] = remote(1, "*", 0, 1);
    struct skiff_keypool *p = open_rec(&r);
    assert_non_null(r.on_state);
    skiff_keypool_restore(p, NOW);
    assert_string_equal(skiff_keypool_status(p, 0, "m", NOW + 2999), "resting");
    assert_string_equal(skiff_keypool_status(p, 1, "x", NOW), "retired");

    struct skiff_key_state st = remote(2, "m", INT64_MAX / 2, 0); /* far in the future */
    r.on_state(&st, r.on_ud);
    int64_t back;
    assert_int_equal(skiff_keypool_acquire(p, "m", NOW + 3000, &back), 0);
    skiff_keypool_free(p);
    assert_true(r.unsubscribed);
}

/* A pool without a backend keeps everything in memory and calls nothing. */
static void
test_no_backend(void **state)
{
    struct skiff_keypool *p = skiff_keypool_open(&cfg, NULL);
    assert_non_null(p);
    int k = acquire(p, "m", NOW);
    struct skiff_key_verdict rest = {.outcome = SKIFF_KEY_REST, .rest_ms = 1000};
    skiff_keypool_report(p, k, "m", &rest, 0, NOW);
    assert_string_equal(skiff_keypool_status(p, k, "m", NOW), "resting");
    skiff_keypool_restore(p, NOW);
    skiff_keypool_free(p);
}

/* An operator's enable clears every row the backend holds for the key, so a backend that
 * hands states back (a watch, another instance) does not retire it again. */
static void
test_enable_clears_the_backend_rows(void **state)
{
    struct rec r = {0};
    struct skiff_keypool *p = open_rec(&r);
    int k = acquire(p, "m", NOW);
    struct skiff_key_verdict zero = {.outcome = SKIFF_KEY_RETIRE_MODEL, .reason = "quota 0"};
    skiff_keypool_report(p, k, "m", &zero, 0, NOW);
    assert_int_equal(r.nput, 1);
    assert_int_equal(skiff_keypool_enable(p, keys[k].label), 0);
    assert_int_equal(r.nput, 3);
    assert_string_equal(r.put[1].model, "m");
    assert_int_equal(r.put[1].retired, 0);
    assert_string_equal(r.put[2].model, "*");
    /* What the backend hands back now is the cleared row: the key stays enabled. */
    skiff_keypool_merge(p, &r.put[1], NOW);
    assert_string_equal(skiff_keypool_status(p, k, "m", NOW), "ok");
    skiff_keypool_free(p);
}

/* The engine's translation of Gemini's verdicts (relay/keypool.h). */
static void
test_gemini_verdicts(void **state)
{
    struct skiff_key_verdict v;
    skiff_keypool_verdict(SKIFF_FAULT_NONE, -1, NULL, NOW, &v);
    assert_int_equal(v.outcome, SKIFF_KEY_SERVED);
    skiff_keypool_verdict(SKIFF_FAULT_TRANSIENT, -1, NULL, NOW, &v);
    assert_int_equal(v.outcome, SKIFF_KEY_NEUTRAL);
    skiff_keypool_verdict(SKIFF_FAULT_QUOTA_MINUTE, 0.2, "rpm", NOW, &v);
    assert_int_equal(v.outcome, SKIFF_KEY_REST);
    assert_int_equal(v.rest_ms, 1000);
    assert_true(v.throttled);
    skiff_keypool_verdict(SKIFF_FAULT_QUOTA_MINUTE, -1, "rpm", NOW, &v);
    assert_int_equal(v.rest_ms, 60000);
    skiff_keypool_verdict(SKIFF_FAULT_QUOTA_DAY, 5, "rpd", NOW, &v);
    assert_int_equal(v.rest_ms, skiff_pacific_next_midnight_ms(NOW) - NOW);
    assert_false(v.throttled);
    skiff_keypool_verdict(SKIFF_FAULT_QUOTA_OTHER, NAN, NULL, NOW, &v);
    assert_int_equal(v.rest_ms, SKIFF_KEYPOOL_BARE_429_REST_MS);
    skiff_keypool_verdict(SKIFF_FAULT_QUOTA_ZERO, -1, "zero", NOW, &v);
    assert_int_equal(v.outcome, SKIFF_KEY_RETIRE_MODEL);
    skiff_keypool_verdict(SKIFF_FAULT_KEY_DENIED, -1, NULL, NOW, &v);
    assert_int_equal(v.outcome, SKIFF_KEY_RETIRE_KEY);
    assert_string_equal(v.reason, skiff_fault_name(SKIFF_FAULT_KEY_DENIED));
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
        cmocka_unit_test(test_verdicts_reach_the_backend_as_plain_rows),
        cmocka_unit_test(test_merge_takes_the_later_rest_and_any_retirement),
        cmocka_unit_test(test_subscription_and_restore_go_through_merge),
        cmocka_unit_test(test_no_backend),
        cmocka_unit_test(test_enable_clears_the_backend_rows),
        cmocka_unit_test(test_gemini_verdicts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
