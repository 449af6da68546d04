#include "sim/resource.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void
skiff_sim_res_error(struct skiff_sim_res_reply *r, int status, const char *gstatus, const char *fmt,
                    ...)
{
    va_list ap;
    r->status = status;
    r->gstatus = gstatus;
    va_start(ap, fmt);
    vsnprintf(r->message, sizeof r->message, fmt, ap);
    va_end(ap);
}

void
skiff_sim_res_denied(struct skiff_sim_res_reply *r, const char *kind, const char *id)
{
    skiff_sim_res_error(r, 403, "PERMISSION_DENIED",
                        "You do not have permission to access the %s %s or it may not exist.", kind,
                        id);
}

void
skiff_sim_res_time(int64_t ms, char *out, size_t outlen)
{
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    snprintf(out, outlen, "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000) * 1000);
}

/* Reads exactly n digits at *p into *v. */
static int
digits(const char **p, int n, int *v)
{
    *v = 0;
    for (int i = 0; i < n; i++, (*p)++) {
        if (!isdigit((unsigned char)**p))
            return -1;
        *v = *v * 10 + (**p - '0');
    }
    return 0;
}

int64_t
skiff_sim_res_parse_time(const char *s)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    int y, mo, d, h, mi, se;
    const char *p = s;
    if (digits(&p, 4, &y) || *p++ != '-' || digits(&p, 2, &mo) || *p++ != '-' ||
        digits(&p, 2, &d) || (*p != 'T' && *p != 't') || !*p++ || digits(&p, 2, &h) ||
        *p++ != ':' || digits(&p, 2, &mi) || *p++ != ':' || digits(&p, 2, &se))
        return -1;
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60)
        return -1;
    int64_t frac_ms = 0;
    if (*p == '.') {
        p++;
        int n = 0;
        for (; isdigit((unsigned char)*p); p++, n++)
            if (n < 3)
                frac_ms = frac_ms * 10 + (*p - '0');
        if (n == 0)
            return -1;
        for (; n < 3; n++)
            frac_ms *= 10;
    }
    int64_t off_s = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p++ == '-' ? -1 : 1, oh, om;
        if (digits(&p, 2, &oh) || *p++ != ':' || digits(&p, 2, &om))
            return -1;
        off_s = sign * (oh * 3600 + om * 60);
    } else {
        return -1;
    }
    if (*p)
        return -1;
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = se;
    time_t t = timegm(&tm);
    return ((int64_t)t - off_s) * 1000 + frac_ms;
}

int64_t
skiff_sim_res_parse_duration(const char *s)
{
    if (!s || !isdigit((unsigned char)*s))
        return -1;
    errno = 0;
    char *end;
    double v = strtod(s, &end);
    if (errno || end == s || strcmp(end, "s") != 0 || v < 0 || v > 1e12)
        return -1;
    return (int64_t)(v * 1000.0);
}

void
skiff_sim_res_id(uint64_t seed, char *out, size_t n)
{
    static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
    uint64_t x = seed;
    for (size_t i = 0; i < n; i++) {
        /* splitmix64 steps: each character from a fresh 64-bit value. */
        x += 0x9e3779b97f4a7c15ull;
        uint64_t z = x;
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        z ^= z >> 31;
        out[i] = alphabet[z % 36];
    }
    out[n] = '\0';
}

long
skiff_sim_res_page_size(const char *s, long def, long max)
{
    if (!s || !*s)
        return def;
    errno = 0;
    char *end;
    long v = strtol(s, &end, 10);
    if (errno || *end || v < 0)
        return -1;
    if (v == 0)
        return def;
    return v > max ? max : v;
}

void
skiff_sim_res_list(const struct skiff_sim_res_req *q, const struct skiff_sim_res_lister *l,
                   struct skiff_sim_res_reply *r)
{
    long size = skiff_sim_res_page_size(q->page_size, l->page_def, l->page_max);
    char *end;
    long start = q->page_token[0] ? strtol(q->page_token, &end, 10) : 0;
    if (size < 0 || (q->page_token[0] && (*end || start < 0))) {
        skiff_sim_res_error(r, 400, "INVALID_ARGUMENT",
                            size < 0 ? "Invalid page size." : "Invalid page token.");
        return;
    }
    json_t *arr = json_array();
    long seen = 0;
    int more = 0;
    for (size_t i = l->n; i-- > 0;) {
        if (strcmp(l->project(l->set, i), q->project) != 0)
            continue;
        if (seen >= start + size) {
            more = 1;
            break;
        }
        if (seen++ >= start)
            json_array_append_new(arr, l->json(l->set, i, q));
    }
    r->status = 200;
    r->body = json_object();
    if (json_array_size(arr))
        json_object_set_new(r->body, l->field, arr);
    else
        json_decref(arr);
    if (more) {
        char tok[24];
        snprintf(tok, sizeof tok, "%ld", start + size);
        json_object_set_new(r->body, "nextPageToken", json_string(tok));
    }
}
