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

/* One row of the history table. */
struct rg_history_row {
    int64_t version;
    char *title;
    char checksum[65];
    enum rg_row_state state;
    char *applied_at; /* as the database prints it */
    char *applied_by;
    int64_t duration_ms;
    bool has_down; /* down SQL stored with the row */
};

struct rg_history {
    bool exists;                 /* the history table exists */
    struct rg_history_row *rows; /* sorted by version */
    size_t n;
};

void rg_history_free(struct rg_history *h);

struct rg_apply {
    const struct rg_migration *m;
    const char *applied_by;
    int64_t lock_timeout_ms;      /* 0: no limit */
    int64_t statement_timeout_ms; /* 0: no limit */
    /* false lets the commit return before its WAL is flushed: safe for all but the last
     * migration of a run, because flushing the last commit flushes every earlier one. */
    bool durable;
};

enum rg_apply_outcome { RG_APPLY_DONE, RG_APPLY_ALREADY };

struct rg_store {
    void *ctx;
    /* The history; h->exists false (and no rows) when the table is not there yet. */
    int (*read_history)(void *ctx, struct rg_history *h, struct rg_err *err);
    /* Creates the history table (and its schema) if missing; safe to race. */
    int (*ensure_history)(void *ctx, struct rg_err *err);
    /* Runs one migration and writes its history row in one transaction, after taking the
     * history table's advisory transaction lock and finding the version still pending
     * (RG_APPLY_ALREADY otherwise, nothing run). A failure rolls back and says why
     * (RG_EMIGRATION with file, line, SQLSTATE...; RG_EDATABASE when the connection
     * broke; RG_ESIGNAL when cancelled). */
    int (*apply)(void *ctx, const struct rg_apply *a, enum rg_apply_outcome *outcome,
                 int64_t *duration_ms, struct rg_err *err);
};

#endif
