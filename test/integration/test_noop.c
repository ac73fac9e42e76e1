/* The no-op start over rollgate.sum through the binary: the index stands for the
 * directory's listing only while the directory keeps the time recorded with it, so every
 * entry added, removed or renamed after `rollgate sum` is seen; data/ is always listed; a
 * files error still wins over the connection; and the history's digest tells apart what
 * differs. */
#include <criterion/criterion.h>

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "pg/pg.h"
#include "source/source.h"

TestSuite(noop, .init = h_setup, .fini = h_teardown);

#define ENV H_ENV(h_env_url(), h_env_dir())

/* Three applied migrations and their index. */
static struct timespec mtime_of(const char *path)
{
    struct stat st;
    cr_assert_eq(stat(path, &st), 0, "%s", path);
    return st.st_mtim;
}

/* As an image layer keeps a time: whole seconds. */
static void drop_fraction(const char *path)
{
    struct timespec t = mtime_of(path);
    struct timespec times[2] = {{t.tv_sec, 0}, {t.tv_sec, 0}};
    cr_assert_eq(utimensat(AT_FDCWD, path, times, 0), 0, "%s", path);
}

static void put_back_mtime(const char *path, struct timespec t)
{
    struct timespec times[2] = {t, t};
    cr_assert_eq(utimensat(AT_FDCWD, path, times, 0), 0, "%s", path);
}

Test(noop, sum_makes_the_index_later_than_the_directory_in_whole_seconds)
{
    h_applied_and_summed();
    struct timespec dir = mtime_of(h_mig_dir()), idx = mtime_of(h_mig_path("rollgate.sum"));
    cr_assert_lt(dir.tv_sec, idx.tv_sec, "directory %lld, index %lld", (long long)dir.tv_sec,
                 (long long)idx.tv_sec);
    char *text = h_read_file(h_mig_path("rollgate.sum"));
    cr_assert(strstr(text, h_fmt("\ndir %lld.%09ld\n", (long long)dir.tv_sec, dir.tv_nsec)), "%s",
              text);
}

/* The moment rollgate sum returns, in the second it returned, on a file system (or an
 * image layer) that keeps whole seconds: the directory's new time must still differ
 * from the recorded one, which is why rollgate sum waits for the next second. */
Test(noop, a_file_added_right_after_sum_is_applied_even_with_whole_second_times)
{
    h_applied_and_summed();
    h_migration(4, "d", "CREATE TABLE d (id int);\n", NULL);
    drop_fraction(h_mig_dir());
    drop_fraction(h_mig_path("rollgate.sum"));

    struct h_result r = h_run(H_ARGS("migrate"), ENV);
    h_assert_exit(r, 0);
    h_assert_has(r, r.err, "\"files\":4");
    cr_assert(h_table_exists("d"));
}

Test(noop, a_file_added_a_second_later_is_applied)
{
    h_applied_and_summed();
    sleep(1);
    h_migration(4, "d", "CREATE TABLE d (id int);\n", NULL);

    struct h_result r = h_run(H_ARGS("migrate"), ENV);
    h_assert_exit(r, 0);
    cr_assert(h_table_exists("d"));
    cr_assert_str_eq(h_query("SELECT checksum FROM rollgate_migrations WHERE version = 4"),
                     h_sha256_file(h_mig_path("0004_d.up.sql")));
}

Test(noop, a_removed_file_is_seen)
{
    h_migration(4, "d", "CREATE TABLE d (id int);\n", NULL);
    h_applied_and_summed();
    cr_assert(h_table_exists("d"));
    cr_assert_eq(unlink(h_mig_path("0004_d.up.sql")), 0);

    /* Version 4 is now one this image does not know: a warning, as without the index. */
    struct h_result r = h_run(H_ARGS("migrate"), ENV);
    h_assert_exit(r, 0);
    h_assert_has(r, r.err, "\"files\":3");
    r = h_run(H_ARGS("status", "--output", "json"), ENV);
    h_assert_has(r, r.out, "\"unknown\"");
}

