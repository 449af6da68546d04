/*
 * The one walker of the config loader: messages that say "file:line: key.path: what is
 * wrong", the dotted key path kept beside the walk, did-you-mean for unknown keys, the scalar
 * readers, and cfg_walk, which reads a YAML mapping against a table of fields (loader.h).
 */
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/editdist.h"
#include "base/url.h"
#include "config/loader.h"

/* Messages. */

static int vfail_line(struct loader *ld, unsigned long line, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

/* Writes "<file>:<line>: <path>: <message>", or without the path at the top level. */
static int
vfail_line(struct loader *ld, unsigned long line, const char *fmt, va_list ap)
{
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    if (!ld->err || ld->errlen == 0)
        return -1;
    if (ld->pathlen)
        snprintf(ld->err, ld->errlen, "%s:%lu: %s: %s", ld->file, line, ld->path, msg);
    else
        snprintf(ld->err, ld->errlen, "%s:%lu: %s", ld->file, line, msg);
    return -1;
}

int
cfg_fail_line(struct loader *ld, unsigned long line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfail_line(ld, line, fmt, ap);
    va_end(ap);
    return -1;
}

/* Fails at node's line (libyaml counts lines from 0; editors count from 1). */
int
cfg_fail_at(struct loader *ld, const yaml_node_t *node, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfail_line(ld, (unsigned long)node->start_mark.line + 1, fmt, ap);
    va_end(ap);
    return -1;
}

/* Writes a message that carries its own prefix (an environment variable, or none). */
int
cfg_fail(struct loader *ld, const char *fmt, ...)
{
    if (!ld->err || ld->errlen == 0)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ld->err, ld->errlen, fmt, ap);
    va_end(ap);
    return -1;
}

/*
 * Quotes a non-secret value for a message: escaped, so a stray newline cannot split the
 * one-line message, and cut short, so a pasted blob cannot drown it.
 */
const char *
cfg_quote_with(const char *s, char q, char *buf, size_t n)
{
    static const size_t shown = 48;
    size_t o = 0, i;
    buf[o++] = q;
    for (i = 0; i < shown && s[i] && o + 6 < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == (unsigned char)q || c == '\\') {
            buf[o++] = '\\';
            buf[o++] = (char)c;
        } else if (c < 0x20 || c == 0x7f) {
            o += (size_t)snprintf(buf + o, n - o, "\\x%02x", c);
        } else {
            buf[o++] = (char)c;
        }
    }
    if (s[i] && o + 5 < n) {
        memcpy(buf + o, "...", 3);
        o += 3;
    }
    buf[o++] = q;
    buf[o] = '\0';
    return buf;
}

const char *
cfg_quote(const char *s, char *buf, size_t n)
{
    return cfg_quote_with(s, '"', buf, n);
}

const char *
cfg_quote_url(const char *v, char *buf, size_t n)
{
    char shown[256];
    return cfg_quote(skiff_url_redact(v, shown, sizeof shown), buf, n);
}

int
cfg_is_null(const yaml_node_t *n)
{
    if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return 0;
    const char *v = (const char *)n->data.scalar.value;
    return !*v || !strcmp(v, "~") || !strcmp(v, "null") || !strcmp(v, "Null") || !strcmp(v, "NULL");
}

/* Says what a node is, for "expected X, got Y": the quoted value unless it may be a secret. */
static const char *
describe(const struct loader *ld, const yaml_node_t *n, char *buf, size_t len)
{
    if (n->type == YAML_MAPPING_NODE)
        return "a mapping";
    if (n->type == YAML_SEQUENCE_NODE)
        return "a list";
    if (cfg_is_null(n))
        return "an empty value";
    if (ld->secret)
        return "a string";
    return cfg_quote((const char *)n->data.scalar.value, buf, len);
}

int
cfg_fail_type(struct loader *ld, const yaml_node_t *n, const char *expected)
{
    char buf[128];
    return cfg_fail_at(ld, n, "expected %s, got %s", expected, describe(ld, n, buf, sizeof buf));
}

int
cfg_fail_nomem(struct loader *ld)
{
    return cfg_fail(ld, "out of memory while loading the configuration");
}

