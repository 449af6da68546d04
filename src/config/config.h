/*
 * skiff's configuration: a YAML file plus environment overrides, turned into one immutable,
 * reference-counted snapshot, struct skiff_config. Loading either succeeds whole or fails with
 * a message that names the file, the line and the key; skiff never starts half-configured.
 *
 * Snapshots: whatever keeps a config (a worker, a request, a thread), or a pointer into it (a
 * token name, a fallback chain, a key label), for longer than the call it was given the config
 * in holds its own reference (skiff_config_ref / skiff_config_unref). A reload builds a new
 * snapshot and puts it in a struct skiff_config_current; requests that began on the old one
 * keep it until they end, and the old one is freed with its last reference.
 *
 * The YAML keys are public interface (README "Configuration"):
 *
 *   listen: 127.0.0.1:8080
 *   workers: auto | N
 *   tokens: [{name: alice, token: sk-...}]
 *   upstreams: {gemini: {base_url: URL, keys: [KEY | {key: KEY, label: NAME}], proxy: URL,
 *                        ca_file: PATH, forward_headers: [NAME, ...]}}
 *     (client: auto still loads and means nothing: libcurl, its other value, is gone)
 *   retry: {max_attempts, base_delay_ms, max_delay_ms, deadline_ms, max_wait_ms,
 *           connect_timeout_ms, first_byte_timeout_ms, stream_first_byte_timeout_ms,
 *           stream_idle_timeout_ms, max_stream_ms}
 *   fallbacks: {MODEL: [MODEL, ...]}
 *   limits: {max_body_bytes, header_timeout_ms, idle_timeout_ms, max_connections,
 *            body_timeout_ms, send_timeout_ms, max_buffered_bytes, max_upload_bytes}
 *   storage: {sqlite: PATH, redis: URL}
 *   validation: on | off
 *   catalog: {refresh_s: N}
 *   quality: {retry_recitation: BOOL, repetition_guard: on | off}
 *   thinking: {default_budget: {MODEL: N}, tokens: {TOKEN_NAME: {MODEL: N}}}
 *   shutdown: {drain_timeout_ms}
 *   cors: {origins: [ORIGIN, ...]}
 *   models: {CLIENT_MODEL_OR_GLOB: GEMINI_MODEL}   (the OpenAI and Anthropic doors)
 *   media: {fetch_urls: BOOL, max_bytes, timeout_ms, allow_private: BOOL}
 *   thinking.include_thoughts: BOOL
 *   sigcache: {max_entries}
 *
 * Environment overrides, applied after the file: GEMINI_API_KEYS (comma list, replaces the
 * keys), SKIFF_TOKENS (comma list of tokens, or name:token items; replaces the tokens),
 * SKIFF_LISTEN, SKIFF_GEMINI_BASE_URL.
 */
#ifndef SKIFF_CONFIG_H
#define SKIFF_CONFIG_H

#include <stddef.h>
#include <stdint.h>

/* One (pattern, target) pair of the models: map (doors/models.h resolves names with it). */
struct skiff_model_alias {
    const char *pattern; /* an exact name or a glob with '*'; borrowed */
    const char *target;  /* the Gemini model; borrowed */
};

struct skiff_token {
    char *name;
    char *token;
};

struct skiff_key {
    char *key;   /* the secret: only the key pool reads it, nothing formats it */
    char *label; /* how logs, headers and metrics name it: the configured label or "key#N" */
};

struct skiff_fallback {
    char *model;
    char **chain; /* models to try after `model`, in order */
    size_t nchain;
};

/* A default thinkingBudget (config `thinking`), applied only when the client sets none. */
struct skiff_thinking_default {
    char *token; /* a token name (thinking.tokens), or NULL for every client */
    char *model; /* a model name as in the URL, or "*" for every model */
    int budget;  /* -1 (dynamic) to 65536; 0 turns thinking off */
};

struct skiff_config {
    unsigned long refs; /* the reference count: only skiff_config_ref/unref touch it */
    char *path; /* the file it came from, or NULL when built from defaults and environment */

    char *listen_host; /* "127.0.0.1" */
    uint16_t listen_port;
    int workers; /* resolved: "auto" becomes the number of online cores */

    struct skiff_token *tokens;
    size_t ntokens;

    char *base_url; /* upstreams.gemini.base_url, without a trailing slash */
    struct skiff_key *keys;
    size_t nkeys;
    char *proxy;   /* NULL when unset or "" */
    char *ca_file; /* upstreams.gemini.ca_file: PEM CAs for the upstream's TLS; NULL: system */
    /* Request headers forwarded beside the built-in allowlist (relay/uprequest.h); names
     * checked by skiff_header_unlistable (base/hopbyhop.h). */
    char **forward_headers;
    size_t nforward_headers;

