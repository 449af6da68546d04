/*
 * HTTP/1.1 glue: http-parser callbacks fill a struct skiff_request, the handler answers it
 * through the writers below. One request per connection is in the handler at a time; bytes
 * that arrive meanwhile (pipelining) wait in `pending` and are parsed after the response.
 *
 * Phases of a connection: IDLE (between requests, idle timeout) -> HEAD (header timeout)
 * -> BODY (idle timeout between reads, body timeout for the whole) -> HANDLING (no timer:
 * the handler owns deadlines) -> back to IDLE once the response's bytes are all written,
 * or closed. Between HEAD and BODY the head is judged (head_complete): RFC 9112's checks,
 * the server's on_head hook, which may answer before a byte of the body is read, and the
 * body limits.
 *
 * The connection's side lives here (parsing, phases, timers, the access log, the drain);
 * the strict scanners are in http_scan.c, the handler's accessors and the response writers
 * in http_respond.c.
 */
#include "server/http.h"

#include <http_parser.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/err.h"
#include "base/num.h"
#include "base/log.h"
#include "server/conn.h"
#include "server/http_conn.h"
#include "server/http_internal.h"
#include "server/http_scan.h"
#include "server/worker.h"

#define MAX_PENDING (256 * 1024)  /* pipelined bytes held while a request is handled */
#define KEEP_BODY_MEM (16 * 1024) /* larger body buffers are freed between requests */

enum phase { IDLE, HEAD, BODY, HANDLING };

struct http {
    struct skiff_conn *conn;
    http_parser parser;
    struct skiff_request req;
    enum phase phase;
    struct skiff_buf pending;
    /*
     * Header parsing: req.head may move as it grows, so until the headers are complete
     * req.headers[i].name_len and .value_len hold the offsets of the name and the value in
     * it (which fit: the head is at most SKIFF_HTTP_MAX_HEAD bytes), and the count is kept here,
     * not in req.nheaders, so that nobody sees a half-built header (refuse's error handler may look
     * headers up). on_headers_complete turns the offsets into pointers and lengths.
     */
    int nparsed;
    int in_value;
    int url_done;
    int fail_status; /* set by a callback that stopped the parser on purpose */
    int linger;      /* the client may still be sending: close gracefully */
    const char *fail_msg;
    int inflight; /* the request is counted in the worker's inflight (see the drain below) */
    struct skiff_headscan hs;
    struct skiff_chunkscan cs;
    size_t head_end;        /* where head_scan saw the head end in the bytes being parsed */
    int in_head_hook;       /* on_head runs: finish leaves the rest to answered_at_head */
    int end_clean;          /* the response ended cleanly (not aborted) */
    int log_pending;        /* the response ended; its log line waits for its bytes to go */
    int flushing;           /* keep-alive: the next request waits for the response's bytes */
    uint64_t body_deadline; /* loop ms by which the whole body must be in; 0: none */
    size_t charged;         /* body bytes counted in the workers' limits.max_buffered_bytes */

    /* After 101: the connection's events go to the tunnel (tunnel.c). */
    struct skiff_tunnel *tunnel;
    /* A streamed body (skiff_http_stream_body): */
    int streamed;            /* chosen by on_head; the handler runs from the end of the head */
    int stream_live;         /* dispatched and not yet let go of: the handler owns req */
    int stream_held;         /* pieces wait in hold until skiff_http_body_resume */
    int stream_in_cb;        /* inside on_body or on_body_end: a resume there only unholds */
    int body_done;           /* the whole body has been read */
    int end_told;            /* on_body_end was called */
    uint64_t streamed_bytes; /* body bytes read so far */
    struct skiff_buf hold;   /* pieces read while held */
};

static void inflight_begin(struct http *h);
static void inflight_end(struct http *h);
static int stream_piece(struct http *h, const char *at, size_t len);
static int stream_let_go(struct http *h);
static void stream_end(struct http *h);
static void arm_body_timer(struct http *h);

/* The 413 of a body over a limit, naming it (a thread's static buffer). */
static const char *
too_large(const char *limit, unsigned long long bytes, const char *fix)
{
    static _Thread_local char msg[200];
    snprintf(msg, sizeof msg, "the request body is larger than %s (%llu bytes); %s", limit, bytes,
             fix);
    return msg;
}

static const char *
upload_too_large(const struct skiff_server_opts *o)
{
    return too_large("limits.max_upload_bytes", (unsigned long long)o->max_upload_bytes,
                     "upload the file in smaller chunks or raise the limit");
}

static const char *
body_too_large(const struct skiff_server_opts *o)
{
    return too_large("limits.max_body_bytes", (unsigned long long)o->max_body_bytes,
                     "send less (a file belongs in an upload) or raise the limit");
}

static struct http *
http_of(struct skiff_conn *c)
{
    return c->upper;
}

/* ---- request parsing ---------------------------------------------------------------- */

static const char busy_msg[] = "skiff is holding too many request bodies at once "
                               "(limits.max_buffered_bytes); retry in a moment";

