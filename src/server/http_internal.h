/* What the response writers (http_respond.c) need of the connection's side (http.c).
 * Internal to src/server/. */
#ifndef SKIFF_HTTP_INTERNAL_H
#define SKIFF_HTTP_INTERNAL_H

#include "server/http.h"

#define SKIFF_HTTP_MAX_OUT_HDRS (8 * 1024) /* extra response headers */

/* The response is over (clean: not aborted); the handler has let go of req. Logs it once
 * its bytes are written, then closes or goes on with the next request. */
void skiff_http_finish(struct skiff_request *req, int clean);

#endif
