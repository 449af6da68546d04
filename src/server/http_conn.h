/* The seam between the server (accepting) and the HTTP layer. Internal to src/server/. */
#ifndef SKIFF_HTTP_CONN_H
#define SKIFF_HTTP_CONN_H

#include <uv.h>

struct skiff_worker;

/* Accepts a connection on server and starts reading HTTP requests from it. */
void skiff_http_accept(struct skiff_worker *w, uv_stream_t *server);

/*
 * The drain (w->draining is set): every request in flight will end its connection after
 * its response (Connection: close), as will every request dispatched from now on.
 */
void skiff_http_drain_begin(struct skiff_worker *w);

/*
 * The drain time is over: each request still in flight is handed to the server's cut
 * callback, which must end it visibly. Returns how many there were.
 */
int skiff_http_drain_cut(struct skiff_worker *w);

/* Whether some connection still has response bytes queued for its client. */
int skiff_http_flushing(const struct skiff_worker *w);

#endif
