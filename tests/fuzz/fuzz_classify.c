/*
 * skiff_classify (src/gemini/classify.c) on any upstream error: a status, a body that may
 * be anything, and a Retry-After value; and skiff_parse_duration on any string. A verdict
 * must be one of the faults, its reason terminated, its delay finite.
 *
 * Input: bytes 0-1 the status (0 to 599), byte 2 the Retry-After's length (0xff: none),
 * its bytes; the rest is the body.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gemini/classify.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3)
        return 0;
    int status = ((data[0] << 8) | data[1]) % 600;
    size_t ralen = data[2];
    data += 3;
    size -= 3;
    char *ra = NULL;
    if (ralen != 0xff) {
        if (ralen > size)
            ralen = size;
        ra = malloc(ralen + 1);
        if (!ra)
            return 0;
        memcpy(ra, data, ralen);
        ra[ralen] = '\0';
        data += ralen;
        size -= ralen;
    }
    char *body = malloc(size ? size : 1);
    if (!body) {
        free(ra);
        return 0;
    }
    memcpy(body, data, size);

    struct skiff_verdict v;
    memset(&v, 0xa5, sizeof v);
    skiff_classify(status, size ? body : NULL, size, ra, &v);
    if (v.fault < SKIFF_FAULT_NONE || v.fault > SKIFF_FAULT_KEY_REGION ||
        !memchr(v.reason, '\0', sizeof v.reason) || isnan(v.retry_delay_s) ||
        isinf(v.retry_delay_s))
        abort();
    (void)skiff_fault_retryable(v.fault);
    (void)skiff_fault_blames_key(v.fault);
    (void)skiff_fault_name(v.fault);

    /* The body as a duration string too ("45.8s", "1e300s", "infs"...). */
    char *s = malloc(size + 1);
    if (s) {
        memcpy(s, data, size);
        s[size] = '\0';
        double d = skiff_parse_duration(s);
        if (isnan(d))
            abort();
        free(s);
    }
    free(body);
    free(ra);
    return 0;
}
