/* What the engine needs from the outside, as tables of function pointers (redis's
 * ConnectionType): the real store is pkg/pg, the unit tests use a fake. */
#ifndef RG_PORTS_H
#define RG_PORTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err/err.h"
#include "source/source.h"

enum rg_row_state { RG_ROW_APPLIED, RG_ROW_RUNNING, RG_ROW_FAILED };

/* What a history row records: a versioned schema migration, or a script known by name. */
enum rg_kind { RG_KIND_SCHEMA, RG_KIND_REPEATABLE, RG_KIND_DATA };

/* One row of the history table. */
struct rg_history_row {
    enum rg_kind kind;
    int64_t version; /* 0 for scripts */
    char *title;     /* the script's name for scripts */
    char checksum[65];
    enum rg_row_state state;
    char *applied_at; /* as the database prints it; for data scripts, the last run */
    char *applied_by;
    int64_t duration_ms;
    bool has_down; /* down SQL stored with the row */
};

struct rg_history {
    bool exists;                 /* the history table exists */
    struct rg_history_row *rows; /* schema migrations, by version */
    size_t n;
    struct rg_history_row *scripts; /* repeatable and data scripts, by kind then name */
    size_t nscripts;
};

void rg_history_free(struct rg_history *h);

/* What the history's schema rows add up to, for the start with nothing to do. */
struct rg_history_digest {
    bool exists;      /* the history table exists */
    int64_t rows;     /* schema rows */
    bool all_applied; /* none running or failed */
    char sha256[65];  /* rg_source_digest's form over the rows: "VERSION CHECKSUM\n" each */
};

/* What one step does to the database and its history. */
enum rg_action {
    RG_ACT_APPLY,  /* run an up migration; insert its row (if still absent) */
    RG_ACT_REVERT, /* run a down migration; delete its row (if still present) */
    RG_ACT_SCRIPT, /* run a repeatable (if its recorded checksum differs) or data script;
                      insert or update its row */
};

struct rg_step {
    enum rg_action action;
    enum rg_kind kind;
    int64_t version;      /* schema migrations; 0 for scripts */
    const char *title;    /* schema title, or the script's name */
    const char *path;     /* the file, for messages ("history of version N" when from the row) */
    const char *sql;      /* what to run, NUL-terminated */
    const char *checksum; /* recorded with APPLY and SCRIPT */
    const char *down_sql; /* stored with an APPLY's row; NULL: none */
    /* the file's (rg_source_no_directives when it has none); never NULL. A pointer: a
     * run of 10,000 steps would otherwise hold 10,000 copies. */
    const struct rg_directives *directives;
    const char *applied_by;
    int64_t lock_timeout_ms;      /* 0: no limit */
    int64_t statement_timeout_ms; /* 0: no limit */
    /* true: when another run holds the history table's advisory lock, RG_APPLY_BUSY at once
     * (nothing run, no transaction left open) instead of waiting for it. */
    bool try_fence;
    /* false lets the commit return before its WAL is flushed: safe for all but the last
     * step of a run, because flushing the last commit flushes every earlier one. */
    bool durable;
};

enum rg_apply_outcome {
    RG_APPLY_DONE,
    RG_APPLY_ALREADY, /* another run did the step first: nothing run */
    RG_APPLY_BUSY,    /* try_fence, and another run holds the lock: nothing run */
    RG_APPLY_SEEN,    /* try_fence, and done already, seen before taking the lock */
};

/* A relation lock a statement of a dry run took (pg_locks of the run's own backend). */
struct rg_trial_lock {
    char *relation; /* schema.name, quoted where it needs quotes; "relation OID" when gone */
    char *mode;     /* PostgreSQL's name: "AccessExclusiveLock" */
};

