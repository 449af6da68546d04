#include "sim/files.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

#define FILE_TTL_MS (48LL * 3600 * 1000) /* files expire after 48 hours */
#define MAX_FILE_BYTES (2LL << 30)       /* 2 GB per file */
#define CHUNK_GRANULARITY "8388608"      /* what the API announces; the SDK sends 8 MiB */
#define ID_LEN 12                        /* like "abc123xyz789" */
#define LIST_DEFAULT 10                  /* [U] */
#define LIST_MAX 100

struct sim_file {
    char id[48];
    char project[128];
    char display_name[512];
    char mime[128];
    int64_t size;
    unsigned char sha[32];
    int64_t create_ms, expire_ms;
};

struct sim_upload {
    char uid[40];
    char project[128];
    char id[48];
    char display_name[512];
    char mime[128];
    int64_t declared; /* -1: not announced */
    int64_t received;
    int64_t fed;     /* bytes of the chunk being streamed in (skiff_sim_files_feed) */
    int fed_skipped; /* some were counted, not hashed (a wrong offset, too many) */
    EVP_MD_CTX *sha;
};

struct skiff_sim_files {
    struct sim_file *files; /* oldest first */
    size_t n, max;
    struct sim_upload *ups; /* oldest first */
    size_t nup, maxup;
};

struct skiff_sim_files *
skiff_sim_files_new(size_t max_files, size_t max_uploads)
{
    struct skiff_sim_files *f = calloc(1, sizeof *f);
    if (!f)
        return NULL;
    f->files = calloc(max_files, sizeof *f->files);
    f->ups = calloc(max_uploads, sizeof *f->ups);
    if (!f->files || !f->ups) {
        skiff_sim_files_free(f);
        return NULL;
    }
    f->max = max_files;
    f->maxup = max_uploads;
    return f;
}

static void
drop_upload(struct skiff_sim_files *f, size_t i)
{
    EVP_MD_CTX_free(f->ups[i].sha);
    memmove(&f->ups[i], &f->ups[i + 1], (f->nup - i - 1) * sizeof *f->ups);
    f->nup--;
}

void
skiff_sim_files_clear(struct skiff_sim_files *f)
{
    while (f->nup)
        drop_upload(f, f->nup - 1);
    f->n = 0;
}

void
skiff_sim_files_free(struct skiff_sim_files *f)
{
    if (!f)
        return;
    if (f->ups)
        skiff_sim_files_clear(f);
    free(f->files);
    free(f->ups);
    free(f);
}

/* ---- lookups ---- */

/* Drops the files whose expirationTime has passed: they no longer exist. */
static void
sweep(struct skiff_sim_files *f, int64_t now)
{
    size_t w = 0;
    for (size_t i = 0; i < f->n; i++)
        if (f->files[i].expire_ms > now)
            f->files[w++] = f->files[i];
    f->n = w;
}

static struct sim_file *
find_file(struct skiff_sim_files *f, const char *id, size_t len)
{
    for (size_t i = 0; i < f->n; i++)
        if (strlen(f->files[i].id) == len && memcmp(f->files[i].id, id, len) == 0)
            return &f->files[i];
    return NULL;
}

static long
find_upload(struct skiff_sim_files *f, const char *uid)
{
    for (size_t i = 0; i < f->nup; i++)
        if (strcmp(f->ups[i].uid, uid) == 0)
            return (long)i;
    return -1;
}

/* A file id as the API allows it: 1-40 lowercase letters, digits or dashes [U: the
 * documented rule for a chosen name]. */
static int
valid_id(const char *s, size_t len)
{
    if (len == 0 || len > 40 || s[0] == '-' || s[len - 1] == '-')
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
            return 0;
    return 1;
}

/* ---- the File resource ---- */

