#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h>

#include "base/err.h"
#include "base/log.h"

/* stderr is replaced by a pipe the test reads (or, to stall the log thread, does not). */
struct capture {
    int saved;
    int rd;
};

static void
capture_start(struct capture *c)
{
    int p[2];
    assert_int_equal(pipe(p), 0);
    fflush(stderr);
    c->saved = dup(STDERR_FILENO);
    assert_true(c->saved >= 0);
    assert_int_equal(dup2(p[1], STDERR_FILENO), STDERR_FILENO);
    close(p[1]);
    c->rd = p[0];
}

static void
capture_end(struct capture *c)
{
    dup2(c->saved, STDERR_FILENO);
    close(c->saved);
    close(c->rd);
}

/* Reads what is in the pipe now (waiting up to wait_ms for the first byte). */
static size_t
capture_read(struct capture *c, char *out, size_t cap, int wait_ms)
{
    size_t n = 0;
    struct pollfd p = {.fd = c->rd, .events = POLLIN};
    while (n + 1 < cap && poll(&p, 1, n ? 50 : wait_ms) == 1) {
        ssize_t r = read(c->rd, out + n, cap - 1 - n);
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    out[n] = '\0';
    return n;
}

/* Parses one line (without its newline) as JSON; fails the test when it is not. */
static json_t *
parse_line(const char *line, size_t len)
{
    json_error_t e;
    json_t *j = json_loadb(line, len, JSON_ALLOW_NUL, &e);
    if (!j)
        fail_msg("not JSON (%s): %.*s", e.text, (int)len, line);
    return j;
}

static json_t *
log_one(const char *value, size_t len)
{
    struct capture c;
    capture_start(&c);
    struct skiff_log l;
    skiff_log_begin(&l, SKIFF_LOG_INFO, "request");
    skiff_log_strn(&l, "path", value, len);
    skiff_log_int(&l, "status", 404);
    skiff_log_end(&l);
    char buf[8192];
    size_t n = capture_read(&c, buf, sizeof buf, 1000);
    capture_end(&c);
    assert_true(n > 0);
    assert_int_equal(buf[n - 1], '\n');
    assert_null(memchr(buf, '\n', n - 1)); /* one line */
    return parse_line(buf, n - 1);
}

/* A path with bytes >= 0x80 that are not UTF-8 still gives a JSON line; each such byte reads
 * as U+FFFD, valid UTF-8 and escapes come through as they were. */
static void
test_non_utf8_is_replaced(void **state)
{
    static const char path[] = "/v1beta/models/\xff\xfe\x80x\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"
                               "\xc0\xaf\xed\xa0\x80\xf4\x90\x80\x80\"q\\\x01\x7f\xe2\x82";
    json_t *j = log_one(path, sizeof path - 1);
    const char *got = json_string_value(json_object_get(j, "path"));
    assert_non_null(got);
    assert_string_equal(got,
                        "/v1beta/models/\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbdx\xc3\xa9\xe2\x82\xac"
                        "\xf0\x9f\x98\x80"
                        "\xef\xbf\xbd\xef\xbf\xbd"                         /* overlong C0 AF */
                        "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"             /* a surrogate */
                        "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" /* > U+10FFFF */
                        "\"q\\\x01\x7f"
                        "\xef\xbf\xbd\xef\xbf\xbd"); /* a sequence cut short */
    assert_int_equal(json_integer_value(json_object_get(j, "status")), 404);
    assert_string_equal(json_string_value(json_object_get(j, "level")), "info");
    assert_string_equal(json_string_value(json_object_get(j, "event")), "request");
    json_decref(j);

    /* A NUL inside a length-given value is escaped, not the end of the line. */
    j = log_one("a\0b", 3);
    got = json_string_value(json_object_get(j, "path"));
    assert_int_equal(json_string_length(json_object_get(j, "path")), 3);
    assert_int_equal(got[1], '\0');
    json_decref(j);
}

/* A quote at any place of a value, in the 16-byte blocks or the tail after them, is escaped
 * and the value comes back whole. */
static void
test_escape_at_every_place(void **state)
{
    (void)state;
    static const size_t lens[] = {5, 17, 31};
    for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++) {
        size_t n = lens[li];
        for (size_t at = 0; at < n; at++) {
            char v[40];
            memset(v, 'a', n);
            v[at] = '"';
            json_t *j = log_one(v, n);
            json_t *got = json_object_get(j, "path");
            assert_int_equal(json_string_length(got), n);
            assert_memory_equal(json_string_value(got), v, n);
            json_decref(j);
        }
    }
}

/* A value too long for a line is cut at a character, and the line says so and stays JSON. */
static void
test_long_line_is_cut_and_stays_json(void **state)
{
    static char big[6000];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = i % 3 == 0 ? '"' : (char)0xff; /* every byte needs an escape */
    json_t *j = log_one(big, sizeof big);
    assert_true(json_is_true(json_object_get(j, "cut")));
    assert_true(json_string_length(json_object_get(j, "path")) > 100);
    assert_null(json_object_get(j, "status")); /* after the cut, no field */
    json_decref(j);
}

