#include "sim/tools.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/err.h"
#include "base/hash.h"
#include "sim/faults.h"
#include "sim/render.h"

#define MAX_DEPTH 16 /* schema nesting the value generator follows */
#define MAX_ITEMS 3  /* array items generated when minItems asks for none */
#define SIG_SALT "skiff-sim-thought-signature-v1"

/* ---- signatures ----------------------------------------------------------------------- */

static void
base64(const unsigned char *in, size_t n, char *out)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)in[i] << 16;
        if (i + 1 < n)
            v |= (unsigned)in[i + 1] << 8;
        if (i + 2 < n)
            v |= in[i + 2];
        out[o++] = tab[(v >> 18) & 63];
        out[o++] = tab[(v >> 12) & 63];
        out[o++] = i + 1 < n ? tab[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < n ? tab[v & 63] : '=';
    }
    out[o] = '\0';
}

char *
skiff_sim_signature(const char *name)
{
    /* 32 opaque bytes, as a real signature is opaque: a tag, then hashes of the name. */
    unsigned char raw[32];
    uint64_t h = skiff_fnv1a64(SKIFF_FNV64_BASIS, SIG_SALT, sizeof SIG_SALT - 1);
    h = skiff_fnv1a64(h, name, strlen(name));
    /* NOLINTNEXTLINE(bugprone-not-null-terminated-result): raw is 32 bytes, not a string. */
    memcpy(raw, "\x12\x1eskiffsim", 10);
    for (int i = 0; i < 22; i++) {
        h = skiff_fnv1a64(h, &i, sizeof i);
        raw[10 + i] = (unsigned char)(h >> 56);
    }
    char *out = malloc(4 * ((sizeof raw + 2) / 3) + 1);
    if (out)
        base64(raw, sizeof raw, out);
    return out;
}

int
skiff_sim_signature_ok(const char *sig, const char *name)
{
    if (!sig || !name)
        return 0;
    if (strcmp(sig, "skip_thought_signature_validator") == 0 ||
        strcmp(sig, "context_engineering_is_the_way_to_go") == 0)
        return 1;
    char *want = skiff_sim_signature(name);
    int ok = want && strcmp(want, sig) == 0;
    free(want);
    return ok;
}

/* ---- the replay check ----------------------------------------------------------------- */

static int
is_user(const json_t *content)
{
    const char *role = json_string_value(json_object_get(content, "role"));
    return !role || strcmp(role, "model") != 0;
}

/* Whether a user Content holds anything but function responses (a new turn starts there). */
static int
starts_turn(const json_t *content)
{
    size_t i;
    const json_t *part;
    json_array_foreach(json_object_get(content, "parts"), i,
                       part) if (!skiff_sim_field(part, "functionResponse")) return 1;
    return 0;
}

int
skiff_sim_tools_check(const struct skiff_sim_model *m, const json_t *body,
                      struct skiff_sim_invalid *err)
{
    if (!(m->flags & SKIFF_SIM_GEMINI3))
        return 0;
    const json_t *contents = skiff_sim_field(body, "contents");
    size_t n = json_array_size(contents), from = 0;
    for (size_t i = 0; i < n; i++) {
        const json_t *c = json_array_get(contents, i);
        if (is_user(c) && starts_turn(c))
            from = i + 1;
    }
    for (size_t i = from; i < n; i++) {
        const json_t *c = json_array_get(contents, i);
        if (is_user(c))
            continue;
        size_t k;
        const json_t *part;
        json_array_foreach(json_object_get(c, "parts"), k, part)
        {
            const json_t *call = skiff_sim_field(part, "functionCall");
            if (!call)
                continue;
            const char *name = json_string_value(json_object_get(call, "name"));
            const char *sig = json_string_value(skiff_sim_field(part, "thoughtSignature"));
            if (!sig) {
                snprintf(err->message, sizeof err->message,
                         "Function call is missing a thought_signature in functionCall parts. "
                         "This is required for tools to work correctly, and missing "
                         "thought_signature may lead to degraded model performance. Additional "
                         "data, function call `default_api:%s` , position %zu. Please refer to "
                         "https://ai.google.dev/gemini-api/docs/thought-signatures for more "
                         "details.",
                         name ? name : "", i + 1);
            } else if (!skiff_sim_signature_ok(sig, name)) {
                snprintf(err->message, sizeof err->message,
                         "Thought signature is not valid. Send back the thoughtSignature the "
                         "model returned, unchanged, on the function call at position %zu.",
                         i + 1);
            } else {
                break; /* only the first call of a step carries the signature */
            }
            err->status = 400;
            err->gstatus = "INVALID_ARGUMENT";
            err->details = NULL;
            return SKIFF_EINVAL;
        }
    }
    return 0;
}

