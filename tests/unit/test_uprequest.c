/*
 * What goes upstream (relay/uprequest.c): the allowlisted headers and query parameters, the
 * path built from the route, the key header; the query's checks; the response headers a
 * client may see; the forward_headers config; and URL redaction (url.c), which every place
 * that prints an upstream or proxy URL uses.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config/config.h"
#include "base/err.h"
#include "relay/keypool.h"
#include "relay/uprequest.h"
#include "gemini/router.h"
#include "base/url.h"

#define KEY "AIzaSyUprequestTestKey00000000000000001"

static struct skiff_config *
load(const char *yaml, char *err, size_t errlen)
{
    char path[] = "/tmp/skiff-test-uprequest-XXXXXX.yaml";
    int fd = mkstemps(path, 5);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, yaml, strlen(yaml)), (ssize_t)strlen(yaml));
    close(fd);
    unsetenv("GEMINI_API_KEYS");
    unsetenv("SKIFF_TOKENS");
    unsetenv("SKIFF_LISTEN");
    unsetenv("SKIFF_GEMINI_BASE_URL");
    struct skiff_config *cfg = skiff_config_load(path, err, errlen);
    unlink(path);
    return cfg;
}

static struct skiff_config *
config(const char *extra)
{
    char yaml[1024], err[512];
    snprintf(yaml, sizeof yaml,
             "upstreams:\n  gemini:\n    base_url: http://127.0.0.1:9/\n    keys: [" KEY "]\n%s",
             extra);
    struct skiff_config *cfg = load(yaml, err, sizeof err);
    if (!cfg)
        fail_msg("%s", err);
    return cfg;
}

/* A request as the HTTP layer hands it over; headers are "name", "value" pairs. */
static void
request(struct skiff_request *req, const char *method, const char *path, const char *query,
        const char *const *hdrs)
{
    memset(req, 0, sizeof *req);
    req->method = method;
    req->path = path;
    req->path_len = strlen(path);
    req->query = query;
    req->query_len = strlen(query);
    for (int i = 0; hdrs && hdrs[2 * i]; i++) {
        req->headers[i] =
            (struct skiff_header){hdrs[2 * i], hdrs[2 * i + 1], (uint32_t)strlen(hdrs[2 * i]),
                                  (uint32_t)strlen(hdrs[2 * i + 1])};
        req->nheaders = i + 1;
    }
    skiff_buf_init(&req->out_hdrs, 64 * 1024);
}

/* Builds the upstream request for req and returns its header lines joined by '\n'. */
static int
build(const struct skiff_config *cfg, struct skiff_request *req, const char *model,
      struct skiff_uprequest *u, char *lines, size_t cap)
{
    struct skiff_route rt;
    skiff_route(req->method, req->path, req->path_len, &rt);
    struct skiff_upquery q;
    char msg[256];
    assert_int_equal(skiff_upquery_parse(req->query, req->query_len, &rt, &q, msg, sizeof msg), 0);
    int rc = skiff_uprequest_build(u, cfg, req, &rt, &q, model ? model : "gemini-2.5-flash", KEY);
    size_t o = 0;
    lines[0] = '\0';
    for (int i = 0; rc == 0 && u->headers[i]; i++)
        o += (size_t)snprintf(lines + o, cap - o, "%s\n", u->headers[i]);
    return rc;
}

