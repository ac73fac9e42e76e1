/* What engine.c shares with plan's dry run (dryrun.c) and with the runs that wait while
 * another does the work (race.c): a run's steps, how they are planned and run, and a
 * waiting run's count of the work left. Nothing outside pkg/engine includes it. */
#ifndef RG_ENGINE_RUN_H
#define RG_ENGINE_RUN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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

/* A run's view of the database and the steps it would take from there. */
struct pass {
    struct rg_history h;
    struct rg_plan plan;
    struct run r;
    bool up;
};

void rg_engine_pass_free(struct pass *p);

/* The pass's steps made again; with files false only counted (struct run). */
int rg_engine_plan_steps(const struct rg_store *store, struct rg_source *src,
                         const struct rg_migrate_opts *opts, bool files, struct pass *p,
                         struct rg_err *err) RG_WUR;

/* Reads (unless first holds it), checks and plans every step, changing nothing. */
int rg_engine_prepare(const struct rg_store *store, struct rg_source *src,
                      const struct rg_migrate_opts *opts, struct rg_history *first, bool files,
                      struct pass *p, struct rg_err *err) RG_WUR;

/* Runs the steps in order; aside: steps aside (*stepped) where another run holds the
 * fence. */
int rg_engine_execute(struct run *r, bool aside, bool held, bool *stepped,
                      struct rg_migrate_result *res, struct rg_err *err) RG_WUR;

/* A run waiting while another does the work. A look at the database (rg_engine_work_left)
 * is most often the history's digest alone, one row however long the history: the schema
 * rows added since the last full count are steps done, so the count left is known without
 * reading the history and planning again. The full look (rg_engine_count) is made first,
 * when the digest shows the history at or past the end of the counted work, when rows went
 * away or are not all applied (a running or failed mark, which the full look waits on or
 * refuses), and on each look once only repeatable steps are left (they add no schema row);
 * so "nothing left" is only ever said by a full look. */
struct waiting {
    const struct rg_store *store;
    struct rg_source *src;
    const struct rg_migrate_opts *opts;
    bool counted;                  /* the fields below hold a count */
    bool up;                       /* of an up run: rows only grow as it goes */
    size_t schema;                 /* schema steps left at the count */
    size_t others;                 /* repeatable steps left at the count */
    int64_t rows;                  /* the history's schema rows at the count */
    struct rg_history_digest seen; /* at the previous look ("" sha256 before the first) */
    size_t left;                   /* said by the previous look */
    /* The last full look when it found nothing left: the run's view of the work done,
     * taken over by the run at the end instead of reading the history once more. */
    struct pass last;
    bool last_done;
    /* The digest of the history once every file of src is applied, for a run to the latest
     * version without repeatable scripts ("" otherwise; made at the first glance, so a run
     * that never waits does not hash its files' list): seen, the work is done, with no full
     * look (current) and the schema at this image's latest version. */
    bool final_made;
    char final[65];
    bool current;
};

/* race.c: a waiting run's count, its look at the database (the lock's work_left), its
 * result once another run did the work, and a run without a lock. */
void rg_engine_count(struct waiting *w, const struct pass *p);
int rg_engine_work_left(void *arg, size_t *left, struct rg_err *err) RG_WUR;
int rg_engine_view_after(struct waiting *w, struct pass *p, struct rg_migrate_result *res,
                         struct rg_err *err) RG_WUR;
int rg_engine_race(struct waiting *w, struct pass *p, struct rg_migrate_result *res,
                   struct rg_err *err) RG_WUR;

#endif
