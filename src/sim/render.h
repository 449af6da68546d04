/*
 * Rendering the simulator's answers as the Gemini API writes them: deterministic answer
 * text derived from the prompt, token counts and usageMetadata, and the three framings of
 * gemini-api.md §1.2-1.3:
 *
 *   whole body   pretty JSON (2-space indent, keys in proto order) and a final "\n";
 *   SSE          "data: " + one-line JSON with ": " after keys and no space after commas,
 *                then "\r\n\r\n"; no [DONE];
 *   JSON array   "[" + pretty element, elements separated by "\n,\r\n", then "\n]" with no
 *                trailing newline.
 *
 * Functions returning char * return malloc'd NUL-terminated strings the caller frees (NULL
 * on OOM); json_t * results are new references.
 */
#ifndef SKIFF_SIM_RENDER_H
#define SKIFF_SIM_RENDER_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/* The flags of every pretty body the simulator writes. */
#define SKIFF_SIM_PRETTY (JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9))

/* The end of a JSON-array stream. */
#define SKIFF_SIM_ARRAY_END "\n]"

/* Tokens of a text, as the simulator counts them: about 4 bytes a token, 1 at least. */
long skiff_sim_text_tokens(size_t len);

/*
 * What the simulator reads from a prompt: the token count, a hash of all its text (the
 * seed of the answer), and the start of the last text part (echoed in the answer).
 */
struct skiff_sim_prompt {
    long tokens;      /* text tokens of contents and systemInstruction; 258 per non-text part */
    uint64_t hash;    /* FNV-1a over every text part */
    char snippet[48]; /* the first words of the last text part, cut at a UTF-8 boundary */
};

/*
 * Reads contents (an array of Content) and optional system_instruction (a Content or NULL)
 * into out. Never fails: unexpected shapes count as nothing (validation happens earlier).
 */
void skiff_sim_prompt_read(const json_t *contents, const json_t *system_instruction,
                           struct skiff_sim_prompt *out);

/*
 * One generated answer, cut into stream chunks. Owns text and cuts.
 */
struct skiff_sim_answer {
    char *text;
    size_t len;
    size_t *cuts; /* chunk i is text[cuts[i], cuts[i + 1]); nchunks + 1 entries */
    size_t nchunks;
    long prompt_tokens;
    long thoughts_tokens;      /* 0: the model did not think (the field is then omitted) */
    int include_thoughts;      /* add a thought-summary part (thinkingConfig.includeThoughts) */
    const char *finish_reason; /* "STOP" or "MAX_TOKENS" */
    json_t *calls;             /* functionCall objects answered instead of text, or NULL */
    int sign_calls;            /* the first call carries the simulator's thoughtSignature */
    char model_version[64];
    char response_id[24]; /* 23 URL-safe characters */
};

struct skiff_sim_answer_opts {
    const struct skiff_sim_prompt *prompt;
    long max_output_tokens; /* the request's maxOutputTokens or the model's limit */
    long thinking_budget;   /* -1: dynamic; 0: no thinking; else the cap */
    int include_thoughts;
    const char *model_version; /* the concrete model */
    uint64_t id_seed;          /* random bits for responseId */
    const char *text;          /* the answer's text instead of the composed one, or NULL */
    json_t *calls;             /* answer with these calls (borrowed; the answer keeps a ref) */
    int sign_calls;
    const json_t *stops; /* generationConfig.stopSequences, or NULL */
};

/*
 * Builds the answer: the same prompt gives the same text. Thinking tokens (when the budget
 * is not 0) come out of max_output_tokens first, as on 2.5 models; an answer cut short
 * ends with MAX_TOKENS. The text ends before the first stop sequence it holds (STOP). An
 * answer with calls is one chunk. Returns 0 or SKIFF_ENOMEM.
 */
int skiff_sim_answer_make(struct skiff_sim_answer *a, const struct skiff_sim_answer_opts *o);
void skiff_sim_answer_release(struct skiff_sim_answer *a);

/* Output tokens of the answer's first `upto` bytes of text. */
long skiff_sim_answer_tokens(const struct skiff_sim_answer *a, size_t upto);

/*
 * A GenerateContentResponse: the whole answer (i == SIZE_MAX) or stream chunk i, with the
 * running usage, modelVersion and responseId; finishReason only on the whole answer and
 * the last chunk.
 */
json_t *skiff_sim_render_response(const struct skiff_sim_answer *a, size_t i);

/*
 * usageMetadata for the given counts, zero fields omitted, totalTokenCount their sum.
 * details: add promptTokensDetails.
 */
json_t *skiff_sim_render_usage(long prompt, long candidates, long thoughts);

/* One line of JSON in the SSE layout: {"a": 1,"b": [1,2]} (no newlines). */
char *skiff_sim_render_compact(const json_t *j, size_t *len);

/* "data: " + skiff_sim_render_compact(j) + "\r\n\r\n". */
char *skiff_sim_render_sse(const json_t *j, size_t *len);

/* A JSON-array element: "[" (first) or "\n,\r\n" (later) + pretty j. */
char *skiff_sim_render_array_elem(const json_t *j, int first, size_t *len);

/* A whole pretty body: pretty j + "\n". */
char *skiff_sim_render_pretty(const json_t *j, size_t *len);

/*
 * A deterministic embedding of text: dims values in [-1, 1], unit length, the same for
 * the same text and task. Returns {"values": [...]}.
 */
json_t *skiff_sim_render_embedding(const char *text, size_t len, const char *task, long dims);

#endif
