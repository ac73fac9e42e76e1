/* Safe concurrent index builds on the real server: a failed CREATE INDEX CONCURRENTLY is
 * retried by running migrate again once its cause is gone, with no hand DROP INDEX and no
 * repair; an invalid index of the same name left by an earlier failed build is dropped
 * before the build; a file whose earlier statements cannot simply run again still stops
 * with its failed mark. */
#include <criterion/criterion.h>

#include <libpq-fe.h>
#include <string.h>

#include "harness.h"

TestSuite(safeindex, .init = h_setup, .fini = h_teardown);

#define ENV H_ENV(h_env_url(), h_env_dir(), "ROLLGATE_LEASE_MODE=none", "ROLLGATE_LOG_FORMAT=text")

static char *row_state(long long version)
{
    return h_query(
        h_fmt("SELECT state FROM public.rollgate_migrations WHERE version = %lld", version));
}

/* "true", "false", or NULL when no index has that (schema-qualified) name. */
static char *index_valid(const char *name)
{
    return h_query1("SELECT indisvalid::text FROM pg_index WHERE indexrelid = to_regclass($1)",
                    name);
}

static long long indexes_named(const char *name)
{
    return h_query_int(h_fmt("SELECT count(*) FROM pg_class WHERE relname = '%s'", name));
}

/* A concurrent build that fails on the server, outside rollgate: the invalid index an
 * earlier run (or a person at psql) leaves behind. */
static void failed_build(const char *sql)
{
    PGconn *c = PQconnectdb(h_db_url());
    PGresult *res;

    cr_assert_eq(PQstatus(c), CONNECTION_OK, "%s", PQerrorMessage(c));
    res = PQexec(c, sql);
    cr_assert_eq(PQresultStatus(res), PGRES_FATAL_ERROR, "the build was meant to fail: %s",
                 PQresStatus(PQresultStatus(res)));
    PQclear(res);
    PQfinish(c);
}

Test(safeindex, a_unique_build_over_duplicates_fails_then_migrate_again_builds_it_once_fixed)
{
    h_migration(1, "create_t", "CREATE TABLE t (x int);\nINSERT INTO t VALUES (1), (1), (2);\n",
                NULL);
    h_migration(2, "unique_x",
                "-- rollgate:no-transaction\nCREATE UNIQUE INDEX CONCURRENTLY t_x_key ON t (x);\n",
                NULL);
    h_migration(3, "after", "CREATE TABLE after_u (id int);\n", NULL);

    struct h_result failed = h_run(H_ARGS("migrate"), ENV);

    h_assert_exit(failed, 6);
    h_assert_has(failed, failed.err, "0002_unique_x.up.sql");
    h_assert_has(failed, failed.err, "t_x_key");
    h_assert_has(failed, failed.err, "23505");
    h_assert_has(failed, failed.err, "run migrate again");
    h_assert_lacks(failed, failed.err, "rollgate repair");
    cr_assert_str_eq(index_valid("t_x_key"), "false", "PostgreSQL should have left it invalid");
    cr_assert_null(row_state(2), "the failed build left a history row: %s", row_state(2));
    cr_assert_not(h_table_exists("after_u"), "ran past the failed migration");

    /* The fix is the cause's alone: no DROP INDEX, no repair. */
    h_query("DELETE FROM t a USING t b WHERE a.x = b.x AND a.ctid > b.ctid");
    struct h_result again = h_run(H_ARGS("migrate"), ENV);

    h_assert_exit(again, 0);
    h_assert_has(again, again.err, "dropping the invalid index");
    h_assert_has(again, again.err, "public.t_x_key");
    cr_assert_str_eq(index_valid("t_x_key"), "true");
    cr_assert_eq(indexes_named("t_x_key"), 1);
    cr_assert_str_eq(row_state(2), "applied");
    cr_assert(h_table_exists("after_u"));
}

