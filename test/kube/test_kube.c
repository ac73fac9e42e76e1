/* pkg/kube against a real kube-apiserver 1.20.2 (scripts/kube-test-cluster.sh starts it; see
 * test/common/kube_cluster.h), and against a fake HTTPS server for the answers a healthy server
 * never gives (503, 429, junk). */
#include <criterion/criterion.h>
#include <cjson/cJSON.h>
#include <pthread.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/kubeconfig.h"
#include "mem/mem.h"
#include "fixture.h"
#include "kube/kube.h"
#include "log/log.h"

TestSuite(kube, .init = fx_setup, .fini = fx_teardown, .timeout = 120);

/* Short enough that a test of the down server is quick; long enough for a loaded machine. */
#define TIMEOUT_MS 10000
#define BUDGET_MS 10000

static struct rg_kube *client(void)
{
    return fx_client("127.0.0.1", fx.port, TIMEOUT_MS, BUDGET_MS);
}

static struct rg_lease_record record(const char *holder, int64_t transitions)
{
    struct rg_lease_record r;

    memset(&r, 0, sizeof(r));
    snprintf(r.holder, sizeof(r.holder), "%s", holder);
    r.duration_s = 15;
    rg_kube_microtime(r.acquire_time, sizeof(r.acquire_time));
    rg_kube_microtime(r.renew_time, sizeof(r.renew_time));
    r.transitions = transitions;
    return r;
}

static bool matches(const char *pattern, const char *s)
{
    regex_t re;
    bool ok;

    cr_assert_eq(regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB), 0);
    ok = regexec(&re, s, 0, NULL, 0) == 0;
    regfree(&re);
    return ok;
}

/* The token never shows in an error message. */
static void assert_no_token(const struct rg_err *err)
{
    char *token = kf_read(fx_sa_file("token"));

    token[strcspn(token, "\n")] = '\0';
    if (strlen(token) >= 8)
        cr_assert_null(strstr(err->msg, token), "the token leaked into: %s", err->msg);
}

/* An object from a JSON body, by a dotted path of keys. */
static const cJSON *at(const cJSON *json, const char *dotted)
{
    char *copy = rg_strdup(dotted), *save = NULL;

    for (char *key = strtok_r(copy, ".", &save); key && json; key = strtok_r(NULL, ".", &save))
        json = cJSON_GetObjectItemCaseSensitive(json, key);
    free(copy);
    return json;
}

static const char *str_at(const cJSON *json, const char *dotted)
{
    const cJSON *item = at(json, dotted);

    return cJSON_IsString(item) ? item->valuestring : NULL;
}

Test(kube, lease_create_get_update_and_stale_update_conflicts)
{
    struct rg_kube *k = client();
    struct rg_lease_record want = record("pod-a", 0), got, read, second, again;
    struct rg_err err = {RG_OK, ""};
    char name[64];

    kf_name(name, sizeof(name), "lifecycle");
    cr_assert_eq(rg_kube_lease_create(k, KF_NS, name, &want, &got, &err), 0, "%s", err.msg);
    cr_assert(got.exists);
    cr_assert_str_eq(got.holder, "pod-a");
    cr_assert_eq(got.duration_s, 15);
    cr_assert_eq(got.transitions, 0);
    cr_assert_str_eq(got.acquire_time, want.acquire_time);
    cr_assert_str_eq(got.renew_time, want.renew_time);
    cr_assert_str_neq(got.resource_version, "");

    cr_assert_eq(rg_kube_lease_get(k, KF_NS, name, &read, &err), 0, "%s", err.msg);
    cr_assert(read.exists);
    cr_assert_str_eq(read.holder, "pod-a");
    cr_assert_str_eq(read.resource_version, got.resource_version);

    want = read;
    snprintf(want.holder, sizeof(want.holder), "pod-b");
    want.transitions = 1;
    rg_kube_microtime(want.renew_time, sizeof(want.renew_time));
    cr_assert_eq(rg_kube_lease_update(k, KF_NS, name, &want, &second, &err), 0, "%s", err.msg);
    cr_assert_str_eq(second.holder, "pod-b");
    cr_assert_eq(second.transitions, 1);
    cr_assert_str_eq(second.renew_time, want.renew_time);
    cr_assert_str_neq(second.resource_version, read.resource_version);

    /* want still carries the resourceVersion from before the update: a conflict. */
    snprintf(want.holder, sizeof(want.holder), "pod-c");
    cr_assert_eq(rg_kube_lease_update(k, KF_NS, name, &want, &again, &err), 1);
    cr_assert_eq(rg_kube_lease_get(k, KF_NS, name, &read, &err), 0, "%s", err.msg);
    cr_assert_str_eq(read.holder, "pod-b", "a stale update changed the Lease");

    /* Released: the holder emptied, which reads back as "". */
    want = read;
    want.holder[0] = '\0';
    cr_assert_eq(rg_kube_lease_update(k, KF_NS, name, &want, &got, &err), 0, "%s", err.msg);
    cr_assert_str_eq(got.holder, "");
    rg_kube_free(k);
}

Test(kube, create_of_an_existing_lease_returns_1)
{
    struct rg_kube *k = client();
    struct rg_lease_record want = record("pod-a", 0), got;
    struct rg_err err = {RG_OK, ""};
    char name[64];

    kf_name(name, sizeof(name), "exists");
    cr_assert_eq(rg_kube_lease_create(k, KF_NS, name, &want, &got, &err), 0, "%s", err.msg);
    snprintf(want.holder, sizeof(want.holder), "pod-b");
    cr_assert_eq(rg_kube_lease_create(k, KF_NS, name, &want, &got, &err), 1);
    cr_assert_eq(rg_kube_lease_get(k, KF_NS, name, &got, &err), 0, "%s", err.msg);
    cr_assert_str_eq(got.holder, "pod-a");
    rg_kube_free(k);
}

