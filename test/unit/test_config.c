#include <criterion/criterion.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/config.h"

static char dir[64];
static char yaml_path[128];
static struct rg_config cfg;
static struct rg_err err;
static char *no_env[] = {NULL};

static void setup(void)
{
    strcpy(dir, "/tmp/rg-config-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(yaml_path, sizeof(yaml_path), "%s/config.yaml", dir);
    memset(&cfg, 0, sizeof(cfg));
    rg_err_clear(&err);
}

static void teardown(void)
{
    DIR *d = opendir(dir);
    struct dirent *e;

    rg_config_free(&cfg);
    while (d && (e = readdir(d)) != NULL) {
        char path[512];
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        if (unlink(path) < 0)
            rmdir(path);
    }
    if (d)
        closedir(d);
    rmdir(dir);
}

TestSuite(config, .init = setup, .fini = teardown);

/* Writes name under the test's directory and returns its path (valid until the next call
 * with the same slot). */
static const char *write_file_n(const char *name, const char *content, size_t len)
{
    static char paths[4][512];
    static int next;
    char *path = paths[next++ % 4];
    FILE *f;

    snprintf(path, 512, "%s/%s", dir, name);
    f = fopen(path, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(content, 1, len, f), len);
    fclose(f);
    return path;
}

static const char *write_file(const char *name, const char *content)
{
    return write_file_n(name, content, strlen(content));
}

static int load(const char *file, char *const *env, const struct rg_config_flag *flags,
                size_t nflags)
{
    return rg_config_load(&cfg, file, env ? env : no_env, flags, nflags, &err);
}

static int load_yaml(const char *yaml)
{
    write_file("config.yaml", yaml);
    return load(yaml_path, NULL, NULL, 0);
}

static void assert_failed(int rc, const char *msg)
{
    cr_assert_eq(rc, -1, "load succeeded; expected: %s", msg);
    cr_assert_eq(err.code, RG_ECONFIG, "code %d for: %s", err.code, err.msg);
    cr_assert_str_eq(err.msg, msg);
    /* Freed on error: the caller can just exit. */
    cr_assert_null(cfg.database.schema);
    cr_assert_null(cfg.migrations.dir);
    cr_assert_null(cfg.config_file);
}

/* The YAML's error: the message is the file's path followed by suffix. */
static void assert_yaml_fails(const char *yaml, const char *suffix)
{
    char msg[1024];
    int rc = load_yaml(yaml);

    snprintf(msg, sizeof(msg), "%s%s", yaml_path, suffix);
    assert_failed(rc, msg);
}

static void assert_env_fails(const char *var, const char *msg)
{
    char *env[] = {(char *)var, NULL};

    assert_failed(load(NULL, env, NULL, 0), msg);
}

static void assert_flag_fails(const char *key, const char *flag, const char *value, const char *msg)
{
    struct rg_config_flag f = {key, flag, value};

    assert_failed(load(NULL, NULL, &f, 1), msg);
}

static void assert_loads_yaml(const char *yaml)
{
    cr_assert_eq(load_yaml(yaml), 0, "%s: %s", yaml, err.msg);
}

/* --- defaults ------------------------------------------------------------------------ */

Test(config, defaults_with_no_sources)
{
    char host[256] = {0}, var[600];
    /* An empty file, so that a /etc/rollgate/config.yaml on this machine cannot interfere. */
    char *env[] = {"PATH=/bin", var, NULL};
    const char *empty = write_file("empty.yaml", "");

    snprintf(var, sizeof(var), "ROLLGATE_CONFIG=%s", empty);
    cr_assert_eq(load(NULL, env, NULL, 0), 0, "%s", err.msg);
    cr_assert_null(cfg.database.url);
    cr_assert_null(cfg.database.direct_url);
    cr_assert_null(cfg.database.url_file);
    cr_assert_null(cfg.database.password_file);
    cr_assert_null(cfg.database.password);
    cr_assert_str_eq(cfg.database.schema, "public");
    cr_assert_eq(cfg.database.connect_timeout_ms, 10000);
    cr_assert_eq(cfg.database.connect_retry_ms, 60000);
    cr_assert_eq(cfg.database.lock_timeout_ms, 5000);
    cr_assert_eq(cfg.database.lock_retries, 5);
    cr_assert_eq(cfg.database.statement_timeout_ms, 0);
    cr_assert_str_eq(cfg.migrations.dir, "/migrations");
    cr_assert_eq(cfg.migrations.target, RG_TARGET_LATEST);
    cr_assert_eq(cfg.migrations.auto_migrate, true);
    cr_assert_eq(cfg.migrations.on_newer_schema, RG_ON_NEWER_WARN);
    cr_assert_eq(cfg.migrations.allow_out_of_order, false);
    cr_assert_eq(cfg.migrations.lint, RG_LINT_WARN);
    cr_assert_eq(cfg.lease.mode, RG_LEASE_AUTO);
    cr_assert_str_eq(cfg.lease.name, "rollgate");
    cr_assert_str_eq(cfg.lease.namespace_, "");
    cr_assert_eq(gethostname(host, sizeof(host) - 1), 0);
    cr_assert_str_eq(cfg.lease.identity, host);
    cr_assert_eq(cfg.lease.duration_ms, 15000);
    cr_assert_eq(cfg.lease.renew_deadline_ms, 10000);
    cr_assert_eq(cfg.lease.retry_period_ms, 2000);
    cr_assert_eq(cfg.lease.wait_timeout_ms, 600000);
    cr_assert_str_eq(cfg.lease.service_account_dir,
                     "/var/run/secrets/kubernetes.io/serviceaccount");
    cr_assert_eq(cfg.log.format, RG_LOG_FORMAT_AUTO);
    cr_assert_eq(cfg.log.level, RG_LOG_INFO);
    cr_assert_eq(cfg.log.progress_interval_ms, 10000);
    cr_assert_eq(cfg.timeout_ms, 0);
    cr_assert_str_eq(cfg.termination_log, "/dev/termination-log");
    cr_assert_str_eq(cfg.config_file, empty);
}

Test(config, identity_comes_from_pod_name_unless_set)
{
    char *env[] = {"POD_NAME=app-7d9f-x2", NULL};
    char *both[] = {"POD_NAME=app-7d9f-x2", "ROLLGATE_LEASE_IDENTITY=me", NULL};

    cr_assert_eq(load(NULL, env, NULL, 0), 0, "%s", err.msg);
    cr_assert_str_eq(cfg.lease.identity, "app-7d9f-x2");
    rg_config_free(&cfg);
    cr_assert_eq(load(NULL, both, NULL, 0), 0, "%s", err.msg);
    cr_assert_str_eq(cfg.lease.identity, "me");
}

Test(config, free_accepts_a_zeroed_struct_and_a_second_call)
{
    struct rg_config c;

    memset(&c, 0, sizeof(c));
    rg_config_free(&c);
    rg_config_free(NULL);
    cr_assert_eq(load(NULL, NULL, NULL, 0), 0, "%s", err.msg);
    rg_config_free(&cfg);
    cr_assert_null(cfg.database.schema);
    rg_config_free(&cfg);
}

/* --- every key from every source ----------------------------------------------------- */

static void assert_all_non_defaults(void)
{
    cr_assert_str_eq(cfg.database.url, "postgres://db/app");
    cr_assert_str_eq(cfg.database.direct_url, "postgres://primary/app");
    cr_assert_str_eq(cfg.database.schema, "app_1");
    cr_assert_eq(cfg.database.connect_timeout_ms, 3000);
    cr_assert_eq(cfg.database.connect_retry_ms, 0);
    cr_assert_eq(cfg.database.lock_timeout_ms, 1500);
    cr_assert_eq(cfg.database.lock_retries, 9);
    cr_assert_eq(cfg.database.statement_timeout_ms, 600000);
    cr_assert_str_eq(cfg.migrations.dir, "/sql");
    cr_assert_eq(cfg.migrations.target, 42);
    cr_assert_eq(cfg.migrations.auto_migrate, false);
    cr_assert_eq(cfg.migrations.on_newer_schema, RG_ON_NEWER_FAIL);
    cr_assert_eq(cfg.migrations.allow_out_of_order, true);
    cr_assert_eq(cfg.migrations.lint, RG_LINT_ENFORCE);
    cr_assert_eq(cfg.lease.mode, RG_LEASE_KUBERNETES);
    cr_assert_str_eq(cfg.lease.name, "app.migrations");
    cr_assert_str_eq(cfg.lease.namespace_, "prod");
    cr_assert_str_eq(cfg.lease.identity, "pod-1");
    cr_assert_eq(cfg.lease.duration_ms, 30000);
    cr_assert_eq(cfg.lease.renew_deadline_ms, 20000);
    cr_assert_eq(cfg.lease.retry_period_ms, 4000);
    cr_assert_eq(cfg.lease.wait_timeout_ms, 3600000);
    cr_assert_eq(cfg.log.format, RG_LOG_FORMAT_JSON);
    cr_assert_eq(cfg.log.level, RG_LOG_DEBUG);
    cr_assert_eq(cfg.log.progress_interval_ms, 0);
    cr_assert_eq(cfg.timeout_ms, 5400000);
    cr_assert_str_eq(cfg.termination_log, "/tmp/term");
}

Test(config, every_key_from_yaml)
{
    assert_loads_yaml("database:\n"
                      "  url: postgres://db/app\n"
                      "  directUrl: postgres://primary/app\n"
                      "  schema: app_1\n"
                      "  connectTimeout: 3s\n"
                      "  connectRetry: 0\n"
                      "  lockTimeout: 1s500ms\n"
                      "  lockRetries: 9\n"
                      "  statementTimeout: 10m\n"
                      "migrations:\n"
                      "  dir: /sql\n"
                      "  target: 42\n"
                      "  autoMigrate: false\n"
                      "  onNewerSchema: fail\n"
                      "  allowOutOfOrder: yes\n"
                      "  lint: enforce\n"
                      "lease:\n"
                      "  mode: kubernetes\n"
                      "  name: app.migrations\n"
                      "  namespace: prod\n"
                      "  identity: pod-1\n"
                      "  duration: 30s\n"
                      "  renewDeadline: 20s\n"
                      "  retryPeriod: 4s\n"
                      "  waitTimeout: 1h\n"
                      "log:\n"
                      "  format: json\n"
                      "  level: debug\n"
                      "  progressInterval: 0\n"
                      "timeout: 1h30m\n"
                      "terminationLog: /tmp/term\n");
    assert_all_non_defaults();
    cr_assert_str_eq(cfg.config_file, yaml_path);
}

Test(config, every_key_from_env)
{
    char *env[] = {"ROLLGATE_DATABASE_URL=postgres://db/app",
                   "ROLLGATE_DATABASE_DIRECT_URL=postgres://primary/app",
                   "ROLLGATE_DATABASE_SCHEMA=app_1",
                   "ROLLGATE_DATABASE_CONNECT_TIMEOUT=3s",
                   "ROLLGATE_DATABASE_CONNECT_RETRY=0",
                   "ROLLGATE_DATABASE_LOCK_TIMEOUT=1s500ms",
                   "ROLLGATE_DATABASE_LOCK_RETRIES=9",
                   "ROLLGATE_DATABASE_STATEMENT_TIMEOUT=10m",
                   "ROLLGATE_MIGRATIONS_DIR=/sql",
                   "ROLLGATE_MIGRATIONS_TARGET=42",
                   "ROLLGATE_MIGRATIONS_AUTO_MIGRATE=false",
                   "ROLLGATE_MIGRATIONS_ON_NEWER_SCHEMA=fail",
                   "ROLLGATE_MIGRATIONS_ALLOW_OUT_OF_ORDER=yes",
                   "ROLLGATE_MIGRATIONS_LINT=enforce",
                   "ROLLGATE_LEASE_MODE=kubernetes",
                   "ROLLGATE_LEASE_NAME=app.migrations",
                   "ROLLGATE_LEASE_NAMESPACE=prod",
                   "ROLLGATE_LEASE_IDENTITY=pod-1",
                   "ROLLGATE_LEASE_DURATION=30s",
                   "ROLLGATE_LEASE_RENEW_DEADLINE=20s",
                   "ROLLGATE_LEASE_RETRY_PERIOD=4s",
                   "ROLLGATE_LEASE_WAIT_TIMEOUT=1h",
                   "ROLLGATE_LOG_FORMAT=json",
                   "ROLLGATE_LOG_LEVEL=debug",
                   "ROLLGATE_LOG_PROGRESS_INTERVAL=0",
                   "ROLLGATE_TIMEOUT=1h30m",
                   "ROLLGATE_TERMINATION_LOG=/tmp/term",
                   NULL};

    cr_assert_eq(load(NULL, env, NULL, 0), 0, "%s", err.msg);
    assert_all_non_defaults();
}

Test(config, every_key_from_flags)
{
    struct rg_config_flag flags[] = {
        {"database.url", "--database-url", "postgres://db/app"},
        {"database.directUrl", "--x", "postgres://primary/app"},
        {"database.schema", "--schema", "app_1"},
        {"database.connectTimeout", "--x", "3s"},
        {"database.connectRetry", "--x", "0"},
        {"database.lockTimeout", "--x", "1s500ms"},
        {"database.lockRetries", "--x", "9"},
        {"database.statementTimeout", "--x", "10m"},
        {"migrations.dir", "--dir", "/sql"},
        {"migrations.target", "--target", "42"},
        {"migrations.autoMigrate", "--x", "false"},
        {"migrations.onNewerSchema", "--x", "fail"},
        {"migrations.allowOutOfOrder", "--x", "yes"},
        {"migrations.lint", "--x", "enforce"},
        {"lease.mode", "--lease-mode", "kubernetes"},
        {"lease.name", "--x", "app.migrations"},
        {"lease.namespace", "--x", "prod"},
        {"lease.identity", "--x", "pod-1"},
        {"lease.duration", "--x", "30s"},
        {"lease.renewDeadline", "--x", "20s"},
        {"lease.retryPeriod", "--x", "4s"},
        {"lease.waitTimeout", "--x", "1h"},
        {"log.format", "--log-format", "json"},
        {"log.level", "--log-level", "debug"},
        {"log.progressInterval", "--x", "0"},
        {"timeout", "--timeout", "1h30m"},
        {"terminationLog", "--x", "/tmp/term"},
    };

    cr_assert_eq(load(NULL, NULL, flags, sizeof(flags) / sizeof(flags[0])), 0, "%s", err.msg);
    assert_all_non_defaults();
}

/* --- precedence ---------------------------------------------------------------------- */

Test(config, env_beats_yaml_and_flag_beats_env)
{
    char *env[] = {"ROLLGATE_MIGRATIONS_DIR=/env",
                   "ROLLGATE_TIMEOUT=2m",
                   "ROLLGATE_LOG_LEVEL=warn",
                   "ROLLGATE_MIGRATIONS_TARGET=7",
                   "ROLLGATE_LEASE_MODE=none",
                   "ROLLGATE_DATABASE_LOCK_RETRIES=2",
                   NULL};
    struct rg_config_flag flags[] = {
        {"migrations.dir", "--dir", "/flag"},
        {"timeout", "--timeout", "3m"},
        {"log.level", "--log-level", "error"},
        {"migrations.target", "--target", "latest"},
    };

    write_file("config.yaml", "migrations:\n  dir: /yaml\n  target: 3\n"
                              "  allowOutOfOrder: true\n"
                              "timeout: 1m\nlog:\n  level: debug\n  format: text\n"
                              "lease:\n  mode: kubernetes\n"
                              "database:\n  lockRetries: 1\n  lockTimeout: 1s\n");
    cr_assert_eq(load(yaml_path, env, flags, 4), 0, "%s", err.msg);
    /* flag > env > yaml */
    cr_assert_str_eq(cfg.migrations.dir, "/flag");
    cr_assert_eq(cfg.timeout_ms, 180000);
    cr_assert_eq(cfg.log.level, RG_LOG_ERROR);
    cr_assert_eq(cfg.migrations.target, RG_TARGET_LATEST);
    /* env > yaml */
    cr_assert_eq(cfg.lease.mode, RG_LEASE_NONE);
    cr_assert_eq(cfg.database.lock_retries, 2);
    /* yaml > default */
    cr_assert_eq(cfg.log.format, RG_LOG_FORMAT_TEXT);
    cr_assert_eq(cfg.database.lock_timeout_ms, 1000);
    cr_assert_eq(cfg.migrations.allow_out_of_order, true);
}

Test(config, empty_value_unsets_a_key_without_default)
{
    char *env[] = {"ROLLGATE_DATABASE_URL=", NULL};

    write_file("config.yaml", "database:\n  url: postgres://yaml/db\n");
    cr_assert_eq(load(yaml_path, env, NULL, 0), 0, "%s", err.msg);
    cr_assert_null(cfg.database.url);
}

Test(config, yaml_null_leaves_the_weaker_value)
{
    assert_loads_yaml("timeout: ~\nlease:\n  name:\n  mode: null\nlog:\n");
    cr_assert_eq(cfg.timeout_ms, 0);
    cr_assert_str_eq(cfg.lease.name, "rollgate");
    cr_assert_eq(cfg.lease.mode, RG_LEASE_AUTO);
}

Test(config, yaml_quoted_values_are_values)
{
    assert_loads_yaml("database:\n  schema: \"s1\"\nmigrations:\n  autoMigrate: 'no'\n"
                      "lease:\n  namespace: ''\n");
    cr_assert_str_eq(cfg.database.schema, "s1");
    cr_assert_eq(cfg.migrations.auto_migrate, false);
    cr_assert_str_eq(cfg.lease.namespace_, "");
}

Test(config, empty_and_comment_only_files_are_fine)
{
    assert_loads_yaml("");
    cr_assert_str_eq(cfg.config_file, yaml_path);
    cr_assert_str_eq(cfg.database.schema, "public");
    rg_config_free(&cfg);
    assert_loads_yaml("# nothing yet\n---\n");
    cr_assert_str_eq(cfg.lease.name, "rollgate");
}

/* --- rejection of each type from each source ----------------------------------------- */

Test(config, duration_rejected_from_each_source)
{
    assert_yaml_fails("lease:\n  duration: abc\n",
                      ":2:13: lease.duration: invalid duration \"abc\" (use e.g. 500ms, 30s, 5m, "
                      "1h30m)");
    assert_env_fails("ROLLGATE_LEASE_DURATION=abc",
                     "env ROLLGATE_LEASE_DURATION: invalid duration \"abc\" (use e.g. 500ms, 30s, "
                     "5m, 1h30m)");
    assert_flag_fails("timeout", "--timeout", "5",
                      "flag --timeout: invalid duration \"5\" (use e.g. 500ms, 30s, 5m, 1h30m)");
}

Test(config, duration_out_of_range_rejected)
{
    assert_env_fails("ROLLGATE_DATABASE_CONNECT_TIMEOUT=10m",
                     "env ROLLGATE_DATABASE_CONNECT_TIMEOUT: duration \"10m\" is out of range (use "
                     "1s to 5m)");
    assert_env_fails("ROLLGATE_DATABASE_CONNECT_TIMEOUT=999ms",
                     "env ROLLGATE_DATABASE_CONNECT_TIMEOUT: duration \"999ms\" is out of range "
                     "(use 1s to 5m)");
    assert_yaml_fails("timeout: 25h\n",
                      ":1:10: timeout: duration \"25h\" is out of range (use 0s to 24h)");
    assert_flag_fails("lease.retryPeriod", "--retry", "0",
                      "flag --retry: duration \"0\" is out of range (use 1ms to 1h)");
}

Test(config, duration_bounds_are_inclusive)
{
    char *env[] = {"ROLLGATE_DATABASE_CONNECT_TIMEOUT=5m", "ROLLGATE_TIMEOUT=24h",
                   "ROLLGATE_DATABASE_LOCK_TIMEOUT=0", NULL};

    cr_assert_eq(load(NULL, env, NULL, 0), 0, "%s", err.msg);
    cr_assert_eq(cfg.database.connect_timeout_ms, 300000);
    cr_assert_eq(cfg.timeout_ms, 86400000);
    cr_assert_eq(cfg.database.lock_timeout_ms, 0);
}

Test(config, int_rejected_from_each_source)
{
    assert_yaml_fails("database:\n  lockRetries: 101\n",
                      ":2:16: database.lockRetries: invalid integer \"101\" (use 0 to 100)");
    assert_env_fails("ROLLGATE_DATABASE_LOCK_RETRIES=5x",
                     "env ROLLGATE_DATABASE_LOCK_RETRIES: invalid integer \"5x\" (use 0 to 100)");
    assert_flag_fails("database.lockRetries", "--lock-retries", "-1",
                      "flag --lock-retries: invalid integer \"-1\" (use 0 to 100)");
    assert_env_fails("ROLLGATE_DATABASE_LOCK_RETRIES= 5",
                     "env ROLLGATE_DATABASE_LOCK_RETRIES: invalid integer \" 5\" (use 0 to 100)");
    assert_env_fails("ROLLGATE_DATABASE_LOCK_RETRIES=99999999999999999999",
                     "env ROLLGATE_DATABASE_LOCK_RETRIES: invalid integer "
                     "\"99999999999999999999\" (use 0 to 100)");
    assert_env_fails("ROLLGATE_DATABASE_LOCK_RETRIES=",
                     "env ROLLGATE_DATABASE_LOCK_RETRIES: invalid integer \"\" (use 0 to 100)");
}

Test(config, bool_accepts_common_spellings_in_any_case)
{
    static const char *yes[] = {"true", "TRUE", "Yes", "on", "1"};
    static const char *no[] = {"false", "False", "NO", "Off", "0"};

    for (size_t i = 0; i < 5; i++) {
        struct rg_config_flag f[] = {{"migrations.allowOutOfOrder", "--x", yes[i]},
                                     {"migrations.autoMigrate", "--y", no[i]}};
        cr_assert_eq(load(NULL, NULL, f, 2), 0, "%s", err.msg);
        cr_assert_eq(cfg.migrations.allow_out_of_order, true, "%s", yes[i]);
        cr_assert_eq(cfg.migrations.auto_migrate, false, "%s", no[i]);
        rg_config_free(&cfg);
    }
}

Test(config, bool_rejected_from_each_source)
{
    assert_yaml_fails("migrations:\n  autoMigrate: maybe\n",
                      ":2:16: migrations.autoMigrate: invalid boolean \"maybe\" (use true/false, "
                      "yes/no, on/off or 1/0)");
    assert_env_fails("ROLLGATE_MIGRATIONS_ALLOW_OUT_OF_ORDER=2",
                     "env ROLLGATE_MIGRATIONS_ALLOW_OUT_OF_ORDER: invalid boolean \"2\" (use "
                     "true/false, yes/no, on/off or 1/0)");
    assert_flag_fails("migrations.autoMigrate", "--auto", "y",
                      "flag --auto: invalid boolean \"y\" (use true/false, yes/no, on/off or 1/0)");
}

Test(config, enum_rejected_from_each_source)
{
    assert_yaml_fails("lease:\n  mode: k8s\n",
                      ":2:9: lease.mode: invalid value \"k8s\" (use auto, kubernetes or none)");
    assert_env_fails("ROLLGATE_LOG_LEVEL=trace",
                     "env ROLLGATE_LOG_LEVEL: invalid value \"trace\" (use debug, info, warn or "
                     "error)");
    assert_flag_fails("log.format", "--log-format", "jsn",
                      "flag --log-format: invalid value \"jsn\" (use auto, json or text)");
    assert_env_fails("ROLLGATE_MIGRATIONS_ON_NEWER_SCHEMA=ignore",
                     "env ROLLGATE_MIGRATIONS_ON_NEWER_SCHEMA: invalid value \"ignore\" (use warn "
                     "or fail)");
}

Test(config, enum_is_case_insensitive)
{
    char *env[] = {"ROLLGATE_LOG_FORMAT=JSON", "ROLLGATE_LEASE_MODE=None", NULL};

    cr_assert_eq(load(NULL, env, NULL, 0), 0, "%s", err.msg);
    cr_assert_eq(cfg.log.format, RG_LOG_FORMAT_JSON);
    cr_assert_eq(cfg.lease.mode, RG_LEASE_NONE);
}

Test(config, target_accepts_latest_and_versions)
{
    static const struct {
        const char *in;
        int64_t out;
    } ok[] = {{"latest", RG_TARGET_LATEST},
              {"LATEST", RG_TARGET_LATEST},
              {"0", 0},
              {"20240101120000", INT64_C(20240101120000)},
              {"9223372036854775806", INT64_MAX - 1}};

    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        struct rg_config_flag f = {"migrations.target", "--target", ok[i].in};
        cr_assert_eq(load(NULL, NULL, &f, 1), 0, "%s: %s", ok[i].in, err.msg);
        cr_assert_eq(cfg.migrations.target, ok[i].out, "%s", ok[i].in);
        rg_config_free(&cfg);
    }
}

