#include "leader.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cancel/cancel.h"
#include "config/kubeconfig.h"
#include "err/clock.h"
#include "err/mem.h"
#include "kube/kube.h"
#include "lease/lease.h"
#include "log/log.h"
#include "signals.h"

struct rg_leader {
    const struct rg_config *cfg;
    struct rg_kube *kube;
    struct rg_lease lease;
    struct rg_pg *pg;
    char *ns;
    /* The renewal thread and how it is told to stop. */
    pthread_t renewer;
    bool renewing;
    struct rg_cancel *stop_renewing;
    atomic_bool lost;
    unsigned seed;
};

static int64_t monotonic_ms(void *ctx)
{
    (void)ctx;
    return rg_now_ms();
}

static void microtime(void *ctx, char *buf, size_t n)
{
    (void)ctx;
    rg_kube_microtime(buf, n);
}

static int api_get(void *ctx, struct rg_lease_record *rec, struct rg_err *err)
{
    struct rg_leader *l = ctx;
    return rg_kube_lease_get(l->kube, l->ns, l->cfg->lease.name, rec, err);
}

static int api_create(void *ctx, const struct rg_lease_record *want, struct rg_lease_record *got,
                      struct rg_err *err)
{
    struct rg_leader *l = ctx;
    return rg_kube_lease_create(l->kube, l->ns, l->cfg->lease.name, want, got, err);
}

static int api_update(void *ctx, const struct rg_lease_record *want, struct rg_lease_record *got,
                      struct rg_err *err)
{
    struct rg_leader *l = ctx;
    return rg_kube_lease_update(l->kube, l->ns, l->cfg->lease.name, want, got, err);
}

/* lease.mode kubernetes without KUBERNETES_SERVICE_HOST: the kubeconfig's current context
 * into ko, whose strings then point into kc. */
static int from_kubeconfig(const struct rg_config *cfg, struct rg_kubeconfig *kc,
                           struct rg_kube_opts *ko, struct rg_err *err)
{
    const char *path = cfg->env.kubeconfig;

    if (!path) {
        rg_err_set(err, RG_ECONFIG,
                   "lease.mode kubernetes outside a cluster needs a kubeconfig: set KUBECONFIG "
                   "(or HOME for ~/.kube/config)");
        return -1;
    }
    if (rg_config_read_kubeconfig(path, kc, err) < 0) {
        rg_err_prefix(err, "lease.mode kubernetes outside a cluster (no KUBERNETES_SERVICE_HOST)");
        return -1;
    }
    RG_INFO("not in a cluster: using the kubeconfig" RG_F "kubeconfig=%s" RG_F "context=%s", path,
            kc->context);
    ko->server = kc->server;
    ko->namespace_ = *kc->namespace_ ? kc->namespace_ : "default";
    ko->ca_file = kc->ca_file;
    ko->ca_pem = kc->ca_pem;
    ko->token = kc->token;
    ko->token_file = kc->token_file;
    ko->cert_file = kc->cert_file;
    ko->cert_pem = kc->cert_pem;
    ko->key_file = kc->key_file;
    ko->key_pem = kc->key_pem;
    return 0;
}

int rg_leader_new(struct rg_leader **out, const struct rg_config *cfg, struct rg_pg *pg,
                  struct rg_err *err)
{
    struct rg_leader *l = rg_calloc(1, sizeof(*l));
    struct rg_kubeconfig kc = {0};
    int rc;
    /* client-go's budget: a renewal that has not got through by the renew deadline has
     * failed, so one call may retry for that long, each request for half of it. */
    struct rg_kube_opts ko = {
        .host = cfg->env.service_host,
        .port = cfg->env.service_port,
        .sa_dir = cfg->lease.service_account_dir,
        .request_timeout_ms = cfg->lease.renew_deadline_ms / 2,
        .retry_budget_ms = cfg->lease.renew_deadline_ms,
    };
    struct rg_lease_api api = {l, api_get, api_create, api_update};
    struct rg_lease_clock clock = {l, monotonic_ms, microtime};
    struct rg_lease_opts lo = {
        .identity = cfg->lease.identity,
        .duration_ms = cfg->lease.duration_ms,
        .renew_deadline_ms = cfg->lease.renew_deadline_ms,
        .retry_period_ms = cfg->lease.retry_period_ms,
    };

