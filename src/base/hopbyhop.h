/* The one list of hop-by-hop header fields: those that describe one connection and never
 * travel on (RFC 9110 7.6.1, plus keep-alive and proxy-connection of older peers). A field
 * that a Connection header names is hop-by-hop too; that is the caller's to check. */
#ifndef SKIFF_HOPBYHOP_H
#define SKIFF_HOPBYHOP_H

#include <stddef.h>

/* Whether name[0..n) (any case) is connection, keep-alive, proxy-connection, te, trailer,
 * transfer-encoding or upgrade. */
int skiff_hop_by_hop(const char *name, size_t n);

#endif
