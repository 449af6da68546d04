/*
 * skiff_validate (src/gemini/validate.c) on bodies that pass jsoncheck, as the relay calls
 * it: for each API version and method, against the built-in catalog, with a model name
 * taken from the input. The violation's strings must be terminated, and its details must
 * build. skiff_validate_body, the one-pass form, must answer as the check followed by the
 * validator, on any bytes.
 *
 * Input: byte 0 picks the version, method and whether a catalog is used; byte 1 is the
 * model name's length (the model's bytes follow), then the body.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gemini/catalog.h"
#include "gemini/validate.h"
#include "base/jsoncheck.h"
#include "gemini/router.h"

static struct skiff_catalog *cat;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    cat = skiff_catalog_new();
    return cat ? 0 : 1;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    static const char *const models[] = {"gemini-2.5-flash", "gemini-2.5-pro", "text-embedding-004",
                                         "gemini-embedding-001"};
    unsigned sel = data[0];
    const char *version = sel & 1 ? "v1" : "v1beta";
    enum skiff_method method = (enum skiff_method)((sel >> 1) % 6);
    const struct skiff_catalog *c = sel & 0x10 ? NULL : cat;
    size_t mlen = data[1];
    data += 2;
    size -= 2;

    char *model;
    if (mlen >= 0xfc) {
        const char *m = models[mlen & 3];
        mlen = strlen(m);
        model = malloc(mlen);
        if (!model)
            return 0;
        memcpy(model, m, mlen);
    } else {
        if (mlen > size)
            mlen = size;
        model = malloc(mlen ? mlen : 1);
        if (!model)
            return 0;
        memcpy(model, data, mlen);
        data += mlen;
        size -= mlen;
    }

    char *body = malloc(size ? size : 1);
    if (!body) {
        free(model);
        return 0;
    }
    memcpy(body, data, size);
    size_t off;
    const char *why;
    int checked = skiff_json_check(body, size, &off, &why);
    /* The one-pass form answers as the check followed by the validator, on any bytes. */
    for (int rules = 0; rules < 2; rules++) {
        struct skiff_violation a, b;
        size_t off1 = (size_t)-1;
        const char *why1 = NULL;
        int two = checked ? -1
                  : rules ? skiff_validate(c, version, model, mlen, method, body, size, &a)
                          : 0;
        int one = skiff_validate_body(c, version, model, mlen, method, body, size, rules, &b, &off1,
                                      &why1);
        if (one != two || (one < 0 && (off1 != off || why1 != why)) ||
            (one > 0 && (a.status != b.status || strcmp(a.message, b.message) != 0 ||
                         strcmp(a.field, b.field) != 0)))
            abort();
    }
    if (checked == 0) {
        struct skiff_violation v;
        memset(&v, 0xa5, sizeof v); /* whatever it does not set must not matter */
        if (skiff_validate(c, version, model, mlen, method, body, size, &v) == 1) {
            if (!memchr(v.field, '\0', sizeof v.field) ||
                !memchr(v.message, '\0', sizeof v.message) || !v.gstatus ||
                (v.status != 400 && v.status != 404))
                abort();
            json_t *d = skiff_violation_details(&v);
            json_decref(d);
        }
    }
    free(body);
    free(model);
    return 0;
}
