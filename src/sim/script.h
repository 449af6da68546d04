/*
 * Scripted mode: queued exact replies (POST /_sim/script) and the log of every request the
 * simulator saw (GET /_sim/log). Formats are in docs/internals/sim.md.
 *
 * A script entry matches a request on any subset of model, key and API method; the first
 * entry in queue order that matches is used, and it leaves the queue once used `times`
 * times. Replies are reference-counted: a request that took one keeps it alive while it
 * streams, even if the queue is reset meanwhile.
 *
 * Not thread-safe: the simulator runs one worker.
 */
#ifndef SKIFF_SIM_SCRIPT_H
#define SKIFF_SIM_SCRIPT_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

enum skiff_sim_reply_kind {
    SKIFF_SIM_REPLY_ANSWER, /* the normal generated answer, with optional stream overrides */
    SKIFF_SIM_REPLY_ERROR,  /* an error status with a Google body (given, or the default) */
    SKIFF_SIM_REPLY_BODY,   /* a custom status, headers and body */
    SKIFF_SIM_REPLY_STREAM, /* the given stream events */
    SKIFF_SIM_REPLY_QUOTA,  /* a 429 of a quota kind */
    SKIFF_SIM_REPLY_RESET,  /* reset the connection before answering */
    SKIFF_SIM_REPLY_HANG,   /* never answer */
};

enum skiff_sim_quota_reply {
    SKIFF_SIM_QR_MINUTE,
    SKIFF_SIM_QR_TOKENS,
    SKIFF_SIM_QR_DAY,
    SKIFF_SIM_QR_ZERO
};

struct skiff_sim_reply {
    int refs;
    enum skiff_sim_reply_kind kind;
    int status;         /* ERROR, BODY */
    char *error_status; /* ERROR: google.rpc.Code name; NULL: from the status */
    char *message;      /* ERROR: NULL means the default message for the status */
    json_t *details;    /* ERROR: array or NULL */
    char *body;         /* BODY: the bytes to send */
    size_t body_len;
    char *content_type;  /* BODY: NULL means application/json; charset=UTF-8 */
    json_t *headers;     /* BODY, STREAM, ANSWER: extra response headers, object or NULL */
    json_t *events;      /* STREAM: array of event objects */
    json_t *error_after; /* STREAM, ANSWER: {"code","message","status"} sent raw after the
                            events instead of a clean end; NULL for none */
    long chunk_ms;       /* -1: the simulator's --chunk-ms */
    long latency_ms;     /* -1: the simulator's --latency-ms */
    long think_ms;       /* ANSWER: -1: the simulator's --think-ms */
    long reset_after;    /* -1: none; N: reset the connection after N events */
    enum skiff_sim_quota_reply quota;
    long quota_limit; /* -1: the configured limit */
    long retry_ms;    /* -1: the true time left (minute: 60 s; day: to Pacific midnight) */
};

/* Takes a reference. */
struct skiff_sim_reply *skiff_sim_reply_ref(struct skiff_sim_reply *r);
/* Drops a reference; frees the reply with the last one. NULL is a no-op. */
void skiff_sim_reply_unref(struct skiff_sim_reply *r);

struct skiff_sim_script_entry;

struct skiff_sim_script {
    struct skiff_sim_script_entry *head;
    struct skiff_sim_script_entry *tail;
    size_t n;
    size_t max; /* entries the queue may hold */
};

void skiff_sim_script_init(struct skiff_sim_script *s, size_t max);
/* Empties the queue (POST /_sim/reset). */
void skiff_sim_script_clear(struct skiff_sim_script *s);

/*
 * Queues the entries of spec: one entry object, an array of them, or {"scripts":[...]}.
 * All or nothing: on a bad entry nothing is queued and err says which entry and field.
 * Returns the number of entries queued, or SKIFF_EINVAL / SKIFF_ETOOBIG / SKIFF_ENOMEM.
 */
int skiff_sim_script_add(struct skiff_sim_script *s, const json_t *spec, char *err, size_t errlen);

/*
 * The reply for a request (model: the URL's model id; target: its concrete model, which
 * also matches; key may be NULL; method: the API method), or NULL when no entry matches.
 * Consumes one use of the entry. Returns a new reference.
 */
struct skiff_sim_reply *skiff_sim_script_take(struct skiff_sim_script *s, const char *model,
                                              const char *target, const char *key,
                                              const char *method);

/* ---- the request log ---- */

struct skiff_sim_log_entry {
    uint64_t seq; /* 1, 2, ...; 0 marks an empty slot */
    int64_t ts_ms;
    char http_method[8];
    char path[256];
    char version[8];
    char model[96];
    char method[32]; /* API method: "generateContent", "models.list", ... */
    char key[128];   /* as received; "" with has_key 0 when none */
    int has_key;
    char alt[16];
    size_t body_bytes;
    uint64_t body_fnv;  /* FNV-1a 64 of the body: tests prove a relay forwarded it unchanged */
    double temperature; /* generationConfig.temperature of the body, when has_temperature */
    int has_temperature;
    int stream;
    int scripted;
    const char *fault; /* static name, or NULL */
    int status;        /* the HTTP status sent; 0 until one was (or never: reset, hang) */
    long events;       /* stream events sent */
    int ended;         /* the response ended cleanly */
    int aborted;       /* the client went away before the response ended */
    int reset;         /* the simulator reset the connection */
    int64_t duration_ms;

    /* A Live API session (live.h): "live" in the log's JSON. key is the session's key (the
     * ephemeral token's owner on the Constrained path); body_bytes and body_fnv count the
     * client's messages; events the turns answered. */
    int live;
    int64_t live_opened_ms; /* 0 when the handshake was refused */
    int64_t live_closed_ms; /* 0 while open */
    int live_close_code;    /* the close frame's code (ours, or the client's), 0 for none */
    char live_closed_by[8]; /* "client" or "sim" */
    char live_reason[124];  /* the reason of our close frame */
    char live_end[64];      /* how the session ended, for the log */
    char live_token[64];    /* the ephemeral token of a Constrained session */
    long live_turns;
    int live_resumed; /* setup carried a known resumption handle */
    int live_goaway;  /* goAway was sent */
};

struct skiff_sim_log {
    struct skiff_sim_log_entry *ring;
    size_t cap;
    uint64_t next_seq;
};

/* A log that keeps the last cap entries. Returns 0 or SKIFF_ENOMEM. */
int skiff_sim_log_init(struct skiff_sim_log *log, size_t cap);
void skiff_sim_log_release(struct skiff_sim_log *log);
/* Forgets every entry and restarts seq at 1. */
void skiff_sim_log_clear(struct skiff_sim_log *log);

/* A new entry with the next seq, zeroed except seq. Borrowed; valid until cap more adds. */
struct skiff_sim_log_entry *skiff_sim_log_add(struct skiff_sim_log *log);
/* The entry with this seq, or NULL once it has been overwritten or cleared. */
struct skiff_sim_log_entry *skiff_sim_log_get(struct skiff_sim_log *log, uint64_t seq);

/* {"requests":[...],"dropped":N} in seq order. Returns a new reference. */
json_t *skiff_sim_log_json(const struct skiff_sim_log *log);

#endif
