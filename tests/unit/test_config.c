/*
 * The configuration loader: defaults, the YAML schema, error messages (file, line, key path,
 * and never a secret), the environment overrides and the open-network check. Each test writes
 * its YAML to a temporary file and loads it the way `skiff serve --config` does.
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

static const char *const env_vars[] = {"GEMINI_API_KEYS", "SKIFF_TOKENS", "SKIFF_LISTEN",
                                       "SKIFF_GEMINI_BASE_URL"};

/* The file the current test wrote; error messages start with it. */
static char yaml_path[64];

static void
clear_env(void)
{
    for (size_t i = 0; i < sizeof env_vars / sizeof env_vars[0]; i++)
        unsetenv(env_vars[i]);
}

static int
setup(void **state)
{
    (void)state;
    clear_env();
    return 0;
}

static int
teardown(void **state)
{
    (void)state;
    clear_env();
    return 0;
}

static void
write_yaml(const char *text)
{
    snprintf(yaml_path, sizeof yaml_path, "/tmp/skiff-test-config-XXXXXX.yaml");
    int fd = mkstemps(yaml_path, 5);
    assert_true(fd >= 0);
    size_t len = strlen(text);
    assert_int_equal(write(fd, text, len), (ssize_t)len);
    close(fd);
}

/* Loads text as a config file; the file is gone again when this returns. */
static struct skiff_config *
load_text(const char *text, char *err, size_t errlen)
{
    write_yaml(text);
    struct skiff_config *cfg = skiff_config_load(yaml_path, err, errlen);
    unlink(yaml_path);
    return cfg;
}

static struct skiff_config *
load_ok(const char *text)
{
    char err[512] = "";
    struct skiff_config *cfg = load_text(text, err, sizeof err);
    if (!cfg)
        fail_msg("expected the config to load, got: %s", err);
    return cfg;
}

/*
 * Asserts that text fails to load with "<file>:<line>: <keypath>: ..." (no key path when
 * keypath is NULL) and that the rest of the message contains fragment.
 */
static void
assert_error_at(const char *text, int line, const char *keypath, const char *fragment)
{
    char err[512] = "", prefix[256];
    struct skiff_config *cfg = load_text(text, err, sizeof err);
    if (cfg) {
        skiff_config_free(cfg);
        fail_msg("expected an error at line %d (%s), but the config loaded", line,
                 keypath ? keypath : "top level");
    }
    if (keypath)
        snprintf(prefix, sizeof prefix, "%s:%d: %s: ", yaml_path, line, keypath);
    else
        snprintf(prefix, sizeof prefix, "%s:%d: ", yaml_path, line);
    if (strncmp(err, prefix, strlen(prefix)) != 0)
        fail_msg("expected the message to start with \"%s\", got \"%s\"", prefix, err);
    if (!strstr(err + strlen(prefix), fragment))
        fail_msg("expected the message to contain \"%s\", got \"%s\"", fragment, err);
    assert_null(strchr(err, '\n'));
}

/* Asserts that loading text fails and that the message contains none of the secrets. */
static void
assert_error_hides(const char *text, const char *const *secrets, size_t nsecrets)
{
    char err[512] = "";
    struct skiff_config *cfg = load_text(text, err, sizeof err);
    if (cfg) {
        skiff_config_free(cfg);
        fail_msg("expected an error, but the config loaded:\n%s", text);
    }
    assert_true(strlen(err) > 0);
    for (size_t i = 0; i < nsecrets; i++)
        if (strstr(err, secrets[i]))
            fail_msg("the message shows the secret \"%s\": %s", secrets[i], err);
}

static void
test_defaults_without_file(void **state)
{
    char err[256] = "";
    struct skiff_config *cfg = skiff_config_load(NULL, err, sizeof err);
    assert_non_null(cfg);
    assert_string_equal(err, "");
    assert_null(cfg->path);
    assert_string_equal(cfg->listen_host, "127.0.0.1");
    assert_int_equal(cfg->listen_port, 8080);
    assert_true(cfg->workers >= 1);
    assert_int_equal(cfg->ntokens, 0);
    assert_string_equal(cfg->base_url, "https://generativelanguage.googleapis.com");
    assert_int_equal(cfg->nkeys, 0);
    assert_null(cfg->proxy);
    assert_int_equal(cfg->retry.max_attempts, 8);
    assert_int_equal(cfg->retry.base_delay_ms, 250);
    assert_int_equal(cfg->retry.max_delay_ms, 8000);
    assert_int_equal(cfg->retry.deadline_ms, 120000);
    assert_int_equal(cfg->retry.max_wait_ms, 10000);
    assert_int_equal(cfg->nfallbacks, 1);
    assert_string_equal(cfg->fallbacks[0].model, "gemini-2.5-pro");
    assert_int_equal(cfg->fallbacks[0].nchain, 1);
    assert_string_equal(cfg->fallbacks[0].chain[0], "gemini-2.5-flash");
    assert_int_equal(cfg->limits.max_body_bytes, 20971520);
    assert_int_equal(cfg->limits.header_timeout_ms, 10000);
    assert_int_equal(cfg->limits.idle_timeout_ms, 60000);
    assert_int_equal(cfg->limits.max_connections, 10000);
    assert_string_equal(cfg->storage.sqlite, "./skiff.db");
    assert_null(cfg->storage.redis);
    skiff_config_free(cfg);
}

