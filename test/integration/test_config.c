/* Configuration as the binary sees it: every rejection exits 3 and names where the bad
 * value came from; precedence between sources; no password ever reaches the output. */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "harness.h"

TestSuite(config, .init = h_setup, .fini = h_teardown);

#define SECRET "Hunter2-Secret-Pw"

/* Everything a migrate run needs, so the only thing wrong is what a test adds. */
static void one_migration(void)
{
    h_migration(1, "create_a", "CREATE TABLE a (id int);\n", NULL);
}

static struct h_result migrate_with(const char *extra)
{
    one_migration();
    return h_run(H_ARGS("migrate"), H_ENV(h_env_url(), h_env_dir(), extra));
}

Test(config, bad_env_duration_exits_3_naming_the_variable)
{
    struct h_result r = migrate_with("ROLLGATE_LEASE_DURATION=fifteen");

    h_assert_exit(r, 3);
    h_assert_has(r, r.err, "env ROLLGATE_LEASE_DURATION");
    cr_assert_not(h_table_exists("a"), "migrated despite a bad configuration");
}

Test(config, out_of_range_env_duration_exits_3_naming_the_variable)
{
    struct h_result r = migrate_with("ROLLGATE_DATABASE_CONNECT_RETRY=-5s");

    h_assert_exit(r, 3);
    h_assert_has(r, r.err, "env ROLLGATE_DATABASE_CONNECT_RETRY");
}

Test(config, bad_env_enum_exits_3_naming_the_variable)
{
    struct h_result r = migrate_with("ROLLGATE_LEASE_MODE=sometimes");

    h_assert_exit(r, 3);
    h_assert_has(r, r.err, "env ROLLGATE_LEASE_MODE");
}

Test(config, bad_env_log_format_exits_3_naming_the_variable)
{
    struct h_result r = migrate_with("ROLLGATE_LOG_FORMAT=xml");

    h_assert_exit(r, 3);
    h_assert_has(r, r.err, "env ROLLGATE_LOG_FORMAT");
}

Test(config, bad_env_bool_exits_3_naming_the_variable)
{
    struct h_result r = migrate_with("ROLLGATE_AUTO_MIGRATE=maybe");

    h_assert_exit(r, 3);
    h_assert_has(r, r.err, "env ROLLGATE_AUTO_MIGRATE");
}

Test(config, bad_env_bool_under_the_full_name_exits_3_naming_it)
{
    struct h_result r = migrate_with("ROLLGATE_MIGRATIONS_AUTO_MIGRATE=maybe");

    h_assert_exit(r, 3);
    h_assert_has(r, r.err, "env ROLLGATE_MIGRATIONS_AUTO_MIGRATE");
}

static struct h_result migrate_with_config(const char *yaml)
{
    one_migration();
    char *file = h_tmp_path("config.yaml");
    h_write_file(file, yaml);
    return h_run(H_ARGS("migrate", "--config", file), H_ENV(h_env_url(), h_env_dir()));
}

Test(config, unknown_yaml_key_exits_3_with_file_line_and_column)
{
    struct h_result r = migrate_with_config("database:\n"
                                            "  schema: public\n"
                                            "migrations:\n"
                                            "  autoMigrate: true\n"
                                            "  bogus: 1\n");

    h_assert_exit(r, 3);
    h_assert_has(r, r.err, "config.yaml:5:3");
    h_assert_has(r, r.err, "bogus");
}

Test(config, wrong_yaml_value_exits_3_with_file_line_and_key)
{
    struct h_result r = migrate_with_config("lease:\n"
                                            "  duration: soon\n");

    h_assert_exit(r, 3);
    h_assert_has(r, r.err, "config.yaml:2:");
    h_assert_has(r, r.err, "lease.duration");
}

Test(config, yaml_syntax_error_exits_3_naming_the_file)
{
    struct h_result r = migrate_with_config("database:\n"
                                            "  schema: [public\n"
                                            "migrations:\n"
                                            "  dir: x\n");

    h_assert_exit(r, 3);
    h_assert_has(r, r.err, "config.yaml:");
}

