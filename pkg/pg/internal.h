/* What pg.c, step.c and adopt.c share; nothing outside pkg/pg includes it. */
#ifndef RG_PG_INTERNAL_H
#define RG_PG_INTERNAL_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

#include "cancel/cancel.h"
#include "pg/pg.h"

#define SQLSTATE_LOCK_NOT_AVAILABLE "55P03"
#define SQLSTATE_QUERY_CANCELED "57014"
/* CREATE INDEX CONCURRENTLY, VACUUM... cannot run inside a transaction block. */
#define SQLSTATE_ACTIVE_SQL_TRANSACTION "25001"
/* Raised by rollgate itself when the re-check under the lock finds the step done. */
#define SQLSTATE_ALREADY_DONE "RG001"
/* Raised by rollgate itself when another run's no-transaction step of the same version is
 * under way. */
#define SQLSTATE_IN_PROGRESS "RG003"
/* Raised by rollgate itself when a step that may not wait for the lock finds another run
 * holding it. */
#define SQLSTATE_FENCE_HELD "RG004"
/* Raised by rollgate itself when such a step, looked at before the lock, is done already. */
#define SQLSTATE_SEEN_DONE "RG005"
/* Raised by rollgate itself when a baseline finds history already there. */
#define SQLSTATE_HAS_HISTORY "RG002"

