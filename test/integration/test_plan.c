/* `rollgate plan` on a real PostgreSQL: what each pending statement locks, rewrites and
 * touches, read from the server itself, and a database left exactly as it was. */
#include <criterion/criterion.h>

#include <signal.h>
#include <string.h>

#include "harness.h"

TestSuite(plan, .init = h_setup, .fini = h_teardown);

#define DB_ENV H_ENV(h_env_url(), h_env_dir())

/* The schema as pg_dump sees it, without the \restrict and \unrestrict lines whose key
 * pg_dump draws anew each time (PostgreSQL 15.14 and later). */
static char *schema_dump(void)
{
    struct h_result r = h_cmd(H_ARGS("pg_dump", "--schema-only", "--no-owner", "-d", h_db_url()));
    char *kept = h_fmt("%s", r.out), *to = kept;

    h_assert_exit(r, 0);
    for (const char *line = r.out; *line;) {
        size_t len = strcspn(line, "\n") + (line[strcspn(line, "\n")] == '\n');
        if (strncmp(line, "\\restrict ", 10) != 0 && strncmp(line, "\\unrestrict ", 12) != 0) {
            memcpy(to, line, len);
            to += len;
        }
        line += len;
    }
    *to = '\0';
    cr_assert_not_null(strstr(kept, "PostgreSQL database dump complete"), "%s", kept);
    return kept;
}

/* Every history row, every column. */
static char *history_rows(void)
{
    return h_query("SELECT string_agg(concat_ws('|', kind, version, title, checksum, "
                   "coalesce(down_sql, '-'), applied_at, applied_by, duration_ms, "
                   "rollgate_version, state), E'\\n' ORDER BY kind, version, title) "
                   "FROM rollgate_migrations");
}

/* want NULL: the value is JSON null (or absent). */
static void assert_json(const struct h_result *r, const char *path, const char *want)
{
    char *got = h_json(r->out, path);
    cr_assert(want ? got && strcmp(got, want) == 0 : !got, "%s is \"%s\", expected \"%s\"\n%s",
              path, got ? got : "(null)", want ? want : "(null)", h_describe(r));
}

static void applied_orders(void)
{
    struct h_result r;

    h_migration(1, "orders",
                "CREATE TABLE orders (id int PRIMARY KEY, note text);\n"
                "INSERT INTO orders SELECT g, 'x' FROM generate_series(1, 10) g;\n",
                NULL);
    r = h_run(H_ARGS("migrate"), DB_ENV);
    h_assert_exit(r, 0);
}

