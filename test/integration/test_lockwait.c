/* Lock waits that name the blocker, escalating lock retries, and progress reports
 * (DESIGN.md "Database": lock waits, progress; exit code 12), on the real PostgreSQL; the
 * LockWait Event on the real kube-apiserver (suite lockwait_kube, RG_TEST_KUBE_DIR). */
#include <criterion/criterion.h>

#include <libpq-fe.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "harness.h"
#include "kube_fixture.h"

TestSuite(lockwait, .init = h_setup, .fini = h_teardown);

#define MIGRATE_ENV_WITH(...) H_ENV(h_env_url(), h_env_dir(), __VA_ARGS__)
#define BLOCKER_APP "lockwait-blocker"

/* Another application's session, recognisable by its application_name, whose open
 * transaction has read table: DDL on the table must wait until it ends. query is what it
 * ran last, which pg_stat_activity shows. *pid: its backend. */
static PGconn *open_blocker(const char *table, const char *query, char **pid)
{
    PGconn *c = PQconnectdb(h_db_url());
    PGresult *r;

    cr_assert_eq(PQstatus(c), CONNECTION_OK, "%s", PQerrorMessage(c));
    r = PQexec(c, "SET application_name = '" BLOCKER_APP "'");
    cr_assert_eq(PQresultStatus(r), PGRES_COMMAND_OK, "%s", PQerrorMessage(c));
    PQclear(r);
    *pid = h_fmt("%d", PQbackendPID(c));
    r = PQexec(c, h_fmt("BEGIN; SELECT count(*) FROM %s", table));
    cr_assert_eq(PQresultStatus(r), PGRES_TUPLES_OK, "%s", PQerrorMessage(c));
    PQclear(r);
    if (query) {
        r = PQexec(c, query);
        cr_assert_eq(PQresultStatus(r), PGRES_TUPLES_OK, "%s", PQerrorMessage(c));
        PQclear(r);
    }
    return c;
}