static void
test_full_file(void **state)
{
    struct skiff_config *cfg = load_ok("# every key, none left at its default\n"
                                       "listen: 0.0.0.0:9090\n"
                                       "workers: 3\n"
                                       "tokens:\n"
                                       "  - name: alice\n"
                                       "    token: sk-alice-0123456789\n"
                                       "  - token: sk-unnamed-0123456789\n"
                                       "upstreams:\n"
                                       "  gemini:\n"
                                       "    base_url: http://127.0.0.1:7000//\n"
                                       "    keys: [AIzaFirst, AIzaSecond]\n"
                                       "    proxy: socks5h://127.0.0.1:1080\n"
                                       "    client: auto\n"
                                       "retry: {max_attempts: 60, base_delay_ms: 100,\n"
                                       "        max_delay_ms: 100, deadline_ms: 5000,\n"
                                       "        max_wait_ms: 2000}\n"
                                       "fallbacks:\n"
                                       "  gemini-2.5-pro: [gemini-2.5-flash, gemini-2.0-flash]\n"
                                       "  gemini-2.5-flash: [gemini-2.5-flash-lite]\n"
                                       "limits:\n"
                                       "  max_body_bytes: 1024\n"
                                       "  header_timeout_ms: 500\n"
                                       "  idle_timeout_ms: 700\n"
                                       "  max_connections: 12\n"
                                       "storage: {sqlite: /var/lib/skiff/state.db, "
                                       "redis: 'redis://127.0.0.1:6379/0'}\n");
    assert_string_equal(cfg->path, yaml_path);
    assert_string_equal(cfg->listen_host, "0.0.0.0");
    assert_int_equal(cfg->listen_port, 9090);
    assert_int_equal(cfg->workers, 3);
    assert_int_equal(cfg->ntokens, 2);
    assert_string_equal(cfg->tokens[0].name, "alice");
    assert_string_equal(cfg->tokens[0].token, "sk-alice-0123456789");
    assert_string_equal(cfg->tokens[1].name, "token#2");
    assert_string_equal(cfg->tokens[1].token, "sk-unnamed-0123456789");
    assert_string_equal(cfg->base_url, "http://127.0.0.1:7000");
    assert_int_equal(cfg->nkeys, 2);
    assert_string_equal(cfg->keys[1].key, "AIzaSecond");
    assert_string_equal(cfg->proxy, "socks5h://127.0.0.1:1080");
    assert_int_equal(cfg->retry.max_attempts, 60);
    assert_int_equal(cfg->retry.base_delay_ms, 100);
    assert_int_equal(cfg->retry.max_delay_ms, 100);
    assert_int_equal(cfg->retry.deadline_ms, 5000);
    assert_int_equal(cfg->retry.max_wait_ms, 2000);
    assert_int_equal(cfg->nfallbacks, 2);
    assert_string_equal(cfg->fallbacks[0].model, "gemini-2.5-pro");
    assert_int_equal(cfg->fallbacks[0].nchain, 2);
    assert_string_equal(cfg->fallbacks[0].chain[1], "gemini-2.0-flash");
    assert_string_equal(cfg->fallbacks[1].model, "gemini-2.5-flash");
    assert_string_equal(cfg->fallbacks[1].chain[0], "gemini-2.5-flash-lite");
    assert_int_equal(cfg->limits.max_body_bytes, 1024);
    assert_int_equal(cfg->limits.header_timeout_ms, 500);
    assert_int_equal(cfg->limits.idle_timeout_ms, 700);
    assert_int_equal(cfg->limits.max_connections, 12);
    assert_string_equal(cfg->storage.sqlite, "/var/lib/skiff/state.db");
    assert_string_equal(cfg->storage.redis, "redis://127.0.0.1:6379/0");
    skiff_config_free(cfg);
}

static void
test_keys_as_strings_and_mappings(void **state)
{
    struct skiff_config *cfg = load_ok("upstreams:\n"
                                       "  gemini:\n"
                                       "    keys:\n"
                                       "      - AIzaPlainOne\n"
                                       "      - {key: AIzaLabelled, label: paid}\n"
                                       "      - key: AIzaPlainThree\n"
                                       "      - AIzaPlainFour\n");
    assert_int_equal(cfg->nkeys, 4);
    assert_string_equal(cfg->keys[0].key, "AIzaPlainOne");
    assert_string_equal(cfg->keys[0].label, "key#1");
    assert_string_equal(cfg->keys[1].key, "AIzaLabelled");
    assert_string_equal(cfg->keys[1].label, "paid");
    assert_string_equal(cfg->keys[2].key, "AIzaPlainThree");
    assert_string_equal(cfg->keys[2].label, "key#3");
    assert_string_equal(cfg->keys[3].label, "key#4");
    skiff_config_free(cfg);
}