Test(config, target_rejected_from_each_source)
{
    assert_flag_fails("migrations.target", "--target", "-1",
                      "flag --target: invalid target \"-1\" (use latest or a version number >= 0)");
    /* INT64_MAX is how "latest" is stored: no version may collide with it. */
    assert_flag_fails("migrations.target", "--target", "9223372036854775807",
                      "flag --target: invalid target \"9223372036854775807\" (use latest or a "
                      "version number >= 0)");
    assert_env_fails("ROLLGATE_MIGRATIONS_TARGET=v3",
                     "env ROLLGATE_MIGRATIONS_TARGET: invalid target \"v3\" (use latest or a "
                     "version number >= 0)");
    assert_yaml_fails("migrations:\n  target: 1.5\n",
                      ":2:11: migrations.target: invalid target \"1.5\" (use latest or a version "
                      "number >= 0)");
}

Test(config, schema_must_be_a_plain_identifier)
{
    static const char *bad[] = {"",
                                "1abc",
                                "a-b",
                                "a b",
                                "sch\xc3\xa9ma",
                                "a.b",
                                "x234567890123456789012345678901234567890123456789012345678901234"};
    static const char *good[] = {"My_Schema", "_x", "s1",
                                 "x23456789012345678901234567890123456789012345678901234567890123"};
    char msg[512];

    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        struct rg_config_flag f = {"database.schema", "--schema", good[i]};
        cr_assert_eq(load(NULL, NULL, &f, 1), 0, "%s: %s", good[i], err.msg);
        rg_config_free(&cfg);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct rg_config_flag f = {"database.schema", "--schema", bad[i]};
        snprintf(msg, sizeof(msg),
                 "flag --schema: invalid value \"%s\" (use letters, digits and _, not starting "
                 "with a digit, at most 63 bytes)",
                 bad[i]);
        assert_failed(load(NULL, NULL, &f, 1), msg);
    }
}

