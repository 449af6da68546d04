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

#include "base/log.h"
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
    /* What the signal thread asked for, read by each worker's stop_async callback. */
    pthread_mutex_t mu;
    enum { RUNNING, DRAINING, STOPPING } phase;
    int finished; /* every worker has stopped: SIGUSR1 from skiff_server_run ends sig_thread */
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
    pthread_mutex_init(&srv->mu, NULL);
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
            pthread_mutex_destroy(&srv->mu);
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
close_once(uv_handle_t *h)
{
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

static void
on_send_sweep(uv_timer_t *t)
{
    struct skiff_worker *w = t->data;
    skiff_conn_sweep(w, (uint64_t)w->opts->send_timeout_ms);
}

/* On the worker's loop: stop accepting, close every connection, let the handler clean up. */
static void
stop_now(struct skiff_worker *w)
{
    if (w->stopping)
        return;
    w->stopping = 1;
    close_once((uv_handle_t *)&w->listener);
    close_once((uv_handle_t *)&w->trim_timer);
    close_once((uv_handle_t *)&w->drain_timer);
    close_once((uv_handle_t *)&w->send_timer);
    while (w->conns)
        skiff_conn_close(w->conns, "server stopping");
    if (w->opts->worker_fini && !w->init_failed)
        w->opts->worker_fini(w->data);
    w->data = NULL;
    pthread_mutex_lock(&w->srv->mu);
    w->async_closed = 1;
    pthread_mutex_unlock(&w->srv->mu);
    uv_close((uv_handle_t *)&w->stop_async, NULL);
}

/*
 * The drain's timer: at drain_end the requests still in flight are cut (the cut's last
 * bytes get a second to leave), and the worker stops once nothing is in flight and nothing
 * is left to flush, or at drain_end whatever is left.
 */
static void
on_drain_timer(uv_timer_t *t)
{
    struct skiff_worker *w = t->data;
    uint64_t now = uv_now(&w->loop);
    if (w->inflight > 0 && now < w->drain_end) {
        uv_timer_start(t, on_drain_timer, w->drain_end - now, 0);
        return;
    }
    if (w->inflight > 0 && !w->cut) {
        w->cut = 1;
        struct skiff_log l;
        skiff_log_begin(&l, SKIFF_LOG_WARN, "drain_cut");
        skiff_log_int(&l, "worker", w->index);
        skiff_log_int(&l, "requests", w->inflight);
        skiff_log_int(&l, "drain_timeout_ms", w->opts->drain_timeout_ms);
        skiff_log_end(&l);
        skiff_http_drain_cut(w);
        w->drain_end = now + 1000;
    }
    if ((w->inflight > 0 || skiff_http_flushing(w)) && now < w->drain_end) {
        uv_timer_start(t, on_drain_timer, 20, 0);
        return;
    }
    stop_now(w);
}

void
skiff_worker_drained(struct skiff_worker *w)
{
    if (w->draining && !w->stopping)
        uv_timer_start(&w->drain_timer, on_drain_timer, 0, 0);
}

/* On the worker's loop: stop accepting and let what is in flight finish. */
static void
drain_begin(struct skiff_worker *w)
{
    if (w->draining || w->stopping)
        return;
    w->draining = 1;
    close_once((uv_handle_t *)&w->listener);
    skiff_http_drain_begin(w);
    int ms = w->opts->drain_timeout_ms > 0 ? w->opts->drain_timeout_ms : 0;
    w->drain_end = uv_now(&w->loop) + (uint64_t)ms;
    if (w->inflight > 0) {
        struct skiff_log l;
        skiff_log_begin(&l, SKIFF_LOG_INFO, "draining");
        skiff_log_int(&l, "worker", w->index);
        skiff_log_int(&l, "requests", w->inflight);
        skiff_log_int(&l, "drain_timeout_ms", ms);
        skiff_log_end(&l);
    }
    uv_timer_start(&w->drain_timer, on_drain_timer, 0, 0);
}

/* The signal thread asked for something (skiff_server_drain or skiff_server_stop). */
static void
on_async(uv_async_t *a)
{
    struct skiff_worker *w = a->data;
    pthread_mutex_lock(&w->srv->mu);
    int phase = w->srv->phase;
    pthread_mutex_unlock(&w->srv->mu);
    if (phase == STOPPING || w->init_failed)
        stop_now(w);
    else if (phase == DRAINING)
        drain_begin(w);
}

static void
worker_main(void *arg)
{
    struct skiff_worker *w = arg;
    uv_timer_init(&w->loop, &w->trim_timer);
    w->trim_timer.data = w;
    uv_timer_init(&w->loop, &w->drain_timer);
    w->drain_timer.data = w;
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
    if (w->opts->worker_init) {
        w->data = w->opts->worker_init(&w->loop, w->index, w->opts->data);
        if (!w->data) {
            /* A worker that cannot serve must not accept: the whole server stops. */
            skiff_log_msg(SKIFF_LOG_ERROR, "worker_init",
                          "a worker could not start (out of memory?); skiff stops");
            w->init_failed = 1;
            close(w->fd);
            stop_now(w);
            skiff_server_stop(w->srv);
            uv_run(&w->loop, UV_RUN_DEFAULT);
            return;
        }
    }
    uv_timer_start(&w->trim_timer, on_trim, 2000, 2000);
    uv_unref((uv_handle_t *)&w->trim_timer);
    int rc = uv_tcp_open(&w->listener, w->fd);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&w->listener, 1024, on_connection);
    if (rc != 0)
        skiff_log_msg(SKIFF_LOG_ERROR, "listen", uv_strerror(rc));
    uv_run(&w->loop, UV_RUN_DEFAULT);
}

