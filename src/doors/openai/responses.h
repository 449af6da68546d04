/*
 * The Responses API (POST /v1/responses) on top of the chat translators: a Responses request
 * is rewritten as the Chat Completions request it means and translated by chat_request.c, and
 * the Gemini answer goes through chat_response.c and is reshaped as a Response object, so
 * both APIs follow the same rules (signatures, finish reasons, usage). Pure: no I/O.
 *
 * store: false semantics: nothing is kept; previous_response_id is a 400 until responses are
 * stored. The stream's event sequence (response.created ... response.completed) is written by
 * skiff_oai_rstream_*.
 */
#ifndef SKIFF_DOORS_OPENAI_RESPONSES_H
#define SKIFF_DOORS_OPENAI_RESPONSES_H

#include <stddef.h>

#include <jansson.h>

#include "base/buf.h"
#include "doors/openai/chat_request.h"
#include "doors/openai/chat_response.h"
#include "doors/openai/errors.h"

/*
 * The Chat Completions request that req (a Responses request, borrowed) means: instructions →
 * a system message first; input (a string, or items: message, function_call,
 * function_call_output; reasoning items are skipped) → messages, consecutive function_call
 * items one assistant message; tools (flat function tools) → chat tools; tool_choice,
 * text.format → response_format, reasoning.effort → reasoning_effort, max_output_tokens →
 * max_completion_tokens; temperature, top_p, parallel_tool_calls, stream, model as they are.
 * Returns a new reference, or NULL with the 400 in *err.
 */
json_t *skiff_oai_responses_to_chat(const json_t *req, struct skiff_oai_error *err);

/*
 * A Response object {id, object: "response", created_at, status, model, output[],
 * usage, ...} from a chat.completion made by skiff_oai_chat_response (borrowed): reasoning
 * content → a reasoning item (summary_text), text → a message item with output_text, tool
 * calls → function_call items (call_id = the tool call's id; the signature rides in
 * extra_content as in chat). finish_reason length/content_filter → status "incomplete" with
 * incomplete_details.reason max_output_tokens/content_filter. New reference; NULL on OOM.
 */
json_t *skiff_oai_response_from_chat(const json_t *completion);

struct skiff_oai_rstream;

/* A Responses stream: o as for the chat stream. NULL on OOM. */
struct skiff_oai_rstream *skiff_oai_rstream_new(const struct skiff_oai_answer_opts *o);
void skiff_oai_rstream_free(struct skiff_oai_rstream *s);

/*
 * Feeds one Gemini SSE event; appends "event: <type>\ndata: {...}\n\n" events to out:
 * response.created and response.in_progress first, then per item output_item.added,
 * content_part.added, output_text.delta (text) or function_call_arguments.delta and .done
 * (a call, whole), and the matching .done events when the next item starts. Returns 0, or
 * SKIFF_EINVAL after an error event (an "error" event is written, then response.failed).
 */
int skiff_oai_rstream_feed(struct skiff_oai_rstream *s, const char *json, size_t len,
                           struct skiff_buf *out);

/* The upstream ended: closes the open item and writes response.completed (or
 * response.incomplete) with the whole Response; a stream without a finishReason is a failure
 * (error, response.failed) and SKIFF_EINVAL. */
int skiff_oai_rstream_end(struct skiff_oai_rstream *s, struct skiff_buf *out);

/* The engine failed after the start: "error" and response.failed. */
int skiff_oai_rstream_fail(struct skiff_oai_rstream *s, const struct skiff_oai_error *e,
                           struct skiff_buf *out);

#endif
