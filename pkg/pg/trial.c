/* The dry run (`plan`): pending migrations run statement by statement inside one
 * transaction that is always rolled back, and after each statement what it did as the
 * server saw it: the relation locks this backend holds that it did not hold before
 * (pg_locks), the tables and indexes whose storage was replaced (pg_class.relfilenode:
 * a rewrite), the rows affected and the time it took. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock/clock.h"
#include "mem/mem.h"
#include "pg/internal.h"
#include "source/sql.h"

/* Relations of the user's schemas. Locks on pg_catalog's, pg_toast's and
 * information_schema's are the server's bookkeeping (every DDL writes the catalogs, and the
 * plan's own queries read them), not what an operator plans around. */
#define USER_SCHEMA "n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'"

/* Every relation of the user's schemas as the plan began, with its storage: a rewrite
 * replaces the storage of a relation the statement locked, and that relation may be one
 * no earlier statement touched. */
#define RELATIONS_SQL                                                                              \
    "SELECT c.oid, c.relfilenode, c.relkind, format('%I.%I', n.nspname, c.relname) "               \
    "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE " USER_SCHEMA

/* The relation locks this backend holds now, with each relation's storage; a relation
 * dropped in this transaction has no pg_class row left (c is NULL). */
#define LOCKS_SQL                                                                                  \
    "SELECT l.relation, l.mode, c.oid IS NOT NULL, "                                               \
    "CASE WHEN c.oid IS NULL THEN '' ELSE format('%I.%I', n.nspname, c.relname) END, "             \
    "coalesce(c.relfilenode, 0), "                                                                 \
    "coalesce(c.relkind::text, '') FROM pg_locks l LEFT JOIN pg_class c ON c.oid = l.relation "    \
    "LEFT JOIN pg_namespace n ON n.oid = c.relnamespace WHERE l.pid = pg_backend_pid() AND "       \
    "l.locktype = 'relation' AND l.granted AND (c.oid IS NULL OR (" USER_SCHEMA ")) "              \
    "ORDER BY 4, 2"

struct rel {
    int64_t oid, filenode;
    char kind; /* pg_class.relkind */
    bool gone; /* dropped by the plan */
    char *name;
};

struct held {
    int64_t oid;
    char *mode;
};

struct rg_pg_trial {
    struct rel *rels; /* by oid */
    size_t nrels;
    struct held *held; /* the relation locks held after the last statement */
    size_t nheld;
};

static void free_held(struct held *held, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(held[i].mode);
    free(held);
}

void rg_pg_trial_free(struct rg_pg_trial *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->nrels; i++)
        free(t->rels[i].name);
    free(t->rels);
    free_held(t->held, t->nheld);
    free(t);
}

static int by_oid(const void *a, const void *b)
{
    const struct rel *x = a, *y = b;
    return (x->oid > y->oid) - (x->oid < y->oid);
}

static struct rel *find_rel(struct rg_pg_trial *t, int64_t oid)
{
    struct rel key = {.oid = oid};
    return t->nrels ? bsearch(&key, t->rels, t->nrels, sizeof(*t->rels), by_oid) : NULL;
}

/* A relation the plan has not seen before: one of the snapshot's, or one a statement made.
 * find_rel needs them sorted again afterwards (sort_rels). */
static void add_rel(struct rg_pg_trial *t, int64_t oid, int64_t filenode, char kind,
                    const char *name)
{
    t->rels = rg_realloc(t->rels, (t->nrels + 1) * sizeof(*t->rels));
    t->rels[t->nrels++] = (struct rel){oid, filenode, kind, false, rg_strdup(name)};
}

static void sort_rels(struct rg_pg_trial *t)
{
    /* A database with no relation of the user's yet has no array at all. */
    if (t->nrels)
        qsort(t->rels, t->nrels, sizeof(*t->rels), by_oid);
}

static bool was_held(const struct rg_pg_trial *t, int64_t oid, const char *mode)
{
    for (size_t i = 0; i < t->nheld; i++)
        if (t->held[i].oid == oid && strcmp(t->held[i].mode, mode) == 0)
            return true;
    return false;
}

/* A number the server printed for an oid or a relfilenode column; anything else is a bug. */
static int column_int(const PGresult *res, int row, int col, int64_t *v, struct rg_err *err)
{
    if (rg_pg_int(PQgetvalue(res, row, col), 0, INT64_MAX, v) == 0)
        return 0;
    rg_err_set(err, RG_EINTERNAL, "pg_locks/pg_class: \"%s\" is not a number",
               PQgetvalue(res, row, col));
    return -1;
}

