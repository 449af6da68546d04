#ifndef SKIFF_SIM_CONTROL_H
#define SKIFF_SIM_CONTROL_H

/*
 * Inside `skiff sim`: the /_sim/ control endpoints, for loopback clients only (the caller
 * checks the peer): GET /_sim/log, GET and POST /_sim/script, POST /_sim/reset, POST
 * /_sim/expire (docs/internals/sim.md, "Scripted mode"). The name is sim.c's former
 * static (plan.h).
 */

#include "server/http.h"
#include "sim/plan.h"

/* Answers a request whose path begins with /_sim/ (404 "Method not found." for others). */
void handle_control(struct sim *sim, struct skiff_request *req);

#endif
