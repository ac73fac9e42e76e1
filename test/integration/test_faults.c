/* Faults between rollgate and the Kubernetes API (DESIGN.md "Leader lease", "Exit codes"):
 * latency, 429/503 with Retry-After, connection resets, stalled requests, answers lost after
 * the request took effect, and an API that stays down, before and while leading.
 *
 * Each test starts test/tools/faultproxy.py (a TLS-terminating proxy that injects a fault
 * plan and logs every request) in front of the real kube-apiserver that scripts/test.sh
 * starts (RG_TEST_KUBE_DIR, as for test_lease.c), and runs the binary as a pod whose
 * KUBERNETES_SERVICE_PORT is the proxy's. Whatever the fault, a run either completes (exit
 * 0, every migration applied exactly once) or exits 9 (API unavailable) or 8 (lease lost)
 * with nothing half done. The proxy's script is found through RG_TEST_ROOT (the repository),
 * else above the test binary. Nothing here depends on timing to pass: waits are bounded
 * generously, and the only time checked is a lower bound the client itself must keep. */
#include <criterion/criterion.h>
#include <criterion/logging.h>

#include <errno.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "kube_fixture.h"

#define PROXY_SCRIPT "test/tools/faultproxy.py"
/* Runs that must get through the faults: a retry budget (the renew deadline) with room for
 * the waits the faults cause; requests time out after 3s (half of it). */
#define OK_DURATION "ROLLGATE_LEASE_DURATION=8s"
#define OK_DEADLINE "ROLLGATE_LEASE_RENEW_DEADLINE=6s"
#define OK_RETRY "ROLLGATE_LEASE_RETRY_PERIOD=500ms"
/* Runs that must give up: short, so the tests are. */
#define FAIL_DURATION "ROLLGATE_LEASE_DURATION=4s"
#define FAIL_DEADLINE "ROLLGATE_LEASE_RENEW_DEADLINE=3s"
#define FAIL_RETRY "ROLLGATE_LEASE_RETRY_PERIOD=500ms"
#define FAIL_BUDGET_MS 3000

static pid_t proxy_pid; /* the running proxy, or 0 */
static int proxy_port;  /* its port */
static char *proxy_log; /* its request log */
static char *proxy_ctl; /* its control file */

/* ---- the API server, as the cluster's admin (directly, not through the proxy) ---- */

/* The holder of this test's Lease; NULL when there is no Lease, "" when it is released. */
static char *lease_holder(void)
{
    struct kf_api a = kf_admin(
        "GET", h_fmt("/apis/coordination.k8s.io/v1/namespaces/" KF_NS "/leases/%s", kf_lease), NULL,
        0);
    if (a.status == 404)
        return NULL;
    cr_assert_eq(a.status, 200, "GET Lease %s: %d: %s", kf_lease, a.status, a.body);
    char *holder = h_json(a.body, "{spec,holderIdentity}");
    return holder ? holder : "";
}

/* A ServiceAccount bound to the smoke test's Role (leases get/create/update), a token for
 * it, and a service-account directory as the kubelet projects one, which kf_env uses. */
static void make_sa_dir(void)
{
    char *sa = kf_make_sa(h_fmt("ft-%s", kf_tag), "rollgate", "update");
    kf_sa_dir = kf_make_sa_dir("sa", kf_token_for(sa, NULL));
}

/* ---- the proxy ---- */

/* Starts the proxy in front of the API server with a fault plan (NULL-terminated fault
 * specs, each given as --fault; match NULL: every request), and waits for its port. */
static void proxy_start(const char *match, ...)
{
    const char *argv[64];
    size_t n = 0;
    char *dir = h_tmp_path("proxy");
    cr_assert(mkdir(dir, 0755) == 0, "mkdir %s: %s", dir, strerror(errno));
    char *port_file = h_fmt("%s/port", dir), *out = h_fmt("%s/out.log", dir);
    proxy_log = h_fmt("%s/requests.log", dir);
    proxy_ctl = h_fmt("%s/control", dir);
    argv[n++] = "python3";
    argv[n++] = h_fmt("%s/" PROXY_SCRIPT, h_repo_root(PROXY_SCRIPT));
    argv[n++] = "--upstream";
    argv[n++] = h_fmt("127.0.0.1:%s", kf_port);
    argv[n++] = "--ca-dir";
    argv[n++] = kf_cluster_dir();
    argv[n++] = "--work";
    argv[n++] = dir;
    argv[n++] = "--log";
    argv[n++] = proxy_log;
    argv[n++] = "--port-file";
    argv[n++] = port_file;
    argv[n++] = "--control";
    argv[n++] = proxy_ctl;
    if (match) {
        argv[n++] = "--match";
        argv[n++] = match;
    }
    va_list ap;
    va_start(ap, match);
    for (const char *f = va_arg(ap, const char *); f; f = va_arg(ap, const char *)) {
        cr_assert(n + 3 < sizeof argv / sizeof *argv);
        argv[n++] = "--fault";
        argv[n++] = f;
    }
    va_end(ap);
    argv[n] = NULL;
    proxy_pid = h_tool_start(argv, out, port_file, &proxy_port);
}

