/* The migration run: compare the files with the history, then apply what is pending. It
 * includes no libpq, libcurl or libyaml: everything outside comes through ports.h. */
#ifndef RG_ENGINE_H
#define RG_ENGINE_H

/* enum rg_phase: migrations.phase as configured, the engine's to interpret. */
#include "config/config.h"
#include "engine/ports.h"

enum rg_item_state {
    RG_ITEM_APPLIED, /* in the history, checksum matches */
    RG_ITEM_PENDING, /* file not yet in the history */
    RG_ITEM_CHANGED, /* applied, but the file's checksum differs (drift) */
    RG_ITEM_MISSING, /* applied, no file, below this image's newest version */
    RG_ITEM_UNKNOWN, /* applied, no file, above this image's newest version (newer image) */
    RG_ITEM_FAILED,  /* a no-transaction migration left failed or running */
};

struct rg_plan_item {
    int64_t version;
    const char *title; /* from the file, else from the history */
    enum rg_item_state state;
    const struct rg_migration *file;  /* NULL for MISSING / UNKNOWN */
    const struct rg_history_row *row; /* NULL for PENDING */
    bool out_of_order;                /* pending but below the newest applied version */
    /* APPLIED although the checksum differs: the file changed only in comments or white
     * space (rg_engine_drift) */
    bool cosmetic;
    bool post; /* the file says rollgate:phase=post (false without a file) */
};

struct rg_plan {
    struct rg_plan_item *items; /* by version */
    size_t n;
    int64_t current; /* highest applied version, 0 when none */
    int64_t latest;  /* highest version this image has, 0 when none */
    size_t pending, changed, missing, unknown, failed, out_of_order;
    size_t pending_post; /* of pending: post-deploy migrations */
};

/* Compares files and history (both borrowed for the plan's life). */
void rg_plan_build(struct rg_plan *plan, const struct rg_source *src, const struct rg_history *h);
void rg_plan_free(struct rg_plan *plan);

const char *rg_item_state_name(enum rg_item_state s);

struct rg_migrate_opts {
    int64_t target; /* RG_TARGET_LATEST (INT64_MAX) for all; below the current version: down */
    /* Which pending migrations an up run applies: RG_PHASE_ALL both kinds in version
     * order; RG_PHASE_PRE the pre-deploy ones in version order, past any post-deploy one
     * (left pending and logged); RG_PHASE_POST the pending pre-deploy ones, then the
     * post-deploy ones, each in version order. A rollback undoes every applied version
     * above the target, whatever its phase. */
    enum rg_phase phase;
    bool fail_on_newer;
    bool allow_out_of_order;
    const char *applied_by;
    int64_t lock_timeout_ms;
    int64_t statement_timeout_ms;
    /* How long to wait for another run's no-transaction migration marked running. */
    int64_t wait_timeout_ms;
    /* A run without a lock that finds another run at the fence follows it: looks at the
     * history every follow_poll_ms (longer while it shows no progress), and tries again
     * itself after follow_stall_ms without progress. */
    const struct rg_clock *clock;
    int64_t follow_poll_ms;
    int64_t follow_stall_ms;
    /* migrations.lint: lint the migrations a run applies before anything runs, logging
     * each finding not allowed; with lint_enforce an error not allowed refuses the run. */
    bool lint;
    bool lint_enforce;
};

struct rg_migrate_result {
    size_t applied;   /* schema migrations applied by this run */
    size_t reverted;  /* schema migrations rolled back by this run */
    size_t already;   /* found done by another run at the lock */
    size_t scripts;   /* repeatable and data scripts run */
    int64_t from, to; /* schema version before and after */
    size_t unknown;   /* versions in the database this image lacks */
    bool adopted;     /* started from golang-migrate's schema_migrations */
    bool elsewhere;   /* another run (the leader) did the work while this one waited */
    size_t left_post; /* post-deploy migrations a --phase pre run left pending */
};

/* Looks closer at each applied migration whose file's checksum differs (CHANGED), and
 * only at those, so that a start with nothing changed reads nothing more: the file is read
 * (rg_source_prepare) and compared with the up SQL stored at apply time (store->read_up).
 * A change only in comments or white space (rg_sql_same_tokens) is logged as a warning and
 * the item becomes APPLIED (cosmetic); any other is drift: RG_ECONFLICT naming both
 * checksums, after logging the first changed lines as a unified diff, or saying that the
 * row has no stored SQL to compare with (written before rollgate stored it, or by
 * baseline). Both point at `rollgate repair --checksums [--force]`. */
int rg_engine_drift(const struct rg_store *store, struct rg_source *src, struct rg_plan *plan,
                    struct rg_err *err) RG_WUR;

/* `repair --checksums`: records in the history the file's checksum and SQL of every applied
 * migration whose checksum differs and whose change is only in comments or white space; with
 * force, of every such migration whatever its change (its diff logged, as drift logs it).
 * Without force, one with any other change refuses the whole repair before any row changes
 * (RG_ECONFLICT), as does one whose row has no stored SQL (nothing proves it equivalent).
 * *recorded says how many rows were updated. */
int rg_engine_repair_checksums(const struct rg_store *store, struct rg_source *src, bool force,
                               size_t *recorded, struct rg_err *err) RG_WUR;

