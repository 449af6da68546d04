/*
 * The own client's HTTP/1.1 exchange (relay/h1conn.h): the request head built once, sent
 * with the body in one write; the response run through the head and body framing
 * (relay/h1resp.c) with body pieces handed on as they come, pausing, and the end on EOF.
 */
#include "relay/h1conn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

/* ---- calls: reading the response ------------------------------------------------------ */

/* Parses a complete head and reports it. Returns 0 to go on reading, -1 when the call
 * ended or paused inside. */
static int
got_head(struct h1_call *c, const char *head, size_t len)
{
    struct skiff_h1c *cl = c->cl;
    skiff_buf_reset(&cl->hdrs);
    if (skiff_h1_parse_head(&c->resp, head, len, 0, &cl->hdrs) < 0) {
        finish(c, "the upstream sent something that is not an HTTP/1.1 response");
        return -1;
    }
    if (c->resp.state == SKIFF_H1_HEAD)
        return 0; /* 100 Continue or another informational answer: the real one follows */
    int rc = c->base.ops->on_status(&c->base, c->resp.status, cl->hdrs.data ? cl->hdrs.data : "",
                                    cl->hdrs.len);
    if (c->cancelled || c->done)
        return -1;
    if (rc != 0) {
        finish(c, STOPPED);
        return -1;
    }
    return 0;
}

/* Whether the head so far (what was gathered, then data) can still begin "HTTP/1.". */
static int
can_be_status_line(const struct h1_call *c, const char *data, size_t len)
{
    static const char want[] = "HTTP/1.";
    size_t have = c->head.len < sizeof want - 1 ? c->head.len : sizeof want - 1;
    if (have && memcmp(c->head.data, want, have) != 0)
        return 0;
    size_t more = sizeof want - 1 - have;
    return memcmp(data, want + have, len < more ? len : more) == 0;
}

/* Takes head bytes from data; returns how many it used, or -1 when the call ended. */
static ssize_t
take_head(struct h1_call *c, const char *data, size_t len)
{
    size_t end;
    /* Bytes that cannot start a status line never become a response: fail now rather than
     * wait (until the deadline) for a blank line that may never come. */
    if (c->head.len < 7 && !can_be_status_line(c, data, len)) {
        finish(c, "the upstream sent something that is not an HTTP/1.1 response");
        return -1;
    }
    if (c->head.len == 0 && (end = skiff_h1_head_end(data, len, 0)) > 0)
        return got_head(c, data, end) < 0 ? -1 : (ssize_t)end; /* the usual case: one read */
    size_t old = c->head.len;
    if (skiff_buf_add(&c->head, data, len)) {
        finish(c, "the upstream's response head is larger than 64 KiB");
        return -1;
    }
    end = skiff_h1_head_end(c->head.data, c->head.len, old > 3 ? old - 3 : 0);
    if (!end)
        return (ssize_t)len;
    int rc = got_head(c, c->head.data, end);
    skiff_buf_reset(&c->head);
    return rc < 0 ? -1 : (ssize_t)(end - old);
}

/* Keeps the unread rest of a read while the call is paused. */
static void
hold(struct h1_call *c, const char *data, size_t len)
{
    if (c->conn)
        uv_read_stop((uv_stream_t *)&c->conn->tcp);
    uv_timer_stop(&c->timer);
    if (!len)
        return;
    c->held = malloc(len);
    if (!c->held) {
        finish(c, "out of memory holding a paused upstream response");
        return;
    }
    memcpy(c->held, data, len);
    c->held_len = len;
}

/* Runs response bytes through the head and body framing and hands the pieces on. */
void
feed(struct h1_call *c, const char *data, size_t len)
{
    if (!c->got_bytes) {
        c->got_bytes = 1;
        c->phase = RECEIVING;
        /* Kept until now only to send again on a new connection; a write still in flight
         * reads it, so then it goes with the call. */
        if (!c->conn || !c->conn->writing)
            wipe(&c->req);
    }
    while (len > 0) {
        ssize_t n;
        if (c->resp.state == SKIFF_H1_HEAD) {
            if ((n = take_head(c, data, len)) < 0)
                return;
        } else {
            const char *piece;
            size_t plen;
            if ((n = skiff_h1_body(&c->resp, data, len, &piece, &plen)) < 0) {
                finish(c, "the upstream sent a malformed chunked body");
                return;
            }
            if (plen) {
                int rc = c->base.ops->on_body(&c->base, piece, plen);
                if (c->cancelled || c->done)
                    return;
                if (rc < 0) {
                    finish(c, STOPPED);
                    return;
                }
                if (rc == 1 && c->resp.state != SKIFF_H1_DONE) {
                    c->paused = 1;
                    hold(c, data + n, len - (size_t)n);
                    return;
                }
            }
        }
        data += n;
        len -= (size_t)n;
        if (c->resp.state == SKIFF_H1_DONE) {
            complete(c, len > 0);
            return;
        }
        if (n == 0)
            break;
    }
    arm(c);
}

/* The connection ended (EOF, or TLS close_notify) while the call was on it. */
void
conn_eof(struct h1_call *c)
{
    if (c->got_bytes) {
        if (skiff_h1_eof(&c->resp) == 0) {
            c->resp.keep_alive = 0;
            complete(c, 0);
        } else {
            finish(c, c->resp.state == SKIFF_H1_HEAD
                          ? "the upstream closed the connection inside the response head"
                          : "the upstream closed the connection before the response was complete");
        }
        return;
    }
    conn_failed(c, "the upstream closed the connection without answering", 0);
}

