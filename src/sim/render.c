#include "sim/render.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/hash.h"
#include "sim/faults.h"
#include "sim/tools.h"

/* No reply the simulator renders comes near this; it bounds a runaway rendering. */
#define MAX_RENDER (64u * 1024 * 1024)
/* A stream chunk carries about this many bytes of text, cut at a space. */
#define CHUNK_BYTES 80
#define NONTEXT_PART_TOKENS 258

long
skiff_sim_text_tokens(size_t len)
{
    return len == 0 ? 0 : (long)((len + 3) / 4);
}

/* Adds the text parts of one Content to out; the last text seen becomes the snippet. */
static void
read_content(const json_t *content, struct skiff_sim_prompt *out, const char **last,
             size_t *last_len)
{
    const json_t *parts = json_object_get(content, "parts");
    size_t i;
    const json_t *part;
    json_array_foreach(parts, i, part)
    {
        const json_t *text = json_object_get(part, "text");
        if (json_is_string(text)) {
            size_t n = json_string_length(text);
            out->tokens += skiff_sim_text_tokens(n);
            out->hash = skiff_fnv1a64(out->hash, json_string_value(text), n);
            *last = json_string_value(text);
            *last_len = n;
        } else if (json_is_object(part)) {
            out->tokens += NONTEXT_PART_TOKENS;
        }
    }
}

void
skiff_sim_prompt_read(const json_t *contents, const json_t *system_instruction,
                      struct skiff_sim_prompt *out)
{
    const char *last = "";
    size_t last_len = 0;
    memset(out, 0, sizeof *out);
    out->hash = SKIFF_FNV64_BASIS;
    if (json_is_object(system_instruction))
        read_content(system_instruction, out, &last, &last_len);
    size_t i;
    const json_t *c;
    json_array_foreach(contents, i, c) read_content(c, out, &last, &last_len);

    /* The snippet keeps whole UTF-8 characters and folds control characters to spaces. */
    size_t n = last_len < sizeof out->snippet - 1 ? last_len : sizeof out->snippet - 1;
    while (n > 0 && n < last_len && ((unsigned char)last[n] & 0xc0) == 0x80)
        n--;
    for (size_t k = 0; k < n; k++)
        out->snippet[k] = (unsigned char)last[k] < 0x20 ? ' ' : last[k];
    out->snippet[n] = '\0';
}

static const char *const words[] = {
    "the",     "model",    "answer",   "simulated", "request", "quota",   "stream",   "token",
    "gemini",  "relay",    "response", "window",    "minute",  "daily",   "retry",    "budget",
    "careful", "quick",    "steady",   "overload",  "signal",  "reply",   "chunk",    "random",
    "seeded",  "faithful", "shape",    "field",     "detail",  "error",   "status",   "latency",
    "thought", "summary",  "content",  "part",      "text",    "every",   "simple",   "clear",
    "with",    "and",      "for",      "from",      "into",    "across",  "under",    "over",
    "keeps",   "sends",    "counts",   "returns",   "follows", "matches", "explains", "carries",
    "a",       "one",      "each",     "this",      "that",    "its",     "our",      "their",
};
#define NWORDS (sizeof words / sizeof words[0])

/* The answer text: an echo of the prompt's start, then sentences drawn from the hash. */
static int
compose(struct skiff_buf *b, const struct skiff_sim_prompt *p)
{
    uint64_t h = p->hash;
    int rc = skiff_buf_printf(b, "Simulated answer to \"%s\".", p->snippet);
    int nwords = 12 + (int)(skiff_sim_mix(h) % 60);
    int in_sentence = 0, len = 0;
    for (int w = 0; w < nwords && rc == 0; w++) {
        h = skiff_sim_mix(h);
        const char *word = words[h % NWORDS];
        if (!in_sentence) {
            char first[2] = {(char)(word[0] - 'a' + 'A'), '\0'};
            rc = skiff_buf_printf(b, " %s%s", first, word + 1);
            in_sentence = 1;
            len = 0;
        } else {
            rc = skiff_buf_printf(b, " %s", word);
        }
        /* Sentences of 5 to 16 words. */
        if (rc == 0 && ++len >= 5 && ((h >> 32) % 6 == 0 || len >= 16)) {
            rc = skiff_buf_adds(b, ".");
            in_sentence = 0;
        }
    }
    if (rc == 0 && in_sentence)
        rc = skiff_buf_adds(b, ".");
    return rc;
}

