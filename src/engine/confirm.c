/*
 * Confirming a retirement (relay/probe.h): a verdict that would retire a key for every model
 * can be earned by a client (a header naming another project, a file of another project), so
 * before the key is blamed a probe asks with the key alone. The call holds its key until the
 * probe tells; one probe per key runs at a time across workers.
 */
#include "engine/call.h"

#include <stdio.h>
#include <string.h>

#include "base/clock.h"
#include "base/log.h"
#include "relay/keypool.h"

#define PROBE_TIMEOUT_MS 5000 /* a probe's connect, first byte, and gaps */
#define PROBE_POLL_MS 20      /* how often a call waiting for a probe looks */

static void
log_probe(const struct call *c, enum skiff_probe_result res, const struct skiff_verdict *pv)
{
    struct skiff_log l;
    skiff_log_begin(&l, res == SKIFF_PROBE_KEY_OK ? SKIFF_LOG_WARN : SKIFF_LOG_INFO, "key_probe");
    skiff_log_str(&l, "id", c->req ? c->req->id : "");
    skiff_log_str(&l, "key", call_label(c, c->key));
    skiff_log_str(&l, "model", call_model(c));
    skiff_log_str(&l, "refused_for", c->probe_for.reason);
    skiff_log_str(&l, "result", skiff_probe_result_name(res));
    if (pv && pv->reason[0])
        skiff_log_str(&l, "probe", pv->reason);
    skiff_log_end(&l);
}

/*
 * The probe of c->key ended (this call's, or another one's it waited for): the key is
 * released with what the probe found, then call_after_failure decides as for any failure. A
 * confirmed verdict retires the key and the call goes to another key at once; a verdict the
 * probe contradicts is the client's (answered, not re-sent, nothing blamed); a probe that
 * told nothing leaves the key as it was and the call counts as transient.
 */
static void
probe_settled(struct call *c, enum skiff_probe_result res)
{
    struct skiff_verdict v = c->probe_for;
    char why[sizeof v.reason];
    switch (res) {
    case SKIFF_PROBE_KEY_BAD:
        call_release_key(c, v.fault, v.retry_delay_s, v.reason);
        break;
    case SKIFF_PROBE_KEY_OK:
        call_release_key(c, SKIFF_FAULT_CLIENT, -1, v.reason);
        c->key_cleared = 1;
        v.fault = SKIFF_FAULT_CLIENT;
        snprintf(why, sizeof why, "%.80s; the key works (probe): the request's", v.reason);
        memcpy(v.reason, why, sizeof why);
        break;
    default:
        call_release_key(c, SKIFF_FAULT_TRANSIENT, -1, v.reason);
        v.fault = SKIFF_FAULT_TRANSIENT;
        v.retry_delay_s = -1;
        snprintf(why, sizeof why, "%.80s; the probe to confirm it told nothing", v.reason);
        memcpy(v.reason, why, sizeof why);
        break;
    }
    call_after_failure(c, &v);
}

static void
on_probe(void *data, enum skiff_probe_result res, const struct skiff_verdict *pv)
{
    struct call *c = data;
    c->probe = NULL;
    skiff_keypool_probe_end(c->w->sh->pool, c->key, (int)res);
    log_probe(c, res, pv);
    probe_settled(c, res);
}

static void
on_probe_poll(uv_timer_t *t)
{
    struct call *c = t->data;
    int outcome;
    if (!skiff_keypool_probe_outcome(c->w->sh->pool, c->key, c->probe_gen, &outcome))
        return;
    uv_timer_stop(&c->wait_timer);
    c->probe_waiting = 0;
    probe_settled(c, (enum skiff_probe_result)outcome);
}

/*
 * v would retire c->key for every model: before that, a probe with the key alone says
 * whether the key is at fault. A call that finds a probe of its key running waits for its
 * outcome, and one whose key is already retired goes on as if it had been confirmed. The
 * key stays held until then.
 */
void
call_confirm_key(struct call *c, const struct skiff_verdict *v)
{
    struct skiff_keypool *pool = c->w->sh->pool;
    c->probe_for = *v;
    switch (skiff_keypool_probe_claim(pool, c->key, &c->probe_gen)) {
    case SKIFF_KEYPOOL_PROBE_RETIRED:
        probe_settled(c, SKIFF_PROBE_KEY_BAD);
        return;
    case SKIFF_KEYPOOL_PROBE_WAIT:
        c->probe_waiting = 1;
        uv_timer_start(&c->wait_timer, on_probe_poll, PROBE_POLL_MS, PROBE_POLL_MS);
        return;
    case SKIFF_KEYPOOL_PROBE_RUN:
        break;
    }
    const struct skiff_config *cfg = c->w->cfg;
    int64_t left = c->deadline_ms - skiff_now_ms();
    long timeout = left < PROBE_TIMEOUT_MS ? (long)(left > 1 ? left : 1) : PROBE_TIMEOUT_MS;
    struct skiff_probe_opts o = {
        .base_url = cfg->base_url,
        .proxy = cfg->proxy,
        .ca_file = cfg->ca_file,
        .key = skiff_keypool_secret(pool, c->key),
        .model = call_model(c),
        .connect_timeout_ms =
            cfg->retry.connect_timeout_ms < timeout ? cfg->retry.connect_timeout_ms : timeout,
        .timeout_ms = timeout,
        .cb = on_probe,
        .data = c,
    };
    c->probe = skiff_probe_start(c->w->up, &o);
    if (!c->probe) {
        skiff_keypool_probe_end(pool, c->key, SKIFF_PROBE_UNKNOWN);
        probe_settled(c, SKIFF_PROBE_UNKNOWN);
    }
}
