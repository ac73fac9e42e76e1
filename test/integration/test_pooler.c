/* Behind a real PgBouncer in transaction pooling (scripts/pgbouncer.sh): lock_timeout still
 * ends a blocked migration, no-transaction migrations run on database.directUrl (and are
 * refused without it), and no session setting of rollgate's, nor of a migration's, stays on
 * a server connection that other clients get. Also without a pooler: a migration's
 * `SET search_path` does not reach the next migration. */
#include <criterion/criterion.h>

#include <signal.h>
#include <string.h>

#include "harness.h"

TestSuite(pooler, .init = h_setup, .fini = h_teardown);

/* What rollgate sets, and what a migration is likely to. */
static const char *const settings[] = {"lock_timeout", "statement_timeout",
                                       "client_connection_check_interval", "search_path"};

/* Every server connection of this test's pool shows the server's defaults, as a fresh direct
 * session sees them. */
static void assert_pool_has_defaults(void)
{
    for (size_t i = 0; i < sizeof(settings) / sizeof(settings[0]); i++) {
        char *fresh = h_query(h_fmt("SHOW %s", settings[i]));
        size_t n;
        char **pooled = h_pool_each(h_fmt("SHOW %s", settings[i]), &n);

        cr_assert(n >= 1, "PgBouncer holds no server connection to the test database");
        for (size_t k = 0; k < n; k++)
            cr_assert_str_eq(pooled[k], fresh,
                             "%s is \"%s\" on pooled server connection %zu of %zu, not the "
                             "server's default \"%s\"",
                             settings[i], pooled[k], k + 1, n, fresh);
    }
}

/* A transaction of another session's holding an ACCESS EXCLUSIVE lock on table t. */
static struct h_session *lock_table_t(void)
{
    struct h_session *s = h_session_open(h_db_url());

    h_session_query(s, "BEGIN");
    h_session_query(s, "LOCK TABLE t IN ACCESS EXCLUSIVE MODE");
    return s;
}

static long long rows_for(long long version)
{
    return h_query_int(
        h_fmt("SELECT count(*) FROM public.rollgate_migrations WHERE version = %lld", version));
}

Test(pooler, lock_timeout_ends_a_blocked_migration_and_no_setting_stays_in_the_pool)
{
    h_query("CREATE TABLE t (id int)");
    struct h_session *holder = lock_table_t();
    h_migration(1, "add_column", "ALTER TABLE t ADD COLUMN c int;\n", NULL);

    struct h_result r =
        h_run(H_ARGS("migrate"),
              H_ENV(h_fmt("ROLLGATE_DATABASE_URL=%s", h_pooled_url()), h_env_dir(),
                    "ROLLGATE_DATABASE_LOCK_TIMEOUT=300ms", "ROLLGATE_DATABASE_LOCK_RETRIES=0",
                    "ROLLGATE_DATABASE_STATEMENT_TIMEOUT=1h", "ROLLGATE_LEASE_MODE=none"));
    h_session_close(holder);

    h_assert_exit(r, 12);
    h_assert_has(r, r.err, "55P03");
    h_assert_has(r, r.err, "lock timeout");
    cr_assert_eq(rows_for(1), 0);
    cr_assert_str_eq(h_query("SELECT count(*) FROM information_schema.columns "
                             "WHERE table_name = 't' AND column_name = 'c'"),
                     "0");
    assert_pool_has_defaults();
}

