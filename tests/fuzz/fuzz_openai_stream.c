/*
 * The OpenAI door's stream translator (src/doors/openai/chat_stream.c) on any sequence of
 * Gemini events: every chunk it writes is "data: " + JSON + "\n\n" (or [DONE], last, and
 * only after a clean end), each choice gets finish_reason at most once, and nothing follows
 * an error chunk. The Responses API's stream gets the same events: each of its events is
 * "event: <type>\ndata: <JSON of that type>\n\n" with sequence numbers 0, 1, 2 ..., and
 * nothing follows response.completed, response.incomplete or response.failed.
 *
 * Input: byte 0's bits pick include_thoughts, parallel calls and include_usage, and whether
 * the stream ends cleanly or by an engine failure; the rest is the events, one per line.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "doors/openai/chat_stream.h"
#include "doors/openai/responses.h"

static void
check(const struct skiff_buf *b)
{
    const char *p = b->data ? b->data : "";
    int done = 0, error = 0;
    unsigned finished = 0;
    while (*p) {
        if (done || error || strncmp(p, "data: ", 6) != 0)
            abort();
        const char *end = strstr(p, "\n\n");
        if (!end)
            abort();
        const char *v = p + 6;
        size_t len = (size_t)(end - v);
        if (len == 6 && memcmp(v, "[DONE]", 6) == 0) {
            done = 1;
        } else {
            json_t *j = json_loadb(v, len, 0, NULL);
            if (!json_is_object(j))
                abort();
            error = json_object_get(j, "error") != NULL;
            size_t i;
            const json_t *ch;
            json_array_foreach(json_object_get(j, "choices"), i, ch)
            {
                json_int_t idx = json_integer_value(json_object_get(ch, "index"));
                if (json_is_string(json_object_get(ch, "finish_reason"))) {
                    if (idx < 0 || idx > 31 || finished & (1u << idx))
                        abort();
                    finished |= 1u << idx;
                }
            }
            json_decref(j);
        }
        p = end + 2;
    }
}

static void
check_responses(const struct skiff_buf *b)
{
    const char *p = b->data ? b->data : "";
    json_int_t seq = 0;
    int over = 0;
    while (*p) {
        if (over || strncmp(p, "event: ", 7) != 0)
            abort();
        const char *nl = strchr(p, '\n');
        const char *end = strstr(p, "\n\n");
        if (!nl || !end || nl > end || strncmp(nl + 1, "data: ", 6) != 0)
            abort();
        json_t *j = json_loadb(nl + 7, (size_t)(end - nl - 7), 0, NULL);
        const char *type = json_string_value(json_object_get(j, "type"));
        if (!type || strlen(type) != (size_t)(nl - p - 7) || strncmp(type, p + 7, strlen(type)) ||
            json_integer_value(json_object_get(j, "sequence_number")) != seq++)
            abort();
        over = !strcmp(type, "response.completed") || !strcmp(type, "response.incomplete") ||
               !strcmp(type, "response.failed");
        json_decref(j);
        p = end + 2;
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    unsigned sel = data[0];
    struct skiff_oai_answer_opts o = {
        .model = "gpt-4o", .include_thoughts = sel & 1, .parallel_calls = !(sel & 2)};
    struct skiff_oai_stream *s = skiff_oai_stream_new(&o, sel & 4);
    if (!s)
        return 0;
    struct skiff_oai_rstream *rs = skiff_oai_rstream_new(&o);
    if (!rs) {
        skiff_oai_stream_free(s);
        return 0;
    }
    struct skiff_buf out, rout;
    skiff_buf_init(&out, 1 << 22);
    skiff_buf_init(&rout, 1 << 22);
    const char *p = (const char *)data + 1, *end = (const char *)data + size;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        skiff_oai_stream_feed(s, p, n, &out);
        skiff_oai_rstream_feed(rs, p, n, &rout);
        p += n + 1;
    }
    if (sel & 8) {
        struct skiff_oai_error e;
        skiff_oai_error_set(&e, 504, NULL, NULL, "timeout");
        skiff_oai_stream_fail(s, &e, &out);
        skiff_oai_rstream_fail(rs, &e, &rout);
    }
    skiff_oai_stream_end(s, &out);
    skiff_oai_rstream_end(rs, &rout);
    check(&out);
    check_responses(&rout);
    skiff_oai_rstream_free(rs);
    skiff_buf_release(&rout);
    skiff_oai_stream_free(s);
    skiff_buf_release(&out);
    return 0;
}