static void
test_ints(void **state)
{
    struct capture c;
    capture_start(&c);
    struct skiff_log l;
    skiff_log_begin(&l, SKIFF_LOG_WARN, "n");
    skiff_log_int(&l, "min", LLONG_MIN);
    skiff_log_int(&l, "max", LLONG_MAX);
    skiff_log_int(&l, "zero", 0);
    skiff_log_int(&l, "neg", -42);
    skiff_log_end(&l);
    char buf[1024];
    size_t n = capture_read(&c, buf, sizeof buf, 1000);
    capture_end(&c);
    assert_non_null(strstr(buf, "\"min\":-9223372036854775808,\"max\":9223372036854775807,"
                                "\"zero\":0,\"neg\":-42}"));
    json_decref(parse_line(buf, n - 1));
}

static void *
log_lines(void *arg)
{
    int n = *(int *)arg;
    for (int i = 0; i < n; i++) {
        struct skiff_log l;
        skiff_log_begin(&l, SKIFF_LOG_INFO, "request");
        skiff_log_str(&l, "path", "/v1beta/models/gemini-2.5-flash:generateContent");
        skiff_log_int(&l, "i", i);
        skiff_log_end(&l);
    }
    return NULL;
}

static int64_t
mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * stderr is a pipe nobody reads: threads that log never wait (the lines past what the
 * buffers hold are dropped and counted), and once the pipe is read again every line that
 * was kept arrives whole, followed by one that gives the number dropped.
 */
static void
test_stalled_stderr_never_blocks_and_reports_drops(void **state)
{
    struct capture c;
    capture_start(&c);
    assert_int_equal(skiff_log_start(), 0);

    enum { THREADS = 2, LINES = 20000 };
    int n = LINES;
    pthread_t t[THREADS];
    int64_t t0 = mono_ms();
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, log_lines, &n), 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    assert_true(mono_ms() - t0 < 5000);
    uint64_t dropped = skiff_log_dropped_total();
    assert_true(dropped > 0);
    assert_true(dropped < (uint64_t)THREADS * LINES);
    assert_int_equal(skiff_log_flush(100), SKIFF_EIO); /* stderr still takes nothing */

    /* Read everything: each line is JSON, and one reports the drops. */
    size_t cap = 64u << 20;
    char *buf = malloc(cap);
    assert_non_null(buf);
    size_t len = 0;
    int64_t deadline = mono_ms() + 30000;
    while (mono_ms() < deadline) {
        size_t got = capture_read(&c, buf + len, cap - len, 300);
        len += got;
        if (got == 0 && memmem(buf, len, "\"log_dropped\"", 13))
            break;
    }
    assert_int_equal(skiff_log_flush(5000), 0);
    len += capture_read(&c, buf + len, cap - len, 100);
    skiff_log_stop(1000);
    capture_end(&c);

    uint64_t kept = 0, sum_dropped = 0;
    for (char *p = buf, *nl; p < buf + len && (nl = memchr(p, '\n', (size_t)(buf + len - p)));
         p = nl + 1) {
        json_t *j = parse_line(p, (size_t)(nl - p));
        const char *ev = json_string_value(json_object_get(j, "event"));
        if (strcmp(ev, "log_dropped") == 0)
            sum_dropped += (uint64_t)json_integer_value(json_object_get(j, "dropped"));
        else
            kept++;
        json_decref(j);
    }
    free(buf);
    assert_int_equal(sum_dropped, dropped);
    assert_int_equal(kept + sum_dropped, (uint64_t)THREADS * LINES);
}

/* After stop, lines are written directly again. */
static void
test_stop_goes_back_to_direct_writes(void **state)
{
    struct capture c;
    capture_start(&c);
    assert_int_equal(skiff_log_start(), 0);
    skiff_log_msg(SKIFF_LOG_INFO, "queued", "one");
    skiff_log_stop(1000);
    skiff_log_msg(SKIFF_LOG_INFO, "direct", "two");
    char buf[4096];
    capture_read(&c, buf, sizeof buf, 1000);
    capture_end(&c);
    char *a = strstr(buf, "\"queued\""), *b = strstr(buf, "\"direct\"");
    assert_non_null(a);
    assert_non_null(b);
    assert_true(a < b);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_non_utf8_is_replaced),
        cmocka_unit_test(test_escape_at_every_place),
        cmocka_unit_test(test_long_line_is_cut_and_stays_json),
        cmocka_unit_test(test_ints),
        cmocka_unit_test(test_stalled_stderr_never_blocks_and_reports_drops),
        cmocka_unit_test(test_stop_goes_back_to_direct_writes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
