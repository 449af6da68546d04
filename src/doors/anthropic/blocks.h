/*
 * Gemini parts → Anthropic content blocks, as the sequence of block events a Messages
 * stream has (open, deltas, close). One walker for both answers: the stream translator
 * writes each event as SSE, the whole-message translator builds the content array from
 * them, so the two cannot disagree.
 *
 * The rules (docs/internals/anthropic.md):
 *   - a part with "thought": true is thinking text: a thinking block, only when the client
 *     asked for thinking (otherwise dropped);
 *   - a thoughtSignature, on any part, is the signature of the thinking block of its step:
 *     the open unsigned one, or a new empty one; it is sent as signature_delta just before
 *     that block's close, as Anthropic does. Without thinking asked, it goes only to the
 *     signature cache (function calls) or is dropped (text: Gemini does not check those);
 *   - visible text (no "thought") is always a text block, signed or not;
 *   - a functionCall is a tool_use block with an id skiff makes, toolu_<seed>_<n>, whose
 *     input_json_delta carries the call's whole arguments ("{}" for none), never an empty
 *     delta; its signature is stored under that id through reply->store;
 *   - with single_tool_call (disable_parallel_tool_use), calls after the first are dropped:
 *     Gemini has no switch for parallel calls;
 *   - other parts (executableCode, inlineData, ...) have no Messages block and are dropped.
 *
 * It also notes which stop sequences occur in the visible text (stops_seen): Gemini cuts
 * the text before the first one it meets, so one that occurs is one that did not fire.
 */
#ifndef SKIFF_DOORS_ANTHROPIC_BLOCKS_H
#define SKIFF_DOORS_ANTHROPIC_BLOCKS_H

#include <stddef.h>

#include <jansson.h>

/* Stores the signature Gemini gave on the call skiff named tool_use_id (both borrowed for
 * the length of the call; the cache copies them). */
typedef void skiff_anth_sig_store(void *ud, const char *tool_use_id, const char *signature);

/* What the door remembers from the request to translate its answer. Borrowed: every
 * pointer outlives the translator. */
struct skiff_anth_reply {
    const char *model;            /* the name the client asked for: the answer's "model" */
    const char *id_seed;          /* ^[a-zA-Z0-9_-]+$, unique per answer: msg_<seed> and
                                   * toolu_<seed>_<n> */
    const json_t *stop_sequences; /* the request's stop_sequences, or NULL */
    int thinking;                 /* the client asked for thinking: show thoughts */
    int single_tool_call;         /* disable_parallel_tool_use */
    skiff_anth_sig_store *store;  /* may be NULL */
    void *ud;
};

/* The sink of block events. block and delta are borrowed for the call. Each returns 0 or a
 * negative skiff_err, which the walker returns at once. */
struct skiff_anth_block_ops {
    int (*open)(void *ctx, size_t index, const json_t *block);
    int (*delta)(void *ctx, size_t index, const json_t *delta);
    int (*close)(void *ctx, size_t index);
};

enum skiff_anth_block_kind {
    SKIFF_ANTH_BLOCK_NONE = 0,
    SKIFF_ANTH_BLOCK_TEXT,
    SKIFF_ANTH_BLOCK_THINKING,
    SKIFF_ANTH_BLOCK_TOOL,
};

struct skiff_anth_blocks {
    const struct skiff_anth_reply *reply;
    const struct skiff_anth_block_ops *ops;
    void *ctx;
    enum skiff_anth_block_kind open; /* the open block's kind, NONE when none is */
    size_t index;                    /* the open block's index, or the next one's */
    char *held_sig;                  /* the open thinking block's signature; owned */
    size_t n_calls;                  /* tool_use blocks made */
    size_t text_bytes;               /* visible text sent */
    unsigned stops_seen;             /* bit i: stop_sequences[i] occurs in the visible text */
    char tail[64];                   /* the visible text's last bytes, for a stop sequence
                                      * split across two parts */
    size_t tail_len;
};

void skiff_anth_blocks_init(struct skiff_anth_blocks *b, const struct skiff_anth_reply *reply,
                            const struct skiff_anth_block_ops *ops, void *ctx);

/* Walks one Content's parts (a Gemini "parts" array, may be NULL). Returns 0 or the first
 * error of the sink (SKIFF_ENOMEM on allocation failure). */
int skiff_anth_blocks_parts(struct skiff_anth_blocks *b, const json_t *parts);

/* Closes the open block, if any (at the end of the answer). */
int skiff_anth_blocks_finish(struct skiff_anth_blocks *b);

void skiff_anth_blocks_release(struct skiff_anth_blocks *b);

#endif
