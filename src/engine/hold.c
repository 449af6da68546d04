/*
 * The upstream callbacks of a call: a stream is held until its first event with content,
 * then committed (on_head and the held bytes to the door) and delivered as it comes; a
 * failure before the commit is judged and retried by engine.c, one after it ends the answer.
 *
 * Delivery of committed bytes: a passthrough door (on_data) gets them as they come, the
 * held prefix in one piece; a translating door (on_event) gets complete events, cut by the
 * same scanner that judges the hold (gemini/stream.h). When filters are installed, they see
 * each complete event before the door does (for a passthrough door, after its bytes went),
 * and may end the stream with a last event of their own.
 */
#include "engine/call.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "relay/keypool.h"

int64_t
call_scan_tokens(const char *data, size_t len)
{
    static const char key[] = "\"totalTokenCount\"";
    int64_t v = -1;
    const char *p = data, *end = data + len, *hit;
    while ((hit = memmem(p, (size_t)(end - p), key, sizeof key - 1))) {
        const char *q = hit + sizeof key - 1;
        while (q < end && (*q == ':' || *q == ' '))
            q++;
        int64_t n = 0;
        int digits = 0;
        while (q < end && *q >= '0' && *q <= '9' && digits < 15) {
            n = n * 10 + (*q++ - '0');
            digits++;
        }
        if (digits)
            v = n;
        p = q;
    }
    return v;
}

static int
on_status(struct skiff_upcall *up, int status, const char *headers, size_t len)
{
    struct call *c = skiff_upcall_data(up);
    c->up_status = status;
    skiff_buf_reset(&c->up_headers);
    if (skiff_buf_add(&c->up_headers, headers, len))
        return -1;
    skiff_buf_release(&c->body);
    skiff_buf_init(&c->body, status != 200 ? MAX_UPSTREAM_ERROR : MAX_HOLD);
    c->scanned = 0;
    skiff_stream_scan_init(&c->scan, c->sse);
    return 0;
}

/* The door could not go on with the committed answer: a visible failure. */
static void
door_failed(struct call *c)
{
    call_fail(c, 502, "UNAVAILABLE",
              "skiff could not translate the upstream's answer for this API; the answer is "
              "incomplete",
              "the door could not translate the answer");
}

/*
 * A filter ended the stream: the upstream call is cancelled (the answer so far is a success),
 * the filter's last event goes to the door, and the stream ends cleanly.
 */
static void
stop_by_filter(struct call *c, char *last, size_t last_len)
{
    if (c->call) {
        skiff_upcall_cancel(c->call);
        c->call = NULL;
    }
    call_release_key(c, SKIFF_FAULT_NONE, -1, NULL);
    int rc = 0;
    if (last && c->ops->on_event)
        rc = c->ops->on_event(c->door, c->req, last, last_len);
    else if (last && c->ops->on_data)
        rc = c->ops->on_data(c->door, c->req, last, last_len);
    free(last);
    if (rc < 0) {
        door_failed(c);
        return;
    }
    if (c->ops->on_end)
        c->ops->on_end(c->door, c->req);
    skiff_http_end(c->req);
    call_done(c);
}

/* One complete committed event: the filters, then a translating door. Returns -1 when the
 * call ended. The event lives in the carry, skiff's own memory: it is redacted in place. */
static int
deliver_event(struct call *c, char *ev, size_t n)
{
    if (c->ops->on_event && skiff_keypool_leaks(c->w->sh->pool, ev, n))
        skiff_keypool_redact(c->w->sh->pool, ev, n);
    struct skiff_filter_ctx fc = {c->req->id, call_model(c), c->w->cfg};
    char *last = NULL;
    size_t last_len = 0;
    int stop = 0;
    for (int i = 0; !stop && i < c->nfilters; i++) {
        const struct skiff_engine_filter *f = c->filters[i].f;
        stop = f->on_event &&
               f->on_event(c->filters[i].st, &fc, ev, n, &last, &last_len) == SKIFF_FILTER_STOP;
    }
    if (c->ops->on_event && c->ops->on_event(c->door, c->req, ev, n) < 0) {
        free(last);
        door_failed(c);
        return -1;
    }
    if (stop) {
        stop_by_filter(c, last, last_len);
        return -1;
    }
    return 0;
}

/* Cuts committed bytes into events (the carry keeps a partial one). Returns -1 when the
 * call ended. */
