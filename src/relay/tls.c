/*
 * TLS sessions on memory BIOs (relay/tls.h). OpenSSL does every byte of TLS; this file
 * configures it as an https client must and turns its failures into sentences.
 */
#include "relay/tls.h"

#include <arpa/inet.h>
#include <limits.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct skiff_tls_ctx {
    SSL_CTX *ctx;
};

struct skiff_tls {
    SSL *ssl;
    BIO *rbio, *wbio; /* owned by ssl */
    void **slot;      /* where this host's resumable session lives, or NULL */
    const char *peer; /* who is at the other end, for messages: "upstream" or "proxy" */
    char err[320];
};

/* A new session ticket (TLS 1.3 sends them after the handshake): it replaces the host's. */
static int
new_session(SSL *ssl, SSL_SESSION *sess)
{
    struct skiff_tls *t = SSL_get_app_data(ssl);
    if (!t || !t->slot)
        return 0;
    if (*t->slot)
        SSL_SESSION_free(*t->slot);
    *t->slot = sess;
    return 1; /* the reference is ours now */
}

struct skiff_tls_ctx *
skiff_tls_ctx_new(const char *ca_file, const unsigned char *alpn, size_t alpn_len, char *err,
                  size_t errlen)
{
    struct skiff_tls_ctx *c = calloc(1, sizeof *c);
    if (!c || !(c->ctx = SSL_CTX_new(TLS_client_method()))) {
        snprintf(err, errlen, "out of memory setting up TLS");
        free(c);
        return NULL;
    }
    SSL_CTX_set_min_proto_version(c->ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(c->ctx, SSL_VERIFY_PEER, NULL);
    /* Buffers go back while a connection is idle: thousands of kept connections (an HTTP/2
     * one, busy with many calls, keeps them: skiff_tls_keep_buffers). */
    SSL_CTX_set_mode(c->ctx, SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_default_verify_paths(c->ctx);
    if (ca_file && *ca_file && SSL_CTX_load_verify_locations(c->ctx, ca_file, NULL) != 1) {
        char why[200];
        ERR_error_string_n(ERR_get_error(), why, sizeof why);
        ERR_clear_error();
        snprintf(err, errlen, "could not load upstreams.gemini.ca_file %s (%s)", ca_file, why);
        skiff_tls_ctx_free(c);
        return NULL;
    }
    if (alpn_len && SSL_CTX_set_alpn_protos(c->ctx, alpn, (unsigned)alpn_len) != 0) {
        snprintf(err, errlen, "out of memory setting up TLS");
        skiff_tls_ctx_free(c);
        return NULL;
    }
    SSL_CTX_set_session_cache_mode(c->ctx,
                                   SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(c->ctx, new_session);
    return c;
}

void
skiff_tls_ctx_free(struct skiff_tls_ctx *c)
{
    if (!c)
        return;
    SSL_CTX_free(c->ctx); /* reference-counted: live sessions keep it */
    free(c);
}

struct skiff_tls *
skiff_tls_new(struct skiff_tls_ctx *c, const char *host, void **session_slot)
{
    struct skiff_tls *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->slot = session_slot;
    t->peer = "upstream";
    t->ssl = SSL_new(c->ctx);
    t->rbio = BIO_new(BIO_s_mem());
    t->wbio = BIO_new(BIO_s_mem());
    if (!t->ssl || !t->rbio || !t->wbio) {
        BIO_free(t->rbio);
        BIO_free(t->wbio);
        SSL_free(t->ssl);
        free(t);
        return NULL;
    }
    BIO_set_mem_eof_return(t->rbio, -1); /* empty means "more to come", not the end */
    SSL_set_bio(t->ssl, t->rbio, t->wbio);
    SSL_set_app_data(t->ssl, t);
    SSL_set_connect_state(t->ssl);
    unsigned char ip[sizeof(struct in6_addr)];
    int literal = inet_pton(AF_INET, host, ip) == 1 || inet_pton(AF_INET6, host, ip) == 1;
    int ok = literal ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(t->ssl), host)
                     : SSL_set_tlsext_host_name(t->ssl, host) && SSL_set1_host(t->ssl, host);
    if (!ok) {
        skiff_tls_free(t);
        return NULL;
    }
    if (session_slot && *session_slot)
        SSL_set_session(t->ssl, *session_slot);
    return t;
}

void
skiff_tls_free(struct skiff_tls *t)
{
    if (!t)
        return;
    /* OpenSSL marks the session of a connection freed without a shutdown as not resumable;
     * a quiet shutdown (nothing sent: the socket is gone) keeps it usable for the next. */
    SSL_set_quiet_shutdown(t->ssl, 1);
    SSL_shutdown(t->ssl);
    SSL_free(t->ssl);
    free(t);
}

void
skiff_tls_session_slot_free(void **slot)
{
    if (slot && *slot) {
        SSL_SESSION_free(*slot);
        *slot = NULL;
    }
}

int
skiff_tls_feed(struct skiff_tls *t, const char *data, size_t len)
{
    while (len > 0) {
        int n = len > INT_MAX ? INT_MAX : (int)len;
        if (BIO_write(t->rbio, data, n) != n)
            return -1;
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Puts the reason for a failed SSL call into t->err. */
static void
set_error(struct skiff_tls *t, int e)
{
    long v = SSL_get_verify_result(t->ssl);
    unsigned long code = ERR_peek_error();
    if (v != X509_V_OK && code) {
        snprintf(t->err, sizeof t->err,
                 "the %s's TLS certificate could not be verified (%s); for a private CA "
                 "set upstreams.gemini.ca_file",
                 t->peer, X509_verify_cert_error_string(v));
    } else if (code) {
        char why[200];
        ERR_error_string_n(code, why, sizeof why);
        snprintf(t->err, sizeof t->err, "TLS with the %s failed (%s)", t->peer, why);
    } else if (e == SSL_ERROR_ZERO_RETURN || e == SSL_ERROR_SYSCALL) {
        snprintf(t->err, sizeof t->err, "the %s closed the TLS connection", t->peer);
    } else {
        snprintf(t->err, sizeof t->err, "TLS with the %s failed (error %d)", t->peer, e);
    }
    ERR_clear_error();
}

int
skiff_tls_handshake(struct skiff_tls *t)
{
    ERR_clear_error();
    int rc = SSL_do_handshake(t->ssl);
    if (rc == 1)
        return 1;
    int e = SSL_get_error(t->ssl, rc);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
        return 0;
    set_error(t, e);
    return -1;
}

void
skiff_tls_alpn(const struct skiff_tls *t, const char **name, size_t *len)
{
    const unsigned char *p = NULL;
    unsigned n = 0;
    SSL_get0_alpn_selected(t->ssl, &p, &n);
    *name = p ? (const char *)p : "";
    *len = p ? n : 0;
}

void
skiff_tls_keep_buffers(struct skiff_tls *t)
{
    SSL_clear_mode(t->ssl, SSL_MODE_RELEASE_BUFFERS);
}

ssize_t
skiff_tls_read(struct skiff_tls *t, char *out, size_t cap)
{
    ERR_clear_error();
    int n = SSL_read(t->ssl, out, cap > INT_MAX ? INT_MAX : (int)cap);
    if (n > 0)
        return n;
    int e = SSL_get_error(t->ssl, n);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
        return 0;
    if (e == SSL_ERROR_ZERO_RETURN) {
        t->err[0] = '\0';
        return -1;
    }
    set_error(t, e);
    return -1;
}

int
skiff_tls_write(struct skiff_tls *t, const char *data, size_t len)
{
    ERR_clear_error();
    while (len > 0) {
        int n = len > INT_MAX ? INT_MAX : (int)len;
        int rc = SSL_write(t->ssl, data, n);
        if (rc <= 0) {
            set_error(t, SSL_get_error(t->ssl, rc));
            return -1;
        }
        data += rc;
        len -= (size_t)rc;
    }
    return 0;
}

size_t
skiff_tls_out(struct skiff_tls *t, const char **data)
{
    char *p = NULL;
    long n = BIO_get_mem_data(t->wbio, &p);
    *data = p;
    return n > 0 ? (size_t)n : 0;
}

void
skiff_tls_out_consume(struct skiff_tls *t, size_t n)
{
    const char *p;
    if (n >= skiff_tls_out(t, &p)) {
        (void)BIO_reset(t->wbio);
        return;
    }
    char scrap[4096];
    while (n > 0) {
        int k = BIO_read(t->wbio, scrap, n < sizeof scrap ? (int)n : (int)sizeof scrap);
        if (k <= 0)
            break;
        n -= (size_t)k;
    }
}

const char *
skiff_tls_error(const struct skiff_tls *t)
{
    return t->err;
}

int
skiff_tls_for_proxy(struct skiff_tls *t)
{
    static const unsigned char h1[] = "\x08http/1.1";
    t->peer = "proxy";
    return SSL_set_alpn_protos(t->ssl, h1, sizeof h1 - 1) == 0 ? 0 : -1;
}
