/* What the Kubernetes integration suites (test_lease.c, test_faults.c) add to the Kubernetes
 * fixture (test/common/kube_cluster.h): the suite setup on the harness, a service-account
 * directory in the test's directory, the environment of a pod, and a few database helpers.
 * Strings and arrays made here live until kf_teardown, like the harness's. */
#ifndef KUBE_FIXTURE_H
#define KUBE_FIXTURE_H

#include <libpq-fe.h>
#include <stdbool.h>

#include "harness.h"
#include "kube_cluster.h"

extern char *kf_port;         /* the API server's port */
extern char *kf_tag;          /* random hex naming this test's objects */
extern char *kf_lease;        /* this test's Lease */
extern const char *kf_sa_dir; /* the service-account directory kf_env points at */

/* The suite's .init: checks that RG_TEST_KUBE_DIR has port and need (else says so, then
 * need_hint), then h_setup, then names this test's Lease <prefix>-<tag>. */
void kf_setup(const char *prefix, const char *need, const char *need_hint);
/* The suite's .fini: kf_release, then h_teardown. */
void kf_teardown(void);

/* A service-account directory named name in the test's directory (kf_write_sa_dir). */
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