int rg_pg_trial_begin(void *ctx, struct rg_err *err)
{
    struct rg_pg *pg = ctx;
    char *begin = rg_asprintf("BEGIN;%s", rg_pg_dead_client_check(pg, true));
    PGresult *res = rg_pg_exec(pg, begin, PGRES_COMMAND_OK, err);
    int ret = -1;

    rg_pg_trial_free(pg->trial);
    pg->trial = rg_calloc(1, sizeof(*pg->trial));
    if (!res)
        goto out;
    PQclear(res);
    res = rg_pg_exec(pg, RELATIONS_SQL, PGRES_TUPLES_OK, err);
    if (!res)
        goto out;
    for (int row = 0; row < PQntuples(res); row++) {
        int64_t oid, filenode;
        if (column_int(res, row, 0, &oid, err) < 0 || column_int(res, row, 1, &filenode, err) < 0)
            goto out;
        add_rel(pg->trial, oid, filenode, PQgetvalue(res, row, 2)[0], PQgetvalue(res, row, 3));
    }
    sort_rels(pg->trial);
    ret = 0;
out:
    if (ret < 0) {
        rg_err_prefix(err, "starting the plan's transaction");
        rg_pg_trial_end(pg);
    }
    PQclear(res);
    free(begin);
    return ret;
}

void rg_pg_trial_end(void *ctx)
{
    struct rg_pg *pg = ctx;

    rg_pg_rollback(pg);
    rg_pg_trial_free(pg->trial);
    pg->trial = NULL;
}

static void add_lock(struct rg_trial_stmt *ts, const char *relation, const char *mode)
{
    /* An index rebuilt under a new oid is locked under its old and its new oid. */
    for (size_t i = 0; i < ts->nlocks; i++)
        if (strcmp(ts->locks[i].relation, relation) == 0 && strcmp(ts->locks[i].mode, mode) == 0)
            return;
    ts->locks = rg_realloc(ts->locks, (ts->nlocks + 1) * sizeof(*ts->locks));
    ts->locks[ts->nlocks++] = (struct rg_trial_lock){rg_strdup(relation), rg_strdup(mode)};
}

/* One lock row (into h, what is held now): new to this statement or not, and whether its
 * relation's storage changed (only a relation locked can have been rewritten: a rewrite
 * holds AccessExclusiveLock to the end of the transaction). */
static int observe_row(struct rg_pg_trial *t, const PGresult *res, int row,
                       struct rg_trial_stmt *ts, struct held *h, struct rg_err *err)
{
    const char *mode = PQgetvalue(res, row, 1), *name = PQgetvalue(res, row, 3);
    bool present = PQgetvalue(res, row, 2)[0] == 't';
    char kind = PQgetvalue(res, row, 5)[0];
    int64_t oid, filenode;
    struct rel *known;

    if (column_int(res, row, 0, &oid, err) < 0 || column_int(res, row, 4, &filenode, err) < 0)
        return -1;
    h->oid = oid;
    h->mode = rg_strdup(mode);
    known = find_rel(t, oid);
    /* A relation gone that the plan never saw in the user's schemas was the server's own:
     * the transient copy a rewrite builds, a toast table. One dropped is named as it was. */
    if (!was_held(t, oid, mode) && (present || known))
        add_lock(ts, present ? name : known->name, mode);
    if (!present) {
        if (known)
            known->gone = true;
        return 0;
    }
    if (!known) {
        add_rel(t, oid, filenode, kind, name);
        sort_rels(t);
        return 0;
    }
    if (strcmp(known->name, name) != 0) {
        /* Renamed: named as it is now from here on. */
        free(known->name);
        known->name = rg_strdup(name);
    }
    if (known->filenode != filenode) {
        known->filenode = filenode;
        if (kind && strchr("rmi", kind)) {
            ts->rewritten = rg_realloc(ts->rewritten, (ts->nrewritten + 1) * sizeof(char *));
            ts->rewritten[ts->nrewritten++] = rg_strdup(name);
        }
    }
    return 0;
}

