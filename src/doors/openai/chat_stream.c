#include "doors/openai/chat_stream.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"

#define MAX_CHOICES 8 /* Gemini's candidateCount bound */

struct choice {
    int seen;        /* a chunk of this choice was written (its role went out) */
    int called;      /* it called a tool */
    int calls;       /* calls answered (parallel_calls 0 keeps the first only) */
    char reason[40]; /* the first finishReason Gemini sent, "" until then */
    int blocked;     /* a blocked prompt: content_filter */
};

struct skiff_oai_stream {
    struct skiff_oai_answer_opts o;
    char *model;
    int include_usage;
    int started;
    int over;
    size_t next_index; /* the running tool-call index across the stream */
    char id[160];
    json_t *usage; /* the latest usageMetadata; owned */
    json_t *lp;    /* the current event's logprobs, for its first content delta; owned */
    struct choice ch[MAX_CHOICES];
};

struct skiff_oai_stream *
skiff_oai_stream_new(const struct skiff_oai_answer_opts *o, int include_usage)
{
    struct skiff_oai_stream *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->o = *o;
    s->model = strdup(o->model ? o->model : "");
    if (!s->model) {
        free(s);
        return NULL;
    }
    s->o.model = s->model;
    s->include_usage = include_usage;
    return s;
}

void
skiff_oai_stream_free(struct skiff_oai_stream *s)
{
    if (!s)
        return;
    json_decref(s->usage);
    json_decref(s->lp);
    free(s->model);
    free(s);
}

int
skiff_oai_stream_started(const struct skiff_oai_stream *s)
{
    return s->started;
}

/* "data: " + compact json + "\n\n"; takes the reference. */
static int
emit(struct skiff_oai_stream *s, json_t *j, struct skiff_buf *out)
{
    if (!j)
        return SKIFF_ENOMEM;
    char *txt = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    if (!txt)
        return SKIFF_ENOMEM;
    int rc = skiff_buf_adds(out, "data: ");
    if (!rc)
        rc = skiff_buf_adds(out, txt);
    if (!rc)
        rc = skiff_buf_adds(out, "\n\n");
    free(txt);
    if (!rc)
        s->started = 1;
    return rc;
}

static json_t *
envelope(struct skiff_oai_stream *s, json_t *choices)
{
    return json_pack("{s:s, s:s, s:I, s:s, s:o}", "id", s->id, "object", "chat.completion.chunk",
                     "created", (json_int_t)s->o.created, "model", s->model, "choices", choices);
}

/* One chunk for choice i whose delta is delta (stolen); the role goes on its first. */
static int
delta(struct skiff_oai_stream *s, size_t i, json_t *d, struct skiff_buf *out)
{
    if (!d)
        return SKIFF_ENOMEM;
    if (!s->ch[i].seen && json_object_set_new(d, "role", json_string("assistant"))) {
        json_decref(d);
        return SKIFF_ENOMEM;
    }
    s->ch[i].seen = 1;
    /* The event's logprobs cover its text: they ride on its first content delta. */
    json_t *lp = json_null();
    if (s->lp && json_object_get(d, "content")) {
        lp = s->lp;
        s->lp = NULL;
    }
    json_t *c = json_pack("[{s:I, s:o, s:o, s:n}]", "index", (json_int_t)i, "delta", d, "logprobs",
                          lp, "finish_reason");
    return c ? emit(s, envelope(s, c), out) : SKIFF_ENOMEM;
}

static int
error_chunk(struct skiff_oai_stream *s, const struct skiff_oai_error *e, struct skiff_buf *out)
{
    s->over = 1;
    return emit(s, skiff_oai_error_json(e), out);
}

static int
part(struct skiff_oai_stream *s, size_t i, const json_t *p, struct skiff_buf *out)
{
    const char *t = json_string_value(json_object_get(p, "text"));
    if (json_object_get(p, "functionCall")) {
        s->ch[i].called = 1;
        if (!s->o.parallel_calls && s->ch[i].calls > 0)
            return 0;
        s->ch[i].calls++;
        json_t *call = skiff_oai_tool_call(p, &s->o, 1, s->next_index++);
        return call ? delta(s, i, json_pack("{s:[o]}", "tool_calls", call), out) : SKIFF_ENOMEM;
    }
    if (!t || !t[0])
        return 0;
    if (json_is_true(json_object_get(p, "thought")))
        return s->o.include_thoughts ? delta(s, i, json_pack("{s:s}", "reasoning_content", t), out)
                                     : 0;
    return delta(s, i, json_pack("{s:s}", "content", t), out);
}

static int
candidate(struct skiff_oai_stream *s, const json_t *cand, size_t pos, struct skiff_buf *out)
{
    const json_t *idx = json_object_get(cand, "index");
    json_int_t i = json_is_integer(idx) ? json_integer_value(idx) : (json_int_t)pos;
    if (i < 0 || i >= MAX_CHOICES)
        return 0;
    size_t k;
    const json_t *p;
    json_decref(s->lp);
    s->lp = json_object_get(cand, "logprobsResult") ? skiff_oai_logprobs(cand) : NULL;
    json_array_foreach(json_object_get(json_object_get(cand, "content"), "parts"), k, p)
    {
        int rc = part(s, (size_t)i, p, out);
        if (rc)
            return rc;
    }
    json_decref(s->lp);
    s->lp = NULL;
    const char *fr = json_string_value(json_object_get(cand, "finishReason"));
    if (fr && !s->ch[i].reason[0])
        snprintf(s->ch[i].reason, sizeof s->ch[i].reason, "%s", fr);
    return 0;
}

