/* Command results on stdout, as text for people or JSON for scripts. */
#ifndef RG_OUTPUT_H
#define RG_OUTPUT_H

#include <stdio.h>

#include "cli.h"
#include "engine/engine.h"

void rg_output_status(FILE *out, const struct rg_plan *plan, enum rg_output format);
void rg_output_version(FILE *out, int64_t version, enum rg_output format);
/* A dry run's report; error: why it stopped (the failing statement's message), or NULL. */
void rg_output_plan(FILE *out, const struct rg_dry_run *d, const char *error,
                    enum rg_output format);

#endif
