/*
 * Worker threads, each with its own loop and its own SO_REUSEPORT listening socket, so the
 * kernel spreads connections over them and no request ever hops between threads.
 */
#include "server/server.h"

#include <errno.h>
#include <malloc.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "obs/log.h"
#include "server/conn.h"
#include "server/http_conn.h"
#include "server/worker.h"

struct skiff_server {
    struct skiff_server_opts opts;
    struct skiff_worker *workers;
    int nworkers;
    uint16_t port;
    pthread_t sig_thread;
    int sig_thread_started;
    atomic_size_t buffered; /* limits.max_buffered_bytes counts against this */
};

/* Opens, binds and listens on one socket for host:port with SO_REUSEPORT. */
static int
bind_socket(const char *host, uint16_t port, char *err, size_t errlen)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res;
    char portstr[8];
    snprintf(portstr, sizeof portstr, "%u", port);
    int rc = getaddrinfo(host, portstr, &hints, &res);
    if (rc != 0) {
        snprintf(err, errlen, "cannot resolve listen address %s: %s", host, gai_strerror(rc));
        return -1;
    }
    int fd = socket(res->ai_family, res->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        freeaddrinfo(res);
        return -1;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    if (bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, 1024) != 0) {
        snprintf(err, errlen, "cannot listen on %s:%u: %s", host, port, strerror(errno));
        close(fd);
        freeaddrinfo(res);
        return -1;
    }
    freeaddrinfo(res);
    return fd;
}

static uint16_t
bound_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
        return 0;
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

struct skiff_server *
skiff_server_new(const struct skiff_server_opts *opts, char *err, size_t errlen)
{
    struct skiff_server *srv = calloc(1, sizeof *srv);
    if (!srv) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    srv->opts = *opts;
    srv->nworkers = opts->workers > 0 ? opts->workers : 1;
    srv->workers = calloc((size_t)srv->nworkers, sizeof *srv->workers);
    if (!srv->workers) {
        snprintf(err, errlen, "out of memory");
        free(srv);
        return NULL;
    }
    /* Every client connection and every upstream connection is a descriptor: take all the
     * system allows (the soft limit is often 1,024), as nginx's worker_rlimit_nofile does. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    uint32_t nonce = 0;
    if (getrandom(&nonce, sizeof nonce, 0) != sizeof nonce)
        nonce = (uint32_t)getpid();

    uint16_t port = opts->port;
    for (int i = 0; i < srv->nworkers; i++) {
        struct skiff_worker *w = &srv->workers[i];
        w->srv = srv;
        w->opts = &srv->opts;
        w->index = i;
        w->srv_nonce = nonce;
        w->buffered = &srv->buffered;
        int per = opts->max_connections / srv->nworkers;
        w->max_conns = per > 0 ? per : 1;
        /* With port 0 the first socket picks a free port and the others share it. */
        w->fd = bind_socket(opts->host, port, err, errlen);
        if (w->fd < 0) {
            for (int j = 0; j < i; j++)
                close(srv->workers[j].fd);
            free(srv->workers);
            free(srv);
            return NULL;
        }
        if (port == 0)
            port = bound_port(w->fd);
    }
    srv->port = port;
    return srv;
}

uint16_t
skiff_server_port(const struct skiff_server *srv)
{
    return srv->port;
}

static void
on_connection(uv_stream_t *server, int status)
{
    struct skiff_worker *w = server->data;
    if (status < 0) {
        skiff_log_msg(SKIFF_LOG_WARN, "accept", uv_strerror(status));
        return;
    }
    skiff_http_accept(w, server);
}

/*
 * After a burst of connections (thousands of open streams) has gone, glibc keeps the freed
 * memory in the thread's arena; give it back so the resident size follows the load.
 */
static void
on_trim(uv_timer_t *t)
{
    struct skiff_worker *w = t->data;
    if (w->peak_conns >= 256 && w->nconns < w->peak_conns / 4) {
        malloc_trim(0);
        w->peak_conns = w->nconns;
    }
}