static json_t *
file_json(const struct sim_file *fl, const char *base)
{
    char t[40], e[40], n[24], uri[512], hash[48];
    skiff_sim_res_time(fl->create_ms, t, sizeof t);
    skiff_sim_res_time(fl->expire_ms, e, sizeof e);
    snprintf(n, sizeof n, "%lld", (long long)fl->size);
    EVP_EncodeBlock((unsigned char *)hash, fl->sha, sizeof fl->sha);
    json_t *j = json_object();
    char name[64];
    snprintf(name, sizeof name, "files/%s", fl->id);
    json_object_set_new(j, "name", json_string(name));
    if (fl->display_name[0])
        json_object_set_new(j, "displayName", json_string(fl->display_name));
    json_object_set_new(j, "mimeType", json_string(fl->mime));
    json_object_set_new(j, "sizeBytes", json_string(n));
    json_object_set_new(j, "createTime", json_string(t));
    json_object_set_new(j, "updateTime", json_string(t));
    json_object_set_new(j, "expirationTime", json_string(e));
    json_object_set_new(j, "sha256Hash", json_string(hash));
    snprintf(uri, sizeof uri, "%s/v1beta/files/%s", base, fl->id);
    json_object_set_new(j, "uri", json_string(uri));
    snprintf(uri, sizeof uri, "%s/v1beta/files/%s:download?alt=media", base, fl->id);
    json_object_set_new(j, "downloadUri", json_string(uri));
    json_object_set_new(j, "state", json_string("ACTIVE"));
    json_object_set_new(j, "source", json_string("UPLOADED"));
    return j;
}

static void
set_header(struct skiff_sim_res_reply *r, const char *name, const char *value)
{
    if (!r->headers)
        r->headers = json_object();
    json_object_set_new(r->headers, name, json_string(value));
}

/*
 * Reads the metadata of a new file from a start or multipart body ({"file": {...}}, or
 * empty) into the strings given. Returns 0, or -1 with r set.
 */
static int
read_meta(struct skiff_sim_files *f, const char *body, size_t len, char *id, size_t idlen,
          char *display, size_t dlen, char *mime, size_t mlen, int64_t *size,
          struct skiff_sim_res_reply *r)
{
    if (len == 0)
        return 0;
    json_error_t je;
    json_t *j = json_loadb(body, len, 0, &je);
    if (!j || !json_is_object(j)) {
        json_decref(j);
        skiff_sim_res_error(r, 400, "INVALID_ARGUMENT",
                            "Invalid JSON payload received. Unexpected token.");
        return -1;
    }
    const json_t *file = json_object_get(j, "file");
    const char *name = json_string_value(json_object_get(file, "name"));
    const char *dn = json_string_value(json_object_get(file, "displayName"));
    const char *mt = json_string_value(json_object_get(file, "mimeType"));
    const char *sz = json_string_value(json_object_get(file, "sizeBytes"));
    int rc = 0;
    if (name) {
        const char *s = strncmp(name, "files/", 6) == 0 ? name + 6 : name;
        if (!valid_id(s, strlen(s))) {
            skiff_sim_res_error(r, 400, "INVALID_ARGUMENT",
                                "Invalid file name \"%.100s\": a name is \"files/\" followed by "
                                "1 to 40 lowercase letters, digits or dashes.",
                                name);
            rc = -1;
        } else if (find_file(f, s, strlen(s))) {
            skiff_sim_res_error(r, 409, "ALREADY_EXISTS", "File files/%s already exists.", s);
            rc = -1;
        } else {
            snprintf(id, idlen, "%s", s);
        }
    }
    if (dn)
        snprintf(display, dlen, "%s", dn);
    if (mt && !mime[0])
        snprintf(mime, mlen, "%s", mt);
    if (sz && *size < 0)
        *size = strtoll(sz, NULL, 10);
    json_decref(j);
    return rc;
}