/* One statement of a step as a dry run (`plan`) saw it. */
struct rg_trial_stmt {
    size_t start, end, line; /* in the step's sql (as rg_sql_statements gives them) */
    bool ran;                /* executed (false: a no-transaction file's, only listed) */
    int64_t duration_us;
    int64_t rows; /* rows affected (PQcmdTuples); -1 when the command reports none */
    /* The relation locks held after the statement that were not held before it (a
     * stronger mode on a relation locked already counts as new), by relation and mode. */
    struct rg_trial_lock *locks;
    size_t nlocks;
    /* Tables, materialized views and indexes whose storage (relfilenode) the statement
     * replaced: a rewrite. */
    char **rewritten;
    size_t nrewritten;
    char sqlstate[6]; /* the statement failed with this SQLSTATE; "" otherwise */
};

struct rg_trial {
    struct rg_trial_stmt *stmts;
    size_t n;
    /* Locks held since earlier steps of the dry run as this one began: a statement that
     * takes one of them again shows no new lock for it. */
    struct rg_trial_lock *held;
    size_t nheld;
};

void rg_trial_free(struct rg_trial *t);

/* golang-migrate's schema_migrations table, for adopting a database it managed. */
struct rg_legacy {
    bool found;
    int64_t version;
    bool dirty;
};

struct rg_store {
    void *ctx;
    /* The history; h->exists false (and no rows) when the table is not there yet. */
    int (*read_history)(void *ctx, struct rg_history *h, struct rg_err *err);
    /* Creates the history table (and its schema) if missing; safe to race. */
    int (*ensure_history)(void *ctx, struct rg_err *err);
    /* One step, in one transaction with its history row, after taking the history table's
     * advisory transaction lock and re-checking that the step is still to do
     * (RG_APPLY_ALREADY otherwise, nothing run). A no-transaction step runs statement by
     * statement between a "running" mark and its final row, and a failure leaves the row
     * "failed". Errors: RG_EMIGRATION with file, line, SQLSTATE...; RG_EDATABASE when
     * the connection broke; RG_ESIGNAL when cancelled. */
    int (*run)(void *ctx, const struct rg_step *s, enum rg_apply_outcome *outcome,
               int64_t *duration_ms, struct rg_err *err);
    /* The down SQL stored with schema version's row into *sql (allocated), or NULL. */
    int (*read_down)(void *ctx, int64_t version, char **sql, struct rg_err *err);
    /* The up SQL stored with schema version's row when it was applied into *sql
     * (allocated), or NULL: a row written before rollgate stored it, or by baseline. Read
     * only for a row whose checksum differs from its file's. */
    int (*read_up)(void *ctx, int64_t version, char **sql, struct rg_err *err);
    /* `repair --checksums`: records checksum and up_sql (the file's now) in schema version's
     * applied row if its checksum is still old; *updated says whether it was. */
    int (*record_checksum)(void *ctx, int64_t version, const char *old, const char *checksum,
                           const char *up_sql, bool *updated, struct rg_err *err);
    /* Waits while version's row is "running" (a no-transaction migration of another run):
     * 0 once it is not, RG_ECONFLICT when timeout_ms passes first, or at once, with the
     * row marked failed, when the run that wrote it has no session left. */
    int (*wait_running)(void *ctx, int64_t version, int64_t timeout_ms, struct rg_err *err);
    int (*read_legacy)(void *ctx, struct rg_legacy *legacy, struct rg_err *err);
    /* Creates the history table if missing and records these migrations as applied
     * without running them, in one transaction under the lock. When the history already
     * has schema rows: RG_ECONFLICT, or, adopting, nothing (another run adopted first). */
    int (*baseline)(void *ctx, const struct rg_migration *const *ms, size_t n,
                    const char *applied_by, bool adopting, struct rg_err *err);
    /* Deletes the rows left "failed" (version 0: all of them; with a version, also one left
     * "running" by a run that died), so that those migrations run again; *cleared says how
     * many. */
    int (*repair)(void *ctx, int64_t version, size_t *cleared, struct rg_err *err);
    /* Whether the run a running row names (its applied_by) still has a session in the
     * database, this one's aside; writes nothing (for `wait`). */
    int (*run_alive)(void *ctx, const char *applied_by, bool *alive, struct rg_err *err);
    /* A dry run (`plan`): trial_begin opens the one transaction every trial_run runs in;
     * trial_end rolls it back, always, whatever happened (a broken connection rolls back
     * on the server). Nothing commits in between: the history is not touched, and the
     * step's file was refused (sql.h) if it held transaction control. */
    int (*trial_begin)(void *ctx, struct rg_err *err);
    /* Runs a transactional step's statements one by one, setting its lock_timeout and
     * statement_timeout first, and appends to t what each did. A failing statement is
     * the last in t (its sqlstate set) and the error (RG_EMIGRATION with file:line:column
     * and SQLSTATE; RG_EDATABASE, RG_ESIGNAL as run's); the transaction is then aborted. */
    int (*trial_run)(void *ctx, const struct rg_step *s, struct rg_trial *t, struct rg_err *err);
    void (*trial_end)(void *ctx);
    /* The history's schema rows summed up by the database (one row over the wire however
     * long the history is); optional: NULL, and every start reads the history. */
    int (*digest_history)(void *ctx, struct rg_history_digest *d, struct rg_err *err);
    /* For a run without a lock about to read and lint its files: takes the fence (the history
     * table's advisory lock) in a transaction left open that writes nothing, so that runs
     * starting at the same moment find it held and follow this one before doing that work
     * themselves. *held false, and no transaction left open, when another run holds the fence
     * or the history no longer has `rows` schema rows (as read by this run: another run is
     * applying), both looked at before the fence is taken, so that a claim never holds it
     * even for a moment in those cases. unclaim ends the transaction, writing nothing, before
     * the run's steps begin. Optional: NULL, and every run reads its files. */
    int (*claim)(void *ctx, int64_t rows, bool *held, struct rg_err *err);
    void (*unclaim)(void *ctx);
};

