#include "pg/pg.h"

#include <errno.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "err/mem.h"
#include "log/log.h"

#define SQLSTATE_UNDEFINED_TABLE "42P01"
#define SQLSTATE_UNDEFINED_SCHEMA "3F000"
#define SQLSTATE_LOCK_NOT_AVAILABLE "55P03"
/* Raised by rollgate itself when the re-check under the lock finds the version applied. */
#define SQLSTATE_ALREADY_APPLIED "RG001"
/* CREATE INDEX CONCURRENTLY, VACUUM... cannot run inside a transaction block. */
#define SQLSTATE_ACTIVE_SQL_TRANSACTION "25001"

struct rg_pg {
    struct rg_pg_opts opts;
    PGconn *conn;
    /* Written once after connecting, read by the cancelling thread. */
    _Atomic(PGcancel *) cancel;
    atomic_bool cancelled;
    char *table;      /* "schema".rollgate_migrations, quoted */
    int64_t lock_key; /* advisory lock key derived from the table's name */
    /* A commit made with synchronous_commit off that no durable commit has followed. */
    bool unflushed;
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Sleeps up to ms in short steps so that a cancel is noticed promptly. */
static void nap(struct rg_pg *pg, int64_t ms)
{
    int64_t end = now_ms() + ms;
    while (!atomic_load(&pg->cancelled)) {
        int64_t left = end - now_ms();
        struct timespec ts;
        if (left <= 0)
            break;
        if (left > 50)
            left = 50;
        ts.tv_sec = 0;
        ts.tv_nsec = (long)left * 1000000;
        nanosleep(&ts, NULL);
    }
}

/* libpq's messages end with a newline and may span lines; logs want one line. */
static void one_line(char *dst, size_t n, const char *src)
{
    size_t o = 0;
    for (; src && *src && o + 1 < n; src++)
        dst[o++] = (*src == '\n' || *src == '\r' || *src == '\t') ? ' ' : *src;
    while (o > 0 && dst[o - 1] == ' ')
        o--;
    dst[o] = '\0';
}

static void ignore_notice(void *arg, const char *message)
{
    (void)arg;
    char line[512];
    one_line(line, sizeof(line), message);
    RG_DEBUG("server notice" RG_F "message=%s", line);
}

struct rg_pg *rg_pg_new(const struct rg_pg_opts *opts)
{
    struct rg_pg *pg = rg_calloc(1, sizeof(*pg));
    const char *schema = opts->schema ? opts->schema : "public";
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */

