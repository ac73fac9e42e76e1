/* migrate --phase post --after-rollout deployment/NAME against a real kube-apiserver
 * (DESIGN.md "Commands"). The test server runs no controllers, so each test makes a
 * Deployment and writes its status itself (a merge patch of the /status subresource),
 * through an incomplete and then a complete rollout, or a stuck one. The binary runs as the
 * chart's post-upgrade Job would, with a ServiceAccount whose Role may get that one
 * Deployment (resourceNames), besides the Lease rights. */
#include <criterion/criterion.h>

#include <signal.h>
#include <string.h>

#include "harness.h"
#include "kube_fixture.h"

static char *deploy; /* this test's Deployment */

static void postdeploy_setup(void)
{
    kf_setup("pd", "rollgate.token", ": run scripts/kube-test-cluster.sh start and smoke on it");
    deploy = h_fmt("web-%s", kf_tag);
}

TestSuite(postdeploy, .init = postdeploy_setup, .fini = kf_teardown, .timeout = 600);

#define DEPLOYMENTS "/apis/apps/v1/namespaces/" KF_NS "/deployments"

/* The chart's Role for the post-upgrade Job: the Lease and Events, and get on this one
 * Deployment; a ServiceAccount bound to it and its service-account directory for kf_env. */
static void post_job_sa(void)
{
    char *role = h_fmt("pd-%s", kf_tag);
    kf_admin("POST", "/apis/rbac.authorization.k8s.io/v1/namespaces/" KF_NS "/roles",
             h_fmt("{\"apiVersion\":\"rbac.authorization.k8s.io/v1\",\"kind\":\"Role\","
                   "\"metadata\":{\"name\":\"%s\"},\"rules\":["
                   "{\"apiGroups\":[\"coordination.k8s.io\"],\"resources\":[\"leases\"],"
                   "\"verbs\":[\"get\",\"create\",\"update\"]},"
                   "{\"apiGroups\":[\"\"],\"resources\":[\"events\"],\"verbs\":[\"create\"]},"
                   "{\"apiGroups\":[\"apps\"],\"resources\":[\"deployments\"],"
                   "\"resourceNames\":[\"%s\"],\"verbs\":[\"get\"]}]}",
                   role, deploy),
             201);
    char *sa = kf_make_sa(h_fmt("pd-%s", kf_tag), role, "get");
    kf_sa_dir = kf_make_sa_dir("sa", kf_token_for(sa, NULL));
}

/* A Deployment of two replicas, as created: generation 1, no status yet. */
static void make_deployment(void)
{
    kf_admin("POST", DEPLOYMENTS,
             h_fmt("{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"metadata\":{\"name\":"
                   "\"%s\"},\"spec\":{\"replicas\":2,\"selector\":{\"matchLabels\":{\"app\":"
                   "\"%s\"}},\"template\":{\"metadata\":{\"labels\":{\"app\":\"%s\"}},\"spec\":"
                   "{\"containers\":[{\"name\":\"app\",\"image\":\"example.invalid/app:2\"}]}}}}",
                   deploy, deploy, deploy),
             201);
}

/* What the Deployment controller would write: status of the latest generation (1). */
static void set_status(int replicas, int updated, int available, const char *conditions)
{
    kf_admin("PATCH", h_fmt(DEPLOYMENTS "/%s/status", deploy),
             h_fmt("{\"status\":{\"observedGeneration\":1,\"replicas\":%d,\"updatedReplicas\":%d,"
                   "\"readyReplicas\":%d,\"availableReplicas\":%d%s%s}}",
                   replicas, updated, available, available, conditions ? ",\"conditions\":" : "",
                   conditions ? conditions : ""),
             200);
}

