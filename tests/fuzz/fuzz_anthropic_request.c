/*
 * The Messages request translator (src/doors/anthropic/messages_request.c) on any body.
 * Accepted: the Gemini request has a non-empty contents array of Contents with parts,
 * every media entry points inside it, and signatures come only from the cache or the body.
 * Refused: a 4xx/5xx with a message, and the error body renders as JSON.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "doors/anthropic/messages_request.h"

static const char *
lookup(void *ud, const char *id)
{
    (void)ud;
    return strncmp(id, "toolu_", 6) == 0 ? "FUZZSIG" : NULL;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *p = malloc(size ? size : 1);
    if (!p)
        return 0;
    memcpy(p, data, size);
    struct skiff_anth_request r;
    struct skiff_anth_error e;
    int rc = skiff_anth_request_parse(p, size, lookup, NULL, &r, &e);
    if (rc == 0) {
        const json_t *contents = json_object_get(r.gemini, "contents");
        if (!json_is_array(contents) || json_array_size(contents) == 0 || !r.model ||
            r.max_tokens < 1)
            abort();
        size_t i;
        const json_t *c;
        json_array_foreach(contents, i, c)
        {
            if (json_array_size(json_object_get(c, "parts")) == 0)
                abort(); /* Gemini refuses a Content without parts */
        }
        for (size_t k = 0; k < r.n_media; k++)
            if (!r.media[k].url || !json_object_get(r.media[k].part, "inlineData"))
                abort();
        char *s = json_dumps(r.gemini, JSON_COMPACT);
        if (!s)
            abort();
        free(s);
        skiff_anth_request_release(&r);
    } else {
        if (r.gemini || (rc != -2 && (e.status < 400 || !e.message[0])))
            abort();
        char *b = skiff_anth_error_body(&e);
        free(b);
    }
    free(p);
    return 0;
}