    pg->opts = *opts;
    atomic_init(&pg->cancel, NULL);
    atomic_init(&pg->cancelled, false);
    /* The schema name is validated as a plain identifier by the configuration, so
     * quoting it is enough; it is also what the lock key is derived from, so runs that
     * share a history table share the lock and no others do. */
    pg->table = rg_asprintf("\"%s\".rollgate_migrations", schema);
    for (const char *p = pg->table; *p; p++) {
        h ^= (unsigned char)*p;
        h *= 1099511628211ULL;
    }
    pg->lock_key = (int64_t)h;
    return pg;
}

void rg_pg_free(struct rg_pg *pg)
{
    PGcancel *c;

    if (!pg)
        return;
    c = atomic_exchange(&pg->cancel, NULL);
    if (c)
        PQfreeCancel(c);
    if (pg->conn)
        PQfinish(pg->conn);
    free(pg->table);
    free(pg);
}

void rg_pg_cancel(struct rg_pg *pg)
{
    char buf[256];
    PGcancel *c;

    atomic_store(&pg->cancelled, true);
    c = atomic_load(&pg->cancel);
    if (c && !PQcancel(c, buf, sizeof(buf)))
        RG_WARN("could not send the cancel request" RG_F "error=%s", buf);
}

static bool is_cancelled(struct rg_pg *pg, struct rg_err *err)
{
    if (!atomic_load(&pg->cancelled))
        return false;
    rg_err_set(err, RG_ESIGNAL, "stopped; the running migration, if any, was rolled back");
    return true;
}

/* Registers the URL's password with the log redactor, and rejects a malformed URL before
 * any attempt: retrying cannot fix it. */
static int check_url(const char *url, struct rg_err *err)
{
    PQconninfoOption *opts;
    char *msg = NULL;

    rg_log_redact(url);
    opts = PQconninfoParse(url, &msg);
    if (!opts) {
        char line[256];
        one_line(line, sizeof(line), msg ? msg : "out of memory");
        rg_err_set(err, RG_ECONFIG, "database.url: %s", line);
        PQfreemem(msg);
        return -1;
    }
    for (PQconninfoOption *o = opts; o->keyword; o++)
        if (strcmp(o->keyword, "password") == 0 && o->val)
            rg_log_redact(o->val);
    PQconninfoFree(opts);
    return 0;
}

int rg_pg_connect(struct rg_pg *pg, struct rg_err *err)
{
    const char *keys[6], *vals[6];
    char timeout[32];
    int k = 0, attempt = 0;
    int64_t deadline, backoff = 200;
    const char *url = pg->opts.url && *pg->opts.url ? pg->opts.url : NULL;

    if (url && check_url(url, err) < 0)
        return -1;
    rg_log_redact(pg->opts.password);
    /* libpq counts whole seconds, and treats 1 as 2. */
    snprintf(timeout, sizeof(timeout), "%" PRId64, (pg->opts.connect_timeout_ms + 999) / 1000);
    if (url) {
        keys[k] = "dbname";
        vals[k++] = url;
    }
    if (pg->opts.password) {
        keys[k] = "password";
        vals[k++] = pg->opts.password;
    }
    keys[k] = "connect_timeout";
    vals[k++] = timeout;
    keys[k] = "fallback_application_name";
    vals[k++] = "rollgate";
    keys[k] = NULL;
    vals[k] = NULL;

    deadline = now_ms() + pg->opts.connect_retry_ms;
    for (;;) {
        char line[400];

        if (is_cancelled(pg, err))
            return -1;
        attempt++;
        pg->conn = PQconnectdbParams(keys, vals, 1);
        if (pg->conn && PQstatus(pg->conn) == CONNECTION_OK)
            break;
        one_line(line, sizeof(line), pg->conn ? PQerrorMessage(pg->conn) : "out of memory");
        PQfinish(pg->conn);
        pg->conn = NULL;
        if (now_ms() + backoff > deadline) {
            rg_err_set(err, RG_EDATABASE, "could not connect to the database after %d attempts: %s",
                       attempt, line);
            return -1;
        }
        RG_WARN("database not reachable yet, retrying" RG_F "attempt=%d" RG_F "error=%s" RG_F
                "retry_in_ms=%" PRId64,
                attempt, line, backoff);
        nap(pg, backoff);
        backoff = backoff * 2 > 5000 ? 5000 : backoff * 2;
    }
    PQsetNoticeProcessor(pg->conn, ignore_notice, NULL);
    atomic_store(&pg->cancel, PQgetCancel(pg->conn));
    RG_DEBUG("connected" RG_F "attempts=%d" RG_F "server_version=%d", attempt,
             PQserverVersion(pg->conn));
    return 0;
}

/* Runs sql (one or more statements, simple protocol) and returns the last result, or
 * NULL with err set. expect is the status that counts as success. */
static PGresult *run(struct rg_pg *pg, const char *sql, ExecStatusType expect, struct rg_err *err)
{
    PGresult *res;
    char line[400];

    if (is_cancelled(pg, err))
        return NULL;
    res = PQexec(pg->conn, sql);
    if (res && PQresultStatus(res) == expect)
        return res;
    if (atomic_load(&pg->cancelled)) {
        PQclear(res);
        is_cancelled(pg, err);
        return NULL;
    }
    one_line(line, sizeof(line), res ? PQresultErrorMessage(res) : PQerrorMessage(pg->conn));
    /* rollgate's own bookkeeping statements fail only when the server refuses them
     * (rights, timeouts, a lost connection): a database problem, not a bug. */
    rg_err_set(err, RG_EDATABASE, "%s", line);
    PQclear(res);
    return NULL;
}

static void rollback(struct rg_pg *pg)
{
    /* Best effort: when the connection is gone the server has rolled back already. */
    if (PQstatus(pg->conn) == CONNECTION_OK && PQtransactionStatus(pg->conn) != PQTRANS_IDLE)
        PQclear(PQexec(pg->conn, "ROLLBACK"));
}

static enum rg_row_state parse_state(const char *s)
{
    if (strcmp(s, "applied") == 0)
        return RG_ROW_APPLIED;
    if (strcmp(s, "running") == 0)
        return RG_ROW_RUNNING;
    return RG_ROW_FAILED;
}

static int read_history(void *ctx, struct rg_history *h, struct rg_err *err)
{
    struct rg_pg *pg = ctx;
    PGresult *res = NULL;
    char *sql;
    const char *state;
    int ret = -1;

    memset(h, 0, sizeof(*h));
    if (is_cancelled(pg, err))
        return -1;
    sql = rg_asprintf("SELECT version, title, checksum, state, "
                      "to_char(applied_at AT TIME ZONE 'UTC', "
                      "'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), applied_by, duration_ms, "
                      "down_sql IS NOT NULL FROM %s WHERE kind = 'schema' ORDER BY version",
                      pg->table);
    /* One round trip on the path every pod start takes: ask for the rows and treat a
     * missing table as an empty history, instead of checking for the table first. */
    res = PQexec(pg->conn, sql);
    if (PQresultStatus(res) == PGRES_FATAL_ERROR) {
        state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        if (state && (strcmp(state, SQLSTATE_UNDEFINED_TABLE) == 0 ||
                      strcmp(state, SQLSTATE_UNDEFINED_SCHEMA) == 0)) {
            ret = 0;
            goto out;
        }
    }
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        char line[400];
        one_line(line, sizeof(line), res ? PQresultErrorMessage(res) : PQerrorMessage(pg->conn));
        rg_err_set(err, RG_EDATABASE, "reading %s: %s", pg->table, line);
        goto out;
    }
    h->exists = true;
    h->n = (size_t)PQntuples(res);
    h->rows = rg_calloc(h->n, sizeof(*h->rows));
    for (size_t i = 0; i < h->n; i++) {
        struct rg_history_row *r = &h->rows[i];
        int row = (int)i;
        r->version = strtoll(PQgetvalue(res, row, 0), NULL, 10);
        r->title = rg_strdup(PQgetvalue(res, row, 1));
        snprintf(r->checksum, sizeof(r->checksum), "%s", PQgetvalue(res, row, 2));
        r->state = parse_state(PQgetvalue(res, row, 3));
        r->applied_at = rg_strdup(PQgetvalue(res, row, 4));
        r->applied_by = rg_strdup(PQgetvalue(res, row, 5));
        r->duration_ms = strtoll(PQgetvalue(res, row, 6), NULL, 10);
        r->has_down = PQgetvalue(res, row, 7)[0] == 't';
    }
    ret = 0;
out:
    if (ret < 0)
        rollback(pg);
    PQclear(res);
    free(sql);
    return ret;
}

