/* Checksums that explain themselves, on the real server: the up SQL kept with each history
 * row, an edit of comments or white space only that warns and runs on, drift shown as a
 * diff, repair --checksums [--force], rows written without stored SQL, and a history table
 * made before the column existed. */
#include <criterion/criterion.h>

#include <string.h>

#include "harness.h"

TestSuite(checksums, .init = h_setup, .fini = h_teardown);

#define ENV H_ENV(h_env_url(), h_env_dir(), "ROLLGATE_LEASE_MODE=none", "ROLLGATE_LOG_FORMAT=text")

#define V1 "CREATE TABLE t (id int);\nINSERT INTO t VALUES (1);\n"

static char *row(const char *column, long long version)
{
    return h_query(
        h_fmt("SELECT %s FROM public.rollgate_migrations WHERE version = %lld", column, version));
}

/* Version 1 applied from V1; returns its file's path. */
static char *applied_v1(void)
{
    char *up = h_migration(1, "create_t", V1, NULL);
    struct h_result r = h_run(H_ARGS("migrate"), ENV);
    h_assert_exit(r, 0);
    return up;
}

Test(checksums, the_up_sql_is_stored_with_the_row_as_it_ran)
{
    h_query("CREATE TABLE n (x int)");
    h_migration(1, "create_t", V1, NULL);
    h_migration(2, "index", "-- rollgate:no-transaction\nCREATE INDEX CONCURRENTLY n_x ON n (x);\n",
                NULL);

    struct h_result r = h_run(H_ARGS("migrate"), ENV);

    h_assert_exit(r, 0);
    cr_assert_str_eq(row("up_sql", 1), V1);
    cr_assert_str_eq(row("up_sql", 2),
                     "-- rollgate:no-transaction\nCREATE INDEX CONCURRENTLY n_x ON n (x);\n");
}

Test(checksums, a_comment_or_white_space_edit_warns_and_runs_and_repair_quiets_it)
{
    char *up = applied_v1();
    h_write_file(up, "-- the first table\nCREATE TABLE t (\n    id int\n);\n\n"
                     "INSERT INTO t VALUES (1); /* one row */\n");
    h_migration(2, "more", "CREATE TABLE more (id int);\n", NULL);

    struct h_result r = h_run(H_ARGS("migrate"), ENV);

    h_assert_exit(r, 0);
    h_assert_has(r, r.err, "changed only in comments or white space");
    h_assert_has(r, r.err, "repair --checksums");
    cr_assert(h_table_exists("more"), "the run stopped at a harmless edit");
    /* validate and wait judge it the same way. */
    struct h_result valid = h_run(H_ARGS("validate"), ENV);
    h_assert_exit(valid, 0);
    h_assert_has(valid, valid.err, "changed only in comments or white space");
    struct h_result waited = h_run(H_ARGS("wait"), ENV);
    h_assert_exit(waited, 0);

    struct h_result repaired = h_run(H_ARGS("repair", "--checksums"), ENV);
    h_assert_exit(repaired, 0);
    h_assert_has(repaired, repaired.termlog, "recorded 1 checksum");
    cr_assert_str_eq(row("checksum", 1), h_sha256_file(up));

    struct h_result quiet = h_run(H_ARGS("migrate"), ENV);
    h_assert_exit(quiet, 0);
    h_assert_lacks(quiet, quiet.err, "comments or white space");
}

