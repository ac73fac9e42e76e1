/* Migration files as PostgreSQL's parser reads them, through the binary: what is refused
 * before anything runs (exit 4, naming the file), and what runs as psql would run it. */
#include <criterion/criterion.h>

#include <string.h>

#include "harness.h"

TestSuite(files, .init = h_setup, .fini = h_teardown);

#define ENV H_ENV(h_env_url(), h_env_dir())

static long long history_rows(void)
{
    if (!h_table_exists("public.rollgate_migrations"))
        return 0;
    return h_count_rows("public.rollgate_migrations");
}

Test(files, copy_to_stdout_is_refused_before_anything_runs)
{
    /* It used to run, commit with its history row, and then exit 6 "rolled back". */
    h_migration(1, "fine", "CREATE TABLE fine (id int);\n", NULL);
    h_migration(2, "copy", "CREATE TABLE c (id int);\nCOPY (SELECT 1) TO STDOUT;\n", NULL);

    struct h_result r = h_run(H_ARGS("migrate"), ENV);

    h_assert_exit(r, 4);
    h_assert_has(r, r.err, "0002_copy.up.sql:2: COPY ... TO STDOUT");
    cr_assert_not(h_table_exists("fine"));
    cr_assert_not(h_table_exists("c"));
    cr_assert_eq(history_rows(), 0);
}

Test(files, copy_from_stdin_is_refused_in_a_no_transaction_file_too)
{
    h_migration(1, "load",
                "-- rollgate:no-transaction\nCREATE TABLE l (id int);\n\n"
                "COPY l FROM STDIN;\n1\n\\.\n",
                NULL);

    struct h_result r = h_run(H_ARGS("validate"), ENV);

    h_assert_exit(r, 4);
    h_assert_has(r, r.err, "0001_load.up.sql:4: COPY ... FROM STDIN");
}

Test(files, vacuum_is_refused_in_a_transaction_and_runs_without_one)
{
    h_migration(1, "t", "CREATE TABLE t (id int);\nVACUUM t;\n", NULL);

    struct h_result r = h_run(H_ARGS("migrate"), ENV);

    h_assert_exit(r, 4);
    h_assert_has(r, r.err, "0001_t.up.sql:2: VACUUM cannot run inside a transaction");
    cr_assert_not(h_table_exists("t"));

    h_migration(1, "t", "CREATE TABLE t (id int);\n", NULL);
    h_migration(2, "vacuum", "-- rollgate:no-transaction\nVACUUM (ANALYZE) t;\n", NULL);
    r = h_run(H_ARGS("migrate"), ENV);
    h_assert_exit(r, 0);
    cr_assert_eq(history_rows(), 2);
}

Test(files, create_rule_with_two_actions_runs_whole_in_a_no_transaction_file)
{
    /* The old scanner sent "... DO ALSO (INSERT INTO a VALUES (1)" on its own. */
    h_migration(1, "tables",
                "CREATE TABLE t (id int);\nCREATE TABLE a (id int);\n"
                "CREATE TABLE b (id int);\n",
                NULL);
    h_migration(2, "rule",
                "-- rollgate:no-transaction\n"
                "CREATE RULE r AS ON INSERT TO t DO ALSO (INSERT INTO a VALUES (1); "
                "INSERT INTO b VALUES (2));\n"
                "CREATE INDEX CONCURRENTLY t_id ON t (id);\n",
                NULL);

    struct h_result r = h_run(H_ARGS("migrate"), ENV);

    h_assert_exit(r, 0);
    h_query("INSERT INTO t VALUES (7)");
    cr_assert_eq(h_count_rows("a"), 1);
    cr_assert_eq(h_count_rows("b"), 1);
    cr_assert(h_table_exists("t_id"));
}

Test(files, begin_atomic_bodies_and_begin_atomic_names_do_not_fool_the_commit_guard)
{
    const char *body = "CREATE TABLE begin (atomic int);\n"
                       "SELECT begin atomic FROM begin;\n"
                       "CREATE FUNCTION f() RETURNS int LANGUAGE sql\n"
                       "BEGIN ATOMIC\n"
                       "  SELECT CASE WHEN true THEN 1 END;\n"
                       "  SELECT count(atomic)::int FROM begin;\n"
                       "END;\n";

    h_migration(1, "sneaky", h_fmt("%sCOMMIT;\nCREATE TABLE late (id int);\n", body), NULL);
    struct h_result r = h_run(H_ARGS("migrate"), ENV);
    h_assert_exit(r, 4);
    h_assert_has(r, r.err, "0001_sneaky.up.sql:8: COMMIT");
    cr_assert_not(h_table_exists("begin"));

    h_migration(1, "sneaky", h_fmt("BEGIN;\n%sCOMMIT;\n", body), NULL);
    r = h_run(H_ARGS("migrate"), ENV);
    h_assert_exit(r, 0);
    cr_assert_str_eq(h_query("SELECT f()"), "0");
    cr_assert_eq(history_rows(), 1);
}