/* What must stop a run before it changes anything, most serious first (see
 * rg_engine_migrate); up: the run applies (out-of-order versions matter only then). */
int rg_engine_check(const struct rg_plan *plan, const struct rg_migrate_opts *opts, bool up,
                    struct rg_err *err) RG_WUR;

/* Brings the database to opts->target (lock: NULL, or asked for once there is something to
 * do, see ports.h): up migrations in version order, or, with a target
 * below the current version, down migrations newest first; then, when the schema ends at
 * this image's newest version, changed repeatable scripts and every data script. Checks
 * before changing anything: drift (RG_ECONFLICT naming both checksums), a failed
 * no-transaction migration (RG_ECONFLICT), versions newer than the image with
 * fail_on_newer (RG_ECONFLICT), a pending version below the newest applied without
 * allow_out_of_order (RG_EFILES), a rollback without a down migration for every version
 * it must undo (RG_EFILES, listing them). Where golang-migrate's schema_migrations exists
 * and rollgate's history does not, starts from its version (RG_ECONFLICT when dirty).
 * Of src it reads (rg_source_prepare) only the files of the steps it takes, all of them
 * before the first step runs, so a file it refuses (RG_EFILES) changes nothing; a run with
 * nothing to do reads none. With opts->lint each up file is linted as it is read, from the
 * statements of the split that checked it (rg_source_prepare_lint), its findings logged;
 * with lint_enforce the first error not allowed refuses the run once every file's findings
 * are logged (RG_EFILES, see rg_lint_check). */
int rg_engine_migrate(const struct rg_store *store, const struct rg_lock *lock,
                      struct rg_source *src, const struct rg_migrate_opts *opts,
                      struct rg_migrate_result *res, struct rg_err *err) RG_WUR;

struct rg_wait_opts {
    int64_t poll_ms;  /* between looks at the history */
    int64_t limit_ms; /* gives up after this; 0: never (the run's timeout stops the pause) */
};

/* `wait`, which never writes: looks at the history until every pre-deploy schema
 * migration of src is applied (post-deploy ones run after the rollout that waits here), none is
 * under way (a no-transaction migration marked running by a run that is still connected:
 * store->run_alive) and, with a lock, no run holds it (one may be running data scripts), pausing
 * poll_ms between looks. *version receives the schema version found current. Errors: what
 * rg_engine_check refuses (drift, or a running mark whose run is gone, RG_ECONFLICT: waiting would
 * never end), RG_ELEASE after limit_ms naming the version and what is pending, RG_ESIGNAL when a
 * pause was cut short, and the store's and the lock's own. */
int rg_engine_wait(const struct rg_store *store, const struct rg_lock *lock,
                   const struct rg_clock *clock, struct rg_source *src,
                   const struct rg_wait_opts *opts, int64_t *version, struct rg_err *err) RG_WUR;

/* One pending migration in a dry run (`plan`): what would run, and what each statement did. */
struct rg_dry_migration {
    int64_t version;
    const char *title, *path, *sql;                /* borrowed from the source */
    bool no_transaction;                           /* listed statement by statement, not executed */
    int64_t lock_timeout_ms, statement_timeout_ms; /* as the run would set them; 0: none */
    struct rg_trial trial;
    /* The file's lint findings: trial statement k's are those with stmt == k (both come
     * from rg_sql_statements over sql), the file's own have stmt SIZE_MAX. */
    struct rg_lint lint;
};

struct rg_dry_run {
    int64_t current;             /* the schema version, before and after (nothing is kept) */
    bool history_exists;         /* the history table was there (a plan never creates it) */
    bool tried;                  /* the pending migrations were tried (the report says something) */
    struct rg_dry_migration *ms; /* pending migrations up to the target, in version order */
    size_t n;
};

void rg_dry_run_free(struct rg_dry_run *d);

/* `plan`: the pending schema migrations up to opts->target tried on the database without
 * keeping anything. The checks of a run come first (rg_engine_check), and the files are
 * read and refused as a run would (RG_EFILES); a target below the current version is
 * RG_EUSAGE (plan shows what an up run does). Then all transactional migrations, in
 * version order, run inside ONE transaction of the store's (trial_begin), so that each
 * sees what the earlier ones made, as the real run would; it is rolled back at the end
 * (trial_end) on every path. A no-transaction migration is only split into statements:
 * it cannot run inside a transaction, and outside one it would keep its effects. Stops at
 * the first failing statement (the store's error; d keeps what was seen up to it). The
 * history is read, never created or written; without one, golang-migrate's version counts
 * as applied, as migrate would adopt it (RG_ECONFLICT when dirty). */
int rg_engine_dry_run(const struct rg_store *store, struct rg_source *src,
                      const struct rg_migrate_opts *opts, struct rg_dry_run *d,
                      struct rg_err *err) RG_WUR;

/* Adopts an existing database: records every migration of src up to version as applied
 * without running it, with its down SQL (so reads those files whole, as a run would, and
 * refuses what it refuses). *count receives how many. Refuses when the history has rows. */
int rg_engine_baseline(const struct rg_store *store, struct rg_source *src, int64_t version,
                       const char *applied_by, size_t *count, struct rg_err *err) RG_WUR;

#endif
