/*
 * Loading skiff's configuration: defaults, then the YAML file, then the environment, then the
 * checks that span several keys. The file is loaded whole with yaml_parser_load and its node
 * tree is read by the walker (walk.c) against the tables of fields (fields.c), with a dotted
 * key path kept beside it, so that every error can say "file:line: key.path: what is wrong"
 * on one line. loader.h describes the tables and the ownership rules.
 *
 * Secrets: upstream keys and client tokens are never copied into a message. Inside a key or
 * token item the loader sets `secret`, which makes every message describe values by their
 * kind ("a string") instead of quoting them, and hides unknown mapping keys (a token pasted
 * as a key is a common slip).
 */
#include "config/config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "config/loader.h"

#define DEFAULT_LISTEN_HOST "127.0.0.1"
#define DEFAULT_LISTEN_PORT 8080

/* The line holding byte offset of f, counted from 1, for errors that know only the offset. */
static unsigned long
line_of_offset(FILE *f, size_t offset)
{
    unsigned long line = 1;
    int c;
    if (fseek(f, 0, SEEK_SET) != 0)
        return 1;
    for (size_t i = 0; i < offset && (c = getc(f)) != EOF; i++)
        line += c == '\n';
    return line;
}

/* Reports a libyaml failure at the line where it found the problem. */
static int
fail_yaml(struct loader *ld, const yaml_parser_t *parser, FILE *f)
{
    const char *problem = parser->problem ? parser->problem : "unreadable input";
    switch (parser->error) {
    case YAML_MEMORY_ERROR:
        return cfg_fail_nomem(ld);
    case YAML_READER_ERROR:
        /* The reader (bad UTF-8, a failed read) knows a byte offset rather than a mark. */
        return cfg_fail_line(ld, line_of_offset(f, parser->problem_offset),
                             "cannot read: %s (at byte %zu)", problem, parser->problem_offset);
    default:
        if (parser->context)
            return cfg_fail_line(ld, (unsigned long)parser->problem_mark.line + 1,
                                 "YAML syntax error: %s (%s on line %lu)", problem, parser->context,
                                 (unsigned long)parser->context_mark.line + 1);
        return cfg_fail_line(ld, (unsigned long)parser->problem_mark.line + 1,
                             "YAML syntax error: %s", problem);
    }
}

/* Walks the document; a second document in the same file is an error, not silently ignored. */
static int
read_document(struct loader *ld, yaml_parser_t *parser, FILE *f)
{
    yaml_node_t *root = yaml_document_get_root_node(ld->doc);
    if (root) {
        if (root->type != YAML_MAPPING_NODE && !cfg_is_null(root))
            return cfg_fail_type(ld, root,
                                 "a mapping of settings (listen, tokens, upstreams, ...)");
        if (cfg_walk(ld, root, &cfg_root, ld->cfg) < 0)
            return -1;
    }

    yaml_document_t next;
    if (!yaml_parser_load(parser, &next))
        return fail_yaml(ld, parser, f);
    int more = yaml_document_get_root_node(&next) != NULL;
    unsigned long line = (unsigned long)next.start_mark.line + 1;
    yaml_document_delete(&next);
    if (more)
        return cfg_fail_line(ld, line, "a second YAML document; skiff reads one");
    return 0;
}

static int
load_file(struct loader *ld, const char *path)
{
    yaml_parser_t parser;
    yaml_document_t doc;
    struct stat st;
    int rc = -1;

    FILE *f = fopen(path, "rb");
    if (!f)
        return cfg_fail(ld, "%s: cannot open: %s", path, strerror(errno));
    if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
        cfg_fail(ld, "%s: cannot read: it is a directory", path);
        goto out_close;
    }
    if (!yaml_parser_initialize(&parser)) {
        cfg_fail_nomem(ld);
        goto out_close;
    }
    yaml_parser_set_input_file(&parser, f);
    /* On failure yaml_parser_load has already deleted the half-built document. */
    if (!yaml_parser_load(&parser, &doc)) {
        fail_yaml(ld, &parser, f);
        goto out_parser;
    }
    ld->doc = &doc;
    rc = read_document(ld, &parser, f);
    ld->doc = NULL;
    yaml_document_delete(&doc);