/* Stores a finished upload as a file and plans the {"file": ...} answer. */
static int
add_file(struct skiff_sim_files *f, const struct skiff_sim_res_req *q, const char *project,
         const char *id, const char *display, const char *mime, int64_t size,
         const unsigned char *sha, struct skiff_sim_res_reply *r)
{
    if (f->n == f->max) {
        skiff_sim_res_error(r, 429, "RESOURCE_EXHAUSTED",
                            "The simulator holds %zu files at most; delete some first.", f->max);
        return -1;
    }
    struct sim_file *fl = &f->files[f->n];
    memset(fl, 0, sizeof *fl);
    uint64_t seed = q->id_seed;
    if (id[0])
        snprintf(fl->id, sizeof fl->id, "%s", id);
    else
        do
            skiff_sim_res_id(seed++, fl->id, ID_LEN);
        while (find_file(f, fl->id, strlen(fl->id)));
    snprintf(fl->project, sizeof fl->project, "%s", project);
    snprintf(fl->display_name, sizeof fl->display_name, "%s", display);
    snprintf(fl->mime, sizeof fl->mime, "%s", mime[0] ? mime : "application/octet-stream");
    fl->size = size;
    memcpy(fl->sha, sha, sizeof fl->sha);
    fl->create_ms = q->now_ms;
    fl->expire_ms = q->now_ms + FILE_TTL_MS;
    f->n++;
    r->status = 200;
    r->body = json_pack("{s:o}", "file", file_json(fl, q->base));
    return 0;
}

/* ---- the resumable protocol ---- */

static int
has_command(const char *list, const char *word)
{
    /* "upload, finalize": comma-separated, case-insensitive. */
    size_t wl = strlen(word);
    for (const char *p = list; *p;) {
        while (*p == ' ' || *p == ',')
            p++;
        const char *e = p;
        while (*e && *e != ',')
            e++;
        const char *t = e;
        while (t > p && t[-1] == ' ')
            t--;
        if ((size_t)(t - p) == wl && strncasecmp(p, word, wl) == 0)
            return 1;
        p = e;
    }
    return 0;
}

