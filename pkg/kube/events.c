/* Events (core/v1) about the Pod rollgate runs in, for `kubectl describe pod`. */
#include "kube/internal.h"

#include <stdlib.h>
#include <time.h>

#include "clock/clock.h"
#include "mem/mem.h"

static char *event_body(const char *ns, const char *pod, const char *type, const char *reason,
                        const char *message)
{
    cJSON *obj = rg_kube_json_new(), *meta, *involved, *source;
    char now[32];
    char *body;

    /* core/v1 Event times are RFC 3339 in whole seconds. */
    rg_utc_now(now, sizeof(now), 0);
    rg_kube_json_set_string(obj, "apiVersion", "v1");
    rg_kube_json_set_string(obj, "kind", "Event");
    meta = rg_kube_json_object(obj, "metadata");
    /* Each event is a new object: the server picks a unique name. */
    rg_kube_json_set_string(meta, "generateName", "rollgate-");
    rg_kube_json_set_string(meta, "namespace", ns);
    involved = rg_kube_json_object(obj, "involvedObject");
    rg_kube_json_set_string(involved, "apiVersion", "v1");
    rg_kube_json_set_string(involved, "kind", "Pod");
    rg_kube_json_set_string(involved, "name", pod);
    rg_kube_json_set_string(involved, "namespace", ns);
    rg_kube_json_set_string(obj, "reason", reason);
    rg_kube_json_set_string(obj, "message", message);
    rg_kube_json_set_string(obj, "type", type);
    source = rg_kube_json_object(obj, "source");
    rg_kube_json_set_string(source, "component", "rollgate");
    rg_kube_json_set_string(obj, "firstTimestamp", now);
    rg_kube_json_set_string(obj, "lastTimestamp", now);
    rg_kube_json_set_int(obj, "count", 1);
    rg_kube_json_set_string(obj, "reportingComponent", "rollgate");
    body = rg_kube_json_print(obj);
    cJSON_Delete(obj);
    return body;
}

int rg_kube_event(struct rg_kube *k, const char *ns, const char *pod, const char *type,
                  const char *reason, const char *message, struct rg_err *err)
{
    struct rg_kube_response resp = {0, NULL, 0};
    char *path, *body;
    int rc;

    if (rg_kube_check_name("namespace", ns, err) != 0 ||
        rg_kube_check_name("Pod name", pod, err) != 0)
        return -1;
    path = rg_asprintf("/api/v1/namespaces/%s/events", ns);
    body = event_body(ns, pod, type, reason, message);
    rc = rg_kube_call(k, "POST", path, body, &resp, err) == 0 &&
                 rg_kube_expect_success(k, "POST", path, &resp, err) == 0
             ? 0
             : -1;
    rg_kube_response_free(&resp);
    free(body);
    free(path);
    return rc;
}