Test(config, bad_flag_value_exits_3_naming_the_flag)
{
    one_migration();
    struct h_result t =
        h_run(H_ARGS("migrate", "--timeout", "soon"), H_ENV(h_env_url(), h_env_dir()));
    h_assert_exit(t, 3);
    h_assert_has(t, t.err, "flag --timeout");

    struct h_result f =
        h_run(H_ARGS("migrate", "--log-format", "xml"), H_ENV(h_env_url(), h_env_dir()));
    h_assert_exit(f, 3);
    h_assert_has(f, f.err, "flag --log-format");

    struct h_result m =
        h_run(H_ARGS("migrate", "--lease-mode", "sometimes"), H_ENV(h_env_url(), h_env_dir()));
    h_assert_exit(m, 3);
    h_assert_has(m, m.err, "flag --lease-mode");

    struct h_result v =
        h_run(H_ARGS("migrate", "--target", "newest"), H_ENV(h_env_url(), h_env_dir()));
    h_assert_exit(v, 3);
    h_assert_has(v, v.err, "flag --target");
    cr_assert_not(h_table_exists("a"), "migrated despite a bad flag");
}

Test(config, missing_config_file_exits_3_naming_it)
{
    one_migration();
    char *file = h_tmp_path("no-such-config.yaml");

    struct h_result r = h_run(H_ARGS("migrate", "--config", file), H_ENV(h_env_url(), h_env_dir()));

    h_assert_exit(r, 3);
    h_assert_has(r, r.err, "no-such-config.yaml");
}

Test(config, missing_config_file_from_env_exits_3_naming_it)
{
    one_migration();
    char *file = h_tmp_path("no-such-config.yaml");

    struct h_result r = h_run(H_ARGS("migrate"),
                              H_ENV(h_env_url(), h_env_dir(), h_fmt("ROLLGATE_CONFIG=%s", file)));

    h_assert_exit(r, 3);
    h_assert_has(r, r.err, "no-such-config.yaml");
}

Test(config, url_and_url_file_both_set_exits_3)
{
    one_migration();
    char *url_file = h_tmp_path("database-url");
    h_write_file(url_file, h_db_url());

    struct h_result r =
        h_run(H_ARGS("migrate"),
              H_ENV(h_env_url(), h_env_dir(), h_fmt("ROLLGATE_DATABASE_URL_FILE=%s", url_file)));

    h_assert_exit(r, 3);
    cr_assert(strstr(r.err, "urlFile") || strstr(r.err, "ROLLGATE_DATABASE_URL_FILE"),
              "the message does not name urlFile\n%s", h_describe(&r));
    cr_assert_not(h_table_exists("a"));
}

Test(config, url_file_supplies_the_database_url)
{
    one_migration();
    char *url_file = h_tmp_path("database-url");
    /* As a Kubernetes secret volume often has it: with a trailing newline. */
    h_write_file(url_file, h_fmt("%s\n", h_db_url()));

    struct h_result r = h_run(H_ARGS("migrate"),
                              H_ENV(h_env_dir(), h_fmt("ROLLGATE_DATABASE_URL_FILE=%s", url_file)));

    h_assert_exit(r, 0);
    cr_assert(h_table_exists("a"));
}

Test(config, without_a_url_libpq_pg_variables_apply)
{
    one_migration();
    const char *hostport = h_db_hostport();
    const char *colon = strrchr(hostport, ':');
    cr_assert_not_null(colon);

    struct h_result r =
        h_run(H_ARGS("migrate"),
              H_ENV(h_env_dir(), h_fmt("PGHOST=%.*s", (int)(colon - hostport), hostport),
                    h_fmt("PGPORT=%s", colon + 1), "PGUSER=postgres",
                    h_fmt("PGDATABASE=%s", h_db_name()), "PGSSLMODE=disable"));

    h_assert_exit(r, 0);
    cr_assert(h_table_exists("a"));
}

