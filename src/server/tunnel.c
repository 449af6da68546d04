/*
 * Protocol upgrades: a request answered "101 Switching Protocols" turns its connection into a
 * tunnel, raw bytes both ways (the contract is in http.h). Knows no protocol beyond HTTP's
 * upgrade: what the bytes mean (WebSocket frames) is the handler's.
 *
 * Invariants:
 * - The connection (conn.c) stays the one owner of the socket; after the upgrade http.c hands
 *   its events to the tunnel (skiff_tunnel_conn_*), so the connection accounting, the send
 *   timeout, the drain and the stop see a tunnel as any other connection.
 * - The bytes that came after the head (held while the handler decided) are delivered first,
 *   from the connection's timer, never from inside skiff_http_upgrade; bytes read before
 *   they are delivered are appended to them, so order is kept.
 * - t lives until the connection closes. A close while one of t's callbacks is on the stack
 *   (the handler closing from on_read, a write failing) frees t only once that callback has
 *   returned (depth, dead).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/buf.h"
#include "base/log.h"
#include "server/conn.h"
#include "server/http.h"
#include "server/http_internal.h"

#define MAX_EARLY (256 * 1024) /* bytes held before the handler has had the first ones */
#define TUNNEL_LINGER_MS 1000  /* after skiff_tunnel_close: the client's bytes read and dropped */

struct skiff_tunnel {
    struct skiff_conn *conn;
    const struct skiff_tunnel_ops *ops;
    void *data;
    struct skiff_buf early; /* not yet delivered: the bytes after the head, and any since */
    int paused;
    int closed;  /* skiff_tunnel_close was called, or the connection is closing: no callbacks */
    int depth;   /* callbacks of t on the stack */
    int dead;    /* the connection closed under a callback: free once it returns */
    char id[40]; /* the request's id, for the close's log line */
    uint64_t start_ns;
    uint64_t bytes_in, bytes_out;
};

/* ---- the request side ----------------------------------------------------------------- */

/* Whether the comma-separated list s (n bytes) holds token (case-insensitive). */
static int
list_has(const char *s, size_t n, const char *token)
{
    size_t tl = strlen(token);
    size_t i = 0;
    while (i < n) {
        while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == ','))
            i++;
        size_t b = i;
        while (i < n && s[i] != ',')
            i++;
        size_t e = i;
        while (e > b && (s[e - 1] == ' ' || s[e - 1] == '\t'))
            e--;
        if (e - b == tl && strncasecmp(s + b, token, tl) == 0)
            return 1;
    }
    return 0;
}

const char *
skiff_http_upgrade_token(const struct skiff_request *req, size_t *len)
{
    int connection_upgrade = 0;
    const char *up = NULL;
    size_t uplen = 0;
    for (int i = 0; i < req->nheaders; i++) {
        const struct skiff_header *hd = &req->headers[i];
        if (hd->name_len == 10 && strncasecmp(hd->name, "connection", 10) == 0)
            connection_upgrade |= list_has(hd->value, hd->value_len, "upgrade");
        else if (hd->name_len == 7 && strncasecmp(hd->name, "upgrade", 7) == 0 && !up) {
            up = hd->value;
            uplen = hd->value_len;
        }
    }
    if (!connection_upgrade || !up)
        return NULL;
    /* The first protocol of the list, without its version ("websocket", "h2c"). */
    size_t b = 0;
    while (b < uplen && (up[b] == ' ' || up[b] == '\t'))
        b++;
    size_t e = b;
    while (e < uplen && up[e] != ',' && up[e] != ' ' && up[e] != '\t' && up[e] != '/')
        e++;
    if (e == b)
        return NULL;
    if (len)
        *len = e - b;
    return up + b;
}