/* Empty values read as empty: "retry:" keeps the defaults, "fallbacks: {}" turns them off. */
static void
test_empty_values(void **state)
{
    struct skiff_config *cfg = load_ok("retry:\n"
                                       "tokens:\n"
                                       "fallbacks: {}\n"
                                       "upstreams: {gemini: {proxy: '', keys: []}}\n"
                                       "storage: {sqlite: '', redis: ''}\n");
    assert_int_equal(cfg->retry.max_attempts, 8);
    assert_int_equal(cfg->ntokens, 0);
    assert_int_equal(cfg->nfallbacks, 0);
    assert_null(cfg->proxy);
    assert_int_equal(cfg->nkeys, 0);
    assert_null(cfg->storage.sqlite);
    assert_null(cfg->storage.redis);
    skiff_config_free(cfg);

    /* A file with nothing but comments is the defaults. */
    cfg = load_ok("# nothing configured yet\n");
    assert_int_equal(cfg->listen_port, 8080);
    skiff_config_free(cfg);
}

static void
test_value_errors_name_line_and_key(void **state)
{
    assert_error_at("listen: 127.0.0.1:8080\n"
                    "retry:\n"
                    "  base_delay_ms: 100\n"
                    "  max_attempts: 0\n",
                    4, "retry.max_attempts", "must be an integer from 1 to 60, got \"0\"");
    assert_error_at("retry: {max_attempts: a lot}\n", 1, "retry.max_attempts",
                    "must be an integer from 1 to 60, got \"a lot\"");
    assert_error_at("retry:\n  max_attempts: 61\n", 2, "retry.max_attempts", "got \"61\"");
    assert_error_at("retry:\n  deadline_ms: 0\n", 2, "retry.deadline_ms",
                    "must be a whole number of milliseconds");
    assert_error_at("retry:\n  max_wait_ms: -5\n", 2, "retry.max_wait_ms", "got \"-5\"");
    assert_error_at("retry:\n  base_delay_ms: 1_000\n", 2, "retry.base_delay_ms", "got \"1_000\"");
    /* max_delay_ms below base_delay_ms is reported where max_delay_ms is set... */
    assert_error_at("retry:\n"
                    "  max_delay_ms: 100\n"
                    "  base_delay_ms: 500\n",
                    2, "retry.max_delay_ms", "must be at least base_delay_ms (500), got 100");
    /* ...and against the default max at base_delay_ms when only that is set. */
    assert_error_at("\n"
                    "retry:\n"
                    "  base_delay_ms: 9000\n",
                    3, "retry.base_delay_ms", "must not exceed max_delay_ms (8000), got 9000");
    assert_error_at("limits:\n  max_body_bytes: 1023\n", 2, "limits.max_body_bytes",
                    "from 1024 to 1073741824");
    assert_error_at("limits:\n  max_body_bytes: 1073741825\n", 2, "limits.max_body_bytes",
                    "got \"1073741825\"");
    assert_error_at("limits: {idle_timeout_ms: 0}\n", 1, "limits.idle_timeout_ms", "got \"0\"");
    assert_error_at("workers: 0\n", 1, "workers",
                    "must be \"auto\" or an integer from 1 to 256, got \"0\"");
    assert_error_at("workers: 257\n", 1, "workers", "got \"257\"");
    assert_error_at("listen: abc\n", 1, "listen", "expected host:port, got \"abc\"");
    assert_error_at("listen: 127.0.0.1:65536\n", 1, "listen", "port from 0 to 65535");
    assert_error_at("listen: ::1:8080\n", 1, "listen", "[::1]:8080");
    assert_error_at(
        "upstreams:\n"
        "  gemini:\n"
        "    base_url: ftp://example.com\n",
        3, "upstreams.gemini.base_url",
        "must start with http:// or https:// and name a host, got \"ftp://example.com\"");
    assert_error_at("upstreams:\n  gemini:\n    proxy: socks4://10.0.0.1\n", 3,
                    "upstreams.gemini.proxy", "socks5h://");
    /* client: curl was the libcurl escape hatch: a config that still asks for it is refused
     * where it says so, with what to do. */
    assert_error_at("upstreams:\n  gemini:\n    keys: [AIzaK]\n    client: curl\n", 4,
                    "upstreams.gemini.client",
                    "is no longer an option: libcurl was removed, and skiff's own client takes "
                    "every upstream (http://, https://, every proxy, credentials in base_url); "
                    "delete this line (got \"curl\")");
    assert_error_at("upstreams:\n  gemini:\n    ca_file: /nonexistent/ca.pem\n", 3,
                    "upstreams.gemini.ca_file",
                    "cannot read \"/nonexistent/ca.pem\": No such file or directory");
    assert_error_at("storage:\n  redis: localhost:6379\n", 2, "storage.redis", "redis://");
    assert_error_at("tokens:\n"
                    "  - name: alice\n"
                    "    token: short\n",
                    3, "tokens[0].token", "is too short");
    assert_error_at("tokens:\n"
                    "  - name: alice\n"
                    "    token: ''\n",
                    3, "tokens[0].token", "is empty");
    assert_error_at("tokens:\n"
                    "  - name: alice\n",
                    2, "tokens[0]", "has no 'token'");
    assert_error_at("tokens:\n"
                    "  - name: two words\n"
                    "    token: sk-0123456789\n",
                    2, "tokens[0].name", "without spaces");
    assert_error_at("upstreams:\n"
                    "  gemini:\n"
                    "    keys:\n"
                    "      - AIzaOne\n"
                    "      - ''\n",
                    5, "upstreams.gemini.keys[1]", "is empty");
    assert_error_at("upstreams:\n"
                    "  gemini:\n"
                    "    keys:\n"
                    "      - AIzaOne\n"
                    "      - AIzaTwo\n"
                    "      - {key: AIzaThree, label: ''}\n",
                    6, "upstreams.gemini.keys[2].label", "is empty");
    assert_error_at("upstreams:\n"
                    "  gemini:\n"
                    "    keys:\n"
                    "      - {label: orphan}\n",
                    4, "upstreams.gemini.keys[0]", "has no 'key'");
    assert_error_at("fallbacks:\n"
                    "  gemini-2.5-pro: [gemini-2.5-flash, gemini-2.5-pro]\n",
                    2, "fallbacks.gemini-2.5-pro[1]", "falls back to 'gemini-2.5-pro' itself");
    assert_error_at("fallbacks:\n"
                    "  gemini-2.5-pro: []\n",
                    2, "fallbacks.gemini-2.5-pro", "is empty");
}