Test(config, precedence_is_flags_over_env_over_yaml)
{
    one_migration();
    char *file = h_tmp_path("config.yaml");
    /* YAML points at nothing; env overrides the URL; the flag overrides env's bad dir. */
    h_write_file(file, h_fmt("database:\n"
                             "  url: postgresql://postgres@127.0.0.1:%d/postgres?sslmode=disable\n"
                             "  connectRetry: 1s\n"
                             "migrations:\n"
                             "  dir: %s/yaml-dir-does-not-exist\n",
                             h_free_port(), h_tmp_dir()));

    struct h_result r =
        h_run(H_ARGS("migrate", "--config", file, "--dir", h_mig_dir()),
              H_ENV(h_env_url(),
                    h_fmt("ROLLGATE_MIGRATIONS_DIR=%s/env-dir-does-not-exist", h_tmp_dir())));

    h_assert_exit(r, 0);
    cr_assert(h_table_exists("a"));
}

Test(config, password_never_appears_when_the_database_is_down)
{
    one_migration();
    char *url =
        h_fmt("ROLLGATE_DATABASE_URL=postgresql://app:" SECRET "@127.0.0.1:%d/app?sslmode=disable",
              h_free_port());

    struct h_result r =
        h_run(H_ARGS("migrate"), H_ENV(url, h_env_dir(), "ROLLGATE_DATABASE_CONNECT_RETRY=2s",
                                       "ROLLGATE_LOG_LEVEL=debug"));

    h_assert_exit(r, 7);
    h_assert_lacks(r, r.err, SECRET);
    h_assert_lacks(r, r.out, SECRET);
    h_assert_lacks(r, r.termlog, SECRET);
}

Test(config, password_never_appears_when_the_database_refuses_the_login)
{
    one_migration();
    /* The real server, a database that does not exist: the server answers with an error. */
    char *url = h_fmt("ROLLGATE_DATABASE_URL=postgresql://postgres:" SECRET
                      "@%s/no_such_database_here?sslmode=disable",
                      h_db_hostport());

    struct h_result r =
        h_run(H_ARGS("migrate"), H_ENV(url, h_env_dir(), "ROLLGATE_DATABASE_CONNECT_RETRY=1s",
                                       "ROLLGATE_LOG_LEVEL=debug"));

    h_assert_exit(r, 7);
    h_assert_lacks(r, r.err, SECRET);
    h_assert_lacks(r, r.termlog, SECRET);
}

Test(config, password_never_appears_on_a_config_error)
{
    one_migration();
    const char *url =
        "ROLLGATE_DATABASE_URL=postgresql://app:" SECRET "@127.0.0.1:5432/app?sslmode=disable";

    struct h_result env =
        h_run(H_ARGS("migrate"), H_ENV(url, h_env_dir(), "ROLLGATE_LEASE_DURATION=fifteen",
                                       "ROLLGATE_LOG_LEVEL=debug"));
    h_assert_exit(env, 3);
    h_assert_lacks(env, env.err, SECRET);
    h_assert_lacks(env, env.termlog, SECRET);

    struct h_result flag =
        h_run(H_ARGS("migrate", "--database-url", "postgresql://app:" SECRET "@127.0.0.1:5432/app",
                     "--timeout", "soon", "--log-level", "debug"),
              H_ENV(h_env_dir()));
    h_assert_exit(flag, 3);
    h_assert_lacks(flag, flag.err, SECRET);
    h_assert_lacks(flag, flag.termlog, SECRET);
}

Test(config, password_never_appears_when_the_url_itself_is_invalid)
{
    one_migration();
    const char *url = "ROLLGATE_DATABASE_URL=postgresql://app:" SECRET "@127.0.0.1:notaport/app";

    struct h_result r =
        h_run(H_ARGS("migrate"), H_ENV(url, h_env_dir(), "ROLLGATE_DATABASE_CONNECT_RETRY=1s",
                                       "ROLLGATE_LOG_LEVEL=debug"));

    cr_assert(r.exited && r.code != 0, "%s", h_describe(&r));
    h_assert_lacks(r, r.err, SECRET);
    h_assert_lacks(r, r.termlog, SECRET);
}