Test(noop, a_renamed_file_is_seen)
{
    h_applied_and_summed();
    h_migration(4, "d", "CREATE TABLE d (id int);\n", NULL);
    struct h_result r = h_run(H_ARGS("sum"), H_ENV(h_env_dir()));
    h_assert_exit(r, 0);
    cr_assert_eq(rename(h_mig_path("0004_d.up.sql"), h_mig_path("0005_d.up.sql")), 0);

    r = h_run(H_ARGS("migrate"), ENV);
    h_assert_exit(r, 0);
    cr_assert_eq(h_query_int("SELECT count(*) FROM rollgate_migrations WHERE version = 5"), 1);
    cr_assert_eq(h_query_int("SELECT count(*) FROM rollgate_migrations WHERE version = 4"), 0);
}

/* Written again file by file, as a git checkout or a copy that does not keep times leaves
 * it: the directory's time is new, so it is listed, and the file added with it is seen. */
Test(noop, a_directory_written_again_after_sum_is_listed)
{
    h_applied_and_summed();
    char *index = h_read_file(h_mig_path("rollgate.sum"));
    cr_assert_eq(unlink(h_mig_path("rollgate.sum")), 0);
    h_migration(4, "d", "CREATE TABLE d (id int);\n", NULL);
    h_write_file(h_mig_path("rollgate.sum"), index);

    struct h_result r = h_run(H_ARGS("migrate"), ENV);
    h_assert_exit(r, 0);
    cr_assert(h_table_exists("d"));
}

/* cp -a keeps the names and the times, the directory's too: the copy's index still stands
 * for its names. What shows it is trusted: a name added with the directory's time put back
 * (which no ordinary change does) is not seen by a run, and validate, which always lists,
 * refuses it. */
Test(noop, a_copy_that_keeps_times_is_trusted_and_validate_still_lists)
{
    h_applied_and_summed();
    char *copy = h_tmp_path("copy");
    struct h_result r = h_cmd(H_ARGS("cp", "-a", h_mig_dir(), copy));
    h_assert_exit(r, 0);
    char *dir_env = h_fmt("ROLLGATE_MIGRATIONS_DIR=%s", copy);
    r = h_run(H_ARGS("migrate"), H_ENV(h_env_url(), dir_env));
    h_assert_exit(r, 0);
    h_assert_has(r, r.termlog, "no migration to apply, schema at version 3");

    struct timespec t = mtime_of(copy);
    h_write_file(h_fmt("%s/0004_d.up.sql", copy), "CREATE TABLE d (id int);\n");
    put_back_mtime(copy, t);
    r = h_run(H_ARGS("migrate"), H_ENV(h_env_url(), dir_env));
    h_assert_exit(r, 0);
    h_assert_has(r, r.err, "\"files\":3");
    cr_assert_not(h_table_exists("d"));

    r = h_run(H_ARGS("validate"), H_ENV(h_env_url(), dir_env));
    h_assert_exit(r, 4);
    h_assert_has(r, r.err, "0004_d.up.sql: not listed in");
}

/* The per-file check stays whatever the listing: a trusted listing does not make a changed
 * file's content trusted. */
Test(noop, a_file_edited_in_place_is_drift_with_a_trusted_listing)
{
    h_applied_and_summed();
    struct timespec t = mtime_of(h_mig_dir());
    h_write_file(h_mig_path("0002_b.up.sql"), "CREATE TABLE b (id bigint);\n");
    cr_assert_eq(mtime_of(h_mig_dir()).tv_nsec, t.tv_nsec);

    struct h_result r = h_run(H_ARGS("migrate"), ENV);
    h_assert_exit(r, 5);
    h_assert_has(r, r.err, "0002_b.up.sql: checksum drift: version 2");
}

/* data/ can change without the migrations directory's time changing: it is always
 * listed. */
Test(noop, a_data_script_added_after_sum_runs)
{
    cr_assert_eq(mkdir(h_mig_path("data"), 0755), 0);
    h_write_file(h_mig_path("data/0001_a.sql"), "CREATE TABLE IF NOT EXISTS seen (n text);\n");
    h_applied_and_summed();
    struct timespec t = mtime_of(h_mig_dir());
    h_write_file(h_mig_path("data/0002_b.sql"), "INSERT INTO seen VALUES ('b');\n");
    cr_assert_eq(mtime_of(h_mig_dir()).tv_nsec, t.tv_nsec);

    struct h_result r = h_run(H_ARGS("migrate"), ENV);
    h_assert_exit(r, 0);
    cr_assert_eq(h_query_int("SELECT count(*) FROM seen WHERE n = 'b'"), 1);
}