/* ---- schema values -------------------------------------------------------------------- */

/* "#/$defs/X" or "#/definitions/X" in root; NULL when it is anything else. */
static const json_t *
resolve(const json_t *root, const char *ref)
{
    const char *name = NULL;
    const json_t *defs = NULL;
    if (strncmp(ref, "#/$defs/", 8) == 0) {
        name = ref + 8;
        defs = json_object_get(root, "$defs");
    } else if (strncmp(ref, "#/definitions/", 14) == 0) {
        name = ref + 14;
        defs = json_object_get(root, "definitions");
    }
    return name && defs ? json_object_get(defs, name) : NULL;
}

/* The schema's type, lower-cased; the first that is not "null" when it is a list. */
static const char *
type_of(const json_t *s, char *buf, size_t len)
{
    const json_t *t = json_object_get(s, "type");
    const char *v = json_string_value(t);
    if (json_is_array(t)) {
        size_t i;
        const json_t *e;
        json_array_foreach(t, i, e)
        {
            v = json_string_value(e);
            if (v && strcasecmp(v, "null") != 0)
                break;
        }
    }
    if (!v) {
        if (json_object_get(s, "properties"))
            v = "object";
        else if (json_object_get(s, "items"))
            v = "array";
        else
            v = "string";
    }
    snprintf(buf, len, "%s", v);
    for (char *p = buf; *p; p++)
        *p = (char)(*p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p);
    return buf;
}

static json_t *value_of(const json_t *root, const json_t *s, uint64_t seed, int depth);

static json_t *
string_value(const json_t *s, uint64_t seed)
{
    const char *fmt = json_string_value(json_object_get(s, "format"));
    if (fmt && strcmp(fmt, "date-time") == 0)
        return json_string("2026-01-01T00:00:00Z");
    if (fmt && strcmp(fmt, "date") == 0)
        return json_string("2026-01-01");
    if (fmt && strcmp(fmt, "email") == 0)
        return json_string("sim@example.com");
    if (fmt && (strcmp(fmt, "uri") == 0 || strcmp(fmt, "url") == 0))
        return json_string("https://example.com/sim");
    if (fmt && strcmp(fmt, "uuid") == 0)
        return json_string("00000000-0000-4000-8000-000000000000");
    char text[64];
    int n = snprintf(text, sizeof text, "sim-%04x", (unsigned)(skiff_sim_mix(seed) & 0xffff));
    json_int_t min = json_integer_value(json_object_get(s, "minLength"));
    const json_t *maxj = json_object_get(s, "maxLength");
    json_int_t max = json_is_integer(maxj) ? json_integer_value(maxj) : (json_int_t)sizeof text - 1;
    if (max >= (json_int_t)sizeof text)
        max = (json_int_t)sizeof text - 1;
    while (n < min && n < (int)sizeof text - 1)
        text[n++] = 'x';
    if (max >= 0 && n > max)
        n = (int)max;
    text[n] = '\0';
    return json_stringn(text, (size_t)n);
}

static double
clamp(const json_t *s, double v)
{
    const json_t *lo = json_object_get(s, "minimum"), *hi = json_object_get(s, "maximum");
    if (json_is_number(lo) && v < json_number_value(lo))
        v = json_number_value(lo);
    if (json_is_number(hi) && v > json_number_value(hi))
        v = json_number_value(hi);
    return v;
}

