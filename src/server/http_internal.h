/* What the response writers (http_respond.c) need of the connection's side (http.c).
 * Internal to src/server/. */
#ifndef SKIFF_HTTP_INTERNAL_H
#define SKIFF_HTTP_INTERNAL_H

#include "server/http.h"

#define SKIFF_HTTP_MAX_OUT_HDRS (8 * 1024) /* extra response headers */

/* The response is over (clean: not aborted); the handler has let go of req. Logs it once
 * its bytes are written, then closes or goes on with the next request. */
void skiff_http_finish(struct skiff_request *req, int clean);

/* ---- the seam with tunnel.c (protocol upgrades) ---- */

struct skiff_tunnel;

/* Whether req may be answered 101: an upgrade head, in the handler's hands, not answered. */
int skiff_http_upgradable(const struct skiff_request *req);

/* tunnel.c -> http.c: req has been answered 101 and the connection belongs to t from now on:
 * logs the request, ends it, and moves the bytes that arrived after its head into *early
 * (initialized by the caller, which then owns them). */
void skiff_http_become_tunnel(struct skiff_request *req, struct skiff_tunnel *t,
                              struct skiff_buf *early);

/* http.c -> tunnel.c: the connection's events once it is a tunnel (conn.h's ops). */
void skiff_tunnel_conn_read(struct skiff_tunnel *t, const char *data, size_t len);
void skiff_tunnel_conn_drain(struct skiff_tunnel *t);
void skiff_tunnel_conn_timer(struct skiff_tunnel *t);
/* The drain's time is over: on_shutdown, or the connection is closed. */
void skiff_tunnel_conn_shutdown(struct skiff_tunnel *t);
/* The connection is closing: on_close (unless the handler closed it), then t is freed. */
void skiff_tunnel_conn_close(struct skiff_tunnel *t, const char *reason);

#endif
