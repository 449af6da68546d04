#include "base/log.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "base/err.h"
#include "base/num.h"

/*
 * Threads and memory (docs/internals/store.md, "Logs", says the same at more length):
 *
 * Every thread that logs while the log thread runs owns one ring of RING_BYTES. The owner
 * is its only producer and the log thread its only consumer, so the ring needs no lock:
 * the owner copies a whole line in and then publishes tail; the log thread writes
 * head..tail to stderr and then publishes head. A line that does not fit is dropped and
 * counted in the ring, never waited for. Rings are linked into one list (pushed at the
 * front, never unlinked); a ring whose thread exited is claimed by the next new thread.
 *
 * The log thread waits on a condition variable only when every ring is empty; it sets idle
 * first and then looks at the rings once more, and a producer looks at idle after it
 * publishes tail (both sequentially consistent), so a line never waits for the next one.
 * After a pass that wrote something it sleeps BATCH_WAIT_NS so that lines gather into one
 * writev instead of waking it once per line.
 */

#define RING_BYTES ((size_t)256 * 1024) /* per thread: about 1,300 access-log lines */
#define BATCH_WAIT_NS 2000000L          /* 2 ms */
#define IDLE_WAIT_MS 1000
#define MAX_IOV 64
#define CUT_MARK ",\"cut\":true"
/* Room always kept at the end of a line for the cut mark and the closing "}\n". */
#define RESERVE (sizeof CUT_MARK - 1 + 2)

static atomic_int threshold = SKIFF_LOG_INFO;
static const char *const level_names[] = {"debug", "info", "warn", "error"};

struct ring {
    _Atomic uint64_t head;    /* bytes the log thread has written */
    _Atomic uint64_t tail;    /* bytes the owner has put */
    _Atomic uint64_t dropped; /* lines dropped since the log thread last reported them */
    atomic_int unowned;       /* the owner exited: the next new thread may claim it */
    struct ring *next;
    char data[RING_BYTES];
};

static struct {
    atomic_int running; /* producers queue instead of writing */
    _Atomic(struct ring *) rings;
    _Atomic uint64_t dropped_total;
    _Atomic uint64_t lost; /* lines of threads that got no ring (out of memory) */
    atomic_int idle;       /* the log thread waits on wake and must be signalled */
    pthread_mutex_t mu;    /* guards what follows, and the waits */
    pthread_cond_t wake;
    pthread_cond_t flushed;
    uint64_t flush_req;
    uint64_t flush_done;
    int stopping;
    int exited;
    pthread_t thread;
} g = {
    .mu = PTHREAD_MUTEX_INITIALIZER,
    .wake = PTHREAD_COND_INITIALIZER,
    .flushed = PTHREAD_COND_INITIALIZER,
};

static pthread_once_t key_once = PTHREAD_ONCE_INIT;
static pthread_key_t ring_key;
static _Thread_local struct ring *my_ring;

void
skiff_log_set_level(enum skiff_log_level level)
{
    atomic_store(&threshold, (int)level);
}

int
skiff_log_level_parse(const char *name)
{
    for (int i = 0; i < 4; i++)
        if (strcasecmp(name, level_names[i]) == 0)
            return i;
    return -1;
}

int
skiff_log_enabled(enum skiff_log_level level)
{
    return (int)level >= atomic_load_explicit(&threshold, memory_order_relaxed);
}

/* ---- building a line ---- */

/* Whether n more bytes fit, keeping RESERVE for the end of the line. */
static int
fits(const struct skiff_log *l, size_t n)
{
    return l->len + n + RESERVE <= sizeof l->buf;
}

static void
put(struct skiff_log *l, const char *s, size_t n)
{
    memcpy(l->buf + l->len, s, n);
    l->len += n;
}

/* The length of the valid UTF-8 sequence at s (RFC 3629: no overlongs, no surrogates, at
 * most U+10FFFF), or 0 when s does not start one. */
static size_t
utf8_seq(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    unsigned lo = 0x80, hi = 0xbf;
    size_t len;
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        if (c == 0xe0)
            lo = 0xa0;
        else if (c == 0xed)
            hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        if (c == 0xf0)
            lo = 0x90;
        else if (c == 0xf4)
            hi = 0x8f;
    } else {
        return 0;
    }
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    return len;
}