static void
test_type_errors_say_expected_and_found(void **state)
{
    assert_error_at("listen: 127.0.0.1:8080\n"
                    "retry: [1, 2]\n",
                    2, "retry", "expected a mapping, got a list");
    assert_error_at("retry:\n  max_attempts: {n: 3}\n", 2, "retry.max_attempts",
                    "must be an integer from 1 to 60, got a mapping");
    assert_error_at("retry:\n  max_attempts:\n", 2, "retry.max_attempts", "got an empty value");
    assert_error_at("upstreams:\n  gemini:\n    keys: {a: b}\n", 3, "upstreams.gemini.keys",
                    "expected a list of keys, got a mapping");
    assert_error_at("upstreams:\n  gemini: yes\n", 2, "upstreams.gemini",
                    "expected a mapping, got \"yes\"");
    assert_error_at("upstreams:\n  gemini:\n    base_url: [http://a]\n", 3,
                    "upstreams.gemini.base_url", "expected a URL, got a list");
    assert_error_at("listen: [127.0.0.1, 8080]\n", 1, "listen", "expected host:port, got a list");
    assert_error_at("fallbacks:\n  gemini-2.5-pro: gemini-2.5-flash\n", 2,
                    "fallbacks.gemini-2.5-pro",
                    "expected a list of models to try after this one, got \"gemini-2.5-flash\"");
    assert_error_at("- listen\n- workers\n", 1, NULL, "expected a mapping of settings");
}

static void
test_duplicates_are_errors(void **state)
{
    assert_error_at("upstreams:\n"
                    "  gemini:\n"
                    "    keys:\n"
                    "      - {key: AIzaOne, label: free}\n"
                    "      - AIzaTwo\n"
                    "      - {key: AIzaThree, label: free}\n",
                    6, "upstreams.gemini.keys[2].label",
                    "the label 'free' is already used by keys[0]");
    /* A configured label may not take the automatic label of another key either. */
    assert_error_at("upstreams:\n"
                    "  gemini:\n"
                    "    keys:\n"
                    "      - AIzaOne\n"
                    "      - {key: AIzaTwo, label: 'key#1'}\n",
                    5, "upstreams.gemini.keys[1].label", "already used by keys[0]");
    assert_error_at("upstreams:\n"
                    "  gemini:\n"
                    "    keys:\n"
                    "      - AIzaOne\n"
                    "      - AIzaTwo\n"
                    "      - AIzaOne\n",
                    6, "upstreams.gemini.keys[2]", "the same key as keys[0]");
    assert_error_at("tokens:\n"
                    "  - {name: alice, token: sk-0123456789}\n"
                    "  - name: bob\n"
                    "    token: sk-0123456789\n",
                    4, "tokens[1].token", "the same token as tokens[0]");
    assert_error_at("tokens:\n"
                    "  - {name: alice, token: sk-0123456789}\n"
                    "  - {name: alice, token: sk-9876543210}\n",
                    3, "tokens[1].name", "the name 'alice' is already used by tokens[0]");
    assert_error_at("retry:\n"
                    "  max_attempts: 3\n"
                    "  max_attempts: 4\n",
                    3, "retry", "'max_attempts' is given twice (first on line 2)");
    assert_error_at("workers: 2\n"
                    "listen: 127.0.0.1:1\n"
                    "workers: 3\n",
                    3, NULL, "'workers' is given twice (first on line 1)");
}

