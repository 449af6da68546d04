/*
 * Response diagnostics, the second half of the troubleshooting guide: answers that end for
 * a reason the client should hear about (safety, recitation, a blocked prompt), streams
 * stuck in a repetition loop.
 *
 * Neither changes a healthy response: the finish check only reads and the repetition guard
 * only advises.
 */
#ifndef SKIFF_GEMINI_DIAGNOSE_H
#define SKIFF_GEMINI_DIAGNOSE_H

#include <stddef.h>

/* ---- finishReason / blockReason ---------------------------------------------------------- */

struct skiff_finish {
    char header[64];    /* the x-skiff-finish value: "SAFETY", "blockReason=PROHIBITED_CONTENT" */
    char reason[32];    /* the enum value alone: "SAFETY", "PROHIBITED_CONTENT" */
    int prompt_blocked; /* promptFeedback.blockReason (the prompt was refused, 200, no answer) */
    const char *advice; /* the guide's advice for the case, one sentence (static) */
};

/*
 * Looks for a notable end in a response body or one stream event (len bytes): a
 * finishReason of SAFETY, RECITATION, OTHER, BLOCKLIST, PROHIBITED_CONTENT, SPII (or
 * another unhealthy value: LANGUAGE, MALFORMED_FUNCTION_CALL, IMAGE_*...) or a
 * promptFeedback.blockReason. STOP and MAX_TOKENS are healthy. Returns 1 and fills *out when
 * found, else 0. Cost: a byte search for the two keys; the tokenizer (one pass of
 * skiff_stream_each_member, no DOM) reads only a body that may end notably.
 */
int skiff_diagnose_finish(const char *data, size_t len, struct skiff_finish *out);

/* ---- repetition guard ---------------------------------------------------------------------- */

enum skiff_rep {
    SKIFF_REP_NONE = 0,
    SKIFF_REP_HYPHENS,  /* a run of hyphens no Markdown table needs */
    SKIFF_REP_NEWLINES, /* a run of blank lines */
    SKIFF_REP_SENTENCE, /* the same sentence over and over */
};

#define SKIFF_REP_HYPHEN_RUN 400    /* hyphens in a row (a 40-column |---| row has 120) */
#define SKIFF_REP_NEWLINE_RUN 120   /* newlines in a row, blanks between them ignored */
#define SKIFF_REP_SENTENCE_MIN 16   /* a sentence shorter than this is never counted */
#define SKIFF_REP_SENTENCE_TIMES 12 /* consecutive identical sentences */

/* Per stream; plain data, no allocation. Zero it (or skiff_repguard_init) before use. */
struct skiff_repguard {
    enum skiff_rep tripped;
    unsigned hyphens; /* the current run */
    unsigned newlines;
    unsigned long long sentence_hash; /* FNV-1a of the sentence being read */
    unsigned sentence_len;
    unsigned long long last_hash; /* the previous complete sentence */
    unsigned repeats;             /* how many times in a row it came */
};

void skiff_repguard_init(struct skiff_repguard *g);

/* Feeds decoded text (a delta). Returns SKIFF_REP_NONE, or the kind of loop once it trips
 * (and every call after). */
enum skiff_rep skiff_repguard_feed(struct skiff_repguard *g, const char *text, size_t len);

/* Feeds one stream event (SSE data or an array element): the "text" values of its parts
 * are decoded (JSON escapes) and fed; thought parts count too. Returns as feed does. */
enum skiff_rep skiff_repguard_feed_event(struct skiff_repguard *g, const char *event, size_t len);

/* A one-line explanation of a tripped guard, for the header/event and the log (static). */
const char *skiff_rep_explain(enum skiff_rep r);

#endif
