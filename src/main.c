/* skiff: argv -> subcommand. No logic lives here. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/doctor.h"
#include "cli/explain.h"
#include "cli/keys.h"
#include "base/log.h"
#include "cli/serve.h"
#include "server/server.h"
#include "sim/sim.h"

#define SKIFF_VERSION "0.1.0"

static int
usage(FILE *f)
{
    fprintf(f,
            "skiff %s: a relay for the Gemini API\n\n"
            "usage: skiff <command> [options]\n\n"
            "  serve [--config FILE]     relay the Gemini API (keys, retries, streams)\n"
            "  sim [--listen HOST:PORT]  a Gemini API simulator with faults and quotas\n"
            "  explain CODE|STATUS|-     what a Gemini error means and how to fix it\n"
            "  doctor [--config FILE]    check the config and every upstream key\n"
            "  keys [enable LABEL]       resting and retired keys; bring one back\n"
            "  version                   print the version\n\n"
            "Logs are JSON lines on stderr; SKIFF_LOG_LEVEL=debug|info|warn|error.\n",
            SKIFF_VERSION);
    return f == stderr ? 2 : 0;
}

int
main(int argc, char **argv)
{
    const char *lvl = getenv("SKIFF_LOG_LEVEL");
    if (lvl && skiff_log_level_parse(lvl) >= 0)
        skiff_log_set_level((enum skiff_log_level)skiff_log_level_parse(lvl));
    if (argc < 2)
        return usage(stderr);
    const char *cmd = argv[1];
    /* The servers take signals on a thread of their own (sigwait), so they are blocked before
     * the store or the refresher start threads; the other commands keep the default: Ctrl-C
     * stops a doctor waiting on an upstream or an explain reading stdin. */
    if (strcmp(cmd, "serve") == 0 || strcmp(cmd, "sim") == 0)
        skiff_server_block_signals();
    signal(SIGPIPE, SIG_IGN); /* a peer gone mid-write is an error to handle, not a death */
    if (strcmp(cmd, "serve") == 0)
        return skiff_serve_main(argc - 1, argv + 1);
    if (strcmp(cmd, "sim") == 0)
        return skiff_sim_main(argc - 1, argv + 1);
    if (strcmp(cmd, "keys") == 0)
        return skiff_keys_main(argc - 1, argv + 1);
    if (strcmp(cmd, "explain") == 0)
        return skiff_explain_main(argc - 1, argv + 1);
    if (strcmp(cmd, "doctor") == 0)
        return skiff_doctor_main(argc - 1, argv + 1);
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("skiff %s\n", SKIFF_VERSION);
        return 0;
    }
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0)
        return usage(stdout);
    fprintf(stderr, "skiff: unknown command '%s'\n\n", cmd);
    return usage(stderr);
}
