/* The server's lifecycle: a worker that cannot start stops the whole server cleanly. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <unistd.h>

#include <cmocka.h>

#include "server/server.h"

static int fini_calls;

static void
handler(struct skiff_request *req, void *worker_data)
{
    (void)worker_data;
    skiff_http_respond(req, 200, "text/plain", "ok", 2);
}

/* Worker 1 fails (as skiff_dispatch_worker_init does when its upstream client cannot be
 * made); worker 0 starts and must be stopped. */
static void *
worker_init(uv_loop_t *loop, int index, void *data)
{
    (void)loop;
    return index == 1 ? NULL : data;
}

static void
worker_fini(void *worker_data)
{
    (void)worker_data;
    fini_calls++;
}

static void
test_failed_worker_init_stops_the_server(void **state)
{
    (void)state;
    int data = 0;
    struct skiff_server_opts opts = {
        .host = "127.0.0.1",
        .port = 0,
        .workers = 2,
        .max_body_bytes = 1024,
        .header_timeout_ms = 1000,
        .idle_timeout_ms = 1000,
        .max_connections = 16,
        .handler = handler,
        .worker_init = worker_init,
        .worker_fini = worker_fini,
        .data = &data,
        .name = "test",
    };
    char err[256];
    struct skiff_server *srv = skiff_server_new(&opts, err, sizeof err);
    assert_non_null(srv);
    alarm(20); /* a server that serves on with a worker missing never returns */
    assert_int_equal(skiff_server_run(srv), 1);
    alarm(0);
    assert_int_equal(fini_calls, 1); /* only the worker that started is finished */
    skiff_server_free(srv);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_failed_worker_init_stops_the_server),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
