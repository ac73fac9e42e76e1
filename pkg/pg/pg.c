#include "pg/internal.h"

#include <errno.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock/clock.h"
#include "mem/mem.h"
#include "log/log.h"

void rg_pg_one_line(char *dst, size_t n, const char *src)
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
    rg_pg_one_line(line, sizeof(line), message);
    RG_DEBUG("server notice" RG_F "message=%s", line);
}

struct rg_pg *rg_pg_new(const struct rg_pg_opts *opts)
{
    struct rg_pg *pg = rg_calloc(1, sizeof(*pg));
    const char *schema = opts->schema ? opts->schema : "public";

    pg->opts = *opts;
    pg->cancel = rg_cancel_new();
    /* The schema name is validated as a plain identifier by the configuration, so
     * quoting it is enough; it is also what the lock key is derived from, so runs that
     * share a history table share the lock and no others do. */
    pg->table = rg_asprintf("\"%s\".rollgate_migrations", schema);
    pg->lock_key = (int64_t)rg_pg_hash(pg->table);
    rg_pg_session_name(opts->identity, pg->session);
    pg->url_key = "database.url";
    if (opts->direct_url && *opts->direct_url) {
        struct rg_pg_opts direct = *opts;
        direct.url = opts->direct_url;
        direct.direct_url = NULL;
        pg->direct = rg_pg_new(&direct);
        pg->direct->url_key = "database.directUrl";
    }
    return pg;
}

void rg_pg_free(struct rg_pg *pg)
{
    if (!pg)
        return;
    if (pg->conn)
        PQfinish(pg->conn);
    if (!pg->cancel_borrowed)
        rg_cancel_free(pg->cancel);
    rg_pg_trial_free(pg->trial);
    rg_pg_free(pg->direct);
    free(pg->table);
    free(pg);
}

void rg_pg_on_event(struct rg_pg *pg,
                    void (*event)(void *ctx, const char *type, const char *reason,
                                  const char *message),
                    void *ctx)
{
    pg->event = event;
    pg->event_ctx = ctx;
}

bool rg_pg_is_cancelled(struct rg_pg *pg, struct rg_err *err)
{
    if (!rg_cancel_fired(pg->cancel))
        return false;
    rg_err_set(err, RG_ESIGNAL, "stopped; the running migration, if any, was rolled back");
    return true;
}

/* Registers the URL's password with the log redactor, and rejects a malformed URL before
 * any attempt: retrying cannot fix it. */
