/* One step of a run (an up or down migration, a repeatable or data script) and its
 * history row, exactly once: in one transaction sent as one query, or, for a
 * no-transaction file, statement by statement between a "running" mark and its row. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock/clock.h"
#include "mem/mem.h"
#include "log/log.h"
#include "pg/internal.h"
#include "source/sql.h"

/* A step's duration, server-side so that it excludes the wait for the lock: from when the
 * step noted it held the lock (locked_head's rollgate.started), or, for a step that does not
 * wait for it (try_fence), from when the server received the step's query, since nothing
 * before the file's SQL then waits. */
static const char *duration_sql(const struct rg_step *s)
{
    return s->try_fence ? "(extract(epoch FROM clock_timestamp() - statement_timestamp()) * "
                          "1000)::bigint"
                        : "(extract(epoch FROM clock_timestamp() - "
                          "current_setting('rollgate.started')::timestamptz) * 1000)::bigint";
}

static const char *kind_name(enum rg_kind kind)
{
    static const char *names[] = {"schema", "repeatable", "data"};
    return names[kind];
}

/* The step's strings as SQL literals, quoted once before anything is sent: text libpq
 * cannot quote (not valid in the client encoding) stops the step there, naming it, rather
 * than going in as NULL. */
struct literals {
    char *title, *sum, *down, *up, *by;
    bool with_up; /* the history table has the column up_sql (upsql.c) */
};

static int quote_step(struct rg_pg *pg, const struct rg_step *s, struct literals *q,
                      struct rg_err *err)
{
    char *down_what = rg_asprintf("%s: its down migration, stored with the history row", s->path);
    int ret = -1;

    memset(q, 0, sizeof(*q));
    q->with_up = pg->upsql == RG_PG_UPSQL_YES;
    /* What ran, kept to explain a later change of the file (drift). */
    if (rg_pg_literal(pg, s->title, RG_EFILES, s->path, &q->title, err) == 0 &&
        rg_pg_literal(pg, s->checksum, RG_EFILES, s->path, &q->sum, err) == 0 &&
        rg_pg_literal(pg, s->down_sql, RG_EFILES, down_what, &q->down, err) == 0 &&
        rg_pg_literal(pg, s->action == RG_ACT_APPLY && q->with_up ? s->sql : NULL, RG_EFILES,
                      s->path, &q->up, err) == 0 &&
        rg_pg_literal(pg, s->applied_by ? s->applied_by : "", RG_ECONFIG, "lease.identity", &q->by,
                      err) == 0)
        ret = 0;
    free(down_what);
    return ret;
}

static void literals_free(struct literals *q)
{
    free(q->title);
    free(q->sum);
    free(q->down);
    free(q->up);
    free(q->by);
}

/* The row's key, for WHERE clauses. */
static char *row_key(const struct rg_step *s, const struct literals *q)
{
    return s->kind == RG_KIND_SCHEMA
               ? rg_asprintf("kind = 'schema' AND version = %" PRId64, s->version)
               : rg_asprintf("kind = '%s' AND version = 0 AND title = %s", kind_name(s->kind),
                             q->title);
}

/* The history row's column the re-check reads into s, NULL when there is nothing to check:
 * a data script runs on every migrate, by contract idempotent. */
static const char *checked_column(const struct rg_step *s)
{
    if (s->action != RG_ACT_SCRIPT)
        return "state";
    return s->kind == RG_KIND_REPEATABLE ? "checksum" : NULL;
}

/* Under the lock, with s read from the history row (checked_column): raise RG001 when
 * another run has done the step meanwhile, RG003 while another run's no-transaction
 * migration of this version is under way. A PL/pgSQL statement for locked_head's block. */
static char *judgement(const struct rg_step *s, const struct literals *q)
{
    if (s->action == RG_ACT_SCRIPT)
        return rg_asprintf("IF s = %s THEN RAISE SQLSTATE '" SQLSTATE_ALREADY_DONE "'; END IF;",
                           q->sum);
    return rg_asprintf("IF s IS %s THEN RAISE USING ERRCODE = CASE s WHEN 'running' THEN "
                       "'" SQLSTATE_IN_PROGRESS "' ELSE '" SQLSTATE_ALREADY_DONE "' END; END IF;",
                       s->action == RG_ACT_REVERT ? "DISTINCT FROM 'applied'" : "NOT NULL");
}

