/*
 * Tenancy: a stored resource is the token's that created it (doors/gemini/tenancy.h).
 */
#include "doors/gemini/tenancy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "base/clock.h"
#include "doors/gemini/resources.h"
#include "relay/keypool.h"
#include "relay/uprequest.h"
#include "state/affinity.h"

#define TAG_PREFIX "token:"
#define TOKEN_PREFIX "skf1."
#define MAX_UP_TOKEN 1000 /* upstream page token bytes skiff wraps (Google's are ~100) */

const char *
skiff_tenancy_tag(const struct skiff_config *cfg, const char *who, char *out, size_t cap)
{
    if (!cfg->ntokens || !who) {
        out[0] = '\0';
        return NULL;
    }
    snprintf(out, cap, TAG_PREFIX "%s", who);
    return out;
}

/* Whether name is recorded as created by another tag than mine (an entry without a creator
 * is the operator's: anyone's). */
static int
foreign(const char *name, const char *mine)
{
    char label[SKIFF_AFFINITY_MAX_LABEL], value[SKIFF_AFFINITY_MAX_VALUE];
    if (skiff_affinity_get(name, skiff_now_ms(), label, sizeof label, value, sizeof value) != 0)
        return 0;
    if (strncmp(value, TAG_PREFIX, strlen(TAG_PREFIX)) != 0)
        return 0;
    return strcmp(value, mine) != 0;
}

struct ref_ctx {
    const char *mine;
    char name[SKIFF_AFFINITY_MAX_NAME + 64];
};

static int
ref_foreign(const char *name, void *ctx)
{
    struct ref_ctx *c = ctx;
    if (!foreign(name, c->mine))
        return 0;
    snprintf(c->name, sizeof c->name, "%s", name);
    return 1;
}

static int
hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* The client's pageToken (raw) -> list; 0, or -1 when skiff did not issue it. */
static int
parse_token(const char *t, size_t n, size_t nkeys, struct skiff_tenancy_list *list)
{
    size_t pl = strlen(TOKEN_PREFIX);
    if (n < pl + 2 || memcmp(t, TOKEN_PREFIX, pl) != 0)
        return -1;
    size_t i = pl;
    long k = 0;
    if (t[i] < '0' || t[i] > '9')
        return -1;
    for (; i < n && t[i] >= '0' && t[i] <= '9' && k < 100000; i++)
        k = k * 10 + (t[i] - '0');
    if (i >= n || t[i] != '.' || (size_t)k >= nkeys)
        return -1;
    i++;
    size_t hl = n - i;
    if (hl % 2 || hl / 2 > MAX_UP_TOKEN)
        return -1;
    char *o = list->up_token;
    for (size_t j = 0; j < hl; j += 2) {
        if (hexval(t[i + j]) < 0 || hexval(t[i + j + 1]) < 0)
            return -1;
        /* Sent %-encoded, so the query builder's decode gives the upstream's bytes back. */
        *o++ = '%';
        *o++ = t[i + j];
        *o++ = t[i + j + 1];
    }
    *o = '\0';
    list->key = (int)k;
    return 0;
}

