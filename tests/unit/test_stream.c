#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "gemini/stream.h"

#define MAX_UNITS 16

/* The unit ends of data fed as pieces cut at the given points (ascending, < n). */
static size_t
units_split(const char *data, size_t n, int sse, const size_t *cuts, size_t ncuts, size_t *ends)
{
    struct skiff_stream_scan s;
    skiff_stream_scan_init(&s, sse);
    size_t have = 0, start = 0, nunits = 0;
    for (size_t c = 0; c <= ncuts; c++) {
        have = c < ncuts ? cuts[c] : n;
        size_t end;
        while ((end = skiff_stream_scan_next(&s, data + start, have - start))) {
            assert_true(nunits < MAX_UNITS);
            start += end;
            ends[nunits++] = start;
        }
    }
    assert_true(s.examined <= n); /* each byte looked at once */
    return nunits;
}

/* Feeds data whole, then cut at every point, then in every pair of cuts, then byte by byte:
 * the units found never change, and each matches what expect lists. */
static void
check_every_split(const char *data, int sse, const char *const *expect, size_t nexpect)
{
    size_t n = strlen(data), ends[MAX_UNITS], got[MAX_UNITS];
    size_t nunits = units_split(data, n, sse, NULL, 0, ends);
    if (nunits != nexpect)
        fail_msg("%zu units, expected %zu, in: %s", nunits, nexpect, data);
    size_t prev = 0;
    for (size_t i = 0; i < nunits; i++) {
        if (ends[i] - prev != strlen(expect[i]) || memcmp(data + prev, expect[i], ends[i] - prev))
            fail_msg("unit %zu is \"%.*s\", expected \"%s\"", i, (int)(ends[i] - prev), data + prev,
                     expect[i]);
        prev = ends[i];
    }
    for (size_t a = 1; a < n; a++) {
        size_t cut[] = {a};
        assert_int_equal(units_split(data, n, sse, cut, 1, got), nunits);
        assert_memory_equal(got, ends, nunits * sizeof *ends);
        for (size_t b = a + 1; b < n; b++) {
            size_t cuts[] = {a, b};
            assert_int_equal(units_split(data, n, sse, cuts, 2, got), nunits);
            assert_memory_equal(got, ends, nunits * sizeof *ends);
        }
    }
    size_t *bytes = malloc(n * sizeof *bytes);
    for (size_t i = 0; i + 1 < n; i++)
        bytes[i] = i + 1;
    assert_int_equal(units_split(data, n, sse, bytes, n - 1, got), nunits);
    assert_memory_equal(got, ends, nunits * sizeof *ends);
    free(bytes);
}

static void
test_sse_events_at_every_split(void **state)
{
    const char *gemini =
        "data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"Hi\"}]}}]}\r\n\r\n"
        "data: {\"candidates\": [{\"finishReason\": \"STOP\"}]}\r\n\r\n";
    check_every_split(
        gemini, 1,
        (const char *const[]){
            "data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"Hi\"}]}}]}\r\n\r\n",
            "data: {\"candidates\": [{\"finishReason\": \"STOP\"}]}\r\n\r\n"},
        2);
    /* LF LF from other upstreams; a raw error object after an event has no blank line. */
    check_every_split("data: {\"a\":1}\n\ndata: {\"b\":2}\n\n{\n  \"error\": {}\n}\n", 1,
                      (const char *const[]){"data: {\"a\":1}\n\n", "data: {\"b\":2}\n\n"}, 2);
}

static void
test_json_array_pretty_and_compact_at_every_split(void **state)
{
    /* Google's pretty-printed form: [{ ... }\n,\r\n{ ... }\n] */
    check_every_split(
        "[{\n  \"candidates\": [\n    {\"text\": \"1\\n,\\r\\n]\"}\n  ]\n}\n,\r\n{\n  "
        "\"finishReason\": \"STOP\"\n}\n]",
        0,
        (const char *const[]){"[{\n  \"candidates\": [\n    {\"text\": "
                              "\"1\\n,\\r\\n]\"}\n  ]\n}",
                              "\n,\r\n{\n  \"finishReason\": \"STOP\"\n}", "\n]"},
        3);
    /* Compact, with braces, brackets, quotes and backslashes inside strings. */
    check_every_split("[{\"text\":\"a}]{[\\\"\\\\\"},{\"text\":\"b\\\\\"},{\"x\":[1,{\"y\":2}]}]",
                      0,
                      (const char *const[]){"[{\"text\":\"a}]{[\\\"\\\\\"}",
                                            ",{\"text\":\"b\\\\\"}", ",{\"x\":[1,{\"y\":2}]}", "]"},
                      4);
    /* An error wrapped in the array, and a bare error object. */
    check_every_split("[{\n  \"error\": {\n    \"code\": 429\n  }\n}\n]", 0,
                      (const char *const[]){"[{\n  \"error\": {\n    \"code\": 429\n  }\n}", "\n]"},
                      2);
    check_every_split("{\"error\": {\"code\": 500}}", 0,
                      (const char *const[]){"{\"error\": {\"code\": 500}}"}, 1);
    /* Not JSON: no unit ends, nothing breaks. */
    check_every_split("<html>}]</html>", 0, NULL, 0);
}

/* One 4 MiB event in 4 KiB pieces: each byte is looked at once (the relay rescanned the
 * held prefix on every piece: 1.2 s of loop CPU for this). */
static void
test_a_large_event_is_scanned_once(void **state)
{
    size_t n = 4u << 20;
    for (int sse = 0; sse <= 1; sse++) {
        char *data = malloc(n + 1);
        const char *head = sse ? "data: {\"text\": \"" : "[{\"text\": \"";
        const char *tail = sse ? "\"}\r\n\r\n" : "\"}";
        size_t hl = strlen(head), tl = strlen(tail);
        memcpy(data, head, hl);
        memset(data + hl, 'x', n - hl - tl);
        memcpy(data + n - tl, tail, tl);
        data[n] = '\0';
        struct skiff_stream_scan s;
        skiff_stream_scan_init(&s, sse);
        size_t end = 0;
        for (size_t have = 4096; have <= n && !end; have += 4096)
            end = skiff_stream_scan_next(&s, data, have);
        assert_int_equal(end, n);
        assert_int_equal(s.examined, n);
        free(data);
    }
}

static void
test_judge(void **state)
{
    const char *text = "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"Hi\"}]}}]}";
    assert_int_equal(skiff_stream_judge(text, strlen(text)), SKIFF_UNIT_CONTENT);
    const char *err = ",{\"error\":{\"code\":503}}";
    assert_int_equal(skiff_stream_judge(err, strlen(err)), SKIFF_UNIT_ERROR);
    const char *stop = "{\"candidates\":[{\"finishReason\":\"STOP\"}]}";
    assert_int_equal(skiff_stream_judge(stop, strlen(stop)), SKIFF_UNIT_EMPTY_STOP);
    assert_int_equal(skiff_stream_judge("\n]", 2), SKIFF_UNIT_EMPTY);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sse_events_at_every_split),
        cmocka_unit_test(test_json_array_pretty_and_compact_at_every_split),
        cmocka_unit_test(test_a_large_event_is_scanned_once),
        cmocka_unit_test(test_judge),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
