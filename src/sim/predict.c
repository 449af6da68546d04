#include "sim/predict.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "base/hash.h"
#include "sim/catalog.h"

#define ID_LEN 12
#define MAX_SAMPLES 4     /* Imagen's and Veo's bound of sampleCount [U] */
#define DEFAULT_IMAGES 4  /* Imagen's default sampleCount [U] */
#define DEFAULT_VIDEOS 1  /* Veo's [U] */
#define MAX_PROMPT 100000 /* bytes; a simulator bound */
#define PNG_SIDE 8
#define TYPE_VIDEO                                                                                 \
    "type.googleapis.com/google.ai.generativelanguage.v1beta.PredictLongRunningResponse"

struct sim_op {
    char id[ID_LEN + 1];
    char project[128];
    char model[96];
    int samples;
    uint64_t seed; /* the prompt's hash: the videos' ids */
    int64_t done_ms;
    int64_t expire_ms; /* the videos' files expire then (0: 48 hours after done_ms) */
};

#define VIDEO_TTL_MS (48LL * 3600 * 1000)          /* a generated video's file lives 48 hours */
#define VIDEO_MEDIA 4096                           /* bytes of a video's media box */
#define VIDEO_BYTES ((size_t)24 + 8 + VIDEO_MEDIA) /* ftyp, the mdat head, the media */

static int64_t
video_expiry(const struct sim_op *o)
{
    return o->expire_ms ? o->expire_ms : o->done_ms + VIDEO_TTL_MS;
}

struct skiff_sim_predict {
    struct sim_op *v; /* oldest first */
    size_t n, max;
    long delay_ms;
};

struct skiff_sim_predict *
skiff_sim_predict_new(size_t max, long delay_ms)
{
    struct skiff_sim_predict *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->v = calloc(max, sizeof *p->v);
    if (!p->v) {
        free(p);
        return NULL;
    }
    p->max = max;
    p->delay_ms = delay_ms;
    return p;
}

void
skiff_sim_predict_clear(struct skiff_sim_predict *p)
{
    p->n = 0;
}

void
skiff_sim_predict_free(struct skiff_sim_predict *p)
{
    if (!p)
        return;
    free(p->v);
    free(p);
}

/* ---- a tiny PNG: 8x8 RGB, one stored deflate block -------------------------------------- */

static uint32_t
crc32_of(uint32_t crc, const unsigned char *b, size_t n)
{
    crc = ~crc;
    for (size_t i = 0; i < n; i++) {
        crc ^= b[i];
        for (int k = 0; k < 8; k++)
            crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
    }
    return ~crc;
}

static unsigned char *
put32(unsigned char *o, uint32_t v)
{
    o[0] = (unsigned char)(v >> 24);
    o[1] = (unsigned char)(v >> 16);
    o[2] = (unsigned char)(v >> 8);
    o[3] = (unsigned char)v;
    return o + 4;
}

/* Writes a chunk (length, type, data, CRC over type and data); returns the end. */
static unsigned char *
chunk(unsigned char *o, const char type[4], const unsigned char *data, size_t n)
{
    o = put32(o, (uint32_t)n);
    memcpy(o, type, 4);
    if (n)
        memcpy(o + 4, data, n);
    uint32_t crc = crc32_of(0, o, n + 4);
    return put32(o + 4 + n, crc);
}

#define RAW_LEN (PNG_SIDE * (1 + 3 * PNG_SIDE))
#define PNG_MAX (8 + 25 + 12 + (2 + 5 + RAW_LEN + 4) + 12)

