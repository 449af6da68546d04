/*
 * TLS for the upstream client, on OpenSSL with memory BIOs: the caller moves ciphertext
 * between the socket and the session, so TLS runs on the worker's libuv loop like any other
 * bytes. TLS parsing and record handling are OpenSSL's; this module only sets a session up
 * the way an https client must (certificate and host name checked, SNI, ALPN, resumption)
 * and names failures in words.
 *
 * A context holds the trust store (the system's, plus upstreams.gemini.ca_file) and is
 * shared by the sessions of one client. A session belongs to one connection.
 *
 * Ciphertext in: skiff_tls_feed. Ciphertext out: whatever OpenSSL wants sent (handshake
 * records, encrypted requests) accumulates until the caller takes it with
 * skiff_tls_out/skiff_tls_out_consume. Plaintext out: skiff_tls_read until it returns 0;
 * OpenSSL may hold decrypted bytes that no socket event will announce, so a caller that
 * stopped reading must call skiff_tls_read again before it waits for the socket.
 */
#ifndef SKIFF_TLS_H
#define SKIFF_TLS_H

#include <stddef.h>
#include <sys/types.h>

struct skiff_tls_ctx;
struct skiff_tls;

/* A context trusting the system store and, when ca_file is set, the certificates in it.
 * ALPN offers alpn (wire format: length-prefixed names). NULL on failure, with the reason
 * in err. */
struct skiff_tls_ctx *skiff_tls_ctx_new(const char *ca_file, const unsigned char *alpn,
                                        size_t alpn_len, char *err, size_t errlen);
void skiff_tls_ctx_free(struct skiff_tls_ctx *ctx);

/* A client session to host (a name: SNI and name check; an IP literal: address check).
 * session_slot (may be NULL) holds a resumable session for the host: used to resume, and
 * replaced whenever the server issues a new one; it must outlive the session and be freed
 * with skiff_tls_session_slot_free. NULL when out of memory. */
struct skiff_tls *skiff_tls_new(struct skiff_tls_ctx *ctx, const char *host, void **session_slot);
void skiff_tls_free(struct skiff_tls *t);
void skiff_tls_session_slot_free(void **session_slot);

/* Ciphertext from the socket. 0, or -1 when out of memory. */
int skiff_tls_feed(struct skiff_tls *t, const char *data, size_t len);

/* Drives the handshake: 1 when complete, 0 when it needs more ciphertext, -1 when it failed
 * (skiff_tls_error says why). */
int skiff_tls_handshake(struct skiff_tls *t);

/* The protocol ALPN selected ("http/1.1", "h2"), or "" when none was. */
void skiff_tls_alpn(const struct skiff_tls *t, const char **name, size_t *len);

/* The session keeps its record buffers between reads and writes (they go back while idle
 * otherwise): for a connection that carries many calls (HTTP/2), where a buffer freed after
 * each record is allocated again for the next. */
void skiff_tls_keep_buffers(struct skiff_tls *t);

/* Decrypted bytes into out: >0 bytes, 0 when it needs more ciphertext, -1 at the end of the
 * stream (the peer's close_notify; skiff_tls_error is empty then) or on an error. */
ssize_t skiff_tls_read(struct skiff_tls *t, char *out, size_t cap);

/* Encrypts len bytes; the records wait in the output. 0, or -1 on an error. */
int skiff_tls_write(struct skiff_tls *t, const char *data, size_t len);

/* Ciphertext waiting to be sent: points *data at it and returns its length. */
size_t skiff_tls_out(struct skiff_tls *t, const char **data);
void skiff_tls_out_consume(struct skiff_tls *t, size_t n);

/* Makes t a session to an https:// proxy (before the handshake): ALPN offers http/1.1 alone
 * whatever the context offers (CONNECT is HTTP/1.1), and messages name the proxy. 0, or -1
 * when out of memory. */
int skiff_tls_for_proxy(struct skiff_tls *t);

/* Why the last call failed, in words ("the upstream's certificate is not trusted
 * (self-signed certificate)..."); "" when it did not. */
const char *skiff_tls_error(const struct skiff_tls *t);

#endif
