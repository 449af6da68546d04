/*
 * URLs as skiff prints them. An upstream or proxy URL may carry a password
 * (http://user:secret@proxy:3128): every place that prints one (the start line, 502 bodies,
 * `skiff doctor`, config errors, logs) goes through skiff_url_redact, so the userinfo never
 * leaves the process. And the one splitter of an http(s) URL into its parts, for the clients
 * that connect to one. Pure: no allocation.
 */
#ifndef SKIFF_URL_H
#define SKIFF_URL_H

#include <stddef.h>

/*
 * Copies text into out (NUL-terminated, cut to outlen-1 bytes) with the userinfo of every
 * URL in it replaced by three stars: "socks5://bob:pw@10.0.0.1:1080" is printed with
 * "***@10.0.0.1:1080" after its scheme. text may be one URL or a message that quotes URLs (a
 * libcurl error). Returns out. NULL text gives "".
 */
const char *skiff_url_redact(const char *text, char *out, size_t outlen);

/* An http(s) URL split in place: "http[s]://[user:pass@]host[:port][/target]". */
struct skiff_url_parts {
    int tls;              /* https:// */
    const char *userinfo; /* before the last '@' of the authority; userinfo_len 0 when none */
    size_t userinfo_len;
    const char *authority; /* host[:port] as written (the Host header) */
    size_t authority_len;
    const char *host; /* without an IPv6 address's brackets */
    size_t host_len;
    const char *port; /* digits; port_len 0 when the URL names none */
    size_t port_len;
    const char *target; /* from the first '/', '?' or '#' on; "" when the URL has none */
};

/*
 * Splits url into p. Returns 0, or -1 when url is not http:// or https://, or its
 * authority is malformed: no host, an unclosed '[', a port that is not digits, an '@' in
 * the host.
 */
int skiff_url_split(const char *url, struct skiff_url_parts *p);

#endif
