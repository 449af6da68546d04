/*
 * `skiff keys`: what the key pool remembers (from storage.sqlite), and an operator's way to
 * bring a retired key back. Works on the database, so a running skiff sees a change at its
 * next start.
 */
#ifndef SKIFF_KEYS_H
#define SKIFF_KEYS_H

int skiff_keys_main(int argc, char **argv);

#endif
