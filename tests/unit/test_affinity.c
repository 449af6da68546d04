/* The owner table of stored resources (state/affinity.h), in memory and through the store:
 * a restart, or another skiff sharing storage.sqlite, still finds owners and upload
 * sessions; forgets and expiries reach the file too. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <dirent.h>
#include <sqlite3.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/err.h"
#include "state/affinity.h"
#include "state/store.h"

#include "store_fixture.h"

static int
setup(void **state)
{
    return store_fixture_setup(state, "affinity");
}

static int
teardown(void **state)
{
    skiff_affinity_fini();
    store_fixture_teardown(state);
    return 0;
}

/* Asserts name's owner at now is want_label (NULL: none), with want_value when not NULL. */
static void
expect_owner(const char *name, int64_t now, const char *want_label, const char *want_value)
{
    char label[SKIFF_AFFINITY_MAX_LABEL], value[SKIFF_AFFINITY_MAX_VALUE + 1];
    int rc = skiff_affinity_get(name, now, label, sizeof label, value, sizeof value);
    if (!want_label) {
        if (rc == 0)
            fail_msg("%s: expected no owner, got \"%s\"", name, label);
        return;
    }
    if (rc != 0)
        fail_msg("%s: expected owner \"%s\", got none", name, want_label);
    assert_string_equal(label, want_label);
    if (want_value)
        assert_string_equal(value, want_value);
}