Test(config, lease_name_must_be_a_dns_subdomain)
{
    static const char *bad[] = {"", "Rollgate", "-a", "a-", "a..b", "a.", ".a", "a_b"};
    static const char *good[] = {"a", "rollgate", "app-1.migrations", "0"};
    char long_name[300], msg[512];

    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        struct rg_config_flag f = {"lease.name", "--lease-name", good[i]};
        cr_assert_eq(load(NULL, NULL, &f, 1), 0, "%s: %s", good[i], err.msg);
        rg_config_free(&cfg);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct rg_config_flag f = {"lease.name", "--lease-name", bad[i]};
        snprintf(msg, sizeof(msg),
                 "flag --lease-name: invalid value \"%s\" (use a DNS-1123 subdomain: lower-case "
                 "letters, digits, '-' and '.', at most 253 bytes)",
                 bad[i]);
        assert_failed(load(NULL, NULL, &f, 1), msg);
    }
    memset(long_name, 'a', 253);
    long_name[253] = '\0';
    {
        struct rg_config_flag f = {"lease.name", "--lease-name", long_name};
        cr_assert_eq(load(NULL, NULL, &f, 1), 0, "%s", err.msg);
        rg_config_free(&cfg);
        long_name[253] = 'a';
        long_name[254] = '\0';
        cr_assert_eq(load(NULL, NULL, &f, 1), -1);
        cr_assert_eq(err.code, RG_ECONFIG);
    }
}

