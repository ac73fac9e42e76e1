/* `rollgate lint` as a black box (text and JSON, allow directives, exit 4), and
 * migrations.lint in migrate and validate against a real PostgreSQL: enforce refuses before
 * any change, warn runs and logs. */
#include <criterion/criterion.h>

#include <string.h>

#include "harness.h"

TestSuite(lint, .init = h_setup, .fini = h_teardown);

#define ENV H_ENV(h_env_url(), h_env_dir())
#define ENV_LINT(mode) H_ENV(h_env_url(), h_env_dir(), "ROLLGATE_MIGRATIONS_LINT=" mode)

static long long history_rows(void)
{
    if (!h_table_exists("public.rollgate_migrations"))
        return 0;
    return h_count_rows("public.rollgate_migrations");
}

Test(lint, text_names_place_rule_severity_lock_and_safe_way_and_exits_4)
{
    h_migration(1, "users", "CREATE TABLE users (id bigint PRIMARY KEY, email text);\n", NULL);
    h_migration(2, "index", "-- users is hot\nCREATE INDEX users_email ON users (email);\n", NULL);

    struct h_result r = h_run(H_ARGS("lint"), ENV);

    h_assert_exit(r, 4);
    h_assert_has(r, r.out,
                 "0002_index.up.sql:2:1: error require-concurrent-index-creation: CREATE INDEX "
                 "takes a SHARE lock on the table");
    h_assert_has(r, r.out, "  safe: CREATE INDEX CONCURRENTLY");
    h_assert_lacks(r, r.out, "0001_users");
    h_assert_has(r, r.err, "1 lint error not allowed; the first: ");
    h_assert_has(r, r.err, "0002_index.up.sql:2:1 require-concurrent-index-creation");
}

Test(lint, clean_directory_exits_0_without_a_database)
{
    h_migration(1, "users", "CREATE TABLE users (id bigint PRIMARY KEY, created timestamptz);\n",
                NULL);
    h_migration(2, "index",
                "-- rollgate:no-transaction\n"
                "CREATE INDEX CONCURRENTLY IF NOT EXISTS users_created ON users (created);\n",
                NULL);

    /* No database URL at all: an unreachable one would make no difference. */
    struct h_result r = h_run(H_ARGS("lint"), H_ENV(h_env_dir()));

    h_assert_exit(r, 0);
    cr_assert_str_eq(r.out, "", "%s", h_describe(&r));
    h_assert_has(r, r.err, "lint: 2 files, 0 errors, 0 warnings, 0 allowed");
}

Test(lint, json_lists_every_finding_with_allowed_marked)
{
    h_migration(1, "t",
                "-- rollgate:allow=changing-column-type the table has 10 rows\n"
                "ALTER TABLE t ALTER COLUMN a TYPE bigint;\n"
                "CREATE TABLE u (a int);\n",
                NULL);

    struct h_result r = h_run(H_ARGS("lint", "--output", "json"), ENV);

    h_assert_exit(r, 0);
    cr_assert_str_eq(h_json(r.out, "{files}"), "1", "%s", h_describe(&r));
    cr_assert_str_eq(h_json(r.out, "{findings,0,rule}"), "changing-column-type");
    cr_assert_str_eq(h_json(r.out, "{findings,0,severity}"), "error");
    cr_assert_str_eq(h_json(r.out, "{findings,0,allowed}"), "true");
    cr_assert_str_eq(h_json(r.out, "{findings,0,line}"), "2");
    cr_assert_str_eq(h_json(r.out, "{findings,0,column}"), "13");
    cr_assert_not_null(strstr(h_json(r.out, "{findings,0,hazard}"), "ACCESS EXCLUSIVE"));
    cr_assert_str_eq(h_json(r.out, "{findings,1,rule}"), "prefer-bigint-over-int");
    cr_assert_str_eq(h_json(r.out, "{findings,1,allowed}"), "false");
    cr_assert_str_eq(h_json(r.out, "{findings,1,line}"), "3");
    h_assert_has(r, r.err, "lint: 1 file, 0 errors, 1 warning, 1 allowed");
}

Test(lint, unused_allow_is_a_warning_and_an_unknown_rule_is_exit_4)
{
    h_migration(1, "t",
                "-- rollgate:allow=ban-drop-column kept for 2.3\nCREATE TABLE t (a text);\n", NULL);

    struct h_result r = h_run(H_ARGS("lint"), ENV);

    h_assert_exit(r, 0);
    h_assert_has(r, r.out, "0001_t.up.sql:1:1: warning unused-allow:");

    h_migration(1, "t", "-- rollgate:allow=ban-drop-colum kept for 2.3\nCREATE TABLE t (a text);\n",
                NULL);
    r = h_run(H_ARGS("lint"), ENV);
    h_assert_exit(r, 4);
    /* stderr is JSON here: the rule's quotes are escaped. */
    h_assert_has(r, r.termlog,
                 "0001_t.up.sql:1: rollgate:allow: unknown lint rule \"ban-drop-colum\"");
}

