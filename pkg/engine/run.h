/* What engine.c shares with plan's dry run (dryrun.c): a run's steps and how they are
 * planned. Nothing outside pkg/engine includes it. */
#ifndef RG_ENGINE_RUN_H
#define RG_ENGINE_RUN_H

#include <stdbool.h>
#include <stddef.h>

#include "engine/engine.h"
#include "engine/ports.h"
#include "err/err.h"
#include "source/source.h"

/* One run's steps, built before anything changes so that a missing piece (a down
 * migration) stops the run while the database is untouched. */
struct run {
    const struct rg_store *store;
    const struct rg_migrate_opts *opts;
    struct rg_step *steps;
    void **owned; /* down SQL read from the history and its directives, freed with the run */
    size_t n, cap, nowned;
    bool lint; /* lint the up files plan_up reads (opts->lint, for a run that applies) */
    /* false: the steps are only counted (a follower's look), so no file or stored down SQL
     * is read and the steps carry no SQL. */
    bool files;
};

void rg_engine_run_free(struct run *r);

/* A step's timeouts: its file's directives, else the configuration's. */
void rg_engine_set_timeouts(struct rg_step *s, const struct rg_migrate_opts *opts);

/* Up steps in version order (by phase), each file read (and, with r->lint, linted) as its
 * step is built: only the migrations this run applies are read past their checksum. */
int rg_engine_plan_up(struct run *r, struct rg_source *src, const struct rg_plan *plan,
                      struct rg_err *err) RG_WUR;

/* golang-migrate's schema_migrations, refused when dirty. */
int rg_engine_read_legacy(const struct rg_store *store, struct rg_legacy *legacy,
                          struct rg_err *err) RG_WUR;

#endif