Test(pooler, no_transaction_migration_without_direct_url_is_refused_behind_a_pooler)
{
    h_migration(1, "create_t", "CREATE TABLE t (id int);\n", NULL);
    h_migration(2, "index_t",
                "-- rollgate:no-transaction\nCREATE INDEX CONCURRENTLY t_id ON t (id);\n", NULL);

    struct h_result r =
        h_run(H_ARGS("migrate"), H_ENV(h_fmt("ROLLGATE_DATABASE_URL=%s", h_pooled_url()),
                                       h_env_dir(), "ROLLGATE_LEASE_MODE=none"));

    h_assert_exit(r, 3);
    h_assert_has(r, r.err, "0002_index_t.up.sql");
    h_assert_has(r, r.err, "connection pooler");
    h_assert_has(r, r.err, "database.directUrl");
    /* The transactional migration before it is applied; of this one nothing ran. */
    cr_assert_eq(rows_for(1), 1);
    cr_assert_eq(rows_for(2), 0);
    cr_assert(!h_table_exists("t_id"));
    assert_pool_has_defaults();
}

Test(pooler, no_transaction_migration_runs_on_the_direct_url_with_its_settings)
{
    h_migration(1, "create_t", "CREATE TABLE t (id int);\n", NULL);
    h_migration(2, "index_t",
                "-- rollgate:no-transaction\n-- rollgate:lock-timeout=3s\n"
                "CREATE TABLE seen AS SELECT pg_backend_pid()::text AS pid,\n"
                "    current_setting('lock_timeout') AS lock_timeout,\n"
                "    current_setting('statement_timeout') AS statement_timeout,\n"
                "    current_setting('client_connection_check_interval') AS check_interval;\n"
                "CREATE INDEX CONCURRENTLY t_id ON t (id);\n",
                NULL);

    struct h_result r =
        h_run(H_ARGS("migrate"),
              H_ENV(h_fmt("ROLLGATE_DATABASE_URL=%s", h_pooled_url()),
                    h_fmt("ROLLGATE_DATABASE_DIRECT_URL=%s", h_db_url()), h_env_dir(),
                    "ROLLGATE_DATABASE_STATEMENT_TIMEOUT=1h", "ROLLGATE_LEASE_MODE=none"));

    h_assert_exit(r, 0);
    cr_assert_eq(rows_for(2), 1);
    cr_assert_str_eq(h_query("SELECT state FROM public.rollgate_migrations WHERE version = 2"),
                     "applied");
    cr_assert_str_eq(h_query("SELECT indisvalid FROM pg_index WHERE indexrelid = 't_id'::regclass"),
                     "t");
    /* The settings reached the statements they were for... */
    cr_assert_str_eq(h_query("SELECT lock_timeout FROM seen"), "3s");
    cr_assert_str_eq(h_query("SELECT statement_timeout FROM seen"), "1h");
    cr_assert_str_eq(h_query("SELECT check_interval FROM seen"), "1s");
    /* ...on a session of the direct URL's, not one of the pool's... */
    char *pid = h_query("SELECT pid FROM seen");
    cr_assert(!h_pool_has_backend(pid), "the no-transaction migration ran on pooled backend %s",
              pid);
    /* ...and the pool that served everything else kept none of them. */
    assert_pool_has_defaults();
}

Test(pooler, no_transaction_lock_timeout_on_the_direct_url_leaves_the_pool_clean)
{
    h_query("CREATE TABLE t (id int)");
    struct h_session *holder = lock_table_t();
    h_migration(1, "index_t",
                "-- rollgate:no-transaction\nCREATE INDEX CONCURRENTLY t_id ON t (id);\n", NULL);

    struct h_result r =
        h_run(H_ARGS("migrate"),
              H_ENV(h_fmt("ROLLGATE_DATABASE_URL=%s", h_pooled_url()),
                    h_fmt("ROLLGATE_DATABASE_DIRECT_URL=%s", h_db_url()), h_env_dir(),
                    "ROLLGATE_DATABASE_LOCK_TIMEOUT=300ms", "ROLLGATE_DATABASE_LOCK_RETRIES=0",
                    "ROLLGATE_DATABASE_STATEMENT_TIMEOUT=1h", "ROLLGATE_LEASE_MODE=none"));
    h_session_close(holder);

    h_assert_exit(r, 6);
    h_assert_has(r, r.err, "55P03");
    /* An index build alone in its file runs again as it is: no failed mark to repair. */
    h_assert_has(r, r.err, "not marked failed");
    cr_assert_null(h_query("SELECT state FROM public.rollgate_migrations WHERE version = 1"));
    assert_pool_has_defaults();
}

