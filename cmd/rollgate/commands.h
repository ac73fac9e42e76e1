/* One function per command: connect what it needs, do its job, say what happened. */
#ifndef RG_COMMANDS_H
#define RG_COMMANDS_H

#include "cli.h"
#include "config/config.h"

/* summary receives the one-line outcome (logged last and written to terminationLog). */
int rg_cmd_migrate(const struct rg_cli *cli, const struct rg_config *cfg, char *summary, size_t n,
                   struct rg_err *err) RG_WUR;
int rg_cmd_status(const struct rg_cli *cli, const struct rg_config *cfg, char *summary, size_t n,
                  struct rg_err *err) RG_WUR;
int rg_cmd_version(const struct rg_cli *cli, const struct rg_config *cfg, char *summary, size_t n,
                   struct rg_err *err) RG_WUR;

int rg_cmd_validate(const struct rg_cli *cli, const struct rg_config *cfg, char *summary, size_t n,
                    struct rg_err *err) RG_WUR;
int rg_cmd_baseline(const struct rg_cli *cli, const struct rg_config *cfg, char *summary, size_t n,
                    struct rg_err *err) RG_WUR;
int rg_cmd_repair(const struct rg_cli *cli, const struct rg_config *cfg, char *summary, size_t n,
                  struct rg_err *err) RG_WUR;
int rg_cmd_wait(const struct rg_cli *cli, const struct rg_config *cfg, char *summary, size_t n,
                struct rg_err *err) RG_WUR;
int rg_cmd_plan(const struct rg_cli *cli, const struct rg_config *cfg, char *summary, size_t n,
                struct rg_err *err) RG_WUR;
/* lint.c */
int rg_cmd_lint(const struct rg_cli *cli, const struct rg_config *cfg, char *summary, size_t n,
                struct rg_err *err) RG_WUR;
/* Writes the checksum index (rg_source_sum_write); no database. */
int rg_cmd_sum(const struct rg_cli *cli, const struct rg_config *cfg, char *summary, size_t n,
               struct rg_err *err) RG_WUR;
/* new.c */
int rg_cmd_new(const struct rg_cli *cli, const struct rg_config *cfg, char *summary, size_t n,
               struct rg_err *err) RG_WUR;

#endif