Test(checksums, a_real_edit_is_drift_with_a_diff_and_repair_needs_force)
{
    char *up = applied_v1();
    char *before = row("checksum", 1);
    h_write_file(up, "CREATE TABLE t (id bigint);\nINSERT INTO t VALUES (1);\n");
    h_migration(2, "more", "CREATE TABLE more (id int);\n", NULL);

    struct h_result r = h_run(H_ARGS("migrate"), ENV);

    h_assert_exit(r, 5);
    h_assert_has(r, r.err, "checksum drift");
    h_assert_has(r, r.termlog, "its SQL changed from line 1");
    h_assert_has(r, r.err, before);
    h_assert_has(r, r.err, "@@ -1,2 +1,2 @@");
    h_assert_has(r, r.err, "-CREATE TABLE t (id int);");
    h_assert_has(r, r.err, "+CREATE TABLE t (id bigint);");
    cr_assert_not(h_table_exists("more"), "ran past drift");
    struct h_result valid = h_run(H_ARGS("validate"), ENV);
    h_assert_exit(valid, 5);
    h_assert_has(valid, valid.err, "+CREATE TABLE t (id bigint);");

    struct h_result refused = h_run(H_ARGS("repair", "--checksums"), ENV);
    h_assert_exit(refused, 5);
    h_assert_has(refused, refused.err, "--force");
    h_assert_has(refused, refused.err, "+CREATE TABLE t (id bigint);");
    cr_assert_str_eq(row("checksum", 1), before, "a refused repair changed the row");

    struct h_result forced = h_run(H_ARGS("repair", "--checksums", "--force"), ENV);
    h_assert_exit(forced, 0);
    h_assert_has(forced, forced.err, "+CREATE TABLE t (id bigint);");
    cr_assert_str_eq(row("checksum", 1), h_sha256_file(up));
    cr_assert_str_eq(row("up_sql", 1), "CREATE TABLE t (id bigint);\nINSERT INTO t VALUES (1);\n");

    struct h_result next = h_run(H_ARGS("migrate"), ENV);
    h_assert_exit(next, 0);
    cr_assert(h_table_exists("more"));
}

Test(checksums, a_row_without_stored_sql_says_so_and_only_force_records_it)
{
    char *up = applied_v1();
    h_query("UPDATE public.rollgate_migrations SET up_sql = NULL");
    h_write_file(up, "-- only a comment more\n" V1);

    struct h_result r = h_run(H_ARGS("migrate"), ENV);

    h_assert_exit(r, 5);
    h_assert_has(r, r.err, "written without the up SQL");
    h_assert_has(r, r.err, "no telling whether only comments or white space changed");

    struct h_result refused = h_run(H_ARGS("repair", "--checksums"), ENV);
    h_assert_exit(refused, 5);
    struct h_result forced = h_run(H_ARGS("repair", "--checksums", "--force"), ENV);
    h_assert_exit(forced, 0);
    cr_assert_str_eq(row("checksum", 1), h_sha256_file(up));
    struct h_result next = h_run(H_ARGS("migrate"), ENV);
    h_assert_exit(next, 0);
}

Test(checksums, a_history_table_from_before_the_column_gains_it_on_the_next_apply)
{
    char *up = applied_v1();
    h_query("ALTER TABLE public.rollgate_migrations DROP COLUMN up_sql");
    /* Drift is judged without the column too. */
    h_write_file(up, "CREATE TABLE t (id bigint);\n");
    struct h_result drift = h_run(H_ARGS("migrate"), ENV);
    h_assert_exit(drift, 5);
    h_assert_has(drift, drift.err, "written without the up SQL");

    h_write_file(up, V1);
    h_migration(2, "more", "CREATE TABLE more (id int);\n", NULL);
    struct h_result r = h_run(H_ARGS("migrate"), ENV);

    h_assert_exit(r, 0);
    cr_assert_str_eq(row("up_sql", 2), "CREATE TABLE more (id int);\n");
    cr_assert_null(row("up_sql", 1));
}

Test(checksums, checksums_and_force_are_repair_options_only)
{
    struct h_result force = h_run(H_ARGS("repair", "--force"), ENV);
    h_assert_exit(force, 2);
    h_assert_has(force, force.err, "--force applies only to repair --checksums");
    struct h_result status = h_run(H_ARGS("status", "--checksums"), ENV);
    h_assert_exit(status, 2);
    struct h_result both = h_run(H_ARGS("repair", "--checksums", "--version", "1"), ENV);
    h_assert_exit(both, 2);
}