Test(lint, post_deploy_directive_moves_a_drop_out_of_the_pre_deploy_error)
{
    h_migration(1, "drop", "ALTER TABLE t DROP COLUMN a;\n", NULL);
    struct h_result r = h_run(H_ARGS("lint"), ENV);
    h_assert_exit(r, 4);
    h_assert_has(r, r.out, "error drop-in-pre-deploy");

    h_migration(1, "drop", "-- rollgate:phase=post\nALTER TABLE t DROP COLUMN a;\n", NULL);
    r = h_run(H_ARGS("lint"), ENV);
    h_assert_exit(r, 0);
    h_assert_lacks(r, r.out, "drop-in-pre-deploy");
    h_assert_has(r, r.out, "warning ban-drop-column");
}

Test(lint, migrate_with_enforce_refuses_before_any_change)
{
    h_migration(1, "users", "CREATE TABLE users (id bigint PRIMARY KEY, email text);\n", NULL);
    struct h_result r = h_run(H_ARGS("migrate"), ENV_LINT("enforce"));
    h_assert_exit(r, 0);

    h_migration(2, "more", "CREATE TABLE more (id bigint);\n", NULL);
    h_migration(3, "index", "CREATE INDEX users_email ON users (email);\n", NULL);
    r = h_run(H_ARGS("migrate"), ENV_LINT("enforce"));

    h_assert_exit(r, 4);
    h_assert_has(r, r.err, "0003_index.up.sql:1:1: lint error require-concurrent-index-creation");
    cr_assert_eq(history_rows(), 1);
    cr_assert_not(h_table_exists("more"));
    cr_assert_eq(h_query_int("SELECT count(*) FROM pg_indexes WHERE indexname = 'users_email'"), 0);

    /* validate says the same, and only of what is pending. */
    r = h_run(H_ARGS("validate"), ENV_LINT("enforce"));
    h_assert_exit(r, 4);
    h_assert_has(r, r.err, "0003_index.up.sql:1:1: lint error require-concurrent-index-creation");
}

Test(lint, migrate_with_warn_logs_and_runs)
{
    h_migration(1, "users", "CREATE TABLE users (id bigint PRIMARY KEY, email text);\n", NULL);
    h_migration(2, "index", "CREATE INDEX users_email ON users (email);\n", NULL);

    struct h_result r = h_run(H_ARGS("migrate"), ENV);

    h_assert_exit(r, 0);
    h_assert_has(r, r.err, "0002_index.up.sql:1:1");
    h_assert_has(r, r.err, "require-concurrent-index-creation");
    cr_assert_eq(history_rows(), 2);
    cr_assert_eq(h_query_int("SELECT count(*) FROM pg_indexes WHERE indexname = 'users_email'"), 1);

    /* Nothing pending: nothing linted, nothing logged. */
    r = h_run(H_ARGS("migrate"), ENV);
    h_assert_exit(r, 0);
    h_assert_lacks(r, r.err, "require-concurrent-index-creation");
}

Test(lint, lint_off_neither_logs_nor_refuses)
{
    h_migration(1, "users", "CREATE TABLE users (id bigint PRIMARY KEY, email varchar(10));\n",
                NULL);
    struct h_result r = h_run(H_ARGS("migrate"), ENV_LINT("off"));
    h_assert_exit(r, 0);
    h_migration(2, "index", "CREATE INDEX users_email ON users (email);\n", NULL);
    r = h_run(H_ARGS("migrate"), ENV_LINT("off"));
    h_assert_exit(r, 0);
    h_assert_lacks(r, r.err, "prefer-text-field");
    h_assert_lacks(r, r.err, "require-concurrent-index-creation");
    cr_assert_eq(history_rows(), 2);
}

/* lint with a migrations directory that is not there, or a file where the directory should
 * be: exit 4 naming the path, no output on stdout. */
Test(lint, a_missing_or_wrong_directory_is_exit_4_naming_it)
{
    const char *file = h_tmp_path("a-file");
    h_write_file(file, "not a directory\n");
    const char *paths[] = {h_tmp_path("gone"), file};

    for (size_t i = 0; i < 2; i++) {
        struct h_result r = h_run(H_ARGS("lint", "--dir", paths[i]), H_ENV(h_env_dir()));
        h_assert_exit(r, 4);
        h_assert_has(r, r.termlog, paths[i]);
        cr_assert_str_eq(r.out, "", "%s", h_describe(&r));
    }
}
