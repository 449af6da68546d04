/*
 * server/conn.c against a real socket: a write that cannot be queued (malloc fails) must not
 * close the connection under its caller (which may be a handler ending its response, whose
 * relay_done would then run twice); it closes from the loop, exactly once, like any failed
 * write. malloc is replaced for conn.c alone, so the failure is injected at the one place
 * it matters: the copy of what the socket did not take.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

static int fail_mallocs; /* while set, conn.c's malloc fails */

static void *
conn_malloc(size_t n)
{
    return fail_mallocs ? NULL : malloc(n);
}

#define malloc conn_malloc
#include "server/conn.c"
#undef malloc

static int closes;
static char close_reason[128];

static void
t_on_read(struct skiff_conn *c, const char *data, size_t len)
{
}

static void
t_on_close(struct skiff_conn *c, const char *reason)
{
    closes++;
    snprintf(close_reason, sizeof close_reason, "%s", reason);
}

static const struct skiff_conn_ops ops = {.on_read = t_on_read, .on_close = t_on_close};

static struct skiff_conn *accepted;

static void
on_connection(uv_stream_t *server, int status)
{
    assert_int_equal(status, 0);
    accepted = skiff_conn_accept(server->data, server, &ops, 0);
}

static void
test_write_without_memory_closes_from_the_loop_once(void **state)
{
    struct skiff_worker *w = calloc(1, sizeof *w);
    assert_non_null(w);
    assert_int_equal(uv_loop_init(&w->loop), 0);
    uv_tcp_t listener;
    uv_tcp_init(&w->loop, &listener);
    listener.data = w;
    struct sockaddr_in addr;
    uv_ip4_addr("127.0.0.1", 0, &addr);
    assert_int_equal(uv_tcp_bind(&listener, (const struct sockaddr *)&addr, 0), 0);
    assert_int_equal(uv_listen((uv_stream_t *)&listener, 8, on_connection), 0);
    struct sockaddr_in bound;
    int len = sizeof bound;
    uv_tcp_getsockname(&listener, (struct sockaddr *)&bound, &len);

    /* A client that never reads, with a small receive buffer: the socket soon takes no more. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int small = 4096;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    assert_int_equal(connect(fd, (struct sockaddr *)&bound, sizeof bound), 0);
    while (!accepted)
        uv_run(&w->loop, UV_RUN_ONCE);

    size_t big = 8 * 1024 * 1024;
    char *data = calloc(1, big);
    uv_buf_t b = uv_buf_init(data, (unsigned)big);
    fail_mallocs = 1;
    int rc = skiff_conn_write(accepted, &b, 1);
    fail_mallocs = 0;
    assert_int_equal(rc, UV_ENOMEM);
    /* Not closed under the caller... */
    assert_int_equal(closes, 0);
    assert_false(accepted->closing);
    /* ...but every later write fails, */
    assert_int_equal(skiff_conn_write(accepted, &b, 1), UV_EPIPE);
    /* and the loop closes it, once. */
    for (int i = 0; i < 5 && closes == 0; i++)
        uv_run(&w->loop, UV_RUN_NOWAIT);
    assert_int_equal(closes, 1);
    assert_string_equal(close_reason, uv_strerror(UV_ENOMEM));

    close(fd);
    uv_close((uv_handle_t *)&listener, NULL);
    uv_run(&w->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&w->loop), 0);
    free(data);
    free(w);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_write_without_memory_closes_from_the_loop_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