/* The statement that records the step done (state applied), its duration an SQL
 * expression. A schema migration's row is new: the re-check under the lock found none, so
 * it needs no ON CONFLICT clause, whose arbiter the server would otherwise infer for every
 * step; a script's row is kept from its last run and updated. */
static char *record(struct rg_pg *pg, const struct rg_step *s, const struct literals *q,
                    const char *key, const char *state, const char *duration)
{
    if (s->action == RG_ACT_REVERT)
        return rg_asprintf("DELETE FROM %s WHERE %s", pg->table, key);
    return rg_asprintf("INSERT INTO %s (kind, version, title, checksum, down_sql, applied_by, "
                       "duration_ms, rollgate_version, state%s) VALUES ('%s', %" PRId64
                       ", %s, %s, %s, %s, %s, '%s', '%s'%s%s)%s",
                       pg->table, q->with_up ? ", up_sql" : "", kind_name(s->kind), s->version,
                       q->title, q->sum, q->down, q->by, duration, RG_VERSION, state,
                       q->with_up ? ", " : "", q->with_up ? q->up : "",
                       s->kind == RG_KIND_SCHEMA
                           ? ""
                           : " ON CONFLICT (kind, version, title) DO UPDATE SET checksum = "
                             "EXCLUDED.checksum, applied_at = now(), applied_by = "
                             "EXCLUDED.applied_by, duration_ms = EXCLUDED.duration_ms, "
                             "rollgate_version = EXCLUDED.rollgate_version, state = "
                             "EXCLUDED.state");
}

/* The server's words on one line between our own, which keep their spaces. */
static void append(struct rg_err *err, const char *before, const char *text, const char *after)
{
    char line[200];

    rg_pg_one_line(line, sizeof(line), text);
    rg_err_suffix(err, "%s%s%s", before, line, after);
}

/* The failed statement's place in the file and the server's own words. shift: characters
 * of the file before the SQL that was sent, less those of rollgate's own SQL before it. */
static void step_error(const struct rg_step *s, const PGresult *res, long shift,
                       const char *outcome, struct rg_err *err)
{
    const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
    const char *detail = PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL);
    const char *hint = PQresultErrorField(res, PG_DIAG_MESSAGE_HINT);
    const char *pos = PQresultErrorField(res, PG_DIAG_STATEMENT_POSITION);
    char where[64] = "";
    int64_t at;
    long line, col;

    if (pos && rg_pg_int(pos, 1, INT32_MAX, &at) == 0 &&
        rg_pg_position(s->sql, (long)at + shift, &line, &col) == 0)
        snprintf(where, sizeof(where), ":%ld:%ld", line, col);
    /* Without a server error (libpq's own, or a result of an unexpected kind) there is no
     * SQLSTATE to show, and libpq's message or the result's kind says what happened. */
    if (!msg)
        msg = *PQresultErrorMessage(res) ? PQresultErrorMessage(res)
                                         : PQresStatus(PQresultStatus(res));
    rg_err_set(err, RG_EMIGRATION, "%s%s: ERROR%s%s: ", s->path, where, state ? " " : "",
               state ? state : "");
    append(err, "", msg, "");
    if (detail)
        append(err, " (detail: ", detail, ")");
    if (hint)
        append(err, " (hint: ", hint, ")");
    if (state && strcmp(state, SQLSTATE_ACTIVE_SQL_TRANSACTION) == 0)
        rg_err_suffix(err, " (hint: mark the file -- rollgate:no-transaction)");
    rg_err_suffix(err, "%s", outcome);
}

/* How an attempt at a step ended, beyond done (0) or failed (-1 with err set). */
enum attempt {
    ATTEMPT_ENDED,
    ATTEMPT_LOCKED, /* failed on lock_timeout (55P03): stepping aside and trying again may help */
    ATTEMPT_BUSY,   /* another run is part way through this version outside a transaction */
};