static int
fail(struct http *h, int status, const char *msg)
{
    h->fail_status = status;
    h->fail_msg = msg;
    return -1; /* stops http-parser (1 would mean "no body" from on_headers_complete) */
}

/* Counts n more body bytes against the process-wide limits.max_buffered_bytes. */
static int
charge(struct http *h, size_t n)
{
    struct skiff_worker *w = h->conn->worker;
    size_t cap = w->opts->max_buffered_bytes;
    size_t before = atomic_fetch_add(w->buffered, n);
    if (cap && before + n > cap) {
        atomic_fetch_sub(w->buffered, n);
        return -1;
    }
    h->charged += n;
    return 0;
}

static void
uncharge(struct http *h)
{
    if (h->charged)
        atomic_fetch_sub(h->conn->worker->buffered, h->charged);
    h->charged = 0;
}

static int
expects_body(const http_parser *p)
{
    return (p->flags & F_CHUNKED) || (p->content_length > 0 && p->content_length != ULLONG_MAX);
}

static int
end_url(struct http *h)
{
    if (h->url_done)
        return 0;
    h->url_done = 1;
    return skiff_buf_add(&h->req.head, "", 1);
}

static int
on_url(http_parser *p, const char *at, size_t len)
{
    struct http *h = p->data;
    if (skiff_buf_add(&h->req.head, at, len))
        return fail(h, 414, "the request line is too long (the limit is 64 KiB)");
    return 0;
}

static int
on_header_field(http_parser *p, const char *at, size_t len)
{
    struct http *h = p->data;
    struct skiff_request *r = &h->req;
    /* After the head, http-parser reports a chunked body's trailer fields through these
     * callbacks too. They are dropped: appending them to req.head could move it under the
     * pointers on_headers_complete handed out (a use after free). */
    if (h->phase == BODY)
        return 0;
    if (end_url(h))
        return fail(h, 431, "request headers are too large (the limit is 64 KiB)");
    if (h->in_value || h->nparsed == 0) {
        if (h->nparsed == SKIFF_MAX_HEADERS)
            return fail(h, 431, "too many request headers (the limit is 64)");
        if (h->nparsed > 0 && skiff_buf_add(&r->head, "", 1))
            return fail(h, 431, "request headers are too large (the limit is 64 KiB)");
        r->headers[h->nparsed++].name_len = (uint32_t)r->head.len; /* an offset for now */
        h->in_value = 0;
    }
    if (skiff_buf_add(&r->head, at, len))
        return fail(h, 431, "request headers are too large (the limit is 64 KiB)");
    return 0;
}

static int
on_header_value(http_parser *p, const char *at, size_t len)
{
    struct http *h = p->data;
    struct skiff_request *r = &h->req;
    if (h->phase == BODY)
        return 0; /* a trailer field (see on_header_field) */
    if (!h->in_value) {
        if (skiff_buf_add(&r->head, "", 1))
            return fail(h, 431, "request headers are too large (the limit is 64 KiB)");
        r->headers[h->nparsed - 1].value_len = (uint32_t)r->head.len; /* an offset for now */
        h->in_value = 1;
    }
    if (skiff_buf_add(&r->head, at, len))
        return fail(h, 431, "request headers are too large (the limit is 64 KiB)");
    return 0;
}

/* The head is parsed: fill in the request and pause, so that parse() judges the head from
 * outside http-parser (head_complete) before a byte of the body is read. */
static int
on_headers_complete(http_parser *p)
{
    struct http *h = p->data;
    struct skiff_request *r = &h->req;

    if (end_url(h) || (h->nparsed > 0 && skiff_buf_add(&r->head, "", 1)))
        return fail(h, 431, "request headers are too large (the limit is 64 KiB)");

    /* The head buffer no longer moves: turn offsets into pointers. */
    char *base = r->head.data;
    for (int i = 0; i < h->nparsed; i++) {
        struct skiff_header *hd = &r->headers[i];
        hd->name = base + hd->name_len;
        hd->value = base + hd->value_len;
        hd->name_len = (uint32_t)strlen(hd->name);
        hd->value_len = (uint32_t)strlen(hd->value);
        /* http-parser leaves optional whitespace after a value. */
        while (hd->value_len &&
               (hd->value[hd->value_len - 1] == ' ' || hd->value[hd->value_len - 1] == '\t'))
            ((char *)hd->value)[--hd->value_len] = '\0';
    }
    r->nheaders = h->nparsed;
    char *url = base;
    char *q = strchr(url, '?');
    if (q) {
        *q = '\0';
        r->query = q + 1;
        r->query_len = strlen(q + 1);
    } else {
        r->query = "";
        r->query_len = 0;
    }
    r->path = url;
    r->path_len = strlen(url);
    r->method = http_method_str((enum http_method)p->method);
    h->phase = BODY;
    http_parser_pause(p, 1);
    return 0;
}