    *out = NULL;
    if (!ko.host) {
        if (from_kubeconfig(cfg, &kc, &ko, err) < 0) {
            free(l);
            return -1;
        }
    }
    rc = rg_kube_new(&l->kube, &ko, err);
    /* The client keeps copies; the kubeconfig's secrets are wiped here. */
    rg_config_kubeconfig_free(&kc);
    if (rc < 0) {
        free(l);
        return -1;
    }
    l->cfg = cfg;
    l->pg = pg;
    l->ns = rg_strdup(*cfg->lease.namespace_ ? cfg->lease.namespace_ : rg_kube_namespace(l->kube));
    if (!*l->ns) {
        rg_err_set(err, RG_ECONFIG,
                   "lease.namespace: empty, and the service account gives none; set it");
        rg_leader_free(l);
        return -1;
    }
    atomic_init(&l->lost, false);
    l->seed = (unsigned)getpid() ^ (unsigned)rg_now_ms();
    rg_lease_init(&l->lease, &api, &clock, &lo);
    rg_signals_attach_kube(l->kube);
    *out = l;
    return 0;
}

void rg_leader_free(struct rg_leader *l)
{
    if (!l)
        return;
    rg_signals_attach_kube(NULL);
    rg_kube_free(l->kube);
    rg_cancel_free(l->stop_renewing);
    free(l->ns);
    free(l);
}

size_t rg_leader_requests(const struct rg_leader *l)
{
    return l ? rg_kube_requests(l->kube) : 0;
}

/* An Event on this pod, when the downward API says which; failing to post one never
 * fails the run. */
static void event(struct rg_leader *l, const char *type, const char *reason, const char *message)
{
    const char *pod = l->cfg->env.pod_name, *ns = l->cfg->env.pod_namespace;
    struct rg_err err = {0};

    if (!pod || !ns)
        return;
    if (rg_kube_event(l->kube, ns, pod, type, reason, message, &err) < 0)
        RG_WARN("could not post an Event on the pod" RG_F "reason=%s" RG_F "error=%s", reason,
                err.msg);
}

static int64_t jittered(struct rg_leader *l)
{
    return rg_lease_jittered_retry_ms(&l->lease, (uint32_t)rand_r(&l->seed));
}

/* While leading: renew every retry period. Past the renew deadline without a renewal, or
 * with another holder in the record, the lease is lost: cancel the running statement so
 * its transaction rolls back before another run can start the same work. */
static void *renew(void *arg)
{
    struct rg_leader *l = arg;

    while (rg_cancel_sleep(l->stop_renewing, jittered(l))) {
        struct rg_err err = {0};
        bool held = false;

        /* The whole attempt, however the API answers, ends by the renew deadline. */
        rg_kube_set_deadline(l->kube, l->lease.renewed_at_ms + l->cfg->lease.renew_deadline_ms);
        if (rg_lease_try(&l->lease, &held, &err) < 0)
            RG_WARN("lease renewal failed" RG_F "error=%s", err.msg);
        rg_kube_set_deadline(l->kube, 0);
        if (held)
            continue;
        if (rg_lease_renew_overdue(&l->lease) || rg_lease_other_valid(&l->lease)) {
            RG_ERROR("lost the lease; cancelling the running migration" RG_F "holder=%s",
                     l->lease.observed.holder);
            atomic_store(&l->lost, true);
            rg_pg_cancel(l->pg);
            break;
        }
    }
    return NULL;
}

