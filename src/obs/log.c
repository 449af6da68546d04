#include "obs/log.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static atomic_int threshold = SKIFF_LOG_INFO;
static const char *const level_names[] = {"debug", "info", "warn", "error"};

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
    return (int)level >= atomic_load(&threshold);
}

static void
put(struct skiff_log *l, const char *s, size_t n)
{
    /* Keep 3 bytes for the closing "}\n" and a NUL; a line that would overflow is cut. */
    if (l->len + n > sizeof l->buf - 3)
        n = sizeof l->buf - 3 - l->len;
    memcpy(l->buf + l->len, s, n);
    l->len += n;
}

static void
put_escaped(struct skiff_log *l, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    put(l, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            put(l, e, 2);
        } else if (c < 0x20 || c == 0x7f) {
            char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            put(l, e, 6);
        } else {
            put(l, (const char *)&s[i], 1);
        }
    }
    put(l, "\"", 1);
}

void
skiff_log_begin(struct skiff_log *l, enum skiff_log_level level, const char *event)
{
    l->len = 0;
    l->skip = !skiff_log_enabled(level);
    if (l->skip)
        return;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char t[64];
    int n = snprintf(t, sizeof t, "{\"ts\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ\",\"level\":\"%s\"",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, ts.tv_nsec / 1000000, level_names[level]);
    put(l, t, (size_t)n);
    skiff_log_str(l, "event", event);
}

void
skiff_log_strn(struct skiff_log *l, const char *key, const char *value, size_t len)
{
    if (l->skip)
        return;
    put(l, ",\"", 2);
    put(l, key, strlen(key));
    put(l, "\":", 2);
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
    if (l->skip)
        return;
    char t[160];
    int n = snprintf(t, sizeof t, ",\"%s\":%lld", key, value);
    if (n > 0)
        put(l, t, (size_t)n < sizeof t ? (size_t)n : sizeof t - 1);
}

void
skiff_log_end(struct skiff_log *l)
{
    if (l->skip)
        return;
    l->buf[l->len++] = '}';
    l->buf[l->len++] = '\n';
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
