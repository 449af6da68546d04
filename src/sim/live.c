/*
 * The simulator's Live API (live.h; the wire facts and their sources are in
 * docs/internals/sim.md, "The Live API").
 *
 * A session's life: the handshake is checked and answered 101 (server/websocket.h), then the
 * tunnel's bytes go through wslay, which frames and unframes, answers pings and echoes the
 * client's close. The key (or the ephemeral token) is judged as soon as the socket is open;
 * the first message must be `setup`; each complete turn is answered at once. The simulator
 * ends a session with a close frame (close_with), then waits up to CLOSE_WAIT_MS for the
 * client's; a client that goes away ends it at once. Either way end_session logs when and how
 * it closed and frees it once its timer's close callback has run.
 *
 * Invariants: end_session is never called from inside a wslay callback (they only set
 * state; after_io acts once wslay has returned). A session's memory goes in its timer's
 * close callback, never while a callback of its own is on the stack.
 */
#include "sim/live.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <uv.h>
#include <wslay/wslay.h>

#include "base/clock.h"
#include "base/hash.h"
#include "gemini/error.h"
#include "gemini/live.h"
#include "server/websocket.h"
#include "sim/catalog.h"
#include "sim/faults.h"
#include "sim/plan.h"
#include "sim/quota.h"
#include "sim/render.h"
#include "sim/resource.h"
#include "sim/simconf.h"

#define MAX_MESSAGE (1024 * 1024) /* a client message; larger ones close the session (1009) */
#define CLOSE_WAIT_MS 2000        /* for the client's close frame after ours */
#define MAX_QUEUED (1024 * 1024)  /* output queued for the client before reading pauses */
#define REASON_MAX 123            /* a close frame's reason (RFC 6455 5.5: 125 with the code) */

static const char invalid_argument[] = "Request contains an invalid argument.";
static const char key_invalid[] = "API key not valid. Please pass a valid API key.";
static const char unregistered[] =
    "Method doesn't allow unregistered callers (callers without established identity). Please "
    "use API Key or other form of API consumer identity to call this API.";
static const char goaway_abort[] =
    "Connection aborted because the client failed to close the connection after receiving a "
    "GoAway signal once the session duration limit was reached.";
static const char quota_reason[] =
    "You exceeded your current quota, please check your plan and billing details. For more "
    "information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits.";

/* ---- the tables ------------------------------------------------------------------------- */

struct token {
    char name[40];     /* "auth_tokens/..."; "" for a free slot */
    char project[128]; /* the key that created it */
    int64_t expire_ms; /* messages are refused after it */
    int64_t new_by_ms; /* new sessions are refused after it */
    long uses_left;    /* -1: no limit */
};

struct handle {
    char name[40]; /* "" for a free slot */
    char project[128];
    long context_tokens; /* what the resumed session's context holds */
};

struct session;

struct skiff_sim_live {
    struct session *sessions; /* open sessions */
    size_t nsessions, max_sessions;
    struct token *tokens; /* a ring: the oldest is forgotten first */
    size_t ntokens, next_token;
    struct handle *handles; /* a ring, as tokens, as large */
    size_t next_handle;
    uint64_t counter; /* makes every token and handle name new */
};

struct skiff_sim_live *
skiff_sim_live_new(size_t max_sessions, size_t max_tokens)
{
    struct skiff_sim_live *l = calloc(1, sizeof *l);
    if (!l)
        return NULL;
    l->max_sessions = max_sessions;
    l->ntokens = max_tokens;
    l->tokens = calloc(max_tokens, sizeof *l->tokens);
    l->handles = calloc(max_tokens, sizeof *l->handles);
    if (!l->tokens || !l->handles) {
        skiff_sim_live_free(l);
        return NULL;
    }
    return l;
}

void
skiff_sim_live_free(struct skiff_sim_live *l)
{
    if (!l)
        return;
    free(l->tokens);
    free(l->handles);
    free(l);
}

void
skiff_sim_live_clear(struct skiff_sim_live *l)
{
    memset(l->tokens, 0, l->ntokens * sizeof *l->tokens);
    memset(l->handles, 0, l->ntokens * sizeof *l->handles);
    l->next_token = l->next_handle = 0;
}