/* Time as the engine waits through it (cmd: the monotonic clock and the signal watcher's
 * pause; tests: a fake clock that the pause moves). */
struct rg_clock {
    void *ctx;
    int64_t (*now_ms)(void *ctx);
    /* The run's one cancellable sleep: false when the run was stopped (a signal, its
     * timeout) before ms passed. */
    bool (*pause)(void *ctx, int64_t ms);
    /* Whether the run was stopped, without waiting; NULL: never. */
    bool (*stopped)(void *ctx);
};

/* Coordination between runs beyond the database fence: the Kubernetes Lease in a cluster,
 * nothing elsewhere (a NULL lock). Asked for only when a run has something to do, so the
 * path every pod start takes when the schema is current makes no call at all. */
enum rg_lock_outcome {
    RG_LOCK_LEADER,         /* this run holds the lock and does the work */
    RG_LOCK_DONE_ELSEWHERE, /* another run did it while this one waited */
};

struct rg_lock {
    void *ctx;
    /* Becomes the leader, or waits on the database while another run leads: work_left
     * (the engine's) says how many schema or repeatable steps remain (fewer each time: the
     * leader is making progress); once none, the lock returns RG_LOCK_DONE_ELSEWHERE
     * without ever having led. */
    int (*acquire)(void *ctx, int (*work_left)(void *arg, size_t *left, struct rg_err *err),
                   void *arg, enum rg_lock_outcome *outcome, struct rg_err *err);
    /* Gives the lock up after leading; *lost says whether it was lost while leading (its
     * renewal failed or another holder appeared), in which case the running statement was
     * cancelled. succeeded: how the run ended, for the record (Kubernetes Events). It
     * cannot fail the run: a lock it could not give up is the lock's to log, and runs out
     * on its own, while the run's own outcome stays what the run made it. */
    void (*release)(void *ctx, bool succeeded, bool *lost);
    /* For a run that never leads (`wait`): whether another run holds the lock now. */
    int (*held)(void *ctx, bool *held, struct rg_err *err);
};

#endif