    struct {
        int max_attempts; /* 1..60 */
        int base_delay_ms;
        int max_delay_ms;
        int deadline_ms; /* per request: no retry, wait or fallback starts after it; an
                          * attempt in flight is not cut by it */
        int max_wait_ms; /* the longest wait for a resting key before answering 429 */
        int connect_timeout_ms;
        int first_byte_timeout_ms;        /* per non-stream attempt (600 s): the upstream may
                                           * be thinking, so it is not retried by default */
        int stream_first_byte_timeout_ms; /* per stream attempt (60 s; first_byte_timeout_ms
                                           * when only that one is set) */
        int stream_idle_timeout_ms;       /* between stream chunks: a stalled stream fails */
        int max_stream_ms;                /* a stream's longest life once it started; 0: none */
    } retry;

    struct skiff_fallback *fallbacks;
    size_t nfallbacks;

    struct {
        size_t max_body_bytes;
        int header_timeout_ms;
        int idle_timeout_ms;
        int max_connections;
        int body_timeout_ms;       /* the whole request body, from the end of its head */
        int send_timeout_ms;       /* a client that takes no byte of its answer this long */
        size_t max_buffered_bytes; /* request bodies held at once by the whole process */
        size_t max_upload_bytes;   /* a file's bytes streamed through (uploads), per request */
    } limits;

    struct {
        char *sqlite; /* NULL or "" disables persistence */
        char *redis;
    } storage;

    int validation;        /* validation: on (1, the default) refuses client mistakes locally */
    int catalog_refresh_s; /* catalog.refresh_s: re-read models.list this often; 0: never */

    struct {
        int retry_recitation; /* retry a RECITATION finish once with temperature >= 0.8 */
        int repetition_guard; /* stop a stream stuck in a repetition loop */
    } quality;

    struct {
        int drain_timeout_ms; /* SIGTERM: requests in flight may finish for this long; 0:
                               * stop at once */
    } shutdown;

    /* thinking.default_budget entries (token NULL) then thinking.tokens entries. */
    struct skiff_thinking_default *thinking;
    size_t nthinking;

    /* cors.origins: the exact origins ("https://app.example") whose pages may call skiff, or
     * "*" for any page; none: CORS is off (auth.h's skiff_auth_cors). */
    char **cors_origins;
    size_t ncors_origins;

    /* models: client model names (exact, or globs with '*') to Gemini models, in file order,
     * for doors/models.h's skiff_models_resolve(cfg->models, cfg->n_models, ...). Every
     * door shares it. Patterns and targets are owned by the config. */
    struct skiff_model_alias *models;
    size_t n_models;

    /* media: how the translating doors fetch the image and file URLs clients send. */
    struct {
        int fetch_urls;    /* on (1, the default): fetch http(s) URLs; off: refuse them */
        size_t max_bytes;  /* the largest fetched object (20 MiB) */
        int timeout_ms;    /* a whole fetch, connect to last byte (10 s) */
        int allow_private; /* fetch from loopback, private and link-local addresses (0) */
    } media;

    /* thinking.include_thoughts: translated doors return thoughts when the client does not
     * say (0, the default: only when asked). */
    int include_thoughts;

    struct {
        size_t max_entries; /* the thought-signature cache's bound (100000) */
    } sigcache;
};

/*
 * Builds a configuration from the YAML file at path (NULL: defaults only), then applies the
 * environment overrides and checks the result. Returns a new config holding one reference
 * (the caller's: drop it with skiff_config_free or skiff_config_unref) or NULL with a one-line
 * message in err, e.g.
 * "skiff.yaml:12: retry.max_attempts: must be an integer from 1 to 60, got \"a lot\"".
 */
struct skiff_config *skiff_config_load(const char *path, char *err, size_t errlen);

/*
 * Takes "--config FILE" or "--config=FILE" at argv[*i] into *path, advancing *i past what it
 * used. Returns 1 when argv[*i] was that option, 0 otherwise. For every subcommand that
 * reads the config, so they all spell it the same way.
 */
int skiff_config_arg(int argc, char **argv, int *i, const char **path);

/* Drops the reference skiff_config_load gave: the same as skiff_config_unref. NULL is fine. */
void skiff_config_free(struct skiff_config *cfg);

/* Takes a reference to cfg (any thread) and returns cfg. NULL gives NULL. */
const struct skiff_config *skiff_config_ref(const struct skiff_config *cfg);

/* Drops a reference (any thread); the last one frees the config and everything it owns, so
 * nothing borrowed from it may be used after. NULL is fine. */
void skiff_config_unref(const struct skiff_config *cfg);

/*
 * The current snapshot, which a reload replaces. _new takes over the caller's reference to
 * cfg; _get returns a new reference to the snapshot current now (the caller unrefs it);
 * _set makes cfg current, taking over the caller's reference, and drops the holder's
 * reference to the old one, which lives on while others hold it; _free drops the holder's
 * reference. Thread-safe. _new returns NULL when out of memory.
 */
struct skiff_config_current;
struct skiff_config_current *skiff_config_current_new(struct skiff_config *cfg);
const struct skiff_config *skiff_config_current_get(struct skiff_config_current *c);
void skiff_config_current_set(struct skiff_config_current *c, struct skiff_config *cfg);
void skiff_config_current_free(struct skiff_config_current *c);

/* Whether host is a loopback address (127.0.0.0/8, ::1, localhost). */
int skiff_config_is_loopback(const char *host);

#endif
