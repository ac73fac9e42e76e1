/* The Kubernetes Lease (DESIGN.md "Leader lease"), against a real kube-apiserver.
 *
 * scripts/test.sh starts one (scripts/kube-test-cluster.sh start + smoke) and passes its
 * directory in RG_TEST_KUBE_DIR. The binary runs as a pod would: KUBERNETES_SERVICE_HOST
 * and _PORT, a service-account directory (token, ca.crt, namespace) of the test's own, and
 * a Lease name of the test's own. Each test also makes its own ServiceAccounts (bound to
 * the smoke test's Role unless it needs another), so the API server's audit log, which
 * names the user and the Lease of every request, counts one test's requests alone even
 * while other tests run beside it. */
#include <criterion/criterion.h>
#include <criterion/logging.h>

#include <errno.h>
#include <libpq-fe.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "kube_fixture.h"

#define KUBECTL "/var/cache/rollgate/kubernetes-1.20.2/kubectl"
/* Timings for the tests where one run takes over from another. */
#define SHORT_DURATION "ROLLGATE_LEASE_DURATION=3s"
#define SHORT_DEADLINE "ROLLGATE_LEASE_RENEW_DEADLINE=2s"
#define SHORT_RETRY "ROLLGATE_LEASE_RETRY_PERIOD=500ms"
/* client-go's defaults, which rollgate's are. */
#define DEFAULT_DURATION_MS 15000
#define DEFAULT_RETRY_MS 2000

static int nsync;

static void lease_setup(void)
{
    kf_setup("lt", "rollgate.token", ": run scripts/kube-test-cluster.sh start and smoke on it");
    nsync = 0;
}

TestSuite(lease, .init = lease_setup, .fini = kf_teardown, .timeout = 900);

/* ---- the API server, as the cluster's admin ---- */

static char *kubectl_get(const char *kind, const char *name)
{
    struct h_result r = h_cmd(H_ARGS(KUBECTL, "--kubeconfig", kf_file("admin.kubeconfig"), "-n",
                                     KF_NS, "get", kind, name, "-o", "json"));
    if (r.exited && r.code != 0 && strstr(r.err, "NotFound"))
        return NULL;
    cr_assert(r.exited && r.code == 0, "kubectl get %s %s failed\n%s", kind, name, h_describe(&r));
    return r.out;
}

/* This test's Lease as the API server has it, or NULL when there is none. */
static char *lease_json(void)
{
    return kubectl_get("lease", kf_lease);
}

static char *lease_field(const char *json, const char *field)
{
    return h_json(json, h_fmt("{spec,%s}", field));
}

static long long lease_transitions(const char *json)
{
    char *t = lease_field(json, "leaseTransitions");
    cr_assert_not_null(t, "the Lease has no leaseTransitions: %s", json);
    cr_assert(strcmp(h_query1("SELECT $1 ~ '^[0-9]+$'", t), "t") == 0,
              "leaseTransitions is not a number: %s", t);
    return atoll(t);
}

static bool lease_released(const char *json)
{
    char *holder = lease_field(json, "holderIdentity");
    return holder == NULL || *holder == '\0';
}

/* A ServiceAccount bound to role; returns once RBAC lets it get leases. */
static char *make_sa(const char *role)
{
    static int n;
    return kf_make_sa(h_fmt("lt-%s-%d", kf_tag, ++n), role, "get");
}

static bool token_authenticates(const char *token)
{
    struct kf_api a =
        kf_admin("POST", "/apis/authentication.k8s.io/v1/tokenreviews",
                 h_fmt("{\"apiVersion\":\"authentication.k8s.io/v1\",\"kind\":\"TokenReview\","
                       "\"spec\":{\"token\":\"%s\"}}",
                       token),
                 201);
    char *ok = h_json(a.body, "{status,authenticated}");
    return ok && strcmp(ok, "true") == 0;
}

/* A ServiceAccount with the smoke test's Role (leases get/create/update, events create)
 * and a service-account directory for it, which kf_env then uses. */
static char *default_sa(void)
{
    char *sa = make_sa("rollgate");
    kf_sa_dir = kf_make_sa_dir(h_fmt("sa-%s", sa), kf_token_for(sa, NULL));
    return sa;
}

/* ---- the audit log: one JSON line per finished request ---- */

struct audit_q {
    const char *sa;    /* requests by this ServiceAccount (NULL: anyone) */
    const char *lease; /* on this Lease (NULL: anything) */
    const char *verb;  /* NULL: any */
    int code;          /* response status, 0: any */
};

static long audit_size(void)
{
    struct stat st;
    cr_assert(stat(kf_file("audit.log"), &st) == 0, "stat audit.log: %s", strerror(errno));
    return (long)st.st_size;
}

/* Lines of the audit log from byte offset from that match q. */
static long audit_count(long from, struct audit_q q)
{
    FILE *f = fopen(kf_file("audit.log"), "r");
    cr_assert_not_null(f, "open audit.log: %s", strerror(errno));
    cr_assert(fseek(f, from, SEEK_SET) == 0, "seek audit.log: %s", strerror(errno));
    char *user = q.sa ? h_fmt("\"username\":\"system:serviceaccount:" KF_NS ":%s\"", q.sa) : NULL;
    char *name = q.lease ? h_fmt("\"name\":\"%s\"", q.lease) : NULL;
    char *verb = q.verb ? h_fmt("\"verb\":\"%s\"", q.verb) : NULL;
    char *code = q.code ? h_fmt("\"code\":%d", q.code) : NULL;
    char *line = NULL;
    size_t cap = 0;
    long n = 0;
    while (getline(&line, &cap, f) > 0) {
        if (!strstr(line, "\"stage\":\"ResponseComplete\""))
            continue;
        if (user && !strstr(line, user))
            continue;
        if (name && !(strstr(line, name) && strstr(line, "\"resource\":\"leases\"")))
            continue;
        if (verb && !strstr(line, verb))
            continue;
        if (code && !strstr(line, code))
            continue;
        n++;
    }
    free(line);
    fclose(f);
    return n;
}

