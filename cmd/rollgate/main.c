/* rollgate: parse the command line, load the configuration, run the command, log the
 * final outcome once and turn its code into the exit status. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "commands.h"
#include "config/config.h"
#include "log/log.h"
#include "signals.h"

extern char **environ;

/* Kubernetes shows this file's contents in the pod's status. Under /dev it is only
 * written when it exists (the kubelet mounts it), never created, so a run on a laptop as
 * root leaves /dev alone; elsewhere the configured path is created. */
static void write_termination_log(const char *path, const char *line)
{
    char clean[1024];
    int flags = O_WRONLY | O_TRUNC | O_CLOEXEC | O_NOCTTY;
    int fd;

    if (!path || !*path)
        return;
    if (strncmp(path, "/dev/", 5) != 0)
        flags |= O_CREAT;
    fd = open(path, flags, 0644);
    if (fd < 0) {
        RG_DEBUG("termination log not written" RG_F "path=%s" RG_F "error=%s", path,
                 strerror(errno));
        return;
    }
    rg_log_scrub(clean, sizeof(clean) - 1, line);
    strcat(clean, "\n");
    if (write(fd, clean, strlen(clean)) < 0)
        RG_DEBUG("termination log not written" RG_F "path=%s" RG_F "error=%s", path,
                 strerror(errno));
    close(fd);
}

static int finish(const char *command, const char *termination_log, const char *summary,
                  const struct rg_err *err)
{
    char line[1024];
    int sig = rg_signals_received();
    enum rg_code code = err->code;
    int status;

    if (code == RG_OK || code == RG_EPENDING) {
        snprintf(line, sizeof(line), "%s", summary);
        status = rg_err_exit_status(code, 0);
        RG_INFO("%s" RG_F "exit_code=%d", line, status);
    } else {
        if (code == RG_ESIGNAL && rg_signals_timed_out() && !sig)
            code = RG_ELEASE;
        status = rg_err_exit_status(code, sig);
        if (code == RG_ESIGNAL)
            snprintf(line, sizeof(line), "%s stopped by signal %d (%s): %s", command, sig,
                     strsignal(sig), err->msg);
        else if (code == RG_ELEASE && rg_signals_timed_out())
            snprintf(line, sizeof(line), "%s failed: the run's timeout ran out: %s", command,
                     err->msg);
        else
            snprintf(line, sizeof(line), "%s failed: %s", command, err->msg);
        RG_ERROR("%s" RG_F "exit_code=%d" RG_F "error=%s" RG_F "retryable=%s", line, status,
                 rg_err_code_name(code), rg_err_retryable(code) ? "true" : "false");
    }
    write_termination_log(termination_log, line);
    return status;
}

typedef int (*handler)(const struct rg_cli *cli, const struct rg_config *cfg, char *summary,
                       size_t n, struct rg_err *err);

static const handler handlers[] = {
    [RG_CMD_MIGRATE] = rg_cmd_migrate,   [RG_CMD_STATUS] = rg_cmd_status,
    [RG_CMD_VERSION] = rg_cmd_version,   [RG_CMD_VALIDATE] = rg_cmd_validate,
    [RG_CMD_BASELINE] = rg_cmd_baseline, [RG_CMD_NEW] = rg_cmd_new,
    [RG_CMD_REPAIR] = rg_cmd_repair,     [RG_CMD_WAIT] = rg_cmd_wait,
    [RG_CMD_PLAN] = rg_cmd_plan,         [RG_CMD_LINT] = rg_cmd_lint,
    [RG_CMD_SUM] = rg_cmd_sum,
};

int main(int argc, char **argv)
{
    struct rg_cli cli;
    struct rg_config cfg = {0};
    struct rg_err err = {0};
    char summary[512] = "";
    int ret, status;

    rg_signals_start();
    rg_log_setup(RG_LOG_FORMAT_AUTO, RG_LOG_INFO, stderr);
    if (rg_cli_parse(argc, argv, &cli, &err) < 0) {
        /* The configuration is not read, but the secrets on the command line and in the
         * environment are known before the message is shown. */
        rg_config_redact(environ, cli.flags, cli.nflags);
        rg_err_prefix(&err, "usage (see rollgate --help)");
        return finish(cli.command_name ? cli.command_name : "rollgate",
                      rg_config_early_termination_log(environ), "", &err);
    }
    if (cli.help) {
        rg_cli_usage(stdout, cli.command);
        return 0;
    }
    if (cli.version) {
        printf("rollgate %s\n", RG_VERSION);
        return 0;
    }
    if (rg_config_load(&cfg, cli.config_file, environ, cli.flags, cli.nflags, &err) < 0)
        return finish(cli.command_name, rg_config_early_termination_log(environ), "", &err);
    rg_log_setup(cfg.log.format, cfg.log.level, stderr);
    rg_signals_set_timeout(cfg.timeout_ms);

    ret = handlers[cli.command](&cli, &cfg, summary, sizeof(summary), &err);
    if (ret == 0)
        rg_err_clear(&err);
    fflush(stdout);
    status = finish(cli.command_name, cfg.termination_log, summary, &err);
    rg_config_free(&cfg);
    return status;
}
