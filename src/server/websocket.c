#include "server/websocket.h"

#include <string.h>
#include <strings.h>

#include <openssl/evp.h>
#include <openssl/sha.h>

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

void
skiff_ws_accept(const char *key, size_t key_len, char out[29])
{
    unsigned char md[SHA_DIGEST_LENGTH] = {0};
    unsigned int mdlen = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx || !EVP_DigestInit_ex(ctx, EVP_sha1(), NULL) || !EVP_DigestUpdate(ctx, key, key_len) ||
        !EVP_DigestUpdate(ctx, WS_GUID, sizeof WS_GUID - 1) || !EVP_DigestFinal_ex(ctx, md, &mdlen))
        memset(md, 0, sizeof md); /* out of memory: an accept no client takes */
    EVP_MD_CTX_free(ctx);
    EVP_EncodeBlock((unsigned char *)out, md, SHA_DIGEST_LENGTH); /* 28 chars and a NUL */
}

/* Whether s is 16 bytes in base64: 22 characters of the alphabet and "==". */
static int
key_ok(const char *s, size_t n)
{
    if (n != 24 || s[22] != '=' || s[23] != '=')
        return 0;
    for (size_t i = 0; i < 22; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '+' || c == '/'))
            return 0;
    }
    return 1;
}

int
skiff_ws_check(struct skiff_request *req, const char **msg)
{
    size_t n;
    const char *tok = skiff_http_upgrade_token(req, &n);
    if (!tok || n != 9 || strncasecmp(tok, "websocket", 9) != 0) {
        *msg = "this path speaks WebSocket: send Upgrade: websocket with Connection: Upgrade";
        return 400;
    }
    if (strcmp(req->method, "GET") != 0) {
        *msg = "a WebSocket handshake is a GET request (RFC 6455 4.1)";
        return 400;
    }
    size_t vn;
    const char *v = skiff_http_header(req, "sec-websocket-version", &vn);
    if (!v || vn != 2 || memcmp(v, "13", 2) != 0) {
        skiff_http_add_header(req, "sec-websocket-version", "13");
        *msg = "skiff speaks WebSocket version 13 only (Sec-WebSocket-Version: 13, RFC 6455)";
        return 426;
    }
    size_t kn;
    const char *k = skiff_http_header(req, "sec-websocket-key", &kn);
    if (!k || !key_ok(k, kn)) {
        *msg = "the WebSocket handshake needs a Sec-WebSocket-Key of 16 random bytes in base64 "
               "(RFC 6455 4.1)";
        return 400;
    }
    return 0;
}

struct skiff_tunnel *
skiff_ws_upgrade(struct skiff_request *req, const struct skiff_tunnel_ops *ops, void *data)
{
    size_t kn;
    const char *k = skiff_http_header(req, "sec-websocket-key", &kn);
    if (!k)
        return NULL;
    char accept[29];
    skiff_ws_accept(k, kn, accept);
    if (skiff_http_add_header(req, "upgrade", "websocket") ||
        skiff_http_add_header(req, "connection", "Upgrade") ||
        skiff_http_add_header(req, "sec-websocket-accept", accept))
        return NULL;
    return skiff_http_upgrade(req, ops, data);
}
