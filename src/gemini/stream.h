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
    SKIFF_UNIT_CONTENT,     /* text, a function call, media, promptFeedback: commit */
    SKIFF_UNIT_EMPTY,       /* a candidate with nothing in it yet: keep holding */
    SKIFF_UNIT_EMPTY_STOP,  /* finishReason STOP with no content at all: a failed answer */
    SKIFF_UNIT_FINISH,      /* another finishReason with no content (SAFETY, MAX_TOKENS...) */
    SKIFF_UNIT_ERROR,       /* an error object instead of an event */
};

/*
 * The length of the first complete unit in p[0..n): an SSE event up to and including its
 * blank line (sse), or an array element up to its separator "\n,\r\n" or the closing "\n]".
 * 0 when no unit is complete yet.
 */
size_t skiff_stream_unit_end(const char *p, size_t n, int sse);

/* What a unit holds (a scan for the fields that decide it, no DOM). */
enum skiff_unit skiff_stream_judge(const char *p, size_t n);

/* The start of the JSON inside a unit (after "data:", '[', ',' and whitespace). */
const char *skiff_stream_json(const char *p, size_t n, size_t *len);

#endif
