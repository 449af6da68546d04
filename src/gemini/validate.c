/*
 * Local validation: one pass of the JSON tokenizer (base/json.h) over the request body and
 * the rules of docs/internals/validation.md. It judges nothing it does not understand: on
 * anything unexpected it stops and lets the request through.
 */
#include "gemini/validate.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/json.h"
#include "base/jsoncheck.h"
#include "gemini/error.h"

#define MAX_STOP_SEQUENCES 5
#define MAX_CANDIDATES 8
#define API_MAX_TEMPERATURE 2.0

#define HELP_MODELS "https://ai.google.dev/gemini-api/docs/models"
#define HELP_REQUEST "https://ai.google.dev/api/generate-content#request-body"
#define HELP_CONFIG "https://ai.google.dev/api/generate-content#generationconfig"
#define HELP_THINKING "https://ai.google.dev/gemini-api/docs/thinking"
#define HELP_VERSIONS "https://ai.google.dev/gemini-api/docs/api-versions"

/* ---- the scanner ------------------------------------------------------------------------ */

/*
 * The body is read through the one JSON tokenizer (base/json.h), once: a rule that looks
 * into a container iterates it, and whatever no rule looks into is skipped by the next
 * iteration step of its parent.
 */

/* A JSON value inside the body: its bytes and its kind ('{', '[', '"', 'n'umber, 't', 'f',
 * 'z' for null). A string's bytes include the quotes. A container is only opened: its
 * members come from iterating it. */
struct jv {
    const char *p;
    size_t n;             /* 0 for a container */
    struct skiff_json *j; /* the body's tokenizer */
    int depth;            /* a container: the tokenizer's depth inside it */
    char t;
};

/* Iterates a container's members. */
struct it {
    struct skiff_json *j;
    int depth; /* the tokenizer's depth inside the container */
    int done;  /* its close was read */
};

static void
it_init(struct it *it, const struct jv *c)
{
    it->j = c->j;
    it->depth = c->depth;
    it->done = 0;
}

/* Reads the value token that follows into v; -1 when malformed, 0 at the container's close. */
static int
read_value(struct it *it, struct jv *v)
{
    struct skiff_json_tok t;
    enum skiff_jtype type = skiff_json_next(it->j, &t);
    v->p = t.p;
    v->n = t.n;
    v->j = it->j;
    v->depth = 0;
    switch (type) {
    case SKIFF_JSON_OBJECT:
    case SKIFF_JSON_ARRAY:
        v->t = *t.p;
        v->n = 0;
        v->depth = it->j->depth;
        return 1;
    case SKIFF_JSON_STRING:
        v->t = '"';
        return 1;
    case SKIFF_JSON_NUMBER:
        v->t = 'n';
        return 1;
    case SKIFF_JSON_TRUE:
        v->t = 't';
        return 1;
    case SKIFF_JSON_FALSE:
        v->t = 'f';
        return 1;
    case SKIFF_JSON_NULL:
        v->t = 'z';
        return 1;
    case SKIFF_JSON_CLOSE:
        it->done = 1;
        return 0;
    default:
        return -1;
    }
}

/* Skips what is left of the members a rule opened and did not read to their end. */
static int
it_step(struct it *it)
{
    if (it->done)
        return 0;
    while (it->j->depth > it->depth)
        if (skiff_json_skip(it->j))
            return -1;
    if (it->j->depth < it->depth) {
        it->done = 1; /* cannot happen: nobody closes a container that is not theirs */
        return 0;
    }
    return 1;
}

/* Next member: 1 with *k (the key without quotes) and *v, 0 at the end, -1 when malformed. */
static int
obj_next(struct it *it, struct jv *k, struct jv *v)
{
    int r = it_step(it);
    if (r <= 0)
        return r;
    struct skiff_json_tok t;
    enum skiff_jtype type = skiff_json_next(it->j, &t);
    if (type == SKIFF_JSON_CLOSE) {
        it->done = 1;
        return 0;
    }
    if (type != SKIFF_JSON_KEY)
        return -1;
    k->p = t.p + 1;
    k->n = t.n - 2;
    k->t = '"';
    r = read_value(it, v);
    return r == 0 ? -1 : r; /* a close right after a key is malformed */
}

