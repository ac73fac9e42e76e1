/* The command line and the read-only commands: status, version, --version, --help, usage
 * errors and invalid migration files. */
#include <criterion/criterion.h>

#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

TestSuite(commands, .init = h_setup, .fini = h_teardown);

#define DB_ENV H_ENV(h_env_url(), h_env_dir())

/* Versions 1, 2 and 10: the newest is not the count. */
static void three_migrations(char **up)
{
    char *p1 =
        h_migration(1, "create_users", "CREATE TABLE users (id int);\n", "DROP TABLE users;\n");
    char *p2 = h_migration(2, "add_email", "ALTER TABLE users ADD COLUMN email text;\n", NULL);
    char *p10 = h_migration(10, "create_orders", "CREATE TABLE orders (id int);\n", NULL);
    if (up) {
        up[0] = p1;
        up[1] = p2;
        up[2] = p10;
    }
}

static void migrate_ok(void)
{
    struct h_result r = h_run(H_ARGS("migrate"), DB_ENV);
    h_assert_exit(r, 0);
}

/* The line of text that contains needle, or NULL. */
static char *line_with(const char *text, const char *needle)
{
    const char *hit = strstr(text, needle);
    if (!hit)
        return NULL;
    const char *start = hit;
    while (start > text && start[-1] != '\n')
        start--;
    size_t len = strcspn(start, "\n");
    return h_fmt("%.*s", (int)len, start);
}

static long long json_int(const struct h_result *r, const char *path)
{
    char *v = h_json(r->out, path);
    cr_assert_not_null(v, "no %s in the JSON\n%s", path, h_describe(r));
    char *end = NULL;
    long long n = strtoll(v, &end, 10);
    cr_assert(end != v && *end == '\0', "%s is \"%s\", not an integer\n%s", path, v, h_describe(r));
    return n;
}

static void assert_json_str(const struct h_result *r, const char *path, const char *want)
{
    char *v = h_json(r->out, path);
    cr_assert_not_null(v, "no %s in the JSON\n%s", path, h_describe(r));
    cr_assert_str_eq(v, want, "%s\n%s", path, h_describe(r));
}

static long long json_array_len(const struct h_result *r, const char *key)
{
    return strtoll(h_query2("SELECT jsonb_array_length(($1::jsonb) -> $2)", r->out, key), NULL, 10);
}

Test(commands, status_text_shows_pending_then_applied)
{
    three_migrations(NULL);

    struct h_result before = h_run(H_ARGS("status"), DB_ENV);
    h_assert_exit(before, 0);
    for (int i = 0; i < 3; i++) {
        const char *title = (const char *[]){"create_users", "add_email", "create_orders"}[i];
        char *line = line_with(before.out, title);
        cr_assert_not_null(line, "status does not list %s\n%s", title, h_describe(&before));
        cr_assert(strstr(line, "pending"), "%s is not shown pending\n%s", title,
                  h_describe(&before));
    }

    migrate_ok();
    struct h_result after = h_run(H_ARGS("status"), DB_ENV);
    h_assert_exit(after, 0);
    for (int i = 0; i < 3; i++) {
        const char *title = (const char *[]){"create_users", "add_email", "create_orders"}[i];
        char *line = line_with(after.out, title);
        cr_assert_not_null(line, "status does not list %s\n%s", title, h_describe(&after));
        cr_assert(strstr(line, "applied") && !strstr(line, "pending"),
                  "%s is not shown applied\n%s", title, h_describe(&after));
    }
}

