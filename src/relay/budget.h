/*
 * The retry budget: retries may add at most a fraction of the traffic (20% of recent
 * requests, plus a small floor per second for quiet times), so an outage of the upstream
 * does not turn skiff into a retry storm. Shared by every worker; a mutex guards two numbers.
 */
#ifndef SKIFF_BUDGET_H
#define SKIFF_BUDGET_H

#include <stdint.h>

struct skiff_budget;

/* ratio: retries allowed per request (0.2); floor_per_s: retries always allowed per second. */
struct skiff_budget *skiff_budget_new(double ratio, double floor_per_s);
void skiff_budget_free(struct skiff_budget *b);

/* A new client request arrived: deposits `ratio` of a retry. */
void skiff_budget_deposit(struct skiff_budget *b, int64_t now_ms);

/* Takes one retry from the budget; 0 when it is spent (fail fast instead). */
int skiff_budget_withdraw(struct skiff_budget *b, int64_t now_ms);

#endif
