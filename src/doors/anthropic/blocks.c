#include "doors/anthropic/blocks.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"

void
skiff_anth_blocks_init(struct skiff_anth_blocks *b, const struct skiff_anth_reply *reply,
                       const struct skiff_anth_block_ops *ops, void *ctx)
{
    memset(b, 0, sizeof *b);
    b->reply = reply;
    b->ops = ops;
    b->ctx = ctx;
}

void
skiff_anth_blocks_release(struct skiff_anth_blocks *b)
{
    free(b->held_sig);
    b->held_sig = NULL;
}

static int
emit_delta(struct skiff_anth_blocks *b, json_t *delta)
{
    if (!delta)
        return SKIFF_ENOMEM;
    int rc = b->ops->delta(b->ctx, b->index, delta);
    json_decref(delta);
    return rc;
}

/* Closes the open block; a thinking block first gets its signature. */
static int
close_block(struct skiff_anth_blocks *b)
{
    if (b->open == SKIFF_ANTH_BLOCK_NONE)
        return 0;
    int rc = 0;
    if (b->open == SKIFF_ANTH_BLOCK_THINKING && b->held_sig) {
        rc = emit_delta(
            b, json_pack("{s:s,s:s}", "type", "signature_delta", "signature", b->held_sig));
        free(b->held_sig);
        b->held_sig = NULL;
    }
    if (!rc)
        rc = b->ops->close(b->ctx, b->index);
    b->open = SKIFF_ANTH_BLOCK_NONE;
    b->index++;
    return rc;
}

static int
open_block(struct skiff_anth_blocks *b, enum skiff_anth_block_kind kind, json_t *block)
{
    if (!block)
        return SKIFF_ENOMEM;
    int rc = close_block(b);
    if (!rc)
        rc = b->ops->open(b->ctx, b->index, block);
    json_decref(block);
    if (!rc)
        b->open = kind;
    return rc;
}

static int
open_thinking(struct skiff_anth_blocks *b)
{
    return open_block(
        b, SKIFF_ANTH_BLOCK_THINKING,
        json_pack("{s:s,s:s,s:s}", "type", "thinking", "thinking", "", "signature", ""));
}

/* A signature for the thinking block of this step: the open unsigned one, or a new one. */
static int
hold_signature(struct skiff_anth_blocks *b, const char *sig)
{
    int rc = 0;
    if (b->open != SKIFF_ANTH_BLOCK_THINKING || b->held_sig)
        rc = open_thinking(b);
    if (rc)
        return rc;
    b->held_sig = strdup(sig);
    return b->held_sig ? 0 : SKIFF_ENOMEM;
}

static int
thought(struct skiff_anth_blocks *b, const char *text, const char *sig)
{
    if (!b->reply->thinking)
        return 0;
    int rc = 0;
    if (b->open != SKIFF_ANTH_BLOCK_THINKING || b->held_sig)
        rc = open_thinking(b);
    if (!rc && text && *text)
        rc = emit_delta(b, json_pack("{s:s,s:s}", "type", "thinking_delta", "thinking", text));
    if (!rc && sig) {
        b->held_sig = strdup(sig);
        rc = b->held_sig ? 0 : SKIFF_ENOMEM;
    }
    return rc;
}

static int
call(struct skiff_anth_blocks *b, const json_t *fc, const char *sig)
{
    const char *name = json_string_value(json_object_get(fc, "name"));
    if (!name || (b->reply->single_tool_call && b->n_calls > 0))
        return 0;
    char id[160];
    snprintf(id, sizeof id, "toolu_%s_%zu", b->reply->id_seed ? b->reply->id_seed : "0",
             b->n_calls + 1);
    if (sig && b->reply->store)
        b->reply->store(b->reply->ud, id, sig);
    const json_t *args = json_object_get(fc, "args");
    char *input = json_is_object(args) ? json_dumps(args, JSON_COMPACT) : strdup("{}");
    if (!input)
        return SKIFF_ENOMEM;
    b->n_calls++;
    int rc = open_block(
        b, SKIFF_ANTH_BLOCK_TOOL,
        json_pack("{s:s,s:s,s:s,s:{}}", "type", "tool_use", "id", id, "name", name, "input"));
    if (!rc)
        rc = emit_delta(b,
                        json_pack("{s:s,s:s}", "type", "input_json_delta", "partial_json", input));
    free(input);
    if (!rc)
        rc = close_block(b);
    return rc;
}