static void proxy_stop(void)
{
    h_tool_stop(proxy_pid);
    proxy_pid = 0;
}

/* Replaces the proxy's plan from its next request on: lines of fault specs and "match S". */
static void proxy_plan(const char *plan)
{
    char *tmp = h_fmt("%s.tmp", proxy_ctl);
    h_write_file(tmp, plan);
    cr_assert(rename(tmp, proxy_ctl) == 0, "rename %s: %s", tmp, strerror(errno));
}

/* One line of the proxy's log. */
struct preq {
    long seq, t_in, t_out;
    char method[16];
    char path[512];
    char fault[32];
    int status; /* -1: none sent */
};

static int by_seq(const void *a, const void *b)
{
    const struct preq *x = a, *y = b;
    return (x->seq > y->seq) - (x->seq < y->seq);
}

/* The requests the proxy has logged, in arrival order. */
static size_t proxy_requests(struct preq **out)
{
    char *text = h_read_file(proxy_log);
    size_t cap = 16, n = 0;
    for (const char *c = text; *c; c++)
        cap += *c == '\n';
    struct preq *r = calloc(cap, sizeof *r);
    cr_assert_not_null(r);
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        char status[16];
        cr_assert(sscanf(line,
                         "seq=%ld t_in=%ld t_out=%ld conn=%*d method=%15s path=%511s fault=%31s "
                         "status=%15s",
                         &r[n].seq, &r[n].t_in, &r[n].t_out, r[n].method, r[n].path, r[n].fault,
                         status) == 7,
                  "bad proxy log line: %s", line);
        r[n].status = strcmp(status, "-") == 0 ? -1 : atoi(status);
        n++;
    }
    qsort(r, n, sizeof *r, by_seq);
    *out = r;
    return n;
}

static size_t count_fault(const struct preq *r, size_t n, const char *fault)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        k += strcmp(r[i].fault, fault) == 0;
    return k;
}

/* A request the API server answered as the client wants (not an error to retry). */
static bool went_through(const struct preq *r)
{
    return r->status >= 200 && r->status < 500 && r->status != 429 && r->status != 401 &&
           r->status != 403;
}

/* ---- runs ---- */

/* The port of the proxy, for kf_env: pods here talk to the API through it. */
static const char *proxy(void)
{
    cr_assert(proxy_port > 0, "kf_env before proxy_start");
    return h_fmt("%d", proxy_port);
}

/* Migrations 1..n, each creating table mN and logging its version in applied_log; the last
 * sleeps sleep_s seconds (so renewals happen while it runs) unless that is 0. */
static void migrations(int n, int sleep_s)
{
    h_query("CREATE TABLE applied_log (version int NOT NULL)");
    for (int v = 1; v <= n; v++)
        h_migration(v, "m",
                    h_fmt("CREATE TABLE m%d (id int);\nINSERT INTO applied_log VALUES (%d);\n%s", v,
                          v, v == n && sleep_s ? h_fmt("SELECT pg_sleep(%d);\n", sleep_s) : ""),
                    NULL);
}

/* Every one of migrations 1..n applied exactly once, and recorded. */
static void assert_each_once(int n, const struct h_result *r)
{
    for (int v = 1; v <= n; v++) {
        long long k = h_query_int(h_fmt("SELECT count(*) FROM applied_log WHERE version = %d", v));
        cr_assert_eq(k, 1, "migration %d ran %lld times\n%s", v, k, h_describe(r));
        cr_assert(h_table_exists(h_fmt("m%d", v)), "table m%d is missing", v);
    }
    cr_assert_eq(kf_history_rows(), n, "%lld history rows, want %d", kf_history_rows(), n);
}