/* Bytes copied as they are inside a JSON string: printable ASCII but the quote and backslash. */
static int
plain(unsigned char c)
{
    return c >= 0x20 && c < 0x7f && c != '"' && c != '\\';
}

/*
 * Writes s as a JSON string. Quotes, backslashes and control bytes are escaped; valid UTF-8
 * is copied; every byte that does not start a valid UTF-8 sequence becomes \ufffd, so the
 * line stays JSON (and UTF-8) whatever a client put in a path. A value that does not fit is
 * cut at a character and the line marked cut. Runs of plain ASCII (nearly every value) are
 * copied with one memcpy.
 */
/* From i, the end of the run of plain bytes in s[0..n): 16 bytes at a time where SSE2 is. */
static size_t
plain_run(const unsigned char *s, size_t i, size_t n)
{
#ifdef __SSE2__
    const __m128i space = _mm_set1_epi8(0x20), del = _mm_set1_epi8(0x7f);
    const __m128i quote = _mm_set1_epi8('"'), bslash = _mm_set1_epi8('\\');
    while (n - i >= 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(s + i));
        /* signed: below 0x20 holds the control bytes and every byte >= 0x80 */
        __m128i hit =
            _mm_or_si128(_mm_or_si128(_mm_cmplt_epi8(v, space), _mm_cmpeq_epi8(v, del)),
                         _mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, bslash)));
        int m = _mm_movemask_epi8(hit);
        if (m)
            return i + (size_t)__builtin_ctz((unsigned)m);
        i += 16;
    }
    if (i < n && n >= 16) {
        /* The tail: the last 16 bytes, those before i (already plain) masked off. */
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(s + n - 16));
        __m128i hit =
            _mm_or_si128(_mm_or_si128(_mm_cmplt_epi8(v, space), _mm_cmpeq_epi8(v, del)),
                         _mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, bslash)));
        unsigned m = (unsigned)_mm_movemask_epi8(hit) >> (16 - (n - i));
        return m ? i + (size_t)__builtin_ctz(m) : n;
    }
#endif
    while (i < n && plain(s[i]))
        i++;
    return i;
}

static void
put_escaped(struct skiff_log *l, const char *str, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *s = (const unsigned char *)str;
    put(l, "\"", 1);
    for (size_t i = 0; i < n;) {
        size_t j = plain_run(s, i, n);
        if (j > i) {
            /* Room for the run and the closing quote; a run of ASCII may be cut anywhere. */
            size_t run = j - i, room = sizeof l->buf - RESERVE - 1 - l->len;
            size_t k = run <= room ? run : room;
            put(l, str + i, k);
            i += k;
            if (k < run) {
                l->cut = 1;
                break;
            }
            continue;
        }
        char e[6];
        const char *out = e;
        size_t k, step = 1;
        unsigned c = s[i];
        if (c == '"' || c == '\\') {
            e[0] = '\\';
            e[1] = (char)c;
            k = 2;
        } else if (c < 0x80) { /* a control byte or DEL */
            /* NOLINTNEXTLINE(bugprone-not-null-terminated-result): e holds counted bytes. */
            memcpy(e, "\\u00", 4);
            e[4] = hex[c >> 4];
            e[5] = hex[c & 15];
            k = 6;
        } else if ((step = utf8_seq(&s[i], n - i)) > 0) {
            out = (const char *)&s[i];
            k = step;
        } else {
            out = "\\ufffd";
            k = 6;
            step = 1;
        }
        if (!fits(l, k + 1)) { /* + the closing quote */
            l->cut = 1;
            break;
        }
        put(l, out, k);
        i += step;
    }
    put(l, "\"", 1);
}

/* Starts a field: ,"key": with room for at least min_value bytes after it. */
static int
field(struct skiff_log *l, const char *key, size_t min_value)
{
    if (l->skip || l->cut)
        return 0;
    size_t klen = strlen(key);
    if (!fits(l, klen + 4 + min_value)) {
        l->cut = 1;
        return 0;
    }
    put(l, ",\"", 2);
    put(l, key, klen);
    put(l, "\":", 2);
    return 1;
}