Test(config, namespace_is_empty_or_a_dns_label)
{
    assert_yaml_fails("lease:\n  namespace: Prod.ns\n",
                      ":2:14: lease.namespace: invalid value \"Prod.ns\" (use empty for the "
                      "service account's, or a DNS-1123 label: lower-case letters, digits and '-', "
                      "at most 63 bytes)");
}

Test(config, migrations_dir_must_not_be_empty)
{
    assert_env_fails("ROLLGATE_MIGRATIONS_DIR=",
                     "env ROLLGATE_MIGRATIONS_DIR: invalid value \"\" (use a directory path)");
}

Test(config, long_values_are_shortened_in_messages)
{
    char value[200], var[260];

    memset(value, 'x', sizeof(value) - 1);
    value[sizeof(value) - 1] = '\0';
    snprintf(var, sizeof(var), "ROLLGATE_TIMEOUT=%s", value);
    {
        char *env[] = {var, NULL};
        cr_assert_eq(load(NULL, env, NULL, 0), -1);
    }
    cr_assert_null(strstr(err.msg, value));
    cr_assert_not_null(strstr(err.msg, value + 200 - 1 - 80));
}

/* --- YAML shape and syntax ----------------------------------------------------------- */

Test(config, unknown_yaml_key_names_its_position_and_the_known_keys)
{
    assert_yaml_fails(
        "lease:\n  duration: 15s\n  durashun: 15s\n",
        ":3:3: lease.durashun: unknown key (known keys: mode, name, namespace, "
        "identity, duration, renewDeadline, retryPeriod, serviceAccountDir, waitTimeout)");
    assert_yaml_fails("# top\nlogs:\n  level: info\n",
                      ":2:1: logs: unknown key (known keys: database, migrations, lease, log, "
                      "timeout, terminationLog)");
}

Test(config, dotted_keys_are_not_accepted_at_the_top)
{
    assert_yaml_fails("lease.duration: 20s\n",
                      ":1:1: lease.duration: unknown key (known keys: database, migrations, lease, "
                      "log, timeout, terminationLog)");
}

Test(config, password_is_not_a_key)
{
    assert_yaml_fails("database:\n  password: hunter22\n",
                      ":2:3: database.password: unknown key (known keys: url, directUrl, urlFile, "
                      "passwordFile, schema, connectTimeout, connectRetry, lockTimeout, "
                      "lockRetries, statementTimeout)");
}

Test(config, yaml_syntax_error_names_the_position)
{
    assert_yaml_fails("lease:\n  duration: 15s\n bad: [\n",
                      ":3:2: invalid YAML: did not find expected key (while parsing a block "
                      "mapping)");
}

Test(config, yaml_unclosed_quote_is_a_syntax_error)
{
    assert_yaml_fails("log:\n  level: \"info\n",
                      ":3:1: invalid YAML: found unexpected end of stream (while scanning a "
                      "quoted scalar)");
}

Test(config, mapping_or_list_where_a_value_belongs)
{
    assert_yaml_fails("lease:\n  duration:\n    seconds: 15\n",
                      ":3:5: lease.duration: expected a single value, not a mapping");
    assert_yaml_fails("timeout: [1s, 2s]\n", ":1:10: timeout: expected a single value, not a list");
}

Test(config, value_where_a_section_belongs)
{
    assert_yaml_fails("lease: 15s\n", ":1:8: lease: expected a mapping of lease.* keys");
    assert_yaml_fails("database:\n  - url\n", ":2:3: database: expected a mapping of database.* "
                                              "keys");
}

Test(config, top_level_must_be_a_mapping)
{
    assert_yaml_fails("- a\n- b\n",
                      ":1:1: the top level must be a mapping (known keys: database, migrations, "
                      "lease, log, timeout, terminationLog)");
    assert_yaml_fails("just text\n",
                      ":1:1: the top level must be a mapping (known keys: database, migrations, "
                      "lease, log, timeout, terminationLog)");
}

Test(config, non_scalar_key_rejected)
{
    assert_yaml_fails("lease:\n  ? [a, b]\n  : 1\n", ":2:5: lease: a key must be a plain name");
}

Test(config, duplicate_key_rejected)
{
    assert_yaml_fails("lease:\n  duration: 20s\n  duration: 30s\n",
                      ":3:3: lease.duration: duplicate key (first set at 2:13)");
}

Test(config, second_document_rejected)
{
    assert_yaml_fails("timeout: 1s\n---\ntimeout: 2s\n", ":3:1: only one YAML document is allowed");
}

Test(config, nul_in_a_yaml_value_rejected)
{
    assert_yaml_fails("lease:\n  name: \"a\\0b\"\n",
                      ":2:9: lease.name: a value must not contain a NUL character");
}