static void
test_file_errors(void **state)
{
    char err[512];
    assert_null(skiff_config_load("/nonexistent/skiff.yaml", err, sizeof err));
    assert_string_equal(err, "/nonexistent/skiff.yaml: cannot open: No such file or directory");
    assert_null(skiff_config_load("/tmp", err, sizeof err));
    assert_string_equal(err, "/tmp: cannot read: it is a directory");

    assert_error_at("listen: 127.0.0.1:8080\n"
                    "retry:\n"
                    "  max_attempts: 3\n"
                    " bad_indent: 4\n",
                    4, NULL, "YAML syntax error");
    assert_error_at("tokens:\n"
                    "  - name: alice\n"
                    "    token: \"unterminated\n",
                    4, NULL, "YAML syntax error");
    assert_error_at("workers: 2\n"
                    "---\n"
                    "workers: 3\n",
                    2, NULL, "a second YAML document");
    assert_error_at("retry: *nowhere\n", 1, NULL, "YAML syntax error");
    /* Bad UTF-8 is reported on its line although the reader only knows a byte offset. */
    assert_error_at("workers: 2\n"
                    "# caf\xe9\n",
                    2, NULL, "UTF-8 octet");
}

static void
test_unknown_keys_suggest_the_closest(void **state)
{
    assert_error_at("listen: 127.0.0.1:8080\n"
                    "retyr:\n"
                    "  max_attempts: 3\n",
                    2, NULL, "unknown key 'retyr'; did you mean 'retry'?");
    assert_error_at("retry:\n"
                    "  max_attempts: 3\n"
                    "  max_attempt: 3\n",
                    3, "retry", "unknown key 'max_attempt'; did you mean 'max_attempts'?");
    assert_error_at("upstreams:\n"
                    "  gemini:\n"
                    "    baseurl: https://x\n",
                    3, "upstreams.gemini", "unknown key 'baseurl'; did you mean 'base_url'?");
    assert_error_at("upstreams:\n  openai: {}\n", 2, "upstreams",
                    "unknown key 'openai'; expected one of: gemini");
    assert_error_at("colour: blue\n", 1, NULL, "unknown key 'colour'; expected one of: listen,");
    assert_error_at("Listen: 127.0.0.1:1\n", 1, NULL, "did you mean 'listen'?");
}

static void
test_env_overrides(void **state)
{
    setenv("GEMINI_API_KEYS", " AIzaEnvOne , ,AIzaEnvTwo,", 1);
    setenv("SKIFF_TOKENS", "alice:sk-alice-0123456789, sk-bare-0123456789", 1);
    setenv("SKIFF_LISTEN", "0.0.0.0:9999", 1);
    setenv("SKIFF_GEMINI_BASE_URL", "http://127.0.0.1:7777/", 1);
    struct skiff_config *cfg = load_ok("listen: 127.0.0.1:1234\n"
                                       "tokens: [{name: carol, token: sk-carol-0123456789}]\n"
                                       "upstreams:\n"
                                       "  gemini:\n"
                                       "    base_url: https://example.com\n"
                                       "    keys: [{key: AIzaFile, label: file}]\n");
    assert_int_equal(cfg->nkeys, 2);
    assert_string_equal(cfg->keys[0].key, "AIzaEnvOne");
    assert_string_equal(cfg->keys[0].label, "key#1");
    assert_string_equal(cfg->keys[1].key, "AIzaEnvTwo");
    assert_string_equal(cfg->keys[1].label, "key#2");
    assert_int_equal(cfg->ntokens, 2);
    assert_string_equal(cfg->tokens[0].name, "alice");
    assert_string_equal(cfg->tokens[0].token, "sk-alice-0123456789");
    assert_string_equal(cfg->tokens[1].name, "token#2");
    assert_string_equal(cfg->tokens[1].token, "sk-bare-0123456789");
    assert_string_equal(cfg->listen_host, "0.0.0.0");
    assert_int_equal(cfg->listen_port, 9999);
    assert_string_equal(cfg->base_url, "http://127.0.0.1:7777");
    skiff_config_free(cfg);

    /* The environment works without a file too, and a blank variable counts as unset. */
    clear_env();
    setenv("GEMINI_API_KEYS", "AIzaOnly", 1);
    setenv("SKIFF_TOKENS", "  ", 1);
    char err[256];
    cfg = skiff_config_load(NULL, err, sizeof err);
    assert_non_null(cfg);
    assert_int_equal(cfg->nkeys, 1);
    assert_string_equal(cfg->keys[0].label, "key#1");
    assert_int_equal(cfg->ntokens, 0);
    skiff_config_free(cfg);
}

static void
assert_env_error(const char *var, const char *value, const char *want)
{
    char err[512];
    clear_env();
    setenv(var, value, 1);
    struct skiff_config *cfg = skiff_config_load(NULL, err, sizeof err);
    if (cfg) {
        skiff_config_free(cfg);
        fail_msg("expected %s=%s to be refused", var, value);
    }
    if (strcmp(err, want) != 0)
        fail_msg("expected \"%s\", got \"%s\"", want, err);
}

