#include "doors/anthropic/messages_stream.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "doors/anthropic/messages_response.h"
#include "base/err.h"

/* Writes `event: <type>\ndata: <obj>\n\n`, obj a new reference (stolen). */
static int
sse(struct skiff_buf *out, const char *type, json_t *obj)
{
    if (!obj)
        return SKIFF_ENOMEM;
    char *data = json_dumps(obj, JSON_COMPACT);
    json_decref(obj);
    if (!data)
        return SKIFF_ENOMEM;
    int rc = skiff_buf_adds(out, "event: ");
    if (!rc)
        rc = skiff_buf_adds(out, type);
    if (!rc)
        rc = skiff_buf_adds(out, "\ndata: ");
    if (!rc)
        rc = skiff_buf_adds(out, data);
    if (!rc)
        rc = skiff_buf_adds(out, "\n\n");
    free(data);
    return rc;
}

static int
block_open(void *ctx, size_t index, const json_t *block)
{
    struct skiff_anth_stream *s = ctx;
    return sse(s->out, "content_block_start",
               json_pack("{s:s,s:I,s:O}", "type", "content_block_start", "index", (json_int_t)index,
                         "content_block", block));
}

static int
block_delta(void *ctx, size_t index, const json_t *delta)
{
    struct skiff_anth_stream *s = ctx;
    return sse(s->out, "content_block_delta",
               json_pack("{s:s,s:I,s:O}", "type", "content_block_delta", "index", (json_int_t)index,
                         "delta", delta));
}

static int
block_close(void *ctx, size_t index)
{
    struct skiff_anth_stream *s = ctx;
    return sse(s->out, "content_block_stop",
               json_pack("{s:s,s:I}", "type", "content_block_stop", "index", (json_int_t)index));
}

static const struct skiff_anth_block_ops stream_ops = {block_open, block_delta, block_close};

void
skiff_anth_stream_init(struct skiff_anth_stream *s, const struct skiff_anth_reply *reply)
{
    memset(s, 0, sizeof *s);
    s->reply = *reply;
    skiff_anth_blocks_init(&s->blocks, &s->reply, &stream_ops, s);
}

void
skiff_anth_stream_release(struct skiff_anth_stream *s)
{
    skiff_anth_blocks_release(&s->blocks);
    json_decref(s->usage);
    free(s->finish);
    free(s->blocked);
    s->usage = NULL;
    s->finish = s->blocked = NULL;
}

static int
message_start(struct skiff_anth_stream *s)
{
    char id[160];
    snprintf(id, sizeof id, "msg_%s", s->reply.id_seed ? s->reply.id_seed : "0");
    s->started = 1;
    return sse(s->out, "message_start",
               json_pack("{s:s,s:{s:s,s:s,s:s,s:s,s:[],s:n,s:n,s:o}}", "type", "message_start",
                         "message", "id", id, "type", "message", "role", "assistant", "model",
                         s->reply.model ? s->reply.model : "", "content", "stop_reason",
                         "stop_sequence", "usage", skiff_anth_usage(s->usage)));
}

int
skiff_anth_stream_fail(struct skiff_anth_stream *s, const struct skiff_anth_error *e,
                       struct skiff_buf *out)
{
    if (s->done)
        return 0;
    s->done = 1;
    return sse(out, "error",
               json_pack("{s:s,s:{s:s,s:s}}", "type", "error", "error", "type",
                         e->type ? e->type : "api_error", "message", e->message));
}

static int
keep_string(char **slot, const json_t *v)
{
    const char *s = json_string_value(v);
    if (!s)
        return 0;
    free(*slot);
    *slot = strdup(s);
    return *slot ? 0 : SKIFF_ENOMEM;
}

int
skiff_anth_stream_event(struct skiff_anth_stream *s, const char *json, size_t len,
                        struct skiff_buf *out)
{
    if (s->done)
        return 0;
    s->out = out;
    struct skiff_anth_error e;
    json_t *ev = json_loadb(json, len, 0, NULL);
    if (json_is_array(ev) && json_array_size(ev) == 1) { /* a JSON-array stream's element */
        json_t *el = json_incref(json_array_get(ev, 0));
        json_decref(ev);
        ev = el;
    }
    if (!json_is_object(ev)) {
        json_decref(ev);
        skiff_anth_fail(&e, 500, "the upstream sent an event that is not JSON");
        int rc = skiff_anth_stream_fail(s, &e, out);
        return rc ? rc : SKIFF_EINVAL;
    }
    int rc = 0;
    const json_t *gerr = json_object_get(ev, "error");
    if (gerr) {
        skiff_anth_error_from_google((int)json_integer_value(json_object_get(gerr, "code")),
                                     json_string_value(json_object_get(gerr, "status")),
                                     json_string_value(json_object_get(gerr, "message")), &e);
        rc = skiff_anth_stream_fail(s, &e, out);
        goto out;
    }
    const json_t *u = json_object_get(ev, "usageMetadata");
    if (json_is_object(u)) {
        json_decref(s->usage);
        s->usage = json_incref((json_t *)u);
    }
    if (!s->started && (rc = message_start(s)))
        goto out;
    const json_t *cand = json_array_get(json_object_get(ev, "candidates"), 0);
    if ((rc = keep_string(&s->finish, json_object_get(cand, "finishReason"))) ||
        (rc = keep_string(&s->blocked,
                          json_object_get(json_object_get(ev, "promptFeedback"), "blockReason"))))
        goto out;
    rc = skiff_anth_blocks_parts(&s->blocks,
                                 json_object_get(json_object_get(cand, "content"), "parts"));
out:
    json_decref(ev);
    return rc;
}

int
skiff_anth_stream_end(struct skiff_anth_stream *s, struct skiff_buf *out)
{
    if (s->done)
        return 0;
    s->out = out;
    struct skiff_anth_error e;
    if (!s->finish && !s->blocked) {
        skiff_anth_fail(&e, 500, "the upstream ended the stream before its answer was finished");
        return skiff_anth_stream_fail(s, &e, out);
    }
    int rc = 0;
    if (!s->started)
        rc = message_start(s);
    if (!rc)
        rc = skiff_anth_blocks_finish(&s->blocks);
    if (rc)
        return rc;
    const char *matched;
    const char *stop =
        skiff_anth_stop_reason(s->finish, s->blocked, s->blocks.n_calls, s->reply.stop_sequences,
                               s->blocks.stops_seen, &matched);
    rc = sse(out, "message_delta",
             json_pack("{s:s,s:{s:s,s:o},s:o}", "type", "message_delta", "delta", "stop_reason",
                       stop, "stop_sequence", matched ? json_string(matched) : json_null(), "usage",
                       skiff_anth_usage(s->usage)));
    if (!rc)
        rc = sse(out, "message_stop", json_pack("{s:s}", "type", "message_stop"));
    s->done = 1;
    return rc;
}

int
skiff_anth_stream_ping(struct skiff_anth_stream *s, struct skiff_buf *out)
{
    if (!s->started || s->done)
        return 0;
    return skiff_buf_adds(out, "event: ping\ndata: {\"type\": \"ping\"}\n\n");
}