static void
test_memory_only_without_a_store(void **state)
{
    (void)state;
    int64_t now = skiff_now_ms();
    assert_int_equal(skiff_affinity_put("files/a", "key-1", NULL, now + 1000), 0);
    assert_int_equal(skiff_affinity_put("uploads/s1", "key-2", "UP-1", now + 1000), 0);
    expect_owner("files/a", now, "key-1", "");
    expect_owner("uploads/s1", now, "key-2", "UP-1");
    expect_owner("files/a", now + 1000, NULL, NULL); /* expired */
    expect_owner("files/a", now, NULL, NULL);        /* and dropped */
    skiff_affinity_forget("uploads/s1");
    expect_owner("uploads/s1", now, NULL, NULL);
    char big[SKIFF_AFFINITY_MAX_NAME + 2];
    memset(big, 'n', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    assert_int_equal(skiff_affinity_put(big, "key-1", NULL, now + 1000), -1);
    skiff_affinity_fini();
    skiff_affinity_fini(); /* twice is fine */
}

/* A restart finds the owners and upload sessions of the last run; a forget stays forgotten. */
static void
test_restart_keeps_owners(void **state)
{
    struct fixture *f = *state;
    int64_t now = skiff_now_ms();
    struct skiff_store *s = open_store(f);
    skiff_affinity_init(s);
    assert_int_equal(skiff_affinity_put("files/abc", "key-2", NULL, now + 3600000), 0);
    assert_int_equal(skiff_affinity_put("uploads/9f3e", "key-3", "AB-upstream_id", now + 600000),
                     0);
    assert_int_equal(skiff_affinity_put("cachedContents/c1", "key-1", NULL, now + 600000), 0);
    assert_int_equal(skiff_affinity_put("files/abc", "key-4", NULL, now + 3600000), 0); /* newer */
    skiff_affinity_forget("cachedContents/c1");
    skiff_affinity_fini();
    skiff_store_close(s); /* writes what is pending */
    assert_int_equal(store_query_file(f->db, "SELECT COUNT(*) FROM affinity"), 2);

    s = open_store(f);
    skiff_affinity_init(s);
    expect_owner("files/abc", now, "key-4", "");
    expect_owner("uploads/9f3e", now, "key-3", "AB-upstream_id");
    expect_owner("cachedContents/c1", now, NULL, NULL);
    expect_owner("files/never", now, NULL, NULL);
    /* The store does not answer past an expiry either. */
    skiff_affinity_clear();
    expect_owner("uploads/9f3e", now + 600000, NULL, NULL);
    /* Read once, an owner is in memory again: it is found after the store is gone. */
    expect_owner("files/abc", now, "key-4", "");
    skiff_affinity_init(NULL);
    skiff_store_close(s);
    expect_owner("files/abc", now, "key-4", "");
    expect_owner("uploads/9f3e", now, NULL, NULL);
}

/* Two skiffs sharing the file: an owner one records, the other reads (through its own
 * connection), and a forget reaches it. */
static void
test_another_instance_finds_the_owner(void **state)
{
    struct fixture *f = *state;
    int64_t now = skiff_now_ms();
    struct skiff_store *a = open_store(f);
    struct skiff_store *b = open_store(f);
    skiff_affinity_init(a);
    assert_int_equal(skiff_affinity_put("uploads/77", "key-1", "UPID", now + 60000), 0);
    skiff_store_flush(a);
    char label[SKIFF_AFFINITY_MAX_LABEL], value[64];
    int64_t exp = 0;
    assert_int_equal(
        skiff_store_get_owner(b, "uploads/77", now, label, sizeof label, value, sizeof value, &exp),
        0);
    assert_string_equal(label, "key-1");
    assert_string_equal(value, "UPID");
    assert_int_equal(exp, now + 60000);
    /* A value that does not fit the caller's buffer is no answer, never a cut one. */
    char tiny[3];
    assert_int_equal(
        skiff_store_get_owner(b, "uploads/77", now, label, sizeof label, tiny, sizeof tiny, NULL),
        -1);
    skiff_affinity_forget("uploads/77");
    skiff_store_flush(a);
    assert_int_equal(
        skiff_store_get_owner(b, "uploads/77", now, label, sizeof label, NULL, 0, NULL), -1);
    skiff_affinity_fini();
    skiff_store_close(b);
    skiff_store_close(a);
}

/* Expired rows leave the file: the first write of owners after open prunes them. */
static void
test_expired_owners_are_pruned(void **state)
{
    struct fixture *f = *state;
    int64_t now = skiff_now_ms();
    struct skiff_store *s = open_store(f);
    assert_int_equal(skiff_store_put_owner(s, "files/old", "key-1", NULL, now - 1000), 0);
    assert_int_equal(skiff_store_put_owner(s, "files/new", "key-1", NULL, now + 3600000), 0);
    skiff_store_flush(s);
    assert_int_equal(store_query_file(f->db, "SELECT COUNT(*) FROM affinity"), 1);
    assert_int_equal(
        store_query_file(f->db, "SELECT COUNT(*) FROM affinity WHERE name = 'files/new'"), 1);
    skiff_store_close(s);
    /* A row that expired while skiff was down goes at the next run's first write. */
    sqlite3 *db;
    assert_int_equal(sqlite3_open(f->db, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db,
                                  "INSERT INTO affinity (name, label, value, expire_ms)"
                                  " VALUES ('files/stale', 'key-2', NULL, 1)",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    s = open_store(f);
    assert_int_equal(skiff_store_put_owner(s, "files/next", "key-1", NULL, now + 3600000), 0);
    skiff_store_flush(s);
    assert_int_equal(
        store_query_file(f->db, "SELECT COUNT(*) FROM affinity WHERE name = 'files/stale'"), 0);
    assert_int_equal(store_query_file(f->db, "SELECT COUNT(*) FROM affinity"), 2);
    skiff_store_close(s);
}

/* What is queued is found before the store thread wrote it, a queued forget too. */
static void
test_pending_owners_are_found(void **state)
{
    struct fixture *f = *state;
    int64_t now = skiff_now_ms();
    struct skiff_store *s = open_store(f);
    /* Another process holds the write lock: the rows stay pending. */
    sqlite3 *db;
    assert_int_equal(sqlite3_open(f->db, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(skiff_store_put_owner(s, "files/p", "key-3", "v", now + 60000), 0);
    struct skiff_store_stats st;
    for (int i = 0; i < 100; i++) {
        skiff_store_stats(s, &st);
        if (st.write_failures)
            break;
        usleep(50 * 1000); /* the first attempt waits out the 1 s busy timeout */
    }
    assert_true(st.write_failures > 0);
    assert_int_equal(st.pending_affs, 1); /* put back, to be retried */
    char label[SKIFF_AFFINITY_MAX_LABEL], value[8];
    assert_int_equal(
        skiff_store_get_owner(s, "files/p", now, label, sizeof label, value, sizeof value, NULL),
        0);
    assert_string_equal(label, "key-3");
    assert_string_equal(value, "v");
    assert_int_equal(skiff_store_forget_owner(s, "files/p"), 0);
    assert_int_equal(skiff_store_get_owner(s, "files/p", now, label, sizeof label, NULL, 0, NULL),
                     -1);
    assert_int_equal(skiff_store_put_owner(NULL, "files/p", "k", NULL, 0), SKIFF_EINVAL);
    assert_int_equal(skiff_store_put_owner(s, "files/p", NULL, NULL, 0), SKIFF_EINVAL);
    assert_int_equal(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    skiff_store_flush(s);
    assert_int_equal(store_query_file(f->db, "SELECT COUNT(*) FROM affinity"), 0);
    skiff_store_close(s);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_memory_only_without_a_store, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restart_keeps_owners, setup, teardown),
        cmocka_unit_test_setup_teardown(test_another_instance_finds_the_owner, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expired_owners_are_pruned, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pending_owners_are_found, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