Test(files, a_byte_order_mark_behaves_the_same_in_validate_and_migrate)
{
    /* validate passed and migrate failed with exit 6 before: the BOM was sent. */
    char *path = h_migration(1, "bom",
                             "\xEF\xBB\xBF"
                             "CREATE TABLE bom (id int);\n",
                             NULL);

    struct h_result v = h_run(H_ARGS("validate"), ENV);
    h_assert_exit(v, 0);
    struct h_result r = h_run(H_ARGS("migrate"), ENV);
    h_assert_exit(r, 0);
    cr_assert(h_table_exists("bom"));
    /* The checksum is still of the file's bytes, BOM included. */
    cr_assert_str_eq(h_query("SELECT checksum FROM public.rollgate_migrations"),
                     h_sha256_file(path));
    v = h_run(H_ARGS("validate"), ENV);
    h_assert_exit(v, 0);
}

Test(files, newer_syntax_is_left_for_the_server_to_judge)
{
    /* PostgreSQL 16's numeric literal: not refused at load (exit 4) but sent, and the
     * PostgreSQL 15 test server is the one that says no (exit 6, rolled back). */
    h_migration(1, "newer", "CREATE TABLE n (id int);\nINSERT INTO n VALUES (1_000);\n", NULL);

    struct h_result v = h_run(H_ARGS("validate"), ENV);
    h_assert_exit(v, 0);
    struct h_result r = h_run(H_ARGS("migrate"), ENV);
    h_assert_exit(r, 6);
    h_assert_has(r, r.err, "0001_newer.up.sql:2:");
    cr_assert_not(h_table_exists("n"));
}

Test(files, a_migration_of_only_comments_is_refused_naming_it)
{
    h_migration(1, "empty", "-- TODO: write this\n\n/* later */\n", NULL);

    struct h_result r = h_run(H_ARGS("migrate"), ENV);

    h_assert_exit(r, 4);
    h_assert_has(r, r.err, "0001_empty.up.sql: holds no SQL statement");
    cr_assert_eq(history_rows(), 0);
}

Test(files, sql_that_is_not_utf8_is_refused_at_load_naming_file_and_line)
{
    /* A Latin-1 down file was stored in the history as NULL before. */
    h_migration(1, "latin1", "CREATE TABLE l (name text);\n",
                "DELETE FROM l WHERE name = 'caf\xE9';\nDROP TABLE l;\n");

    struct h_result r = h_run(H_ARGS("migrate"), ENV);

    h_assert_exit(r, 4);
    h_assert_has(r, r.err, "0001_latin1.down.sql:1: not valid UTF-8");
    cr_assert_not(h_table_exists("l"));
    cr_assert_eq(history_rows(), 0);
}

Test(files, near_miss_names_fail_validate_and_are_warned_by_migrate)
{
    h_migration(1, "fine", "CREATE TABLE fine (id int);\n", NULL);
    h_write_file(h_mig_path("0002_add.UP.SQL"), "CREATE TABLE upper (id int);\n");
    h_write_file(h_mig_path("0003_add.up.sq"), "CREATE TABLE short (id int);\n");

    struct h_result v = h_run(H_ARGS("validate"), ENV);
    h_assert_exit(v, 4);
    h_assert_has(v, v.err, h_fmt("%s: not loaded", h_mig_path("0002_add.UP.SQL")));

    struct h_result r = h_run(H_ARGS("migrate"), ENV);
    h_assert_exit(r, 0);
    cr_assert(h_table_exists("fine"));
    cr_assert_not(h_table_exists("upper"));
    /* One warning per file. */
    const char *w1 = strstr(r.err, "0002_add.UP.SQL"), *w2 = strstr(r.err, "0003_add.up.sq");
    cr_assert(w1 && !strstr(w1 + 1, "0002_add.UP.SQL"), "%s", h_describe(&r));
    cr_assert(w2 && !strstr(w2 + 1, "0003_add.up.sq"), "%s", h_describe(&r));
    h_assert_has(r, r.err, "file not loaded");
}

Test(files, a_refused_down_file_stops_validate_and_its_rollback_but_not_a_start)
{
    /* A start reads the up files' checksums only (README "What a start reads"): a down file
     * no run would take must not stop the pods, only what reads it. */
    h_migration(1, "a", "CREATE TABLE a (id int);\n", "DROP TABLE a;\n");
    h_migration(2, "b", "CREATE TABLE b (id int);\n", "DROP TABLE b;\n");
    struct h_result up = h_run(H_ARGS("migrate"), ENV);
    h_assert_exit(up, 0);
    h_write_file(h_mig_path("0001_a.down.sql"), "DROP TABLE a;\nCOPY (SELECT 1) TO STDOUT;\n");

    struct h_result noop = h_run(H_ARGS("migrate"), ENV);
    h_assert_exit(noop, 0);
    h_assert_has(noop, noop.err, "no migration to apply");

    struct h_result v = h_run(H_ARGS("validate"), ENV);
    h_assert_exit(v, 4);
    h_assert_has(v, v.err, "0001_a.down.sql:2: COPY ... TO STDOUT");

    struct h_result down = h_run(H_ARGS("migrate", "--target", "0"), ENV);
    h_assert_exit(down, 4);
    h_assert_has(down, down.err, "0001_a.down.sql:2: COPY ... TO STDOUT");
    /* Refused before anything ran: version 2's rollback did not run either. */
    cr_assert(h_table_exists("a"));
    cr_assert(h_table_exists("b"));
    cr_assert_eq(history_rows(), 2);

    /* A rollback that stops above it does not read it. */
    struct h_result above = h_run(H_ARGS("migrate", "--target", "1"), ENV);
    h_assert_exit(above, 0);
    cr_assert(h_table_exists("a"));
    cr_assert_not(h_table_exists("b"));
}