/* An 8x8 gradient whose colours come from seed; returns the PNG's length. */
static size_t
make_png(uint64_t seed, unsigned char *out)
{
    static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    unsigned char ihdr[13] = {0, 0, 0, PNG_SIDE, 0, 0, 0, PNG_SIDE, 8, 2, 0, 0, 0};
    unsigned char raw[RAW_LEN];
    unsigned char r = (unsigned char)seed, g = (unsigned char)(seed >> 8),
                  b = (unsigned char)(seed >> 16);
    size_t k = 0;
    for (int y = 0; y < PNG_SIDE; y++) {
        raw[k++] = 0; /* filter: none */
        for (int x = 0; x < PNG_SIDE; x++) {
            raw[k++] = (unsigned char)(r + 16 * x);
            raw[k++] = (unsigned char)(g + 16 * y);
            raw[k++] = b;
        }
    }
    /* zlib: header, one final stored block, Adler-32. */
    unsigned char z[2 + 5 + RAW_LEN + 4];
    z[0] = 0x78;
    z[1] = 0x01;
    z[2] = 0x01;
    z[3] = (unsigned char)(RAW_LEN & 0xff);
    z[4] = (unsigned char)(RAW_LEN >> 8);
    z[5] = (unsigned char)(~(unsigned)RAW_LEN & 0xffu);
    z[6] = (unsigned char)((~(unsigned)RAW_LEN >> 8) & 0xffu);
    memcpy(z + 7, raw, RAW_LEN);
    uint32_t a = 1, s = 0;
    for (size_t i = 0; i < RAW_LEN; i++) {
        a = (a + raw[i]) % 65521;
        s = (s + a) % 65521;
    }
    put32(z + 7 + RAW_LEN, (s << 16) | a);
    unsigned char *o = out;
    memcpy(o, sig, 8);
    o = chunk(o + 8, "IHDR", ihdr, sizeof ihdr);
    o = chunk(o, "IDAT", z, sizeof z);
    o = chunk(o, "IEND", NULL, 0);
    return (size_t)(o - out);
}

/* ---- requests ----------------------------------------------------------------------------- */

/* Whether rest is "models/{id}:" + method, with an id free of '/'; sets the id. */
static int
model_method(const struct skiff_sim_res_req *q, const char *method, const char **id, size_t *len)
{
    size_t ml = strlen(method);
    if (q->rest_len <= 7 + 1 + ml || memcmp(q->rest, "models/", 7) != 0)
        return 0;
    const char *colon = memchr(q->rest + 7, ':', q->rest_len - 7);
    if (!colon || colon == q->rest + 7 || memchr(q->rest + 7, '/', (size_t)(colon - q->rest - 7)))
        return 0;
    if ((size_t)(q->rest + q->rest_len - colon - 1) != ml || memcmp(colon + 1, method, ml) != 0)
        return 0;
    *id = q->rest + 7;
    *len = (size_t)(colon - *id);
    return 1;
}

/* Whether rest is "models/{m}/operations/{id}"; sets both. */
static int
operation_path(const struct skiff_sim_res_req *q, const char **m, size_t *mlen, const char **id,
               size_t *idlen)
{
    const char *p = q->rest, *end = q->rest + q->rest_len;
    if (q->rest_len <= 7 || memcmp(p, "models/", 7) != 0)
        return 0;
    const char *slash = memchr(p + 7, '/', (size_t)(end - p - 7));
    if (!slash || slash == p + 7 || (size_t)(end - slash) <= 12 ||
        memcmp(slash, "/operations/", 12) != 0)
        return 0;
    const char *i = slash + 12;
    if (memchr(i, '/', (size_t)(end - i)) || memchr(i, ':', (size_t)(end - i)))
        return 0;
    *m = p + 7;
    *mlen = (size_t)(slash - *m);
    *id = i;
    *idlen = (size_t)(end - i);
    return 1;
}

/* Whether rest is "files/{id}:download" with an id free of '/'; sets the id. */
static int
download_path(const struct skiff_sim_res_req *q, const char **id, size_t *len)
{
    static const char verb[] = ":download";
    size_t vl = sizeof verb - 1;
    if (q->rest_len <= 6 + vl || memcmp(q->rest, "files/", 6) != 0 ||
        memcmp(q->rest + q->rest_len - vl, verb, vl) != 0)
        return 0;
    *id = q->rest + 6;
    *len = q->rest_len - 6 - vl;
    return !memchr(*id, '/', *len) && !memchr(*id, ':', *len);
}

const char *
skiff_sim_predict_route(const struct skiff_sim_res_req *q)
{
    const char *a, *b;
    size_t al, bl;
    if (q->upload)
        return NULL;
    if (strcmp(q->http_method, "POST") == 0 && model_method(q, "predict", &a, &al))
        return "models.predict";
    if (strcmp(q->http_method, "POST") == 0 && model_method(q, "predictLongRunning", &a, &al))
        return "models.predictLongRunning";
    if (strcmp(q->http_method, "GET") == 0 && operation_path(q, &a, &al, &b, &bl))
        return "models.operations.get";
    if (strcmp(q->http_method, "GET") == 0 && download_path(q, &a, &al))
        return "files.download";
    return NULL;
}

/*
 * The model of a predict request, when it exists and lists method; else r is the API's
 * 404 and NULL.
 */
