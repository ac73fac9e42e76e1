/* What keeps a migration from hurting a live database or leaving it half changed: lock
 * timeouts with retries, the run's timeout, and files that try to control the
 * transaction rollgate runs them in. */
#include <criterion/criterion.h>

#include <libpq-fe.h>
#include <string.h>

#include "harness.h"

TestSuite(safety, .init = h_setup, .fini = h_teardown);

#define MIGRATE_ENV_WITH(...) H_ENV(h_env_url(), h_env_dir(), __VA_ARGS__)

/* A live transaction that has read the table: DDL on it must wait until it ends. */
static PGconn *hold_reader_lock(const char *table)
{
    PGconn *c = PQconnectdb(h_db_url());
    cr_assert_eq(PQstatus(c), CONNECTION_OK, "%s", PQerrorMessage(c));
    PGresult *r = PQexec(c, h_fmt("BEGIN; SELECT * FROM %s", table));
    cr_assert_eq(PQresultStatus(r), PGRES_TUPLES_OK, "%s", PQerrorMessage(c));
    PQclear(r);
    return c;
}

static void release(PGconn *c)
{
    PQclear(PQexec(c, "COMMIT"));
    PQfinish(c);
}

Test(safety, ddl_blocked_by_a_live_transaction_is_retried_and_applies_once_it_ends)
{
    h_query("CREATE TABLE busy (id int)");
    h_migration(1, "add_column",
                "-- rollgate:lock-timeout=100ms\nALTER TABLE busy ADD COLUMN x int;\n", NULL);
    PGconn *reader = hold_reader_lock("busy");

    struct h_proc *p =
        h_start(H_ARGS("migrate"), MIGRATE_ENV_WITH("ROLLGATE_DATABASE_LOCK_RETRIES=50"));
    bool retried = h_proc_wait_stderr(p, "retrying", 120 * 1000);
    release(reader);
    struct h_result r = h_wait(p);

    cr_assert(retried, "no retry was logged\n%s", h_describe(&r));
    h_assert_exit(r, 0);
    h_assert_has(r, r.err, "55P03");
    cr_assert_eq(h_query_int("SELECT count(*) FROM information_schema.columns "
                             "WHERE table_name = 'busy' AND column_name = 'x'"),
                 1);
    cr_assert_eq(h_count_rows("public.rollgate_migrations"), 1);
}

Test(safety, lock_retries_running_out_exits_12_with_nothing_applied)
{
    h_query("CREATE TABLE busy (id int)");
    h_migration(1, "add_column",
                "-- rollgate:lock-timeout=100ms\nALTER TABLE busy ADD COLUMN x int;\n", NULL);
    PGconn *reader = hold_reader_lock("busy");

    struct h_result r =
        h_run(H_ARGS("migrate"), MIGRATE_ENV_WITH("ROLLGATE_DATABASE_LOCK_RETRIES=1"));
    release(reader);

    h_assert_exit(r, 12);
    h_assert_has(r, r.err, "lock not acquired after 2 tries");
    h_assert_has(r, r.err, "0001_add_column.up.sql");
    h_assert_has(r, r.err, "55P03");
    cr_assert_eq(h_query_int("SELECT count(*) FROM information_schema.columns "
                             "WHERE table_name = 'busy' AND column_name = 'x'"),
                 0);
    cr_assert_eq(h_query_int("SELECT count(*) FROM public.rollgate_migrations"), 0);
}

Test(safety, run_timeout_cancels_the_running_migration_and_exits_8)
{
    h_migration(1, "first", "CREATE TABLE first (id int);\n", NULL);
    h_migration(2, "slow", "CREATE TABLE slow (id int);\nSELECT pg_sleep(60);\n", NULL);

    /* The timeout counts from the start: connecting, creating the history table and applying
     * version 1 must fit inside it however loaded the machine is (2 s left too little). */
    struct h_result r = h_run(H_ARGS("migrate", "--timeout", "6s"), MIGRATE_ENV_WITH("X=1"));

    h_assert_exit(r, 8);
    h_assert_has(r, r.termlog, "timeout");
    h_assert_has(r, r.termlog, "0002_slow.up.sql: stopped before it committed; rolled back");
    cr_assert(h_table_exists("first"));
    cr_assert_not(h_table_exists("slow"), "the timed-out migration was not rolled back");
    cr_assert_str_eq(h_query("SELECT string_agg(version::text, ',') FROM "
                             "public.rollgate_migrations"),
                     "1");
}

/* A wrapper's isolation level is the migration's (as where the file ran as written); a
 * read-only wrapper is refused before anything runs. */