/* Nothing of migrations 1..n applied or half applied. */
static void assert_nothing_applied(int n, const struct h_result *r)
{
    cr_assert_eq(h_count_rows("applied_log"), 0, "%lld migrations ran\n%s",
                 h_count_rows("applied_log"), h_describe(r));
    for (int v = 1; v <= n; v++)
        cr_assert_not(h_table_exists(h_fmt("m%d", v)), "table m%d exists\n%s", v, h_describe(r));
    cr_assert_eq(kf_history_rows(), 0, "%lld history rows\n%s", kf_history_rows(), h_describe(r));
}

static void assert_released(void)
{
    char *holder = lease_holder();
    cr_assert(holder && !*holder, "the Lease is %s after the run",
              holder ? h_fmt("held by %s", holder) : "missing");
}

/* ---- fixture ---- */

static void faults_setup(void)
{
    kf_setup("ft", "ca.key",
             " (the proxy signs its certificate with the cluster's CA): run "
             "scripts/kube-test-cluster.sh start on it");
    proxy_pid = 0;
    proxy_port = 0;
    make_sa_dir();
}

static void faults_teardown(void)
{
    proxy_stop();
    kf_teardown();
}

TestSuite(faults, .init = faults_setup, .fini = faults_teardown, .timeout = 900);

/* ---- 1-5. transient faults: the run gets through ---- */

static struct h_result run_ok(const char *who)
{
    struct h_result r =
        h_run(H_ARGS("migrate"), kf_env(proxy(), h_fmt("POD_NAME=%s-%s", who, kf_tag), OK_DURATION,
                                        OK_DEADLINE, OK_RETRY, NULL));
    h_assert_exit(r, 0);
    cr_assert(kf_led(&r), "the run did not lead\n%s", h_describe(&r));
    return r;
}

Test(faults, latency_on_every_request_still_applies_each_migration_once)
{
    migrations(2, 2);
    proxy_start(NULL, "latency:300ms", NULL);

    struct h_result r = run_ok("slow");

    assert_each_once(2, &r);
    assert_released();
    struct preq *q;
    size_t n = proxy_requests(&q);
    /* A read and a create at least, renewals while version 2 sleeps, the release. */
    cr_assert(n >= 4, "only %zu requests went through the proxy", n);
    cr_assert_eq(count_fault(q, n, "latency"), n, "a request went by without the latency");
    for (size_t i = 0; i < n; i++)
        cr_assert(went_through(&q[i]), "request %ld: %s %s: %d", q[i].seq, q[i].method, q[i].path,
                  q[i].status);
    free(q);
}

/* The first two Lease requests answered with code and "Retry-After: 1": the call is retried
 * (the same request again), not before the second is up, and the run gets through. */
static void retried_after(const char *code)
{
    migrations(2, 0);
    proxy_start("leases", h_fmt("%s:retry-after=1:count=2", code), NULL);

    struct h_result r = run_ok(h_fmt("retry-%s", code));

    assert_each_once(2, &r);
    assert_released();
    struct preq *q;
    size_t n = proxy_requests(&q);
    cr_assert(n >= 3, "%zu requests", n);
    cr_assert_eq(count_fault(q, n, code), 2);
    for (size_t i = 0; i < 2; i++) {
        cr_assert_str_eq(q[i].fault, code, "request %zu was not the injected %s", i + 1, code);
        /* The same request again, and only once its Retry-After (1s from when the proxy sent
         * the answer, which the client can only have read later) was up. A lower bound: a
         * slow machine only makes the gap longer. 1ms for the log's truncation to ms. */
        cr_assert_str_eq(q[i + 1].method, q[0].method);
        cr_assert_str_eq(q[i + 1].path, q[0].path);
        cr_assert(q[i + 1].t_in - q[i].t_out >= 1000 - 1,
                  "retry %zu came %ldms after the %s with Retry-After: 1", i + 1,
                  q[i + 1].t_in - q[i].t_out, code);
    }
    cr_assert(went_through(&q[2]), "the third request: %d", q[2].status);
    free(q);
}

Test(faults, a_503_with_retry_after_twice_is_retried_after_the_wait_and_the_run_completes)
{
    retried_after("503");
}

