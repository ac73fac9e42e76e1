/* The history beyond applying: stored down SQL, waiting on another run's no-transaction
 * migration, adopting a database (golang-migrate's table, a baseline) and repair. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock/clock.h"
#include "mem/mem.h"
#include "log/log.h"
#include "pg/internal.h"

/* The first value of a one-row query, copied; NULL for no row or SQL NULL. */
static int query_value(struct rg_pg *pg, const char *sql, char **value, struct rg_err *err)
{
    PGresult *res = rg_pg_exec(pg, sql, PGRES_TUPLES_OK, err);

    *value = NULL;
    if (!res)
        return -1;
    if (PQntuples(res) > 0 && !PQgetisnull(res, 0, 0))
        *value = rg_strdup(PQgetvalue(res, 0, 0));
    PQclear(res);
    return 0;
}

int rg_pg_read_down(void *ctx, int64_t version, char **sql, struct rg_err *err)
{
    struct rg_pg *pg = ctx;
    char *q = rg_asprintf("SELECT down_sql FROM %s WHERE kind = 'schema' AND version = %" PRId64,
                          pg->table, version);
    int ret = query_value(pg, q, sql, err);
    free(q);
    return ret;
}

/* What to do about a no-transaction migration that stopped part way. */
#define STOPPED_HINT                                                                               \
    "check what it did first and undo it by hand (an invalid index left by its CREATE INDEX "      \
    "CONCURRENTLY is dropped and built again by the next migrate), then run `rollgate repair "     \
    "--version %" PRId64 "`"

/* The SQL condition "the run named applied_by has a session in this database": its
 * sessions carry its identity as application_name (pg.h). This run's own session does
 * not count, since a run restarted in place (same identity) finds its predecessor's
 * mark. */
static int has_session(struct rg_pg *pg, const char *applied_by, char **cond, struct rg_err *err)
{
    char name[RG_PG_SESSION_NAME_MAX];
    char *app = NULL;

    *cond = NULL;
    rg_pg_session_name(applied_by, name);
    if (rg_pg_literal(pg, name, RG_EINTERNAL, "application_name", &app, err) < 0)
        return -1;
    /* Nor does this run's direct connection (database.directUrl), if open. */
    *cond = rg_asprintf("EXISTS (SELECT 1 FROM pg_stat_activity WHERE application_name = %s AND "
                        "datname = current_database() AND pid <> pg_backend_pid() AND pid <> %d)",
                        app, pg->direct && pg->direct->conn ? PQbackendPID(pg->direct->conn) : 0);
    free(app);
    return 0;
}

int rg_pg_run_alive(void *ctx, const char *applied_by, bool *alive, struct rg_err *err)
{
    struct rg_pg *pg = ctx;
    char *cond = NULL, *sql = NULL, *value = NULL;
    int ret = -1;

    *alive = false;
    if (has_session(pg, applied_by, &cond, err) == 0) {
        sql = rg_asprintf("SELECT %s", cond);
        ret = query_value(pg, sql, &value, err);
        *alive = ret == 0 && value && strcmp(value, "t") == 0;
    }
    free(value);
    free(cond);
    free(sql);
    return ret;
}

/* Marks version's running row failed when the run that wrote it (applied_by) has no
 * session left: it died part way, and waiting cannot bring it back. One statement, so
 * that the judgement and the mark agree. *dead: whether it was marked. */
static int judge_owner(struct rg_pg *pg, int64_t version, const char *applied_by, bool *dead,
                       struct rg_err *err)
{
    char *by = NULL, *cond = NULL, *sql = NULL;
    PGresult *res = NULL;
    int ret = -1;

    *dead = false;
    if (rg_pg_literal(pg, applied_by, RG_EINTERNAL, "applied_by", &by, err) < 0 ||
        has_session(pg, applied_by, &cond, err) < 0)
        goto out;
    sql = rg_asprintf("UPDATE %s SET state = 'failed' WHERE kind = 'schema' AND version = %" PRId64
                      " AND state = 'running' AND applied_by = %s AND NOT %s",
                      pg->table, version, by, cond);
    res = rg_pg_exec(pg, sql, PGRES_COMMAND_OK, err);
    if (!res)
        goto out;
    *dead = strcmp(PQcmdTuples(res), "1") == 0;
    ret = 0;
out:
    PQclear(res);
    free(sql);
    free(cond);
    free(by);
    return ret;
}

