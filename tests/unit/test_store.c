#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <time.h>
#include <unistd.h>

#include "base/clock.h"
#include "config/config.h"
#include "gemini/pacific.h"
#include "relay/keypool.h"
#include "state/store.h"
#include "store_fixture.h"

#define NOW_MS INT64_C(1795000000000) /* a fixed clock: 2026-11-18, give or take */
#define DAY_MS INT64_C(86400000)

/* Every test gets its own empty directory, removed with what SQLite left in it. */
static int
setup(void **state)
{
    return store_fixture_setup(state, "store");
}

static int
teardown(void **state)
{
    store_fixture_teardown(state);
    return 0;
}

/* What a load handed back. */
struct loaded {
    struct skiff_key_state st[256];
    size_t nst;
    struct skiff_key_usage u[256];
    size_t nu;
};

static void
on_state(const struct skiff_key_state *st, void *ud)
{
    struct loaded *l = ud;
    assert_true(l->nst < 256);
    l->st[l->nst++] = *st;
}

static void
on_usage(const struct skiff_key_usage *u, void *ud)
{
    struct loaded *l = ud;
    assert_true(l->nu < 256);
    l->u[l->nu++] = *u;
}

static void
load_all(struct skiff_store *s, int64_t now_ms, const char *day, struct loaded *l)
{
    memset(l, 0, sizeof *l);
    assert_int_equal(skiff_store_load(s, now_ms, day, on_state, on_usage, l), 0);
}

static const struct skiff_key_state *
find_state(const struct loaded *l, const char *key_id, const char *model)
{
    for (size_t i = 0; i < l->nst; i++)
        if (strcmp(l->st[i].key_id, key_id) == 0 && strcmp(l->st[i].model, model) == 0)
            return &l->st[i];
    return NULL;
}

static const struct skiff_key_usage *
find_usage(const struct loaded *l, const char *key_id, const char *model)
{
    for (size_t i = 0; i < l->nu; i++)
        if (strcmp(l->u[i].key_id, key_id) == 0 && strcmp(l->u[i].model, model) == 0)
            return &l->u[i];
    return NULL;
}

static struct skiff_key_state
state(const char *key, const char *model, int64_t rest_until, int retired, const char *reason)
{
    struct skiff_key_state st;
    memset(&st, 0, sizeof st);
    skiff_state_key_id(key, st.key_id);
    snprintf(st.label, sizeof st.label, "label-%s", key);
    snprintf(st.model, sizeof st.model, "%s", model);
    st.rest_until_ms = rest_until;
    st.retired = retired;
    snprintf(st.reason, sizeof st.reason, "%s", reason);
    st.updated_ms = NOW_MS;
    return st;
}

static struct skiff_key_usage
usage(const char *key, const char *model, const char *day, int64_t requests, int64_t tokens)
{
    struct skiff_key_usage u;
    memset(&u, 0, sizeof u);
    skiff_state_key_id(key, u.key_id);
    snprintf(u.model, sizeof u.model, "%s", model);
    snprintf(u.day, sizeof u.day, "%s", day);
    u.requests = requests;
    u.tokens = tokens;
    return u;
}

static struct skiff_store *
open_ok(const struct fixture *f, const char *fingerprint)
{
    char err[256];
    struct skiff_store *s = skiff_store_open(f->db, fingerprint, err, sizeof err);
    if (!s)
        fail_msg("open %s: %s", f->db, err);
    return s;
}