Test(kube, get_of_a_missing_lease_reads_as_absent)
{
    struct rg_kube *k = client();
    struct rg_lease_record rec;
    struct rg_err err = {RG_OK, ""};
    char name[64];

    kf_name(name, sizeof(name), "missing");
    memset(&rec, 'x', sizeof(rec));
    cr_assert_eq(rg_kube_lease_get(k, KF_NS, name, &rec, &err), 0, "%s", err.msg);
    cr_assert_not(rec.exists);
    cr_assert_str_eq(rec.holder, "");
    cr_assert_str_eq(rec.resource_version, "");
    rg_kube_free(k);
}

Test(kube, update_of_a_deleted_lease_returns_1)
{
    struct rg_kube *k = client();
    struct rg_lease_record want = record("pod-a", 0), got;
    struct rg_err err = {RG_OK, ""};
    char name[64], *path;

    kf_name(name, sizeof(name), "deleted");
    cr_assert_eq(rg_kube_lease_create(k, KF_NS, name, &want, &got, &err), 0, "%s", err.msg);
    path = rg_asprintf("/apis/coordination.k8s.io/v1/namespaces/" KF_NS "/leases/%s", name);
    kf_admin("DELETE", path, NULL, 200);
    cr_assert_eq(rg_kube_lease_update(k, KF_NS, name, &got, &want, &err), 1);
    free(path);
    rg_kube_free(k);
}

Test(kube, microtime_has_six_digits_and_round_trips)
{
    struct rg_kube *k = client();
    struct rg_lease_record want = record("pod-a", 0), got, read;
    struct rg_err err = {RG_OK, ""};
    char now[40], name[64];

    rg_kube_microtime(now, sizeof(now));
    cr_assert(matches("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{6}Z$", now),
              "%s", now);
    /* Trailing zeros too: the server must not shorten them, nor rollgate lose them. */
    snprintf(want.acquire_time, sizeof(want.acquire_time), "2026-11-22T01:02:03.123456Z");
    snprintf(want.renew_time, sizeof(want.renew_time), "2026-11-22T01:02:04.000100Z");
    kf_name(name, sizeof(name), "microtime");
    cr_assert_eq(rg_kube_lease_create(k, KF_NS, name, &want, &got, &err), 0, "%s", err.msg);
    cr_assert_str_eq(got.acquire_time, "2026-11-22T01:02:03.123456Z");
    cr_assert_str_eq(got.renew_time, "2026-11-22T01:02:04.000100Z");
    cr_assert_eq(rg_kube_lease_get(k, KF_NS, name, &read, &err), 0, "%s", err.msg);
    cr_assert_str_eq(read.acquire_time, "2026-11-22T01:02:03.123456Z");
    cr_assert_str_eq(read.renew_time, "2026-11-22T01:02:04.000100Z");
    rg_kube_free(k);
}

Test(kube, a_lease_without_holder_reads_as_empty_holder)
{
    struct rg_kube *k = client();
    struct rg_lease_record rec;
    struct rg_err err = {RG_OK, ""};
    char name[64], *payload;

    kf_name(name, sizeof(name), "noholder");
    payload = rg_asprintf("{\"apiVersion\":\"coordination.k8s.io/v1\",\"kind\":\"Lease\","
                          "\"metadata\":{\"name\":\"%s\"},\"spec\":{\"leaseDurationSeconds\":7}}",
                          name);
    kf_admin("POST", "/apis/coordination.k8s.io/v1/namespaces/" KF_NS "/leases", payload, 201);
    cr_assert_eq(rg_kube_lease_get(k, KF_NS, name, &rec, &err), 0, "%s", err.msg);
    cr_assert(rec.exists);
    cr_assert_str_eq(rec.holder, "");
    cr_assert_str_eq(rec.acquire_time, "");
    cr_assert_eq(rec.duration_s, 7);
    cr_assert_eq(rec.transitions, 0);
    free(payload);
    rg_kube_free(k);
}

Test(kube, update_keeps_labels_and_annotations_it_does_not_know)
{
    struct rg_kube *k = client();
    struct rg_lease_record rec, want, got;
    struct rg_err err = {RG_OK, ""};
    char name[64], *body, *payload, *path;
    cJSON *json;

    kf_name(name, sizeof(name), "labels");
    payload = rg_asprintf(
        "{\"apiVersion\":\"coordination.k8s.io/v1\",\"kind\":\"Lease\",\"metadata\":{\"name\":"
        "\"%s\",\"labels\":{\"app\":\"rollgate\"},\"annotations\":{\"team\":\"db\"}},"
        "\"spec\":{\"holderIdentity\":\"\",\"leaseDurationSeconds\":15}}",
        name);
    kf_admin("POST", "/apis/coordination.k8s.io/v1/namespaces/" KF_NS "/leases", payload, 201);
    cr_assert_eq(rg_kube_lease_get(k, KF_NS, name, &rec, &err), 0, "%s", err.msg);
    want = rec;
    snprintf(want.holder, sizeof(want.holder), "pod-a");
    rg_kube_microtime(want.acquire_time, sizeof(want.acquire_time));
    rg_kube_microtime(want.renew_time, sizeof(want.renew_time));
    cr_assert_eq(rg_kube_lease_update(k, KF_NS, name, &want, &got, &err), 0, "%s", err.msg);

    path = rg_asprintf("/apis/coordination.k8s.io/v1/namespaces/" KF_NS "/leases/%s", name);
    body = kf_admin("GET", path, NULL, 200).body;
    json = cJSON_Parse(body);
    cr_assert_str_eq(str_at(json, "spec.holderIdentity"), "pod-a");
    cr_assert_not_null(str_at(json, "metadata.labels.app"), "labels lost: %s", body);
    cr_assert_str_eq(str_at(json, "metadata.labels.app"), "rollgate");
    cr_assert_not_null(str_at(json, "metadata.annotations.team"), "annotations lost: %s", body);
    cJSON_Delete(json);
    free(path);
    free(payload);
    rg_kube_free(k);
}

