#include "base/json.h"

#include <string.h>

#include "base/jsoncheck.h"

#ifdef __SSE2__
#include <emmintrin.h>
#endif

enum {
    S_VALUE,        /* a value comes next (the top level, after ':', after ',' in an array) */
    S_FIRST_MEMBER, /* after '{': a key or '}' */
    S_FIRST_ELEM,   /* after '[': a value or ']' */
    S_KEY,          /* after ',' in an object: a key */
    S_AFTER,        /* after a value in a container: ',' or the close */
    S_DONE,         /* the top-level value is complete */
    S_ERROR,
};

void
skiff_json_init(struct skiff_json *j, const char *p, size_t n)
{
    j->p = j->start = p ? p : "";
    j->end = j->p + (p ? n : 0);
    j->why = NULL;
    j->depth = 0;
    j->state = S_VALUE;
}

static enum skiff_jtype
bad(struct skiff_json *j, const char *at, const char *why)
{
    j->p = at;
    j->why = why;
    j->state = S_ERROR;
    return SKIFF_JSON_ERROR;
}

static int
is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Past the whitespace at p. Compact JSON has none or one byte of it; pretty-printed JSON has
 * a newline and an indent, skipped 16 bytes at a time where SSE2 is. */
static const char *
ws(const char *p, const char *e)
{
    if (p >= e || !is_ws(*p))
        return p;
    p++;
    if (p >= e || !is_ws(*p))
        return p;
#ifdef __SSE2__
    const __m128i sp = _mm_set1_epi8(' '), ht = _mm_set1_epi8('\t');
    const __m128i lf = _mm_set1_epi8('\n'), cr = _mm_set1_epi8('\r');
    while (e - p >= 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
        __m128i w = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, sp), _mm_cmpeq_epi8(v, ht)),
                                 _mm_or_si128(_mm_cmpeq_epi8(v, lf), _mm_cmpeq_epi8(v, cr)));
        unsigned m = ~(unsigned)_mm_movemask_epi8(w) & 0xffffu;
        if (m)
            return p + __builtin_ctz(m);
        p += 16;
    }
#endif
    while (p < e && is_ws(*p))
        p++;
    return p;
}

static int
hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* From p, the first byte that is a quote, a backslash or a control character (or e). */
static const char *
plain_run(const char *p, const char *e)
{
#ifdef __SSE2__
    const __m128i quote = _mm_set1_epi8('"'), bslash = _mm_set1_epi8('\\');
    const __m128i ctl = _mm_set1_epi8(0x1f);
    while (e - p >= 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
        __m128i hit =
            _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, bslash)),
                         _mm_cmpeq_epi8(_mm_min_epu8(v, ctl), v)); /* v <= 0x1f */
        int m = _mm_movemask_epi8(hit);
        if (m)
            return p + __builtin_ctz((unsigned)m);
        p += 16;
    }
#endif
    while (p < e && *p != '"' && *p != '\\' && (unsigned char)*p >= 0x20)
        p++;
    return p;
}

/* p at an opening quote: the string's end (after its closing quote), or NULL with j set. */
static inline const char *
string(struct skiff_json *j, const char *p)
{
    const char *e = j->end;
    p++;
    for (;;) {
        p = plain_run(p, e);
        if (p >= e)
            break;
        unsigned char c = (unsigned char)*p;
        if (c == '"')
            return p + 1;
        if (c < 0x20) {
            bad(j, p, "control character in a string");
            return NULL;
        }
        /* a backslash */
        if (++p >= e)
            break;
        char x = *p;
        if (x == 'u') {
            if (e - p < 5 || !hex(p[1]) || !hex(p[2]) || !hex(p[3]) || !hex(p[4])) {
                bad(j, p, "bad \\u escape");
                return NULL;
            }
            p += 4;
        } else if (x == '\0' || !strchr("\"\\/bfnrt", x)) {
            bad(j, p, "bad escape in a string");
            return NULL;
        }
        p++;
    }
    bad(j, e, "unterminated string");
    return NULL;
}

static const char *
digits(const char *p, const char *e)
{
    while (p < e && *p >= '0' && *p <= '9')
        p++;
    return p;
}

/* p at a number's first byte: its end, or NULL with j set (the offset is the number's). */
static const char *
number(struct skiff_json *j, const char *p)
{
    const char *s = p, *e = j->end;
    if (p < e && *p == '-')
        p++;
    if (p >= e) {
        bad(j, s, "bad number");
        return NULL;
    }
    if (*p == '0') {
        p++;
    } else if (*p >= '1' && *p <= '9') {
        p = digits(p, e);
    } else {
        bad(j, s, "unexpected character");
        return NULL;
    }
    if (p < e && *p == '.') {
        p++;
        if (p >= e || *p < '0' || *p > '9') {
            bad(j, s, "bad number");
            return NULL;
        }
        p = digits(p, e);
    }
    if (p < e && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < e && (*p == '+' || *p == '-'))
            p++;
        if (p >= e || *p < '0' || *p > '9') {
            bad(j, s, "bad number");
            return NULL;
        }
        p = digits(p, e);
    }
    return p;
}

static enum skiff_jtype
token(struct skiff_json *j, struct skiff_json_tok *t, enum skiff_jtype type, const char *p,
      const char *end)
{
    t->type = type;
    t->p = p;
    t->n = (size_t)(end - p);
    j->p = end;
    return type;
}

