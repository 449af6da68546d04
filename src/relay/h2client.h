/*
 * HTTP/2 for the upstream client (relay/h1h2.c), on nghttp2: one session per upstream
 * connection, many calls (streams) on it. Framing, HPACK, flow control, SETTINGS, PING and
 * GOAWAY are nghttp2's; this module only maps a call onto a stream and back. No I/O: the
 * connection's owner feeds the plaintext it decrypted (skiff_h2_recv) and gets the frames
 * to send through ops->send, so every path can be driven in memory (tests/unit/test_h2.c).
 *
 * Flow control never stalls one stream behind another: the connection's window is consumed
 * as soon as bytes arrive, a stream's window only as the call takes them. A paused call's
 * stream keeps what arrives meanwhile (at most its window, STREAM_WINDOW) until
 * skiff_h2_resume; the other streams go on.
 *
 * Callbacks (ops) run from inside skiff_h2_recv, skiff_h2_resume, skiff_h2_flush and
 * skiff_h2_fail; from them the owner may call skiff_h2_cancel, skiff_h2_submit and
 * skiff_h2_resume on the same session, never skiff_h2_free.
 */
#ifndef SKIFF_H2CLIENT_H
#define SKIFF_H2CLIENT_H

#include <stddef.h>
#include <stdint.h>

struct skiff_h2;

struct skiff_h2_ops {
    /* Frames to go out on the connection. 0, or -1 when they cannot (the owner then ends
     * the connection with skiff_h2_fail). */
    int (*send)(void *conn, const char *data, size_t len);
    /* The final response head of a call's stream: status and a header block ("name:
     * value\r\n" lines, no hop-by-hop field). */
    void (*on_head)(void *call, int status, const char *headers, size_t len);
    /* Body bytes, consumed whatever the return; 1 holds the next ones until
     * skiff_h2_resume. */
    int (*on_data)(void *call, const char *data, size_t len);
    /* The call's stream ended: error NULL when the answer is complete, else a one-line
     * cause. not_processed: the upstream has certainly not acted on the request (refused,
     * above a GOAWAY's last stream, or never sent), so it may go again elsewhere. After
     * on_end the session forgets the call. */
    void (*on_end)(void *call, const char *error, int not_processed);
    /* A streamed body's queue fell below SKIFF_H2_LOW_WATER (skiff_h2_body_write), after a
     * flush, outside nghttp2. May be NULL. */
    void (*on_drain)(void *call);
};

#define SKIFF_H2_HIGH_WATER (1024 * 1024)
#define SKIFF_H2_LOW_WATER (256 * 1024)

/* Passed as skiff_h2_submit's body: the body is streamed (skiff_h2_body_write). */
extern const char skiff_h2_streamed[];

/* A client session on conn; its connection preface and SETTINGS wait for the first flush.
 * NULL when out of memory. */
struct skiff_h2 *skiff_h2_new(const struct skiff_h2_ops *ops, void *conn);

/* Frees the session without calling back (end the calls first with skiff_h2_fail). */
void skiff_h2_free(struct skiff_h2 *h);

/* Plaintext from the connection, then the flush of what it calls for. 0, or -1 when the
 * connection must end (a protocol error, a failed send; skiff_h2_error says why). */
int skiff_h2_recv(struct skiff_h2 *h, const char *data, size_t len);

/* Sends what the session has waiting (nothing from inside a callback: the outermost call
 * flushes). 0, or -1 as skiff_h2_recv. */
int skiff_h2_flush(struct skiff_h2 *h);

/* One request field: name and value, borrowed for the skiff_h2_submit call. */
struct skiff_h2_field {
    const char *name, *value;
    size_t name_len, value_len;
};

/* A request as a stream carries it, every part borrowed for the skiff_h2_submit call: what
 * goes as :method, :path and :authority (:scheme is https), then the fields (any case:
 * names go lowercased; connection-specific ones and host are dropped, RFC 9113 §8.2.2). */
struct skiff_h2_req {
    const char *method, *path, *authority;
    size_t method_len, path_len, authority_len;
    const struct skiff_h2_field *fields;
    size_t nfields;
};

/*
 * Starts a call on a new stream for request r. body (borrowed until on_end or
 * skiff_h2_cancel) goes as DATA as the upstream's windows allow; a GET ends with its HEADERS.
 * Returns 0, or -1 when r lacks a method, path or authority, or the session takes no new
 * stream.
 */
int skiff_h2_submit(struct skiff_h2 *h, const struct skiff_h2_req *r, const char *body,
                    size_t body_len, void *call);

/*
 * A streamed body's bytes (copied) for the call's stream (submitted with skiff_h2_streamed),
 * sent as DATA as the upstream's windows allow. Returns the bytes still queued, or
 * (size_t)-1 when the queue would pass twice the high-water mark (the caller did not stop).
 */
size_t skiff_h2_body_write(struct skiff_h2 *h, void *call, const char *data, size_t len);

/* The streamed body is complete: END_STREAM after its last byte. */
void skiff_h2_body_end(struct skiff_h2 *h, void *call);

/* The call goes away: its stream is reset (CANCEL) unless it has ended, and no callback
 * names the call again. */
void skiff_h2_cancel(struct skiff_h2 *h, void *call);

/* Delivers what the call's stream held while paused (and its end, if it came), then opens
 * its window again. */
void skiff_h2_resume(struct skiff_h2 *h, void *call);

/* The connection is gone: every call gets on_end with `error` (not_processed for those
 * whose request never left). The session takes nothing more. */
void skiff_h2_fail(struct skiff_h2 *h, const char *error);

/* Whether a new call may start now: the upstream's SETTINGS_MAX_CONCURRENT_STREAMS leaves
 * room, and no GOAWAY came. */
int skiff_h2_can_open(const struct skiff_h2 *h);

/* The streams the session may open when empty (the upstream's limit; 100 until its SETTINGS
 * say). */
int skiff_h2_capacity(const struct skiff_h2 *h);

/* Calls on the session (streams not yet ended). */
int skiff_h2_calls(const struct skiff_h2 *h);

/* Whether the connection has no more use: a GOAWAY came (or was sent) and no call is left. */
int skiff_h2_finished(const struct skiff_h2 *h);

/* Why the session failed, in words; "" when it did not. */
const char *skiff_h2_error(const struct skiff_h2 *h);

#endif