static const struct skiff_sim_model *
model_for(const char *id, size_t len, const char *method, struct skiff_sim_res_reply *r)
{
    const struct skiff_sim_model *m = skiff_sim_catalog_find(id, len);
    if (m && skiff_sim_model_on_version(m, "v1beta") && skiff_sim_model_supports(m, method))
        return m;
    skiff_sim_res_error(r, 404, "NOT_FOUND",
                        "models/%.*s is not found for API version v1beta, or is not supported "
                        "for %s. Call ListModels to see the list of available models and their "
                        "supported methods.",
                        (int)(len > 80 ? 80 : len), id, method);
    return NULL;
}

/*
 * Reads instances[0].prompt and parameters.sampleCount: 0 with *prompt (borrowed from
 * body) and *samples, or -1 with r set to the 400.
 */
static int
read_body(const json_t *body, int def, const char **prompt, int *samples,
          struct skiff_sim_res_reply *r)
{
    if (!json_is_object(body)) {
        skiff_sim_res_error(r, 400, "INVALID_ARGUMENT",
                            "Invalid JSON payload received. The body must be an object with "
                            "\"instances\": [{\"prompt\": \"...\"}].");
        return -1;
    }
    const json_t *inst = json_object_get(body, "instances");
    const json_t *pr = json_object_get(json_array_get(inst, 0), "prompt");
    if (!json_is_array(inst) || json_array_size(inst) == 0 || !json_is_string(pr) ||
        json_string_length(pr) == 0) {
        skiff_sim_res_error(r, 400, "INVALID_ARGUMENT",
                            "instances[0].prompt is required: send \"instances\": [{\"prompt\": "
                            "\"...\"}].");
        return -1;
    }
    if (json_string_length(pr) > MAX_PROMPT) {
        skiff_sim_res_error(r, 400, "INVALID_ARGUMENT",
                            "The prompt is longer than the simulator takes (%d bytes).",
                            MAX_PROMPT);
        return -1;
    }
    const json_t *sc = json_object_get(json_object_get(body, "parameters"), "sampleCount");
    long n = def;
    if (sc) {
        n = json_is_integer(sc) ? (long)json_integer_value(sc) : -1;
        if (n < 1 || n > MAX_SAMPLES) {
            skiff_sim_res_error(r, 400, "INVALID_ARGUMENT",
                                "parameters.sampleCount must be an integer from 1 to %d.",
                                MAX_SAMPLES);
            return -1;
        }
    }
    *prompt = json_string_value(pr);
    *samples = (int)n;
    return 0;
}

static int
predict(const struct skiff_sim_res_req *q, struct skiff_sim_res_reply *r)
{
    const char *id;
    size_t len;
    model_method(q, "predict", &id, &len);
    if (!model_for(id, len, "predict", r))
        return 0;
    json_t *body = json_loadb(q->body, q->body_len, 0, NULL);
    const char *prompt;
    int n;
    if (read_body(body, DEFAULT_IMAGES, &prompt, &n, r) == 0) {
        uint64_t h = skiff_fnv1a64(SKIFF_FNV64_BASIS, prompt, strlen(prompt));
        json_t *preds = json_array();
        for (int i = 0; i < n; i++) {
            unsigned char png[PNG_MAX];
            size_t pl = make_png(skiff_fnv1a64(h, &i, sizeof i), png);
            char b64[4 * ((PNG_MAX + 2) / 3) + 1];
            EVP_EncodeBlock((unsigned char *)b64, png, (int)pl);
            json_array_append_new(
                preds, json_pack("{s:s,s:s}", "mimeType", "image/png", "bytesBase64Encoded", b64));
        }
        r->status = 200;
        r->body = json_pack("{s:o}", "predictions", preds);
    }
    json_decref(body);
    return 0;
}

static json_t *
op_json(const struct sim_op *k, const char *base, int64_t now)
{
    char name[160];
    snprintf(name, sizeof name, "models/%s/operations/%s", k->model, k->id);
    json_t *op = json_pack("{s:s}", "name", name);
    if (now < k->done_ms)
        return op; /* done: false is a proto default, omitted */
    json_t *samples = json_array();
    for (int i = 0; i < k->samples; i++) {
        char fid[ID_LEN + 1], uri[512];
        skiff_sim_res_id(k->seed + (uint64_t)i, fid, ID_LEN);
        snprintf(uri, sizeof uri, "%s/v1beta/files/%s:download?alt=media", base, fid);
        json_array_append_new(samples, json_pack("{s:{s:s}}", "video", "uri", uri));
    }
    json_object_set_new(op, "done", json_true());
    json_object_set_new(op, "response",
                        json_pack("{s:s,s:{s:o}}", "@type", TYPE_VIDEO, "generateVideoResponse",
                                  "generatedSamples", samples));
    return op;
}