Test(noop, repeatables_and_down_files_come_with_a_trusted_listing)
{
    h_write_file(h_mig_path("R__view.sql"), "CREATE OR REPLACE VIEW v AS SELECT 1 AS one;\n");
    h_applied_and_summed();
    char *text = h_read_file(h_mig_path("rollgate.sum"));
    cr_assert(strstr(text, "\n+ R__view.sql\n") != NULL, "%s", text);

    /* A rollback needs the down files' names: they come from the index. */
    struct h_result r = h_run(H_ARGS("migrate", "--target", "2"), ENV);
    h_assert_exit(r, 0);
    cr_assert_not(h_table_exists("c"));
    cr_assert(h_table_exists("v"));
}

Test(noop, validate_refuses_an_index_whose_names_differ)
{
    h_applied_and_summed();
    cr_assert_eq(unlink(h_mig_path("0001_a.down.sql")), 0);

    struct h_result r = h_run(H_ARGS("validate"), ENV);
    h_assert_exit(r, 4);
    h_assert_has(r, r.err, "lists 0001_a.down.sql, which is not in the directory");
}

/* The files are read while the connection is made: a bad file must still end the run at
 * once with its own error, not after the connection's retries (an hour here; the
 * harness's guard would end the run long before). */
Test(noop, a_files_error_wins_at_once_over_a_database_that_is_down)
{
    h_migration(1, "a", "CREATE TABLE a (id int);\n", NULL);
    h_write_file(h_mig_path("0001_b.up.sql"), "CREATE TABLE b (id int);\n");
    char *url = h_fmt("ROLLGATE_DATABASE_URL=postgresql://postgres@127.0.0.1:%d/x?sslmode=disable",
                      h_free_port());

    struct h_result r =
        h_run(H_ARGS("migrate"),
              H_ENV(url, h_env_dir(), "ROLLGATE_DATABASE_CONNECT_RETRY=1h", "ROLLGATE_TIMEOUT=2h"));
    h_assert_exit(r, 4);
    h_assert_has(r, r.err, "two up migrations for version 1");
}

/* What the history's digest must tell apart, against the server's own arithmetic: a
 * renumbering that keeps the contents, a changed checksum, a row not applied. Each makes
 * the start take the full path, which then names what differs. */
Test(noop, the_digest_tells_a_renumbering_apart)
{
    h_migration(1, "a", "CREATE TABLE a (id int);\n", NULL);
    h_migration(4, "b", "CREATE TABLE b (id int);\n", NULL);
    struct h_result r = h_run(H_ARGS("migrate"), ENV);
    h_assert_exit(r, 0);
    /* The same contents recorded under versions 2 and 3. */
    h_query("UPDATE rollgate_migrations SET version = version + 1 WHERE version = 1");
    h_query("UPDATE rollgate_migrations SET version = version - 1 WHERE version = 4");

    r = h_run(H_ARGS("migrate"), ENV);
    h_assert_exit(r, 4);
    h_assert_has(r, r.err, "version 1 is pending but below the applied version 3");
}

Test(noop, the_digest_tells_equal_contents_renumbered_apart)
{
    h_migration(1, "a", "SELECT 1;\n", NULL);
    h_migration(4, "b", "SELECT 1;\n", NULL);
    struct h_result r = h_run(H_ARGS("migrate"), ENV);
    h_assert_exit(r, 0);
    h_query("UPDATE rollgate_migrations SET version = version + 1 WHERE version = 1");
    h_query("UPDATE rollgate_migrations SET version = version - 1 WHERE version = 4");

    r = h_run(H_ARGS("migrate"), ENV);
    h_assert_exit(r, 4);
    h_assert_has(r, r.err, "version 1 is pending but below the applied version 3");
}

/* A checksum edited by hand into something that is not hex (here with a backslash, which
 * bytea's input syntax would take as an escape) is a checksum that differs like any other:
 * the digest's text is hashed as its bytes, never parsed, and the start takes the full
 * path, which compares the file with the SQL stored at apply time (the same tokens here:
 * a warning, exit 0). */
