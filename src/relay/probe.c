#include "relay/probe.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"

#define MAX_PROBE_BODY (64u * 1024) /* a models.get answer is about 1 KiB; an error too */

struct skiff_probe {
    struct skiff_upcall *call;
    int status;
    struct skiff_buf body;
    skiff_probe_cb *cb;
    void *data;
};

const char *
skiff_probe_result_name(enum skiff_probe_result r)
{
    switch (r) {
    case SKIFF_PROBE_KEY_OK:
        return "key-ok";
    case SKIFF_PROBE_KEY_BAD:
        return "key-bad";
    default:
        return "unknown";
    }
}

enum skiff_probe_result
skiff_probe_judge(int status, const char *body, size_t len, struct skiff_verdict *v)
{
    skiff_classify(status, body, len, NULL, v);
    if ((status >= 200 && status < 300) || status == 404)
        return SKIFF_PROBE_KEY_OK; /* 404: the model is unknown, but the key got through */
    if (skiff_fault_needs_probe(v->fault) || status == 401 || status == 403)
        return SKIFF_PROBE_KEY_BAD; /* nothing but the key went: a refusal is the key's */
    return SKIFF_PROBE_UNKNOWN;
}

static void
probe_free(struct skiff_probe *p)
{
    skiff_buf_release(&p->body);
    free(p);
}

static int
on_status(struct skiff_upcall *call, int status, const char *headers, size_t len)
{
    (void)headers;
    (void)len;
    struct skiff_probe *p = skiff_upcall_data(call);
    p->status = status;
    skiff_buf_reset(&p->body);
    return 0;
}

static int
on_body(struct skiff_upcall *call, const char *data, size_t len)
{
    struct skiff_probe *p = skiff_upcall_data(call);
    /* Past the limit the answer is judged on its status and what was kept. */
    if (p->body.len + len <= MAX_PROBE_BODY)
        skiff_buf_add(&p->body, data, len);
    return 0;
}

static void
on_done(struct skiff_upcall *call, const char *error)
{
    struct skiff_probe *p = skiff_upcall_data(call);
    p->call = NULL;
    struct skiff_verdict v;
    enum skiff_probe_result res;
    if (error) {
        memset(&v, 0, sizeof v);
        v.fault = SKIFF_FAULT_TRANSIENT;
        v.retry_delay_s = -1;
        snprintf(v.reason, sizeof v.reason, "%s", error);
        res = SKIFF_PROBE_UNKNOWN;
    } else {
        res = skiff_probe_judge(p->status, p->body.data, p->body.len, &v);
    }
    p->cb(p->data, res, &v);
    probe_free(p);
}

static const struct skiff_upcall_ops probe_ops = {
    .on_status = on_status,
    .on_body = on_body,
    .on_done = on_done,
};

/* Appends name as one path segment: unreserved bytes as they are, the rest %XX, so the
 * probe asks for exactly the model the call named and for nothing else. */
static int
add_segment(struct skiff_buf *b, const char *name)
{
    static const char hex[] = "0123456789ABCDEF";
    int rc = 0;
    for (const unsigned char *c = (const unsigned char *)name; *c && !rc; c++) {
        if ((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
            *c == '-' || *c == '_' || *c == '.') {
            rc = skiff_buf_add(b, c, 1);
        } else {
            char e[3] = {'%', hex[*c >> 4], hex[*c & 15]};
            rc = skiff_buf_add(b, e, 3);
        }
    }
    return rc;
}

struct skiff_probe *
skiff_probe_start(struct skiff_upstream *up, const struct skiff_probe_opts *o)
{
    struct skiff_probe *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->cb = o->cb;
    p->data = o->data;
    skiff_buf_init(&p->body, MAX_PROBE_BODY + 1);

    /* "." and ".." would be taken as path steps: ask for a model that cannot be them. */
    const char *model = o->model && *o->model && strcmp(o->model, ".") && strcmp(o->model, "..")
                            ? o->model
                            : "gemini-2.5-flash";
    struct skiff_buf url, hdr;
    skiff_buf_init(&url, 8192);
    skiff_buf_init(&hdr, 4096);
    int rc = skiff_buf_adds(&url, o->base_url);
    rc = rc ? rc : skiff_buf_adds(&url, "/v1beta/models/");
    rc = rc ? rc : add_segment(&url, model);
    rc = rc ? rc : skiff_buf_adds(&hdr, "x-goog-api-key: ");
    rc = rc ? rc : skiff_buf_adds(&hdr, o->key);
    if (rc == 0) {
        const char *headers[] = {hdr.data, NULL};
        struct skiff_upcall_opts uo = {
            .method = "GET",
            .url = url.data,
            .headers = headers,
            .proxy = o->proxy && *o->proxy ? o->proxy : NULL,
            .ca_file = o->ca_file,
            .connect_timeout_ms = o->connect_timeout_ms,
            .first_byte_timeout_ms = o->timeout_ms,
            .idle_timeout_ms = o->timeout_ms,
            .ops = &probe_ops,
            .data = p,
        };
        p->call = skiff_upcall_start(up, &uo);
    }
    /* Both transports copy the headers in skiff_upcall_start: the key's bytes go now. */
    if (hdr.data)
        memset(hdr.data, 0, hdr.len);
    skiff_buf_release(&hdr);
    skiff_buf_release(&url);
    if (!p->call) {
        probe_free(p);
        return NULL;
    }
    return p;
}

void
skiff_probe_cancel(struct skiff_probe *p)
{
    if (!p)
        return;
    skiff_upcall_cancel(p->call);
    probe_free(p);
}