static struct sim_op *
find(struct skiff_sim_predict *p, const char *id, size_t len)
{
    for (size_t i = 0; i < p->n; i++)
        if (strlen(p->v[i].id) == len && memcmp(p->v[i].id, id, len) == 0)
            return &p->v[i];
    return NULL;
}

static int
predict_long(struct skiff_sim_predict *p, const struct skiff_sim_res_req *q,
             struct skiff_sim_res_reply *r)
{
    const char *id;
    size_t len;
    model_method(q, "predictLongRunning", &id, &len);
    const struct skiff_sim_model *m = model_for(id, len, "predictLongRunning", r);
    if (!m)
        return 0;
    json_t *body = json_loadb(q->body, q->body_len, 0, NULL);
    const char *prompt;
    int n;
    if (read_body(body, DEFAULT_VIDEOS, &prompt, &n, r) != 0)
        goto out;
    if (p->n == p->max) {
        skiff_sim_res_error(r, 429, "RESOURCE_EXHAUSTED",
                            "The simulator holds %zu operations at most; POST /_sim/reset.",
                            p->max);
        goto out;
    }
    struct sim_op *k = &p->v[p->n];
    memset(k, 0, sizeof *k);
    uint64_t seed = q->id_seed;
    do
        skiff_sim_res_id(seed++, k->id, ID_LEN);
    while (find(p, k->id, strlen(k->id)));
    snprintf(k->project, sizeof k->project, "%s", q->project);
    snprintf(k->model, sizeof k->model, "%s", m->id);
    k->samples = n;
    k->seed = skiff_fnv1a64(q->id_seed, prompt, strlen(prompt));
    k->done_ms = q->now_ms + p->delay_ms;
    p->n++;
    r->status = 200;
    r->body = op_json(k, q->base, q->now_ms);
out:
    json_decref(body);
    return 0;
}

/* The bytes of video file id: an MP4 file type box, then a media box of bytes drawn from the
 * id (the same id gives the same bytes); malloc'd, or NULL. */
static char *
make_video(const char *id, size_t *len)
{
    static const unsigned char ftyp[] = {0, 0, 0, 0x18, 'f', 't', 'y', 'p', 'm', 'p', '4', '2',
                                         0, 0, 0, 0,    'm', 'p', '4', '2', 'i', 's', 'o', 'm'};
    size_t n = VIDEO_BYTES;
    unsigned char *b = malloc(n);
    if (!b)
        return NULL;
    memcpy(b, ftyp, sizeof ftyp);
    unsigned char *o = put32(b + sizeof ftyp, 8 + VIDEO_MEDIA);
    memcpy(o, "mdat", 4);
    o += 4;
    uint64_t h = skiff_fnv1a64(SKIFF_FNV64_BASIS, id, strlen(id));
    for (size_t i = 0; i < VIDEO_MEDIA; i++) {
        h = h * 6364136223846793005ULL + 1442695040888963407ULL;
        o[i] = (unsigned char)(h >> 56);
    }
    *len = n;
    return (char *)b;
}

/* The finished operation of q's project whose video id is (len bytes), with its sample
 * index in *sample; NULL when there is none (not done, expired, another project's). */
static const struct sim_op *
video_of(const struct skiff_sim_predict *p, const struct skiff_sim_res_req *q, const char *id,
         size_t len, int *sample)
{
    char fid[ID_LEN + 1];
    for (size_t k = 0; k < p->n; k++) {
        const struct sim_op *o = &p->v[k];
        if (strcmp(o->project, q->project) != 0 || q->now_ms < o->done_ms ||
            q->now_ms >= video_expiry(o))
            continue;
        for (int i = 0; i < o->samples; i++) {
            skiff_sim_res_id(o->seed + (uint64_t)i, fid, ID_LEN);
            if (strlen(fid) == len && memcmp(fid, id, len) == 0) {
                *sample = i;
                return o;
            }
        }
    }
    return NULL;
}