static int
upload_start(struct skiff_sim_files *f, const struct skiff_sim_res_req *q,
             struct skiff_sim_res_reply *r)
{
    struct sim_upload u;
    memset(&u, 0, sizeof u);
    u.declared = -1;
    if (q->up_len[0]) {
        char *end;
        u.declared = strtoll(q->up_len, &end, 10);
        if (*end || u.declared < 0) {
            skiff_sim_res_error(r, 400, "INVALID_ARGUMENT",
                                "X-Goog-Upload-Header-Content-Length \"%.40s\" is not a byte "
                                "count.",
                                q->up_len);
            return 0;
        }
    }
    snprintf(u.mime, sizeof u.mime, "%s", q->up_type);
    if (read_meta(f, q->body, q->body_len, u.id, sizeof u.id, u.display_name, sizeof u.display_name,
                  u.mime, sizeof u.mime, &u.declared, r) < 0)
        return 0;
    if (u.declared > MAX_FILE_BYTES) {
        skiff_sim_res_error(r, 400, "INVALID_ARGUMENT",
                            "The file is %lld bytes; the limit is 2 GB per file.",
                            (long long)u.declared);
        return 0;
    }
    u.sha = EVP_MD_CTX_new();
    if (!u.sha || EVP_DigestInit_ex(u.sha, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(u.sha);
        skiff_sim_res_error(r, 500, "INTERNAL", "out of memory");
        return 0;
    }
    snprintf(u.project, sizeof u.project, "%s", q->project);
    /* The opaque id; a session beyond the cap displaces the oldest one. */
    uint64_t seed = q->id_seed ^ 0x5bd1e995u;
    do
        skiff_sim_res_id(seed++, u.uid, 32);
    while (find_upload(f, u.uid) >= 0);
    if (f->nup == f->maxup)
        drop_upload(f, 0);
    f->ups[f->nup++] = u;
    char url[512];
    snprintf(url, sizeof url, "%s/upload/v1beta/files?upload_id=%s&upload_protocol=resumable",
             q->base, u.uid);
    r->status = 200;
    set_header(r, "X-Goog-Upload-URL", url);
    set_header(r, "X-Goog-Upload-Control-URL", url);
    set_header(r, "X-Goog-Upload-Status", "active");
    set_header(r, "X-Goog-Upload-Chunk-Granularity", CHUNK_GRANULARITY);
    return 0;
}

static void
size_received(struct skiff_sim_res_reply *r, int64_t n)
{
    char s[24];
    snprintf(s, sizeof s, "%lld", (long long)n);
    set_header(r, "X-Goog-Upload-Size-Received", s);
}

static int
upload_chunk(struct skiff_sim_files *f, const struct skiff_sim_res_req *q,
             struct skiff_sim_res_reply *r)
{
    long i = find_upload(f, q->upload_id);
    if (i < 0) {
        /* [U] the live API's wording for an unknown or finished session. */
        skiff_sim_res_error(r, 404, "NOT_FOUND",
                            "No upload session %.64s: it was finalized, cancelled or never "
                            "started.",
                            q->upload_id);
        return 0;
    }
    struct sim_upload *u = &f->ups[i];
    const char *cmd = q->up_command;
    if (has_command(cmd, "query")) {
        r->status = 200;
        set_header(r, "X-Goog-Upload-Status", "active");
        size_received(r, u->received);
        return 0;
    }
    if (has_command(cmd, "cancel")) {
        drop_upload(f, (size_t)i);
        r->status = 200;
        set_header(r, "X-Goog-Upload-Status", "cancelled");
        return 0;
    }
    int up = has_command(cmd, "upload"), fin = has_command(cmd, "finalize");
    if (!up && !fin) {
        skiff_sim_res_error(r, 400, "INVALID_ARGUMENT",
                            "X-Goog-Upload-Command \"%.60s\" is not one of start, upload, "
                            "finalize, query or cancel.",
                            cmd);
        return 0;
    }
    if (up) {
        char *end;
        long long off = q->up_offset[0] ? strtoll(q->up_offset, &end, 10) : -1;
        if (off != u->received) {
            skiff_sim_res_error(r, 400, "INVALID_ARGUMENT",
                                "X-Goog-Upload-Offset is %s but %lld bytes were received: "
                                "send the chunk at offset %lld (ask with X-Goog-Upload-Command: "
                                "query).",
                                q->up_offset[0] ? q->up_offset : "missing", (long long)u->received,
                                (long long)u->received);
            set_header(r, "X-Goog-Upload-Status", "active");
            size_received(r, u->received);
            return 0;
        }
        int64_t chunk = q->streamed ? u->fed : (int64_t)q->body_len;
        u->fed = 0;
        u->fed_skipped = 0;
        int64_t total = u->received + chunk;
        if ((u->declared >= 0 && total > u->declared) || total > MAX_FILE_BYTES) {
            skiff_sim_res_error(r, 400, "INVALID_ARGUMENT",
                                "The upload is %lld bytes, more than the %lld announced in "
                                "X-Goog-Upload-Header-Content-Length.",
                                (long long)total,
                                (long long)(u->declared >= 0 ? u->declared : MAX_FILE_BYTES));
            set_header(r, "X-Goog-Upload-Status", "active");
            size_received(r, u->received);
            return 0;
        }
        if (!q->streamed)
            EVP_DigestUpdate(u->sha, q->body, q->body_len);
        u->received = total;
    }
    if (!fin) {
        r->status = 200;
        set_header(r, "X-Goog-Upload-Status", "active");
        size_received(r, u->received);
        return 0;
    }
    if (u->declared >= 0 && u->received != u->declared) {
        skiff_sim_res_error(r, 400, "INVALID_ARGUMENT",
                            "Finalized after %lld bytes, but %lld were announced in "
                            "X-Goog-Upload-Header-Content-Length.",
                            (long long)u->received, (long long)u->declared);
        set_header(r, "X-Goog-Upload-Status", "active");
        size_received(r, u->received);
        return 0;
    }
    unsigned char sha[32];
    unsigned int shalen = 0;
    EVP_DigestFinal_ex(u->sha, sha, &shalen);
    if (u->id[0] && find_file(f, u->id, strlen(u->id))) {
        skiff_sim_res_error(r, 409, "ALREADY_EXISTS", "File files/%s already exists.", u->id);
        drop_upload(f, (size_t)i);
        return 0;
    }
    if (add_file(f, q, u->project, u->id, u->display_name, u->mime, u->received, sha, r) == 0)
        set_header(r, "X-Goog-Upload-Status", "final");
    drop_upload(f, (size_t)i);
    return 0;
}

void
skiff_sim_files_feed(struct skiff_sim_files *f, const char *upload_id, const char *offset,
                     const char *data, size_t len)
{
    long i = find_upload(f, upload_id);
    if (i < 0)
        return;
    struct sim_upload *u = &f->ups[i];
    char *end;
    long long off = offset[0] ? strtoll(offset, &end, 10) : -1;
    int64_t total = u->received + u->fed + (int64_t)len;
    if (off != u->received || (u->declared >= 0 && total > u->declared) || total > MAX_FILE_BYTES) {
        u->fed = total - u->received; /* counted, not hashed: upload_chunk refuses it */
        u->fed_skipped = 1;
        return;
    }
    EVP_DigestUpdate(u->sha, data, len);
    u->fed = total - u->received;
}

void
skiff_sim_files_feed_cut(struct skiff_sim_files *f, const char *upload_id)
{
    long i = find_upload(f, upload_id);
    if (i < 0)
        return;
    struct sim_upload *u = &f->ups[i];
    if (!u->fed_skipped)
        u->received += u->fed;
    u->fed = 0;
    u->fed_skipped = 0;
}

/* ---- the multipart protocol ---- */

/* The boundary parameter of a multipart Content-Type, or -1. */
static int
boundary_of(const char *ct, char *out, size_t outlen)
{
    const char *b = strcasestr(ct, "boundary=");
    if (!b)
        return -1;
    b += 9;
    int quoted = *b == '"';
    if (quoted)
        b++;
    size_t n = 0;
    while (b[n] && b[n] != (quoted ? '"' : ';') && !(!quoted && b[n] == ' '))
        n++;
    if (n == 0 || n + 1 > outlen)
        return -1;
    memcpy(out, b, n);
    out[n] = '\0';
    return 0;
}

struct part {
    const char *headers, *body;
    size_t headers_len, body_len;
};

/* Splits a multipart body into up to max parts; returns their number or -1. */
static int
split_parts(const char *body, size_t len, const char *boundary, struct part *parts, int max)
{
    char delim[256];
    int dl = snprintf(delim, sizeof delim, "--%s", boundary);
    const char *end = body + len;
    const char *p = memmem(body, len, delim, (size_t)dl);
    int n = 0;
    while (p) {
        p += dl;
        if (end - p >= 2 && p[0] == '-' && p[1] == '-')
            return n;
        if (end - p >= 2 && p[0] == '\r' && p[1] == '\n')
            p += 2;
        else if (p < end && *p == '\n')
            p++;
        const char *next = memmem(p, (size_t)(end - p), delim, (size_t)dl);
        if (!next || n == max)
            return -1;
        const char *pe = next;
        if (pe - p >= 2 && pe[-2] == '\r' && pe[-1] == '\n')
            pe -= 2;
        else if (pe > p && pe[-1] == '\n')
            pe--;
        const char *sep = memmem(p, (size_t)(pe - p), "\r\n\r\n", 4);
        size_t sl = 4;
        if (!sep) {
            sep = memmem(p, (size_t)(pe - p), "\n\n", 2);
            sl = 2;
        }
        if (!sep) {
            /* A part with no headers. */
            parts[n].headers = p;
            parts[n].headers_len = 0;
            parts[n].body = p;
            parts[n].body_len = (size_t)(pe - p);
        } else {
            parts[n].headers = p;
            parts[n].headers_len = (size_t)(sep - p);
            parts[n].body = sep + sl;
            parts[n].body_len = (size_t)(pe - sep - sl);
        }
        n++;
        p = next;
    }
    return -1;
}

/* The Content-Type of a part's headers, into out ("" when none). */
static void
part_type(const struct part *pt, char *out, size_t outlen)
{
    out[0] = '\0';
    const char *p = pt->headers, *end = pt->headers + pt->headers_len;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *le = eol ? eol : end;
        if ((size_t)(le - p) > 13 && strncasecmp(p, "content-type:", 13) == 0) {
            const char *v = p + 13;
            while (v < le && *v == ' ')
                v++;
            const char *ve = le;
            while (ve > v && (ve[-1] == '\r' || ve[-1] == ' '))
                ve--;
            snprintf(out, outlen, "%.*s", (int)(ve - v), v);
            return;
        }
        p = le + 1;
    }
}

