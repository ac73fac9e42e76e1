/* Deployments (apps/v1): reading one's rollout state, and waiting until its rollout is
 * complete, for migrate --phase post --after-rollout. */
#include "kube/internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock/clock.h"
#include "log/log.h"
#include "mem/mem.h"

#define DEPLOYMENT "/apis/apps/v1/namespaces/%s/deployments/%s"
/* Between looks at the Deployment: soon at first (the rollout may be done already), then
 * no more often than a few times a minute, which the API server does not notice. */
#define POLL_FIRST_MS 500
#define POLL_MAX_MS 5000

/* An absent or null count reads as 0 (the API leaves out zero values); spec.replicas
 * defaults to 1, as the API server's defaulting does. */
static int get_count(const cJSON *obj, const char *key, const char *field, int64_t def,
                     int64_t *out, struct rg_err *err)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);
    double v;

    *out = def;
    if (!item || cJSON_IsNull(item))
        return 0;
    v = item->valuedouble;
    /* Generations are int64 in the API, replicas int32; a double holds both exactly as
     * far as 2^53, which no real generation reaches. In range, the cast is defined. */
    if (!cJSON_IsNumber(item) || !(v >= 0 && v <= 9007199254740992.0) || v != (double)(int64_t)v) {
        rg_err_set(err, RG_EAPI, "%s is not a count", field);
        return -1;
    }
    *out = (int64_t)v;
    return 0;
}

/* What a Deployment (apps/v1) says of its rollout; counts absent from it read as 0, and
 * desired (spec.replicas) as 1. */
struct rollout {
    int64_t generation;          /* metadata.generation */
    int64_t observed_generation; /* status.observedGeneration */
    int64_t desired;             /* spec.replicas */
    int64_t replicas;            /* status.replicas: old and new pods */
    int64_t updated;             /* status.updatedReplicas */
    int64_t available;           /* status.availableReplicas */
    /* The Progressing condition says ProgressDeadlineExceeded, with its message. */
    bool deadline_exceeded;
    char message[256];
};

/* The Progressing condition with reason ProgressDeadlineExceeded: the Deployment
 * controller has given up on this rollout, and waiting longer changes nothing. */
static void read_conditions(const cJSON *status, struct rollout *r)
{
    const cJSON *conds = cJSON_GetObjectItemCaseSensitive(status, "conditions");
    const cJSON *c;

    cJSON_ArrayForEach(c, conds)
    {
        const char *type = rg_kube_json_string(c, "type");
        const char *reason = rg_kube_json_string(c, "reason");
        const char *message = rg_kube_json_string(c, "message");

        if (!type || strcmp(type, "Progressing") != 0 || !reason ||
            strcmp(reason, "ProgressDeadlineExceeded") != 0)
            continue;
        r->deadline_exceeded = true;
        snprintf(r->message, sizeof(r->message), "%s", message ? message : "");
    }
}

static int rollout_from_json(const cJSON *json, struct rollout *r, struct rg_err *err)
{
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(json, "metadata");
    const cJSON *spec = cJSON_GetObjectItemCaseSensitive(json, "spec");
    const cJSON *status = cJSON_GetObjectItemCaseSensitive(json, "status");
    const char *kind = rg_kube_json_string(json, "kind");

    memset(r, 0, sizeof(*r));
    if (!kind || strcmp(kind, "Deployment") != 0 || !cJSON_IsObject(meta)) {
        rg_err_set(err, RG_EAPI, "the response is not a Deployment");
        return -1;
    }
    if (get_count(meta, "generation", "metadata.generation", 0, &r->generation, err) != 0 ||
        get_count(spec, "replicas", "spec.replicas", 1, &r->desired, err) != 0 ||
        get_count(status, "observedGeneration", "status.observedGeneration", 0,
                  &r->observed_generation, err) != 0 ||
        get_count(status, "replicas", "status.replicas", 0, &r->replicas, err) != 0 ||
        get_count(status, "updatedReplicas", "status.updatedReplicas", 0, &r->updated, err) != 0 ||
        get_count(status, "availableReplicas", "status.availableReplicas", 0, &r->available, err) !=
            0)
        return -1;
    read_conditions(status, r);
    return 0;
}

/* GET of deployments/name. Errors as the client's calls, and RG_ECONFIG on 404 (the name is the
 * configuration's). */
static int deployment_get(struct rg_kube *k, const char *ns, const char *name, struct rollout *r,
                          struct rg_err *err)
{
    struct rg_kube_response resp = {0, NULL, 0};
    cJSON *json = NULL;
    char *path = NULL;
    int rc = -1;

