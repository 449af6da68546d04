/*
 * Logs as JSON lines on stderr, one write(2) per line so lines from worker threads never
 * interleave. A line is built field by field on the stack:
 *
 *   struct skiff_log l;
 *   skiff_log_begin(&l, SKIFF_LOG_INFO, "request");
 *   skiff_log_str(&l, "path", req->path);
 *   skiff_log_int(&l, "status", 200);
 *   skiff_log_end(&l);
 *
 * Never pass an upstream key or a client token to any of these: name keys by label.
 */
#ifndef SKIFF_LOG_H
#define SKIFF_LOG_H

#include <stddef.h>

enum skiff_log_level { SKIFF_LOG_DEBUG, SKIFF_LOG_INFO, SKIFF_LOG_WARN, SKIFF_LOG_ERROR };

struct skiff_log {
    char buf[2048];
    size_t len;
    int skip; /* below the threshold: every call is a no-op */
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
void skiff_log_end(struct skiff_log *l);

/* A one-field convenience: {"event":event,"msg":msg}. */
void skiff_log_msg(enum skiff_log_level level, const char *event, const char *msg);

#endif
