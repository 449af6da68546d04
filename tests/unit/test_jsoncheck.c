#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/json.h"
#include "base/jsoncheck.h"

static int
check(const char *s)
{
    size_t off;
    const char *why;
    return skiff_json_check(s, strlen(s), &off, &why);
}

static void
test_valid(void **state)
{
    const char *ok[] = {"{}",
                        "[]",
                        " {\"a\": [1, -2.5e+3, true, false, null, \"x\\n\\u00e9\"]} ",
                        "\"s\"",
                        "0",
                        "{\"contents\":[{\"parts\":[{\"text\":\"hi\"}]}]}",
                        "[[],[{}],{\"a\":{}}]"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        assert_int_equal(check(ok[i]), 0);
}

static void
test_invalid_with_offset(void **state)
{
    const char *bad[] = {"",           "{",     "{\"a\"}", "{\"a\":}", "[1,]",
                         "{\"a\":1,}", "01",    "1.",      "tru",      "\"abc",
                         "\"\\x\"",    "{} {}", "{'a':1}", "[1 2]",    "\"a\x01\""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(check(bad[i]), -1);
    size_t off;
    const char *why;
    const char *s = "{\"a\": 1,, }";
    assert_int_equal(skiff_json_check(s, strlen(s), &off, &why), -1);
    assert_int_equal(off, 8);
    assert_non_null(why);
}

static void
test_deep_nesting_is_refused_not_crashed(void **state)
{
    size_t n = 100000;
    char *s = malloc(2 * n + 1);
    memset(s, '[', n);
    memset(s + n, ']', n);
    s[2 * n] = '\0';
    size_t off;
    const char *why;
    assert_int_equal(skiff_json_check(s, 2 * n, &off, &why), -1);
    assert_string_equal(why, "nesting too deep");
    /* 512 levels are fine. */
    assert_int_equal(skiff_json_check(s + n - 512, 1024, &off, &why), 0);
    free(s);
}

/* The tokens of the one tokenizer, in order, and a skipped container. */
static void
test_tokens_and_skip(void **state)
{
    (void)state;
    const char *s = " {\"a\": [1, \"x\\\"y\", true], \"b\": {\"c\": null}, \"d\": -2.5e3} ";
    struct skiff_json j;
    struct skiff_json_tok t;
    static const enum skiff_jtype want[] = {
        SKIFF_JSON_OBJECT, SKIFF_JSON_KEY,    SKIFF_JSON_ARRAY, SKIFF_JSON_NUMBER,
        SKIFF_JSON_STRING, SKIFF_JSON_TRUE,   SKIFF_JSON_CLOSE, SKIFF_JSON_KEY,
        SKIFF_JSON_OBJECT, SKIFF_JSON_KEY,    SKIFF_JSON_NULL,  SKIFF_JSON_CLOSE,
        SKIFF_JSON_KEY,    SKIFF_JSON_NUMBER, SKIFF_JSON_CLOSE, SKIFF_JSON_END};
    skiff_json_init(&j, s, strlen(s));
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        assert_int_equal(skiff_json_next(&j, &t), want[i]);
        if (i == 4) /* a string token is its bytes as sent, quotes and escapes kept */
            assert_int_equal(t.n, 6);
        if (i == 13)
            assert_memory_equal(t.p, "-2.5e3", 6);
    }
    assert_true(skiff_json_done(&j));

    /* Skipping "a"'s array lands on the next key; an error inside a skip is reported. */
    skiff_json_init(&j, s, strlen(s));
    skiff_json_next(&j, &t);
    skiff_json_next(&j, &t);
    assert_int_equal(skiff_json_next(&j, &t), SKIFF_JSON_ARRAY);
    assert_int_equal(skiff_json_skip(&j), 0);
    assert_int_equal(skiff_json_next(&j, &t), SKIFF_JSON_KEY);
    assert_true(skiff_json_is(&t, "b", 1));
    const char *bad = "[[1, 2,], 3]";
    skiff_json_init(&j, bad, strlen(bad));
    skiff_json_next(&j, &t);
    skiff_json_next(&j, &t);
    assert_int_equal(skiff_json_skip(&j), -1);
    assert_int_equal(skiff_json_offset(&j), 7);
    assert_string_equal(j.why, "unexpected character");

    /* A long string with every kind of byte the fast path stops at. */
    char big[200];
    memset(big, 'a', sizeof big);
    big[0] = '"';
    big[100] = '\\';
    big[101] = 'n';
    big[150] = 0x1f;
    big[199] = '"';
    size_t off;
    const char *why;
    assert_int_equal(skiff_json_check(big, sizeof big, &off, &why), -1);
    assert_int_equal(off, 150);
    assert_string_equal(why, "control character in a string");
    big[150] = (char)0xc3; /* bytes >= 0x80 are text */
    assert_int_equal(skiff_json_check(big, sizeof big, &off, &why), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid),
        cmocka_unit_test(test_invalid_with_offset),
        cmocka_unit_test(test_deep_nesting_is_refused_not_crashed),
        cmocka_unit_test(test_tokens_and_skip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