Test(kube, event_is_created_on_the_pod)
{
    struct rg_kube *k = client();
    struct rg_err err = {RG_OK, ""};
    char pod[64], *path, *body;
    const cJSON *items, *ev;
    cJSON *json;

    kf_name(pod, sizeof(pod), "app-pod");
    cr_assert_eq(rg_kube_event(k, KF_NS, pod, "Warning", "MigrationFailed",
                               "0003_add_index.up.sql:4:1: relation \"x\" does not exist", &err),
                 0, "%s", err.msg);
    path = rg_asprintf(
        "/api/v1/namespaces/" KF_NS "/events?fieldSelector=involvedObject.name%%3D%s", pod);
    body = kf_admin("GET", path, NULL, 200).body;
    json = cJSON_Parse(body);
    items = at(json, "items");
    cr_assert_eq(cJSON_GetArraySize(items), 1, "%s", body);
    ev = cJSON_GetArrayItem(items, 0);
    cr_assert(matches("^rollgate-", str_at(ev, "metadata.name")));
    cr_assert_str_eq(str_at(ev, "involvedObject.kind"), "Pod");
    cr_assert_str_eq(str_at(ev, "involvedObject.apiVersion"), "v1");
    cr_assert_str_eq(str_at(ev, "involvedObject.namespace"), KF_NS);
    cr_assert_str_eq(str_at(ev, "reason"), "MigrationFailed");
    cr_assert_str_eq(str_at(ev, "type"), "Warning");
    cr_assert_str_eq(str_at(ev, "message"),
                     "0003_add_index.up.sql:4:1: relation \"x\" does not exist");
    cr_assert_str_eq(str_at(ev, "source.component"), "rollgate");
    cr_assert_str_eq(str_at(ev, "reportingComponent"), "rollgate");
    cr_assert_eq(cJSON_GetNumberValue(at(ev, "count")), 1);
    cr_assert(matches("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$",
                      str_at(ev, "firstTimestamp")));
    cr_assert_str_eq(str_at(ev, "firstTimestamp"), str_at(ev, "lastTimestamp"));
    cJSON_Delete(json);
    free(path);
    rg_kube_free(k);
}

/* The options from the kubeconfig at path, as cmd/rollgate takes them outside a cluster;
 * they point into *kc. */
static struct rg_kube_opts kubeconfig_opts(const char *path, struct rg_kubeconfig *kc)
{
    struct rg_kube_opts opts = {.request_timeout_ms = TIMEOUT_MS, .retry_budget_ms = BUDGET_MS};
    struct rg_err err = {RG_OK, ""};

    cr_assert_eq(rg_kube_kubeconfig_load(path, "the test", kc, &opts, &err), 0, "%s", err.msg);
    return opts;
}

static struct rg_kube *opts_client(const struct rg_kube_opts *opts)
{
    struct rg_kube *k = NULL;
    struct rg_err err = {RG_OK, ""};

    cr_assert_eq(rg_kube_new(&k, opts, &err), 0, "%s", err.msg);
    return k;
}

/* A client from the kubeconfig at path, as cmd/rollgate builds it outside a cluster. */
static struct rg_kube *kubeconfig_client(const char *path, struct rg_kubeconfig *kc)
{
    struct rg_kube_opts opts = kubeconfig_opts(path, kc);

    return opts_client(&opts);
}

/* Create, get, update and release a Lease in KF_NS through k. */
static void assert_lease_round_trip(struct rg_kube *k, const char *prefix)
{
    struct rg_lease_record want = record("laptop", 0), got, read;
    struct rg_err err = {RG_OK, ""};
    char name[64];

    kf_name(name, sizeof(name), prefix);
    cr_assert_eq(rg_kube_lease_get(k, KF_NS, name, &read, &err), 0, "%s", err.msg);
    cr_assert_not(read.exists);
    cr_assert_eq(rg_kube_lease_create(k, KF_NS, name, &want, &got, &err), 0, "%s", err.msg);
    cr_assert_str_eq(got.holder, "laptop");
    cr_assert_eq(rg_kube_lease_get(k, KF_NS, name, &read, &err), 0, "%s", err.msg);
    cr_assert(read.exists);
    cr_assert_str_eq(read.resource_version, got.resource_version);
    want = read;
    want.holder[0] = '\0';
    cr_assert_eq(rg_kube_lease_update(k, KF_NS, name, &want, &got, &err), 0, "%s", err.msg);
    cr_assert_str_eq(got.holder, "");
    cr_assert_str_neq(got.resource_version, read.resource_version);
}