static int
arr_next(struct it *it, struct jv *v)
{
    int r = it_step(it);
    return r <= 0 ? r : read_value(it, v);
}
/* Whether a key is camel or snake (proto JSON accepts both spellings of a field). */
static int
key_is(const struct jv *k, const char *camel, const char *snake)
{
    size_t n = strlen(camel);
    if (k->n == n && memcmp(k->p, camel, n) == 0)
        return 1;
    if (!snake)
        return 0;
    n = strlen(snake);
    return k->n == n && memcmp(k->p, snake, n) == 0;
}

/* A JSON number's value; -1 when it is not a plain number. *integral: no fraction or exponent. */
static int
number(const struct jv *v, double *out, int *integral)
{
    char buf[64];
    if (v->t != 'n' || v->n >= sizeof buf)
        return -1;
    memcpy(buf, v->p, v->n);
    buf[v->n] = '\0';
    char *end;
    *out = strtod(buf, &end);
    if (*end)
        return -1;
    *integral = !memchr(buf, '.', v->n) && !memchr(buf, 'e', v->n) && !memchr(buf, 'E', v->n);
    return 0;
}

/* ---- the rules ---------------------------------------------------------------------------- */

struct ctx {
    const char *version;
    const char *model; /* as in the URL */
    size_t model_len;
    enum skiff_method method;
    int known; /* the catalog knows the model */
    struct skiff_model_info info;
    struct skiff_violation *out;
};

