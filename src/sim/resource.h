#ifndef SKIFF_SIM_RESOURCE_H
#define SKIFF_SIM_RESOURCE_H

/*
 * What the simulator's stored resources (files, cachedContents) share: the request a
 * resource handler reads, the reply it plans, the owner rule, timestamps and ids.
 *
 * Ownership: a resource belongs to the project of the key that created it, and the
 * simulator models a project as the key itself (two keys never share a project). Another
 * key's request for it, an expired one and a missing one get the same refusal
 * (skiff_sim_res_denied), as the API words it for files.
 */

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/* One API request on a resource route, as resroute.c parsed it. Every pointer is borrowed. */
struct skiff_sim_res_req {
    const char *http_method; /* "GET", "POST", "PATCH", "DELETE" */
    const char *rest;        /* the path after "/v1beta/" or "/upload/v1beta/" */
    size_t rest_len;
    int upload;          /* the path began with /upload/ */
    const char *project; /* the caller's key; "" for an upload chunk that carries none */
    const char *body;
    size_t body_len;
    int streamed;     /* an upload chunk's bytes came through skiff_sim_files_feed: body is empty */
    const char *base; /* "http://host:port" as the client addressed the simulator */
    int64_t now_ms;   /* wall clock */
    uint64_t id_seed; /* the request's draw, for new ids */
    /* Query parameters ("" when absent). */
    const char *page_size, *page_token, *upload_id, *update_mask;
    /* Headers ("" when absent). */
    const char *content_type, *up_protocol, *up_command, *up_offset, *up_len, *up_type;
};

/*
 * The planned reply: status 200 with body (may be NULL: an empty body) or raw, or an error
 * (gstatus + message). headers is an object of extra response headers or NULL. The caller
 * owns body and headers (new references).
 */
struct skiff_sim_res_reply {
    int status;
    const char *gstatus;
    char message[512];
    json_t *body;
    json_t *headers;
    char *raw; /* instead of body, bytes that are no JSON (a download), malloc'd: the caller's */
    size_t raw_len;
    const char *raw_type; /* raw's content type (static) */
};

/* Sets r to an error. */
void skiff_sim_res_error(struct skiff_sim_res_reply *r, int status, const char *gstatus,
                         const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/*
 * The refusal for a resource of another project, an expired one and a missing one:
 * 403 PERMISSION_DENIED "You do not have permission to access the <Kind> <id> or it may
 * not exist." kind is "File" or "CachedContent".
 */
void skiff_sim_res_denied(struct skiff_sim_res_reply *r, const char *kind, const char *id);

/* Writes ms (Unix, UTC) as RFC 3339 with microseconds: "2026-12-01T10:51:36.123000Z". */
void skiff_sim_res_time(int64_t ms, char *out, size_t outlen);

/* Parses RFC 3339 (UTC "Z" or an offset, fractions allowed) into ms; -1 when invalid. */
int64_t skiff_sim_res_parse_time(const char *s);

/* Parses a protobuf Duration "300s" / "1.5s" into ms; -1 when invalid. */
int64_t skiff_sim_res_parse_duration(const char *s);

/* Writes n lowercase letters and digits derived from seed (an id like Google's). */
void skiff_sim_res_id(uint64_t seed, char *out, size_t n);

/* Parses a page size: "" gives def, above max gives max; -1 when not a count. */
long skiff_sim_res_page_size(const char *s, long def, long max);

/* A store's entries as a list call reads them: n entries, oldest first; the project and the
 * JSON (a new reference) of entry i. */
struct skiff_sim_res_lister {
    const void *set;
    size_t n;
    const char *(*project)(const void *set, size_t i);
    json_t *(*json)(const void *set, size_t i, const struct skiff_sim_res_req *q);
    const char *field;       /* the answer's array: "files", "cachedContents", "operations" */
    long page_def, page_max; /* the page size when none is asked, and the largest */
};

/*
 * A list call's reply: the caller project's entries, newest first, one page of them (the
 * page token is the index of the next one), the array omitted when empty and nextPageToken
 * set when more follow; a 400 for a bad page size or token.
 */
void skiff_sim_res_list(const struct skiff_sim_res_req *q, const struct skiff_sim_res_lister *l,
                        struct skiff_sim_res_reply *r);

#endif
