/*
 * Media that a client names by URL (an OpenAI `image_url`, an Anthropic `url` image source),
 * turned into what Gemini takes inline: a MIME type and base64 bytes. Shared by the doors.
 *
 * A data: URI is decoded here, without I/O. An http(s) URL is fetched on the worker's loop
 * through skiff's own upstream client (relay/upstream.h), under the media rules:
 *   - fetch_urls off: refused;
 *   - at most max_bytes of body (a larger Content-Length is refused before the body);
 *   - the whole fetch, redirects included, within timeout_ms;
 *   - never from a loopback, private, link-local, unspecified, multicast or reserved
 *     address unless allow_private. The check is made on each RESOLVED address the client
 *     is about to connect to (so a name that resolves to 127.0.0.1 is refused, and so is
 *     a redirect to one): see skiff_upcall_opts.addr_ok.
 *   - up to 5 redirects (301, 302, 303, 307, 308), each checked the same way.
 * Every refusal is a 400 for the client with a sentence that says what to change; the URL
 * itself is not quoted (a signed URL carries its credential in the query), only its host.
 */
#ifndef SKIFF_MEDIA_H
#define SKIFF_MEDIA_H

#include <stddef.h>
#include <sys/socket.h>

#include <uv.h>

struct skiff_upstream;

struct skiff_media_rules {
    int fetch_urls;    /* 0: http(s) URLs are refused (data: URIs still work) */
    size_t max_bytes;  /* of the media itself, before base64 */
    long timeout_ms;   /* the whole fetch */
    int allow_private; /* 1: loopback and private addresses may be fetched */
};

/* Defaults: fetch on, 20 MiB (Gemini's inline request limit), 10 s, public addresses only. */
#define SKIFF_MEDIA_MAX_BYTES_DEFAULT (20u * 1024 * 1024)
#define SKIFF_MEDIA_TIMEOUT_MS_DEFAULT 10000L

struct skiff_media_result {
    int status;        /* 0: fetched; else the HTTP status to answer the client (400) */
    const char *error; /* status != 0: a sentence saying what went wrong and what to do */
    const char *mime;  /* status 0: "image/png" (lower case, no parameters) */
    const char *b64;   /* status 0: the bytes in base64, NUL-terminated */
    size_t b64_len;
    size_t bytes; /* the size of the media before base64 */
};

/* Called once per fetch (never from inside skiff_media_fetch), on the loop. The result and
 * its strings are borrowed: valid until the callback returns. The fetch frees itself. */
typedef void skiff_media_cb(void *data, const struct skiff_media_result *r);

struct skiff_media;

/*
 * Starts getting url (data:, http: or https:) under rules, on loop, through u (the
 * worker's upstream client). Returns the fetch, or NULL when out of memory (nothing is
 * called back then). Even a refusal known at once (a bad URL, fetch_urls off) is reported
 * through cb, from the loop.
 */
struct skiff_media *skiff_media_fetch(uv_loop_t *loop, struct skiff_upstream *u, const char *url,
                                      const struct skiff_media_rules *rules, skiff_media_cb *cb,
                                      void *data);

/* Stops a fetch whose callback has not run yet: no callback follows; memory is freed from
 * the loop. */
void skiff_media_cancel(struct skiff_media *m);

/*
 * Decodes a data: URI, with no I/O: "data:<mime>[;param...];base64,<data>" or the
 * percent-encoded form without ";base64". *mime gets the MIME type (malloc'd, lower case;
 * "text/plain" when the URI names none) and *b64 the bytes in base64 (malloc'd), *bytes
 * their decoded size. Returns 0, or SKIFF_EINVAL with *err a sentence (and nothing
 * allocated), SKIFF_ETOOBIG past max_bytes, SKIFF_ENOMEM.
 */
int skiff_media_data_uri(const char *uri, size_t max_bytes, char **mime, char **b64, size_t *bytes,
                         const char **err);

/* What kind of address skiff does not fetch from without allow_private: "loopback",
 * "private", "link-local", "unspecified", "multicast", "reserved", "shared (CGNAT)"; NULL
 * for a public address. IPv4-mapped and NAT64 IPv6 addresses are judged by their IPv4. */
const char *skiff_media_addr_kind(const struct sockaddr *sa);

#endif