/* Returns once requests answered before now are in the audit log: the server writes a
 * request's line as it finishes it, so a marker request sent now shows up after them. */
static void audit_sync(void)
{
    char *marker = h_fmt("sync-%s-%d", kf_tag, ++nsync);
    kf_admin("GET", h_fmt("/apis/coordination.k8s.io/v1/namespaces/" KF_NS "/leases/%s", marker),
             NULL, 404);
    int64_t deadline = kf_mono_ms() + KF_LONG_MS;
    while (audit_count(0, (struct audit_q){.lease = marker}) == 0) {
        cr_assert(kf_mono_ms() < deadline, "the marker request %s never reached audit.log", marker);
        kf_nap_ms(50);
    }
}

/* ---- runs ---- */

/* The run's own count of API requests ("Kubernetes API requests made"), -1 when absent. */
static long requests_logged(const struct h_result *r)
{
    const char *line = strstr(r->err, "Kubernetes API requests made");
    if (!line)
        return -1;
    const char *eol = strchr(line, '\n');
    const char *field = strstr(line, "\"requests\":");
    if (!field || (eol && field > eol))
        return -1;
    return atol(field + strlen("\"requests\":"));
}

/* ---- 1. the fast path ---- */

Test(lease, fast_path_makes_no_api_request_when_nothing_is_pending)
{
    char *sa = default_sa();
    h_migration(1, "a", "CREATE TABLE a (id int);\n", NULL);
    h_migration(2, "b", "CREATE TABLE b (id int);\n", NULL);
    struct h_result first = h_run(H_ARGS("migrate"), kf_env(kf_port, "POD_NAME=first", NULL));
    h_assert_exit(first, 0);
    cr_assert(kf_led(&first), "the run with work did not lead\n%s", h_describe(&first));
    audit_sync();
    long lease_before = audit_count(0, (struct audit_q){.lease = kf_lease});
    long sa_before = audit_count(0, (struct audit_q){.sa = sa});
    cr_assert(lease_before > 0, "the run with work made no request for Lease %s", kf_lease);

    const char *modes[] = {"ROLLGATE_LEASE_MODE=kubernetes", "ROLLGATE_LEASE_MODE=auto"};
    for (size_t i = 0; i < 2; i++) {
        struct h_result r = h_run(H_ARGS("migrate"), kf_env(kf_port, modes[i], "POD_NAME=fast",
                                                            "POD_NAMESPACE=" KF_NS, NULL));
        h_assert_exit(r, 0);
        audit_sync();
        long lease_after = audit_count(0, (struct audit_q){.lease = kf_lease});
        long sa_after = audit_count(0, (struct audit_q){.sa = sa});
        cr_assert_eq(lease_after, lease_before,
                     "%s: the fast path made %ld requests for the Lease\n%s", modes[i],
                     lease_after - lease_before, h_describe(&r));
        cr_assert_eq(sa_after, sa_before,
                     "%s: the fast path made %ld requests as the ServiceAccount\n%s", modes[i],
                     sa_after - sa_before, h_describe(&r));
        long logged = requests_logged(&r);
        cr_assert(logged <= 0, "%s: the run logged %ld API requests\n%s", modes[i], logged,
                  h_describe(&r));
    }
}

/* ---- 2. lead, apply, release; Events ---- */

static bool is_microtime(const char *s)
{
    return s &&
           strcmp(h_query1("SELECT $1 ~ "
                           "'^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{6}Z$'",
                           s),
                  "t") == 0;
}

/* Events in an EventList (JSON) with this reason about the Pod named pod in NS. */
static long long event_count(const char *list, const char *pod, const char *reason)
{
    return atoll(h_query2(h_fmt("SELECT count(*) FROM jsonb_array_elements(($1::jsonb)->'items') "
                                "e WHERE e->>'reason' = $2 AND e#>>'{involvedObject,kind}' = "
                                "'Pod' AND e#>>'{involvedObject,name}' = '%s' AND "
                                "e#>>'{involvedObject,namespace}' = '" KF_NS "'",
                                pod),
                          list, reason));
}