int rg_pg_judge(struct rg_pg *pg, const struct rg_step *s, const PGresult *res, long shift,
                const char *outcome, bool *locked, struct rg_err *err)
{
    if (PQresultStatus(res) == PGRES_COMMAND_OK || PQresultStatus(res) == PGRES_TUPLES_OK ||
        PQresultStatus(res) == PGRES_EMPTY_QUERY)
        return 0;
    if (rg_pg_is_cancelled(pg, err))
        return -1;
    if (!res || PQstatus(pg->conn) != CONNECTION_OK) {
        char line[400];
        rg_pg_one_line(line, sizeof(line), rg_pg_error(pg));
        rg_err_set(err, RG_EDATABASE, "%s: connection lost: %s", s->path, line);
        return -1;
    }
    step_error(s, res, shift, outcome, err);
    *locked = rg_pg_state_is(res, SQLSTATE_LOCK_NOT_AVAILABLE);
    return -1;
}

/* rg_pg_judge for a step's attempt: *how ATTEMPT_LOCKED when it hit lock_timeout. */
static int judge(struct rg_pg *pg, const struct rg_step *s, const PGresult *res, long shift,
                 const char *outcome, enum attempt *how, struct rg_err *err)
{
    bool locked = false;
    int ret = rg_pg_judge(pg, s, res, shift, outcome, &locked, err);

    if (locked)
        *how = ATTEMPT_LOCKED;
    return ret;
}

/* Makes earlier commits of this run that skipped the WAL flush durable: a transaction
 * that has an id commits with a flush, and the flush covers all WAL before it. */
static int flush(struct rg_pg *pg, struct rg_err *err)
{
    PGresult *res = rg_pg_exec(pg, "BEGIN; SELECT txid_current(); COMMIT", PGRES_COMMAND_OK, err);
    if (!res)
        return -1;
    PQclear(res);
    pg->unflushed = false;
    return 0;
}

/* Begins a transaction holding the lock. Waiting for the lock must not be cut short by a
 * timeout set for the server or role: the run that holds it may be applying a long
 * migration. A step that must not wait (s->try_fence) raises RG004 at once instead, so the
 * run waits elsewhere with no transaction open. started: a step that waits for the lock
 * notes when it got it (rollgate.started, for duration_sql). */
static char *locked_head(struct rg_pg *pg, const struct rg_step *s, const struct literals *q,
                         const char *key, bool started)
{
    const char *column = checked_column(s);
    /* A schema migration to apply is looked at first, without the lock: one done already
     * says so (RG005) without holding the fence even for a moment, which would make the
     * run holding it step aside. Not waiting, it needs no timeouts lifted. */
    bool look = s->action == RG_ACT_APPLY && s->kind == RG_KIND_SCHEMA && s->try_fence;
    char *take = s->try_fence
                     ? rg_asprintf("IF NOT pg_try_advisory_xact_lock(%" PRId64
                                   ") THEN RAISE SQLSTATE '" SQLSTATE_FENCE_HELD "'; END IF;",
                                   pg->lock_key)
                     : rg_asprintf("PERFORM pg_advisory_xact_lock(%" PRId64 ");", pg->lock_key);
    char *read = column ? rg_asprintf("SELECT %s INTO s FROM %s WHERE %s;", column, pg->table, key)
                        : rg_strdup("");
    char *judge = column ? judgement(s, q) : rg_strdup("");
    /* The look, the lock and the re-check are one PL/pgSQL block, which the server compiles
     * once per step; each of its statements takes a new snapshot as the statements of a
     * query do, so the re-check still sees what the run that held the lock committed. With
     * a look, the same query reads the row twice, before the lock and after it: the block
     * plans it once, and the server's work on a trivial step goes mostly to compiling and
     * planning what it is sent. Short, too: pg_stat_activity shows only the first
     * track_activity_query_size bytes of the step, and the file's SQL must stay in them. */
    char *body = look ? rg_asprintf("FOR pass IN 1..2 LOOP %s EXIT WHEN pass = 2; IF s IS NOT NULL "
                                    "THEN RAISE SQLSTATE '" SQLSTATE_SEEN_DONE "'; END IF; %s END "
                                    "LOOP; %s",
                                    read, take, judge)
                      : rg_asprintf("%s %s %s", take, read, judge);
    /* A file's BEGIN ... COMMIT wrapper was blanked out: its isolation level is this
     * transaction's, as it was where the file ran as written (golang-migrate, psql). */
    const char *modes = s->directives->begin_modes;
    char *head = rg_asprintf(
        "BEGIN%s%s;%s%sDO $rg$DECLARE s text; BEGIN %s%s END$rg$;", *modes ? " " : "", modes,
        rg_pg_dead_client_check(pg, true),
        s->try_fence ? "" : "SET LOCAL lock_timeout = 0;SET LOCAL statement_timeout = 0;", body,
        started && !s->try_fence
            ? " PERFORM set_config('rollgate.started', clock_timestamp()::text, true);"
            : "");

    free(take);
    free(read);
    free(judge);
    free(body);
    return head;
}