static int
upload_multipart(struct skiff_sim_files *f, const struct skiff_sim_res_req *q,
                 struct skiff_sim_res_reply *r)
{
    char boundary[200];
    struct part parts[2];
    int n = -1;
    if (boundary_of(q->content_type, boundary, sizeof boundary) == 0)
        n = split_parts(q->body, q->body_len, boundary, parts, 2);
    if (n != 2) {
        skiff_sim_res_error(r, 400, "INVALID_ARGUMENT",
                            "A multipart upload is Content-Type: multipart/related; "
                            "boundary=... with two parts: the JSON metadata, then the bytes.");
        return 0;
    }
    char id[48] = "", display[512] = "", mime[128] = "";
    int64_t size = -1;
    part_type(&parts[1], mime, sizeof mime);
    if (read_meta(f, parts[0].body, parts[0].body_len, id, sizeof id, display, sizeof display, mime,
                  sizeof mime, &size, r) < 0)
        return 0;
    unsigned char sha[32];
    unsigned int shalen = 0;
    EVP_Digest(parts[1].body, parts[1].body_len, sha, &shalen, EVP_sha256(), NULL);
    add_file(f, q, q->project, id, display, mime, (int64_t)parts[1].body_len, sha, r);
    return 0;
}

/* ---- get, list, delete ---- */