void
send_request(struct h1_call *c)
{
    struct h1_conn *k = c->conn;
    c->phase = WAITING;
    arm(c);
    int rc, queued = 0;
    if (k->tls) {
        rc = skiff_tls_write(k->tls, c->req.data, c->req.len) < 0 ||
                     (c->body_len && skiff_tls_write(k->tls, c->body, c->body_len) < 0)
                 ? UV_EPROTO
                 : 0;
        if (rc == 0) {
            const char *p;
            size_t n = skiff_tls_out(k->tls, &p);
            uv_buf_t b = uv_buf_init((char *)p, (unsigned)n);
            rc = wire_write(k, &b, 1, 1, &queued);
            skiff_tls_out_consume(k->tls, n);
        }
    } else {
        uv_buf_t bufs[2] = {uv_buf_init(c->req.data, (unsigned)c->req.len),
                            uv_buf_init((char *)c->body, (unsigned)c->body_len)};
        rc = wire_write(k, bufs, c->body_len ? 2 : 1, 0, &queued);
    }
    if (rc > 0 || queued)
        c->wrote = 1;
    if (rc < 0)
        conn_failed(c, "could not send the request to the upstream", rc);
    else if (c->streaming)
        stream_head_sent(c);
}

/* Marks the header line b[from..len-2) (its CRLF written) as a field of the request:
 * name before the colon, value without surrounding whitespace. */
static void
mark_field(struct h1_reqparts *p, const struct skiff_buf *b, size_t from)
{
    if (!p->fields || b->len < from + 2)
        return;
    const char *line = b->data + from, *end = b->data + b->len - 2;
    const char *colon = memchr(line, ':', (size_t)(end - line));
    if (!colon || colon == line || p->nfields == p->cap) {
        p->bad = 1;
        return;
    }
    const char *v = colon + 1, *ve = end;
    while (v < ve && (*v == ' ' || *v == '\t'))
        v++;
    while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
        ve--;
    struct h1_span *f = &p->fields[2 * p->nfields++];
    f[0] = (struct h1_span){from, (size_t)(colon - line)};
    f[1] = (struct h1_span){(size_t)(v - b->data), (size_t)(ve - v)};
}

int
build_request(struct h1_call *c, const struct skiff_upcall_opts *o)
{
    const char *authority, *ui;
    size_t alen, uilen;
    const char *target = parse_url(c, o->url, o->proxy, &authority, &alen, &ui, &uilen);
    if (!target)
        return -1;
    /* Credentials in the URL: basic authorization to the upstream, as curl sent them. */
    char user[256], pass[256];
    if (uilen && skiff_userinfo_decode(ui, uilen, user, sizeof user, pass, sizeof pass) < 0)
        return -1;
    struct skiff_buf *b = &c->req;
    skiff_buf_init(b, MAX_REQ_HEAD);
    /* One allocation: the headers are known, so their total is too. */
    size_t need = strlen(o->method) + strlen(target) + alen + 64;
    size_t nheaders = 0;
    for (const char *const *h = o->headers; h && *h; h++, nheaders++)
        need += strlen(*h) + 2;
    /* Through an http:// proxy without a tunnel the target is the absolute URI, and the
     * proxy's credentials ride along. */
    int forwarded = c->origin->proxied && !tunnelled(c->origin);
    if (forwarded)
        need += alen + 16 + 2 * sizeof c->origin->proxy.user;
    if (uilen)
        need += 32 + 2 * sizeof user;
    if (skiff_buf_reserve(b, need))
        return -1;
    /* An https:// origin may turn out HTTP/2: the parts are marked as they are written. */
    struct h1_reqparts *p = &c->parts;
    if (c->origin->tls && !forwarded) {
        p->cap = nheaders + 2; /* and authorization, content-length */
        if (!(p->fields = calloc(2 * p->cap, sizeof *p->fields)))
            return -1;
    }
    skiff_buf_adds(b, o->method);
    p->method = (struct h1_span){0, b->len};
    skiff_buf_add(b, " ", 1);
    size_t at = b->len;
    if (forwarded) {
        skiff_buf_adds(b, "http://");
        skiff_buf_add(b, authority, alen);
    }
    if (*target == '?')
        skiff_buf_add(b, "/", 1);
    skiff_buf_adds(b, target);
    p->target = (struct h1_span){at, b->len - at};
    skiff_buf_adds(b, " HTTP/1.1\r\nhost: ");
    p->authority = (struct h1_span){b->len, alen};
    skiff_buf_add(b, authority, alen);
    skiff_buf_add(b, "\r\n", 2);
    if (uilen) {
        at = b->len;
        int rc = skiff_basic_auth_header("authorization", user, pass, b);
        mark_field(p, b, at);
        memset(user, 0, sizeof user);
        memset(pass, 0, sizeof pass);
        if (rc < 0)
            return -1;
    }
    if (forwarded && skiff_proxy_auth_header(&c->origin->proxy, b) < 0)
        return -1;
    for (const char *const *h = o->headers; h && *h; h++) {
        at = b->len;
        skiff_buf_adds(b, *h);
        skiff_buf_add(b, "\r\n", 2);
        mark_field(p, b, at);
    }
    if (o->stream_body && o->body_len == SKIFF_UPCALL_UNKNOWN_LEN) {
        /* HTTP/1.1 only: not a field of the request, so HTTP/2 (which forbids it) never
         * sends it; its DATA frames end the body. */
        skiff_buf_adds(b, "transfer-encoding: chunked\r\n");
    } else if (strcmp(o->method, "GET") != 0) {
        at = b->len;
        skiff_buf_adds(b, "content-length: ");
        skiff_buf_add_uint(b, o->body_len);
        skiff_buf_add(b, "\r\n", 2);
        mark_field(p, b, at);
    }
    return skiff_buf_add(b, "\r\n", 2) ? -1 : 0;
}
