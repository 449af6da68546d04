/*
 * The inside of the config loader (src/config/), not for use outside it.
 *
 * The configuration is described by tables of fields (fields.c): a name, a type, where the
 * value lives (an offset into struct skiff_config, or into a list item), its range and its
 * default. One walker (walk.c) reads a YAML mapping against such a table; the defaults and
 * the freeing of strings and lists are driven by the same tables. What a table cannot say
 * (a list of secrets, a map with free keys, "auto or a number") is a `read` function the
 * walker calls; rules that span several fields are a section's `after` hook (rules.c).
 *
 * Messages: every failure writes one line into ld->err, "<file>:<line>: <key.path>: what is
 * wrong", and returns -1. Inside a key or token item ld->secret is set, so that messages
 * describe values by their kind instead of quoting them.
 *
 * Ownership: the loader builds straight into a calloc'd struct skiff_config whose every field
 * is either NULL or owned, so the one error path is skiff_config_free. Arrays keep their count
 * equal to the number of slots filled or allocated (slots start zeroed), so a half-filled array
 * frees cleanly too.
 */
#ifndef SKIFF_CONFIG_LOADER_H
#define SKIFF_CONFIG_LOADER_H

#include <stddef.h>
#include <stdint.h>

#include <yaml.h>

#include "config/config.h"

/* A day: longer than any sane timeout, and small enough that callers may multiply freely. */
#define CFG_MAX_DURATION_MS 86400000LL
#define CFG_DURATION_RULE "a whole number of milliseconds from 1 to 86400000 (a day)"
#define CFG_MAX_MODEL_LEN 128

struct loader {
    struct skiff_config *cfg;
    const char *file;     /* the YAML file, named in messages */
    yaml_document_t *doc; /* the loaded document, while walking it */
    char path[256];       /* the dotted key path of the node being read */
    size_t pathlen;
    int secret;              /* inside a key or token item: quote no values */
    const char *listen_from; /* where listen came from, for the final check's message */
    char *err;
    size_t errlen;
};

/* The tables. */

enum cfg_type {
    CFG_INT,     /* an integer from min to max into an int */
    CFG_SIZE,    /* an integer from min to max into a size_t */
    CFG_SWITCH,  /* on/off (true/false, yes/no) into an int */
    CFG_STRING,  /* a string, checked by check, into an owned char * */
    CFG_LIST,    /* a list of strings, each checked by check, into char ** and a size_t count */
    CFG_SECTION, /* a mapping read against the table `section` */
    CFG_READ,    /* anything else: read by `read` */
};

/* CFG_STRING flags. */
#define CFG_EMPTY_NULL 1u /* "" stores NULL */
#define CFG_HIDE 2u       /* the value is never quoted back: it may carry a password */
#define CFG_URL 4u        /* quoted with its user:password@ starred out */
#define CFG_TRIM_SLASH 8u /* trailing slashes dropped (callers append "/v1beta/...") */

struct cfg_section;

struct cfg_field {
    const char *name;
    enum cfg_type type;
    size_t offset; /* of the value in the walker's base (struct skiff_config, or a list item) */
    long long min, max; /* CFG_INT, CFG_SIZE */
    /* CFG_INT, CFG_SIZE: what is allowed, in words, after "must be "; CFG_STRING: what was
     * expected, for a type error ("a URL"); CFG_LIST: what the list is ("a list of origins"). */
    const char *rule;
    long long def;       /* the default of CFG_INT, CFG_SIZE, CFG_SWITCH */
    const char *def_str; /* the default of CFG_STRING (NULL: none) */
    /* CFG_STRING, CFG_LIST items: why a value is unusable, or NULL. A string's message is
     * "<why>, got <value>" (CFG_HIDE: "<why>" alone); a list item's "<value> <why>". */
    const char *(*check)(const char *v);
    unsigned flags;                    /* CFG_STRING */
    const char *item;                  /* CFG_LIST: an item, for a type error ("an origin") */
    size_t count_offset;               /* CFG_LIST: of the size_t count */
    const struct cfg_section *section; /* CFG_SECTION */
    int (*read)(struct loader *ld, const yaml_node_t *n, void *base); /* CFG_READ */
};