/* "2026-12-01T09:39:40." for the current second; formatted once a second per thread. */
static size_t
ts_prefix(time_t sec, char out[24])
{
    static _Thread_local time_t cached_sec = (time_t)-1;
    static _Thread_local char cached[24];
    static _Thread_local size_t cached_len;
    if (sec != cached_sec) {
        struct tm tm;
        gmtime_r(&sec, &tm);
        int n = snprintf(cached, sizeof cached, "%04d-%02d-%02dT%02d:%02d:%02d.", tm.tm_year + 1900,
                         tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
        cached_len = n > 0 && (size_t)n < sizeof cached ? (size_t)n : 0;
        cached_sec = sec;
    }
    memcpy(out, cached, cached_len);
    return cached_len;
}

void
skiff_log_begin(struct skiff_log *l, enum skiff_log_level level, const char *event)
{
    l->len = 0;
    l->cut = 0;
    l->skip = !skiff_log_enabled(level);
    if (l->skip)
        return;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    char t[24];
    put(l, "{\"ts\":\"", 7);
    put(l, t, ts_prefix(ts.tv_sec, t));
    long ms = ts.tv_nsec / 1000000;
    char d[3] = {(char)('0' + ms / 100), (char)('0' + ms / 10 % 10), (char)('0' + ms % 10)};
    put(l, d, 3);
    put(l, "Z\",\"level\":\"", 12);
    put(l, level_names[level], strlen(level_names[level]));
    put(l, "\"", 1);
    skiff_log_str(l, "event", event);
}

void
skiff_log_strn(struct skiff_log *l, const char *key, const char *value, size_t len)
{
    if (!field(l, key, 4)) /* "" or null */
        return;
    if (value)
        put_escaped(l, value, len);
    else
        put(l, "null", 4);
}

void
skiff_log_str(struct skiff_log *l, const char *key, const char *value)
{
    skiff_log_strn(l, key, value, value ? strlen(value) : 0);
}

void
skiff_log_int(struct skiff_log *l, const char *key, long long value)
{
    if (!field(l, key, 21))
        return;
    uint64_t v = (uint64_t)value;
    if (value < 0) {
        put(l, "-", 1);
        v = ~v + 1; /* the magnitude, also for LLONG_MIN */
    }
    l->len += skiff_fmt_uint(l->buf + l->len, v, 10);
}

/* ---- handing a line on ---- */

static void
forget_ring(void *ring)
{
    struct ring *r = ring;
    atomic_store(&r->unowned, 1);
}

static void
make_key(void)
{
    pthread_key_create(&ring_key, forget_ring);
}

/* The calling thread's ring: one a finished thread left, or a new one. NULL without memory. */
static struct ring *
attach(void)
{
    pthread_once(&key_once, make_key);
    struct ring *r;
    for (r = atomic_load(&g.rings); r; r = r->next) {
        int one = 1;
        /* Empty or not, its lines stay in order: this thread only appends after them. */
        if (atomic_load(&r->unowned) && atomic_compare_exchange_strong(&r->unowned, &one, 0))
            break;
    }
    if (!r) {
        r = calloc(1, sizeof *r);
        if (!r)
            return NULL;
        struct ring *first = atomic_load(&g.rings);
        do
            r->next = first;
        while (!atomic_compare_exchange_weak(&g.rings, &first, r));
    }
    pthread_setspecific(ring_key, r);
    my_ring = r;
    return r;
}

static void
wake_log_thread(void)
{
    if (atomic_exchange(&g.idle, 0)) {
        pthread_mutex_lock(&g.mu);
        pthread_cond_signal(&g.wake);
        pthread_mutex_unlock(&g.mu);
    }
}

/* Copies a whole line into the caller's ring, or drops and counts it. Never waits for I/O. */
static void
enqueue(const char *line, size_t n)
{
    struct ring *r = my_ring ? my_ring : attach();
    if (!r) {
        atomic_fetch_add(&g.lost, 1);
        atomic_fetch_add(&g.dropped_total, 1);
        return;
    }
    uint64_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
    uint64_t head = atomic_load_explicit(&r->head, memory_order_acquire);
    if (RING_BYTES - (tail - head) < n) {
        atomic_fetch_add_explicit(&r->dropped, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&g.dropped_total, 1, memory_order_relaxed);
        return;
    }
    size_t off = (size_t)(tail % RING_BYTES);
    size_t first = n < RING_BYTES - off ? n : RING_BYTES - off;
    memcpy(r->data + off, line, first);
    memcpy(r->data, line + first, n - first);
    atomic_store(&r->tail, tail + n);
    if (atomic_load(&g.idle))
        wake_log_thread();
}

void
skiff_log_end(struct skiff_log *l)
{
    if (l->skip)
        return;
    if (l->cut)
        put(l, CUT_MARK, sizeof CUT_MARK - 1);
    put(l, "}\n", 2);
    if (atomic_load_explicit(&g.running, memory_order_acquire)) {
        enqueue(l->buf, l->len);
        return;
    }
    ssize_t rc = write(STDERR_FILENO, l->buf, l->len);
    (void)rc; /* nowhere to report a failed log write */
}

void
skiff_log_msg(enum skiff_log_level level, const char *event, const char *msg)
{
    struct skiff_log l;
    skiff_log_begin(&l, level, event);
    skiff_log_str(&l, "msg", msg);
    skiff_log_end(&l);
}

uint64_t
skiff_log_dropped_total(void)
{
    return atomic_load(&g.dropped_total);
}

/* ---- the log thread ---- */

/*
 * Writes every iovec to stderr, waiting as long as it takes: this thread is the one place
 * that may wait for stderr. Gives up only on an error other than EINTR/EAGAIN (stderr
 * closed), since there is nowhere to report it.
 */
static void
write_all(struct iovec *iov, int cnt)
{
    while (cnt > 0) {
        ssize_t n = writev(STDERR_FILENO, iov, cnt);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN) {
                struct pollfd p = {.fd = STDERR_FILENO, .events = POLLOUT};
                poll(&p, 1, IDLE_WAIT_MS);
                continue;
            }
            return;
        }
        size_t done = (size_t)n;
        while (cnt > 0 && done >= iov->iov_len) {
            done -= iov->iov_len;
            iov++;
            cnt--;
        }
        if (cnt > 0) {
            iov->iov_base = (char *)iov->iov_base + done;
            iov->iov_len -= done;
        }
    }
}