int
cfg_fail_item(struct loader *ld, const yaml_node_t *item, const yaml_node_t *value,
              const char *field, const char *msg)
{
    if (!value)
        return cfg_fail_at(ld, item, "%s", msg);
    size_t saved = cfg_path_push_key(ld, field);
    cfg_fail_at(ld, value, "%s", msg);
    cfg_path_pop(ld, saved);
    return -1;
}

/* The key path. */

/* Appends to the key path (cut short if it would overflow) and returns the length to pop to. */
static size_t
path_append(struct loader *ld, const char *sep, const char *text)
{
    size_t saved = ld->pathlen;
    size_t room = sizeof ld->path - ld->pathlen;
    int n = snprintf(ld->path + ld->pathlen, room, "%s%s", sep, text);
    if (n > 0)
        ld->pathlen += (size_t)n < room ? (size_t)n : room - 1;
    return saved;
}

size_t
cfg_path_push_key(struct loader *ld, const char *key)
{
    return path_append(ld, ld->pathlen ? "." : "", key);
}

size_t
cfg_path_push_index(struct loader *ld, size_t index)
{
    char buf[32];
    snprintf(buf, sizeof buf, "[%zu]", index);
    return path_append(ld, "", buf);
}

void
cfg_path_pop(struct loader *ld, size_t saved)
{
    ld->pathlen = saved;
    ld->path[saved] = '\0';
}

/* Suggestions for unknown keys. */

/* The field of sec closest to name, or NULL when none is close enough to be a likely typo. */
static const char *
closest(const char *name, const struct cfg_section *sec)
{
    const char *best = NULL;
    size_t bestd = SIZE_MAX;
    for (size_t i = 0; i < sec->n; i++) {
        const char *known = sec->fields[i].name;
        size_t d = skiff_edit_distance(name, strlen(name), known, strlen(known));
        if (d < bestd) {
            bestd = d;
            best = known;
        }
    }
    /* One edit per four letters, at most three: "retyr" finds retry, "url" finds nothing. */
    size_t allowed = 1 + (best ? strlen(best) / 4 : 0);
    if (allowed > 3)
        allowed = 3;
    return bestd <= allowed ? best : NULL;
}

static int
fail_unknown(struct loader *ld, const yaml_node_t *key, const char *name,
             const struct cfg_section *sec)
{
    char list[256];
    size_t o = 0;
    list[0] = '\0';
    for (size_t i = 0; i < sec->n && o < sizeof list; i++)
        o +=
            (size_t)snprintf(list + o, sizeof list - o, "%s%s", i ? ", " : "", sec->fields[i].name);

    const char *hint = closest(name, sec);
    if (ld->secret) {
        /* The unknown key may be a token pasted in the wrong place: do not repeat it. */
        if (hint)
            return cfg_fail_at(
                ld, key, "unknown key (not shown: it may be a secret); did you mean '%s'?", hint);
        return cfg_fail_at(
            ld, key, "unknown key (not shown: it may be a secret); expected one of: %s", list);
    }
    char buf[128];
    if (hint)
        return cfg_fail_at(ld, key, "unknown key %s; did you mean '%s'?",
                           cfg_quote_with(name, '\'', buf, sizeof buf), hint);
    return cfg_fail_at(ld, key, "unknown key %s; expected one of: %s",
                       cfg_quote_with(name, '\'', buf, sizeof buf), list);
}

/* Nodes and scalars. */

static yaml_node_t *
node_at(const struct loader *ld, yaml_node_item_t index)
{
    return yaml_document_get_node(ld->doc, index);
}

const char *
cfg_scalar(const yaml_node_t *n)
{
    return (const char *)n->data.scalar.value;
}