/* A new opaque name: prefix and 24 letters and digits. */
static void
new_name(struct sim *sim, const char *prefix, char *out, size_t outlen)
{
    char id[25];
    uint64_t seed = skiff_sim_rng_next(&sim->rng) ^ skiff_sim_mix(++sim->live->counter);
    skiff_sim_res_id(seed, id, 24);
    id[24] = '\0';
    snprintf(out, outlen, "%s%s", prefix, id);
}

static struct token *
find_token(struct skiff_sim_live *l, const char *name)
{
    for (size_t i = 0; i < l->ntokens; i++)
        if (l->tokens[i].name[0] && strcmp(l->tokens[i].name, name) == 0)
            return &l->tokens[i];
    return NULL;
}

static struct handle *
find_handle(struct skiff_sim_live *l, const char *name)
{
    for (size_t i = 0; i < l->ntokens; i++)
        if (l->handles[i].name[0] && strcmp(l->handles[i].name, name) == 0)
            return &l->handles[i];
    return NULL;
}

/* ---- POST /v1alpha/auth_tokens ---------------------------------------------------------- */

static void
reply_error(struct skiff_sim_compat_reply *out, int status, const char *gstatus, const char *msg)
{
    out->status = status;
    out->content_type = JSON_TYPE;
    out->body = skiff_gerr_body(status, gstatus, msg, NULL, 0);
    out->len = out->body ? strlen(out->body) : 0;
}

/* A time field of the body: absent gives def; *bad is set when it is not RFC 3339. */
static int64_t
time_field(const json_t *body, const char *name, int64_t def, int *bad)
{
    const json_t *v = json_object_get(body, name);
    if (!v)
        return def;
    int64_t ms = json_is_string(v) ? skiff_sim_res_parse_time(json_string_value(v)) : -1;
    if (ms < 0)
        *bad = 1;
    return ms;
}

int
skiff_sim_live_auth_token(struct sim *sim, const struct skiff_request *req,
                          struct skiff_sim_log_entry *e, struct skiff_sim_compat_reply *out)
{
    if (req->path_len != 20 || memcmp(req->path, "/v1alpha/auth_tokens", 20) != 0)
        return 0;
    snprintf(e->version, sizeof e->version, "v1alpha");
    snprintf(e->method, sizeof e->method, "authTokens.create");
    memset(out, 0, sizeof *out);
    size_t len;
    const char *k = skiff_http_header(req, "x-goog-api-key", &len);
    if (k) {
        size_t n = len < sizeof e->key - 1 ? len : sizeof e->key - 1;
        memcpy(e->key, k, n);
        e->key[n] = '\0';
        e->has_key = 1;
    }
    if (strcmp(req->method, "POST") != 0) {
        reply_error(out, 404, "NOT_FOUND", "Method not found.");
        return 1;
    }
    if (!e->has_key) {
        reply_error(out, 403, "PERMISSION_DENIED", unregistered);
        return 1;
    }
    if (skiff_sim_conf_key(&sim->conf, e->key) != SKIFF_SIM_KEY_VALID) {
        reply_error(out, 400, "INVALID_ARGUMENT", key_invalid);
        return 1;
    }
    json_t *body = req->body_len ? json_loadb(req->body, req->body_len, 0, NULL) : json_object();
    int bad = 0;
    int64_t now = skiff_now_ms();
    int64_t expire = time_field(body, "expireTime", now + 30 * 60 * 1000, &bad);
    int64_t new_by = time_field(body, "newSessionExpireTime", now + 60 * 1000, &bad);
    const json_t *uses = json_object_get(body, "uses");
    if (!json_is_object(body) || bad ||
        (uses && (!json_is_integer(uses) || json_integer_value(uses) < 0))) {
        json_decref(body);
        reply_error(out, 400, "INVALID_ARGUMENT",
                    bad ? "Invalid value: expireTime and newSessionExpireTime are RFC 3339 "
                          "times, like \"2026-01-01T00:00:00Z\"."
                        : "Invalid JSON payload received.");
        return 1;
    }
    if (expire > now + 20LL * 3600 * 1000 || new_by > now + 20LL * 3600 * 1000) {
        json_decref(body);
        reply_error(out, 400, "INVALID_ARGUMENT",
                    "expireTime and newSessionExpireTime must be less than 20 hours in the "
                    "future.");
        return 1;
    }
    struct skiff_sim_live *l = sim->live;
    struct token *t = &l->tokens[l->next_token];
    l->next_token = (l->next_token + 1) % l->ntokens;
    memset(t, 0, sizeof *t);
    new_name(sim, "auth_tokens/", t->name, sizeof t->name);
    snprintf(t->project, sizeof t->project, "%s", e->key);
    t->expire_ms = expire;
    t->new_by_ms = new_by;
    long n = uses ? (long)json_integer_value(uses) : 1;
    t->uses_left = n == 0 ? -1 : n;
    json_decref(body);
    /* expireTime, newSessionExpireTime and uses are input only: the answer is the name. */
    json_t *j = json_pack("{s:s}", "name", t->name);
    out->status = 200;
    out->content_type = JSON_TYPE;
    out->body = skiff_sim_render_pretty(j, &out->len);
    json_decref(j);
    return 1;
}