/* Logs how many lines were dropped; written here, by the only thread that writes. */
static void
report_dropped(uint64_t n)
{
    struct skiff_log l;
    skiff_log_begin(&l, SKIFF_LOG_WARN, "log_dropped");
    if (l.skip)
        return;
    skiff_log_int(&l, "dropped", (long long)n);
    skiff_log_str(&l, "msg", "stderr was not read fast enough: lines were dropped");
    put(&l, "}\n", 2);
    struct iovec iov = {l.buf, l.len};
    write_all(&iov, 1);
}

/* One pass over every ring: writes what each holds, then reports drops. Returns bytes. */
static size_t
drain_pass(void)
{
    size_t total = 0;
    struct ring *r = atomic_load(&g.rings);
    while (r) {
        struct iovec iov[MAX_IOV];
        struct ring *taken[MAX_IOV / 2];
        uint64_t upto[MAX_IOV / 2];
        int cnt = 0, nr = 0;
        for (; r && nr < MAX_IOV / 2; r = r->next) {
            uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
            uint64_t tail = atomic_load(&r->tail);
            if (head == tail)
                continue;
            size_t n = (size_t)(tail - head);
            size_t off = (size_t)(head % RING_BYTES);
            size_t first = n < RING_BYTES - off ? n : RING_BYTES - off;
            iov[cnt++] = (struct iovec){r->data + off, first};
            if (n > first)
                iov[cnt++] = (struct iovec){r->data, n - first};
            taken[nr] = r;
            upto[nr++] = tail;
            total += n;
        }
        if (cnt)
            write_all(iov, cnt);
        for (int i = 0; i < nr; i++)
            atomic_store_explicit(&taken[i]->head, upto[i], memory_order_release);
    }
    uint64_t dropped = atomic_exchange(&g.lost, 0);
    for (r = atomic_load(&g.rings); r; r = r->next)
        dropped += atomic_exchange(&r->dropped, 0);
    if (dropped)
        report_dropped(dropped);
    return total;
}

