/* `rollgate wait`: the init container that must not start a pod on an older schema. */
#include <criterion/criterion.h>

#include <signal.h>
#include <string.h>

#include "harness.h"

TestSuite(wait, .init = h_setup, .fini = h_teardown);

#define WAIT_ENV(...)                                                                              \
    H_ENV(h_env_url(), h_env_dir(), "ROLLGATE_LEASE_RETRY_PERIOD=100ms", __VA_ARGS__)

Test(wait, exits_0_at_once_when_the_schema_is_current)
{
    h_migration(1, "a", "CREATE TABLE a (id int);\n", NULL);
    struct h_result m = h_run(H_ARGS("migrate"), WAIT_ENV("X=1"));
    h_assert_exit(m, 0);

    struct h_result r = h_run(H_ARGS("wait"), WAIT_ENV("X=1"));

    h_assert_exit(r, 0);
    h_assert_has(r, r.termlog, "current");
}

Test(wait, blocks_while_migrations_are_pending_and_exits_0_once_another_run_applied_them)
{
    h_migration(1, "a", "CREATE TABLE a (id int);\n", NULL);
    h_migration(2, "b", "CREATE TABLE b (id int);\n", NULL);

    struct h_proc *w = h_start(H_ARGS("wait"), WAIT_ENV("X=1"));
    bool waiting = h_proc_wait_stderr(w, "waiting for the schema", 60 * 1000);
    struct h_result m = h_run(H_ARGS("migrate"), WAIT_ENV("X=1"));
    struct h_result r = h_wait(w);

    cr_assert(waiting, "wait did not report waiting\n%s", h_describe(&r));
    h_assert_exit(m, 0);
    h_assert_exit(r, 0);
    h_assert_has(r, r.termlog, "schema at version 2 is current");
}

Test(wait, timeout_exits_8_and_never_writes_to_the_database)
{
    h_migration(1, "a", "CREATE TABLE a (id int);\n", NULL);

    struct h_result r = h_run(H_ARGS("wait", "--timeout", "1s"), WAIT_ENV("X=1"));

    h_assert_exit(r, 8);
    h_assert_has(r, r.termlog, "timeout");
    cr_assert_not(h_table_exists("public.rollgate_migrations"), "wait created the history table");
    cr_assert_not(h_table_exists("a"));
}

Test(wait, lease_wait_timeout_bounds_the_wait_without_a_run_timeout)
{
    h_migration(1, "a", "CREATE TABLE a (id int);\n", NULL);

    struct h_result r = h_run(H_ARGS("wait"), WAIT_ENV("ROLLGATE_LEASE_WAIT_TIMEOUT=1s"));

    h_assert_exit(r, 8);
    h_assert_has(r, r.termlog, "1 pending");
}

Test(wait, drift_exits_5_instead_of_waiting_forever)
{
    char *up = h_migration(1, "a", "CREATE TABLE a (id int);\n", NULL);
    struct h_result m = h_run(H_ARGS("migrate"), WAIT_ENV("X=1"));
    h_assert_exit(m, 0);
    h_write_file(up, "CREATE TABLE a (id bigint);\n");

    struct h_result r = h_run(H_ARGS("wait"), WAIT_ENV("X=1"));

    h_assert_exit(r, 5);
    h_assert_has(r, r.err, "checksum drift");
}

Test(wait, sigterm_while_waiting_exits_143_having_written_nothing)
{
    h_migration(1, "a", "CREATE TABLE a (id int);\n", NULL);

    struct h_proc *w = h_start(H_ARGS("wait"), WAIT_ENV("X=1"));
    bool waiting = h_proc_wait_stderr(w, "waiting for the schema", 60 * 1000);
    cr_assert_eq(kill(h_proc_pid(w), SIGTERM), 0);
    struct h_result r = h_wait(w);

    cr_assert(waiting, "wait did not report waiting\n%s", h_describe(&r));
    h_assert_exit(r, 143);
    cr_assert_not(h_table_exists("public.rollgate_migrations"), "wait wrote to the database");
}
