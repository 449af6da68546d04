#include "gemini/stream.h"

#include <string.h>

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

/* Whether "key" occurs followed by a colon (any spacing). */
static const char *
find_key(const char *p, size_t n, const char *key)
{
    size_t kl = strlen(key);
    const char *end = p + n, *s = p;
    while (s < end) {
        const char *hit = memmem(s, (size_t)(end - s), key, kl);
        if (!hit)
            return NULL;
        const char *q = hit + kl;
        while (q < end && (*q == ' ' || *q == '\n' || *q == '\r' || *q == '\t'))
            q++;
        if (q < end && *q == ':')
            return q + 1;
        s = hit + kl;
    }
    return NULL;
}

/* Whether a "text" field holds a non-empty string. */
static int
has_text(const char *p, size_t n)
{
    const char *end = p + n, *s = p;
    while (s < end) {
        const char *v = find_key(s, (size_t)(end - s), "\"text\"");
        if (!v)
            return 0;
        while (v < end && (*v == ' ' || *v == '\n' || *v == '\r'))
            v++;
        if (v + 1 < end && *v == '"' && v[1] != '"')
            return 1;
        s = v;
    }
    return 0;
}

enum skiff_unit
skiff_stream_judge(const char *p, size_t n)
{
    size_t len;
    const char *j = skiff_stream_json(p, n, &len);
    /* An error replaces the event: its first key is "error". */
    if (len && *j == '{') {
        const char *k = j + 1;
        while (k < j + len && (*k == ' ' || *k == '\n' || *k == '\r'))
            k++;
        if ((size_t)(j + len - k) >= 7 && memcmp(k, "\"error\"", 7) == 0)
            return SKIFF_UNIT_ERROR;
    }
    static const char *const content[] = {"\"functionCall\"",   "\"inlineData\"",
                                          "\"executableCode\"", "\"codeExecutionResult\"",
                                          "\"promptFeedback\"", "\"fileData\""};
    if (has_text(j, len))
        return SKIFF_UNIT_CONTENT;
    for (size_t i = 0; i < sizeof content / sizeof content[0]; i++)
        if (find_key(j, len, content[i]))
            return SKIFF_UNIT_CONTENT;
    const char *fr = find_key(j, len, "\"finishReason\"");
    if (!fr)
        return SKIFF_UNIT_EMPTY;
    while (fr < j + len && *fr == ' ')
        fr++;
    if ((size_t)(j + len - fr) >= 6 && memcmp(fr, "\"STOP\"", 6) == 0)
        return SKIFF_UNIT_EMPTY_STOP;
    return SKIFF_UNIT_FINISH;
}
