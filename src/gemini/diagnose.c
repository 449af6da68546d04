#include "gemini/diagnose.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/hash.h"
#include "base/json.h"
#include "base/num.h"
#include "gemini/stream.h"

/* ---- finishReason / blockReason ---------------------------------------------------------- */

static const struct {
    const char *reason;
    const char *advice;
} finish_advice[] = {
    {"SAFETY", "The answer was stopped by a safety filter: review the prompt against the "
               "safetySettings of the request."},
    {"RECITATION", "The output resembled existing data: make the prompt and context more "
                   "unique and use a higher temperature (>= 0.8)."},
    {"OTHER", "Stopped for another reason: the query or answer may violate the terms of "
              "service or be otherwise unsupported."},
    {"BLOCKLIST", "The output contained a term from a blocklist."},
    {"PROHIBITED_CONTENT", "The content is prohibited by the terms of service."},
    {"SPII", "The output contained sensitive personally identifiable information."},
    {"LANGUAGE", "The prompt is in a language the model does not support."},
    {"MALFORMED_FUNCTION_CALL", "The model produced a function call that does not parse: "
                                "simplify the function declarations."},
};

static const char *
advice_for(const char *reason, int prompt)
{
    if (prompt && strcmp(reason, "SAFETY") == 0)
        return "The prompt was blocked by a safety setting: review the prompt against the "
               "filters set in safetySettings.";
    if (prompt && strcmp(reason, "OTHER") == 0)
        return "The prompt was blocked (BlockedReason.OTHER): it may violate the terms of "
               "service or be otherwise unsupported.";
    for (size_t i = 0; i < sizeof finish_advice / sizeof finish_advice[0]; i++)
        if (strcmp(finish_advice[i].reason, reason) == 0)
            return finish_advice[i].advice;
    return "See finishReason in the API reference.";
}

/* An enum value: a string of [A-Z_] (at most cap - 1 of them), copied without quotes. */
static int
enum_value(const struct skiff_json_tok *v, char *out, size_t cap)
{
    if (v->type != SKIFF_JSON_STRING || v->n < 3 || v->n - 2 >= cap)
        return -1;
    for (size_t i = 1; i + 1 < v->n; i++) {
        char c = v->p[i];
        if (!((c >= 'A' && c <= 'Z') || c == '_'))
            return -1;
        out[i - 1] = c;
    }
    out[v->n - 2] = '\0';
    return 0;
}

/* What the members of a body say about its end, as they come. */
struct ends {
    char block[32];  /* the first blockReason, or "" */
    char finish[32]; /* the first unhealthy finishReason, or "" */
};

static int
end_member(const struct skiff_json_tok *k, const struct skiff_json_tok *v, int depth, void *ud)
{
    (void)depth;
    struct ends *e = ud;
    char x[32];
    if (!e->block[0] && skiff_json_is(k, "blockReason", 11) && enum_value(v, x, sizeof x) == 0) {
        memcpy(e->block, x, sizeof x);
        /* A blocked prompt beats any finishReason: nothing more to read. */
        return strcmp(x, "BLOCK_REASON_UNSPECIFIED") != 0;
    }
    if (!e->finish[0] && skiff_json_is(k, "finishReason", 12) && enum_value(v, x, sizeof x) == 0 &&
        strcmp(x, "STOP") != 0 && strcmp(x, "MAX_TOKENS") != 0 &&
        strcmp(x, "FINISH_REASON_UNSPECIFIED") != 0)
        memcpy(e->finish, x, sizeof x);
    return 0;
}

/*
 * Whether a body may end notably: it holds the bytes "blockReason", or "finishReason" with a
 * value other than "STOP" or "MAX_TOKENS" after it. Nearly every answer ends with STOP, and
 * this byte search costs a fraction of reading it: a yes is only a maybe, which the
 * tokenizer then settles (a healthy answer never pays for it, a notable one is never missed:
 * a key is those bytes in any JSON Google sends).
 */
static int
maybe_notable(const char *data, size_t len)
{
    static const char block[] = "\"blockReason\"", key[] = "\"finishReason\"";
    if (memmem(data, len, block, sizeof block - 1))
        return 1;
    const char *p = data, *end = data + len, *hit;
    while ((hit = memmem(p, (size_t)(end - p), key, sizeof key - 1))) {
        p = hit + sizeof key - 1;
        while (p < end && (*p == ' ' || *p == ':' || *p == '\n' || *p == '\r' || *p == '\t'))
            p++;
        size_t left = (size_t)(end - p);
        if (!(left >= 6 && memcmp(p, "\"STOP\"", 6) == 0) &&
            !(left >= 12 && memcmp(p, "\"MAX_TOKENS\"", 12) == 0))
            return 1;
    }
    return 0;
}

