/*
 * Tenancy: a stored resource is the token's that created it (doors/gemini/tenancy.h).
 */
#include "doors/gemini/tenancy.h"

#include <stdio.h>
#include <stdlib.h>
#include <stddef.h>
#include <string.h>

#include <jansson.h>

#include "base/clock.h"
#include "doors/gemini/resources.h"
#include "relay/keypool.h"
#include "relay/uprequest.h"
#include "state/affinity.h"

#define TAG_PREFIX "token:"
#define TOKEN_PREFIX "skf1."
#define MAX_UP_TOKEN SKIFF_TENANCY_MAX_UP_TOKEN

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
    /* Not the whole struct (~6 KB a request): the fields before the buffers, and the
     * buffers' first bytes (a string is all that is read of each). */
    memset(list, 0, offsetof(struct skiff_tenancy_list, tag));
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

/* list's position as skiff's page token into out (cap >= SKIFF_TENANCY_MAX_TOKEN): the key,
 * then the upstream's token in hex (list->up_token is it %-encoded: its hex digits). */
static void
position_token(const struct skiff_tenancy_list *list, char *out, size_t cap)
{
    int n = snprintf(out, cap, TOKEN_PREFIX "%d.", list->key);
    for (const char *p = list->up_token; *p && (size_t)n + 1 < cap; p++)
        if (*p != '%')
            out[n++] = *p;
    out[n] = '\0';
}

/* Moves list to key's page after the upstream token up (n bytes; n 0: key's first page). */
static void
set_position(struct skiff_tenancy_list *list, int key, const char *up, size_t n)
{
    char *o = list->up_token;
    for (size_t i = 0; i < n; i++)
        o += snprintf(o, 4, "%%%02x", (unsigned char)up[i]);
    *o = '\0';
    list->key = key;
}

/* Answers page (a JSON object, stolen) with token as its nextPageToken (NULL: none). */
static void
answer_page(struct skiff_request *req, json_t *page, const char *token)
{
    if (token)
        json_object_set_new(page, "nextPageToken", json_string(token));
    char *out = json_dumps(page, JSON_COMPACT);
    json_decref(page);
    if (!out) {
        skiff_http_respond(req, 500, "application/json; charset=UTF-8", "{}", 2);
        return;
    }
    skiff_http_respond(req, 200, "application/json; charset=UTF-8", out, strlen(out));
    free(out);
}

/* The page the walk found before it looked ahead, as a JSON object (new reference). */
static json_t *
take_held(struct skiff_tenancy_list *list)
{
    json_t *j = json_loads(list->held, 0, NULL);
    free(list->held);
    list->held = NULL;
    return json_is_object(j) ? j : (json_decref(j), json_object());
}

int
skiff_tenancy_list_answer(struct skiff_request *req, const struct skiff_keypool *pool,
                          const struct skiff_route *rt, struct skiff_tenancy_list *list,
                          const struct skiff_engine_answer *a)
{
    if (!list->active || a->status / 100 != 2)
        return SKIFF_TENANCY_PASS;
    json_t *j = a->len ? json_loadb(a->body, a->len, 0, NULL) : json_object();
    if (!json_is_object(j)) {
        json_decref(j);
        return SKIFF_TENANCY_PASS;
    }
    list->calls++;
    size_t mine_n = 0;
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
        mine_n += json_array_size(arr);
        if (json_array_size(arr) == 0)
            json_object_del(j, fields[f]); /* Google leaves an empty list out */
    }
    /* Where the walk goes next: this key's next page, the next key's first, or nowhere. */
    char here[SKIFF_TENANCY_MAX_TOKEN], next[SKIFF_TENANCY_MAX_TOKEN];
    position_token(list, here, sizeof here);
    const char *up = json_string_value(json_object_get(j, "nextPageToken"));
    size_t ul = up ? strlen(up) : 0;
    struct skiff_tenancy_list to = *list;
    int more = 1;
    if (ul > 0 && ul <= MAX_UP_TOKEN)
        set_position(&to, list->key, up, ul);
    else if ((size_t)list->key + 1 < skiff_keypool_size(pool))
        set_position(&to, list->key + 1, NULL, 0);
    else
        more = 0;
    position_token(&to, next, sizeof next);
    json_object_del(j, "nextPageToken");
    int spent = list->calls >= SKIFF_TENANCY_MAX_WALK;
    if (list->held) {
        /* Looking ahead from a page already found: it is answered, with a token only when
         * more of the caller's follow (the page that has them is asked again then). */
        json_decref(j);
        if (mine_n || !more || spent) {
            answer_page(req, take_held(list), mine_n ? here : more ? next : NULL);
            return SKIFF_TENANCY_ANSWERED;
        }
    } else if (!more || spent) {
        answer_page(req, j, more ? next : NULL);
        return SKIFF_TENANCY_ANSWERED;
    } else if (mine_n) {
        list->held = json_dumps(j, JSON_COMPACT);
        json_decref(j);
        if (!list->held) {
            answer_page(req, json_object(), here);
            return SKIFF_TENANCY_ANSWERED;
        }
    } else {
        json_decref(j);
    }
    list->key = to.key;
    memcpy(list->up_token, to.up_token, sizeof list->up_token);
    (void)rt;
    return SKIFF_TENANCY_NEXT;
}

void
skiff_tenancy_list_end(struct skiff_request *req, struct skiff_tenancy_list *list)
{
    char here[SKIFF_TENANCY_MAX_TOKEN];
    position_token(list, here, sizeof here);
    answer_page(req, list->held ? take_held(list) : json_object(), here);
}

void
skiff_tenancy_list_release(struct skiff_tenancy_list *list)
{
    free(list->held);
    list->held = NULL;
}
