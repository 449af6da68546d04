#include "gemini/stream.h"

#include <string.h>

size_t
skiff_stream_unit_end(const char *p, size_t n, int sse)
{
    if (sse) {
        /* Gemini ends events with CRLF CRLF; accept LF LF from other upstreams too. */
        for (size_t i = 0; i + 1 < n; i++) {
            if (p[i] == '\n' && p[i + 1] == '\n')
                return i + 2;
            if (i + 3 < n && p[i] == '\r' && p[i + 1] == '\n' && p[i + 2] == '\r' && p[i + 3] == '\n')
                return i + 4;
        }
        return 0;
    }
    /* Elements are pretty-printed, so a newline followed by ',' or ']' at column 0 ends one;
     * inside an element such a line cannot occur (its lines are indented). */
    for (size_t i = 1; i + 1 < n; i++) {
        if (p[i] != '\n')
            continue;
        if (p[i + 1] == ']')
            return i + 2;
        if (p[i + 1] == ',') {
            size_t j = i + 2;
            if (j < n && p[j] == '\r')
                j++;
            if (j < n && p[j] == '\n')
                return j + 1;
            if (j >= n)
                return 0;
        }
    }
    return 0;
}

const char *
skiff_stream_json(const char *p, size_t n, size_t *len)
{
    const char *end = p + n;
    while (p < end && (*p == ' ' || *p == '\r' || *p == '\n' || *p == '\t' || *p == '[' || *p == ','))
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
    static const char *const content[] = {"\"functionCall\"", "\"inlineData\"",
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