size_t
cfg_seq_len(const yaml_node_t *n)
{
    return (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
}

yaml_node_t *
cfg_seq_item(const struct loader *ld, const yaml_node_t *n, size_t i)
{
    return node_at(ld, n->data.sequence.items.start[i]);
}

size_t
cfg_map_len(const yaml_node_t *n)
{
    return (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
}

int
cfg_get_string(struct loader *ld, const yaml_node_t *n, const char *expected, const char **out)
{
    if (n->type != YAML_SCALAR_NODE)
        return cfg_fail_type(ld, n, expected);
    if (cfg_is_null(n)) {
        *out = "";
        return 0;
    }
    /* A double-quoted "\0" would cut the C string short and silently change the value. */
    if (strlen(cfg_scalar(n)) != n->data.scalar.length)
        return cfg_fail_at(ld, n, "contains a NUL character");
    *out = cfg_scalar(n);
    return 0;
}

int
cfg_parse_integer(const char *s, long long *out)
{
    int neg = 0;
    long long v = 0;
    if (*s == '+' || *s == '-')
        neg = *s++ == '-';
    if (!*s)
        return -1;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        int d = *s - '0';
        if (v > (LLONG_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *out = neg ? -v : v;
    return 0;
}

int
cfg_get_int(struct loader *ld, const yaml_node_t *n, long long min, long long max, const char *rule,
            long long *out)
{
    char buf[128];
    long long v;
    if (n->type != YAML_SCALAR_NODE || cfg_is_null(n) || cfg_parse_integer(cfg_scalar(n), &v) < 0 ||
        v < min || v > max)
        return cfg_fail_at(ld, n, "must be %s, got %s", rule, describe(ld, n, buf, sizeof buf));
    *out = v;
    return 0;
}

/* Reads on/off (also true/false, yes/no): YAML 1.1 reads these as booleans, libyaml leaves
 * them as words, and people write all three. */
int
cfg_get_switch(struct loader *ld, const yaml_node_t *n, int *out)
{
    static const char *const on[] = {"on", "true", "yes", NULL};
    static const char *const off[] = {"off", "false", "no", NULL};
    char buf[128];
    if (n->type == YAML_SCALAR_NODE && !cfg_is_null(n)) {
        for (size_t i = 0; on[i]; i++) {
            if (!strcasecmp(cfg_scalar(n), on[i])) {
                *out = 1;
                return 0;
            }
            if (!strcasecmp(cfg_scalar(n), off[i])) {
                *out = 0;
                return 0;
            }
        }
    }
    return cfg_fail_at(ld, n, "must be on or off, got %s", describe(ld, n, buf, sizeof buf));
}

int
cfg_set_stringn(struct loader *ld, char **field, const char *v, size_t len, int empty_null)
{
    char *copy = NULL;
    if (len || !empty_null) {
        copy = strndup(v, len);
        if (!copy)
            return cfg_fail_nomem(ld);
    }
    free(*field);
    *field = copy;
    return 0;
}

int
cfg_set_string(struct loader *ld, char **field, const char *v, int empty_null)
{
    return cfg_set_stringn(ld, field, v, strlen(v), empty_null);
}

/* Mappings. */

size_t
cfg_index(const struct cfg_section *sec, const char *name)
{
    for (size_t i = 0; i < sec->n; i++)
        if (!strcmp(sec->fields[i].name, name))
            return i;
    return sec->n;
}

int
cfg_each_pair(struct loader *ld, const yaml_node_t *map, const struct cfg_section *sec,
              cfg_pair_fn *fn, void *ctx)
{
    if (cfg_is_null(map))
        return 0;
    if (map->type != YAML_MAPPING_NODE)
        return cfg_fail_type(ld, map, "a mapping");
    yaml_node_pair_t *start = map->data.mapping.pairs.start;
    yaml_node_pair_t *top = map->data.mapping.pairs.top;
    for (yaml_node_pair_t *p = start; p < top; p++) {
        yaml_node_t *k = node_at(ld, p->key), *v = node_at(ld, p->value);
        char buf[128];
        if (k->type != YAML_SCALAR_NODE || cfg_is_null(k))
            return cfg_fail_at(ld, k, "expected a key name, got %s",
                               describe(ld, k, buf, sizeof buf));
        const char *name = cfg_scalar(k);
        if (strlen(name) != k->data.scalar.length)
            return cfg_fail_at(ld, k, "a key name contains a NUL character");
        int which = -1;
        if (sec) {
            size_t i = cfg_index(sec, name);
            if (i == sec->n)
                return fail_unknown(ld, k, name, sec);
            which = (int)i;
        }
        for (yaml_node_pair_t *q = start; q < p; q++) {
            yaml_node_t *qk = node_at(ld, q->key);
            if (qk->type == YAML_SCALAR_NODE && !strcmp(cfg_scalar(qk), name))
                return cfg_fail_at(ld, k, "%s is given twice (first on line %lu)",
                                   cfg_quote_with(name, '\'', buf, sizeof buf),
                                   (unsigned long)qk->start_mark.line + 1);
        }
        size_t saved = cfg_path_push_key(ld, name);
        int rc = fn(ld, which, k, v, ctx);
        cfg_path_pop(ld, saved);
        if (rc < 0)
            return -1;
    }
    return 0;
}

const struct cfg_field *
cfg_find(const struct cfg_section *sec, const char *path)
{
    for (;;) {
        const char *dot = strchr(path, '.');
        size_t n = dot ? (size_t)(dot - path) : strlen(path);
        const struct cfg_field *f = NULL;
        for (size_t i = 0; i < sec->n && !f; i++)
            if (strlen(sec->fields[i].name) == n && !strncmp(sec->fields[i].name, path, n))
                f = &sec->fields[i];
        if (!f || !dot)
            return f;
        if (f->type != CFG_SECTION)
            return NULL;
        sec = f->section;
        path = dot + 1;
    }
}

/* The walker. */

#define AT(base, off, type) ((type *)(void *)((char *)(base) + (off)))

/* Frees a list of strings the config owns (forward_headers, cors.origins) and empties it. */
static void
free_list(char ***list, size_t *n)
{
    for (size_t i = 0; i < *n; i++)
        free((*list)[i]);
    free(*list);
    *list = NULL;
    *n = 0;
}

/* A CFG_STRING: checked, then stored as the flags say. */
static int
read_string(struct loader *ld, const struct cfg_field *f, const yaml_node_t *n, void *base)
{
    const char *v, *why;
    char buf[128];
    if (cfg_get_string(ld, n, f->rule, &v) < 0)
        return -1;
    if (f->check && (why = f->check(v))) {
        if (f->flags & CFG_HIDE)
            return cfg_fail_at(ld, n, "%s", why);
        return cfg_fail_at(ld, n, "%s, got %s", why,
                           f->flags & CFG_URL ? cfg_quote_url(v, buf, sizeof buf)
                                              : cfg_quote(v, buf, sizeof buf));
    }
    return cfg_store_string(ld, f, v, base);
}

int
cfg_store_string(struct loader *ld, const struct cfg_field *f, const char *v, void *base)
{
    size_t len = strlen(v);
    if (f->flags & CFG_TRIM_SLASH)
        while (len && v[len - 1] == '/')
            len--;
    return cfg_set_stringn(ld, AT(base, f->offset, char *), v, len,
                           (f->flags & CFG_EMPTY_NULL) != 0);
}

/* A CFG_LIST: a YAML sequence of strings, each checked; "<value> <why>" on a bad one. */
static int
read_list(struct loader *ld, const struct cfg_field *f, const yaml_node_t *n, void *base)
{
    char ***list = AT(base, f->offset, char **);
    size_t *count_out = AT(base, f->count_offset, size_t);
    free_list(list, count_out);
    if (cfg_is_null(n))
        return 0;
    if (n->type != YAML_SEQUENCE_NODE)
        return cfg_fail_type(ld, n, f->rule);
    size_t count = cfg_seq_len(n);
    if (count && !(*list = calloc(count, sizeof **list)))
        return cfg_fail_nomem(ld);
    for (size_t i = 0; i < count; i++) {
        yaml_node_t *item = cfg_seq_item(ld, n, i);
        size_t saved = cfg_path_push_index(ld, i);
        const char *v, *why;
        char buf[96];
        int rc = cfg_get_string(ld, item, f->item, &v);
        if (rc == 0 && (why = f->check(v)))
            rc = cfg_fail_at(ld, item, "%s %s", cfg_quote(v, buf, sizeof buf), why);
        if (rc == 0) {
            rc = cfg_set_string(ld, &(*list)[i], v, 0);
            if (rc == 0)
                *count_out = i + 1;
        }
        cfg_path_pop(ld, saved);
        if (rc < 0)
            return -1;
    }
    return 0;
}

static int
read_field(struct loader *ld, const struct cfg_field *f, const yaml_node_t *n, void *base)
{
    long long v;
    switch (f->type) {
    case CFG_INT:
        if (cfg_get_int(ld, n, f->min, f->max, f->rule, &v) < 0)
            return -1;
        *AT(base, f->offset, int) = (int)v;
        return 0;
    case CFG_SIZE:
        if (cfg_get_int(ld, n, f->min, f->max, f->rule, &v) < 0)
            return -1;
        *AT(base, f->offset, size_t) = (size_t)v;
        return 0;
    case CFG_SWITCH:
        return cfg_get_switch(ld, n, AT(base, f->offset, int));
    case CFG_STRING:
        return read_string(ld, f, n, base);
    case CFG_LIST:
        return read_list(ld, f, n, base);
    case CFG_SECTION:
        return cfg_walk(ld, n, f->section, base);
    case CFG_READ:
        return f->read(ld, n, base);
    }
    return -1;
}

struct walk {
    const struct cfg_section *sec;
    void *base;
    yaml_node_t **seen;
};

static int
walk_pair(struct loader *ld, int which, const yaml_node_t *key, const yaml_node_t *value, void *ctx)
{
    struct walk *w = ctx;
    w->seen[which] = (yaml_node_t *)value;
    return read_field(ld, &w->sec->fields[which], value, w->base);
}

int
cfg_walk_nodes(struct loader *ld, const yaml_node_t *map, const struct cfg_section *sec, void *base,
               yaml_node_t **seen)
{
    for (size_t i = 0; i < sec->n; i++)
        seen[i] = NULL;
    struct walk w = {sec, base, seen};
    if (cfg_each_pair(ld, map, sec, walk_pair, &w) < 0)
        return -1;
    return sec->after ? sec->after(ld, base, seen) : 0;
}

int
cfg_walk(struct loader *ld, const yaml_node_t *map, const struct cfg_section *sec, void *base)
{
    /* The longest table (the top level) has under 32 fields; the bound is checked here. */
    yaml_node_t *seen[32];
    if (sec->n > sizeof seen / sizeof seen[0])
        return cfg_fail(ld, "internal error: a config table with more than 32 fields");
    return cfg_walk_nodes(ld, map, sec, base, seen);
}

int
cfg_defaults(struct loader *ld, const struct cfg_section *sec, void *base)
{
    for (size_t i = 0; i < sec->n; i++) {
        const struct cfg_field *f = &sec->fields[i];
        switch (f->type) {
        case CFG_INT:
        case CFG_SWITCH:
            *AT(base, f->offset, int) = (int)f->def;
            break;
        case CFG_SIZE:
            *AT(base, f->offset, size_t) = (size_t)f->def;
            break;
        case CFG_STRING:
            if (f->def_str && cfg_set_string(ld, AT(base, f->offset, char *), f->def_str,
                                             (f->flags & CFG_EMPTY_NULL) != 0) < 0)
                return -1;
            break;
        case CFG_SECTION:
            if (cfg_defaults(ld, f->section, base) < 0)
                return -1;
            break;
        case CFG_LIST:
        case CFG_READ:
            break;
        }
    }
    return 0;
}

void
cfg_release(const struct cfg_section *sec, void *base)
{
    for (size_t i = 0; i < sec->n; i++) {
        const struct cfg_field *f = &sec->fields[i];
        if (f->type == CFG_STRING) {
            char **s = AT(base, f->offset, char *);
            free(*s);
            *s = NULL;
        } else if (f->type == CFG_LIST) {
            free_list(AT(base, f->offset, char **), AT(base, f->count_offset, size_t));
        } else if (f->type == CFG_SECTION) {
            cfg_release(f->section, base);
        }
    }
}