/* The whole step as one query: lock, re-check, the file, its row, the session put back as it
 * was, commit. Setting the session back inside the transaction means it holds on the same
 * server connection behind a pooler, costs no round trip, and is undone with the file's own
 * SETs when the step rolls back; the step's SET LOCALs, which it also resets, are set again
 * for the COMMIT (deferred constraints run there). A transaction-control statement in the
 * file, which would break this, was refused when the file was read (sql.h). */
static int run_in_transaction(struct rg_pg *pg, const struct rg_step *s, const struct literals *q,
                              const char *key, enum rg_apply_outcome *outcome, enum attempt *how,
                              struct rg_err *err)
{
    char *lock = locked_head(pg, s, q, key, true);
    char *rec = record(pg, s, q, key, "applied", duration_sql(s));
    char *reset = rg_pg_session_reset(pg);
    char *local =
        rg_asprintf("SET LOCAL lock_timeout = %" PRId64 ";SET LOCAL statement_timeout = %" PRId64
                    ";SET LOCAL synchronous_commit = %s;",
                    s->lock_timeout_ms, s->statement_timeout_ms, s->durable ? "on" : "off");
    char *head = rg_asprintf("%s%s\n", lock, local);
    /* The newline ends a trailing -- comment in the file. */
    char *sql = rg_asprintf("%s%s\n;%s;%s%s%sCOMMIT", head, s->sql, rec, reset,
                            rg_pg_dead_client_check(pg, true), local);
    PGresult *res = NULL;
    int ret = -1;

    if (rg_pg_is_cancelled(pg, err))
        goto out;
    res = rg_pg_query(pg, sql);
    if (rg_pg_state_is(res, SQLSTATE_IN_PROGRESS)) {
        *how = ATTEMPT_BUSY;
        ret = 0;
        goto out;
    }
    if (rg_pg_state_is(res, SQLSTATE_ALREADY_DONE) || rg_pg_state_is(res, SQLSTATE_FENCE_HELD) ||
        rg_pg_state_is(res, SQLSTATE_SEEN_DONE)) {
        *outcome = rg_pg_state_is(res, SQLSTATE_FENCE_HELD)  ? RG_APPLY_BUSY
                   : rg_pg_state_is(res, SQLSTATE_SEEN_DONE) ? RG_APPLY_SEEN
                                                             : RG_APPLY_ALREADY;
        rg_pg_rollback(pg);
        /* A step that may not wait is the last this run tries when another run has it: the
         * run follows from here, so its own commits must be on disk now. */
        ret = (s->durable || s->try_fence) && pg->unflushed ? flush(pg, err) : 0;
        goto out;
    }
    ret = judge(pg, s, res, -(long)strlen(head), "; rolled back", how, err);
    if (ret == 0 && strcmp(PQcmdStatus(res), "COMMIT") != 0) {
        rg_err_set(err, RG_EMIGRATION, "%s: not committed (the server said %s); rolled back",
                   s->path, PQcmdStatus(res));
        ret = -1;
    }
    if (ret == 0) {
        pg->unflushed = !s->durable;
        *outcome = RG_APPLY_DONE;
    }
out:
    rg_pg_rollback(pg);
    PQclear(res);
    free(lock);
    free(rec);
    free(reset);
    free(local);
    free(head);
    free(sql);
    return ret;
}