static int check_url(const char *url, const char *key, struct rg_err *err)
{
    PQconninfoOption *opts;
    char *msg = NULL;

    rg_log_redact(url);
    opts = PQconninfoParse(url, &msg);
    if (!opts) {
        char line[256], clean[256];
        /* libpq quotes the URL or a piece of it: redacted whole before it is cut. */
        rg_pg_one_line(line, sizeof(line),
                       rg_log_scrub(clean, sizeof(clean), msg ? msg : "out of memory"));
        rg_err_set(err, RG_ECONFIG, "%s: %s", key, line);
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
    int k = 0, attempt = 0;
    int64_t deadline, backoff = 200;
    const char *url = pg->opts.url && *pg->opts.url ? pg->opts.url : NULL;

    if (url && check_url(url, pg->url_key, err) < 0)
        return -1;
    /* Now rather than part way through the run, when a no-transaction step first needs it. */
    if (pg->direct && check_url(pg->direct->opts.url, pg->direct->url_key, err) < 0)
        return -1;
    rg_log_redact(pg->opts.password);
    if (url) {
        keys[k] = "dbname";
        vals[k++] = url;
    }
    if (pg->opts.password) {
        keys[k] = "password";
        vals[k++] = pg->opts.password;
    }
    /* After the URL, so that they win over the same keys there. Migration files are UTF-8
     * (pkg/source refuses others), so the connection says so: left to a database's own
     * encoding (LATIN1, SQL_ASCII), 'é' would be stored as two other characters. */
    keys[k] = "client_encoding";
    vals[k++] = "UTF8";
    /* Other runs judge whether this one is alive by its application_name (adopt.c). */
    keys[k] = "application_name";
    vals[k++] = pg->session;
    keys[k] = NULL;
    vals[k] = NULL;

    deadline = rg_now_ms() + pg->opts.connect_retry_ms;
    for (;;) {
        char line[640];

        if (rg_pg_is_cancelled(pg, err))
            return -1;
        attempt++;
        pg->conn =
            rg_pg_connect_once(pg, keys, vals, pg->opts.connect_timeout_ms, line, sizeof(line));
        if (pg->conn)
            break;
        if (rg_pg_is_cancelled(pg, err))
            return -1;
        /* libpq's only default CA file is ~/.postgresql/root.crt, and it never falls back
         * to a system store (the scratch image has none anyway): with sslmode=verify-ca or
         * verify-full the operator must name the CA. */
        if (strstr(line, "root certificate file")) {
            size_t used = strlen(line);
            snprintf(line + used, sizeof(line) - used, "%s",
                     "; set sslrootcert=/path/to/ca.crt in the URL (or PGSSLROOTCERT) to the "
                     "CA that signed the server's certificate");
        }
        /* No user given and none to be found (libpq's two wordings): a static binary in an
         * image without /etc/passwd, or a uid with no entry. Waiting cannot fix that. */
        if (strstr(line, "could not look up local user ID") || strstr(line, "local user with ID")) {
            rg_err_set(err, RG_ECONFIG,
                       "database.url: no database user given, and this system cannot name the "
                       "current one (%s); put the user in the URL (postgresql://USER@host/db) "
                       "or set PGUSER",
                       line);
            return -1;
        }
        /* A value libpq cannot use (a port that is not a number, an unknown sslmode): libpq
         * says so before any network I/O, and every retry would say it again. */
        if (strstr(line, "invalid port number") || strstr(line, "for connection option") ||
            (strstr(line, "invalid ") && strstr(line, " value: "))) {
            rg_err_set(err, RG_ECONFIG, "%s: %s", pg->url_key, line);
            return -1;
        }
        if (rg_now_ms() + backoff > deadline) {
            rg_err_set(err, RG_EDATABASE, "could not connect to the database after %d attempts: %s",
                       attempt, line);
            return -1;
        }
        RG_WARN("database not reachable yet, retrying" RG_F "attempt=%d" RG_F "error=%s" RG_F
                "retry_in_ms=%" PRId64,
                attempt, line, backoff);
        rg_pg_nap(pg, backoff);
        backoff = backoff * 2 > 5000 ? 5000 : backoff * 2;
    }
    PQsetNoticeProcessor(pg->conn, ignore_notice, NULL);
    RG_DEBUG("connected" RG_F "attempts=%d" RG_F "server_version=%d", attempt,
             PQserverVersion(pg->conn));
    return 0;
}

void rg_pg_fail(struct rg_pg *pg, const PGresult *res, const char *context, struct rg_err *err)
{
    char line[400];

    if (rg_pg_is_cancelled(pg, err))
        return;
    rg_pg_one_line(line, sizeof(line), res ? PQresultErrorMessage(res) : rg_pg_error(pg));
    /* rollgate's own bookkeeping statements fail only when the server refuses them
     * (rights, timeouts, a lost connection): a database problem, not a bug. */
    if (context)
        rg_err_set(err, rg_pg_fault(pg, res), "%s: %s", context, line);
    else
        rg_err_set(err, rg_pg_fault(pg, res), "%s", line);
}

PGresult *rg_pg_exec(struct rg_pg *pg, const char *sql, ExecStatusType expect, struct rg_err *err)
{
    PGresult *res;

    if (rg_pg_is_cancelled(pg, err))
        return NULL;
    res = rg_pg_query(pg, sql);
    if (res && PQresultStatus(res) == expect)
        return res;
    rg_pg_fail(pg, res, NULL, err);
    PQclear(res);
    return NULL;
}

void rg_pg_rollback(struct rg_pg *pg)
{
    /* Best effort: when the connection is gone the server has rolled back already. */
    if (PQstatus(pg->conn) == CONNECTION_OK && PQtransactionStatus(pg->conn) != PQTRANS_IDLE)
        PQclear(rg_pg_query(pg, "ROLLBACK"));
}

/* The claim is a transaction that writes nothing and keeps no snapshot between statements
 * (read committed), so it stalls nobody's CREATE INDEX CONCURRENTLY; besides the fence it
 * holds only the history table's ACCESS SHARE lock from the count, which only an ALTER
 * TABLE waits for. The server's idle_in_transaction_session_timeout, whatever it is set
 * to, must not end it while the run reads its files. */
static int claim(void *ctx, int64_t rows, bool *held, struct rg_err *err)
{
    struct rg_pg *pg = ctx;
    /* CASE orders the two: the count first, and the lock only when it matches. */
    char *sql =
        rg_asprintf("BEGIN;SET LOCAL idle_in_transaction_session_timeout = 0;"
                    "SELECT CASE WHEN (SELECT count(*) FROM %s WHERE kind = 'schema') = "
                    "%" PRId64 " THEN pg_try_advisory_xact_lock(%" PRId64 ") ELSE false END",
                    pg->table, rows, pg->lock_key);
    PGresult *res = rg_pg_exec(pg, sql, PGRES_TUPLES_OK, err);
    int ret = -1;

    *held = false;
    if (!res) {
        rg_err_prefix(err, "taking the lock on %s", pg->table);
        goto out;
    }
    *held = PQgetvalue(res, 0, 0)[0] == 't';
    ret = 0;
out:
    if (!*held)
        rg_pg_rollback(pg);
    PQclear(res);
    free(sql);
    return ret;
}

static void unclaim(void *ctx)
{
    rg_pg_rollback(ctx);
}

static enum rg_row_state parse_state(const char *s)
{
    if (strcmp(s, "applied") == 0)
        return RG_ROW_APPLIED;
    if (strcmp(s, "running") == 0)
        return RG_ROW_RUNNING;
    return RG_ROW_FAILED;
}

static enum rg_kind parse_kind(const char *s)
{
    if (strcmp(s, "schema") == 0)
        return RG_KIND_SCHEMA;
    return strcmp(s, "repeatable") == 0 ? RG_KIND_REPEATABLE : RG_KIND_DATA;
}

/* One row of the history query below; the numbers are bigint columns, so a value that
 * does not read as one is a bug, never the database's state. */
static int fill_row(struct rg_history_row *r, const PGresult *res, int row, struct rg_err *err)
{
    if (rg_pg_int(PQgetvalue(res, row, 1), INT64_MIN, INT64_MAX, &r->version) < 0 ||
        rg_pg_int(PQgetvalue(res, row, 7), INT64_MIN, INT64_MAX, &r->duration_ms) < 0) {
        rg_err_set(err, RG_EINTERNAL,
                   "history row %d: version \"%s\" or duration \"%s\" is not a number", row,
                   PQgetvalue(res, row, 1), PQgetvalue(res, row, 7));
        return -1;
    }
    r->kind = parse_kind(PQgetvalue(res, row, 0));
    r->title = rg_strdup(PQgetvalue(res, row, 2));
    snprintf(r->checksum, sizeof(r->checksum), "%s", PQgetvalue(res, row, 3));
    r->state = parse_state(PQgetvalue(res, row, 4));
    r->applied_at = rg_strdup(PQgetvalue(res, row, 5));
    r->applied_by = rg_strdup(PQgetvalue(res, row, 6));
    r->has_down = PQgetvalue(res, row, 8)[0] == 't';
    return 0;
}

static int read_history(void *ctx, struct rg_history *h, struct rg_err *err)
{
    struct rg_pg *pg = ctx;
    PGresult *res = NULL;
    char *sql;
    int ret = -1, nrows;

    memset(h, 0, sizeof(*h));
    /* One round trip on the path every pod start takes, and no error in the server's log
     * when the table is not there yet (a query naming a missing table fails, and the
     * server logs that): the table is looked up first, in the same query, and read only
     * when it exists, through a cursor that the query then fetches. No rows: no table; a
     * row of NULLs: an empty one. Schema rows come first, by version; then the scripts by
     * kind and name. */
    sql = rg_asprintf("DO $rg$DECLARE c refcursor := 'rollgate_history'; BEGIN "
                      "IF to_regclass('%s') IS NULL THEN OPEN c FOR SELECT WHERE false; "
                      "ELSE OPEN c FOR SELECT h.kind, h.version, h.title, h.checksum, h.state, "
                      "to_char(h.applied_at AT TIME ZONE 'UTC', "
                      "'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), h.applied_by, h.duration_ms, "
                      "h.down_sql IS NOT NULL FROM (VALUES (0)) AS present LEFT JOIN %s AS h "
                      "ON true ORDER BY h.kind <> 'schema', h.kind, h.version, h.title; "
                      "END IF; END$rg$;"
                      "FETCH ALL FROM rollgate_history",
                      pg->table, pg->table);
    res = rg_pg_exec(pg, sql, PGRES_TUPLES_OK, err);
    if (!res) {
        rg_err_prefix(err, "reading %s", pg->table);
        goto out;
    }
    nrows = PQntuples(res);
    h->exists = nrows > 0;
    h->rows = rg_calloc((size_t)nrows, sizeof(*h->rows));
    h->scripts = rg_calloc((size_t)nrows, sizeof(*h->scripts));
    for (int row = 0; row < nrows; row++) {
        struct rg_history_row *r;
        if (PQgetisnull(res, row, 0))
            continue;
        r = strcmp(PQgetvalue(res, row, 0), "schema") == 0 ? &h->rows[h->n++]
                                                           : &h->scripts[h->nscripts++];
        if (fill_row(r, res, row, err) < 0)
            goto out;
    }
    ret = 0;
out:
    if (ret < 0) {
        rg_pg_rollback(pg);
        rg_history_free(h);
    }
    PQclear(res);
    free(sql);
    return ret;
}

static int ask_digest(struct rg_pg *pg, struct rg_history_digest *d, struct rg_err *err)
{
    PGresult *res = NULL;
    char *sql;
    int ret = -1;

    memset(d, 0, sizeof(*d));
    /* As read_history: a missing table is no row and no error in the server's log. The
     * text summed is rg_source_digest's ("VERSION CHECKSUM\n" by version). The rows come
     * in version order from the subquery (an index scan where the history's index on
     * schema versions is, no sort) and only the three columns the sum needs are read:
     * half the server's time of an ORDER BY inside the aggregate over 10,000 rows. Were
     * the rows ever summed in another order, the digests would differ and the start take
     * the full path; equal texts always mean the same rows. textsend hashes the text's
     * bytes in the client encoding (UTF8, set on every connection), the same bytes as
     * rg_source_digest's; a cast to bytea would parse backslashes in a checksum edited by
     * hand as escapes and fail. */
    sql = rg_asprintf(
        "DO $rg$DECLARE c refcursor := 'rollgate_digest'; BEGIN "
        "IF to_regclass('%s') IS NULL THEN OPEN c FOR SELECT WHERE false; "
        "ELSE OPEN c FOR SELECT count(*), coalesce(bool_and(state = 'applied'), "
        "true), encode(sha256(textsend(coalesce(string_agg(version || ' ' || checksum || "
        "E'\\n', ''), ''))), 'hex') FROM (SELECT version, checksum, state "
        "FROM %s WHERE kind = 'schema' ORDER BY version) h; END IF; END$rg$;"
        "FETCH ALL FROM rollgate_digest",
        pg->table, pg->table);
    res = rg_pg_exec(pg, sql, PGRES_TUPLES_OK, err);
    if (!res) {
        rg_err_prefix(err, "reading %s", pg->table);
        goto out;
    }
    if (PQntuples(res) == 1) {
        if (rg_pg_int(PQgetvalue(res, 0, 0), 0, INT64_MAX, &d->rows) < 0) {
            rg_err_set(err, RG_EINTERNAL, "history digest: count \"%s\" is not a number",
                       PQgetvalue(res, 0, 0));
            goto out;
        }
        d->exists = true;
        d->all_applied = PQgetvalue(res, 0, 1)[0] == 't';
        snprintf(d->sha256, sizeof(d->sha256), "%s", PQgetvalue(res, 0, 2));
    }
    ret = 0;
out:
    if (ret < 0)
        rg_pg_rollback(pg);
    PQclear(res);
    free(sql);
    return ret;
}

void rg_pg_digest_ahead(struct rg_pg *pg)
{
    pg->digest_rc = ask_digest(pg, &pg->digest, &pg->digest_err);
    pg->digest_kept = true;
}

static int digest_history(void *ctx, struct rg_history_digest *d, struct rg_err *err)
{
    struct rg_pg *pg = ctx;

    if (!pg->digest_kept)
        return ask_digest(pg, d, err);
    pg->digest_kept = false;
    *d = pg->digest;
    if (pg->digest_rc < 0)
        *err = pg->digest_err;
    return pg->digest_rc;
}

char *rg_pg_history_ddl(struct rg_pg *pg)
{
    const char *schema = pg->opts.schema ? pg->opts.schema : "public";

    /* The schema is created only when missing: CREATE SCHEMA IF NOT EXISTS would need the
     * CREATE right on the database even when the schema exists. */
    return rg_asprintf(
        "DO $rg$ BEGIN IF to_regnamespace('\"%s\"') IS NULL THEN "
        "CREATE SCHEMA \"%s\"; END IF; END $rg$;"
        "CREATE TABLE IF NOT EXISTS %s ("
        " kind text NOT NULL DEFAULT 'schema' CHECK (kind IN ('schema', 'data', 'repeatable')),"
        " version bigint NOT NULL,"
        " title text NOT NULL,"
        " checksum text NOT NULL,"
        " down_sql text,"
        " up_sql text,"
        " applied_at timestamptz NOT NULL DEFAULT now(),"
        " applied_by text NOT NULL,"
        " duration_ms bigint NOT NULL DEFAULT 0,"
        " rollgate_version text NOT NULL,"
        " state text NOT NULL DEFAULT 'applied' CHECK (state IN ('running', 'applied', 'failed')),"
        " PRIMARY KEY (kind, version, title));"
        "CREATE UNIQUE INDEX IF NOT EXISTS rollgate_migrations_schema_version"
        " ON %s (version) WHERE kind = 'schema';",
        schema, schema, pg->table, pg->table);
}

static int ensure_history(void *ctx, struct rg_err *err)
{
    struct rg_pg *pg = ctx;
    char *ddl = rg_pg_history_ddl(pg);
    /* Under the advisory lock, so that racing first runs do not trip over each other's
     * CREATE TABLE; but only while the table is missing: a racer that found none a moment
     * ago must not hold the fence once another run made it (the one that claimed it, about
     * to apply, would meet it held at its first step and step aside). */
    char *sql = rg_asprintf("BEGIN;%sSELECT pg_advisory_xact_lock(%" PRId64
                            ") WHERE to_regclass('%s') IS NULL;%sCOMMIT",
                            rg_pg_dead_client_check(pg, true), pg->lock_key, pg->table, ddl);
    PGresult *res = rg_pg_exec(pg, sql, PGRES_COMMAND_OK, err);

    free(ddl);
    free(sql);
    if (!res) {
        rg_pg_rollback(pg);
        rg_err_prefix(err, "creating %s", pg->table);
        return -1;
    }
    PQclear(res);
    RG_DEBUG("history table ready" RG_F "table=%s", pg->table);
    return 0;
}

int rg_pg_literal(struct rg_pg *pg, const char *s, enum rg_code code, const char *what, char **out,
                  struct rg_err *err)
{
    char *q;

    *out = NULL;
    if (!s) {
        *out = rg_strdup("NULL");
        return 0;
    }
    q = PQescapeLiteral(pg->conn, s, strlen(s));
    if (!q) {
        char line[200];
        rg_pg_one_line(line, sizeof(line), rg_pg_error(pg));
        rg_err_set(err, code, "%s: cannot be sent to the database: %s", what, line);
        return -1;
    }
    *out = rg_strdup(q);
    PQfreemem(q);
    return 0;
}

enum rg_code rg_pg_fault(struct rg_pg *pg, const PGresult *res)
{
    /* SQLSTATE classes a retry may outlast: connection exception, transaction rollback
     * (serialization failure, deadlock), insufficient resources, object not in
     * prerequisite state (lock not available), operator intervention (cancel, shutdown),
     * system error. */
    static const char *const transient[] = {"08", "40", "53", "55", "57", "58"};
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;

    if (!state || PQstatus(pg->conn) != CONNECTION_OK)
        return RG_EDATABASE;
    for (size_t i = 0; i < sizeof(transient) / sizeof(transient[0]); i++)
        if (strncmp(state, transient[i], 2) == 0)
            return RG_EDATABASE;
    /* A read-only transaction: a standby, which a failover may yet promote or replace. */
    return strcmp(state, "25006") == 0 ? RG_EDATABASE : RG_ECONFIG;
}

bool rg_pg_state_is(const PGresult *res, const char *state)
{
    const char *got = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    return got && strcmp(got, state) == 0;
}

void rg_pg_store(struct rg_pg *pg, struct rg_store *store)
{
    store->ctx = pg;
    store->read_history = read_history;
    store->ensure_history = ensure_history;
    store->claim = claim;
    store->unclaim = unclaim;
    store->run = rg_pg_run_step;
    store->read_down = rg_pg_read_down;
    store->read_up = rg_pg_read_up;
    store->record_checksum = rg_pg_record_checksum;
    store->wait_running = rg_pg_wait_running;
    store->run_alive = rg_pg_run_alive;
    store->read_legacy = rg_pg_read_legacy;
    store->baseline = rg_pg_baseline;
    store->repair = rg_pg_repair;
    store->trial_begin = rg_pg_trial_begin;
    store->trial_run = rg_pg_trial_run;
    store->trial_end = rg_pg_trial_end;
    store->digest_history = digest_history;
}