Test(kube, kubeconfig_with_a_client_certificate_file_manages_leases)
{
    char *path = kf_file("admin.kubeconfig");
    struct rg_kubeconfig kc;
    struct rg_lease_record rec;
    struct rg_err err = {RG_OK, ""};
    struct rg_kube *k;

    k = kubeconfig_client(path, &kc);
    cr_assert_not_null(kc.cert_file);
    cr_assert_null(kc.token);
    cr_assert_str_eq(rg_kube_namespace(k), KF_NS);
    assert_lease_round_trip(k, "kc-cert");
    /* The admin certificate (system:masters) is what was sent: the service account would
     * get 403 in kube-system, the admin reads a missing Lease. */
    cr_assert_eq(rg_kube_lease_get(k, "kube-system", "rollgate-none", &rec, &err), 0, "%s",
                 err.msg);
    cr_assert_not(rec.exists);
    rg_kube_free(k);
    rg_config_kubeconfig_free(&kc);
}

Test(kube, kubeconfig_pem_data_is_used_as_curl_blobs)
{
    char *ca = kf_file("ca.crt"), *crt = kf_file("admin.crt"), *key = kf_file("admin.key"),
         *path = kf_file("admin.kubeconfig");
    struct rg_kubeconfig kc;
    struct rg_kube_opts opts = kubeconfig_opts(path, &kc);
    struct rg_kube *k;

    /* The data forms instead of the files, decoded, as rg_config_read_kubeconfig hands
     * them over. */
    opts.ca_pem = kf_read(ca);
    opts.cert_pem = kf_read(crt);
    opts.key_pem = kf_read(key);
    opts.ca_file = opts.cert_file = opts.key_file = NULL;
    k = opts_client(&opts);
    assert_lease_round_trip(k, "kc-blob");
    rg_kube_free(k);
    rg_config_kubeconfig_free(&kc);
}

/* A kubeconfig for the cluster's server and CA with a token user (user_line). */
static char *token_kubeconfig(const char *user_line)
{
    char *admin = kf_file("admin.kubeconfig"), *text = kf_read(admin), *ca = kf_file("ca.crt"),
         *server = strstr(text, "server: "), *path, *content;

    cr_assert_not_null(server);
    server += strlen("server: ");
    server[strcspn(server, "\n")] = '\0';
    path = rg_asprintf("%s/token.kubeconfig", fx.tmp);
    content = rg_asprintf("apiVersion: v1\n"
                          "kind: Config\n"
                          "clusters:\n"
                          "- name: c\n"
                          "  cluster:\n"
                          "    server: %s\n"
                          "    certificate-authority: %s\n"
                          "users:\n"
                          "- name: sa\n"
                          "  user:\n"
                          "    %s\n"
                          "contexts:\n"
                          "- name: ctx\n"
                          "  context: {cluster: c, user: sa, namespace: " KF_NS "}\n"
                          "current-context: ctx\n",
                          server, ca, user_line);
    kf_write(path, content);
    free(content);
    return path;
}

Test(kube, kubeconfig_with_a_token_manages_leases_as_the_service_account)
{
    char *token = kf_token_for("rollgate", NULL), *line = rg_asprintf("token: %s", token),
         *path = token_kubeconfig(line);
    struct rg_kubeconfig kc;
    struct rg_lease_record rec;
    struct rg_err err = {RG_OK, ""};
    struct rg_kube *k;

    k = kubeconfig_client(path, &kc);
    cr_assert_null(kc.cert_file);
    assert_lease_round_trip(k, "kc-token");
    /* The token is the service account's: denied where it has no Role. */
    cr_assert_eq(rg_kube_lease_get(k, "kube-system", "rollgate", &rec, &err), -1);
    cr_assert_eq(err.code, RG_EAPIDENIED, "%d %s", err.code, err.msg);
    cr_assert_not_null(strstr(err.msg, "system:serviceaccount:" KF_NS ":rollgate"), "%s", err.msg);
    cr_assert_null(strstr(err.msg, token), "%s", err.msg);
    rg_kube_free(k);
    rg_config_kubeconfig_free(&kc);
    free(path);
    free(line);
}

Test(kube, kubeconfig_token_file_is_used)
{
    char *sa_token = fx_sa_file("token"), *line = rg_asprintf("tokenFile: %s", sa_token),
         *path = token_kubeconfig(line);
    struct rg_kubeconfig kc;
    struct rg_kube *k;

    k = kubeconfig_client(path, &kc);
    cr_assert_str_eq(kc.token_file, sa_token);
    assert_lease_round_trip(k, "kc-tokenfile");
    rg_kube_free(k);
    rg_config_kubeconfig_free(&kc);
    free(path);
    free(line);
}

Test(kube, kubeconfig_token_refused_says_so_without_showing_it)
{
    char *path = token_kubeconfig("token: not-a-real-token-4242");
    struct rg_kubeconfig kc;
    struct rg_lease_record rec;
    struct rg_err err = {RG_OK, ""};
    struct rg_kube *k;

    k = kubeconfig_client(path, &kc);
    cr_assert_eq(rg_kube_lease_get(k, KF_NS, "rollgate", &rec, &err), -1);
    cr_assert_eq(err.code, RG_EAPIDENIED, "%d %s", err.code, err.msg);
    cr_assert_not_null(strstr(err.msg, "the kubeconfig's token was refused"), "%s", err.msg);
    cr_assert_null(strstr(err.msg, "not-a-real-token-4242"), "%s", err.msg);
    rg_kube_free(k);
    rg_config_kubeconfig_free(&kc);
    free(path);
}