Test(commands, status_json_before_migrate_reports_everything_pending)
{
    three_migrations(NULL);

    struct h_result r = h_run(H_ARGS("status", "--output", "json"), DB_ENV);

    h_assert_exit(r, 0);
    cr_assert_eq(json_int(&r, "{current}"), 0);
    cr_assert_eq(json_int(&r, "{latest}"), 10);
    cr_assert_eq(json_int(&r, "{pending}"), 3);
    cr_assert_eq(json_int(&r, "{changed}"), 0);
    cr_assert_eq(json_int(&r, "{missing}"), 0);
    cr_assert_eq(json_int(&r, "{unknown}"), 0);
    cr_assert_eq(json_int(&r, "{failed}"), 0);
    cr_assert_eq(json_array_len(&r, "migrations"), 3);
    cr_assert_eq(json_int(&r, "{migrations,0,version}"), 1);
    cr_assert_eq(json_int(&r, "{migrations,2,version}"), 10);
    assert_json_str(&r, "{migrations,0,title}", "create_users");
    for (int i = 0; i < 3; i++)
        assert_json_str(&r, h_fmt("{migrations,%d,state}", i), "pending");
}

Test(commands, status_json_after_migrate_reports_applied_with_checksums)
{
    char *up[3];
    three_migrations(up);
    migrate_ok();

    struct h_result r = h_run(H_ARGS("status", "--output", "json"), DB_ENV);

    h_assert_exit(r, 0);
    cr_assert_eq(json_int(&r, "{current}"), 10);
    cr_assert_eq(json_int(&r, "{latest}"), 10);
    cr_assert_eq(json_int(&r, "{pending}"), 0);
    cr_assert_eq(json_array_len(&r, "migrations"), 3);
    for (int i = 0; i < 3; i++) {
        assert_json_str(&r, h_fmt("{migrations,%d,state}", i), "applied");
        assert_json_str(&r, h_fmt("{migrations,%d,checksum}", i), h_sha256_file(up[i]));
        cr_assert_not_null(h_json(r.out, h_fmt("{migrations,%d,applied_at}", i)),
                           "no applied_at\n%s", h_describe(&r));
        char *by = h_json(r.out, h_fmt("{migrations,%d,applied_by}", i));
        cr_assert(by && *by, "no applied_by\n%s", h_describe(&r));
    }
}

Test(commands, status_exit_code_is_11_when_pending_0_when_current_5_on_drift)
{
    char *up[3];
    three_migrations(up);

    struct h_result plain = h_run(H_ARGS("status"), DB_ENV);
    h_assert_exit(plain, 0);
    struct h_result pending = h_run(H_ARGS("status", "--exit-code"), DB_ENV);
    h_assert_exit(pending, 11);

    migrate_ok();
    struct h_result current = h_run(H_ARGS("status", "--exit-code"), DB_ENV);
    h_assert_exit(current, 0);

    h_write_file(up[1], "ALTER TABLE users ADD COLUMN email varchar(200);\n");
    struct h_result drift = h_run(H_ARGS("status", "--exit-code"), DB_ENV);
    h_assert_exit(drift, 5);
}

Test(commands, status_json_marks_a_changed_file)
{
    char *up[3];
    three_migrations(up);
    migrate_ok();
    h_write_file(up[1], "ALTER TABLE users ADD COLUMN email varchar(200);\n");

    struct h_result r = h_run(H_ARGS("status", "--output", "json"), DB_ENV);

    h_assert_exit(r, 0);
    cr_assert_eq(json_int(&r, "{changed}"), 1);
    assert_json_str(&r, "{migrations,1,state}", "changed");
    assert_json_str(&r, "{migrations,0,state}", "applied");
}

Test(commands, status_json_reports_missing_and_unknown_versions)
{
    char *up[3];
    three_migrations(up);
    migrate_ok();

    /* Below the newest file: missing. */
    cr_assert_eq(unlink(up[1]), 0);
    struct h_result missing = h_run(H_ARGS("status", "--output", "json"), DB_ENV);
    h_assert_exit(missing, 0);
    cr_assert_eq(json_int(&missing, "{missing}"), 1);
    assert_json_str(&missing, "{migrations,1,state}", "missing");
    cr_assert_eq(json_int(&missing, "{migrations,1,version}"), 2);

    /* Above the newest file (an older image after a newer one): unknown. */
    h_migration(2, "add_email", "ALTER TABLE users ADD COLUMN email text;\n", NULL);
    cr_assert_eq(unlink(up[2]), 0);
    struct h_result unknown = h_run(H_ARGS("status", "--output", "json"), DB_ENV);
    h_assert_exit(unknown, 0);
    cr_assert_eq(json_int(&unknown, "{unknown}"), 1);
    cr_assert_eq(json_int(&unknown, "{latest}"), 2);
    assert_json_str(&unknown, "{migrations,2,state}", "unknown");
    cr_assert_eq(json_int(&unknown, "{migrations,2,version}"), 10);
}

