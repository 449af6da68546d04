/*
 * The stream translator: one per streamed chat completion. It is fed the Gemini SSE events of
 * streamGenerateContent one at a time (the JSON of each "data:" line, whole) and appends
 * OpenAI chat.completion.chunk events ("data: {...}\n\n") to the caller's buffer:
 *
 * - the first chunk of each choice carries role "assistant";
 * - one chunk per Gemini part: content, reasoning_content (thoughts, only when asked) or one
 *   tool call (Gemini sends a call whole, so its arguments come in one delta, with its id,
 *   name, a running index across the whole stream and, when signed,
 *   extra_content.google.thought_signature);
 * - finish_reason once, on one final chunk written by skiff_oai_stream_end: the first
 *   finishReason Gemini sent, mapped with whether the choice called a tool, so a call
 *   followed by STOP is "tool_calls" and nothing later overwrites it;
 * - a usage chunk (choices []) only with include_usage, then "data: [DONE]".
 *
 * A failure after the start (an error event, bad JSON, a stream that ends without a
 * finishReason, or the engine's skiff_oai_stream_fail) is one `data: {"error": {...}}` chunk
 * and no [DONE]: the client never sees a clean finish of a broken answer.
 */
#ifndef SKIFF_DOORS_OPENAI_CHAT_STREAM_H
#define SKIFF_DOORS_OPENAI_CHAT_STREAM_H

#include <stddef.h>

#include "base/buf.h"
#include "doors/openai/chat_response.h"
#include "doors/openai/errors.h"

struct skiff_oai_stream;

/* A translator for one stream; o is copied (o->model too), include_usage from
 * stream_options. NULL on OOM. */
struct skiff_oai_stream *skiff_oai_stream_new(const struct skiff_oai_answer_opts *o,
                                              int include_usage);
void skiff_oai_stream_free(struct skiff_oai_stream *s);

/*
 * Feeds one Gemini event (json, len bytes: the payload of one "data:" line). Appends the
 * chunks it makes to out. Returns 0; SKIFF_EINVAL when the event was an error or not JSON
 * (the error chunk is then written and the stream is over); SKIFF_ENOMEM or SKIFF_ETOOBIG
 * from out. After the stream is over, feeding does nothing and returns SKIFF_EINVAL.
 */
int skiff_oai_stream_feed(struct skiff_oai_stream *s, const char *json, size_t len,
                          struct skiff_buf *out);

/*
 * The upstream's stream ended cleanly: writes the final chunk (finish_reason), the usage
 * chunk (include_usage) and [DONE]. When no finishReason was seen the answer was cut: an
 * error chunk instead, and SKIFF_EINVAL. Returns 0 on a clean end.
 */
int skiff_oai_stream_end(struct skiff_oai_stream *s, struct skiff_buf *out);

/* The engine failed after the start (timeout, upstream reset): writes the error chunk of e,
 * ends the stream (no [DONE]). Does nothing when the stream is already over. */
int skiff_oai_stream_fail(struct skiff_oai_stream *s, const struct skiff_oai_error *e,
                          struct skiff_buf *out);

/* Whether any chunk has been written (so a failure can no longer be an HTTP status). */
int skiff_oai_stream_started(const struct skiff_oai_stream *s);

#endif
