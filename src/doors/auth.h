/*
 * Client authentication: the relay's own tokens. A client presents its token the way the
 * Gemini SDKs present a key (x-goog-api-key, ?key=) or as Authorization: Bearer; tokens are
 * compared in constant time and never logged.
 */
#ifndef SKIFF_AUTH_H
#define SKIFF_AUTH_H

#include "config/config.h"
#include "server/http.h"

enum skiff_auth_result {
    SKIFF_AUTH_OK = 0,
    SKIFF_AUTH_MISSING, /* tokens are configured and the request carries none */
    SKIFF_AUTH_INVALID, /* a credential was given and matches no token */
};

/*
 * Checks req against cfg's tokens. With no tokens configured every request is let in (the
 * config refuses that on non-loopback addresses). On success *who is the token's name
 * (borrowed from cfg), or "anonymous".
 */
enum skiff_auth_result skiff_auth_check(const struct skiff_config *cfg,
                                        const struct skiff_request *req, const char **who);

/*
 * The same check for a door whose clients present the token in their own header (header,
 * e.g. "x-api-key" for Anthropic's) or as Authorization: Bearer; x-goog-api-key and ?key=
 * are not read.
 */
enum skiff_auth_result skiff_auth_check_header(const struct skiff_config *cfg,
                                               const struct skiff_request *req, const char *header,
                                               const char **who);

/*
 * The same check for a credential the door found itself (the Live API's ?access_token=):
 * cred[0..len) against cfg's tokens.
 */
enum skiff_auth_result skiff_auth_check_value(const struct skiff_config *cfg, const char *cred,
                                              size_t len, const char **who);

/*
 * Open mode (no tokens configured): whether req may be served. A request addressed to a name
 * that is not loopback (Host other than localhost, 127.0.0.0/8 or [::1]) or sent by a web page
 * of another origin (Origin not loopback) is refused, so that a page reached through DNS
 * rebinding cannot use the relay. Returns 0, or 403 with the message (saying how to add a
 * token) in msg. With tokens configured, returns 0.
 */
int skiff_auth_open_check(const struct skiff_config *cfg, const struct skiff_request *req,
                          char *msg, size_t msglen);

/*
 * CORS (config cors.origins): the Access-Control-Allow-Origin value for req, or NULL when
 * CORS is off, the request has no Origin, or its Origin is not listed. An exact entry gives
 * the origin itself (copied into out, NUL-terminated); "*" gives "*". skiff never sends
 * Access-Control-Allow-Credentials: its tokens travel in headers, never in cookies, so no
 * answer is ever "*" with credentials.
 */
const char *skiff_auth_cors(const struct skiff_config *cfg, const struct skiff_request *req,
                            char *out, size_t outlen);

/* Whether s[0..n) is host[:port] with a loopback host: localhost, 127.0.0.0/8 or [::1]. */
int skiff_auth_loopback_host(const char *s, size_t n);

/* Compares two byte strings in time that depends only on their lengths. */
int skiff_auth_equal(const char *a, size_t alen, const char *b, size_t blen);

#endif