static void
on_send_sweep(uv_timer_t *t)
{
    struct skiff_worker *w = t->data;
    skiff_conn_sweep(w, (uint64_t)w->opts->send_timeout_ms);
}

/* On the worker's loop: stop accepting, close every connection, let the handler clean up. */
static void
on_stop(uv_async_t *a)
{
    struct skiff_worker *w = a->data;
    w->stopping = 1;
    uv_close((uv_handle_t *)&w->listener, NULL);
    uv_close((uv_handle_t *)&w->trim_timer, NULL);
    uv_close((uv_handle_t *)&w->send_timer, NULL);
    while (w->conns)
        skiff_conn_close(w->conns, "server stopping");
    if (w->opts->worker_fini)
        w->opts->worker_fini(w->data);
    w->data = NULL;
    uv_close((uv_handle_t *)&w->stop_async, NULL);
}

static void
worker_main(void *arg)
{
    struct skiff_worker *w = arg;
    if (w->opts->worker_init)
        w->data = w->opts->worker_init(&w->loop, w->index, w->opts->data);
    uv_timer_init(&w->loop, &w->trim_timer);
    w->trim_timer.data = w;
    uv_timer_start(&w->trim_timer, on_trim, 2000, 2000);
    uv_unref((uv_handle_t *)&w->trim_timer);
    /* The send timeout is checked a few times per timeout, at most once a second. */
    uv_timer_init(&w->loop, &w->send_timer);
    w->send_timer.data = w;
    if (w->opts->send_timeout_ms > 0) {
        uint64_t every = (uint64_t)w->opts->send_timeout_ms / 4;
        every = every < 50 ? 50 : every > 1000 ? 1000 : every;
        uv_timer_start(&w->send_timer, on_send_sweep, every, every);
    }
    uv_unref((uv_handle_t *)&w->send_timer);
    uv_tcp_init(&w->loop, &w->listener);
    w->listener.data = w;
    int rc = uv_tcp_open(&w->listener, w->fd);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&w->listener, 1024, on_connection);
    if (rc != 0)
        skiff_log_msg(SKIFF_LOG_ERROR, "listen", uv_strerror(rc));
    uv_run(&w->loop, UV_RUN_DEFAULT);
}

static void *
signal_main(void *arg)
{
    struct skiff_server *srv = arg;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGUSR1);
    int sig = 0;
    sigwait(&set, &sig);
    if (sig != SIGUSR1) {
        skiff_log_msg(SKIFF_LOG_INFO, "stopping", sig == SIGINT ? "SIGINT" : "SIGTERM");
        skiff_server_stop(srv);
    }
    return NULL;
}

void
skiff_server_block_signals(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
}

int
skiff_server_run(struct skiff_server *srv)
{
    /* Signals are taken by one thread with sigwait, so no loop is interrupted by them. */
    skiff_server_block_signals();

    for (int i = 0; i < srv->nworkers; i++) {
        struct skiff_worker *w = &srv->workers[i];
        uv_loop_init(&w->loop);
        uv_async_init(&w->loop, &w->stop_async, on_stop);
        w->stop_async.data = w;
    }
    for (int i = 0; i < srv->nworkers; i++)
        uv_thread_create(&srv->workers[i].thread, worker_main, &srv->workers[i]);
    srv->sig_thread_started = pthread_create(&srv->sig_thread, NULL, signal_main, srv) == 0;

    for (int i = 0; i < srv->nworkers; i++) {
        uv_thread_join(&srv->workers[i].thread);
        uv_loop_close(&srv->workers[i].loop);
    }
    if (srv->sig_thread_started) {
        pthread_kill(srv->sig_thread, SIGUSR1);
        pthread_join(srv->sig_thread, NULL);
    }
    return 0;
}

void
skiff_server_stop(struct skiff_server *srv)
{
    for (int i = 0; i < srv->nworkers; i++)
        uv_async_send(&srv->workers[i].stop_async);
}

void
skiff_server_free(struct skiff_server *srv)
{
    if (!srv)
        return;
    free(srv->workers);
    free(srv);
}
