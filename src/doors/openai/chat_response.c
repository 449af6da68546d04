#include "doors/openai/chat_response.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "base/hash.h"

void
skiff_oai_call_id(char out[SKIFF_OAI_CALL_ID_LEN + 1])
{
    static const char alnum[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    unsigned char r[SKIFF_OAI_CALL_ID_LEN - 5];
    if (getrandom(r, sizeof r, 0) != (ssize_t)sizeof r) {
        /* getrandom does not fail for 24 bytes once the pool is seeded; an id must still be
         * unique, so fall back to a hash of a counter and the address space. */
        static unsigned long n;
        uint64_t h = skiff_fnv1a64(SKIFF_FNV64_BASIS, &n, sizeof n);
        n++;
        for (size_t i = 0; i < sizeof r; i++, h = h * 6364136223846793005u + 1)
            r[i] = (unsigned char)(h >> 33);
    }
    memcpy(out, "call_", 5);
    for (size_t i = 0; i < sizeof r; i++)
        out[5 + i] = alnum[r[i] % (sizeof alnum - 1)];
    out[SKIFF_OAI_CALL_ID_LEN] = '\0';
}

const char *
skiff_oai_finish_reason(const char *g, int called)
{
    static const char *const filtered[] = {"SAFETY",
                                           "RECITATION",
                                           "BLOCKLIST",
                                           "PROHIBITED_CONTENT",
                                           "SPII",
                                           "IMAGE_SAFETY",
                                           "IMAGE_PROHIBITED_CONTENT",
                                           "IMAGE_RECITATION"};
    if (!g)
        return NULL;
    if (strcmp(g, "MAX_TOKENS") == 0)
        return "length";
    for (size_t i = 0; i < sizeof filtered / sizeof filtered[0]; i++)
        if (strcmp(g, filtered[i]) == 0)
            return "content_filter";
    return called ? "tool_calls" : "stop";
}

static json_int_t
count(const json_t *um, const char *k)
{
    return json_integer_value(json_object_get(um, k));
}

json_t *
skiff_oai_usage(const json_t *um)
{
    if (!json_is_object(um))
        return NULL;
    json_int_t prompt = count(um, "promptTokenCount") + count(um, "toolUsePromptTokenCount");
    json_int_t completion = count(um, "candidatesTokenCount") + count(um, "thoughtsTokenCount");
    json_int_t total = count(um, "totalTokenCount");
    if (total < prompt + completion)
        total = prompt + completion;
    return json_pack("{s:I, s:I, s:I, s:{s:I}, s:{s:I}}", "prompt_tokens", prompt,
                     "completion_tokens", completion, "total_tokens", total,
                     "prompt_tokens_details", "cached_tokens", count(um, "cachedContentTokenCount"),
                     "completion_tokens_details", "reasoning_tokens",
                     count(um, "thoughtsTokenCount"));
}

char *
skiff_oai_block_refusal(const json_t *resp)
{
    const char *r =
        json_string_value(json_object_get(json_object_get(resp, "promptFeedback"), "blockReason"));
    if (!r)
        return NULL;
    size_t n = strlen(r) + 64;
    char *s = malloc(n);
    if (s)
        snprintf(s, n, "The prompt was blocked by the Gemini API (%s).", r);
    return s;
}

/* Appends s to the malloc'd *acc (NULL: empty). 0 or -1 (OOM). */
static int
append(char **acc, size_t *len, const char *s)
{
    size_t l = strlen(s);
    char *p = realloc(*acc, *len + l + 1);
    if (!p)
        return -1;
    memcpy(p + *len, s, l + 1);
    *acc = p;
    *len += l;
    return 0;
}

json_t *
skiff_oai_tool_call(const json_t *part, const struct skiff_oai_answer_opts *o, int with_index,
                    size_t index)
{
    const json_t *fc = json_object_get(part, "functionCall");
    const char *name = json_string_value(json_object_get(fc, "name"));
    const json_t *args = json_object_get(fc, "args");
    char id[SKIFF_OAI_CALL_ID_LEN + 1];
    skiff_oai_call_id(id);
    char *a = json_is_object(args) ? json_dumps(args, JSON_COMPACT) : strdup("{}");
    json_t *call = a ? json_pack("{s:s, s:s, s:{s:s, s:s}}", "id", id, "type", "function",
                                 "function", "name", name ? name : "", "arguments", a)
                     : NULL;
    free(a);
    if (!call)
        return NULL;
    if (with_index && json_object_set_new(call, "index", json_integer((json_int_t)index))) {
        json_decref(call);
        return NULL;
    }
    const char *sig = json_string_value(json_object_get(part, "thoughtSignature"));
    if (sig && sig[0]) {
        if (json_object_set_new(call, "extra_content",
                                json_pack("{s:{s:s}}", "google", "thought_signature", sig))) {
            json_decref(call);
            return NULL;
        }
        if (o->store)
            o->store(o->ud, id, sig);
    }
    return call;
}

/* {token, logprob, bytes} for a Gemini {token, logProbability}. New reference. */
static json_t *
token_logprob(const json_t *c)
{
    const char *tok = json_string_value(json_object_get(c, "token"));
    if (!tok)
        tok = "";
    json_t *bytes = json_array();
    for (const unsigned char *p = (const unsigned char *)tok; bytes && *p; p++)
        if (json_array_append_new(bytes, json_integer(*p))) {
            json_decref(bytes);
            bytes = NULL;
        }
    return json_pack("{s:s, s:f, s:o}", "token", tok, "logprob",
                     json_number_value(json_object_get(c, "logProbability")), "bytes", bytes);
}

json_t *
skiff_oai_logprobs(const json_t *cand)
{
    const json_t *lr = json_object_get(cand, "logprobsResult");
    const json_t *chosen = json_object_get(lr, "chosenCandidates");
    if (!json_is_array(chosen))
        return json_null();
    const json_t *top = json_object_get(lr, "topCandidates");
    json_t *content = json_array();
    json_t *out = json_pack("{s:o, s:n}", "content", content, "refusal");
    size_t i, k;
    const json_t *c, *t;
    if (!out)
        return NULL;
    json_array_foreach(chosen, i, c)
    {
        json_t *e = token_logprob(c);
        json_t *tops = json_array();
        if (!e || !tops || json_object_set_new(e, "top_logprobs", tops) ||
            json_array_append_new(content, e)) {
            json_decref(e);
            json_decref(out);
            return NULL;
        }
        json_array_foreach(json_object_get(json_array_get(top, i), "candidates"), k, t)
        {
            if (json_array_append_new(tops, token_logprob(t))) {
                json_decref(out);
                return NULL;
            }
        }
    }
    return out;
}

static json_t *
choice(const json_t *cand, size_t pos, const struct skiff_oai_answer_opts *o)
{
    const json_t *parts = json_object_get(json_object_get(cand, "content"), "parts");
    char *text = NULL, *thought = NULL;
    size_t tl = 0, thl = 0;
    json_t *calls = json_array(), *msg = NULL, *ch = NULL;
    if (!calls)
        return NULL;
    size_t i;
    const json_t *p;
    json_array_foreach(parts, i, p)
    {
        const char *t = json_string_value(json_object_get(p, "text"));
        if (json_object_get(p, "functionCall")) {
            if (!o->parallel_calls && json_array_size(calls) > 0)
                continue;
            if (json_array_append_new(calls, skiff_oai_tool_call(p, o, 0, 0)))
                goto out;
        } else if (t && json_is_true(json_object_get(p, "thought"))) {
            if (o->include_thoughts && append(&thought, &thl, t))
                goto out;
        } else if (t && append(&text, &tl, t)) {
            goto out;
        }
    }
    msg = json_pack("{s:s, s:o}", "role", "assistant", "content",
                    text ? json_string(text) : json_null());
    if (!msg)
        goto out;
    if (thought && json_object_set_new(msg, "reasoning_content", json_string(thought)))
        goto out;
    if (json_array_size(calls) && json_object_set(msg, "tool_calls", calls))
        goto out;
    const json_t *idx = json_object_get(cand, "index");
    const char *fr = skiff_oai_finish_reason(
        json_string_value(json_object_get(cand, "finishReason")), json_array_size(calls) > 0);
    ch = json_pack("{s:I, s:O, s:o, s:s}", "index",
                   json_is_integer(idx) ? json_integer_value(idx) : (json_int_t)pos, "message", msg,
                   "logprobs", skiff_oai_logprobs(cand), "finish_reason",
                   fr ? fr : (json_array_size(calls) ? "tool_calls" : "stop"));
out:
    json_decref(msg);
    json_decref(calls);
    free(text);
    free(thought);
    return ch;
}

static json_t *
blocked_choice(const char *refusal)
{
    return json_pack("{s:i, s:{s:s, s:n, s:s}, s:n, s:s}", "index", 0, "message", "role",
                     "assistant", "content", "refusal", refusal, "logprobs", "finish_reason",
                     "content_filter");
}

/* "chatcmpl-" + the response's id, or random letters. */
static void
completion_id(const json_t *resp, char *out, size_t len)
{
    const char *rid = json_string_value(json_object_get(resp, "responseId"));
    if (rid && rid[0]) {
        snprintf(out, len, "chatcmpl-%s", rid);
        return;
    }
    char id[SKIFF_OAI_CALL_ID_LEN + 1];
    skiff_oai_call_id(id);
    snprintf(out, len, "chatcmpl-%s", id + 5);
}

json_t *
skiff_oai_chat_response(const json_t *resp, const struct skiff_oai_answer_opts *o)
{
    char id[160];
    completion_id(resp, id, sizeof id);
    json_t *choices = json_array();
    json_t *out =
        json_pack("{s:s, s:s, s:I, s:s, s:o}", "id", id, "object", "chat.completion", "created",
                  (json_int_t)o->created, "model", o->model ? o->model : "", "choices", choices);
    if (!out)
        return NULL;
    const json_t *cands = json_object_get(resp, "candidates");
    size_t i;
    const json_t *cand;
    json_array_foreach(cands, i, cand)
    {
        if (json_array_append_new(choices, choice(cand, i, o)))
            goto fail;
    }
    if (json_array_size(choices) == 0) {
        char *refusal = skiff_oai_block_refusal(resp);
        json_t *ch =
            refusal ? blocked_choice(refusal)
                    : json_pack("{s:i, s:{s:s, s:s}, s:n, s:s}", "index", 0, "message", "role",
                                "assistant", "content", "", "logprobs", "finish_reason", "stop");
        free(refusal);
        if (json_array_append_new(choices, ch))
            goto fail;
    }
    json_t *usage = skiff_oai_usage(json_object_get(resp, "usageMetadata"));
    if (usage && json_object_set_new(out, "usage", usage))
        goto fail;
    return out;
fail:
    json_decref(out);
    return NULL;
}
