/*
 * Logs as JSON lines on stderr. A line is built field by field on the stack:
 *
 *   struct skiff_log l;
 *   skiff_log_begin(&l, SKIFF_LOG_INFO, "request");
 *   skiff_log_str(&l, "path", req->path);
 *   skiff_log_int(&l, "status", 200);
 *   skiff_log_end(&l);
 *
 * Before skiff_log_start (and after skiff_log_stop) skiff_log_end writes the line with one
 * write(2), which is what the short-lived commands want. Between the two, a line is copied
 * into a buffer owned by the calling thread and written by the log thread, so an event loop
 * (or a thread holding a lock) never waits for stderr: when the thread's buffer is full the
 * line is dropped and counted, and once the log thread can write again it logs
 * {"event":"log_dropped","dropped":N}. docs/internals/store.md ("Logs") has the details.
 *
 * Every line is valid JSON: strings are escaped, bytes that are not UTF-8 become U+FFFD,
 * and a line longer than SKIFF_LOG_LINE_MAX is cut at a field and marked "cut":true.
 *
 * Never pass an upstream key or a client token to any of these: name keys by label.
 */
#ifndef SKIFF_LOG_H
#define SKIFF_LOG_H

#include <stddef.h>
#include <stdint.h>

enum skiff_log_level { SKIFF_LOG_DEBUG, SKIFF_LOG_INFO, SKIFF_LOG_WARN, SKIFF_LOG_ERROR };

#define SKIFF_LOG_LINE_MAX 2048

struct skiff_log {
    char buf[SKIFF_LOG_LINE_MAX];
    size_t len;
    int skip; /* below the threshold: every call is a no-op */
    int cut;  /* a field did not fit */
};

/* Lines below level are dropped (default INFO; SKIFF_LOG_LEVEL=debug|info|warn|error). */
void skiff_log_set_level(enum skiff_log_level level);
/* Parses a level name; returns -1 when unknown. */
int skiff_log_level_parse(const char *name);
int skiff_log_enabled(enum skiff_log_level level);

void skiff_log_begin(struct skiff_log *l, enum skiff_log_level level, const char *event);
/* Adds "key":"value", JSON-escaped; value may be NULL (written as null). */
void skiff_log_str(struct skiff_log *l, const char *key, const char *value);
/* Adds a string field of a given length (not NUL-terminated). */
void skiff_log_strn(struct skiff_log *l, const char *key, const char *value, size_t len);
void skiff_log_int(struct skiff_log *l, const char *key, long long value);
/* Ends the line and hands it on (queued or written, see above). Never blocks once started. */
void skiff_log_end(struct skiff_log *l);

/* A one-field convenience: {"event":event,"msg":msg}. */
void skiff_log_msg(enum skiff_log_level level, const char *event, const char *msg);

/*
 * Starts the log thread (with every signal blocked, so signals still reach the thread that
 * waits for them). Returns 0, or a negative skiff_err when the thread cannot start (lines
 * are then written directly, as before). Call once, from the main thread.
 */
int skiff_log_start(void);

/*
 * Waits until every line queued before the call is written, for at most timeout_ms (stderr
 * may be a pipe nobody reads). Returns 0 when everything was written, SKIFF_EIO when
 * stderr did not take it in time. Without a log thread it returns 0 at once.
 */
int skiff_log_flush(int timeout_ms);

/*
 * Writes what is queued (waiting at most timeout_ms for stderr), stops the log thread, and
 * goes back to direct writes. Call after every other thread that logs has stopped.
 */
void skiff_log_stop(int timeout_ms);

/* How long an exit waits for stderr to take what is queued. */
#define SKIFF_LOG_STOP_TIMEOUT_MS 5000

/* Lines dropped because a thread's buffer was full, since start (tests, metrics). */
uint64_t skiff_log_dropped_total(void);

#endif