Test(safety, a_wrappers_isolation_level_is_the_migrations_and_read_only_is_refused)
{
    h_query("CREATE TABLE seen (version int, isolation text)");
    h_migration(1, "serializable",
                "BEGIN ISOLATION LEVEL SERIALIZABLE;\nINSERT INTO seen VALUES (1, "
                "current_setting('transaction_isolation'));\nCOMMIT;\n",
                NULL);
    h_migration(2, "plain",
                "BEGIN;\nINSERT INTO seen VALUES (2, current_setting('transaction_isolation'));\n"
                "COMMIT;\n",
                NULL);
    h_migration(3, "repeatable",
                "START TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ WRITE;\nINSERT INTO "
                "seen VALUES (3, current_setting('transaction_isolation'));\nCOMMIT;\n",
                NULL);

    struct h_result r = h_run(H_ARGS("migrate"), MIGRATE_ENV_WITH("X=1"));
    h_assert_exit(r, 0);
    cr_assert_str_eq(h_query("SELECT string_agg(version || ' ' || isolation, ',' ORDER BY "
                             "version) FROM seen"),
                     "1 serializable,2 read committed,3 repeatable read");

    h_migration(4, "read_only", "BEGIN READ ONLY;\nSELECT 1;\nCOMMIT;\n", NULL);
    r = h_run(H_ARGS("migrate"), MIGRATE_ENV_WITH("X=1"));
    h_assert_exit(r, 4);
    h_assert_has(r, r.termlog, "0004_read_only.up.sql:1: BEGIN READ ONLY");
    cr_assert_eq(h_query_int("SELECT count(*) FROM public.rollgate_migrations"), 3);
}

Test(safety, a_file_wrapped_in_its_own_begin_commit_applies_as_one_migration)
{
    h_migration(1, "wrapped",
                "BEGIN;\nCREATE TABLE w (id int);\nINSERT INTO w VALUES (1);\nCOMMIT;\n", NULL);
    h_migration(2, "broken_wrapped", "BEGIN;\nCREATE TABLE w2 (id int);\nSELEC 1;\nCOMMIT;\n",
                NULL);

    struct h_result r = h_run(H_ARGS("migrate"), MIGRATE_ENV_WITH("X=1"));

    /* The second fails inside rollgate's transaction, at its own line, and leaves nothing. */
    h_assert_exit(r, 6);
    h_assert_has(r, r.err, "0002_broken_wrapped.up.sql:3:1");
    cr_assert_eq(h_count_rows("w"), 1);
    cr_assert_not(h_table_exists("w2"));
    cr_assert_str_eq(h_query("SELECT string_agg(version::text, ',') FROM "
                             "public.rollgate_migrations"),
                     "1");
}

Test(safety, a_commit_part_way_through_a_file_is_refused_before_anything_runs)
{
    h_migration(1, "fine", "CREATE TABLE fine (id int);\n", NULL);
    h_migration(2, "sneaky", "CREATE TABLE a (id int);\nCOMMIT;\nCREATE TABLE b (id int);\n", NULL);

    struct h_result r = h_run(H_ARGS("migrate"), MIGRATE_ENV_WITH("X=1"));

    h_assert_exit(r, 4);
    h_assert_has(r, r.err, "0002_sneaky.up.sql:2: COMMIT");
    cr_assert_not(h_table_exists("fine"), "a file was run although the set was invalid");
    cr_assert_not(h_table_exists("a"));
}

Test(safety, statement_timeout_directive_cancels_a_slow_migration_and_exits_6)
{
    h_migration(1, "slow",
                "-- rollgate:statement-timeout=200ms\nCREATE TABLE s (id int);\nSELECT "
                "pg_sleep(30);\n",
                NULL);

    struct h_result r = h_run(H_ARGS("migrate"), MIGRATE_ENV_WITH("X=1"));

    h_assert_exit(r, 6);
    h_assert_has(r, r.err, "57014");
    h_assert_has(r, r.err, "0001_slow.up.sql");
    cr_assert_not(h_table_exists("s"));
    cr_assert_eq(h_query_int("SELECT count(*) FROM public.rollgate_migrations"), 0);
}

Test(safety, live_queries_queued_behind_waiting_ddl_get_through_within_the_lock_timeout)
{
    h_query("CREATE TABLE busy (id int)");
    h_query("INSERT INTO busy VALUES (1)");
    h_migration(1, "add_column",
                "-- rollgate:lock-timeout=100ms\nALTER TABLE busy ADD COLUMN x int;\n", NULL);
    PGconn *reader = hold_reader_lock("busy");
    struct h_proc *p =
        h_start(H_ARGS("migrate"), MIGRATE_ENV_WITH("ROLLGATE_DATABASE_LOCK_RETRIES=100"));
    cr_assert(h_proc_wait_stderr(p, "retrying", 120 * 1000), "no retry was logged");

    /* A live query arriving now queues behind the ALTER's lock request whenever one is
     * pending. With rollgate's 100ms lock timeout it gets through long before its own 10s
     * limit; had the ALTER kept its place in the queue, it would fail. */
    PGconn *live = PQconnectdb(h_db_url());
    cr_assert_eq(PQstatus(live), CONNECTION_OK, "%s", PQerrorMessage(live));
    for (int i = 0; i < 20; i++) {
        PGresult *q = PQexec(live, "SET lock_timeout = '10s'; SELECT count(*) FROM busy");
        cr_assert_eq(PQresultStatus(q), PGRES_TUPLES_OK, "a live query was blocked: %s",
                     PQerrorMessage(live));
        PQclear(q);
    }
    PQfinish(live);
    release(reader);
    struct h_result r = h_wait(p);
    h_assert_exit(r, 0);
}