static int
split_events(struct call *c, const char *data, size_t len)
{
    if (skiff_buf_add(&c->carry, data, len)) {
        if (c->ops->on_event) {
            call_fail(c, 502, "UNAVAILABLE",
                      "the upstream sent a stream event larger than skiff can translate (4 MiB)",
                      "stream event too large");
            return -1;
        }
        skiff_buf_reset(&c->carry); /* an event larger than the carry: the filters skip it */
        skiff_stream_scan_init(&c->ev_scan, c->sse);
        return 0;
    }
    size_t off = 0, end;
    while ((end = skiff_stream_scan_next(&c->ev_scan, c->carry.data + off, c->carry.len - off))) {
        if (deliver_event(c, c->carry.data + off, end) < 0)
            return -1;
        off += end;
    }
    memmove(c->carry.data, c->carry.data + off, c->carry.len - off);
    c->carry.len -= off;
    return 0;
}

/*
 * Delivers committed bytes. A passthrough door gets them as they are (a piece that would echo
 * a pool key is copied and redacted first; a key split across two pieces is not caught, and
 * the API is not known to echo keys mid-stream at all). Returns 1 to pause the upstream, 0 to
 * go on, -1 when the call ended.
 */
static int
deliver(struct call *c, const char *data, size_t len)
{
    if (c->ops->on_data) {
        int rc;
        if (!skiff_keypool_leaks(c->w->sh->pool, data, len)) {
            rc = c->ops->on_data(c->door, c->req, data, len);
        } else {
            char *copy = malloc(len);
            rc = 0; /* dropped rather than sent unredacted */
            if (copy) {
                memcpy(copy, data, len);
                skiff_keypool_redact(c->w->sh->pool, copy, len);
                rc = c->ops->on_data(c->door, c->req, copy, len);
                free(copy);
            }
        }
        if (rc < 0) {
            door_failed(c);
            return -1;
        }
    }
    if (c->split && split_events(c, data, len) < 0)
        return -1;
    return skiff_http_pending(c->req) > STREAM_HIGH_WATER ? 1 : 0;
}

/* retry.max_stream_ms: a stream that started is ended visibly once it has run this long. */
static void
on_max_stream(uv_timer_t *t)
{
    struct call *c = t->data;
    char msg[256];
    snprintf(msg, sizeof msg,
             "the stream ran for retry.max_stream_ms (%d ms) and skiff ended "
             "it; raise retry.max_stream_ms (0: no limit)",
             c->w->cfg->retry.max_stream_ms);
    struct skiff_log l;
    skiff_log_begin(&l, SKIFF_LOG_WARN, "max_stream");
    skiff_log_str(&l, "id", c->req->id);
    skiff_log_int(&l, "ms", c->w->cfg->retry.max_stream_ms);
    skiff_log_end(&l);
    call_fail(c, 504, NULL, msg, "retry.max_stream_ms passed");
}

void
call_commit(struct call *c)
{
    char ct[128];
    call_decorate(c);
    call_forward_head(c);
    call_note_finish(c, c->body.data, c->body.len);
    c->started = 1;
    /* No attempt follows a started stream, so wait_timer is free to time its length. */
    if (c->w->cfg->retry.max_stream_ms > 0)
        uv_timer_start(&c->wait_timer, on_max_stream, (uint64_t)c->w->cfg->retry.max_stream_ms, 0);
    struct skiff_engine_head h = {200, call_content_type(c, ct, sizeof ct), call_model(c)};
    c->ops->on_head(c->door, c->req, &h);
    /* The upstream's headers are read only to answer and to judge a failed call
     * (retry-after in on_done); once started, neither happens again. A stream lives long:
     * give them back now. */
    skiff_buf_release(&c->up_headers);
    if (c->body.len) {
        /* The held bytes are delivered from their own buffer, released after. */
        struct skiff_buf held = c->body;
        skiff_buf_init(&c->body, 0);
        deliver(c, held.data, held.len);
        skiff_buf_release(&held);
    }
    skiff_buf_release(&c->body);
}

void
call_finish_stream(struct call *c)
{
    if (c->ops->on_event && c->carry.len) {
        /* What the upstream sent after its last complete event, as a last event. */
        int blank = 1;
        for (size_t i = 0; blank && i < c->carry.len; i++)
            blank = c->carry.data[i] == ' ' || c->carry.data[i] == '\r' ||
                    c->carry.data[i] == '\n' || c->carry.data[i] == ']' || c->carry.data[i] == ',';
        size_t n = c->carry.len;
        c->carry.len = 0;
        if (!blank && deliver_event(c, c->carry.data, n) < 0)
            return;
    }
    if (c->ops->on_end)
        c->ops->on_end(c->door, c->req);
    skiff_http_end(c->req);
    call_done(c);
}