long rg_pg_chars_before(const char *sql, size_t end)
{
    long n = 0;
    for (size_t i = 0; i < end; i++)
        n += ((unsigned char)sql[i] & 0xC0) != 0x80;
    return n;
}

/* One statement of a no-transaction file; a CREATE INDEX CONCURRENTLY between the drop of
 * an invalid leftover of its index and the check that the index it built is valid
 * (index.c). outcome ends the message of a failure. */
static int run_one(struct rg_pg *pg, const struct rg_step *s, const struct rg_sql_stmt *st,
                   const struct rg_sql_index *ix, const char *outcome, enum attempt *how,
                   struct rg_err *err)
{
    char *one = rg_strndup(s->sql + st->start, st->end - st->start);
    PGresult *res = NULL;
    int ret = -1;

    if (rg_pg_is_cancelled(pg, err))
        goto out;
    if (ix && rg_pg_index_before(pg, s, ix, err) < 0) {
        rg_err_suffix(err, "%s", outcome);
        goto out;
    }
    res = rg_pg_query(pg, one);
    ret = judge(pg, s, res, rg_pg_chars_before(s->sql, st->start), outcome, how, err);
    if (ret == 0 && ix)
        ret = rg_pg_index_after(pg, s, ix, st->line, outcome, err);
out:
    PQclear(res);
    free(one);
    return ret;
}

/* The file's statements one at a time, each its own transaction, as CREATE INDEX
 * CONCURRENTLY needs; with session settings, so on a connection that keeps them (session.c),
 * and the session put back as it was afterwards, whatever the file set. A failure ends the
 * message with failed_outcome, or with rerun_outcome and *rerun set when running the file
 * again from the start is safe as it is: the failed statement is an index build (its
 * invalid leftover is dropped next time) and every one before it a build IF NOT EXISTS
 * (kept as built). */
static int run_statements(struct rg_pg *pg, const struct rg_step *s, const char *failed_outcome,
                          const char *rerun_outcome, bool *rerun, struct rg_err *err)
{
    struct rg_sql_stmt *st = NULL;
    size_t n = rg_sql_statements(s->sql, strlen(s->sql), &st);
    char *reset = rg_pg_session_reset(pg);
    char *set = rg_asprintf("%sSET lock_timeout = %" PRId64 "; SET statement_timeout = %" PRId64,
                            rg_pg_dead_client_check(pg, false), s->lock_timeout_ms,
                            s->statement_timeout_ms);
    PGresult *res = rg_pg_exec(pg, set, PGRES_COMMAND_OK, err);
    struct rg_err reset_err = {0};
    /* A lock_timeout here is not retried: statements before it may have taken effect. */
    enum attempt how = ATTEMPT_ENDED;
    bool builds_before = true;
    int ret = res ? 0 : -1;

    PQclear(res);
    *rerun = false;
    for (size_t i = 0; i < n && ret == 0; i++) {
        struct rg_sql_index ix;
        bool build = rg_sql_index_build(s->sql + st[i].start, st[i].end - st[i].start, &ix);

        *rerun = builds_before && build;
        ret = run_one(pg, s, &st[i], build ? &ix : NULL, *rerun ? rerun_outcome : failed_outcome,
                      &how, err);
        builds_before = builds_before && build && ix.if_not_exists;
        rg_sql_index_free(&ix);
    }
    if (ret == 0)
        *rerun = false;
    /* After a failure too: the failed mark, and on database.url the rest of the run, use this
     * session. */
    res = rg_pg_exec(pg, reset, PGRES_COMMAND_OK, ret == 0 ? err : &reset_err);
    if (!res)
        ret = -1;
    PQclear(res);
    free(reset);
    free(set);
    free(st);
    return ret;
}

/* Ends a schema row's running mark after its no-transaction SQL stopped part way: failed,
 * so a later run stops until `rollgate repair`; or, when the file can simply run again
 * (rerun), as it was before (no row for an up migration, applied for a down one), so the
 * next migrate does. Best effort: the connection may be gone, and then the mark is judged
 * failed by the next run. */
