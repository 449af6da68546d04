/* A fresh directory with a storage.sqlite path in it, for the tests of what the store keeps
 * (test_store.c, test_sigcache.c, test_affinity.c): made by store_fixture_setup, removed with
 * everything in it by store_fixture_teardown; and one-number queries of the file, as another
 * process (the sqlite3 shell) sees it. Include after <cmocka.h>. */
#ifndef SKIFF_TESTS_STORE_FIXTURE_H
#define SKIFF_TESTS_STORE_FIXTURE_H

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "state/store.h"

struct fixture {
    char dir[64];
    char db[128];
};

static inline int
store_fixture_setup(void **state, const char *name)
{
    struct fixture *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    snprintf(f->dir, sizeof f->dir, "/tmp/skiff-%s-XXXXXX", name);
    if (!mkdtemp(f->dir)) {
        free(f);
        return -1;
    }
    snprintf(f->db, sizeof f->db, "%s/storage.sqlite", f->dir);
    *state = f;
    return 0;
}

static inline void
store_fixture_teardown(void **state)
{
    struct fixture *f = *state;
    DIR *d = opendir(f->dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            char p[400];
            snprintf(p, sizeof p, "%s/%s", f->dir, e->d_name);
            unlink(p);
        }
        closedir(d);
    }
    rmdir(f->dir);
    free(f);
}

static inline struct skiff_store *
open_store(const struct fixture *f)
{
    char err[256];
    struct skiff_store *s = skiff_store_open(f->db, "fp", err, sizeof err);
    if (!s)
        fail_msg("open: %s", err);
    return s;
}

/* The one number a query of db answers (its first row's first column). */
static inline int64_t
store_query_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *stmt;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &stmt, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(stmt, 0);
    sqlite3_finalize(stmt);
    return v;
}

/* The same on the file at path, opened read-only for the query. */
static inline int64_t
store_query_file(const char *path, const char *sql)
{
    sqlite3 *db;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    int64_t v = store_query_int(db, sql);
    sqlite3_close(db);
    return v;
}

#endif
