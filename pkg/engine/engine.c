#include "engine/engine.h"

#include <inttypes.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine/run.h"
#include "source/sql.h"
#include "mem/mem.h"
#include "log/log.h"

static void free_rows(struct rg_history_row *rows, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(rows[i].title);
        free(rows[i].applied_at);
        free(rows[i].applied_by);
    }
    free(rows);
}

void rg_history_free(struct rg_history *h)
{
    if (!h)
        return;
    free_rows(h->rows, h->n);
    free_rows(h->scripts, h->nscripts);
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
            /* A post-deploy migration below the applied version was left pending by a
             * --phase pre run that went past it, as it should. */
            it->out_of_order = !f->post && f->version < plan->current;
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
        it->post = it->file && it->file->post;
        switch (it->state) {
        case RG_ITEM_PENDING:
            plan->pending++;
            plan->pending_post += it->post;
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
int rg_engine_check(const struct rg_plan *plan, const struct rg_migrate_opts *opts, bool up,
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
                       "version %" PRId64 " is marked %s in the history: a no-transaction "
                       "migration stopped part way; check what it did and undo it by hand (an "
                       "invalid index left by a CREATE INDEX CONCURRENTLY of the file is "
                       "dropped and built again by the next migrate), then run `rollgate "
                       "repair --version %" PRId64 "` and migrate again (%s)",
                       it->version, it->row->state == RG_ROW_RUNNING ? "running" : "failed",
                       it->version, it->title);
            return -1;
        }
    }
    /* A run rolling back below them is the one asked to undo the unknown versions. */
    if (up && plan->unknown && opts->fail_on_newer) {
        rg_err_set(err, RG_ECONFLICT,
                   "the database is at version %" PRId64 " but this image knows only up to %" PRId64
                   " (%zu unknown versions) and migrations.onNewerSchema is fail",
                   plan->current, plan->latest, plan->unknown);
        return -1;
    }
    if (up && plan->out_of_order && !opts->allow_out_of_order) {
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

static int64_t pick(int64_t directive, int64_t fallback)
{
    return directive ? directive : fallback;
}

/* A step's timeouts: its file's directives, else the configuration's. */
void rg_engine_set_timeouts(struct rg_step *s, const struct rg_migrate_opts *opts)
{
    s->lock_timeout_ms = pick(s->directives->lock_timeout_ms, opts->lock_timeout_ms);
    s->statement_timeout_ms = pick(s->directives->statement_timeout_ms, opts->statement_timeout_ms);
}

/* Room for more steps: exactly what is asked, as a run of 10,000 migrations grown by
 * doubling would leave copies of its steps behind in the heap. */
static void reserve_steps(struct run *r, size_t more)
{
    if (r->cap - r->n >= more)
        return;
    r->cap = r->n + more;
    r->steps = rg_realloc(r->steps, r->cap * sizeof(*r->steps));
}

static struct rg_step *add_step(struct run *r, enum rg_action action, enum rg_kind kind)
{
    struct rg_step *s;

    if (r->n == r->cap)
        reserve_steps(r, r->cap ? r->cap : 16);
    s = &r->steps[r->n++];
    memset(s, 0, sizeof(*s));
    s->action = action;
    s->kind = kind;
    s->applied_by = r->opts->applied_by;
    s->directives = &rg_source_no_directives;
    return s;
}

void rg_engine_run_free(struct run *r)
{
    for (size_t i = 0; i < r->nowned; i++)
        free(r->owned[i]);
    free(r->owned);
    free(r->steps);
}

/* Whether an up run of this phase applies the pending item: with RG_PHASE_POST, the
 * pre-deploy ones in the first round, the post-deploy ones in the second. */
static bool in_phase(enum rg_phase phase, const struct rg_plan_item *it, int round)
{
    switch (phase) {
    case RG_PHASE_PRE:
        return !it->post;
    case RG_PHASE_POST:
        return it->post == (round == 1);
    case RG_PHASE_ALL:
        break;
    }
    return true;
}

/* Whether the i-th item of plan's rounds (plan_up) is applied by this run. */
static bool applies(const struct run *r, const struct rg_plan *plan, size_t i)
{
    const struct rg_plan_item *it = &plan->items[i % plan->n];

    return it->state == RG_ITEM_PENDING && it->version <= r->opts->target &&
           in_phase(r->opts->phase, it, (int)(i / plan->n));
}

/* Whether the run was stopped (a signal, its timeout): asked between files and between
 * steps, where nothing is half done, so that a run with thousands of files to read and lint
 * ends within its deadline rather than after them. A run without a clock (a dry run) is
 * never stopped here. */
static bool stopped(const struct rg_migrate_opts *opts)
{
    return opts->clock && opts->clock->stopped && opts->clock->stopped(opts->clock->ctx);
}

/* Up steps in version order (by phase: in_phase), each file read (rg_source_prepare) as
 * its step is built: only the migrations this run applies are read past their checksum.
 * With r->lint, each up file read now is linted from the statements its read split, before
 * anything runs or any lock is asked for; every file's findings are logged before an error
 * not allowed (lint_enforce) refuses the run. */
int rg_engine_plan_up(struct run *r, struct rg_source *src, const struct rg_plan *plan,
                      struct rg_err *err)
{
    int rounds = r->opts->phase == RG_PHASE_POST ? 2 : 1;
    size_t count = 0;
    struct rg_lint l = {0};
    struct rg_err refused = {0};
    bool lint_failed = false;
    int ret = -1;

    for (size_t i = 0; i < rounds * plan->n; i++)
        count += applies(r, plan, i);
    reserve_steps(r, count);
    for (size_t i = 0; i < rounds * plan->n; i++) {
        const struct rg_plan_item *it = &plan->items[i % plan->n];
        const struct rg_migration *m = it->file;
        struct rg_step *s;
        bool linted;

        if (!applies(r, plan, i))
            continue;
        /* The down file too: it is stored with the row, for a later image's rollback. */
        if (r->files) {
            if (stopped(r->opts)) {
                rg_err_set(err, RG_ESIGNAL,
                           "stopped while reading the migration files, before %s; nothing was "
                           "applied",
                           m->up_path);
                goto out;
            }
            if (rg_source_prepare_lint(src, it->version, RG_SOURCE_UP | RG_SOURCE_DOWN,
                                       r->lint ? &l : NULL, &linted, err) < 0)
                goto out;
            if (linted)
                rg_lint_log(m->up_path, &l);
            if (linted && r->opts->lint_enforce && !lint_failed)
                lint_failed = rg_lint_check(m->up_path, &l, &refused) < 0;
        }
        s = add_step(r, RG_ACT_APPLY, RG_KIND_SCHEMA);
        s->version = m->version;
        s->title = m->title;
        s->path = m->up_path;
        s->sql = m->up_sql;
        s->checksum = m->checksum;
        s->down_sql = m->down_sql;
        s->directives = m->directives;
    }
    if (lint_failed) {
        *err = refused;
        goto out;
    }
    ret = 0;
out:
    rg_lint_free(&l);
    return ret;
}

/* Down steps newest first, each with its SQL from the file (read now) or, failing that,
 * from the history row; every version without either is named before anything runs. */
static int plan_down(struct run *r, struct rg_source *src, const struct rg_plan *plan,
                     struct rg_err *err)
{
    char missing[256] = "";
    size_t nmissing = 0;

    for (size_t k = plan->n; k-- > 0;) {
        const struct rg_plan_item *it = &plan->items[k];
        const struct rg_migration *m = it->file;
        struct rg_step *s;

        if (!it->row || it->version <= r->opts->target)
            continue;
        if (!(m && m->down_path) && !it->row->has_down) {
            size_t used = strlen(missing);
            snprintf(missing + used, sizeof(missing) - used, "%s%" PRId64, nmissing ? ", " : "",
                     it->version);
            nmissing++;
            continue;
        }
        s = add_step(r, RG_ACT_REVERT, RG_KIND_SCHEMA);
        s->version = it->version;
        s->title = it->title;
        if (m && m->down_path && r->files) {
            if (rg_source_prepare(src, it->version, RG_SOURCE_DOWN, err) < 0)
                return -1;
            s->path = m->down_path;
            s->sql = m->down_sql;
            s->directives = m->down_directives;
        }
    }
    if (nmissing) {
        rg_err_set(err, RG_EFILES,
                   "cannot roll back to version %" PRId64 ": no down migration for version%s %s "
                   "(neither a .down.sql file in this image nor one stored in the history); "
                   "nothing was changed",
                   r->opts->target, nmissing == 1 ? "" : "s", missing);
        return -1;
    }
    return 0;
}

/* Fills the down SQL of steps whose file this image lacks from their history rows. */
static int load_stored_downs(struct run *r, struct rg_err *err)
{
    for (size_t i = 0; i < r->n; i++) {
        struct rg_step *s = &r->steps[i];
        char *sql = NULL, *where;
        struct rg_directives *d;

        if (s->action != RG_ACT_REVERT || s->sql)
            continue;
        if (r->store->read_down(r->store->ctx, s->version, &sql, err) < 0)
            return -1;
        where = rg_asprintf("history of version %" PRId64, s->version);
        d = rg_calloc(1, sizeof(*d));
        r->owned = rg_realloc(r->owned, (r->nowned + 3) * sizeof(*r->owned));
        r->owned[r->nowned++] = sql;
        r->owned[r->nowned++] = where;
        r->owned[r->nowned++] = d;
        if (!sql) {
            rg_err_set(err, RG_EFILES, "%s: the stored down migration is gone", where);
            return -1;
        }
        s->path = where;
        s->sql = sql;
        s->directives = d;
        if (rg_source_directives(where, sql, strlen(sql), d, err) < 0)
            return -1;
    }
    return 0;
}

static const struct rg_history_row *find_script(const struct rg_history *h, enum rg_kind kind,
                                                const char *name)
{
    for (size_t i = 0; i < h->nscripts; i++)
        if (h->scripts[i].kind == kind && strcmp(h->scripts[i].title, name) == 0)
            return &h->scripts[i];
    return NULL;
}

static void add_script(struct run *r, enum rg_kind kind, const struct rg_script *sc)
{
    struct rg_step *s = add_step(r, RG_ACT_SCRIPT, kind);
    s->title = sc->name;
    s->path = sc->path;
    s->sql = sc->sql;
    s->checksum = sc->checksum;
    s->directives = &sc->directives;
}

/* Repeatable scripts whose recorded checksum differs, then every data script. */
static void plan_scripts(struct run *r, const struct rg_source *src, const struct rg_history *h)
{
    for (size_t i = 0; i < src->nrepeatable; i++) {
        const struct rg_script *sc = &src->repeatable[i];
        const struct rg_history_row *row = find_script(h, RG_KIND_REPEATABLE, sc->name);
        if (!row || strcmp(row->checksum, sc->checksum) != 0)
            add_script(r, RG_KIND_REPEATABLE, sc);
    }
    for (size_t i = 0; i < src->ndata; i++)
        add_script(r, RG_KIND_DATA, &src->data[i]);
}

static const char *step_label(const struct rg_step *s)
{
    static const char *labels[] = {"migration", "rollback", "repeatable", "data"};
    if (s->action == RG_ACT_SCRIPT)
        return labels[s->kind == RG_KIND_REPEATABLE ? 2 : 3];
    return labels[s->action == RG_ACT_REVERT ? 1 : 0];
}

/* Runs the steps in order. aside (a run without a lock that has not yet seen the work
 * stall): a step whose fence another run holds, or, until this run has held the fence
 * once (held: it did already, claiming it), a step seen done, ends the run's own steps
 * with *stepped set, so that it follows instead of trying every step. A run that has held
 * the fence carries on past a step done meanwhile: the run that did it may have stepped
 * aside at that very hold, and if both followed nobody would be left applying. */
int rg_engine_execute(struct run *r, bool aside, bool held, bool *stepped,
                      struct rg_migrate_result *res, struct rg_err *err)
{
    *stepped = false;
    for (size_t i = 0; i < r->n; i++) {
        struct rg_step *s = &r->steps[i];
        enum rg_apply_outcome outcome;
        int64_t ms = 0;

        if (stopped(r->opts)) {
            rg_err_set(err, RG_ESIGNAL,
                       "stopped before %s %" PRId64 " %s started; what ran before it is done, "
                       "nothing is half applied",
                       step_label(s), s->version, s->title);
            return -1;
        }
        rg_engine_set_timeouts(s, r->opts);
        s->durable = i + 1 == r->n;
        s->try_fence = aside;
        RG_INFO("%s started" RG_F "version=%" PRId64 RG_F "title=%s", step_label(s), s->version,
                s->title);
        if (r->store->run(r->store->ctx, s, &outcome, &ms, err) < 0)
            return -1;
        if (outcome == RG_APPLY_BUSY || (outcome == RG_APPLY_SEEN && !held)) {
            RG_INFO("another run is applying migrations; following it" RG_F "version=%" PRId64 RG_F
                    "title=%s",
                    s->version, s->title);
            *stepped = true;
            return 0;
        }
        held = held || outcome != RG_APPLY_SEEN;
        if (outcome != RG_APPLY_DONE) {
            res->already++;
            if (s->action == RG_ACT_APPLY && s->version > res->to)
                res->to = s->version;
            RG_INFO("%s already done by another run" RG_F "version=%" PRId64 RG_F "title=%s",
                    step_label(s), s->version, s->title);
            continue;
        }
        RG_INFO("%s done" RG_F "version=%" PRId64 RG_F "title=%s" RG_F "duration_ms=%" PRId64,
                step_label(s), s->version, s->title, ms);
        if (s->action == RG_ACT_APPLY && s->version > res->to)
            res->to = s->version;
        if (s->action == RG_ACT_APPLY)
            res->applied++;
        else if (s->action == RG_ACT_REVERT)
            res->reverted++;
        else
            res->scripts++;
    }
    return 0;
}

static int record_baseline(const struct rg_store *store, struct rg_source *src, int64_t version,
                           const char *applied_by, bool adopting, size_t *count, struct rg_err *err)
{
    const struct rg_migration **ms = rg_calloc(src->n, sizeof(*ms));
    int ret;

    *count = 0;
    /* Read whole as if they were applied: a file no run would take is not recorded, and
     * the down SQL goes into the history with each row. */
    for (size_t i = 0; i < src->n && src->items[i].version <= version; i++) {
        if (rg_source_prepare(src, src->items[i].version, RG_SOURCE_UP | RG_SOURCE_DOWN, err) < 0) {
            free(ms);
            return -1;
        }
        ms[(*count)++] = &src->items[i];
    }
    ret = store->baseline(store->ctx, ms, *count, applied_by, adopting, err);
    free(ms);
    return ret;
}

/* golang-migrate's schema_migrations, refused when dirty. */
int rg_engine_read_legacy(const struct rg_store *store, struct rg_legacy *legacy,
                          struct rg_err *err)
{
    memset(legacy, 0, sizeof(*legacy));
    if (store->read_legacy(store->ctx, legacy, err) < 0)
        return -1;
    if (legacy->found && legacy->dirty) {
        rg_err_set(err, RG_ECONFLICT,
                   "golang-migrate's schema_migrations is dirty at version %" PRId64
                   ": a migration failed part way under golang-migrate; fix the schema by hand "
                   "and clear the dirty flag (migrate force %" PRId64 ") before adopting it",
                   legacy->version, legacy->version);
        return -1;
    }
    return 0;
}

/* golang-migrate's version becomes rollgate's history, before the first run. */
static int adopt_legacy(const struct rg_store *store, struct rg_source *src,
                        const struct rg_migrate_opts *opts, struct rg_migrate_result *res,
                        struct rg_err *err)
{
    struct rg_legacy legacy;
    size_t count = 0;

    if (rg_engine_read_legacy(store, &legacy, err) < 0)
        return -1;
    if (!legacy.found)
        return store->ensure_history(store->ctx, err);
    if (record_baseline(store, src, legacy.version, opts->applied_by, true, &count, err) < 0)
        return -1;
    res->adopted = true;
    RG_INFO("adopted golang-migrate's history: versions up to it are recorded as applied" RG_F
            "version=%" PRId64 RG_F "recorded=%zu",
            legacy.version, count);
    return 0;
}

/* Reads the history (unless have: h holds it already) and plans against it; waits first
 * while another run's no-transaction migration is marked running, since it may well
 * finish, then reads it again. */
static int read_plan(const struct rg_store *store, const struct rg_source *src,
                     const struct rg_migrate_opts *opts, bool have, struct rg_history *h,
                     struct rg_plan *plan, struct rg_err *err)
{
    for (int round = 0;; round++) {
        int64_t running = 0;

        if ((round > 0 || !have) && store->read_history(store->ctx, h, err) < 0)
            return -1;
        rg_plan_build(plan, src, h);
        for (size_t k = 0; k < plan->n && !running; k++)
            if (plan->items[k].row && plan->items[k].row->state == RG_ROW_RUNNING)
                running = plan->items[k].version;
        if (!running || round > 0)
            return 0;
        rg_plan_free(plan);
        rg_history_free(h);
        RG_INFO("another run's no-transaction migration is running; waiting for it" RG_F
                "version=%" PRId64,
                running);
        if (store->wait_running(store->ctx, running, opts->wait_timeout_ms, err) < 0)
            return -1;
    }
}

void rg_engine_pass_free(struct pass *p)
{
    rg_engine_run_free(&p->r);
    rg_plan_free(&p->plan);
    rg_history_free(&p->h);
}

/* The steps from the pass's plan, made again; with files false only counted (struct
 * run). */
int rg_engine_plan_steps(const struct rg_store *store, struct rg_source *src,
                         const struct rg_migrate_opts *opts, bool files, struct pass *p,
                         struct rg_err *err)
{
    rg_engine_run_free(&p->r);
    memset(&p->r, 0, sizeof(p->r));
    p->r.store = store;
    p->r.opts = opts;
    p->r.lint = opts->lint;
    p->r.files = files;
    if (!p->up)
        return plan_down(&p->r, src, &p->plan, err) < 0 ? -1
               : files                                  ? load_stored_downs(&p->r, err)
                                                        : 0;
    if (rg_engine_plan_up(&p->r, src, &p->plan, err) < 0)
        return -1;
    /* Scripts are written for this image's schema: only a run that ends there runs them. */
    if (opts->target >= p->plan.latest)
        plan_scripts(&p->r, src, &p->h);
    return 0;
}

/* Plans every step, changing nothing, from the history read just now (first, which the
 * pass takes over) or, with first NULL, read here; with files false only counts them. */
int rg_engine_prepare(const struct rg_store *store, struct rg_source *src,
                      const struct rg_migrate_opts *opts, struct rg_history *first, bool files,
                      struct pass *p, struct rg_err *err)
{
    memset(p, 0, sizeof(*p));
    if (first) {
        p->h = *first;
        memset(first, 0, sizeof(*first));
    }
    if (read_plan(store, src, opts, first != NULL, &p->h, &p->plan, err) < 0)
        return -1;
    if (p->plan.changed && rg_engine_drift(store, src, &p->plan, err) < 0)
        return -1;
    p->up = opts->target >= p->plan.current;
    if (rg_engine_check(&p->plan, opts, p->up, err) < 0)
        return -1;
    return rg_engine_plan_steps(store, src, opts, files, p, err);
}

/* Leads: plans again (the database may have moved while this run waited), runs, and
 * gives the lock up, reporting a lock lost meanwhile as such. */
static int lead(const struct rg_lock *lock, const struct rg_store *store, struct rg_source *src,
                const struct rg_migrate_opts *opts, struct pass *p, struct rg_migrate_result *res,
                struct rg_err *err)
{
    bool lost = false, stepped;
    int rc;

    rg_engine_pass_free(p);
    rc = rg_engine_prepare(store, src, opts, NULL, true, p, err);
    if (rc == 0)
        rc = rg_engine_execute(&p->r, false, false, &stepped, res, err);
    lock->release(lock->ctx, rc == 0, &lost);
    if (lost && rc == 0) {
        /* Every step had committed before the loss was noticed: the work is done. */
        RG_WARN("the lease was lost after the work had committed; the run succeeded");
    } else if (lost) {
        rg_err_set(err, RG_ELEASE,
                   "lost the lease while leading (its renewal failed past the renew deadline, "
                   "or another holder appeared): the running migration was cancelled and "
                   "rolled back");
        return -1;
    }
    return rc;
}

/* Says, once per run, which post-deploy migrations --phase pre leaves for the post phase. */
static void log_left_post(const struct rg_plan *plan, const struct rg_migrate_opts *opts,
                          struct rg_migrate_result *res)
{
    for (size_t k = 0; k < plan->n; k++) {
        const struct rg_plan_item *it = &plan->items[k];

        if (it->state != RG_ITEM_PENDING || !it->post || it->version > opts->target)
            continue;
        res->left_post++;
        RG_INFO("post-deploy migration left pending for migrate --phase post" RG_F
                "version=%" PRId64 RG_F "title=%s",
                it->version, it->title);
    }
}

/* The start every pod makes while nothing is pending: the database sums up the history's
 * schema rows and only the sum comes over the wire, however long the history is. Equal
 * sums mean the same versions, all applied, with the same checksums: nothing to check or
 * to do. Anything else (*current false) takes the full path, which reads the history and
 * says what differs. Only for a run to the latest version without scripts, since those
 * run on every migrate. */
static int current_at_once(const struct rg_store *store, const struct rg_source *src,
                           const struct rg_migrate_opts *opts, bool *current, struct rg_err *err)
{
    struct rg_history_digest d = {0};
    char mine[65];

    *current = false;
    if (!store->digest_history || src->nrepeatable || src->ndata ||
        (rg_source_count(src) && opts->target < rg_source_latest(src)))
        return 0;
    if (store->digest_history(store->ctx, &d, err) < 0)
        return -1;
    rg_source_digest(src, mine);
    *current = d.exists && d.all_applied && d.rows == (int64_t)rg_source_count(src) &&
               strcmp(d.sha256, mine) == 0;
    return 0;
}

int rg_engine_migrate(const struct rg_store *store, const struct rg_lock *lock,
                      struct rg_source *src, const struct rg_migrate_opts *opts,
                      struct rg_migrate_result *res, struct rg_err *err)
{
    struct rg_history h = {0};
    struct pass p = {0};
    struct waiting w = {.store = store, .src = src, .opts = opts};
    enum rg_lock_outcome outcome = RG_LOCK_LEADER;
    bool current = false;
    int ret = -1;

    memset(res, 0, sizeof(*res));
    if (current_at_once(store, src, opts, &current, err) < 0)
        goto out;
    if (current) {
        res->from = res->to = rg_source_latest(src);
        ret = 0;
        goto out;
    }
    /* A start that only glanced at its files (rg_source_load_start) needs them now. */
    if (rg_source_complete(src, err) < 0)
        goto out;
    /* The one read of the history when something differs: it is planned from as it is,
     * unless the table had to be made first. */
    if (store->read_history(store->ctx, &h, err) < 0)
        goto out;
    if (!h.exists && adopt_legacy(store, src, opts, res, err) < 0)
        goto out;
    /* With a lock every run reads (and lints) its files before asking for it; without one,
     * a racer does only once it has claimed the fence (rg_engine_race). */
    if (rg_engine_prepare(store, src, opts, h.exists ? &h : NULL, lock != NULL, &p, err) < 0)
        goto out;
    res->from = res->to = p.plan.current;
    res->unknown = p.plan.unknown;
    if (p.up && opts->phase == RG_PHASE_PRE)
        log_left_post(&p.plan, opts, res);
    if (p.plan.unknown)
        RG_WARN("the database has versions this image does not know; carrying on, as the "
                "schema is meant to stay backward compatible" RG_F "current=%" PRId64 RG_F
                "image_latest=%" PRId64 RG_F "unknown=%zu",
                p.plan.current, p.plan.latest, p.plan.unknown);
    /* What a wait (a Lease follower's, or a racer's that steps aside) counts down from. */
    rg_engine_count(&w, &p);
    if (p.r.n && lock && lock->acquire(lock->ctx, rg_engine_work_left, &w, &outcome, err) < 0)
        goto out;
    if (outcome == RG_LOCK_DONE_ELSEWHERE) {
        if (rg_engine_view_after(&w, &p, res, err) < 0)
            goto out;
    } else if (p.r.n && lock) {
        if (lead(lock, store, src, opts, &p, res, err) < 0)
            goto out;
    } else if (rg_engine_race(&w, &p, res, err) < 0) {
        goto out;
    }
    if (!p.up) {
        /* The highest version left applied, which the target need not name exactly. */
        res->to = 0;
        for (size_t k = 0; k < p.plan.n; k++)
            if (p.plan.items[k].row && p.plan.items[k].version <= opts->target)
                res->to = p.plan.items[k].version;
    }
    ret = 0;
out:
    rg_engine_pass_free(&w.last);
    rg_engine_pass_free(&p);
    rg_history_free(&h);
    return ret;
}

/* Whether a no-transaction migration is under way: a row marked running, and every run
 * that marked one still connected. A run that is gone leaves the row to rg_engine_check,
 * which refuses it (exit 5, naming the repair). */
static int under_way(const struct rg_store *store, const struct rg_plan *plan, bool *busy,
                     struct rg_err *err)
{
    *busy = false;
    for (size_t k = 0; k < plan->n; k++) {
        const struct rg_history_row *row = plan->items[k].row;
        bool alive = false;

        if (!row || row->state != RG_ROW_RUNNING)
            continue;
        if (store->run_alive(store->ctx, row->applied_by, &alive, err) < 0)
            return -1;
        if (!alive) {
            *busy = false;
            return 0;
        }
        *busy = true;
    }
    return 0;
}

int rg_engine_wait(const struct rg_store *store, const struct rg_lock *lock,
                   const struct rg_clock *clock, struct rg_source *src,
                   const struct rg_wait_opts *opts, int64_t *version, struct rg_err *err)
{
    /* Every version counts, below the applied ones too: wait applies nothing. */
    const struct rg_migrate_opts every = {.target = INT64_MAX};
    int64_t start = clock->now_ms(clock->ctx);

    *version = 0;
    for (int round = 0;; round++) {
        struct rg_history h = {0};
        struct rg_plan plan = {0};
        bool current, busy = false;
        size_t pending = 0;
        int rc = store->read_history(store->ctx, &h, err);

        if (rc == 0) {
            rg_plan_build(&plan, src, &h);
            rc = under_way(store, &plan, &busy, err);
        }
        if (rc == 0 && !busy && plan.changed)
            rc = rg_engine_drift(store, src, &plan, err);
        if (rc == 0 && !busy)
            rc = rg_engine_check(&plan, &every, false, err);
        pending = plan.pending - plan.pending_post;
        current = rc == 0 && !busy && pending == 0;
        /* Current, and no run holds the lock (one may be running data scripts). */
        if (current && lock) {
            bool held = false;
            rc = lock->held(lock->ctx, &held, err);
            current = rc == 0 && !held;
        }
        *version = plan.current;
        if (rc == 0 && !current && round == 0)
            RG_INFO("waiting for the schema to become current" RG_F "current=%" PRId64 RG_F
                    "pending=%zu" RG_F "pending_post=%zu",
                    plan.current, pending, plan.pending_post);
        if (rc == 0 && !current && opts->limit_ms &&
            clock->now_ms(clock->ctx) - start >= opts->limit_ms) {
            rg_err_set(err, RG_ELEASE,
                       "the schema is still at version %" PRId64 " with %zu pending after "
                       "lease.waitTimeout",
                       plan.current, pending);
            rc = -1;
        }
        rg_plan_free(&plan);
        rg_history_free(&h);
        if (rc < 0 || current)
            return rc;
        if (!clock->pause(clock->ctx, opts->poll_ms)) {
            rg_err_set(err, RG_ESIGNAL, "stopped while waiting; nothing was changed");
            return -1;
        }
    }
}

int rg_engine_baseline(const struct rg_store *store, struct rg_source *src, int64_t version,
                       const char *applied_by, size_t *count, struct rg_err *err)
{
    return record_baseline(store, src, version, applied_by, false, count, err);
}
