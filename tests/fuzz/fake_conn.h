/*
 * A connection without a socket, for driving the HTTP glue (src/server/http.c) from a
 * buffer: implements every function of server/conn.h, records what the layer above asked
 * for (writes, the timer, closing) and lets the fuzz target play the socket's and the
 * loop's part. Linked in place of src/server/conn.c (the archive member is never pulled,
 * since every symbol it defines is defined here first).
 */
#ifndef SKIFF_FUZZ_FAKE_CONN_H
#define SKIFF_FUZZ_FAKE_CONN_H

#include <stddef.h>
#include <stdint.h>

#include "server/conn.h"

struct fake_conn_state {
    int closed;        /* on_close has run */
    int reset;         /* closed with a reset */
    int timer_armed;   /* skiff_conn_timer was called and not stopped */
    uint64_t timer_ms; /* its delay */
    int reading;       /* read_start/read_stop */
    int lingering;
    size_t written; /* bytes handed to skiff_conn_write */
    uint32_t sum;   /* a checksum of them, so every byte written is read */
};

/* The connection skiff_conn_accept made last. */
extern struct skiff_conn *fake_conn_last;

/* The state of the connection c (created by skiff_conn_accept). */
struct fake_conn_state *fake_conn_state(struct skiff_conn *c);

/* Frees a connection made by skiff_conn_accept, after closing it if it is still open. */
void fake_conn_free(struct skiff_conn *c);

#endif
