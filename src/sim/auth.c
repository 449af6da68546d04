#include "sim/auth.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "gemini/error.h"
#include "server/http.h"
#include "sim/simconf.h"

/* Reads the key (header first, then ?key=) and notes a Bearer credential. */
void
read_credentials(const struct skiff_request *req, struct call *c)
{
    size_t len;
    const char *h = skiff_http_header(req, "x-goog-api-key", &len);
    if (h) {
        size_t n = len < sizeof c->key - 1 ? len : sizeof c->key - 1;
        memcpy(c->key, h, n);
        c->key[n] = '\0';
        c->has_key = 1;
    } else if (skiff_http_query(req, "key", c->key, sizeof c->key) >= 0) {
        c->has_key = 1;
    }
    const char *auth = skiff_http_header(req, "authorization", &len);
    c->bearer = auth && len >= 7 && strncasecmp(auth, "Bearer ", 7) == 0;
}

/* Google's answer for a key that may not call; 0 when the key is good. */
int
plan_auth(struct sim_req *sr, const struct call *c)
{
    int arr = is_stream_array(c);
    if (c->bearer) {
        plan_error(sr, 401, "UNAUTHENTICATED", default_message(401), NULL, arr);
        return -1;
    }
    if (!c->has_key) {
        plan_error(sr, 403, "PERMISSION_DENIED",
                   "Method doesn't allow unregistered callers (callers without established "
                   "identity). Please use API Key or other form of API consumer identity to call "
                   "this API.",
                   NULL, arr);
        return -1;
    }
    switch (skiff_sim_conf_key(&sr->sim->conf, c->key)) {
    case SKIFF_SIM_KEY_VALID:
        return 0;
    case SKIFF_SIM_KEY_REGION_BLOCKED:
        plan_error(sr, 400, "FAILED_PRECONDITION",
                   "User location is not supported for the API use.", NULL, arr);
        return -1;
    case SKIFF_SIM_KEY_DENIED:
        plan_error(sr, 403, "PERMISSION_DENIED", "The caller does not have permission", NULL, arr);
        return -1;
    case SKIFF_SIM_KEY_INVALID: {
        const char *msg = "API key not valid. Please pass a valid API key.";
        json_t *d = json_array();
        json_array_append_new(
            d, skiff_gerr_error_info(
                   "API_KEY_INVALID", "googleapis.com",
                   json_pack("{s:s}", "service", "generativelanguage.googleapis.com")));
        json_array_append_new(d, skiff_gerr_localized(msg));
        plan_error(sr, 400, "INVALID_ARGUMENT", msg, d, arr);
        return -1;
    }
    }
    return -1;
}
