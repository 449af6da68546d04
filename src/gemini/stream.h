/*
 * Scanning Gemini's stream bodies without parsing them: where the first event ends (SSE
 * `data: {...}\r\n\r\n`, or one element of the JSON-array form), and what it holds. The
 * relay holds a stream's response headers until the first event with real content, so that
 * failures before it can still be retried.
 */
#ifndef SKIFF_GEMINI_STREAM_H
#define SKIFF_GEMINI_STREAM_H

#include <stddef.h>

enum skiff_unit {
    SKIFF_UNIT_CONTENT,    /* text, a function call, media, promptFeedback: commit */
    SKIFF_UNIT_EMPTY,      /* a candidate with nothing in it yet: keep holding */
    SKIFF_UNIT_EMPTY_STOP, /* finishReason STOP with no content at all: a failed answer */
    SKIFF_UNIT_FINISH,     /* another finishReason with no content (SAFETY, MAX_TOKENS...) */
    SKIFF_UNIT_ERROR,      /* an error object instead of an event */
};

/*
 * Where units end, found incrementally: each byte of a stream is looked at once, however it
 * is split into pieces. A unit is
 *   SSE:        an event, up to and including the blank line after it ("\n\n" or
 *               "\r\n\r\n"; a CR before a LF is ignored);
 *   JSON array: one element, from where the previous unit ended (the '[' or the ',' and any
 *               whitespace before it) to its closing brace, found by the JSON structure
 *               (depth, strings, escapes), not by Google's pretty-printing; the closing ']'
 *               of the array ends a unit of its own. A bare object at the top level (an
 *               error without the array) is a unit too.
 * The state is plain data; zero it with skiff_stream_scan_init.
 */
struct skiff_stream_scan {
    int sse;
    size_t pos;      /* bytes of the current unit looked at */
    int depth;       /* array form: open brackets and braces */
    int in_array;    /* array form: the top-level array is open */
    int in_string;   /* array form: inside a JSON string */
    int escape;      /* array form: after a backslash in a string */
    int newlines;    /* SSE: line ends in a row (a CR is ignored) */
    size_t examined; /* bytes looked at since init (for tests and measurements) */
};

void skiff_stream_scan_init(struct skiff_stream_scan *s, int sse);

/*
 * p[0..n) is the current unit so far: the bytes from where the last unit ended, the same
 * prefix on every call, grown by the new piece. Looks only at the bytes not looked at yet.
 * Returns the unit's length once it is complete (the next call then starts the next unit at
 * p + that length), or 0 when it needs more bytes.
 */
size_t skiff_stream_scan_next(struct skiff_stream_scan *s, const char *p, size_t n);

/*
 * The length of the first complete unit in p[0..n) for a scan from a fresh state (the start
 * of a stream); 0 when no unit is complete yet.
 */
size_t skiff_stream_unit_end(const char *p, size_t n, int sse);

/* What a unit holds (its members read by the tokenizer for the fields that decide it, no
 * DOM). */
enum skiff_unit skiff_stream_judge(const char *p, size_t n);

/* The start of the JSON inside a unit (after "data:", '[', ',' and whitespace). */
const char *skiff_stream_json(const char *p, size_t n, size_t *len);

struct skiff_json_tok;

/*
 * Reads the JSON in p[0..n) with the tokenizer (base/json.h): a response body, one unit, or
 * units back to back (SSE "data:" events, the elements of the array form, complete or cut
 * short). For each object member, in order, calls fn with its key, the first token of its
 * value (OBJECT or ARRAY for a container, whose members follow) and its depth (1 for a
 * member of a top-level object). Stops when fn returns non-zero, and returns that, or where
 * the grammar breaks (what came before it was read), and returns 0.
 */
int skiff_stream_each_member(const char *p, size_t n,
                             int (*fn)(const struct skiff_json_tok *key,
                                       const struct skiff_json_tok *value, int depth, void *ud),
                             void *ud);

#endif