int
skiff_tenancy_refuse(const struct skiff_config *cfg, const struct skiff_keypool *pool,
                     const struct skiff_request *req, const struct skiff_route *rt, const char *who,
                     struct skiff_tenancy_list *list, const char **gstatus, char *msg, size_t cap)
{
    /* Not the whole struct (~6 KB a request): its strings are all that is read of it. */
    list->active = list->key = 0;
    list->tag[0] = list->up_token[0] = '\0';
    char mine[SKIFF_TENANCY_MAX_TAG];
    if (!skiff_tenancy_tag(cfg, who, mine, sizeof mine))
        return 0;
    if (rt->kind == SKIFF_ROUTE_GENERATE) {
        /* Google answers a generation naming a file or cache that does not exist (or is
         * another project's) with 403 PERMISSION_DENIED in these words; another token's
         * resource gets the very same answer, so a client cannot tell it from a missing one,
         * and its SDK and retry logic see what they would see from Google. */
        struct ref_ctx c = {.mine = mine};
        if (!skiff_gemini_body_refs(req->body, req->body_len, ref_foreign, &c))
            return 0;
        *gstatus = "PERMISSION_DENIED";
        if (strncmp(c.name, "cachedContents/", 15) == 0)
            snprintf(msg, cap, "CachedContent not found (or permission denied)");
        else
            snprintf(msg, cap,
                     "You do not have permission to access the File %s or it may not exist.",
                     c.name + 6);
        return 403;
    }
    if (rt->kind != SKIFF_ROUTE_RESOURCE || rt->res == SKIFF_RES_UPLOAD)
        return 0; /* an upload chunk names skiff's session, an unguessable 128-bit id */
    if (rt->res_id) {
        char name[SKIFF_AFFINITY_MAX_NAME + 64];
        skiff_route_res_name(rt, name, sizeof name);
        if (!name[0] || !foreign(name, mine))
            return 0;
        /* As if it did not exist: Google's 404 for a name no project has. */
        *gstatus = "NOT_FOUND";
        snprintf(msg, cap, "Requested entity was not found.");
        return 404;
    }
    if (strcmp(rt->http_verb, "GET") != 0)
        return 0; /* a create: learn records the creator */
    list->active = 1;
    snprintf(list->tag, sizeof list->tag, "%s", mine);
    char tok[2 * 2048 + 64];
    int tl = skiff_http_query(req, "pageToken", tok, sizeof tok);
    if (tl > 0 && parse_token(tok, strlen(tok), skiff_keypool_size(pool), list) != 0) {
        *gstatus = "INVALID_ARGUMENT";
        snprintf(msg, cap,
                 "The pageToken is not one skiff issued (with client tokens, skiff "
                 "lists the caller's resources key by key and issues its own "
                 "nextPageToken): pass the nextPageToken of the previous page, or "
                 "none for the first page.");
        return 400;
    }
    return 0;
}

int
skiff_tenancy_list_answer(struct skiff_request *req, const struct skiff_keypool *pool,
                          const struct skiff_route *rt, const struct skiff_tenancy_list *list,
                          const struct skiff_engine_answer *a)
{
    if (!list->active || a->status / 100 != 2)
        return 0;
    json_t *j = a->len ? json_loadb(a->body, a->len, 0, NULL) : json_object();
    if (!json_is_object(j)) {
        json_decref(j);
        return 0;
    }
    static const char *const fields[] = {"files", "cachedContents", "batches", "operations"};
    for (size_t f = 0; f < 4; f++) {
        json_t *arr = json_object_get(j, fields[f]);
        if (!json_is_array(arr))
            continue;
        for (size_t i = json_array_size(arr); i-- > 0;) {
            const char *name = json_string_value(json_object_get(json_array_get(arr, i), "name"));
            char label[SKIFF_AFFINITY_MAX_LABEL], value[SKIFF_AFFINITY_MAX_VALUE];
            int mine = name &&
                       skiff_affinity_get(name, skiff_now_ms(), label, sizeof label, value,
                                          sizeof value) == 0 &&
                       strcmp(value, list->tag) == 0;
            if (!mine)
                json_array_remove(arr, i);
        }
        if (json_array_size(arr) == 0)
            json_object_del(j, fields[f]); /* Google leaves an empty list out */
    }
    /* Where the walk goes next: this key's next page, or the next key's first. */
    const char *up = json_string_value(json_object_get(j, "nextPageToken"));
    size_t ul = up ? strlen(up) : 0;
    char next[sizeof TOKEN_PREFIX + 24 + 2 * MAX_UP_TOKEN];
    next[0] = '\0';
    if (ul > 0 && ul <= MAX_UP_TOKEN) {
        int n = snprintf(next, sizeof next, TOKEN_PREFIX "%d.", list->key);
        for (size_t i = 0; i < ul; i++)
            n += snprintf(next + n, sizeof next - (size_t)n, "%02x", (unsigned char)up[i]);
    } else if ((size_t)list->key + 1 < skiff_keypool_size(pool)) {
        snprintf(next, sizeof next, TOKEN_PREFIX "%d.", list->key + 1);
    }
    if (next[0])
        json_object_set_new(j, "nextPageToken", json_string(next));
    else
        json_object_del(j, "nextPageToken");
    char *out = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    if (!out)
        return 0;
    skiff_http_respond(req, a->status, "application/json; charset=UTF-8", out, strlen(out));
    free(out);
    (void)rt;
    return 1;
}