/* ---- sessions --------------------------------------------------------------------------- */

enum phase {
    P_OPEN,    /* waiting for setup */
    P_ACTIVE,  /* setupComplete sent */
    P_CLOSING, /* our close frame is queued or sent: waiting for the client's */
};

enum timer_use { T_NONE, T_LIMIT, T_GOAWAY, T_CLOSE_WAIT };

struct session {
    struct session *prev, *next;
    struct sim *sim;
    struct skiff_tunnel *t; /* NULL once the client went away or we closed it */
    wslay_event_context_ptr ws;
    uv_timer_t timer;
    enum timer_use timer_use;
    enum phase phase;
    const char *in; /* the bytes wslay_event_recv is reading (during skiff_sim_live's on_read) */
    size_t in_len;
    uint64_t seq; /* the log entry */
    const char *version;
    int constrained;
    char project[128]; /* the key, or the token's owner */
    char token[64];
    const struct skiff_sim_model *model;
    int resumption; /* setup asked for sessionResumption */
    long context_tokens;
    long turns;
    int paused;         /* reading paused while the client takes our output */
    int ending;         /* end_session ran: the memory waits for the timer's close */
    const char *failed; /* why the session must end without a close frame of ours */
    int hung;           /* a hang fault: setup is never answered */
};

static struct skiff_sim_log_entry *
entry(struct session *s)
{
    return skiff_sim_log_get(&s->sim->log, s->seq);
}

static void
session_free(uv_handle_t *h)
{
    struct session *s = h->data;
    if (s->ws)
        wslay_event_context_free(s->ws);
    free(s);
}

/* The session is over: logs it, lets go of the tunnel, frees it from the loop. */
static void
end_session(struct session *s, const char *why)
{
    if (s->ending)
        return;
    s->ending = 1;
    struct skiff_sim_live *l = s->sim->live;
    if (s->prev)
        s->prev->next = s->next;
    else
        l->sessions = s->next;
    if (s->next)
        s->next->prev = s->prev;
    l->nsessions--;
    struct skiff_sim_log_entry *e = entry(s);
    if (e) {
        int64_t now = skiff_now_ms();
        e->live_closed_ms = now;
        e->duration_ms = now - e->ts_ms;
        e->ended = 1;
        /* A close wslay sent itself (1002 for a broken frame, 1009 for a message too large). */
        if (!e->live_close_code && wslay_event_get_close_sent(s->ws) &&
            !wslay_event_get_close_received(s->ws)) {
            e->live_close_code = wslay_event_get_status_code_sent(s->ws);
            snprintf(e->live_closed_by, sizeof e->live_closed_by, "sim");
        }
        if (!e->live_closed_by[0])
            snprintf(e->live_closed_by, sizeof e->live_closed_by, "%s", why);
        snprintf(e->live_end, sizeof e->live_end, "%s", why);
        e->live_turns = s->turns;
    }
    if (s->t) {
        skiff_tunnel_close(s->t); /* flushes our close frame; no callback after */
        s->t = NULL;
    }
    uv_timer_stop(&s->timer);
    uv_close((uv_handle_t *)&s->timer, session_free);
}

static void on_timer(uv_timer_t *tm);

static void
arm(struct session *s, enum timer_use use, uint64_t ms)
{
    s->timer_use = use;
    uv_timer_start(&s->timer, on_timer, ms, 0);
}