    memset(r, 0, sizeof(*r));
    if (rg_kube_check_name("namespace", ns, err) != 0 ||
        rg_kube_check_name("Deployment name", name, err) != 0)
        return -1;
    path = rg_asprintf(DEPLOYMENT, ns, name);
    if (rg_kube_call(k, "GET", path, NULL, &resp, err) != 0)
        goto out;
    /* The name comes from the configuration (the chart's value): waiting or retrying
     * cannot make it right. */
    if (resp.status == 404) {
        rg_err_set(err, RG_ECONFIG,
                   "Deployment %s/%s not found: check the name given to --after-rollout "
                   "(chart value migrations.postDeploy.deployment) and the namespace",
                   ns, name);
        goto out;
    }
    if (resp.status != 200) {
        rg_kube_status_error(k, RG_EAPI, "GET", path, &resp, err);
        goto out;
    }
    json = cJSON_ParseWithLength(resp.body, resp.len);
    if (!json) {
        rg_err_set(err, RG_EAPI, "the response is not JSON");
        rg_err_prefix(err, "GET %s%s", k->base_url, path);
        goto out;
    }
    if (rollout_from_json(json, r, err) != 0) {
        rg_err_prefix(err, "GET %s%s", k->base_url, path);
        goto out;
    }
    rc = 0;
out:
    cJSON_Delete(json);
    rg_kube_response_free(&resp);
    free(path);
    return rc;
}

/* kubectl rollout status's test: the controller has observed the latest generation, and
 * every desired replica is updated and available with no old one left. When not, what is
 * missing goes into missing (n bytes), for a message. */
static bool rollout_complete(const struct rollout *r, char *missing, size_t n)
{
    if (r->generation > r->observed_generation)
        snprintf(missing, n,
                 "the controller has not observed the latest spec yet (generation %" PRId64
                 ", observed %" PRId64 ")",
                 r->generation, r->observed_generation);
    else if (r->updated < r->desired)
        snprintf(missing, n, "%" PRId64 " of %" PRId64 " replicas updated", r->updated, r->desired);
    else if (r->replicas > r->updated)
        snprintf(missing, n, "%" PRId64 " old replicas still running", r->replicas - r->updated);
    else if (r->available < r->updated)
        snprintf(missing, n, "%" PRId64 " of %" PRId64 " updated replicas available", r->available,
                 r->updated);
    else
        return true;
    return false;
}

int rg_kube_rollout_wait(struct rg_kube *k, const char *ns, const char *name, int64_t limit_ms,
                         struct rg_err *err)
{
    int64_t start = rg_now_ms(), pause = POLL_FIRST_MS;
    char missing[160] = "";

    for (int round = 0;; round++) {
        struct rollout r;

        if (deployment_get(k, ns, name, &r, err) != 0)
            return -1;
        if (rollout_complete(&r, missing, sizeof(missing))) {
            RG_INFO("rollout complete" RG_F "deployment=%s/%s" RG_F "replicas=%" PRId64, ns, name,
                    r.desired);
            return 0;
        }
        /* Checked only while incomplete: a rollout that finished is done, whatever an old
         * condition still says. */
        if (r.deadline_exceeded) {
            rg_err_set(err, RG_ELEASE,
                       "Deployment %s/%s exceeded its progress deadline "
                       "(ProgressDeadlineExceeded: %s); its rollout is stuck (%s), so the "
                       "post-deploy migrations were not applied; fix the rollout and run again",
                       ns, name, r.message, missing);
            return -1;
        }
        if (round == 0)
            RG_INFO("waiting for the rollout to complete" RG_F "deployment=%s/%s" RG_F "missing=%s",
                    ns, name, missing);
        if (limit_ms && rg_now_ms() - start >= limit_ms) {
            rg_err_set(err, RG_ELEASE,
                       "Deployment %s/%s: rollout still not complete after "
                       "lease.waitTimeout: %s; the post-deploy migrations were not applied",
                       ns, name, missing);
            return -1;
        }
        if (!rg_cancel_sleep(k->cancel, pause)) {
            rg_err_set(err, RG_ESIGNAL,
                       "Deployment %s/%s: rollout not complete: %s; the post-deploy "
                       "migrations were not applied",
                       ns, name, missing);
            return -1;
        }
        pause = pause * 2 > POLL_MAX_MS ? POLL_MAX_MS : pause * 2;
    }
}