Test(lease, a_run_with_work_leads_applies_releases_and_posts_events_on_its_pod)
{
    default_sa();
    char *pod = h_fmt("pod-%s", kf_tag);
    h_migration(1, "a", "CREATE TABLE a (id int);\n", NULL);
    h_migration(2, "b", "CREATE TABLE b (id int);\n", NULL);

    struct h_result r = h_run(H_ARGS("migrate"), kf_env(kf_port, h_fmt("POD_NAME=%s", pod),
                                                        "POD_NAMESPACE=" KF_NS, NULL));

    h_assert_exit(r, 0);
    cr_assert(kf_led(&r), "stderr does not say it led\n%s", h_describe(&r));
    h_assert_has(r, r.err, kf_lease);
    cr_assert(h_table_exists("a") && h_table_exists("b"));
    cr_assert_eq(kf_history_rows(), 2);
    cr_assert_str_eq(h_query("SELECT string_agg(DISTINCT applied_by, ',') FROM "
                             "public.rollgate_migrations"),
                     pod);

    char *lease = lease_json();
    cr_assert_not_null(lease, "Lease %s does not exist after the run", kf_lease);
    cr_assert(lease_released(lease), "the Lease is still held after the run: %s", lease);
    lease_transitions(lease);
    cr_assert(is_microtime(lease_field(lease, "acquireTime")), "acquireTime: %s", lease);
    cr_assert(is_microtime(lease_field(lease, "renewTime")), "renewTime: %s", lease);

    struct h_result ev = h_cmd(H_ARGS(KUBECTL, "--kubeconfig", kf_file("admin.kubeconfig"), "-n",
                                      KF_NS, "get", "events", "--field-selector",
                                      h_fmt("involvedObject.name=%s", pod), "-o", "json"));
    cr_assert(ev.exited && ev.code == 0, "kubectl get events\n%s", h_describe(&ev));
    long long started = event_count(ev.out, pod, "MigrationStarted");
    long long succeeded = event_count(ev.out, pod, "MigrationSucceeded");
    cr_assert(started >= 1 && succeeded >= 1,
              "Events on pod %s: %lld MigrationStarted, %lld MigrationSucceeded:\n%s", pod, started,
              succeeded, ev.out);
}

Test(lease, auto_mode_uses_the_lease_in_a_cluster_and_not_outside_one)
{
    default_sa();
    h_migration(1, "a", "CREATE TABLE a (id int);\n", NULL);
    struct h_result in = h_run(
        H_ARGS("migrate"), kf_env(kf_port, "ROLLGATE_LEASE_MODE=auto", "POD_NAME=auto-in", NULL));
    h_assert_exit(in, 0);
    cr_assert(kf_led(&in), "auto mode with a cluster did not take the Lease\n%s", h_describe(&in));
    audit_sync();
    long before = audit_count(0, (struct audit_q){.lease = kf_lease});
    cr_assert(before > 0, "auto mode made no request for Lease %s", kf_lease);

    /* No KUBERNETES_SERVICE_HOST: not in a cluster, the database alone serializes. */
    h_migration(2, "b", "CREATE TABLE b (id int);\n", NULL);
    struct h_result out =
        h_run(H_ARGS("migrate"), H_ENV(h_env_url(), h_env_dir(),
                                       h_fmt("ROLLGATE_LEASE_SERVICE_ACCOUNT_DIR=%s", kf_sa_dir),
                                       h_fmt("ROLLGATE_LEASE_NAME=%s", kf_lease),
                                       "ROLLGATE_LEASE_MODE=auto", "POD_NAME=auto-out"));
    h_assert_exit(out, 0);
    h_assert_lacks(out, out.err, "leading");
    cr_assert(h_table_exists("b"));
    audit_sync();
    cr_assert_eq(audit_count(0, (struct audit_q){.lease = kf_lease}), before,
                 "auto mode outside a cluster called the API\n%s", h_describe(&out));
}

Test(lease, kubernetes_mode_outside_a_cluster_takes_the_lease_with_the_kubeconfig)
{
    char *sa = make_sa("rollgate");
    char *token = kf_token_for(sa, NULL);
    char *kubeconfig = h_tmp_path("kubeconfig");
    /* No namespace in the context: ROLLGATE_LEASE_NAMESPACE says where. */
    h_write_file(kubeconfig, h_fmt("apiVersion: v1\n"
                                   "kind: Config\n"
                                   "clusters:\n"
                                   "- name: test\n"
                                   "  cluster:\n"
                                   "    server: https://127.0.0.1:%s\n"
                                   "    certificate-authority: %s\n"
                                   "users:\n"
                                   "- name: laptop\n"
                                   "  user:\n"
                                   "    token: %s\n"
                                   "contexts:\n"
                                   "- name: test\n"
                                   "  context: {cluster: test, user: laptop}\n"
                                   "current-context: test\n",
                                   kf_port, kf_file("ca.crt"), token));
    h_migration(1, "a", "CREATE TABLE a (id int);\n", NULL);

    /* No KUBERNETES_SERVICE_HOST and no service-account directory; KUBECONFIG is a list,
     * of which the first file is read. */
    struct h_result r = h_run(
        H_ARGS("migrate"),
        H_ENV(h_env_url(), h_env_dir(), h_fmt("KUBECONFIG=%s:/nonexistent/config", kubeconfig),
              "ROLLGATE_LEASE_MODE=kubernetes", "ROLLGATE_LEASE_NAMESPACE=" KF_NS,
              h_fmt("ROLLGATE_LEASE_NAME=%s", kf_lease), "POD_NAME=laptop-run"));

    h_assert_exit(r, 0);
    cr_assert(kf_led(&r), "stderr does not say it led\n%s", h_describe(&r));
    h_assert_lacks(r, r.err, token);
    cr_assert(h_table_exists("a"));
    char *lease = lease_json();
    cr_assert_not_null(lease, "Lease %s does not exist after the run", kf_lease);
    cr_assert(lease_released(lease), "the Lease is still held after the run: %s", lease);
    audit_sync();
    /* Taken (created) and released (updated) with the kubeconfig's token. */
    cr_assert_eq(
        audit_count(0,
                    (struct audit_q){.sa = sa, .lease = kf_lease, .verb = "create", .code = 201}),
        1, "the kubeconfig's token did not create Lease %s\n%s", kf_lease, h_describe(&r));
    cr_assert(
        audit_count(
            0, (struct audit_q){.sa = sa, .lease = kf_lease, .verb = "update", .code = 200}) >= 1,
        "the kubeconfig's token did not release Lease %s\n%s", kf_lease, h_describe(&r));
}

