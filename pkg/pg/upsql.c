/* The up SQL kept with each history row (column up_sql), so that drift can be explained
 * (a diff against what ran) and told apart from an edit of comments or white space. A
 * history table made before rollgate kept it gains the column when a run first has
 * something to record; its older rows stay without. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log/log.h"
#include "mem/mem.h"
#include "pg/internal.h"

int rg_pg_upsql_column(struct rg_pg *pg, struct rg_err *err)
{
    /* Looked up first, so that a table that has it takes no lock; an older one is altered
     * in a short transaction with a short lock_timeout: every run's read of the history
     * queues behind an ALTER TABLE that waits. IF NOT EXISTS settles a race of two runs. */
    char *sql = rg_asprintf(
        "BEGIN;SET LOCAL lock_timeout = '2s';"
        "DO $rg$BEGIN IF NOT EXISTS (SELECT FROM pg_attribute WHERE attrelid = '%s'::regclass "
        "AND attname = 'up_sql' AND NOT attisdropped) THEN ALTER TABLE %s ADD COLUMN IF NOT "
        "EXISTS up_sql text; END IF; END$rg$;COMMIT",
        pg->table, pg->table);
    PGresult *res;

    if (pg->upsql != RG_PG_UPSQL_UNKNOWN)
        goto out;
    res = rg_pg_exec(pg, sql, PGRES_COMMAND_OK, err);
    if (res) {
        pg->upsql = RG_PG_UPSQL_YES;
        PQclear(res);
        goto out;
    }
    rg_pg_rollback(pg);
    if (err->code == RG_ESIGNAL)
        goto out;
    /* Not worth failing a run for: its rows are written as before, without the SQL. */
    RG_WARN("could not add the column up_sql to the history table; rows are recorded without "
            "their up SQL, so drift cannot be explained with a diff" RG_F "table=%s" RG_F
            "error=%s",
            pg->table, err->msg);
    rg_err_clear(err);
    pg->upsql = RG_PG_UPSQL_NO;
out:
    free(sql);
    return err->code == RG_ESIGNAL ? -1 : 0;
}

int rg_pg_read_up(void *ctx, int64_t version, char **sql, struct rg_err *err)
{
    struct rg_pg *pg = ctx;
    /* Through the row as JSON: a table without the column yet reads NULL, not an error. */
    char *q = rg_asprintf("SELECT to_jsonb(h) ->> 'up_sql' FROM %s AS h WHERE kind = 'schema' "
                          "AND version = %" PRId64,
                          pg->table, version);
    PGresult *res = rg_pg_exec(pg, q, PGRES_TUPLES_OK, err);

    *sql = NULL;
    free(q);
    if (!res) {
        rg_err_prefix(err, "reading the up SQL of version %" PRId64 " from %s", version, pg->table);
        return -1;
    }
    if (PQntuples(res) > 0 && !PQgetisnull(res, 0, 0))
        *sql = rg_strdup(PQgetvalue(res, 0, 0));
    PQclear(res);
    return 0;
}

int rg_pg_record_checksum(void *ctx, int64_t version, const char *old, const char *checksum,
                          const char *up_sql, bool *updated, struct rg_err *err)
{
    struct rg_pg *pg = ctx;
    char *q_old = NULL, *q_sum = NULL, *q_up = NULL, *sql = NULL;
    PGresult *res = NULL;
    int ret = -1;

    *updated = false;
    if (rg_pg_upsql_column(pg, err) < 0)
        goto out;
    if (pg->upsql != RG_PG_UPSQL_YES) {
        rg_err_set(err, RG_ECONFIG,
                   "%s has no column up_sql and it could not be added (see the warning above): "
                   "add it as the table's owner (ALTER TABLE %s ADD COLUMN up_sql text)",
                   pg->table, pg->table);
        goto out;
    }
    if (rg_pg_literal(pg, old, RG_EINTERNAL, "checksum", &q_old, err) < 0 ||
        rg_pg_literal(pg, checksum, RG_EINTERNAL, "checksum", &q_sum, err) < 0 ||
        rg_pg_literal(pg, up_sql, RG_EFILES, "up SQL", &q_up, err) < 0)
        goto out;
    /* Only the row as it was judged: a run that changed it meanwhile wins. */
    sql = rg_asprintf("UPDATE %s SET checksum = %s, up_sql = %s WHERE kind = 'schema' AND "
                      "version = %" PRId64 " AND state = 'applied' AND checksum = %s",
                      pg->table, q_sum, q_up, version, q_old);
    res = rg_pg_exec(pg, sql, PGRES_COMMAND_OK, err);
    if (!res) {
        rg_err_prefix(err, "recording the checksum of version %" PRId64, version);
        goto out;
    }
    *updated = strcmp(PQcmdTuples(res), "1") == 0;
    ret = 0;
out:
    PQclear(res);
    free(q_old);
    free(q_sum);
    free(q_up);
    free(sql);
    return ret;
}