static json_t *
object_value(const json_t *root, const json_t *s, uint64_t seed, int depth)
{
    json_t *o = json_object();
    const json_t *props = json_object_get(s, "properties");
    const json_t *order = json_object_get(s, "propertyOrdering");
    if (json_is_array(order)) {
        size_t i;
        const json_t *name;
        json_array_foreach(order, i, name)
        {
            const json_t *p = json_object_get(props, json_string_value(name));
            if (p)
                json_object_set_new(o, json_string_value(name),
                                    value_of(root, p, skiff_sim_mix(seed + i), depth + 1));
        }
    }
    const char *key;
    const json_t *p;
    size_t i = 0;
    json_object_foreach((json_t *)props, key, p)
    {
        if (!json_object_get(o, key))
            json_object_set_new(o, key,
                                value_of(root, p, skiff_sim_mix(seed + 100 + i), depth + 1));
        i++;
    }
    return o;
}

static json_t *
value_of(const json_t *root, const json_t *s, uint64_t seed, int depth)
{
    if (!json_is_object(s) || depth > MAX_DEPTH)
        return json_null();
    const char *ref = json_string_value(json_object_get(s, "$ref"));
    if (ref) {
        const json_t *target = resolve(root, ref);
        return target ? value_of(root, target, seed, depth + 1) : json_null();
    }
    const json_t *c = json_object_get(s, "const");
    if (c)
        return json_deep_copy(c);
    const json_t *e = json_object_get(s, "enum");
    if (json_array_size(e))
        return json_deep_copy(json_array_get(e, 0));
    static const char *const alts[] = {"anyOf", "oneOf", "allOf"};
    for (size_t a = 0; a < sizeof alts / sizeof alts[0]; a++) {
        const json_t *list = json_object_get(s, alts[a]);
        size_t i;
        const json_t *alt;
        json_array_foreach(list, i, alt)
        {
            char t[16];
            if (!json_object_get(alt, "type") || strcmp(type_of(alt, t, sizeof t), "null") != 0)
                return value_of(root, alt, seed, depth + 1);
        }
    }
    char t[16];
    type_of(s, t, sizeof t);
    if (strcmp(t, "object") == 0)
        return object_value(root, s, seed, depth);
    if (strcmp(t, "array") == 0) {
        json_t *arr = json_array();
        json_int_t n = json_integer_value(json_object_get(s, "minItems"));
        const json_t *maxj = json_object_get(s, "maxItems");
        if (n < 1)
            n = 1;
        if (json_is_integer(maxj) && n > json_integer_value(maxj))
            n = json_integer_value(maxj);
        if (n > MAX_ITEMS && !json_is_integer(json_object_get(s, "minItems")))
            n = MAX_ITEMS;
        for (json_int_t i = 0; i < n && i < 64; i++)
            json_array_append_new(arr, value_of(root, json_object_get(s, "items"),
                                                skiff_sim_mix(seed + (uint64_t)i), depth + 1));
        return arr;
    }
    if (strcmp(t, "integer") == 0)
        return json_integer((json_int_t)clamp(s, (double)(1 + skiff_sim_mix(seed) % 9)));
    if (strcmp(t, "number") == 0)
        return json_real(clamp(s, 1.5));
    if (strcmp(t, "boolean") == 0)
        return json_true();
    if (strcmp(t, "null") == 0)
        return json_null();
    return string_value(s, seed);
}

json_t *
skiff_sim_schema_value(const json_t *schema, uint64_t seed)
{
    return value_of(schema, schema, seed, 0);
}

/* ---- the plan ------------------------------------------------------------------------- */

/* The text parts of the last Content if it is the user's, joined (borrowed into buf). */
static const json_t *
last_user(const json_t *contents)
{
    const json_t *c = json_array_get(contents, json_array_size(contents) - 1);
    return c && is_user(c) ? c : NULL;
}

static int
mentions(const json_t *content, const char *name)
{
    size_t i;
    const json_t *part;
    json_array_foreach(json_object_get(content, "parts"), i, part)
    {
        const char *t = json_string_value(json_object_get(part, "text"));
        if (t && strstr(t, name))
            return 1;
    }
    return 0;
}

static int
allowed(const json_t *names, const char *name)
{
    if (!json_array_size(names))
        return 1;
    size_t i;
    const json_t *n;
    json_array_foreach(names, i, n) if (json_string_value(n) &&
                                        strcmp(json_string_value(n), name) == 0) return 1;
    return 0;
}

/* The schema of a declaration's parameters, whichever way it was given. */
static const json_t *
params_of(const json_t *decl)
{
    const json_t *s = skiff_sim_field(decl, "parametersJsonSchema");
    return s ? s : json_object_get(decl, "parameters");
}