/* ---- 3. races ---- */

/* n runs started at once on migrations pending versions, each taking sleep_ms, so that
 * the leader is still at work while the others start. */
static void race(size_t n, int migrations, int sleep_ms)
{
    char *sa = default_sa();
    h_query("CREATE TABLE applied_log (version int NOT NULL)");
    for (int v = 1; v <= migrations; v++)
        h_migration(v, "m",
                    h_fmt("INSERT INTO applied_log VALUES (%d);\nSELECT pg_sleep(%d / 1000.0);\n",
                          v, sleep_ms),
                    NULL);

    struct h_proc **procs = kf_keep(calloc(n, sizeof *procs));
    struct h_result *res = kf_keep(calloc(n, sizeof *res));
    int64_t t0 = kf_mono_ms();
    for (size_t i = 0; i < n; i++)
        procs[i] = h_start(H_ARGS("migrate"),
                           kf_env(kf_port, h_fmt("POD_NAME=racer-%zu-%s", i, kf_tag), NULL));
    h_wait_many(procs, n, res);
    int64_t wall = kf_mono_ms() - t0;

    for (size_t i = 0; i < n; i++)
        h_assert_exit(res[i], 0);
    cr_assert_eq(h_count_rows("applied_log"), migrations);
    cr_assert_eq(h_query_int("SELECT count(DISTINCT version) FROM applied_log"), migrations);
    cr_assert_eq(h_count_rows("public.rollgate_migrations"), migrations);

    audit_sync();
    long total = audit_count(0, (struct audit_q){.lease = kf_lease});
    long by_sa = audit_count(0, (struct audit_q){.sa = sa});
    long leader_reqs = 0, follower_reqs = 0, follower_max = 0, logged = 0;
    size_t leaders = 0, waited = 0, fast = 0;
    for (size_t i = 0; i < n; i++) {
        long k = requests_logged(&res[i]);
        cr_assert(k >= 0, "run %zu logged no request count\n%s", i, h_describe(&res[i]));
        logged += k;
        if (kf_led(&res[i])) {
            leaders++;
            leader_reqs += k;
        } else {
            waited += strstr(res[i].err, "another run holds the lease") != NULL;
            fast += k == 0;
            follower_reqs += k;
            if (k > follower_max)
                follower_max = k;
        }
    }
    size_t followers = n - leaders;
    cr_log_info("lease race: %zu processes, %d migrations of %dms, %lldms: %ld requests for the "
                "Lease in audit.log (%ld by the ServiceAccount; the runs logged %ld); %zu "
                "leader(s) made %ld; %zu followers made %ld (%.2f each, at most %ld; %zu waited "
                "for the leader, %zu found nothing to do without a request)",
                n, migrations, sleep_ms, (long long)wall, total, by_sa, logged, leaders,
                leader_reqs, followers, follower_reqs,
                followers ? (double)follower_reqs / (double)followers : 0.0, follower_max, waited,
                fast);

    cr_assert(leaders >= 1, "no run led");
    cr_assert_eq(total, by_sa, "requests for the Lease by another user?");
    cr_assert_eq(total, logged, "audit.log has %ld requests for the Lease, the runs logged %ld",
                 total, logged);
    /* A follower: a read (and a create that lost) at start, then one read per lease
     * duration while the leader still works; so at most 2 when the leader is done within
     * one duration (DESIGN.md: "a follower costs the API server at most 2 requests"). */
    long extra = (long)(wall / DEFAULT_DURATION_MS);
    for (size_t i = 0; i < n; i++)
        if (!kf_led(&res[i]))
            cr_assert(requests_logged(&res[i]) <= 2 + extra,
                      "follower %zu made %ld requests (the race took %lldms)\n%s", i,
                      requests_logged(&res[i]), (long long)wall, h_describe(&res[i]));
    /* A leader: read and create/take, a read and an update per retry period, release (and
     * one read and update more when the release met a conflict). */
    cr_assert(leader_reqs <= (long)leaders * (5 + 2 * (long)(wall / DEFAULT_RETRY_MS)),
              "leaders made %ld requests in %lldms", leader_reqs, (long long)wall);
    cr_assert(total <= leader_reqs + (2 + extra) * (long)followers);
}

Test(lease, eight_racers_on_200_migrations_apply_each_once_and_followers_cost_little)
{
    race(8, 200, 10);
}

Test(lease, fifty_racers_on_50_migrations_apply_each_once_and_followers_cost_little)
{
    race(50, 50, 60);
}

/* ---- 4. a killed leader ---- */

