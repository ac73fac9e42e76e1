#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "log/log.h"
#include "source/lint.h"

/* An argument is quoted in a message redacted whole, then cut to this many bytes: a URL typed
 * in the wrong place shows no password, and a message stays short. */
#define SHOWN_MAX 120

enum {
    OPT_CONFIG = 256,
    OPT_DATABASE_URL,
    OPT_DIR,
    OPT_TARGET,
    OPT_LEASE_MODE,
    OPT_LOG_FORMAT,
    OPT_LOG_LEVEL,
    OPT_TIMEOUT,
    OPT_OUTPUT,
    OPT_EXIT_CODE,
    OPT_VERSION,
    OPT_CHECKSUMS,
    OPT_FORCE,
    OPT_PHASE,
    OPT_AFTER_ROLLOUT,
};

static const struct option options[] = {
    {"config", required_argument, NULL, OPT_CONFIG},
    {"database-url", required_argument, NULL, OPT_DATABASE_URL},
    {"dir", required_argument, NULL, OPT_DIR},
    {"target", required_argument, NULL, OPT_TARGET},
    {"lease-mode", required_argument, NULL, OPT_LEASE_MODE},
    {"log-format", required_argument, NULL, OPT_LOG_FORMAT},
    {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {"output", required_argument, NULL, OPT_OUTPUT},
    {"exit-code", no_argument, NULL, OPT_EXIT_CODE},
    {"version", optional_argument, NULL, OPT_VERSION},
    {"checksums", no_argument, NULL, OPT_CHECKSUMS},
    {"force", no_argument, NULL, OPT_FORCE},
    {"phase", required_argument, NULL, OPT_PHASE},
    {"after-rollout", required_argument, NULL, OPT_AFTER_ROLLOUT},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* Flags that set a configuration key: they go through the configuration's own setter. */
static const struct {
    int opt;
    const char *key;
    const char *flag;
} config_flags[] = {
    {OPT_DATABASE_URL, "database.url", "--database-url"},
    {OPT_DIR, "migrations.dir", "--dir"},
    {OPT_TARGET, "migrations.target", "--target"},
    {OPT_LEASE_MODE, "lease.mode", "--lease-mode"},
    {OPT_LOG_FORMAT, "log.format", "--log-format"},
    {OPT_LOG_LEVEL, "log.level", "--log-level"},
    {OPT_TIMEOUT, "timeout", "--timeout"},
    {OPT_PHASE, "migrations.phase", "--phase"},
};

static const struct {
    enum rg_command command;
    const char *name;
    const char *usage;
} commands[] = {
    {RG_CMD_MIGRATE, "migrate",
     "Usage: rollgate migrate [--target VERSION|latest] [--phase pre|post|all]\n"
     "                        [--after-rollout deployment/NAME] [global options]\n"
     "\n"
     "Apply the pending migrations, in version order, each in its own transaction with\n"
     "its history row. Exits 0 when the schema is current (nothing to do is success).\n"
     "  --phase pre|post|all  pre: leave post-deploy migrations (rollgate:phase=post)\n"
     "                        pending; post: apply pending pre ones, then the post\n"
     "                        ones; all (default): both, in version order\n"
     "  --after-rollout deployment/NAME\n"
     "                        with --phase post: first wait until that Deployment's\n"
     "                        rollout is complete (exit 8 when the timeout runs out\n"
     "                        or its progress deadline was exceeded)\n"
     "With migrations.autoMigrate false (ROLLGATE_AUTO_MIGRATE=false) it logs one line\n"
     "and exits 0 without touching the database.\n"},
    {RG_CMD_STATUS, "status",
     "Usage: rollgate status [--output text|json] [--exit-code] [global options]\n"
     "\n"
     "Show each migration: applied, pending, changed (drift), missing (applied, file\n"
     "gone), unknown (applied by a newer image), failed.\n"
     "  --output text|json   result format on stdout (default text)\n"
     "  --exit-code          exit 11 when something is pending, 5 when something\n"
     "                       changed or failed, else 0\n"},
    {RG_CMD_VERSION, "version",
     "Usage: rollgate version [--output text|json] [global options]\n"
     "\n"
     "Print the database's current schema version (0 when nothing is applied).\n"
     "  --output text|json   result format on stdout (default text)\n"},
    {RG_CMD_VALIDATE, "validate",
     "Usage: rollgate validate [global options]\n"
     "\n"
     "Check the migration files: names, duplicate versions, directives, down files,\n"
     "transaction control. When a database is configured and reachable (one attempt),\n"
     "also check them against its history: drift, failed marks, versions this image\n"
     "lacks, out-of-order versions. Exits 0, 4 (files) or 5 (history).\n"},
    {RG_CMD_BASELINE, "baseline",
     "Usage: rollgate baseline --version N [global options]\n"
     "\n"
     "Adopt an existing database: record every migration up to version N as applied\n"
     "without running it. Refused (exit 5) when rollgate's history already has rows.\n"},
    {RG_CMD_NEW, "new",
     "Usage: rollgate new NAME [--dir DIR]\n"
     "\n"
     "Write the next NNNN_NAME.up.sql and NNNN_NAME.down.sql into the migrations\n"
     "directory and print their paths. NAME: letters, digits, '_' and '-'.\n"},
    {RG_CMD_WAIT, "wait",
     "Usage: rollgate wait [--timeout D] [global options]\n"
     "\n"
     "Block until every pre-deploy schema migration this image knows is applied (for an\n"
     "init container of pods that must not start on an older schema; post-deploy ones\n"
     "may still be pending), then exit 0. Never writes. Exit 8 when --timeout\n"
     "(default lease.waitTimeout) runs out, 5 on drift or a failed migration.\n"},
    {RG_CMD_PLAN, "plan",
     "Usage: rollgate plan [--target VERSION|latest] [--output text|json] [global options]\n"
     "\n"
     "A dry run on a real database: each pending migration (up to --target) runs\n"
     "statement by statement inside one transaction that is always rolled back, and\n"
     "the plan shows per statement the relation locks it took, the tables it rewrote,\n"
     "the rows it touched and its duration. No-transaction migrations are listed, not\n"
     "run. The history and the schema are unchanged afterwards. It takes the locks the\n"
     "real run takes, each wait bounded by lock_timeout: point it at a staging copy when\n"
     "in doubt. Exit 6 when a statement fails (file:line, SQLSTATE), 12 when one\n"
     "cannot get its lock within lock_timeout.\n"
     "  --output text|json   result format on stdout (default text)\n"},
    {RG_CMD_REPAIR, "repair",
     "Usage: rollgate repair [--version N] [global options]\n"
     "       rollgate repair --checksums [--force] [global options]\n"
     "\n"
     "After a no-transaction migration failed part way and you have undone what it did\n"
     "by hand, clear its failed mark (all of them without --version) so that the next\n"
     "migrate runs it again.\n"
     "\n"
     "--checksums: record the files' current checksums for applied migrations whose file\n"
     "changed only in comments or white space. --force records any other change too,\n"
     "logging its diff against the SQL stored at apply time.\n"},
    {RG_CMD_LINT, "lint",
     "Usage: rollgate lint [--output text|json] [--dir DIR]\n"
     "\n"
     "Analyse every migration file with PostgreSQL's own parser, no database needed:\n"
     "each finding names file:line:column, the rule, its severity, the lock or rewrite\n"
     "it causes and the safe way. `-- rollgate:allow=RULE[,RULE] reason` in a file's\n"
     "leading comments accepts that rule's findings in the file. Exits 4 when an error\n"
     "is not allowed, else 0.\n"
     "  --output text|json   result format on stdout (default text)\n"},
    {RG_CMD_SUM, "sum",
     "Usage: rollgate sum [--dir DIR]\n"
     "\n"
     "Write the checksum index rollgate.sum into the migrations directory: each up\n"
     "file's SHA-256, size and modification time. Run it as the last step that\n"
     "changes the directory when the image is built: a start then reads the index\n"
     "instead of every up file whose size and time are unchanged. validate checks it.\n"},
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static const char global_usage[] =
    "Global options (flags > ROLLGATE_* environment > config file > defaults):\n"
    "  --config FILE              YAML configuration (default /etc/rollgate/config.yaml)\n"
    "  --database-url URL         PostgreSQL URL (else libpq's PG* variables)\n"
    "  --dir DIR                  migrations directory (default /migrations)\n"
    "  --target VERSION|latest    migrate up to this version; below the current one,\n"
    "                             roll back to it with down migrations\n"
    "  --lease-mode auto|kubernetes|none\n"
    "  --log-format auto|json|text\n"
    "  --log-level debug|info|warn|error\n"
    "  --timeout DURATION         stop the run after this long (e.g. 10m)\n"
    "  -h, --help                 this help (also per command)\n"
    "  --version                  print rollgate's version (after baseline or repair:\n"
    "                             the version to act on)\n";

/* The rules lint knows, for lint --help: what an allow directive may name. */
static void lint_rules(FILE *out)
{
    fputs("\nRules (severity, name):\n", out);
    for (int r = 0; r < RG_LINT_NRULES; r++) {
        const struct rg_lint_rule_info *info = rg_lint_rule_info((enum rg_lint_rule)r);
        fprintf(out, "  %-8s %s\n", rg_lint_severity_name(info->severity), info->name);
    }
}

void rg_cli_usage(FILE *out, enum rg_command command)
{
    for (size_t i = 0; i < NCOMMANDS; i++) {
        if (commands[i].command == command) {
            fprintf(out, "%s\n%s", commands[i].usage, global_usage);
            if (command == RG_CMD_LINT)
                lint_rules(out);
            return;
        }
    }
    fputs("Usage: rollgate [global options] COMMAND [options]\n"
          "\n"
          "Bring a PostgreSQL schema to the version this release needs, exactly once.\n"
          "\n"
          "Commands:\n"
          "  migrate   apply pending migrations (or roll back to --target)\n"
          "  status    show applied and pending migrations\n"
          "  version   print the database's schema version\n"
          "  validate  check the migration files (and the history, when reachable)\n"
          "  baseline  adopt an existing database at --version N\n"
          "  new       write the next migration's up and down files\n"
          "  repair    clear a failed no-transaction migration's mark\n"
          "  wait      block until the schema is current (never writes)\n"
          "  plan      try the pending migrations in a rolled-back transaction: locks,\n"
          "            rewrites, rows, durations\n"
          "  lint      analyse the migration files for locks, rewrites and breakage\n"
          "  sum       write the checksum index rollgate.sum (at image build)\n"
          "\n",
          out);
    fputs(global_usage, out);
    fputs("\nExit codes: 0 ok, 1 internal, 2 usage, 3 configuration, 4 migration files,\n"
          "5 history conflict, 6 migration failed, 7 database unavailable, 8 lease or\n"
          "timeout, 9 Kubernetes API unavailable, 10 Kubernetes API refused, 11 pending\n"
          "(status --exit-code), 12 table lock not acquired (the blocker is named),\n"
          "128+N stopped by signal N.\n",
          out);
}

static bool takes_version(const struct rg_cli *cli)
{
    return cli->command == RG_CMD_BASELINE || cli->command == RG_CMD_REPAIR;
}

static int parse_version(struct rg_cli *cli, const char *arg, struct rg_err *err)
{
    char *end, shown[SHOWN_MAX + 1];
    long long v;

    errno = 0;
    v = strtoll(arg, &end, 10);
    if (errno || end == arg || *end || v <= 0) {
        rg_err_set(err, RG_EUSAGE, "--version: \"%s\" is not a positive version number",
                   rg_log_scrub(shown, sizeof(shown), arg));
        return -1;
    }
    cli->at_version = v;
    return 0;
}

/* An operand: the command, or the value a command takes (new NAME, or the N of
 * baseline/repair --version N). */
static int operand(struct rg_cli *cli, const char *arg, bool *version_pending, struct rg_err *err)
{
    char shown[SHOWN_MAX + 1];

    if (*version_pending) {
        *version_pending = false;
        return parse_version(cli, arg, err);
    }
    if (cli->command == RG_CMD_NEW && !cli->name) {
        cli->name = arg;
        return 0;
    }
    if (cli->command != RG_CMD_NONE) {
        rg_err_set(err, RG_EUSAGE, "unexpected argument \"%s\" after command %s",
                   rg_log_scrub(shown, sizeof(shown), arg), cli->command_name);
        return -1;
    }
    for (size_t i = 0; i < NCOMMANDS; i++) {
        if (strcmp(commands[i].name, arg) == 0) {
            cli->command = commands[i].command;
            cli->command_name = commands[i].name;
            return 0;
        }
    }
    rg_err_set(err, RG_EUSAGE,
               "unknown command \"%s\" (commands: migrate, status, version, validate, baseline, "
               "new, repair, wait, plan, lint, sum)",
               rg_log_scrub(shown, sizeof(shown), arg));
    return -1;
}

int rg_cli_parse(int argc, char **argv, struct rg_cli *cli, struct rg_err *err)
{
    bool version_pending = false;
    char shown[SHOWN_MAX + 1];
    int c, rc = 0;

    memset(cli, 0, sizeof(*cli));
    optind = 1;
    opterr = 0;
    /* "-" first: operands come back in order as option 1, so options may stand before or
     * after the command without GNU getopt reordering argv. After the first error the rest
     * is still read, without a message (e is then NULL): every flag (--database-url) is then
     * in cli->flags, for the caller to register its secrets before it shows the error. */
    while ((c = getopt_long(argc, argv, "-:h", options, NULL)) != -1) {
        struct rg_err *e = rc < 0 ? NULL : err;
        switch (c) {
        case 1:
            if (operand(cli, optarg, &version_pending, e) < 0)
                rc = -1;
            break;
        case 'h':
            cli->help = true;
            break;
        case OPT_VERSION:
            /* After baseline or repair, --version names the version to act on. */
            if (!takes_version(cli))
                cli->version = true;
            else if (optarg && parse_version(cli, optarg, e) < 0)
                rc = -1;
            else
                version_pending = !optarg;
            break;
        case OPT_CONFIG:
            cli->config_file = optarg;
            break;
        case OPT_OUTPUT:
            cli->output_given = true;
            if (strcmp(optarg, "text") == 0) {
                cli->output = RG_OUTPUT_TEXT;
            } else if (strcmp(optarg, "json") == 0) {
                cli->output = RG_OUTPUT_JSON;
            } else {
                rg_err_set(e, RG_EUSAGE, "--output: \"%s\" is not text or json",
                           rg_log_scrub(shown, sizeof(shown), optarg));
                rc = -1;
            }
            break;
        case OPT_EXIT_CODE:
            cli->exit_code = true;
            break;
        case OPT_CHECKSUMS:
            cli->checksums = true;
            break;
        case OPT_FORCE:
            cli->force = true;
            break;
        case OPT_AFTER_ROLLOUT:
            /* kubectl's TYPE/NAME; the name itself is checked where it is sent. */
            if (strncmp(optarg, "deployment/", strlen("deployment/")) != 0 ||
                !optarg[strlen("deployment/")]) {
                rg_err_set(e, RG_EUSAGE, "--after-rollout: \"%s\" is not deployment/NAME",
                           rg_log_scrub(shown, sizeof(shown), optarg));
                rc = -1;
                break;
            }
            cli->after_rollout = optarg + strlen("deployment/");
            break;
        case ':':
            rg_err_set(e, RG_EUSAGE, "option %s needs a value",
                       rg_log_scrub(shown, sizeof(shown), argv[optind - 1]));
            rc = -1;
            break;
        case '?':
            rg_err_set(e, RG_EUSAGE, "unknown option %s",
                       rg_log_scrub(shown, sizeof(shown), argv[optind - 1]));
            rc = -1;
            break;
        default:
            for (size_t i = 0; i < sizeof(config_flags) / sizeof(config_flags[0]); i++) {
                if (config_flags[i].opt != c)
                    continue;
                if (cli->nflags == RG_CLI_MAX_FLAGS) {
                    rg_err_set(e, RG_EUSAGE, "too many options");
                    rc = -1;
                    break;
                }
                cli->flags[cli->nflags].key = config_flags[i].key;
                cli->flags[cli->nflags].flag = config_flags[i].flag;
                cli->flags[cli->nflags].value = optarg;
                cli->nflags++;
            }
            break;
        }
    }
    if (rc < 0)
        return -1;
    if (cli->help || cli->version)
        return 0;
    if (cli->command == RG_CMD_NONE) {
        rg_err_set(err, RG_EUSAGE, "no command given (see rollgate --help)");
        return -1;
    }
    if (version_pending) {
        rg_err_set(err, RG_EUSAGE, "--version needs a value after %s", cli->command_name);
        return -1;
    }
    if (cli->command == RG_CMD_BASELINE && !cli->at_version) {
        rg_err_set(err, RG_EUSAGE, "baseline needs --version N");
        return -1;
    }
    if (cli->command == RG_CMD_NEW && !cli->name) {
        rg_err_set(err, RG_EUSAGE, "new needs a NAME");
        return -1;
    }
    if (cli->checksums && cli->command != RG_CMD_REPAIR) {
        rg_err_set(err, RG_EUSAGE, "--checksums applies only to repair");
        return -1;
    }
    if (cli->checksums && cli->at_version) {
        rg_err_set(err, RG_EUSAGE,
                   "repair --checksums takes no --version: it looks at every applied migration");
        return -1;
    }
    if (cli->force && !cli->checksums) {
        rg_err_set(err, RG_EUSAGE, "--force applies only to repair --checksums");
        return -1;
    }
    if (cli->after_rollout && cli->command != RG_CMD_MIGRATE) {
        rg_err_set(err, RG_EUSAGE, "--after-rollout applies only to migrate");
        return -1;
    }
    if (cli->exit_code && cli->command != RG_CMD_STATUS) {
        rg_err_set(err, RG_EUSAGE, "--exit-code applies only to status");
        return -1;
    }
    if (cli->output_given && cli->command != RG_CMD_STATUS && cli->command != RG_CMD_VERSION &&
        cli->command != RG_CMD_PLAN && cli->command != RG_CMD_LINT) {
        rg_err_set(err, RG_EUSAGE, "--output applies only to status, version, plan and lint");
        return -1;
    }
    return 0;
}