static void end_mark(struct rg_pg *pg, const struct rg_step *s, const char *key, bool rerun)
{
    char *sql = !rerun ? rg_asprintf("UPDATE %s SET state = 'failed' WHERE %s", pg->table, key)
                : s->action == RG_ACT_APPLY
                    ? rg_asprintf("DELETE FROM %s WHERE %s AND state = 'running'", pg->table, key)
                    : rg_asprintf("UPDATE %s SET state = 'applied' WHERE %s AND state = 'running'",
                                  pg->table, key);

    /* A cancel request is asynchronous: sent for the statement that stopped, it can land
     * on this UPDATE instead. Trying again is safe, and a later one it cannot hit. */
    for (int tries = 0; tries < 3 && PQstatus(pg->conn) == CONNECTION_OK; tries++) {
        PGresult *res = rg_pg_query(pg, sql);
        bool cancelled = rg_pg_state_is(res, SQLSTATE_QUERY_CANCELED);
        PQclear(res);
        if (!cancelled)
            break;
    }
    free(sql);
}

static int run_without_transaction(struct rg_pg *pg, const struct rg_step *s,
                                   const struct literals *q, const char *key,
                                   enum rg_apply_outcome *outcome, int64_t start, enum attempt *how,
                                   struct rg_err *err)
{
    char *lock = locked_head(pg, s, q, key, false), *mark = NULL, *sql = NULL, *rec = NULL,
         *dur = NULL;
    const char *outcome_msg = "; the statements before it stay applied, and the script runs "
                              "again from the start on the next migrate";
    /* Short enough to survive append() whole, as failed_msg. */
    const char *rerun_msg = "; not marked failed: remove the cause (duplicate rows for a unique "
                            "index?) and run migrate again, which drops the invalid index left "
                            "and builds it again";
    char failed_msg[200];
    PGresult *res = NULL;
    bool schema = s->kind == RG_KIND_SCHEMA, rerun = false;
    int ret = -1;

    /* The mark, committed under the lock before anything runs, is what other runs see. */
    if (schema) {
        mark = s->action == RG_ACT_APPLY
                   ? record(pg, s, q, key, "running", "0")
                   : rg_asprintf("UPDATE %s SET state = 'running' WHERE %s", pg->table, key);
        /* Short enough to survive append() whole: the command is what the operator needs. */
        snprintf(failed_msg, sizeof(failed_msg),
                 "; ran outside a transaction, now marked failed: undo by hand what ran "
                 "before this statement, then `rollgate repair --version %" PRId64
                 "`; the next migrate drops an invalid index left",
                 s->version);
        outcome_msg = failed_msg;
    }
    sql = rg_asprintf("%s%s%sCOMMIT", lock, mark ? mark : "", mark ? ";" : "");
    res = rg_pg_query(pg, sql);
    if (rg_pg_state_is(res, SQLSTATE_IN_PROGRESS)) {
        *how = ATTEMPT_BUSY;
        ret = 0;
        goto out;
    }
    if (rg_pg_state_is(res, SQLSTATE_ALREADY_DONE)) {
        *outcome = RG_APPLY_ALREADY;
        ret = 0;
        goto out;
    }
    if (rg_pg_state_is(res, SQLSTATE_FENCE_HELD) || rg_pg_state_is(res, SQLSTATE_SEEN_DONE)) {
        *outcome = rg_pg_state_is(res, SQLSTATE_SEEN_DONE) ? RG_APPLY_SEEN : RG_APPLY_BUSY;
        ret = 0;
        goto out;
    }
    if (judge(pg, s, res, 0, "", how, err) < 0)
        goto out;
    if (run_statements(pg, s, outcome_msg, schema ? rerun_msg : outcome_msg, &rerun, err) < 0) {
        if (schema)
            end_mark(pg, s, key, rerun);
        if (schema && rerun && err->code == RG_ESIGNAL)
            rg_err_set(err, RG_ESIGNAL,
                       "%s: stopped during an index build; the next migrate drops the invalid "
                       "index it left and builds it again",
                       s->path);
        else if (schema && err->code == RG_ESIGNAL)
            rg_err_set(err, RG_ESIGNAL,
                       "%s: stopped part way through a no-transaction migration, which is now "
                       "marked failed: check what it did, undo it by hand, then run `rollgate "
                       "repair --version %" PRId64 "`",
                       s->path, s->version);
        goto out;
    }
    dur = rg_asprintf("%" PRId64, rg_now_ms() - start);
    rec = schema && s->action == RG_ACT_APPLY
              ? rg_asprintf("UPDATE %s SET state = 'applied', applied_at = now(), duration_ms = "
                            "%s WHERE %s",
                            pg->table, dur, key)
              : record(pg, s, q, key, "applied", dur);
    PQclear(res);
    res = rg_pg_exec(pg, rec, PGRES_COMMAND_OK, err);
    if (!res) {
        rg_err_prefix(err, "%s: ran, but recording it failed", s->path);
        goto out;
    }
    if (schema && s->action == RG_ACT_APPLY && strcmp(PQcmdTuples(res), "1") != 0) {
        rg_err_set(err, RG_ECONFLICT,
                   "%s: ran, but its running mark was gone when it finished (was `rollgate "
                   "repair` run meanwhile?): its effects are in place without a history row; "
                   "record it with `rollgate baseline` or undo it by hand",
                   s->path);
        goto out;
    }
    *outcome = RG_APPLY_DONE;
    ret = 0;
out:
    rg_pg_rollback(pg);
    PQclear(res);
    free(lock);
    free(mark);
    free(sql);
    free(rec);
    free(dur);
    return ret;
}

