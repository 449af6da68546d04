/*
 * The one JSON tokenizer (RFC 8259): a pull scanner over a span of bytes that allocates
 * nothing and does not recurse (the open containers are a bit stack in the state, at most
 * SKIFF_JSON_MAX_DEPTH deep, as deep bodies are an attack, not a prompt). It is strict: every
 * token it hands out is where the grammar allows it, and the first byte that breaks the
 * grammar stops it with a reason and an offset. Strings are skipped 16 bytes at a time.
 *
 * Its users: the syntax check of request bodies (skiff_json_check, base/jsoncheck.h), the
 * Gemini validator, the stream judge and the response diagnostics. None of them builds a
 * DOM; each reads the tokens it cares about and skips the rest.
 */
#ifndef SKIFF_JSON_H
#define SKIFF_JSON_H

#include <stddef.h>

#define SKIFF_JSON_MAX_DEPTH 512

enum skiff_jtype {
    SKIFF_JSON_ERROR = -1, /* the grammar is broken at skiff_json_offset: see j->why */
    SKIFF_JSON_END = 0,    /* the value is complete and only whitespace follows it */
    SKIFF_JSON_OBJECT,     /* '{' */
    SKIFF_JSON_ARRAY,      /* '[' */
    SKIFF_JSON_CLOSE,      /* '}' or ']' (which one: *tok.p) */
    SKIFF_JSON_KEY,        /* a member's name (its ':' is already read) */
    SKIFF_JSON_STRING,
    SKIFF_JSON_NUMBER,
    SKIFF_JSON_TRUE,
    SKIFF_JSON_FALSE,
    SKIFF_JSON_NULL,
};

/* A token's bytes as they are in the input: a key or a string with its quotes and its
 * escapes undecoded, a number as written, one bracket for OBJECT, ARRAY and CLOSE. */
struct skiff_json_tok {
    enum skiff_jtype type;
    const char *p;
    size_t n;
};

/* The scanner's state: plain data, set up by skiff_json_init. */
struct skiff_json {
    const char *p, *start, *end;
    const char *why; /* static text, once an ERROR was returned */
    int depth;       /* containers open */
    int state;
    unsigned char is_object[SKIFF_JSON_MAX_DEPTH / 8]; /* one bit per open container */
};

void skiff_json_init(struct skiff_json *j, const char *p, size_t n);

/* The next token. After END or ERROR every call returns the same again. */
enum skiff_jtype skiff_json_next(struct skiff_json *j, struct skiff_json_tok *tok);

/*
 * Right after an OBJECT or ARRAY token: reads the container to its CLOSE (checking it all
 * the same). Returns 0, or -1 when the grammar broke inside it.
 */
int skiff_json_skip(struct skiff_json *j);

/* Whether the top-level value is complete: then j->p is the byte after it (a caller reading
 * several values in a row, such as stream events, may start a new scan there). */
int skiff_json_done(const struct skiff_json *j);

/* Where the scanner is: after an ERROR, the offset of the byte that broke the grammar. */
size_t skiff_json_offset(const struct skiff_json *j);

/* Whether a KEY or STRING token's text (without its quotes, escapes undecoded) is s. */
int skiff_json_is(const struct skiff_json_tok *tok, const char *s, size_t n);

#endif