Test(config, config_error_summary_reaches_the_termination_log)
{
    struct h_result r = migrate_with("ROLLGATE_LEASE_DURATION=fifteen");

    h_assert_exit(r, 3);
    h_assert_has(r, r.termlog, "ROLLGATE_LEASE_DURATION");
}

Test(config, no_database_user_and_none_to_look_up_exits_3_at_once)
{
    /* A user id with no /etc/passwd entry, as in a scratch image: libpq cannot name a
     * default user. Retrying cannot help, so this is configuration, not "unavailable". */
    const char *hostport = h_db_hostport();
    char *url =
        h_fmt("ROLLGATE_DATABASE_URL=postgresql://%s/%s?sslmode=disable", hostport, h_db_name());
    const char *bin = getenv("RG_TEST_BIN");
    cr_assert_not_null(bin, "RG_TEST_BIN is not set");

    struct h_result r =
        h_cmd(H_ARGS("setpriv", "--reuid=54321", "--regid=54321", "--clear-groups", "env", "-i",
                     "PATH=/usr/bin:/bin", url, "ROLLGATE_DATABASE_CONNECT_RETRY=5m",
                     "ROLLGATE_TERMINATION_LOG=", bin, "version"));

    h_assert_exit(r, 3);
    h_assert_has(r, r.err, "no database user given");
}

/* A FIFO nobody writes to: opening it to read blocked until a writer came, so the run hung
 * (the harness kills it after H_RUN_GUARD_MS and the exit status then fails the test). */
Test(config, config_file_that_is_a_fifo_exits_3_naming_it)
{
    one_migration();
    char *fifo = h_tmp_path("config.fifo");
    cr_assert_eq(mkfifo(fifo, 0600), 0, "mkfifo: %s", strerror(errno));

    struct h_result r = h_run(H_ARGS("migrate", "--config", fifo), H_ENV(h_env_url(), h_env_dir()));

    h_assert_exit(r, 3);
    h_assert_has(r, r.err,
                 h_fmt("flag --config: %s: cannot read: not a regular file (a FIFO)", fifo));
    cr_assert_not(h_table_exists("a"));
}

Test(config, password_and_url_files_that_are_fifos_or_devices_exit_3_naming_them)
{
    one_migration();
    char *fifo = h_tmp_path("secret.fifo");
    cr_assert_eq(mkfifo(fifo, 0600), 0, "mkfifo: %s", strerror(errno));

    struct h_result p =
        h_run(H_ARGS("migrate"),
              H_ENV(h_env_url(), h_env_dir(), h_fmt("ROLLGATE_DATABASE_PASSWORD_FILE=%s", fifo)));
    h_assert_exit(p, 3);
    h_assert_has(p, p.err,
                 h_fmt("env ROLLGATE_DATABASE_PASSWORD_FILE: %s: cannot read: not a regular file "
                       "(a FIFO)",
                       fifo));

    struct h_result u =
        h_run(H_ARGS("migrate"), H_ENV(h_env_dir(), h_fmt("ROLLGATE_DATABASE_URL_FILE=%s", fifo)));
    h_assert_exit(u, 3);
    h_assert_has(u, u.err, "env ROLLGATE_DATABASE_URL_FILE: ");

    /* A device was read up to the cap: refused now before any read. */
    struct h_result d =
        h_run(H_ARGS("migrate"), H_ENV(h_env_dir(), "ROLLGATE_DATABASE_URL_FILE=/dev/zero"));
    h_assert_exit(d, 3);
    h_assert_has(d, d.err, "/dev/zero: cannot read: not a regular file (a character device)");
    cr_assert_not(h_table_exists("a"));
}

/* libyaml's cost grows with the square of the depth: 40,000 levels took seconds. The cap
 * stops it at the first level too deep, and names where that is. */
