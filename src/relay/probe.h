/*
 * The probe that confirms a key's retirement. An upstream refusal that names the key
 * (API_KEY_INVALID, SERVICE_DISABLED, CONSUMER_SUSPENDED, a location or billing
 * FAILED_PRECONDITION: skiff_fault_needs_probe) would retire it for every model, yet a
 * client can earn some of them (a header naming another project, a resource of another
 * project). So before retiring, the relay asks the cheapest question with the key alone:
 * GET {base_url}/v1beta/models/{model}, carrying x-goog-api-key and nothing of the
 * client's, through the worker's upstream client, on its loop.
 *
 *   KEY_OK    the key works (2xx, or a 404 for the model: the key passed): the refusal was
 *             about the request; nothing is blamed and the generation is not re-sent;
 *   KEY_BAD   the upstream refused the key again (any verdict naming it, or a 401/403,
 *             which for this call can only be the key's): retire it;
 *   UNKNOWN   no answer that tells (transport failure, timeout, 5xx, 429): the key is kept
 *             and the call counts as a transient failure.
 *
 * One probe per key at a time is the key pool's business (skiff_keypool_probe_claim).
 */
#ifndef SKIFF_PROBE_H
#define SKIFF_PROBE_H

#include <stddef.h>

#include "gemini/classify.h"
#include "relay/upstream.h"

enum skiff_probe_result {
    SKIFF_PROBE_KEY_OK,
    SKIFF_PROBE_KEY_BAD,
    SKIFF_PROBE_UNKNOWN,
};

/* The probe's end: res, and v with the verdict of the probe's own answer (its reason says
 * what came back, for logs). Called once, on the loop; the probe is freed after it
 * returns. */
typedef void skiff_probe_cb(void *data, enum skiff_probe_result res, const struct skiff_verdict *v);

struct skiff_probe_opts {
    const char *base_url; /* upstreams.gemini.base_url */
    const char *proxy;    /* NULL or "": none */
    const char *ca_file; /* upstreams.gemini.ca_file, as every call to the upstream: NULL: system */
    const char *key;     /* the key to probe: copied into the call's header and wiped here */
    const char *model;   /* the model the refused call asked for; escaped into the path */
    long connect_timeout_ms;
    long timeout_ms; /* for the first byte, and then between pieces of the body */
    skiff_probe_cb *cb;
    void *data;
};

struct skiff_probe;

/* Starts a probe on up. NULL when it cannot start (then cb is never called). */
struct skiff_probe *skiff_probe_start(struct skiff_upstream *up, const struct skiff_probe_opts *o);

/* Stops a probe before its callback: the call is cancelled, cb is never called, the memory
 * goes. Never call it from inside cb. */
void skiff_probe_cancel(struct skiff_probe *p);

/* What a probe's answer says of the key (status 0: no answer). Pure; fills *v. */
enum skiff_probe_result skiff_probe_judge(int status, const char *body, size_t len,
                                          struct skiff_verdict *v);

/* A short name for logs: "key-ok", "key-bad", "unknown". */
const char *skiff_probe_result_name(enum skiff_probe_result r);

#endif
