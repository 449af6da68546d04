/*
 * The configuration as tables: every key skiff reads, its type, where it lives in struct
 * skiff_config, its range and its default, section by section (README "Configuration" and
 * skiff.example.yaml are the user's view of the same tables). The order of a table is the
 * order "expected one of: ..." lists its keys in.
 *
 * A key whose value is more than one scalar (listen, workers, client, ca_file) has its reader
 * here; lists and maps (tokens, keys, fallbacks, models, thinking budgets) are in lists.c.
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/hopbyhop.h"
#include "config/loader.h"
/* The one list of header names that may never go upstream lives with the request builder. */

#define OFF(member) offsetof(struct skiff_config, member)
#define SECTION(fields, after)                                                                     \
    {                                                                                              \
        (fields), sizeof(fields) / sizeof((fields)[0]), (after)                                    \
    }

#define DURATION(key, member, dflt)                                                                \
    {                                                                                              \
        .name = (key), .type = CFG_INT, .offset = OFF(member), .min = 1,                           \
        .max = CFG_MAX_DURATION_MS, .rule = CFG_DURATION_RULE, .def = (dflt)                       \
    }
#define SWITCH(key, member, dflt)                                                                  \
    {                                                                                              \
        .name = (key), .type = CFG_SWITCH, .offset = OFF(member), .def = (dflt)                    \
    }
#define SUB(key, sec)                                                                              \
    {                                                                                              \
        .name = (key), .type = CFG_SECTION, .section = &(sec)                                      \
    }
#define READ(key, fn)                                                                              \
    {                                                                                              \
        .name = (key), .type = CFG_READ, .read = (fn)                                              \
    }

#define MIN_BODY_BYTES 1024LL
#define MAX_BODY_BYTES (1024LL * 1024 * 1024)
#define MAX_BODY_RULE "a number of bytes from 1024 to 1073741824 (1 GiB)"

/* listen, workers. */

static int
read_listen(struct loader *ld, const yaml_node_t *n, void *base)
{
    struct skiff_config *cfg = base;
    const char *v, *why;
    char *host = NULL;
    uint16_t port;
    char buf[128];
    if (cfg_get_string(ld, n, "host:port", &v) < 0)
        return -1;
    enum cfg_listen r = cfg_parse_listen(v, &host, &port, &why);
    if (r == CFG_LISTEN_NOMEM)
        return cfg_fail_nomem(ld);
    if (r == CFG_LISTEN_BAD)
        return cfg_fail_at(ld, n, "%s, got %s", why, cfg_quote(v, buf, sizeof buf));
    free(cfg->listen_host);
    cfg->listen_host = host;
    cfg->listen_port = port;
    ld->listen_from = NULL;
    return 0;
}

static int
read_workers(struct loader *ld, const yaml_node_t *n, void *base)
{
    struct skiff_config *cfg = base;
    long long v;
    if (n->type == YAML_SCALAR_NODE && !strcmp(cfg_scalar(n), "auto")) {
        cfg->workers = cfg_online_cores();
        return 0;
    }
    if (cfg_get_int(ld, n, 1, 256, "\"auto\" or an integer from 1 to 256", &v) < 0)
        return -1;
    cfg->workers = (int)v;
    return 0;
}

/* upstreams.gemini. */

static int
read_client(struct loader *ld, const yaml_node_t *n, void *base)
{
    const char *v;
    char buf[128];
    /* Gone with libcurl: one client takes every upstream. auto (what it always meant)
     * still loads; anything else would be a promise skiff no longer keeps. */
    if (cfg_get_string(ld, n, "auto", &v) < 0)
        return -1;
    if (strcmp(v, "auto"))
        return cfg_fail_at(ld, n,
                           "is no longer an option: libcurl was removed, and skiff's own client "
                           "takes every upstream (http://, https://, every proxy, credentials in "
                           "base_url); delete this line (got %s)",
                           cfg_quote(v, buf, sizeof buf));
    return 0;
}

/* Checked now, so a wrong path fails the start rather than every https call. */
static int
read_ca_file(struct loader *ld, const yaml_node_t *n, void *base)
{
    struct skiff_config *cfg = base;
    const char *v;
    char buf[128];
    if (cfg_get_string(ld, n, "a file path", &v) < 0)
        return -1;
    if (*v) {
        struct stat st;
        const char *cause = stat(v, &st) != 0      ? strerror(errno)
                            : !S_ISREG(st.st_mode) ? "not a regular file"
                            : access(v, R_OK) != 0 ? strerror(errno)
                                                   : NULL;
        if (cause)
            return cfg_fail_at(ld, n,
                               "cannot read %s: %s (give the PEM file of CA certificates that "
                               "signed the upstream's TLS certificate, or leave it empty for the "
                               "system store)",
                               cfg_quote(v, buf, sizeof buf), cause);
    }
    return cfg_set_string(ld, &cfg->ca_file, v, 1);
}

