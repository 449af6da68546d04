/*
 * Protocol upgrades (server/tunnel.c) through the real server and real sockets: a handler
 * that answers 101 on /echo and echoes what the client sends, with a few words that make it
 * pause, flood, or close; one that refuses the upgrade on /no. The client is this thread,
 * with blocking sockets; the server runs its one worker on another thread.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cmocka.h>

#include "server/server.h"

static atomic_int closes;        /* on_close calls */
static char close_why[128];      /* the last on_close's why */
static atomic_size_t max_queued; /* the most skiff_tunnel_write reported queued (flood) */
static atomic_int drains;        /* on_drain calls */
static atomic_int upgrades;

struct echo {
    uv_timer_t timer; /* resumes a paused tunnel */
    struct skiff_tunnel *t;
    int flooding;
    int sent; /* flood chunks written */
};

static void
resume_cb(uv_timer_t *tm)
{
    struct echo *e = tm->data;
    skiff_tunnel_resume(e->t);
}

static void
timer_closed(uv_handle_t *h)
{
    free(h->data);
}

#define FLOOD_CHUNKS 256 /* 16 MiB: more than the kernel's buffers take */

static void
flood(struct echo *e)
{
    static char chunk[64 * 1024];
    memset(chunk, 'f', sizeof chunk);
    while (e->sent < FLOOD_CHUNKS) {
        e->sent++;
        size_t q = skiff_tunnel_write(e->t, chunk, sizeof chunk);
        if (q > atomic_load(&max_queued))
            atomic_store(&max_queued, q);
        if (q > 512 * 1024)
            return; /* above the producer's threshold: wait for on_drain */
    }
    e->flooding = 0;
    skiff_tunnel_write(e->t, "END", 3);
}

static void
on_read(struct skiff_tunnel *t, const char *data, size_t len)
{
    struct echo *e = skiff_tunnel_data(t);
    if (len == 5 && memcmp(data, "pause", 5) == 0) {
        skiff_tunnel_pause(t);
        uv_timer_start(&e->timer, resume_cb, 300, 0);
        return;
    }
    if (len == 5 && memcmp(data, "flood", 5) == 0) {
        e->flooding = 1;
        flood(e);
        return;
    }
    if (len == 3 && memcmp(data, "bye", 3) == 0) {
        skiff_tunnel_write(t, "goodbye", 7);
        uv_close((uv_handle_t *)&e->timer, timer_closed);
        skiff_tunnel_close(t);
        return;
    }
    skiff_tunnel_write(t, data, len);
}

static void
on_drain(struct skiff_tunnel *t)
{
    struct echo *e = skiff_tunnel_data(t);
    atomic_fetch_add(&drains, 1);
    if (e->flooding)
        flood(e);
}

static void
on_close(struct skiff_tunnel *t, const char *why)
{
    struct echo *e = skiff_tunnel_data(t);
    snprintf(close_why, sizeof close_why, "%s", why);
    uv_close((uv_handle_t *)&e->timer, timer_closed);
    atomic_fetch_add(&closes, 1);
}

static const struct skiff_tunnel_ops echo_ops = {
    .on_read = on_read, .on_drain = on_drain, .on_close = on_close};

static atomic_int shutdowns;

/* The end of a drain: a goodbye, then the handler's own close (no on_close after it). */
static void
on_shutdown(struct skiff_tunnel *t)
{
    struct echo *e = skiff_tunnel_data(t);
    atomic_fetch_add(&shutdowns, 1);
    skiff_tunnel_write(t, "goodbye", 7);
    uv_close((uv_handle_t *)&e->timer, timer_closed);
    skiff_tunnel_close(t);
}

static const struct skiff_tunnel_ops polite_ops = {
    .on_read = on_read, .on_drain = on_drain, .on_close = on_close, .on_shutdown = on_shutdown};