int
skiff_diagnose_finish(const char *data, size_t len, struct skiff_finish *out)
{
    memset(out, 0, sizeof *out);
    if (!data || !maybe_notable(data, len))
        return 0;
    struct ends e;
    memset(&e, 0, sizeof e);
    skiff_stream_each_member(data, len, end_member, &e);
    if (e.block[0] && strcmp(e.block, "BLOCK_REASON_UNSPECIFIED") != 0) {
        out->prompt_blocked = 1;
        snprintf(out->reason, sizeof out->reason, "%s", e.block);
        snprintf(out->header, sizeof out->header, "blockReason=%s", e.block);
        out->advice = advice_for(e.block, 1);
        return 1;
    }
    if (!e.finish[0])
        return 0;
    snprintf(out->reason, sizeof out->reason, "%s", e.finish);
    snprintf(out->header, sizeof out->header, "%s", e.finish);
    out->advice = advice_for(e.finish, 0);
    return 1;
}

/* ---- repetition guard ---------------------------------------------------------------------- */

void
skiff_repguard_init(struct skiff_repguard *g)
{
    memset(g, 0, sizeof *g);
    g->sentence_hash = SKIFF_FNV64_BASIS;
}

static void
end_sentence(struct skiff_repguard *g)
{
    if (g->sentence_len >= SKIFF_REP_SENTENCE_MIN) {
        if (g->repeats && g->sentence_hash == g->last_hash) {
            if (++g->repeats >= SKIFF_REP_SENTENCE_TIMES)
                g->tripped = SKIFF_REP_SENTENCE;
        } else {
            g->last_hash = g->sentence_hash;
            g->repeats = 1;
        }
    }
    g->sentence_hash = SKIFF_FNV64_BASIS;
    g->sentence_len = 0;
}

enum skiff_rep
skiff_repguard_feed(struct skiff_repguard *g, const char *text, size_t len)
{
    if (g->sentence_hash == 0)
        g->sentence_hash = SKIFF_FNV64_BASIS; /* zeroed rather than initialised */
    for (size_t i = 0; i < len && !g->tripped; i++) {
        unsigned char c = (unsigned char)text[i];
        g->hyphens = c == '-' ? g->hyphens + 1 : 0;
        if (g->hyphens >= SKIFF_REP_HYPHEN_RUN)
            g->tripped = SKIFF_REP_HYPHENS;
        if (c == '\n')
            g->newlines++;
        else if (c != ' ' && c != '\t' && c != '\r')
            g->newlines = 0;
        if (g->newlines >= SKIFF_REP_NEWLINE_RUN)
            g->tripped = SKIFF_REP_NEWLINES;
        if (c == '.' || c == '!' || c == '?' || c == '\n') {
            end_sentence(g);
            continue;
        }
        if (g->sentence_len == 0 && (c == ' ' || c == '\t' || c == '\r'))
            continue; /* a sentence starts at its first visible character */
        g->sentence_hash = skiff_fnv1a64(g->sentence_hash, &c, 1);
        g->sentence_len++;
    }
    return g->tripped;
}

/* Decodes a "text" string's escapes and feeds it to the guard. */
static int
text_member(const struct skiff_json_tok *k, const struct skiff_json_tok *v, int depth, void *ud)
{
    (void)depth;
    struct skiff_repguard *g = ud;
    if (!skiff_json_is(k, "text", 4) || v->type != SKIFF_JSON_STRING)
        return 0;
    const char *p = v->p + 1, *end = v->p + v->n - 1;
    char buf[256];
    size_t n = 0;
    while (p < end) {
        char c = *p++;
        if (c == '\\' && p < end) {
            char e = *p++;
            switch (e) {
            case 'n':
                c = '\n';
                break;
            case 't':
                c = '\t';
                break;
            case 'r':
                c = '\r';
                break;
            case 'b':
            case 'f':
                c = ' ';
                break;
            case 'u': {
                int x = 0, ok = end - p >= 4;
                for (int i = 0; ok && i < 4; i++) {
                    int h = skiff_hexdigit(p[i]);
                    ok = h >= 0;
                    x = x * 16 + h;
                }
                if (ok)
                    p += 4;
                c = ok && x < 0x80 ? (char)x : '?'; /* non-ASCII: one symbol is enough */
                break;
            }
            default:
                c = e; /* \" \\ \/ */
            }
        }
        buf[n++] = c;
        if (n == sizeof buf) {
            skiff_repguard_feed(g, buf, n);
            n = 0;
        }
    }
    if (n)
        skiff_repguard_feed(g, buf, n);
    return g->tripped != SKIFF_REP_NONE;
}

enum skiff_rep
skiff_repguard_feed_event(struct skiff_repguard *g, const char *event, size_t len)
{
    if (!g->tripped)
        skiff_stream_each_member(event, len, text_member, g);
    return g->tripped;
}

const char *
skiff_rep_explain(enum skiff_rep r)
{
    switch (r) {
    case SKIFF_REP_HYPHENS:
        return "repeated hyphens (a Markdown table separator that never ends): ask for |---| "
               "separators and no column alignment, or use a temperature >= 0.8";
    case SKIFF_REP_NEWLINES:
        return "a run of newlines: remove \\u and \\t escapes from the prompt's examples and tell "
               "the model which escapes are allowed";
    case SKIFF_REP_SENTENCE:
        return "the same sentence over and over: use a temperature >= 0.8 and ask for the answer "
               "once (\"Don't repeat yourself\")";
    default:
        return "";
    }
}
