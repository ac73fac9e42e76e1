/* No secret in any message: a catalogue of malformed database URLs, mistyped arguments, and
 * environment and file values, each run with a known password (a long one and two short
 * ones, "Zq" and "~", which nothing else in the output contains); stdout, stderr and the
 * termination log must not hold it, nor, for the long one, its first or last bytes. */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

TestSuite(secrets, .init = h_setup, .fini = h_teardown);

static const char *const passwords[] = {"Pw-Long-Secret-0042-Kx", "Zq", "~"};
#define NPASSWORDS (sizeof(passwords) / sizeof(passwords[0]))

/* Nothing listens on port 1: a run that gets as far as connecting fails at once. */
#define NOWHERE "127.0.0.1:1"

/* One way to get it wrong. In every string "{pw}" stands for the password and "{padN}" for N
 * letters 'a'. config: the YAML of a --config file; pw_file: the password also comes from
 * database.passwordFile. */
struct leak_case {
    const char *name;
    int exit;
    const char *args[8];
    const char *env[4];
    const char *config;
    bool pw_file;
};

#define URL "ROLLGATE_DATABASE_URL="
#define NO_ENV                                                                                     \
    {                                                                                              \
        NULL                                                                                       \
    }
#define NO_FILES NULL, false

static const struct leak_case malformed_urls[] = {
    {"bad percent-encoding in the password",
     3,
     {"version"},
     {URL "postgresql://app:{pw}%zz@" NOWHERE "/app"},
     NO_FILES},
    {"bad percent-encoding in the password parameter",
     3,
     {"version"},
     {URL "postgres://app@" NOWHERE "/app?password={pw}%zz"},
     NO_FILES},
    {"bad percent-encoding in the database name",
     3,
     {"version"},
     {URL "postgresql://app:{pw}@" NOWHERE "/app%zz"},
     NO_FILES},
    {"bad percent-encoding in database.directUrl",
     3,
     {"version"},
     {URL "postgresql://app@" NOWHERE "/app",
      "ROLLGATE_DATABASE_DIRECT_URL=postgresql://app:{pw}%zz@" NOWHERE "/app"},
     NO_FILES},
    {"bad percent-encoding, from the flag",
     3,
     {"version", "--database-url", "postgresql://app:{pw}%zz@" NOWHERE "/app"},
     NO_ENV,
     NO_FILES},
    {"bad percent-encoding, from the URL file",
     3,
     {"version"},
     {"ROLLGATE_DATABASE_URL_FILE={tmp}/url"},
     NO_FILES},
    /* libpq quotes the whole URL here: longer than any message, cut after the password. */
    {"a long URL quoted by libpq, the password near its start",
     3,
     {"version"},
     {URL "postgresql://app:{pw}@[::1/app?application_name={pad1100}"},
     NO_FILES},
    {"a long URL quoted by libpq, the password where the message is cut",
     3,
     {"version"},
     {URL "postgresql://app@[::1/app?application_name={pad96}&password={pw}&options={pad1000}"},
     NO_FILES},
    {"a long URL quoted by libpq, the password at its end",
     3,
     {"version"},
     {URL "postgresql://app@[::1/app?application_name={pad1100}&password={pw}"},
     NO_FILES},
    {"an unterminated quote",
     3,
     {"version"},
     {URL "host=127.0.0.1 port=1 password='{pw}"},
     NO_FILES},
    {"an escaped quote left unterminated",
     3,
     {"version"},
     {URL "host=127.0.0.1 port=1 password = 'a\\' {pw}"},
     NO_FILES},
    {"a word after a quoted password",
     3,
     {"version"},
     {URL "host=127.0.0.1 port=1 password='{pw}' {pw}"},
     NO_FILES},
    {"an unknown key",
     3,
     {"version"},
     {URL "host=127.0.0.1 port=1 password={pw} bogus=1"},
     NO_FILES},
    {"an unknown URI parameter",
     3,
     {"version"},
     {URL "postgresql://app:{pw}@" NOWHERE "/app?bogus={pw}"},
     NO_FILES},
    {"a bad port",
     7,
     {"version"},
     {URL "postgresql://app:{pw}@127.0.0.1:notaport/app", "ROLLGATE_DATABASE_CONNECT_RETRY=1s"},
     NO_FILES},
};