static void
test_env_errors_name_the_variable(void **state)
{
    assert_env_error("SKIFF_LISTEN", "abc", "SKIFF_LISTEN: expected host:port, got \"abc\"");
    assert_env_error("SKIFF_GEMINI_BASE_URL", "example.com",
                     "SKIFF_GEMINI_BASE_URL: must start with http:// or https:// and name a "
                     "host, got \"example.com\"");
    assert_env_error("SKIFF_TOKENS", "sk-good-0123456789,sk-bad",
                     "SKIFF_TOKENS: item 2: the token is too short: a client token needs at "
                     "least 8 characters, or it is easy to guess");
    assert_env_error("SKIFF_TOKENS", ":sk-good-0123456789",
                     "SKIFF_TOKENS: item 1: the name before ':' is empty");
    assert_env_error("SKIFF_TOKENS", "a:sk-same-0123456789,b:sk-same-0123456789",
                     "SKIFF_TOKENS: item 2: the same token as item 1");
    assert_env_error("SKIFF_TOKENS", "a:sk-one-0123456789,a:sk-two-0123456789",
                     "SKIFF_TOKENS: item 2: the same name as item 1");
    assert_env_error("GEMINI_API_KEYS", "AIzaOne,AIzaTwo,AIzaOne",
                     "GEMINI_API_KEYS: item 3: the same key as item 1");
    assert_error_at("upstreams:\n"
                    "  gemini:\n"
                    "    keys:\n"
                    "      - AIzaOne\n"
                    "      - '********'\n",
                    5, "upstreams.gemini.keys[1]", "is only '*' characters");
    assert_error_at("upstreams:\n"
                    "  gemini:\n"
                    "    keys:\n"
                    "      - {key: '*', label: masked}\n",
                    4, "upstreams.gemini.keys[0].key", "is only '*' characters");
    assert_env_error("GEMINI_API_KEYS", "AIzaOne,***",
                     "GEMINI_API_KEYS: item 2: the key is only '*' characters: that is a masked "
                     "key, paste the key itself");
    assert_env_error("GEMINI_API_KEYS", "AIza One",
                     "GEMINI_API_KEYS: item 1: the key may contain only printable ASCII "
                     "characters, without spaces");
}

static void
test_open_listen_needs_tokens(void **state)
{
    char err[512];
    assert_null(load_text("listen: 0.0.0.0:8080\n", err, sizeof err));
    assert_string_equal(err, "listen 0.0.0.0:8080 is not a loopback address and no tokens are "
                             "configured: skiff refuses to run open on the network. Add tokens "
                             "(config `tokens:` or SKIFF_TOKENS) or listen on 127.0.0.1");

    setenv("SKIFF_LISTEN", "[::]:8080", 1);
    assert_null(skiff_config_load(NULL, err, sizeof err));
    assert_non_null(strstr(err, "listen [::]:8080 (from SKIFF_LISTEN) is not a loopback"));
    unsetenv("SKIFF_LISTEN");

    struct skiff_config *cfg =
        load_ok("listen: 0.0.0.0:8080\ntokens: [{name: a, token: sk-0123456789}]\n");
    skiff_config_free(cfg);
    setenv("SKIFF_TOKENS", "sk-0123456789", 1);
    cfg = load_ok("listen: 0.0.0.0:8080\n");
    skiff_config_free(cfg);
    unsetenv("SKIFF_TOKENS");

    cfg = load_ok("listen: localhost:8080\n");
    skiff_config_free(cfg);
    cfg = load_ok("listen: 127.8.9.10:0\n");
    assert_int_equal(cfg->listen_port, 0);
    skiff_config_free(cfg);
}

static void
test_ipv6_listen(void **state)
{
    struct skiff_config *cfg = load_ok("listen: '[::1]:9000'\n");
    assert_string_equal(cfg->listen_host, "::1");
    assert_int_equal(cfg->listen_port, 9000);
    skiff_config_free(cfg);

    setenv("SKIFF_LISTEN", "[::1]:9001", 1);
    char err[256];
    cfg = skiff_config_load(NULL, err, sizeof err);
    assert_non_null(cfg);
    assert_string_equal(cfg->listen_host, "::1");
    assert_int_equal(cfg->listen_port, 9001);
    skiff_config_free(cfg);
    unsetenv("SKIFF_LISTEN");

    assert_error_at("listen: '[::1]'\n", 1, "listen", "expected [ipv6]:port");
    assert_error_at("listen: '[not-v6]:80'\n", 1, "listen", "valid IPv6 address");
}

