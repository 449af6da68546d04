#include "sim/script.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"

struct skiff_sim_script_entry {
    struct skiff_sim_script_entry *next;
    char *model; /* NULL: any */
    char *key;
    char *method;
    long times; /* uses left; 0: until reset */
    struct skiff_sim_reply *reply;
};

struct skiff_sim_reply *
skiff_sim_reply_ref(struct skiff_sim_reply *r)
{
    r->refs++;
    return r;
}

void
skiff_sim_reply_unref(struct skiff_sim_reply *r)
{
    if (!r || --r->refs > 0)
        return;
    free(r->error_status);
    free(r->message);
    json_decref(r->details);
    free(r->body);
    free(r->content_type);
    json_decref(r->headers);
    json_decref(r->events);
    json_decref(r->error_after);
    free(r);
}

static void
entry_free(struct skiff_sim_script_entry *e)
{
    free(e->model);
    free(e->key);
    free(e->method);
    skiff_sim_reply_unref(e->reply);
    free(e);
}

void
skiff_sim_script_init(struct skiff_sim_script *s, size_t max)
{
    s->head = s->tail = NULL;
    s->n = 0;
    s->max = max;
}

void
skiff_sim_script_clear(struct skiff_sim_script *s)
{
    struct skiff_sim_script_entry *e = s->head;
    while (e) {
        struct skiff_sim_script_entry *next = e->next;
        entry_free(e);
        e = next;
    }
    skiff_sim_script_init(s, s->max);
}

/* ---- parsing ---- */

#define FAIL(...)                                                                                  \
    do {                                                                                           \
        snprintf(err, errlen, __VA_ARGS__);                                                        \
        return SKIFF_EINVAL;                                                                       \
    } while (0)

/* An optional integer field in [lo, hi]; *out keeps its value when the field is absent. */
static int
opt_long(const json_t *o, const char *name, long lo, long hi, long *out, int idx, char *err,
         size_t errlen)
{
    const json_t *v = json_object_get(o, name);
    if (!v)
        return 0;
    double d;
    if (json_is_integer(v))
        d = (double)json_integer_value(v);
    else if (json_is_real(v))
        d = json_real_value(v);
    else
        FAIL("script %d: reply.%s must be a number", idx, name);
    /* cppcheck-suppress legacyUninitvar ; FAIL returns, so d is set on every path that gets here */
    if (d < (double)lo || d > (double)hi)
        FAIL("script %d: reply.%s must be in [%ld, %ld]", idx, name, lo, hi);
    *out = (long)d;
    return 0;
}

static int
opt_string(const json_t *o, const char *name, char **out, int idx, const char *where, char *err,
           size_t errlen)
{
    const json_t *v = json_object_get(o, name);
    if (!v)
        return 0;
    if (!json_is_string(v))
        FAIL("script %d: %s.%s must be a string", idx, where, name);
    *out = strdup(json_string_value(v));
    return *out ? 0 : SKIFF_ENOMEM;
}

static const char *const reply_fields[] = {
    "status",     "message", "errorStatus", "details",   "body",       "headers", "contentType",
    "stream",     "error",   "chunkMs",     "latencyMs", "resetAfter", "quota",   "limit",
    "retryDelay", "reset",   "hang",        "thinkMs",   NULL};

