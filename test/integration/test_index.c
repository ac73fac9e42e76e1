/* The checksum index (rollgate.sum, `rollgate sum`) through the binary: a run trusts an
 * entry only while its file keeps the size and modification time recorded with it, reads
 * every other file, and validate checks the index against the files' bytes. */
#include <criterion/criterion.h>

#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"

TestSuite(index, .init = h_setup, .fini = h_teardown);

#define ENV H_ENV(h_env_url(), h_env_dir())

/* Three applied migrations and their index. */
/* Rewrites path with content of the same length and puts its times back, as a copy that
 * keeps times would leave a file edited after `rollgate sum`. */
static void rewrite_keeping_size_and_time(const char *path, const char *content)
{
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    cr_assert_eq(strlen(content), (size_t)st.st_size);
    h_write_file(path, content);
    struct timespec times[2] = {st.st_atim, st.st_mtim};
    cr_assert_eq(utimensat(AT_FDCWD, path, times, 0), 0);
}

Test(index, sum_writes_one_line_per_up_file_under_its_checksum_line)
{
    h_applied_and_summed();
    char *text = h_read_file(h_mig_path("rollgate.sum"));
    cr_assert_eq(strncmp(text, "rollgate-sum 3 ", 15), 0, "%s", text);
    /* The second line sums the up files as the history's digest does (rg_source_digest). */
    h_write_file(h_tmp_path("digest"),
                 h_fmt("1 %s\n2 %s\n3 %s\n", h_sha256_file(h_mig_path("0001_a.up.sql")),
                       h_sha256_file(h_mig_path("0002_b.up.sql")),
                       h_sha256_file(h_mig_path("0003_c.up.sql"))));
    cr_assert(strstr(text, h_fmt("\ndigest 3 3 %s\n", h_sha256_file(h_tmp_path("digest")))), "%s",
              text);
    cr_assert(strstr(text, " 0001_a.up.sql\n") && strstr(text, " 0003_c.up.sql\n"), "%s", text);
    /* Down files are named, not summed: a start that trusts the index needs their names. */
    cr_assert(strstr(text, "\n+ 0001_a.down.sql\n") != NULL, "%s", text);
    cr_assert(strstr(text, "\ndir ") != NULL, "%s", text);
    char *sum = h_sha256_file(h_mig_path("0002_b.up.sql"));
    cr_assert(strstr(text, h_fmt("%s 25 ", sum)) != NULL, "%s", text);

    struct h_result r = h_run(H_ARGS("validate"), ENV);
    h_assert_exit(r, 0);
    r = h_run(H_ARGS("migrate"), ENV);
    h_assert_exit(r, 0);
    h_assert_has(r, r.termlog, "no migration to apply, schema at version 3");
}

/* As the pod sees files that came through an image layer (whole seconds), while the index
 * was written where the image was built. */
Test(index, files_whose_times_lost_their_fraction_still_match_the_index)
{
    h_applied_and_summed();
    for (int v = 1; v <= 3; v++) {
        char *path = h_mig_path(h_fmt("%04d_%c.up.sql", v, 'a' + v - 1));
        struct stat st;
        cr_assert_eq(stat(path, &st), 0);
        struct timespec times[2] = {{st.st_mtim.tv_sec, 0}, {st.st_mtim.tv_sec, 0}};
        cr_assert_eq(utimensat(AT_FDCWD, path, times, 0), 0);
    }
    h_write_file(h_mig_path("0003_c.up.sql"), "CREATE TABLE c (id bigint); -- edited\n");

    struct h_result r = h_run(H_ARGS("migrate"), ENV);
    h_assert_exit(r, 5);
    h_assert_has(r, r.err, "\"read\":1,\"from_index\":2");
    h_assert_has(r, r.err, "0003_c.up.sql: checksum drift: version 3");
}