int64_t rg_pg_lock_timeout_at(int64_t attempt, int64_t retries, int64_t cap_ms)
{
    int64_t t = RG_PG_LOCK_TIMEOUT_FIRST_MS;

    if (attempt >= retries)
        return cap_ms;
    for (int64_t i = 0; i < attempt && (cap_ms == 0 || t < cap_ms) && t < INT32_MAX; i++)
        t *= 2;
    /* PostgreSQL keeps lock_timeout in an int of milliseconds. */
    if (t > INT32_MAX)
        t = INT32_MAX;
    return cap_ms && t > cap_ms ? cap_ms : t;
}

int64_t rg_pg_lock_pause_after(int64_t attempt, uint32_t random)
{
    int64_t base = RG_PG_LOCK_PAUSE_FIRST_MS;

    for (int64_t i = 0; i < attempt && base < RG_PG_LOCK_PAUSE_MAX_MS; i++)
        base *= 2;
    if (base > RG_PG_LOCK_PAUSE_MAX_MS)
        base = RG_PG_LOCK_PAUSE_MAX_MS;
    return base / 2 + (int64_t)(random % (uint32_t)(base / 2 + 1));
}

/* The lock retries ran out (or the run's deadline left no room for another): exit 12, and
 * the message names who blocked the migration, as last seen by the watch. */
static void lock_gave_up(const struct rg_step *s, const struct rg_pg_watch *w, int64_t tries,
                         int64_t lock_timeout_ms, const char *why, struct rg_err *err)
{
    char last[sizeof(err->msg)];
    const char *blocker = rg_pg_watch_blocker(w);

    snprintf(last, sizeof(last), "%s", err->msg);
    rg_err_set(err, RG_ELOCK,
               "%s: lock not acquired after %" PRId64 " tr%s (lock_timeout %" PRId64
               "ms at the last)%s: %s; %s",
               s->path, tries, tries == 1 ? "y" : "ies", lock_timeout_ms, why,
               *blocker ? blocker
                        : "the blocker was not looked up (no look caught the wait: the "
                          "monitor looks a second into each statement, or halfway into a last "
                          "attempt shorter than that; a longer database.lockTimeout lets "
                          "rollgate name it)",
               last);
}

/* Whether on reaches PostgreSQL directly, which shortens the step's session reset. A
 * connection that cannot even say so fails the step soon enough with a message naming the
 * file: only a stop (RG_ESIGNAL) ends the step here. */
static int probe(struct rg_pg *on, struct rg_err *err)
{
    if (rg_pg_probe_direct(on, err) == 0)
        return 0;
    if (err->code == RG_ESIGNAL)
        return -1;
    rg_err_clear(err);
    return 0;
}