static int ensure_history(void *ctx, struct rg_err *err)
{
    struct rg_pg *pg = ctx;
    const char *schema = pg->opts.schema ? pg->opts.schema : "public";
    char *sql;
    PGresult *res;

    /* Under the advisory lock, so that racing first runs do not trip over each other's
     * CREATE TABLE. The schema is created only when missing: CREATE SCHEMA IF NOT EXISTS
     * would need the CREATE right on the database even when the schema exists. */
    sql = rg_asprintf(
        "BEGIN;"
        "SELECT pg_advisory_xact_lock(%" PRId64 ");"
        "DO $rg$ BEGIN IF to_regnamespace('\"%s\"') IS NULL THEN "
        "CREATE SCHEMA \"%s\"; END IF; END $rg$;"
        "CREATE TABLE IF NOT EXISTS %s ("
        " kind text NOT NULL DEFAULT 'schema' CHECK (kind IN ('schema', 'data', 'repeatable')),"
        " version bigint NOT NULL,"
        " title text NOT NULL,"
        " checksum text NOT NULL,"
        " down_sql text,"
        " applied_at timestamptz NOT NULL DEFAULT now(),"
        " applied_by text NOT NULL,"
        " duration_ms bigint NOT NULL DEFAULT 0,"
        " rollgate_version text NOT NULL,"
        " state text NOT NULL DEFAULT 'applied' CHECK (state IN ('running', 'applied', 'failed')),"
        " PRIMARY KEY (kind, version, title));"
        "CREATE UNIQUE INDEX IF NOT EXISTS rollgate_migrations_schema_version"
        " ON %s (version) WHERE kind = 'schema';"
        "COMMIT;",
        pg->lock_key, schema, schema, pg->table, pg->table);
    res = run(pg, sql, PGRES_COMMAND_OK, err);
    free(sql);
    if (!res) {
        rollback(pg);
        rg_err_prefix(err, "creating %s", pg->table);
        return -1;
    }
    PQclear(res);
    RG_DEBUG("history table ready" RG_F "table=%s", pg->table);
    return 0;
}

