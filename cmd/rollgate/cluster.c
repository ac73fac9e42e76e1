#include "cluster.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock/clock.h"
#include "config/kubeconfig.h"
#include "mem/mem.h"
#include "kube/kube.h"
#include "lease/leader.h"
#include "log/log.h"
#include "signals.h"

_Static_assert(RG_CONFIG_IDENTITY_MAX < sizeof(((struct rg_lease_record *)0)->holder),
               "the configuration accepts no identity the Lease would cut");

struct rg_cluster {
    const struct rg_config *cfg;
    struct rg_kube *kube;
    /* The store's Events (lock waits, progress), sent while the renewal thread uses kube:
     * a client of their own, made at the first, used by the step's thread alone. */
    struct rg_kube *events;
    bool events_failed;
    struct rg_pg *pg;
    char *ns;
    struct rg_leader *leader;
    struct rg_lock lock;
};

static int api_get(void *ctx, struct rg_lease_record *rec, struct rg_err *err)
{
    struct rg_cluster *c = ctx;
    return rg_kube_lease_get(c->kube, c->ns, c->cfg->lease.name, rec, err);
}

static int api_create(void *ctx, const struct rg_lease_record *want, struct rg_lease_record *got,
                      struct rg_err *err)
{
    struct rg_cluster *c = ctx;
    return rg_kube_lease_create(c->kube, c->ns, c->cfg->lease.name, want, got, err);
}

static int api_update(void *ctx, const struct rg_lease_record *want, struct rg_lease_record *got,
                      struct rg_err *err)
{
    struct rg_cluster *c = ctx;
    return rg_kube_lease_update(c->kube, c->ns, c->cfg->lease.name, want, got, err);
}

static void api_set_deadline(void *ctx, int64_t monotonic_ms)
{
    struct rg_cluster *c = ctx;
    rg_kube_set_deadline(c->kube, monotonic_ms);
}

static void microtime(void *ctx, char *buf, size_t n)
{
    (void)ctx;
    rg_kube_microtime(buf, n);
}

static void cancel_work(void *ctx)
{
    struct rg_cluster *c = ctx;
    rg_pg_cancel(c->pg);
}

/* The database judges whether the holder still runs: its sessions carry its identity. */
static int holder_alive(void *ctx, const char *holder, bool *alive, struct rg_err *err)
{
    struct rg_cluster *c = ctx;
    struct rg_store store;

    rg_pg_store(c->pg, &store);
    return store.run_alive(store.ctx, holder, alive, err);
}

static void leading(void *ctx)
{
    (void)ctx;
    /* From here a signal must leave the client working: releasing needs it. */
    rg_signals_attach_kube(NULL);
}

/* An Event on this pod, when the downward API says which. */
static void post_event(void *ctx, const char *type, const char *reason, const char *message)
{
    struct rg_cluster *c = ctx;
    const char *pod = c->cfg->env.pod_name, *ns = c->cfg->env.pod_namespace;
    struct rg_err err = {0};

    if (!pod || !ns)
        return;
    if (rg_kube_event(c->kube, ns, pod, type, reason, message, &err) < 0)
        RG_WARN("could not post an Event on the pod" RG_F "reason=%s" RG_F "error=%s", reason,
                err.msg);
}

/* A client for the API; budget_ms bounds each call (0: a renewal's budget). */
static int open_kube(const struct rg_config *cfg, const char *why, struct rg_kube **out,
                     int64_t budget_ms, struct rg_err *err)
{
    struct rg_kubeconfig kc = {0};
    /* client-go's budget: a renewal that has not got through by the renew deadline has
     * failed, so one call may retry for that long, each request for half of it. */
    struct rg_kube_opts ko = {
        .host = cfg->env.service_host,
        .port = cfg->env.service_port,
        .sa_dir = cfg->lease.service_account_dir,
        .request_timeout_ms = (budget_ms ? budget_ms : cfg->lease.renew_deadline_ms) / 2,
        .retry_budget_ms = budget_ms ? budget_ms : cfg->lease.renew_deadline_ms,
    };
    int rc;

    if (!ko.host && rg_kube_kubeconfig_load(cfg->env.kubeconfig, why, &kc, &ko, err) < 0)
        return -1;
    rc = rg_kube_new(out, &ko, err);
    /* The client keeps copies; the kubeconfig's secrets are wiped here. */
    rg_config_kubeconfig_free(&kc);
    return rc;
}

/* A LockWait or progress Event, sent while the step's statement runs on: it gets a short
 * budget, so an API that does not answer delays the run's next look at the database (and
 * its reaction to a signal) by at most that, and a failure is only logged. */
#define STORE_EVENT_BUDGET_MS 2000

