/* The command line: global options, the command, its own options. */
#ifndef RG_CLI_H
#define RG_CLI_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "config/config.h"
#include "err/err.h"

enum rg_command {
    RG_CMD_NONE,
    RG_CMD_MIGRATE,
    RG_CMD_STATUS,
    RG_CMD_VERSION,
    RG_CMD_VALIDATE,
    RG_CMD_BASELINE,
    RG_CMD_NEW,
    RG_CMD_REPAIR,
    RG_CMD_WAIT,
    RG_CMD_PLAN,
    RG_CMD_LINT,
    RG_CMD_SUM,
};
enum rg_output { RG_OUTPUT_TEXT, RG_OUTPUT_JSON };

#define RG_CLI_MAX_FLAGS 12

struct rg_cli {
    enum rg_command command;
    const char *command_name;
    const char *config_file;
    struct rg_config_flag flags[RG_CLI_MAX_FLAGS];
    size_t nflags;
    bool help;
    bool version;
    enum rg_output output;
    bool output_given;
    bool exit_code;
    int64_t at_version; /* baseline --version N (required), repair --version N (0: all) */
    bool checksums;     /* repair --checksums */
    bool force;         /* repair --checksums --force */
    const char *name;   /* new NAME */
    /* migrate --after-rollout deployment/NAME: NAME, or NULL */
    const char *after_rollout;
};

/* Fills cli from argv (borrowed). Errors are RG_EUSAGE. */
int rg_cli_parse(int argc, char **argv, struct rg_cli *cli, struct rg_err *err) RG_WUR;
/* The usage of one command, or the general one for RG_CMD_NONE. */
void rg_cli_usage(FILE *out, enum rg_command command);

#endif