Test(plan, reports_locks_rewrites_and_rows_per_statement_and_leaves_schema_and_history_as_before)
{
    struct h_result r;
    char *dump, *history;

    applied_orders();
    h_migration(2, "change",
                "ALTER TABLE orders ADD COLUMN extra text;\n"
                "CREATE INDEX orders_note ON orders (note);\n"
                "UPDATE orders SET note = 'y' WHERE id <= 3;\n"
                "ALTER TABLE orders ALTER COLUMN id TYPE bigint;\n",
                NULL);
    h_migration(3, "concurrently",
                "-- rollgate:no-transaction\n"
                "CREATE INDEX CONCURRENTLY orders_extra ON orders (extra);\n",
                NULL);
    dump = schema_dump();
    history = history_rows();

    r = h_run(H_ARGS("plan", "--output", "json"), DB_ENV);
    h_assert_exit(r, 0);
    assert_json(&r, "{schema_version}", "1");
    assert_json(&r, "{history_table}", "true");
    assert_json(&r, "{error}", NULL);
    assert_json(&r, "{migrations,0,version}", "2");
    assert_json(&r, "{migrations,0,lock_timeout_ms}", "5000");
    /* ADD COLUMN of a nullable column: AccessExclusiveLock, no rewrite. */
    assert_json(&r, "{migrations,0,statements,0,line}", "1");
    assert_json(&r, "{migrations,0,statements,0,locks,0,relation}", "public.orders");
    assert_json(&r, "{migrations,0,statements,0,locks,0,mode}", "AccessExclusiveLock");
    assert_json(&r, "{migrations,0,statements,0,rewrites}", "[]");
    assert_json(&r, "{migrations,0,statements,0,rows}", NULL);
    /* CREATE INDEX: ShareLock on the table (and the new index itself). */
    assert_json(&r, "{migrations,0,statements,1,locks,0,relation}", "public.orders");
    assert_json(&r, "{migrations,0,statements,1,locks,0,mode}", "ShareLock");
    assert_json(&r, "{migrations,0,statements,1,locks,1,relation}", "public.orders_note");
    /* UPDATE: the rows it touched. */
    assert_json(&r, "{migrations,0,statements,2,rows}", "3");
    assert_json(&r, "{migrations,0,statements,2,locks,0,mode}", "RowExclusiveLock");
    /* int -> bigint changes the storage: the table is rewritten (and its indexes rebuilt). */
    assert_json(&r, "{migrations,0,statements,3,line}", "4");
    assert_json(&r, "{migrations,0,statements,3,rewrites,0}", "public.orders");
    /* The no-transaction migration: listed, not run. */
    assert_json(&r, "{migrations,1,no_transaction}", "true");
    assert_json(&r, "{migrations,1,statements,0,line}", "2");
    assert_json(&r, "{migrations,1,statements,0,executed}", "false");
    assert_json(&r, "{migrations,1,statements,0,sql}",
                "CREATE INDEX CONCURRENTLY orders_extra ON orders (extra);");
    cr_assert_null(h_json(r.out, "{migrations,1,statements,0,locks}"), "%s", h_describe(&r));

    cr_assert_str_eq(schema_dump(), dump, "the plan changed the schema");
    cr_assert_str_eq(history_rows(), history, "the plan changed the history");
    cr_assert_eq(h_query_int("SELECT count(*) FROM orders WHERE note = 'y'"), 0);

    r = h_run(H_ARGS("plan"), DB_ENV);
    h_assert_exit(r, 0);
    h_assert_has(r, r.out,
                 "plan: schema at version 1, 2 pending: 1 tried in one transaction, rolled "
                 "back; 1 no-transaction, listed\n");
    h_assert_has(r, r.out, "line 1: ALTER TABLE orders ADD COLUMN extra text;");
    h_assert_has(r, r.out, "locks AccessExclusiveLock on public.orders\n");
    h_assert_has(r, r.out, "3 rows; locks RowExclusiveLock on public.orders");
    h_assert_has(r, r.out, "REWRITES public.orders");
    h_assert_has(r, r.out, "0003_concurrently.up.sql): no-transaction, listed, not run");
    h_assert_has(r, r.err, "nothing was changed");
    cr_assert_str_eq(schema_dump(), dump, "the plan changed the schema");
}

Test(plan, later_migrations_see_the_earlier_ones_and_a_fresh_database_stays_without_history)
{
    struct h_result r;
    char *dump = schema_dump();

    h_migration(1, "create", "CREATE TABLE items (id int);\n", NULL);
    h_migration(2, "fill", "INSERT INTO items VALUES (1), (2);\n", NULL);
    r = h_run(H_ARGS("plan", "--output", "json"), DB_ENV);
    h_assert_exit(r, 0);
    assert_json(&r, "{history_table}", "false");
    assert_json(&r, "{migrations,0,statements,0,locks,0,relation}", "public.items");
    assert_json(&r, "{migrations,1,statements,0,rows}", "2");
    /* The table an earlier migration of the plan locked is named as held. */
    assert_json(&r, "{migrations,1,locks_held_before,0,relation}", "public.items");
    cr_assert_not(h_table_exists("rollgate_migrations"), "plan created the history table");
    cr_assert_not(h_table_exists("items"));
    cr_assert_str_eq(schema_dump(), dump);
}

Test(plan, a_target_limits_what_is_tried)
{
    struct h_result r;

    h_migration(1, "a", "CREATE TABLE a (id int);\n", NULL);
    h_migration(2, "b", "CREATE TABLE b (id int);\n", NULL);
    r = h_run(H_ARGS("plan", "--target", "1", "--output", "json"), DB_ENV);
    h_assert_exit(r, 0);
    assert_json(&r, "{migrations,0,version}", "1");
    cr_assert_null(h_json(r.out, "{migrations,1}"), "%s", h_describe(&r));
}

Test(plan, a_failing_statement_exits_6_naming_file_line_and_sqlstate_and_nothing_is_kept)
{
    struct h_result r;
    char *up;

    applied_orders();
    up = h_migration(2, "bad",
                     "CREATE TABLE kept_not (id int);\n"
                     "INSERT INTO nowhere VALUES (1);\n",
                     NULL);
    r = h_run(H_ARGS("plan", "--output", "json"), DB_ENV);
    h_assert_exit(r, 6);
    h_assert_has(r, r.err, h_fmt("%s:2:13: ERROR 42P01", up));
    assert_json(&r, "{migrations,0,statements,1,sqlstate}", "42P01");
    assert_json(&r, "{migrations,0,statements,1,line}", "2");
    cr_assert_not_null(strstr(h_json(r.out, "{error}"), "42P01"), "%s", h_describe(&r));
    cr_assert_not(h_table_exists("kept_not"));
    cr_assert_eq(h_query_int("SELECT count(*) FROM rollgate_migrations"), 1);

    r = h_run(H_ARGS("plan"), DB_ENV);
    h_assert_exit(r, 6);
    h_assert_has(r, r.out, "line 2: INSERT INTO nowhere VALUES (1);");
    h_assert_has(r, r.out, "FAILED: ");
}