/* 1 applied by the pre phase; 2 is the contract step the post phase applies. */
static void pre_applied_post_pending(void)
{
    h_migration(1, "add_column", "CREATE TABLE t (old_name text, new_name text);\n", NULL);
    h_migration(2, "drop_old", "-- rollgate:phase=post\nALTER TABLE t DROP COLUMN old_name;\n",
                NULL);
    struct h_result pre = h_run(H_ARGS("migrate", "--phase", "pre"), kf_env(kf_port, NULL));
    h_assert_exit(pre, 0);
}

static long long applied(long long version)
{
    return h_query_int(h_fmt("SELECT count(*) FROM public.rollgate_migrations "
                             "WHERE kind = 'schema' AND version = %lld",
                             version));
}

/* Sessions of rollgate (application_name rollgate/<identity>) in this test's database. */
static long long rollgate_sessions(void)
{
    return h_query_int(h_fmt("SELECT count(*) FROM pg_stat_activity WHERE datname = '%s' "
                             "AND application_name LIKE 'rollgate/%%'",
                             h_db_name()));
}

static const char *after_rollout(void)
{
    return h_fmt("deployment/%s", deploy);
}

Test(postdeploy, waits_through_an_incomplete_rollout_holding_no_session_then_applies)
{
    post_job_sa();
    pre_applied_post_pending();
    make_deployment();

    struct h_proc *p = h_start(H_ARGS("migrate", "--phase", "post", "--after-rollout",
                                      after_rollout(), "--timeout", "300s"),
                               kf_env(kf_port, NULL));
    cr_assert(h_proc_wait_stderr(p, "waiting for the rollout to complete", KF_LONG_MS),
              "the run never said it waits for the rollout");
    /* Generation 1 not yet observed; then observed, one of two pods updated, an old one
     * still there: each time still waiting, and nothing open on the database. */
    cr_assert(h_proc_alive(p));
    cr_assert_eq(applied(2), 0);
    set_status(3, 1, 2, NULL);
    kf_nap_ms(1500);
    cr_assert(h_proc_alive(p), "migrate went on while the rollout was incomplete");
    cr_assert_eq(applied(2), 0, "the post-deploy migration ran before the rollout completed");
    cr_assert_eq(rollgate_sessions(), 0, "a database session was open during the wait");
    /* Every pod updated, but one not yet available. */
    set_status(2, 2, 1, NULL);
    kf_nap_ms(1500);
    cr_assert(h_proc_alive(p), "migrate went on with an updated pod unavailable");
    set_status(2, 2, 2, NULL);

    struct h_result r = h_wait(p);
    h_assert_exit(r, 0);
    h_assert_has(r, r.err, "rollout complete");
    cr_assert_eq(applied(2), 1);
    cr_assert_eq(h_query_int("SELECT count(*) FROM information_schema.columns WHERE "
                             "table_name = 't' AND column_name = 'old_name'"),
                 0);
}

Test(postdeploy, progress_deadline_exceeded_ends_the_wait_at_once_with_exit_8)
{
    post_job_sa();
    pre_applied_post_pending();
    make_deployment();
    set_status(3, 1, 2,
               "[{\"type\":\"Progressing\",\"status\":\"False\",\"reason\":"
               "\"ProgressDeadlineExceeded\",\"message\":\"ReplicaSet \\\"web-2\\\" has timed "
               "out progressing.\"}]");

    struct h_result r = h_run(H_ARGS("migrate", "--phase", "post", "--after-rollout",
                                     after_rollout(), "--timeout", "300s"),
                              kf_env(kf_port, NULL));
    h_assert_exit(r, 8);
    h_assert_has(r, r.termlog, "exceeded its progress deadline");
    h_assert_has(r, r.termlog, deploy);
    h_assert_has(r, r.termlog, "has timed out progressing");
    h_assert_lacks(r, r.termlog, "timeout ran out");
    cr_assert_eq(applied(2), 0);
}