Test(safeindex, an_invalid_index_of_the_name_left_beforehand_is_dropped_and_built_again)
{
    /* In a schema off the search_path: the leftover is found where the statement puts the
     * index, the table's schema. */
    h_query("CREATE SCHEMA app");
    h_query("CREATE TABLE app.t (x int)");
    h_query("INSERT INTO app.t VALUES (1), (1)");
    failed_build("CREATE UNIQUE INDEX CONCURRENTLY \"T_x\" ON app.t (x)");
    cr_assert_str_eq(index_valid("app.\"T_x\""), "false");
    h_query("DELETE FROM app.t a USING app.t b WHERE a.x = b.x AND a.ctid > b.ctid");
    h_migration(1, "unique_x",
                "-- rollgate:no-transaction\n"
                "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS \"T_x\" ON app.t (x);\n",
                NULL);

    struct h_result r = h_run(H_ARGS("migrate"), ENV);

    h_assert_exit(r, 0);
    h_assert_has(r, r.err, "dropping the invalid index");
    h_assert_has(r, r.err, "app.\\\"T_x\\\"");
    cr_assert_str_eq(index_valid("app.\"T_x\""), "true",
                     "IF NOT EXISTS kept the invalid leftover instead of building it");
    cr_assert_eq(indexes_named("T_x"), 1);
    cr_assert_str_eq(row_state(1), "applied");
}

Test(safeindex, a_valid_index_of_the_name_is_not_dropped)
{
    h_query("CREATE TABLE t (x int)");
    h_query("CREATE INDEX t_x ON t (x)");
    h_query("COMMENT ON INDEX t_x IS 'kept'");
    h_migration(
        1, "index_x",
        "-- rollgate:no-transaction\nCREATE INDEX CONCURRENTLY IF NOT EXISTS t_x ON t (x);\n",
        NULL);

    struct h_result r = h_run(H_ARGS("migrate"), ENV);

    h_assert_exit(r, 0);
    h_assert_lacks(r, r.err, "dropping the invalid index");
    cr_assert_str_eq(h_query("SELECT obj_description('t_x'::regclass, 'pg_class')"), "kept");
}

Test(safeindex, a_build_after_statements_that_cannot_run_again_stays_marked_failed)
{
    h_query("CREATE TABLE t (x int)");
    h_query("INSERT INTO t VALUES (1), (1)");
    h_migration(1, "two",
                "-- rollgate:no-transaction\nCREATE TABLE side (id int);\n"
                "CREATE UNIQUE INDEX CONCURRENTLY t_x_key ON t (x);\n",
                NULL);

    struct h_result failed = h_run(H_ARGS("migrate"), ENV);

    h_assert_exit(failed, 6);
    h_assert_has(failed, failed.err, "t_x_key");
    h_assert_has(failed, failed.err, "rollgate repair --version 1");
    cr_assert_str_eq(row_state(1), "failed");

    /* The hand fix undoes what ran before the build; the invalid index is the next run's. */
    h_query("DROP TABLE side");
    h_query("DELETE FROM t a USING t b WHERE a.x = b.x AND a.ctid > b.ctid");
    struct h_result repaired = h_run(H_ARGS("repair", "--version", "1"), ENV);
    h_assert_exit(repaired, 0);
    struct h_result r = h_run(H_ARGS("migrate"), ENV);

    h_assert_exit(r, 0);
    cr_assert_str_eq(index_valid("t_x_key"), "true");
    cr_assert_str_eq(row_state(1), "applied");
}

Test(safeindex, an_index_left_invalid_by_a_build_that_reported_success_fails_the_migration)
{
    h_query("CREATE TABLE t (x int)");
    /* What no build should do, done by an event trigger: the server says CREATE INDEX, and
     * the index is invalid. */
    h_query("CREATE FUNCTION spoil() RETURNS event_trigger LANGUAGE plpgsql AS $$ BEGIN "
            "UPDATE pg_index SET indisvalid = false WHERE indexrelid = to_regclass('t_x'); "
            "END $$");
    h_query("CREATE EVENT TRIGGER spoil ON ddl_command_end WHEN TAG IN ('CREATE INDEX') "
            "EXECUTE FUNCTION spoil()");
    h_migration(1, "index_x",
                "-- rollgate:no-transaction\nCREATE INDEX CONCURRENTLY t_x ON t (x);\n", NULL);

    struct h_result failed = h_run(H_ARGS("migrate"), ENV);

    h_assert_exit(failed, 6);
    h_assert_has(failed, failed.err, "0001_index_x.up.sql:2: index t_x is invalid after CREATE");
    cr_assert_null(row_state(1));

    h_query("DROP EVENT TRIGGER spoil");
    struct h_result again = h_run(H_ARGS("migrate"), ENV);

    h_assert_exit(again, 0);
    h_assert_has(again, again.err, "dropping the invalid index");
    cr_assert_str_eq(index_valid("t_x"), "true");
    cr_assert_str_eq(row_state(1), "applied");
}
