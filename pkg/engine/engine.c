#include "engine/engine.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "err/mem.h"
#include "log/log.h"

void rg_history_free(struct rg_history *h)
{
    if (!h)
        return;
    for (size_t i = 0; i < h->n; i++) {
        free(h->rows[i].title);
        free(h->rows[i].applied_at);
        free(h->rows[i].applied_by);
    }
    free(h->rows);
    memset(h, 0, sizeof(*h));
}

const char *rg_item_state_name(enum rg_item_state s)
{
    static const char *names[] = {"applied", "pending", "changed", "missing", "unknown", "failed"};
    return names[s];
}

static enum rg_item_state applied_state(const struct rg_history_row *row,
                                        const struct rg_migration *file, int64_t latest)
{
    if (row->state != RG_ROW_APPLIED)
        return RG_ITEM_FAILED;
    if (!file)
        return row->version > latest ? RG_ITEM_UNKNOWN : RG_ITEM_MISSING;
    if (strcmp(row->checksum, file->checksum) != 0)
        return RG_ITEM_CHANGED;
    return RG_ITEM_APPLIED;
}

void rg_plan_build(struct rg_plan *plan, const struct rg_source *src, const struct rg_history *h)
{
    size_t i = 0, j = 0;

    memset(plan, 0, sizeof(*plan));
    plan->items = rg_calloc(src->n + h->n, sizeof(*plan->items));
    plan->latest = src->n ? src->items[src->n - 1].version : 0;
    for (size_t k = 0; k < h->n; k++)
        if (h->rows[k].state == RG_ROW_APPLIED && h->rows[k].version > plan->current)
            plan->current = h->rows[k].version;

    /* Both lists are sorted by version: one merge pass. */
    while (i < src->n || j < h->n) {
        struct rg_plan_item *it = &plan->items[plan->n++];
        const struct rg_migration *f = i < src->n ? &src->items[i] : NULL;
        const struct rg_history_row *r = j < h->n ? &h->rows[j] : NULL;

        if (f && (!r || f->version < r->version)) {
            it->version = f->version;
            it->title = f->title;
            it->file = f;
            it->state = RG_ITEM_PENDING;
            it->out_of_order = f->version < plan->current;
            i++;
        } else if (f && f->version == r->version) {
            it->version = f->version;
            it->title = f->title;
            it->file = f;
            it->row = r;
            it->state = applied_state(r, f, plan->latest);
            i++, j++;
        } else {
            it->version = r->version;
            it->title = r->title;
            it->row = r;
            it->state = applied_state(r, NULL, plan->latest);
            j++;
        }
        switch (it->state) {
        case RG_ITEM_PENDING:
            plan->pending++;
            plan->out_of_order += it->out_of_order;
            break;
        case RG_ITEM_CHANGED:
            plan->changed++;
            break;
        case RG_ITEM_MISSING:
            plan->missing++;
            break;
        case RG_ITEM_UNKNOWN:
            plan->unknown++;
            break;
        case RG_ITEM_FAILED:
            plan->failed++;
            break;
        case RG_ITEM_APPLIED:
            break;
        }
    }
}

void rg_plan_free(struct rg_plan *plan)
{
    if (!plan)
        return;
    free(plan->items);
    memset(plan, 0, sizeof(*plan));
}