Test(faults, a_429_with_retry_after_twice_is_retried_after_the_wait_and_the_run_completes)
{
    retried_after("429");
}

/* The first count Lease requests meet fault; each is retried as the same request. */
static void retried(const char *fault, size_t count)
{
    migrations(2, 0);
    proxy_start("leases", h_fmt("%s:count=%zu", fault, count), NULL);

    struct h_result r = run_ok(fault);

    assert_each_once(2, &r);
    assert_released();
    struct preq *q;
    size_t n = proxy_requests(&q);
    cr_assert(n > count, "%zu requests", n);
    cr_assert_eq(count_fault(q, n, fault), count);
    for (size_t i = 0; i < count; i++) {
        cr_assert_str_eq(q[i].fault, fault);
        cr_assert_str_eq(q[i + 1].method, q[0].method, "request %zu was not a retry", i + 2);
        cr_assert_str_eq(q[i + 1].path, q[0].path, "request %zu was not a retry", i + 2);
    }
    cr_assert(went_through(&q[count]), "the retry: %d", q[count].status);
    free(q);
}

Test(faults, connections_reset_twice_are_retried_and_the_run_completes)
{
    retried("reset", 2);
}

Test(faults, a_request_stalled_past_its_timeout_is_retried_and_the_run_completes)
{
    retried("stall", 1);
}

/* A create that took effect but whose answer was lost: the retry meets 409 (the Lease
 * exists: ours), and the run must still lead, not wait for itself. */
Test(faults, a_lost_answer_to_the_create_still_leads_and_completes)
{
    migrations(2, 0);
    proxy_start("leases", "drop:method=POST:count=1", NULL);

    struct h_result r = run_ok("drop-create");

    assert_each_once(2, &r);
    assert_released();
    struct preq *q;
    size_t n = proxy_requests(&q);
    cr_assert_eq(count_fault(q, n, "drop"), 1);
    free(q);
    /* It knows its own write when it sees it: no wait of a lease duration for itself. */
    h_assert_lacks(r, r.err, "another run holds the lease");
}

/* A renewal that took effect but whose answer was lost: the retry carries the old
 * resourceVersion (409); the next renewal must read again and go on holding. */
Test(faults, a_lost_answer_to_a_renewal_keeps_the_lease_and_completes)
{
    migrations(2, 3);
    proxy_start("leases", "drop:method=PUT:count=1", NULL);

    struct h_result r = run_ok("drop-renew");

    assert_each_once(2, &r);
    assert_released();
    struct preq *q;
    size_t n = proxy_requests(&q);
    cr_assert_eq(count_fault(q, n, "drop"), 1, "no renewal was dropped");
    free(q);
}

/* ---- 6. the API stays down: exit 9, nothing applied ---- */

static void stays_down(const char *fault)
{
    migrations(2, 0);
    proxy_start(NULL, fault, NULL);
    char *who = h_fmt("down-%s-%s", fault, kf_tag);

    int64_t t0 = kf_mono_ms();
    struct h_result r =
        h_run(H_ARGS("migrate"), kf_env(proxy(), h_fmt("POD_NAME=%s", who), FAIL_DURATION,
                                        FAIL_DEADLINE, FAIL_RETRY, NULL));
    int64_t took = kf_mono_ms() - t0;

    h_assert_exit(r, 9);
    h_assert_has(r, r.err, "Kubernetes API unavailable");
    /* The API's Status message is carried into the error. */
    if (strcmp(fault, "503") == 0)
        h_assert_has(r, r.err, "faultproxy: injected 503");
    assert_nothing_applied(2, &r);
    char *holder = lease_holder();
    cr_assert(!holder || strcmp(holder, who) != 0, "the Lease is held by the failed run");
    struct preq *q;
    size_t n = proxy_requests(&q);
    cr_log_info("%s forever: exit 9 after %lldms and %zu requests (retry budget %dms)", fault,
                (long long)took, n, FAIL_BUDGET_MS);
    /* Retried, within the budget: backoff from 200ms doubling, or 1.5s request timeouts,
     * fit only a few attempts in 3s; a bound on the count, and a generous one on time. */
    cr_assert(n >= 2, "the call was not retried (%zu request)", n);
    cr_assert(n <= 12, "%zu requests in a %dms budget", n, FAIL_BUDGET_MS);
    cr_assert_eq(count_fault(q, n, fault), n, "a request went by without the fault");
    cr_assert(took < FAIL_BUDGET_MS + 60 * 1000, "the run took %lldms", (long long)took);
    free(q);

    /* The API back: the next run does all of it. */
    proxy_plan("pass\n");
    struct h_result again = run_ok("back");
    assert_each_once(2, &again);
    assert_released();
}