static json_t *
plan_calls(const json_t *body, const json_t *user, uint64_t seed)
{
    const json_t *fcc =
        skiff_sim_field(skiff_sim_field(body, "toolConfig"), "functionCallingConfig");
    const char *mode = json_string_value(json_object_get(fcc, "mode"));
    if (mode && strcmp(mode, "NONE") == 0)
        return NULL;
    int any = mode && strcmp(mode, "ANY") == 0;
    const json_t *names = skiff_sim_field(fcc, "allowedFunctionNames");
    json_t *calls = json_array();
    const json_t *first = NULL;
    size_t i, k;
    const json_t *tool, *decl;
    json_array_foreach(skiff_sim_field(body, "tools"), i, tool)
        json_array_foreach(skiff_sim_field(tool, "functionDeclarations"), k, decl)
    {
        const char *name = json_string_value(json_object_get(decl, "name"));
        if (!name || !allowed(names, name))
            continue;
        if (!first)
            first = decl;
        if (mentions(user, name))
            json_array_append_new(
                calls, json_pack("{s:s,s:o}", "name", name, "args",
                                 skiff_sim_schema_value(params_of(decl), seed + i * 64 + k)));
    }
    if (!json_array_size(calls) && any && first)
        json_array_append_new(
            calls, json_pack("{s:s,s:o}", "name", json_string_value(json_object_get(first, "name")),
                             "args", skiff_sim_schema_value(params_of(first), seed)));
    if (!json_array_size(calls)) {
        json_decref(calls);
        return NULL;
    }
    return calls;
}

/* "Simulated answer using the results of f, g: {...}; {...}." */
static char *
use_results(const json_t *user)
{
    json_t *names = json_array(), *results = json_array();
    size_t i;
    const json_t *part;
    json_array_foreach(json_object_get(user, "parts"), i, part)
    {
        const json_t *fr = skiff_sim_field(part, "functionResponse");
        if (!fr)
            continue;
        json_array_append(names, json_object_get(fr, "name"));
        json_array_append(results, json_object_get(fr, "response"));
    }
    char *n = json_dumps(names, JSON_COMPACT), *r = json_dumps(results, JSON_COMPACT);
    char *out = NULL;
    if (n && r) {
        size_t len = strlen(n) + strlen(r) + 64;
        out = malloc(len);
        if (out)
            snprintf(out, len, "Simulated answer using the results of %s: %s.", n, r);
    }
    free(n);
    free(r);
    json_decref(names);
    json_decref(results);
    return out;
}

static char *
structured(const json_t *body, uint64_t seed)
{
    const json_t *gc = skiff_sim_field(body, "generationConfig");
    const char *mime = json_string_value(skiff_sim_field(gc, "responseMimeType"));
    if (!mime || (strcmp(mime, "application/json") != 0 && strcmp(mime, "text/x.enum") != 0))
        return NULL;
    const json_t *schema = skiff_sim_field(gc, "responseJsonSchema");
    if (!schema)
        schema = json_object_get(gc, "_responseJsonSchema");
    if (!schema)
        schema = skiff_sim_field(gc, "responseSchema");
    json_t *v = schema ? skiff_sim_schema_value(schema, seed)
                       : json_pack("{s:s}", "answer", "Simulated answer.");
    char *out;
    if (strcmp(mime, "text/x.enum") == 0)
        out = strdup(json_is_string(v) ? json_string_value(v) : "");
    else
        out = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_PRESERVE_ORDER);
    json_decref(v);
    return out;
}

void
skiff_sim_tools_plan(const json_t *body, uint64_t seed, int thinks, struct skiff_sim_ask *out)
{
    memset(out, 0, sizeof *out);
    const json_t *user = last_user(skiff_sim_field(body, "contents"));
    if (user && !starts_turn(user) && json_array_size(json_object_get(user, "parts"))) {
        out->text = use_results(user);
        return;
    }
    if (user)
        out->calls = plan_calls(body, user, seed);
    if (out->calls) {
        out->sign = thinks;
        return;
    }
    out->text = structured(body, seed);
}

void
skiff_sim_ask_release(struct skiff_sim_ask *a)
{
    json_decref(a->calls);
    free(a->text);
    a->calls = NULL;
    a->text = NULL;
}
