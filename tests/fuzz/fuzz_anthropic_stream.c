/*
 * The Messages stream translator (src/doors/anthropic/messages_stream.c) on any events.
 * Input: byte 0 sets thinking (bit 0), disable_parallel_tool_use (bit 1) and stop
 * sequences (bit 2); the rest is events, one per line. The output must be the documented
 * sequence: every event `event: X\ndata: <JSON>\n\n` with X equal to the JSON's type;
 * message_start first; blocks opened with consecutive indices, one at a time, deltas only
 * on the open block and of its kind, input_json_delta never empty; after an error or
 * message_stop, nothing.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "doors/anthropic/messages_stream.h"

static void
store(void *ud, const char *id, const char *sig)
{
    (void)ud;
    if (!id || !sig || strncmp(id, "toolu_f_", 8) != 0)
        abort();
}

static void
check(const char *out, size_t len)
{
    const char *p = out, *end = out + len;
    long open = -1, next = 0;
    int started = 0, done = 0;
    char kind[16] = "";
    while (p < end) {
        if (done || strncmp(p, "event: ", 7) != 0)
            abort();
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl || strncmp(nl + 1, "data: ", 6) != 0)
            abort();
        const char *d = nl + 7;
        const char *de = strstr(d, "\n\n");
        if (!de)
            abort();
        json_t *j = json_loadb(d, (size_t)(de - d), 0, NULL);
        const char *type = json_string_value(json_object_get(j, "type"));
        if (!type || strlen(type) != (size_t)(nl - p - 7) || strncmp(type, p + 7, strlen(type)))
            abort();
        long index = (long)json_integer_value(json_object_get(j, "index"));
        if (strcmp(type, "error") == 0) {
            done = 1;
        } else if (strcmp(type, "ping") == 0) {
            if (!started)
                abort();
        } else if (strcmp(type, "message_start") == 0) {
            if (started)
                abort();
            started = 1;
        } else if (!started) {
            abort();
        } else if (strcmp(type, "content_block_start") == 0) {
            if (open >= 0 || index != next)
                abort();
            open = index;
            const char *k =
                json_string_value(json_object_get(json_object_get(j, "content_block"), "type"));
            strncpy(kind, k ? k : "", sizeof kind - 1);
        } else if (strcmp(type, "content_block_delta") == 0) {
            const json_t *delta = json_object_get(j, "delta");
            const char *dt = json_string_value(json_object_get(delta, "type"));
            if (open < 0 || index != open || !dt)
                abort();
            if (strcmp(dt, "input_json_delta") == 0) {
                const char *pj = json_string_value(json_object_get(delta, "partial_json"));
                json_t *in = pj ? json_loads(pj, 0, NULL) : NULL;
                if (strcmp(kind, "tool_use") != 0 || !json_is_object(in))
                    abort();
                json_decref(in);
            } else if ((strcmp(dt, "text_delta") == 0 && strcmp(kind, "text") != 0) ||
                       ((strcmp(dt, "thinking_delta") == 0 || strcmp(dt, "signature_delta") == 0) &&
                        strcmp(kind, "thinking") != 0)) {
                abort();
            }
        } else if (strcmp(type, "content_block_stop") == 0) {
            if (open < 0 || index != open)
                abort();
            open = -1;
            next++;
        } else if (strcmp(type, "message_delta") == 0) {
            if (open >= 0)
                abort();
            const char *sr =
                json_string_value(json_object_get(json_object_get(j, "delta"), "stop_reason"));
            static const char *const ok[] = {"end_turn", "max_tokens", "stop_sequence",
                                             "tool_use", "refusal",    NULL};
            int found = 0;
            for (size_t i = 0; sr && ok[i]; i++)
                found |= strcmp(sr, ok[i]) == 0;
            if (!found)
                abort();
        } else if (strcmp(type, "message_stop") == 0) {
            done = 1;
        } else {
            abort();
        }
        json_decref(j);
        p = de + 2;
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    json_t *stops = (data[0] & 4) ? json_pack("[s,s]", "END", "\n\n") : NULL;
    struct skiff_anth_reply r = {.model = "claude-x",
                                 .id_seed = "f",
                                 .thinking = data[0] & 1,
                                 .single_tool_call = (data[0] >> 1) & 1,
                                 .stop_sequences = stops,
                                 .store = store};
    struct skiff_anth_stream s;
    struct skiff_buf out;
    skiff_anth_stream_init(&s, &r);
    skiff_buf_init(&out, 1 << 22);
    const char *p = (const char *)data + 1, *end = (const char *)data + size;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *e = nl ? nl : end;
        /* Each event in its own allocation: reading past it is caught. */
        char *ev = malloc((size_t)(e - p) + 1);
        if (!ev)
            abort();
        memcpy(ev, p, (size_t)(e - p));
        skiff_anth_stream_event(&s, ev, (size_t)(e - p), &out);
        skiff_anth_stream_ping(&s, &out);
        free(ev);
        p = e + 1;
    }
    skiff_anth_stream_end(&s, &out);
    if (out.len)
        check(out.data, out.len);
    skiff_buf_release(&out);
    skiff_anth_stream_release(&s);
    json_decref(stops);
    return 0;
}