static const struct cfg_field gemini_fields[] = {
    {.name = "base_url",
     .type = CFG_STRING,
     .offset = OFF(base_url),
     .rule = "a URL",
     .def_str = "https://generativelanguage.googleapis.com",
     .check = cfg_check_base_url,
     .flags = CFG_URL | CFG_TRIM_SLASH},
    READ("keys", cfg_read_keys),
    {.name = "proxy",
     .type = CFG_STRING,
     .offset = OFF(proxy),
     .rule = "a proxy URL",
     .check = cfg_check_proxy,
     .flags = CFG_HIDE | CFG_EMPTY_NULL},
    READ("client", read_client),
    READ("ca_file", read_ca_file),
    {.name = "forward_headers",
     .type = CFG_LIST,
     .offset = OFF(forward_headers),
     .count_offset = OFF(nforward_headers),
     .rule = "a list of header names",
     .item = "a header name",
     .check = skiff_header_unlistable},
};
static const struct cfg_section gemini_section = SECTION(gemini_fields, NULL);

static const struct cfg_field upstream_fields[] = {SUB("gemini", gemini_section)};
static const struct cfg_section upstream_section = SECTION(upstream_fields, NULL);

/* retry: the backoff grows from base_delay_ms to max_delay_ms (checked by cfg_retry_after). */

static const struct cfg_field retry_fields[] = {
    {.name = "max_attempts",
     .type = CFG_INT,
     .offset = OFF(retry.max_attempts),
     .min = 1,
     .max = 60,
     .rule = "an integer from 1 to 60",
     .def = 8},
    DURATION("base_delay_ms", retry.base_delay_ms, 250),
    DURATION("max_delay_ms", retry.max_delay_ms, 8000),
    DURATION("deadline_ms", retry.deadline_ms, 120000),
    DURATION("max_wait_ms", retry.max_wait_ms, 10000),
    DURATION("connect_timeout_ms", retry.connect_timeout_ms, 10000),
    /* A thinking model may work for minutes before a non-stream answer's first byte; a
     * stream sends its headers at once. */
    DURATION("first_byte_timeout_ms", retry.first_byte_timeout_ms, 600000),
    DURATION("stream_idle_timeout_ms", retry.stream_idle_timeout_ms, 30000),
    DURATION("stream_first_byte_timeout_ms", retry.stream_first_byte_timeout_ms, 60000),
    {.name = "max_stream_ms",
     .type = CFG_INT,
     .offset = OFF(retry.max_stream_ms),
     .min = 0,
     .max = CFG_MAX_DURATION_MS,
     .rule = "a whole number of milliseconds from 0 (no limit) to 86400000 (a day)",
     .def = 0},
};
const struct cfg_section cfg_retry = SECTION(retry_fields, cfg_retry_after);

/* limits, storage. */

static const struct cfg_field limit_fields[] = {
    {.name = "max_body_bytes",
     .type = CFG_SIZE,
     .offset = OFF(limits.max_body_bytes),
     .min = MIN_BODY_BYTES,
     .max = MAX_BODY_BYTES,
     .rule = MAX_BODY_RULE,
     .def = 20971520},
    DURATION("header_timeout_ms", limits.header_timeout_ms, 10000),
    DURATION("idle_timeout_ms", limits.idle_timeout_ms, 60000),
    {.name = "max_connections",
     .type = CFG_INT,
     .offset = OFF(limits.max_connections),
     .min = 1,
     .max = 1000000,
     .rule = "an integer from 1 to 1000000",
     .def = 10000},
    DURATION("body_timeout_ms", limits.body_timeout_ms, 60000),
    DURATION("send_timeout_ms", limits.send_timeout_ms, 60000),
    {.name = "max_buffered_bytes",
     .type = CFG_SIZE,
     .offset = OFF(limits.max_buffered_bytes),
     .min = 1024LL * 1024,
     .max = 64LL * 1024 * 1024 * 1024,
     .rule = "a number of bytes from 1048576 (1 MiB) to 68719476736 (64 GiB)",
     .def = 268435456},
    {.name = "max_upload_bytes",
     .type = CFG_SIZE,
     .offset = OFF(limits.max_upload_bytes),
     .min = 1024LL * 1024,
     .max = 64LL * 1024 * 1024 * 1024,
     .rule = "a number of bytes from 1048576 (1 MiB) to 68719476736 (64 GiB)",
     .def = 2164260864LL},
};
static const struct cfg_section limit_section = SECTION(limit_fields, NULL);

static const struct cfg_field storage_fields[] = {
    {.name = "sqlite",
     .type = CFG_STRING,
     .offset = OFF(storage.sqlite),
     .rule = "a file path",
     .def_str = "./skiff.db",
     .flags = CFG_EMPTY_NULL},
    {.name = "redis",
     .type = CFG_STRING,
     .offset = OFF(storage.redis),
     .rule = "a Redis URL",
     .check = cfg_check_redis,
     .flags = CFG_HIDE | CFG_EMPTY_NULL},
};
static const struct cfg_section storage_section = SECTION(storage_fields, NULL);