Test(lease, a_killed_leaders_work_rolls_back_and_a_waiter_takes_over_after_expiry)
{
    default_sa();
    char *leader = h_fmt("leader-%s", kf_tag), *waiter = h_fmt("waiter-%s", kf_tag);
    h_query("CREATE TABLE applied_log (version int NOT NULL)");
    h_migration(1, "one", "CREATE TABLE one (id int);\nINSERT INTO applied_log VALUES (1);\n",
                NULL);
    h_migration(2, "two",
                "CREATE TABLE two (id int);\nINSERT INTO applied_log VALUES (2);\n"
                "SELECT pg_sleep(5);\n",
                NULL);

    struct h_proc *a =
        h_start(H_ARGS("migrate"), kf_env(kf_port, h_fmt("POD_NAME=%s", leader), SHORT_DURATION,
                                          SHORT_DEADLINE, SHORT_RETRY, NULL));
    cr_assert(h_proc_wait_stderr(a, "leading", KF_LONG_MS), "the first run never led");
    cr_assert(kf_wait_statement("pg_sleep(5)", a), "the first run never reached version 2");
    char *held = lease_json();
    cr_assert_not_null(held);
    cr_assert_str_eq(lease_field(held, "holderIdentity"), leader);
    long long transitions = lease_transitions(held);

    struct h_proc *b =
        h_start(H_ARGS("migrate"), kf_env(kf_port, h_fmt("POD_NAME=%s", waiter), SHORT_DURATION,
                                          SHORT_DEADLINE, SHORT_RETRY, NULL));
    cr_assert(h_proc_wait_stderr(b, "another run holds the lease", KF_LONG_MS),
              "the second run did not wait for the lease");
    char *killed_at = h_query("SELECT clock_timestamp()::text");
    cr_assert_eq(kill(h_proc_pid(a), SIGKILL), 0);
    struct h_result ra = h_wait(a);
    cr_assert_eq(ra.signo, SIGKILL);

    /* While the killed run's backend still sleeps it holds the migration lock, so the
     * waiter cannot have applied version 2 yet: its table must be invisible. */
    bool absent = !h_table_exists("two");
    bool backend_still_there = strcmp(h_query("SELECT EXISTS (SELECT 1 FROM pg_stat_activity "
                                              "WHERE datname = current_database() AND pid <> "
                                              "pg_backend_pid() AND position('pg_sleep(5)' in "
                                              "query) > 0 AND state = 'active')"),
                                      "t") == 0;
    if (backend_still_there)
        cr_assert(absent, "version 2's table is visible although its run was killed");
    else
        cr_log_warn("the killed run's backend ended before the check; skipped the "
                    "absence check (applied_by below still shows who applied version 2)");

    struct h_result rb = h_wait(b);
    h_assert_exit(rb, 0);
    cr_assert(kf_led(&rb), "the waiter finished without leading\n%s", h_describe(&rb));
    cr_assert(h_table_exists("one") && h_table_exists("two"));
    cr_assert_eq(h_query_int("SELECT count(*) FROM applied_log WHERE version = 1"), 1);
    cr_assert_eq(h_query_int("SELECT count(*) FROM applied_log WHERE version = 2"), 1);
    cr_assert_str_eq(h_query("SELECT applied_by FROM public.rollgate_migrations WHERE version = 1"),
                     leader);
    char *after = lease_json();
    cr_assert(lease_released(after), "the waiter left the Lease held: %s", after);
    cr_assert(lease_transitions(after) > transitions,
              "leaseTransitions did not increase (%lld before): %s", transitions, after);
    /* Last, so that everything above is checked too when this fails. */
    char *by2 = h_query("SELECT applied_by || ' at ' || applied_at FROM "
                        "public.rollgate_migrations WHERE version = 2");
    cr_assert(by2 && strncmp(by2, waiter, strlen(waiter)) == 0 && by2[strlen(waiter)] == ' ',
              "version 2 was applied by %s (applied_at: its transaction's start), not by the "
              "waiter %s; the run was killed at %s%s: the killed run's transaction committed "
              "after its process died\n%s",
              by2 ? by2 : "(nobody)", waiter, killed_at,
              backend_still_there ? ", after which its table was still invisible while its "
                                    "backend still ran pg_sleep"
                                  : "",
              h_describe(&rb));
}

/* The SQL that makes the first run (POD_NAME leader-...) hang in a migration and lets any
 * other run straight through. */
#define LEADER_HANGS                                                                               \
    "SELECT pg_sleep(CASE WHEN current_setting('application_name') LIKE "                          \
    "'rollgate/leader-%' THEN 600 ELSE 0 END);\n"

/* A leader (POD_NAME leader-<tag>) that leads and reaches LEADER_HANGS, and a waiter
 * (waiter-<tag>) that waits for it, both with a 60 s Lease and a 1 s retry period. */
static void leader_hangs_and_waiter_waits(struct h_proc **leader, struct h_proc **waiter)
{
    const char *timings[] = {"ROLLGATE_LEASE_DURATION=60s", "ROLLGATE_LEASE_RENEW_DEADLINE=40s",
                             "ROLLGATE_LEASE_RETRY_PERIOD=1s"};
    *leader = h_start(H_ARGS("migrate"), kf_env(kf_port, h_fmt("POD_NAME=leader-%s", kf_tag),
                                                timings[0], timings[1], timings[2], NULL));
    cr_assert(h_proc_wait_stderr(*leader, "leading", KF_LONG_MS), "the first run never led");
    cr_assert(kf_wait_statement("pg_sleep(CASE", *leader), "the first run never reached its sleep");
    *waiter = h_start(H_ARGS("migrate"), kf_env(kf_port, h_fmt("POD_NAME=waiter-%s", kf_tag),
                                                timings[0], timings[1], timings[2], NULL));
    cr_assert(h_proc_wait_stderr(*waiter, "another run holds the lease", KF_LONG_MS),
              "the second run did not wait for the lease");
}