static const char *
list_files_project(const void *set, size_t i)
{
    const struct skiff_sim_files *x = set;
    return x->files[i].project;
}

static json_t *
list_files_json(const void *set, size_t i, const struct skiff_sim_res_req *q)
{
    const struct skiff_sim_files *x = set;
    return file_json(&x->files[i], q->base);
}

static int
list_files(struct skiff_sim_files *f, const struct skiff_sim_res_req *q,
           struct skiff_sim_res_reply *r)
{
    struct skiff_sim_res_lister l = {
        f, f->n, list_files_project, list_files_json, "files", LIST_DEFAULT, LIST_MAX};
    skiff_sim_res_list(q, &l, r);
    return 0;
}

const char *
skiff_sim_files_route(const struct skiff_sim_res_req *q)
{
    const char *p = q->rest;
    size_t n = q->rest_len;
    const char *m = q->http_method;
    if (n == 5 && memcmp(p, "files", 5) == 0) {
        if (q->upload)
            return strcmp(m, "POST") == 0 ? "files.upload" : NULL;
        return strcmp(m, "GET") == 0 ? "files.list" : NULL;
    }
    if (q->upload || n <= 6 || memcmp(p, "files/", 6) != 0 || memchr(p + 6, '/', n - 6) ||
        memchr(p + 6, ':', n - 6))
        return NULL;
    if (strcmp(m, "GET") == 0)
        return "files.get";
    if (strcmp(m, "DELETE") == 0)
        return "files.delete";
    return NULL;
}