/* Queues one server message (a new reference j is dropped) as a binary frame, Google's. */
static void
send_json(struct session *s, json_t *j)
{
    char *text = j ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(j);
    if (!text) {
        s->failed = "sim: out of memory";
        return;
    }
    struct wslay_event_msg m = {WSLAY_BINARY_FRAME, (const uint8_t *)text, strlen(text)};
    if (wslay_event_queue_msg(s->ws, &m) != 0 && s->phase != P_CLOSING)
        s->failed = "sim: out of memory";
    free(text);
}

/* Ends the session from our side: a close frame with Google's code and reason (cut to fit). */
static void
close_with(struct session *s, int code, const char *reason)
{
    if (s->phase == P_CLOSING)
        return;
    s->phase = P_CLOSING;
    size_t n = strlen(reason);
    if (n > REASON_MAX)
        n = REASON_MAX;
    struct skiff_sim_log_entry *e = entry(s);
    if (e) {
        e->live_close_code = code;
        snprintf(e->live_closed_by, sizeof e->live_closed_by, "sim");
        snprintf(e->live_reason, sizeof e->live_reason, "%.*s", (int)n, reason);
    }
    wslay_event_queue_close(s->ws, (uint16_t)code, (const uint8_t *)reason, n);
    arm(s, T_CLOSE_WAIT, CLOSE_WAIT_MS);
}

/* After wslay has read or been given messages: send, then end what is over. */
static void
after_io(struct session *s)
{
    if (s->ending)
        return;
    if (s->failed) {
        end_session(s, s->failed);
        return;
    }
    if (wslay_event_send(s->ws) != 0) {
        end_session(s, "sim: send failed");
        return;
    }
    if (!wslay_event_want_read(s->ws) && !wslay_event_want_write(s->ws)) {
        /* The close handshake is over (or wslay failed the connection: 1002, 1009). */
        struct skiff_sim_log_entry *e = entry(s);
        if (e && !e->live_closed_by[0] && wslay_event_get_close_received(s->ws))
            snprintf(e->live_closed_by, sizeof e->live_closed_by, "client");
        end_session(s, s->phase == P_CLOSING ? "the client answered our close frame"
                       : wslay_event_get_close_received(s->ws)
                           ? "the client closed the WebSocket"
                           : "sim: a broken frame or a message too large");
    }
}

static void
on_timer(uv_timer_t *tm)
{
    struct session *s = tm->data;
    switch (s->timer_use) {
    case T_LIMIT: {
        /* The session limit: goAway, then the close if the client stays. */
        long ms = s->sim->conf.live_goaway_ms;
        char left[32];
        if (ms % 1000)
            snprintf(left, sizeof left, "%ld.%03lds", ms / 1000, ms % 1000);
        else
            snprintf(left, sizeof left, "%lds", ms / 1000);
        send_json(s, json_pack("{s:{s:s}}", "goAway", "timeLeft", left));
        struct skiff_sim_log_entry *e = entry(s);
        if (e)
            e->live_goaway = 1;
        arm(s, T_GOAWAY, (uint64_t)ms);
        break;
    }
    case T_GOAWAY:
        close_with(s, 1008, goaway_abort);
        break;
    case T_CLOSE_WAIT:
        end_session(s, "sim: the client did not answer the close frame");
        return;
    case T_NONE:
        return;
    }
    after_io(s);
}

/* The model's answer to the session's latest user input (prompt): its text in chunks, then
 * generationComplete, then turnComplete with the turn's usage. */
