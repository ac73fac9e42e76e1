/* The PostgreSQL store (pkg/pg) driven directly against the real server, for what the
 * files' checks keep from ever reaching it through the binary: SQL that asks rollgate
 * for COPY data, and text libpq cannot quote. Its last line of defence must still tell
 * the truth about what the database did. */
#include <criterion/criterion.h>
#include <libpq-fe.h>

#include <stdio.h>
#include <string.h>

#include "harness.h"
#include "log/log.h"
#include "pg/pg.h"

static struct rg_pg *pg;
static struct rg_store store;
static FILE *logs;

static void setup(void)
{
    struct rg_err err = {0};
    struct rg_pg_opts o = {
        .url = NULL,
        .schema = "public",
        .connect_timeout_ms = 10000,
        .wait_timeout_ms = 1000,
        .identity = "store-test",
    };

    h_setup();
    o.url = h_db_url();
    logs = fopen(h_tmp_path("log"), "w+");
    cr_assert_not_null(logs);
    rg_log_setup(RG_LOG_FORMAT_TEXT, RG_LOG_WARN, logs);
    pg = rg_pg_new(&o);
    cr_assert_eq(rg_pg_connect(pg, &err), 0, "%s", err.msg);
    rg_pg_store(pg, &store);
    cr_assert_eq(store.ensure_history(store.ctx, &err), 0, "%s", err.msg);
}

static void teardown(void)
{
    rg_pg_free(pg);
    pg = NULL;
    if (logs)
        fclose(logs);
    logs = NULL;
    h_teardown();
}

TestSuite(store, .init = setup, .fini = teardown);

static struct rg_step step(const char *sql, bool no_transaction)
{
    struct rg_step s = {
        .action = RG_ACT_APPLY,
        .kind = RG_KIND_SCHEMA,
        .version = 1,
        .title = "copy",
        .path = "0001_copy.up.sql",
        .sql = sql,
        .checksum = "c0ffee",
        .applied_by = "store-test",
        .durable = true,
    };
    static const struct rg_directives none, no_tx = {.no_transaction = true};

    s.directives = no_transaction ? &no_tx : &none;
    return s;
}

static int run(const struct rg_step *s, enum rg_apply_outcome *outcome, struct rg_err *err)
{
    int64_t ms = 0;
    return store.run(store.ctx, s, outcome, &ms, err);
}

static char *logged(void)
{
    fflush(logs);
    return h_read_file(h_tmp_path("log"));
}

static long long rows(void)
{
    return h_count_rows("public.rollgate_migrations");
}

Test(store, copy_from_stdin_is_refused_by_the_server_and_rolled_back)
{
    struct rg_step s = step("CREATE TABLE c (x int);\nCOPY c FROM STDIN;\n", false);
    enum rg_apply_outcome outcome;
    struct rg_err err = {0};

    cr_assert_eq(run(&s, &outcome, &err), -1);
    cr_assert_eq(err.code, RG_EMIGRATION, "%d: %s", err.code, err.msg);
    cr_assert(strstr(err.msg, "COPY FROM STDIN is not supported in a migration"), "%s", err.msg);
    cr_assert(strstr(err.msg, "rolled back"), "%s", err.msg);
    cr_assert_not(h_table_exists("c"), "the failed migration was not rolled back");
    cr_assert_eq(rows(), 0);
}

Test(store, copy_to_stdout_that_committed_is_reported_applied_not_rolled_back)
{
    struct rg_step s = step("CREATE TABLE c (x int);\nCOPY (SELECT 1) TO STDOUT;\n", false);
    enum rg_apply_outcome outcome;
    struct rg_err err = {0};

    /* The server runs on to the COMMIT without waiting for the client: what the store
     * reports must be what the database holds. */
    cr_assert_eq(run(&s, &outcome, &err), 0, "%s", err.msg);
    cr_assert_eq(outcome, RG_APPLY_DONE);
    cr_assert(h_table_exists("c"));
    cr_assert_eq(rows(), 1);
    cr_assert(strstr(logged(), "COPY ... TO STDOUT is not supported in a migration"), "%s",
              logged());
}