/* The restart case: a key resting until tomorrow is still resting after a restart. */
static void
test_rest_survives_restart(void **state_)
{
    struct fixture *f = *state_;
    struct skiff_store *s = open_ok(f, "fp1");
    struct skiff_key_state tomorrow =
        state("AIza-one", "gemini-2.5-pro", NOW_MS + DAY_MS, 0, "daily quota spent");
    struct skiff_key_state expired = state("AIza-two", "gemini-2.5-pro", NOW_MS - 1, 0, "rpm");
    struct skiff_key_state healthy = state("AIza-three", "gemini-2.5-flash", 0, 0, "");
    /* An older state of the same (key, model) must be replaced, not kept beside. */
    struct skiff_key_state older = state("AIza-one", "gemini-2.5-pro", NOW_MS + 1000, 0, "rpm");
    skiff_store_put_state(s, &older);
    skiff_store_put_state(s, &tomorrow);
    skiff_store_put_state(s, &expired);
    skiff_store_put_state(s, &healthy);
    skiff_store_close(s);

    s = open_ok(f, "fp1");
    struct loaded l;
    load_all(s, NOW_MS, "2026-11-18", &l);
    assert_int_equal(l.nst, 1);
    const struct skiff_key_state *got = find_state(&l, tomorrow.key_id, "gemini-2.5-pro");
    assert_non_null(got);
    assert_int_equal(got->rest_until_ms, NOW_MS + DAY_MS);
    assert_int_equal(got->retired, 0);
    assert_string_equal(got->label, "label-AIza-one");
    assert_string_equal(got->reason, "daily quota spent");
    assert_int_equal(got->updated_ms, NOW_MS);

    /* The next day the rest is over, and nothing comes back. */
    load_all(s, NOW_MS + DAY_MS, "2026-11-19", &l);
    assert_int_equal(l.nst, 0);
    skiff_store_close(s);
}

static void
test_retirements_follow_the_fingerprint(void **state_)
{
    struct fixture *f = *state_;
    struct skiff_store *s = open_ok(f, "keys-v1");
    struct skiff_key_state keywide = state("AIza-bad", "*", 0, 1, "API_KEY_INVALID");
    struct skiff_key_state permodel = state("AIza-free", "gemini-2.5-pro", 0, 1, "quota 0");
    struct skiff_key_state resting =
        state("AIza-free", "gemini-2.5-flash", NOW_MS + DAY_MS, 0, "daily quota spent");
    struct skiff_key_usage u = usage("AIza-free", "gemini-2.5-flash", "2026-11-18", 7, 700);
    skiff_store_put_state(s, &keywide);
    skiff_store_put_state(s, &permodel);
    skiff_store_put_state(s, &resting);
    skiff_store_add_usage(s, &u);
    skiff_store_close(s);

    /* Same key set: the retirements stand. */
    s = open_ok(f, "keys-v1");
    struct loaded l;
    load_all(s, NOW_MS, "2026-11-18", &l);
    assert_int_equal(l.nst, 3);
    const struct skiff_key_state *got = find_state(&l, keywide.key_id, "*");
    assert_non_null(got);
    assert_int_equal(got->retired, 1);
    assert_string_equal(got->reason, "API_KEY_INVALID");
    got = find_state(&l, permodel.key_id, "gemini-2.5-pro");
    assert_non_null(got);
    assert_int_equal(got->retired, 1);
    skiff_store_close(s);

    /* The config changed: retirements are forgotten, a rest and today's usage are not. */
    s = open_ok(f, "keys-v2");
    load_all(s, NOW_MS, "2026-11-18", &l);
    assert_int_equal(l.nst, 1);
    assert_null(find_state(&l, keywide.key_id, "*"));
    assert_null(find_state(&l, permodel.key_id, "gemini-2.5-pro"));
    assert_non_null(find_state(&l, resting.key_id, "gemini-2.5-flash"));
    assert_int_equal(l.nu, 1);
    assert_int_equal(l.u[0].requests, 7);
    skiff_store_close(s);

    /* And the new fingerprint is the one remembered: reopening with it keeps a retirement. */
    s = open_ok(f, "keys-v2");
    skiff_store_put_state(s, &keywide);
    skiff_store_close(s);
    s = open_ok(f, "keys-v2");
    load_all(s, NOW_MS, "2026-11-18", &l);
    assert_non_null(find_state(&l, keywide.key_id, "*"));
    skiff_store_close(s);
}