static void
test_headers_from_the_allowlist_only(void **state)
{
    struct skiff_config *cfg = config("");
    const char *hdrs[] = {"Host",
                          "skiff.local",
                          "Content-Type",
                          "application/json",
                          "User-Agent",
                          "google-genai-sdk/1.0 gl-node/v22",
                          "x-goog-api-client",
                          "google-genai-sdk/1.0 gl-node/v22",
                          "Accept",
                          "*/*",
                          "traceparent",
                          "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
                          "X-Goog-User-Project",
                          "not-mine",
                          "X-HTTP-Method-Override",
                          "DELETE",
                          "x-goog-api-key",
                          "sk-the-clients-skiff-token",
                          "Authorization",
                          "Bearer sk-the-clients-skiff-token",
                          "Authorization ",
                          "Bearer sk-the-clients-skiff-token",
                          "Cookie",
                          "a=b",
                          "x-skiff-deadline-ms",
                          "1000",
                          "X-Server-Timeout",
                          "5",
                          "Accept-Encoding",
                          "gzip",
                          "Transfer-Encoding",
                          "chunked",
                          NULL};
    struct skiff_request req;
    request(&req, "POST", "/v1beta/models/gemini-2.5-flash:generateContent", "", hdrs);
    struct skiff_uprequest u;
    char lines[4096];
    assert_int_equal(build(cfg, &req, NULL, &u, lines, sizeof lines), 0);
    assert_string_equal(u.url, "http://127.0.0.1:9/v1beta/models/gemini-2.5-flash:generateContent");
    assert_string_equal(lines,
                        "Content-Type: application/json\n"
                        "User-Agent: google-genai-sdk/1.0 gl-node/v22\n"
                        "x-goog-api-client: google-genai-sdk/1.0 gl-node/v22\n"
                        "Accept: */*\n"
                        "traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\n"
                        "x-goog-api-key: " KEY "\n");
    skiff_uprequest_wipe(&u);
    skiff_buf_release(&req.out_hdrs);
    skiff_config_free(cfg);
}

/* Google's OpenAI-compatible endpoint: its own path, the pool key as a Bearer token (the
 * client's Authorization never goes), no query. */
static void
test_compat_bearer(void **state)
{
    struct skiff_config *cfg = config("");
    const char *hdrs[] = {"Content-Type",
                          "application/json",
                          "Authorization",
                          "Bearer sk-the-clients-skiff-token",
                          "x-goog-api-key",
                          "sk-the-clients-skiff-token",
                          "x-stainless-lang",
                          "js",
                          NULL};
    struct skiff_request req;
    request(&req, "POST", "/v1beta/openai/chat/completions", "key=sk-x&alt=sse", hdrs);
    struct skiff_uprequest u;
    char lines[4096];
    assert_int_equal(build(cfg, &req, NULL, &u, lines, sizeof lines), 0);
    assert_string_equal(u.url, "http://127.0.0.1:9/v1beta/openai/chat/completions");
    assert_string_equal(lines, "Content-Type: application/json\n"
                               "authorization: Bearer " KEY "\n");
    skiff_uprequest_wipe(&u);
    skiff_buf_release(&req.out_hdrs);
    request(&req, "POST", "/v1alpha/auth_tokens", "", NULL);
    assert_int_equal(build(cfg, &req, NULL, &u, lines, sizeof lines), 0);
    assert_string_equal(u.url, "http://127.0.0.1:9/v1alpha/auth_tokens");
    assert_string_equal(lines, "content-type: application/json\nx-goog-api-key: " KEY "\n");
    skiff_uprequest_wipe(&u);
    skiff_buf_release(&req.out_hdrs);
    request(&req, "GET", "/v1beta/openai/models/models%2Fgemini-2.5-flash", "", NULL);
    assert_int_equal(build(cfg, &req, NULL, &u, lines, sizeof lines), 0);
    assert_string_equal(u.url, "http://127.0.0.1:9/v1beta/openai/models/gemini-2.5-flash");
    assert_string_equal(lines, "authorization: Bearer " KEY "\n");
    skiff_uprequest_wipe(&u);
    skiff_buf_release(&req.out_hdrs);
    skiff_config_free(cfg);
}

