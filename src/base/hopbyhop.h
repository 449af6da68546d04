/* The headers that never travel on. The one list of hop-by-hop header fields: those that describe
 * one connection and never travel on (RFC 9110 7.6.1, plus keep-alive and proxy-connection of older
 * peers). A field that a Connection header names is hop-by-hop too; that is the caller's to check.
 */
#ifndef SKIFF_HOPBYHOP_H
#define SKIFF_HOPBYHOP_H

#include <stddef.h>

/* A header name with its length, in lists that skiff_name_in looks names up in. */
struct skiff_name {
    const char *s;
    size_t n;
};
#define SKIFF_NAME(lit)                                                                            \
    {                                                                                              \
        (lit), sizeof(lit) - 1                                                                     \
    }

/* Whether name[0..n) is one of list[0..count), ignoring case (lengths compared first). */
int skiff_name_in(const char *name, size_t n, const struct skiff_name *list, size_t count);

/* Whether name[0..n) (any case) is connection, keep-alive, proxy-connection, te, trailer,
 * transfer-encoding or upgrade. */
int skiff_hop_by_hop(const char *name, size_t n);

/*
 * Why a header name may never be listed in upstreams.gemini.forward_headers (a sentence for
 * the config error), or NULL when it may: names that are not RFC 9110 tokens, hop-by-hop
 * and framing fields, credentials (the client's never go; the pool key is skiff's to
 * send), accept-encoding (skiff reads the bodies) and skiff's own x-skiff-* controls.
 */
const char *skiff_header_unlistable(const char *name);

#endif