/* --- the file ------------------------------------------------------------------------ */

Test(config, missing_explicit_config_file_is_an_error)
{
    char path[256], msg[512];

    snprintf(path, sizeof(path), "%s/nope.yaml", dir);
    snprintf(msg, sizeof(msg), "flag --config: %s: cannot open: No such file or directory", path);
    assert_failed(load(path, NULL, NULL, 0), msg);
}

Test(config, config_file_that_is_a_directory_is_an_error)
{
    char msg[512];

    snprintf(msg, sizeof(msg), "flag --config: %s: cannot read: not a regular file (a directory)",
             dir);
    assert_failed(load(dir, NULL, NULL, 0), msg);
}

Test(config, rollgate_config_env_selects_the_file)
{
    char var[256];
    char *env[] = {var, NULL};

    write_file("config.yaml", "timeout: 7s\n");
    snprintf(var, sizeof(var), "ROLLGATE_CONFIG=%s", yaml_path);
    cr_assert_eq(load(NULL, env, NULL, 0), 0, "%s", err.msg);
    cr_assert_eq(cfg.timeout_ms, 7000);
    cr_assert_str_eq(cfg.config_file, yaml_path);
}

Test(config, missing_rollgate_config_file_is_an_error)
{
    char var[256], msg[512];
    char *env[] = {var, NULL};

    snprintf(var, sizeof(var), "ROLLGATE_CONFIG=%s/gone.yaml", dir);
    snprintf(msg, sizeof(msg),
             "env ROLLGATE_CONFIG: %s/gone.yaml: cannot open: No such file or "
             "directory",
             dir);
    assert_failed(load(NULL, env, NULL, 0), msg);
}

Test(config, config_flag_beats_rollgate_config)
{
    char var[256];
    char *env[] = {var, NULL};
    const char *other = write_file("other.yaml", "timeout: 9s\n");

    snprintf(var, sizeof(var), "ROLLGATE_CONFIG=%s", other);
    write_file("config.yaml", "timeout: 7s\n");
    cr_assert_eq(load(yaml_path, env, NULL, 0), 0, "%s", err.msg);
    cr_assert_eq(cfg.timeout_ms, 7000);
    cr_assert_str_eq(cfg.config_file, yaml_path);
}

Test(config, oversized_config_file_rejected)
{
    static char big[1024 * 1024 + 2];
    char msg[512];

    memset(big, '#', sizeof(big) - 1);
    write_file_n("config.yaml", big, sizeof(big) - 1);
    snprintf(msg, sizeof(msg), "flag --config: %s: file is 1048577 bytes, over the 1 MiB limit",
             yaml_path);
    assert_failed(load(yaml_path, NULL, NULL, 0), msg);
}

/* --- environment names --------------------------------------------------------------- */

Test(config, auto_migrate_alias)
{
    char *env[] = {"ROLLGATE_AUTO_MIGRATE=false", NULL};

    write_file("config.yaml", "migrations:\n  autoMigrate: true\n");
    cr_assert_eq(load(yaml_path, env, NULL, 0), 0, "%s", err.msg);
    cr_assert_eq(cfg.migrations.auto_migrate, false);
}

Test(config, long_auto_migrate_name_beats_the_alias)
{
    char *env[] = {"ROLLGATE_AUTO_MIGRATE=false", "ROLLGATE_MIGRATIONS_AUTO_MIGRATE=true", NULL};
    char *reversed[] = {"ROLLGATE_MIGRATIONS_AUTO_MIGRATE=false", "ROLLGATE_AUTO_MIGRATE=true",
                        NULL};

    cr_assert_eq(load(NULL, env, NULL, 0), 0, "%s", err.msg);
    cr_assert_eq(cfg.migrations.auto_migrate, true);
    rg_config_free(&cfg);
    cr_assert_eq(load(NULL, reversed, NULL, 0), 0, "%s", err.msg);
    cr_assert_eq(cfg.migrations.auto_migrate, false);
}

Test(config, alias_errors_name_the_alias)
{
    assert_env_fails("ROLLGATE_AUTO_MIGRATE=sometimes",
                     "env ROLLGATE_AUTO_MIGRATE: invalid boolean \"sometimes\" (use true/false, "
                     "yes/no, on/off or 1/0)");
}

Test(config, flag_beats_the_alias)
{
    char *env[] = {"ROLLGATE_AUTO_MIGRATE=false", NULL};
    struct rg_config_flag f = {"migrations.autoMigrate", "--auto-migrate", "true"};

    cr_assert_eq(load(NULL, env, &f, 1), 0, "%s", err.msg);
    cr_assert_eq(cfg.migrations.auto_migrate, true);
}

static char *captured_log(void (*run)(void))
{
    static char buf[4096];
    FILE *f = tmpfile();
    size_t n;

    cr_assert_not_null(f);
    rg_log_setup(RG_LOG_FORMAT_TEXT, RG_LOG_DEBUG, f);
    run();
    rewind(f);
    n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = '\0';
    fclose(f);
    rg_log_setup(RG_LOG_FORMAT_TEXT, RG_LOG_INFO, stderr);
    return buf;
}

static void load_service_env(void)
{
    char *env[] = {"ROLLGATE_SERVICE_HOST=10.0.0.1",
                   "ROLLGATE_SERVICE_PORT=5432",
                   "ROLLGATE_SERVICE_PORT_PG=5432",
                   "ROLLGATE_PORT=tcp://10.0.0.1:5432",
                   "ROLLGATE_PORT_5432_TCP=tcp://10.0.0.1:5432",
                   "ROLLGATE_PORT_5432_TCP_ADDR=10.0.0.1",
                   "ROLLGATE_DB_SERVICE_HOST=10.0.0.2",
                   "ROLLGATE_DB_PORT=tcp://10.0.0.2:5432",
                   "ROLLGATE_DB_PORT_5432_TCP_PROTO=tcp",
                   "ROLLGATE_CONFIG=",
                   "HOME=/root",
                   NULL};

    cr_assert_eq(load(NULL, env, NULL, 0), 0, "%s", err.msg);
}

Test(config, kubernetes_service_variables_are_ignored_silently)
{
    const char *log = captured_log(load_service_env);

    cr_assert_str_eq(log, "");
}

static void load_typo_env(void)
{
    char *env[] = {"ROLLGATE_LEASE_DURATON=20s", "ROLLGATE_DATABASE_PASSWORD=hunter22", NULL};

    cr_assert_eq(load(NULL, env, NULL, 0), 0, "%s", err.msg);
}

Test(config, unknown_rollgate_names_warn_but_do_not_fail)
{
    const char *log = captured_log(load_typo_env);

    cr_assert_not_null(
        strstr(log, "unknown environment variable ignored name=ROLLGATE_LEASE_DURATON"), "%s", log);
    cr_assert_not_null(strstr(log, "name=ROLLGATE_DATABASE_PASSWORD"), "%s", log);
    /* Only the name: the value may be a secret. */
    cr_assert_null(strstr(log, "hunter22"), "%s", log);
    cr_assert_eq(cfg.lease.duration_ms, 15000);
    cr_assert_null(cfg.database.password);
}

/* --- flags --------------------------------------------------------------------------- */

Test(config, unknown_flag_key_is_an_internal_error)
{
    struct rg_config_flag f = {"migrations.directory", "--dir", "/x"};

    cr_assert_eq(load(NULL, NULL, &f, 1), -1);
    cr_assert_eq(err.code, RG_EINTERNAL);
    cr_assert_str_eq(err.msg, "flag --dir: no configuration key \"migrations.directory\"");
    cr_assert_null(cfg.database.schema);
}

/* --- secrets from files -------------------------------------------------------------- */

static void load_with_env_var(const char *name, const char *value)
{
    char var[512];
    char *env[] = {var, NULL};

    snprintf(var, sizeof(var), "%s=%s", name, value);
    cr_assert_eq(load(NULL, env, NULL, 0), 0, "%s", err.msg);
}

Test(config, url_file_is_read_without_its_trailing_newline)
{
    load_with_env_var("ROLLGATE_DATABASE_URL_FILE",
                      write_file("url", "postgres://app:s3cr3t@db/app\n"));
    cr_assert_str_eq(cfg.database.url, "postgres://app:s3cr3t@db/app");
    cr_assert_not_null(cfg.database.url_file);
}