/* Whether the handler added a response header called name (out_hdrs is "Name: value\r\n"...). */
static int
has_out_header(const struct skiff_request *req, const char *name)
{
    size_t nl = strlen(name);
    const char *p = req->out_hdrs.data, *end = p + req->out_hdrs.len;
    while (p && p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if ((size_t)(end - p) > nl && p[nl] == ':' && strncasecmp(p, name, nl) == 0)
            return 1;
        p = eol ? eol + 1 : end;
    }
    return 0;
}

struct skiff_tunnel *
skiff_http_upgrade(struct skiff_request *req, const struct skiff_tunnel_ops *ops, void *data)
{
    size_t toklen;
    const char *tok = skiff_http_upgrade_token(req, &toklen);
    if (!tok || !skiff_http_upgradable(req))
        return NULL;
    struct skiff_tunnel *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->conn = req->conn;
    t->ops = ops;
    t->data = data;
    t->start_ns = req->start_ns;
    snprintf(t->id, sizeof t->id, "%s", req->id);
    skiff_buf_init(&t->early, MAX_EARLY);

    struct skiff_buf head;
    skiff_buf_init(&head, SKIFF_HTTP_MAX_OUT_HDRS + 1024);
    int rc = skiff_buf_adds(&head, "HTTP/1.1 101 Switching Protocols\r\nx-request-id: ");
    rc = rc ? rc : skiff_buf_adds(&head, req->id);
    rc = rc ? rc : skiff_buf_add(&head, "\r\n", 2);
    if (!rc && !has_out_header(req, "connection"))
        rc = skiff_buf_adds(&head, "connection: upgrade\r\n");
    if (!rc && !has_out_header(req, "upgrade")) {
        rc = skiff_buf_adds(&head, "upgrade: ");
        rc = rc ? rc : skiff_buf_add(&head, tok, toklen);
        rc = rc ? rc : skiff_buf_add(&head, "\r\n", 2);
    }
    if (!rc && req->out_hdrs.len)
        rc = skiff_buf_add(&head, req->out_hdrs.data, req->out_hdrs.len);
    rc = rc ? rc : skiff_buf_add(&head, "\r\n", 2);
    if (rc) {
        skiff_buf_release(&head);
        free(t);
        return NULL;
    }
    uv_buf_t b = uv_buf_init(head.data, (unsigned)head.len);
    if (skiff_conn_write(req->conn, &b, 1) == 0)
        req->bytes_out += head.len;
    skiff_buf_release(&head);

    struct skiff_buf early;
    skiff_http_become_tunnel(req, t, &early);
    t->early = early;
    t->early.max = MAX_EARLY > early.len ? MAX_EARLY : early.len;
    /* What came after the head goes first, from the loop; reading goes on meanwhile. */
    if (t->early.len)
        skiff_conn_timer(t->conn, 0);
    skiff_conn_read_start(t->conn);
    return t;
}

/* ---- the handler's side --------------------------------------------------------------- */

void *
skiff_tunnel_data(const struct skiff_tunnel *t)
{
    return t->data;
}

size_t
skiff_tunnel_write(struct skiff_tunnel *t, const void *data, size_t len)
{
    if (t->closed || t->dead)
        return 0;
    if (len) {
        uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
        if (skiff_conn_write(t->conn, &b, 1) == 0)
            t->bytes_out += len;
    }
    return t->conn->queued;
}

void
skiff_tunnel_pause(struct skiff_tunnel *t)
{
    if (t->closed || t->dead || t->paused)
        return;
    t->paused = 1;
    skiff_conn_read_stop(t->conn);
}

void
skiff_tunnel_resume(struct skiff_tunnel *t)
{
    if (t->closed || t->dead || !t->paused)
        return;
    t->paused = 0;
    if (t->early.len)
        skiff_conn_timer(t->conn, 0); /* delivered from the loop, not under the caller */
    else
        skiff_conn_read_start(t->conn);
}

