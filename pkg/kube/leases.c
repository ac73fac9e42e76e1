/* Leases (coordination.k8s.io/v1): the record to and from JSON, and get, create, update. */
#include "kube/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock/clock.h"
#include "mem/mem.h"

#define LEASES "/apis/coordination.k8s.io/v1/namespaces/%s/leases"

/* The collection when name is NULL. */
static int lease_path(const char *ns, const char *name, char **path, struct rg_err *err)
{
    if (rg_kube_check_name("namespace", ns, err) != 0)
        return -1;
    if (name && rg_kube_check_name("Lease name", name, err) != 0)
        return -1;
    *path = name ? rg_asprintf(LEASES "/%s", ns, name) : rg_asprintf(LEASES, ns);
    return 0;
}

/* A value too long for the record is refused, never cut: a cut resourceVersion or holder
 * would be a different one. */
static int copy_field(char *dst, size_t n, const char *value, const char *field, struct rg_err *err)
{
    size_t len;

    if (!value)
        value = "";
    len = strlen(value);
    if (len >= n) {
        rg_err_set(err, RG_EAPI, "%s is %zu bytes, over the %zu rollgate keeps", field, len, n - 1);
        return -1;
    }
    memcpy(dst, value, len + 1);
    return 0;
}

/* An absent or null integer reads as 0. */
static int get_int(const cJSON *obj, const char *key, const char *field, int64_t *out,
                   struct rg_err *err)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);
    double v;

    *out = 0;
    if (!item || cJSON_IsNull(item))
        return 0;
    v = item->valuedouble;
    /* The API's int32 fields: a double holds them exactly. In range, the cast is defined. */
    if (!cJSON_IsNumber(item) || !(v >= INT32_MIN && v <= INT32_MAX) || v != (double)(int64_t)v) {
        rg_err_set(err, RG_EAPI, "%s is not a 32-bit integer", field);
        return -1;
    }
    *out = (int64_t)v;
    return 0;
}

static int record_from_json(const cJSON *json, struct rg_lease_record *rec, struct rg_err *err)
{
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(json, "metadata");
    const cJSON *spec = cJSON_GetObjectItemCaseSensitive(json, "spec");
    const char *kind = rg_kube_json_string(json, "kind");
    const char *rv = rg_kube_json_string(meta, "resourceVersion");

    memset(rec, 0, sizeof(*rec));
    if (!kind || strcmp(kind, "Lease") != 0 || !cJSON_IsObject(meta)) {
        rg_err_set(err, RG_EAPI, "the response is not a Lease");
        return -1;
    }
    if (!rv || !*rv) {
        rg_err_set(err, RG_EAPI, "the Lease has no metadata.resourceVersion");
        return -1;
    }
    if (copy_field(rec->resource_version, sizeof(rec->resource_version), rv,
                   "metadata.resourceVersion", err) != 0 ||
        copy_field(rec->holder, sizeof(rec->holder), rg_kube_json_string(spec, "holderIdentity"),
                   "spec.holderIdentity", err) != 0 ||
        copy_field(rec->acquire_time, sizeof(rec->acquire_time),
                   rg_kube_json_string(spec, "acquireTime"), "spec.acquireTime", err) != 0 ||
        copy_field(rec->renew_time, sizeof(rec->renew_time), rg_kube_json_string(spec, "renewTime"),
                   "spec.renewTime", err) != 0 ||
        get_int(spec, "leaseDurationSeconds", "spec.leaseDurationSeconds", &rec->duration_s, err) !=
            0 ||
        get_int(spec, "leaseTransitions", "spec.leaseTransitions", &rec->transitions, err) != 0)
        return -1;
    rec->exists = true;
    return 0;
}

/* Parses a Lease answer into rec and keeps the object for the next update. */
static int take_lease(struct rg_kube *k, const char *method, const char *path,
                      const struct rg_kube_response *resp, struct rg_lease_record *rec,
                      struct rg_err *err)
{
    cJSON *json = cJSON_ParseWithLength(resp->body, resp->len);
    int rc = -1;

    if (!json) {
        rg_err_set(err, RG_EAPI, "the response is not JSON");
        goto out;
    }
    if (record_from_json(json, rec, err) != 0)
        goto out;
    cJSON_Delete(k->lease);
    k->lease = json;
    json = NULL;
    rc = 0;
out:
    if (rc != 0)
        rg_err_prefix(err, "%s %s%s", method, k->base_url, path);
    cJSON_Delete(json);
    return rc;
}

/* Whether the kept object is the one want was read from. */
static bool is_kept(const struct rg_kube *k, const char *ns, const char *name, const char *rv)
{
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(k->lease, "metadata");
    const char *n = rg_kube_json_string(meta, "name");
    const char *s = rg_kube_json_string(meta, "namespace");
    const char *v = rg_kube_json_string(meta, "resourceVersion");

    return n && s && v && strcmp(n, name) == 0 && strcmp(s, ns) == 0 && strcmp(v, rv) == 0;
}

static void set_or_delete_time(cJSON *spec, const char *key, const char *value)
{
    /* "" is no MicroTime: the server would reject it, so the field is left out. */
    if (*value)
        rg_kube_json_set_string(spec, key, value);
    else
        cJSON_DeleteItemFromObjectCaseSensitive(spec, key);
}