Test(config, url_file_strips_one_crlf_only)
{
    load_with_env_var("ROLLGATE_DATABASE_URL_FILE", write_file("url", "postgres://db/a\r\n"));
    cr_assert_str_eq(cfg.database.url, "postgres://db/a");
    rg_config_free(&cfg);
    load_with_env_var("ROLLGATE_DATABASE_URL_FILE", write_file("url", "postgres://db/b\n\n"));
    cr_assert_str_eq(cfg.database.url, "postgres://db/b\n");
    rg_config_free(&cfg);
    load_with_env_var("ROLLGATE_DATABASE_URL_FILE", write_file("url", "postgres://db/c"));
    cr_assert_str_eq(cfg.database.url, "postgres://db/c");
}

Test(config, password_file_is_read_into_password)
{
    const char *path = write_file("pw", "hunter22\n");
    char yaml[600];

    snprintf(yaml, sizeof(yaml), "database:\n  passwordFile: %s\n", path);
    assert_loads_yaml(yaml);
    cr_assert_str_eq(cfg.database.password, "hunter22");
    cr_assert_null(cfg.database.url);
}

Test(config, missing_secret_file_names_key_and_path)
{
    char path[256], msg[600], yaml[600];

    snprintf(path, sizeof(path), "%s/no-such-secret", dir);
    {
        char var[300];
        char *env[] = {var, NULL};
        snprintf(var, sizeof(var), "ROLLGATE_DATABASE_URL_FILE=%s", path);
        snprintf(msg, sizeof(msg),
                 "env ROLLGATE_DATABASE_URL_FILE: %s: cannot open: No such file or directory",
                 path);
        assert_failed(load(NULL, env, NULL, 0), msg);
    }
    snprintf(yaml, sizeof(yaml), "database:\n  passwordFile: %s\n", path);
    snprintf(msg, sizeof(msg),
             ":2:17: database.passwordFile: %s: cannot open: No such file or directory", path);
    assert_yaml_fails(yaml, msg);
}

Test(config, empty_and_oversized_secret_files_rejected)
{
    static char big[64 * 1024 + 2];
    const char *path = write_file("empty", "\n");
    char msg[600];
    struct rg_config_flag f = {"database.urlFile", "--url-file", path};

    snprintf(msg, sizeof(msg), "flag --url-file: %s is empty", path);
    assert_failed(load(NULL, NULL, &f, 1), msg);

    memset(big, 'a', sizeof(big) - 1);
    f.value = write_file_n("big", big, sizeof(big) - 1);
    snprintf(msg, sizeof(msg), "flag --url-file: %s: file is 65537 bytes, over the 64 KiB limit",
             f.value);
    assert_failed(load(NULL, NULL, &f, 1), msg);

    /* the cap is on the file, newline included */
    big[64 * 1024 - 1] = '\n';
    f.value = write_file_n("big", big, 64 * 1024);
    cr_assert_eq(load(NULL, NULL, &f, 1), 0, "%s", err.msg);
    cr_assert_eq(strlen(cfg.database.url), 64 * 1024 - 1);
}

Test(config, nul_in_a_secret_file_rejected)
{
    const char *path = write_file_n("url", "postgres://a\0b\n", 15);
    struct rg_config_flag f = {"database.urlFile", "--url-file", path};
    char msg[600];

    snprintf(msg, sizeof(msg), "flag --url-file: %s contains a NUL byte", path);
    assert_failed(load(NULL, NULL, &f, 1), msg);
}

Test(config, url_and_url_file_together_rejected)
{
    char var[300], msg[600];
    char *env[] = {var, NULL};
    const char *path = write_file("url", "postgres://app:s3cr3t@db/app\n");

    snprintf(var, sizeof(var), "ROLLGATE_DATABASE_URL_FILE=%s", path);
    write_file("config.yaml", "database:\n  url: postgres://app:s3cr3t@db/app\n");
    snprintf(msg, sizeof(msg),
             "env ROLLGATE_DATABASE_URL_FILE: database.url is also set (%s:2:8); set only one of "
             "database.url and database.urlFile",
             yaml_path);
    assert_failed(load(yaml_path, env, NULL, 0), msg);
}

/* Every way of getting the URL wrong: none may echo it. */
Test(config, a_secret_never_appears_in_an_error)
{
    static const char secret[] = "s3cr3t";
    const char *url = "postgres://app:s3cr3t@db/app";
    const char *path = write_file("url", "postgres://app:s3cr3t@db/app\n");
    struct rg_config_flag both[] = {{"database.url", "--database-url", url},
                                    {"database.urlFile", "--url-file", path}};
    struct rg_config_flag url_as_file = {"database.urlFile", "--url-file", url};
    char var[300];
    char *env[] = {var, NULL};

    cr_assert_eq(load(NULL, NULL, both, 2), -1);
    cr_assert_null(strstr(err.msg, secret), "%s", err.msg);
    cr_assert_str_eq(err.msg, "flag --url-file: database.url is also set (flag --database-url); "
                              "set only one of database.url and database.urlFile");

    cr_assert_eq(load(NULL, NULL, &url_as_file, 1), -1);
    cr_assert_null(strstr(err.msg, secret), "%s", err.msg);
    cr_assert_str_eq(err.msg, "flag --url-file: cannot read the file: No such file or directory "
                              "(the value looks like a connection string, not a path to a file "
                              "holding one)");

    snprintf(var, sizeof(var), "ROLLGATE_DATABASE_URL_FILE=%s", url);
    cr_assert_eq(load(NULL, env, NULL, 0), -1);
    cr_assert_null(strstr(err.msg, secret), "%s", err.msg);

    cr_assert_eq(load_yaml("database:\n  url:\n    postgres://app:s3cr3t@db: x\n"), -1);
    cr_assert_null(strstr(err.msg, secret), "%s", err.msg);

    cr_assert_eq(load_yaml("database:\n  url: [postgres://app:s3cr3t@db/app]\n"), -1);
    cr_assert_null(strstr(err.msg, secret), "%s", err.msg);
}

/* --- cross-key lease checks ---------------------------------------------------------- */

Test(config, lease_duration_must_exceed_renew_deadline)
{
    assert_yaml_fails("lease:\n  duration: 10s\n",
                      ":2:13: lease.duration: 10s must be greater than lease.renewDeadline (10s, "
                      "default)");
}

Test(config, lease_blames_the_key_set_by_the_stronger_source)
{
    assert_env_fails("ROLLGATE_LEASE_RENEW_DEADLINE=20s",
                     "env ROLLGATE_LEASE_RENEW_DEADLINE: 20s must be less than lease.duration "
                     "(15s, default)");
}

Test(config, renew_deadline_must_exceed_retry_period_with_jitter)
{
    char *at_limit[] = {"ROLLGATE_LEASE_RENEW_DEADLINE=12s", "ROLLGATE_LEASE_RETRY_PERIOD=10s",
                        NULL};
    char *above[] = {"ROLLGATE_LEASE_RENEW_DEADLINE=12001ms", "ROLLGATE_LEASE_RETRY_PERIOD=10s",
                     NULL};

    cr_assert_eq(load(NULL, above, NULL, 0), 0, "%s", err.msg);
    rg_config_free(&cfg);
    assert_failed(load(NULL, at_limit, NULL, 0),
                  "env ROLLGATE_LEASE_RENEW_DEADLINE: 12s must be greater than 1.2 x "
                  "lease.retryPeriod (10s, env ROLLGATE_LEASE_RETRY_PERIOD)");
    assert_flag_fails("lease.retryPeriod", "--retry-period", "9s",
                      "flag --retry-period: 9s must be less than lease.renewDeadline / 1.2 (10s, "
                      "default)");
}

Test(config, a_url_pasted_as_a_key_is_not_echoed)
{
    assert_yaml_fails("database:\n  postgres://app:s3cr3t@db/app: 1\n",
                      ":2:3: database: unknown key that looks like a connection string (not "
                      "shown) (known keys: url, directUrl, urlFile, passwordFile, schema, "
                      "connectTimeout, connectRetry, lockTimeout, lockRetries, statementTimeout)");
    assert_yaml_fails("postgres://app:s3cr3t@db/app: 1\n",
                      ":1:1: unknown key that looks like a connection string (not shown) (known "
                      "keys: database, migrations, lease, log, timeout, terminationLog)");
}