int rg_pg_wait_running(void *ctx, int64_t version, int64_t timeout_ms, struct rg_err *err)
{
    struct rg_pg *pg = ctx;
    char *q = rg_asprintf("SELECT applied_by FROM %s WHERE kind = 'schema' AND version = %" PRId64
                          " AND state = 'running'",
                          pg->table, version);
    int64_t deadline = rg_now_ms() + timeout_ms;
    int ret = -1;

    for (int round = 0;; round++) {
        char *owner = NULL;
        bool dead = false;

        if (query_value(pg, q, &owner, err) < 0)
            break;
        if (!owner) {
            ret = 0;
            break;
        }
        if (judge_owner(pg, version, owner, &dead, err) < 0) {
            free(owner);
            break;
        }
        if (dead) {
            rg_err_set(err, RG_ECONFLICT,
                       "version %" PRId64 " stopped part way through a no-transaction "
                       "migration: the run that marked it running has no session in the "
                       "database any more, so it is now marked failed; " STOPPED_HINT
                       " (that run: %s)",
                       version, version, owner);
            free(owner);
            break;
        }
        if (round == 0)
            RG_INFO("the run that marked it running is still connected; waiting for it" RG_F
                    "version=%" PRId64 RG_F "owner=%s" RG_F "wait_timeout_ms=%" PRId64,
                    version, owner, timeout_ms);
        free(owner);
        if (rg_now_ms() >= deadline) {
            rg_err_set(err, RG_ECONFLICT,
                       "version %" PRId64 " is still marked running after %" PRId64
                       "s, by a run whose session is still connected: if that run is stuck, "
                       "stop it, then " STOPPED_HINT,
                       version, timeout_ms / 1000, version);
            break;
        }
        rg_pg_nap(pg, 1000);
        if (rg_pg_is_cancelled(pg, err))
            break;
    }
    free(q);
    return ret;
}

int rg_pg_read_legacy(void *ctx, struct rg_legacy *legacy, struct rg_err *err)
{
    struct rg_pg *pg = ctx;
    PGresult *res = NULL;
    char *sql = NULL;
    int ret = -1;

    memset(legacy, 0, sizeof(*legacy));
    /* golang-migrate keeps one row, in the schema its connection's search_path names. The
     * table is looked up rather than read blind (a missing table would be an error in the
     * server's log), and recognised by golang-migrate's columns: other tools (dbmate,
     * Rails) name theirs schema_migrations too. */
    res = rg_pg_exec(pg,
                     "SELECT t::text, EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = t AND "
                     "attname = 'version' AND atttypid = 'int8'::regtype AND NOT attisdropped) "
                     "AND EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = t AND attname = "
                     "'dirty' AND atttypid = 'bool'::regtype AND NOT attisdropped) FROM "
                     "to_regclass('schema_migrations') AS t WHERE t IS NOT NULL",
                     PGRES_TUPLES_OK, err);
    if (!res)
        goto out;
    if (PQntuples(res) == 0) {
        ret = 0;
        goto out;
    }
    if (PQgetvalue(res, 0, 1)[0] != 't') {
        RG_WARN("a schema_migrations table is there, but not golang-migrate's (it has no "
                "version bigint and dirty boolean columns): leaving it alone, nothing is "
                "adopted from it" RG_F "table=%s",
                PQgetvalue(res, 0, 0));
        ret = 0;
        goto out;
    }
    sql = rg_asprintf("SELECT version, dirty FROM %s ORDER BY version DESC LIMIT 1",
                      PQgetvalue(res, 0, 0));
    PQclear(res);
    res = rg_pg_exec(pg, sql, PGRES_TUPLES_OK, err);
    if (!res)
        goto out;
    if (PQntuples(res) > 0) {
        if (rg_pg_int(PQgetvalue(res, 0, 0), INT64_MIN, INT64_MAX, &legacy->version) < 0) {
            rg_err_set(err, RG_EINTERNAL, "version \"%s\" is not a number", PQgetvalue(res, 0, 0));
            goto out;
        }
        legacy->found = true;
        legacy->dirty = PQgetvalue(res, 0, 1)[0] == 't';
    }
    ret = 0;
out:
    if (ret < 0)
        rg_err_prefix(err, "reading golang-migrate's schema_migrations");
    PQclear(res);
    free(sql);
    return ret;
}