Test(faults, an_api_answering_503_forever_exits_9_and_applies_nothing)
{
    stays_down("503");
}

Test(faults, an_api_stalling_forever_exits_9_and_applies_nothing)
{
    stays_down("stall");
}

Test(faults, an_api_resetting_forever_exits_9_and_applies_nothing)
{
    stays_down("reset");
}

/* ---- 7. faults while leading ---- */

/* A migration that creates m1, logs itself, then waits for the test's advisory lock: it
 * runs for as long as the test needs, with no sleep to outlast. */
static PGconn *gated_migration(long long key)
{
    h_query("CREATE TABLE applied_log (version int NOT NULL)");
    h_migration(1, "gated",
                h_fmt("-- rollgate:lock-timeout=10m\nCREATE TABLE m1 (id int);\n"
                      "INSERT INTO applied_log VALUES (1);\nSELECT pg_advisory_xact_lock(%lld);\n",
                      key),
                NULL);
    return kf_hold_advisory_lock(key);
}

Test(faults, renewals_failing_past_the_deadline_cancel_the_migration_and_exit_8)
{
    PGconn *gate = gated_migration(7101);
    proxy_start(NULL, NULL);
    struct h_proc *p =
        h_start(H_ARGS("migrate"), kf_env(proxy(), h_fmt("POD_NAME=lost-%s", kf_tag), FAIL_DURATION,
                                          FAIL_DEADLINE, FAIL_RETRY, NULL));
    cr_assert(h_proc_wait_stderr(p, "leading", KF_LONG_MS), "the run never led");
    cr_assert(kf_wait_statement("pg_advisory_xact_lock(7101)", p), "the migration never started");
    struct preq *q;
    size_t before = proxy_requests(&q);
    free(q);

    proxy_plan("match leases\n503\n");
    int64_t deadline = kf_mono_ms() + KF_LONG_MS;
    while (h_proc_alive(p) && kf_mono_ms() < deadline)
        kf_nap_ms(100);
    bool ended = !h_proc_alive(p);
    /* Still holding the gate: a statement that was not cancelled still waits on it. */
    bool cancelled = h_wait_until(
        "SELECT NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE datname = current_database() "
        "AND pid <> pg_backend_pid() AND position('pg_advisory_xact_lock(7101)' in query) > 0 "
        "AND state = 'active')",
        NULL, KF_LONG_MS);
    PQfinish(gate);
    struct h_result r = h_wait(p);

    cr_assert(ended, "the run went on leading with every renewal failing\n%s", h_describe(&r));
    h_assert_exit(r, 8);
    h_assert_has(r, r.err, "lost the lease");
    cr_assert(cancelled, "the migration's statement was not cancelled");
    assert_nothing_applied(1, &r);
    /* From the first 503 on, every request met one: none renewed the lease. */
    size_t n = proxy_requests(&q), first = before;
    while (first < n && strcmp(q[first].fault, "503") != 0)
        first++;
    cr_assert(n - first >= 2, "the renewal was not retried (%zu 503s)", n - first);
    for (size_t i = first; i < n; i++)
        cr_assert_str_eq(q[i].fault, "503", "request %ld after the first 503: %s %s: %s", q[i].seq,
                         q[i].method, q[i].path, q[i].fault);
    free(q);

    /* The API back: another pod takes over once the lease expires, and does all of it. */
    proxy_plan("pass\n");
    struct h_result again = run_ok("after-lost");
    assert_each_once(1, &again);
    assert_released();
}