Test(config, messages_use_the_config_path_as_given)
{
    write_file("config.yaml", "timeout: soon\n");
    cr_assert_eq(chdir(dir), 0);
    assert_failed(load("config.yaml", NULL, NULL, 0),
                  "config.yaml:1:10: timeout: invalid duration \"soon\" (use e.g. 500ms, 30s, 5m, "
                  "1h30m)");
    cr_assert_eq(load("./config.yaml", NULL, NULL, 0), -1);
    cr_assert_eq(strncmp(err.msg, "./config.yaml:1:10: ", 20), 0, "%s", err.msg);
}

Test(config, invalid_utf8_is_a_yaml_error)
{
    assert_yaml_fails("timeout: \xff\n", ": invalid YAML at byte 9: invalid leading UTF-8 octet");
}

Test(config, password_file_from_env)
{
    load_with_env_var("ROLLGATE_DATABASE_PASSWORD_FILE", write_file("pw", "p4ss\r\n"));
    cr_assert_str_eq(cfg.database.password, "p4ss");
    cr_assert_null(cfg.database.url);
}

Test(config, an_absent_default_file_leaves_no_error_behind)
{
    char *env[] = {"PATH=/bin", NULL};

    if (access(RG_CONFIG_DEFAULT_FILE, F_OK) == 0)
        cr_assert_fail(RG_CONFIG_DEFAULT_FILE " exists on this machine; this test needs it absent");
    cr_assert_eq(load(NULL, env, NULL, 0), 0, "%s", err.msg);
    cr_assert_eq(err.code, RG_OK);
    cr_assert_str_eq(err.msg, "");
}

/* ---- where this process runs: read at load, so cmd/ never calls getenv ---- */

Test(config, the_cluster_and_the_pod_come_from_the_environment)
{
    char *env[] = {"KUBERNETES_SERVICE_HOST=10.0.0.1", "KUBERNETES_SERVICE_PORT=443",
                   "POD_NAME=web-1", "POD_NAMESPACE=prod", NULL};

    cr_assert_eq(load(NULL, env, NULL, 0), 0, "%s", err.msg);
    cr_assert_str_eq(cfg.env.service_host, "10.0.0.1");
    cr_assert_str_eq(cfg.env.service_port, "443");
    cr_assert_str_eq(cfg.env.pod_name, "web-1");
    cr_assert_str_eq(cfg.env.pod_namespace, "prod");
}

Test(config, unset_or_empty_surroundings_are_null)
{
    char *env[] = {"KUBERNETES_SERVICE_HOST=", "POD_NAME=", "KUBECONFIG=", "HOME=", NULL};

    cr_assert_eq(load(NULL, env, NULL, 0), 0, "%s", err.msg);
    cr_assert_null(cfg.env.service_host);
    cr_assert_null(cfg.env.service_port);
    cr_assert_null(cfg.env.pod_name);
    cr_assert_null(cfg.env.pod_namespace);
    cr_assert_null(cfg.env.kubeconfig);
}

Test(config, the_kubeconfig_is_the_first_path_in_kubeconfig_else_home)
{
    char *list[] = {"KUBECONFIG=::/a/one:/b/two", "HOME=/home/me", NULL};
    char *home[] = {"HOME=/home/me", NULL};

    cr_assert_eq(load(NULL, list, NULL, 0), 0, "%s", err.msg);
    cr_assert_str_eq(cfg.env.kubeconfig, "/a/one");
    rg_config_free(&cfg);
    cr_assert_eq(load(NULL, home, NULL, 0), 0, "%s", err.msg);
    cr_assert_str_eq(cfg.env.kubeconfig, "/home/me/.kube/config");
}

Test(config, a_lease_is_wanted_by_mode_or_in_a_cluster_with_a_token)
{
    char sa_env[200], *in_cluster[] = {"KUBERNETES_SERVICE_HOST=10.0.0.1", sa_env, NULL};
    char *kubernetes[] = {"ROLLGATE_LEASE_MODE=kubernetes", NULL};
    char *none[] = {"ROLLGATE_LEASE_MODE=none", "KUBERNETES_SERVICE_HOST=10.0.0.1", sa_env, NULL};

    snprintf(sa_env, sizeof(sa_env), "ROLLGATE_LEASE_SERVICE_ACCOUNT_DIR=%s", dir);
    cr_assert_eq(load(NULL, in_cluster, NULL, 0), 0, "%s", err.msg);
    cr_assert_not(rg_config_wants_lease(&cfg), "auto without a token");
    rg_config_free(&cfg);
    write_file("token", "t");
    cr_assert_eq(load(NULL, in_cluster, NULL, 0), 0, "%s", err.msg);
    cr_assert(rg_config_wants_lease(&cfg), "auto in a cluster with a token");
    rg_config_free(&cfg);
    cr_assert_eq(load(NULL, NULL, NULL, 0), 0, "%s", err.msg);
    cr_assert_not(rg_config_wants_lease(&cfg), "auto outside a cluster");
    rg_config_free(&cfg);
    cr_assert_eq(load(NULL, kubernetes, NULL, 0), 0, "%s", err.msg);
    cr_assert(rg_config_wants_lease(&cfg));
    rg_config_free(&cfg);
    cr_assert_eq(load(NULL, none, NULL, 0), 0, "%s", err.msg);
    cr_assert_not(rg_config_wants_lease(&cfg));
}

Test(config, the_early_termination_log_is_the_environments_else_the_default)
{
    char *env[] = {"ROLLGATE_TERMINATION_LOG=/tmp/early", NULL};

    cr_assert_str_eq(rg_config_early_termination_log(env), "/tmp/early");
    cr_assert_str_eq(rg_config_early_termination_log(no_env), "/dev/termination-log");
}

/* --- files that are not regular ------------------------------------------------------ */

/* Nobody writes to the FIFO: a blocking open would hang until Criterion's timeout. */
Test(config, a_fifo_or_a_device_is_refused_wherever_a_file_is_read, .timeout = 30)
{
    char fifo[256], msg[600], var[300];
    char *env[] = {var, NULL};
    struct rg_config_flag url_file = {"database.urlFile", "--url-file", fifo};

    snprintf(fifo, sizeof(fifo), "%s/fifo", dir);
    cr_assert_eq(mkfifo(fifo, 0600), 0);

    snprintf(msg, sizeof(msg), "flag --config: %s: cannot read: not a regular file (a FIFO)", fifo);
    assert_failed(load(fifo, NULL, NULL, 0), msg);

    snprintf(var, sizeof(var), "ROLLGATE_DATABASE_PASSWORD_FILE=%s", fifo);
    snprintf(msg, sizeof(msg),
             "env ROLLGATE_DATABASE_PASSWORD_FILE: %s: cannot read: not a regular file (a FIFO)",
             fifo);
    assert_failed(load(NULL, env, NULL, 0), msg);

    snprintf(msg, sizeof(msg), "flag --url-file: %s: cannot read: not a regular file (a FIFO)",
             fifo);
    assert_failed(load(NULL, NULL, &url_file, 1), msg);

    url_file.value = "/dev/zero";
    assert_failed(load(NULL, NULL, &url_file, 1),
                  "flag --url-file: /dev/zero: cannot read: not a regular file (a character "
                  "device)");
}

/* --- nesting depth ------------------------------------------------------------------- */

static char *nested(const char *key, int depth)
{
    static char text[200000];
    size_t o = (size_t)snprintf(text, sizeof(text), "%s: ", key);

    for (int i = 0; i < depth; i++)
        text[o++] = '[';
    for (int i = 0; i < depth; i++)
        text[o++] = ']';
    text[o++] = '\n';
    text[o] = '\0';
    return text;
}

Test(config, yaml_nested_past_the_cap_is_refused_at_the_first_level_too_deep, .timeout = 30)
{
    /* The top mapping is level 1: 63 sequences reach the cap of 64, 64 pass it at the 64th
     * '[' (the first is at column 11). */
    assert_yaml_fails(nested("database", 63), ":1:11: database: expected a mapping of database.* "
                                              "keys");
    assert_yaml_fails(nested("database", 64), ":1:74: nested deeper than 64 levels");
    assert_yaml_fails(nested("database", 40000), ":1:74: nested deeper than 64 levels");
}

