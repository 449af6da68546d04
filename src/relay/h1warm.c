/*
 * The own client's warm connections and its sweep (relay/h1conn.h): connections opened to
 * the warm origin ahead of any call, and the timer that closes idle and stuck ones.
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

/* ---- warm connections ---------------------------------------------------------------- */

struct warm_resolve {
    uv_getaddrinfo_t req;
    struct skiff_h1c *cl;
    struct h1_origin *origin;
};

static void
warm_connected(uv_connect_t *req, int status)
{
    struct h1_conn *k = req->data;
    free(req);
    if (k->closing)
        return;
    if (status < 0 || uv_read_start((uv_stream_t *)&k->tcp, alloc_cb, read_cb) < 0) {
        conn_close(k);
        return;
    }
    uv_tcp_keepalive(&k->tcp, 1, 60);
    if (!k->origin->tls) {
        idle_push(k);
        return;
    }
    k->tls = skiff_tls_new(k->cl->tls, k->origin->host, &k->origin->session);
    k->handshaking = 1;
    if (!k->tls || skiff_tls_handshake(k->tls) < 0 || flush_tls(k) < 0)
        conn_close(k); /* the handshake goes on in tls_in, which makes it idle when done */
}

static void
warm_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    struct warm_resolve *r = req->data;
    struct skiff_h1c *cl = r->cl;
    struct h1_origin *o = r->origin;
    free(r);
    cl->warming--;
    struct h1_conn *k = NULL;
    uv_connect_t *creq = NULL;
    if (status < 0 || !res || cl->closing || !(k = calloc(1, sizeof *k)) ||
        !(creq = malloc(sizeof *creq)))
        goto out;
    k->cl = cl;
    k->origin = o;
    k->warming = 1;
    k->idle_since = uv_now(cl->loop); /* for a warm connection: when it was opened */
    if (o->tls && !o->h1_only) {
        k->h2cand = 1;
        o->h2_opening++;
    }
    cl->warming++;
    k->next = cl->warm_conns;
    if (cl->warm_conns)
        cl->warm_conns->prev = k;
    cl->warm_conns = k;
    uv_tcp_init(cl->loop, &k->tcp);
    cl->nconns++;
    k->tcp.data = k;
    uv_tcp_nodelay(&k->tcp, 1);
    creq->data = k;
    if (uv_tcp_connect(creq, &k->tcp, res->ai_addr, warm_connected) < 0) {
        free(creq);
        conn_close(k);
    }
    k = NULL;
    creq = NULL;
out:
    free(k);
    free(creq);
    if (res)
        uv_freeaddrinfo(res);
    maybe_free_client(cl);
}

/* Opens connections to the warm origin until warm_n are idle or on their way. */
static void
warm_top_up(struct skiff_h1c *cl)
{
    struct h1_origin *o = cl->warm;
    if (!o || cl->closing || (o->tls && uv_now(cl->loop) < o->tls_failed_until))
        return;
    int have = cl->warming + h2_warm_count(cl, o);
    for (struct h1_conn *k = cl->idle_head; k; k = k->next)
        have += k->origin == o;
    for (; have < cl->warm_n; have++) {
        struct warm_resolve *r = calloc(1, sizeof *r);
        if (!r)
            return;
        r->cl = cl;
        r->origin = o;
        r->req.data = r;
        struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
        if (uv_getaddrinfo(cl->loop, &r->req, warm_resolved, o->host, o->port, &hints) < 0) {
            free(r);
            return;
        }
        cl->warming++;
    }
}

int
skiff_h1c_warm(struct skiff_h1c *cl, const char *url, const char *ca_file, int n)
{
    struct h1_call tmp;
    const char *authority, *ui;
    size_t alen, uilen;
    char err[400];
    memset(&tmp, 0, sizeof tmp);
    tmp.cl = cl;
    if (n <= 0 || !parse_url(&tmp, url, NULL, &authority, &alen, &ui, &uilen))
        return -1;
    if (tmp.origin->tls && tls_ready(cl, ca_file, err, sizeof err) < 0)
        return -1;
    cl->warm = tmp.origin;
    cl->warm_n = n;
    warm_top_up(cl);
    return 0;
}

/* Closes connections that have been idle for IDLE_MS, oldest first, except the warm_n
 * kept open to the warm origin; then tops those up (the upstream may have closed some). */
void
sweep_cb(uv_timer_t *t)
{
    struct skiff_h1c *cl = t->data;
    uint64_t now = uv_now(cl->loop);
    int warm = 0;
    for (struct h1_conn *k = cl->idle_head; k; k = k->next)
        warm += k->origin == cl->warm;
    /* A warm connection that is not ready after WARM_MS (an upstream that accepts and
     * never finishes the handshake) gives way to a new one. */
    for (struct h1_conn *w = cl->warm_conns, *next; w; w = next) {
        next = w->next;
        if (now - w->idle_since >= WARM_MS)
            conn_close(w);
    }
    struct h1_conn *k = cl->idle_tail;
    while (k && now - k->idle_since >= IDLE_MS) {
        struct h1_conn *prev = k->prev;
        if (k->origin != cl->warm || warm > cl->warm_n) {
            warm -= k->origin == cl->warm;
            conn_close(k);
        }
        k = prev;
    }
    h2_sweep(cl, now);
    warm_top_up(cl);
}
