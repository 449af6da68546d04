/*
 * The handler's side of a request: what it reads of the request (headers, query, peer) and
 * the writers of its response (a whole response, or a chunked one piece by piece). Every
 * response carries x-request-id and server-timing; the end of a response goes back to the
 * connection's side (http.c) through skiff_http_finish.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/err.h"
#include "base/log.h"
#include "base/num.h"
#include "server/conn.h"
#include "server/http.h"
#include "server/http_internal.h"
#include "server/worker.h"

/* ---- request accessors ---------------------------------------------------------------- */

const char *
skiff_http_header(const struct skiff_request *req, const char *name, size_t *len)
{
    size_t nlen = strlen(name);
    for (int i = 0; i < req->nheaders; i++) {
        const struct skiff_header *h = &req->headers[i];
        if (h->name_len == nlen && strncasecmp(h->name, name, nlen) == 0) {
            if (len)
                *len = h->value_len;
            return h->value;
        }
    }
    return NULL;
}

int
skiff_http_query(const struct skiff_request *req, const char *name, char *out, size_t outlen)
{
    size_t nlen = strlen(name);
    const char *p = req->query, *end = req->query + req->query_len;
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *stop = amp ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(stop - p));
        const char *kend = eq ? eq : stop;
        if ((size_t)(kend - p) == nlen && memcmp(p, name, nlen) == 0) {
            const char *v = eq ? eq + 1 : stop;
            size_t vlen = (size_t)(stop - v);
            if (outlen) {
                size_t n = vlen < outlen - 1 ? vlen : outlen - 1;
                memcpy(out, v, n);
                out[n] = '\0';
            }
            return (int)vlen;
        }
        p = stop + 1;
    }
    return -1;
}

int
skiff_http_peer_is_loopback(const struct skiff_request *req)
{
    return req->conn->peer_loopback;
}

uv_loop_t *
skiff_http_loop(const struct skiff_request *req)
{
    return &req->conn->worker->loop;
}

uint64_t
skiff_http_elapsed_us(const struct skiff_request *req)
{
    return (uv_hrtime() - req->start_ns) / 1000;
}

size_t
skiff_http_pending(const struct skiff_request *req)
{
    return req->conn->queued;
}

/* ---- responses ------------------------------------------------------------------------- */

const char *
skiff_http_reason(int status)
{
    switch (status) {
    case 100:
        return "Continue";
    case 200:
        return "OK";
    case 204:
        return "No Content";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 409:
        return "Conflict";
    case 413:
        return "Payload Too Large";
    case 414:
        return "URI Too Long";
    case 426:
        return "Upgrade Required";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 499:
        return "Client Closed Request";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    default:
        return status < 300 ? "OK" : status < 500 ? "Bad Request" : "Internal Server Error";
    }
}

static int
has_crlf(const char *s, size_t n)
{
    return memchr(s, '\r', n) || memchr(s, '\n', n);
}

int
skiff_http_add_headern(struct skiff_request *req, const char *name, size_t name_len,
                       const char *value, size_t value_len)
{
    if (has_crlf(name, name_len) || has_crlf(value, value_len))
        return SKIFF_EINVAL;
    size_t mark = req->out_hdrs.len;
    if (skiff_buf_reserve(&req->out_hdrs, name_len + value_len + 4) ||
        skiff_buf_add(&req->out_hdrs, name, name_len) || skiff_buf_add(&req->out_hdrs, ": ", 2) ||
        skiff_buf_add(&req->out_hdrs, value, value_len) ||
        skiff_buf_add(&req->out_hdrs, "\r\n", 2)) {
        req->out_hdrs.len = mark;
        return SKIFF_ETOOBIG;
    }
    return 0;
}

int
skiff_http_add_header(struct skiff_request *req, const char *name, const char *value)
{
    return skiff_http_add_headern(req, name, strlen(name), value, strlen(value));
}

/* The response head under construction: appends that would overflow are dropped. */
struct head {
    char *p;
    size_t len, cap;
};

static void
put(struct head *h, const char *s, size_t n)
{
    if (n && n <= h->cap - h->len) {
        memcpy(h->p + h->len, s, n);
        h->len += n;
    }
}

static void
put_str(struct head *h, const char *s)
{
    put(h, s, strlen(s));
}

static void
put_uint(struct head *h, uint64_t v)
{
    char d[20];
    put(h, d, skiff_fmt_uint(d, v, 10));
}

/* Writes the status line and headers into out; returns their length. Every response
 * passes here, so it appends by hand rather than through printf. */
