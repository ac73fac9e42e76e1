/* `rollgate plan`'s dry run: the pending migrations tried in the store's one transaction,
 * which is always rolled back, with what each statement locked and rewrote. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine.h"
#include "engine/run.h"
#include "log/log.h"
#include "mem/mem.h"
#include "source/lint.h"
#include "source/sql.h"

static void free_locks(struct rg_trial_lock *locks, size_t n)
{
    for (size_t k = 0; k < n; k++) {
        free(locks[k].relation);
        free(locks[k].mode);
    }
    free(locks);
}

void rg_trial_free(struct rg_trial *t)
{
    if (!t)
        return;
    free_locks(t->held, t->nheld);
    for (size_t i = 0; i < t->n; i++) {
        struct rg_trial_stmt *st = &t->stmts[i];
        free_locks(st->locks, st->nlocks);
        for (size_t k = 0; k < st->nrewritten; k++)
            free(st->rewritten[k]);
        free(st->rewritten);
    }
    free(t->stmts);
    memset(t, 0, sizeof(*t));
}

void rg_dry_run_free(struct rg_dry_run *d)
{
    if (!d)
        return;
    for (size_t i = 0; i < d->n; i++) {
        rg_trial_free(&d->ms[i].trial);
        rg_lint_free(&d->ms[i].lint);
    }
    free(d->ms);
    memset(d, 0, sizeof(*d));
}

/* A no-transaction migration's statements, listed, not run. */
static void list_statements(const struct rg_step *s, struct rg_trial *t)
{
    struct rg_sql_stmt *st = NULL;

    t->n = rg_sql_statements(s->sql, strlen(s->sql), &st);
    t->stmts = rg_calloc(t->n, sizeof(*t->stmts));
    for (size_t i = 0; i < t->n; i++) {
        t->stmts[i].start = st[i].start;
        t->stmts[i].end = st[i].end;
        t->stmts[i].line = st[i].line;
        t->stmts[i].rows = -1;
    }
    free(st);
}

/* Tries each step in the store's one transaction, which trial_end rolls back whatever
 * happened. */
static int try_steps(const struct rg_store *store, struct run *r, struct rg_dry_run *d,
                     struct rg_err *err)
{
    bool open = false;
    int ret = -1;

    for (size_t i = 0; i < r->n; i++) {
        struct rg_step *s = &r->steps[i];
        struct rg_dry_migration *m = &d->ms[d->n++];

        rg_engine_set_timeouts(s, r->opts);
        m->version = s->version;
        m->title = s->title;
        m->path = s->path;
        m->sql = s->sql;
        m->no_transaction = s->directives->no_transaction;
        m->lock_timeout_ms = s->lock_timeout_ms;
        m->statement_timeout_ms = s->statement_timeout_ms;
        rg_lint_sql(s->sql, strlen(s->sql), s->directives, &m->lint);
        if (m->no_transaction) {
            list_statements(s, &m->trial);
            continue;
        }
        if (!open && store->trial_begin(store->ctx, err) < 0)
            goto out;
        open = true;
        RG_INFO("trying migration" RG_F "version=%" PRId64 RG_F "title=%s", s->version, s->title);
        if (store->trial_run(store->ctx, s, &m->trial, err) < 0)
            goto out;
    }
    ret = 0;
out:
    if (open)
        store->trial_end(store->ctx);
    return ret;
}

/* Where migrate would first adopt golang-migrate's version, the plan starts from it
 * (adopting would write the history, which a plan never does). */
static int plan_from_legacy(const struct rg_store *store, struct rg_plan *plan, struct rg_err *err)
{
    struct rg_legacy legacy;

    if (rg_engine_read_legacy(store, &legacy, err) < 0)
        return -1;
    if (!legacy.found)
        return 0;
    RG_INFO("golang-migrate's schema_migrations is there and rollgate's history is not: "
            "planning from its version, as migrate would adopt it" RG_F "version=%" PRId64,
            legacy.version);
    for (size_t k = 0; k < plan->n; k++) {
        if (plan->items[k].version > legacy.version)
            continue;
        plan->items[k].state = RG_ITEM_APPLIED;
        plan->pending--;
    }
    plan->current = legacy.version;
    return 0;
}

int rg_engine_dry_run(const struct rg_store *store, struct rg_source *src,
                      const struct rg_migrate_opts *opts, struct rg_dry_run *d, struct rg_err *err)
{
    struct rg_history h = {0};
    struct rg_plan plan = {0};
    struct run r = {.store = store, .opts = opts, .files = true};
    int ret = -1;

    memset(d, 0, sizeof(*d));
    if (store->read_history(store->ctx, &h, err) < 0)
        goto out;
    rg_plan_build(&plan, src, &h);
    if (!h.exists && plan_from_legacy(store, &plan, err) < 0)
        goto out;
    d->current = plan.current;
    d->history_exists = h.exists;
    if (opts->target < plan.current) {
        rg_err_set(err, RG_EUSAGE,
                   "--target %" PRId64 " is below the schema version %" PRId64
                   ": plan tries pending up migrations only, not a rollback",
                   opts->target, plan.current);
        goto out;
    }
    if (rg_engine_check(&plan, opts, true, err) < 0 || rg_engine_plan_up(&r, src, &plan, err) < 0)
        goto out;
    d->ms = rg_calloc(r.n, sizeof(*d->ms));
    d->tried = true;
    ret = try_steps(store, &r, d, err);
out:
    rg_engine_run_free(&r);
    rg_plan_free(&plan);
    rg_history_free(&h);
    return ret;
}