static void
handler(struct skiff_request *req, void *worker_data)
{
    size_t n;
    const char *tok = skiff_http_upgrade_token(req, &n);
    int polite = req->path_len == 7 && memcmp(req->path, "/polite", 7) == 0;
    if (((req->path_len == 5 && memcmp(req->path, "/echo", 5) == 0) || polite) && tok) {
        struct echo *e = calloc(1, sizeof *e);
        uv_timer_init(skiff_http_loop(req), &e->timer);
        e->timer.data = e;
        skiff_http_add_header(req, "x-test", "yes");
        e->t = skiff_http_upgrade(req, polite ? &polite_ops : &echo_ops, e);
        assert_non_null(e->t);
        atomic_fetch_add(&upgrades, 1);
        return;
    }
    char body[64];
    int len =
        snprintf(body, sizeof body, "no upgrade (%.*s)", tok ? (int)n : 4, tok ? tok : "none");
    skiff_http_respond(req, 400, "text/plain", body, (size_t)len);
}

static struct skiff_server *srv;
static pthread_t server_thread;
static uint16_t port;

static void *
run_server(void *arg)
{
    skiff_server_run(arg);
    return NULL;
}

static int
setup(void **state)
{
    struct skiff_server_opts opts = {
        .host = "127.0.0.1",
        .workers = 1,
        .max_body_bytes = 1024,
        .header_timeout_ms = 1000,
        .idle_timeout_ms = 300, /* shorter than the tests' waits: a tunnel must outlive it */
        .send_timeout_ms = 10000,
        .drain_timeout_ms = 300,
        .max_connections = 16,
        .handler = handler,
        .name = "test",
    };
    static struct skiff_server_opts keep;
    keep = opts;
    char err[256];
    srv = skiff_server_new(&keep, err, sizeof err);
    assert_non_null(srv);
    port = skiff_server_port(srv);
    pthread_create(&server_thread, NULL, run_server, srv);
    return 0;
}

static int
teardown(void **state)
{
    skiff_server_stop(srv);
    pthread_join(server_thread, NULL);
    skiff_server_free(srv);
    return 0;
}

