/* Safe concurrent index builds. A CREATE INDEX CONCURRENTLY that fails (duplicate rows for
 * a unique index, a cancel, a deadlock) leaves its index behind, marked invalid: never
 * used by queries, still maintained by every write, and in the way of the next attempt
 * ("already exists", or silently kept by IF NOT EXISTS). Before a build, such a leftover
 * of the same name is dropped; after it, the index is checked valid, so a build that left
 * it invalid fails the migration rather than passing unnoticed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log/log.h"
#include "mem/mem.h"
#include "pg/internal.h"
#include "source/sql.h"

/* The index's name as an SQL expression of type regclass, resolved as the statement
 * resolves it: in the table's schema when the statement names one, else by search_path
 * (session settings carry over on this connection). NULL when no relation has it. */
static int regclass_of(struct rg_pg *pg, const struct rg_step *s, const struct rg_sql_index *ix,
                       char **out, struct rg_err *err)
{
    char *schema = NULL, *name = NULL;
    int ret = -1;

    *out = NULL;
    if (rg_pg_literal(pg, ix->name, RG_EFILES, s->path, &name, err) < 0 ||
        (ix->schema && rg_pg_literal(pg, ix->schema, RG_EFILES, s->path, &schema, err) < 0))
        goto out;
    *out = schema ? rg_asprintf("to_regclass(format('%%I.%%I', %s, %s))", schema, name)
                  : rg_asprintf("to_regclass(quote_ident(%s))", name);
    ret = 0;
out:
    free(schema);
    free(name);
    return ret;
}

int rg_pg_index_before(struct rg_pg *pg, const struct rg_step *s, const struct rg_sql_index *ix,
                       struct rg_err *err)
{
    char *rel = NULL, *find = NULL, *drop = NULL;
    PGresult *res = NULL;
    int ret = -1;

    if (regclass_of(pg, s, ix, &rel, err) < 0)
        goto out;
    /* An invalid index another session is building right now is not a leftover. */
    find = rg_asprintf("SELECT format('%%I.%%I', n.nspname, c.relname) FROM pg_index i JOIN "
                       "pg_class c ON c.oid = i.indexrelid "
                       "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE i.indexrelid = %s "
                       "AND NOT i.indisvalid AND NOT EXISTS (SELECT FROM "
                       "pg_stat_progress_create_index p WHERE p.index_relid = i.indexrelid)",
                       rel);
    res = rg_pg_exec(pg, find, PGRES_TUPLES_OK, err);
    if (!res) {
        rg_err_prefix(err, "%s: looking for an invalid index %s", s->path, ix->name);
        goto out;
    }
    if (PQntuples(res) == 0) {
        ret = 0;
        goto out;
    }
    RG_WARN("dropping the invalid index an earlier failed build left, before building it again" RG_F
            "file=%s" RG_F "index=%s",
            s->path, PQgetvalue(res, 0, 0));
    drop = rg_asprintf("DROP INDEX CONCURRENTLY IF EXISTS %s", PQgetvalue(res, 0, 0));
    PQclear(res);
    res = rg_pg_exec(pg, drop, PGRES_COMMAND_OK, err);
    if (!res) {
        rg_err_prefix(err, "%s: dropping the invalid index %s left by an earlier build", s->path,
                      ix->name);
        goto out;
    }
    ret = 0;
out:
    PQclear(res);
    free(rel);
    free(find);
    free(drop);
    return ret;
}

int rg_pg_index_after(struct rg_pg *pg, const struct rg_step *s, const struct rg_sql_index *ix,
                      size_t line, const char *outcome, struct rg_err *err)
{
    char *rel = NULL, *check = NULL;
    PGresult *res = NULL;
    int ret = -1;

    if (regclass_of(pg, s, ix, &rel, err) < 0)
        goto out;
    check = rg_asprintf("SELECT i.indisvalid FROM pg_index i WHERE i.indexrelid = %s", rel);
    res = rg_pg_exec(pg, check, PGRES_TUPLES_OK, err);
    if (!res) {
        rg_err_prefix(err, "%s: checking that index %s is valid", s->path, ix->name);
        goto out;
    }
    if (PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), "t") == 0) {
        ret = 0;
        goto out;
    }
    rg_err_set(err, RG_EMIGRATION,
               "%s:%zu: index %s is %s after CREATE INDEX CONCURRENTLY (pg_index.indisvalid): "
               "queries would not use it%s",
               s->path, line, ix->name, PQntuples(res) ? "invalid" : "missing", outcome);
out:
    PQclear(res);
    free(rel);
    free(check);
    return ret;
}
