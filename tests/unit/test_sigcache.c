#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <dirent.h>
#include <pthread.h>
#include <sqlite3.h>
#include <time.h>
#include <unistd.h>

#include "base/err.h"
#include "state/sigcache.h"
#include "state/store.h"

#include "store_fixture.h"

static int
setup(void **state)
{
    return store_fixture_setup(state, "sigcache");
}

static int
teardown(void **state)
{
    skiff_sigcache_fini();
    store_fixture_teardown(state);
    return 0;
}

/* Asserts that id's signature is want (NULL: none), and frees the copy. */
static void
expect_sig(const char *id, const char *want)
{
    char *got = skiff_sigcache_get(id);
    if (!want) {
        if (got)
            fail_msg("%s: expected no signature, got \"%s\"", id, got);
        return;
    }
    if (!got)
        fail_msg("%s: expected \"%s\", got none", id, want);
    assert_string_equal(got, want);
    free(got);
}

static void
test_memory_put_get_replace(void **state)
{
    (void)state;
    assert_int_equal(skiff_sigcache_init(10, NULL), 0);
    expect_sig("call_unknown", NULL);
    assert_int_equal(skiff_sigcache_put("call_a", "sig-a"), 0);
    assert_int_equal(skiff_sigcache_put("call_b", "sig-b"), 0);
    expect_sig("call_a", "sig-a");
    expect_sig("call_b", "sig-b");
    /* A later put of the same id replaces the signature. */
    assert_int_equal(skiff_sigcache_put("call_a", "sig-a2"), 0);
    expect_sig("call_a", "sig-a2");

    /* The copy is the caller's: changing it changes nothing in the cache. */
    char *c = skiff_sigcache_get("call_b");
    assert_non_null(c);
    c[0] = 'X';
    free(c);
    expect_sig("call_b", "sig-b");

    struct skiff_sigcache_stats st;
    skiff_sigcache_stats(&st);
    assert_int_equal(st.entries, 2);
    assert_int_equal(st.bytes, strlen("call_a") + strlen("sig-a2") + strlen("call_b") + 5);
    assert_int_equal(st.misses, 1);
    assert_int_equal(st.evictions, 0);
}

static void
test_bad_arguments_and_lifecycle(void **state)
{
    (void)state;
    /* Before init: nothing is kept, nothing crashes. */
    assert_int_equal(skiff_sigcache_put("call_a", "sig"), SKIFF_EINVAL);
    assert_null(skiff_sigcache_get("call_a"));
    assert_int_equal(skiff_sigcache_init(0, NULL), SKIFF_EINVAL);

    assert_int_equal(skiff_sigcache_init(4, NULL), 0);
    assert_int_equal(skiff_sigcache_init(4, NULL), SKIFF_EINVAL); /* twice */
    assert_int_equal(skiff_sigcache_put(NULL, "sig"), SKIFF_EINVAL);
    assert_int_equal(skiff_sigcache_put("call_a", NULL), SKIFF_EINVAL);
    assert_int_equal(skiff_sigcache_put("", "sig"), SKIFF_EINVAL);
    assert_int_equal(skiff_sigcache_put("call_a", ""), SKIFF_EINVAL);
    assert_null(skiff_sigcache_get(NULL));
    assert_null(skiff_sigcache_get(""));

    char id[SKIFF_SIGCACHE_MAX_ID + 2];
    memset(id, 'i', sizeof id - 1);
    id[sizeof id - 1] = '\0';
    assert_int_equal(skiff_sigcache_put(id, "sig"), SKIFF_ETOOBIG);
    assert_null(skiff_sigcache_get(id));
    id[SKIFF_SIGCACHE_MAX_ID] = '\0'; /* exactly the longest */
    assert_int_equal(skiff_sigcache_put(id, "sig"), 0);
    expect_sig(id, "sig");

    char *sig = malloc(SKIFF_SIGCACHE_MAX_SIG + 2);
    assert_non_null(sig);
    memset(sig, 's', SKIFF_SIGCACHE_MAX_SIG + 1);
    sig[SKIFF_SIGCACHE_MAX_SIG + 1] = '\0';
    assert_int_equal(skiff_sigcache_put("call_big", sig), SKIFF_ETOOBIG);
    expect_sig("call_big", NULL);
    sig[SKIFF_SIGCACHE_MAX_SIG] = '\0';
    assert_int_equal(skiff_sigcache_put("call_big", sig), 0);
    expect_sig("call_big", sig);
    free(sig);

    skiff_sigcache_fini();
    assert_null(skiff_sigcache_get("call_big"));
    skiff_sigcache_fini(); /* twice is fine */
    assert_int_equal(skiff_sigcache_init(4, NULL), 0);
    expect_sig("call_big", NULL); /* memory only: fini forgot it */
}