Test(plan, a_lock_held_by_another_session_ends_the_plan_by_lock_timeout_with_exit_12)
{
    struct h_result r;
    struct h_session *holder;

    applied_orders();
    h_migration(2, "alter", "ALTER TABLE orders ADD COLUMN extra text;\n", NULL);
    holder = h_session_open(h_db_url());
    h_session_query(holder, "BEGIN");
    h_session_query(holder, "SELECT count(*) FROM orders");
    r = h_run(H_ARGS("plan"),
              H_ENV(h_env_url(), h_env_dir(), "ROLLGATE_DATABASE_LOCK_TIMEOUT=300ms"));
    h_assert_exit(r, 12);
    h_assert_has(r, r.err, "ERROR 55P03");
    h_assert_has(r, r.err, "lock_timeout 300ms ran out: another session holds a lock");
    h_session_close(holder);
    cr_assert_eq(h_query_int("SELECT count(*) FROM information_schema.columns "
                             "WHERE table_name = 'orders' AND column_name = 'extra'"),
                 0);
}

Test(plan, statement_timeout_ends_a_long_statement)
{
    struct h_result r;

    h_migration(1, "slow", "CREATE TABLE s (id int);\nSELECT pg_sleep(60);\n", NULL);
    r = h_run(H_ARGS("plan"),
              H_ENV(h_env_url(), h_env_dir(), "ROLLGATE_DATABASE_STATEMENT_TIMEOUT=300ms"));
    h_assert_exit(r, 6);
    h_assert_has(r, r.err, "ERROR 57014");
    cr_assert_not(h_table_exists("s"));
}

Test(plan, sigterm_mid_statement_rolls_the_plan_back)
{
    struct h_proc *p;
    struct h_result r;

    h_migration(1, "slow", "CREATE TABLE s (id int);\nSELECT pg_sleep(60);\n", NULL);
    p = h_start(H_ARGS("plan"), DB_ENV);
    cr_assert(h_wait_until("SELECT EXISTS (SELECT FROM pg_stat_activity WHERE query = 'SELECT "
                           "pg_sleep(60);')",
                           p, 60000));
    cr_assert_eq(kill(h_proc_pid(p), SIGTERM), 0);
    r = h_wait(p);
    h_assert_exit(r, 128 + SIGTERM);
    cr_assert(h_wait_until("SELECT NOT EXISTS (SELECT FROM pg_stat_activity WHERE query = 'SELECT "
                           "pg_sleep(60);' AND state = 'active')",
                           NULL, 60000));
    cr_assert_not(h_table_exists("s"));
}

Test(plan, transaction_control_in_a_file_is_refused_before_anything_runs)
{
    struct h_result r;

    h_migration(1, "commits", "CREATE TABLE c (id int);\nCOMMIT;\nCREATE TABLE d (id int);\n",
                NULL);
    r = h_run(H_ARGS("plan"), DB_ENV);
    h_assert_exit(r, 4);
    h_assert_has(r, r.err, "0001_commits.up.sql:2: COMMIT");
    cr_assert_not(h_table_exists("c"));
    cr_assert_eq(r.out_len, 0, "%s", h_describe(&r));
}

Test(plan, a_table_renamed_by_the_plan_is_named_as_it_is_now)
{
    struct h_result r;

    applied_orders();
    h_migration(2, "rename", "ALTER TABLE orders RENAME TO purchases;\n", NULL);
    h_migration(3, "alter", "ALTER TABLE purchases ADD COLUMN x int;\n", NULL);
    r = h_run(H_ARGS("plan", "--output", "json"), DB_ENV);
    h_assert_exit(r, 0);
    /* A lock is named as its relation is after the statement. */
    assert_json(&r, "{migrations,0,statements,0,locks,0,relation}", "public.purchases");
    assert_json(&r, "{migrations,1,locks_held_before,0,relation}", "public.purchases");
    cr_assert(h_table_exists("orders"));
    cr_assert_not(h_table_exists("purchases"));
}