static void
answer(struct session *s, const struct skiff_sim_prompt *prompt)
{
    s->context_tokens += prompt->tokens;
    s->turns++;
    struct skiff_sim_answer a;
    struct skiff_sim_answer_opts o = {
        .prompt = prompt,
        .max_output_tokens = s->model->output_limit,
        .thinking_budget = 0,
        .model_version = s->model->target,
        .id_seed = skiff_sim_rng_next(&s->sim->rng),
    };
    if (skiff_sim_answer_make(&a, &o) != 0) {
        close_with(s, 1011, "Internal error encountered.");
        return;
    }
    for (size_t i = 0; i < a.nchunks; i++) {
        json_t *text = json_stringn(a.text + a.cuts[i], a.cuts[i + 1] - a.cuts[i]);
        send_json(s, json_pack("{s:{s:{s:[{s:o}]}}}", "serverContent", "modelTurn", "parts", "text",
                               text));
    }
    send_json(s, json_pack("{s:{s:b}}", "serverContent", "generationComplete", 1));
    long out = skiff_sim_answer_tokens(&a, a.len);
    long in = s->context_tokens; /* the whole context is the prompt of every turn */
    json_t *usage = json_pack(
        "{s:I,s:I,s:I,s:[{s:s,s:I}],s:[{s:s,s:I}]}", "promptTokenCount", (json_int_t)in,
        "responseTokenCount", (json_int_t)out, "totalTokenCount", (json_int_t)in + (json_int_t)out,
        "promptTokensDetails", "modality", "TEXT", "tokenCount", (json_int_t)in,
        "responseTokensDetails", "modality", "TEXT", "tokenCount", (json_int_t)out);
    send_json(
        s, json_pack("{s:{s:b},s:o}", "serverContent", "turnComplete", 1, "usageMetadata", usage));
    s->context_tokens += out;
    skiff_sim_answer_release(&a);
    struct skiff_sim_log_entry *e = entry(s);
    if (e) {
        e->live_turns = s->turns;
        e->events++;
    }
}

/* A new resumption handle for the session's state, when setup asked for them. */
static void
resumption_update(struct session *s)
{
    if (!s->resumption)
        return;
    struct skiff_sim_live *l = s->sim->live;
    struct handle *h = &l->handles[l->next_handle];
    l->next_handle = (l->next_handle + 1) % l->ntokens;
    memset(h, 0, sizeof *h);
    new_name(s->sim, "", h->name, sizeof h->name);
    snprintf(h->project, sizeof h->project, "%s", s->project);
    h->context_tokens = s->context_tokens;
    send_json(s, json_pack("{s:{s:s,s:b}}", "sessionResumptionUpdate", "newHandle", h->name,
                           "resumable", 1));
}

/* The close code of an error status, as the Live API maps them: 400 → 1007 (invalid
 * argument), 401/403/404 → 1008 (policy), 429 and 5xx → 1011 (internal). */
static int
close_code(int status)
{
    if (status == 400)
        return 1007;
    if (status == 401 || status == 403 || status == 404)
        return 1008;
    return 1011;
}

/* A scripted reply or a fault for the session's setup: 1 when it decided the session. */
static int
scripted_or_faulted(struct session *s, struct skiff_sim_log_entry *e, const char *id)
{
    struct sim *sim = s->sim;
    struct skiff_sim_reply *r = skiff_sim_script_take(&sim->script, id, s->model->target,
                                                      s->project, "bidiGenerateContent");
    if (r) {
        e->scripted = 1;
        int done = 1;
        if (r->kind == SKIFF_SIM_REPLY_ERROR)
            close_with(s, close_code(r->status),
                       r->message ? r->message : default_message(r->status));
        else if (r->kind == SKIFF_SIM_REPLY_QUOTA)
            close_with(s, 1011, quota_reason);
        else if (r->kind == SKIFF_SIM_REPLY_HANG)
            s->hung = 1;
        else
            done = 0; /* other kinds have no Live form: answered as usual */
        skiff_sim_reply_unref(r);
        return done;
    }
    double u = skiff_sim_rng_unit(&sim->rng);
    enum skiff_sim_fault f = skiff_sim_faults_pick(&sim->conf.faults, id, u);
    if (f == SKIFF_SIM_FAULT_NONE && strcmp(id, s->model->target) != 0)
        f = skiff_sim_faults_pick(&sim->conf.faults, s->model->target, u);
    if (f == SKIFF_SIM_FAULT_NONE)
        return 0;
    e->fault = skiff_sim_fault_name(f);
    switch (f) {
    case SKIFF_SIM_FAULT_429:
        close_with(s, 1011, quota_reason);
        break;
    case SKIFF_SIM_FAULT_HANG:
        s->hung = 1;
        break;
    case SKIFF_SIM_FAULT_RESET:
        s->failed = "sim: reset (fault)"; /* the connection ends without a close frame */
        break;
    case SKIFF_SIM_FAULT_500:
        close_with(s, 1011, "Internal error encountered.");
        break;
    default: /* 503, 504 */
        close_with(s, 1011, "The service is currently unavailable.");
        break;
    }
    return 1;
}