/* Takeover in seconds (DESIGN.md "Leader lease"): a SIGKILLed leader's session is gone
 * within a second or so (its socket closes, or client_connection_check_interval notices),
 * and a waiter that finds the holder without a session and without a renewal for a retry
 * period takes the Lease over at once. With a 60 s Lease, the waiter is done long before
 * it would have expired; without the takeover it waits it out. */
Test(lease, a_sigkilled_leader_is_taken_over_long_before_its_lease_expires)
{
    default_sa();
    char *waiter = h_fmt("waiter-%s", kf_tag);
    struct h_proc *a, *b;
    h_query("CREATE TABLE applied_log (who text NOT NULL)");
    h_migration(
        1, "one",
        "CREATE TABLE one (id int);\n"
        "INSERT INTO applied_log VALUES (current_setting('application_name'));\n" LEADER_HANGS,
        NULL);
    leader_hangs_and_waiter_waits(&a, &b);

    int64_t killed = kf_mono_ms();
    cr_assert_eq(kill(h_proc_pid(a), SIGKILL), 0);
    h_wait(a);
    struct h_result rb = h_wait(b);
    int64_t took = kf_mono_ms() - killed;

    h_assert_exit(rb, 0);
    cr_assert(kf_led(&rb), "the waiter finished without leading\n%s", h_describe(&rb));
    h_assert_has(rb, rb.err, "took the lease over");
    cr_assert(took < 30 * 1000, "the waiter took %lld ms after the kill: it waited for expiry",
              (long long)took);
    cr_assert_eq(h_query_int("SELECT count(*) FROM public.rollgate_migrations"), 1);
    cr_assert_str_eq(h_query("SELECT applied_by FROM public.rollgate_migrations"), waiter);
    cr_assert_eq(h_query_int("SELECT count(*) FROM applied_log"), 1,
                 "the killed run's transaction was not rolled back");
}

/* A live leader whose session the database briefly does not show (here: terminated by an
 * operator) may be judged gone and its Lease taken: the transaction fence still keeps every
 * migration to one run. */
Test(lease, a_leader_judged_gone_wrongly_still_applies_nothing_twice)
{
    default_sa();
    char *leader = h_fmt("leader-%s", kf_tag);
    struct h_proc *a, *b;
    h_query("CREATE TABLE applied_log (version int NOT NULL)");
    h_migration(1, "one", "CREATE TABLE one (id int);\nINSERT INTO applied_log VALUES (1);\n",
                NULL);
    h_migration(2, "two",
                "CREATE TABLE two (id int);\nINSERT INTO applied_log VALUES (2);\n" LEADER_HANGS,
                NULL);
    h_migration(3, "three", "CREATE TABLE three (id int);\nINSERT INTO applied_log VALUES (3);\n",
                NULL);
    leader_hangs_and_waiter_waits(&a, &b);
    h_query(h_fmt("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE "
                  "application_name = 'rollgate/%s'",
                  leader));

    struct h_result ra = h_wait(a);
    struct h_result rb = h_wait(b);
    cr_assert(ra.exited && ra.code != 0, "the leader whose session was ended succeeded\n%s",
              h_describe(&ra));
    h_assert_exit(rb, 0);
    for (int v = 1; v <= 3; v++)
        cr_assert_eq(h_query_int(h_fmt("SELECT count(*) FROM applied_log WHERE version = %d", v)),
                     1, "version %d was applied %lld times", v,
                     h_query_int(h_fmt("SELECT count(*) FROM applied_log WHERE version = %d", v)));
    cr_assert_eq(h_query_int("SELECT count(*) FROM public.rollgate_migrations"), 3);
}

/* ---- 5. SIGTERM ---- */

Test(lease, sigterm_rolls_back_releases_the_lease_at_once_and_exits_143)
{
    default_sa();
    h_migration(1, "slow", "CREATE TABLE s (id int);\nSELECT pg_sleep(600);\n", NULL);
    struct h_proc *p =
        h_start(H_ARGS("migrate"), kf_env(kf_port, h_fmt("POD_NAME=term-%s", kf_tag), NULL));
    cr_assert(h_proc_wait_stderr(p, "leading", KF_LONG_MS), "the run never led");
    cr_assert(kf_wait_statement("pg_sleep(600)", p), "the migration never started");
    char *held = lease_json();
    cr_assert(held && !lease_released(held), "the Lease is not held while leading: %s",
              held ? held : "(none)");

    cr_assert_eq(kill(h_proc_pid(p), SIGTERM), 0);
    struct h_result r = h_wait(p);

    h_assert_exit(r, 143);
    /* The default duration is 15s: only a release empties the holder this soon. */
    char *lease = lease_json();
    cr_assert(lease_released(lease), "the Lease is still held after SIGTERM: %s", lease);
    cr_assert_not(h_table_exists("s"), "the interrupted migration was not rolled back");
    cr_assert_eq(kf_history_rows(), 0);
    cr_assert(h_wait_until("SELECT NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE datname = "
                           "current_database() AND pid <> pg_backend_pid() AND "
                           "position('pg_sleep(600)' in query) > 0 AND state = 'active')",
                           NULL, 60 * 1000),
              "the statement was not cancelled: it still runs after the process exited");
}

/* ---- 6. RBAC and bad tokens ---- */

