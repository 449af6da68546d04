/*
 * skiff with one more door: `serve` runs the real server with the chirp door (chirp.h) in
 * front of the built-in ones; `sim` is the real simulator, so the integration test can use
 * this binary for both, as tests/integration/lib.mjs expects of SKIFF_BIN.
 */
#include <stdio.h>
#include <string.h>

#include "chirp.h"
#include "cli/serve.h"
#include "doors/dispatch.h"
#include "server/server.h"
#include "sim/sim.h"

int
main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: skiff_test_door serve|sim [options]\n");
        return 2;
    }
    skiff_server_block_signals();
    if (strcmp(argv[1], "sim") == 0)
        return skiff_sim_main(argc - 1, argv + 1);
    if (strcmp(argv[1], "serve") != 0) {
        fprintf(stderr, "skiff_test_door: unknown command '%s'\n", argv[1]);
        return 2;
    }
    if (skiff_dispatch_add_door(&chirp_door))
        return 1;
    return skiff_serve_main(argc - 1, argv + 1);
}
