#include "relay/budget.h"

#include <pthread.h>
#include <stdlib.h>

/* The balance never grows past what 10 s of traffic would deposit, so a long quiet period
 * does not bank an unlimited burst of retries. */
#define WINDOW_S 10.0

struct skiff_budget {
    pthread_mutex_t mu;
    double ratio;
    double floor_per_s;
    double balance;
    double deposits_per_s; /* a decaying estimate of deposits, to cap the balance */
    int64_t last_ms;
};

struct skiff_budget *
skiff_budget_new(double ratio, double floor_per_s)
{
    struct skiff_budget *b = calloc(1, sizeof *b);
    if (!b)
        return NULL;
    pthread_mutex_init(&b->mu, NULL);
    b->ratio = ratio;
    b->floor_per_s = floor_per_s;
    b->balance = floor_per_s * WINDOW_S;
    return b;
}

void
skiff_budget_free(struct skiff_budget *b)
{
    if (!b)
        return;
    pthread_mutex_destroy(&b->mu);
    free(b);
}

/* Adds the floor's share for the time since the last call. Called with the lock held. */
static void
refill(struct skiff_budget *b, int64_t now_ms)
{
    if (b->last_ms == 0)
        b->last_ms = now_ms;
    double dt = (double)(now_ms - b->last_ms) / 1000.0;
    if (dt <= 0)
        return;
    b->last_ms = now_ms;
    b->balance += dt * b->floor_per_s;
    b->deposits_per_s *= dt >= WINDOW_S ? 0 : 1 - dt / WINDOW_S;
    double cap = (b->floor_per_s + b->deposits_per_s) * WINDOW_S;
    if (b->balance > cap)
        b->balance = cap;
}

void
skiff_budget_deposit(struct skiff_budget *b, int64_t now_ms)
{
    pthread_mutex_lock(&b->mu);
    refill(b, now_ms);
    b->balance += b->ratio;
    b->deposits_per_s += b->ratio / WINDOW_S;
    pthread_mutex_unlock(&b->mu);
}

int
skiff_budget_withdraw(struct skiff_budget *b, int64_t now_ms)
{
    pthread_mutex_lock(&b->mu);
    refill(b, now_ms);
    int ok = b->balance >= 1.0;
    if (ok)
        b->balance -= 1.0;
    pthread_mutex_unlock(&b->mu);
    return ok;
}
