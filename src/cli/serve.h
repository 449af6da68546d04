/* `skiff serve`: load the config, start the relay's workers, run until SIGINT/SIGTERM. */
#ifndef SKIFF_SERVE_H
#define SKIFF_SERVE_H

int skiff_serve_main(int argc, char **argv);

#endif