static int
on_body(http_parser *p, const char *at, size_t len)
{
    struct http *h = p->data;
    struct skiff_buf *b = &h->req.bodybuf;
    if (h->streamed)
        return stream_piece(h, at, len);
    if (b->len + len > h->charged) {
        /* A chunked body: counted as it grows, 64 KiB at a time. */
        size_t more = b->len + len - h->charged;
        if (charge(h, more > 64 * 1024 ? more : 64 * 1024))
            return fail(h, 503, busy_msg);
    }
    if (skiff_buf_add(b, at, len))
        return fail(h, 413, body_too_large(h->conn->worker->opts));
    return 0;
}

static int
on_message_complete(http_parser *p)
{
    struct http *h = p->data;
    h->phase = HANDLING;
    http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings settings = {
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* Resets the per-request state for the next request on the connection. */
static void
request_reset(struct http *h)
{
    struct skiff_request *r = &h->req;
    struct skiff_buf head = r->head, body = r->bodybuf, out = r->out_hdrs;
    skiff_buf_reset(&head);
    if (body.cap > KEEP_BODY_MEM)
        skiff_buf_release(&body);
    skiff_buf_reset(&body);
    skiff_buf_reset(&out);
    uncharge(h);
    memset(r, 0, sizeof *r);
    r->head = head;
    r->bodybuf = body;
    r->out_hdrs = out;
    r->conn = h->conn;
    r->server_data = h->conn->worker->data;
    h->nparsed = 0;
    h->in_value = 0;
    h->url_done = 0;
    h->fail_status = 0;
    h->fail_msg = NULL;
    h->end_clean = 0;
    h->body_deadline = 0;
    h->streamed = h->stream_live = h->stream_held = h->stream_in_cb = 0;
    h->body_done = h->end_told = 0;
    h->streamed_bytes = 0;
    if (h->hold.cap > KEEP_BODY_MEM)
        skiff_buf_release(&h->hold);
    skiff_buf_reset(&h->hold);
    memset(&h->hs, 0, sizeof h->hs);
    memset(&h->cs, 0, sizeof h->cs);
    http_parser_init(&h->parser, HTTP_REQUEST);
    h->parser.data = h;
}

static int
sane_id(const char *s, size_t n)
{
    if (n == 0 || n >= sizeof(((struct skiff_request *)0)->id))
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.'))
            return 0;
    }
    return 1;
}

/* The request's identity, taken when its head is complete: id, start time, keep-alive. */
static void
begin_request(struct http *h)
{
    struct skiff_request *r = &h->req;
    struct skiff_worker *w = h->conn->worker;
    /* After an upgrade head the client speaks another protocol: never parse it as HTTP. */
    r->keep_alive = !h->parser.upgrade && http_should_keep_alive(&h->parser);
    r->start_ns = uv_hrtime();
    size_t n;
    const char *id = skiff_http_header(r, "x-request-id", &n);
    if (id && sane_id(id, n)) {
        memcpy(r->id, id, n);
        r->id[n] = '\0';
    } else {
        /* "%02x%06x%08llx" of worker, nonce and counter, without printf on the hot path */
        uint64_t parts[3] = {w->index & 0xff, w->srv_nonce & 0xffffff, ++w->next_request};
        int widths[3] = {2, 6, 8};
        size_t len = 0;
        for (int i = 0; i < 3; i++) {
            char d[20];
            size_t dn = skiff_fmt_uint(d, parts[i], 16);
            for (size_t pad = dn; pad < (size_t)widths[i]; pad++)
                r->id[len++] = '0';
            memcpy(r->id + len, d, dn);
            len += dn;
        }
        r->id[len] = '\0';
    }
}

static void
dispatch(struct http *h)
{
    struct skiff_request *r = &h->req;
    struct skiff_worker *w = h->conn->worker;
    r->body = r->bodybuf.data ? r->bodybuf.data : "";
    r->body_len = r->bodybuf.len;
    skiff_conn_timer_stop(h->conn);
    inflight_begin(h);
    if (w->draining)
        r->keep_alive = 0;
    w->opts->handler(r, w->data);
}

/* Answers a request the parser refused, then closes the connection. */
static void
refuse(struct http *h, int status, const char *msg)
{
    struct skiff_request *r = &h->req;
    if (h->stream_live && stream_let_go(h))
        return;
    if (!r->path)
        r->path = "";
    if (!r->method)
        r->method = "";
    if (!r->query)
        r->query = "";
    r->keep_alive = 0;
    r->start_ns = uv_hrtime();
    if (!r->id[0])
        snprintf(r->id, sizeof r->id, "refused");
    h->linger = 1;
    h->phase = HANDLING;
    const struct skiff_server_opts *o = h->conn->worker->opts;
    if (o->error) {
        o->error(r, status, msg);
    } else {
        char body[512];
        int len = snprintf(
            body, sizeof body,
            "{\n  \"error\": {\n    \"code\": %d,\n    \"message\": \"%s\"\n  }\n}\n", status, msg);
        skiff_http_respond(r, status, "application/json; charset=UTF-8", body, (size_t)len);
    }
}

/* What RFC 9112 refuses in a parsed head; 0, or a status with *msg. */
static int
check_head(struct http *h, const char **msg)
{
    const http_parser *p = &h->parser;
    const struct skiff_request *r = &h->req;
    if (p->http_major != 1 || p->http_minor > 1) {
        *msg = "skiff speaks HTTP/1.1 (and HTTP/1.0); the request names another version";
        return 505;
    }
    int hosts = 0, lengths = 0, codings = 0, chunked = 0;
    for (int i = 0; i < r->nheaders; i++) {
        const struct skiff_header *hd = &r->headers[i];
        if (hd->name_len == 4 && strncasecmp(hd->name, "host", 4) == 0)
            hosts++;
        else if (hd->name_len == 14 && strncasecmp(hd->name, "content-length", 14) == 0)
            lengths++;
        else if (hd->name_len == 17 && strncasecmp(hd->name, "transfer-encoding", 17) == 0) {
            codings++;
            chunked = hd->value_len == 7 && strncasecmp(hd->value, "chunked", 7) == 0;
        }
    }
    if (hosts > 1 || (hosts == 0 && p->http_minor == 1)) {
        *msg = hosts ? "the request carries more than one Host header (RFC 9112 3.2)"
                     : "an HTTP/1.1 request needs a Host header (RFC 9112 3.2)";
        return 400;
    }
    if (codings && lengths) {
        *msg = "the request carries both Content-Length and Transfer-Encoding (RFC 9112 6.3)";
        return 400;
    }
    if (codings && (codings > 1 || !chunked)) {
        *msg = "skiff accepts no transfer coding but chunked (Transfer-Encoding: chunked)";
        return 501;
    }
    if (p->upgrade && p->method == HTTP_CONNECT) {
        *msg = "skiff is not a forward proxy: CONNECT is not supported";
        return 400;
    }
    if (p->upgrade && expects_body(p)) {
        *msg = "a protocol upgrade request carries no body (send it without Content-Length or "
               "Transfer-Encoding)";
        return 400;
    }
    return 0;
}

/*
 * The head is in and the body not yet read: the checks, the server's on_head hook, the
 * body limits, 100-continue. Returns 0 to read the body, 1 when on_head answered, -1 when
 * the request was refused (then h must not be touched).
 */
static int
head_complete(struct http *h)
{
    http_parser *p = &h->parser;
    struct skiff_request *r = &h->req;
    struct skiff_worker *w = h->conn->worker;
    const struct skiff_server_opts *o = w->opts;
    const char *msg;
    int status = check_head(h, &msg);
    if (status) {
        refuse(h, status, msg);
        return -1;
    }
    begin_request(h);
    int body = expects_body(p);
    if (o->on_head) {
        if (body)
            r->keep_alive = 0; /* an answer now closes the connection: the body is not read */
        h->in_head_hook = 1;
        o->on_head(r, w->data);
        h->in_head_hook = 0;
        if (r->ended)
            return 1;
        r->keep_alive = !p->upgrade && http_should_keep_alive(p);
    }
    if (h->streamed) {
        if (p->content_length != ULLONG_MAX && o->max_upload_bytes &&
            p->content_length > o->max_upload_bytes) {
            refuse(h, 413, upload_too_large(o));
            return -1;
        }
        r->body_expected = p->content_length != ULLONG_MAX ? (int64_t)p->content_length : -1;
    } else if (p->content_length != ULLONG_MAX && p->content_length > o->max_body_bytes) {
        refuse(h, 413, body_too_large(o));
        return -1;
    }
    if (body && !h->streamed && p->content_length != ULLONG_MAX) {
        if (charge(h, (size_t)p->content_length)) {
            refuse(h, 503, busy_msg);
            return -1;
        }
        if (skiff_buf_reserve(&r->bodybuf, (size_t)p->content_length)) {
            refuse(h, 503, "out of memory for the request body");
            return -1;
        }
    }

    /* A client that waits for "100 Continue" before sending its body gets it now. */
    size_t elen;
    const char *expect = skiff_http_header(r, "expect", &elen);
    if (body && expect && elen == 12 && strncasecmp(expect, "100-continue", 12) == 0) {
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        uv_buf_t b = uv_buf_init((char *)cont, sizeof cont - 1);
        skiff_conn_write(h->conn, &b, 1);
    }
    if (body && !h->streamed && o->body_timeout_ms > 0)
        h->body_deadline = uv_now(&w->loop) + (uint64_t)o->body_timeout_ms;
    return 0;
}

/* In BODY: the idle timeout between reads, cut short by what is left of body_timeout_ms. */
static void
arm_body_timer(struct http *h)
{
    uint64_t ms = (uint64_t)h->conn->worker->opts->idle_timeout_ms;
    if (h->body_deadline) {
        uint64_t now = uv_now(&h->conn->worker->loop);
        uint64_t left = h->body_deadline > now ? h->body_deadline - now : 0;
        if (left < ms)
            ms = left;
    }
    skiff_conn_timer(h->conn, ms);
}

static void after_response(struct http *h);

/*
 * on_head answered: the body is never read. A request that had a body closes (lingering, so
 * the client reads the answer); one without goes on, the bytes after its head (rest) being
 * the next request.
 */
static void
answered_at_head(struct http *h, const char *rest, size_t restlen)
{
    if (expects_body(&h->parser))
        h->linger = 1;
    else if (restlen && skiff_buf_add(&h->pending, rest, restlen))
        h->linger = 1;
    h->phase = HANDLING;
    after_response(h);
}

/*
 * Parses bytes; dispatches a complete request. Bytes after a complete request wait in
 * pending. Must not touch h after dispatch or refuse: the connection may be closed.
 */
static void
parse(struct http *h, const char *data, size_t len)
{
    const char *msg;
    int status;
    if (h->phase == IDLE) {
        h->phase = HEAD;
        skiff_conn_timer(h->conn, (uint64_t)h->conn->worker->opts->header_timeout_ms);
    }
    if (h->phase == HEAD) {
        long k = skiff_head_scan(&h->hs, data, len, &status, &msg);
        if (k < 0) {
            refuse(h, status, msg);
            return;
        }
        h->head_end = (size_t)k;
    }
    if (h->phase == BODY && (h->parser.flags & F_CHUNKED) &&
        skiff_chunk_scan(&h->cs, data, len, &msg)) {
        refuse(h, 400, msg);
        return;
    }
    size_t n = http_parser_execute(&h->parser, &settings, data, len);
    enum http_errno e = HTTP_PARSER_ERRNO(&h->parser);
    if (e == HPE_PAUSED && h->phase == BODY) {
        /* Paused in on_headers_complete: data[n] is the head's last byte, which http-parser
         * reads once more when it resumes; the body starts after it. */
        if (h->head_end != n + 1) {
            refuse(h, 400, "malformed HTTP request head");
            return;
        }
        int rc = head_complete(h);
        if (rc < 0)
            return;
        if (rc > 0) {
            answered_at_head(h, data + n + 1, len - n - 1);
            return;
        }
        if ((h->parser.flags & F_CHUNKED) &&
            skiff_chunk_scan(&h->cs, data + n + 1, len - n - 1, &msg)) {
            refuse(h, 400, msg);
            return;
        }
        if (h->streamed) {
            /* The handler takes the body as it comes: it runs now, the pieces wait. */
            h->stream_live = 1;
            h->stream_held = 1;
            dispatch(h);
            if (h->req.ended || h->conn->closing)
                return;
        }
        http_parser_pause(&h->parser, 0);
        data += n;
        len -= n;
        n = http_parser_execute(&h->parser, &settings, data, len);
        e = HTTP_PARSER_ERRNO(&h->parser);
    }
    if (h->streamed && (h->req.ended || h->conn->closing))
        return; /* answered while its body came: the connection closes after the answer */
    if (e == HPE_PAUSED) {
        if (n < len && skiff_buf_add(&h->pending, data + n, len - n)) {
            skiff_conn_close(h->conn, "too many pipelined bytes");
            return;
        }
        if (h->streamed)
            stream_end(h);
        else
            dispatch(h);
        return;
    }
    if (e != HPE_OK) {
        if (h->fail_status) {
            refuse(h, h->fail_status, h->fail_msg);
            return;
        }
        char emsg[160];
        snprintf(emsg, sizeof emsg, "malformed HTTP request: %s", http_errno_description(e));
        refuse(h, 400, emsg);
        return;
    }
    if (h->phase == BODY && !(h->streamed && h->hold.len >= SKIFF_HTTP_STREAM_HOLD))
        arm_body_timer(h);
}

/* Parses what waited while the previous request was handled. */
static void
parse_pending(struct http *h)
{
    struct skiff_buf p = h->pending;
    skiff_buf_init(&h->pending, MAX_PENDING);
    parse(h, p.data, p.len);
    skiff_buf_release(&p);
}

static void
on_read(struct skiff_conn *c, const char *data, size_t len)
{
    struct http *h = http_of(c);
    if (h->tunnel) {
        skiff_tunnel_conn_read(h->tunnel, data, len);
        return;
    }
    if (h->phase == HANDLING) {
        /* Keep reading while the handler works, so a client that goes away is noticed
         * at once; hold its next request until this one is answered. */
        if (skiff_buf_add(&h->pending, data, len))
            skiff_conn_read_stop(c);
        return;
    }
    parse(h, data, len);
}

static void
on_timer(struct skiff_conn *c)
{
    struct http *h = http_of(c);
    if (h->tunnel) {
        skiff_tunnel_conn_timer(h->tunnel);
        return;
    }
    switch (h->phase) {
    case IDLE:
        if (h->pending.len)
            parse_pending(h);
        else
            skiff_conn_close(c, "idle timeout");
        break;
    case HEAD:
        refuse(h, 408, "the request headers did not arrive in time (limits.header_timeout_ms)");
        break;
    case BODY:
        if (h->streamed && h->stream_held && h->hold.len)
            break; /* held for the handler (backpressure): not the client's stall */
        if (h->body_deadline && uv_now(&c->worker->loop) >= h->body_deadline)
            refuse(h, 408, "the request body did not arrive in time (limits.body_timeout_ms)");
        else
            refuse(h, 408, "the request body stalled (limits.idle_timeout_ms)");
        break;
    case HANDLING:
        break;
    }
}

static void
on_drain(struct skiff_conn *c)
{
    struct http *h = http_of(c);
    if (h->tunnel) {
        skiff_tunnel_conn_drain(h->tunnel);
        return;
    }
    if (h->phase == HANDLING && !h->req.ended && h->req.on_drain)
        h->req.on_drain(&h->req);
}

static void log_request(struct http *h, const char *cut);
static void next_request(struct http *h);

/* Every byte queued is written: the ended response's log line, then the next request. */
static void
on_flushed(struct skiff_conn *c)
{
    struct http *h = http_of(c);
    if (h->log_pending)
        log_request(h, NULL);
    if (h->flushing) {
        h->flushing = 0;
        next_request(h);
    }
}

static void
on_close(struct skiff_conn *c, const char *reason)
{
    struct http *h = http_of(c);
    struct skiff_request *r = &h->req;
    if (h->tunnel) {
        struct skiff_tunnel *t = h->tunnel;
        h->tunnel = NULL;
        skiff_tunnel_conn_close(t, reason);
    }
    if ((h->phase == HANDLING || h->stream_live) && !r->ended) {
        r->ended = 1;
        h->stream_live = 0;
        struct skiff_log l;
        skiff_log_begin(&l, SKIFF_LOG_INFO, "client_gone");
        skiff_log_str(&l, "id", r->id);
        skiff_log_str(&l, "path", r->path);
        skiff_log_str(&l, "reason", reason);
        skiff_log_end(&l);
        if (r->on_abort)
            r->on_abort(r);
        if (!r->status)
            r->status = 499;
        h->end_clean = 1;
        h->log_pending = 1; /* the access log has this request too, cut short */
    }
    inflight_end(h);
    if (h->log_pending)
        log_request(h, reason); /* the response ended, its bytes did not all go */
    uncharge(h);
    skiff_buf_release(&r->head);
    skiff_buf_release(&r->bodybuf);
    skiff_buf_release(&r->out_hdrs);
    skiff_buf_release(&h->pending);
    skiff_buf_release(&h->hold);
}

static const struct skiff_conn_ops http_ops = {
    .on_read = on_read,
    .on_drain = on_drain,
    .on_timer = on_timer,
    .on_flushed = on_flushed,
    .on_close = on_close,
};

void
skiff_http_accept(struct skiff_worker *w, uv_stream_t *server)
{
    struct skiff_conn *c = skiff_conn_accept(w, server, &http_ops, sizeof(struct http));
    if (!c)
        return;
    struct http *h = http_of(c);
    h->conn = c;
    skiff_buf_init(&h->req.head, SKIFF_HTTP_MAX_HEAD);
    skiff_buf_init(&h->req.bodybuf, w->opts->max_body_bytes);
    skiff_buf_init(&h->req.out_hdrs, SKIFF_HTTP_MAX_OUT_HDRS);
    skiff_buf_init(&h->pending, MAX_PENDING);
    /* Reading stops at SKIFF_HTTP_STREAM_HOLD; what one parse hands over (a read, or the
     * pipelined bytes that waited) may come on top. */
    skiff_buf_init(&h->hold, SKIFF_HTTP_STREAM_HOLD + MAX_PENDING + sizeof w->readbuf);
    request_reset(h);
    h->phase = IDLE;
    if (w->nconns > w->max_conns) {
        skiff_log_msg(SKIFF_LOG_WARN, "conn_refused", "limits.max_connections reached");
        skiff_conn_close(c, "limits.max_connections reached");
        return;
    }
    skiff_conn_timer(c, (uint64_t)w->opts->header_timeout_ms);
}

/*
 * The request's access-log line, once its response ended and its bytes are written (cut
 * NULL), or once the connection closed before they were (cut is why). "bytes" counts what
 * the socket took: head, body and chunk framing.
 */
static void
log_request(struct http *h, const char *cut)
{
    struct skiff_request *req = &h->req;
    h->log_pending = 0;
    if (!skiff_log_enabled(SKIFF_LOG_INFO))
        return;
    uint64_t unwritten = cut ? skiff_conn_unwritten(h->conn) : 0;
    struct skiff_log l;
    skiff_log_begin(&l, SKIFF_LOG_INFO, "request");
    skiff_log_str(&l, "id", req->id);
    skiff_log_str(&l, "method", req->method);
    skiff_log_str(&l, "path", req->path); /* never the query: it may hold ?key= */
    skiff_log_int(&l, "status", req->status);
    skiff_log_int(&l, "us", (long long)skiff_http_elapsed_us(req));
    skiff_log_int(&l, "bytes",
                  (long long)(req->bytes_out > unwritten ? req->bytes_out - unwritten : 0));
    if (!h->end_clean)
        skiff_log_str(&l, "end", "aborted");
    else if (cut)
        skiff_log_str(&l, "end", "incomplete");
    if (cut)
        skiff_log_str(&l, "close", cut);
    skiff_log_end(&l);
}

/* The next request on a kept-alive connection: parse what waited, or wait for it. */
static void
next_request(struct http *h)
{
    struct skiff_conn *c = h->conn;
    request_reset(h);
    h->phase = IDLE;
    if (h->pending.len) {
        skiff_conn_read_start(c);
        skiff_conn_timer(c, 0); /* parse it from the loop, not from inside the handler */
    } else {
        skiff_conn_timer(c, (uint64_t)c->worker->opts->idle_timeout_ms);
    }
}

/*
 * The response has ended: log it once its bytes are written, then close (lingering when
 * the client may still be sending) or go on with the next request, only once this one's
 * bytes are all written, so a connection never holds more than one response queued.
 */
static void
after_response(struct http *h)
{
    struct skiff_conn *c = h->conn;
    struct skiff_request *req = &h->req;
    if (c->queued == 0 && !c->write_error)
        log_request(h, NULL);
    else
        h->log_pending = 1;
    if (h->streamed && !h->body_done) {
        /* Answered before its body was in: the rest is read and dropped, then the close. */
        h->stream_live = 0;
        h->linger = 1;
        skiff_conn_read_start(c);
    }
    if (h->linger) {
        skiff_conn_linger(c, 2000);
        return;
    }
    if (!h->end_clean || !req->keep_alive || c->worker->stopping) {
        skiff_conn_close_when_flushed(c, h->end_clean ? "response sent" : "response aborted");
        return;
    }
    if (c->queued) {
        h->flushing = 1;
        return;
    }
    next_request(h);
}

/* The response is over (the handler let go of req). */
void
skiff_http_finish(struct skiff_request *req, int clean)
{
    struct http *h = http_of(req->conn);
    req->ended = 1;
    h->stream_live = 0;
    inflight_end(h);
    h->end_clean = clean;
    if (!h->in_head_hook) /* else answered_at_head goes on once the hook has returned */
        after_response(h);
}

/* Whether req may be answered 101: an upgrade head, in the handler's hands, not answered. */
int
skiff_http_upgradable(const struct skiff_request *req)
{
    const struct http *h = http_of(req->conn);
    return h->parser.upgrade && h->phase == HANDLING && !req->ended && !req->status && !h->tunnel;
}

/* req was answered 101 (tunnel.c): from now on the connection's events are t's. */
void
skiff_http_become_tunnel(struct skiff_request *req, struct skiff_tunnel *t, struct skiff_buf *early)
{
    struct http *h = http_of(req->conn);
    req->ended = 1;
    req->status = 101;
    h->end_clean = 1;
    h->tunnel = t;
    /* Still in flight: a drain waits for the tunnel until its time is over, then closes it. */
    log_request(h, NULL);
    *early = h->pending;
    skiff_buf_init(&h->pending, MAX_PENDING);
    uncharge(h);
    skiff_buf_release(&req->bodybuf);
    skiff_buf_release(&req->out_hdrs);
}

/* ---- streamed bodies -------------------------------------------------------------------- */

/*
 * A streamed body (http.h) runs beside the handler: the request is dispatched at the end of
 * its head (stream_live: the handler owns req), and the parser goes on in BODY handing each
 * piece to req->on_body, or to hold while the handler holds them. Reading stops while hold
 * is at SKIFF_HTTP_STREAM_HOLD or more, and so does the idle timer (the wait is the
 * upstream's, not the client's); between pieces the idle timeout applies, body_timeout_ms
 * does not. Only what hold holds counts against max_buffered_bytes.
 */

int
skiff_http_stream_body(struct skiff_request *req)
{
    struct http *h = http_of(req->conn);
    if (!h->in_head_hook || !expects_body(&h->parser))
        return SKIFF_EINVAL;
    h->streamed = 1;
    req->body_streamed = 1;
    return 0;
}

/* Keeps a piece while the handler holds them; a full hold stops reading the client. */
static int
stream_hold(struct http *h, const char *at, size_t len)
{
    struct skiff_buf *b = &h->hold;
    if (b->len + len > h->charged) {
        size_t more = b->len + len - h->charged;
        if (charge(h, more > 64 * 1024 ? more : 64 * 1024))
            return fail(h, 503, busy_msg);
    }
    if (skiff_buf_add(b, at, len))
        return fail(h, 503, "out of memory for the request body");
    if (b->len >= SKIFF_HTTP_STREAM_HOLD) {
        skiff_conn_read_stop(h->conn);
        skiff_conn_timer_stop(h->conn);
    }
    return 0;
}

/* http-parser's on_body for a streamed body. */
static int
stream_piece(struct http *h, const char *at, size_t len)
{
    struct skiff_request *r = &h->req;
    const struct skiff_server_opts *o = h->conn->worker->opts;
    h->streamed_bytes += len;
    if (o->max_upload_bytes && h->streamed_bytes > o->max_upload_bytes)
        return fail(h, 413, upload_too_large(o));
    if (r->ended || !h->stream_live)
        return 0; /* answered already: the rest is dropped */
    if (h->stream_held || h->hold.len || !r->on_body)
        return stream_hold(h, at, len);
    h->stream_in_cb = 1;
    int rc = r->on_body(r, at, len);
    h->stream_in_cb = 0;
    if (rc == 1)
        h->stream_held = 1;
    return 0;
}

/* The body is in (or was, while held): on_body_end once nothing waits before it. */
static void
stream_end(struct http *h)
{
    struct skiff_request *r = &h->req;
    h->body_done = 1;
    skiff_conn_timer_stop(h->conn);
    if (!h->stream_live || r->ended || h->stream_held || h->hold.len || h->end_told)
        return;
    h->end_told = 1;
    if (r->on_body_end) {
        h->stream_in_cb = 1;
        r->on_body_end(r);
        h->stream_in_cb = 0;
    }
}

void
skiff_http_body_resume(struct skiff_request *req)
{
    struct http *h = http_of(req->conn);
    struct skiff_conn *c = h->conn;
    if (!h->stream_live || req->ended || c->closing)
        return;
    h->stream_held = 0;
    if (h->stream_in_cb)
        return; /* inside a piece: the parser goes on with the next one */
    if (h->hold.len && req->on_body) {
        /* One call for all that waited; the buffer is the handler's for the call. */
        struct skiff_buf b = h->hold;
        skiff_buf_init(&h->hold, b.max);
        h->stream_in_cb = 1;
        int rc = req->on_body(req, b.data, b.len);
        h->stream_in_cb = 0;
        if (c->closing || h->hold.data) {
            skiff_buf_release(&b);
        } else {
            skiff_buf_reset(&b);
            h->hold = b;
        }
        if (rc == 1)
            h->stream_held = 1;
        if (c->closing || req->ended || !h->stream_live || h->stream_held)
            return;
    }
    if (h->body_done) {
        stream_end(h);
        return;
    }
    skiff_conn_read_start(c);
    arm_body_timer(h);
}

/*
 * A streamed body broke off (too large, malformed, stalled) while the handler owns req: it
 * lets go (on_abort). Returns 0 when refuse may answer (nothing was sent), 1 when the
 * connection is closed instead (a response has begun, or ended).
 */
static int
stream_let_go(struct http *h)
{
    struct skiff_request *r = &h->req;
    if (r->ended)
        return 1;
    skiff_request_cb *abort_cb = r->on_abort;
    r->on_abort = NULL;
    r->on_body = NULL;
    r->on_body_end = NULL;
    r->on_drain = NULL;
    if (abort_cb)
        abort_cb(r);
    r->data = NULL;
    if (r->status) {
        skiff_conn_close(h->conn, "the request body broke off");
        return 1;
    }
    h->stream_live = 0;
    return 0;
}

/* ---- drain ---------------------------------------------------------------------------- */

/*
 * A request is in flight from dispatch until its response ends or its connection closes;
 * the worker counts them so that a drain knows when it is over (server.c).
 */
static void
inflight_begin(struct http *h)
{
    if (h->inflight)
        return;
    h->inflight = 1;
    h->conn->worker->inflight++;
}

static void
inflight_end(struct http *h)
{
    if (!h->inflight)
        return;
    h->inflight = 0;
    struct skiff_worker *w = h->conn->worker;
    if (--w->inflight == 0 && w->draining)
        skiff_worker_drained(w);
}

void
skiff_http_drain_begin(struct skiff_worker *w)
{
    for (struct skiff_conn *c = w->conns; c; c = c->next) {
        struct http *h = http_of(c);
        if (h->inflight)
            h->req.keep_alive = 0; /* a response not yet started says Connection: close */
    }
}

int
skiff_http_drain_cut(struct skiff_worker *w)
{
    int n = 0;
    struct skiff_conn *next;
    for (struct skiff_conn *c = w->conns; c; c = next) {
        next = c->next; /* the cut may close c */
        struct http *h = http_of(c);
        if (h->tunnel) {
            n++;
            skiff_tunnel_conn_shutdown(h->tunnel);
            continue;
        }
        if (!h->inflight || h->req.ended)
            continue;
        n++;
        if (w->opts->cut)
            w->opts->cut(&h->req, w->data);
    }
    return n;
}

int
skiff_http_flushing(const struct skiff_worker *w)
{
    for (const struct skiff_conn *c = w->conns; c; c = c->next)
        if (c->queued > 0 && !c->write_error && !c->closing)
            return 1;
    return 0;
}
