/* The seam between the server (accepting) and the HTTP layer. Internal to src/server/. */
#ifndef SKIFF_HTTP_CONN_H
#define SKIFF_HTTP_CONN_H

#include <uv.h>

struct skiff_worker;

/* Accepts a connection on server and starts reading HTTP requests from it. */
void skiff_http_accept(struct skiff_worker *w, uv_stream_t *server);

#endif
