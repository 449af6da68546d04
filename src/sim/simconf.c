#include "sim/simconf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "base/err.h"
#include "sim/catalog.h"

const char skiff_sim_usage[] =
    "usage: skiff sim [--listen HOST:PORT] [--keys LIST] [--rpm LIST] [--tpm LIST] [--rpd LIST]\n"
    "                 [--faults SPEC] [--latency-ms A[:B]] [--chunk-ms A[:B]]\n"
    "                 [--think-ms A[:B]] [--seed N] [--batch-ms N] [--live-session-ms N]\n"
    "                 [--live-goaway-ms N] [--config sim.yaml]\n"
    "  --keys AIzaA,AIzaB=region_blocked,AIzaC=denied,AIza*   (default: AIza*)\n"
    "  --rpm 10,gemini-2.5-pro:5   --rpd unlimited   (0: no quota at all)\n"
    "  --faults 503=0.3,500=0.05,504=0.01,reset=0.02,hang=0.01,gemini-2.5-pro:503=0.5\n";

static const char *const names[] = {
    "listen",         "keys",     "rpm",      "tpm",  "rpd",      "faults",
    "latency-ms",     "chunk-ms", "think-ms", "seed", "batch-ms", "live-session-ms",
    "live-goaway-ms", NULL};

#define FAIL(...)                                                                                  \
    do {                                                                                           \
        snprintf(err, errlen, __VA_ARGS__);                                                        \
        return SKIFF_EINVAL;                                                                       \
    } while (0)