static void
test_connection_named_and_control_bytes_dropped(void **state)
{
    struct skiff_config *cfg = config("");
    const char *hdrs[] = {"Connection",
                          "keep-alive, User-Agent",
                          "User-Agent",
                          "x",
                          "Accept",
                          "a\x01"
                          "b",
                          "traceparent",
                          "t",
                          "tracestate",
                          "s",
                          "connection",
                          "TraceState", /* a second Connection header counts too */
                          NULL};
    struct skiff_request req;
    request(&req, "POST", "/v1beta/models/gemini-2.5-flash:countTokens", "", hdrs);
    struct skiff_uprequest u;
    char lines[4096];
    assert_int_equal(build(cfg, &req, NULL, &u, lines, sizeof lines), 0);
    /* No content-type from the client: JSON is said for it. */
    assert_string_equal(lines, "traceparent: t\ncontent-type: application/json\n"
                               "x-goog-api-key: " KEY "\n");
    skiff_uprequest_wipe(&u);
    assert_null(u.buf.data);
    skiff_buf_release(&req.out_hdrs);
    skiff_config_free(cfg);
}

static void
test_forward_headers_config(void **state)
{
    struct skiff_config *cfg =
        config("    forward_headers: [X-Goog-User-Project, x-server-timeout]\n");
    assert_int_equal(cfg->nforward_headers, 2);
    const char *hdrs[] = {
        "x-goog-user-project", "mine", "X-Server-Timeout", "30", "X-Other", "no", NULL};
    struct skiff_request req;
    request(&req, "GET", "/v1beta/models", "", hdrs);
    struct skiff_uprequest u;
    char lines[4096];
    assert_int_equal(build(cfg, &req, NULL, &u, lines, sizeof lines), 0);
    assert_string_equal(u.url, "http://127.0.0.1:9/v1beta/models");
    assert_string_equal(
        lines, "x-goog-user-project: mine\nX-Server-Timeout: 30\nx-goog-api-key: " KEY "\n");
    skiff_uprequest_wipe(&u);
    skiff_buf_release(&req.out_hdrs);
    skiff_config_free(cfg);

    /* Names that may never be listed are config errors that say why. */
    const struct {
        const char *name, *why;
    } bad[] = {
        {"Authorization", "credential"},
        {"x-goog-api-key", "credential"},
        {"Proxy-Authorization", "credential"},
        {"Cookie", "credential"},
        {"Connection", "hop-by-hop"},
        {"transfer-encoding", "hop-by-hop"},
        {"TE", "hop-by-hop"},
        {"upgrade", "hop-by-hop"},
        {"Host", "routes"},
        {"content-length", "frames"},
        {"accept-encoding", "compress"},
        {"x-skiff-deadline-ms", "skiff's own"},
        {"\"x goog\"", "not a header name"},
        {"\"x:y\"", "not a header name"},
        {"\"\"", "empty"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char yaml[512], err[512];
        snprintf(yaml, sizeof yaml,
                 "upstreams:\n  gemini:\n    keys: [" KEY "]\n    forward_headers: [ok, %s]\n",
                 bad[i].name);
        struct skiff_config *c = load(yaml, err, sizeof err);
        assert_null(c);
        if (!strstr(err, "upstreams.gemini.forward_headers[1]") || !strstr(err, bad[i].why))
            fail_msg("%s: %s", bad[i].name, err);
    }
}

static void
test_path_from_the_route(void **state)
{
    struct skiff_config *cfg = config("");
    struct skiff_request req;
    struct skiff_uprequest u;
    char lines[4096];
    /* The path is rebuilt: a trailing slash or the client's spelling never goes as it is. */
    request(&req, "GET", "/v1/models/", "", NULL);
    assert_int_equal(build(cfg, &req, NULL, &u, lines, sizeof lines), 0);
    assert_string_equal(u.url, "http://127.0.0.1:9/v1/models");
    skiff_uprequest_wipe(&u);
    request(&req, "GET", "/v1beta/models/gemini-2.5-pro", "", NULL);
    assert_int_equal(build(cfg, &req, "gemini-2.5-pro", &u, lines, sizeof lines), 0);
    assert_string_equal(u.url, "http://127.0.0.1:9/v1beta/models/gemini-2.5-pro");
    assert_string_equal(lines, "x-goog-api-key: " KEY "\n"); /* a GET says no content-type */
    skiff_uprequest_wipe(&u);
    /* A fallback model from the config is checked too before it goes into the URL. */
    request(&req, "POST", "/v1beta/models/gemini-2.5-pro:generateContent", "", NULL);
    assert_int_equal(build(cfg, &req, "../tunedModels/x", &u, lines, sizeof lines), SKIFF_EINVAL);
    assert_null(u.buf.data);
    skiff_config_free(cfg);

    /* ... and the config refuses such a fallback at load, with the reason. */
    char err[512];
    assert_null(load("upstreams:\n  gemini:\n    keys: [" KEY "]\n"
                     "fallbacks:\n  gemini-2.5-pro: [../tunedModels/x]\n",
                     err, sizeof err));
    assert_non_null(strstr(err, "fallbacks.gemini-2.5-pro[0]"));
    assert_non_null(strstr(err, "is not a model name"));
}

/* The query that goes upstream for a client's query on path. */
static const char *
upstream_query(const char *path, const char *query, char *out, size_t cap)
{
    struct skiff_config *cfg = config("");
    struct skiff_request req;
    struct skiff_uprequest u;
    char lines[4096];
    request(&req, strchr(path, ':') ? "POST" : "GET", path, query, NULL);
    assert_int_equal(build(cfg, &req, NULL, &u, lines, sizeof lines), 0);
    const char *q = strchr(u.url, '?');
    snprintf(out, cap, "%s", q ? q + 1 : "");
    skiff_uprequest_wipe(&u);
    skiff_config_free(cfg);
    return out;
}

static void
test_query_allowlist(void **state)
{
    char q[512];
    const char *gen = "/v1beta/models/gemini-2.5-flash:streamGenerateContent";
    assert_string_equal(upstream_query(gen, "alt=sse", q, sizeof q), "alt=sse");
    assert_string_equal(upstream_query(gen, "key=sk-token&alt=sse", q, sizeof q), "alt=sse");
    /* Names are read after decoding: k%65y is key, al%74 is alt, $alt is alt. */
    assert_string_equal(upstream_query(gen, "k%65y=AIzaOther&access_token=ya29.x", q, sizeof q),
                        "");
    assert_string_equal(upstream_query(gen, "al%74=%73se", q, sizeof q), "alt=sse");
    assert_string_equal(upstream_query(gen, "$alt=sse", q, sizeof q), "alt=sse");
    assert_string_equal(upstream_query(gen, "%24alt=json%3Benum-encoding%3Dint", q, sizeof q),
                        "alt=json");
    assert_string_equal(upstream_query(gen, "alt=sse&alt=sse&fields=x&quotaUser=y", q, sizeof q),
                        "alt=sse");
    /* Page parameters go on models.list only, re-encoded. */
    assert_string_equal(upstream_query(gen, "pageSize=5", q, sizeof q), "");
    assert_string_equal(
        upstream_query("/v1beta/models", "pageSize=%35&pageToken=a+b/c%2Bd&x=1", q, sizeof q),
        "pageSize=5&pageToken=a%20b%2Fc%2Bd");
}

/* The 400 message for a query on path, or NULL when it is accepted. */
static const char *
query_error(const char *path, const char *query, char *msg, size_t cap)
{
    struct skiff_route rt;
    skiff_route(strchr(path, ':') ? "POST" : "GET", path, strlen(path), &rt);
    struct skiff_upquery q;
    int rc = skiff_upquery_parse(query, strlen(query), &rt, &q, msg, cap);
    if (rc == 0)
        return NULL;
    assert_int_equal(rc, SKIFF_EINVAL);
    return msg;
}

static void
test_query_refusals(void **state)
{
    char m[256];
    const char *gen = "/v1beta/models/gemini-2.5-flash:generateContent";
    const struct {
        const char *query, *says;
    } bad[] = {
        {"alt=sse\t", "0x09"},  {"alt=json\f", "0x0C"},
        {"x=\xc3\xa9", "0xC3"}, {"alt=sse#frag", "fragment"},
        {"a b=1", "0x20"},      {"alt=xml", "sse"},
        {"$alt=proto", "$alt"}, {"alt=sse&$alt=json", "twice"},
        {"k%6=1", "broken"},    {"alt=%zz", "sse"},
        {"x=\x7f", "0x7F"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *msg = query_error(gen, bad[i].query, m, sizeof m);
        if (!msg || !strstr(msg, bad[i].says))
            fail_msg("%s: %s", bad[i].query, msg ? msg : "accepted");
    }
    assert_non_null(query_error("/v1beta/models", "pageSize=ten", m, sizeof m));
    assert_non_null(query_error("/v1beta/models", "pageSize=1&pageSize=2", m, sizeof m));
    assert_non_null(query_error("/v1beta/models", "pageToken=%4", m, sizeof m));
    /* A parameter skiff drops is not judged beyond its bytes. */
    assert_null(query_error(gen, "pageSize=ten&foo=%zz", m, sizeof m));
    assert_null(query_error(gen, "", m, sizeof m));
}

static void
test_response_headers(void **state)
{
    struct skiff_config *cfg = config("");
    struct skiff_keypool *pool = skiff_keypool_new(cfg, NULL);
    assert_non_null(pool);
    static const char block[] = "Content-Type: application/json; charset=UTF-8\r\n"
                                "Vary: Origin\r\n"
                                "X-Gemini-Service-Tier: standard\r\n"
                                "Server-Timing: gfet4t7; dur=812\r\n"
                                "Set-Cookie: NID=1\r\n"
                                "X-Debug-Key: " KEY "\r\n"
                                "Retry-After: 7, " KEY "\r\n"
                                "Server: ESF\r\n"
                                "Alt-Svc: h3=\":443\"\r\n"
                                "x-goog-safety: \x01x\r\n"
                                "X-Skiff-Key: forged\r\n";
    struct skiff_request req;
    request(&req, "POST", "/", "", NULL);
    skiff_uprequest_forward_head(&req, block, sizeof block - 1, pool);
    assert_string_equal(req.out_hdrs.data,
                        "Vary: Origin\r\nX-Gemini-Service-Tier: standard\r\n"
                        "Server-Timing: gfet4t7; dur=812\r\n"
                        "Retry-After: 7, ***************************************\r\n");
    char ct[128];
    assert_string_equal(skiff_uprequest_content_type(block, sizeof block - 1, pool, ct, sizeof ct),
                        "application/json; charset=UTF-8");
    static const char sse[] = "content-type: text/event-stream\r\n";
    assert_string_equal(skiff_uprequest_content_type(sse, sizeof sse - 1, pool, ct, sizeof ct),
                        "text/event-stream");
    static const char cr[] = "content-type: text/html\rSet-Cookie: x\r\n";
    assert_string_equal(skiff_uprequest_content_type(cr, sizeof cr - 1, pool, ct, sizeof ct),
                        "application/json; charset=UTF-8");
    skiff_buf_release(&req.out_hdrs);
    skiff_keypool_free(pool);
    skiff_config_free(cfg);
}

static void
test_url_redaction(void **state)
{
    char out[256];
    assert_string_equal(skiff_url_redact("http://bob:s3cret@proxy.corp:3128", out, sizeof out),
                        "http://***@proxy.corp:3128");
    assert_string_equal(
        skiff_url_redact("https://generativelanguage.googleapis.com", out, sizeof out),
        "https://generativelanguage.googleapis.com");
    assert_string_equal(skiff_url_redact("socks5h://u@h:1080/x", out, sizeof out),
                        "socks5h://***@h:1080/x");
    /* A raw '/' or '@' in a password is hidden whole. */
    assert_string_equal(skiff_url_redact("http://u:p/w@d@h:1", out, sizeof out), "http://***@h:1");
    assert_string_equal(
        skiff_url_redact("Failed via 'http://a:b@p:1' then http://c:d@q", out, sizeof out),
        "Failed via 'http://***@p:1' then http://***@q");
    assert_string_equal(skiff_url_redact(NULL, out, sizeof out), "");
    /* Cut short, the password is still not there. */
    skiff_url_redact("http://user:topsecret@h", out, 12);
    assert_null(strstr(out, "top"));
    /* An '@' past the end of the URL (a space) is not its userinfo. */
    assert_string_equal(skiff_url_redact("http://h:1/x y@z", out, sizeof out), "http://h:1/x y@z");
}

/* A Live API session: the URL names the service and carries the credential in its query; the
 * headers are the allowlist's, without the body's content headers, the client's credential,
 * its Origin, cookies or WebSocket headers. */
static void
test_live_session(void **state)
{
    struct skiff_config *cfg = config("");
    const char *hdrs[] = {"Host",
                          "skiff.local",
                          "Content-Type",
                          "application/json",
                          "User-Agent",
                          "google-genai-sdk/2.18.0 gl-node/v20",
                          "x-goog-api-client",
                          "google-genai-sdk/2.18.0",
                          "x-goog-api-key",
                          "sk-the-clients-skiff-token",
                          "Origin",
                          "https://app.example",
                          "Cookie",
                          "a=b",
                          "Upgrade",
                          "websocket",
                          "Connection",
                          "Upgrade",
                          "Sec-WebSocket-Key",
                          "dGhlIHNhbXBsZSBub25jZQ==",
                          "Sec-WebSocket-Version",
                          "13",
                          "Sec-WebSocket-Extensions",
                          "permessage-deflate",
                          NULL};
    struct skiff_request req;
    request(&req, "GET",
            "/ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent",
            "key=sk-the-clients-skiff-token", hdrs);
    struct skiff_uprequest u;
    assert_int_equal(skiff_uprequest_live_headers(&u, cfg, &req), 0);
    assert_null(u.url);
    char lines[1024];
    size_t o = 0;
    lines[0] = '\0';
    for (int i = 0; u.headers[i]; i++)
        o += (size_t)snprintf(lines + o, sizeof lines - o, "%s\n", u.headers[i]);
    assert_string_equal(lines, "User-Agent: google-genai-sdk/2.18.0 gl-node/v20\n"
                               "x-goog-api-client: google-genai-sdk/2.18.0\n");
    skiff_uprequest_wipe(&u);

    struct skiff_buf url;
    skiff_buf_init(&url, 4096);
    assert_int_equal(skiff_uprequest_live_url(&url, cfg, "v1beta", 0, KEY), 0);
    assert_string_equal(url.data, "http://127.0.0.1:9/ws/google.ai.generativelanguage.v1beta."
                                  "GenerativeService.BidiGenerateContent?key=" KEY);
    skiff_buf_reset(&url);
    assert_int_equal(skiff_uprequest_live_url(&url, cfg, "v1alpha", 1, "auth_tokens/a b&c"), 0);
    assert_string_equal(url.data, "http://127.0.0.1:9/ws/google.ai.generativelanguage.v1alpha."
                                  "GenerativeService.BidiGenerateContentConstrained"
                                  "?access_token=auth_tokens/a%20b%26c");
    skiff_buf_reset(&url);
    assert_int_equal(skiff_uprequest_live_url(&url, cfg, "v1/../x", 0, KEY), SKIFF_EINVAL);
    skiff_buf_release(&url);
    skiff_buf_release(&req.out_hdrs);
    skiff_config_free(cfg);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_headers_from_the_allowlist_only),
        cmocka_unit_test(test_connection_named_and_control_bytes_dropped),
        cmocka_unit_test(test_forward_headers_config),
        cmocka_unit_test(test_path_from_the_route),
        cmocka_unit_test(test_query_allowlist),
        cmocka_unit_test(test_query_refusals),
        cmocka_unit_test(test_compat_bearer),
        cmocka_unit_test(test_response_headers),
        cmocka_unit_test(test_url_redaction),
        cmocka_unit_test(test_live_session),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