Test(config, deeply_nested_yaml_exits_3_naming_the_line_and_column)
{
    size_t depth = 40000;
    char *yaml = malloc(2 * depth + 64);
    cr_assert_not_null(yaml);
    size_t o = (size_t)sprintf(yaml, "lease:\n  name: ");
    memset(yaml + o, '[', depth);
    memset(yaml + o + depth, ']', depth);
    strcpy(yaml + o + 2 * depth, "\n");

    struct h_result r = migrate_with_config(yaml);
    free(yaml);

    h_assert_exit(r, 3);
    /* Two mappings, then the 63rd '[' (column 9 + 62) is the 65th level. */
    h_assert_has(r, r.err, "config.yaml:2:71: nested deeper than 64 levels");
    cr_assert_not(h_table_exists("a"));
}

/* Invalid UTF-8 in the identity failed the history insert, read as a failed migration. */
Test(config, lease_identity_that_is_not_utf8_exits_3_naming_the_variable)
{
    struct h_result p = migrate_with("POD_NAME=app-\xff\xfe-1");
    h_assert_exit(p, 3);
    h_assert_has(p, p.err, "env POD_NAME: invalid value");
    cr_assert_not(h_table_exists("a"));

    struct h_result k = migrate_with("ROLLGATE_LEASE_IDENTITY=app-\xc3(");
    h_assert_exit(k, 3);
    h_assert_has(k, k.err, "env ROLLGATE_LEASE_IDENTITY: invalid value");

    struct h_result y = migrate_with_config("lease:\n  identity: \"a\\u0007b\"\n");
    h_assert_exit(y, 3);
    h_assert_has(y, y.err, "config.yaml:2:13: lease.identity: invalid value");
    cr_assert_not(h_table_exists("a"));
}

/* The Lease cut a longer identity at 253 bytes, so a holder could not read itself back. */
Test(config, lease_identity_longer_than_a_lease_holds_exits_3)
{
    char name[300];
    memset(name, 'p', 254);
    name[254] = '\0';

    struct h_result r = migrate_with(h_fmt("POD_NAME=%s", name));

    h_assert_exit(r, 3);
    h_assert_has(r, r.err, "env POD_NAME: invalid value");
    h_assert_has(r, r.err, "at most 253 bytes");
    cr_assert_not(h_table_exists("a"));
}

/* A name with a newline or a terminal escape would forge or garble a text log line. */
Test(config, control_characters_in_a_file_name_are_escaped_in_text_logs)
{
    char *dir = h_tmp_path("mig\n2026 error forged\x1b[31mred");

    struct h_result r =
        h_run(H_ARGS("migrate", "--dir", dir), H_ENV(h_env_url(), "ROLLGATE_LOG_FORMAT=text"));

    h_assert_exit(r, 4);
    h_assert_has(r, r.err, "mig\\n2026 error forged\\u001b[31mred");
    cr_assert_null(strchr(r.err, '\x1b'), "%s", h_describe(&r));
    cr_assert_null(strstr(r.err, "\n2026 error forged"), "%s", h_describe(&r));
}

/* A URL value libpq cannot use is permanent: exit 3 at once, not connection retries ending
 * in exit 7 ("retryable"), which a Job would retry for ever. */
Test(config, a_url_value_libpq_cannot_use_exits_3_without_retrying)
{
    const char *urls[] = {"postgresql://app@127.0.0.1:notaport/app",
                          "postgresql://app@127.0.0.1:99999/app",
                          "postgresql://app@127.0.0.1/app?sslmode=bogus"};
    for (size_t i = 0; i < sizeof urls / sizeof *urls; i++) {
        struct h_result r =
            h_run(H_ARGS("version"), H_ENV(h_fmt("ROLLGATE_DATABASE_URL=%s", urls[i]),
                                           "ROLLGATE_DATABASE_CONNECT_RETRY=1h"));
        h_assert_exit(r, 3);
        h_assert_lacks(r, r.err, "retrying");
    }
}