static void close_blocker(PGconn *c)
{
    PQclear(PQexec(c, "COMMIT"));
    PQfinish(c);
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

Test(lockwait, retries_running_out_exit_12_naming_the_blocker_in_log_and_termination_log)
{
    char *pid;
    h_query("CREATE TABLE busy (id int)");
    h_migration(1, "add_column", "ALTER TABLE busy ADD COLUMN x int;\n", NULL);
    /* The blocker's last query holds a password-like literal: the monitor reads only the
     * start of the query, and what it reads is redacted anyway. */
    PGconn *blocker =
        open_blocker("busy", "SELECT 'password=hunter2sekrit' AS note FROM busy", &pid);

    /* Attempts of 100ms, 200ms, then the whole 1500ms: the last waits over a second, so the
     * monitor looks the blocker up. */
    struct h_result r =
        h_run(H_ARGS("migrate"),
              MIGRATE_ENV_WITH("ROLLGATE_DATABASE_LOCK_TIMEOUT=1500ms",
                               "ROLLGATE_DATABASE_LOCK_RETRIES=2", "ROLLGATE_LEASE_MODE=none"));
    close_blocker(blocker);

    h_assert_exit(r, 12);
    /* The log: each wait names the blocker, field by field. */
    h_assert_has(r, r.err, "waits on a lock held by another session");
    h_assert_has(r, r.err, h_fmt("\"blocker_pid\":%s", pid));
    h_assert_has(r, r.err, "\"blocker_application\":\"" BLOCKER_APP "\"");
    h_assert_has(r, r.err, "\"blocker_state\":\"idle in transaction\"");
    h_assert_has(r, r.err, "\"blocker_query\":\"SELECT '");
    h_assert_has(r, r.err, "0001_add_column.up.sql");
    /* Once per wait, not at each look: only the last attempt waits over a second. */
    cr_assert_str_eq(h_query1("SELECT count(*) FROM regexp_matches($1, 'waits on a lock held by "
                              "another session', 'g')",
                              r.err),
                     "1", "%s", h_describe(&r));
    /* The final error and the termination log. */
    h_assert_has(r, r.termlog, "lock not acquired after 3 tries");
    h_assert_has(r, r.termlog, h_fmt("blocked by pid %s", pid));
    h_assert_has(r, r.termlog, "application_name \"" BLOCKER_APP "\"");
    h_assert_has(r, r.termlog, "0001_add_column.up.sql");
    h_assert_has(r, r.err, "\"retryable\":\"true\"");
    h_assert_lacks(r, r.err, "hunter2sekrit");
    h_assert_lacks(r, r.termlog, "hunter2sekrit");
    /* Nothing applied. */
    cr_assert_eq(h_query_int("SELECT count(*) FROM information_schema.columns "
                             "WHERE table_name = 'busy' AND column_name = 'x'"),
                 0);
    cr_assert_eq(h_query_int("SELECT count(*) FROM public.rollgate_migrations"), 0);
}

Test(lockwait, lock_timeout_escalates_per_attempt_up_to_the_files_cap)
{
    char *pid;
    h_query("CREATE TABLE busy (id int)");
    /* The file's directive caps the escalation below database.lockTimeout. */
    h_migration(1, "add_column",
                "-- rollgate:lock-timeout=700ms\nALTER TABLE busy ADD COLUMN x int;\n", NULL);
    PGconn *blocker = open_blocker("busy", NULL, &pid);

    struct h_result r =
        h_run(H_ARGS("migrate"),
              MIGRATE_ENV_WITH("ROLLGATE_DATABASE_LOCK_TIMEOUT=1h",
                               "ROLLGATE_DATABASE_LOCK_RETRIES=5", "ROLLGATE_LEASE_MODE=none"));
    close_blocker(blocker);

    h_assert_exit(r, 12);
    /* 100, 200, 400, then the cap 700 for the last three. */
    h_assert_has(r, r.err, "\"attempt\":1,\"lock_timeout_ms\":100,");
    h_assert_has(r, r.err, "\"attempt\":2,\"lock_timeout_ms\":200,");
    h_assert_has(r, r.err, "\"attempt\":3,\"lock_timeout_ms\":400,");
    h_assert_has(r, r.err, "\"attempt\":4,\"lock_timeout_ms\":700,");
    h_assert_has(r, r.err, "\"attempt\":5,\"lock_timeout_ms\":700,");
    h_assert_has(r, r.termlog, "lock not acquired after 6 tries (lock_timeout 700ms at the last)");
    /* No wait lasts a second, but those at the cap, which end the run, are looked at
     * halfway through: the blocker is named. */
    h_assert_has(r, r.termlog, h_fmt("blocked by pid %s", pid));
    h_assert_has(r, r.err, "\"attempt\":4,\"lock_timeout_ms\":700,\"elapsed_ms\"");
    h_assert_lacks(r, r.err, "\"attempt\":3,\"lock_timeout_ms\":400,\"elapsed_ms\"");
    h_assert_lacks(r, r.err, "1h");
}

/* A live reader of the table, issuing short SELECTs from its own connection while the
 * migration retries behind the blocker: each SELECT that arrives while the ALTER waits
 * queues behind it, for at most that attempt's lock_timeout. Reading stops once the log
 * announces the 800ms attempt, so no read can meet a longer one. With a fixed lock_timeout
 * (database.lockTimeout, 20s here) the first reads would wait up to 20s. */
Test(lockwait, a_concurrent_readers_worst_wait_stays_within_the_short_early_lock_timeouts)
{
    char *pid;
    h_query("CREATE TABLE busy (id int)");
    h_query("INSERT INTO busy VALUES (1)");
    h_migration(1, "add_column", "ALTER TABLE busy ADD COLUMN x int;\n", NULL);
    PGconn *blocker = open_blocker("busy", NULL, &pid);
    struct h_proc *p =
        h_start(H_ARGS("migrate"),
                MIGRATE_ENV_WITH("ROLLGATE_DATABASE_LOCK_TIMEOUT=20s",
                                 "ROLLGATE_DATABASE_LOCK_RETRIES=20", "ROLLGATE_LEASE_MODE=none"));
    PGconn *live = PQconnectdb(h_db_url());
    int64_t worst = 0, start = now_ms();
    int reads = 0;

    cr_assert_eq(PQstatus(live), CONNECTION_OK, "%s", PQerrorMessage(live));
    /* The migration is under way: its ALTER has queued at least once. */
    cr_assert(h_wait_until("SELECT count(*) > 0 FROM pg_locks WHERE NOT granted AND relation = "
                           "'busy'::regclass",
                           p, 120 * 1000),
              "the migration never waited for the table");
    while (!h_proc_wait_stderr(p, "\"next_lock_timeout_ms\":800,", 0) && now_ms() - start < 30000) {
        int64_t t = now_ms();
        PGresult *q = PQexec(live, "SELECT count(*) FROM busy");
        cr_assert_eq(PQresultStatus(q), PGRES_TUPLES_OK, "%s", PQerrorMessage(live));
        PQclear(q);
        if (now_ms() - t > worst)
            worst = now_ms() - t;
        reads++;
    }
    PQfinish(live);
    close_blocker(blocker);
    struct h_result r = h_wait(p);

    /* The longest lock_timeout a read could meet is 400ms; 5s leaves room for any load,
     * and is a quarter of the 20s a fixed lock_timeout would make it wait. */
    cr_assert_lt(worst, 5000, "a live read waited %lldms behind the migration (%d reads)\n%s",
                 (long long)worst, reads, h_describe(&r));
    cr_assert(reads > 0);
    h_assert_exit(r, 0);
    h_assert_has(r, r.err, "\"next_lock_timeout_ms\":800,");
}

/* An index build over enough rows to outlast several progress intervals: each expression
 * value takes a millisecond to compute, so the build takes seconds whatever the machine. */
static void slow_index_table(void)
{
    h_query("CREATE FUNCTION slow_id(i int) RETURNS int IMMUTABLE LANGUAGE plpgsql AS "
            "$$BEGIN PERFORM pg_sleep(0.001); RETURN i; END$$");
    h_query("CREATE TABLE big AS SELECT g AS id FROM generate_series(1, 3000) g");
}

Test(lockwait, index_builds_and_a_data_script_report_progress_with_the_phase)
{
    slow_index_table();
    h_migration(1, "index_big", "CREATE INDEX big_slow ON big (slow_id(id));\n", NULL);
    h_migration(2, "index_big_concurrently",
                "-- rollgate:no-transaction\nCREATE INDEX CONCURRENTLY big_slow2 ON big "
                "(slow_id(id));\n",
                NULL);
    cr_assert_eq(mkdir(h_fmt("%s/data", h_mig_dir()), 0755), 0);
    h_write_file(h_fmt("%s/data/slow.sql", h_mig_dir()), "SELECT pg_sleep(2);\n");

    struct h_result r =
        h_run(H_ARGS("migrate"),
              MIGRATE_ENV_WITH("ROLLGATE_LOG_PROGRESS_INTERVAL=300ms", "ROLLGATE_LEASE_MODE=none"));

    h_assert_exit(r, 0);
    /* One JSON event per report: no carriage returns off a terminal. */
    cr_assert(h_log_lines_are_json(r.err), "%s", h_describe(&r));
    h_assert_lacks(r, r.err, "\r");
    h_assert_has(r, r.err, "\"msg\":\"statement running\",\"file\":\"");
    h_assert_has(r, r.err, "0001_index_big.up.sql\",\"version\":1,\"elapsed_ms\":");
    h_assert_has(r, r.err, "0002_index_big_concurrently.up.sql\",\"version\":2,\"elapsed_ms\":");
    h_assert_has(r, r.err, "\"phase\":\"building index");
    h_assert_has(r, r.err, "\"tuples_total\":");
    h_assert_has(r, r.err, "\"blocks_total\":");
    h_assert_has(r, r.err, "data/slow.sql\",\"version\":0,\"elapsed_ms\":");
    cr_assert_eq(h_query_int("SELECT count(*) FROM pg_index WHERE indisvalid AND indexrelid IN "
                             "('big_slow'::regclass, 'big_slow2'::regclass)"),
                 2);
}

Test(lockwait, progress_interval_zero_reports_nothing)
{
    h_migration(1, "sleepy", "SELECT pg_sleep(1.5);\n", NULL);

    struct h_result r =
        h_run(H_ARGS("migrate"),
              MIGRATE_ENV_WITH("ROLLGATE_LOG_PROGRESS_INTERVAL=0", "ROLLGATE_LEASE_MODE=none"));

    h_assert_exit(r, 0);
    h_assert_lacks(r, r.err, "statement running");
}

/* ---- the LockWait Event, on the real kube-apiserver ---- */

static void kube_setup(void)
{
    kf_setup("lw", "rollgate.token", ": run scripts/kube-test-cluster.sh start and smoke on it");
}

TestSuite(lockwait_kube, .init = kube_setup, .fini = kf_teardown, .timeout = 300);

Test(lockwait_kube, a_lock_wait_is_a_lockwait_event_on_the_pod_naming_the_blocker)
{
    char *pid, *pod = h_fmt("pod-%s", kf_tag);
    /* The smoke test's ServiceAccount: its Role may create events. */
    kf_sa_dir = kf_make_sa_dir("sa", kf_read(kf_file("rollgate.token")));
    h_query("CREATE TABLE busy (id int)");
    h_migration(1, "add_column", "ALTER TABLE busy ADD COLUMN x int;\n", NULL);
    PGconn *blocker = open_blocker("busy", NULL, &pid);

    struct h_result r =
        h_run(H_ARGS("migrate"), kf_env(kf_port, h_fmt("POD_NAME=%s", pod), "POD_NAMESPACE=" KF_NS,
                                        "ROLLGATE_DATABASE_LOCK_TIMEOUT=1500ms",
                                        "ROLLGATE_DATABASE_LOCK_RETRIES=2", NULL));
    close_blocker(blocker);

    h_assert_exit(r, 12);
    h_assert_lacks(r, r.err, "could not post an Event");
    struct kf_api ev = kf_admin(
        "GET",
        h_fmt("/api/v1/namespaces/" KF_NS "/events?fieldSelector=involvedObject.name%%3D%s", pod),
        NULL, 200);
    char *n = h_query2("SELECT count(*) FROM jsonb_array_elements(($1::jsonb)->'items') e "
                       "WHERE e->>'reason' = 'LockWait' AND e->>'type' = 'Warning' AND "
                       "e#>>'{involvedObject,kind}' = 'Pod' AND "
                       "strpos(e->>'message', $2) > 0 AND "
                       "strpos(e->>'message', 'application_name \"" BLOCKER_APP "\"') > 0 AND "
                       "strpos(e->>'message', '0001_add_column.up.sql') > 0",
                       ev.body, h_fmt("blocked by pid %s ", pid));
    cr_assert_str_eq(n, "1", "LockWait Events on pod %s: %s\n%s", pod, ev.body, h_describe(&r));
}

/* Behind PgBouncer in transaction pooling the backend pid libpq was given is the pooler's
 * own: the monitor finds the migrating backend by the run's application_name instead. */
Test(lockwait, the_blocker_is_named_behind_a_transaction_pooler)
{
    char *pid;
    h_query("CREATE TABLE busy (id int)");
    h_migration(1, "add_column", "ALTER TABLE busy ADD COLUMN x int;\n", NULL);
    PGconn *blocker = open_blocker("busy", NULL, &pid);

    struct h_result r = h_run(
        H_ARGS("migrate"), H_ENV(h_fmt("ROLLGATE_DATABASE_URL=%s", h_pooled_url()), h_env_dir(),
                                 "ROLLGATE_DATABASE_LOCK_TIMEOUT=1500ms",
                                 "ROLLGATE_DATABASE_LOCK_RETRIES=0", "ROLLGATE_LEASE_MODE=none"));
    close_blocker(blocker);

    h_assert_exit(r, 12);
    h_assert_has(r, r.termlog, h_fmt("blocked by pid %s (", pid));
    h_assert_has(r, r.termlog, "application_name \"" BLOCKER_APP "\"");
}

/* The monitor looks with single autocommit statements: between looks its session holds no
 * transaction and no snapshot, which would stall a CREATE INDEX CONCURRENTLY or VACUUM. */
Test(lockwait, the_monitor_holds_no_transaction_or_snapshot_between_looks)
{
    char *pid;
    h_query("CREATE TABLE busy (id int)");
    h_migration(1, "add_column", "ALTER TABLE busy ADD COLUMN x int;\n", NULL);
    PGconn *blocker = open_blocker("busy", NULL, &pid);
    struct h_proc *p =
        h_start(H_ARGS("migrate"),
                MIGRATE_ENV_WITH("ROLLGATE_DATABASE_LOCK_TIMEOUT=1h",
                                 "ROLLGATE_DATABASE_LOCK_RETRIES=0", "ROLLGATE_LEASE_MODE=none"));

    cr_assert(h_proc_wait_stderr(p, "waits on a lock held by another session", 120 * 1000),
              "the blocker was never reported");
    /* Two sessions of the run: the migration, waiting, and the monitor, idle or looking. */
    char *sessions =
        h_query("SELECT string_agg(state || ':' || (backend_xmin IS NULL)::text, ',' "
                "ORDER BY state) FROM pg_stat_activity WHERE datname = current_database() "
                "AND application_name LIKE 'rollgate/%' AND wait_event_type IS "
                "DISTINCT FROM 'Lock'");
    char *waiting =
        h_query("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND application_name LIKE 'rollgate/%' AND wait_event_type = 'Lock'");
    close_blocker(blocker);
    struct h_result r = h_wait(p);

    h_assert_exit(r, 0);
    cr_assert_str_eq(waiting, "1");
    /* Idle with no snapshot, or in the middle of a look. */
    cr_assert(sessions &&
                  (strcmp(sessions, "idle:true") == 0 || strcmp(sessions, "active:false") == 0 ||
                   strcmp(sessions, "active:true") == 0),
              "the monitor's session: %s", sessions ? sessions : "(none)");
}

/* Retries that would run past the run's timeout stop before it, as a lock failure naming the
 * blocker (exit 12), not as a timeout (exit 8). */
Test(lockwait, retries_stop_before_the_runs_timeout_with_exit_12)
{
    char *pid;
    h_query("CREATE TABLE busy (id int)");
    h_migration(1, "add_column", "ALTER TABLE busy ADD COLUMN x int;\n", NULL);
    PGconn *blocker = open_blocker("busy", NULL, &pid);

    /* 20 retries up to 10s each would take minutes; the run has 8 seconds. */
    struct h_result r =
        h_run(H_ARGS("migrate", "--timeout", "8s"),
              MIGRATE_ENV_WITH("ROLLGATE_DATABASE_LOCK_TIMEOUT=10s",
                               "ROLLGATE_DATABASE_LOCK_RETRIES=20", "ROLLGATE_LEASE_MODE=none"));
    close_blocker(blocker);

    h_assert_exit(r, 12);
    h_assert_has(r, r.termlog, "the run's timeout leaves no time for another");
    h_assert_lacks(r, r.err, "run timeout reached");
    cr_assert_eq(h_query_int("SELECT count(*) FROM public.rollgate_migrations"), 0);
}

/* Progress reaches the pod's Events at a sixth of the log's rate. */
Test(lockwait_kube, a_long_index_build_sends_progress_events_at_a_lower_rate)
{
    char *pod = h_fmt("pod-%s", kf_tag);
    kf_sa_dir = kf_make_sa_dir("sa", kf_read(kf_file("rollgate.token")));
    slow_index_table();
    h_migration(1, "index_big", "CREATE INDEX big_slow ON big (slow_id(id));\n", NULL);

    struct h_result r =
        h_run(H_ARGS("migrate"), kf_env(kf_port, h_fmt("POD_NAME=%s", pod), "POD_NAMESPACE=" KF_NS,
                                        "ROLLGATE_LOG_PROGRESS_INTERVAL=200ms", NULL));

    h_assert_exit(r, 0);
    h_assert_lacks(r, r.err, "could not post an Event");
    struct kf_api ev = kf_admin(
        "GET",
        h_fmt("/api/v1/namespaces/" KF_NS "/events?fieldSelector=involvedObject.name%%3D%s", pod),
        NULL, 200);
    long long events = atoll(h_query1("SELECT count(*) FROM jsonb_array_elements(($1::jsonb)->"
                                      "'items') e WHERE e->>'reason' = 'MigrationProgress' AND "
                                      "e->>'type' = 'Normal' AND strpos(e->>'message', "
                                      "'0001_index_big.up.sql running for ') > 0",
                                      ev.body));
    long long reports = atoll(h_query1("SELECT count(*) FROM regexp_matches($1, "
                                       "'\"msg\":\"statement running\",\"file\":\"[^\"]*"
                                       "0001_index_big', 'g')",
                                       r.err));
    cr_assert(events >= 1 && events == reports / 6,
              "%lld progress reports, %lld MigrationProgress Events\n%s", reports, events, ev.body);
}