static void append(struct rg_err *err, const char *label, const char *text)
{
    char line[200];
    size_t used = strlen(err->msg);

    if (!text)
        return;
    one_line(line, sizeof(line), text);
    snprintf(err->msg + used, sizeof(err->msg) - used, "%s%s%s", label, line,
             *label == ' ' ? ")" : "");
}

/* The failed statement's place in the file and the server's own words. offset: how many
 * characters of rollgate's own SQL stand before the file's in the query sent. */
static void migration_error(const struct rg_migration *m, const PGresult *res, long offset,
                            struct rg_err *err)
{
    const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
    const char *pos = PQresultErrorField(res, PG_DIAG_STATEMENT_POSITION);
    char where[64] = "";
    long line, col;

    if (pos && rg_pg_position(m->up_sql, strtol(pos, NULL, 10) - offset, &line, &col) == 0)
        snprintf(where, sizeof(where), ":%ld:%ld", line, col);
    rg_err_set(err, RG_EMIGRATION, "%s%s: ERROR %s: ", m->up_path, where, state ? state : "XX000");
    append(err, "", msg ? msg : "unknown error");
    append(err, " (detail: ", PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL));
    append(err, " (hint: ", PQresultErrorField(res, PG_DIAG_MESSAGE_HINT));
    if (state && strcmp(state, SQLSTATE_ACTIVE_SQL_TRANSACTION) == 0)
        append(err, " (hint: ", "mark the file -- rollgate:no-transaction");
    append(err, "", "; rolled back");
}

static char *literal(struct rg_pg *pg, const char *s)
{
    char *q = PQescapeLiteral(pg->conn, s, strlen(s));
    char *copy = rg_strdup(q ? q : "NULL");
    PQfreemem(q);
    return copy;
}

/* Makes earlier commits of this run that skipped the WAL flush durable: a transaction
 * that has an id commits with a flush, and the flush covers all WAL before it. */
static int flush(struct rg_pg *pg, struct rg_err *err)
{
    PGresult *res = run(pg, "BEGIN; SELECT txid_current(); COMMIT", PGRES_COMMAND_OK, err);
    if (!res)
        return -1;
    PQclear(res);
    pg->unflushed = false;
    return 0;
}

/* One attempt, in one round trip: lock, re-check, run, record, commit. Returns 1 when the
 * migration hit its lock_timeout (and was rolled back), so the caller may try again. */