Test(noop, a_hand_edited_checksum_with_a_backslash_takes_the_full_path_not_a_database_error)
{
    h_migration(1, "a", "CREATE TABLE a (id int);\n", NULL);
    struct h_result r = h_run(H_ARGS("migrate"), ENV);
    h_assert_exit(r, 0);
    h_query("UPDATE rollgate_migrations SET checksum = E'ab\\\\cd' WHERE version = 1");
    cr_assert_str_eq(h_query("SELECT checksum FROM rollgate_migrations WHERE version = 1"),
                     "ab\\cd");

    r = h_run(H_ARGS("migrate"), ENV);
    h_assert_exit(r, 0);
    h_assert_has(r, r.err, "changed only in comments or white space");
}

Test(noop, the_digest_tells_a_changed_checksum_and_a_failed_row_apart)
{
    h_applied_and_summed();
    h_query("UPDATE rollgate_migrations SET checksum = repeat('0', 64), "
            "up_sql = 'CREATE TABLE c (id bigint);' WHERE version = 3");
    struct h_result r = h_run(H_ARGS("migrate"), ENV);
    h_assert_exit(r, 5);
    h_assert_has(r, r.err, "0003_c.up.sql: checksum drift: version 3");

    h_query(h_fmt("UPDATE rollgate_migrations SET checksum = '%s', up_sql = NULL, "
                  "state = 'failed' WHERE version = 3",
                  h_sha256_file(h_mig_path("0003_c.up.sql"))));
    r = h_run(H_ARGS("migrate"), ENV);
    h_assert_exit(r, 5);
    h_assert_lacks(r, r.termlog, "no migration to apply");
}

/* The store's digest against the files' own (rg_source_digest), through pkg/pg directly:
 * equal for the same rows (else no start would ever take the fast path), different once
 * two versions swap their files, also with equal contents. */
static bool digests_equal(void)
{
    struct rg_err err = {0};
    struct rg_pg_opts o = {
        .url = h_db_url(),
        .schema = "public",
        .connect_timeout_ms = 10000,
        .wait_timeout_ms = 1000,
        .identity = "digest-test",
    };
    struct rg_pg *pg = rg_pg_new(&o);
    struct rg_store store;
    struct rg_history_digest d;
    struct rg_source src;
    char mine[65];

    cr_assert_eq(rg_pg_connect(pg, &err), 0, "%s", err.msg);
    rg_pg_store(pg, &store);
    cr_assert_eq(store.digest_history(store.ctx, &d, &err), 0, "%s", err.msg);
    cr_assert_eq(rg_source_load(h_mig_dir(), &src, &err), 0, "%s", err.msg);
    rg_source_digest(&src, mine);
    bool equal =
        d.exists && d.all_applied && d.rows == (int64_t)src.n && strcmp(d.sha256, mine) == 0;
    rg_source_free(&src);
    rg_pg_free(pg);
    return equal;
}

Test(noop, the_stores_digest_is_the_files_and_tells_swapped_versions_apart)
{
    h_migration(1, "a", "SELECT 1;\n", NULL);
    h_migration(2, "b", "CREATE TABLE b (id int);\n", NULL);
    h_migration(3, "c", "SELECT 1;\n", NULL);
    h_migration(10, "d", "CREATE TABLE d (id int);\n", NULL);
    struct h_result r = h_run(H_ARGS("migrate"), ENV);
    h_assert_exit(r, 0);
    cr_assert(digests_equal());

    /* Versions 1 and 3 have equal contents: swapping their rows changes nothing. */
    h_query("UPDATE rollgate_migrations SET version = -1 WHERE version = 1");
    h_query("UPDATE rollgate_migrations SET version = 1 WHERE version = 3");
    h_query("UPDATE rollgate_migrations SET version = 3 WHERE version = -1");
    cr_assert(digests_equal());
    /* Versions 2 and 10 do not. */
    h_query("UPDATE rollgate_migrations SET version = -1 WHERE version = 2");
    h_query("UPDATE rollgate_migrations SET version = 2 WHERE version = 10");
    h_query("UPDATE rollgate_migrations SET version = 10 WHERE version = -1");
    cr_assert_not(digests_equal());
    h_query("UPDATE rollgate_migrations SET version = -1 WHERE version = 2");
    h_query("UPDATE rollgate_migrations SET version = 2 WHERE version = 10");
    h_query("UPDATE rollgate_migrations SET version = 10 WHERE version = -1");
    cr_assert(digests_equal());
    h_query("UPDATE rollgate_migrations SET state = 'running' WHERE version = 2");
    cr_assert_not(digests_equal());
}