/* Cuts text into chunks of about CHUNK_BYTES, each ending before a space. */
static int
cut(struct skiff_sim_answer *a)
{
    /* Every chunk but the last holds at least CHUNK_BYTES, which bounds their number. */
    size_t max = a->len / CHUNK_BYTES + 2;
    a->cuts = calloc(max + 1, sizeof *a->cuts);
    if (!a->cuts)
        return SKIFF_ENOMEM;
    size_t n = 0, pos = 0;
    a->cuts[n++] = 0;
    while (pos < a->len) {
        size_t next = pos + CHUNK_BYTES;
        if (next >= a->len)
            next = a->len;
        else
            while (next < a->len && a->text[next] != ' ')
                next++;
        a->cuts[n++] = next;
        pos = next;
    }
    /* An empty answer is still one chunk, with empty text. */
    if (n == 1)
        a->cuts[n++] = 0;
    a->nchunks = n - 1;
    return 0;
}

int
skiff_sim_answer_make(struct skiff_sim_answer *a, const struct skiff_sim_answer_opts *o)
{
    memset(a, 0, sizeof *a);
    a->prompt_tokens = o->prompt->tokens;
    a->include_thoughts = o->include_thoughts && o->thinking_budget != 0;
    a->finish_reason = "STOP";
    snprintf(a->model_version, sizeof a->model_version, "%s", o->model_version);

    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    uint64_t r = o->id_seed;
    for (int i = 0; i < 23; i++) {
        r = skiff_sim_mix(r);
        a->response_id[i] = b64[r & 63];
    }
    a->response_id[23] = '\0';

    long budget_left = o->max_output_tokens;
    if (o->thinking_budget != 0) {
        long t = 64 + (long)(skiff_sim_mix(o->prompt->hash ^ 0x7468696e6bULL) % 448);
        if (o->thinking_budget > 0 && t > o->thinking_budget)
            t = o->thinking_budget;
        if (t > budget_left)
            t = budget_left;
        a->thoughts_tokens = t;
        budget_left -= t;
    }

    if (o->calls) {
        a->calls = json_incref(o->calls);
        a->sign_calls = o->sign_calls;
    }
    struct skiff_buf b;
    skiff_buf_init(&b, MAX_RENDER);
    int rc = o->calls  ? skiff_buf_adds(&b, "")
             : o->text ? skiff_buf_adds(&b, o->text)
                       : compose(&b, o->prompt);
    if (rc != 0) {
        skiff_buf_release(&b);
        return SKIFF_ENOMEM;
    }
    size_t len = b.len;
    size_t i;
    const json_t *stop;
    json_array_foreach(o->stops, i, stop)
    {
        const char *at =
            json_string_length(stop) && b.data
                ? memmem(b.data, len, json_string_value(stop), json_string_length(stop))
                : NULL;
        if (at)
            len = (size_t)(at - b.data);
    }
    if (skiff_sim_text_tokens(len) > budget_left) {
        /* Keep whole words that fit in the remaining output tokens. */
        size_t keep = budget_left > 0 ? (size_t)budget_left * 4 : 0;
        if (keep < len) {
            while (keep > 0 && b.data[keep] != ' ')
                keep--;
            len = keep;
        }
        a->finish_reason = "MAX_TOKENS";
    }
    a->text = skiff_buf_take(&b);
    if (!a->text) {
        a->text = strdup("");
        if (!a->text)
            return SKIFF_ENOMEM;
    }
    a->text[len] = '\0';
    a->len = len;
    if (a->calls) {
        a->cuts = calloc(2, sizeof *a->cuts);
        a->nchunks = 1;
    }
    if (a->calls ? !a->cuts : cut(a) != 0) {
        skiff_sim_answer_release(a);
        return SKIFF_ENOMEM;
    }
    return 0;
}

