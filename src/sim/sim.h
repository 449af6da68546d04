/*
 * `skiff sim`: a Gemini API simulator on skiff's own server core, with quota emulation,
 * fault injection and a loopback-only scripted mode (docs/internals/sim.md).
 */
#ifndef SKIFF_SIM_H
#define SKIFF_SIM_H

/*
 * Runs the simulator until SIGINT/SIGTERM. argv[0] is "sim"; the flags are those of
 * simconf.h. Prints "skiff sim listening on http://HOST:PORT" on stdout once bound.
 * Returns the process exit code: 0 after a clean stop, 2 for bad flags or config, 1 when
 * the server cannot start.
 */
int skiff_sim_main(int argc, char **argv);

#endif
