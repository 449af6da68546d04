/*
 * Gemini GenerateContentResponse → OpenAI chat.completion, and the pieces the stream
 * translator (chat_stream.h) shares with it: finish_reason, usage, tool-call ids and the
 * signature cache's write side. Pure: no I/O.
 */
#ifndef SKIFF_DOORS_OPENAI_CHAT_RESPONSE_H
#define SKIFF_DOORS_OPENAI_CHAT_RESPONSE_H

#include <stddef.h>

#include <jansson.h>

/* The signature cache's write side: remember sig for the tool call call_id (both borrowed;
 * copy them). Called once per signed call, before the answer is handed to the client. */
typedef void skiff_oai_sig_store(void *ud, const char *call_id, const char *sig);

struct skiff_oai_answer_opts {
    const char *model;    /* the name the client asked for: the answer's "model" */
    long created;         /* Unix seconds for "created" */
    int include_thoughts; /* thought parts → reasoning_content (else they are dropped) */
    int parallel_calls;   /* 0 (parallel_tool_calls: false): only the first call is answered */
    skiff_oai_sig_store *store; /* NULL: no cache */
    void *ud;
};

/* Tool-call ids skiff makes: "call_" and 24 random letters and digits, so ^[a-zA-Z0-9_-]+$
 * holds (an id never carries a signature). */
#define SKIFF_OAI_CALL_ID_LEN 29
void skiff_oai_call_id(char out[SKIFF_OAI_CALL_ID_LEN + 1]);

/*
 * OpenAI's finish_reason for a Gemini finishReason (NULL: none yet, then NULL back).
 * called: the candidate called a tool. STOP (or no reason with calls) → "tool_calls" when
 * called else "stop"; MAX_TOKENS → "length"; SAFETY, RECITATION, BLOCKLIST,
 * PROHIBITED_CONTENT, SPII, IMAGE_SAFETY, IMAGE_PROHIBITED_CONTENT, IMAGE_RECITATION →
 * "content_filter"; anything else (OTHER, LANGUAGE, MALFORMED_FUNCTION_CALL...) → "stop",
 * or "tool_calls" when called. A static string.
 */
const char *skiff_oai_finish_reason(const char *gemini, int called);

/* OpenAI's usage object from usageMetadata (borrowed): prompt_tokens = prompt + toolUsePrompt,
 * completion_tokens = candidates + thoughts, total_tokens, prompt_tokens_details.cached_tokens,
 * completion_tokens_details.reasoning_tokens. New reference; NULL when um is not an object. */
json_t *skiff_oai_usage(const json_t *um);

/* A choice's logprobs {content: [{token, logprob, bytes, top_logprobs: [...]}], refusal: null}
 * from the candidate's logprobsResult (chosenCandidates and topCandidates), or JSON null
 * when it has none. New reference; NULL on OOM. */
json_t *skiff_oai_logprobs(const json_t *cand);

/* The refusal text of a blocked prompt ("The prompt was blocked by the Gemini API
 * (PROHIBITED_CONTENT)."), malloc'd, or NULL when promptFeedback holds no blockReason. */
char *skiff_oai_block_refusal(const json_t *resp);

/* The tool call for a functionCall part (borrowed): {index (when with_index), id (fresh),
 * type, function{name, arguments (args as compact JSON)}, extra_content.google.thought_signature
 * (when the part has one; then also stored through o->store)}. New reference; NULL on OOM. */
json_t *skiff_oai_tool_call(const json_t *part, const struct skiff_oai_answer_opts *o,
                            int with_index, size_t index);

/*
 * The chat.completion for resp (borrowed): a choice per candidate (index from the
 * candidate's "index"), message.content the non-thought text (null when there is none),
 * reasoning_content the thought text when asked, tool_calls with fresh ids and
 * extra_content.google.thought_signature on the call whose part had one (stored through
 * o->store too), finish_reason by skiff_oai_finish_reason; a blocked prompt is one choice
 * with content_filter and the reason in message.refusal; usage when usageMetadata is there.
 * id is "chatcmpl-" + responseId (or random). New reference; NULL on OOM.
 */
json_t *skiff_oai_chat_response(const json_t *resp, const struct skiff_oai_answer_opts *o);

#endif