void
skiff_sim_answer_release(struct skiff_sim_answer *a)
{
    free(a->text);
    free(a->cuts);
    json_decref(a->calls);
    a->text = NULL;
    a->cuts = NULL;
    a->calls = NULL;
}

long
skiff_sim_answer_tokens(const struct skiff_sim_answer *a, size_t upto)
{
    if (a->calls) {
        char *s = json_dumps(a->calls, JSON_COMPACT);
        long t = s ? skiff_sim_text_tokens(strlen(s)) : 1;
        free(s);
        return t;
    }
    return skiff_sim_text_tokens(upto < a->len ? upto : a->len);
}

json_t *
skiff_sim_render_usage(long prompt, long candidates, long thoughts)
{
    /* Protobuf JSON omits zero counts; the order is that of live captures. */
    json_t *u = json_object();
    if (prompt)
        json_object_set_new(u, "promptTokenCount", json_integer(prompt));
    if (candidates)
        json_object_set_new(u, "candidatesTokenCount", json_integer(candidates));
    if (prompt + candidates + thoughts)
        json_object_set_new(u, "totalTokenCount", json_integer(prompt + candidates + thoughts));
    if (prompt)
        json_object_set_new(
            u, "promptTokensDetails",
            json_pack("[{s:s,s:I}]", "modality", "TEXT", "tokenCount", (json_int_t)prompt));
    if (thoughts)
        json_object_set_new(u, "thoughtsTokenCount", json_integer(thoughts));
    return u;
}

json_t *
skiff_sim_render_response(const struct skiff_sim_answer *a, size_t i)
{
    int whole = i == SIZE_MAX;
    size_t from = whole ? 0 : a->cuts[i];
    size_t to = whole ? a->len : a->cuts[i + 1];
    int last = whole || i + 1 == a->nchunks;

    json_t *parts = json_array();
    if (a->include_thoughts && (whole || i == 0))
        json_array_append_new(parts, json_pack("{s:s,s:b}", "text",
                                               "**Planning the reply**\n\nThe simulator works out "
                                               "a deterministic answer from the prompt.",
                                               "thought", 1));
    size_t k;
    json_t *call;
    json_array_foreach(a->calls, k, call)
    {
        json_t *part = json_pack("{s:O}", "functionCall", call);
        if (k == 0 && a->sign_calls) {
            char *sig = skiff_sim_signature(json_string_value(json_object_get(call, "name")));
            if (sig)
                json_object_set_new(part, "thoughtSignature", json_string(sig));
            free(sig);
        }
        json_array_append_new(parts, part);
    }
    if (!a->calls)
        json_array_append_new(parts, json_pack("{s:s%}", "text", a->text + from, to - from));

    json_t *cand = json_object();
    json_object_set_new(cand, "content", json_pack("{s:o,s:s}", "parts", parts, "role", "model"));
    if (last)
        json_object_set_new(cand, "finishReason", json_string(a->finish_reason));
    if (last && a->calls)
        json_object_set_new(cand, "finishMessage",
                            json_string("Model generated function call(s)."));
    json_object_set_new(cand, "index", json_integer(0));

    json_t *r = json_object();
    json_object_set_new(r, "candidates", json_pack("[o]", cand));
    json_object_set_new(r, "usageMetadata",
                        skiff_sim_render_usage(a->prompt_tokens, skiff_sim_answer_tokens(a, to),
                                               a->thoughts_tokens));
    json_object_set_new(r, "modelVersion", json_string(a->model_version));
    json_object_set_new(r, "responseId", json_string(a->response_id));
    return r;
}

/* ---- framing ---- */