/* The glance (README "Performance"): a start with nothing pending over a directory as
 * rollgate sum left it compares the index's digest line with the history's digest and loads
 * no migration; it says so at debug level, and why not when it cannot. */
#define DEBUG_ENV H_ENV(h_env_url(), h_env_dir(), "ROLLGATE_LOG_LEVEL=debug")
#define GLANCED "its digest line stands for them"
#define NOT_GLANCED "rollgate sum's digest line not used"

Test(noop, a_start_takes_the_digest_line_and_loads_in_full_when_the_history_differs)
{
    h_applied_and_summed();
    struct h_result r = h_run(H_ARGS("migrate"), DEBUG_ENV);
    h_assert_exit(r, 0);
    h_assert_has(r, r.err, GLANCED "\",\"dir\":");
    h_assert_has(r, r.err, "\"files\":3");
    h_assert_has(r, r.termlog, "no migration to apply, schema at version 3");

    /* Undone by hand: the digests differ, so the files are loaded and version 3 applied. */
    h_query("DELETE FROM rollgate_migrations WHERE version = 3");
    h_query("DROP TABLE c");
    r = h_run(H_ARGS("migrate"), DEBUG_ENV);
    h_assert_exit(r, 0);
    h_assert_has(r, r.err, GLANCED);
    h_assert_has(r, r.termlog, "applied 1 migration");
    cr_assert(h_table_exists("c"));

    /* A failed row stops the run as it would without the index. */
    h_query("UPDATE rollgate_migrations SET state = 'failed' WHERE version = 2");
    r = h_run(H_ARGS("migrate"), DEBUG_ENV);
    h_assert_exit(r, 5);
    h_assert_has(r, r.err, GLANCED);
    h_assert_lacks(r, r.termlog, "no migration to apply");

    /* Only a run to the latest version compares digests first. */
    h_query("UPDATE rollgate_migrations SET state = 'applied' WHERE version = 2");
    r = h_run(H_ARGS("migrate", "--target", "2"), DEBUG_ENV);
    h_assert_exit(r, 0);
    h_assert_lacks(r, r.err, GLANCED);
    cr_assert_not(h_table_exists("c"));
}

Test(noop, an_up_file_written_again_after_sum_is_read_not_glanced_at)
{
    h_applied_and_summed();
    struct timespec t = mtime_of(h_mig_dir());
    /* The same bytes, a new modification time. */
    h_write_file(h_mig_path("0002_b.up.sql"), "CREATE TABLE b (id int);\n");
    cr_assert_eq(mtime_of(h_mig_dir()).tv_nsec, t.tv_nsec);

    struct h_result r = h_run(H_ARGS("migrate"), DEBUG_ENV);
    h_assert_exit(r, 0);
    h_assert_has(r, r.err, NOT_GLANCED);
    h_assert_has(r, r.err, "some up files changed since rollgate sum");
    h_assert_has(r, r.err, "\"read\":1,\"from_index\":2");
    h_assert_has(r, r.termlog, "no migration to apply, schema at version 3");
}

Test(noop, a_data_directory_with_files_is_loaded_not_glanced_at)
{
    h_applied_and_summed();
    struct timespec t = mtime_of(h_mig_dir());
    cr_assert_eq(mkdir(h_mig_path("data"), 0755), 0);
    h_write_file(h_mig_path("data/.keep"), "");
    put_back_mtime(h_mig_dir(), t);

    /* Dotfiles only: nothing a load would run. */
    struct h_result r = h_run(H_ARGS("migrate"), DEBUG_ENV);
    h_assert_exit(r, 0);
    h_assert_has(r, r.err, GLANCED);

    h_write_file(h_mig_path("data/0001_seen.sql"), "CREATE TABLE seen (n int);\n");
    r = h_run(H_ARGS("migrate"), DEBUG_ENV);
    h_assert_exit(r, 0);
    h_assert_has(r, r.err, "data/ has files");
    cr_assert(h_table_exists("seen"));
}

