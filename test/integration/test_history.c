/* The history as the database keeps it: a no-transaction migration left running by a run
 * that is gone (judged at once by its session, which carries its identity), one still
 * under way (waited for), another tool's schema_migrations, the server's log on a first
 * run, the one query a run with nothing to do sends, and bookkeeping the database
 * refuses for good. */
#include <criterion/criterion.h>

#include <libpq-fe.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "harness.h"

TestSuite(history, .init = h_setup, .fini = h_teardown);

#define MIGRATE_ENV_WITH(...) H_ENV(h_env_url(), h_env_dir(), __VA_ARGS__)
/* Long enough that a run which waits it out instead of judging would meet the harness's
 * guard and fail, never pass. */
#define LONG_WAIT "ROLLGATE_LEASE_WAIT_TIMEOUT=10m"

static char *row_state(long long version)
{
    return h_query(
        h_fmt("SELECT state FROM public.rollgate_migrations WHERE version = %lld", version));
}

/* The history table exists (a run with nothing to do makes it), so tests can poll it. */
static void make_history(void)
{
    struct h_result r = h_run(H_ARGS("migrate"), MIGRATE_ENV_WITH("X=1"));
    h_assert_exit(r, 0);
}

/* The lines of the server's log written since offset that contain both needles, joined. */
static char *log_lines_since(size_t offset, const char *a, const char *b, size_t *count)
{
    char *text = h_read_file(h_server_log());
    char *out = h_fmt("%s", "");

    *count = 0;
    cr_assert(strlen(text) >= offset, "the server's log shrank");
    for (char *line = text + offset; *line;) {
        char *nl = strchr(line, '\n');
        size_t len = nl ? (size_t)(nl - line) : strlen(line);
        char *one = h_fmt("%.*s", (int)len, line);
        if (strstr(one, a) && strstr(one, b)) {
            out = h_fmt("%s%s\n", out, one);
            (*count)++;
        }
        line += len + (nl ? 1 : 0);
    }
    return out;
}

Test(history, a_run_whose_session_was_terminated_mid_statement_is_judged_failed_at_once)
{
    make_history();
    h_migration(1, "slow", "-- rollgate:no-transaction\nSELECT pg_sleep(60);\n", NULL);
    struct h_proc *a = h_start(H_ARGS("migrate"), MIGRATE_ENV_WITH("POD_NAME=pod-a"));
    /* Its session carries its identity, and is in the middle of the statement. */
    bool sleeping = h_wait_until("SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE "
                                 "datname = current_database() AND application_name = "
                                 "'rollgate/pod-a' AND state = 'active' AND query LIKE "
                                 "'%pg_sleep(60)%')",
                                 a, 120 * 1000);
    h_query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = "
            "current_database() AND application_name = 'rollgate/pod-a'");
    struct h_result lost = h_wait(a);
    cr_assert(sleeping, "the run never ran its statement as rollgate/pod-a\n%s", h_describe(&lost));
    h_assert_exit(lost, 7);
    cr_assert_str_eq(row_state(1), "running", "the lost run should have left its mark");

    /* wait never writes, but does not wait for a run that is gone either. */
    struct h_result waiter = h_run(H_ARGS("wait"), MIGRATE_ENV_WITH(LONG_WAIT));
    cr_assert_not(waiter.timed_out, "wait waited for a run that is gone");
    h_assert_exit(waiter, 5);
    h_assert_has(waiter, waiter.err, "rollgate repair --version 1");
    cr_assert_str_eq(row_state(1), "running", "wait wrote to the history");

    struct h_result next = h_run(H_ARGS("migrate"), MIGRATE_ENV_WITH("POD_NAME=pod-b", LONG_WAIT));

    cr_assert_not(next.timed_out, "the next run waited for a run that is gone");
    h_assert_exit(next, 5);
    h_assert_has(next, next.err, "rollgate repair --version 1");
    h_assert_has(next, next.err, "(that run: pod-a)");
    h_assert_has(next, next.err, "dropped and built again by the next migrate");
    cr_assert_str_eq(row_state(1), "failed");

    /* Marked failed, it is what a plain repair clears. */
    struct h_result repair = h_run(H_ARGS("repair"), MIGRATE_ENV_WITH("X=1"));
    h_assert_exit(repair, 0);
    h_assert_has(repair, repair.termlog, "cleared 1");
}

