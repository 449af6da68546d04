#include "gemini/diagnose.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/hash.h"
#include "base/num.h"

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

/* The enum value after the key at p (which points at the key's opening quote). */
static int
value_after(const char *p, const char *end, size_t keylen, char *out, size_t cap)
{
    const char *q = p + keylen;
    while (q < end && (*q == ' ' || *q == ':' || *q == '\n' || *q == '\r' || *q == '\t'))
        q++;
    if (q >= end || *q != '"')
        return -1;
    q++;
    size_t n = 0;
    while (q < end && n + 1 < cap && ((*q >= 'A' && *q <= 'Z') || *q == '_'))
        out[n++] = *q++;
    out[n] = '\0';
    return q < end && *q == '"' && n ? 0 : -1;
}

/* Finds key (with quotes) outside JSON strings' escapes; reads its enum value. */
static int
find_enum(const char *data, size_t len, const char *key, char *out, size_t cap)
{
    size_t kl = strlen(key);
    const char *p = data, *end = data + len, *hit;
    while ((hit = memmem(p, (size_t)(end - p), key, kl))) {
        /* An escaped quote is text that mentions the key, not the key. */
        if (!(hit > data && hit[-1] == '\\') && value_after(hit, end, kl, out, cap) == 0)
            return 0;
        p = hit + kl;
    }
    return -1;
}

int
skiff_diagnose_finish(const char *data, size_t len, struct skiff_finish *out)
{
    char v[32];
    memset(out, 0, sizeof *out);
    if (!data)
        return 0;
    if (find_enum(data, len, "\"blockReason\"", v, sizeof v) == 0 &&
        strcmp(v, "BLOCK_REASON_UNSPECIFIED") != 0) {
        out->prompt_blocked = 1;
        snprintf(out->reason, sizeof out->reason, "%s", v);
        snprintf(out->header, sizeof out->header, "blockReason=%s", v);
        out->advice = advice_for(v, 1);
        return 1;
    }
    const char *p = data, *end = data + len, *hit;
    static const char key[] = "\"finishReason\"";
    while ((hit = memmem(p, (size_t)(end - p), key, sizeof key - 1))) {
        p = hit + sizeof key - 1;
        if ((hit > data && hit[-1] == '\\') || value_after(hit, end, sizeof key - 1, v, sizeof v))
            continue;
        if (!strcmp(v, "STOP") || !strcmp(v, "MAX_TOKENS") ||
            !strcmp(v, "FINISH_REASON_UNSPECIFIED"))
            continue;
        snprintf(out->reason, sizeof out->reason, "%s", v);
        snprintf(out->header, sizeof out->header, "%s", v);
        out->advice = advice_for(v, 0);
        return 1;
    }
    return 0;
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

enum skiff_rep
skiff_repguard_feed_event(struct skiff_repguard *g, const char *event, size_t len)
{
    static const char key[] = "\"text\"";
    const char *p = event, *end = event + len, *hit;
    while (!g->tripped && (hit = memmem(p, (size_t)(end - p), key, sizeof key - 1))) {
        p = hit + sizeof key - 1;
        if (hit > event && hit[-1] == '\\')
            continue;
        while (p < end && (*p == ' ' || *p == ':' || *p == '\n' || *p == '\r' || *p == '\t'))
            p++;
        if (p >= end || *p != '"')
            continue;
        p++;
        char buf[256];
        size_t n = 0;
        while (p < end && *p != '"') {
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
                    int v = 0, ok = end - p >= 4;
                    for (int k = 0; ok && k < 4; k++) {
                        int h = skiff_hexdigit(p[k]);
                        ok = h >= 0;
                        v = v * 16 + h;
                    }
                    if (ok)
                        p += 4;
                    c = ok && v < 0x80 ? (char)v : '?'; /* non-ASCII: one symbol is enough */
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
    }
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

/* ---- thinking policy ------------------------------------------------------------------------ */

int
skiff_thinking_default(const struct skiff_config *cfg, const char *token, const char *model,
                       int *budget)
{
    int best = 0; /* 4: token+model, 3: token+*, 2: model, 1: * */
    for (size_t i = 0; i < cfg->nthinking; i++) {
        const struct skiff_thinking_default *d = &cfg->thinking[i];
        int any = strcmp(d->model, "*") == 0;
        if (!any && strcmp(d->model, model) != 0)
            continue;
        int rank;
        if (d->token) {
            if (!token || strcmp(d->token, token) != 0)
                continue;
            rank = any ? 3 : 4;
        } else {
            rank = any ? 1 : 2;
        }
        if (rank > best) {
            best = rank;
            *budget = d->budget;
        }
    }
    return best > 0;
}

/* Whether the model would accept the budget, as far as the catalog knows. */
static int
acceptable(const struct skiff_catalog *cat, const char *model, int b)
{
    struct skiff_model_info m;
    if (!cat || !skiff_catalog_lookup(cat, model, strlen(model), &m))
        return 1;
    if (!m.thinking)
        return 0;
    if (b == -1)
        return 1;
    if (b == 0)
        return m.budget_zero_ok;
    return m.budget_max == 0 || (b >= m.budget_min && b <= m.budget_max);
}

static json_t *
get2(json_t *o, const char *camel, const char *snake, const char **used)
{
    json_t *v = json_object_get(o, camel);
    *used = camel;
    if (!v) {
        v = json_object_get(o, snake);
        *used = v ? snake : camel;
    }
    return v;
}

char *
skiff_thinking_apply(const struct skiff_config *cfg, const struct skiff_catalog *cat,
                     const char *token, const char *version, const char *model, const char *body,
                     size_t len, size_t *new_len)
{
    int budget;
    *new_len = 0;
    if (!cfg || !cfg->nthinking || !model || (version && strcmp(version, "v1") == 0))
        return NULL;
    if (strncmp(model, "models/", 7) == 0)
        model += 7;
    if (!skiff_thinking_default(cfg, token, model, &budget) || !acceptable(cat, model, budget))
        return NULL;
    json_t *root = json_loadb(body ? body : "", len, 0, NULL);
    if (!json_is_object(root)) {
        json_decref(root);
        return NULL;
    }
    const char *gk, *tk, *unused;
    json_t *gc = get2(root, "generationConfig", "generation_config", &gk);
    int snake = strcmp(gk, "generation_config") == 0;
    if (gc && !json_is_object(gc)) {
        json_decref(root);
        return NULL; /* a shape the upstream will judge */
    }
    if (!gc) {
        gc = json_object();
        json_object_set_new(root, gk, gc);
    }
    json_t *tc = get2(gc, "thinkingConfig", "thinking_config", &tk);
    if (snake && !tc)
        tk = "thinking_config";
    if (tc && (!json_is_object(tc) || get2(tc, "thinkingBudget", "thinking_budget", &unused) ||
               get2(tc, "thinkingLevel", "thinking_level", &unused))) {
        json_decref(root);
        return NULL; /* the client chose */
    }
    if (!tc) {
        tc = json_object();
        json_object_set_new(gc, tk, tc);
    }
    json_object_set_new(tc, snake ? "thinking_budget" : "thinkingBudget", json_integer(budget));
    char *out = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(root);
    if (out)
        *new_len = strlen(out);
    return out;
}