Test(kube, forbidden_namespace_is_denied_with_the_status_message)
{
    struct rg_kube *k = client();
    struct rg_lease_record rec;
    struct rg_err err = {RG_OK, ""};

    cr_assert_eq(rg_kube_lease_get(k, "kube-system", "rollgate", &rec, &err), -1);
    cr_assert_eq(err.code, RG_EAPIDENIED, "%d %s", err.code, err.msg);
    cr_assert_not_null(strstr(err.msg, "403"), "%s", err.msg);
    cr_assert_not_null(
        strstr(err.msg, "\"system:serviceaccount:rollgate-test:rollgate\" cannot get resource "
                        "\"leases\" in API group \"coordination.k8s.io\" in the namespace "
                        "\"kube-system\""),
        "%s", err.msg);
    cr_assert_not_null(strstr(err.msg, "(reason Forbidden)"), "%s", err.msg);
    cr_assert_eq(rg_kube_requests(k), 1, "a 403 was retried");
    assert_no_token(&err);
    rg_kube_free(k);
}

Test(kube, garbage_token_is_denied_401_without_retry)
{
    struct rg_kube *k;
    struct rg_lease_record rec;
    struct rg_err err = {RG_OK, ""};
    char *path = fx_sa_file("token");

    kf_write(path, "garbage-token-0123456789\n");
    k = client();
    cr_assert_eq(rg_kube_lease_get(k, KF_NS, "rollgate", &rec, &err), -1);
    cr_assert_eq(err.code, RG_EAPIDENIED, "%d %s", err.code, err.msg);
    cr_assert_not_null(strstr(err.msg, "401: Unauthorized"), "%s", err.msg);
    cr_assert_not_null(strstr(err.msg, path), "the message does not name the token file: %s",
                       err.msg);
    cr_assert_null(strstr(err.msg, "garbage-token"), "the token leaked: %s", err.msg);
    cr_assert_eq(rg_kube_requests(k), 1, "a 401 was retried");
    rg_kube_free(k);
}

Test(kube, token_is_read_again_before_every_request)
{
    struct rg_kube *k = client();
    struct rg_lease_record rec;
    struct rg_err err = {RG_OK, ""};
    char *path = fx_sa_file("token"), *second = kf_token_for("rollgate", NULL);
    char name[64];

    kf_name(name, sizeof(name), "rotate");
    cr_assert_eq(rg_kube_lease_get(k, KF_NS, name, &rec, &err), 0, "%s", err.msg);
    kf_write(path, second);
    cr_assert_eq(rg_kube_lease_get(k, KF_NS, name, &rec, &err), 0, "%s", err.msg);
    /* Proof that the file is read each time: a bad token now fails the same client... */
    kf_write(path, "revoked-token-0123456789");
    cr_assert_eq(rg_kube_lease_get(k, KF_NS, name, &rec, &err), -1);
    cr_assert_eq(err.code, RG_EAPIDENIED, "%s", err.msg);
    /* ...and a good one mends it. */
    kf_write(path, second);
    cr_assert_eq(rg_kube_lease_get(k, KF_NS, name, &rec, &err), 0, "%s", err.msg);
    cr_assert_eq(rg_kube_requests(k), 4);
    rg_kube_free(k);
}

Test(kube, token_file_gone_at_request_time_is_an_api_error)
{
    struct rg_kube *k = client();
    struct rg_lease_record rec;
    struct rg_err err = {RG_OK, ""};
    char *path = fx_sa_file("token");

    cr_assert_eq(unlink(path), 0);
    cr_assert_eq(rg_kube_lease_get(k, KF_NS, "rollgate", &rec, &err), -1);
    cr_assert_eq(err.code, RG_EAPI, "%d %s", err.code, err.msg);
    cr_assert_not_null(strstr(err.msg, path), "%s", err.msg);
    cr_assert_eq(rg_kube_requests(k), 0, "a request went out without a token");
    rg_kube_free(k);
}

Test(kube, token_is_registered_for_redaction)
{
    struct rg_kube *k = client();
    char *token = kf_read(fx_sa_file("token")), *line, out[8192];

    token[strcspn(token, "\n")] = '\0';
    line = rg_asprintf("Authorization: Bearer %s", token);
    rg_log_scrub(out, sizeof(out), line);
    cr_assert_str_eq(out, "Authorization: Bearer ***");
    free(line);
    rg_kube_free(k);
}