Test(commands, version_prints_0_before_and_the_newest_applied_after)
{
    three_migrations(NULL);

    struct h_result text0 = h_run(H_ARGS("version"), DB_ENV);
    h_assert_exit(text0, 0);
    cr_assert_str_eq(text0.out, "0\n", "%s", h_describe(&text0));
    struct h_result json0 = h_run(H_ARGS("version", "--output", "json"), DB_ENV);
    h_assert_exit(json0, 0);
    cr_assert_str_eq(h_query2("SELECT $1::jsonb = $2::jsonb", json0.out, "{\"version\":0}"), "t",
                     "%s", h_describe(&json0));

    migrate_ok();
    struct h_result text = h_run(H_ARGS("version"), DB_ENV);
    h_assert_exit(text, 0);
    cr_assert_str_eq(text.out, "10\n", "%s", h_describe(&text));
    struct h_result json = h_run(H_ARGS("version", "--output", "json"), DB_ENV);
    h_assert_exit(json, 0);
    cr_assert_str_eq(h_query2("SELECT $1::jsonb = $2::jsonb", json.out, "{\"version\":10}"), "t",
                     "%s", h_describe(&json));
}

Test(commands, options_work_before_and_after_the_command)
{
    three_migrations(NULL);

    struct h_result before = h_run(H_ARGS("--database-url", h_db_url(), "--dir", h_mig_dir(),
                                          "--log-level", "warn", "status", "--output", "json"),
                                   H_NOENV);
    h_assert_exit(before, 0);
    cr_assert_eq(json_int(&before, "{pending}"), 3);

    struct h_result after = h_run(H_ARGS("status", "--output", "json", "--database-url", h_db_url(),
                                         "--dir", h_mig_dir(), "--log-level", "warn"),
                                  H_NOENV);
    h_assert_exit(after, 0);
    cr_assert_eq(json_int(&after, "{pending}"), 3);
}

Test(commands, dash_dash_version_prints_the_version)
{
    struct h_result r = h_run(H_ARGS("--version"), H_NOENV);

    h_assert_exit(r, 0);
#ifdef RG_VERSION
    cr_assert_str_eq(r.out, "rollgate " RG_VERSION "\n", "%s", h_describe(&r));
#else
    cr_assert_eq(strncmp(r.out, "rollgate ", 9), 0, "%s", h_describe(&r));
#endif
}

Test(commands, help_lists_the_commands)
{
    struct h_result r = h_run(H_ARGS("--help"), H_NOENV);

    h_assert_exit(r, 0);
    h_assert_has(r, r.out, "migrate");
    h_assert_has(r, r.out, "status");
    h_assert_has(r, r.out, "version");
    struct h_result s = h_run(H_ARGS("-h"), H_NOENV);
    h_assert_exit(s, 0);
    cr_assert_str_eq(s.out, r.out);
}

Test(commands, each_command_has_its_own_help)
{
    struct h_result m = h_run(H_ARGS("migrate", "--help"), H_NOENV);
    h_assert_exit(m, 0);
    h_assert_has(m, m.out, "migrate");
    h_assert_has(m, m.out, "--target");

    struct h_result s = h_run(H_ARGS("status", "--help"), H_NOENV);
    h_assert_exit(s, 0);
    h_assert_has(s, s.out, "--exit-code");
    h_assert_has(s, s.out, "--output");

    struct h_result v = h_run(H_ARGS("version", "-h"), H_NOENV);
    h_assert_exit(v, 0);
    h_assert_has(v, v.out, "--output");

    cr_assert_str_neq(m.out, s.out, "migrate and status print the same help");
    cr_assert_str_neq(s.out, v.out, "status and version print the same help");
}