/* A value at p (whitespace skipped). */
static enum skiff_jtype
value(struct skiff_json *j, struct skiff_json_tok *t, const char *p)
{
    const char *e = j->end;
    if (p >= e)
        return bad(j, p, "unexpected end of input");
    char c = *p;
    if (c == '{' || c == '[') {
        if (j->depth == SKIFF_JSON_MAX_DEPTH)
            return bad(j, p, "nesting too deep");
        unsigned char bit = (unsigned char)(1u << (j->depth & 7));
        if (c == '{')
            j->is_object[j->depth >> 3] |= bit;
        else
            j->is_object[j->depth >> 3] &= (unsigned char)~bit;
        j->depth++;
        j->state = c == '{' ? S_FIRST_MEMBER : S_FIRST_ELEM;
        return token(j, t, c == '{' ? SKIFF_JSON_OBJECT : SKIFF_JSON_ARRAY, p, p + 1);
    }
    enum skiff_jtype type;
    const char *q;
    if (c == '"') {
        type = SKIFF_JSON_STRING;
        q = string(j, p);
    } else if (c == 't' || c == 'f' || c == 'n') {
        static const char *const lit[] = {"true", "false", "null"};
        int k = c == 't' ? 0 : c == 'f' ? 1 : 2;
        size_t n = strlen(lit[k]);
        if ((size_t)(e - p) < n || memcmp(p, lit[k], n) != 0)
            return bad(j, p, "unexpected character");
        type = k == 0 ? SKIFF_JSON_TRUE : k == 1 ? SKIFF_JSON_FALSE : SKIFF_JSON_NULL;
        q = p + n;
    } else {
        type = SKIFF_JSON_NUMBER;
        q = number(j, p);
    }
    if (!q)
        return SKIFF_JSON_ERROR;
    j->state = j->depth ? S_AFTER : S_DONE;
    return token(j, t, type, p, q);
}

/* A member's name at p (whitespace skipped), and its colon. */
static enum skiff_jtype
key(struct skiff_json *j, struct skiff_json_tok *t, const char *p)
{
    if (p >= j->end || *p != '"')
        return bad(j, p, "expected a string key");
    const char *q = string(j, p);
    if (!q)
        return SKIFF_JSON_ERROR;
    const char *c = ws(q, j->end);
    if (c >= j->end || *c != ':')
        return bad(j, c, "expected ':'");
    token(j, t, SKIFF_JSON_KEY, p, q);
    j->p = c + 1;
    j->state = S_VALUE;
    return SKIFF_JSON_KEY;
}

static enum skiff_jtype
close_container(struct skiff_json *j, struct skiff_json_tok *t, const char *p)
{
    j->depth--;
    j->state = j->depth ? S_AFTER : S_DONE;
    return token(j, t, SKIFF_JSON_CLOSE, p, p + 1);
}

static int
in_object(const struct skiff_json *j)
{
    int d = j->depth - 1;
    return (j->is_object[d >> 3] >> (d & 7)) & 1;
}

/* The tokenizer's step, inlined into the loops of this file (skip, check). */
static inline __attribute__((always_inline)) enum skiff_jtype
next_tok(struct skiff_json *j, struct skiff_json_tok *t)
{
    const char *e = j->end;
    const char *p = ws(j->p, e);
    for (;;) {
        switch (j->state) {
        case S_VALUE:
            return value(j, t, p);
        case S_FIRST_MEMBER:
            if (p < e && *p == '}')
                return close_container(j, t, p);
            return key(j, t, p);
        case S_KEY:
            return key(j, t, p);
        case S_FIRST_ELEM:
            if (p < e && *p == ']')
                return close_container(j, t, p);
            return value(j, t, p);
        case S_AFTER: {
            if (p >= e)
                return bad(j, p, "unexpected end of input");
            int obj = in_object(j);
            if (*p == ',') {
                j->state = obj ? S_KEY : S_VALUE;
                p = ws(p + 1, e);
                continue;
            }
            if (*p == (obj ? '}' : ']'))
                return close_container(j, t, p);
            return bad(j, p, obj ? "expected ',' or '}'" : "expected ',' or ']'");
        }
        case S_DONE:
            if (p != e)
                return bad(j, p, "trailing characters after the JSON value");
            j->p = p;
            t->type = SKIFF_JSON_END;
            t->p = p;
            t->n = 0;
            return SKIFF_JSON_END;
        default:
            t->type = SKIFF_JSON_ERROR;
            t->p = j->p;
            t->n = 0;
            return SKIFF_JSON_ERROR;
        }
    }
}

enum skiff_jtype
skiff_json_next(struct skiff_json *j, struct skiff_json_tok *t)
{
    return next_tok(j, t);
}

int
skiff_json_skip(struct skiff_json *j)
{
    int target = j->depth - 1;
    struct skiff_json_tok t;
    while (j->depth > target) {
        enum skiff_jtype type = next_tok(j, &t);
        if (type == SKIFF_JSON_ERROR || type == SKIFF_JSON_END)
            return -1;
    }
    return 0;
}

int
skiff_json_done(const struct skiff_json *j)
{
    return j->state == S_DONE;
}

size_t
skiff_json_offset(const struct skiff_json *j)
{
    return (size_t)(j->p - j->start);
}

int
skiff_json_is(const struct skiff_json_tok *t, const char *s, size_t n)
{
    return t->n == n + 2 && memcmp(t->p + 1, s, n) == 0;
}

/* ---- the syntax check (base/jsoncheck.h) ------------------------------------------------- */

int
skiff_json_check(const char *p, size_t n, size_t *err_off, const char **why)
{
    struct skiff_json j;
    struct skiff_json_tok t;
    enum skiff_jtype type;
    skiff_json_init(&j, p, n);
    while ((type = next_tok(&j, &t)) > SKIFF_JSON_END)
        ;
    if (type == SKIFF_JSON_END)
        return 0;
    *err_off = skiff_json_offset(&j);
    *why = j.why;
    return -1;
}