static void
test_usage_adds_up_per_day(void **state_)
{
    struct fixture *f = *state_;
    struct skiff_store *s = open_ok(f, "fp");
    for (int i = 0; i < 3; i++) {
        struct skiff_key_usage u = usage("AIza-one", "gemini-2.5-pro", "2026-11-18", 1, 100);
        skiff_store_add_usage(s, &u);
    }
    struct skiff_key_usage other_model = usage("AIza-one", "gemini-2.5-flash", "2026-11-18", 2, 5);
    struct skiff_key_usage yesterday = usage("AIza-one", "gemini-2.5-pro", "2026-11-17", 40, 4000);
    skiff_store_add_usage(s, &other_model);
    skiff_store_add_usage(s, &yesterday);
    skiff_store_close(s);

    s = open_ok(f, "fp");
    struct skiff_key_usage more = usage("AIza-one", "gemini-2.5-pro", "2026-11-18", 1, 50);
    skiff_store_add_usage(s, &more);
    skiff_store_flush(s);

    struct loaded l;
    load_all(s, NOW_MS, "2026-11-18", &l);
    assert_int_equal(l.nu, 2);
    const struct skiff_key_usage *got = find_usage(&l, more.key_id, "gemini-2.5-pro");
    assert_non_null(got);
    assert_string_equal(got->day, "2026-11-18");
    assert_int_equal(got->requests, 4);
    assert_int_equal(got->tokens, 350);
    got = find_usage(&l, more.key_id, "gemini-2.5-flash");
    assert_non_null(got);
    assert_int_equal(got->requests, 2);

    load_all(s, NOW_MS, "2026-11-17", &l);
    assert_int_equal(l.nu, 1);
    assert_int_equal(l.u[0].requests, 40);
    assert_int_equal(l.u[0].tokens, 4000);
    skiff_store_close(s);
}