/* A held stream turned out to be a failure: an error object, or an empty answer. */
static void
fail_held(struct call *c, enum skiff_unit u, const char *unit, size_t n)
{
    c->stream_failed = 1;
    struct skiff_verdict *sv = &c->stream_verdict;
    if (u == SKIFF_UNIT_EMPTY_STOP) {
        memset(sv, 0, sizeof *sv);
        sv->fault = SKIFF_FAULT_TRANSIENT;
        sv->retry_delay_s = -1;
        snprintf(sv->reason, sizeof sv->reason,
                 "the stream finished with no content (an empty answer)");
        return;
    }
    size_t jl;
    const char *j = skiff_stream_json(unit, n, &jl);
    json_t *e = json_loadb(j, jl, JSON_DISABLE_EOF_CHECK, NULL);
    int code = (int)json_integer_value(json_object_get(json_object_get(e, "error"), "code"));
    json_decref(e);
    c->stream_error_code = code >= 400 && code < 600 ? code : 502;
    skiff_classify(code ? code : 500, j, jl, NULL, sv);
}

/* Judges the held units; commits the stream at its first unit with content. */
static void
judge_held(struct call *c)
{
    if (c->route.kind == SKIFF_ROUTE_COMPAT) {
        /* Google's OpenAI-compatible stream is not Gemini's framing: not judged, committed
         * at its first byte (a failure before it, a non-200, is still retried). */
        call_commit(c);
        return;
    }
    for (;;) {
        /* The scanner goes on where the last piece left it: each byte is looked at once. */
        size_t end =
            skiff_stream_scan_next(&c->scan, c->body.data + c->scanned, c->body.len - c->scanned);
        if (end == 0)
            return;
        const char *unit = c->body.data + c->scanned;
        enum skiff_unit u = skiff_stream_judge(unit, end);
        switch (u) {
        case SKIFF_UNIT_CONTENT:
        case SKIFF_UNIT_FINISH:
            call_commit(c);
            return;
        case SKIFF_UNIT_EMPTY:
            c->scanned += end;
            continue;
        case SKIFF_UNIT_EMPTY_STOP:
        case SKIFF_UNIT_ERROR:
            fail_held(c, u, unit, end);
            return;
        }
    }
}

/* Judges the held bytes after the last complete unit as one more unit. */
static void
judge_tail(struct call *c)
{
    const char *tail = c->body.data + c->scanned;
    size_t n = c->body.len - c->scanned;
    enum skiff_unit u = skiff_stream_judge(tail, n);
    if (u == SKIFF_UNIT_ERROR || u == SKIFF_UNIT_EMPTY_STOP)
        fail_held(c, u, tail, n);
}

static int
on_body(struct skiff_upcall *up, const char *data, size_t len)
{
    struct call *c = skiff_upcall_data(up);
    if (c->up_status == 200 && call_is_stream(c)) {
        int64_t t = call_scan_tokens(data, len);
        if (t >= 0)
            c->tokens = t;
        if (c->started)
            return deliver(c, data, len);
        if (skiff_buf_add(&c->body, data, len)) {
            call_commit(c); /* a long prelude without content: stop holding it */
            return c->over ? -1 : deliver(c, data, len);
        }
        judge_held(c);
        return c->stream_failed || c->over ? -1 : 0;
    }
    if (c->up_status == 200) {
        /* A success is held whole when it fits MAX_HOLD (for x-skiff-finish and the
         * filters); a larger one is forwarded as it comes, with backpressure, so a slow
         * client never makes skiff hold the whole answer. A door that needs the whole answer
         * (no on_data) cannot take it. */
        if (!c->started && skiff_buf_add(&c->body, data, len) == 0)
            return 0;
        if (!c->started && !c->ops->on_data) {
            call_fail(c, 502, "UNAVAILABLE",
                      "the upstream's answer is larger than skiff can translate (4 MiB)",
                      "answer too large to translate");
            return -1;
        }
        if (!c->started) {
            call_commit(c);
            if (c->over)
                return -1;
        }
        int64_t t = call_scan_tokens(data, len);
        if (t >= 0)
            c->tokens = t;
        return deliver(c, data, len);
    }
    if (skiff_buf_add(&c->body, data, len))
        return -1;
    return 0;
}

static void
on_done(struct skiff_upcall *up, const char *error)
{
    struct call *c = skiff_upcall_data(up);
    if (!c->started && !error && !c->stream_failed && c->up_status == 200 && call_is_stream(c) &&
        c->scanned < c->body.len) {
        /* The stream ended inside the hold: judge what is left as its last unit (a raw
         * error object has no blank line after it). */
        judge_tail(c);
    }
    call_on_done(up, error);
}

const struct skiff_upcall_ops skiff_engine_upcall_ops = {
    .on_status = on_status,
    .on_body = on_body,
    .on_done = on_done,
};