static const struct leak_case mistyped[] = {
    {"a URL given to --dir",
     4,
     {"migrate", "--dir", "postgresql://app:{pw}@" NOWHERE "/app"},
     NO_ENV,
     NO_FILES},
    {"a URL given to --timeout",
     3,
     {"migrate", "--timeout", "postgresql://app:{pw}@" NOWHERE "/app"},
     NO_ENV,
     NO_FILES},
    {"a URL given to --lease-mode",
     3,
     {"migrate", "--lease-mode", "postgres://app@" NOWHERE "/app?password={pw}"},
     NO_ENV,
     NO_FILES},
    {"a URL given to --config",
     3,
     {"migrate", "--config", "postgresql://app:{pw}@h/app"},
     NO_ENV,
     NO_FILES},
    {"a URL given to repair --version",
     2,
     {"repair", "--version", "postgresql://app:{pw}@" NOWHERE "/app"},
     NO_ENV,
     NO_FILES},
    {"a URL as the command",
     2,
     {"postgresql://app:{pw}@" NOWHERE "/app", "migrate"},
     NO_ENV,
     NO_FILES},
    {"a URL after the command", 2, {"migrate", "host=127.0.0.1 password={pw}"}, NO_ENV, NO_FILES},
    {"a URL in an unknown option",
     2,
     {"migrate", "--database-urll=postgresql://app:{pw}@" NOWHERE "/app"},
     NO_ENV,
     NO_FILES},
    {"a long URL after the command",
     2,
     {"migrate", "postgresql://app@" NOWHERE "/app?application_name={pad1100}&password={pw}"},
     NO_ENV,
     NO_FILES},
    /* The password alone: hidden because the configured URL holds it. */
    {"the password given to --timeout",
     3,
     {"migrate", "--timeout", "{pw}"},
     {URL "postgresql://app:{pw}@" NOWHERE "/app"},
     NO_FILES},
    {"the password given to --timeout before the URL flag",
     3,
     {"migrate", "--timeout", "{pw}", "--database-url", "postgresql://app:{pw}@" NOWHERE "/app"},
     NO_ENV,
     NO_FILES},
    {"the password given to repair --version",
     2,
     {"repair", "--version", "{pw}"},
     {URL "host=127.0.0.1 port=1 password={pw}"},
     NO_FILES},
    {"the password as the command",
     2,
     {"{pw}"},
     {URL "postgresql://app:{pw}@" NOWHERE "/app"},
     NO_FILES},
    {"the password after the command, before the URL flag",
     2,
     {"migrate", "{pw}", "--database-url", "postgresql://app:{pw}@" NOWHERE "/app"},
     NO_ENV,
     NO_FILES},
    {"the password given to --output",
     2,
     {"status", "--output", "{pw}"},
     {URL "postgresql://app:{pw}@" NOWHERE "/app"},
     NO_FILES},
    {"the password as an unknown option",
     2,
     {"migrate", "--{pw}"},
     {URL "postgresql://app:{pw}@" NOWHERE "/app"},
     NO_FILES},
};

static const struct leak_case values[] = {
    {"the password as an environment value",
     3,
     {"migrate"},
     {"ROLLGATE_LEASE_MODE={pw}", URL "postgresql://app:{pw}@" NOWHERE "/app"},
     NO_FILES},
    {"a URL as an environment value",
     3,
     {"migrate"},
     {"ROLLGATE_TIMEOUT=postgresql://app:{pw}@" NOWHERE "/app"},
     NO_FILES},
    {"a URL as the migrations directory",
     4,
     {"migrate"},
     {"ROLLGATE_MIGRATIONS_DIR=postgresql://app:{pw}@" NOWHERE "/app"},
     NO_FILES},
    {"a URL as the URL file's path",
     3,
     {"migrate"},
     {"ROLLGATE_DATABASE_URL_FILE=postgresql://app:{pw}@" NOWHERE "/app"},
     NO_FILES},
    {"PGPASSWORD given to --timeout",
     3,
     {"migrate", "--timeout", "{pw}"},
     {"PGPASSWORD={pw}"},
     NO_FILES},
    {"the password file's text given to --lease-mode",
     3,
     {"migrate", "--lease-mode", "{pw}"},
     NO_ENV,
     NULL,
     true},
    {"the password in the config file above the URL",
     3,
     {"migrate"},
     NO_ENV,
     "lease:\n  mode: \"{pw}\"\ndatabase:\n  url: postgresql://app:{pw}@" NOWHERE "/app\n",
     false},
    {"a URL as a config file value",
     3,
     {"migrate"},
     NO_ENV,
     "timeout: \"postgresql://app:{pw}@" NOWHERE "/app\"\n",
     false},
    {"the password as the lease identity",
     3,
     {"migrate"},
     {"POD_NAME={pw}\x01", URL "postgresql://app:{pw}@" NOWHERE "/app"},
     NO_FILES},
};