static void
test_flush_makes_writes_visible(void **state_)
{
    struct fixture *f = *state_;
    struct skiff_store *s = open_ok(f, "fp");
    struct skiff_key_state st = state("AIza-one", "gemini-2.5-pro", NOW_MS + 60000, 0, "rpm");
    struct skiff_key_usage u = usage("AIza-one", "gemini-2.5-pro", "2026-11-18", 3, 30);
    skiff_store_put_state(s, &st);
    skiff_store_add_usage(s, &u);
    skiff_store_flush(s);

    /* Another process (the sqlite3 shell, an operator) sees it while skiff still runs. */
    sqlite3 *db;
    assert_int_equal(sqlite3_open_v2(f->db, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(store_query_int(db, "SELECT rest_until_ms FROM key_state WHERE model = "
                                         "'gemini-2.5-pro'"),
                     NOW_MS + 60000);
    assert_int_equal(store_query_int(db, "SELECT requests FROM key_usage WHERE day = '2026-11-18'"),
                     3);
    assert_int_equal(store_query_int(db, "PRAGMA user_version"), 1);
    sqlite3_close(db);
    skiff_store_close(s);
}

/* A write that fails at run time costs that row only; the store keeps working. */
static void
test_write_error_is_survived(void **state_)
{
    struct fixture *f = *state_;
    struct skiff_store *s = open_ok(f, "fp");
    skiff_store_flush(s);

    sqlite3 *db;
    assert_int_equal(sqlite3_open(f->db, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "DROP TABLE key_usage", NULL, NULL, NULL), SQLITE_OK);

    struct skiff_key_usage u = usage("AIza-one", "gemini-2.5-pro", "2026-11-18", 1, 1);
    struct skiff_key_state st = state("AIza-one", "gemini-2.5-pro", 0, 1, "quota 0");
    skiff_store_add_usage(s, &u);
    skiff_store_put_state(s, &st);
    skiff_store_flush(s);
    assert_int_equal(store_query_int(db, "SELECT count(*) FROM key_state WHERE retired = 1"), 1);

    /* Later batches still land. */
    struct skiff_key_state st2 = state("AIza-two", "*", 0, 1, "API_KEY_INVALID");
    skiff_store_put_state(s, &st2);
    skiff_store_flush(s);
    assert_int_equal(store_query_int(db, "SELECT count(*) FROM key_state WHERE retired = 1"), 2);
    sqlite3_close(db);
    skiff_store_close(s);
}

static void
test_open_errors_name_the_path(void **state_)
{
    struct fixture *f = *state_;
    char err[256];
    char path[256];
    snprintf(path, sizeof path, "%s/no/such/dir/x.db", f->dir);
    assert_null(skiff_store_open(path, "fp", err, sizeof err));
    assert_non_null(strstr(err, "storage.sqlite"));
    assert_non_null(strstr(err, path));
    assert_non_null(strstr(err, "unable to open database file"));

    /* A file that is not a database is refused, not overwritten. */
    FILE *fp = fopen(f->db, "w");
    assert_non_null(fp);
    for (int i = 0; i < 64; i++)
        fputs("this is not an sqlite database, it is a config file someone misnamed\n", fp);
    fclose(fp);
    assert_null(skiff_store_open(f->db, "fp", err, sizeof err));
    assert_non_null(strstr(err, f->db));
    assert_non_null(strstr(err, "not a database"));

    /* Shutting down what never opened is fine. */
    skiff_store_close(NULL);
    skiff_store_flush(NULL);
}

static void
test_key_id(void **state_)
{
    const char *key = "AIzaSyD-abcdefghijklmnopqrstuvwxyz012345";
    char a[17], b[17], c[17];
    skiff_state_key_id(key, a);
    skiff_state_key_id(key, b);
    skiff_state_key_id("AIzaSyD-abcdefghijklmnopqrstuvwxyz012346", c);
    assert_string_equal(a, b);
    assert_string_not_equal(a, c);
    assert_int_equal(strlen(a), 16);
    assert_int_equal(strspn(a, "0123456789abcdef"), 16);
    assert_null(strstr(a, "AIza"));
    assert_null(strstr(key, a));

    /* FNV-1a 64 test vectors: the id must not change between builds, or a restart forgets. */
    skiff_state_key_id("", a);
    assert_string_equal(a, "cbf29ce484222325");
    skiff_state_key_id("a", a);
    assert_string_equal(a, "af63dc4c8601ec8c");
}

#define WRITERS 2
#define PUTS_PER_WRITER 5000
#define KEYS_PER_WRITER 50

struct writer {
    struct skiff_store *s;
    int id;
};

/* Puts versions 1..N of the state of its own keys; the last version is the rest_until. */
static void *
writer_main(void *arg)
{
    struct writer *w = arg;
    for (int v = 1; v <= PUTS_PER_WRITER; v++) {
        char key[32];
        snprintf(key, sizeof key, "w%d-key%d", w->id, v % KEYS_PER_WRITER);
        struct skiff_key_state st = state(key, "gemini-2.5-pro", v, 0, "rpm");
        skiff_store_put_state(w->s, &st);
        /* One writer also flushes as it goes, so flushes race with puts too. */
        if (w->id == 0 && v % 1000 == 0)
            skiff_store_flush(w->s);
    }
    return NULL;
}

static void
test_concurrent_puts_keep_the_latest(void **state_)
{
    struct fixture *f = *state_;
    struct skiff_store *s = open_ok(f, "fp");
    pthread_t t[WRITERS];
    struct writer w[WRITERS];
    for (int i = 0; i < WRITERS; i++) {
        w[i] = (struct writer){s, i};
        assert_int_equal(pthread_create(&t[i], NULL, writer_main, &w[i]), 0);
    }
    for (int i = 0; i < WRITERS; i++)
        pthread_join(t[i], NULL);
    skiff_store_flush(s);

    struct loaded l;
    load_all(s, 0, NULL, &l);
    assert_int_equal(l.nst, WRITERS * KEYS_PER_WRITER);
    for (int i = 0; i < WRITERS; i++)
        for (int k = 0; k < KEYS_PER_WRITER; k++) {
            char key[32], id[17];
            snprintf(key, sizeof key, "w%d-key%d", i, k);
            skiff_state_key_id(key, id);
            const struct skiff_key_state *got = find_state(&l, id, "gemini-2.5-pro");
            assert_non_null(got);
            /* The last v with v % KEYS_PER_WRITER == k. */
            int64_t last = PUTS_PER_WRITER - ((PUTS_PER_WRITER - k) % KEYS_PER_WRITER);
            assert_int_equal(got->rest_until_ms, last);
        }
    skiff_store_close(s);
}

static int64_t
mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * The disk stalls (another writer holds the database): callers do not wait, and once the
 * disk is back the newest state and every count land, since pending rows are coalesced
 * instead of queued.
 */
static void
test_stalled_disk_never_blocks_callers(void **state_)
{
    struct fixture *f = *state_;
    struct skiff_store *s = open_ok(f, "fp");
    sqlite3 *db;
    assert_int_equal(sqlite3_open(f->db, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);

    int64_t t0 = mono_ms();
    for (int v = 1; v <= 20000; v++) {
        struct skiff_key_usage u = usage("AIza-one", "gemini-2.5-pro", "2026-11-18", 1, 10);
        skiff_store_add_usage(s, &u);
        struct skiff_key_state st = state("AIza-one", "gemini-2.5-pro", v, 0, "rpm");
        skiff_store_put_state(s, &st);
    }
    /* Far below the store's busy timeout: nobody waited for the locked database. */
    assert_true(mono_ms() - t0 < 1000);
    assert_int_equal(sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);

    skiff_store_flush(s);
    struct loaded l;
    load_all(s, 0, "2026-11-18", &l);
    assert_int_equal(l.nst, 1);
    assert_int_equal(l.st[0].rest_until_ms, 20000);
    assert_int_equal(l.nu, 1);
    assert_int_equal(l.u[0].requests, 20000);
    assert_int_equal(l.u[0].tokens, 200000);
    skiff_store_close(s);
}

/*
 * Issue 11 item 9: a retirement and a day rest, then a burst of usage far larger than the
 * old queue (10,000 items, oldest dropped) while the disk is held: after a restart the key
 * is still retired and still resting, and no count is lost.
 */
static void
test_usage_burst_never_evicts_a_retirement(void **state_)
{
    struct fixture *f = *state_;
    struct skiff_store *s = open_ok(f, "fp");
    sqlite3 *db;
    assert_int_equal(sqlite3_open(f->db, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    static const char *const models[] = {"gemini-2.5-flash", "gemini-2.5-flash-lite",
                                         "gemini-2.5-pro"};

    /* The store thread takes a first write and waits in it for the lock. */
    struct skiff_key_state first = state("AIza-two", models[0], NOW_MS + 60000, 0, "rpm");
    skiff_store_put_state(s, &first);
    usleep(100000);
    struct skiff_key_state retired = state("AIza-bad", "*", 0, 1, "API_KEY_INVALID");
    struct skiff_key_state rest =
        state("AIza-one", "gemini-2.5-pro", NOW_MS + DAY_MS, 0, "daily quota spent");
    skiff_store_put_state(s, &retired);
    skiff_store_put_state(s, &rest);
    for (int i = 0; i < 60000; i++) {
        struct skiff_key_usage u =
            usage(i % 2 ? "AIza-one" : "AIza-two", models[i % 3], "2026-11-18", 1, 3);
        skiff_store_add_usage(s, &u);
    }
    assert_int_equal(sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    skiff_store_close(s);

    s = open_ok(f, "fp");
    struct loaded l;
    load_all(s, NOW_MS, "2026-11-18", &l);
    const struct skiff_key_state *got = find_state(&l, retired.key_id, "*");
    assert_non_null(got);
    assert_int_equal(got->retired, 1);
    got = find_state(&l, rest.key_id, "gemini-2.5-pro");
    assert_non_null(got);
    assert_int_equal(got->rest_until_ms, NOW_MS + DAY_MS);
    assert_int_equal(l.nu, 6);
    int64_t requests = 0, tokens = 0;
    for (size_t i = 0; i < l.nu; i++) {
        assert_int_equal(l.u[i].requests, 10000);
        requests += l.u[i].requests;
        tokens += l.u[i].tokens;
    }
    assert_int_equal(requests, 60000);
    assert_int_equal(tokens, 180000);
    skiff_store_close(s);
}

/* stderr replaced by a pipe, to count what the store logs. */
struct capture {
    int saved;
    int rd;
    char buf[65536];
    size_t len;
};

static void
capture_start(struct capture *c)
{
    int p[2];
    assert_int_equal(pipe(p), 0);
    fcntl(p[0], F_SETFL, O_NONBLOCK);
    fflush(stderr);
    c->saved = dup(STDERR_FILENO);
    assert_int_equal(dup2(p[1], STDERR_FILENO), STDERR_FILENO);
    close(p[1]);
    c->rd = p[0];
    c->len = 0;
}

/* Reads what arrived so far; returns how many times needle occurs in everything read. */
static int
capture_count(struct capture *c, const char *needle)
{
    ssize_t n;
    while (c->len + 1 < sizeof c->buf &&
           (n = read(c->rd, c->buf + c->len, sizeof c->buf - 1 - c->len)) > 0)
        c->len += (size_t)n;
    c->buf[c->len] = '\0';
    int count = 0;
    for (const char *p = c->buf; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        count++;
    return count;
}

static void
capture_end(struct capture *c)
{
    dup2(c->saved, STDERR_FILENO);
    close(c->saved);
    close(c->rd);
    fputs(c->buf, stderr);
}

static struct skiff_store_stats
stats_of(struct skiff_store *s)
{
    struct skiff_store_stats st;
    skiff_store_stats(s, &st);
    return st;
}

/*
 * Issue 11 item 10: the database stops taking writes while skiff runs (another process
 * holds its write lock, as a full disk or a read-only file would refuse them). Callers
 * never wait; the failure is logged once however often the write is retried, and counted;
 * once the database takes writes again the state lands without anyone asking.
 */
static void
test_refused_writes_are_logged_once_and_retried(void **state_)
{
    struct fixture *f = *state_;
    struct capture c;
    capture_start(&c);
    struct skiff_store *s = open_ok(f, "fp");
    sqlite3 *db;
    assert_int_equal(sqlite3_open(f->db, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "BEGIN EXCLUSIVE", NULL, NULL, NULL), SQLITE_OK);

    struct skiff_key_state retired = state("AIza-bad", "*", 0, 1, "API_KEY_INVALID");
    struct skiff_key_usage u = usage("AIza-one", "gemini-2.5-pro", "2026-11-18", 2, 20);
    int64_t t0 = mono_ms();
    skiff_store_put_state(s, &retired);
    skiff_store_add_usage(s, &u);
    assert_true(mono_ms() - t0 < 100);

    /* Two failed attempts at least (each waits out the busy timeout, then backs off). */
    int64_t deadline = mono_ms() + 20000;
    while (stats_of(s).write_failures < 2 && mono_ms() < deadline)
        usleep(50000);
    struct skiff_store_stats st = stats_of(s);
    assert_true(st.write_failures >= 2);
    assert_true(st.failing);
    assert_int_equal(st.rows_lost, 0);
    assert_true(st.pending_states + st.pending_usage >= 1);
    assert_int_equal(capture_count(&c, "\"store_write_failed\""), 1);
    assert_int_equal(capture_count(&c, "\"store_write_recovered\""), 0);
    /* Later states keep coalescing meanwhile: the newest one is what lands. */
    retired.updated_ms = NOW_MS + 1;
    skiff_store_put_state(s, &retired);

    assert_int_equal(sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
    deadline = mono_ms() + 40000;
    while ((st = stats_of(s)).failing && mono_ms() < deadline)
        usleep(50000);
    /* Usage may wait for its timer; give it its few seconds, without a flush. */
    while (((st = stats_of(s)).pending_states || st.pending_usage) && mono_ms() < deadline)
        usleep(50000);
    assert_false(st.failing);
    assert_int_equal(capture_count(&c, "\"store_write_failed\""), 1);
    assert_int_equal(capture_count(&c, "\"store_write_recovered\""), 1);
    usleep(100000); /* the committing attempt ends just after the tables empty */
    assert_int_equal(store_query_int(db, "SELECT count(*) FROM key_state WHERE retired = 1"), 1);
    assert_int_equal(store_query_int(db, "SELECT updated_ms FROM key_state WHERE model = '*'"),
                     NOW_MS + 1);
    assert_int_equal(store_query_int(db, "SELECT requests FROM key_usage"), 2);
    sqlite3_close(db);
    skiff_store_close(s);
    capture_end(&c);
}

/*
 * The key pool's usage reaches the store per Pacific day: requests on either side of
 * midnight Pacific land in their own day's row, and a restart reads today's back.
 */
static void
test_pool_usage_lands_per_pacific_day(void **state_)
{
    struct fixture *f = *state_;
    struct skiff_key keys[] = {{"AIza-pool-one", "one"}};
    struct skiff_config cfg = {.keys = keys, .nkeys = 1};
    struct skiff_store *s = open_ok(f, "fp");
    struct skiff_keypool *p = skiff_keypool_new(&cfg, s);
    assert_non_null(p);
    int64_t midnight = skiff_pacific_next_midnight_ms(NOW_MS);
    int64_t before = midnight - 1000, after = midnight + 1000;
    char day1[11], day2[11];
    skiff_pacific_date(before, day1);
    skiff_pacific_date(after, day2);
    assert_string_not_equal(day1, day2);
    for (int i = 0; i < 3; i++)
        skiff_keypool_release(p, 0, "gemini-2.5-flash", SKIFF_FAULT_NONE, -1, NULL, 10, before);
    for (int i = 0; i < 2; i++)
        skiff_keypool_release(p, 0, "gemini-2.5-flash", SKIFF_FAULT_NONE, -1, NULL, 7, after);
    skiff_keypool_free(p);
    skiff_store_close(s);

    s = open_ok(f, "fp");
    struct loaded l;
    char id[17];
    skiff_state_key_id("AIza-pool-one", id);
    load_all(s, before, day1, &l);
    assert_int_equal(l.nu, 1);
    assert_string_equal(l.u[0].key_id, id);
    assert_string_equal(l.u[0].model, "gemini-2.5-flash");
    assert_int_equal(l.u[0].requests, 3);
    assert_int_equal(l.u[0].tokens, 30);
    load_all(s, after, day2, &l);
    assert_int_equal(l.nu, 1);
    assert_int_equal(l.u[0].requests, 2);
    assert_int_equal(l.u[0].tokens, 14);
    skiff_store_close(s);
}

/*
 * Two instances sharing storage.sqlite through the SQLite backend: a rest and a retirement
 * one pool records reach the other's pool within the watch interval, without a restart.
 */
static void
test_two_pools_sharing_the_file_hear_each_other(void **state_)
{
    struct fixture *f = *state_;
    struct skiff_key keys[] = {{"AIza-shared-one", "one"}, {"AIza-shared-two", "two"}};
    struct skiff_config cfg = {.keys = keys, .nkeys = 2};
    struct skiff_store *sa = open_ok(f, "fp");
    struct skiff_store *sb = open_ok(f, "fp");
    struct skiff_keypool *a = skiff_keypool_new(&cfg, sa);
    struct skiff_keypool *b = skiff_keypool_new(&cfg, sb);
    assert_non_null(a);
    assert_non_null(b);
    int64_t now = skiff_now_ms(); /* the watcher reads rests against the wall clock */
    skiff_keypool_release(a, 0, "gemini-2.5-flash", SKIFF_FAULT_QUOTA_MINUTE, 30, "rpm", 0, now);
    skiff_keypool_release(a, 1, "gemini-2.5-flash", SKIFF_FAULT_KEY_INVALID, -1, "invalid", 0, now);
    skiff_store_flush(sa);
    int heard = 0;
    for (int i = 0; i < 60 && !heard; i++) {
        usleep(100 * 1000);
        heard = strcmp(skiff_keypool_status(b, 0, "gemini-2.5-flash", now), "resting") == 0 &&
                skiff_keypool_usable(b) == 1;
    }
    assert_true(heard);
    assert_string_equal(skiff_keypool_status(b, 0, "gemini-2.5-pro", now), "ok");
    assert_string_equal(skiff_keypool_status(b, 0, "gemini-2.5-flash", now + 30000), "ok");
    int64_t back;
    assert_int_equal(skiff_keypool_acquire(b, "gemini-2.5-flash", now, &back), -1);
    assert_int_equal(back, now + 30000);
    skiff_keypool_free(b);
    skiff_keypool_free(a);
    skiff_store_close(sb);
    skiff_store_close(sa);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_rest_survives_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retirements_follow_the_fingerprint, setup, teardown),
        cmocka_unit_test_setup_teardown(test_usage_adds_up_per_day, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flush_makes_writes_visible, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_error_is_survived, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_errors_name_the_path, setup, teardown),
        cmocka_unit_test(test_key_id),
        cmocka_unit_test_setup_teardown(test_two_pools_sharing_the_file_hear_each_other, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_puts_keep_the_latest, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stalled_disk_never_blocks_callers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_usage_burst_never_evicts_a_retirement, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_refused_writes_are_logged_once_and_retried, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_pool_usage_lands_per_pacific_day, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