/* Fills r from a reply object; the kind follows from which fields are present. */
static int
parse_reply(struct skiff_sim_reply *r, const json_t *o, int idx, char *err, size_t errlen)
{
    if (!json_is_object(o))
        FAIL("script %d: reply must be an object", idx);
    const char *name;
    json_t *v;
    json_object_foreach((json_t *)o, name, v)
    {
        int known = 0;
        for (const char *const *f = reply_fields; *f; f++)
            known |= strcmp(*f, name) == 0;
        if (!known)
            FAIL("script %d: unknown field reply.%s", idx, name);
    }

    r->chunk_ms = r->latency_ms = r->reset_after = r->quota_limit = r->retry_ms = -1;
    r->think_ms = -1;
    if (opt_long(o, "chunkMs", 0, 600000, &r->chunk_ms, idx, err, errlen) ||
        opt_long(o, "thinkMs", 0, 600000, &r->think_ms, idx, err, errlen) ||
        opt_long(o, "latencyMs", 0, 600000, &r->latency_ms, idx, err, errlen) ||
        opt_long(o, "resetAfter", 0, 1000000, &r->reset_after, idx, err, errlen) ||
        opt_long(o, "limit", 0, 1000000000000L, &r->quota_limit, idx, err, errlen))
        return SKIFF_EINVAL;
    const json_t *rd = json_object_get(o, "retryDelay");
    if (rd) {
        if (!json_is_number(rd) || json_number_value(rd) < 0 || json_number_value(rd) > 1e7)
            FAIL("script %d: reply.retryDelay must be a number of seconds", idx);
        r->retry_ms = (long)(json_number_value(rd) * 1000 + 0.5);
    }
    const json_t *h = json_object_get(o, "headers");
    if (h) {
        if (!json_is_object(h))
            FAIL("script %d: reply.headers must be an object of strings", idx);
        json_object_foreach((json_t *)h, name, v) if (!json_is_string(v))
            FAIL("script %d: reply.headers.%s must be a string", idx, name);
        r->headers = json_incref((json_t *)h);
    }
    const json_t *ea = json_object_get(o, "error");
    if (ea) {
        if (!json_is_object(ea) || !json_is_integer(json_object_get(ea, "code")))
            FAIL("script %d: reply.error must be {\"code\": N, \"message\": ...}", idx);
        r->error_after = json_incref((json_t *)ea);
    }
    int st = 0;
    const json_t *sv = json_object_get(o, "status");
    if (sv) {
        if (!json_is_integer(sv) || json_integer_value(sv) < 100 || json_integer_value(sv) > 599)
            FAIL("script %d: reply.status must be an HTTP status (100-599)", idx);
        st = (int)json_integer_value(sv);
    }

    if (json_is_true(json_object_get(o, "hang"))) {
        r->kind = SKIFF_SIM_REPLY_HANG;
    } else if (json_is_true(json_object_get(o, "reset"))) {
        r->kind = SKIFF_SIM_REPLY_RESET;
    } else if (json_object_get(o, "quota")) {
        static const char *const kinds[] = {"minute", "tokens", "day", "zero"};
        const char *q = json_string_value(json_object_get(o, "quota"));
        int k;
        for (k = 0; q && k < 4; k++)
            if (strcmp(q, kinds[k]) == 0)
                break;
        if (!q || k == 4)
            FAIL("script %d: reply.quota must be \"minute\", \"tokens\", \"day\" or \"zero\"", idx);
        r->kind = SKIFF_SIM_REPLY_QUOTA;
        r->quota = (enum skiff_sim_quota_reply)k;
    } else if (json_object_get(o, "stream")) {
        const json_t *ev = json_object_get(o, "stream");
        if (!json_is_array(ev))
            FAIL("script %d: reply.stream must be an array of event objects", idx);
        size_t i;
        json_array_foreach(ev, i, v) if (!json_is_object(v))
            FAIL("script %d: reply.stream[%zu] must be an object", idx, i);
        r->kind = SKIFF_SIM_REPLY_STREAM;
        r->events = json_incref((json_t *)ev);
    } else if (json_object_get(o, "body")) {
        const json_t *b = json_object_get(o, "body");
        r->kind = SKIFF_SIM_REPLY_BODY;
        r->status = st ? st : 200;
        if (json_is_string(b)) {
            r->body = strdup(json_string_value(b));
            r->body_len = json_string_length(b);
        } else {
            /* JSON bodies are sent pretty-printed, as the API's are. */
            r->body = json_dumps(b, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
            r->body_len = r->body ? strlen(r->body) : 0;
        }
        if (!r->body)
            return SKIFF_ENOMEM;
        if (opt_string(o, "contentType", &r->content_type, idx, "reply", err, errlen))
            return SKIFF_EINVAL;
    } else if (st) {
        if (st < 400)
            FAIL("script %d: reply.status %d without a body: give \"body\" or an error status", idx,
                 st);
        r->kind = SKIFF_SIM_REPLY_ERROR;
        r->status = st;
        const json_t *d = json_object_get(o, "details");
        if (d && !json_is_array(d))
            FAIL("script %d: reply.details must be an array", idx);
        r->details = d ? json_incref((json_t *)d) : NULL;
        if (opt_string(o, "message", &r->message, idx, "reply", err, errlen) ||
            opt_string(o, "errorStatus", &r->error_status, idx, "reply", err, errlen))
            return SKIFF_EINVAL;
    } else {
        r->kind = SKIFF_SIM_REPLY_ANSWER;
    }
    return 0;
}

static int
parse_entry(struct skiff_sim_script_entry *e, const json_t *o, int idx, char *err, size_t errlen)
{
    if (!json_is_object(o))
        FAIL("script %d: must be an object {\"match\":..., \"reply\":..., \"times\":N}", idx);
    const char *name;
    json_t *v;
    json_object_foreach((json_t *)o, name, v) if (strcmp(name, "match") && strcmp(name, "reply") &&
                                                  strcmp(name, "times"))
        FAIL("script %d: unknown field %s", idx, name);
    const json_t *m = json_object_get(o, "match");
    if (m) {
        if (!json_is_object(m))
            FAIL("script %d: match must be an object", idx);
        json_object_foreach((json_t *)m, name, v) if (strcmp(name, "model") &&
                                                      strcmp(name, "key") && strcmp(name, "method"))
            FAIL("script %d: unknown field match.%s (use model, key, method)", idx, name);
        if (opt_string(m, "model", &e->model, idx, "match", err, errlen) ||
            opt_string(m, "key", &e->key, idx, "match", err, errlen) ||
            opt_string(m, "method", &e->method, idx, "match", err, errlen))
            return SKIFF_EINVAL;
        /* "models/x" is accepted for convenience. */
        if (e->model && strncmp(e->model, "models/", 7) == 0)
            memmove(e->model, e->model + 7, strlen(e->model + 7) + 1);
    }
    e->times = 1;
    const json_t *t = json_object_get(o, "times");
    if (t) {
        if (!json_is_integer(t) || json_integer_value(t) < 0 || json_integer_value(t) > 1000000000)
            FAIL("script %d: times must be an integer >= 0 (0: until reset)", idx);
        e->times = (long)json_integer_value(t);
    }
    e->reply = calloc(1, sizeof *e->reply);
    if (!e->reply)
        return SKIFF_ENOMEM;
    e->reply->refs = 1;
    const json_t *r = json_object_get(o, "reply");
    if (!r)
        FAIL("script %d: reply is missing", idx);
    return parse_reply(e->reply, r, idx, err, errlen);
}

int
skiff_sim_script_add(struct skiff_sim_script *s, const json_t *spec, char *err, size_t errlen)
{
    const json_t *list = spec;
    if (json_is_object(spec) && json_object_get(spec, "scripts"))
        list = json_object_get(spec, "scripts");
    size_t count = json_is_array(list) ? json_array_size(list) : 1;
    if (!json_is_array(list) && !json_is_object(list)) {
        snprintf(err, errlen,
                 "the body must be a script object, an array of them, or "
                 "{\"scripts\": [...]}");
        return SKIFF_EINVAL;
    }
    if (s->n + count > s->max) {
        snprintf(err, errlen, "the script queue holds at most %zu entries", s->max);
        return SKIFF_ETOOBIG;
    }

    /* Parse everything first so a bad entry queues nothing. */
    struct skiff_sim_script_entry *first = NULL, *last = NULL;
    int rc = 0;
    for (size_t i = 0; i < count; i++) {
        const json_t *o = json_is_array(list) ? json_array_get(list, i) : list;
        struct skiff_sim_script_entry *e = calloc(1, sizeof *e);
        if (!e) {
            rc = SKIFF_ENOMEM;
            break;
        }
        rc = parse_entry(e, o, (int)i, err, errlen);
        if (last)
            last->next = e;
        else
            first = e;
        last = e;
        if (rc)
            break;
    }
    if (rc) {
        if (rc == SKIFF_ENOMEM)
            snprintf(err, errlen, "out of memory");
        while (first) {
            struct skiff_sim_script_entry *next = first->next;
            entry_free(first);
            first = next;
        }
        return rc;
    }
    if (first) {
        if (s->tail)
            s->tail->next = first;
        else
            s->head = first;
        s->tail = last;
        s->n += count;
    }
    return (int)count;
}

static int
field_matches(const char *want, const char *have)
{
    return !want || (have && strcmp(want, have) == 0);
}

struct skiff_sim_reply *
skiff_sim_script_take(struct skiff_sim_script *s, const char *model, const char *target,
                      const char *key, const char *method)
{
    struct skiff_sim_script_entry **pp = &s->head, *prev = NULL;
    for (; *pp; prev = *pp, pp = &(*pp)->next) {
        struct skiff_sim_script_entry *e = *pp;
        if (!(field_matches(e->model, model) || (e->model && field_matches(e->model, target))) ||
            !field_matches(e->key, key) || !field_matches(e->method, method))
            continue;
        struct skiff_sim_reply *r = skiff_sim_reply_ref(e->reply);
        if (e->times > 0 && --e->times == 0) {
            *pp = e->next;
            if (s->tail == e)
                s->tail = prev;
            s->n--;
            entry_free(e);
        }
        return r;
    }
    return NULL;
}

/* ---- the log ---- */

int
skiff_sim_log_init(struct skiff_sim_log *log, size_t cap)
{
    log->ring = calloc(cap, sizeof *log->ring);
    log->cap = cap;
    log->next_seq = 1;
    return log->ring ? 0 : SKIFF_ENOMEM;
}

void
skiff_sim_log_release(struct skiff_sim_log *log)
{
    free(log->ring);
    log->ring = NULL;
}

void
skiff_sim_log_clear(struct skiff_sim_log *log)
{
    memset(log->ring, 0, log->cap * sizeof *log->ring);
    log->next_seq = 1;
}

struct skiff_sim_log_entry *
skiff_sim_log_add(struct skiff_sim_log *log)
{
    uint64_t seq = log->next_seq++;
    struct skiff_sim_log_entry *e = &log->ring[seq % log->cap];
    memset(e, 0, sizeof *e);
    e->seq = seq;
    return e;
}

struct skiff_sim_log_entry *
skiff_sim_log_get(struct skiff_sim_log *log, uint64_t seq)
{
    if (seq == 0)
        return NULL;
    struct skiff_sim_log_entry *e = &log->ring[seq % log->cap];
    return e->seq == seq ? e : NULL;
}

static json_t *
str_or_null(const char *s)
{
    return s && *s ? json_string(s) : json_null();
}

/* A Live session's part of its log entry. */
static json_t *
live_json(const struct skiff_sim_log_entry *e)
{
    json_t *o = json_object();
    json_object_set_new(o, "opened_ms",
                        e->live_opened_ms ? json_integer(e->live_opened_ms) : json_null());
    json_object_set_new(o, "closed_ms",
                        e->live_closed_ms ? json_integer(e->live_closed_ms) : json_null());
    json_object_set_new(o, "close_code",
                        e->live_close_code ? json_integer(e->live_close_code) : json_null());
    json_object_set_new(o, "closed_by", str_or_null(e->live_closed_by));
    json_object_set_new(o, "reason", str_or_null(e->live_reason));
    json_object_set_new(o, "end", str_or_null(e->live_end));
    json_object_set_new(o, "token", str_or_null(e->live_token));
    json_object_set_new(o, "turns", json_integer(e->live_turns));
    json_object_set_new(o, "resumed", json_boolean(e->live_resumed));
    json_object_set_new(o, "goaway", json_boolean(e->live_goaway));
    return o;
}

json_t *
skiff_sim_log_json(const struct skiff_sim_log *log)
{
    json_t *list = json_array();
    uint64_t first = log->next_seq > log->cap ? log->next_seq - log->cap : 1;
    for (uint64_t seq = first; seq < log->next_seq; seq++) {
        const struct skiff_sim_log_entry *e = &log->ring[seq % log->cap];
        if (e->seq != seq)
            continue;
        json_t *o = json_object();
        json_object_set_new(o, "seq", json_integer((json_int_t)e->seq));
        json_object_set_new(o, "ts_ms", json_integer(e->ts_ms));
        json_object_set_new(o, "http_method", json_string(e->http_method));
        json_object_set_new(o, "path", json_string(e->path));
        json_object_set_new(o, "version", str_or_null(e->version));
        json_object_set_new(o, "model", str_or_null(e->model));
        json_object_set_new(o, "method", str_or_null(e->method));
        json_object_set_new(o, "key", e->has_key ? json_string(e->key) : json_null());
        json_object_set_new(o, "alt", str_or_null(e->alt));
        json_object_set_new(o, "body_bytes", json_integer((json_int_t)e->body_bytes));
        char fnv[17];
        snprintf(fnv, sizeof fnv, "%016llx", (unsigned long long)e->body_fnv);
        json_object_set_new(o, "body_fnv", json_string(fnv));
        json_object_set_new(o, "temperature",
                            e->has_temperature ? json_real(e->temperature) : json_null());
        json_object_set_new(o, "stream", json_boolean(e->stream));
        json_object_set_new(o, "scripted", json_boolean(e->scripted));
        json_object_set_new(o, "fault", str_or_null(e->fault));
        json_object_set_new(o, "status", json_integer(e->status));
        json_object_set_new(o, "events", json_integer(e->events));
        json_object_set_new(o, "ended", json_boolean(e->ended));
        json_object_set_new(o, "aborted", json_boolean(e->aborted));
        json_object_set_new(o, "reset", json_boolean(e->reset));
        json_object_set_new(o, "duration_ms", json_integer(e->duration_ms));
        if (e->live)
            json_object_set_new(o, "live", live_json(e));
        json_array_append_new(list, o);
    }
    uint64_t dropped = first > 1 ? first - 1 : 0;
    return json_pack("{s:o,s:I}", "requests", list, "dropped", (json_int_t)dropped);
}