struct rg_pg {
    struct rg_pg_opts opts;
    PGconn *conn;
    /* Fired by rg_pg_cancel from any thread; the thread running a query acts on it, and
     * every wait on the server polls it (wire.c). */
    struct rg_cancel *cancel;
    char *table;                          /* "schema".rollgate_migrations, quoted */
    char session[RG_PG_SESSION_NAME_MAX]; /* application_name of every connection */
    int64_t lock_key;                     /* advisory lock key derived from the table's name */
    /* A commit made with synchronous_commit off that no durable commit has followed. */
    bool unflushed;
    /* Why the connection was closed (conn NULL), for messages. */
    char closed_why[320];
    const char *url_key; /* the key that named opts.url, for messages */
    /* database.directUrl's store (same options, its own connection and cancel), or NULL;
     * made with this one so that rg_pg_cancel reaches it, connected when first needed. */
    struct rg_pg *direct;
    /* This connection was seen to reach a PostgreSQL backend with no pooler in between;
     * direct_probed: it was looked at (rg_pg_probe_direct). */
    bool seen_direct, direct_probed;
    /* cancel is another store's (a lock monitor's is the one of the connection it
     * watches): not freed with this one. */
    bool cancel_borrowed;
    /* The watch over the step this connection runs now (watch.c), or NULL. */
    struct rg_pg_watch *watch;
    /* rg_pg_on_event's hook, or NULL. */
    void (*event)(void *ctx, const char *type, const char *reason, const char *message);
    void *event_ctx;
    /* Whether the history table has the column up_sql (upsql.c), once looked at. */
    enum { RG_PG_UPSQL_UNKNOWN, RG_PG_UPSQL_YES, RG_PG_UPSQL_NO } upsql;
    /* A dry run's state while its transaction is open (trial.c), else NULL. */
    struct rg_pg_trial *trial;
    /* rg_pg_digest_ahead's answer until digest_history takes it. */
    bool digest_kept;
    int digest_rc;
    struct rg_history_digest digest;
    struct rg_err digest_err;
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
/* rg_pg_query, cancelled as by a cancel of the run when until (rg_now_ms()'s clock; 0:
 * never) passes: a query that must not take long whatever the server does. */
PGresult *rg_pg_query_until(struct rg_pg *pg, const char *sql, int64_t until);
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
/* s as an SQL literal into *out (allocated; "NULL" for a NULL s). libpq refuses text
 * that is not valid in the client encoding: then code, naming what (what was quoted). */
int rg_pg_literal(struct rg_pg *pg, const char *s, enum rg_code code, const char *what, char **out,
                  struct rg_err *err) RG_WUR;
/* The code for a failed query of rollgate's own: RG_EDATABASE when a retry may help (no
 * answer, connection, resources, locks, shutdown, a read-only standby), else
 * RG_ECONFIG (rights, a missing schema...: the setup must change). */
enum rg_code rg_pg_fault(struct rg_pg *pg, const PGresult *res);
/* The statements that create the history table and its schema when missing, to run
 * inside a transaction holding the lock. */
char *rg_pg_history_ddl(struct rg_pg *pg);
/* Whether res failed with this SQLSTATE. */
bool rg_pg_state_is(const PGresult *res, const char *state);

/* session.c */
/* "SET LOCAL client_connection_check_interval = 1000;" (local) or the same as a session
 * SET, where the server has the setting (14 and later); else "". */
const char *rg_pg_dead_client_check(struct rg_pg *pg, bool local);
/* The statements (each ending in ';') that put the session back as it is now, before a step
 * runs: whatever SET, SET ROLE or temporary table the step leaves must not reach the next
 * step, or, behind a pooler, the next client of the same server connection. Allocated.
 * Shorter on a connection rg_pg_probe_direct saw reach PostgreSQL directly. */
char *rg_pg_session_reset(struct rg_pg *pg);
/* Looks once (one query) whether this connection reaches a PostgreSQL backend with no
 * pooler in between, into seen_direct; -1 with err set when the query failed. */
int rg_pg_probe_direct(struct rg_pg *pg, struct rg_err *err) RG_WUR;
/* The store no-transaction steps run on, whose session settings stay between statements:
 * the direct one (connected now if need be), else pg itself once it is seen to reach
 * PostgreSQL without a pooler (RG_ECONFIG otherwise). */
int rg_pg_direct(struct rg_pg *pg, struct rg_pg **on, struct rg_err *err) RG_WUR;
/* value.c */
uint64_t rg_pg_hash(const char *s);
/* s as a whole decimal number within [min, max]; -1 otherwise. */
int rg_pg_int(const char *s, int64_t min, int64_t max, int64_t *out) RG_WUR;

/* step.c */
/* How a query that ran a step's SQL ended: 0 (done) or -1 with err set: RG_ESIGNAL when
 * cancelled, RG_EDATABASE when the connection was lost, else RG_EMIGRATION naming the
 * file's line and column (the error position, shift characters of the file before the
 * SQL sent), the SQLSTATE and the server's words, then outcome; *locked says whether it
 * failed on lock_timeout. */
int rg_pg_judge(struct rg_pg *pg, const struct rg_step *s, const PGresult *res, long shift,
                const char *outcome, bool *locked, struct rg_err *err) RG_WUR;
/* Characters (not bytes: PostgreSQL counts characters) of sql before byte end. */
long rg_pg_chars_before(const char *sql, size_t end);
int rg_pg_run_step(void *ctx, const struct rg_step *s, enum rg_apply_outcome *outcome,
                   int64_t *duration_ms, struct rg_err *err);

/* watch.c: while a step's statement runs, a second connection of the run's (the lock
 * monitor) looks at it from outside: who blocks it when it waits on a lock, and how far a
 * long one has got. The looks happen on the step's thread, in rg_pg_query's poll loop, as
 * single autocommit statements with a deadline; the step's statement runs on meanwhile. */
struct rg_pg_watch;
/* Watches what on (pg itself, or its database.directUrl store) runs for step s from now
 * on; pg gives the options and the Event hook. Nothing is looked up, and no connection
 * made, until a statement has run for a second. */
struct rg_pg_watch *rg_pg_watch_new(struct rg_pg *pg, struct rg_pg *on, const struct rg_step *s);
/* Stops watching and closes the monitor's connection; NULL is fine. */
void rg_pg_watch_free(struct rg_pg_watch *w);
/* The attempt at the step now starting (from 0) and its lock_timeout, for the reports;
 * cap_ms is the step's whole lock_timeout, which its last attempts wait (see watch.c). */
void rg_pg_watch_attempt(struct rg_pg_watch *w, int64_t attempt, int64_t lock_timeout_ms,
                         int64_t cap_ms);
/* Who blocked the step's statement when last seen waiting on a lock, as one line for a
 * message; "" when no wait lasted long enough to look. */
const char *rg_pg_watch_blocker(const struct rg_pg_watch *w);
/* For wire.c: a statement was sent; when the next look is due (rg_now_ms()'s clock); the
 * look itself. */
void rg_pg_watch_started(struct rg_pg_watch *w);
int64_t rg_pg_watch_due(const struct rg_pg_watch *w);
void rg_pg_watch_tick(struct rg_pg_watch *w);
/* index.c: around a no-transaction CREATE INDEX CONCURRENTLY statement of s's file */
struct rg_sql_index;
/* Drops (DROP INDEX CONCURRENTLY, logged) an invalid index of ix's name that no session is
 * building: what an earlier failed build left. */
int rg_pg_index_before(struct rg_pg *pg, const struct rg_step *s, const struct rg_sql_index *ix,
                       struct rg_err *err) RG_WUR;
/* After the build: RG_EMIGRATION naming s's file, line and the index unless the index is
 * there and valid (pg_index.indisvalid); outcome is appended to the message. */
int rg_pg_index_after(struct rg_pg *pg, const struct rg_step *s, const struct rg_sql_index *ix,
                      size_t line, const char *outcome, struct rg_err *err) RG_WUR;

/* upsql.c */
/* Makes sure the history table (which must exist) has the column up_sql, adding it to a
 * table made by an older rollgate; sets pg->upsql, once per connection. A table that cannot
 * get it (no right to alter it, a lock held) is logged and left without: only RG_ESIGNAL
 * fails. */
int rg_pg_upsql_column(struct rg_pg *pg, struct rg_err *err) RG_WUR;
int rg_pg_read_up(void *ctx, int64_t version, char **sql, struct rg_err *err);
int rg_pg_record_checksum(void *ctx, int64_t version, const char *old, const char *checksum,
                          const char *up_sql, bool *updated, struct rg_err *err);
/* trial.c: the dry run's store calls (ports.h), and the state it keeps between them. */
struct rg_pg_trial;
void rg_pg_trial_free(struct rg_pg_trial *t);
int rg_pg_trial_begin(void *ctx, struct rg_err *err);
int rg_pg_trial_run(void *ctx, const struct rg_step *s, struct rg_trial *t, struct rg_err *err);
void rg_pg_trial_end(void *ctx);

/* adopt.c */
int rg_pg_read_down(void *ctx, int64_t version, char **sql, struct rg_err *err);
int rg_pg_wait_running(void *ctx, int64_t version, int64_t timeout_ms, struct rg_err *err);
int rg_pg_run_alive(void *ctx, const char *applied_by, bool *alive, struct rg_err *err);
int rg_pg_read_legacy(void *ctx, struct rg_legacy *legacy, struct rg_err *err);
int rg_pg_baseline(void *ctx, const struct rg_migration *const *ms, size_t n,
                   const char *applied_by, bool adopting, struct rg_err *err);
int rg_pg_repair(void *ctx, int64_t version, size_t *cleared, struct rg_err *err);

#endif
