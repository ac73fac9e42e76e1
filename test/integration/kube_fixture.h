/* What the Kubernetes suites (test_lease.c, test_faults.c) share: the suite setup against the
 * API server that scripts/test.sh starts (RG_TEST_KUBE_DIR), requests as the cluster's admin,
 * ServiceAccounts with tokens and service-account directories, the environment of a pod, and
 * a few database helpers. Strings and arrays made here live until kf_teardown, like the
 * harness's. */
#ifndef KUBE_FIXTURE_H
#define KUBE_FIXTURE_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

#include "harness.h"

#define KF_NS "rollgate-test"
/* Bounds on waits for something that must happen; never reached when all is well. */
#define KF_LONG_MS (120 * 1000)

extern const char *kf_dir;    /* RG_TEST_KUBE_DIR */
extern char *kf_port;         /* the API server's port */
extern char *kf_tag;          /* random hex naming this test's objects */
extern char *kf_lease;        /* this test's Lease */
extern const char *kf_sa_dir; /* the service-account directory kf_env points at */

/* The suite's .init: checks RG_TEST_KUBE_DIR (for "the <tests> tests") and that it has port
 * and need (else says so, then need_hint), then h_setup, then names this test's Lease
 * <prefix>-<tag>. */
void kf_setup(const char *tests, const char *prefix, const char *need, const char *need_hint);
/* The suite's .fini: frees what kf_keep kept, then h_teardown. */
void kf_teardown(void);
/* p (not NULL) is freed at kf_teardown. */
void *kf_keep(void *p);

char *kf_file(const char *name); /* a file of RG_TEST_KUBE_DIR */
char *kf_trim(char *s);          /* without trailing newlines and spaces */
int64_t kf_mono_ms(void);
void kf_nap_ms(int ms);

/* ---- the API server, as the cluster's admin ---- */

struct kf_api {
    int status;
    char *body;
};

/* A request straight to the API server (not through any proxy); want is the status it must
 * answer with, 0 for any. */
struct kf_api kf_admin(const char *method, const char *path, const char *body, int want);
bool kf_sa_allowed(const char *sa, const char *verb, const char *group, const char *resource);
/* ServiceAccount name bound to role; returns once RBAC lets it verb leases (the authorizer
 * reads RoleBindings through a cache that may lag their creation). */
char *kf_make_sa(const char *name, const char *role, const char *verb);
/* A token for sa from the TokenRequest API, bound to a Secret when secret is not NULL (it
 * stops working once that Secret is deleted). */
char *kf_token_for(const char *sa, const char *secret);
/* A service-account directory as the kubelet projects it: token, ca.crt, namespace. */
char *kf_make_sa_dir(const char *name, const char *token);

/* The environment of a pod whose API server is at 127.0.0.1:port: this test's database and
 * migrations, kf_sa_dir and kf_lease, lease mode kubernetes. The extras (NULL-terminated)
 * come first and replace a default of the same name. */
const char *const *kf_env(const char *port, ...);

/* ---- runs and the database ---- */

bool kf_led(const struct h_result *r); /* the run said it led */
/* Waits until this test's database has a backend running a statement that contains needle
 * (other than the poll itself), while p runs. */
bool kf_wait_statement(const char *needle, struct h_proc *p);
/* A connection of its own that holds the advisory lock key until PQfinish. */
PGconn *kf_hold_advisory_lock(long long key);
long long kf_history_rows(void); /* rows of rollgate_migrations, 0 when there is none */

#endif
