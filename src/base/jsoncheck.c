#include "base/jsoncheck.h"

#include <string.h>

#define MAX_DEPTH 512

struct scan {
    const char *p, *start, *end;
    const char *why;
};

static void
ws(struct scan *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
        s->p++;
}

static int
bad(struct scan *s, const char *why)
{
    s->why = why;
    return -1;
}

static int
hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static int
string(struct scan *s)
{
    s->p++; /* the opening quote */
    while (s->p < s->end) {
        unsigned char c = (unsigned char)*s->p;
        if (c == '"') {
            s->p++;
            return 0;
        }
        if (c < 0x20)
            return bad(s, "control character in a string");
        if (c == '\\') {
            if (++s->p >= s->end)
                break;
            char e = *s->p;
            if (e == 'u') {
                if (s->end - s->p < 5 || !hex(s->p[1]) || !hex(s->p[2]) || !hex(s->p[3]) ||
                    !hex(s->p[4]))
                    return bad(s, "bad \\u escape");
                s->p += 4;
            } else if (!strchr("\"\\/bfnrt", e) || e == '\0') {
                return bad(s, "bad escape in a string");
            }
        }
        s->p++;
    }
    return bad(s, "unterminated string");
}

static int
number(struct scan *s)
{
    const char *p = s->p;
    if (p < s->end && *p == '-')
        p++;
    if (p >= s->end)
        return bad(s, "bad number");
    if (*p == '0') {
        p++;
    } else if (*p >= '1' && *p <= '9') {
        while (p < s->end && *p >= '0' && *p <= '9')
            p++;
    } else {
        return bad(s, "unexpected character");
    }
    if (p < s->end && *p == '.') {
        p++;
        if (p >= s->end || *p < '0' || *p > '9')
            return bad(s, "bad number");
        while (p < s->end && *p >= '0' && *p <= '9')
            p++;
    }
    if (p < s->end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < s->end && (*p == '+' || *p == '-'))
            p++;
        if (p >= s->end || *p < '0' || *p > '9')
            return bad(s, "bad number");
        while (p < s->end && *p >= '0' && *p <= '9')
            p++;
    }
    s->p = p;
    return 0;
}

static int
literal(struct scan *s, const char *lit)
{
    size_t n = strlen(lit);
    if ((size_t)(s->end - s->p) < n || memcmp(s->p, lit, n) != 0)
        return bad(s, "unexpected character");
    s->p += n;
    return 0;
}

/*
 * An explicit stack instead of recursion, so a hostile nesting depth costs a bounded array
 * and never the thread's stack.
 */
static int
value(struct scan *s)
{
    char stack[MAX_DEPTH]; /* '{' or '[' for each open container */
    int depth = 0;
    for (;;) {
        ws(s);
        if (s->p >= s->end)
            return bad(s, "unexpected end of input");
        char c = *s->p;
        int rc = 0;
        if (c == '{' || c == '[') {
            if (depth == MAX_DEPTH)
                return bad(s, "nesting too deep");
            stack[depth++] = c;
            s->p++;
            ws(s);
            if (s->p < s->end && *s->p == (c == '{' ? '}' : ']')) {
                s->p++;
                depth--;
                goto after_value;
            }
            if (c == '{')
                goto member_key;
            continue;
        }
        if (c == '"')
            rc = string(s);
        else if (c == 't')
            rc = literal(s, "true");
        else if (c == 'f')
            rc = literal(s, "false");
        else if (c == 'n')
            rc = literal(s, "null");
        else
            rc = number(s);
        if (rc)
            return rc;
    after_value:
        for (;;) {
            if (depth == 0)
                return 0;
            ws(s);
            if (s->p >= s->end)
                return bad(s, "unexpected end of input");
            char open = stack[depth - 1];
            if (*s->p == ',') {
                s->p++;
                if (open == '{')
                    goto member_key;
                break; /* the next array element */
            }
            if (*s->p == (open == '{' ? '}' : ']')) {
                s->p++;
                depth--;
                continue;
            }
            return bad(s, open == '{' ? "expected ',' or '}'" : "expected ',' or ']'");
        }
        continue;
    member_key:
        ws(s);
        if (s->p >= s->end || *s->p != '"')
            return bad(s, "expected a string key");
        if (string(s))
            return -1;
        ws(s);
        if (s->p >= s->end || *s->p != ':')
            return bad(s, "expected ':'");
        s->p++;
    }
}

int
skiff_json_check(const char *p, size_t n, size_t *err_off, const char **why)
{
    struct scan s = {.p = p, .start = p, .end = p + n, .why = NULL};
    int rc = value(&s);
    if (rc == 0) {
        ws(&s);
        if (s.p != s.end)
            rc = bad(&s, "trailing characters after the JSON value");
    }
    if (rc) {
        *err_off = (size_t)(s.p - s.start);
        *why = s.why;
    }
    return rc;
}
