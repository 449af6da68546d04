/*
 * The Live API's paths: Google serves its bidirectional streaming service (a WebSocket) on
 *   /ws/google.ai.generativelanguage.{v1beta,v1alpha}.GenerativeService.BidiGenerateContent
 *     (an API key in ?key= or x-goog-api-key), and
 *   /ws/google.ai.generativelanguage.{v1beta,v1alpha}.GenerativeService.BidiGenerateContentConstrained
 *     (an ephemeral token, ?access_token=auth_tokens/...).
 * The SDKs send "//ws/..." (their base URL's "/" joined with "/ws/..."), which Google serves
 * too, so a second leading slash is accepted. Pure: no I/O, no allocation.
 */
#ifndef SKIFF_GEMINI_LIVE_H
#define SKIFF_GEMINI_LIVE_H

#include <stddef.h>

enum skiff_live_kind {
    SKIFF_LIVE_NONE = 0,    /* not a Live path */
    SKIFF_LIVE_KEY,         /* ...BidiGenerateContent */
    SKIFF_LIVE_CONSTRAINED, /* ...BidiGenerateContentConstrained */
};

/* Which Live path path is (len bytes, without the query); *version (when not NULL) gets
 * "v1beta" or "v1alpha" (static). */
enum skiff_live_kind skiff_live_path(const char *path, size_t len, const char **version);

/* The 400 for an upgrade anywhere else (a sentence naming the Live paths). */
extern const char skiff_live_upgrade_elsewhere[];

#endif
