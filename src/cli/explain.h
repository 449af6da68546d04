/*
 * `skiff explain`: prints the advice of the one table (gemini/advice.h) for a status, a
 * status name, or a whole error read from stdin.
 */
#ifndef SKIFF_EXPLAIN_H
#define SKIFF_EXPLAIN_H

/* `skiff explain ARG`: prints the advice; 0 when found, 1 when not, 2 on usage errors. */
int skiff_explain_main(int argc, char **argv);

#endif