Test(index, a_file_edited_after_sum_is_read_and_its_drift_found)
{
    h_applied_and_summed();
    h_write_file(h_mig_path("0002_b.up.sql"), "CREATE TABLE b (id bigint);\n");

    struct h_result r = h_run(H_ARGS("migrate"), ENV);
    h_assert_exit(r, 5);
    h_assert_has(r, r.err, "0002_b.up.sql: checksum drift: version 2");
    h_assert_has(r, r.err, "checksum index out of date");
    h_assert_has(r, r.err, "\"read\":1,\"from_index\":2");

    r = h_run(H_ARGS("validate"), ENV);
    h_assert_exit(r, 4);
    h_assert_has(r, r.err, "0002_b.up.sql: the file does not match");
}

/* The trade-off the index makes (README "Performance"): a file rewritten with the same
 * size and its time put back is trusted by a run; validate reads it and refuses it. */
Test(index, a_file_changed_keeping_size_and_time_is_found_by_validate)
{
    h_applied_and_summed();
    rewrite_keeping_size_and_time(h_mig_path("0002_b.up.sql"), "CREATE TABLE x (id int);\n");

    struct h_result r = h_run(H_ARGS("migrate"), ENV);
    h_assert_exit(r, 0);
    r = h_run(H_ARGS("validate"), ENV);
    h_assert_exit(r, 4);
    h_assert_has(r, r.err, "0002_b.up.sql: the file does not match rollgate.sum");
}

Test(index, without_the_index_the_same_change_is_drift)
{
    h_applied_and_summed();
    cr_assert_eq(unlink(h_mig_path("rollgate.sum")), 0);
    rewrite_keeping_size_and_time(h_mig_path("0002_b.up.sql"), "CREATE TABLE x (id int);\n");

    struct h_result r = h_run(H_ARGS("migrate"), ENV);
    h_assert_exit(r, 5);
    h_assert_has(r, r.err, "0002_b.up.sql: checksum drift: version 2");
    r = h_run(H_ARGS("validate"), ENV);
    h_assert_exit(r, 5);
}

Test(index, a_pending_file_that_disagrees_with_the_index_is_not_run)
{
    h_applied_and_summed();
    h_migration(4, "d", "CREATE TABLE d (id int);\n", NULL);
    struct h_result r = h_run(H_ARGS("sum"), H_ENV(h_env_dir()));
    h_assert_exit(r, 0);
    rewrite_keeping_size_and_time(h_mig_path("0004_d.up.sql"), "CREATE TABLE e (id int);\n");

    r = h_run(H_ARGS("migrate"), ENV);
    h_assert_exit(r, 4);
    h_assert_has(r, r.err, "0004_d.up.sql: the file does not match rollgate.sum");
    cr_assert_not(h_table_exists("d"));
    cr_assert_not(h_table_exists("e"));
    cr_assert_eq(h_query_int("SELECT count(*) FROM rollgate_migrations"), 3);
}

Test(index, a_file_added_after_sum_is_read_and_applied_and_validate_wants_a_new_index)
{
    h_applied_and_summed();
    h_migration(4, "d", "CREATE TABLE d (id int);\n", NULL);

    struct h_result r = h_run(H_ARGS("migrate"), ENV);
    h_assert_exit(r, 0);
    cr_assert(h_table_exists("d"));
    cr_assert_str_eq(h_query("SELECT checksum FROM rollgate_migrations WHERE version = 4"),
                     h_sha256_file(h_mig_path("0004_d.up.sql")));

    r = h_run(H_ARGS("validate"), ENV);
    h_assert_exit(r, 4);
    h_assert_has(r, r.err, "0004_d.up.sql: not listed in");
}