static void
signal_set(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGHUP);
    sigaddset(set, SIGUSR1);
}

/*
 * The signal thread: the first SIGTERM or SIGINT drains, the next stops at once; SIGHUP is
 * logged and ignored (there is no reload yet: the configuration, keys and tokens are read
 * once at start); SIGUSR1 from skiff_server_run, once every worker has stopped, ends the
 * thread (any other SIGUSR1 is ignored, so that SIGTERM keeps working).
 */
static void *
signal_main(void *arg)
{
    struct skiff_server *srv = arg;
    sigset_t set;
    signal_set(&set);
    int stops = 0;
    for (;;) {
        int sig = 0;
        if (sigwait(&set, &sig) != 0)
            continue;
        if (sig == SIGUSR1) {
            pthread_mutex_lock(&srv->mu);
            int finished = srv->finished;
            pthread_mutex_unlock(&srv->mu);
            if (finished)
                return NULL;
            continue; /* from someone else: not ours to act on */
        }
        if (sig == SIGHUP) {
            struct skiff_log l;
            skiff_log_begin(&l, SKIFF_LOG_WARN, "sighup_ignored");
            skiff_log_str(&l, "reason",
                          "skiff cannot reload its configuration while running yet; nothing "
                          "was changed: restart it to apply changes (SIGTERM drains the "
                          "requests in flight first)");
            skiff_log_end(&l);
            continue;
        }
        const char *name = sig == SIGINT ? "SIGINT" : "SIGTERM";
        struct skiff_log l;
        skiff_log_begin(&l, SKIFF_LOG_INFO, "stopping");
        skiff_log_str(&l, "signal", name);
        if (stops++ == 0 && srv->opts.drain_timeout_ms > 0) {
            skiff_log_str(&l, "mode", "drain");
            skiff_log_int(&l, "drain_timeout_ms", srv->opts.drain_timeout_ms);
            skiff_log_end(&l);
            skiff_server_drain(srv);
        } else {
            skiff_log_str(&l, "mode", "now");
            skiff_log_end(&l);
            skiff_server_stop(srv);
        }
    }
}

void
skiff_server_block_signals(void)
{
    sigset_t set;
    signal_set(&set);
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
        uv_async_init(&w->loop, &w->stop_async, on_async);
        w->stop_async.data = w;
    }
    for (int i = 0; i < srv->nworkers; i++)
        uv_thread_create(&srv->workers[i].thread, worker_main, &srv->workers[i]);
    srv->sig_thread_started = pthread_create(&srv->sig_thread, NULL, signal_main, srv) == 0;

    int failed = 0;
    for (int i = 0; i < srv->nworkers; i++) {
        uv_thread_join(&srv->workers[i].thread);
        uv_loop_close(&srv->workers[i].loop);
        failed |= srv->workers[i].init_failed;
    }
    if (srv->sig_thread_started) {
        pthread_mutex_lock(&srv->mu);
        srv->finished = 1;
        pthread_mutex_unlock(&srv->mu);
        pthread_kill(srv->sig_thread, SIGUSR1);
        pthread_join(srv->sig_thread, NULL);
    }
    return failed ? 1 : 0;
}

/* Sets the phase and wakes every worker that is still there to read it. */
static void
request_phase(struct skiff_server *srv, int phase)
{
    pthread_mutex_lock(&srv->mu);
    if ((int)srv->phase < phase)
        srv->phase = phase;
    for (int i = 0; i < srv->nworkers; i++)
        if (!srv->workers[i].async_closed)
            uv_async_send(&srv->workers[i].stop_async);
    pthread_mutex_unlock(&srv->mu);
}

void
skiff_server_drain(struct skiff_server *srv)
{
    request_phase(srv, DRAINING);
}

void
skiff_server_stop(struct skiff_server *srv)
{
    request_phase(srv, STOPPING);
}

void
skiff_server_free(struct skiff_server *srv)
{
    if (!srv)
        return;
    pthread_mutex_destroy(&srv->mu);
    free(srv->workers);
    free(srv);
}