/* The object to send: on update the one last read, when want came from it, with the spec
 * fields the record knows replaced; anything else in it is sent back as it was. */
static char *lease_body(struct rg_kube *k, const char *ns, const char *name,
                        const struct rg_lease_record *want, bool update)
{
    cJSON *obj, *meta, *spec;
    char *body;

    if (update && k->lease && is_kept(k, ns, name, want->resource_version))
        obj = rg_kube_json_copy(k->lease);
    else
        obj = rg_kube_json_new();
    rg_kube_json_set_string(obj, "apiVersion", "coordination.k8s.io/v1");
    rg_kube_json_set_string(obj, "kind", "Lease");
    meta = rg_kube_json_object(obj, "metadata");
    rg_kube_json_set_string(meta, "name", name);
    rg_kube_json_set_string(meta, "namespace", ns);
    /* Left out, the server keeps the field managers it has; sent, they would be replaced. */
    cJSON_DeleteItemFromObjectCaseSensitive(meta, "managedFields");
    if (update)
        rg_kube_json_set_string(meta, "resourceVersion", want->resource_version);
    spec = rg_kube_json_object(obj, "spec");
    rg_kube_json_set_string(spec, "holderIdentity", want->holder);
    /* The API requires a positive duration when one is given. */
    if (want->duration_s > 0)
        rg_kube_json_set_int(spec, "leaseDurationSeconds", want->duration_s);
    else
        cJSON_DeleteItemFromObjectCaseSensitive(spec, "leaseDurationSeconds");
    set_or_delete_time(spec, "acquireTime", want->acquire_time);
    set_or_delete_time(spec, "renewTime", want->renew_time);
    rg_kube_json_set_int(spec, "leaseTransitions", want->transitions);
    body = rg_kube_json_print(obj);
    cJSON_Delete(obj);
    return body;
}

int rg_kube_lease_get(struct rg_kube *k, const char *ns, const char *name,
                      struct rg_lease_record *rec, struct rg_err *err)
{
    struct rg_kube_response resp = {0, NULL, 0};
    char *path = NULL;
    int rc = -1;

    memset(rec, 0, sizeof(*rec));
    if (lease_path(ns, name, &path, err) != 0)
        goto out;
    if (rg_kube_call(k, "GET", path, NULL, &resp, err) != 0)
        goto out;
    if (resp.status == 404) {
        rc = 0;
        goto out;
    }
    if (resp.status != 200) {
        rg_kube_status_error(k, RG_EAPI, "GET", path, &resp, err);
        goto out;
    }
    if (take_lease(k, "GET", path, &resp, rec, err) != 0)
        goto out;
    rc = 0;
out:
    rg_kube_response_free(&resp);
    free(path);
    return rc;
}

/* POST (create) or PUT (update); 1 when someone else wrote first. */
static int write_lease(struct rg_kube *k, bool update, const char *ns, const char *name,
                       const struct rg_lease_record *want, struct rg_lease_record *got,
                       struct rg_err *err)
{
    struct rg_kube_response resp = {0, NULL, 0};
    const char *method = update ? "PUT" : "POST";
    char *path = NULL, *body = NULL;
    size_t sent;
    bool retried;
    int rc = -1;

    memset(got, 0, sizeof(*got));
    if (rg_kube_check_name("Lease name", name, err) != 0 ||
        lease_path(ns, update ? name : NULL, &path, err) != 0)
        goto out;
    body = lease_body(k, ns, name, want, update);
    sent = rg_kube_requests(k);
    if (rg_kube_call(k, method, path, body, &resp, err) != 0)
        goto out;
    retried = rg_kube_requests(k) - sent > 1;
    /* 409: created meanwhile, or updated since want was read. 404 on update: deleted since
     * it was read, which also means "read it again". */
    if (resp.status == 409 || (update && resp.status == 404)) {
        /* After a retry the 409 may answer our own first attempt, whose reply was lost:
         * then the Lease holds exactly what we wrote, and the write succeeded. */
        if (retried && rg_kube_lease_get(k, ns, name, got, err) == 0 && got->exists &&
            strcmp(got->holder, want->holder) == 0 &&
            strcmp(got->renew_time, want->renew_time) == 0) {
            rc = 0;
            goto out;
        }
        memset(got, 0, sizeof(*got));
        rc = 1;
        goto out;
    }
    if (rg_kube_expect_success(k, method, path, &resp, err) != 0 ||
        take_lease(k, method, path, &resp, got, err) != 0)
        goto out;
    rc = 0;
out:
    rg_kube_response_free(&resp);
    free(body);
    free(path);
    return rc;
}

int rg_kube_lease_create(struct rg_kube *k, const char *ns, const char *name,
                         const struct rg_lease_record *want, struct rg_lease_record *got,
                         struct rg_err *err)
{
    return write_lease(k, false, ns, name, want, got, err);
}

int rg_kube_lease_update(struct rg_kube *k, const char *ns, const char *name,
                         const struct rg_lease_record *want, struct rg_lease_record *got,
                         struct rg_err *err)
{
    return write_lease(k, true, ns, name, want, got, err);
}

void rg_kube_microtime(char *buf, size_t n)
{
    rg_utc_now(buf, n, 6);
}
