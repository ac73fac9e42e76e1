/* A small client for the Kubernetes API: in-cluster (or kubeconfig) credentials, Leases
 * (coordination.k8s.io/v1), Events, and a Deployment's rollout (apps/v1). The only user of libcurl.
 */
#ifndef RG_KUBE_H
#define RG_KUBE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err/err.h"
/* Outside a cluster the options come from a kubeconfig that pkg/config reads (plain
 * strings: pkg/kube never sees YAML); rg_kube_kubeconfig_load points them at its strings. */
#include "config/kubeconfig.h"
/* The Lease calls below serve pkg/lease's API port, so they speak its record type, as
 * pkg/pg serves the engine's store port (engine/ports.h). */
#include "lease/lease.h"

#define RG_KUBE_SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"

struct rg_kube;

struct rg_kube_opts {
    /* In-cluster: KUBERNETES_SERVICE_HOST / KUBERNETES_SERVICE_PORT (an IPv6 host is
     * bracketed in the URL) and the service-account directory (token, ca.crt, namespace);
     * the token is read again before every request, since bound tokens rotate. */
    const char *host;
    const char *port;
    const char *sa_dir; /* NULL: RG_KUBE_SA_DIR */
    /* Outside a cluster (host NULL): the values of a kubeconfig's current context, as
     * plain strings (rg_kube_kubeconfig_load sets them). server is an
     * https:// URL; the CA is ca_pem or ca_file; the credentials are a bearer token (token,
     * or token_file, read again before every request) and/or a client certificate
     * (cert_pem or cert_file, with key_pem or key_file). namespace_ NULL or "": unknown. */
    const char *server;
    const char *namespace_;
    const char *ca_file;
    const char *ca_pem;
    const char *token; /* secret */
    const char *token_file;
    const char *cert_file;
    const char *cert_pem;
    const char *key_file;
    const char *key_pem;        /* secret */
    int64_t request_timeout_ms; /* one HTTP request, connection included; 0: the default */
    int64_t retry_budget_ms;    /* retries of one call (connection errors, 429, 5xx); 0: the
                                   default */
};

/* Outside a cluster (no KUBERNETES_SERVICE_HOST): reads the kubeconfig at path into *kc
 * (rg_config_read_kubeconfig: its current context) and points ko's server, CA, credentials
 * and namespace_ (the context's, else "default", as kubectl) at kc's strings, leaving ko's
 * other fields alone; logs the kubeconfig and context used, never a secret. kc must outlive
 * ko's use: free it (rg_config_kubeconfig_free, which wipes the secrets) once rg_kube_new has
 * taken its copies. why says what needs the API ("lease.mode kubernetes"), for messages.
 * kc need not be initialised; on error it holds nothing to free. Errors are RG_ECONFIG:
 * "<why> outside a cluster needs a kubeconfig: set KUBECONFIG (or HOME for
 * ~/.kube/config)" when path is NULL, else rg_config_read_kubeconfig's message (the file,
 * and the context, cluster or user at fault; never a secret) behind "<why> outside a
 * cluster (no KUBERNETES_SERVICE_HOST): ". */
int rg_kube_kubeconfig_load(const char *path, const char *why, struct rg_kubeconfig *kc,
                            struct rg_kube_opts *ko, struct rg_err *err) RG_WUR;

#define RG_KUBE_REQUEST_TIMEOUT_MS 5000
#define RG_KUBE_RETRY_BUDGET_MS 30000

/* Reads what the credentials need now (CA, token, client certificate, namespace), so a
 * missing file fails here (RG_ECONFIG naming it), not in the middle of a run; a missing
 * namespace file only makes rg_kube_namespace "". TLS is always verified, against the
 * cluster's CA alone (ca.crt, or the kubeconfig's). With neither host nor server:
 * RG_ECONFIG. */
int rg_kube_new(struct rg_kube **out, const struct rg_kube_opts *opts, struct rg_err *err) RG_WUR;
void rg_kube_free(struct rg_kube *k);
/* The service account's namespace (or the kubeconfig context's), "" when unknown. */
const char *rg_kube_namespace(const struct rg_kube *k);
/* Safe from another thread: stops retries and a request in flight (curl checks about once a
 * second or sooner), and makes later calls fail with RG_ESIGNAL at once. */
void rg_kube_cancel(struct rg_kube *k);
/* Calls from now on give up (RG_EAPI) at this monotonic time (CLOCK_MONOTONIC, ms),
 * whatever their own retry budget says; 0 removes it. A leader's renewal must be over by
 * its renew deadline, as in client-go. */
void rg_kube_set_deadline(struct rg_kube *k, int64_t monotonic_ms);
/* HTTP requests sent so far (retries included), for logs and tests. */
size_t rg_kube_requests(const struct rg_kube *k);

/* Errors of the calls below: RG_EAPIDENIED for 401/403, RG_EAPI for anything else that
 * retries could not mend, each carrying the Kubernetes Status message and reason;
 * RG_ESIGNAL when cancelled; RG_ECONFIG for a namespace or name that is not a valid
 * Kubernetes name (nothing is sent). Connection errors, timeouts, 429 and 5xx are retried,
 * waiting 200 ms doubling to 5 s plus up to 25% jitter, or Retry-After when longer, while
 * the next attempt would start within retry_budget_ms of the call's start; then RG_EAPI
 * "Kubernetes API unavailable after N attempts: <the last error>". TLS verification
 * failures are not retried. */

/* rec->exists is false on 404. */
int rg_kube_lease_get(struct rg_kube *k, const char *ns, const char *name,
                      struct rg_lease_record *rec, struct rg_err *err) RG_WUR;
/* Creates the Lease from want; *got is the stored object. Returns 1 (not an error) when
 * it already exists (409). */
int rg_kube_lease_create(struct rg_kube *k, const char *ns, const char *name,
                         const struct rg_lease_record *want, struct rg_lease_record *got,
                         struct rg_err *err) RG_WUR;
/* Replaces the Lease's spec with want's, sending want->resource_version; *got is the
 * stored object. Fields the record does not hold (labels, annotations, other spec fields)
 * are sent back as last read by this client. Returns 1 (not an error) on 409 (someone
 * changed it first) and on 404 (deleted since it was read): read it again. */
int rg_kube_lease_update(struct rg_kube *k, const char *ns, const char *name,
                         const struct rg_lease_record *want, struct rg_lease_record *got,
                         struct rg_err *err) RG_WUR;
/* An Event about a Pod (type "Normal" or "Warning"); reason is CamelCase. */
int rg_kube_event(struct rg_kube *k, const char *ns, const char *pod, const char *type,
                  const char *reason, const char *message, struct rg_err *err) RG_WUR;

/* Polls the Deployment (0.5 s doubling to 5 s between GETs, on the client's cancellable
 * sleep) until its rollout is complete. Errors: RG_ELEASE at once when the Progressing
 * condition says ProgressDeadlineExceeded, or after limit_ms (0: no limit) naming what is
 * missing; RG_ESIGNAL, naming it too, when rg_kube_cancel cut the wait short (a signal, the
 * run's timeout); rg_kube_deployment_get's. */
int rg_kube_rollout_wait(struct rg_kube *k, const char *ns, const char *name, int64_t limit_ms,
                         struct rg_err *err) RG_WUR;

/* Now as MicroTime, into buf (at least 32 bytes). */
void rg_kube_microtime(char *buf, size_t n);

#endif