Test(postdeploy, the_runs_timeout_ends_the_wait_with_exit_8_naming_what_is_missing)
{
    post_job_sa();
    pre_applied_post_pending();
    make_deployment();
    set_status(3, 1, 2, NULL);

    struct h_result r = h_run(
        H_ARGS("migrate", "--phase", "post", "--after-rollout", after_rollout(), "--timeout", "4s"),
        kf_env(kf_port, NULL));
    h_assert_exit(r, 8);
    h_assert_has(r, r.termlog, "timeout ran out");
    h_assert_has(r, r.termlog, h_fmt("Deployment " KF_NS "/%s", deploy));
    h_assert_has(r, r.termlog, "1 of 2 replicas updated");
    cr_assert_eq(applied(2), 0);
}

Test(postdeploy, a_missing_deployment_is_a_configuration_error)
{
    post_job_sa();
    pre_applied_post_pending();

    struct h_result r = h_run(H_ARGS("migrate", "--phase", "post", "--after-rollout",
                                     after_rollout(), "--timeout", "300s"),
                              kf_env(kf_port, NULL));
    h_assert_exit(r, 3);
    h_assert_has(r, r.termlog, "not found");
    h_assert_has(r, r.termlog, "migrations.postDeploy.deployment");
    cr_assert_eq(applied(2), 0);
}

Test(postdeploy, a_role_without_get_on_the_deployment_is_exit_10)
{
    /* The smoke test's Role: Leases and Events, nothing on Deployments. */
    char *sa = kf_make_sa(h_fmt("pd-%s", kf_tag), "rollgate", "get");
    kf_sa_dir = kf_make_sa_dir("sa", kf_token_for(sa, NULL));
    pre_applied_post_pending();
    make_deployment();
    set_status(2, 2, 2, NULL);

    struct h_result r = h_run(H_ARGS("migrate", "--phase", "post", "--after-rollout",
                                     after_rollout(), "--timeout", "300s"),
                              kf_env(kf_port, NULL));
    h_assert_exit(r, 10);
    h_assert_has(r, r.termlog, "deployments");
    cr_assert_eq(applied(2), 0);
}

/* An API server that is down while the run waits for the rollout: the GET's retries run out
 * and the run ends with exit 9 (the API), having opened nothing on the database. Nothing
 * listens on the port given as the API's. */
Test(postdeploy, an_api_server_that_is_down_ends_the_wait_with_exit_9)
{
    post_job_sa();
    pre_applied_post_pending();
    char *down = h_fmt("%d", h_free_port());

    struct h_result r = h_run(H_ARGS("migrate", "--phase", "post", "--after-rollout",
                                     after_rollout(), "--timeout", "300s"),
                              kf_env(down, NULL));
    h_assert_exit(r, 9);
    h_assert_has(r, r.termlog, h_fmt("deployments/%s", deploy));
    h_assert_lacks(r, r.termlog, "token");
    cr_assert_eq(applied(2), 0);
    cr_assert_eq(rollgate_sessions(), 0);
}

/* SIGTERM while waiting for the rollout (the Job's deadline, a helm timeout): the wait ends
 * at once with 143 and names what the rollout still lacked; nothing was applied. */
Test(postdeploy, sigterm_during_the_wait_exits_143_with_nothing_applied)
{
    post_job_sa();
    pre_applied_post_pending();
    make_deployment();
    set_status(3, 1, 2, NULL);

    struct h_proc *p = h_start(H_ARGS("migrate", "--phase", "post", "--after-rollout",
                                      after_rollout(), "--timeout", "300s"),
                               kf_env(kf_port, NULL));
    cr_assert(h_proc_wait_stderr(p, "waiting for the rollout to complete", KF_LONG_MS),
              "the run never said it waits for the rollout");
    cr_assert_eq(kill(h_proc_pid(p), SIGTERM), 0);

    struct h_result r = h_wait(p);
    h_assert_exit(r, 143);
    h_assert_has(r, r.termlog, "1 of 2 replicas updated");
    h_assert_has(r, r.termlog, "not applied");
    cr_assert_eq(applied(2), 0);
}
