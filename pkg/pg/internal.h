/* What pg.c, step.c and adopt.c share; nothing outside pkg/pg includes it. */
#ifndef RG_PG_INTERNAL_H
#define RG_PG_INTERNAL_H

#include <libpq-fe.h>
#include <stdbool.h>

#include "cancel/cancel.h"
#include "pg/pg.h"

#define SQLSTATE_UNDEFINED_TABLE "42P01"
#define SQLSTATE_UNDEFINED_SCHEMA "3F000"
#define SQLSTATE_LOCK_NOT_AVAILABLE "55P03"
#define SQLSTATE_QUERY_CANCELED "57014"
/* CREATE INDEX CONCURRENTLY, VACUUM... cannot run inside a transaction block. */
#define SQLSTATE_ACTIVE_SQL_TRANSACTION "25001"
/* Raised by rollgate itself when the re-check under the lock finds the step done. */
#define SQLSTATE_ALREADY_DONE "RG001"
/* Raised by rollgate itself when another run's no-transaction step of the same version is
 * under way. */
#define SQLSTATE_IN_PROGRESS "RG003"
/* Raised by rollgate itself when a baseline finds history already there. */
#define SQLSTATE_HAS_HISTORY "RG002"

struct rg_pg {
    struct rg_pg_opts opts;
    PGconn *conn;
    /* Fired by rg_pg_cancel from any thread; the thread running a query acts on it, and
     * every wait on the server polls it (wire.c). */
    struct rg_cancel *cancel;
    char *table;      /* "schema".rollgate_migrations, quoted */
    int64_t lock_key; /* advisory lock key derived from the table's name */
    /* A commit made with synchronous_commit off that no durable commit has followed. */
    bool unflushed;
    /* Why the connection was closed (conn NULL), for messages. */
    char closed_why[256];
};

/* How long a statement may take to end after the run was cancelled before the connection
 * is closed, and the bound on every call made after a cancel (a rollback, a failed mark):
 * with the cancel request's own bound, a cancelled run is done within 2 seconds. */
#define RG_PG_GRACE_MS 1000

/* wire.c: the only code that waits on the server; every wait polls the cancel token too. */
/* Sleeps up to ms, returning at once when the run is cancelled. */
void rg_pg_nap(struct rg_pg *pg, int64_t ms);
/* Sends sql (one or more statements, simple protocol) and returns its last result, as
 * PQexec would, but never blocks past a cancel: the statement then gets a cancel request
 * and RG_PG_GRACE_MS to end, after which the connection is closed. NULL when the
 * connection broke or was closed (rg_pg_error says why). */
PGresult *rg_pg_query(struct rg_pg *pg, const char *sql);
/* libpq's last message, or why the connection was closed. */
const char *rg_pg_error(const struct rg_pg *pg);
/* One connection attempt with these parameters (after rollgate's keepalive defaults),
 * ended after timeout_ms (0: libpq's own) or by a cancel. NULL with why set on failure. */
PGconn *rg_pg_connect_once(struct rg_pg *pg, const char *const *keys, const char *const *vals,
                           int64_t timeout_ms, char *why, size_t n);
/* libpq's messages end with a newline and may span lines; logs want one line. */
void rg_pg_one_line(char *dst, size_t n, const char *src);
/* Sets err (RG_ESIGNAL) and returns true once the run has been cancelled. */
bool rg_pg_is_cancelled(struct rg_pg *pg, struct rg_err *err);
/* Runs sql (one or more statements, simple protocol) and returns the last result, or
 * NULL with err set (RG_EDATABASE, or RG_ESIGNAL when cancelled). */
PGresult *rg_pg_exec(struct rg_pg *pg, const char *sql, ExecStatusType expect, struct rg_err *err);
/* Sets err for a query that did not end as expected: RG_ESIGNAL when the run was
 * cancelled, else RG_EDATABASE with the server's or libpq's words after context (may be
 * NULL). */
void rg_pg_fail(struct rg_pg *pg, const PGresult *res, const char *context, struct rg_err *err);
/* Ends an open or failed transaction; a no-op when idle or disconnected. */
void rg_pg_rollback(struct rg_pg *pg);
/* s as an SQL literal, allocated. */
char *rg_pg_literal(struct rg_pg *pg, const char *s);
/* The statements that create the history table and its schema when missing, to run
 * inside a transaction holding the lock. */
char *rg_pg_history_ddl(struct rg_pg *pg);
/* Whether res failed with this SQLSTATE. */
bool rg_pg_state_is(const PGresult *res, const char *state);

/* step.c */
int rg_pg_run_step(void *ctx, const struct rg_step *s, enum rg_apply_outcome *outcome,
                   int64_t *duration_ms, struct rg_err *err);

/* adopt.c */
int rg_pg_read_down(void *ctx, int64_t version, char **sql, struct rg_err *err);
int rg_pg_wait_running(void *ctx, int64_t version, int64_t timeout_ms, struct rg_err *err);
int rg_pg_read_legacy(void *ctx, struct rg_legacy *legacy, struct rg_err *err);
int rg_pg_baseline(void *ctx, const struct rg_migration *const *ms, size_t n,
                   const char *applied_by, bool adopting, struct rg_err *err);
int rg_pg_repair(void *ctx, int64_t version, size_t *cleared, struct rg_err *err);

#endif