/* tmpl with {pw}, {padN} and {tmp} replaced. */
static char *expand(const char *tmpl, const char *pw)
{
    size_t cap = strlen(tmpl) + 4096, o = 0;
    char *out = malloc(cap);

    cr_assert_not_null(out);
    for (const char *p = tmpl; *p;) {
        const char *piece = NULL;
        size_t n = 0;
        if (strncmp(p, "{pw}", 4) == 0) {
            piece = pw;
            n = strlen(pw);
            p += 4;
        } else if (strncmp(p, "{tmp}", 5) == 0) {
            piece = h_tmp_dir();
            n = strlen(piece);
            p += 5;
        } else if (strncmp(p, "{pad", 4) == 0) {
            char *end;
            n = strtoul(p + 4, &end, 10);
            cr_assert_eq(*end, '}', "bad template %s", tmpl);
            cr_assert_lt(o + n, cap - 64);
            memset(out + o, 'a', n);
            o += n;
            p = end + 1;
            continue;
        } else {
            piece = p++;
            n = 1;
        }
        cr_assert_lt(o + n, cap - 1);
        memcpy(out + o, piece, n);
        o += n;
    }
    out[o] = '\0';
    char *kept = h_fmt("%s", out);
    free(out);
    return kept;
}

/* The password, and for a long one its first and last 8 bytes, appear nowhere. */
static void assert_no_password(const struct h_result *r, const char *pw, const char *name)
{
    const char *texts[] = {r->out, r->err, r->termlog};
    const char *names[] = {"stdout", "stderr", "the termination log"};
    char parts[3][16];
    size_t n = strlen(pw), nparts = 1;

    snprintf(parts[0], sizeof(parts[0]), "%s", pw);
    if (n >= 16) {
        snprintf(parts[1], sizeof(parts[1]), "%.8s", pw);
        snprintf(parts[2], sizeof(parts[2]), "%s", pw + n - 8);
        nparts = 3;
    }
    for (size_t t = 0; t < 3; t++)
        for (size_t i = 0; i < nparts; i++)
            cr_assert_null(strstr(texts[t], i == 0 ? pw : parts[i]),
                           "%s: %s shows the password (\"%s\")\n%s", name, names[t],
                           i == 0 ? pw : parts[i], h_describe(r));
}

static void run_case(const struct leak_case *c, const char *pw)
{
    const char *args[16] = {NULL}, *env[12] = {NULL};
    size_t na = 0, ne = 0;

    h_write_file(h_tmp_path("url"), expand("postgresql://app:{pw}%zz@" NOWHERE "/app\n", pw));
    if (c->config) {
        char *file = h_tmp_path("config.yaml");
        h_write_file(file, expand(c->config, pw));
        args[na++] = "--config";
        args[na++] = file;
    }
    for (size_t i = 0; i < sizeof(c->args) / sizeof(c->args[0]) && c->args[i]; i++)
        args[na++] = expand(c->args[i], pw);
    /* The case's first: the first of two settings of a variable is the one that counts. */
    for (size_t i = 0; i < sizeof(c->env) / sizeof(c->env[0]) && c->env[i]; i++)
        env[ne++] = expand(c->env[i], pw);
    env[ne++] = h_env_dir();
    env[ne++] = "ROLLGATE_DATABASE_CONNECT_RETRY=1s";
    if (c->pw_file) {
        char *file = h_tmp_path("password");
        h_write_file(file, expand("{pw}\n", pw));
        env[ne++] = h_fmt("ROLLGATE_DATABASE_PASSWORD_FILE=%s", file);
    }

    struct h_result r = h_run(args, env);
    cr_assert(r.exited && r.code == c->exit, "%s, password \"%s\": expected exit status %d\n%s",
              c->name, pw, c->exit, h_describe(&r));
    assert_no_password(&r, pw, c->name);
}

static void run_catalogue(const struct leak_case *cases, size_t n)
{
    for (size_t i = 0; i < n; i++)
        for (size_t p = 0; p < NPASSWORDS; p++)
            run_case(&cases[i], passwords[p]);
}

#define RUN_CATALOGUE(cases) run_catalogue(cases, sizeof(cases) / sizeof(cases[0]))

Test(secrets, no_malformed_url_shows_its_password)
{
    RUN_CATALOGUE(malformed_urls);
}

Test(secrets, no_mistyped_argument_shows_a_password)
{
    RUN_CATALOGUE(mistyped);
}

Test(secrets, no_environment_or_file_value_shows_a_password)
{
    RUN_CATALOGUE(values);
}

/* Redaction does not cost the operator the place of the mistake. */
Test(secrets, a_redacted_message_still_names_the_mistake)
{
    struct h_result r = h_run(H_ARGS("migrate", "--timeout", "postgresql://app:Zq@" NOWHERE "/app"),
                              H_ENV(h_env_dir()));

    h_assert_exit(r, 3);
    h_assert_has(r, r.err,
                 "flag --timeout: invalid duration \\\"postgresql://app:***@" NOWHERE "/app\\\"");
    h_assert_has(r, r.termlog, "flag --timeout: invalid duration \"postgresql://app:***@");

    struct h_result u = h_run(H_ARGS("migrate", "postgres://app@h/db?password=Zq&sslmode=require"),
                              H_ENV(h_env_dir()));
    h_assert_exit(u, 2);
    h_assert_has(u, u.termlog,
                 "unexpected argument \"postgres://app@h/db?password=***&sslmode=require\"");
}