Test(faults, renewals_failing_briefly_while_leading_keep_the_lease_and_complete)
{
    PGconn *gate = gated_migration(7102);
    proxy_start(NULL, NULL);
    struct h_proc *p = h_start(H_ARGS("migrate"), kf_env(proxy(), h_fmt("POD_NAME=blip-%s", kf_tag),
                                                         OK_DURATION, OK_DEADLINE, OK_RETRY, NULL));
    cr_assert(h_proc_wait_stderr(p, "leading", KF_LONG_MS), "the run never led");
    cr_assert(kf_wait_statement("pg_advisory_xact_lock(7102)", p), "the migration never started");

    proxy_plan("match leases\n503:retry-after=1:count=2\n");
    /* Until a renewal went through after both 503s. */
    bool renewed = false;
    int64_t deadline = kf_mono_ms() + KF_LONG_MS;
    while (!renewed && h_proc_alive(p) && kf_mono_ms() < deadline) {
        struct preq *q;
        size_t n = proxy_requests(&q);
        size_t failed = 0;
        for (size_t i = 0; i < n; i++) {
            failed += strcmp(q[i].fault, "503") == 0;
            renewed |= failed == 2 && strcmp(q[i].method, "PUT") == 0 && q[i].status == 200;
        }
        free(q);
        kf_nap_ms(100);
    }
    bool alive = h_proc_alive(p);
    PQfinish(gate);
    struct h_result r = h_wait(p);

    cr_assert(renewed && alive, "no renewal after the 503s while the run went on\n%s",
              h_describe(&r));
    h_assert_exit(r, 0);
    h_assert_lacks(r, r.err, "lost the lease");
    assert_each_once(1, &r);
    assert_released();
}

/* Renewals that start failing while the last migration is about to commit: the run either
 * completes (the work committed: exit 0, whatever became of the lease afterwards) or exits 8
 * with nothing applied; never exit 8 with the work done. The gate opens while a renewal is
 * stalled, so the migration commits well before that renewal fails past the deadline. */
Test(faults, renewals_failing_after_the_work_committed_do_not_fail_the_run)
{
    PGconn *gate = gated_migration(7103);
    proxy_start(NULL, NULL);
    struct h_proc *p =
        h_start(H_ARGS("migrate"), kf_env(proxy(), h_fmt("POD_NAME=late-%s", kf_tag), FAIL_DURATION,
                                          FAIL_DEADLINE, FAIL_RETRY, NULL));
    cr_assert(h_proc_wait_stderr(p, "leading", KF_LONG_MS), "the run never led");
    cr_assert(kf_wait_statement("pg_advisory_xact_lock(7103)", p), "the migration never started");

    proxy_plan("match leases\nstall\n");
    bool stalled = false;
    int64_t deadline = kf_mono_ms() + KF_LONG_MS;
    while (!stalled && h_proc_alive(p) && kf_mono_ms() < deadline) {
        struct preq *q;
        size_t n = proxy_requests(&q);
        stalled = count_fault(q, n, "stall") > 0;
        free(q);
        if (!stalled)
            kf_nap_ms(50);
    }
    PQfinish(gate);
    struct h_result r = h_wait(p);

    cr_assert(stalled, "no renewal met the stall\n%s", h_describe(&r));
    if (kf_history_rows() == 1) {
        assert_each_once(1, &r);
        cr_assert(r.exited && r.code == 0,
                  "the migration committed, yet the run exited %d: the lease was lost only "
                  "after the work was done (the message's \"cancelled and rolled back\" is "
                  "untrue)\n%s",
                  r.code, h_describe(&r));
    } else {
        h_assert_exit(r, 8);
        assert_nothing_applied(1, &r);
    }
}

/* The release meets 503s until the budget runs out: the work is done, so the run exits 0
 * with a warning, and the Lease runs out on its own. */
Test(faults, a_release_the_api_refuses_warns_and_exits_0)
{
    migrations(2, 0);
    /* A fresh Lease is taken by a create; with two quick migrations no renewal is due, so
     * the only update is the release. */
    proxy_start("leases", "503:method=PUT", NULL);
    char *who = h_fmt("norelease-%s", kf_tag);

    struct h_result r = h_run(H_ARGS("migrate"), kf_env(proxy(), h_fmt("POD_NAME=%s", who),
                                                        OK_DURATION, OK_DEADLINE, OK_RETRY, NULL));

    h_assert_exit(r, 0);
    assert_each_once(2, &r);
    h_assert_has(r, r.err, "could not release the lease");
    char *holder = lease_holder();
    cr_assert(holder && strcmp(holder, who) == 0, "the Lease is %s",
              holder ? h_fmt("held by \"%s\"", holder) : "missing");
    struct preq *q;
    size_t n = proxy_requests(&q);
    cr_assert(count_fault(q, n, "503") >= 2, "the release was not retried");
    free(q);
}