/* The least recently used goes first; a get counts as a use. */
static void
test_eviction_is_least_recently_used(void **state)
{
    (void)state;
    assert_int_equal(skiff_sigcache_init(3, NULL), 0);
    assert_int_equal(skiff_sigcache_put("a", "sig-a"), 0);
    assert_int_equal(skiff_sigcache_put("b", "sig-b"), 0);
    assert_int_equal(skiff_sigcache_put("c", "sig-c"), 0);
    expect_sig("a", "sig-a"); /* a is now the newest, b the oldest */
    assert_int_equal(skiff_sigcache_put("d", "sig-d"), 0);
    expect_sig("b", NULL);
    expect_sig("a", "sig-a");
    expect_sig("c", "sig-c");
    expect_sig("d", "sig-d");
    /* Newest first: d, c, a. Replacing c refreshes it too, so a stays the oldest. */
    assert_int_equal(skiff_sigcache_put("c", "sig-c2"), 0);
    assert_int_equal(skiff_sigcache_put("e", "sig-e"), 0);
    expect_sig("a", NULL);
    expect_sig("c", "sig-c2");

    struct skiff_sigcache_stats st;
    skiff_sigcache_stats(&st);
    assert_int_equal(st.entries, 3);
    assert_int_equal(st.evictions, 2);

    /* Many more than the bound: memory stays at it. */
    for (int i = 0; i < 1000; i++) {
        char id[32];
        snprintf(id, sizeof id, "call_%d", i);
        assert_int_equal(skiff_sigcache_put(id, "s"), 0);
    }
    skiff_sigcache_stats(&st);
    assert_int_equal(st.entries, 3);
    expect_sig("call_999", "s");
    expect_sig("call_996", NULL);
}

/* A restart finds what the last run put: the store wrote it to storage.sqlite. */
static void
test_restart_keeps_signatures(void **state)
{
    struct fixture *f = *state;
    struct skiff_store *s = open_store(f);
    assert_int_equal(skiff_sigcache_init(100, s), 0);
    assert_int_equal(skiff_sigcache_put("call_x", "CiQBVKhc7sig-x"), 0);
    assert_int_equal(skiff_sigcache_put("toolu_y", "sig-y"), 0);
    skiff_sigcache_fini();
    skiff_store_close(s); /* writes what is pending */
    assert_int_equal(store_query_file(f->db, "SELECT COUNT(*) FROM sig_cache"), 2);

    s = open_store(f);
    assert_int_equal(skiff_sigcache_init(100, s), 0);
    expect_sig("call_x", "CiQBVKhc7sig-x");
    expect_sig("toolu_y", "sig-y");
    expect_sig("call_z", NULL);
    struct skiff_sigcache_stats st;
    skiff_sigcache_stats(&st);
    assert_int_equal(st.store_hits, 2);
    assert_int_equal(st.misses, 1);
    /* Once read, a signature is in memory again. */
    expect_sig("call_x", "CiQBVKhc7sig-x");
    skiff_sigcache_stats(&st);
    assert_int_equal(st.hits, 1);
    skiff_sigcache_fini();
    skiff_store_close(s);
}

/* Two skiffs sharing the file: what one puts, the other gets. */
static void
test_another_instance_gets_what_one_put(void **state)
{
    struct fixture *f = *state;
    struct skiff_store *a = open_store(f);
    struct skiff_store *b = open_store(f);
    assert_int_equal(skiff_sigcache_init(100, a), 0);
    assert_int_equal(skiff_sigcache_put("call_shared", "sig-shared"), 0);
    skiff_store_flush(a);
    char *got = skiff_store_get_sig(b, "call_shared");
    assert_non_null(got);
    assert_string_equal(got, "sig-shared");
    free(got);
    /* A newer put from one instance replaces the row the other reads. */
    assert_int_equal(skiff_sigcache_put("call_shared", "sig-shared-2"), 0);
    skiff_store_flush(a);
    got = skiff_store_get_sig(b, "call_shared");
    assert_non_null(got);
    assert_string_equal(got, "sig-shared-2");
    free(got);
    skiff_sigcache_fini();
    skiff_store_close(b);
    skiff_store_close(a);
}

/* Memory dropped it for the bound; the store still has it. */
static void
test_evicted_from_memory_is_read_from_the_store(void **state)
{
    struct fixture *f = *state;
    struct skiff_store *s = open_store(f);
    assert_int_equal(skiff_sigcache_init(2, s), 0);
    /* The table keeps as many as memory by default; more here, as when memory's byte
     * bound is what dropped it, or another instance with a larger bound shares the file. */
    skiff_store_sig_limit(s, 100);
    assert_int_equal(skiff_sigcache_put("a", "sig-a"), 0);
    assert_int_equal(skiff_sigcache_put("b", "sig-b"), 0);
    assert_int_equal(skiff_sigcache_put("c", "sig-c"), 0);
    skiff_store_flush(s);
    expect_sig("a", "sig-a");
    struct skiff_sigcache_stats st;
    skiff_sigcache_stats(&st);
    assert_int_equal(st.store_hits, 1);
    skiff_sigcache_fini();
    skiff_store_close(s);
}