static size_t
format_head(struct skiff_request *req, int status, const char *content_type, long long length,
            char *out, size_t cap)
{
    struct head h = {out, 0, cap};
    uint64_t us = skiff_http_elapsed_us(req);
    const char *name = req->conn->worker->opts->name;
    char frac[3] = {(char)('0' + us / 100 % 10), (char)('0' + us / 10 % 10), (char)('0' + us % 10)};
    put_str(&h, "HTTP/1.1 ");
    put_uint(&h, (uint64_t)status);
    put(&h, " ", 1);
    put_str(&h, skiff_http_reason(status));
    put_str(&h, "\r\nx-request-id: ");
    put_str(&h, req->id);
    put_str(&h, "\r\nserver-timing: ");
    put_str(&h, name ? name : "skiff");
    put_str(&h, ";dur=");
    put_uint(&h, us / 1000);
    put(&h, ".", 1);
    put(&h, frac, 3);
    put(&h, "\r\n", 2);
    if (content_type) {
        put_str(&h, "content-type: ");
        put_str(&h, content_type);
        put(&h, "\r\n", 2);
    }
    put(&h, req->out_hdrs.data, req->out_hdrs.len);
    if (length >= 0) {
        put_str(&h, "content-length: ");
        put_uint(&h, (uint64_t)length);
        put(&h, "\r\n", 2);
    } else {
        put_str(&h, "transfer-encoding: chunked\r\n");
    }
    if (!req->keep_alive)
        put_str(&h, "connection: close\r\n");
    put(&h, "\r\n", 2);
    return h.len;
}

/* Writes bufs for req, counting what the connection accepted. */
static void
send_bufs(struct skiff_request *req, const uv_buf_t *bufs, unsigned n)
{
    if (skiff_conn_write(req->conn, bufs, n) == 0)
        for (unsigned i = 0; i < n; i++)
            req->bytes_out += bufs[i].len;
}

void
skiff_http_respond(struct skiff_request *req, int status, const char *content_type,
                   const char *body, size_t len)
{
    if (req->ended || req->status)
        return;
    req->status = status;
    char head[SKIFF_HTTP_MAX_OUT_HDRS + 512];
    int is_head = strcmp(req->method, "HEAD") == 0;
    size_t hlen = format_head(req, status, content_type, (long long)len, head, sizeof head);
    uv_buf_t bufs[2] = {uv_buf_init(head, (unsigned)hlen),
                        uv_buf_init((char *)body, (unsigned)len)};
    send_bufs(req, bufs, is_head || len == 0 ? 1 : 2);
    skiff_http_finish(req, 1);
}

void
skiff_http_start(struct skiff_request *req, int status, const char *content_type)
{
    if (req->ended || req->status)
        return;
    req->status = status;
    req->chunked = 1;
    char head[SKIFF_HTTP_MAX_OUT_HDRS + 512];
    size_t hlen = format_head(req, status, content_type, -1, head, sizeof head);
    uv_buf_t b = uv_buf_init(head, (unsigned)hlen);
    send_bufs(req, &b, 1);
    /* out_hdrs is read only by format_head, and no head follows this one (respond and a
     * second start return at once now that status is set; end just closes the chunks). A
     * stream may stay open for long: free the headers now rather than at the next request.
     * The buffer stays usable (its max is kept): request_reset empties it, on_close frees
     * it, and a header added after this point, never sent, is just held until then. */
    skiff_buf_release(&req->out_hdrs);
}

size_t
skiff_http_write(struct skiff_request *req, const void *data, size_t len)
{
    if (req->ended || !req->chunked || len == 0)
        return req->ended ? 0 : req->conn->queued;
    char size[24];
    size_t n = skiff_fmt_uint(size, len, 16);
    /* NOLINTNEXTLINE(bugprone-not-null-terminated-result): size is sent by length. */
    memcpy(size + n, "\r\n", 2);
    n += 2;
    uv_buf_t bufs[3] = {uv_buf_init(size, (unsigned)n), uv_buf_init((char *)data, (unsigned)len),
                        uv_buf_init("\r\n", 2)};
    send_bufs(req, bufs, 3);
    return req->conn->queued;
}

void
skiff_http_end(struct skiff_request *req)
{
    if (req->ended)
        return;
    if (!req->chunked) {
        skiff_http_respond(req, req->status ? req->status : 204, NULL, NULL, 0);
        return;
    }
    uv_buf_t b = uv_buf_init("0\r\n\r\n", 5);
    send_bufs(req, &b, 1);
    skiff_http_finish(req, 1);
}

void
skiff_http_abort(struct skiff_request *req, const char *reason)
{
    if (req->ended)
        return;
    if (!req->status)
        req->status = 502;
    req->keep_alive = 0;
    struct skiff_log l;
    skiff_log_begin(&l, SKIFF_LOG_WARN, "response_aborted");
    skiff_log_str(&l, "id", req->id);
    skiff_log_str(&l, "reason", reason);
    skiff_log_end(&l);
    skiff_http_finish(req, 0);
}

void
skiff_http_reset(struct skiff_request *req)
{
    if (req->ended)
        return;
    if (!req->status)
        req->status = 502;
    req->ended = 1;
    skiff_conn_reset(req->conn, "reset by the handler");
}