Test(noop, scripts_and_near_misses_leave_the_index_without_a_digest_line)
{
    h_write_file(h_mig_path("R__view.sql"), "CREATE OR REPLACE VIEW v AS SELECT 1 AS one;\n");
    h_applied_and_summed();
    cr_assert_null(strstr(h_read_file(h_mig_path("rollgate.sum")), "\ndigest "));
    struct h_result r = h_run(H_ARGS("migrate"), DEBUG_ENV);
    h_assert_exit(r, 0);
    h_assert_has(r, r.err, "no digest line (the directory has scripts or near misses)");
    h_assert_has(r, r.termlog, "no migration to apply, schema at version 3; ran 0 scripts");

    cr_assert_eq(unlink(h_mig_path("R__view.sql")), 0);
    h_write_file(h_mig_path("0004_d.UP.SQL"), "CREATE TABLE d (id int);\n");
    r = h_run(H_ARGS("sum"), H_ENV(h_env_dir()));
    h_assert_exit(r, 0);
    cr_assert_null(strstr(h_read_file(h_mig_path("rollgate.sum")), "\ndigest "));
    r = h_run(H_ARGS("migrate"), DEBUG_ENV);
    h_assert_exit(r, 0);
    h_assert_has(r, r.err, "file not loaded: its name looks like a migration file's");
    h_assert_lacks(r, r.err, GLANCED);
}

/* An index edited where it lies (the directory's time unchanged) is not glanced at, and a
 * digest line that is not the files' is refused by validate, even with the index's own
 * checksum made to match. */
Test(noop, a_digest_line_edited_by_hand_is_not_taken_and_validate_refuses_it)
{
    h_applied_and_summed();
    char *text = h_read_file(h_mig_path("rollgate.sum"));
    char *digest = strstr(text, "\ndigest 3 3 ") + strlen("\ndigest 3 3 ");
    digest[0] = digest[0] == '0' ? '1' : '0';
    h_write_file(h_mig_path("rollgate.sum"), text);

    struct h_result r = h_run(H_ARGS("migrate"), DEBUG_ENV);
    h_assert_exit(r, 0);
    h_assert_has(r, r.err, "the index does not match its own checksum");
    h_assert_has(r, r.termlog, "no migration to apply, schema at version 3");

    /* The lines after the first, summed as rollgate sum sums them. */
    char *rest = strchr(text, '\n') + 1;
    h_write_file(h_tmp_path("rest"), rest);
    h_write_file(h_mig_path("rollgate.sum"),
                 h_fmt("rollgate-sum 3 %s\n%s", h_sha256_file(h_tmp_path("rest")), rest));
    r = h_run(H_ARGS("validate"), ENV);
    h_assert_exit(r, 4);
    h_assert_has(r, r.err, "rollgate.sum:2: the digest line does not match the up files");
}

/* An index of an older rollgate is not used: a warning, and every file is read. */
Test(noop, an_index_of_the_format_before_the_digest_line_is_not_used)
{
    h_applied_and_summed();
    char *text = h_read_file(h_mig_path("rollgate.sum"));
    text[strlen("rollgate-sum ")] = '2';
    h_write_file(h_mig_path("rollgate.sum"), text);

    struct h_result r = h_run(H_ARGS("migrate"), DEBUG_ENV);
    h_assert_exit(r, 0);
    h_assert_has(r, r.err, "not an index of this rollgate's form");
    h_assert_has(r, r.err, "checksum index not used");
    h_assert_has(r, r.termlog, "no migration to apply, schema at version 3");
}

/* The glance is taken while the connection is tried: a database that is down ends the run
 * as it would without an index (exit 7 naming the database), the glance's thread joined
 * first (session_open) and nothing of it left behind (LeakSanitizer checks each run). */
Test(noop, a_glance_taken_while_the_database_is_down_ends_as_without_the_index)
{
    h_applied_and_summed();
    int port = h_free_port();
    char *url =
        h_fmt("ROLLGATE_DATABASE_URL=postgresql://postgres@127.0.0.1:%d/x?sslmode=disable", port);

    struct h_result r = h_run(H_ARGS("migrate"), H_ENV(url, h_env_dir(), "ROLLGATE_LOG_LEVEL=debug",
                                                       "ROLLGATE_DATABASE_CONNECT_RETRY=1s",
                                                       "ROLLGATE_DATABASE_CONNECT_TIMEOUT=1s"));
    h_assert_exit(r, 7);
    h_assert_has(r, r.termlog, "could not connect to the database");
    h_assert_has(r, r.termlog, h_fmt("port %d failed", port));
    h_assert_has(r, r.err, GLANCED);
    h_assert_lacks(r, r.err, "digest line not used");
}