static int
parse_long(const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

static int
set_listen(struct skiff_sim_conf *c, const char *where, const char *v, char *err, size_t errlen)
{
    const char *colon = strrchr(v, ':');
    if (!colon || colon == v)
        FAIL("%s: \"%s\" is not HOST:PORT", where, v);
    const char *host = v;
    size_t hlen = (size_t)(colon - v);
    /* [::1]:8090 */
    if (host[0] == '[' && hlen >= 2 && host[hlen - 1] == ']') {
        host++;
        hlen -= 2;
    }
    long port;
    if (hlen == 0 || hlen >= sizeof c->host || parse_long(colon + 1, 0, 65535, &port) < 0)
        FAIL("%s: \"%s\" is not HOST:PORT with a port in 0-65535", where, v);
    memcpy(c->host, host, hlen);
    c->host[hlen] = '\0';
    c->port = (uint16_t)port;
    return 0;
}

static void
free_keys(struct skiff_sim_conf *c)
{
    for (size_t i = 0; i < c->nkeys; i++)
        free(c->keys[i].key);
    free(c->keys);
    c->keys = NULL;
    c->nkeys = 0;
}

static int
add_key(struct skiff_sim_conf *c, const char *key, size_t len, int prefix,
        enum skiff_sim_key_kind kind)
{
    struct skiff_sim_key_rule *k = realloc(c->keys, (c->nkeys + 1) * sizeof *k);
    if (!k)
        return SKIFF_ENOMEM;
    c->keys = k;
    k[c->nkeys].key = strndup(key, len);
    if (!k[c->nkeys].key)
        return SKIFF_ENOMEM;
    k[c->nkeys].prefix = prefix;
    k[c->nkeys].kind = kind;
    c->nkeys++;
    return 0;
}

/* Calls fn on each trimmed, non-empty comma-separated item of list. */
typedef int item_cb(struct skiff_sim_conf *c, int arg, const char *where, const char *item,
                    size_t len, char *err, size_t errlen);

static int
each_item(struct skiff_sim_conf *c, int arg, const char *where, const char *list, item_cb *fn,
          char *err, size_t errlen)
{
    const char *p = list;
    for (;;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        while (len && *p == ' ') {
            p++;
            len--;
        }
        while (len && p[len - 1] == ' ')
            len--;
        if (len) {
            int rc = fn(c, arg, where, p, len, err, errlen);
            if (rc)
                return rc;
        }
        if (!end)
            return 0;
        p = end + 1;
    }
}

static int
key_item(struct skiff_sim_conf *c, int arg, const char *where, const char *item, size_t len,
         char *err, size_t errlen)
{
    (void)arg;
    enum skiff_sim_key_kind kind = SKIFF_SIM_KEY_VALID;
    const char *eq = memchr(item, '=', len);
    size_t klen = eq ? (size_t)(eq - item) : len;
    if (eq) {
        size_t vlen = len - klen - 1;
        if (vlen == 14 && memcmp(eq + 1, "region_blocked", 14) == 0)
            kind = SKIFF_SIM_KEY_REGION_BLOCKED;
        else if (vlen == 6 && memcmp(eq + 1, "denied", 6) == 0)
            kind = SKIFF_SIM_KEY_DENIED;
        else if (vlen == 5 && memcmp(eq + 1, "valid", 5) == 0)
            kind = SKIFF_SIM_KEY_VALID;
        else
            FAIL("%s: \"%.*s\": use KEY, KEY=region_blocked or KEY=denied", where, (int)len, item);
    }
    int prefix = klen > 0 && item[klen - 1] == '*';
    if (prefix)
        klen--;
    if (klen == 0 && !prefix)
        FAIL("%s: empty key in \"%.*s\"", where, (int)len, item);
    if (add_key(c, item, klen, prefix, kind))
        FAIL("%s: out of memory", where);
    return 0;
}

static int
limit_item(struct skiff_sim_conf *c, int which, const char *where, const char *item, size_t len,
           char *err, size_t errlen)
{
    const char *colon = memchr(item, ':', len);
    char model[128] = "";
    const char *num = item;
    size_t nlen = len;
    if (colon) {
        size_t mlen = (size_t)(colon - item);
        if (!skiff_sim_catalog_find(item, mlen))
            FAIL("%s: unknown model \"%.*s\"", where, (int)mlen, item);
        memcpy(model, item, mlen);
        model[mlen] = '\0';
        num = colon + 1;
        nlen = len - mlen - 1;
    }
    char v[32];
    long value;
    if (nlen == 0 || nlen >= sizeof v)
        FAIL("%s: bad limit in \"%.*s\"", where, (int)len, item);
    memcpy(v, num, nlen);
    v[nlen] = '\0';
    if (strcmp(v, "unlimited") == 0)
        value = SKIFF_SIM_UNLIMITED;
    else if (parse_long(v, 0, 1000000000000L, &value) < 0)
        FAIL("%s: \"%s\" is not a count, 0 or \"unlimited\"", where, v);
    struct skiff_sim_limit_rule *r = realloc(c->limits[which], (c->nlimits[which] + 1) * sizeof *r);
    if (!r)
        FAIL("%s: out of memory", where);
    c->limits[which] = r;
    r[c->nlimits[which]].model = model[0] ? strdup(model) : NULL;
    r[c->nlimits[which]].value = value;
    c->nlimits[which]++;
    return 0;
}

static int
parse_range(const char *where, const char *v, long *lo, long *hi, char *err, size_t errlen)
{
    char a[32];
    const char *colon = strchr(v, ':');
    size_t alen = colon ? (size_t)(colon - v) : strlen(v);
    if (alen == 0 || alen >= sizeof a)
        FAIL("%s: \"%s\" is not A or A:B milliseconds", where, v);
    memcpy(a, v, alen);
    a[alen] = '\0';
    if (parse_long(a, 0, 600000, lo) < 0 ||
        (colon ? parse_long(colon + 1, 0, 600000, hi) : (*hi = *lo, 0)) < 0 || *hi < *lo)
        FAIL("%s: \"%s\" is not A or A:B milliseconds (0-600000, A <= B)", where, v);
    return 0;
}

/* Applies one setting; where names it for messages ("--rpm" or "sim.yaml: rpm"). */
static int
apply(struct skiff_sim_conf *c, const char *name, const char *where, const char *v, char *err,
      size_t errlen)
{
    if (strcmp(name, "listen") == 0)
        return set_listen(c, where, v, err, errlen);
    if (strcmp(name, "keys") == 0) {
        free_keys(c);
        int rc = each_item(c, 0, where, v, key_item, err, errlen);
        if (!rc && c->nkeys == 0)
            FAIL("%s: no keys given", where);
        return rc;
    }
    if (strcmp(name, "rpm") == 0 || strcmp(name, "tpm") == 0 || strcmp(name, "rpd") == 0) {
        int which = name[0] == 'r' && name[2] == 'm' ? 0 : name[0] == 't' ? 1 : 2;
        for (size_t i = 0; i < c->nlimits[which]; i++)
            free(c->limits[which][i].model);
        free(c->limits[which]);
        c->limits[which] = NULL;
        c->nlimits[which] = 0;
        return each_item(c, which, where, v, limit_item, err, errlen);
    }
    if (strcmp(name, "faults") == 0) {
        char ferr[256];
        skiff_sim_faults_release(&c->faults);
        if (skiff_sim_faults_parse(&c->faults, v, ferr, sizeof ferr) != 0) {
            /* The faults module names "--faults"; say where it really came from. */
            const char *msg = strncmp(ferr, "--faults: ", 10) == 0 ? ferr + 10 : ferr;
            FAIL("%s: %s", where, msg);
        }
        return 0;
    }
    if (strcmp(name, "latency-ms") == 0)
        return parse_range(where, v, &c->latency_min, &c->latency_max, err, errlen);
    if (strcmp(name, "chunk-ms") == 0)
        return parse_range(where, v, &c->chunk_min, &c->chunk_max, err, errlen);
    if (strcmp(name, "think-ms") == 0)
        return parse_range(where, v, &c->think_min, &c->think_max, err, errlen);
    if (strcmp(name, "batch-ms") == 0) {
        if (parse_long(v, 0, 86400000L, &c->batch_ms) != 0)
            FAIL("%s: \"%s\" is not a delay in ms (0 to 86400000)", where, v);
        return 0;
    }
    if (strcmp(name, "live-session-ms") == 0 || strcmp(name, "live-goaway-ms") == 0) {
        long *to = name[5] == 's' ? &c->live_session_ms : &c->live_goaway_ms;
        if (parse_long(v, 0, 86400000L, to) != 0)
            FAIL("%s: \"%s\" is not a time in ms (0 to 86400000)", where, v);
        return 0;
    }
    if (strcmp(name, "seed") == 0) {
        char *end;
        errno = 0;
        unsigned long long s = strtoull(v, &end, 0);
        if (errno || end == v || *end || v[0] == '-')
            FAIL("%s: \"%s\" is not an unsigned integer", where, v);
        c->seed = s;
        c->seed_set = 1;
        return 0;
    }
    FAIL("%s: unknown setting", where);
}

static int
known(const char *name)
{
    for (const char *const *n = names; *n; n++)
        if (strcmp(*n, name) == 0)
            return 1;
    return 0;
}

/* ---- YAML ---- */

/*
 * Reads a flat mapping of known names to scalars or sequences of scalars (joined with
 * commas). Errors name the file, the line and the key.
 */
static int
load_yaml(struct skiff_sim_conf *c, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f)
        FAIL("--config: cannot open %s: %s", path, strerror(errno));
    yaml_parser_t p;
    yaml_document_t doc;
    int rc = 0;
    if (!yaml_parser_initialize(&p)) {
        fclose(f);
        FAIL("--config: out of memory");
    }
    yaml_parser_set_input_file(&p, f);
    if (!yaml_parser_load(&p, &doc)) {
        snprintf(err, errlen, "%s:%zu: %s", path, p.problem_mark.line + 1,
                 p.problem ? p.problem : "YAML syntax error");
        yaml_parser_delete(&p);
        fclose(f);
        return SKIFF_EINVAL;
    }
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (root && root->type != YAML_MAPPING_NODE) {
        snprintf(err, errlen, "%s:%zu: the file must be a mapping of settings", path,
                 root->start_mark.line + 1);
        rc = SKIFF_EINVAL;
    }
    for (yaml_node_pair_t *pair = root && !rc ? root->data.mapping.pairs.start : NULL;
         pair && pair < root->data.mapping.pairs.top && !rc; pair++) {
        yaml_node_t *k = yaml_document_get_node(&doc, pair->key);
        yaml_node_t *v = yaml_document_get_node(&doc, pair->value);
        char where[512];
        const char *name = k->type == YAML_SCALAR_NODE ? (const char *)k->data.scalar.value : "?";
        snprintf(where, sizeof where, "%s:%zu: %s", path, k->start_mark.line + 1, name);
        if (k->type != YAML_SCALAR_NODE || !known(name)) {
            snprintf(err, errlen,
                     "%s: unknown key (known: listen, keys, rpm, tpm, rpd, faults, "
                     "latency-ms, chunk-ms, think-ms, seed, batch-ms, live-session-ms, "
                     "live-goaway-ms)",
                     where);
            rc = SKIFF_EINVAL;
            break;
        }
        char value[8192] = "";
        size_t len = 0;
        if (v->type == YAML_SCALAR_NODE) {
            len = (size_t)snprintf(value, sizeof value, "%s", (const char *)v->data.scalar.value);
        } else if (v->type == YAML_SEQUENCE_NODE) {
            for (yaml_node_item_t *it = v->data.sequence.items.start;
                 it < v->data.sequence.items.top && len < sizeof value; it++) {
                yaml_node_t *n = yaml_document_get_node(&doc, *it);
                if (n->type != YAML_SCALAR_NODE) {
                    snprintf(err, errlen, "%s: items must be scalars", where);
                    rc = SKIFF_EINVAL;
                    break;
                }
                len += (size_t)snprintf(value + len, sizeof value - len, "%s%s", len ? "," : "",
                                        (const char *)n->data.scalar.value);
            }
        } else {
            snprintf(err, errlen, "%s: must be a value or a list", where);
            rc = SKIFF_EINVAL;
        }
        if (!rc && len >= sizeof value) {
            snprintf(err, errlen, "%s: value too long", where);
            rc = SKIFF_EINVAL;
        }
        if (!rc)
            rc = apply(c, name, where, value, err, errlen);
    }
    yaml_document_delete(&doc);
    yaml_parser_delete(&p);
    fclose(f);
    return rc;
}