out_parser:
    yaml_parser_delete(&parser);
out_close:
    fclose(f);
    return rc;
}

/* The tables' defaults, and those no table can hold: listen, workers and the fallback chain. */
static int
set_defaults(struct loader *ld)
{
    struct skiff_config *cfg = ld->cfg;
    if (cfg_defaults(ld, &cfg_root, cfg) < 0)
        return -1;
    cfg->listen_port = DEFAULT_LISTEN_PORT;
    cfg->workers = cfg_online_cores();

    /* The default fallback is the one Google's troubleshooting guide suggests for overload. */
    cfg->fallbacks = calloc(1, sizeof *cfg->fallbacks);
    if (!cfg->fallbacks)
        return cfg_fail_nomem(ld);
    cfg->nfallbacks = 1;
    cfg->fallbacks[0].chain = calloc(1, sizeof *cfg->fallbacks[0].chain);
    if (!cfg->fallbacks[0].chain)
        return cfg_fail_nomem(ld);
    cfg->fallbacks[0].nchain = 1;

    if (cfg_set_string(ld, &cfg->listen_host, DEFAULT_LISTEN_HOST, 0) < 0 ||
        cfg_set_string(ld, &cfg->fallbacks[0].model, "gemini-2.5-pro", 0) < 0 ||
        cfg_set_string(ld, &cfg->fallbacks[0].chain[0], "gemini-2.5-flash", 0) < 0)
        return -1;
    return 0;
}

/* The public interface. */

struct skiff_config *
skiff_config_load(const char *path, char *err, size_t errlen)
{
    struct loader ld = {.file = path, .err = err, .errlen = errlen};
    if (err && errlen)
        err[0] = '\0';
    ld.cfg = calloc(1, sizeof *ld.cfg);
    if (!ld.cfg) {
        cfg_fail_nomem(&ld);
        return NULL;
    }
    ld.cfg->refs = 1;
    if (set_defaults(&ld) < 0)
        goto out_free;
    if (path && (cfg_set_string(&ld, &ld.cfg->path, path, 0) < 0 || load_file(&ld, path) < 0))
        goto out_free;
    if (cfg_apply_env(&ld) < 0)
        goto out_free;
    if (cfg_check_open(&ld) < 0 || cfg_check_cors(&ld) < 0)
        goto out_free;
    return ld.cfg;

out_free:
    skiff_config_free(ld.cfg);
    return NULL;
}

void
cfg_destroy(struct skiff_config *cfg)
{
    free(cfg->path);
    free(cfg->listen_host);
    free(cfg->ca_file);
    cfg_free_tokens(cfg);
    cfg_free_keys(cfg);
    cfg_free_fallbacks(cfg);
    cfg_free_thinking(cfg);
    cfg_free_models(cfg);
    /* Every string and list a table describes: base_url, proxy, storage, the lists. */
    cfg_release(&cfg_root, cfg);
    free(cfg);
}

int
skiff_config_is_loopback(const char *host)
{
    char buf[INET6_ADDRSTRLEN + 1];
    struct in_addr a4;
    struct in6_addr a6;
    if (!host)
        return 0;
    /* Accept "[::1]" as well as "::1": callers may pass either spelling. */
    size_t len = strlen(host);
    if (len >= 2 && host[0] == '[' && host[len - 1] == ']') {
        if (len - 2 >= sizeof buf)
            return 0;
        memcpy(buf, host + 1, len - 2);
        buf[len - 2] = '\0';
        host = buf;
    }
    if (!strcasecmp(host, "localhost") || !strcasecmp(host, "localhost."))
        return 1;
    if (inet_pton(AF_INET, host, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, host, &a6) == 1)
        return IN6_IS_ADDR_LOOPBACK(&a6) || (IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127);
    return 0;
}

int
skiff_config_arg(int argc, char **argv, int *i, const char **path)
{
    if (strcmp(argv[*i], "--config") == 0 && *i + 1 < argc) {
        *path = argv[++*i];
        return 1;
    }
    if (strncmp(argv[*i], "--config=", 9) == 0) {
        *path = argv[*i] + 9;
        return 1;
    }
    return 0;
}