Test(pooler, malformed_direct_url_exits_3_before_anything_runs)
{
    h_migration(1, "create_t", "CREATE TABLE t (id int);\n", NULL);

    struct h_result r = h_run(
        H_ARGS("migrate"),
        H_ENV(
            h_env_url(), h_env_dir(), "ROLLGATE_LEASE_MODE=none",
            "ROLLGATE_DATABASE_DIRECT_URL=postgresql://app:s3cr3t-pw@127.0.0.1:5432/app?bogus=1"));

    h_assert_exit(r, 3);
    h_assert_has(r, r.err, "database.directUrl");
    h_assert_lacks(r, r.err, "s3cr3t-pw");
    h_assert_lacks(r, r.termlog, "s3cr3t-pw");
    cr_assert(!h_table_exists("t"));
}

Test(pooler, unreachable_direct_url_stops_at_the_no_transaction_migration)
{
    h_migration(1, "create_t", "CREATE TABLE t (id int);\n", NULL);
    h_migration(2, "index_t",
                "-- rollgate:no-transaction\nCREATE INDEX CONCURRENTLY t_id ON t (id);\n", NULL);

    struct h_result r =
        h_run(H_ARGS("migrate"),
              H_ENV(h_env_url(), h_env_dir(), "ROLLGATE_LEASE_MODE=none",
                    "ROLLGATE_DATABASE_CONNECT_RETRY=1s",
                    h_fmt("ROLLGATE_DATABASE_DIRECT_URL=postgresql://postgres@127.0.0.1:%d/%s"
                          "?sslmode=disable",
                          h_free_port(), h_db_name())));

    h_assert_exit(r, 7);
    h_assert_has(r, r.err, "0002_index_t.up.sql: database.directUrl: could not connect");
    cr_assert_eq(rows_for(1), 1);
    cr_assert_eq(rows_for(2), 0);
}

/* Putting the session back (RESET ALL) resets application_name too, and PgBouncer takes the
 * server's report of that as the client's wish for all its later transactions. */
Test(pooler, application_name_outlasts_each_migration_behind_a_pooler)
{
    h_migration(1, "first", "CREATE TABLE first (id int);\n", NULL);
    h_migration(2, "second", "CREATE TABLE seen AS SELECT current_setting('application_name');\n",
                NULL);

    struct h_result r =
        h_run(H_ARGS("migrate"), H_ENV(h_fmt("ROLLGATE_DATABASE_URL=%s", h_pooled_url()),
                                       h_env_dir(), "ROLLGATE_LEASE_MODE=none"));

    h_assert_exit(r, 0);
    /* rollgate/<identity>: other runs judge by it whether this one is alive. */
    char *seen = h_query("SELECT * FROM seen");
    cr_assert(seen && strncmp(seen, "rollgate/", 9) == 0, "application_name was %s", seen);
}

/* A run killed outright cannot cancel its statement: the server must notice the dead client
 * (client_connection_check_interval, set for the migration's transaction) and roll back
 * instead of sleeping on for ten minutes and then committing. */
static void killed_run_is_rolled_back(const char *url)
{
    h_migration(1, "slow", "CREATE TABLE t (id int);\nSELECT pg_sleep(600);\n", NULL);
    const char *busy = "EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid <> "
                       "pg_backend_pid() AND datname = current_database() AND query LIKE "
                       "'%pg_sleep(600)%')";

    struct h_proc *p = h_start(H_ARGS("migrate"), H_ENV(h_fmt("ROLLGATE_DATABASE_URL=%s", url),
                                                        h_env_dir(), "ROLLGATE_LEASE_MODE=none"));
    bool started = h_wait_until(h_fmt("SELECT %s", busy), p, 120 * 1000);
    cr_assert_eq(kill(h_proc_pid(p), SIGKILL), 0);
    h_wait(p);
    cr_assert(started, "the migration never started");

    cr_assert(h_wait_until(h_fmt("SELECT NOT %s", busy), NULL, 60 * 1000),
              "the killed run's migration was still running a minute later");
    cr_assert(!h_table_exists("t"));
}