int rg_pg_baseline(void *ctx, const struct rg_migration *const *ms, size_t n,
                   const char *applied_by, bool adopting, struct rg_err *err)
{
    struct rg_pg *pg = ctx;
    char *by = NULL, *ddl = rg_pg_history_ddl(pg);
    size_t cap, len;
    char *sql;
    PGresult *res = NULL;
    int ret = -1;

    /* The table and its rows appear in one transaction, so no racing run can find the
     * table without the rows and start from version 0. */
    sql = rg_asprintf("BEGIN;%sSELECT pg_advisory_xact_lock(%" PRId64 ");%s"
                      "DO $rg$BEGIN IF EXISTS (SELECT 1 FROM %s WHERE kind = 'schema') "
                      "THEN RAISE EXCEPTION 'rollgate' USING ERRCODE = '" SQLSTATE_HAS_HISTORY
                      "'; END IF; END$rg$;",
                      rg_pg_dead_client_check(pg, true), pg->lock_key, ddl, pg->table);
    len = strlen(sql);
    cap = len + 1;
    if (rg_pg_literal(pg, applied_by ? applied_by : "", RG_ECONFIG, "lease.identity", &by, err) < 0)
        goto out;
    for (size_t i = 0; i < n; i++) {
        char *title = NULL, *down = NULL, *row;
        size_t rl;

        if (rg_pg_literal(pg, ms[i]->title, RG_EFILES, ms[i]->up_path, &title, err) < 0 ||
            rg_pg_literal(pg, ms[i]->down_sql, RG_EFILES, ms[i]->down_path, &down, err) < 0) {
            free(title);
            goto out;
        }
        row = rg_asprintf("INSERT INTO %s (kind, version, title, checksum, down_sql, "
                          "applied_by, duration_ms, rollgate_version, state) VALUES "
                          "('schema', %" PRId64 ", %s, '%s', %s, %s, 0, '%s', 'applied');",
                          pg->table, ms[i]->version, title, ms[i]->checksum, down, by, RG_VERSION);
        rl = strlen(row);
        if (len + rl + 16 > cap) {
            cap = (len + rl + 16) * 2;
            sql = rg_realloc(sql, cap);
        }
        memcpy(sql + len, row, rl + 1);
        len += rl;
        free(title);
        free(down);
        free(row);
    }
    memcpy(sql + len, "COMMIT", 7);
    if (rg_pg_is_cancelled(pg, err))
        goto out;
    res = rg_pg_query(pg, sql);
    if (rg_pg_state_is(res, SQLSTATE_HAS_HISTORY) && adopting) {
        /* Another run adopted the same history first. */
        ret = 0;
    } else if (rg_pg_state_is(res, SQLSTATE_HAS_HISTORY)) {
        rg_err_set(err, RG_ECONFLICT,
                   "the history already records applied migrations; baseline only adopts a "
                   "database rollgate has not run on");
    } else if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        rg_pg_fail(pg, res, "recording the baseline", err);
    } else {
        ret = 0;
    }
out:
    rg_pg_rollback(pg);
    PQclear(res);
    free(sql);
    free(by);
    free(ddl);
    return ret;
}

int rg_pg_repair(void *ctx, int64_t version, size_t *cleared, struct rg_err *err)
{
    struct rg_pg *pg = ctx;
    char only[64] = "";
    char *sql;
    PGresult *res;

    /* A running mark may belong to a run still under way: only an operator who names the
     * version (knowing that run is gone) clears one. */
    if (version)
        snprintf(only, sizeof(only), "state IN ('failed', 'running') AND version = %" PRId64,
                 version);
    else
        snprintf(only, sizeof(only), "state = 'failed'");
    sql = rg_asprintf("DELETE FROM %s WHERE kind = 'schema' AND %s RETURNING version", pg->table,
                      only);
    res = rg_pg_exec(pg, sql, PGRES_TUPLES_OK, err);
    free(sql);
    if (!res)
        return -1;
    *cleared = (size_t)PQntuples(res);
    for (int i = 0; i < PQntuples(res); i++)
        RG_INFO("cleared the failed mark; the migration runs again on the next migrate" RG_F
                "version=%s",
                PQgetvalue(res, i, 0));
    PQclear(res);
    return 0;
}