static void
test_is_loopback(void **state)
{
    assert_true(skiff_config_is_loopback("127.0.0.1"));
    assert_true(skiff_config_is_loopback("127.255.0.9"));
    assert_true(skiff_config_is_loopback("::1"));
    assert_true(skiff_config_is_loopback("[::1]"));
    assert_true(skiff_config_is_loopback("::ffff:127.0.0.1"));
    assert_true(skiff_config_is_loopback("localhost"));
    assert_true(skiff_config_is_loopback("LocalHost"));
    assert_false(skiff_config_is_loopback("0.0.0.0"));
    assert_false(skiff_config_is_loopback("::"));
    assert_false(skiff_config_is_loopback("128.0.0.1"));
    assert_false(skiff_config_is_loopback("10.0.0.1"));
    assert_false(skiff_config_is_loopback("localhost.example.com"));
    assert_false(skiff_config_is_loopback("example.com"));
    assert_false(skiff_config_is_loopback(""));
    assert_false(skiff_config_is_loopback(NULL));
}

static void
test_messages_never_show_secrets(void **state)
{
    static const char *const k[] = {"AIzaSecretKeyNumberOne", "AIza Secret Two", "sk-sec"};
    assert_error_hides("upstreams:\n  gemini:\n    keys: [AIzaSecretKeyNumberOne, "
                       "AIzaSecretKeyNumberOne]\n",
                       k, 1);
    assert_error_hides("upstreams:\n  gemini:\n    keys: ['AIza Secret Two']\n", k + 1, 1);
    assert_error_hides("upstreams:\n  gemini:\n    keys: AIzaSecretKeyNumberOne\n", k, 1);
    assert_error_hides("upstreams:\n  gemini:\n    keys:\n      - AIzaSecretKeyNumberOne: x\n", k,
                       1);
    assert_error_hides("upstreams:\n  gemini:\n    keys:\n      - key: [AIzaSecretKeyNumberOne]\n",
                       k, 1);
    assert_error_hides("tokens:\n  - sk-sec\n", k + 2, 1);
    assert_error_hides("tokens:\n  - {name: a, token: sk-secret-123}\n"
                       "  - {name: b, token: sk-secret-123}\n",
                       (const char *const[]){"sk-secret-123"}, 1);
    assert_error_hides("tokens:\n  - {name: a, sk-secret-pasted-here: x}\n",
                       (const char *const[]){"sk-secret-pasted-here"}, 1);
    assert_error_hides("tokens: sk-secret-as-a-string\n",
                       (const char *const[]){"sk-secret-as-a-string"}, 1);
    assert_error_hides("upstreams:\n  gemini:\n    proxy: ftp://user:hunter22@proxy\n",
                       (const char *const[]){"hunter22"}, 1);
    assert_error_hides("storage:\n  redis: tcp://:hunter22@redis\n",
                       (const char *const[]){"hunter22"}, 1);

    char err[512];
    setenv("SKIFF_TOKENS", "alice:sk-leak", 1);
    assert_null(skiff_config_load(NULL, err, sizeof err));
    assert_null(strstr(err, "sk-leak"));
    setenv("SKIFF_TOKENS", "alice:sk-leak-0123456789,bob:sk-leak-0123456789", 1);
    assert_null(skiff_config_load(NULL, err, sizeof err));
    assert_null(strstr(err, "sk-leak"));
    unsetenv("SKIFF_TOKENS");
    setenv("GEMINI_API_KEYS", "AIzaLeak,AIzaLeak", 1);
    assert_null(skiff_config_load(NULL, err, sizeof err));
    assert_null(strstr(err, "AIzaLeak"));
    unsetenv("GEMINI_API_KEYS");
    setenv("SKIFF_GEMINI_BASE_URL", "ftp://user:hunter22@host", 1);
    assert_null(skiff_config_load(NULL, err, sizeof err));
    assert_null(strstr(err, "hunter22"));
}

static void
test_workers_auto(void **state)
{
    struct skiff_config *cfg = load_ok("workers: auto\n");
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    assert_true(cfg->workers >= 1);
    assert_true(cfg->workers <= 256);
    if (cores >= 1 && cores <= 256)
        assert_int_equal(cfg->workers, cores);
    skiff_config_free(cfg);
}

/* A short buffer gets a cut, terminated message; a missing buffer is allowed. */
static void
test_small_or_missing_err_buffer(void **state)
{
    char err[12];
    memset(err, 'x', sizeof err);
    assert_null(load_text("workers: 0\n", err, sizeof err));
    assert_int_equal(strlen(err), sizeof err - 1);
    assert_int_equal(strncmp(err, yaml_path, sizeof err - 1), 0);
    assert_null(load_text("workers: 0\n", NULL, 0));
}

/* The documented example at the repository root must stay a valid config, defaults and all. */
static void
test_example_file_loads(void **state)
{
    char path[1024], err[512];
    const char *slash = strrchr(__FILE__, '/');
    int dirlen = slash ? (int)(slash - __FILE__) : 1;
    snprintf(path, sizeof path, "%.*s/../../skiff.example.yaml", dirlen, slash ? __FILE__ : ".");
    struct skiff_config *cfg = skiff_config_load(path, err, sizeof err);
    if (!cfg)
        fail_msg("%s", err);
    assert_string_equal(cfg->listen_host, "127.0.0.1");
    assert_int_equal(cfg->listen_port, 8080);
    assert_int_equal(cfg->retry.max_attempts, 8);
    assert_int_equal(cfg->limits.max_body_bytes, 20971520);
    assert_int_equal(cfg->nkeys, 2);
    assert_string_equal(cfg->keys[1].label, "paid");
    skiff_config_free(cfg);
}