static void store_event(void *ctx, const char *type, const char *reason, const char *message)
{
    struct rg_cluster *c = ctx;
    const char *pod = c->cfg->env.pod_name, *ns = c->cfg->env.pod_namespace;
    struct rg_err err = {0};

    if (!pod || !ns || c->events_failed)
        return;
    if (!c->events &&
        open_kube(c->cfg, "the pod's Events", &c->events, STORE_EVENT_BUDGET_MS, &err) < 0) {
        c->events_failed = true;
        RG_WARN("could not post an Event on the pod" RG_F "reason=%s" RG_F "error=%s", reason,
                err.msg);
        return;
    }
    rg_kube_set_deadline(c->events, rg_now_ms() + STORE_EVENT_BUDGET_MS);
    if (rg_kube_event(c->events, ns, pod, type, reason, message, &err) < 0)
        RG_WARN("could not post an Event on the pod" RG_F "reason=%s" RG_F "error=%s", reason,
                err.msg);
}

/* lease.namespace, else the service account's (the pod's) or the kubeconfig context's. */
static int namespace_of(const struct rg_config *cfg, const struct rg_kube *kube, char **ns,
                        struct rg_err *err)
{
    *ns = rg_strdup(*cfg->lease.namespace_ ? cfg->lease.namespace_ : rg_kube_namespace(kube));
    if (**ns)
        return 0;
    rg_err_set(err, RG_ECONFIG,
               "lease.namespace: empty, and the service account gives none; set it");
    return -1;
}

int rg_cluster_open(struct rg_cluster **out, const struct rg_config *cfg, struct rg_pg *pg,
                    struct rg_err *err)
{
    struct rg_cluster *c = NULL;
    struct rg_lease_api api = {NULL, api_get, api_create, api_update, api_set_deadline};
    struct rg_clock run;
    struct rg_lease_clock clock = {NULL, NULL, microtime};
    struct rg_leader_hooks hooks = {NULL, cancel_work, NULL, leading, post_event, holder_alive};
    struct rg_leader_opts lo = {
        .lease =
            {
                .identity = cfg->lease.identity,
                .duration_ms = cfg->lease.duration_ms,
                .renew_deadline_ms = cfg->lease.renew_deadline_ms,
                .retry_period_ms = cfg->lease.retry_period_ms,
            },
        .wait_timeout_ms = cfg->lease.wait_timeout_ms,
    };
    char *where = NULL;
    int ret = -1;

    *out = NULL;
    if (!rg_config_wants_lease(cfg))
        return 0;
    c = rg_calloc(1, sizeof(*c));
    c->cfg = cfg;
    c->pg = pg;
    if (open_kube(cfg, "lease.mode kubernetes", &c->kube, 0, err) < 0 ||
        namespace_of(cfg, c->kube, &c->ns, err) < 0)
        goto out;
    api.ctx = hooks.ctx = c;
    /* The run's clock and pause: the follower's wait ends with a signal or the timeout. */
    rg_signals_clock(&run);
    clock.monotonic_ms = run.now_ms;
    hooks.pause = run.pause;
    where = rg_asprintf("%s/%s", c->ns, cfg->lease.name);
    lo.where = where;
    c->leader = rg_leader_new(&api, &clock, &lo, &hooks);
    rg_leader_lock(c->leader, &c->lock);
    /* Until this run leads, a signal cuts its API calls short. */
    rg_signals_attach_kube(c->kube);
    rg_pg_on_event(pg, store_event, c);
    *out = c;
    c = NULL;
    ret = 0;
out:
    free(where);
    rg_cluster_close(c);
    return ret;
}

void rg_cluster_close(struct rg_cluster *c)
{
    if (!c)
        return;
    rg_signals_attach_kube(NULL);
    rg_pg_on_event(c->pg, NULL, NULL);
    rg_leader_free(c->leader);
    rg_kube_free(c->events);
    rg_kube_free(c->kube);
    free(c->ns);
    free(c);
}

const struct rg_lock *rg_cluster_lock(const struct rg_cluster *c)
{
    return c ? &c->lock : NULL;
}

size_t rg_cluster_requests(const struct rg_cluster *c)
{
    return c ? rg_kube_requests(c->kube) : 0;
}

int rg_cluster_wait_rollout(const struct rg_config *cfg, const char *deployment, struct rg_err *err)
{
    struct rg_kube *kube = NULL;
    char *ns = NULL;
    int ret = -1;

    if (open_kube(cfg, "--after-rollout", &kube, 0, err) < 0 ||
        namespace_of(cfg, kube, &ns, err) < 0)
        goto out;
    /* A signal or the run's timeout ends the wait at once, between looks or in a request. */
    rg_signals_attach_kube(kube);
    /* As for `wait`: the run's timeout bounds it when there is one, else lease.waitTimeout. */
    ret = rg_kube_rollout_wait(kube, ns, deployment,
                               cfg->timeout_ms ? 0 : cfg->lease.wait_timeout_ms, err);
    rg_signals_attach_kube(NULL);
    RG_INFO("Kubernetes API requests made" RG_F "requests=%zu", rg_kube_requests(kube));
out:
    free(ns);
    rg_kube_free(kube);
    return ret;
}