static int
dial(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

static void
send_all(int fd, const char *s, size_t n)
{
    while (n) {
        ssize_t k = send(fd, s, n, MSG_NOSIGNAL);
        assert_true(k > 0);
        s += k;
        n -= (size_t)k;
    }
}

/* Reads until buf holds want (a string) or the peer closes; returns the bytes read. */
static size_t
read_until(int fd, char *buf, size_t cap, const char *want)
{
    size_t len = 0;
    buf[0] = '\0';
    while (len + 1 < cap && !(want && strstr(buf, want))) {
        ssize_t k = recv(fd, buf + len, cap - 1 - len, 0);
        if (k <= 0)
            break;
        len += (size_t)k;
        buf[len] = '\0';
    }
    return len;
}

static uint64_t
now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void
wait_for(atomic_int *v, int want)
{
    for (int i = 0; i < 500 && atomic_load(v) < want; i++)
        usleep(10000);
}

/* Closes a tunnel's socket and waits for its on_close, so that the next test counts its own. */
static void
hang_up(int fd)
{
    int c = atomic_load(&closes);
    close(fd);
    wait_for(&closes, c + 1);
}

static const char upgrade_head[] = "GET /echo HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, "
                                   "Upgrade\r\nUpgrade: websocket\r\n\r\n";

/* 101 with the handler's header, then bytes sent with the head come back first. */
static void
test_upgrade_echoes_bytes_sent_with_the_head(void **state)
{
    int fd = dial();
    char out[4096];
    snprintf(out, sizeof out, "%searly", upgrade_head);
    send_all(fd, out, strlen(out));
    char buf[4096];
    read_until(fd, buf, sizeof buf, "early");
    assert_non_null(strstr(buf, "HTTP/1.1 101 Switching Protocols\r\n"));
    assert_non_null(strstr(buf, "x-test: yes\r\n"));
    assert_non_null(strstr(buf, "upgrade: websocket\r\n"));
    assert_non_null(strstr(buf, "connection: upgrade\r\n"));
    assert_null(strstr(buf, "content-length"));
    const char *body = strstr(buf, "\r\n\r\n");
    assert_non_null(body);
    assert_string_equal(body + 4, "early");
    /* Longer than the idle timeout: a tunnel is not idle-timed-out. */
    usleep(500 * 1000);
    send_all(fd, "GET / HTTP/1.1\r\n\r\n", 18); /* raw bytes now, not a request */
    assert_int_equal(read_until(fd, buf, sizeof buf, "\r\n\r\n"), 18);
    assert_string_equal(buf, "GET / HTTP/1.1\r\n\r\n");
    hang_up(fd);
}

/* While paused, nothing is read; after the resume the bytes arrive. */
static void
test_pause_holds_reads_until_resume(void **state)
{
    int fd = dial();
    char buf[4096];
    send_all(fd, upgrade_head, sizeof upgrade_head - 1);
    read_until(fd, buf, sizeof buf, "\r\n\r\n");
    assert_non_null(strstr(buf, " 101 "));
    send_all(fd, "pause", 5);
    usleep(50 * 1000);
    uint64_t t0 = now_ms();
    send_all(fd, "after", 5);
    read_until(fd, buf, sizeof buf, "after");
    assert_string_equal(buf, "after");
    assert_true(now_ms() - t0 >= 200);
    hang_up(fd);
}

/* A client that goes away: on_close, once, with the reason. */
static void
test_client_close_calls_on_close(void **state)
{
    int before = atomic_load(&closes);
    int fd = dial();
    char buf[4096];
    send_all(fd, upgrade_head, sizeof upgrade_head - 1);
    read_until(fd, buf, sizeof buf, "\r\n\r\n");
    close(fd);
    wait_for(&closes, before + 1);
    assert_int_equal(atomic_load(&closes), before + 1);
    assert_string_equal(close_why, "client closed");
}

/* Writes report what is queued while the client reads nothing; on_drain when it reads. */
static void
test_write_backpressure_and_drain(void **state)
{
    int fd = dial();
    int small = 16 * 1024;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    char buf[4096];
    send_all(fd, upgrade_head, sizeof upgrade_head - 1);
    read_until(fd, buf, sizeof buf, "\r\n\r\n");
    int d0 = atomic_load(&drains);
    atomic_store(&max_queued, 0);
    send_all(fd, "flood", 5);
    usleep(200 * 1000);
    assert_true(atomic_load(&max_queued) > 512 * 1024);
    assert_int_equal(atomic_load(&drains), d0); /* nothing read yet: no drain */
    /* Read it all: FLOOD_CHUNKS of 64 KiB, then END. */
    size_t total = 0;
    char tail[4] = {0};
    static char big[256 * 1024];
    for (;;) {
        ssize_t k = recv(fd, big, sizeof big, 0);
        assert_true(k > 0);
        total += (size_t)k;
        if (k >= 3)
            memcpy(tail, big + k - 3, 3);
        else
            memmove(tail, tail + k, 3 - (size_t)k), memcpy(tail + 3 - k, big, (size_t)k);
        if (memcmp(tail, "END", 3) == 0)
            break;
    }
    assert_int_equal(total, (size_t)FLOOD_CHUNKS * 64 * 1024 + 3);
    assert_true(atomic_load(&drains) > d0);
    hang_up(fd);
}

/* skiff_tunnel_close: what was written goes out, then the connection ends, no on_close. */
static void
test_close_flushes_without_on_close(void **state)
{
    int before = atomic_load(&closes);
    int fd = dial();
    char buf[4096];
    send_all(fd, upgrade_head, sizeof upgrade_head - 1);
    read_until(fd, buf, sizeof buf, "\r\n\r\n");
    send_all(fd, "bye", 3);
    size_t n = read_until(fd, buf, sizeof buf, NULL); /* to EOF */
    assert_int_equal(n, 7);
    assert_string_equal(buf, "goodbye");
    usleep(100 * 1000);
    assert_int_equal(atomic_load(&closes), before);
    close(fd);
}

/* A handler that does not upgrade answers normally; the connection closes after, and the bytes
 * after the head are not parsed as a second request. */
static void
test_refused_upgrade_closes_after_the_answer(void **state)
{
    int fd = dial();
    char out[1024];
    snprintf(
        out, sizeof out,
        "GET /no HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: h2c/1, websocket\r\n\r\n"
        "GET /no HTTP/1.1\r\nHost: x\r\n\r\n");
    send_all(fd, out, strlen(out));
    char buf[4096];
    read_until(fd, buf, sizeof buf, NULL);
    assert_non_null(strstr(buf, "HTTP/1.1 400 "));
    assert_non_null(strstr(buf, "connection: close\r\n"));
    assert_non_null(strstr(buf, "no upgrade (h2c)"));
    assert_null(strstr(strstr(buf, "no upgrade") + 1, "HTTP/1.1")); /* one answer only */
    close(fd);
}

/* An upgrade request with a body is refused by the HTTP layer, before the handler. */
static void
test_upgrade_with_a_body_is_400(void **state)
{
    int fd = dial();
    static const char out[] = "POST /echo HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\n"
                              "Upgrade: websocket\r\nContent-Length: 2\r\n\r\nhi";
    int up = atomic_load(&upgrades);
    send_all(fd, out, sizeof out - 1);
    char buf[4096];
    read_until(fd, buf, sizeof buf, NULL);
    assert_non_null(strstr(buf, "HTTP/1.1 400 "));
    assert_non_null(strstr(buf, "a protocol upgrade request carries no body"));
    assert_int_equal(atomic_load(&upgrades), up);
    close(fd);
}

/* Upgrade without Connection: upgrade is no upgrade request. */
static void
test_upgrade_token_needs_connection_upgrade(void **state)
{
    int fd = dial();
    static const char out[] = "GET /no HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                              "Connection: close\r\n\r\n";
    send_all(fd, out, sizeof out - 1);
    char buf[4096];
    read_until(fd, buf, sizeof buf, NULL);
    assert_non_null(strstr(buf, "no upgrade (none)"));
    close(fd);
}

/* A drain lets tunnels run until the drain time is over, then closes the one without
 * on_shutdown (on_close) and lets the other say goodbye and close itself. Runs last: the
 * server stops after it. */
static void
test_drain_lets_tunnels_run_then_ends_them(void **state)
{
    static const char polite_head[] = "GET /polite HTTP/1.1\r\nHost: x\r\nConnection: "
                                      "Upgrade\r\nUpgrade: websocket\r\n\r\n";
    int fd = dial(), pfd = dial();
    char buf[4096];
    send_all(fd, upgrade_head, sizeof upgrade_head - 1);
    read_until(fd, buf, sizeof buf, "\r\n\r\n");
    send_all(pfd, polite_head, sizeof polite_head - 1);
    read_until(pfd, buf, sizeof buf, "\r\n\r\n");
    assert_non_null(strstr(buf, " 101 "));
    int before = atomic_load(&closes);
    uint64_t t0 = now_ms();
    skiff_server_drain(srv);
    usleep(100 * 1000);
    send_all(fd, "still", 5);
    read_until(fd, buf, sizeof buf, "still");
    assert_string_equal(buf, "still");
    assert_int_equal(atomic_load(&closes), before);
    wait_for(&closes, before + 1);
    assert_int_equal(atomic_load(&closes), before + 1); /* the polite one closed itself */
    assert_true(now_ms() - t0 >= 250);
    assert_string_equal(close_why, "server draining: the drain time is over");
    assert_int_equal(read_until(fd, buf, sizeof buf, NULL), 0); /* EOF */
    assert_int_equal(read_until(pfd, buf, sizeof buf, NULL), 7);
    assert_string_equal(buf, "goodbye");
    assert_int_equal(atomic_load(&shutdowns), 1);
    close(fd);
    close(pfd);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_upgrade_echoes_bytes_sent_with_the_head),
        cmocka_unit_test(test_pause_holds_reads_until_resume),
        cmocka_unit_test(test_client_close_calls_on_close),
        cmocka_unit_test(test_write_backpressure_and_drain),
        cmocka_unit_test(test_close_flushes_without_on_close),
        cmocka_unit_test(test_refused_upgrade_closes_after_the_answer),
        cmocka_unit_test(test_upgrade_with_a_body_is_400),
        cmocka_unit_test(test_upgrade_token_needs_connection_upgrade),
        cmocka_unit_test(test_drain_lets_tunnels_run_then_ends_them),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
