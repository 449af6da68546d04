#ifndef SKIFF_SIM_AUTH_H
#define SKIFF_SIM_AUTH_H

/*
 * Inside `skiff sim`: the credentials of an API request (model calls and resource routes
 * alike) and Google's refusals of them. The names are sim.c's former statics (plan.h).
 */

#include "server/http.h"
#include "sim/plan.h"

/*
 * Reads the key into c->key (the x-goog-api-key header first, then ?key=; truncated to
 * the field), sets c->has_key, and c->bearer for an "Authorization: Bearer" credential.
 */
void read_credentials(const struct skiff_request *req, struct call *c);

/*
 * Google's answer for a key that may not call: plans it and returns -1 (Bearer → 401,
 * none → 403 unregistered callers, region_blocked → 400 FAILED_PRECONDITION, denied → 403,
 * unknown → 400 API_KEY_INVALID with ErrorInfo and LocalizedMessage). 0 when the key is
 * good (nothing planned).
 */
int plan_auth(struct sim_req *sr, const struct call *c);

#endif