/* --- the lease identity -------------------------------------------------------------- */

Test(config, an_identity_that_is_not_utf8_text_is_refused_naming_its_source)
{
    char *pod[] = {"POD_NAME=app-\xff-1", NULL};
    char *ctl[] = {"POD_NAME=app\n1", NULL};

    assert_env_fails("ROLLGATE_LEASE_IDENTITY=app-\xc3\x28",
                     "env ROLLGATE_LEASE_IDENTITY: invalid value \"app-\xc3\x28\" (use UTF-8 text "
                     "without control characters, at most 253 bytes (the Lease's holderIdentity))");
    assert_failed(load(NULL, pod, NULL, 0),
                  "env POD_NAME: invalid value \"app-\xff-1\" for the lease identity (use UTF-8 "
                  "text without control characters, at most 253 bytes (the Lease's "
                  "holderIdentity)); or set lease.identity");
    cr_assert_eq(load(NULL, ctl, NULL, 0), -1);
    cr_assert_eq(strncmp(err.msg, "env POD_NAME: invalid value", 27), 0, "%s", err.msg);
    assert_yaml_fails("lease:\n  identity: \"a\\tb\"\n",
                      ":2:13: lease.identity: invalid value \"a\tb\" (use UTF-8 text without "
                      "control characters, at most 253 bytes (the Lease's holderIdentity))");
}

Test(config, an_identity_longer_than_a_lease_holds_is_refused_not_cut)
{
    char var[400], *env[] = {var, NULL};
    int n = snprintf(var, sizeof(var), "POD_NAME=");

    memset(var + n, 'p', RG_CONFIG_IDENTITY_MAX);
    var[n + RG_CONFIG_IDENTITY_MAX] = '\0';
    cr_assert_eq(load(NULL, env, NULL, 0), 0, "%s", err.msg);
    cr_assert_eq(strlen(cfg.lease.identity), RG_CONFIG_IDENTITY_MAX);
    rg_config_free(&cfg);

    strcat(var, "q");
    cr_assert_eq(load(NULL, env, NULL, 0), -1);
    cr_assert_eq(err.code, RG_ECONFIG);
    cr_assert_eq(strncmp(err.msg, "env POD_NAME: invalid value", 27), 0, "%s", err.msg);
    memcpy(var, "ROLLGATE_LEASE_IDENTITY=", 24);
    memset(var + 24, 'i', RG_CONFIG_IDENTITY_MAX + 1);
    var[24 + RG_CONFIG_IDENTITY_MAX + 1] = '\0';
    cr_assert_eq(load(NULL, env, NULL, 0), -1);
    cr_assert_eq(strncmp(err.msg, "env ROLLGATE_LEASE_IDENTITY: invalid value", 42), 0, "%s",
                 err.msg);
    /* Multi-byte characters are counted in bytes. */
    var[24] = '\0';
    for (int i = 0; i < 126; i++)
        strcat(var, "\xc3\xa9");
    cr_assert_eq(load(NULL, env, NULL, 0), 0, "%s", err.msg);
    cr_assert_eq(strlen(cfg.lease.identity), 252);
}

/* --- secrets are registered before any value is parsed ------------------------------- */

static void assert_hidden(const char *text, const char *want)
{
    char out[512];

    cr_assert_str_eq(rg_log_scrub(out, sizeof(out), text), want);
}

Test(config, a_short_password_typed_as_another_value_is_hidden_whatever_the_order)
{
    char *env[] = {"ROLLGATE_LEASE_MODE=Zq", "ROLLGATE_DATABASE_URL=postgresql://u:Zq@h/db", NULL};

    assert_failed(load(NULL, env, NULL, 0),
                  "env ROLLGATE_LEASE_MODE: invalid value \"***\" (use auto, kubernetes or none)");
}

Test(config, a_flag_before_the_url_flag_hides_its_password)
{
    struct rg_config_flag flags[] = {{"timeout", "--timeout", "Zq"},
                                     {"database.url", "--database-url", "host=h password=Zq"}};

    assert_failed(load(NULL, NULL, flags, 2),
                  "flag --timeout: invalid duration \"***\" (use e.g. 500ms, 30s, 5m, 1h30m)");
}

Test(config, a_yaml_value_above_the_url_hides_its_password)
{
    assert_yaml_fails("lease:\n  mode: \"~\"\ndatabase:\n  url: postgres://u:%7E@h/db\n",
                      ":2:9: lease.mode: invalid value \"***\" (use auto, kubernetes or none)");
}

Test(config, a_url_typed_into_another_key_shows_no_password)
{
    assert_flag_fails(
        "timeout", "--timeout", "postgresql://app:Zq@db/app?password=Zq",
        "flag --timeout: invalid duration \"postgresql://app:***@db/app?password=***\" "
        "(use e.g. 500ms, 30s, 5m, 1h30m)");
}

Test(config, pgpassword_and_the_secret_files_are_registered)
{
    char var[600], pvar[600];
    char *env[] = {"PGPASSWORD=P1", var, pvar, NULL};

    snprintf(var, sizeof(var), "ROLLGATE_DATABASE_URL_FILE=%s",
             write_file("url", "postgres://u:U1@h/db\n"));
    snprintf(pvar, sizeof(pvar), "ROLLGATE_DATABASE_PASSWORD_FILE=%s", write_file("pw", "W1\n"));
    cr_assert_eq(load(NULL, env, NULL, 0), 0, "%s", err.msg);
    assert_hidden("a P1 b U1 c W1 d", "a *** b *** c *** d");
}

/* The files are read for use once every value is in; their secrets are known before. */
Test(config, a_secret_file_content_typed_as_another_value_is_hidden)
{
    char yaml[700];
    char *env[] = {"ROLLGATE_LEASE_MODE=W2", NULL};

    snprintf(yaml, sizeof(yaml), "database:\n  passwordFile: %s\n", write_file("pw", "W2\n"));
    write_file("config.yaml", yaml);
    assert_failed(load(yaml_path, env, NULL, 0),
                  "env ROLLGATE_LEASE_MODE: invalid value \"***\" (use auto, kubernetes or none)");
}

/* --- migrations.phase ---------------------------------------------------------------- */

Test(config, migrations_phase_defaults_to_all_and_takes_flag_over_env_over_yaml)
{
    char *env[] = {"ROLLGATE_MIGRATIONS_PHASE=pre", NULL};
    struct rg_config_flag flag = {"migrations.phase", "--phase", "post"};

    cr_assert_eq(load(NULL, NULL, NULL, 0), 0, "%s", err.msg);
    cr_assert_eq(cfg.migrations.phase, RG_PHASE_ALL);
    cr_assert_str_eq(rg_config_phase_name(cfg.migrations.phase), "all");
    rg_config_free(&cfg);
    write_file("config.yaml", "migrations:\n  phase: post\n");
    cr_assert_eq(load(yaml_path, NULL, NULL, 0), 0, "%s", err.msg);
    cr_assert_eq(cfg.migrations.phase, RG_PHASE_POST);
    rg_config_free(&cfg);
    cr_assert_eq(load(yaml_path, env, NULL, 0), 0, "%s", err.msg);
    cr_assert_eq(cfg.migrations.phase, RG_PHASE_PRE, "env did not win over the YAML");
    rg_config_free(&cfg);
    cr_assert_eq(load(yaml_path, env, &flag, 1), 0, "%s", err.msg);
    cr_assert_eq(cfg.migrations.phase, RG_PHASE_POST, "the flag did not win over env");
}

Test(config, migrations_phase_refuses_an_unknown_value_naming_its_source)
{
    char *env[] = {"ROLLGATE_MIGRATIONS_PHASE=later", NULL};
    struct rg_config_flag flag = {"migrations.phase", "--phase", "contract"};

    cr_assert_eq(load(NULL, env, NULL, 0), -1);
    cr_assert_eq(err.code, RG_ECONFIG);
    cr_assert(strstr(err.msg, "env ROLLGATE_MIGRATIONS_PHASE"), "%s", err.msg);
    cr_assert(strstr(err.msg, "pre"), "%s", err.msg);
    cr_assert_eq(load(NULL, NULL, &flag, 1), -1);
    cr_assert_eq(err.code, RG_ECONFIG);
    cr_assert(strstr(err.msg, "--phase"), "%s", err.msg);
}
