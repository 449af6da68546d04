/*
 * What goes upstream, and what of the upstream's answer head comes back: the one place to
 * audit both. Everything here is an allowlist; what is not named is dropped.
 *
 * The request (skiff_uprequest_build):
 *   - the URL is upstreams.gemini.base_url, then a path built from the route's parts
 *     ("/v1beta/models/gemini-2.5-flash:generateContent"), each checked against a strict
 *     charset; the client's path is never copied;
 *   - the query holds only the parameters the route takes (alt; pageSize and pageToken on
 *     models.list and a resource's list; updateMask on a resource's PATCH; alt=media on
 *     files/{id}:download; the upstream's upload_id on an upload chunk), read after
 * percent-decoding (so "?k%65y=" and "?$alt=" are what they decode to) and percent-encoded anew;
 * the client's `key` never goes;
 *   - the headers are content-type, accept, user-agent, x-goog-api-client, traceparent,
 *     tracestate, the x-goog-upload-* headers of the upload protocol (uploads only) and
 *     upstreams.gemini.forward_headers, unless the client's Connection header
 *     names them or their value holds a control byte; then the pool key as x-goog-api-key.
 *
 * The response (skiff_uprequest_forward_head): content-encoding, retry-after,
 * server-timing, vary and x-gemini-service-tier go to the client, with any pool key in a
 * value starred out, and only when the value holds no control byte; content-type travels
 * with the status (skiff_uprequest_content_type). Fields the upstream's Connection header
 * names never arrive here (the transports drop them with the hop-by-hop ones).
 */
#ifndef SKIFF_UPREQUEST_H
#define SKIFF_UPREQUEST_H

#include <stddef.h>

#include "base/buf.h"
#include "gemini/router.h"
#include "server/http.h"

struct skiff_config;
struct skiff_keypool;

/* The client's choice of framing (?alt=). */
enum skiff_alt {
    SKIFF_ALT_NONE = 0, /* not given: JSON (a stream is the JSON array) */
    SKIFF_ALT_JSON,     /* alt=json */
    SKIFF_ALT_SSE,      /* alt=sse: a stream is server-sent events */
    SKIFF_ALT_MEDIA,    /* alt=media: a file's bytes (files/{id}:download only) */
};

/* The client's query string, checked. Slices point into the request's query (borrowed). */
struct skiff_upquery {
    enum skiff_alt alt;
    const char *page_size; /* models.list only: the raw (still encoded) value, or NULL */
    size_t page_size_len;
    const char *page_token; /* models.list only: the raw value, or NULL */
    size_t page_token_len;
    const char *update_mask; /* a resource's PATCH only: the raw value, or NULL */
    size_t update_mask_len;
    /* An upload chunk: the upstream's own upload id, set by the door from its session (the
     * client's upload_id is skiff's session id and never goes); NUL-terminated, or NULL. */
    const char *upload_id;
};

/*
 * Checks the client's query for route rt and fills *q. Returns 0, or SKIFF_EINVAL with a
 * sentence for the client's 400 in msg: a byte a query may not hold raw (controls, space,
 * '#', bytes >= 0x80), a broken %-escape, an alt other than sse or json, a pageSize that is
 * not a number, a parameter skiff reads given twice. Parameters skiff does not forward are
 * not checked beyond their bytes.
 */
int skiff_upquery_parse(const char *query, size_t len, const struct skiff_route *rt,
                        struct skiff_upquery *q, char *msg, size_t msglen);

/* The upstream's answer head names this header value: what x-goog-upload-url holds (the
 * upstream's resumable session, which the Gemini door replaces with its own). */
#define SKIFF_UPLOAD_URL_HEADER "x-goog-upload-url"

/* The request for one upstream call. */
struct skiff_uprequest {
    struct skiff_buf buf;                       /* the url, then each header line, NUL-separated */
    const char *url;                            /* into buf */
    const char *headers[SKIFF_MAX_HEADERS + 3]; /* "name: value" into buf, NULL-terminated */
};

/*
 * Builds the request of one call to model for the client's req (routed as rt, its query
 * checked as q), carrying key. u is initialised here; release it with
 * skiff_uprequest_wipe once the transport has copied it (the key's bytes are in it).
 * Returns 0, SKIFF_EINVAL when model is not a model name (a fallback from the config), or
 * SKIFF_ENOMEM/SKIFF_ETOOBIG (nothing may go then: it could lack its key header).
 */
int skiff_uprequest_build(struct skiff_uprequest *u, const struct skiff_config *cfg,
                          const struct skiff_request *req, const struct skiff_route *rt,
                          const struct skiff_upquery *q, const char *model, const char *key);

/* Zeroes and frees what skiff_uprequest_build made. */
void skiff_uprequest_wipe(struct skiff_uprequest *u);

/*
 * A Live API session (a WebSocket to the upstream, relay/wstunnel.h). The client's headers
 * that go with its handshake, into u->headers (u->url stays NULL): the same allowlist as a
 * call's (user-agent, x-goog-api-client, traceparent, tracestate, forward_headers), without
 * content-type and accept; the client's credential, Origin, cookies and WebSocket headers
 * never go (the tunnel writes its own handshake). Release with skiff_uprequest_wipe.
 * Returns 0 or SKIFF_ETOOBIG.
 */
int skiff_uprequest_live_headers(struct skiff_uprequest *u, const struct skiff_config *cfg,
                                 const struct skiff_request *req);

/*
 * The session's URL appended to out: base_url, /ws/google.ai.generativelanguage.{version}.
 * GenerativeService.BidiGenerateContent?key={credential} (a pool key), or
 * ...BidiGenerateContentConstrained?access_token={credential} (an ephemeral token) when
 * constrained; the credential percent-encoded. version is "v1beta" or "v1alpha" (else
 * SKIFF_EINVAL). The buffer holds a credential: the caller wipes it. 0 or SKIFF_ETOOBIG.
 */
int skiff_uprequest_live_url(struct skiff_buf *out, const struct skiff_config *cfg,
                             const char *version, int constrained, const char *credential);

/* One "name: value" line of an upstream header block ("name: value\r\n" lines). */
struct skiff_hline {
    const char *name, *value;
    size_t name_len, value_len;
};

/* The next line of the block at *p (before end), advancing *p; 0 at its end. */
int skiff_hblock_next(const char **p, const char *end, struct skiff_hline *h);

/*
 * Adds to req's response the upstream headers (block[0..len)) a client may see, with every
 * key of pool in them starred out. Call once, before the response starts.
 */
void skiff_uprequest_forward_head(struct skiff_request *req, const char *block, size_t len,
                                  const struct skiff_keypool *pool);

/*
 * The upstream's content-type copied into out (pool keys starred out), or
 * "application/json; charset=UTF-8" when it sent none, sent one with a control byte in it,
 * or one that does not fit out.
 */
const char *skiff_uprequest_content_type(const char *block, size_t len,
                                         const struct skiff_keypool *pool, char *out,
                                         size_t outlen);

#endif
