#ifndef SKIFF_SIM_RESROUTE_H
#define SKIFF_SIM_RESROUTE_H

/*
 * Inside `skiff sim`: a request on a stored resource's route (files, cachedContents,
 * batches) handed to its module, which plans the reply (resource.h). The name is sim.c's
 * former static (plan.h).
 */

#include "server/http.h"
#include "sim/plan.h"
#include "sim/script.h"

/*
 * A request on a resource route: fills c and the log entry e (version, method, key), then
 * a script (matched on the method and the key; *latency gets its latencyMs), credentials
 * (a resumable chunk is authorised by its upload id), then the module's reply. Returns 0
 * with the reply planned, or -1 when the path is not a resource route (nothing touched).
 */
int plan_resource(struct sim *sim, struct skiff_request *req, struct sim_req *sr, struct call *c,
                  struct skiff_sim_log_entry *e, long *latency);

#endif
