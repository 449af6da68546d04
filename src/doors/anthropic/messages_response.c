#include "doors/anthropic/messages_response.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"

static const char *const refusals[] = {
    "SAFETY",
    "RECITATION",
    "BLOCKLIST",
    "PROHIBITED_CONTENT",
    "SPII",
    "IMAGE_SAFETY",
    "IMAGE_PROHIBITED_CONTENT",
    "IMAGE_RECITATION",
    NULL,
};

const char *
skiff_anth_stop_reason(const char *finish, const char *block_reason, size_t n_calls,
                       const json_t *stop_sequences, unsigned stops_seen, const char **matched)
{
    *matched = NULL;
    if (block_reason && *block_reason)
        return "refusal";
    if (finish) {
        for (size_t i = 0; refusals[i]; i++)
            if (strcmp(finish, refusals[i]) == 0)
                return "refusal";
        if (strcmp(finish, "MAX_TOKENS") == 0)
            return "max_tokens";
    }
    if (n_calls)
        return "tool_use";
    if (finish && strcmp(finish, "STOP") == 0) {
        size_t left = 0;
        const char *last = NULL;
        for (size_t i = 0; i < json_array_size(stop_sequences) && i < 32; i++) {
            if (stops_seen & (1u << i))
                continue;
            left++;
            last = json_string_value(json_array_get(stop_sequences, i));
        }
        if (left) {
            *matched = left == 1 ? last : NULL;
            return "stop_sequence";
        }
    }
    return "end_turn";
}

static json_int_t
count(const json_t *u, const char *key)
{
    const json_t *v = json_object_get(u, key);
    return json_is_integer(v) && json_integer_value(v) > 0 ? json_integer_value(v) : 0;
}

json_t *
skiff_anth_usage(const json_t *u)
{
    json_int_t prompt = count(u, "promptTokenCount");
    json_int_t cached = count(u, "cachedContentTokenCount");
    json_int_t input =
        (prompt > cached ? prompt - cached : 0) + count(u, "toolUsePromptTokenCount");
    return json_pack("{s:I,s:I,s:I,s:I}", "input_tokens", input, "cache_creation_input_tokens",
                     (json_int_t)0, "cache_read_input_tokens", cached, "output_tokens",
                     count(u, "candidatesTokenCount") + count(u, "thoughtsTokenCount"));
}

/* The whole-message sink of the block walker: builds the content array. */
static int
collect_open(void *ctx, size_t index, const json_t *block)
{
    json_t *content = ctx;
    (void)index;
    return json_array_append_new(content, json_deep_copy(block)) ? SKIFF_ENOMEM : 0;
}

static int
append_str(json_t *obj, const char *key, const char *more)
{
    const char *old = json_string_value(json_object_get(obj, key));
    size_t ol = old ? strlen(old) : 0, ml = strlen(more);
    char *s = malloc(ol + ml + 1);
    if (!s)
        return SKIFF_ENOMEM;
    memcpy(s, old ? old : "", ol);
    memcpy(s + ol, more, ml + 1);
    int rc = json_object_set_new(obj, key, json_stringn(s, ol + ml)) ? SKIFF_ENOMEM : 0;
    free(s);
    return rc;
}

static int
collect_delta(void *ctx, size_t index, const json_t *delta)
{
    json_t *block = json_array_get(ctx, index);
    const char *type = json_string_value(json_object_get(delta, "type"));
    if (!block || !type)
        return SKIFF_EINVAL;
    if (strcmp(type, "text_delta") == 0)
        return append_str(block, "text", json_string_value(json_object_get(delta, "text")));
    if (strcmp(type, "thinking_delta") == 0)
        return append_str(block, "thinking", json_string_value(json_object_get(delta, "thinking")));
    if (strcmp(type, "signature_delta") == 0)
        return json_object_set(block, "signature", json_object_get(delta, "signature"))
                   ? SKIFF_ENOMEM
                   : 0;
    if (strcmp(type, "input_json_delta") == 0) {
        const char *s = json_string_value(json_object_get(delta, "partial_json"));
        json_t *input = s ? json_loads(s, 0, NULL) : NULL;
        return input && json_object_set_new(block, "input", input) == 0 ? 0 : SKIFF_ENOMEM;
    }
    return SKIFF_EINVAL;
}

static int
collect_close(void *ctx, size_t index)
{
    (void)ctx;
    (void)index;
    return 0;
}

static const struct skiff_anth_block_ops collect_ops = {collect_open, collect_delta, collect_close};

char *
skiff_anth_response(const char *body, size_t len, const struct skiff_anth_reply *reply,
                    struct skiff_anth_error *err)
{
    json_t *resp = json_loadb(body, len, 0, NULL);
    json_t *content = json_array();
    json_t *msg = NULL;
    char *out = NULL;
    struct skiff_anth_blocks b;
    skiff_anth_blocks_init(&b, reply, &collect_ops, content);
    if (!json_is_object(resp) || !content) {
        skiff_anth_fail(err, 500, "the upstream's answer is not a GenerateContentResponse");
        goto out;
    }
    const json_t *cand = json_array_get(json_object_get(resp, "candidates"), 0);
    const char *finish = json_string_value(json_object_get(cand, "finishReason"));
    const char *blocked =
        json_string_value(json_object_get(json_object_get(resp, "promptFeedback"), "blockReason"));
    int rc =
        skiff_anth_blocks_parts(&b, json_object_get(json_object_get(cand, "content"), "parts"));
    if (!rc)
        rc = skiff_anth_blocks_finish(&b);
    if (rc) {
        skiff_anth_fail(err, 500, "skiff could not translate the upstream's answer");
        goto out;
    }
    const char *matched;
    const char *stop = skiff_anth_stop_reason(finish, blocked, b.n_calls, reply->stop_sequences,
                                              b.stops_seen, &matched);
    char id[160];
    snprintf(id, sizeof id, "msg_%s", reply->id_seed ? reply->id_seed : "0");
    msg = json_pack("{s:s,s:s,s:s,s:s,s:O,s:s,s:o,s:o}", "id", id, "type", "message", "role",
                    "assistant", "model", reply->model ? reply->model : "", "content", content,
                    "stop_reason", stop, "stop_sequence",
                    matched ? json_string(matched) : json_null(), "usage",
                    skiff_anth_usage(json_object_get(resp, "usageMetadata")));
    out = msg ? json_dumps(msg, JSON_COMPACT) : NULL;
    if (!out)
        skiff_anth_fail(err, 500, "skiff ran out of memory translating the answer");
out:
    skiff_anth_blocks_release(&b);
    json_decref(msg);
    json_decref(content);
    json_decref(resp);
    return out;
}
