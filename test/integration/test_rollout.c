/* What a release rollout leans on beyond plain up migrations: data and repeatable
 * scripts, Flyway names, rollback to a target with an older image, no-transaction
 * migrations and their repair, newer and out-of-order schemas, adopting golang-migrate's
 * history, baseline, validate, new, and a run racing a no-transaction migration. */
#include <criterion/criterion.h>

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"

TestSuite(rollout, .init = h_setup, .fini = h_teardown);

#define DB_ENV H_ENV(h_env_url(), h_env_dir())
#define DB_ENV_WITH(...) H_ENV(h_env_url(), h_env_dir(), __VA_ARGS__)

/* ---- helpers ---- */

static char *make_dir(const char *path)
{
    cr_assert(mkdir(path, 0755) == 0, "mkdir %s: %s", path, strerror(errno));
    return h_fmt("%s", path);
}

/* NNNN_title.up.sql (and .down.sql unless down is NULL) in dir; the up file's path. */
static char *migration_in(const char *dir, long long version, const char *title, const char *up,
                          const char *down)
{
    char *up_path = h_fmt("%s/%04lld_%s.up.sql", dir, version, title);
    h_write_file(up_path, up);
    if (down)
        h_write_file(h_fmt("%s/%04lld_%s.down.sql", dir, version, title), down);
    return up_path;
}

/* A data script data/<name> in the migrations directory; its path. */
static char *data_script(const char *name, const char *sql)
{
    char *dir = h_mig_path("data");
    struct stat st;
    if (stat(dir, &st) != 0)
        make_dir(dir);
    char *path = h_fmt("%s/%s", dir, name);
    h_write_file(path, sql);
    return path;
}

static bool history_exists(void)
{
    return h_table_exists("public.rollgate_migrations");
}

/* The applied schema versions, "1,2,3" ("" when none or no history table). */
static char *schema_versions(void)
{
    if (!history_exists())
        return h_fmt("%s", "");
    return h_query("SELECT coalesce(string_agg(version::text, ',' ORDER BY version), '') "
                   "FROM public.rollgate_migrations WHERE kind = 'schema'");
}

static long long schema_rows(void)
{
    if (!history_exists())
        return 0;
    return h_query_int("SELECT count(*) FROM public.rollgate_migrations WHERE kind = 'schema'");
}

/* One history row's column (as text) for a script: kind 'data' or 'repeatable'. */
static char *script_col(const char *kind, const char *title, const char *col)
{
    return h_query2(h_fmt("SELECT %s::text FROM public.rollgate_migrations "
                          "WHERE kind = $1 AND title = $2",
                          col),
                    kind, title);
}

static long long script_rows(const char *kind, const char *title)
{
    char *n = h_query2("SELECT count(*) FROM public.rollgate_migrations WHERE kind = $1 AND "
                       "title = $2",
                       kind, title);
    return strtoll(n, NULL, 10);
}

static char *schema_state(long long version)
{
    return h_query(
        h_fmt("SELECT state FROM public.rollgate_migrations WHERE kind = 'schema' AND version = "
              "%lld",
              version));
}

/* Whether some stderr line is a JSON log event at that level. */
static bool logged_at_level(const char *err, const char *level)
{
    const char *p = err;
    while (*p) {
        size_t len = strcspn(p, "\n");
        if (len > 0 && p[0] == '{') {
            char *lvl = h_json(h_fmt("%.*s", (int)len, p), "{level}");
            if (lvl && strcmp(lvl, level) == 0)
                return true;
        }
        p += len;
        if (*p == '\n')
            p++;
    }
    return false;
}

/* Versions 1..n in dir, each creating tN with a foreign key to t(N-1), so a down run out
 * of order (t(N-1) dropped before tN) fails. Versions listed in no_down get no down file. */
static void chain(const char *dir, int n, const int *no_down, size_t nno_down)
{
    for (int v = 1; v <= n; v++) {
        bool has_down = true;
        for (size_t i = 0; i < nno_down; i++)
            has_down &= no_down[i] != v;
        char *up = v == 1 ? h_fmt("CREATE TABLE t1 (id int PRIMARY KEY);\n")
                          : h_fmt("CREATE TABLE t%d (id int PRIMARY KEY, prev int REFERENCES "
                                  "t%d (id));\n",
                                  v, v - 1);
        migration_in(dir, v, h_fmt("create_t%d", v), up,
                     has_down ? h_fmt("DROP TABLE t%d;\n", v) : NULL);
    }
}

/* Which of t1..tn exist, as "1,2,3". */
static char *chain_tables(int n)
{
    char *s = h_fmt("%s", "");
    for (int v = 1; v <= n; v++)
        if (h_table_exists(h_fmt("public.t%d", v)))
            s = h_fmt("%s%s%d", s, *s ? "," : "", v);
    return s;
}

static struct h_result migrate_dir(const char *dir)
{
    return h_run(H_ARGS("migrate", "--dir", dir), H_ENV(h_env_url()));
}

/* Whether an index exists and is valid. */
static char *index_valid(const char *name)
{
    return h_query1("SELECT coalesce((SELECT indisvalid::text FROM pg_index WHERE indexrelid = "
                    "to_regclass($1)), 'absent')",
                    name);
}

/* The file names in dir that end with suffix, sorted, one per line. */
static char *files_ending(const char *dir, const char *suffix)
{
    DIR *d = opendir(dir);
    cr_assert_not_null(d, "opendir %s: %s", dir, strerror(errno));
    char *names[64];
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name), sl = strlen(suffix);
        if (len >= sl && strcmp(e->d_name + len - sl, suffix) == 0) {
            cr_assert(n < 64);
            names[n++] = h_fmt("%s", e->d_name);
        }
    }
    closedir(d);
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
            char *t = names[j];
            names[j] = names[j - 1];
            names[j - 1] = t;
        }
    char *s = h_fmt("%s", "");
    for (size_t i = 0; i < n; i++)
        s = h_fmt("%s%s\n", s, names[i]);
    return s;
}

/* An environment in which no database answers: a free port, a short connect timeout. */
static const char *unreachable_url(void)
{
    return h_fmt("ROLLGATE_DATABASE_URL=postgresql://postgres@127.0.0.1:%d/postgres"
                 "?sslmode=disable",
                 h_free_port());
}
#define OFFLINE_ENV H_ENV(unreachable_url(), h_env_dir(), "ROLLGATE_DATABASE_CONNECT_TIMEOUT=1s")

