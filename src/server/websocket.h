/*
 * The WebSocket opening handshake (RFC 6455 section 4.2) on top of the HTTP layer's upgrade
 * (http.h): checks a client's handshake and answers it 101 with Sec-WebSocket-Accept. No
 * extension (permessage-deflate) and no subprotocol is ever negotiated. Framing after the
 * handshake is the caller's (wslay).
 */
#ifndef SKIFF_WEBSOCKET_H
#define SKIFF_WEBSOCKET_H

#include <stddef.h>

#include "server/http.h"

/* Sec-WebSocket-Accept for a Sec-WebSocket-Key: base64(SHA-1(key + the RFC's GUID)), 28
 * characters and a NUL in out. */
void skiff_ws_accept(const char *key, size_t key_len, char out[29]);

/*
 * Whether req is a WebSocket handshake skiff can accept: GET, Upgrade: websocket with
 * Connection: upgrade, a Sec-WebSocket-Key of 16 bytes in base64, Sec-WebSocket-Version 13.
 * Returns 0, or the status to answer (400; 426 for another version, after adding
 * Sec-WebSocket-Version: 13 to req's response headers as the RFC asks) with *msg a sentence
 * that says what is wrong.
 */
int skiff_ws_check(struct skiff_request *req, const char **msg);

/*
 * Answers a handshake that passed skiff_ws_check: 101 with Upgrade, Connection and
 * Sec-WebSocket-Accept (and the headers the caller added), then the connection is a tunnel
 * (skiff_http_upgrade's contract). Returns NULL as skiff_http_upgrade does.
 */
struct skiff_tunnel *skiff_ws_upgrade(struct skiff_request *req, const struct skiff_tunnel_ops *ops,
                                      void *data);

#endif