static void
log_close(const struct skiff_tunnel *t, const char *reason)
{
    if (!skiff_log_enabled(SKIFF_LOG_INFO))
        return;
    struct skiff_log l;
    skiff_log_begin(&l, SKIFF_LOG_INFO, "tunnel_closed");
    skiff_log_str(&l, "id", t->id);
    skiff_log_int(&l, "ms", (long long)((uv_hrtime() - t->start_ns) / 1000000));
    skiff_log_int(&l, "bytes_in", (long long)t->bytes_in);
    skiff_log_int(&l, "bytes_out", (long long)t->bytes_out);
    skiff_log_str(&l, "reason", reason);
    skiff_log_end(&l);
}

void
skiff_tunnel_close(struct skiff_tunnel *t)
{
    if (t->closed || t->dead)
        return;
    t->closed = 1;
    /* Lingering, as a refused request's connection closes: the client may still be sending
     * (the message a close frame refuses), and closing with its bytes unread would reset the
     * connection, losing the close frame on its way to the client. */
    skiff_conn_read_start(t->conn);
    skiff_conn_linger(t->conn, TUNNEL_LINGER_MS);
}

/* ---- the connection's events (from http.c) -------------------------------------------- */

static void
tunnel_free(struct skiff_tunnel *t)
{
    skiff_buf_release(&t->early);
    free(t);
}

/* Hands bytes to on_read. Returns 0, or -1 when t is gone (freed) and must not be touched. */
static int
deliver(struct skiff_tunnel *t, const char *data, size_t len)
{
    t->bytes_in += len;
    t->depth++;
    t->ops->on_read(t, data, len);
    if (--t->depth == 0 && t->dead) {
        tunnel_free(t);
        return -1;
    }
    return 0;
}

void
skiff_tunnel_conn_read(struct skiff_tunnel *t, const char *data, size_t len)
{
    if (t->closed)
        return; /* closing after skiff_tunnel_close: the client's last bytes are dropped */
    if (t->early.len || t->paused) {
        /* Behind bytes not yet delivered (or read before the pause took effect). */
        if (skiff_buf_add(&t->early, data, len)) {
            skiff_conn_close(t->conn, "tunnel: out of memory for the client's bytes");
            return;
        }
        if (t->early.len >= MAX_EARLY)
            skiff_conn_read_stop(t->conn);
        return;
    }
    deliver(t, data, len);
}

/* The timer: the bytes held since the upgrade (or the pause), then reading again. */
void
skiff_tunnel_conn_timer(struct skiff_tunnel *t)
{
    if (t->closed || t->paused)
        return;
    if (t->early.len) {
        struct skiff_buf b = t->early;
        skiff_buf_init(&t->early, MAX_EARLY);
        int gone = deliver(t, b.data, b.len);
        skiff_buf_release(&b);
        if (gone)
            return;
    }
    if (!t->closed && !t->paused && !t->dead)
        skiff_conn_read_start(t->conn);
}

void
skiff_tunnel_conn_drain(struct skiff_tunnel *t)
{
    if (t->closed || !t->ops->on_drain)
        return;
    t->depth++;
    t->ops->on_drain(t);
    if (--t->depth == 0 && t->dead)
        tunnel_free(t);
}

void
skiff_tunnel_conn_shutdown(struct skiff_tunnel *t)
{
    if (t->closed)
        return; /* already flushing towards its close */
    if (!t->ops->on_shutdown) {
        skiff_conn_close(t->conn, "server draining: the drain time is over");
        return;
    }
    t->depth++;
    t->ops->on_shutdown(t);
    if (--t->depth == 0 && t->dead)
        tunnel_free(t);
}

void
skiff_tunnel_conn_close(struct skiff_tunnel *t, const char *reason)
{
    log_close(t, reason);
    if (!t->closed) {
        t->closed = 1;
        t->depth++;
        if (t->ops->on_close)
            t->ops->on_close(t, reason);
        t->depth--;
    }
    if (t->depth > 0) {
        t->dead = 1; /* a callback of t is on the stack: it frees t when it returns */
        return;
    }
    tunnel_free(t);
}
