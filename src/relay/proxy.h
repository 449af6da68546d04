/*
 * Tunnels to the upstream through upstreams.gemini.proxy, for skiff's own client: an http://
 * proxy's CONNECT (RFC 9110 §9.3.6, with Basic credentials from the URL) and SOCKS5 (RFC
 * 1928; socks5h:// lets the proxy resolve the name, socks5:// sends an address; RFC 1929
 * username/password). Pure: the
 * handshake is bytes in, bytes out, so every split of a reply can be tested.
 *
 * The credentials never leave this module except inside the bytes sent to the proxy, and
 * no message it writes quotes them.
 */
#ifndef SKIFF_PROXY_H
#define SKIFF_PROXY_H

#include <stddef.h>
#include <sys/types.h>

#include "base/buf.h"

enum skiff_proxy_kind {
    SKIFF_PROXY_HTTP,
    SKIFF_PROXY_SOCKS5,  /* the caller resolves the upstream and passes the address */
    SKIFF_PROXY_SOCKS5H, /* the proxy resolves the upstream's name */
};

struct skiff_proxy {
    enum skiff_proxy_kind kind;
    int tls;        /* https:// (kind SKIFF_PROXY_HTTP): TLS to the proxy, then CONNECT */
    char host[256]; /* brackets stripped from an IPv6 literal */
    char port[8];
    char user[256]; /* percent-decoded; "" for none */
    char pass[256];
};

/* Parses an http://, https://, socks5:// or socks5h:// proxy URL ([user[:pass]@]host[:port],
 * default ports 80, 443 and 1080; the scheme in any case). 0, or -1 for another scheme or a
 * URL this module cannot take. */
int skiff_proxy_parse(const char *url, struct skiff_proxy *p);

/* Splits the userinfo of a URL (the n bytes before '@': "user[:pass]") into its
 * percent-decoded parts. 0, or -1 when a part does not fit or an escape is broken. */
int skiff_userinfo_decode(const char *s, size_t n, char *user, size_t ucap, char *pass,
                          size_t pcap);

/* Appends "FIELD: Basic base64(user:pass)\r\n" (the scratch it used is wiped). 0, or -1
 * when out is full or the credentials are longer than 255 bytes each. */
int skiff_basic_auth_header(const char *field, const char *user, const char *pass,
                            struct skiff_buf *out);

/* Appends "proxy-authorization: Basic ...\r\n" when the URL had credentials (for a request
 * forwarded through an http:// proxy, and for CONNECT). 0, or -1 when out is full. */
int skiff_proxy_auth_header(const struct skiff_proxy *p, struct skiff_buf *out);

/* The handshake with the proxy for a tunnel to host:port. */
struct skiff_proxy_hs {
    const struct skiff_proxy *proxy; /* borrowed */
    int state;
    char host[256], port[8];
    char reply[1024]; /* a reply gathered across reads */
    size_t have;
};

/* Starts the handshake: the first bytes for the proxy go into out. For socks5:// host must
 * be a numeric address (the caller resolved the name). 0, or -1 when out is full or the
 * target cannot be named (a host longer than SOCKS allows, a name for socks5://). */
int skiff_proxy_begin(struct skiff_proxy_hs *hs, const struct skiff_proxy *p, const char *host,
                      const char *port, struct skiff_buf *out);

/*
 * Feeds bytes from the proxy. Returns how many it used (the rest, if any, came from the
 * upstream through the tunnel), and sets *done once the tunnel is open; further bytes for
 * the proxy, if the handshake has another step, go into out. -1 on a refusal or garbage,
 * with the reason in err ("the proxy refused the tunnel: HTTP 407 ...").
 */
ssize_t skiff_proxy_feed(struct skiff_proxy_hs *hs, const char *in, size_t len,
                         struct skiff_buf *out, int *done, char *err, size_t errlen);

#endif
