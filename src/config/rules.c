/*
 * Rules that span several keys, checked once the keys they relate are read: the backoff's
 * range (a section rule of retry), and, after the file and the environment, that skiff never
 * runs open on a network or lets any web page spend the keys without a token.
 */
#include <stdio.h>
#include <string.h>

#include "config/loader.h"

/*
 * retry: first_byte_timeout_ms alone sets both first-byte timeouts; the backoff must be able
 * to grow from base to max. The message goes to whichever of the two the file set
 * (max_delay_ms when both), since that is what to edit.
 */
int
cfg_retry_after(struct loader *ld, void *base, yaml_node_t *const *seen)
{
    struct skiff_config *cfg = base;
    const yaml_node_t *first = seen[cfg_index(&cfg_retry, "first_byte_timeout_ms")];
    const yaml_node_t *stream_first = seen[cfg_index(&cfg_retry, "stream_first_byte_timeout_ms")];
    const yaml_node_t *bnode = seen[cfg_index(&cfg_retry, "base_delay_ms")];
    const yaml_node_t *mnode = seen[cfg_index(&cfg_retry, "max_delay_ms")];

    if (first && !stream_first)
        cfg->retry.stream_first_byte_timeout_ms = cfg->retry.first_byte_timeout_ms;
    if (cfg->retry.max_delay_ms >= cfg->retry.base_delay_ms || (!mnode && !bnode))
        return 0;
    size_t saved = cfg_path_push_key(ld, mnode ? "max_delay_ms" : "base_delay_ms");
    if (mnode)
        cfg_fail_at(ld, mnode, "must be at least base_delay_ms (%d), got %d",
                    cfg->retry.base_delay_ms, cfg->retry.max_delay_ms);
    else
        cfg_fail_at(ld, bnode, "must not exceed max_delay_ms (%d), got %d", cfg->retry.max_delay_ms,
                    cfg->retry.base_delay_ms);
    cfg_path_pop(ld, saved);
    return -1;
}

/* Without tokens anyone who can reach the port spends the keys, so that is loopback only. */
int
cfg_check_open(struct loader *ld)
{
    const struct skiff_config *cfg = ld->cfg;
    if (cfg->ntokens || skiff_config_is_loopback(cfg->listen_host))
        return 0;
    int v6 = strchr(cfg->listen_host, ':') != NULL;
    return cfg_fail(ld,
                    "listen %s%s%s:%u%s%s%s is not a loopback address and no tokens are "
                    "configured: skiff refuses to run open on the network. Add tokens (config "
                    "`tokens:` or SKIFF_TOKENS) or listen on 127.0.0.1",
                    v6 ? "[" : "", cfg->listen_host, v6 ? "]" : "", (unsigned)cfg->listen_port,
                    ld->listen_from ? " (from " : "", ld->listen_from ? ld->listen_from : "",
                    ld->listen_from ? ")" : "");
}

/* Whether origin ("scheme://host[:port]") names a loopback host. */
static int
loopback_origin(const char *o)
{
    const char *h = strchr(o, '/');
    char host[256];
    if (!h || h[1] != '/')
        return 0;
    h += 2;
    size_t n = strlen(h);
    const char *colon = strrchr(h, ':');
    if (colon && (h[0] != '[' || colon > strchr(h, ']')))
        n = (size_t)(colon - h);
    if (n >= 2 && h[0] == '[' && h[n - 1] == ']') {
        h++;
        n -= 2;
    }
    if (n >= sizeof host)
        return 0;
    memcpy(host, h, n);
    host[n] = '\0';
    return skiff_config_is_loopback(host);
}

/*
 * Without tokens a page on a listed origin would spend the keys with no token at all, so in
 * open mode cors.origins may list only loopback origins (a dev server on localhost), which
 * open mode's Origin rule lets through anyway; "*" and other origins need tokens.
 */
int
cfg_check_cors(struct loader *ld)
{
    const struct skiff_config *cfg = ld->cfg;
    if (cfg->ntokens)
        return 0;
    for (size_t i = 0; i < cfg->ncors_origins; i++) {
        const char *o = cfg->cors_origins[i];
        if (!loopback_origin(o))
            return cfg_fail(ld,
                            "cors.origins: \"%s\" is not a loopback origin and no tokens are "
                            "configured: without tokens any page on it would spend the keys. Add "
                            "tokens (config `tokens:` or SKIFF_TOKENS), or list only loopback "
                            "origins such as http://localhost:5173",
                            o);
    }
    return 0;
}
