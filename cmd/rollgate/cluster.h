/* The Kubernetes pieces of a command: the API client built from the configuration (in a
 * cluster, or from a kubeconfig outside one) and the Lease leader over it (pkg/lease), its
 * hooks wired to the database connection and the signal watcher. */
#ifndef RG_CLUSTER_H
#define RG_CLUSTER_H

#include <stddef.h>

#include "config/config.h"
#include "engine/ports.h"
#include "pg/pg.h"

struct rg_cluster;

/* *out is NULL when the configuration wants no Lease (rg_config_wants_lease). pg is the
 * connection to cancel when the Lease is lost while leading. Errors: RG_ECONFIG
 * (credentials or namespace missing). */
int rg_cluster_open(struct rg_cluster **out, const struct rg_config *cfg, struct rg_pg *pg,
                    struct rg_err *err) RG_WUR;
void rg_cluster_close(struct rg_cluster *c);

/* The Lease as the engine's lock; NULL for a NULL c (no Lease: the database fence alone). */
const struct rg_lock *rg_cluster_lock(const struct rg_cluster *c);

/* migrate --after-rollout: waits, through the API (in the cluster, or the kubeconfig's),
 * until the rollout of Deployment deployment in lease.namespace (else the service
 * account's) is complete (rg_kube_rollout_wait), bounded by the run's timeout, else by
 * lease.waitTimeout. Touches no database: run it before opening one. */
int rg_cluster_wait_rollout(const struct rg_config *cfg, const char *deployment,
                            struct rg_err *err) RG_WUR;

/* HTTP requests made to the API server so far. */
size_t rg_cluster_requests(const struct rg_cluster *c);

#endif