Test(kube, new_checks_its_files_and_options)
{
    struct rg_kube_opts opts = {.host = "127.0.0.1", .port = fx.port, .sa_dir = fx.sa_dir};
    struct rg_kube *k = NULL;
    struct rg_err err = {RG_OK, ""};
    char *token = fx_sa_file("token"), *ca = fx_sa_file("ca.crt"), *ns = fx_sa_file("namespace");
    char *saved = kf_read(ca);

    opts.host = NULL;
    cr_assert_eq(rg_kube_new(&k, &opts, &err), -1);
    cr_assert_eq(err.code, RG_ECONFIG);
    cr_assert_not_null(strstr(err.msg, "no kubeconfig server"), "%s", err.msg);
    cr_assert_null(k);
    opts.host = "127.0.0.1";

    opts.port = "https";
    cr_assert_eq(rg_kube_new(&k, &opts, &err), -1);
    cr_assert_eq(err.code, RG_ECONFIG);
    cr_assert_not_null(strstr(err.msg, "not a port number"), "%s", err.msg);
    opts.port = fx.port;

    /* The namespace is trimmed, and its file is optional. */
    kf_write(ns, "  rollgate-test\n");
    cr_assert_eq(rg_kube_new(&k, &opts, &err), 0, "%s", err.msg);
    cr_assert_str_eq(rg_kube_namespace(k), "rollgate-test");
    rg_kube_free(k);
    cr_assert_eq(unlink(ns), 0);
    cr_assert_eq(rg_kube_new(&k, &opts, &err), 0, "%s", err.msg);
    cr_assert_str_eq(rg_kube_namespace(k), "");
    rg_kube_free(k);
    k = NULL;

    kf_write(ca, "not a certificate\n");
    cr_assert_eq(rg_kube_new(&k, &opts, &err), -1);
    cr_assert_eq(err.code, RG_ECONFIG);
    cr_assert_not_null(strstr(err.msg, ca), "%s", err.msg);
    cr_assert_eq(unlink(ca), 0);
    cr_assert_eq(rg_kube_new(&k, &opts, &err), -1);
    cr_assert_eq(err.code, RG_ECONFIG);
    cr_assert_not_null(strstr(err.msg, ca), "%s", err.msg);
    kf_write(ca, saved);

    kf_write(token, "");
    cr_assert_eq(rg_kube_new(&k, &opts, &err), -1);
    cr_assert_eq(err.code, RG_ECONFIG);
    cr_assert_not_null(strstr(err.msg, "empty"), "%s", err.msg);
    kf_write(token, "two\r\nX-Injected: yes");
    cr_assert_eq(rg_kube_new(&k, &opts, &err), -1);
    cr_assert_eq(err.code, RG_ECONFIG);
    cr_assert_not_null(strstr(err.msg, "not allowed in an HTTP header"), "%s", err.msg);
    cr_assert_eq(unlink(token), 0);
    cr_assert_eq(rg_kube_new(&k, &opts, &err), -1);
    cr_assert_eq(err.code, RG_ECONFIG);
    cr_assert_not_null(strstr(err.msg, token), "%s", err.msg);
    cr_assert_null(k);
}

Test(kube, bad_names_are_refused_before_any_request)
{
    struct rg_kube *k = client();
    struct rg_lease_record rec;
    struct rg_err err = {RG_OK, ""};

    cr_assert_eq(rg_kube_lease_get(k, KF_NS, "../../secrets", &rec, &err), -1);
    cr_assert_eq(err.code, RG_ECONFIG, "%s", err.msg);
    cr_assert_eq(rg_kube_lease_get(k, "Rollgate", "x", &rec, &err), -1);
    cr_assert_eq(err.code, RG_ECONFIG, "%s", err.msg);
    cr_assert_eq(rg_kube_event(k, KF_NS, "pod/x", "Normal", "Started", "m", &err), -1);
    cr_assert_eq(err.code, RG_ECONFIG, "%s", err.msg);
    cr_assert_eq(rg_kube_requests(k), 0);
    rg_kube_free(k);
}

Test(kube, requests_are_counted)
{
    struct rg_kube *k = client();
    struct rg_lease_record want = record("pod-a", 0), got;
    struct rg_err err = {RG_OK, ""};
    char name[64];

    kf_name(name, sizeof(name), "count");
    cr_assert_eq(rg_kube_requests(k), 0);
    cr_assert_eq(rg_kube_lease_get(k, KF_NS, name, &got, &err), 0, "%s", err.msg);
    cr_assert_eq(rg_kube_requests(k), 1);
    cr_assert_eq(rg_kube_lease_create(k, KF_NS, name, &want, &got, &err), 0, "%s", err.msg);
    cr_assert_eq(rg_kube_lease_update(k, KF_NS, name, &got, &want, &err), 0, "%s", err.msg);
    cr_assert_eq(rg_kube_event(k, KF_NS, name, "Normal", "Counted", "m", &err), 0, "%s", err.msg);
    cr_assert_eq(rg_kube_requests(k), 4);
    rg_kube_free(k);
}