static int apply_once(struct rg_pg *pg, const struct rg_apply *a, enum rg_apply_outcome *outcome,
                      int64_t *duration_ms, struct rg_err *err)
{
    const struct rg_migration *m = a->m;
    PGresult *res = NULL;
    char *head = NULL, *tail = NULL, *sql = NULL, *title = NULL, *sum = NULL, *down = NULL,
         *by = NULL;
    const char *state;
    int64_t start = now_ms();
    int ret = -1;

    title = literal(pg, m->title);
    sum = literal(pg, m->checksum);
    down = m->down_sql ? literal(pg, m->down_sql) : rg_strdup("NULL");
    by = literal(pg, a->applied_by ? a->applied_by : "");
    /* Waiting for the lock must not be cut short by a timeout set for the server or role:
     * the run that holds it may be applying a long migration. Once it is held, the
     * version is checked again: another run may have applied it meanwhile. The file's
     * own SQL follows, then its history row and the commit. Sent as one query, the whole
     * attempt costs one round trip; a transaction-control statement in the file, which
     * would break this, was refused when the file was read (sql.h). */
    head = rg_asprintf(
        "BEGIN;SET LOCAL lock_timeout = 0;SET LOCAL statement_timeout = 0;"
        "SELECT pg_advisory_xact_lock(%" PRId64 ");"
        "DO $rg$BEGIN IF EXISTS (SELECT 1 FROM %s WHERE kind = 'schema' AND version = %" PRId64
        ") THEN RAISE EXCEPTION 'already applied' USING ERRCODE = '" SQLSTATE_ALREADY_APPLIED
        "'; END IF; END$rg$;"
        "SET LOCAL lock_timeout = %" PRId64 ";SET LOCAL statement_timeout = %" PRId64 ";"
        "SET LOCAL synchronous_commit = %s;"
        "SELECT set_config('rollgate.started', clock_timestamp()::text, true);\n",
        pg->lock_key, pg->table, m->version, a->lock_timeout_ms, a->statement_timeout_ms,
        a->durable ? "on" : "off");
    /* The newline ends a trailing -- comment in the file. */
    tail = rg_asprintf(
        "\n;INSERT INTO %s (kind, version, title, checksum, down_sql, applied_by, duration_ms, "
        "rollgate_version, state) VALUES ('schema', %" PRId64 ", %s, %s, %s, %s, "
        "(extract(epoch FROM clock_timestamp() - "
        "current_setting('rollgate.started')::timestamptz) * 1000)::bigint, '%s', 'applied');"
        "COMMIT",
        pg->table, m->version, title, sum, down, by, RG_VERSION);
    sql = rg_asprintf("%s%s%s", head, m->up_sql, tail);

    if (is_cancelled(pg, err))
        goto out;
    res = PQexec(pg->conn, sql);
    *duration_ms = now_ms() - start;
    state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    if (PQresultStatus(res) == PGRES_COMMAND_OK && strcmp(PQcmdStatus(res), "COMMIT") == 0) {
        pg->unflushed = !a->durable;
        *outcome = RG_APPLY_DONE;
        ret = 0;
    } else if (state && strcmp(state, SQLSTATE_ALREADY_APPLIED) == 0) {
        *outcome = RG_APPLY_ALREADY;
        rollback(pg);
        ret = a->durable && pg->unflushed ? flush(pg, err) : 0;
    } else if (atomic_load(&pg->cancelled)) {
        is_cancelled(pg, err);
    } else if (PQstatus(pg->conn) != CONNECTION_OK || !res) {
        char line[400];
        one_line(line, sizeof(line), PQerrorMessage(pg->conn));
        rg_err_set(err, RG_EDATABASE, "%s: connection lost: %s", m->up_path, line);
    } else if (PQresultStatus(res) == PGRES_FATAL_ERROR) {
        migration_error(m, res, (long)strlen(head), err);
        if (strcmp(state ? state : "", SQLSTATE_LOCK_NOT_AVAILABLE) == 0)
            ret = 1;
    } else {
        /* COMMIT answered ROLLBACK, or the query ended some other way. */
        rg_err_set(err, RG_EMIGRATION, "%s: not committed (server said %s); rolled back",
                   m->up_path, PQcmdStatus(res));
    }
out:
    rollback(pg);
    PQclear(res);
    free(head);
    free(tail);
    free(sql);
    free(title);
    free(sum);
    free(down);
    free(by);
    return ret;
}

static int apply(void *ctx, const struct rg_apply *a, enum rg_apply_outcome *outcome,
                 int64_t *duration_ms, struct rg_err *err)
{
    struct rg_pg *pg = ctx;
    int64_t backoff = 1000;

    for (int64_t attempt = 0;; attempt++) {
        int rc = apply_once(pg, a, outcome, duration_ms, err);
        if (rc <= 0)
            return rc;
        if (attempt >= pg->opts.lock_retries) {
            rg_err_prefix(err, "gave up after %" PRId64 " tries", attempt + 1);
            return -1;
        }
        /* Queued behind a long transaction: step aside so live traffic is not blocked
         * behind our DDL, then try again. */
        RG_WARN("lock not available within lock_timeout, retrying" RG_F "file=%s" RG_F
                "attempt=%" PRId64 RG_F "retry_in_ms=%" PRId64 RG_F "error=%s",
                a->m->up_name, attempt + 1, backoff, err->msg);
        nap(pg, backoff);
        backoff = backoff * 2 > 30000 ? 30000 : backoff * 2;
    }
}

void rg_pg_store(struct rg_pg *pg, struct rg_store *store)
{
    store->ctx = pg;
    store->read_history = read_history;
    store->ensure_history = ensure_history;
    store->apply = apply;
}
