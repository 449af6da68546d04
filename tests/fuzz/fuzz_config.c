/*
 * The config loader (src/config/) on any YAML: the input is written to an in-memory file
 * (memfd) and loaded by path, as `skiff serve --config` would load it. A load either gives
 * a config or a one-line error; nothing in between leaks or crashes.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config/config.h"

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    /* The environment overrides must not turn every input into the same config. */
    static const char *const vars[] = {"GEMINI_API_KEYS", "GEMINI_API_KEY",
                                       "GOOGLE_API_KEY",  "SKIFF_TOKENS",
                                       "SKIFF_LISTEN",    "SKIFF_GEMINI_BASE_URL"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        unsetenv(vars[i]);
    return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fd = memfd_create("skiff-fuzz.yaml", 0);
    if (fd < 0)
        abort();
    for (size_t off = 0; off < size;) {
        ssize_t n = write(fd, data + off, size - off);
        if (n <= 0)
            abort();
        off += (size_t)n;
    }
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    char err[512];
    memset(err, 0xa5, sizeof err);
    struct skiff_config *cfg = skiff_config_load(path, err, sizeof err);
    if (!cfg && !memchr(err, '\0', sizeof err))
        abort();
    if (!cfg && err[0] == '\0')
        abort(); /* a refusal always says why */
    skiff_config_free(cfg);
    close(fd);
    return 0;
}