static int
put_compact(struct skiff_buf *b, const json_t *j)
{
    int rc = 0;
    switch (json_typeof(j)) {
    case JSON_OBJECT: {
        const char *key;
        json_t *v;
        int first = 1;
        rc = skiff_buf_add(b, "{", 1);
        json_object_foreach((json_t *)j, key, v)
        {
            json_t *k = json_string(key);
            char *ks = k ? json_dumps(k, JSON_ENCODE_ANY) : NULL;
            json_decref(k);
            if (!ks)
                return SKIFF_ENOMEM;
            rc |= skiff_buf_printf(b, "%s%s: ", first ? "" : ",", ks);
            free(ks);
            rc |= put_compact(b, v);
            first = 0;
            if (rc)
                return rc;
        }
        return skiff_buf_add(b, "}", 1);
    }
    case JSON_ARRAY: {
        size_t i;
        json_t *v;
        rc = skiff_buf_add(b, "[", 1);
        json_array_foreach(j, i, v)
        {
            if (i > 0)
                rc |= skiff_buf_add(b, ",", 1);
            rc |= put_compact(b, v);
            if (rc)
                return rc;
        }
        return skiff_buf_add(b, "]", 1);
    }
    default: {
        char *s = json_dumps(j, JSON_ENCODE_ANY | JSON_REAL_PRECISION(9));
        if (!s)
            return SKIFF_ENOMEM;
        rc = skiff_buf_adds(b, s);
        free(s);
        return rc;
    }
    }
}

static char *
finish(struct skiff_buf *b, int rc, size_t *len)
{
    if (rc != 0 || !b->data) {
        skiff_buf_release(b);
        return NULL;
    }
    if (len)
        *len = b->len;
    return skiff_buf_take(b);
}

char *
skiff_sim_render_compact(const json_t *j, size_t *len)
{
    struct skiff_buf b;
    skiff_buf_init(&b, MAX_RENDER);
    return finish(&b, put_compact(&b, j), len);
}

char *
skiff_sim_render_sse(const json_t *j, size_t *len)
{
    struct skiff_buf b;
    skiff_buf_init(&b, MAX_RENDER);
    int rc = skiff_buf_add(&b, "data: ", 6);
    rc |= put_compact(&b, j);
    rc |= skiff_buf_add(&b, "\r\n\r\n", 4);
    return finish(&b, rc, len);
}

char *
skiff_sim_render_array_elem(const json_t *j, int first, size_t *len)
{
    char *s = json_dumps(j, SKIFF_SIM_PRETTY);
    if (!s)
        return NULL;
    struct skiff_buf b;
    skiff_buf_init(&b, MAX_RENDER);
    int rc = skiff_buf_adds(&b, first ? "[" : "\n,\r\n");
    rc |= skiff_buf_adds(&b, s);
    free(s);
    return finish(&b, rc, len);
}

char *
skiff_sim_render_pretty(const json_t *j, size_t *len)
{
    char *s = json_dumps(j, SKIFF_SIM_PRETTY);
    if (!s)
        return NULL;
    struct skiff_buf b;
    skiff_buf_init(&b, MAX_RENDER);
    int rc = skiff_buf_adds(&b, s);
    rc |= skiff_buf_add(&b, "\n", 1);
    free(s);
    return finish(&b, rc, len);
}

json_t *
skiff_sim_render_embedding(const char *text, size_t len, const char *task, long dims)
{
    uint64_t seed = skiff_fnv1a64(SKIFF_FNV64_BASIS, text, len);
    if (task)
        seed = skiff_fnv1a64(seed, task, strlen(task));
    double *v = malloc((size_t)dims * sizeof *v);
    if (!v)
        return NULL;
    double norm = 0;
    uint64_t h = seed;
    for (long i = 0; i < dims; i++) {
        h = skiff_sim_mix(h);
        v[i] = (double)(h >> 11) * 0x1.0p-52 - 1.0;
        norm += v[i] * v[i];
    }
    norm = sqrt(norm);
    json_t *values = json_array();
    for (long i = 0; i < dims; i++)
        /* Round to 9 decimals so the values print as the API's do, not with 17 digits. */
        json_array_append_new(values, json_real(round(v[i] / norm * 1e9) / 1e9));
    free(v);
    return json_pack("{s:o}", "values", values);
}
