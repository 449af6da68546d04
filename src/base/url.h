/*
 * URLs as skiff prints them. An upstream or proxy URL may carry a password
 * (http://user:secret@proxy:3128): every place that prints one (the start line, 502 bodies,
 * `skiff doctor`, config errors, logs) goes through skiff_url_redact, so the userinfo never
 * leaves the process. Pure: no allocation.
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

#endif