int
skiff_sim_files_handle(struct skiff_sim_files *f, const struct skiff_sim_res_req *q,
                       struct skiff_sim_res_reply *r)
{
    const char *p = q->rest;
    size_t n = q->rest_len;
    int is_files = n == 5 && memcmp(p, "files", 5) == 0;
    if (q->upload) {
        if (!is_files || strcmp(q->http_method, "POST") != 0)
            return -1;
        sweep(f, q->now_ms);
        if (q->upload_id[0])
            return upload_chunk(f, q, r);
        if (strcasecmp(q->up_protocol, "multipart") == 0)
            return upload_multipart(f, q, r);
        if (strcasecmp(q->up_protocol, "resumable") == 0) {
            if (!has_command(q->up_command, "start")) {
                skiff_sim_res_error(r, 400, "INVALID_ARGUMENT",
                                    "A resumable upload begins with X-Goog-Upload-Command: "
                                    "start (then upload, finalize at the X-Goog-Upload-URL).");
                return 0;
            }
            return upload_start(f, q, r);
        }
        skiff_sim_res_error(r, 400, "INVALID_ARGUMENT",
                            "X-Goog-Upload-Protocol must be \"resumable\" or \"multipart\".");
        return 0;
    }
    if (is_files) {
        if (strcmp(q->http_method, "GET") != 0)
            return -1;
        sweep(f, q->now_ms);
        return list_files(f, q, r);
    }
    if (n <= 6 || memcmp(p, "files/", 6) != 0)
        return -1;
    const char *id = p + 6;
    size_t idlen = n - 6;
    if (memchr(id, '/', idlen) || memchr(id, ':', idlen))
        return -1;
    int get = strcmp(q->http_method, "GET") == 0, del = strcmp(q->http_method, "DELETE") == 0;
    if (!get && !del)
        return -1;
    sweep(f, q->now_ms);
    struct sim_file *fl = find_file(f, id, idlen);
    if (!fl || strcmp(fl->project, q->project) != 0) {
        char name[64];
        snprintf(name, sizeof name, "%.*s", (int)(idlen < 48 ? idlen : 48), id);
        skiff_sim_res_denied(r, "File", name);
        return 0;
    }
    r->status = 200;
    if (get) {
        r->body = file_json(fl, q->base);
    } else {
        size_t i = (size_t)(fl - f->files);
        memmove(&f->files[i], &f->files[i + 1], (f->n - i - 1) * sizeof *f->files);
        f->n--;
        r->body = json_object();
    }
    return 0;
}

/* ---- references from a generation ---- */

/* The file id of a Files API URI ("https://host/v1beta/files/abc", "files/abc"), or NULL. */
static const char *
uri_file_id(const char *uri, size_t *len)
{
    const char *s = NULL;
    if (strncmp(uri, "files/", 6) == 0) {
        s = uri + 6;
    } else if (strncmp(uri, "http://", 7) == 0 || strncmp(uri, "https://", 8) == 0) {
        const char *v = strstr(uri, "/v1beta/files/");
        const char *v1 = strstr(uri, "/v1/files/");
        if (v)
            s = v + 14;
        else if (v1)
            s = v1 + 10;
    }
    if (!s)
        return NULL;
    size_t n = strcspn(s, "?:#/");
    *len = n;
    return s;
}

static int
check_content(struct skiff_sim_files *f, const char *project, const json_t *content,
              struct skiff_sim_res_reply *r)
{
    size_t i;
    const json_t *part;
    json_array_foreach(json_object_get(content, "parts"), i, part)
    {
        const json_t *fd = json_object_get(part, "fileData");
        if (!fd)
            fd = json_object_get(part, "file_data");
        const char *uri = json_string_value(json_object_get(fd, "fileUri"));
        if (!uri)
            uri = json_string_value(json_object_get(fd, "file_uri"));
        size_t len = 0;
        const char *id = uri ? uri_file_id(uri, &len) : NULL;
        if (!id)
            continue;
        const struct sim_file *fl = find_file(f, id, len);
        if (!fl || strcmp(fl->project, project) != 0) {
            char name[64];
            snprintf(name, sizeof name, "%.*s", (int)(len < 48 ? len : 48), id);
            skiff_sim_res_denied(r, "File", name);
            return -1;
        }
    }
    return 0;
}

int
skiff_sim_files_check_contents(struct skiff_sim_files *f, const char *project,
                               const json_t *contents, const json_t *system_instruction,
                               int64_t now_ms, struct skiff_sim_res_reply *r)
{
    sweep(f, now_ms);
    size_t i;
    const json_t *c;
    json_array_foreach(contents, i, c)
    {
        if (check_content(f, project, c, r) < 0)
            return -1;
    }
    if (system_instruction && check_content(f, project, system_instruction, r) < 0)
        return -1;
    return 0;
}

int
skiff_sim_files_expire(struct skiff_sim_files *f, const char *name, int64_t now_ms)
{
    const char *id = strncmp(name, "files/", 6) == 0 ? name + 6 : name;
    struct sim_file *fl = find_file(f, id, strlen(id));
    if (!fl)
        return -1;
    fl->expire_ms = now_ms;
    return 0;
}