struct cfg_section {
    const struct cfg_field *fields;
    size_t n;
    /* Rules across the section's fields, once it is read: seen[i] is the value node the file
     * gave fields[i], or NULL. NULL: none. */
    int (*after)(struct loader *ld, void *base, yaml_node_t *const *seen);
};

/* The top level's table (fields.c), retry's (for its rule), and the tables of list items
 * read by lists.c. */
extern const struct cfg_section cfg_root;
extern const struct cfg_section cfg_retry;
extern const struct cfg_section cfg_token_item;
extern const struct cfg_section cfg_key_item;

/* Reads map (an empty value is an empty mapping) against sec into base. */
int cfg_walk(struct loader *ld, const yaml_node_t *map, const struct cfg_section *sec, void *base);
/* The same, leaving in seen[0..sec->n) the value node the file gave each field, or NULL. */
int cfg_walk_nodes(struct loader *ld, const yaml_node_t *map, const struct cfg_section *sec,
                   void *base, yaml_node_t **seen);

/* Sets every default of sec (and its sections) in base. Returns 0, or -1 out of memory. */
int cfg_defaults(struct loader *ld, const struct cfg_section *sec, void *base);

/* Frees every CFG_STRING and CFG_LIST of sec (and its sections) in base. */
void cfg_release(const struct cfg_section *sec, void *base);

/* The field at the dotted path ("upstreams.gemini.base_url") under sec, or NULL. */
const struct cfg_field *cfg_find(const struct cfg_section *sec, const char *path);

/* Stores the checked string v in f's place in base, as f's flags say. */
int cfg_store_string(struct loader *ld, const struct cfg_field *f, const char *v, void *base);

/* The index of the field called name in sec (it must be there). */
size_t cfg_index(const struct cfg_section *sec, const char *name);

/*
 * Calls fn for each pair of map, in order, with the key's path pushed; which is the key's
 * index in sec, or -1 when sec is NULL (free keys, such as model names). A key not in sec is
 * an error with a suggestion; a key given twice is an error (YAML parsers disagree on which
 * wins, so skiff picks neither). An empty value counts as an empty mapping.
 */
typedef int cfg_pair_fn(struct loader *ld, int which, const yaml_node_t *key,
                        const yaml_node_t *value, void *ctx);
int cfg_each_pair(struct loader *ld, const yaml_node_t *map, const struct cfg_section *sec,
                  cfg_pair_fn *fn, void *ctx);

