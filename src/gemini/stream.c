#include "gemini/stream.h"

#include <string.h>

#include "base/json.h"

void
skiff_stream_scan_init(struct skiff_stream_scan *s, int sse)
{
    memset(s, 0, sizeof *s);
    s->sse = sse;
}

/* SSE: an event ends at its blank line. */
static size_t
scan_sse(struct skiff_stream_scan *s, const char *p, size_t n)
{
    for (size_t i = s->pos; i < n; i++) {
        if (p[i] == '\n') {
            if (++s->newlines == 2) {
                s->newlines = 0;
                return i + 1;
            }
        } else if (p[i] != '\r') {
            s->newlines = 0;
        }
    }
    return 0;
}

/* The array form: an element ends where its closing brace brings the depth back to the
 * array's own (or to 0 for a bare top-level value); the array's ']' ends a unit too. */
static size_t
scan_array(struct skiff_stream_scan *s, const char *p, size_t n)
{
    for (size_t i = s->pos; i < n; i++) {
        char c = p[i];
        if (s->in_string) {
            if (s->escape)
                s->escape = 0;
            else if (c == '\\')
                s->escape = 1;
            else if (c == '"')
                s->in_string = 0;
            continue;
        }
        switch (c) {
        case '"':
            s->in_string = 1;
            break;
        case '[':
        case '{':
            if (s->depth == 0 && c == '[')
                s->in_array = 1;
            s->depth++;
            break;
        case ']':
        case '}':
            if (s->depth == 0)
                break; /* not JSON: left for the judge of the tail */
            s->depth--;
            if (s->depth == 0 && s->in_array) {
                s->in_array = 0; /* the array's own end */
                return i + 1;
            }
            if (s->depth == (s->in_array ? 1 : 0))
                return i + 1;
            break;
        default:
            break;
        }
    }
    return 0;
}

size_t
skiff_stream_scan_next(struct skiff_stream_scan *s, const char *p, size_t n)
{
    if (n <= s->pos)
        return 0;
    size_t from = s->pos;
    size_t end = s->sse ? scan_sse(s, p, n) : scan_array(s, p, n);
    s->examined += (end ? end : n) - from;
    s->pos = end ? 0 : n;
    return end;
}

size_t
skiff_stream_unit_end(const char *p, size_t n, int sse)
{
    struct skiff_stream_scan s;
    skiff_stream_scan_init(&s, sse);
    return skiff_stream_scan_next(&s, p, n);
}

const char *
skiff_stream_json(const char *p, size_t n, size_t *len)
{
    const char *end = p + n;
    while (p < end &&
           (*p == ' ' || *p == '\r' || *p == '\n' || *p == '\t' || *p == '[' || *p == ','))
        p++;
    if ((size_t)(end - p) >= 5 && memcmp(p, "data:", 5) == 0) {
        p += 5;
        while (p < end && *p == ' ')
            p++;
    }
    *len = (size_t)(end - p);
    return p;
}

/* Where the next JSON value of a stream text starts: after whitespace, the array form's
 * '[', ',' and ']', and an SSE "data:" field name. */
static const char *
next_value(const char *p, const char *end)
{
    for (;;) {
        while (p < end && (*p == ' ' || *p == '\r' || *p == '\n' || *p == '\t' || *p == '[' ||
                           *p == ',' || *p == ']'))
            p++;
        if ((size_t)(end - p) >= 5 && memcmp(p, "data:", 5) == 0) {
            p += 5;
            continue;
        }
        return p;
    }
}

int
skiff_stream_each_member(const char *p, size_t n,
                         int (*fn)(const struct skiff_json_tok *key,
                                   const struct skiff_json_tok *value, int depth, void *ud),
                         void *ud)
{
    const char *end = (p ? p : "") + (p ? n : 0);
    p = p ? p : "";
    while ((p = next_value(p, end)) < end && (*p == '{' || *p == '[')) {
        struct skiff_json j;
        struct skiff_json_tok k, v;
        skiff_json_init(&j, p, (size_t)(end - p));
        while (!skiff_json_done(&j)) {
            enum skiff_jtype t = skiff_json_next(&j, &k);
            if (t == SKIFF_JSON_ERROR)
                return 0;
            if (t != SKIFF_JSON_KEY)
                continue;
            int depth = j.depth;
            if (skiff_json_next(&j, &v) == SKIFF_JSON_ERROR)
                return 0;
            int rc = fn(&k, &v, depth, ud);
            if (rc)
                return rc;
        }
        p = j.p;
    }
    return 0;
}

/* What decides a unit: set by the members as they come. */
struct verdict {
    int keys;   /* members seen */
    int finish; /* 0: no finishReason yet, else SKIFF_UNIT_EMPTY_STOP or _FINISH */
};

static int
judge_member(const struct skiff_json_tok *k, const struct skiff_json_tok *v, int depth, void *ud)
{
    struct verdict *vd = ud;
    /* An error replaces the event: its first key is "error". */
    if (vd->keys++ == 0 && depth == 1 && skiff_json_is(k, "error", 5))
        return 1 + SKIFF_UNIT_ERROR;
    if (skiff_json_is(k, "text", 4)) {
        if (v->type == SKIFF_JSON_STRING && v->n > 2)
            return 1 + SKIFF_UNIT_CONTENT;
        return 0;
    }
    static const struct {
        const char *name;
        size_t n;
    } content[] = {{"functionCall", 12},        {"inlineData", 10},     {"executableCode", 14},
                   {"codeExecutionResult", 19}, {"promptFeedback", 14}, {"fileData", 8}};
    for (size_t i = 0; i < sizeof content / sizeof content[0]; i++)
        if (skiff_json_is(k, content[i].name, content[i].n))
            return 1 + SKIFF_UNIT_CONTENT;
    if (!vd->finish && skiff_json_is(k, "finishReason", 12))
        vd->finish = v->type == SKIFF_JSON_STRING && skiff_json_is(v, "STOP", 4)
                         ? SKIFF_UNIT_EMPTY_STOP
                         : SKIFF_UNIT_FINISH;
    return 0;
}

enum skiff_unit
skiff_stream_judge(const char *p, size_t n)
{
    struct verdict vd = {0, 0};
    int rc = skiff_stream_each_member(p, n, judge_member, &vd);
    if (rc)
        return (enum skiff_unit)(rc - 1);
    return vd.finish ? (enum skiff_unit)vd.finish : SKIFF_UNIT_EMPTY;
}
