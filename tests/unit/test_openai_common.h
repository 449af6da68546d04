/* Helpers shared by the tests of the OpenAI door's translators (tests/unit/test_openai_*.c). */
#ifndef SKIFF_TEST_OPENAI_COMMON_H
#define SKIFF_TEST_OPENAI_COMMON_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

static inline json_t *
parse(const char *s)
{
    json_error_t e;
    json_t *j = json_loads(s, JSON_DECODE_ANY, &e);
    if (!j)
        fail_msg("bad test JSON: %s: %s", e.text, s);
    return j;
}

static inline void
assert_json(const json_t *got, const char *want_s, const char *name)
{
    json_t *want = parse(want_s);
    if (!json_equal(got, want)) {
        char *g = json_dumps(got, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
        char *w = json_dumps(want, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
        print_error("%s:\n got  %s\n want %s\n", name, g, w);
        free(g);
        free(w);
        json_decref(want);
        fail();
    }
    json_decref(want);
}

/* Whether id has skiff's tool-call form: "call_" + 24 of [A-Za-z0-9]. */
static inline int
is_call_id(const char *id)
{
    if (!id || strncmp(id, "call_", 5) != 0 || strlen(id) != 29)
        return 0;
    for (const char *p = id + 5; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9')))
            return 0;
    return 1;
}

/* Replaces every tool call's id (checked to be skiff's form) by "ID<n>" in order, so that
 * the JSON can be compared exactly; returns how many there were. */
static inline int
stable_ids(json_t *j, int *n)
{
    size_t i;
    json_t *v;
    const char *k;
    if (json_is_array(j)) {
        json_array_foreach(j, i, v) stable_ids(v, n);
    } else if (json_is_object(j)) {
        json_t *id = json_object_get(j, "id");
        if (json_is_string(id) && json_object_get(j, "function")) {
            if (!is_call_id(json_string_value(id)))
                fail_msg("tool call id %s is not call_ + 24 letters and digits",
                         json_string_value(id));
            char s[16];
            snprintf(s, sizeof s, "ID%d", (*n)++);
            json_object_set_new(j, "id", json_string(s));
        }
        json_object_foreach(j, k, v) stable_ids(v, n);
    }
    return *n;
}

#endif