int rg_pg_run_step(void *ctx, const struct rg_step *s, enum rg_apply_outcome *outcome,
                   int64_t *duration_ms, struct rg_err *err)
{
    struct rg_pg *pg = ctx, *on = pg;
    struct rg_pg_watch *watch = NULL;
    struct rg_step one = *s;
    struct literals q = {0};
    char *key = NULL;
    /* Jitter differs between runs that were blocked together. */
    unsigned seed = (unsigned)rg_now_ms() ^ (unsigned)PQbackendPID(pg->conn);
    int rc = -1;

    *duration_ms = 0;
    if (s->directives->no_transaction && rg_pg_direct(pg, &on, err) < 0) {
        rg_err_prefix(err, "%s", s->path);
        return -1;
    }
    if (rg_pg_upsql_column(pg, err) < 0 || probe(on, err) < 0 || quote_step(pg, s, &q, err) < 0)
        goto out;
    key = row_key(s, &q);
    watch = rg_pg_watch_new(pg, on, s);
    for (int64_t attempt = 0;; attempt++) {
        int64_t start = rg_now_ms(), pause, next;
        enum attempt how = ATTEMPT_ENDED;

        /* A no-transaction file is not tried again (statements before the one that waited
         * may have taken effect), so its one try waits the whole lock_timeout. */
        if (!s->directives->no_transaction)
            one.lock_timeout_ms =
                rg_pg_lock_timeout_at(attempt, pg->opts.lock_retries, s->lock_timeout_ms);
        rg_pg_watch_attempt(watch, attempt, one.lock_timeout_ms, s->lock_timeout_ms);
        rc = s->directives->no_transaction
                 ? run_without_transaction(on, &one, &q, key, outcome, start, &how, err)
                 : run_in_transaction(pg, &one, &q, key, outcome, &how, err);
        *duration_ms = rg_now_ms() - start;
        if (rc == 0 && how == ATTEMPT_BUSY) {
            /* Another run is part way through this version outside a transaction. */
            if (rg_pg_wait_running(pg, s->version, pg->opts.wait_timeout_ms, err) < 0) {
                rc = -1;
                break;
            }
            attempt--;
            continue;
        }
        if (rc == 0 || how != ATTEMPT_LOCKED)
            break;
        if (attempt >= pg->opts.lock_retries) {
            lock_gave_up(s, watch, attempt + 1, one.lock_timeout_ms, "", err);
            break;
        }
        pause = rg_pg_lock_pause_after(attempt, (uint32_t)rand_r(&seed));
        next = rg_pg_lock_timeout_at(attempt + 1, pg->opts.lock_retries, s->lock_timeout_ms);
        /* An attempt cut short by the run's timeout would end as a stop (exit 8) without
         * naming the blocker: better to end here, with a second left to say why. */
        if (pg->opts.deadline_ms &&
            rg_now_ms() + pause + next + RG_PG_GRACE_MS >= pg->opts.deadline_ms) {
            lock_gave_up(s, watch, attempt + 1, one.lock_timeout_ms,
                         ", and the run's timeout leaves no time for another", err);
            break;
        }
        /* Queued behind a long transaction: step aside so live traffic is not blocked
         * behind our DDL, then try again, waiting a little longer. */
        RG_WARN("lock not available within lock_timeout, retrying" RG_F "file=%s" RG_F
                "attempt=%" PRId64 RG_F "lock_timeout_ms=%" PRId64 RG_F "retry_in_ms=%" PRId64 RG_F
                "next_lock_timeout_ms=%" PRId64 RG_F "error=%s",
                s->path, attempt + 1, one.lock_timeout_ms, pause, next, err->msg);
        rg_pg_nap(pg, pause);
    }
out:
    /* A stop names the file it cut short (run_without_transaction says what a no-transaction
     * one left). */
    if (rc < 0 && err->code == RG_ESIGNAL && !s->directives->no_transaction)
        rg_err_set(err, RG_ESIGNAL,
                   "%s: stopped before it committed; rolled back, nothing of it is applied",
                   s->path);
    rg_pg_watch_free(watch);
    literals_free(&q);
    free(key);
    return rc;
}
