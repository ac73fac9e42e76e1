/* Command results on stdout, as text for people or JSON for scripts. */
#ifndef RG_OUTPUT_H
#define RG_OUTPUT_H

#include <stdio.h>

#include "cli.h"
#include "engine/engine.h"
#include "source/lint.h"

/* One linted file: its path as opened and its findings. */
struct rg_lint_file {
    const char *path;
    struct rg_lint lint;
};

struct rg_output_lint {
    struct rg_lint_file *files;
    size_t n;
};

void rg_output_status(FILE *out, const struct rg_plan *plan, enum rg_output format);
void rg_output_version(FILE *out, int64_t version, enum rg_output format);
/* A dry run's report; error: why it stopped (the failing statement's message), or NULL. */
void rg_output_plan(FILE *out, const struct rg_dry_run *d, const char *error,
                    enum rg_output format);
/* Every finding, allowed ones marked, in file order; text: one "file:line:column: severity
 * rule: hazard" line and a "safe:" line each. */
void rg_output_lint(FILE *out, const struct rg_output_lint *o, enum rg_output format);

#endif