/* quality, thinking, catalog, shutdown, cors. */

static const struct cfg_field quality_fields[] = {
    SWITCH("retry_recitation", quality.retry_recitation, 0),
    SWITCH("repetition_guard", quality.repetition_guard, 0),
};
static const struct cfg_section quality_section = SECTION(quality_fields, NULL);

static const struct cfg_field thinking_fields[] = {
    READ("default_budget", cfg_read_budgets),
    READ("tokens", cfg_read_token_budgets),
    SWITCH("include_thoughts", include_thoughts, 0),
};
static const struct cfg_section thinking_section = SECTION(thinking_fields, NULL);

static const struct cfg_field catalog_fields[] = {
    {.name = "refresh_s",
     .type = CFG_INT,
     .offset = OFF(catalog_refresh_s),
     .min = 0,
     .max = 86400,
     .rule = "seconds from 0 (never) to 86400",
     .def = 600},
};
static const struct cfg_section catalog_section = SECTION(catalog_fields, NULL);

static const struct cfg_field shutdown_fields[] = {
    {.name = "drain_timeout_ms",
     .type = CFG_INT,
     .offset = OFF(shutdown.drain_timeout_ms),
     .min = 0,
     .max = CFG_MAX_DURATION_MS,
     .rule = "a whole number of milliseconds from 0 (stop at once) to 86400000 (a day)",
     .def = 30000},
};
static const struct cfg_section shutdown_section = SECTION(shutdown_fields, NULL);

static const struct cfg_field cors_fields[] = {
    {.name = "origins",
     .type = CFG_LIST,
     .offset = OFF(cors_origins),
     .count_offset = OFF(ncors_origins),
     .rule = "a list of origins such as https://app.example",
     .item = "an origin",
     .check = cfg_check_origin},
};
static const struct cfg_section cors_section = SECTION(cors_fields, NULL);

/* media, sigcache: what the translating doors (OpenAI, Anthropic) read. */

static const struct cfg_field media_fields[] = {
    SWITCH("fetch_urls", media.fetch_urls, 1),
    {.name = "max_bytes",
     .type = CFG_SIZE,
     .offset = OFF(media.max_bytes),
     .min = MIN_BODY_BYTES,
     .max = MAX_BODY_BYTES,
     .rule = MAX_BODY_RULE,
     .def = 20LL * 1024 * 1024},
    DURATION("timeout_ms", media.timeout_ms, 10000),
    SWITCH("allow_private", media.allow_private, 0),
};
static const struct cfg_section media_section = SECTION(media_fields, NULL);

static const struct cfg_field sigcache_fields[] = {
    {.name = "max_entries",
     .type = CFG_SIZE,
     .offset = OFF(sigcache.max_entries),
     .min = 1,
     .max = 100000000,
     .rule = "a number of thought signatures from 1 to 100000000",
     .def = 100000},
};
static const struct cfg_section sigcache_section = SECTION(sigcache_fields, NULL);

/* The top level. */

static const struct cfg_field root_fields[] = {
    READ("listen", read_listen),
    READ("workers", read_workers),
    READ("tokens", cfg_read_tokens),
    SUB("upstreams", upstream_section),
    SUB("retry", cfg_retry),
    READ("fallbacks", cfg_read_fallbacks),
    SUB("limits", limit_section),
    SUB("storage", storage_section),
    /* validation: on refuses client mistakes locally. */
    SWITCH("validation", validation, 1),
    SUB("quality", quality_section),
    SUB("thinking", thinking_section),
    SUB("catalog", catalog_section),
    SUB("shutdown", shutdown_section),
    SUB("cors", cors_section),
    READ("models", cfg_read_models),
    SUB("media", media_section),
    SUB("sigcache", sigcache_section),
};
const struct cfg_section cfg_root = SECTION(root_fields, NULL);

/* The items of tokens and upstreams.gemini.keys, when an item is a mapping. Secret: the
 * walker runs them with ld->secret set, and a check's message never quotes the value. */

#define ITEM_STRING(key, item_type, member, expected, fn)                                          \
    {                                                                                              \
        .name = (key), .type = CFG_STRING, .offset = offsetof(item_type, member),                  \
        .rule = (expected), .check = (fn), .flags = CFG_HIDE                                       \
    }

static const struct cfg_field token_item_fields[] = {
    ITEM_STRING("name", struct skiff_token, name, "a name", cfg_check_name),
    ITEM_STRING("token", struct skiff_token, token, "the token as a string", cfg_check_token),
};
const struct cfg_section cfg_token_item = SECTION(token_item_fields, NULL);

static const struct cfg_field key_item_fields[] = {
    ITEM_STRING("key", struct skiff_key, key, "the key as a string", cfg_check_key),
    ITEM_STRING("label", struct skiff_key, label, "a label", cfg_check_name),
};
const struct cfg_section cfg_key_item = SECTION(key_item_fields, NULL);