static char *make_role(const char *lease_verbs)
{
    char *role = h_fmt("lt-role-%s", kf_tag);
    kf_admin("POST", "/apis/rbac.authorization.k8s.io/v1/namespaces/" KF_NS "/roles",
             h_fmt("{\"apiVersion\":\"rbac.authorization.k8s.io/v1\",\"kind\":\"Role\","
                   "\"metadata\":{\"name\":\"%s\"},\"rules\":["
                   "{\"apiGroups\":[\"coordination.k8s.io\"],\"resources\":[\"leases\"],"
                   "\"verbs\":[%s]},"
                   "{\"apiGroups\":[\"\",\"events.k8s.io\"],\"resources\":[\"events\"],"
                   "\"verbs\":[\"create\"]}]}",
                   role, lease_verbs),
             201);
    return role;
}

Test(lease, a_role_without_update_exits_10_with_the_status_message_and_applies_nothing)
{
    char *sa = make_sa(make_role("\"get\",\"create\""));
    cr_assert_not(kf_sa_allowed(sa, "update", "coordination.k8s.io", "leases"));
    kf_sa_dir = kf_make_sa_dir("sa", kf_token_for(sa, NULL));
    /* The Lease exists, released by an earlier run: taking it needs update. */
    kf_admin("POST", "/apis/coordination.k8s.io/v1/namespaces/" KF_NS "/leases",
             h_fmt("{\"apiVersion\":\"coordination.k8s.io/v1\",\"kind\":\"Lease\","
                   "\"metadata\":{\"name\":\"%s\"},\"spec\":{\"leaseDurationSeconds\":1,"
                   "\"leaseTransitions\":3}}",
                   kf_lease),
             201);
    h_migration(1, "a", "CREATE TABLE a (id int);\n", NULL);

    struct h_result r = h_run(H_ARGS("migrate"), kf_env(kf_port, "POD_NAME=rbac", NULL));

    h_assert_exit(r, 10);
    h_assert_has(r, r.err, "forbidden");
    cr_assert_not(h_table_exists("a"));
    cr_assert_eq(kf_history_rows(), 0);
}

Test(lease, a_role_without_create_exits_10_when_there_is_no_lease_yet)
{
    char *sa = make_sa(make_role("\"get\""));
    kf_sa_dir = kf_make_sa_dir("sa", kf_token_for(sa, NULL));
    h_migration(1, "a", "CREATE TABLE a (id int);\n", NULL);

    struct h_result r = h_run(H_ARGS("migrate"), kf_env(kf_port, "POD_NAME=rbac", NULL));

    h_assert_exit(r, 10);
    h_assert_has(r, r.err, "forbidden");
    cr_assert_not(h_table_exists("a"));
    cr_assert_eq(kf_history_rows(), 0);
}

Test(lease, a_garbage_token_exits_10_applies_nothing_and_is_never_logged)
{
    const char *garbage = "garbage-token-not-a-jwt-0123456789";
    kf_sa_dir = kf_make_sa_dir("sa", garbage);
    h_migration(1, "a", "CREATE TABLE a (id int);\n", NULL);

    struct h_result r = h_run(H_ARGS("migrate"), kf_env(kf_port, "POD_NAME=garbage", NULL));

    h_assert_exit(r, 10);
    h_assert_lacks(r, r.err, garbage);
    h_assert_lacks(r, r.termlog, garbage);
    cr_assert_not(h_table_exists("a"));
    cr_assert_eq(kf_history_rows(), 0);
}

/* ---- 7. token rotation ---- */

Test(lease, a_token_rotated_mid_run_is_read_again_and_the_run_succeeds)
{
    char *sa = make_sa("rollgate");
    char *secret = h_fmt("lt-bind-%s", kf_tag);
    kf_admin(
        "POST", "/api/v1/namespaces/" KF_NS "/secrets",
        h_fmt("{\"apiVersion\":\"v1\",\"kind\":\"Secret\",\"metadata\":{\"name\":\"%s\"}}", secret),
        201);
    char *old_token = kf_token_for(sa, secret);
    kf_sa_dir = kf_make_sa_dir("sa", old_token);
    /* The migration waits on a lock the test holds, so the run lasts as long as needed. */
    PGconn *gate = kf_hold_advisory_lock(7001);
    h_migration(1, "gated",
                "-- rollgate:lock-timeout=10m\nSELECT pg_advisory_xact_lock(7001);\n"
                "CREATE TABLE rotated (id int);\n",
                NULL);
    struct h_proc *p =
        h_start(H_ARGS("migrate"), kf_env(kf_port, h_fmt("POD_NAME=rotate-%s", kf_tag),
                                          SHORT_DURATION, SHORT_DEADLINE, SHORT_RETRY, NULL));
    cr_assert(h_proc_wait_stderr(p, "leading", KF_LONG_MS), "the run never led");
    cr_assert(kf_wait_statement("pg_advisory_xact_lock(7001)", p), "the migration never started");

    char *new_token = kf_token_for(sa, NULL);
    kf_write(h_fmt("%s/token", kf_sa_dir), new_token); /* as the kubelet rotates it */
    /* The old token stops working once the Secret it is bound to is gone (after the API
     * server's token cache lets go of it). */
    kf_admin("DELETE", h_fmt("/api/v1/namespaces/" KF_NS "/secrets/%s", secret), NULL, 200);
    int64_t deadline = kf_mono_ms() + KF_LONG_MS;
    while (token_authenticates(old_token)) {
        cr_assert(kf_mono_ms() < deadline, "the old token still works");
        cr_assert(h_proc_alive(p), "the run ended before the old token stopped working");
        kf_nap_ms(200);
    }
    audit_sync();
    long from = audit_size();
    /* Renewals that went through with only the new token valid. */
    deadline = kf_mono_ms() + KF_LONG_MS;
    while (audit_count(from, (struct audit_q){
                                 .sa = sa, .lease = kf_lease, .verb = "update", .code = 200}) < 3) {
        if (!h_proc_alive(p) || kf_mono_ms() > deadline)
            break;
        kf_nap_ms(200);
    }
    bool alive = h_proc_alive(p);
    PQfinish(gate);
    struct h_result r = h_wait(p);

    cr_assert(alive, "the run ended while the migration still waited\n%s", h_describe(&r));
    h_assert_exit(r, 0);
    cr_assert(h_table_exists("rotated"));
    audit_sync();
    long renewed = audit_count(
        from, (struct audit_q){.sa = sa, .lease = kf_lease, .verb = "update", .code = 200});
    long refused = audit_count(from, (struct audit_q){.lease = kf_lease, .code = 401});
    cr_assert(renewed >= 3, "only %ld successful updates after the rotation", renewed);
    cr_assert_eq(refused, 0, "%ld requests were refused (401) after the rotation", refused);
    h_assert_lacks(r, r.err, old_token);
    h_assert_lacks(r, r.err, new_token);
}

