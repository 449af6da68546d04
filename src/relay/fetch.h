/*
 * Blocking calls to the upstream on skiff's own client, for threads that are not a worker:
 * the catalog refresh (its thread, relay/refresher.c) and `skiff doctor`. Each call runs the
 * client (relay/upstream.h) on a private libuv loop until it ends, so it takes the same
 * path as the relay's calls: TLS against the system store and ca_file, every proxy scheme,
 * credentials in base_url. Never call these from a worker's loop.
 */
#ifndef SKIFF_FETCH_H
#define SKIFF_FETCH_H

#include <stdatomic.h>
#include <stddef.h>

#include "gemini/catalog.h"

/* The answer of a blocking GET (skiff_gemini_get). */
struct skiff_get_result {
    int status; /* HTTP status; 0 when no (whole) answer came */
    char *body; /* malloc'd, NUL-terminated (may be NULL); free it */
    size_t len;
    char retry_after[32]; /* the Retry-After header, "" when absent */
    long ms;              /* how long the call took */
    char error[256];      /* the transport failure when status is 0; never holds the key */
};

/*
 * A blocking GET of url with the key in x-goog-api-key, through proxy (NULL or "": none),
 * verifying TLS against ca_file (NULL: the system store), with a total timeout. The body is
 * kept up to 8 MiB. Always fills *out; returns 0 when an answer came, -1 on a transport
 * failure. Used by the catalog and by `skiff doctor`.
 */
int skiff_gemini_get(const char *url, const char *key, const char *proxy, const char *ca_file,
                     long connect_timeout_ms, long timeout_ms, struct skiff_get_result *out);

/* Releases what skiff_gemini_get allocated in *r. */
void skiff_get_result_release(struct skiff_get_result *r);

/*
 * Fetches GET {base_url}/v1beta/models?pageSize=1000, following nextPageToken, with the key
 * in x-goog-api-key (never in the URL, never logged), through proxy (NULL or "": direct),
 * verifying TLS against ca_file (NULL: the system store), and applies it to cat
 * (skiff_catalog_apply_list). Blocking. Returns the number of models, or -1 with a one-line
 * reason in err (which never holds the key); the previous table stays on failure.
 */
int skiff_catalog_refresh(struct skiff_catalog *cat, const char *base_url, const char *key,
                          const char *proxy, const char *ca_file, char *err, size_t errlen);

/* The same, ended early (-1, "models.list failed: ...") within about 100 ms of *stop
 * becoming non-zero, so that a thread running it can be stopped. stop may be NULL. */
int skiff_catalog_refresh_until(struct skiff_catalog *cat, const char *base_url, const char *key,
                                const char *proxy, const char *ca_file, const atomic_int *stop,
                                char *err, size_t errlen);

#endif