static int acquire(void *ctx, int (*work_left)(void *arg, size_t *left, struct rg_err *err),
                   void *arg, enum rg_lock_outcome *outcome, struct rg_err *err)
{
    struct rg_leader *l = ctx;
    int64_t start = rg_now_ms();
    size_t before = SIZE_MAX;

    for (;;) {
        bool acquired = false;
        size_t left = 0;
        int64_t next_try;

        if (rg_lease_try(&l->lease, &acquired, err) < 0)
            return -1;
        if (acquired) {
            RG_INFO("leading: holding the lease" RG_F "lease=%s/%s" RG_F "identity=%s", l->ns,
                    l->cfg->lease.name, l->cfg->lease.identity);
            /* From here a signal must leave the client working: releasing needs it. */
            rg_signals_attach_kube(NULL);
            l->stop_renewing = rg_cancel_new();
            l->renewing = pthread_create(&l->renewer, NULL, renew, l) == 0;
            if (!l->renewing) {
                /* Leading without renewing would let the Lease lapse mid-migration. */
                rg_err_set(err, RG_EINTERNAL, "could not start the lease renewal thread");
                if (rg_lease_release(&l->lease, err) < 0)
                    RG_WARN("could not release the lease" RG_F "error=%s", err->msg);
                return -1;
            }
            event(l, "Normal", "MigrationStarted", "rollgate is applying migrations");
            *outcome = RG_LOCK_LEADER;
            return 0;
        }
        /* Held elsewhere. Wait on the database, which says when the work is done, and
         * read the Lease again only once its holder could have let it expire. A create
         * that lost the race leaves no record observed: its winner holds it from now. */
        next_try = rg_now_ms() + (l->lease.observed.exists ? rg_lease_expires_in(&l->lease)
                                                           : l->cfg->lease.duration_ms);
        if (before == SIZE_MAX)
            RG_INFO("waiting: another run holds the lease" RG_F "holder=%s",
                    l->lease.observed.holder);
        /* The database first, at least once: a holder seen releasing (an empty record,
         * due now) has usually just finished the work. */
        do {
            if (work_left(arg, &left, err) < 0)
                return -1;
            if (!left) {
                *outcome = RG_LOCK_DONE_ELSEWHERE;
                return 0;
            }
            /* While the leader makes progress the database shows it alive. When it shows
             * none (a long migration, or a dead leader), read the Lease every retry period,
             * so that the last renewal is seen soon after it happened and a dead holder is
             * taken over within its duration and a retry period. */
            if (left >= before)
                next_try = rg_now_ms();
            before = left;
            if (rg_now_ms() - start >= l->cfg->lease.wait_timeout_ms) {
                rg_err_set(err, RG_ELEASE,
                           "the lease is still held by %s after lease.waitTimeout, and "
                           "migrations are still pending",
                           *l->lease.observed.holder ? l->lease.observed.holder : "another run");
                return -1;
            }
            if (!rg_signals_pause(jittered(l))) {
                rg_err_set(err, RG_ESIGNAL, "stopped while waiting for the lease");
                return -1;
            }
        } while (rg_now_ms() < next_try);
    }
}

static int release(void *ctx, bool succeeded, bool *lost, struct rg_err *err)
{
    struct rg_leader *l = ctx;

    if (l->renewing) {
        rg_cancel_fire(l->stop_renewing);
        pthread_join(l->renewer, NULL);
        l->renewing = false;
    }
    *lost = atomic_load(&l->lost);
    event(l, succeeded ? "Normal" : "Warning", succeeded ? "MigrationSucceeded" : "MigrationFailed",
          succeeded ? "rollgate applied the migrations"
                    : "rollgate could not apply the migrations");
    return *lost ? 0 : rg_lease_release(&l->lease, err);
}

void rg_leader_lock(struct rg_leader *l, struct rg_lock *lock)
{
    lock->ctx = l;
    lock->acquire = acquire;
    lock->release = release;
}

int rg_leader_held(struct rg_leader *l, bool *held, struct rg_err *err)
{
    struct rg_lease_record rec = {0};

    if (rg_kube_lease_get(l->kube, l->ns, l->cfg->lease.name, &rec, err) < 0)
        return -1;
    /* Observe it as the algorithm does, so a holder that died stops counting once its
     * record has stood still for its duration; every write changes resourceVersion. */
    if (strcmp(rec.resource_version, l->lease.observed.resource_version) != 0) {
        l->lease.observed = rec;
        l->lease.observed_at_ms = rg_now_ms();
    }
    *held = rec.exists && *rec.holder && rg_lease_other_valid(&l->lease);
    return 0;
}
