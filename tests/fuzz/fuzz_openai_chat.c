/*
 * The OpenAI door's request translator (src/doors/openai/chat_request.c) on any JSON a client
 * may send: it must either translate (a Gemini body with a non-empty contents array and a
 * roles that are user or model) or refuse with a 4xx whose message is set; never crash or
 * leak. The same input also goes through the Responses API's request translator (and its
 * chat request, when it makes one), and is taken as a Gemini answer by the answer translators.
 *
 * Input: byte 0 picks the model (and whether its catalog facts and a signature cache are
 * given); the rest is the request body.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "doors/openai/chat_request.h"
#include "doors/openai/chat_response.h"
#include "doors/openai/responses.h"
#include "gemini/catalog.h"

static struct skiff_catalog *cat;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    cat = skiff_catalog_new();
    return cat ? 0 : 1;
}

static const char *
lookup(void *ud, const char *id)
{
    (void)ud;
    return id[0] == 'c' ? "skip_thought_signature_validator" : NULL;
}

static void
store(void *ud, const char *id, const char *sig)
{
    (void)ud;
    if (!id[0] || !sig)
        abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    static const char *const models[] = {"gemini-2.5-flash", "gemini-2.5-pro",
                                         "gemini-3.1-pro-preview", "gemini-2.5-flash-image"};
    unsigned sel = data[0];
    const char *model = models[sel % 4];
    struct skiff_model_info info;
    int known = !(sel & 4) && skiff_catalog_lookup(cat, model, strlen(model), &info);
    struct skiff_oai_chat_opts o = {.gemini_model = model,
                                    .info = known ? &info : NULL,
                                    .lookup = sel & 8 ? lookup : NULL,
                                    .include_thoughts = sel & 16};
    json_t *req = json_loadb((const char *)data + 1, size - 1, 0, NULL);
    if (!req)
        return 0;
    struct skiff_oai_chat c;
    struct skiff_oai_error e;
    if (skiff_oai_chat_request(req, &o, &c, &e) == 0) {
        const json_t *contents = json_object_get(c.body, "contents");
        if (!json_array_size(contents) || !c.model)
            abort();
        size_t i;
        const json_t *ct;
        json_array_foreach(contents, i, ct)
        {
            const char *role = json_string_value(json_object_get(ct, "role"));
            if (!role || (strcmp(role, "user") && strcmp(role, "model")))
                abort();
        }
        skiff_oai_chat_release(&c);
    } else if (e.status < 400 || !e.message[0]) {
        abort();
    }
    struct skiff_oai_answer_opts a = {
        .model = "m", .include_thoughts = sel & 32, .parallel_calls = !(sel & 64), .store = store};
    json_t *ans = skiff_oai_chat_response(req, &a);
    if (!ans)
        abort();
    json_t *r = skiff_oai_response_from_chat(ans);
    if (!r)
        abort();
    json_decref(r);
    json_decref(ans);
    json_t *chat = skiff_oai_responses_to_chat(req, &e);
    if (chat) {
        if (skiff_oai_chat_request(chat, &o, &c, &e) == 0)
            skiff_oai_chat_release(&c);
        json_decref(chat);
    } else if (e.status < 400 || !e.message[0]) {
        abort();
    }
    json_decref(req);
    return 0;
}