Test(commands, unknown_command_exits_2)
{
    struct h_result r = h_run(H_ARGS("frobnicate"), DB_ENV);

    h_assert_exit(r, 2);
    h_assert_has(r, r.err, "frobnicate");
    cr_assert_str_eq(r.out, "");
}

Test(commands, unknown_option_exits_2)
{
    struct h_result r = h_run(H_ARGS("migrate", "--frobnicate"), DB_ENV);

    h_assert_exit(r, 2);
    h_assert_has(r, r.err, "--frobnicate");
    cr_assert_not(h_table_exists("public.rollgate_migrations"), "ran despite a usage error");
}

Test(commands, missing_option_value_exits_2)
{
    struct h_result r = h_run(H_ARGS("migrate", "--dir"), DB_ENV);

    h_assert_exit(r, 2);
    h_assert_has(r, r.err, "--dir");
}

Test(commands, no_command_exits_2)
{
    struct h_result r = h_run(H_ARGS("--log-level", "info"), DB_ENV);

    h_assert_exit(r, 2);
}

Test(commands, bad_file_name_exits_4_naming_the_file)
{
    h_migration(1, "create_users", "CREATE TABLE users (id int);\n", NULL);
    h_write_file(h_mig_path("00a2_users.up.sql"), "SELECT 1;\n");

    struct h_result r = h_run(H_ARGS("migrate"), DB_ENV);

    h_assert_exit(r, 4);
    h_assert_has(r, r.err, "00a2_users.up.sql");
    cr_assert_not(h_table_exists("users"), "migrated despite an invalid file");
}

Test(commands, duplicate_version_exits_4_naming_both_files)
{
    h_migration(1, "create_users", "CREATE TABLE users (id int);\n", NULL);
    h_migration(1, "create_accounts", "CREATE TABLE accounts (id int);\n", NULL);

    struct h_result r = h_run(H_ARGS("migrate"), DB_ENV);

    h_assert_exit(r, 4);
    h_assert_has(r, r.err, "0001_create_users.up.sql");
    h_assert_has(r, r.err, "0001_create_accounts.up.sql");
    cr_assert_not(h_table_exists("users") || h_table_exists("accounts"));
}

Test(commands, missing_directory_exits_4_naming_it)
{
    char *dir = h_tmp_path("no-such-migrations");

    struct h_result r = h_run(H_ARGS("migrate", "--dir", dir), H_ENV(h_env_url()));

    h_assert_exit(r, 4);
    h_assert_has(r, r.err, "no-such-migrations");
}

Test(commands, down_file_without_up_exits_4_naming_it)
{
    h_migration(1, "create_users", "CREATE TABLE users (id int);\n", NULL);
    h_write_file(h_mig_path("0002_orphan.down.sql"), "DROP TABLE orphan;\n");

    struct h_result r = h_run(H_ARGS("migrate"), DB_ENV);

    h_assert_exit(r, 4);
    h_assert_has(r, r.err, "0002_orphan.down.sql");
}

Test(commands, status_also_refuses_invalid_files_with_4)
{
    h_write_file(h_mig_path("00a2_users.up.sql"), "SELECT 1;\n");

    struct h_result r = h_run(H_ARGS("status"), DB_ENV);

    h_assert_exit(r, 4);
    h_assert_has(r, r.err, "00a2_users.up.sql");
}

Test(commands, new_after_the_highest_possible_version_exits_4_and_writes_nothing)
{
    h_write_file(h_mig_path("9223372036854775807_last.up.sql"), "SELECT 1;\n");

    struct h_result r = h_run(H_ARGS("new", "next", "--dir", h_mig_dir()), H_NOENV);

    h_assert_exit(r, 4);
    h_assert_has(r, r.err, "9223372036854775807");
    size_t files = 0;
    DIR *d = opendir(h_mig_dir());
    cr_assert_not_null(d);
    for (struct dirent *e; (e = readdir(d));)
        files += e->d_name[0] != '.';
    closedir(d);
    cr_assert_eq(files, 1, "new wrote a file\n%s", h_describe(&r));
}