Test(store, copy_from_stdin_without_a_transaction_marks_the_migration_failed)
{
    struct rg_step s = step("CREATE TABLE c (x int);\nCOPY c FROM STDIN;\n", true);
    enum rg_apply_outcome outcome;
    struct rg_err err = {0};

    cr_assert_eq(run(&s, &outcome, &err), -1);
    cr_assert_eq(err.code, RG_EMIGRATION, "%d: %s", err.code, err.msg);
    cr_assert(strstr(err.msg, "COPY FROM STDIN is not supported in a migration"), "%s", err.msg);
    cr_assert(strstr(err.msg, "marked failed"), "%s", err.msg);
    cr_assert(strstr(err.msg, "`rollgate repair --version 1`"), "%s", err.msg);
    cr_assert_str_eq(h_query("SELECT state FROM public.rollgate_migrations"), "failed");
}

Test(store, a_down_migration_libpq_cannot_quote_stops_the_step_instead_of_storing_null)
{
    struct rg_step s = step("CREATE TABLE d (x int);\n", false);
    enum rg_apply_outcome outcome;
    struct rg_err err = {0};

    s.down_sql = "DROP TABLE d; -- \xff\xfe\n";
    cr_assert_eq(run(&s, &outcome, &err), -1);
    cr_assert_eq(err.code, RG_EFILES, "%d: %s", err.code, err.msg);
    cr_assert(strstr(err.msg, "0001_copy.up.sql: its down migration"), "%s", err.msg);
    cr_assert_not(h_table_exists("d"));
    cr_assert_eq(rows(), 0);
}

Test(store, an_identity_libpq_cannot_quote_is_a_configuration_error)
{
    struct rg_step s = step("CREATE TABLE d (x int);\n", false);
    enum rg_apply_outcome outcome;
    struct rg_err err = {0};

    s.applied_by = "pod-\xc3";
    cr_assert_eq(run(&s, &outcome, &err), -1);
    cr_assert_eq(err.code, RG_ECONFIG, "%d: %s", err.code, err.msg);
    cr_assert(strstr(err.msg, "lease.identity"), "%s", err.msg);
    cr_assert_not(h_table_exists("d"));
}

Test(store, a_step_that_may_not_wait_is_busy_while_another_session_holds_the_fence)
{
    struct rg_err err = {0};
    enum rg_apply_outcome outcome = RG_APPLY_DONE;
    /* The first step writes down the fence's key as the server saw it taken. */
    struct rg_step learn = step("CREATE TABLE fence_key AS SELECT (classid::bigint << 32 | "
                                "objid::bigint) AS k FROM pg_locks WHERE locktype = 'advisory' "
                                "AND pid = pg_backend_pid();",
                                false);
    struct rg_step second = step("CREATE TABLE second_ran (id int);", false);
    PGconn *holder = PQconnectdb(h_db_url());
    PGresult *res;

    cr_assert_eq(run(&learn, &outcome, &err), 0, "%s", err.msg);
    cr_assert_eq(outcome, RG_APPLY_DONE);
    cr_assert_eq(PQstatus(holder), CONNECTION_OK, "%s", PQerrorMessage(holder));
    res = PQexec(holder, h_fmt("BEGIN; SELECT pg_advisory_xact_lock(%s)",
                               h_query("SELECT k FROM fence_key")));
    cr_assert_eq(PQresultStatus(res), PGRES_TUPLES_OK, "%s", PQerrorMessage(holder));
    PQclear(res);

    second.version = 2;
    second.try_fence = true;
    cr_assert_eq(run(&second, &outcome, &err), 0, "%s", err.msg);
    cr_assert_eq(outcome, RG_APPLY_BUSY);
    cr_assert_not(h_table_exists("second_ran"));
    cr_assert_eq(h_query_int("SELECT count(*) FROM public.rollgate_migrations WHERE version = 2"),
                 0);
    /* Nothing left open: the store's session is idle, not idle in a transaction. */
    cr_assert_eq(h_query_int(h_fmt("SELECT count(*) FROM pg_stat_activity WHERE datname = "
                                   "current_database() AND state LIKE 'idle in transaction%%' "
                                   "AND pid <> %d",
                                   PQbackendPID(holder))),
                 0);

    res = PQexec(holder, "COMMIT");
    PQclear(res);
    PQfinish(holder);
    cr_assert_eq(run(&second, &outcome, &err), 0, "%s", err.msg);
    cr_assert_eq(outcome, RG_APPLY_DONE);
    cr_assert(h_table_exists("second_ran"));
}
