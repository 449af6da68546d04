/*
 * A call whose request body is streamed (plan.stream_body: an upload's bytes, server/http.h
 * skiff_http_stream_body): the client's pieces go to the upstream call in flight as they are
 * read, with backpressure both ways, and never sit whole in skiff.
 *
 *   - The client's body waits in the server (held) until the upstream call has sent its head
 *     and says it takes bytes (its first on_drain): a call that fails before that (a connect
 *     failure, a refused stream) has taken nothing, and the attempt loop may try again, on
 *     the same pinned key. Once a byte has gone (body_sent), no attempt follows: the bytes
 *     are not kept, and the answer is the failure (the client resumes the upload from what
 *     the upstream says it has, X-Goog-Upload-Command: query).
 *   - A write that leaves SKIFF_UPCALL_HIGH_WATER waiting holds the client's pieces (the
 *     server stops reading it) until the call drains.
 *   - The client's end of body ends the upstream body; a client that goes away cancels the
 *     call (engine.c on_abort), as for every call.
 */
#include <stdint.h>

#include "engine/call.h"

static int
upload_piece(struct skiff_request *req, const char *data, size_t len)
{
    struct call *c = req->data;
    if (!c)
        return 1;
    c->body_sent += len; /* gone, even when no call takes it: no attempt may follow */
    if (!c->call)
        return 1;
    size_t q = skiff_upcall_write(c->call, data, len);
    return q >= SKIFF_UPCALL_HIGH_WATER ? 1 : 0;
}

static void
upload_end(struct skiff_request *req)
{
    struct call *c = req->data;
    if (!c)
        return;
    c->body_end_seen = 1;
    if (c->call)
        skiff_upcall_end_body(c->call);
}

static void
upload_drain(struct skiff_upcall *up)
{
    struct call *c = skiff_upcall_data(up);
    if (c->req && c->call == up)
        skiff_http_body_resume(c->req);
}

void
call_upload_opts(struct call *c, struct skiff_upcall_opts *o)
{
    if (!c->stream_body)
        return;
    int64_t n = c->req->body_expected;
    o->stream_body = 1;
    o->body = NULL;
    o->body_len = n >= 0 ? (size_t)n : SKIFF_UPCALL_UNKNOWN_LEN;
    o->on_drain = upload_drain;
}

/* The call just started: the client's pieces are for it. */
void
call_upload_attach(struct call *c)
{
    if (!c->stream_body || !c->req)
        return;
    c->req->on_body = upload_piece;
    c->req->on_body_end = upload_end;
    if (c->body_end_seen)
        skiff_upcall_end_body(c->call); /* nothing had gone, and nothing more comes */
}

int
call_upload_spent(const struct call *c)
{
    return c->stream_body && c->body_sent > 0;
}
