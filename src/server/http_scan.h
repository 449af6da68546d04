/*
 * The strict scanners of the HTTP layer (internal to src/server/). http-parser is built
 * lenient on Debian (HTTP_PARSER_STRICT=0): it takes a header name with a space before its
 * colon as a different header, folds obs-fold lines into the value, and reads whatever two
 * bytes follow chunk data as its CRLF. skiff owns the strictness here: the raw bytes of the
 * head and of a chunked body pass these two scanners before http-parser sees them, and what
 * RFC 9112 refuses is a 400 (431/414 for a head over the limit). Each byte is looked at once,
 * however the bytes are split into reads; the state is plain data, zeroed to start.
 */
#ifndef SKIFF_HTTP_SCAN_H
#define SKIFF_HTTP_SCAN_H

#include <stddef.h>
#include <stdint.h>

#define SKIFF_HTTP_MAX_HEAD (64 * 1024) /* request line and headers */

/* Where the head scanner is in a request head. */
struct skiff_headscan {
    uint32_t seen; /* head bytes so far */
    uint8_t state;
};

/* Where the chunk scanner is in a chunked body. */
struct skiff_chunkscan {
    uint64_t left; /* data bytes left in the current chunk */
    uint32_t line; /* bytes of the current extension, or of the trailers */
    uint8_t state;
    uint8_t digits;
};

/*
 * Scans the next bytes of a request head: header names are RFC 9110 tokens, no obs-fold, no
 * control character in a value, a CR is followed by LF, at most SKIFF_HTTP_MAX_HEAD bytes.
 * Returns how many of them belong to the head once its empty line is seen, 0 when all of
 * them did and the head goes on, or -1 with *status (400, 414 in the request line, 431) and
 * *msg (static) set.
 */
long skiff_head_scan(struct skiff_headscan *s, const char *data, size_t len, int *status,
                     const char **msg);

/*
 * Scans the next bytes of a chunked body (hex size then ';' or CRLF, no bare LF or control
 * character in an extension, CRLF after the data, trailers bounded and CRLF-terminated), up
 * to the end of the message: bytes after it, a pipelined request, are not looked at.
 * Returns 0, or -1 with *msg (static) set.
 */
int skiff_chunk_scan(struct skiff_chunkscan *s, const char *data, size_t len, const char **msg);

#endif