/* The first message: the model, a resumed session, the quota; then setupComplete. */
static void
setup(struct session *s, const json_t *su)
{
    struct sim *sim = s->sim;
    struct skiff_sim_log_entry *e = entry(s);
    const char *model = json_string_value(json_object_get(su, "model"));
    if (!json_is_object(su) || !model) {
        close_with(s, 1007, invalid_argument);
        return;
    }
    const char *id = strncmp(model, "models/", 7) == 0 ? model + 7 : model;
    if (e)
        snprintf(e->model, sizeof e->model, "%s", id);
    const struct skiff_sim_model *m = skiff_sim_catalog_find(id, strlen(id));
    if (!m || !skiff_sim_model_on_version(m, s->version) ||
        !skiff_sim_model_supports(m, "bidiGenerateContent")) {
        char msg[256];
        snprintf(msg, sizeof msg,
                 "%s is not found for API version %s, or is not supported for "
                 "bidiGenerateContent.",
                 model, s->version);
        close_with(s, 1008, msg);
        return;
    }
    s->model = m;
    if (e && scripted_or_faulted(s, e, id))
        return;

    struct skiff_sim_limits lim;
    skiff_sim_conf_limits(&sim->conf, m->target, &lim);
    int64_t now = skiff_now_ms();
    struct skiff_sim_verdict v;
    skiff_sim_quota_check(sim->quota, s->project, m->target, &lim, 0, now, &v);
    if (v.n) {
        close_with(s, 1011, quota_reason);
        return;
    }

    const json_t *sr = json_object_get(su, "sessionResumption");
    if (sr) {
        s->resumption = 1;
        const char *h = json_string_value(json_object_get(sr, "handle"));
        if (h && *h) {
            /* A handle resumes only the session state of its own project. */
            struct handle *hd = find_handle(sim->live, h);
            if (!hd || strcmp(hd->project, s->project) != 0) {
                close_with(s, 1008, "Session not found.");
                return;
            }
            s->context_tokens = hd->context_tokens;
            if (e)
                e->live_resumed = 1;
        }
    }
    skiff_sim_quota_spend(sim->quota, s->project, m->target, 0, now);
    s->phase = P_ACTIVE;
    send_json(s, json_pack("{s:{}}", "setupComplete"));
    resumption_update(s);
}

/* clientContent: turns join the context; turnComplete asks for the answer. */
static void
client_content(struct session *s, const json_t *cc)
{
    const json_t *turns = json_object_get(cc, "turns");
    if (!json_is_object(cc) || (turns && !json_is_array(turns))) {
        close_with(s, 1007, invalid_argument);
        return;
    }
    struct skiff_sim_prompt p;
    skiff_sim_prompt_read(turns, NULL, &p);
    if (!json_is_true(json_object_get(cc, "turnComplete"))) {
        s->context_tokens += p.tokens;
        return;
    }
    answer(s, &p);
    resumption_update(s);
}

/* realtimeInput: text is a user turn answered at once; audio and video are not modelled. */
static void
realtime_input(struct session *s, const json_t *ri)
{
    const char *text = json_string_value(json_object_get(ri, "text"));
    if (!json_is_object(ri)) {
        close_with(s, 1007, invalid_argument);
        return;
    }
    if (!text)
        return;
    json_t *contents = json_pack("[{s:s,s:[{s:s}]}]", "role", "user", "parts", "text", text);
    struct skiff_sim_prompt p;
    skiff_sim_prompt_read(contents, NULL, &p);
    json_decref(contents);
    answer(s, &p);
    resumption_update(s);
}

/* One client message (a text or binary frame holding JSON). */
static void
message(struct session *s, const uint8_t *data, size_t len)
{
    if (s->phase == P_CLOSING || s->hung)
        return;
    struct skiff_sim_log_entry *e = entry(s);
    if (e) {
        e->body_bytes += len;
        e->body_fnv = skiff_fnv1a64(e->body_fnv ? e->body_fnv : SKIFF_FNV64_BASIS, data, len);
    }
    json_t *j = json_loadb((const char *)data, len, 0, NULL);
    if (!json_is_object(j)) {
        json_decref(j);
        close_with(s, 1007, invalid_argument);
        return;
    }
    const json_t *su = json_object_get(j, "setup");
    if (s->phase == P_OPEN) {
        if (su)
            setup(s, su);
        else
            close_with(s, 1007, invalid_argument);
    } else if (su) {
        close_with(s, 1007, invalid_argument); /* setup comes once */
    } else if (json_object_get(j, "clientContent")) {
        client_content(s, json_object_get(j, "clientContent"));
    } else if (json_object_get(j, "realtimeInput")) {
        realtime_input(s, json_object_get(j, "realtimeInput"));
    } else if (!json_object_get(j, "toolResponse")) {
        close_with(s, 1007, invalid_argument);
    }
    json_decref(j);
}

