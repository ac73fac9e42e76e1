/* The Kubernetes Lease as the engine's lock (ports.h): acquire, renew on a thread of its
 * own while leading, release, and Events on the pod. */
#ifndef RG_LEADER_H
#define RG_LEADER_H

#include <stdbool.h>

#include "config/config.h"
#include "engine/ports.h"
#include "pg/pg.h"

struct rg_leader;

/* pg is the connection to cancel when the lease is lost while leading. Errors: RG_ECONFIG
 * (credentials missing). */
int rg_leader_new(struct rg_leader **out, const struct rg_config *cfg, struct rg_pg *pg,
                  struct rg_err *err) RG_WUR;
void rg_leader_free(struct rg_leader *l);
void rg_leader_lock(struct rg_leader *l, struct rg_lock *lock);

/* For `wait`, which never writes: reads the Lease and says whether a run holds it, judged
 * like the algorithm does (a holder whose record has not changed for its duration, as
 * this process has seen it, holds it no more). */
int rg_leader_held(struct rg_leader *l, bool *held, struct rg_err *err) RG_WUR;

/* HTTP requests made to the API server so far. */
size_t rg_leader_requests(const struct rg_leader *l);

#endif
