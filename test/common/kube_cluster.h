/* The one Kubernetes test fixture (kf_), which kube_tests and the integration suites both
 * link: the kube-apiserver that scripts/kube-test-cluster.sh starts (scripts/test.sh starts
 * it; by hand see kf_cluster_dir) and names in RG_TEST_KUBE_DIR, requests to it as the
 * cluster's admin, ServiceAccounts bound to a Role, tokens from the TokenRequest API,
 * service-account directories as the kubelet projects them, and names unique to a test.
 *
 * What only one program needs is built on this where that program lives: kube_tests adds a
 * fake HTTPS server and ports that misbehave (test/kube/fixture.h); the integration suites add
 * the environment of a pod and database helpers (test/integration/kube_fixture.h).
 *
 * Strings returned here live until kf_release, which each program's suite teardown calls. */
#ifndef RG_TEST_KUBE_CLUSTER_H
#define RG_TEST_KUBE_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The namespace scripts/kube-test-cluster.sh makes, with the ServiceAccount "rollgate" and
 * the Role "rollgate" (leases get/create/update, events create) bound to it. */
#define KF_NS "rollgate-test"
/* Bounds on waits for something that must happen; never reached when all is well. */
#define KF_LONG_MS (120 * 1000)

/* p (not NULL) is freed at kf_release; returns p. */
void *kf_keep(void *p);
void kf_release(void);

/* RG_TEST_KUBE_DIR; the test fails, saying how to start a cluster, when it is not set. */
const char *kf_cluster_dir(void);
/* A file of the cluster's directory: port, ca.crt, ca.key, admin.crt, admin.key,
 * admin.kubeconfig, rollgate.token, audit.log. */
char *kf_file(const char *name);
/* The API server's port. */
char *kf_cluster_port(void);

/* The whole file; the test fails when it cannot be read. */
char *kf_read(const char *path);
/* Writes the file whole through a rename, as the kubelet swaps a projected token. */
void kf_write(const char *path, const char *content);

/* An answer of the API server. */
struct kf_api {
    int status;
    char *body;
};

/* A request with the admin's client certificate, straight to the API server (not through
 * any proxy); want is the status it must answer with, 0 for any. A PATCH body is a JSON
 * merge patch. */
struct kf_api kf_admin(const char *method, const char *path, const char *body, int want);
/* Whether RBAC lets the ServiceAccount sa of KF_NS verb resource of group in KF_NS. */
bool kf_sa_allowed(const char *sa, const char *verb, const char *group, const char *resource);
/* ServiceAccount name bound to role; returns once RBAC lets it verb leases (the authorizer
 * reads RoleBindings through a cache that may lag their creation). */
char *kf_make_sa(const char *name, const char *role, const char *verb);
/* A token for sa from the TokenRequest API, bound to a Secret when secret is not NULL (it
 * stops working once that Secret is deleted). */
char *kf_token_for(const char *sa, const char *secret);
/* Makes dir as the kubelet projects a service account: token, the cluster's ca.crt and
 * namespace KF_NS. */
void kf_write_sa_dir(const char *dir, const char *token);

/* Twelve random hex digits: a tag for the names of one test's objects. */
char *kf_new_tag(void);
/* <prefix>-<a new tag> into buf: a valid Kubernetes name unique to this test. */
void kf_name(char *buf, size_t n, const char *prefix);

/* Milliseconds on the monotonic clock, and a sleep that resumes after a signal. */
int64_t kf_mono_ms(void);
void kf_nap_ms(int ms);

#endif