int
skiff_sim_predict_file(struct skiff_sim_predict *p, const struct skiff_sim_res_req *q,
                       struct skiff_sim_res_reply *r)
{
    if (strcmp(q->http_method, "GET") != 0 || q->rest_len <= 6 || memcmp(q->rest, "files/", 6) != 0)
        return -1;
    int i;
    const struct sim_op *o = video_of(p, q, q->rest + 6, q->rest_len - 6, &i);
    if (!o)
        return -1;
    char fid[ID_LEN + 1], name[ID_LEN + 8], t[40], e[40], size[24], uri[512], dl[512];
    skiff_sim_res_id(o->seed + (uint64_t)i, fid, ID_LEN);
    snprintf(name, sizeof name, "files/%s", fid);
    skiff_sim_res_time(o->done_ms, t, sizeof t);
    skiff_sim_res_time(video_expiry(o), e, sizeof e);
    snprintf(size, sizeof size, "%zu", VIDEO_BYTES);
    snprintf(uri, sizeof uri, "%s/v1beta/files/%s", q->base, fid);
    snprintf(dl, sizeof dl, "%s/v1beta/files/%s:download?alt=media", q->base, fid);
    r->status = 200;
    r->body = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "name", name, "mimeType",
                        "video/mp4", "sizeBytes", size, "createTime", t, "updateTime", t,
                        "expirationTime", e, "uri", uri, "downloadUri", dl, "state", "ACTIVE",
                        "source", "GENERATED");
    return 0;
}

/* GET files/{id}:download of a finished operation's video: its bytes for the project that
 * ran the operation, until the file expires (48 hours after the operation finished, or when
 * /_sim/expire names it); else the Files API's 403 for a file that is not there. */
static int
download(struct skiff_sim_predict *p, const struct skiff_sim_res_req *q,
         struct skiff_sim_res_reply *r)
{
    const char *id;
    size_t len;
    int i;
    download_path(q, &id, &len);
    if (video_of(p, q, id, len, &i)) {
        char fid[ID_LEN + 1];
        snprintf(fid, sizeof fid, "%.*s", (int)len, id);
        r->raw = make_video(fid, &r->raw_len);
        if (!r->raw) {
            skiff_sim_res_error(r, 500, "INTERNAL", "The simulator is out of memory.");
            return 0;
        }
        r->raw_type = "video/mp4";
        r->status = 200;
        return 0;
    }
    char shown[ID_LEN + 8];
    snprintf(shown, sizeof shown, "%.*s", (int)(len > ID_LEN + 4 ? ID_LEN + 4 : len), id);
    skiff_sim_res_denied(r, "File", shown);
    return 0;
}

int
skiff_sim_predict_expire(struct skiff_sim_predict *p, const char *name, int64_t now_ms)
{
    const char *id = strncmp(name, "files/", 6) == 0 ? name + 6 : name;
    char fid[ID_LEN + 1];
    for (size_t k = 0; k < p->n; k++)
        for (int i = 0; i < p->v[k].samples; i++) {
            skiff_sim_res_id(p->v[k].seed + (uint64_t)i, fid, ID_LEN);
            if (strcmp(fid, id) == 0) {
                p->v[k].expire_ms = now_ms;
                return 0;
            }
        }
    return -1;
}

int
skiff_sim_predict_handle(struct skiff_sim_predict *p, const struct skiff_sim_res_req *q,
                         struct skiff_sim_res_reply *r)
{
    const char *method = skiff_sim_predict_route(q);
    if (!method)
        return -1;
    if (strcmp(method, "models.predict") == 0)
        return predict(q, r);
    if (strcmp(method, "models.predictLongRunning") == 0)
        return predict_long(p, q, r);
    if (strcmp(method, "files.download") == 0)
        return download(p, q, r);
    const char *m, *id;
    size_t mlen, idlen;
    operation_path(q, &m, &mlen, &id, &idlen);
    struct sim_op *k = find(p, id, idlen);
    if (!k || strcmp(k->project, q->project) != 0 || strlen(k->model) != mlen ||
        memcmp(k->model, m, mlen) != 0) {
        char shown[ID_LEN + 8];
        snprintf(shown, sizeof shown, "%.*s", (int)(idlen > ID_LEN + 4 ? ID_LEN + 4 : idlen), id);
        skiff_sim_res_denied(r, "Operation", shown);
        return 0;
    }
    r->status = 200;
    r->body = op_json(k, q->base, q->now_ms);
    return 0;
}
