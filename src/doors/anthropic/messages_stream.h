/*
 * A Gemini stream (streamGenerateContent?alt=sse) translated to a Messages stream, one
 * translator per stream. The door feeds it each complete upstream event (the JSON of one
 * `data:` line, after the engine's hold layer) and sends what it appends to out:
 *
 *   event: message_start        (on the first event, with the usage known so far)
 *   event: content_block_start / content_block_delta / content_block_stop   (per block,
 *          by the rules of blocks.h: text_delta, thinking_delta, signature_delta, and one
 *          input_json_delta carrying a call's whole arguments)
 *   event: message_delta        (stop_reason, stop_sequence, final usage)
 *   event: message_stop
 *
 * Each as `event: <type>\ndata: <compact JSON>\n\n`. message_delta and message_stop are
 * written by skiff_anth_stream_end, when the upstream stream ends after a finishReason, so
 * they carry the last usage. A failure after the start is `event: error` and nothing more:
 * never a clean message_stop after a broken stream.
 */
#ifndef SKIFF_DOORS_ANTHROPIC_MESSAGES_STREAM_H
#define SKIFF_DOORS_ANTHROPIC_MESSAGES_STREAM_H

#include <stddef.h>

#include <jansson.h>

#include "base/buf.h"
#include "doors/anthropic/blocks.h"
#include "doors/anthropic/errors.h"

struct skiff_anth_stream {
    struct skiff_anth_reply reply; /* a copy; its pointers stay borrowed */
    struct skiff_anth_blocks blocks;
    struct skiff_buf *out; /* the buffer of the current call */
    json_t *usage;         /* the last usageMetadata seen; owned */
    char *finish;          /* the finishReason seen; owned */
    char *blocked;         /* promptFeedback.blockReason seen; owned */
    int started;           /* message_start written */
    int done;              /* message_stop or error written: nothing more is */
};

/* Sets up a translator; allocates nothing. */
void skiff_anth_stream_init(struct skiff_anth_stream *s, const struct skiff_anth_reply *reply);

/*
 * One upstream event (len bytes of JSON). Appends the Anthropic events it makes to out.
 * An event that is a Google error ({"error": ...}, as Gemini sends mid-stream) ends the
 * stream with `event: error`. Returns 0; SKIFF_EINVAL when the event is not JSON (out
 * then holds an api_error event and the stream is done); SKIFF_ENOMEM or SKIFF_ETOOBIG
 * when out cannot grow (the door then drops the connection).
 */
int skiff_anth_stream_event(struct skiff_anth_stream *s, const char *json, size_t len,
                            struct skiff_buf *out);

/* The upstream stream ended cleanly: closes the open block and writes message_delta and
 * message_stop; a stream that ended before any finishReason is a failure (api_error). */
int skiff_anth_stream_end(struct skiff_anth_stream *s, struct skiff_buf *out);

/* The engine gave up on the stream (status and message as skiff_anth_error_from_google
 * made them): writes `event: error` (overloaded_error, api_error, ...). Nothing after. */
int skiff_anth_stream_fail(struct skiff_anth_stream *s, const struct skiff_anth_error *e,
                           struct skiff_buf *out);

/* `event: ping`, which the door writes on a timer while a long thought has nothing to send
 * (only after message_start, as Anthropic does; nothing once the stream is done). */
int skiff_anth_stream_ping(struct skiff_anth_stream *s, struct skiff_buf *out);

void skiff_anth_stream_release(struct skiff_anth_stream *s);

#endif