/* The table keeps the max_entries newest (plus at most an eighth between prunes). */
static void
test_store_table_is_bounded(void **state)
{
    struct fixture *f = *state;
    struct skiff_store *s = open_store(f);
    assert_int_equal(skiff_sigcache_init(16, s), 0);
    for (int i = 0; i < 200; i++) {
        char id[32];
        snprintf(id, sizeof id, "call_%03d", i);
        assert_int_equal(skiff_sigcache_put(id, "sig"), 0);
        if (i % 10 == 9)
            skiff_store_flush(s); /* several write batches, as a busy relay makes */
    }
    skiff_store_flush(s);
    long long n = store_query_file(f->db, "SELECT COUNT(*) FROM sig_cache");
    assert_true(n >= 16 && n <= 16 + 16 / 8 + 10);
    assert_int_equal(
        store_query_file(f->db, "SELECT COUNT(*) FROM sig_cache WHERE id = 'call_199'"), 1);
    assert_int_equal(
        store_query_file(f->db, "SELECT COUNT(*) FROM sig_cache WHERE id = 'call_000'"), 0);
    skiff_sigcache_fini();
    skiff_store_close(s);
}

static int
write_failures(struct skiff_store *s)
{
    struct skiff_store_stats st;
    skiff_store_stats(s, &st);
    return (int)st.write_failures;
}

/*
 * The database refuses writes (another process holds its lock): signatures wait in the
 * store, are still found there after memory dropped them, and are written once the lock
 * is gone.
 */
static void
test_pending_signatures_are_found_while_the_database_is_locked(void **state)
{
    struct fixture *f = *state;
    struct skiff_store *s = open_store(f);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(f->db, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);

    assert_int_equal(skiff_sigcache_init(1, s), 0);
    skiff_store_sig_limit(s, 100); /* the table keeps more than memory, to count both below */
    assert_int_equal(skiff_sigcache_put("a", "sig-a"), 0);
    for (int i = 0; i < 100 && write_failures(s) == 0; i++)
        usleep(50 * 1000); /* the first attempt waits out the 1 s busy timeout */
    assert_true(write_failures(s) > 0);
    assert_int_equal(skiff_sigcache_put("b", "sig-b"), 0); /* memory drops a */
    expect_sig("a", "sig-a");                              /* from the pending rows */

    assert_int_equal(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    skiff_store_flush(s);
    assert_int_equal(store_query_file(f->db, "SELECT COUNT(*) FROM sig_cache"), 2);
    skiff_sigcache_fini();
    skiff_store_close(s);
}

struct worker {
    int n;
    int bad;
};

static void *
hammer(void *arg)
{
    struct worker *w = arg;
    for (int i = 0; i < 2000; i++) {
        char id[32], sig[48];
        snprintf(id, sizeof id, "call_%d_%d", w->n, i);
        snprintf(sig, sizeof sig, "sig_%d_%d", w->n, i);
        if (skiff_sigcache_put(id, sig) != 0)
            w->bad++;
        char *got = skiff_sigcache_get(id);
        /* Another thread may have pushed it out already; what comes back must be ours. */
        if (got && strcmp(got, sig) != 0)
            w->bad++;
        free(got);
    }
    return NULL;
}

/* Worker threads share the one cache. */
static void
test_threads_share_the_cache(void **state)
{
    struct fixture *f = *state;
    struct skiff_store *s = open_store(f);
    assert_int_equal(skiff_sigcache_init(500, s), 0);
    pthread_t t[4];
    struct worker w[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (struct worker){.n = i};
        assert_int_equal(pthread_create(&t[i], NULL, hammer, &w[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(w[i].bad, 0);
    }
    struct skiff_sigcache_stats st;
    skiff_sigcache_stats(&st);
    assert_int_equal(st.entries, 500);
    skiff_sigcache_fini();
    skiff_store_close(s);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_memory_put_get_replace, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_arguments_and_lifecycle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_eviction_is_least_recently_used, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restart_keeps_signatures, setup, teardown),
        cmocka_unit_test_setup_teardown(test_another_instance_gets_what_one_put, setup, teardown),
        cmocka_unit_test_setup_teardown(test_evicted_from_memory_is_read_from_the_store, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_store_table_is_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_pending_signatures_are_found_while_the_database_is_locked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_threads_share_the_cache, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