static int
pending(void)
{
    if (atomic_load(&g.lost))
        return 1;
    for (struct ring *r = atomic_load(&g.rings); r; r = r->next)
        if (atomic_load(&r->head) != atomic_load(&r->tail) || atomic_load(&r->dropped))
            return 1;
    return 0;
}

static void
deadline_in(struct timespec *ts, int ms)
{
    clock_gettime(CLOCK_REALTIME, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

/*
 * The log thread: passes over the rings until one finds nothing, then tells flushers that
 * everything queued before their request is written, and waits for work. It leaves when
 * stopping is set and a pass found nothing, so stop writes everything queued before it.
 */
static void *
log_main(void *arg)
{
    (void)arg;
    for (;;) {
        pthread_mutex_lock(&g.mu);
        uint64_t req = g.flush_req;
        int flushing = g.flush_done < req;
        int stop = g.stopping;
        pthread_mutex_unlock(&g.mu);

        if (drain_pass() > 0) {
            if (!stop && !flushing) {
                struct timespec d = {0, BATCH_WAIT_NS};
                nanosleep(&d, NULL);
            }
            continue;
        }
        pthread_mutex_lock(&g.mu);
        if (g.flush_done < req) {
            g.flush_done = req;
            pthread_cond_broadcast(&g.flushed);
        }
        if (stop) {
            pthread_mutex_unlock(&g.mu);
            break;
        }
        atomic_store(&g.idle, 1);
        if (!pending() && !g.stopping && g.flush_req == req) {
            struct timespec ts;
            deadline_in(&ts, IDLE_WAIT_MS);
            pthread_cond_timedwait(&g.wake, &g.mu, &ts);
        }
        atomic_store(&g.idle, 0);
        pthread_mutex_unlock(&g.mu);
    }
    pthread_mutex_lock(&g.mu);
    g.exited = 1;
    pthread_cond_broadcast(&g.flushed);
    pthread_mutex_unlock(&g.mu);
    return NULL;
}

int
skiff_log_start(void)
{
    if (atomic_load(&g.running))
        return 0;
    pthread_mutex_lock(&g.mu);
    g.stopping = 0;
    g.exited = 0;
    pthread_mutex_unlock(&g.mu);
    /* The thread inherits this mask: a SIGTERM must reach the thread that waits for it. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&g.thread, NULL, log_main, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0)
        return SKIFF_EIO;
    atomic_store_explicit(&g.running, 1, memory_order_release);
    return 0;
}

int
skiff_log_flush(int timeout_ms)
{
    if (!atomic_load(&g.running))
        return 0;
    struct timespec ts;
    deadline_in(&ts, timeout_ms);
    pthread_mutex_lock(&g.mu);
    uint64_t target = ++g.flush_req;
    atomic_store(&g.idle, 0);
    pthread_cond_signal(&g.wake);
    int rc = 0;
    while (g.flush_done < target && !g.exited && rc == 0)
        rc = pthread_cond_timedwait(&g.flushed, &g.mu, &ts);
    int ok = g.flush_done >= target;
    pthread_mutex_unlock(&g.mu);
    return ok ? 0 : SKIFF_EIO;
}

void
skiff_log_stop(int timeout_ms)
{
    if (!atomic_load(&g.running))
        return;
    pthread_mutex_lock(&g.mu);
    g.stopping = 1;
    atomic_store(&g.idle, 0);
    pthread_cond_signal(&g.wake);
    pthread_mutex_unlock(&g.mu);
    struct timespec ts;
    deadline_in(&ts, timeout_ms);
    if (pthread_timedjoin_np(g.thread, NULL, &ts) != 0) {
        /*
         * stderr takes nothing (a pipe nobody reads): leave the thread blocked in its write
         * and the lines queued, rather than hang the exit. Lines from now on are dropped.
         */
        return;
    }
    atomic_store_explicit(&g.running, 0, memory_order_release);
    /* Rings stay on the list (threads still alive keep theirs for the next start). */
}