int
skiff_oai_stream_feed(struct skiff_oai_stream *s, const char *json, size_t len,
                      struct skiff_buf *out)
{
    if (s->over)
        return SKIFF_EINVAL;
    struct skiff_oai_error e;
    json_t *ev = json_loadb(json, len, 0, NULL);
    int rc = 0;
    if (!json_is_object(ev) && !json_is_array(ev)) {
        skiff_oai_error_set(&e, 502, NULL, "bad_upstream_event",
                            "The Gemini API sent a stream event that is not JSON; the answer is "
                            "incomplete.");
        rc = error_chunk(s, &e, out);
        rc = rc ? rc : SKIFF_EINVAL;
        goto out;
    }
    if (json_is_array(ev) || json_object_get(ev, "error")) {
        skiff_oai_error_from_google_json(0, ev, &e);
        rc = error_chunk(s, &e, out);
        rc = rc ? rc : SKIFF_EINVAL;
        goto out;
    }
    if (!s->id[0]) {
        const char *rid = json_string_value(json_object_get(ev, "responseId"));
        if (rid && rid[0])
            snprintf(s->id, sizeof s->id, "chatcmpl-%s", rid);
        else {
            char cid[SKIFF_OAI_CALL_ID_LEN + 1];
            skiff_oai_call_id(cid);
            snprintf(s->id, sizeof s->id, "chatcmpl-%s", cid + 5);
        }
    }
    const json_t *um = json_object_get(ev, "usageMetadata");
    if (json_is_object(um)) {
        json_decref(s->usage);
        s->usage = json_incref((json_t *)um);
    }
    const json_t *cands = json_object_get(ev, "candidates");
    if (json_array_size(cands) == 0) {
        char *refusal = skiff_oai_block_refusal(ev);
        if (refusal && !s->ch[0].blocked) {
            s->ch[0].blocked = 1;
            rc = delta(s, 0, json_pack("{s:n, s:s}", "content", "refusal", refusal), out);
        }
        free(refusal);
        goto out;
    }
    size_t i;
    const json_t *cand;
    json_array_foreach(cands, i, cand)
    {
        if ((rc = candidate(s, cand, i, out)))
            goto out;
    }
out:
    json_decref(ev);
    return rc;
}

int
skiff_oai_stream_end(struct skiff_oai_stream *s, struct skiff_buf *out)
{
    if (s->over)
        return SKIFF_EINVAL;
    int finished = 0;
    for (size_t i = 0; i < MAX_CHOICES; i++)
        finished |= s->ch[i].reason[0] || s->ch[i].blocked;
    if (!finished) {
        struct skiff_oai_error e;
        skiff_oai_error_set(&e, 502, NULL, "incomplete_stream",
                            "The Gemini API's stream ended before its last event; the answer is "
                            "incomplete.");
        int rc = error_chunk(s, &e, out);
        return rc ? rc : SKIFF_EINVAL;
    }
    json_t *choices = json_array();
    if (!choices)
        return SKIFF_ENOMEM;
    for (size_t i = 0; i < MAX_CHOICES; i++) {
        struct choice *c = &s->ch[i];
        if (!c->seen && !c->reason[0] && !c->blocked)
            continue;
        const char *fr =
            c->blocked ? "content_filter"
                       : skiff_oai_finish_reason(c->reason[0] ? c->reason : "STOP", c->called);
        json_t *d = c->seen ? json_object() : json_pack("{s:s}", "role", "assistant");
        c->seen = 1;
        if (json_array_append_new(choices,
                                  json_pack("{s:I, s:o, s:n, s:s}", "index", (json_int_t)i, "delta",
                                            d, "logprobs", "finish_reason", fr))) {
            json_decref(choices);
            return SKIFF_ENOMEM;
        }
    }
    s->over = 1;
    int rc = emit(s, envelope(s, choices), out);
    if (!rc && s->include_usage) {
        json_t *u = skiff_oai_usage(s->usage);
        if (!u)
            u = json_pack("{s:i, s:i, s:i}", "prompt_tokens", 0, "completion_tokens", 0,
                          "total_tokens", 0);
        json_t *env = envelope(s, json_array());
        if (!env || json_object_set_new(env, "usage", u)) {
            if (!env)
                json_decref(u);
            json_decref(env);
            rc = SKIFF_ENOMEM;
        } else {
            rc = emit(s, env, out);
        }
    }
    if (!rc)
        rc = skiff_buf_adds(out, "data: [DONE]\n\n");
    return rc;
}

int
skiff_oai_stream_fail(struct skiff_oai_stream *s, const struct skiff_oai_error *e,
                      struct skiff_buf *out)
{
    if (s->over)
        return 0;
    return error_chunk(s, e, out);
}