Test(history, a_running_mark_whose_run_is_still_connected_is_waited_for)
{
    /* An identity longer than the 63 bytes PostgreSQL keeps of application_name. */
    char pod[121];
    memset(pod, 'p', sizeof(pod) - 1);
    pod[sizeof(pod) - 1] = '\0';
    h_query("CREATE TABLE gate (x int)");
    make_history();
    h_migration(1, "gated",
                "-- rollgate:no-transaction\n-- rollgate:lock-timeout=10m\n"
                "SELECT count(*) FROM gate;\n",
                NULL);
    PGconn *holder = PQconnectdb(h_db_url());
    cr_assert_eq(PQstatus(holder), CONNECTION_OK, "%s", PQerrorMessage(holder));
    PQclear(PQexec(holder, "BEGIN; LOCK TABLE gate IN ACCESS EXCLUSIVE MODE"));

    struct h_proc *a = h_start(H_ARGS("migrate"), MIGRATE_ENV_WITH(h_fmt("POD_NAME=%s", pod)));
    bool blocked = h_wait_until("SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE "
                                "datname = current_database() AND application_name LIKE "
                                "'rollgate/ppp%' AND wait_event_type = 'Lock')",
                                a, 120 * 1000);
    cr_assert(blocked, "the first run never blocked on the gate");
    cr_assert_str_eq(row_state(1), "running");
    /* The whole 63 bytes are used, so a hash of the identity can tell it apart. */
    cr_assert_str_eq(h_query("SELECT string_agg(DISTINCT length(application_name)::text, ',') "
                             "FROM pg_stat_activity WHERE datname = current_database() AND "
                             "application_name LIKE 'rollgate/ppp%'"),
                     "63");

    /* A running mark of a live run is not cleared without naming it. */
    struct h_result repair = h_run(H_ARGS("repair"), MIGRATE_ENV_WITH("X=1"));
    h_assert_exit(repair, 0);
    h_assert_has(repair, repair.termlog, "cleared 0");

    struct h_proc *b = h_start(H_ARGS("migrate"), MIGRATE_ENV_WITH("POD_NAME=pod-b", LONG_WAIT));
    bool waiting = h_proc_wait_stderr(b, "still connected; waiting for it", 120 * 1000);
    /* An init container's wait: the migration is under way, not failed. */
    struct h_proc *w =
        h_start(H_ARGS("wait"), MIGRATE_ENV_WITH("ROLLGATE_LEASE_RETRY_PERIOD=100ms", LONG_WAIT));
    bool wait_waiting = h_proc_wait_stderr(w, "waiting for the schema", 120 * 1000);
    PQclear(PQexec(holder, "COMMIT"));
    PQfinish(holder);
    struct h_result ra = h_wait(a);
    struct h_result rb = h_wait(b);
    struct h_result rw = h_wait(w);

    cr_assert(waiting, "the second run did not wait for the live one\n%s", h_describe(&rb));
    cr_assert(wait_waiting, "wait did not wait for the live run\n%s", h_describe(&rw));
    h_assert_exit(ra, 0);
    h_assert_exit(rb, 0);
    h_assert_exit(rw, 0);
    h_assert_lacks(rb, rb.err, "marked failed");
    cr_assert_str_eq(row_state(1), "applied");
}

Test(history, a_running_mark_left_by_a_killed_run_is_judged_failed_then_repair_clears_it)
{
    h_query("CREATE TABLE t (x int)");
    h_query("CREATE TABLE gate (open boolean)");
    make_history();
    /* The run is killed while its first statement waits for the gate: never before the
     * mark, never once the index is built, however slowly the machine runs. */
    h_migration(1, "index",
                "-- rollgate:no-transaction\n" H_GATE_WAIT_SQL
                "CREATE INDEX CONCURRENTLY t_x ON t (x);\n",
                NULL);
    /* Both runs have the same identity (the host name), as a pod restarted in place does:
     * the second's own session must not count as the first one's. */
    struct h_proc *p = h_start(H_ARGS("migrate"), MIGRATE_ENV_WITH("X=1"));
    bool running = h_wait_until("SELECT EXISTS (SELECT 1 FROM public.rollgate_migrations "
                                "WHERE version = 1 AND state = 'running') AND EXISTS (SELECT 1 "
                                "FROM pg_stat_activity WHERE datname = current_database() AND "
                                "pid <> pg_backend_pid() AND query LIKE '%FROM gate%')",
                                p, 120 * 1000);
    cr_assert_eq(kill(h_proc_pid(p), SIGKILL), 0);
    h_wait(p);
    /* The killed run's statement ends (PostgreSQL 13 has no check for a client gone) and its
     * backend with it; the next run waits for that session, as for any live one. */
    h_query("INSERT INTO gate VALUES (true)");
    cr_assert(running, "the run never marked version 1 running");

    struct h_result stuck = h_run(H_ARGS("migrate"), MIGRATE_ENV_WITH(LONG_WAIT));
    cr_assert_not(stuck.timed_out, "the next run waited for a killed run");
    h_assert_exit(stuck, 5);
    h_assert_has(stuck, stuck.err, "rollgate repair --version 1");
    cr_assert_str_eq(row_state(1), "failed");

    struct h_result again_stuck = h_run(H_ARGS("migrate"), MIGRATE_ENV_WITH("X=1"));
    h_assert_exit(again_stuck, 5);
    h_assert_has(again_stuck, again_stuck.err, "rollgate repair --version 1");

    struct h_result one = h_run(H_ARGS("repair", "--version", "1"), MIGRATE_ENV_WITH("X=1"));
    h_assert_exit(one, 0);
    h_assert_has(one, one.termlog, "cleared 1");

    struct h_result again = h_run(H_ARGS("migrate"), MIGRATE_ENV_WITH("X=1"));
    h_assert_exit(again, 0);
    cr_assert_str_eq(h_query("SELECT indisvalid::text FROM pg_index WHERE indexrelid = "
                             "'t_x'::regclass"),
                     "true");
}