static int refuse(struct ctx *c, int status, const char *field, const char *help_url,
                  const char *help_desc, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

static int
refuse(struct ctx *c, int status, const char *field, const char *help_url, const char *help_desc,
       const char *fmt, ...)
{
    struct skiff_violation *v = c->out;
    v->status = status;
    v->gstatus = status == 404 ? "NOT_FOUND" : "INVALID_ARGUMENT";
    snprintf(v->field, sizeof v->field, "%s", field);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(v->message, sizeof v->message, fmt, ap);
    va_end(ap);
    v->help_url = help_url;
    v->help_description = help_desc;
    return 1;
}

/* Builds base + sep + the n bytes of s into dst, cut short at cap (paths are for messages). */
static void
path_join(char *dst, size_t cap, const char *base, const char *sep, const char *s, size_t n)
{
    size_t o = 0;
    const char *parts[3] = {base, sep, s};
    size_t lens[3] = {strlen(base), strlen(sep), n};
    for (int i = 0; i < 3; i++) {
        size_t k = lens[i] < cap - 1 - o ? lens[i] : cap - 1 - o;
        memmove(dst + o, parts[i], k);
        o += k;
    }
    dst[o] = '\0';
}

/* Appends ".key" or "[i]" to a path. */
static void
path_key(char *dst, size_t cap, const char *base, const struct jv *k)
{
    path_join(dst, cap, base, *base ? "." : "", k->p, k->n);
}

static void
path_index(char *dst, size_t cap, const char *base, size_t i)
{
    char ix[32], *q = ix + sizeof ix;
    *--q = ']';
    do
        *--q = (char)('0' + i % 10);
    while ((i /= 10) && q > ix + 1);
    *--q = '[';
    path_join(dst, cap, base, "", q, (size_t)(ix + sizeof ix - q));
}

static const char *
model_name(const struct ctx *c, char *buf, size_t cap)
{
    snprintf(buf, cap, "%.*s", (int)(c->model_len > 96 ? 96 : c->model_len), c->model);
    return buf;
}

static int
v1beta_only(struct ctx *c, const char *field)
{
    char m[100];
    return refuse(c, 400, field, HELP_VERSIONS, "API versions: what /v1 and /v1beta offer",
                  "%s exists only in the v1beta API: /v1 refuses it as an unknown field "
                  "(\"Invalid JSON payload received. Unknown name\"). Send this request to "
                  "/v1beta/models/%s:%s instead; the SDKs use v1beta by default.",
                  field, model_name(c, m, sizeof m), skiff_method_name(c->method));
}

/* A part with no data: {} or {"text": ""} (a "thought" flag alone carries nothing). Any
 * other field, known or not, counts as data. */
static int
part_is_empty(const struct jv *part)
{
    struct it it;
    struct jv k, v;
    int r;
    it_init(&it, part);
    while ((r = obj_next(&it, &k, &v)) == 1) {
        if (key_is(&k, "text", NULL) && (v.t == 'z' || (v.t == '"' && v.n == 2)))
            continue;
        if (key_is(&k, "thought", NULL))
            continue;
        return 0;
    }
    return r == 0; /* malformed: not judged, so not empty */
}

/* One Content: its role and its parts. *nonempty is set when a part carries data. */
static int
check_content(struct ctx *c, const struct jv *content, const char *path, int *nonempty)
{
    struct it it;
    struct jv k, v;
    char p[128], q[128];
    int r;
    it_init(&it, content);
    while ((r = obj_next(&it, &k, &v)) == 1) {
        if (key_is(&k, "role", NULL) && v.t == '"') {
            const char *s = v.p + 1;
            size_t n = v.n - 2;
            if (n == 0 || (n == 4 && strncasecmp(s, "user", 4) == 0) ||
                (n == 5 && strncasecmp(s, "model", 5) == 0) ||
                (n == 8 && strncasecmp(s, "function", 8) == 0))
                continue;
            path_key(p, sizeof p, path, &k);
            const char *hint = (n == 9 && strncasecmp(s, "assistant", 9) == 0)
                                   ? " (\"assistant\" is OpenAI's name for \"model\")"
                               : (n == 6 && strncasecmp(s, "system", 6) == 0)
                                   ? " (put system text in systemInstruction, not in contents)"
                                   : "";
            return refuse(c, 400, p, HELP_REQUEST, "The Content object: role and parts",
                          "%s is \"%.*s\", which is not a role of the Gemini API: use \"user\" for "
                          "the user's turns and \"model\" for the model's%s. The API answers "
                          "\"Please use a valid role: user, model.\"",
                          p, (int)(n > 40 ? 40 : n), s, hint);
        }
        if (!key_is(&k, "parts", NULL))
            continue;
        path_key(p, sizeof p, path, &k);
        if (v.t == '{') {
            /* The API's JSON parser takes one object for a repeated field. */
            if (!part_is_empty(&v))
                *nonempty = 1;
            continue;
        }
        if (v.t == 'z')
            continue;
        if (v.t != '[')
            return refuse(c, 400, p, HELP_REQUEST, "The Part object",
                          "%s must be a list of parts such as [{\"text\": \"Hello\"}], not %s.", p,
                          v.t == '"' ? "a string" : "a scalar");
        struct it pit;
        struct jv part;
        size_t i = 0;
        int pr;
        it_init(&pit, &v);
        while ((pr = arr_next(&pit, &part)) == 1) {
            path_index(q, sizeof q, p, i++);
            if (part.t == 'z')
                continue;
            if (part.t != '{')
                return refuse(c, 400, q, HELP_REQUEST, "The Part object",
                              "%s must be an object such as {\"text\": \"Hello\"} or "
                              "{\"inlineData\": {...}}, not %s.",
                              q, part.t == '"' ? "a bare string" : "a scalar");
            if (!part_is_empty(&part))
                *nonempty = 1;
        }
        if (pr < 0)
            *nonempty = 1; /* not judged */
    }
    if (r < 0)
        *nonempty = 1;
    return 0;
}

static int
check_contents(struct ctx *c, const struct jv *v, const char *path)
{
    char p[128];
    int nonempty = 0;
    size_t count = 0;
    if (v->t == '{') {
        count = 1;
        if (check_content(c, v, path, &nonempty))
            return 1;
    } else if (v->t == '[') {
        struct it it;
        struct jv item;
        int r;
        it_init(&it, v);
        while ((r = arr_next(&it, &item)) == 1) {
            path_index(p, sizeof p, path, count++);
            if (item.t == 'z') {
                nonempty = 1; /* not judged */
                continue;
            }
            if (item.t != '{')
                return refuse(c, 400, p, HELP_REQUEST, "The Content object: role and parts",
                              "%s must be a Content object such as {\"role\": \"user\", "
                              "\"parts\": [{\"text\": \"Hello\"}]}, not %s.",
                              p, item.t == '"' ? "a string" : "a scalar");
            if (check_content(c, &item, p, &nonempty))
                return 1;
        }
        if (r < 0)
            return 0;
    } else {
        return refuse(c, 400, path, HELP_REQUEST, "The request body",
                      "%s must be a list of Content objects such as [{\"role\": \"user\", "
                      "\"parts\": [{\"text\": \"Hello\"}]}], not %s.",
                      path, v->t == '"' ? "a string" : "a scalar");
    }
    if (count == 0)
        return refuse(c, 400, path, HELP_REQUEST, "The request body",
                      "%s is empty: send at least one Content, e.g. [{\"role\": \"user\", "
                      "\"parts\": [{\"text\": \"Hello\"}]}].",
                      path);
    if (!nonempty) {
        if (count == 1 && v->t == '[')
            path_join(p, sizeof p, path, "", "[0].parts", 9);
        else
            path_join(p, sizeof p, path, "", "", 0);
        return refuse(c, 400, p, HELP_REQUEST, "The Part object",
                      "every part of %s is empty (no text, no inlineData, no fileData, no "
                      "function call or response): put the prompt in a part such as "
                      "{\"text\": \"Hello\"}.",
                      path);
    }
    return 0;
}

static int
check_thinking(struct ctx *c, const struct jv *tc, const char *path)
{
    struct it it;
    struct jv k, v;
    char p[128], m[100];
    double b;
    int integral;
    it_init(&it, tc);
    while (obj_next(&it, &k, &v) == 1) {
        if (!key_is(&k, "thinkingBudget", "thinking_budget") || number(&v, &b, &integral) < 0 ||
            !integral)
            continue;
        const struct skiff_model_info *mi = &c->info;
        if (!c->known || !mi->thinking)
            return 0;
        if (b == -1 || (b == 0 && mi->budget_zero_ok) ||
            (b > 0 && (mi->budget_max == 0 || (b >= mi->budget_min && b <= mi->budget_max))))
            return 0;
        path_key(p, sizeof p, path, &k);
        model_name(c, m, sizeof m);
        if (b == 0) {
            if (mi->budget_max > 0)
                return refuse(c, 400, p, HELP_THINKING, "Thinking budgets per model",
                              "%s is 0, but %s cannot turn thinking off (it only works in "
                              "thinking mode): use a budget from %d to %d, or -1 to let the "
                              "model decide.",
                              p, m, mi->budget_min, mi->budget_max);
            return refuse(c, 400, p, HELP_THINKING, "Thinking budgets per model",
                          "%s is 0, but %s cannot turn thinking off: leave thinkingBudget out, "
                          "set -1 (dynamic) or a positive budget, or use thinkingLevel "
                          "\"minimal\"/\"low\" to think less.",
                          p, m);
        }
        if (mi->budget_max > 0 && (b < -1 || b < mi->budget_min || b > mi->budget_max))
            return refuse(c, 400, p, HELP_THINKING, "Thinking budgets per model",
                          "%s is %.0f, outside the range of %s: use %d to %d%s, or -1 to let "
                          "the model decide (the API answers \"The thinking budget (%.0f) is "
                          "invalid.\").",
                          p, b, m, mi->budget_min, mi->budget_max,
                          mi->budget_zero_ok ? ", 0 to turn thinking off" : "", b);
        if (b < -1)
            return refuse(c, 400, p, HELP_THINKING, "Thinking budgets per model",
                          "%s is %.0f: a budget is a number of tokens (or -1 for dynamic "
                          "thinking).",
                          p, b);
    }
    return 0;
}

static int
check_generation_config(struct ctx *c, const struct jv *gc, const char *path)
{
    struct it it;
    struct jv k, v;
    char p[128], m[100];
    double x;
    int integral;
    int v1 = strcmp(c->version, "v1") == 0;
    const struct skiff_model_info *mi = &c->info;
    it_init(&it, gc);
    while (obj_next(&it, &k, &v) == 1) {
        path_key(p, sizeof p, path, &k);
        if (v1 && (key_is(&k, "responseMimeType", "response_mime_type") ||
                   key_is(&k, "responseSchema", "response_schema") ||
                   key_is(&k, "responseJsonSchema", "response_json_schema") ||
                   key_is(&k, "thinkingConfig", "thinking_config")))
            return v1beta_only(c, p);
        if (key_is(&k, "thinkingConfig", "thinking_config")) {
            if (v.t == '{' && check_thinking(c, &v, p))
                return 1;
            continue;
        }
        if (key_is(&k, "stopSequences", "stop_sequences")) {
            if (v.t != '[')
                continue;
            struct it sit;
            struct jv s;
            size_t n = 0;
            it_init(&sit, &v);
            while (arr_next(&sit, &s) == 1)
                n++;
            if (n > MAX_STOP_SEQUENCES)
                return refuse(c, 400, p, HELP_CONFIG, "GenerationConfig reference",
                              "%s has %zu entries; the API accepts at most %d stop sequences: "
                              "keep the %d that matter.",
                              p, n, MAX_STOP_SEQUENCES, MAX_STOP_SEQUENCES);
            continue;
        }
        if (number(&v, &x, &integral) < 0)
            continue; /* strings, nulls and objects are the upstream's to judge */
        int vn = (int)(v.n > 24 ? 24 : v.n);
        if (key_is(&k, "candidateCount", "candidate_count")) {
            if (integral && (x < 1 || x > MAX_CANDIDATES))
                return refuse(c, 400, p, HELP_CONFIG, "GenerationConfig reference",
                              "%s is %.*s; it must be from 1 to %d (the number of answers to "
                              "generate).",
                              p, vn, v.p, MAX_CANDIDATES);
        } else if (key_is(&k, "temperature", NULL)) {
            if (c->known && !mi->sampling)
                continue;
            double max =
                c->known && mi->max_temperature >= 0 ? mi->max_temperature : API_MAX_TEMPERATURE;
            if (x < 0 || x > max)
                return refuse(c, 400, p, HELP_CONFIG, "GenerationConfig reference",
                              "%s is %.*s, but %s accepts 0.0 to %.1f: use a value in that "
                              "range (lower is more deterministic; >= 0.8 helps against "
                              "repetition).",
                              p, vn, v.p, model_name(c, m, sizeof m), max);
        } else if (key_is(&k, "topP", "top_p")) {
            if (x < 0 || x > 1)
                return refuse(c, 400, p, HELP_CONFIG, "GenerationConfig reference",
                              "%s is %.*s; it is a probability mass and must be from 0.0 to "
                              "1.0 (0.95 is the usual default).",
                              p, vn, v.p);
        } else if (key_is(&k, "topK", "top_k")) {
            if (integral && x < 0)
                return refuse(c, 400, p, HELP_CONFIG, "GenerationConfig reference",
                              "%s is %.*s; it counts candidate tokens and cannot be negative "
                              "(64 is the usual default).",
                              p, vn, v.p);
        } else if (key_is(&k, "maxOutputTokens", "max_output_tokens")) {
            if (!integral)
                continue;
            if (x < 1)
                return refuse(c, 400, p, HELP_CONFIG, "GenerationConfig reference",
                              "%s is %.*s; it must be at least 1 (leave it out to get the "
                              "model's limit).",
                              p, vn, v.p);
            if (c->known && mi->output_limit > 1 && x > (double)mi->output_limit)
                return refuse(c, 400, p, HELP_MODELS, "Models and their token limits",
                              "%s is %.*s, above the output limit of %s (%ld tokens): use at "
                              "most %ld, or leave it out to get the model's limit.",
                              p, vn, v.p, model_name(c, m, sizeof m), mi->output_limit,
                              mi->output_limit);
        }
    }
    return 0;
}

/* A GenerateContentRequest (the body of generate/stream, or countTokens's inner one). */
static int
check_request(struct ctx *c, const struct jv *obj, const char *prefix, int need_contents)
{
    struct it it;
    struct jv k, v;
    char p[128];
    int has_contents = 0, r;
    int v1 = strcmp(c->version, "v1") == 0;
    it_init(&it, obj);
    while ((r = obj_next(&it, &k, &v)) == 1) {
        path_key(p, sizeof p, prefix, &k);
        if (v1 && (key_is(&k, "systemInstruction", "system_instruction") ||
                   key_is(&k, "tools", NULL) || key_is(&k, "toolConfig", "tool_config") ||
                   key_is(&k, "cachedContent", "cached_content")))
            return v1beta_only(c, p);
        if (key_is(&k, "contents", NULL)) {
            if (v.t == 'z')
                continue;
            has_contents = 1;
            if (check_contents(c, &v, p))
                return 1;
        } else if (key_is(&k, "generationConfig", "generation_config")) {
            if (v.t == '{' && check_generation_config(c, &v, p))
                return 1;
        } else if (key_is(&k, "generateContentRequest", "generate_content_request") &&
                   c->method == SKIFF_M_COUNT_TOKENS && !*prefix) {
            if (v.t == '{' && check_request(c, &v, p, 1))
                return 1;
            has_contents = 1; /* the inner request carries them */
        }
    }
    if (r < 0)
        return 0;
    if (need_contents && !has_contents) {
        path_join(p, sizeof p, prefix, *prefix ? "." : "", "contents", 8);
        return refuse(c, 400, p, HELP_REQUEST, "The request body",
                      "contents is not specified: a %s request needs at least one Content, e.g. "
                      "{\"contents\": [{\"role\": \"user\", \"parts\": [{\"text\": \"Hello\"}]}]}.",
                      *prefix ? "countTokens generateContentRequest"
                              : skiff_method_name(c->method));
    }
    return 0;
}

/* Whether two names differ only in their digits ("gemini-3.9-flash" vs "gemini-3.8-flash"):
 * that is a newer version, not a typo. */
static int
differ_in_digits_only(const char *a, size_t la, const char *b)
{
    size_t i = 0, j = 0, lb = strlen(b);
    for (;;) {
        while (i < la && a[i] >= '0' && a[i] <= '9')
            i++;
        while (j < lb && b[j] >= '0' && b[j] <= '9')
            j++;
        if (i == la || j == lb)
            return i == la && j == lb;
        if (a[i] != b[j])
            return 0;
        i++;
        j++;
    }
}

static const char *
methods_text(unsigned bits, char *buf, size_t cap)
{
    size_t o = 0;
    buf[0] = '\0';
    static const struct {
        unsigned bit;
        const char *name;
    } names[] = {{SKIFF_CAT_GENERATE, "generateContent, streamGenerateContent"},
                 {SKIFF_CAT_EMBED, "embedContent, batchEmbedContents"},
                 {SKIFF_CAT_COUNT, "countTokens"},
                 {SKIFF_CAT_OTHER, "other methods"}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if ((bits & names[i].bit) && o < cap)
            o += (size_t)snprintf(buf + o, cap - o, "%s%s", o ? ", " : "", names[i].name);
    return buf;
}

/* The model rules: unknown model, unsupported method. */
static int
check_model(struct ctx *c, const struct skiff_catalog *cat)
{
    char m[100], near[96], list[160];
    if (skiff_catalog_lookup(cat, c->model, c->model_len, &c->info)) {
        c->known = 1;
        if (skiff_model_supports(&c->info, c->method))
            return 0;
        model_name(c, m, sizeof m);
        return refuse(c, 404, "model", HELP_MODELS, "Models and their supported methods",
                      "models/%s does not support %s: it supports %s. %s", m,
                      skiff_method_name(c->method),
                      methods_text(c->info.methods, list, sizeof list),
                      (c->info.methods & SKIFF_CAT_EMBED)
                          ? "Use a generative model such as gemini-2.5-flash for text."
                          : "Use an embedding model such as gemini-embedding-001 to embed.");
    }
    model_name(c, m, sizeof m);
    int found = skiff_catalog_suggest(cat, c->model, c->model_len, near, sizeof near);
    if (skiff_catalog_source(cat) == SKIFF_CATALOG_UPSTREAM) {
        if (found)
            return refuse(c, 404, "model", HELP_MODELS, "Gemini models",
                          "models/%s is not found for API version %s, or is not supported for "
                          "%s. Did you mean %s? GET /%s/models lists the models.",
                          m, c->version, skiff_method_name(c->method), near, c->version);
        return refuse(c, 404, "model", HELP_MODELS, "Gemini models",
                      "models/%s is not found for API version %s, or is not supported for %s: "
                      "it is not in the upstream's model list. GET /%s/models lists the models.",
                      m, c->version, skiff_method_name(c->method), c->version);
    }
    /* The built-in list may be older than the API: refuse only a likely typo of a known
     * name, never what may be a newer version of it. */
    if (found &&
        !differ_in_digits_only(
            c->model + (c->model_len > 7 && memcmp(c->model, "models/", 7) == 0 ? 7 : 0),
            c->model_len - (c->model_len > 7 && memcmp(c->model, "models/", 7) == 0 ? 7 : 0), near))
        return refuse(c, 404, "model", HELP_MODELS, "Gemini models",
                      "models/%s is not found for API version %s, or is not supported for %s. "
                      "Did you mean %s? GET /%s/models lists the models.",
                      m, c->version, skiff_method_name(c->method), near, c->version);
    return 0;
}

/* The body rules over the tokenizer j (set on the body): 0 or 1 as skiff_validate. */
static int
check_body(struct ctx *c, struct skiff_json *j)
{
    struct it top = {j, 0, 0};
    struct jv root;
    if (read_value(&top, &root) <= 0)
        return 0; /* an empty or broken body: the syntax check answers that */
    if (root.t != '{')
        return refuse(c, 400, "", HELP_REQUEST, "The request body",
                      "the request body must be a JSON object such as {\"contents\": [...]}, "
                      "not %s.",
                      root.t == '[' ? "a list" : "a scalar");
    return check_request(c, &root, "", c->method != SKIFF_M_COUNT_TOKENS);
}

static int
body_judged(enum skiff_method method)
{
    return method == SKIFF_M_GENERATE || method == SKIFF_M_STREAM || method == SKIFF_M_COUNT_TOKENS;
}

int
skiff_validate(const struct skiff_catalog *cat, const char *version, const char *model,
               size_t model_len, enum skiff_method method, const char *body, size_t len,
               struct skiff_violation *out)
{
    struct ctx c = {.version = version ? version : "v1beta",
                    .model = model ? model : "",
                    .model_len = model ? model_len : 0,
                    .method = method,
                    .out = out};
    memset(out, 0, sizeof *out);
    if (cat && c.model_len && check_model(&c, cat))
        return 1;
    if (!body_judged(method))
        return 0;
    struct skiff_json j;
    skiff_json_init(&j, body, len);
    return check_body(&c, &j);
}

int
skiff_validate_body(const struct skiff_catalog *cat, const char *version, const char *model,
                    size_t model_len, enum skiff_method method, const char *body, size_t len,
                    int rules, struct skiff_violation *out, size_t *err_off, const char **why)
{
    struct ctx c = {.version = version ? version : "v1beta",
                    .model = model ? model : "",
                    .model_len = model ? model_len : 0,
                    .method = method,
                    .out = out};
    memset(out, 0, sizeof *out);
    if (!rules || !body_judged(method)) { /* no body rules: the check, then the model's */
        if (skiff_json_check(body, len, err_off, why))
            return -1;
        return rules ? skiff_validate(cat, version, model, model_len, method, body, len, out) : 0;
    }
    if (cat && c.model_len && check_model(&c, cat)) { /* refused before the body is read */
        if (skiff_json_check(body, len, err_off, why)) {
            memset(out, 0, sizeof *out);
            return -1;
        }
        return 1;
    }
    struct skiff_json j;
    struct skiff_json_tok t;
    enum skiff_jtype type;
    skiff_json_init(&j, body, len);
    int refused = check_body(&c, &j);
    /* The rules read as far as they needed; the rest is read for its syntax, which wins
     * over a rule's refusal as it would have in two passes. */
    while ((type = skiff_json_next(&j, &t)) > SKIFF_JSON_END)
        ;
    if (type == SKIFF_JSON_ERROR) {
        memset(out, 0, sizeof *out);
        *err_off = skiff_json_offset(&j);
        *why = j.why;
        return -1;
    }
    return refused;
}

json_t *
skiff_violation_details(const struct skiff_violation *v)
{
    json_t *d = json_array();
    json_array_append_new(d, skiff_gerr_bad_request(v->field[0] ? v->field : NULL, v->message));
    if (v->help_url)
        json_array_append_new(
            d, skiff_gerr_help(v->help_description ? v->help_description : "Gemini API reference",
                               v->help_url));
    return d;
}