/* ---- wslay's callbacks ---- */

static ssize_t
ws_recv(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags, void *data)
{
    struct session *s = data;
    if (s->in_len == 0) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    size_t n = len < s->in_len ? len : s->in_len;
    memcpy(buf, s->in, n);
    s->in += n;
    s->in_len -= n;
    return (ssize_t)n;
}

static ssize_t
ws_send(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags, void *user)
{
    struct session *s = user;
    if (!s->t) {
        wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
        return -1;
    }
    size_t queued = skiff_tunnel_write(s->t, data, len);
    if (queued > MAX_QUEUED && !s->paused) {
        s->paused = 1; /* the client reads slowly: read no more from it until it drains */
        skiff_tunnel_pause(s->t);
    }
    return (ssize_t)len;
}

static void
ws_msg(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg, void *data)
{
    struct session *s = data;
    if (arg->opcode == WSLAY_TEXT_FRAME || arg->opcode == WSLAY_BINARY_FRAME)
        message(s, arg->msg, arg->msg_length);
    else if (arg->opcode == WSLAY_CONNECTION_CLOSE && s->phase != P_CLOSING) {
        struct skiff_sim_log_entry *e = entry(s);
        if (e) {
            e->live_close_code = arg->status_code;
            snprintf(e->live_closed_by, sizeof e->live_closed_by, "client");
        }
    }
}

static const struct wslay_event_callbacks ws_callbacks = {
    .recv_callback = ws_recv,
    .send_callback = ws_send,
    .on_msg_recv_callback = ws_msg,
};

/* ---- the tunnel's callbacks ---- */

static void
t_read(struct skiff_tunnel *t, const char *data, size_t len)
{
    struct session *s = skiff_tunnel_data(t);
    s->in = data;
    s->in_len = len;
    if (wslay_event_recv(s->ws) != 0)
        s->failed = "sim: out of memory reading a frame";
    s->in = NULL;
    s->in_len = 0;
    after_io(s);
}

static void
t_drain(struct skiff_tunnel *t)
{
    struct session *s = skiff_tunnel_data(t);
    if (s->paused) {
        s->paused = 0;
        skiff_tunnel_resume(t);
    }
}

static void
t_close(struct skiff_tunnel *t, const char *why)
{
    struct session *s = skiff_tunnel_data(t);
    s->t = NULL; /* freed once this returns */
    struct skiff_sim_log_entry *e = entry(s);
    if (e && !e->live_closed_by[0])
        snprintf(e->live_closed_by, sizeof e->live_closed_by, "client");
    end_session(s, why); /* the connection ended ("client closed", a read error) */
}

static const struct skiff_tunnel_ops tunnel_ops = {
    .on_read = t_read,
    .on_drain = t_drain,
    .on_close = t_close,
};

/* ---- the handshake ---- */

/*
 * The credential of the session, read from the handshake (before the upgrade: req is not the
 * simulator's after it): sets s->project and the log's key. Returns 0, or the close code that
 * refuses the session once it is open (as Google does: the socket opens, then closes) with
 * *reason.
 */
