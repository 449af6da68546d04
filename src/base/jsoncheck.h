/*
 * A JSON syntax check that allocates nothing and reads each byte once: what the relay's
 * passthrough path uses to refuse invalid JSON without building a DOM (RFC 8259; nesting is
 * limited to 512 levels, as deep bodies are an attack, not a prompt). It is the tokenizer of
 * base/json.h run to the end of the value (implemented in base/json.c).
 */
#ifndef SKIFF_JSONCHECK_H
#define SKIFF_JSONCHECK_H

#include <stddef.h>

/*
 * Returns 0 when p[0..n) is one JSON value (with optional surrounding whitespace), else -1
 * with *err_off set to the byte offset of the first problem and *why to a static reason.
 */
int skiff_json_check(const char *p, size_t n, size_t *err_off, const char **why);

#endif