/* ---- 1. data migrations ---- */

Test(rollout, data_scripts_run_on_every_migrate_after_schema_migrations_and_upsert_their_row)
{
    /* The scripts need the tables the schema migration creates in the same first run. */
    h_migration(1, "create_tables",
                "CREATE TABLE seeded (k text PRIMARY KEY);\n"
                "CREATE TABLE counter (n int NOT NULL);\n"
                "INSERT INTO counter VALUES (0);\n",
                NULL);
    char *seed =
        data_script("0001_seed.sql", "INSERT INTO seeded (k) VALUES ('admin') ON CONFLICT DO "
                                     "NOTHING;\n");
    char *count = data_script("0002_count.sql", "UPDATE counter SET n = n + 1;\n");

    struct h_result first = h_run(H_ARGS("migrate"), DB_ENV);
    h_assert_exit(first, 0);
    cr_assert_eq(h_query_int("SELECT n FROM counter"), 1, "%s", h_describe(&first));
    cr_assert_eq(h_count_rows("seeded"), 1);
    char *first_at = script_col("data", "0002_count.sql", "applied_at");
    cr_assert_not_null(first_at, "no history row for data/0002_count.sql\n%s", h_describe(&first));

    /* Nothing is pending now: the data scripts run all the same. */
    for (int i = 0; i < 2; i++) {
        struct h_result again = h_run(H_ARGS("migrate"), DB_ENV);
        h_assert_exit(again, 0);
    }

    cr_assert_eq(h_query_int("SELECT n FROM counter"), 3,
                 "the counting script did not run 3 times");
    cr_assert_eq(h_count_rows("seeded"), 1);
    cr_assert_str_eq(schema_versions(), "1");
    const char *scripts[2] = {"0001_seed.sql", "0002_count.sql"};
    const char *paths[2] = {seed, count};
    for (int i = 0; i < 2; i++) {
        cr_assert_eq(script_rows("data", scripts[i]), 1, "%s: expected one upserted row",
                     scripts[i]);
        cr_assert_str_eq(script_col("data", scripts[i], "version"), "0", "%s", scripts[i]);
        cr_assert_str_eq(script_col("data", scripts[i], "checksum"), h_sha256_file(paths[i]), "%s",
                         scripts[i]);
        cr_assert_str_eq(script_col("data", scripts[i], "state"), "applied", "%s", scripts[i]);
        cr_assert_str_eq(script_col("data", scripts[i], "(duration_ms >= 0)"), "true", "%s",
                         scripts[i]);
    }
    cr_assert_str_eq(h_query1("SELECT (applied_at > $1::timestamptz)::text FROM "
                              "public.rollgate_migrations WHERE kind = 'data' AND title = "
                              "'0002_count.sql'",
                              first_at),
                     "true", "applied_at did not advance past the first run's %s", first_at);
}

