/*
 * Helpers for the configuration tests (test_config_*.c): write YAML to a temporary file, load
 * it the way `skiff serve --config` does, and assert on the "file:line: key: message" errors.
 * Include after <cmocka.h>.
 */
#ifndef SKIFF_TEST_CONFIG_HELPERS_H
#define SKIFF_TEST_CONFIG_HELPERS_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"

/* The file the current test wrote; error messages start with it. */
static char yaml_path[64];

static const char *const config_env_vars[] = {"GEMINI_API_KEYS", "SKIFF_TOKENS", "SKIFF_LISTEN",
                                              "SKIFF_GEMINI_BASE_URL"};

static int
config_env_clear(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof config_env_vars / sizeof config_env_vars[0]; i++)
        unsetenv(config_env_vars[i]);
    return 0;
}

/* Loads text as a config file; the file is gone again when this returns. */
static struct skiff_config *
load_text(const char *text, char *err, size_t errlen)
{
    snprintf(yaml_path, sizeof yaml_path, "/tmp/skiff-test-config-XXXXXX.yaml");
    int fd = mkstemps(yaml_path, 5);
    assert_true(fd >= 0);
    size_t len = strlen(text);
    assert_int_equal(write(fd, text, len), (ssize_t)len);
    close(fd);
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

/* Asserts that text fails with "<file>:<line>: <keypath>: ..." (no key path when keypath is
 * NULL), on one line, and that the rest of the message contains fragment. */
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

#endif