/* ---- flags ---- */

int
skiff_sim_conf_parse(struct skiff_sim_conf *c, int argc, char **argv, char *err, size_t errlen)
{
    memset(c, 0, sizeof *c);
    snprintf(c->host, sizeof c->host, "127.0.0.1");
    c->port = 8090;
    c->batch_ms = 2000;
    c->live_session_ms = 600000;
    c->live_goaway_ms = 5000;
    skiff_sim_faults_init(&c->faults);

    /* The file first, so flags override it wherever --config appears. */
    const char *config = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            snprintf(err, errlen, "%s", skiff_sim_usage);
            return 1;
        }
        if (strcmp(argv[i], "--config") == 0) {
            if (i + 1 >= argc)
                FAIL("--config: needs a file");
            config = argv[++i];
        } else if (strncmp(argv[i], "--config=", 9) == 0) {
            config = argv[i] + 9;
        }
    }
    if (config) {
        int rc = load_yaml(c, config, err, errlen);
        if (rc)
            return rc;
    }

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--", 2) != 0)
            FAIL("unexpected argument \"%s\"\n%s", a, skiff_sim_usage);
        char name[32];
        const char *eq = strchr(a, '=');
        size_t nlen = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
        if (nlen >= sizeof name)
            FAIL("unknown flag %s\n%s", a, skiff_sim_usage);
        memcpy(name, a + 2, nlen);
        name[nlen] = '\0';
        const char *v = eq ? eq + 1 : NULL;
        if (!v) {
            if (i + 1 >= argc)
                FAIL("--%s: needs a value", name);
            v = argv[++i];
        }
        if (strcmp(name, "config") == 0)
            continue;
        if (!known(name))
            FAIL("unknown flag --%s\n%s", name, skiff_sim_usage);
        char where[40];
        snprintf(where, sizeof where, "--%s", name);
        int rc = apply(c, name, where, v, err, errlen);
        if (rc)
            return rc;
    }

    if (c->nkeys == 0 && add_key(c, "AIza", 4, 1, SKIFF_SIM_KEY_VALID))
        FAIL("out of memory");
    return 0;
}