/* What the statement just run did to locks and storage. */
static int observe(struct rg_pg *pg, struct rg_trial_stmt *ts, struct rg_err *err)
{
    struct rg_pg_trial *t = pg->trial;
    PGresult *res = rg_pg_exec(pg, LOCKS_SQL, PGRES_TUPLES_OK, err);
    struct held *now = NULL;
    int n, ret = -1;

    if (!res) {
        rg_err_prefix(err, "reading the plan's locks (pg_locks)");
        return -1;
    }
    n = PQntuples(res);
    now = rg_calloc((size_t)n, sizeof(*now));
    for (int row = 0; row < n; row++) {
        if (observe_row(t, res, row, ts, &now[row], err) < 0)
            goto out;
    }
    free_held(t->held, t->nheld);
    t->held = now;
    t->nheld = (size_t)n;
    now = NULL;
    ret = 0;
out:
    free_held(now, now ? (size_t)n : 0);
    PQclear(res);
    return ret;
}

/* One statement of s: run, timed, judged, observed. */
static int try_statement(struct rg_pg *pg, const struct rg_step *s, const struct rg_sql_stmt *st,
                         struct rg_trial_stmt *ts, struct rg_err *err)
{
    char *one = rg_strndup(s->sql + st->start, st->end - st->start);
    const char *tuples;
    PGresult *res = NULL;
    bool locked = false;
    int64_t t0;
    int ret = -1;

    if (rg_pg_is_cancelled(pg, err))
        goto out;
    ts->ran = true;
    t0 = rg_now_us();
    res = rg_pg_query(pg, one);
    ts->duration_us = rg_now_us() - t0;
    if (rg_pg_judge(pg, s, res, rg_pg_chars_before(s->sql, st->start), "; the plan was rolled back",
                    &locked, err) < 0) {
        const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        if (err->code == RG_EMIGRATION && state)
            snprintf(ts->sqlstate, sizeof(ts->sqlstate), "%s", state);
        if (locked) {
            /* Exit 12, as a run whose retries ran out: the lock was not got, a later
             * try may get it. */
            err->code = RG_ELOCK;
            rg_err_suffix(err,
                          " (lock_timeout %" PRId64 "ms ran out: another session holds a "
                          "lock this statement needs; a real run would queue behind it too, "
                          "and every query on that table behind the run)",
                          s->lock_timeout_ms);
        }
        goto out;
    }
    tuples = PQcmdTuples(res);
    if (!*tuples || rg_pg_int(tuples, 0, INT64_MAX, &ts->rows) < 0)
        ts->rows = -1;
    ret = observe(pg, ts, err);
out:
    PQclear(res);
    free(one);
    return ret;
}

/* The locks earlier migrations of the plan hold on relations that still exist as this one
 * begins: the same lock taken again does not show in pg_locks, so these are what the plan
 * cannot see it take. */
static void held_before(struct rg_pg_trial *pt, struct rg_trial *t)
{
    t->held = rg_calloc(pt->nheld, sizeof(*t->held));
    for (size_t i = 0; i < pt->nheld; i++) {
        const struct rel *r = find_rel(pt, pt->held[i].oid);
        if (r && !r->gone)
            t->held[t->nheld++] =
                (struct rg_trial_lock){rg_strdup(r->name), rg_strdup(pt->held[i].mode)};
    }
}

int rg_pg_trial_run(void *ctx, const struct rg_step *s, struct rg_trial *t, struct rg_err *err)
{
    struct rg_pg *pg = ctx;
    struct rg_sql_stmt *st = NULL;
    size_t n = rg_sql_statements(s->sql, strlen(s->sql), &st);
    /* Set where the run sets them, before the file's SQL, which may set them itself. */
    char *set = rg_asprintf("SET LOCAL lock_timeout = %" PRId64 ";SET LOCAL statement_timeout = "
                            "%" PRId64,
                            s->lock_timeout_ms, s->statement_timeout_ms);
    PGresult *res = rg_pg_exec(pg, set, PGRES_COMMAND_OK, err);
    int ret = res ? 0 : -1;

    PQclear(res);
    if (ret < 0)
        rg_err_prefix(err, "%s", s->path);
    held_before(pg->trial, t);
    t->stmts = rg_calloc(n, sizeof(*t->stmts));
    for (size_t i = 0; i < n && ret == 0; i++) {
        struct rg_trial_stmt *ts = &t->stmts[t->n++];
        ts->start = st[i].start;
        ts->end = st[i].end;
        ts->line = st[i].line;
        ts->rows = -1;
        ret = try_statement(pg, s, &st[i], ts, err);
    }
    free(set);
    free(st);
    return ret;
}