Test(index, a_damaged_index_is_not_used_by_runs_and_refused_by_validate)
{
    h_applied_and_summed();
    char *text = h_read_file(h_mig_path("rollgate.sum"));
    h_write_file(h_mig_path("rollgate.sum"), h_fmt("%sgarbage\n", text));
    rewrite_keeping_size_and_time(h_mig_path("0002_b.up.sql"), "CREATE TABLE x (id int);\n");

    struct h_result r = h_run(H_ARGS("migrate"), ENV);
    h_assert_exit(r, 5);
    h_assert_has(r, r.err, "checksum index not used");
    h_assert_has(r, r.err, "rollgate.sum:10: not a rollgate.sum entry");
    h_assert_has(r, r.err, "0002_b.up.sql: checksum drift: version 2");

    /* Well formed, but not what sum wrote: the checksum line says so. */
    rewrite_keeping_size_and_time(h_mig_path("0002_b.up.sql"), "CREATE TABLE b (id int);\n");
    text[20] = text[20] == '0' ? '1' : '0';
    h_write_file(h_mig_path("rollgate.sum"), text);
    r = h_run(H_ARGS("validate"), ENV);
    h_assert_exit(r, 4);
    h_assert_has(r, r.err, "rollgate.sum:1: the index does not match its own checksum");
}

Test(index, a_changed_history_row_is_found_though_nothing_is_pending)
{
    h_applied_and_summed();
    /* Another SQL than the file's, not only another checksum: a row that differs only in
     * its checksum, with the file's very tokens stored, is a change of comments (a warning). */
    h_query("UPDATE rollgate_migrations SET checksum = repeat('0', 64), "
            "up_sql = 'CREATE TABLE c (id bigint);' WHERE version = 3");

    struct h_result r = h_run(H_ARGS("migrate"), ENV);
    h_assert_exit(r, 5);
    h_assert_has(r, r.err, "0003_c.up.sql: checksum drift: version 3");
}

/* A start that trusts an entry does not open the file, so the entry carries the file's
 * rollgate:phase: without it a post-deploy migration would be taken for a pre-deploy one
 * and applied by --phase pre. */
Test(index, a_trusted_entry_keeps_the_files_phase)
{
    h_migration(1, "a", "CREATE TABLE a (id int);\n", NULL);
    h_migration(2, "b", "-- rollgate:phase=post\nCREATE TABLE b (id int);\n", NULL);
    h_migration(3, "c", "CREATE TABLE c (id int);\n", NULL);
    struct h_result r = h_run(H_ARGS("sum"), H_ENV(h_env_dir()));
    h_assert_exit(r, 0);
    char *text = h_read_file(h_mig_path("rollgate.sum"));
    cr_assert(strstr(text, " pre 0001_a.up.sql\n") && strstr(text, " post 0002_b.up.sql\n"), "%s",
              text);

    r = h_run(H_ARGS("migrate", "--phase", "pre"), ENV);
    h_assert_exit(r, 0);
    cr_assert_eq(h_query_int("SELECT count(*) FROM rollgate_migrations WHERE version IN (1, 3)"),
                 2);
    cr_assert_eq(h_query_int("SELECT count(*) FROM rollgate_migrations WHERE version = 2"), 0);
    r = h_run(H_ARGS("validate"), ENV);
    h_assert_exit(r, 0);
}

/* rollgate sum where the directory cannot be written (an image layer mounted read-only):
 * exit 4 naming the index file and the reason, and nothing left behind. The directory is
 * bind-mounted read-only in a mount namespace of its own (unshare -m), since the tests run
 * as root, who would write into a directory without write permission anyway. */
Test(index, sum_into_a_read_only_directory_is_exit_4_naming_the_file)
{
    h_migration(1, "a", "CREATE TABLE a (id int);\n", NULL);
    const char *dir = h_mig_dir();
    const char *script = h_fmt("mount --bind '%s' '%s' && mount -o remount,bind,ro '%s' && "
                               "exec '%s' sum --dir '%s'",
                               dir, dir, dir, getenv("RG_TEST_BIN"), dir);

    struct h_result r = h_cmd(H_ARGS("unshare", "-m", "sh", "-c", script));
    h_assert_exit(r, 4);
    h_assert_has(r, r.err, h_fmt("%s/rollgate.sum: cannot create: Read-only file system", dir));
    cr_assert_neq(access(h_mig_path("rollgate.sum"), F_OK), 0, "an index was left behind");
}