/* Everything that must stop a run before it changes anything, most serious first. */
static int check_plan(const struct rg_plan *plan, const struct rg_migrate_opts *opts,
                      struct rg_err *err)
{
    for (size_t k = 0; k < plan->n; k++) {
        const struct rg_plan_item *it = &plan->items[k];
        if (it->state == RG_ITEM_CHANGED) {
            rg_err_set(err, RG_ECONFLICT,
                       "%s: checksum drift: version %" PRId64
                       " was applied with checksum %s, the file now has %s; restore the "
                       "file as applied and put the change in a new migration",
                       it->file->up_path, it->version, it->row->checksum, it->file->checksum);
            return -1;
        }
        if (it->state == RG_ITEM_FAILED) {
            rg_err_set(err, RG_ECONFLICT,
                       "version %" PRId64 " (%s) is marked %s in the history: a "
                       "no-transaction migration stopped part way; check what it did, "
                       "finish or undo it by hand, then run `rollgate repair`",
                       it->version, it->title,
                       it->row->state == RG_ROW_RUNNING ? "running" : "failed");
            return -1;
        }
    }
    if (plan->unknown && opts->fail_on_newer) {
        rg_err_set(err, RG_ECONFLICT,
                   "the database is at version %" PRId64 " but this image knows only up to %" PRId64
                   " (%zu unknown versions) and migrations.onNewerSchema is fail",
                   plan->current, plan->latest, plan->unknown);
        return -1;
    }
    if (plan->out_of_order && !opts->allow_out_of_order) {
        for (size_t k = 0; k < plan->n; k++) {
            const struct rg_plan_item *it = &plan->items[k];
            if (it->state == RG_ITEM_PENDING && it->out_of_order && it->version <= opts->target) {
                rg_err_set(err, RG_EFILES,
                           "%s: version %" PRId64
                           " is pending but below the applied version %" PRId64
                           "; give it a higher version, or set migrations.allowOutOfOrder",
                           it->file->up_path, it->version, plan->current);
                return -1;
            }
        }
    }
    return 0;
}

/* The pending items this run applies, by version, up to the target. */
static size_t count_todo(const struct rg_plan *plan, int64_t target)
{
    size_t n = 0;
    for (size_t k = 0; k < plan->n; k++)
        if (plan->items[k].state == RG_ITEM_PENDING && plan->items[k].version <= target)
            n++;
    return n;
}

static int64_t pick(int64_t directive, int64_t fallback)
{
    return directive ? directive : fallback;
}

int rg_engine_migrate(const struct rg_store *store, const struct rg_source *src,
                      const struct rg_migrate_opts *opts, struct rg_migrate_result *res,
                      struct rg_err *err)
{
    struct rg_history h = {0};
    struct rg_plan plan = {0};
    size_t todo, done = 0;
    int ret = -1;

    memset(res, 0, sizeof(*res));
    if (store->read_history(store->ctx, &h, err) < 0)
        goto out;
    if (!h.exists && store->ensure_history(store->ctx, err) < 0)
        goto out;
    rg_plan_build(&plan, src, &h);
    res->from = res->to = plan.current;
    res->unknown = plan.unknown;
    if (check_plan(&plan, opts, err) < 0)
        goto out;
    if (plan.unknown)
        RG_WARN("the database has versions this image does not know; carrying on, as the "
                "schema is meant to stay backward compatible" RG_F "current=%" PRId64 RG_F
                "image_latest=%" PRId64 RG_F "unknown=%zu",
                plan.current, plan.latest, plan.unknown);

    todo = count_todo(&plan, opts->target);
    for (size_t k = 0; k < plan.n; k++) {
        const struct rg_plan_item *it = &plan.items[k];
        enum rg_apply_outcome outcome;
        int64_t ms = 0;
        struct rg_apply a;

        if (it->state != RG_ITEM_PENDING || it->version > opts->target)
            continue;
        done++;
        a.m = it->file;
        a.applied_by = opts->applied_by;
        a.lock_timeout_ms = pick(it->file->directives.lock_timeout_ms, opts->lock_timeout_ms);
        a.statement_timeout_ms =
            pick(it->file->directives.statement_timeout_ms, opts->statement_timeout_ms);
        a.durable = done == todo;
        RG_INFO("migration started" RG_F "version=%" PRId64 RG_F "title=%s", it->version,
                it->title);
        if (store->apply(store->ctx, &a, &outcome, &ms, err) < 0)
            goto out;
        if (outcome == RG_APPLY_ALREADY) {
            res->already++;
            RG_INFO("migration already applied by another run" RG_F "version=%" PRId64,
                    it->version);
        } else {
            res->applied++;
            RG_INFO("migration applied" RG_F "version=%" PRId64 RG_F "title=%s" RG_F
                    "duration_ms=%" PRId64,
                    it->version, it->title, ms);
        }
        if (it->version > res->to)
            res->to = it->version;
    }
    ret = 0;
out:
    rg_plan_free(&plan);
    rg_history_free(&h);
    return ret;
}