/* Notes the stop sequences that occur in the visible text, across part boundaries: each
 * is looked for in the kept tail followed by the new text. Sequences longer than the tail
 * can hold are looked for within one part only. */
static void
see_stops(struct skiff_anth_blocks *b, const char *s, size_t n)
{
    const json_t *stops = b->reply->stop_sequences;
    if (!json_array_size(stops))
        return;
    size_t head = n < sizeof b->tail ? n : sizeof b->tail;
    char joint[2 * sizeof b->tail];
    memcpy(joint, b->tail, b->tail_len);
    memcpy(joint + b->tail_len, s, head);
    size_t jl = b->tail_len + head;
    for (size_t i = 0; i < json_array_size(stops) && i < 8 * sizeof b->stops_seen; i++) {
        const char *stop = json_string_value(json_array_get(stops, i));
        size_t sl = stop ? strlen(stop) : 0;
        if (!sl)
            continue;
        if (memmem(s, n, stop, sl) || memmem(joint, jl, stop, sl))
            b->stops_seen |= 1u << i;
    }
    /* Keep the last bytes for the next part. */
    if (n >= sizeof b->tail) {
        memcpy(b->tail, s + n - sizeof b->tail, sizeof b->tail);
        b->tail_len = sizeof b->tail;
    } else {
        size_t keep = sizeof b->tail - n;
        if (keep > b->tail_len)
            keep = b->tail_len;
        memmove(b->tail, b->tail + b->tail_len - keep, keep);
        memcpy(b->tail + keep, s, n);
        b->tail_len = keep + n;
    }
}

static int
text(struct skiff_anth_blocks *b, const char *s)
{
    if (!*s)
        return 0;
    int rc = 0;
    if (b->open != SKIFF_ANTH_BLOCK_TEXT)
        rc = open_block(b, SKIFF_ANTH_BLOCK_TEXT,
                        json_pack("{s:s,s:s}", "type", "text", "text", ""));
    if (!rc)
        rc = emit_delta(b, json_pack("{s:s,s:s}", "type", "text_delta", "text", s));
    if (!rc) {
        b->text_bytes += strlen(s);
        see_stops(b, s, strlen(s));
    }
    return rc;
}

int
skiff_anth_blocks_parts(struct skiff_anth_blocks *b, const json_t *parts)
{
    size_t i;
    const json_t *p;
    json_array_foreach(parts, i, p)
    {
        const char *sig = json_string_value(json_object_get(p, "thoughtSignature"));
        if (sig && !*sig)
            sig = NULL;
        const char *s = json_string_value(json_object_get(p, "text"));
        const json_t *fc = json_object_get(p, "functionCall");
        int rc = 0;
        if (json_is_true(json_object_get(p, "thought"))) {
            rc = thought(b, s, sig);
        } else {
            /* A signed visible part ends the step's thinking block, which takes the
             * signature; an unsigned one just ends it. */
            if (sig && b->reply->thinking)
                rc = hold_signature(b, sig);
            if (!rc && b->open == SKIFF_ANTH_BLOCK_THINKING && (sig || fc || (s && *s)))
                rc = close_block(b);
            if (!rc && fc)
                rc = call(b, fc, sig);
            else if (!rc && s)
                rc = text(b, s);
        }
        if (rc)
            return rc;
    }
    return 0;
}

int
skiff_anth_blocks_finish(struct skiff_anth_blocks *b)
{
    return close_block(b);
}