static int
judge_credential(struct session *s, const struct skiff_request *req, const char **reason)
{
    struct sim *sim = s->sim;
    struct skiff_sim_log_entry *e = entry(s);
    if (s->constrained) {
        char tok[64] = "";
        if (skiff_http_query(req, "access_token", tok, sizeof tok) < 0) {
            *reason = unregistered;
            return 1008;
        }
        snprintf(s->token, sizeof s->token, "%s", tok);
        if (e)
            snprintf(e->live_token, sizeof e->live_token, "%s", tok);
        struct token *t = find_token(sim->live, tok);
        int64_t now = skiff_now_ms();
        if (!t) {
            *reason = "The auth token is not valid.";
            return 1008;
        }
        snprintf(s->project, sizeof s->project, "%s", t->project);
        if (e) {
            snprintf(e->key, sizeof e->key, "%s", t->project);
            e->has_key = 1;
        }
        if (now > t->expire_ms || now > t->new_by_ms || t->uses_left == 0) {
            *reason = "The auth token has expired or has been used up.";
            return 1008;
        }
        if (t->uses_left > 0)
            t->uses_left--;
        return 0;
    }
    char key[128] = "";
    int has = 0;
    size_t len;
    const char *h = skiff_http_header(req, "x-goog-api-key", &len);
    if (h) {
        snprintf(key, sizeof key, "%.*s", (int)(len < sizeof key - 1 ? len : sizeof key - 1), h);
        has = 1;
    } else if (skiff_http_query(req, "key", key, sizeof key) >= 0) {
        has = 1;
    }
    if (e) {
        snprintf(e->key, sizeof e->key, "%s", key);
        e->has_key = has;
    }
    snprintf(s->project, sizeof s->project, "%s", key);
    if (!has) {
        *reason = unregistered;
        return 1008;
    }
    switch (skiff_sim_conf_key(&sim->conf, key)) {
    case SKIFF_SIM_KEY_VALID:
        return 0;
    case SKIFF_SIM_KEY_REGION_BLOCKED:
        *reason = "User location is not supported for the API use.";
        return 1007;
    case SKIFF_SIM_KEY_DENIED:
        *reason = "The caller does not have permission";
        return 1008;
    case SKIFF_SIM_KEY_INVALID:
        break;
    }
    *reason = key_invalid;
    return 1007;
}

void
skiff_sim_live_accept(struct sim *sim, struct skiff_request *req)
{
    const char *version = "v1beta";
    enum skiff_live_kind kind = skiff_live_path(req->path, req->path_len, &version);
    struct skiff_sim_log_entry *e = skiff_sim_log_add(&sim->log);
    e->ts_ms = skiff_now_ms();
    e->live = 1;
    snprintf(e->http_method, sizeof e->http_method, "%s", req->method);
    snprintf(e->path, sizeof e->path, "%.*s", (int)req->path_len, req->path);
    snprintf(e->version, sizeof e->version, "%s", version);
    snprintf(e->method, sizeof e->method, "%s",
             kind == SKIFF_LIVE_CONSTRAINED ? "bidiGenerateContentConstrained"
                                            : "bidiGenerateContent");
    const char *msg;
    int status = skiff_ws_check(req, &msg);
    struct skiff_sim_live *l = sim->live;
    if (!status && l->nsessions >= l->max_sessions) {
        status = 503;
        msg = "The service is currently unavailable.";
    }
    if (status) {
        e->status = status;
        e->ended = 1;
        skiff_gerr_respond(req, status, NULL, msg, NULL);
        return;
    }
    struct session *s = calloc(1, sizeof *s);
    if (!s || wslay_event_context_server_init(&s->ws, &ws_callbacks, s) != 0) {
        free(s);
        e->status = 500;
        skiff_gerr_respond(req, 500, NULL, "Internal error encountered.", NULL);
        return;
    }
    wslay_event_config_set_max_recv_msg_length(s->ws, MAX_MESSAGE);
    s->sim = sim;
    s->seq = e->seq;
    s->version = version;
    s->constrained = kind == SKIFF_LIVE_CONSTRAINED;
    const char *reason = NULL;
    int refused = judge_credential(s, req, &reason);
    uv_timer_init(skiff_http_loop(req), &s->timer);
    s->timer.data = s;
    s->t = skiff_ws_upgrade(req, &tunnel_ops, s);
    if (!s->t) {
        wslay_event_context_free(s->ws);
        s->ws = NULL;
        uv_close((uv_handle_t *)&s->timer, session_free);
        e->status = 500;
        skiff_gerr_respond(req, 500, NULL, "Internal error encountered.", NULL);
        return;
    }
    e->status = 101;
    e->live_opened_ms = e->ts_ms;
    s->next = l->sessions;
    if (l->sessions)
        l->sessions->prev = s;
    l->sessions = s;
    l->nsessions++;
    if (refused)
        close_with(s, refused, reason);
    else if (sim->conf.live_session_ms > 0)
        arm(s, T_LIMIT, (uint64_t)sim->conf.live_session_ms);
    after_io(s);
}
