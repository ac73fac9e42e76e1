/* The history beyond applying: stored down SQL, waiting on another run's no-transaction
 * migration, adopting a database (golang-migrate's table, a baseline) and repair. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err/clock.h"
#include "err/mem.h"
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

int rg_pg_wait_running(void *ctx, int64_t version, int64_t timeout_ms, struct rg_err *err)
{
    struct rg_pg *pg = ctx;
    char *q = rg_asprintf("SELECT state FROM %s WHERE kind = 'schema' AND version = %" PRId64,
                          pg->table, version);
    int64_t deadline = rg_now_ms() + timeout_ms;
    int ret = -1;

    for (;;) {
        char *state = NULL;
        bool running;

        if (query_value(pg, q, &state, err) < 0)
            break;
        running = state && strcmp(state, "running") == 0;
        free(state);
        if (!running) {
            ret = 0;
            break;
        }
        if (rg_now_ms() >= deadline) {
            rg_err_set(err, RG_ECONFLICT,
                       "version %" PRId64 " is still marked running after %" PRId64
                       "s: if the run that started it died, check what it did, undo it by "
                       "hand, then run `rollgate repair --version %" PRId64 "`",
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
    PGresult *res;

    memset(legacy, 0, sizeof(*legacy));
    if (rg_pg_is_cancelled(pg, err))
        return -1;
    /* golang-migrate keeps one row, in the schema its connection's search_path names. */
    res = rg_pg_query(pg, "SELECT version, dirty FROM schema_migrations "
                          "ORDER BY version DESC LIMIT 1");
    if (rg_pg_state_is(res, SQLSTATE_UNDEFINED_TABLE)) {
        PQclear(res);
        return 0;
    }
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        rg_pg_fail(pg, res, "reading golang-migrate's schema_migrations", err);
        PQclear(res);
        return -1;
    }
    if (PQntuples(res) > 0) {
        legacy->found = true;
        legacy->version = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
        legacy->dirty = PQgetvalue(res, 0, 1)[0] == 't';
    }
    PQclear(res);
    return 0;
}

int rg_pg_baseline(void *ctx, const struct rg_migration *const *ms, size_t n,
                   const char *applied_by, bool adopting, struct rg_err *err)
{
    struct rg_pg *pg = ctx;
    char *by = rg_pg_literal(pg, applied_by ? applied_by : "");
    char *ddl = rg_pg_history_ddl(pg);
    size_t cap, len;
    char *sql;
    PGresult *res;
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
    for (size_t i = 0; i < n; i++) {
        char *title = rg_pg_literal(pg, ms[i]->title);
        char *down = ms[i]->down_sql ? rg_pg_literal(pg, ms[i]->down_sql) : rg_strdup("NULL");
        char *row =
            rg_asprintf("INSERT INTO %s (kind, version, title, checksum, down_sql, "
                        "applied_by, duration_ms, rollgate_version, state) VALUES "
                        "('schema', %" PRId64 ", %s, '%s', %s, %s, 0, '%s', 'applied');",
                        pg->table, ms[i]->version, title, ms[i]->checksum, down, by, RG_VERSION);
        size_t rl = strlen(row);
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