/* Issue 11: first-byte timeouts that fit thinking models, stream limits, the drain. */
static void
test_timeouts_and_shutdown(void **state)
{
    char err[256] = "";
    struct skiff_config *cfg = skiff_config_load(NULL, err, sizeof err);
    assert_non_null(cfg);
    assert_int_equal(cfg->retry.first_byte_timeout_ms, 600000);
    assert_int_equal(cfg->retry.stream_first_byte_timeout_ms, 60000);
    assert_int_equal(cfg->retry.stream_idle_timeout_ms, 30000);
    assert_int_equal(cfg->retry.max_stream_ms, 0);
    assert_int_equal(cfg->shutdown.drain_timeout_ms, 30000);
    skiff_config_free(cfg);

    /* first_byte_timeout_ms alone sets both, as it did before streams had their own. */
    cfg = load_ok("retry: {first_byte_timeout_ms: 5000}\n");
    assert_int_equal(cfg->retry.first_byte_timeout_ms, 5000);
    assert_int_equal(cfg->retry.stream_first_byte_timeout_ms, 5000);
    skiff_config_free(cfg);
    cfg = load_ok("retry: {stream_first_byte_timeout_ms: 700, first_byte_timeout_ms: 900000,\n"
                  "        max_stream_ms: 3600000}\n"
                  "shutdown: {drain_timeout_ms: 0}\n");
    assert_int_equal(cfg->retry.first_byte_timeout_ms, 900000);
    assert_int_equal(cfg->retry.stream_first_byte_timeout_ms, 700);
    assert_int_equal(cfg->retry.max_stream_ms, 3600000);
    assert_int_equal(cfg->shutdown.drain_timeout_ms, 0);
    skiff_config_free(cfg);

    assert_error_at("retry:\n  max_stream_ms: -1\n", 2, "retry.max_stream_ms", "from 0 (no limit)");
    assert_error_at("shutdown:\n  drain_timeout_ms: 86400001\n", 2, "shutdown.drain_timeout_ms",
                    "from 0 (stop at once)");
    assert_error_at("shutdown:\n  drain_ms: 10\n", 2, "shutdown", "drain_timeout_ms");
}

static void
test_free_null(void **state)
{
    skiff_config_free(NULL);
}

/* upstreams.gemini.ca_file: the system store by default; a readable file is kept as given;
 * a path that cannot be read fails the load at its line, before any https call is made. */
static void
test_ca_file(void **state)
{
    (void)state;
    struct skiff_config *cfg = load_ok("upstreams: {gemini: {keys: []}}\n");
    assert_null(cfg->ca_file);
    skiff_config_free(cfg);

    cfg = load_ok("upstreams: {gemini: {ca_file: ''}}\n");
    assert_null(cfg->ca_file);
    skiff_config_free(cfg);

    char pem[64];
    snprintf(pem, sizeof pem, "/tmp/skiff-test-ca-XXXXXX.pem");
    int fd = mkstemps(pem, 4);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "-----BEGIN CERTIFICATE-----\n", 28), 28);
    close(fd);
    char text[160];
    snprintf(text, sizeof text, "upstreams:\n  gemini:\n    ca_file: %s\n", pem);
    cfg = load_ok(text);
    assert_string_equal(cfg->ca_file, pem);
    skiff_config_free(cfg);
    unlink(pem);

    /* The same path once it is gone, and a directory. */
    assert_error_at(text, 3, "upstreams.gemini.ca_file", "No such file or directory");
    assert_error_at(text, 3, "upstreams.gemini.ca_file", "system store");
    assert_error_at("upstreams:\n  gemini:\n    ca_file: /tmp\n", 3, "upstreams.gemini.ca_file",
                    "cannot read \"/tmp\": not a regular file");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_defaults_without_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_full_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keys_as_strings_and_mappings, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_values, setup, teardown),
        cmocka_unit_test_setup_teardown(test_value_errors_name_line_and_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_type_errors_say_expected_and_found, setup, teardown),
        cmocka_unit_test_setup_teardown(test_duplicates_are_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_keys_suggest_the_closest, setup, teardown),
        cmocka_unit_test_setup_teardown(test_env_overrides, setup, teardown),
        cmocka_unit_test_setup_teardown(test_env_errors_name_the_variable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_listen_needs_tokens, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ipv6_listen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_is_loopback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_messages_never_show_secrets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_workers_auto, setup, teardown),
        cmocka_unit_test_setup_teardown(test_small_or_missing_err_buffer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_example_file_loads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ca_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeouts_and_shutdown, setup, teardown),
        cmocka_unit_test(test_free_null),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