/* Messages (each returns -1). */
int cfg_fail(struct loader *ld, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int cfg_fail_line(struct loader *ld, unsigned long line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int cfg_fail_at(struct loader *ld, const yaml_node_t *node, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int cfg_fail_type(struct loader *ld, const yaml_node_t *n, const char *expected);
int cfg_fail_nomem(struct loader *ld);
/* Fails about one field of a list item: at the field's value, with its name on the path, when
 * the item spelled the field out (value not NULL); otherwise at the item itself. */
int cfg_fail_item(struct loader *ld, const yaml_node_t *item, const yaml_node_t *value,
                  const char *field, const char *msg);

/* A value quoted for a message: escaped and cut short. */
const char *cfg_quote_with(const char *s, char q, char *buf, size_t n);
const char *cfg_quote(const char *s, char *buf, size_t n);
/* A URL quoted with its credentials starred out. */
const char *cfg_quote_url(const char *v, char *buf, size_t n);

/* The key path. */
size_t cfg_path_push_key(struct loader *ld, const char *key);
size_t cfg_path_push_index(struct loader *ld, size_t index);
void cfg_path_pop(struct loader *ld, size_t saved);

/* Nodes and scalars. */
int cfg_is_null(const yaml_node_t *n);
const char *cfg_scalar(const yaml_node_t *n);
size_t cfg_seq_len(const yaml_node_t *n);
yaml_node_t *cfg_seq_item(const struct loader *ld, const yaml_node_t *n, size_t i);
size_t cfg_map_len(const yaml_node_t *n);
/* A string scalar (borrowed from the document; empty reads as ""), else a type error. */
int cfg_get_string(struct loader *ld, const yaml_node_t *n, const char *expected, const char **out);
/* Decimal only: YAML 1.1's 0x10, 0o7, 1_000 and 1e3 are more likely mistakes than intent. */
int cfg_parse_integer(const char *s, long long *out);
int cfg_get_int(struct loader *ld, const yaml_node_t *n, long long min, long long max,
                const char *rule, long long *out);
int cfg_get_switch(struct loader *ld, const yaml_node_t *n, int *out);
/* Replaces *field with a copy of v[0..len); with empty_null, "" stores NULL. */
int cfg_set_stringn(struct loader *ld, char **field, const char *v, size_t len, int empty_null);
int cfg_set_string(struct loader *ld, char **field, const char *v, int empty_null);

/* Values (values.c): each check says why a value is unusable, or NULL; never the value. */
int cfg_is_visible_ascii(const char *v);
const char *cfg_check_key(const char *v);
const char *cfg_check_token(const char *v);
const char *cfg_check_name(const char *v);
const char *cfg_check_model(const char *v);
const char *cfg_check_base_url(const char *v);
const char *cfg_check_proxy(const char *v);
const char *cfg_check_redis(const char *v);
const char *cfg_check_origin(const char *v);

enum cfg_listen { CFG_LISTEN_OK = 0, CFG_LISTEN_BAD = -1, CFG_LISTEN_NOMEM = -2 };
/* Splits "host:port" or "[ipv6]:port" into a new host string (without brackets) and a port;
 * on CFG_LISTEN_BAD, *why says what is wrong, in words that read well before ", got ...". */
enum cfg_listen cfg_parse_listen(const char *s, char **host, uint16_t *port, const char **why);
int cfg_online_cores(void);

/* Lists and maps (lists.c): the readers of tokens, keys, fallbacks, models and thinking
 * budgets, and what frees them. */
int cfg_read_tokens(struct loader *ld, const yaml_node_t *n, void *base);
int cfg_read_keys(struct loader *ld, const yaml_node_t *n, void *base);
int cfg_read_fallbacks(struct loader *ld, const yaml_node_t *n, void *base);
int cfg_read_models(struct loader *ld, const yaml_node_t *n, void *base);
int cfg_read_budgets(struct loader *ld, const yaml_node_t *n, void *base);
int cfg_read_token_budgets(struct loader *ld, const yaml_node_t *n, void *base);
/* Whether tokens[0..n) holds the same token (1) or name (2) as tokens[n], at *j. */
int cfg_token_clash(const struct skiff_config *cfg, size_t n, size_t *j);
/* Whether keys[0..n) holds the same key (1) or label (2) as keys[n], at *j. */
int cfg_key_clash(const struct skiff_config *cfg, size_t n, size_t *j);
void cfg_free_tokens(struct skiff_config *cfg);
void cfg_free_keys(struct skiff_config *cfg);
void cfg_free_fallbacks(struct skiff_config *cfg);
void cfg_free_thinking(struct skiff_config *cfg);
void cfg_free_models(struct skiff_config *cfg);

/* Rules across fields (rules.c). */
int cfg_retry_after(struct loader *ld, void *base, yaml_node_t *const *seen);
int cfg_check_open(struct loader *ld);
int cfg_check_cors(struct loader *ld);

/* Frees cfg and everything it owns, whatever its count (config.c; snapshot.c calls it when
 * the last reference goes). */
void cfg_destroy(struct skiff_config *cfg);

/* The environment (env.c): GEMINI_API_KEYS, SKIFF_TOKENS, SKIFF_LISTEN, SKIFF_GEMINI_BASE_URL. */
int cfg_apply_env(struct loader *ld);

#endif