Test(plan, starts_from_golang_migrates_version_without_adopting_it)
{
    struct h_result r;
    char *dump;

    h_query("CREATE TABLE schema_migrations (version bigint PRIMARY KEY, dirty boolean NOT NULL)");
    h_query("INSERT INTO schema_migrations VALUES (1, false)");
    h_query("CREATE TABLE orders (id int)");
    h_migration(1, "orders", "CREATE TABLE orders (id int);\n", NULL);
    h_migration(2, "alter", "ALTER TABLE orders ADD COLUMN note text;\n", NULL);
    dump = schema_dump();
    r = h_run(H_ARGS("plan", "--output", "json"), DB_ENV);
    h_assert_exit(r, 0);
    assert_json(&r, "{schema_version}", "1");
    assert_json(&r, "{migrations,0,version}", "2");
    cr_assert_null(h_json(r.out, "{migrations,1}"), "%s", h_describe(&r));
    cr_assert_not(h_table_exists("rollgate_migrations"), "plan adopted the history");
    cr_assert_str_eq(schema_dump(), dump);
}

/* Lint findings stand beside what each statement did: the hazard the rule names next to
 * the lock the statement really took. */
Test(plan, reports_each_statements_lint_findings_beside_its_locks)
{
    struct h_result r;

    applied_orders();
    h_migration(2, "index",
                "ALTER TABLE orders ADD COLUMN extra text;\n"
                "CREATE INDEX orders_note ON orders (note);\n",
                NULL);
    h_migration(3, "concurrently",
                "-- rollgate:no-transaction\n"
                "-- rollgate:allow=ban-drop-table nothing in this file drops a table\n"
                "CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_extra ON orders (extra);\n",
                NULL);
    r = h_run(H_ARGS("plan", "--output", "json"), DB_ENV);
    h_assert_exit(r, 0);
    assert_json(&r, "{migrations,0,statements,0,findings}", NULL);
    assert_json(&r, "{migrations,0,statements,1,locks,0,mode}", "ShareLock");
    assert_json(&r, "{migrations,0,statements,1,findings,0,rule}",
                "require-concurrent-index-creation");
    assert_json(&r, "{migrations,0,statements,1,findings,0,line}", "2");
    assert_json(&r, "{migrations,0,statements,1,findings,0,severity}", "error");
    assert_json(&r, "{migrations,0,statements,1,findings,0,allowed}", "false");
    assert_json(&r, "{migrations,1,findings,0,rule}", "unused-allow");
    assert_json(&r, "{migrations,1,findings,0,line}", "2");

    r = h_run(H_ARGS("plan"), DB_ENV);
    h_assert_exit(r, 0);
    h_assert_has(r, r.out, "0002_index.up.sql:2:1: error require-concurrent-index-creation");
}

/* plan with the database down: connectRetry runs out, exit 7 naming the server, and the
 * password in the URL is never printed. */
Test(plan, a_database_that_is_down_ends_with_exit_7_without_the_password)
{
    h_migration(1, "orders", "CREATE TABLE orders (id int);\n", NULL);
    char *url = h_fmt("postgresql://rollgate:pl4n-s3cret@127.0.0.1:%d/x", h_free_port());

    struct h_result r =
        h_run(H_ARGS("plan"), H_ENV(h_env_dir(), h_fmt("ROLLGATE_DATABASE_URL=%s", url),
                                    "ROLLGATE_DATABASE_CONNECT_RETRY=2s"));
    h_assert_exit(r, 7);
    h_assert_has(r, r.termlog, "could not connect to the database");
    h_assert_has(r, r.termlog, "127.0.0.1");
    h_assert_lacks(r, r.err, "pl4n-s3cret");
    h_assert_lacks(r, r.out, "pl4n-s3cret");
    h_assert_lacks(r, r.termlog, "pl4n-s3cret");
}

/* plan with a migrations directory that is not there and the database down: the files are
 * read while the run connects, and their error wins at once (exit 4 naming the directory),
 * cutting the connection's retries short instead of waiting out connectRetry. */
Test(plan, a_missing_directory_is_exit_4_naming_it_even_with_the_database_down)
{
    struct h_result r = h_run(
        H_ARGS("plan", "--dir", h_tmp_path("gone")),
        H_ENV(h_fmt("ROLLGATE_DATABASE_URL=postgresql://rollgate@127.0.0.1:%d/x", h_free_port()),
              "ROLLGATE_DATABASE_CONNECT_RETRY=1h"));
    h_assert_exit(r, 4);
    h_assert_has(r, r.termlog, h_tmp_path("gone"));
    h_assert_has(r, r.termlog, "cannot open migrations directory");
    h_assert_lacks(r, r.termlog, "could not connect");
}