Test(rollout, data_scripts_run_in_byte_wise_name_order)
{
    h_migration(1, "create_run_order", "CREATE TABLE run_order (seq serial, name text);\n", NULL);
    /* Byte order; a locale's collation or a numeric sort would give another. */
    const char *names[] = {"a_lower.sql", "_under.sql", "B_upper.sql", "9_nine.sql", "10_ten.sql"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        data_script(names[i], h_fmt("INSERT INTO run_order (name) VALUES ('%s');\n", names[i]));

    struct h_result r = h_run(H_ARGS("migrate"), DB_ENV);

    h_assert_exit(r, 0);
    cr_assert_str_eq(h_query("SELECT string_agg(name, ',' ORDER BY seq) FROM run_order"),
                     "10_ten.sql,9_nine.sql,B_upper.sql,_under.sql,a_lower.sql", "%s",
                     h_describe(&r));
}

Test(rollout, failing_data_script_exits_6_naming_it_and_keeps_this_runs_schema_migrations)
{
    h_migration(1, "create_kv", "CREATE TABLE kv (k text PRIMARY KEY);\n", NULL);
    data_script("0001_ok.sql", "INSERT INTO kv VALUES ('ok') ON CONFLICT DO NOTHING;\n");
    data_script("0002_broken.sql", "INSERT INTO kv VALUES ('partial') ON CONFLICT DO NOTHING;\n"
                                   "SELECT * FROM missing_table_for_data;\n");

    struct h_result r = h_run(H_ARGS("migrate"), DB_ENV);

    h_assert_exit(r, 6);
    h_assert_has(r, r.err, "0002_broken.sql:2:15");
    h_assert_has(r, r.err, "42P01");
    cr_assert(h_table_exists("kv"), "the schema migration applied earlier in the run was lost");
    cr_assert_str_eq(schema_versions(), "1");
    /* Each script in its own transaction: the first committed, the failing one rolled back. */
    cr_assert_str_eq(h_query("SELECT string_agg(k, ',' ORDER BY k) FROM kv"), "ok");
    cr_assert_eq(script_rows("data", "0002_broken.sql"), 0,
                 "the failed data script got a history row");
    cr_assert_eq(script_rows("data", "0001_ok.sql"), 1);
}

/* ---- 2. repeatable ---- */

Test(rollout, repeatable_runs_first_time_then_only_when_its_content_changes)
{
    h_migration(1, "create_r_log", "CREATE TABLE r_log (at timestamptz);\n", NULL);
    char *views = h_mig_path("R__views.sql");
    h_write_file(views, "CREATE OR REPLACE VIEW v AS SELECT 1 AS x;\n"
                        "INSERT INTO r_log VALUES (now());\n");

    struct h_result first = h_run(H_ARGS("migrate"), DB_ENV);
    h_assert_exit(first, 0);
    cr_assert_eq(h_count_rows("r_log"), 1, "%s", h_describe(&first));
    cr_assert_str_eq(h_query("SELECT x::text FROM v"), "1");
    cr_assert_eq(script_rows("repeatable", "views"), 1, "no repeatable row titled views");
    cr_assert_str_eq(script_col("repeatable", "views", "version"), "0");
    cr_assert_str_eq(script_col("repeatable", "views", "checksum"), h_sha256_file(views));
    const char *snapshot_sql =
        "SELECT concat_ws('|', applied_at, xmin) FROM public.rollgate_migrations "
        "WHERE kind = 'repeatable'";
    char *before = h_query(snapshot_sql);

    struct h_result unchanged = h_run(H_ARGS("migrate"), DB_ENV);
    h_assert_exit(unchanged, 0);
    cr_assert_eq(h_count_rows("r_log"), 1, "an unchanged repeatable ran again\n%s",
                 h_describe(&unchanged));
    cr_assert_str_eq(h_query(snapshot_sql), before, "the unchanged repeatable's row was rewritten");

    h_write_file(views, "CREATE OR REPLACE VIEW v AS SELECT 2 AS x;\n"
                        "INSERT INTO r_log VALUES (now());\n");
    struct h_result changed = h_run(H_ARGS("migrate"), DB_ENV);
    h_assert_exit(changed, 0);
    cr_assert_eq(h_count_rows("r_log"), 2, "a changed repeatable did not run again\n%s",
                 h_describe(&changed));
    cr_assert_str_eq(h_query("SELECT x::text FROM v"), "2");
    cr_assert_eq(script_rows("repeatable", "views"), 1);
    cr_assert_str_eq(script_col("repeatable", "views", "checksum"), h_sha256_file(views),
                     "the row's checksum was not updated");
    cr_assert_str_eq(schema_versions(), "1");
}

Test(rollout, repeatables_run_after_schema_migrations_and_before_data_scripts)
{
    h_migration(1, "create_a", "CREATE TABLE a (id int);\n", NULL);
    h_write_file(h_mig_path("R__va.sql"), "CREATE OR REPLACE VIEW va AS SELECT id FROM a;\n");
    data_script("0001_seed.sql", "INSERT INTO a SELECT 1 WHERE NOT EXISTS (SELECT 1 FROM va);\n");

    struct h_result r = h_run(H_ARGS("migrate"), DB_ENV);

    h_assert_exit(r, 0);
    cr_assert_eq(h_count_rows("va"), 1);
}

/* ---- 3. Flyway names ---- */

Test(rollout, flyway_versioned_and_undo_files_apply_and_roll_back_like_golang_migrate_ones)
{
    char *v1 = h_mig_path("V1__create_fa.sql");
    char *v2 = h_mig_path("V2__create_fb.sql");
    h_write_file(v1, "CREATE TABLE fa (id int PRIMARY KEY);\n");
    h_write_file(h_mig_path("U1__create_fa.sql"), "DROP TABLE fa;\n");
    h_write_file(v2, "CREATE TABLE fb (a_id int REFERENCES fa (id));\n");
    h_write_file(h_mig_path("U2__create_fb.sql"), "DROP TABLE fb;\n");

    struct h_result r = h_run(H_ARGS("migrate"), DB_ENV);

    h_assert_exit(r, 0);
    cr_assert(h_table_exists("fa") && h_table_exists("fb"));
    cr_assert_str_eq(h_query("SELECT string_agg(concat_ws('|', version, title), ',' ORDER BY "
                             "version) FROM public.rollgate_migrations WHERE kind = 'schema'"),
                     "1|create_fa,2|create_fb");
    cr_assert_str_eq(h_query("SELECT checksum FROM public.rollgate_migrations WHERE version = 1"),
                     h_sha256_file(v1));
    cr_assert_str_eq(h_query("SELECT checksum FROM public.rollgate_migrations WHERE version = 2"),
                     h_sha256_file(v2));
    cr_assert_str_eq(h_query("SELECT down_sql FROM public.rollgate_migrations WHERE version = 1"),
                     "DROP TABLE fa;\n");

    struct h_result down = h_run(H_ARGS("migrate", "--target", "1"), DB_ENV);
    h_assert_exit(down, 0);
    cr_assert_not(h_table_exists("fb"), "U2 did not run");
    cr_assert(h_table_exists("fa"));
    cr_assert_str_eq(schema_versions(), "1");
}

Test(rollout, flyway_and_golang_migrate_files_for_one_version_exit_4_naming_both)
{
    h_migration(1, "create_a", "CREATE TABLE a (id int);\n", NULL);
    h_write_file(h_mig_path("V1__create_a.sql"), "CREATE TABLE a (id int);\n");
    h_migration(2, "create_b", "CREATE TABLE b (id int);\n", NULL);

    struct h_result r = h_run(H_ARGS("migrate"), DB_ENV);

    h_assert_exit(r, 4);
    h_assert_has(r, r.err, "0001_create_a.up.sql");
    h_assert_has(r, r.err, "V1__create_a.sql");
    cr_assert_not(h_table_exists("a") || h_table_exists("b"), "migrations ran from a bad set");
    cr_assert_eq(schema_rows(), 0);
}

Test(rollout, flyway_undo_file_for_a_golang_migrate_version_exits_4_naming_both)
{
    h_migration(1, "create_a", "CREATE TABLE a (id int);\n", NULL);
    h_write_file(h_mig_path("U1__create_a.sql"), "DROP TABLE a;\n");

    struct h_result r = h_run(H_ARGS("migrate"), DB_ENV);

    h_assert_exit(r, 4);
    h_assert_has(r, r.err, "0001_create_a.up.sql");
    h_assert_has(r, r.err, "U1__create_a.sql");
    cr_assert_not(h_table_exists("a"));
}

/* ---- 4. rollback to a target ---- */

Test(rollout, rollback_job_with_an_older_image_runs_stored_downs_newest_first_then_upgrade_again)
{
    const char *image_a = h_mig_dir();
    chain(image_a, 5, NULL, 0);
    struct h_result up = migrate_dir(image_a);
    h_assert_exit(up, 0);
    cr_assert_str_eq(chain_tables(5), "1,2,3,4,5");

    /* Image B knows only 1..3: the downs of 4 and 5 come from the history. */
    char *image_b = make_dir(h_tmp_path("image_b"));
    chain(image_b, 3, NULL, 0);
    struct h_result rollback =
        h_run(H_ARGS("migrate", "--dir", image_b, "--target", "3"), H_ENV(h_env_url()));

    h_assert_exit(rollback, 0);
    cr_assert_str_eq(chain_tables(5), "1,2,3", "%s", h_describe(&rollback));
    cr_assert_str_eq(schema_versions(), "1,2,3");

    struct h_result again = migrate_dir(image_a);
    h_assert_exit(again, 0);
    cr_assert_str_eq(chain_tables(5), "1,2,3,4,5");
    cr_assert_str_eq(schema_versions(), "1,2,3,4,5");
}

Test(rollout, rollback_target_from_the_environment_runs_down_files_newest_first)
{
    chain(h_mig_dir(), 5, NULL, 0);
    struct h_result up = h_run(H_ARGS("migrate"), DB_ENV);
    h_assert_exit(up, 0);

    struct h_result r = h_run(H_ARGS("migrate"), DB_ENV_WITH("ROLLGATE_MIGRATIONS_TARGET=3"));

    h_assert_exit(r, 0);
    cr_assert_str_eq(chain_tables(5), "1,2,3", "%s", h_describe(&r));
    cr_assert_str_eq(schema_versions(), "1,2,3");
    struct h_result v = h_run(H_ARGS("version"), DB_ENV);
    h_assert_exit(v, 0);
    cr_assert_str_eq(v.out, "3\n", "%s", h_describe(&v));
}

Test(rollout, rollback_without_a_down_in_files_or_history_exits_4_listing_it_and_changes_nothing)
{
    /* Version 4 is applied from a directory where it has no down file. */
    const int no_down[] = {4};
    chain(h_mig_dir(), 5, no_down, 1);
    struct h_result up = h_run(H_ARGS("migrate"), DB_ENV);
    h_assert_exit(up, 0);
    cr_assert_str_eq(h_query("SELECT (down_sql IS NULL)::text FROM public.rollgate_migrations "
                             "WHERE version = 4"),
                     "true");
    const char *snapshot_sql =
        "SELECT string_agg(concat_ws('|', version, state, xmin), ',' ORDER BY "
        "version) FROM public.rollgate_migrations";
    char *before = h_query(snapshot_sql);

    struct h_result r = h_run(H_ARGS("migrate", "--target", "3"), DB_ENV);

    h_assert_exit(r, 4);
    h_assert_has(r, r.err, "version 4");
    h_assert_lacks(r, r.err, "version 5 ");
    /* Refused before anything ran: version 5, which has its down file, is still there. */
    cr_assert_str_eq(chain_tables(5), "1,2,3,4,5");
    cr_assert_str_eq(h_query(snapshot_sql), before);
}

Test(rollout, target_above_current_migrates_up_to_it_only_and_skips_data_scripts)
{
    chain(h_mig_dir(), 5, NULL, 0);
    h_query("CREATE TABLE data_runs (n int)");
    data_script("0001_mark.sql", "INSERT INTO data_runs VALUES (1);\n");

    struct h_result partial = h_run(H_ARGS("migrate", "--target", "3"), DB_ENV);

    h_assert_exit(partial, 0);
    cr_assert_str_eq(chain_tables(5), "1,2,3", "%s", h_describe(&partial));
    cr_assert_str_eq(schema_versions(), "1,2,3");
    cr_assert_eq(h_count_rows("data_runs"), 0,
                 "data scripts ran although the target stopped below the newest version");

    struct h_result rest = h_run(H_ARGS("migrate"), DB_ENV);
    h_assert_exit(rest, 0);
    cr_assert_str_eq(chain_tables(5), "1,2,3,4,5");
    cr_assert_str_eq(schema_versions(), "1,2,3,4,5");
    cr_assert_eq(h_count_rows("data_runs"), 1);

    /* Nor on a rollback below the image's newest version. */
    struct h_result down = h_run(H_ARGS("migrate", "--target", "4"), DB_ENV);
    h_assert_exit(down, 0);
    cr_assert_str_eq(chain_tables(5), "1,2,3,4");
    cr_assert_eq(h_count_rows("data_runs"), 1, "data scripts ran on a rollback");
}

Test(rollout, failing_down_migration_stops_the_rollback_keeping_its_version_and_undoing_newer_ones)
{
    chain(h_mig_dir(), 3, NULL, 0);
    h_write_file(h_mig_path("0002_create_t2.down.sql"), "DROP TABLE t2;\nSELECT * FROM nope_x;\n");
    struct h_result up = h_run(H_ARGS("migrate"), DB_ENV);
    h_assert_exit(up, 0);

    struct h_result r = h_run(H_ARGS("migrate", "--target", "0"), DB_ENV);

    h_assert_exit(r, 6);
    h_assert_has(r, r.err, "0002_create_t2.down.sql:2:15");
    cr_assert_str_eq(chain_tables(3), "1,2", "%s", h_describe(&r));
    cr_assert_str_eq(schema_versions(), "1,2");
}

/* The chart's ConfigMap serves the rollback Job too: an explicit target below the current
 * version is the operator asking to undo the versions this image does not know. */
Test(rollout, rollback_job_with_an_older_image_is_not_refused_by_on_newer_schema_fail)
{
    chain(h_mig_dir(), 5, NULL, 0);
    struct h_result up = h_run(H_ARGS("migrate"), DB_ENV);
    h_assert_exit(up, 0);
    char *image_b = make_dir(h_tmp_path("image_b"));
    chain(image_b, 3, NULL, 0);

    struct h_result r = h_run(H_ARGS("migrate", "--dir", image_b, "--target", "3"),
                              H_ENV(h_env_url(), "ROLLGATE_MIGRATIONS_ON_NEWER_SCHEMA=fail"));

    h_assert_exit(r, 0);
    cr_assert_str_eq(chain_tables(5), "1,2,3");
    cr_assert_str_eq(schema_versions(), "1,2,3");
}

/* ---- 5. no-transaction migrations ---- */

Test(rollout, no_transaction_migration_creates_an_index_concurrently_and_records_it_applied)
{
    h_migration(1, "create_t", "CREATE TABLE t (x int);\nINSERT INTO t VALUES (1), (2);\n", NULL);
    char *up2 = h_migration(2, "index_t",
                            "-- rollgate:no-transaction\nCREATE INDEX CONCURRENTLY idx ON t (x);\n",
                            "DROP INDEX CONCURRENTLY idx;\n");

    struct h_result r = h_run(H_ARGS("migrate"), DB_ENV);

    h_assert_exit(r, 0);
    cr_assert_str_eq(index_valid("idx"), "true");
    cr_assert_str_eq(schema_state(2), "applied");
    cr_assert_str_eq(h_query("SELECT checksum FROM public.rollgate_migrations WHERE version = 2"),
                     h_sha256_file(up2));
}

Test(rollout, failed_no_transaction_migration_blocks_migrate_until_hand_fix_and_repair)
{
    h_migration(1, "create_t", "CREATE TABLE t (x int);\nINSERT INTO t VALUES (1), (1), (2);\n",
                NULL);
    h_migration(2, "unique_x",
                "-- rollgate:no-transaction\nCREATE TABLE side (id int);\n"
                "CREATE UNIQUE INDEX CONCURRENTLY u ON t (x);\n",
                NULL);
    h_migration(3, "after", "CREATE TABLE after_u (id int);\n", NULL);

    struct h_result failed = h_run(H_ARGS("migrate"), DB_ENV);

    h_assert_exit(failed, 6);
    h_assert_has(failed, failed.err, "0002_unique_x.up.sql");
    h_assert_has(failed, failed.err, "23505");
    h_assert_has(failed, failed.err, "rollgate repair");
    cr_assert_str_eq(schema_state(1), "applied");
    cr_assert_str_eq(schema_state(2), "failed");
    cr_assert_str_eq(index_valid("u"), "false", "PostgreSQL should have left u INVALID");
    cr_assert_not(h_table_exists("after_u"), "ran past the failed migration");

    struct h_result blocked = h_run(H_ARGS("migrate"), DB_ENV);
    h_assert_exit(blocked, 5);
    h_assert_has(blocked, blocked.err, "rollgate repair");
    cr_assert_str_eq(schema_state(2), "failed");
    cr_assert_not(h_table_exists("after_u"));

    /* The hand fix: what ran before the build (the invalid index is the next run's). */
    h_query("DROP TABLE side");
    h_query("DELETE FROM t a USING t b WHERE a.x = b.x AND a.ctid > b.ctid");

    struct h_result repaired = h_run(H_ARGS("repair"), DB_ENV);
    h_assert_exit(repaired, 0);
    cr_assert_null(schema_state(2), "repair left version 2's row");
    cr_assert_str_eq(schema_state(1), "applied", "repair touched an applied row");

    struct h_result r = h_run(H_ARGS("migrate"), DB_ENV);
    h_assert_exit(r, 0);
    cr_assert_str_eq(index_valid("u"), "true");
    cr_assert_str_eq(schema_state(2), "applied");
    cr_assert(h_table_exists("after_u"));
    cr_assert_str_eq(schema_versions(), "1,2,3");
}

/* ---- 6. newer schema, out of order ---- */

Test(rollout, newer_schema_warns_and_exits_0_by_default_and_exits_5_when_set_to_fail)
{
    char *newer = make_dir(h_tmp_path("newer"));
    chain(newer, 3, NULL, 0);
    struct h_result up = migrate_dir(newer);
    h_assert_exit(up, 0);
    chain(h_mig_dir(), 2, NULL, 0);

    struct h_result warn = h_run(H_ARGS("migrate"), DB_ENV);

    h_assert_exit(warn, 0);
    cr_assert(logged_at_level(warn.err, "warn"), "no warning logged\n%s", h_describe(&warn));
    cr_assert_str_eq(chain_tables(3), "1,2,3");
    cr_assert_str_eq(schema_versions(), "1,2,3");

    struct h_result fail =
        h_run(H_ARGS("migrate"), DB_ENV_WITH("ROLLGATE_MIGRATIONS_ON_NEWER_SCHEMA=fail"));
    h_assert_exit(fail, 5);
    cr_assert_str_eq(chain_tables(3), "1,2,3");
    cr_assert_str_eq(schema_versions(), "1,2,3");
}

Test(rollout, out_of_order_pending_version_exits_4_unless_allow_out_of_order)
{
    h_migration(1, "create_a", "CREATE TABLE a (id int);\n", NULL);
    h_migration(3, "create_c", "CREATE TABLE c (id int);\n", NULL);
    struct h_result first = h_run(H_ARGS("migrate"), DB_ENV);
    h_assert_exit(first, 0);
    h_migration(2, "create_b", "CREATE TABLE b (id int);\n", NULL);

    struct h_result refused = h_run(H_ARGS("migrate"), DB_ENV);

    h_assert_exit(refused, 4);
    h_assert_has(refused, refused.err, "allowOutOfOrder");
    h_assert_has(refused, refused.err, "0002_create_b.up.sql");
    cr_assert_not(h_table_exists("b"));
    cr_assert_str_eq(schema_versions(), "1,3");

    struct h_result allowed =
        h_run(H_ARGS("migrate"), DB_ENV_WITH("ROLLGATE_MIGRATIONS_ALLOW_OUT_OF_ORDER=true"));
    h_assert_exit(allowed, 0);
    cr_assert(h_table_exists("b"));
    cr_assert_str_eq(schema_versions(), "1,2,3");
}

/* ---- 7. adoption and baseline ---- */

/* Tables that versions 1 and 2 would create, made by hand; the files would fail if re-run. */
static void existing_schema_with_three_files(void)
{
    h_query("CREATE TABLE a (id int)");
    h_query("CREATE TABLE b (id int)");
    h_migration(1, "create_a", "CREATE TABLE a (id int);\n", "DROP TABLE a;\n");
    h_migration(2, "create_b", "CREATE TABLE b (id int);\n", "DROP TABLE b;\n");
    h_migration(3, "create_c", "CREATE TABLE c (id int);\n", "DROP TABLE c;\n");
}

Test(rollout, adopts_golang_migrate_history_and_runs_only_newer_versions)
{
    existing_schema_with_three_files();
    h_query("CREATE TABLE schema_migrations (version bigint PRIMARY KEY, dirty boolean NOT NULL)");
    h_query("INSERT INTO schema_migrations VALUES (2, false)");

    struct h_result r = h_run(H_ARGS("migrate"), DB_ENV);

    h_assert_exit(r, 0);
    h_assert_has(r, r.err, "adopted");
    cr_assert(h_table_exists("c"));
    cr_assert_str_eq(schema_versions(), "1,2,3");
    cr_assert_str_eq(h_query("SELECT string_agg(state, ',' ORDER BY version) FROM "
                             "public.rollgate_migrations WHERE kind = 'schema'"),
                     "applied,applied,applied");
    struct h_result again = h_run(H_ARGS("migrate"), DB_ENV);
    h_assert_exit(again, 0);
}

/* The first rollout with rollgate: every replica's init container starts at once. The
 * race is repeated from a fresh start a few times, since a bad interleaving is not
 * certain in one round; correct code passes every round whatever the interleaving. */
Test(rollout, concurrent_first_runs_adopting_golang_migrate_history_all_exit_0)
{
    enum { NPROC = 16, ROUNDS = 5 };
    existing_schema_with_three_files();
    h_query("CREATE TABLE schema_migrations (version bigint PRIMARY KEY, dirty boolean NOT NULL)");
    h_query("INSERT INTO schema_migrations VALUES (2, false)");

    for (int round = 1; round <= ROUNDS; round++) {
        h_query("DROP TABLE IF EXISTS public.rollgate_migrations, c");
        struct h_result r[NPROC];
        h_run_many(NPROC, H_ARGS("migrate"), DB_ENV, r);

        for (int i = 0; i < NPROC; i++)
            cr_assert(r[i].exited && r[i].code == 0, "round %d, run %d: expected exit status 0\n%s",
                      round, i, h_describe(&r[i]));
        cr_assert(h_table_exists("c"));
        cr_assert_str_eq(schema_versions(), "1,2,3", "round %d", round);
    }
}

Test(rollout, dirty_golang_migrate_history_exits_5_naming_the_version_and_applies_nothing)
{
    existing_schema_with_three_files();
    h_query("CREATE TABLE schema_migrations (version bigint PRIMARY KEY, dirty boolean NOT NULL)");
    h_query("INSERT INTO schema_migrations VALUES (2, true)");

    struct h_result r = h_run(H_ARGS("migrate"), DB_ENV);

    h_assert_exit(r, 5);
    h_assert_has(r, r.err, "dirty");
    h_assert_has(r, r.err, "version 2");
    cr_assert_not(h_table_exists("c"));
    cr_assert_eq(schema_rows(), 0, "schema rows recorded from a dirty history");
}

Test(rollout, baseline_records_versions_without_running_them_and_is_refused_a_second_time)
{
    existing_schema_with_three_files();

    struct h_result b = h_run(H_ARGS("baseline", "--version", "2"), DB_ENV);

    h_assert_exit(b, 0);
    cr_assert_str_eq(schema_versions(), "1,2", "%s", h_describe(&b));
    cr_assert_not(h_table_exists("c"));

    struct h_result m = h_run(H_ARGS("migrate"), DB_ENV);
    h_assert_exit(m, 0);
    cr_assert(h_table_exists("c"));
    cr_assert_str_eq(schema_versions(), "1,2,3");

    struct h_result again = h_run(H_ARGS("baseline", "--version", "2"), DB_ENV);
    h_assert_exit(again, 5);
    cr_assert_str_eq(schema_versions(), "1,2,3");
}

/* ---- 8. validate ---- */

Test(rollout, validate_offline_accepts_a_valid_directory)
{
    chain(h_mig_dir(), 3, NULL, 0);
    h_write_file(h_mig_path("R__views.sql"), "CREATE OR REPLACE VIEW v AS SELECT 1 AS x;\n");
    data_script("0001_seed.sql", "SELECT 1;\n");

    struct h_result r = h_run(H_ARGS("validate"), OFFLINE_ENV);

    h_assert_exit(r, 0);
}

Test(rollout, validate_offline_rejects_a_bad_file_name_with_exit_4_naming_it)
{
    chain(h_mig_dir(), 2, NULL, 0);
    h_write_file(h_mig_path("0003_add_column.sql"), "ALTER TABLE t1 ADD COLUMN x int;\n");

    struct h_result r = h_run(H_ARGS("validate"), OFFLINE_ENV);

    h_assert_exit(r, 4);
    h_assert_has(r, r.err, "0003_add_column.sql");
}

Test(rollout, validate_offline_rejects_a_mid_file_commit_with_exit_4_naming_file_and_line)
{
    h_migration(1, "fine", "CREATE TABLE fine (id int);\n", NULL);
    h_migration(2, "sneaky", "CREATE TABLE a (id int);\n\nCOMMIT;\nCREATE TABLE b (id int);\n",
                NULL);

    struct h_result r = h_run(H_ARGS("validate"), OFFLINE_ENV);

    h_assert_exit(r, 4);
    h_assert_has(r, r.err, "0002_sneaky.up.sql:3");
}

Test(rollout, validate_online_exits_0_when_clean_and_5_on_drift)
{
    h_migration(1, "create_a", "CREATE TABLE a (id int);\n", NULL);
    char *up2 = h_migration(2, "create_b", "CREATE TABLE b (id int);\n", NULL);
    struct h_result m = h_run(H_ARGS("migrate"), DB_ENV);
    h_assert_exit(m, 0);

    struct h_result clean = h_run(H_ARGS("validate"), DB_ENV);
    h_assert_exit(clean, 0);

    h_write_file(up2, "CREATE TABLE b (id bigint);\n");
    struct h_result drift = h_run(H_ARGS("validate"), DB_ENV);
    h_assert_exit(drift, 5);
    h_assert_has(drift, drift.err, "0002_create_b.up.sql");
}

/* ---- 9. new ---- */

Test(rollout, new_writes_the_next_numbered_pair_and_prints_both_paths)
{
    char *d = make_dir(h_tmp_path("fresh"));

    struct h_result first = h_run(H_ARGS("new", "add_users", "--dir", d), H_NOENV);

    h_assert_exit(first, 0);
    cr_assert_str_eq(files_ending(d, ".sql"), "0001_add_users.down.sql\n0001_add_users.up.sql\n",
                     "%s", h_describe(&first));
    h_assert_has(first, first.out, h_fmt("%s/0001_add_users.up.sql", d));
    h_assert_has(first, first.out, h_fmt("%s/0001_add_users.down.sql", d));

    struct h_result second = h_run(H_ARGS("new", "second", "--dir", d), H_NOENV);
    h_assert_exit(second, 0);
    cr_assert_str_eq(files_ending(d, ".up.sql"), "0001_add_users.up.sql\n0002_second.up.sql\n",
                     "%s", h_describe(&second));
    cr_assert_str_eq(files_ending(d, ".down.sql"),
                     "0001_add_users.down.sql\n0002_second.down.sql\n");
    h_assert_has(second, second.out, h_fmt("%s/0002_second.up.sql", d));
    h_assert_has(second, second.out, h_fmt("%s/0002_second.down.sql", d));

    /* An unedited template is refused (a forgotten migration), and the names new chose
     * are a valid set once the SQL is in. */
    struct h_result unedited =
        h_run(H_ARGS("validate", "--dir", d),
              H_ENV(unreachable_url(), "ROLLGATE_DATABASE_CONNECT_TIMEOUT=1s"));
    h_assert_exit(unedited, 4);
    h_assert_has(unedited, unedited.err, "0001_add_users.up.sql: holds no SQL statement");
    h_write_file(h_fmt("%s/0001_add_users.up.sql", d), "CREATE TABLE users (id int);\n");
    h_write_file(h_fmt("%s/0001_add_users.down.sql", d), "DROP TABLE users;\n");
    h_write_file(h_fmt("%s/0002_second.up.sql", d), "CREATE TABLE second (id int);\n");
    h_write_file(h_fmt("%s/0002_second.down.sql", d), "DROP TABLE second;\n");
    struct h_result v = h_run(H_ARGS("validate", "--dir", d),
                              H_ENV(unreachable_url(), "ROLLGATE_DATABASE_CONNECT_TIMEOUT=1s"));
    h_assert_exit(v, 0);
}

/* Runs `new next_step` in a directory holding <existing>_x.up.sql and returns the new
 * version, after checking it is 14 digits and the pair was written. */
static long long new_after_timestamp(const char *existing)
{
    char *d = make_dir(h_tmp_path("stamped"));
    h_write_file(h_fmt("%s/%s_x.up.sql", d, existing), "SELECT 1;\n");

    struct h_result r = h_run(H_ARGS("new", "next_step", "--dir", d), H_NOENV);

    h_assert_exit(r, 0);
    char *ups = files_ending(d, "_next_step.up.sql");
    cr_assert_eq(strlen(ups), strlen("20240101120000_next_step.up.sql\n"),
                 "expected one 14-digit version, got \"%s\"\n%s", ups, h_describe(&r));
    cr_assert_eq(strspn(ups, "0123456789"), 14, "\"%s\"", ups);
    char *stem = h_fmt("%.14s", ups);
    cr_assert_str_eq(files_ending(d, "_next_step.down.sql"),
                     h_fmt("%s_next_step.down.sql\n", stem));
    h_assert_has(r, r.out, h_fmt("%s/%s_next_step.up.sql", d, stem));
    return strtoll(stem, NULL, 10);
}

Test(rollout, new_after_a_timestamp_version_writes_a_later_14_digit_timestamp)
{
    cr_assert_gt(new_after_timestamp("20240101120000"), 20240101120000LL);
}

Test(rollout, new_after_a_future_timestamp_version_still_writes_a_greater_version)
{
    cr_assert_gt(new_after_timestamp("29991231235959"), 29991231235959LL);
}

Test(rollout, new_with_an_invalid_name_exits_2_and_writes_nothing)
{
    char *d = make_dir(h_tmp_path("fresh"));

    struct h_result r = h_run(H_ARGS("new", "bad name", "--dir", d), H_NOENV);

    h_assert_exit(r, 2);
    cr_assert_str_eq(files_ending(d, ".sql"), "");
}

/* ---- 10. status with scripts ---- */

Test(rollout, status_json_lists_only_schema_migrations_when_scripts_are_present)
{
    h_migration(1, "create_a", "CREATE TABLE a (id int);\n", NULL);
    h_migration(2, "create_b", "CREATE TABLE b (id int);\n", NULL);
    h_write_file(h_mig_path("R__views.sql"), "CREATE OR REPLACE VIEW v AS SELECT 1 AS x;\n");
    data_script("0001_seed.sql", "INSERT INTO a SELECT 1 WHERE NOT EXISTS (SELECT 1 FROM a);\n");
    struct h_result m = h_run(H_ARGS("migrate"), DB_ENV);
    h_assert_exit(m, 0);
    cr_assert_eq(h_query_int("SELECT count(*) FROM public.rollgate_migrations WHERE kind <> "
                             "'schema'"),
                 2, "expected the repeatable and the data script recorded");

    struct h_result r = h_run(H_ARGS("status", "--output", "json"), DB_ENV);

    h_assert_exit(r, 0);
    cr_assert_str_eq(
        h_query1("SELECT jsonb_array_length(($1::jsonb) -> 'migrations')::text", r.out), "2", "%s",
        h_describe(&r));
    cr_assert_str_eq(h_json(r.out, "{migrations,0,version}"), "1");
    cr_assert_str_eq(h_json(r.out, "{migrations,1,version}"), "2");
    cr_assert_str_eq(h_json(r.out, "{current}"), "2");
    cr_assert_str_eq(h_json(r.out, "{pending}"), "0");
    cr_assert_str_eq(h_json(r.out, "{unknown}"), "0");
    cr_assert_str_eq(h_json(r.out, "{missing}"), "0");
    struct h_result code = h_run(H_ARGS("status", "--exit-code"), DB_ENV);
    h_assert_exit(code, 0);
}

/* An older image without a script that a newer one recorded is not a newer schema. */
Test(rollout, scripts_recorded_by_a_newer_image_are_not_unknown_versions)
{
    h_migration(1, "create_a", "CREATE TABLE a (id int);\n", NULL);
    char *views = h_mig_path("R__views.sql");
    h_write_file(views, "CREATE OR REPLACE VIEW v AS SELECT 1 AS x;\n");
    char *seed = data_script("0001_seed.sql", "SELECT 1;\n");
    struct h_result m = h_run(H_ARGS("migrate"), DB_ENV);
    h_assert_exit(m, 0);
    cr_assert_eq(unlink(views), 0);
    cr_assert_eq(unlink(seed), 0);

    struct h_result r =
        h_run(H_ARGS("migrate"), DB_ENV_WITH("ROLLGATE_MIGRATIONS_ON_NEWER_SCHEMA=fail"));
    h_assert_exit(r, 0);
    struct h_result s = h_run(H_ARGS("status", "--output", "json"), DB_ENV);
    h_assert_exit(s, 0);
    cr_assert_str_eq(h_json(s.out, "{unknown}"), "0", "%s", h_describe(&s));
    cr_assert_str_eq(h_json(s.out, "{missing}"), "0", "%s", h_describe(&s));
}

/* ---- 11. racing a no-transaction migration ---- */

/* Version 1 of the migrations directory: a no-transaction migration that logs itself in
 * run_log, then blocks, outside any transaction, until the test opens the gate (bounded,
 * so a broken test cannot hang for ever), then builds idx_t. */
static void gated_no_transaction_migration(void)
{
    h_query("CREATE TABLE gate (open boolean)");
    h_query("CREATE TABLE t (x int)");
    h_query("CREATE TABLE run_log (v int)");
    h_migration(1, "gated_index",
                "-- rollgate:no-transaction\n"
                "INSERT INTO run_log VALUES (1);\n" H_GATE_WAIT_SQL
                "CREATE INDEX CONCURRENTLY idx_t ON t (x);\n",
                NULL);
}

static void open_gate(void)
{
    h_query("INSERT INTO gate VALUES (true)");
}

/* Starts migrate and returns once version 1 is marked running and its gate statement is
 * executing; fails the test (after opening the gate) when it never gets there. */
static struct h_proc *start_gated_run(void)
{
    struct h_proc *p = h_start(H_ARGS("migrate"), DB_ENV);
    bool table =
        h_wait_until("SELECT to_regclass('public.rollgate_migrations') IS NOT NULL", p, 120 * 1000);
    bool running =
        table && h_wait_until("SELECT EXISTS (SELECT 1 FROM public.rollgate_migrations WHERE "
                              "version = 1 AND state = 'running') AND EXISTS (SELECT 1 FROM "
                              "pg_stat_activity WHERE datname = current_database() AND pid <> "
                              "pg_backend_pid() AND state = 'active' AND query LIKE '%FROM gate%')",
                              p, 120 * 1000);
    if (!running) {
        open_gate();
        struct h_result early = h_wait(p);
        cr_assert_fail("the run never reached version 1's gate while marked running\n%s",
                       h_describe(&early));
    }
    return p;
}

Test(rollout, run_started_during_anothers_no_transaction_migration_waits_and_both_apply_once)
{
    gated_no_transaction_migration();
    h_migration(2, "rename_index",
                "ALTER INDEX idx_t RENAME TO idx_t_x;\nINSERT INTO run_log VALUES (2);\n", NULL);

    struct h_proc *a = start_gated_run();
    struct h_proc *b = h_start(H_ARGS("migrate"), DB_ENV);
    bool waiting = h_proc_wait_stderr(b, "waiting", 120 * 1000);
    bool b_alive = h_proc_alive(b);
    bool a_alive = h_proc_alive(a);
    open_gate();
    struct h_result ra = h_wait(a);
    struct h_result rb = h_wait(b);

    cr_assert(a_alive, "run A ended while gated\n%s", h_describe(&ra));
    cr_assert(b_alive, "run B ended while version 1 was still running\n%s", h_describe(&rb));
    cr_assert(waiting, "run B did not log that it waits\n%s", h_describe(&rb));
    h_assert_exit(ra, 0);
    h_assert_exit(rb, 0);
    cr_assert_str_eq(h_query("SELECT string_agg(v::text, ',' ORDER BY v) FROM run_log"), "1,2",
                     "a migration ran twice or never");
    cr_assert_str_eq(index_valid("idx_t_x"), "true");
    cr_assert_str_eq(schema_versions(), "1,2");
    cr_assert_str_eq(h_query("SELECT string_agg(state, ',' ORDER BY version) FROM "
                             "public.rollgate_migrations"),
                     "applied,applied");
}

Test(rollout, repair_leaves_the_mark_of_a_no_transaction_migration_that_is_still_running)
{
    gated_no_transaction_migration();
    struct h_proc *a = start_gated_run();

    /* An operator runs repair while the migration is in fact still under way. */
    struct h_result repair = h_run(H_ARGS("repair"), DB_ENV);
    char *state_after_repair = schema_state(1);
    open_gate();
    struct h_result ra = h_wait(a);
    struct h_result next = h_run(H_ARGS("migrate"), DB_ENV);

    cr_assert(state_after_repair && strcmp(state_after_repair, "running") == 0,
              "repair cleared the mark of a migration still running (state now %s)\n%s",
              state_after_repair ? state_after_repair : "NULL: row deleted", h_describe(&repair));
    h_assert_exit(ra, 0);
    cr_assert_str_eq(schema_state(1) ? schema_state(1) : "NULL: no row", "applied",
                     "run A exited 0 without a history row for what it applied\n%s",
                     h_describe(&ra));
    h_assert_exit(next, 0);
    cr_assert_str_eq(h_query("SELECT string_agg(v::text, ',') FROM run_log"), "1",
                     "version 1 ran again");
}

Test(rollout, sigterm_during_a_no_transaction_migration_marks_it_failed_and_says_to_repair)
{
    gated_no_transaction_migration();
    struct h_proc *a = start_gated_run();

    cr_assert_eq(kill(h_proc_pid(a), SIGTERM), 0);
    struct h_result r = h_wait(a);
    open_gate();

    h_assert_exit(r, 143);
    /* Cancelled, not abandoned. */
    cr_assert(h_wait_until("SELECT NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE datname = "
                           "current_database() AND pid <> pg_backend_pid() AND state = 'active' "
                           "AND query LIKE '%FROM gate%')",
                           NULL, 20 * 1000),
              "the gate statement was not cancelled");
    /* Not left running, which would make every later run wait for it. */
    cr_assert_str_eq(schema_state(1), "failed", "%s", h_describe(&r));
    cr_assert_not(h_table_exists("idx_t"));
    struct h_result next = h_run(H_ARGS("migrate"), DB_ENV);
    h_assert_exit(next, 5);
    h_assert_has(next, next.err, "rollgate repair");
    /* A statement outside a transaction cannot be rolled back: the pod's termination
     * message must not claim it was, and must say what to do. */
    h_assert_has(r, r.termlog, "repair");
}