Test(history, another_tools_schema_migrations_table_is_left_alone_with_a_warning)
{
    /* dbmate's: a text version and no dirty flag. */
    h_query("CREATE TABLE schema_migrations (version varchar(128) PRIMARY KEY)");
    h_query("INSERT INTO schema_migrations VALUES ('20240101000000')");
    h_migration(1, "users", "CREATE TABLE users (id int);\n", NULL);

    struct h_result r = h_run(H_ARGS("migrate"), MIGRATE_ENV_WITH("X=1"));

    h_assert_exit(r, 0);
    h_assert_has(r, r.err, "not golang-migrate's");
    h_assert_lacks(r, r.termlog, "adopted");
    cr_assert(h_table_exists("users"));
    cr_assert_str_eq(row_state(1), "applied");
    cr_assert_str_eq(h_query("SELECT string_agg(version, ',') FROM schema_migrations"),
                     "20240101000000");
}

Test(history, the_first_runs_on_an_empty_database_leave_no_error_in_the_servers_log)
{
    h_migration(1, "users", "CREATE TABLE users (id int);\n", NULL);
    size_t offset = h_server_log_size();

    struct h_result status = h_run(H_ARGS("status"), MIGRATE_ENV_WITH("X=1"));
    struct h_result version = h_run(H_ARGS("version"), MIGRATE_ENV_WITH("X=1"));
    struct h_result first = h_run(H_ARGS("migrate"), MIGRATE_ENV_WITH("X=1"));
    struct h_result second = h_run(H_ARGS("migrate"), MIGRATE_ENV_WITH("X=1"));

    h_assert_exit(status, 0);
    h_assert_exit(version, 0);
    h_assert_exit(first, 0);
    h_assert_exit(second, 0);
    size_t n;
    char *errors = log_lines_since(offset, h_fmt(" %s ", h_db_name()), "ERROR:", &n);
    cr_assert_eq(n, 0, "the server logged errors for this database:\n%s", errors);
}

Test(history, a_run_with_nothing_pending_sends_one_query_after_connecting)
{
    h_migration(1, "users", "CREATE TABLE users (id int);\n", NULL);
    make_history();
    h_query(h_fmt("ALTER DATABASE %s SET log_statement = 'all'", h_db_name()));
    size_t offset = h_server_log_size();

    struct h_result r = h_run(H_ARGS("migrate"), MIGRATE_ENV_WITH("X=1"));

    h_assert_exit(r, 0);
    size_t all, settings;
    const char *prefix = h_fmt(" %s LOG:  statement: ", h_db_name());
    char *sent = log_lines_since(offset, prefix, "", &all);
    log_lines_since(offset, prefix, "statement: SET ", &settings);
    /* The session's own settings aside, one query: the history. */
    cr_assert_eq(all - settings, 1, "statements sent:\n%s", sent);
    cr_assert(strstr(sent, "rollgate_migrations"), "statements sent:\n%s", sent);
}

Test(history, bookkeeping_refused_for_lack_of_rights_is_a_configuration_error_not_retryable)
{
    const char *role = h_fmt("r_%s", h_db_name());
    h_query("REVOKE CREATE ON SCHEMA public FROM PUBLIC");
    h_query(h_fmt("CREATE ROLE %s LOGIN", role));
    h_migration(1, "users", "CREATE TABLE users (id int);\n", NULL);

    struct h_result r =
        h_run(H_ARGS("migrate"),
              H_ENV(h_fmt("ROLLGATE_DATABASE_URL=postgresql://%s@%s/%s?sslmode=disable", role,
                          h_db_hostport(), h_db_name()),
                    h_env_dir()));
    h_query(h_fmt("DROP ROLE %s", role));

    h_assert_exit(r, 3);
    h_assert_has(r, r.err, "permission denied for schema public");
    cr_assert_not(h_table_exists("public.rollgate_migrations"));
}