/* ---- 8. wait ---- */

Test(lease, wait_keeps_waiting_while_a_leader_holds_the_lease_and_only_reads_it)
{
    default_sa();
    char *waiter_sa = make_sa("rollgate");
    const char *waiter_dir = kf_make_sa_dir("sa-waiter", kf_token_for(waiter_sa, NULL));

    h_migration(1, "a", "CREATE TABLE a (id int);\n", NULL);
    struct h_result first = h_run(H_ARGS("migrate"), kf_env(kf_port, "POD_NAME=first", NULL));
    h_assert_exit(first, 0);

    /* The schema is current; a data script keeps the next run leading as long as the
     * test holds the lock it waits for. */
    cr_assert(mkdir(h_mig_path("data"), 0755) == 0);
    h_write_file(h_mig_path("data/0001_gate.sql"),
                 "-- rollgate:lock-timeout=10m\nSELECT pg_advisory_xact_lock(7002);\n");
    PGconn *gate = kf_hold_advisory_lock(7002);
    struct h_proc *l =
        h_start(H_ARGS("migrate"), kf_env(kf_port, h_fmt("POD_NAME=leader-%s", kf_tag), NULL));
    cr_assert(h_proc_wait_stderr(l, "leading", KF_LONG_MS), "the data run never led");
    cr_assert(kf_wait_statement("pg_advisory_xact_lock(7002)", l), "the data script never ran");

    kf_sa_dir = waiter_dir;
    struct h_proc *w = h_start(H_ARGS("wait"), kf_env(kf_port, h_fmt("POD_NAME=waiter-%s", kf_tag),
                                                      "POD_NAMESPACE=" KF_NS,
                                                      "ROLLGATE_LEASE_RETRY_PERIOD=200ms", NULL));
    /* Several reads of the Lease, and still waiting. */
    int64_t deadline = kf_mono_ms() + KF_LONG_MS;
    while (audit_count(0, (struct audit_q){.sa = waiter_sa, .lease = kf_lease}) < 3) {
        if (!h_proc_alive(w) || kf_mono_ms() > deadline)
            break;
        kf_nap_ms(100);
    }
    bool waiting = h_proc_alive(w);
    PQfinish(gate);
    struct h_result rl = h_wait(l);
    struct h_result rw = h_wait(w);

    cr_assert(waiting, "wait ended while the lease was held\n%s", h_describe(&rw));
    h_assert_exit(rl, 0);
    h_assert_exit(rw, 0);
    h_assert_has(rw, rw.termlog, "current");
    audit_sync();
    long all = audit_count(0, (struct audit_q){.sa = waiter_sa});
    long gets = audit_count(0, (struct audit_q){.sa = waiter_sa, .verb = "get"});
    cr_log_info("wait: %ld API requests, %ld of them get", all, gets);
    cr_assert(all >= 3);
    cr_assert_eq(all, gets, "wait made %ld requests other than get", all - gets);
}

/* ---- 9. no API server ---- */

Test(lease, an_unreachable_api_exits_9_with_work_pending_and_0_with_none)
{
    kf_sa_dir = kf_make_sa_dir("sa", "token-for-nobody-0123456789");
    const char *port = h_fmt("KUBERNETES_SERVICE_PORT=%d", h_free_port());
    h_migration(1, "a", "CREATE TABLE a (id int);\n", NULL);

    struct h_result r = h_run(H_ARGS("migrate"), kf_env(kf_port, port, "POD_NAME=nowhere",
                                                        SHORT_DEADLINE, SHORT_RETRY, NULL));
    h_assert_exit(r, 9);
    cr_assert_not(h_table_exists("a"));
    cr_assert_eq(kf_history_rows(), 0);

    struct h_result direct = h_run(H_ARGS("migrate"), H_ENV(h_env_url(), h_env_dir()));
    h_assert_exit(direct, 0);
    struct h_result fast = h_run(H_ARGS("migrate"), kf_env(kf_port, port, "POD_NAME=nowhere",
                                                           SHORT_DEADLINE, SHORT_RETRY, NULL));
    h_assert_exit(fast, 0);
}