/* The audit log shows what reached the server: the User-Agent and who sent it. */
Test(kube, requests_carry_the_user_agent)
{
    struct rg_kube *k = client();
    struct rg_lease_record rec;
    struct rg_err err = {RG_OK, ""};
    char name[64], *audit_path = kf_file("audit.log");
    bool found = false;

    kf_name(name, sizeof(name), "agent");
    cr_assert_eq(rg_kube_lease_get(k, KF_NS, name, &rec, &err), 0, "%s", err.msg);
    /* --audit-log-mode=blocking writes the line before the answer; a bounded wait anyway. */
    for (int i = 0; i < 100 && !found; i++) {
        char *log = kf_read(audit_path), *save = NULL;
        for (char *line = strtok_r(log, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
            cJSON *json;
            const char *uri;
            if (!strstr(line, name))
                continue;
            json = cJSON_Parse(line);
            uri = str_at(json, "requestURI");
            if (uri && strstr(uri, name)) {
                found = true;
                cr_assert_str_eq(str_at(json, "userAgent"), "rollgate/" RG_VERSION);
                cr_assert_str_eq(str_at(json, "user.username"),
                                 "system:serviceaccount:rollgate-test:rollgate");
                cr_assert_str_eq(str_at(json, "verb"), "get");
            }
            cJSON_Delete(json);
        }
        if (!found)
            usleep(100000);
    }
    cr_assert(found, "no audit line for the Lease %s", name);
    rg_kube_free(k);
}

Test(kube, down_server_is_unavailable_after_the_retry_budget)
{
    struct rg_kube *k;
    struct rg_lease_record rec;
    struct rg_err err = {RG_OK, ""};
    char port[16];
    int fd;
    size_t attempts = 0;
    int64_t start;

    snprintf(port, sizeof(port), "%d", fx_refusing_port(&fd));
    k = fx_client("127.0.0.1", port, 2000, 1500);
    start = kf_mono_ms();
    cr_assert_eq(rg_kube_lease_get(k, KF_NS, "rollgate", &rec, &err), -1);
    cr_assert_lt(kf_mono_ms() - start, 30000, "the budget was not kept");
    cr_assert_eq(err.code, RG_EAPI, "%d %s", err.code, err.msg);
    cr_assert_eq(sscanf(err.msg, "Kubernetes API unavailable after %zu attempts: ", &attempts), 1,
                 "%s", err.msg);
    cr_assert_gt(rg_kube_requests(k), 1, "no retry: %s", err.msg);
    cr_assert_eq(attempts, rg_kube_requests(k), "%s", err.msg);
    /* curl's own words are kept. */
    cr_assert_not_null(strstr(err.msg, "Failed to connect to 127.0.0.1 port"), "%s", err.msg);
    close(fd);
    rg_kube_free(k);
}

Test(kube, wrong_ca_fails_tls_and_is_not_retried)
{
    struct rg_kube *k;
    struct rg_lease_record rec;
    struct rg_err err = {RG_OK, ""};
    char *cert = rg_asprintf("%s/cert.pem", fx.tmp), *ca = fx_sa_file("ca.crt"), *pem;

    fx_make_cert(fx.tmp);
    pem = kf_read(cert);
    kf_write(ca, pem);
    k = client();
    cr_assert_eq(rg_kube_lease_get(k, KF_NS, "rollgate", &rec, &err), -1);
    cr_assert_eq(err.code, RG_EAPI, "%d %s", err.code, err.msg);
    cr_assert_not_null(strstr(err.msg, "SSL certificate problem"), "%s", err.msg);
    cr_assert_eq(rg_kube_requests(k), 1, "a TLS verification failure was retried");
    free(cert);
    rg_kube_free(k);
}

Test(kube, ipv6_host_is_bracketed_in_the_url)
{
    struct rg_kube *k;
    struct rg_lease_record rec;
    struct rg_err err = {RG_OK, ""};
    char *want = rg_asprintf(
        "GET https://[::1]:%s/apis/coordination.k8s.io/v1/namespaces/" KF_NS "/leases/x", fx.port);

    /* The API server listens on 127.0.0.1 only: the request fails, naming the URL. */
    k = fx_client("::1", fx.port, 2000, 300);
    cr_assert_eq(rg_kube_lease_get(k, KF_NS, "x", &rec, &err), -1);
    cr_assert_eq(err.code, RG_EAPI, "%s", err.msg);
    cr_assert_not_null(strstr(err.msg, want), "%s", err.msg);
    rg_kube_free(k);
    /* Already bracketed: kept as it is. */
    k = fx_client("[::1]", fx.port, 2000, 300);
    cr_assert_eq(rg_kube_lease_get(k, KF_NS, "x", &rec, &err), -1);
    cr_assert_not_null(strstr(err.msg, want), "%s", err.msg);
    rg_kube_free(k);
    free(want);
}

struct canceller {
    struct rg_kube *k;
};

/* Cancels once the first request has gone out, so the cancel lands in the retry loop (or
 * the hanging request), whatever the machine's speed. */
static void *cancel_after_first_request(void *arg)
{
    struct canceller *c = arg;

    for (int i = 0; i < 3000 && rg_kube_requests(c->k) == 0; i++)
        usleep(10000);
    usleep(100000);
    rg_kube_cancel(c->k);
    return NULL;
}

static void assert_cancel_stops(struct rg_kube *k)
{
    struct canceller c = {k};
    struct rg_lease_record rec;
    struct rg_err err = {RG_OK, ""};
    pthread_t t;
    int64_t start = kf_mono_ms();
    size_t sent;

    cr_assert_eq(pthread_create(&t, NULL, cancel_after_first_request, &c), 0);
    cr_assert_eq(rg_kube_lease_get(k, KF_NS, "rollgate", &rec, &err), -1);
    cr_assert_eq(pthread_join(t, NULL), 0);
    cr_assert_eq(err.code, RG_ESIGNAL, "%d %s", err.code, err.msg);
    /* The budget and the timeout are 120s: only the cancel can end the call this soon. */
    cr_assert_lt(kf_mono_ms() - start, 60000);
    sent = rg_kube_requests(k);
    cr_assert_eq(rg_kube_lease_get(k, KF_NS, "rollgate", &rec, &err), -1);
    cr_assert_eq(err.code, RG_ESIGNAL);
    cr_assert_eq(rg_kube_requests(k), sent, "a cancelled client sent a request");
}

Test(kube, cancel_from_another_thread_stops_the_retry_loop)
{
    struct rg_kube *k;
    char port[16];
    int fd;

    snprintf(port, sizeof(port), "%d", fx_refusing_port(&fd));
    k = fx_client("127.0.0.1", port, 120000, 120000);
    assert_cancel_stops(k);
    close(fd);
    rg_kube_free(k);
}

Test(kube, cancel_from_another_thread_stops_a_hanging_request)
{
    struct rg_kube *k;
    char port[16];
    int fd;

    snprintf(port, sizeof(port), "%d", fx_silent_port(&fd));
    k = fx_client("127.0.0.1", port, 120000, 120000);
    assert_cancel_stops(k);
    cr_assert_eq(rg_kube_requests(k), 1);
    close(fd);
    rg_kube_free(k);
}

/* A fake server whose certificate becomes the service account's CA. */
static struct rg_kube *fake_client(const char *www, long budget_ms)
{
    char *cert = rg_asprintf("%s/cert.pem", fx.tmp), *ca = fx_sa_file("ca.crt"), *pem;
    char port[16];

    fx_make_cert(fx.tmp);
    pem = kf_read(cert);
    kf_write(ca, pem);
    snprintf(port, sizeof(port), "%d", fx_fake_server(fx.tmp, www));
    free(cert);
    return fx_client("127.0.0.1", port, TIMEOUT_MS, budget_ms);
}

#define LEASE_PATH(ns) "apis/coordination.k8s.io/v1/namespaces/" ns "/leases/x"

Test(kube, unavailable_503_is_retried_honouring_retry_after)
{
    char *www = rg_asprintf("%s/www", fx.tmp);
    struct rg_kube *k;
    struct rg_lease_record rec;
    struct rg_err err = {RG_OK, ""};

    cr_assert_eq(mkdir(www, 0700), 0);
    fx_fake_response(www, LEASE_PATH("busy"),
                     "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 2\r\n"
                     "Content-Type: application/json\r\nConnection: close\r\n\r\n"
                     "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"status\":\"Failure\","
                     "\"message\":\"etcdserver: leader changed\",\"reason\":\"ServiceUnavailable\","
                     "\"code\":503}");
    /* Backoff alone (200ms, 400ms, 800ms...) would fit 4 attempts into 3.9s; Retry-After
     * 2s fits 2: the second starts after 2s, and a third would start after 4s. */
    k = fake_client(www, 3900);
    cr_assert_eq(rg_kube_lease_get(k, "busy", "x", &rec, &err), -1);
    cr_assert_eq(err.code, RG_EAPI, "%s", err.msg);
    cr_assert_eq(rg_kube_requests(k), 2, "%s", err.msg);
    cr_assert_not_null(strstr(err.msg, "Kubernetes API unavailable after 2 attempts: "), "%s",
                       err.msg);
    cr_assert_not_null(strstr(err.msg, "503: etcdserver: leader changed (reason "
                                       "ServiceUnavailable)"),
                       "%s", err.msg);
    free(www);
    rg_kube_free(k);
}

Test(kube, throttled_429_is_retried)
{
    char *www = rg_asprintf("%s/www", fx.tmp);
    struct rg_kube *k;
    struct rg_lease_record rec;
    struct rg_err err = {RG_OK, ""};

    cr_assert_eq(mkdir(www, 0700), 0);
    fx_fake_response(www, LEASE_PATH("throttled"),
                     "HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\n"
                     "Connection: close\r\n\r\n"
                     "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"status\":\"Failure\","
                     "\"message\":\"Too many requests, please try again later.\","
                     "\"reason\":\"TooManyRequests\",\"code\":429}");
    k = fake_client(www, 1500);
    cr_assert_eq(rg_kube_lease_get(k, "throttled", "x", &rec, &err), -1);
    cr_assert_eq(err.code, RG_EAPI, "%s", err.msg);
    cr_assert_gt(rg_kube_requests(k), 1, "%s", err.msg);
    cr_assert_not_null(strstr(err.msg, "429: Too many requests"), "%s", err.msg);
    free(www);
    rg_kube_free(k);
}

Test(kube, other_answers_fail_at_once_with_what_the_server_said)
{
    char *www = rg_asprintf("%s/www", fx.tmp), *big, *response;
    struct rg_kube *k;
    struct rg_lease_record rec;
    struct rg_err err = {RG_OK, ""};
    size_t n = 2 * 1024 * 1024;

    cr_assert_eq(mkdir(www, 0700), 0);
    fx_fake_response(www, LEASE_PATH("teapot"),
                     "HTTP/1.1 418 I'm a teapot\r\nConnection: close\r\n\r\nshort and\nstout");
    fx_fake_response(www, LEASE_PATH("notlease"),
                     "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                     "Connection: close\r\n\r\n{\"kind\":\"Pod\"}");
    big = rg_malloc(n + 1);
    memset(big, 'a', n);
    big[n] = '\0';
    response = rg_asprintf("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n%s", big);
    fx_fake_response(www, LEASE_PATH("huge"), response);
    k = fake_client(www, 30000);

    cr_assert_eq(rg_kube_lease_get(k, "teapot", "x", &rec, &err), -1);
    cr_assert_eq(err.code, RG_EAPI, "%s", err.msg);
    cr_assert_not_null(strstr(err.msg, "418: short and stout"), "%s", err.msg);
    cr_assert_eq(rg_kube_requests(k), 1);

    cr_assert_eq(rg_kube_lease_get(k, "notlease", "x", &rec, &err), -1);
    cr_assert_eq(err.code, RG_EAPI, "%s", err.msg);
    cr_assert_not_null(strstr(err.msg, "not a Lease"), "%s", err.msg);

    cr_assert_eq(rg_kube_lease_get(k, "huge", "x", &rec, &err), -1);
    cr_assert_eq(err.code, RG_EAPI, "%s", err.msg);
    cr_assert_not_null(strstr(err.msg, "over the 1048576-byte limit"), "%s", err.msg);
    cr_assert_eq(rg_kube_requests(k), 3, "an answer that cannot mend was retried");
    free(response);
    free(big);
    free(www);
    rg_kube_free(k);
}
