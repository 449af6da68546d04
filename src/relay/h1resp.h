/*
 * HTTP/1.1 response framing for the upstream client (RFC 9112 §4–§7): the head (status
 * line and header fields) and the body's length, chunked encoding or end at close. Pure:
 * no I/O and no allocation, so every split of the input can be tested.
 *
 * The client finds a complete head with skiff_h1_head_end, parses it once with
 * skiff_h1_parse_head, then feeds body bytes to skiff_h1_body until it reports the end.
 */
#ifndef SKIFF_H1RESP_H
#define SKIFF_H1RESP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/buf.h"

enum skiff_h1_state {
    SKIFF_H1_HEAD,       /* waiting for a head */
    SKIFF_H1_LENGTH,     /* Content-Length bytes left in `left` */
    SKIFF_H1_CHUNK_SIZE, /* reading a chunk-size line */
    SKIFF_H1_CHUNK_DATA, /* `left` bytes of chunk data left */
    SKIFF_H1_CHUNK_END,  /* the CRLF after chunk data */
    SKIFF_H1_TRAILER,    /* trailer lines after the last chunk */
    SKIFF_H1_UNTIL_EOF,  /* no framing: the body ends when the connection closes */
    SKIFF_H1_DONE,       /* the response is complete */
};

struct skiff_h1resp {
    enum skiff_h1_state state;
    int status;
    int keep_alive;   /* the connection may carry another request after this response */
    int64_t left;     /* body or chunk bytes still to come */
    int line_len;     /* bytes of the current chunk-size or trailer line seen so far */
    int size_digits;  /* hex digits of the current chunk size */
    int in_extension; /* past the ';' of a chunk extension */
};

/* Length of the head at the start of data (through its blank line, CRLF or bare LF), or 0
 * when the blank line has not arrived yet. `from` is where to start looking, so a caller
 * that accumulates a head across reads does not rescan it (pass the old length minus 3). */
size_t skiff_h1_head_end(const char *data, size_t len, size_t from);

/*
 * Parses one complete head. Sets status, keep_alive and the body framing (none for 1xx,
 * 204, 304 and answers to HEAD). Appends each end-to-end header field to `out` as
 * "name: value\r\n"; hop-by-hop fields, those the framing consumed and those the
 * Connection header names are left out.
 * Returns 0, or -1 when the head is not an HTTP/1.x response, a Content-Length is not a
 * number (or two disagree), or `out` is full.
 */
int skiff_h1_parse_head(struct skiff_h1resp *p, const char *head, size_t len, int head_request,
                        struct skiff_buf *out);

/*
 * Decodes body bytes. Consumes a prefix of in[0..len) and points *piece at the body bytes
 * found in it (within `in`; *piece_len may be 0 when only framing was consumed). Call again
 * with the rest until it consumes nothing or the state is SKIFF_H1_DONE. Returns the bytes
 * consumed, or -1 on a framing error (a bad chunk size, a missing CRLF, a line too long).
 */
ssize_t skiff_h1_body(struct skiff_h1resp *p, const char *in, size_t len, const char **piece,
                      size_t *piece_len);

/* The connection closed: 0 when that completes the response (or it was complete), -1 when
 * the body is cut short. */
int skiff_h1_eof(struct skiff_h1resp *p);

/* Whether an upstream response's header field is dropped rather than forwarded: the
 * hop-by-hop fields (base/hopbyhop.h), content-length, proxy-authenticate and alt-svc. */
int skiff_h1_hop_by_hop(const char *name, size_t len);

/* Whether name[0..n) is one of the tokens of the comma list v[0..vlen), ignoring case (a
 * Connection header's value: RFC 9110 7.6.1). */
int skiff_h1_token_listed(const char *v, size_t vlen, const char *name, size_t n);

/*
 * Removes from block[from..] ("name: value\r\n" lines) every Connection line and every
 * field a Connection line names (RFC 9110 7.6.1: hop-by-hop by declaration). A transport
 * keeps Connection lines in the block it builds, then calls this once the head is
 * complete, so a name is found whether it comes before or after its Connection line.
 */
void skiff_h1_drop_connection(struct skiff_buf *block, size_t from);

#endif