Test(pooler, a_killed_run_is_rolled_back_by_the_server)
{
    killed_run_is_rolled_back(h_db_url());
}

Test(pooler, a_killed_run_is_rolled_back_by_the_server_behind_a_pooler)
{
    killed_run_is_rolled_back(h_pooled_url());
}

/* Three migrations, the first two leaving search_path elsewhere: every migration must still
 * create its unqualified objects where the connection's own search_path says. */
static void search_path_does_not_carry_over(const char *url, const char *direct_url)
{
    h_migration(1, "other",
                "CREATE SCHEMA other;\nSET search_path = other;\nCREATE TABLE in_other (id int);\n",
                NULL);
    h_migration(2, "nt_here",
                "-- rollgate:no-transaction\nCREATE TABLE nt_here (id int);\n"
                "SET search_path = other;\n",
                NULL);
    h_migration(3, "tx_here", "CREATE TABLE tx_here (id int);\n", NULL);

    /* Without direct_url the list ends one entry early. */
    struct h_result r =
        h_run(H_ARGS("migrate"),
              H_ENV(h_fmt("ROLLGATE_DATABASE_URL=%s", url), h_env_dir(), "ROLLGATE_LEASE_MODE=none",
                    direct_url ? h_fmt("ROLLGATE_DATABASE_DIRECT_URL=%s", direct_url) : NULL));

    h_assert_exit(r, 0);
    cr_assert(h_table_exists("other.in_other"), "the migration's own SET did not apply to it");
    cr_assert(h_table_exists("public.nt_here") && !h_table_exists("other.nt_here"),
              "migration 2 inherited migration 1's search_path");
    cr_assert(h_table_exists("public.tx_here") && !h_table_exists("other.tx_here"),
              "migration 3 inherited a search_path set before it");
}

Test(pooler, search_path_set_in_a_migration_does_not_reach_the_next)
{
    search_path_does_not_carry_over(h_db_url(), NULL);
}

Test(pooler, search_path_set_in_a_migration_does_not_reach_the_next_behind_a_pooler)
{
    search_path_does_not_carry_over(h_pooled_url(), h_db_url());
    assert_pool_has_defaults();
}

/* SIGTERM while a no-transaction migration runs on the direct URL: the cancel reaches that
 * connection too (it is not the one the run opened first), the statement stops, the row is
 * marked failed, and the run exits 143 instead of waiting for the statement. */
Test(pooler, sigterm_cancels_a_no_transaction_migration_on_the_direct_url)
{
    h_migration(1, "slow",
                "-- rollgate:no-transaction\nSELECT pg_sleep(600);\nCREATE TABLE never (id int);\n",
                NULL);
    struct h_proc *p =
        h_start(H_ARGS("migrate"), H_ENV(h_fmt("ROLLGATE_DATABASE_URL=%s", h_pooled_url()),
                                         h_fmt("ROLLGATE_DATABASE_DIRECT_URL=%s", h_db_url()),
                                         h_env_dir(), "ROLLGATE_LEASE_MODE=none"));
    cr_assert(
        h_wait_until("SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid <> pg_backend_pid() "
                     "AND query LIKE 'SELECT pg_sleep(600)%' AND state = 'active')",
                     p, 120 * 1000),
        "the migration's statement never ran");
    cr_assert_eq(kill(h_proc_pid(p), SIGTERM), 0);
    struct h_result r = h_wait(p);

    h_assert_exit(r, 143);
    cr_assert(!h_table_exists("never"));
    cr_assert_str_eq(h_query("SELECT state FROM public.rollgate_migrations WHERE version = 1"),
                     "failed");
}