void
skiff_sim_conf_release(struct skiff_sim_conf *c)
{
    free_keys(c);
    for (int w = 0; w < 3; w++) {
        for (size_t i = 0; i < c->nlimits[w]; i++)
            free(c->limits[w][i].model);
        free(c->limits[w]);
        c->limits[w] = NULL;
        c->nlimits[w] = 0;
    }
    skiff_sim_faults_release(&c->faults);
}

enum skiff_sim_key_kind
skiff_sim_conf_key(const struct skiff_sim_conf *c, const char *key)
{
    if (!key)
        return SKIFF_SIM_KEY_INVALID;
    const struct skiff_sim_key_rule *best = NULL;
    size_t best_len = 0;
    for (size_t i = 0; i < c->nkeys; i++) {
        const struct skiff_sim_key_rule *r = &c->keys[i];
        if (!r->prefix && strcmp(r->key, key) == 0)
            return r->kind;
        size_t n = strlen(r->key);
        /* The longest matching prefix wins, so AIzaBAD*=denied beats AIza*. */
        if (r->prefix && strncmp(r->key, key, n) == 0 && (!best || n > best_len)) {
            best = r;
            best_len = n;
        }
    }
    return best ? best->kind : SKIFF_SIM_KEY_INVALID;
}

static long
limit_for(const struct skiff_sim_conf *c, int which, const char *model, long dflt)
{
    long all = dflt;
    for (size_t i = 0; i < c->nlimits[which]; i++) {
        const struct skiff_sim_limit_rule *r = &c->limits[which][i];
        if (r->model && strcmp(r->model, model) == 0)
            return r->value;
        if (!r->model)
            all = r->value;
    }
    return all;
}

void
skiff_sim_conf_limits(const struct skiff_sim_conf *c, const char *model,
                      struct skiff_sim_limits *out)
{
    const struct skiff_sim_model *m = skiff_sim_catalog_find(model, strlen(model));
    out->rpm = limit_for(c, 0, model, m ? m->free_rpm : SKIFF_SIM_UNLIMITED);
    out->tpm = limit_for(c, 1, model, m ? m->free_tpm : SKIFF_SIM_UNLIMITED);
    out->rpd = limit_for(c, 2, model, m ? m->free_rpd : SKIFF_SIM_UNLIMITED);
}
