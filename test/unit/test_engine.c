/* The engine against a fake store: ordering, re-checks, conflicts, all without PostgreSQL. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine.h"
#include "engine/follow.h"
#include "mem/mem.h"
#include "lease/leader.h"
#include "log/log.h"

#define MAX 64

struct fake {
    struct rg_history_row rows[MAX];
    size_t n;
    bool exists;
    int64_t applied_order[MAX]; /* versions run, in order; a rollback as -version */
    struct rg_step steps[MAX];
    char sqls[MAX][96], paths[MAX][64];
    size_t nsteps;
    size_t waited, baselined;
    struct rg_legacy legacy;
    struct rg_history_row scripts[MAX];
    const char *script_names[MAX];
    size_t nscripts;
    int64_t taken_by_other; /* version another run applies just before us */
    int64_t fail_version;   /* apply of this version fails */
    bool durable[MAX];
    int ensure_calls;
    int reads;      /* read_history calls */
    int digests;    /* digest_history calls */
    bool runs_gone; /* the runs that marked rows running have no session left */
    int alive_asks;
    int runs;           /* run calls */
    bool fence_held;    /* another run holds the fence: a step that may not wait is BUSY */
    int64_t seen_done;  /* version a step that may not wait sees done before the fence */
    const char *up_sql; /* what read_up returns for every version (NULL: none stored) */
    int up_reads;       /* read_up calls */
    size_t recorded;    /* record_checksum calls */
    int trial_begins, trial_ends;
    bool trial_open;                 /* between trial_begin and trial_end */
    int64_t trial_order[MAX];        /* versions a dry run tried, in order */
    int64_t trial_lock_timeout[MAX]; /* the lock_timeout each was tried with */
    size_t ntrials;
    bool claim_taken; /* another run holds the fence when this one claims it */
    bool claim_open;  /* between a claim that held and unclaim */
    int claims, unclaims;
};

static void add_row(struct fake *f, int64_t version, const char *sum, enum rg_row_state st)
{
    struct rg_history_row *r = &f->rows[f->n++];
    memset(r, 0, sizeof(*r));
    r->version = version;
    snprintf(r->checksum, sizeof(r->checksum), "%s", sum);
    r->state = st;
    f->exists = true;
}

static int fake_read(void *ctx, struct rg_history *h, struct rg_err *err)
{
    struct fake *f = ctx;
    (void)err;
    f->reads++;
    h->exists = f->exists;
    h->n = f->n;
    h->rows = rg_calloc(f->n, sizeof(*h->rows));
    for (size_t i = 0; i < f->n; i++) {
        h->rows[i] = f->rows[i];
        h->rows[i].title = rg_strdup("t");
        h->rows[i].applied_at = rg_strdup("now");
        h->rows[i].applied_by = rg_strdup("me");
    }
    h->nscripts = f->nscripts;
    h->scripts = rg_calloc(f->nscripts, sizeof(*h->scripts));
    for (size_t i = 0; i < f->nscripts; i++) {
        h->scripts[i] = f->scripts[i];
        h->scripts[i].title = rg_strdup(f->script_names[i]);
        h->scripts[i].applied_at = rg_strdup("now");
        h->scripts[i].applied_by = rg_strdup("me");
    }
    return 0;
}

static int fake_ensure(void *ctx, struct rg_err *err)
{
    struct fake *f = ctx;
    (void)err;
    f->ensure_calls++;
    f->exists = true;
    return 0;
}

static int fake_run(void *ctx, const struct rg_step *s, enum rg_apply_outcome *outcome, int64_t *ms,
                    struct rg_err *err)
{
    struct fake *f = ctx;
    *ms = 1;
    f->runs++;
    cr_assert_not(f->claim_open, "a step ran before the claim was given up");
    if (s->try_fence && f->fence_held) {
        *outcome = RG_APPLY_BUSY;
        return 0;
    }
    if (s->try_fence && s->version && s->version == f->seen_done) {
        *outcome = RG_APPLY_SEEN;
        return 0;
    }
    if (s->version && s->version == f->fail_version) {
        rg_err_set(err, RG_EMIGRATION, "%s: boom", s->path);
        return -1;
    }
    if (s->version && s->version == f->taken_by_other) {
        *outcome = RG_APPLY_ALREADY;
        return 0;
    }
    f->durable[f->nsteps] = s->durable;
    f->steps[f->nsteps] = *s;
    /* The step's strings may be the run's own, freed when it returns. */
    snprintf(f->sqls[f->nsteps], sizeof(f->sqls[0]), "%s", s->sql ? s->sql : "");
    snprintf(f->paths[f->nsteps], sizeof(f->paths[0]), "%s", s->path ? s->path : "");
    f->applied_order[f->nsteps++] = s->action == RG_ACT_REVERT ? -s->version : s->version;
    *outcome = RG_APPLY_DONE;
    return 0;
}

static int fake_read_down(void *ctx, int64_t version, char **sql, struct rg_err *err)
{
    (void)ctx;
    (void)err;
    *sql = rg_asprintf("-- rollgate:lock-timeout=3s\nDROP TABLE t%lld;", (long long)version);
    return 0;
}

static int fake_read_up(void *ctx, int64_t version, char **sql, struct rg_err *err)
{
    struct fake *f = ctx;
    (void)version;
    (void)err;
    f->up_reads++;
    *sql = f->up_sql ? rg_strdup(f->up_sql) : NULL;
    return 0;
}

static int fake_record_checksum(void *ctx, int64_t version, const char *old, const char *checksum,
                                const char *up_sql, bool *updated, struct rg_err *err)
{
    struct fake *f = ctx;
    (void)up_sql;
    (void)err;
    *updated = false;
    for (size_t i = 0; i < f->n; i++) {
        if (f->rows[i].version == version && strcmp(f->rows[i].checksum, old) == 0) {
            snprintf(f->rows[i].checksum, sizeof(f->rows[i].checksum), "%s", checksum);
            *updated = true;
            f->recorded++;
        }
    }
    return 0;
}

static int fake_wait_running(void *ctx, int64_t version, int64_t timeout_ms, struct rg_err *err)
{
    struct fake *f = ctx;
    (void)timeout_ms;
    (void)err;
    /* The other run finishes while we wait. */
    for (size_t i = 0; i < f->n; i++)
        if (f->rows[i].version == version)
            f->rows[i].state = RG_ROW_APPLIED;
    f->waited++;
    return 0;
}

static int fake_read_legacy(void *ctx, struct rg_legacy *legacy, struct rg_err *err)
{
    struct fake *f = ctx;
    (void)err;
    *legacy = f->legacy;
    return 0;
}

static int fake_baseline(void *ctx, const struct rg_migration *const *ms, size_t n,
                         const char *applied_by, bool adopting, struct rg_err *err)
{
    struct fake *f = ctx;
    (void)applied_by;
    f->exists = true;
    if (f->n && adopting)
        return 0;
    if (f->n) {
        rg_err_set(err, RG_ECONFLICT, "has history");
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        add_row(f, ms[i]->version, ms[i]->checksum, RG_ROW_APPLIED);
    f->baselined = n;
    return 0;
}

static int fake_repair(void *ctx, int64_t version, size_t *cleared, struct rg_err *err)
{
    (void)ctx;
    (void)version;
    (void)err;
    *cleared = 0;
    return 0;
}

static void add_script_row(struct fake *f, enum rg_kind kind, const char *name, const char *sum)
{
    struct rg_history_row *r = &f->scripts[f->nscripts];
    memset(r, 0, sizeof(*r));
    r->kind = kind;
    snprintf(r->checksum, sizeof(r->checksum), "%s", sum);
    f->script_names[f->nscripts++] = name;
}

static bool fake_has_row(const struct fake *f, int64_t version)
{
    for (size_t i = 0; i < f->n; i++)
        if (f->rows[i].version == version)
            return true;
    return false;
}

/* For wait: whether the run that marked a row running is still connected. */
static int fake_run_alive(void *ctx, const char *applied_by, bool *alive, struct rg_err *err)
{
    struct fake *f = ctx;
    (void)applied_by;
    (void)err;
    f->alive_asks++;
    *alive = !f->runs_gone;
    return 0;
}

static int fake_trial_begin(void *ctx, struct rg_err *err)
{
    struct fake *f = ctx;
    (void)err;
    cr_assert_not(f->trial_open, "one transaction for the whole plan");
    f->trial_begins++;
    f->trial_open = true;
    return 0;
}

/* Each step as one statement that "locks" its table; fail_version fails with a SQLSTATE. */
static int fake_trial_run(void *ctx, const struct rg_step *s, struct rg_trial *t,
                          struct rg_err *err)
{
    struct fake *f = ctx;
    struct rg_trial_stmt *st;

    cr_assert(f->trial_open, "tried outside the plan's transaction");
    f->trial_lock_timeout[f->ntrials] = s->lock_timeout_ms;
    f->trial_order[f->ntrials++] = s->version;
    t->stmts = rg_calloc(1, sizeof(*t->stmts));
    t->n = 1;
    st = &t->stmts[0];
    st->ran = true;
    st->line = 1;
    st->end = strlen(s->sql);
    st->rows = -1;
    st->locks = rg_calloc(1, sizeof(*st->locks));
    st->locks[0] = (struct rg_trial_lock){rg_asprintf("public.t%lld", (long long)s->version),
                                          rg_strdup("AccessExclusiveLock")};
    st->nlocks = 1;
    if (s->version == f->fail_version) {
        snprintf(st->sqlstate, sizeof(st->sqlstate), "42P01");
        rg_err_set(err, RG_EMIGRATION, "%s:1:1: ERROR 42P01: boom", s->path);
        return -1;
    }
    return 0;
}

static void fake_trial_end(void *ctx)
{
    struct fake *f = ctx;
    f->trial_ends++;
    f->trial_open = false;
}

/* As the database sums the schema rows up: "VERSION CHECKSUM\n" by version. */
static int fake_digest(void *ctx, struct rg_history_digest *d, struct rg_err *err)
{
    struct fake *f = ctx;
    char text[MAX * 96] = "";
    size_t used = 0;
    (void)err;
    f->digests++;
    memset(d, 0, sizeof(*d));
    d->exists = f->exists;
    d->all_applied = true;
    for (size_t i = 0; i < f->n; i++) {
        used += (size_t)snprintf(text + used, sizeof(text) - used, "%lld %s\n",
                                 (long long)f->rows[i].version, f->rows[i].checksum);
        d->all_applied = d->all_applied && f->rows[i].state == RG_ROW_APPLIED;
    }
    d->rows = (int64_t)f->n;
    rg_source_checksum(text, used, d->sha256);
    return 0;
}

static int fake_claim(void *ctx, int64_t rows, bool *held, struct rg_err *err)
{
    struct fake *f = ctx;
    (void)err;
    cr_assert_not(f->claim_open, "claimed twice");
    f->claims++;
    *held = !f->claim_taken && rows == (int64_t)f->n;
    f->claim_open = *held;
    return 0;
}

static void fake_unclaim(void *ctx)
{
    struct fake *f = ctx;
    f->unclaims++;
    f->claim_open = false;
}

static int fake_read(void *ctx, struct rg_history *h, struct rg_err *err);

/* Reads the history, after which another run applies version 1 (the first time only). */
static int read_then_apply_one(void *ctx, struct rg_history *h, struct rg_err *err)
{
    struct fake *f = ctx;
    int rc = fake_read(ctx, h, err);
    if (rc == 0 && f->reads == 1)
        add_row(f, 1, "a", RG_ROW_APPLIED);
    return rc;
}

static struct fake fk;
static struct rg_store store = {&fk,
                                fake_read,
                                fake_ensure,
                                fake_run,
                                fake_read_down,
                                fake_read_up,
                                fake_record_checksum,
                                fake_wait_running,
                                fake_read_legacy,
                                fake_baseline,
                                fake_repair,
                                fake_run_alive,
                                fake_trial_begin,
                                fake_trial_run,
                                fake_trial_end,
                                fake_digest,
                                fake_claim,
                                fake_unclaim};
static struct rg_migration files[MAX];
/* The directives of files[i] (up, down), as rg_source_prepare allocates them. */
static struct rg_directives file_directives[MAX][2];
static struct rg_script reps[4], datas[4];
static struct rg_source src;

/* The run's time: pauses move it; at pause number apply_at the other run finishes what it
 * marked running and applies every file; stop makes the pauses report a signal. */
struct fake_time {
    int64_t ms;
    int pauses, apply_at;
    bool one_each; /* the other run applies the next file at every pause */
    bool stop;
    size_t stop_after_steps; /* the run is stopped once the store has run this many steps */
    int64_t slept[MAX];
};

static int64_t fake_now(void *ctx)
{
    return ((struct fake_time *)ctx)->ms;
}

static bool fake_pause(void *ctx, int64_t ms)
{
    struct fake_time *t = ctx;

    if (t->stop)
        return false;
    t->slept[t->pauses % MAX] = ms;
    t->ms += ms;
    if (t->one_each) {
        for (size_t i = 0; i < src.n; i++) {
            if (!fake_has_row(&fk, files[i].version)) {
                add_row(&fk, files[i].version, files[i].checksum, RG_ROW_APPLIED);
                break;
            }
        }
    }
    if (++t->pauses != t->apply_at)
        return true;
    for (size_t i = 0; i < fk.n; i++)
        fk.rows[i].state = RG_ROW_APPLIED;
    for (size_t i = 0; i < src.n; i++)
        if (!fake_has_row(&fk, files[i].version))
            add_row(&fk, files[i].version, files[i].checksum, RG_ROW_APPLIED);
    return true;
}

static bool fake_stopped(void *ctx)
{
    struct fake_time *t = ctx;

    return t->stop || (t->stop_after_steps && fk.nsteps >= t->stop_after_steps);
}

static struct fake_time ft;
static struct rg_clock fclock = {&ft, fake_now, fake_pause, fake_stopped};

static void setup(void)
{
    rg_log_setup(RG_LOG_FORMAT_TEXT, RG_LOG_ERROR, stderr);
    memset(&fk, 0, sizeof(fk));
    memset(&ft, 0, sizeof(ft));
    memset(files, 0, sizeof(files));
    memset(file_directives, 0, sizeof(file_directives));
    memset(&src, 0, sizeof(src));
    memset(reps, 0, sizeof(reps));
    memset(datas, 0, sizeof(datas));
    src.items = files;
    src.repeatable = reps;
    src.data = datas;
}

static void add_file(int64_t version, const char *sum)
{
    struct rg_migration *m = &files[src.n++];
    m->version = version;
    m->title = "t";
    m->up_name = "f.up.sql";
    m->up_path = "dir/f.up.sql";
    snprintf(m->checksum, sizeof(m->checksum), "%s", sum);
    m->directives = &file_directives[src.n - 1][0];
    m->down_directives = &file_directives[src.n - 1][1];
    /* Held in memory, as rg_source_prepare leaves a migration it has read: dir/ does not
     * exist, so a test that clears this flag proves the engine leaves the file unread. */
    m->prepared = RG_SOURCE_UP | RG_SOURCE_DOWN;
}

/* A migration whose files the engine must not read, or must fail to read: as
 * rg_source_load leaves it, with paths that do not exist. */
static void add_unread_file(int64_t version, const char *sum, bool down)
{
    add_file(version, sum);
    files[src.n - 1].prepared = 0;
    files[src.n - 1].directives = files[src.n - 1].down_directives = NULL;
    files[src.n - 1].up_path = "nowhere/f.up.sql";
    if (down)
        files[src.n - 1].down_path = "nowhere/f.down.sql";
}

/* A pending migration with its SQL in memory, as rg_source_prepare leaves it. */
static void add_sql_file(int64_t version, const char *sum, const char *sql, bool no_transaction)
{
    add_file(version, sum);
    files[src.n - 1].up_sql = (char *)sql;
    files[src.n - 1].up_len = strlen(sql);
    file_directives[src.n - 1][0].no_transaction = no_transaction;
}

static struct rg_migrate_opts opts(void)
{
    struct rg_migrate_opts o = {.target = INT64_MAX,
                                .applied_by = "me",
                                .clock = &fclock,
                                .follow_poll_ms = 50,
                                .follow_stall_ms = 15000};
    return o;
}

TestSuite(engine, .init = setup);

Test(engine, applies_pending_in_version_order_and_creates_history_first)
{
    struct rg_migrate_opts o = opts();
    struct rg_migrate_result res;
    struct rg_err err = {0};
    add_file(1, "a");
    add_file(2, "b");
    add_file(10, "c");
    cr_assert_eq(rg_engine_migrate(&store, NULL, &src, &o, &res, &err), 0, "%s", err.msg);
    cr_assert_eq(fk.ensure_calls, 1);
    cr_assert_eq(fk.nsteps, 3);
    cr_assert_eq(fk.applied_order[0], 1);
    cr_assert_eq(fk.applied_order[1], 2);
    cr_assert_eq(fk.applied_order[2], 10);
    cr_assert_eq(res.applied, 3);
    cr_assert_eq(res.from, 0);
    cr_assert_eq(res.to, 10);
}

Test(engine, only_the_last_commit_of_a_run_is_durable)
{
    struct rg_migrate_opts o = opts();
    struct rg_migrate_result res;
    struct rg_err err = {0};
    add_file(1, "a");
    add_file(2, "b");
    add_file(3, "c");
    cr_assert_eq(rg_engine_migrate(&store, NULL, &src, &o, &res, &err), 0);
    cr_assert_not(fk.durable[0]);
    cr_assert_not(fk.durable[1]);
    cr_assert(fk.durable[2]);
}

Test(engine, skips_applied_and_stops_at_target)
{
    struct rg_migrate_opts o = opts();
    struct rg_migrate_result res;
    struct rg_err err = {0};
    add_file(1, "a");
    add_file(2, "b");
    add_file(3, "c");
    add_file(4, "d");
    add_row(&fk, 1, "a", RG_ROW_APPLIED);
    o.target = 3;
    cr_assert_eq(rg_engine_migrate(&store, NULL, &src, &o, &res, &err), 0);
    cr_assert_eq(fk.ensure_calls, 0);
    cr_assert_eq(fk.nsteps, 2);
    cr_assert_eq(fk.applied_order[0], 2);
    cr_assert_eq(fk.applied_order[1], 3);
    cr_assert_eq(res.from, 1);
    cr_assert_eq(res.to, 3);
}

Test(engine, a_version_another_run_applied_first_is_counted_not_run)
{
    struct rg_migrate_opts o = opts();
    struct rg_migrate_result res;
    struct rg_err err = {0};
    add_file(1, "a");
    add_file(2, "b");
    fk.taken_by_other = 1;
    cr_assert_eq(rg_engine_migrate(&store, NULL, &src, &o, &res, &err), 0);
    cr_assert_eq(res.already, 1);
    cr_assert_eq(res.applied, 1);
    cr_assert_eq(fk.applied_order[0], 2);
}

Test(engine, a_lone_run_takes_the_fence_without_waiting_for_it)
{
    struct rg_migrate_opts o = opts();
    struct rg_migrate_result res;
    struct rg_err err = {0};
    add_file(1, "a");
    add_file(2, "b");
    cr_assert_eq(rg_engine_migrate(&store, NULL, &src, &o, &res, &err), 0, "%s", err.msg);
    cr_assert_eq(res.applied, 2);
    cr_assert(fk.steps[0].try_fence && fk.steps[1].try_fence);
    cr_assert_eq(ft.pauses, 0);
}

/* Found done under the fence: the run that did it may have stepped aside since (at this
 * run's brief hold of the fence), so this one carries on, or nobody would be applying. */
Test(engine, a_racer_that_finds_a_version_done_under_the_fence_carries_on_applying)
{
    struct rg_migrate_opts o = opts();
    struct rg_migrate_result res;
    struct rg_err err = {0};
    add_file(1, "a");
    add_file(2, "b");
    add_file(3, "c");
    fk.taken_by_other = 1;
    cr_assert_eq(rg_engine_migrate(&store, NULL, &src, &o, &res, &err), 0, "%s", err.msg);
    cr_assert_eq(res.already, 1);
    cr_assert_eq(res.applied, 2);
    cr_assert(!res.elsewhere);
    cr_assert_eq(ft.pauses, 0, "did not follow");
}

/* A run that claimed the fence held it: a version done meanwhile (by a run that may have
 * stepped aside at that claim) does not make it follow. */
Test(engine, a_claimant_carries_on_past_a_version_seen_done)
{
    struct rg_migrate_opts o = opts();
    struct rg_migrate_result res;
    struct rg_err err = {0};
    add_file(1, "a");
    add_file(2, "b");
    fk.seen_done = 1;
    cr_assert_eq(rg_engine_migrate(&store, NULL, &src, &o, &res, &err), 0, "%s", err.msg);
    cr_assert_eq(fk.claims, 1);
    cr_assert_eq(res.applied, 1);
    cr_assert_eq(res.already, 1);
    cr_assert_eq(ft.pauses, 0, "did not follow");
}

/* The history moved since the run read it: another run is applying, so the run follows
 * without taking the fence even for a moment. */
Test(engine, a_racer_whose_history_moved_follows_without_claiming)
{
    struct rg_migrate_opts o = opts();
    struct rg_migrate_result res;
    struct rg_err err = {0};
    struct rg_store moving = store;
    moving.read_history = read_then_apply_one;
    fk.exists = true;
    add_unread_file(1, "a", false);
    add_unread_file(2, "b", false);
    ft.apply_at = 1;
    cr_assert_eq(rg_engine_migrate(&moving, NULL, &src, &o, &res, &err), 0, "%s", err.msg);
    cr_assert_eq(fk.claims, 1);
    cr_assert_eq(fk.unclaims, 0);
    cr_assert_eq(fk.runs, 0);
    cr_assert(res.elsewhere);
}

/* A store that cannot claim the fence: the run meets the other at its first step. */
Test(engine, a_racer_that_sees_a_version_done_before_ever_taking_the_fence_follows)
{
    struct rg_migrate_opts o = opts();
    struct rg_migrate_result res;
    struct rg_err err = {0};
    struct rg_store unclaimed = store;
    unclaimed.claim = NULL;
    unclaimed.unclaim = NULL;
    add_file(1, "a");
    add_file(2, "b");
    add_file(3, "c");
    fk.seen_done = 1;
    ft.apply_at = 2; /* the other run has applied everything by the second pause */
    cr_assert_eq(rg_engine_migrate(&unclaimed, NULL, &src, &o, &res, &err), 0, "%s", err.msg);
    cr_assert_eq(fk.runs, 1, "tried one step, not every step");
    cr_assert_eq(fk.nsteps, 0);
    cr_assert(res.elsewhere);
    cr_assert_eq(res.to, 3);
    cr_assert_eq(ft.pauses, 2);
    cr_assert_eq(ft.slept[0], 50, "polls at the follow period");
}

Test(engine, a_racer_that_has_held_the_fence_carries_on_past_a_version_seen_done)
{
    struct rg_migrate_opts o = opts();
    struct rg_migrate_result res;
    struct rg_err err = {0};
    add_file(1, "a");
    add_file(2, "b");
    add_file(3, "c");
    fk.seen_done = 2;
    cr_assert_eq(rg_engine_migrate(&store, NULL, &src, &o, &res, &err), 0, "%s", err.msg);
    cr_assert_eq(res.applied, 2);
    cr_assert_eq(res.already, 1);
    cr_assert_eq(fk.applied_order[1], 3);
    cr_assert_eq(ft.pauses, 0, "did not follow");
}

Test(engine, a_racer_that_finds_the_fence_held_follows_until_the_work_is_done)
{
    struct rg_migrate_opts o = opts();
    struct rg_migrate_result res;
    struct rg_err err = {0};
    add_file(1, "a");
    add_file(2, "b");
    fk.fence_held = true;
    ft.apply_at = 3;
    cr_assert_eq(rg_engine_migrate(&store, NULL, &src, &o, &res, &err), 0, "%s", err.msg);
    cr_assert_eq(fk.runs, 1);
    cr_assert_eq(fk.nsteps, 0);
    cr_assert(res.elsewhere);
    cr_assert_eq(res.to, 2);
    cr_assert_eq(ft.pauses, 3);
}

Test(engine, a_follower_whose_work_stalls_tries_again_waiting_at_the_fence_and_applies)
{
    struct rg_migrate_opts o = opts();
    struct rg_migrate_result res;
    struct rg_err err = {0};
    add_file(1, "a");
    add_file(2, "b");
    fk.fence_held = true; /* and the run holding it never finishes */
    cr_assert_eq(rg_engine_migrate(&store, NULL, &src, &o, &res, &err), 0, "%s", err.msg);
    cr_assert_eq(res.applied, 2);
    cr_assert(!res.elsewhere);
    cr_assert(!fk.steps[0].try_fence && !fk.steps[1].try_fence, "waits at the fence this time");
    cr_assert_geq(ft.ms, 15000, "followed for follow_stall_ms first");
    cr_assert_lt(ft.ms, 30000);
    cr_assert_gt(ft.slept[2], ft.slept[1], "backs off while nothing moves");
}

/* Runs started together: the one that claims the fence reads and lints; the others follow
 * it at once, having read no file past its checksum (these files do not exist). */
Test(engine, a_racer_that_finds_the_fence_claimed_follows_without_reading_or_linting_a_file)
{
    struct rg_migrate_opts o = opts();
    struct rg_migrate_result res;
    struct rg_err err = {0};
    add_unread_file(1, "a", true);
    add_unread_file(2, "b", true);
    o.lint = o.lint_enforce = true;
    fk.claim_taken = true;
    ft.apply_at = 3;
    cr_assert_eq(rg_engine_migrate(&store, NULL, &src, &o, &res, &err), 0, "%s", err.msg);
    cr_assert_eq(fk.claims, 1);
    cr_assert_eq(fk.unclaims, 0, "nothing to give up");
    cr_assert_eq(fk.runs, 0, "tried no step");
    cr_assert(res.elsewhere);
    cr_assert_eq(res.to, 2);
    cr_assert_eq(files[0].prepared | files[1].prepared, 0, "read a file");
}

/* A look is the history's digest while the other run makes progress, and the digest of
 * every file applied ends the wait: the history is read at the start only, however many
 * looks there were. */
Test(engine, a_follower_looks_at_the_digest_only_and_ends_on_the_digest_of_every_file)
{
    struct rg_migrate_opts o = opts();
    struct rg_migrate_result res;
    struct rg_err err = {0};
    const char *sums[] = {"a", "b", "c", "d", "e", "f"};
    for (int v = 1; v <= 6; v++)
        add_unread_file(v, sums[v - 1], false);
    fk.exists = true; /* or it is read again after it is made */
    fk.claim_taken = true;
    ft.one_each = true;
    cr_assert_eq(rg_engine_migrate(&store, NULL, &src, &o, &res, &err), 0, "%s", err.msg);
    cr_assert(res.elsewhere);
    cr_assert_eq(res.to, 6);
    cr_assert_eq(ft.pauses, 6, "one look per applied file, then the end");
    cr_assert_eq(fk.reads, 1, "history read %d times", fk.reads);
    /* The start's digest, and one per look: before each pause, and the last. */
    cr_assert_eq(fk.digests, 1 + 7, "%d digests", fk.digests);
    for (int i = 0; i < 6; i++)
        cr_assert_eq(ft.slept[i], 50, "progress keeps the poll period: %lld",
                     (long long)ft.slept[i]);
}

/* Short of the latest version the digest cannot say the work is done: a full look does,
 * once, at the end (and its view is the run's: no read more). */
Test(engine, a_follower_to_a_lower_target_ends_on_one_full_look)
{
    struct rg_migrate_opts o = opts();
    struct rg_migrate_result res;
    struct rg_err err = {0};
    const char *sums[] = {"a", "b", "c", "d", "e", "f"};
    for (int v = 1; v <= 6; v++)
        add_unread_file(v, sums[v - 1], false);
    o.target = 5;
    fk.exists = true;
    fk.claim_taken = true;
    ft.one_each = true;
    cr_assert_eq(rg_engine_migrate(&store, NULL, &src, &o, &res, &err), 0, "%s", err.msg);
    cr_assert(res.elsewhere);
    cr_assert_eq(res.to, 5);
    cr_assert_eq(ft.pauses, 5);
    cr_assert_eq(fk.reads, 2, "history read %d times", fk.reads);
}

/* A follower that never read its files reads and lints them when it tries again after a
 * stall: a file migrations.lint=enforce refuses still stops it before any step. */
Test(engine, a_follower_that_tries_again_after_a_stall_lints_first_and_refuses)
{
    struct rg_migrate_opts o = opts();
    struct rg_migrate_result res;
    struct rg_err err = {0};
    add_sql_file(1, "a", "SELECT 1;", false);
    add_sql_file(2, "b", "\nCREATE INDEX i ON t (a);", false);
    o.lint = o.lint_enforce = true;
    fk.claim_taken = true; /* and the run holding it never gets anywhere */
    cr_assert_eq(rg_engine_migrate(&store, NULL, &src, &o, &res, &err), -1);
    cr_assert_eq(err.code, RG_EFILES, "%s", err.msg);
    cr_assert(strstr(err.msg, "lint error require-concurrent-index-creation"), "%s", err.msg);
    cr_assert_geq(ft.ms, 15000, "followed for follow_stall_ms first");
    cr_assert_eq(fk.runs, 0, "no step may run");
}

/* The claimant gives the claim up before its first step (fake_run checks), also when its
 * files are refused. */
Test(engine, a_claimant_reads_and_lints_then_gives_the_claim_up_before_any_step)
{
    struct rg_migrate_opts o = opts();
    struct rg_migrate_result res;
    struct rg_err err = {0};
    add_sql_file(1, "a", "SELECT 1;", false);
    o.lint = o.lint_enforce = true;
    cr_assert_eq(rg_engine_migrate(&store, NULL, &src, &o, &res, &err), 0, "%s", err.msg);
    cr_assert_eq(fk.claims, 1);
    cr_assert_eq(fk.unclaims, 1);
    cr_assert_eq(fk.nsteps, 1);

    setup();
    add_sql_file(1, "a", "CREATE INDEX i ON t (a);", false);
    o.lint = o.lint_enforce = true;
    cr_assert_eq(rg_engine_migrate(&store, NULL, &src, &o, &res, &err), -1);
    cr_assert_eq(err.code, RG_EFILES, "%s", err.msg);
    cr_assert_eq(fk.claims, 1);
    cr_assert_eq(fk.unclaims, 1, "the claim outlived a refusal");
    cr_assert_eq(fk.runs, 0);
}

/* rg_engine_follow on its own: the work left at each look, from a script. */
struct script {
    size_t left[8];
    size_t looks;
};

static int scripted_left(void *arg, size_t *left, struct rg_err *err)
{
    struct script *sc = arg;
    (void)err;
    *left = sc->left[sc->looks++];
    return 0;
}

static int poll_50(void *ctx, struct rg_follow *f, bool stalled, int64_t *pause_ms, bool *stop,
                   struct rg_err *err)
{
    (void)ctx, (void)f, (void)stalled, (void)stop, (void)err;
    *pause_ms = 50;
    return 0;
}

/* At the pace seen, 100 steps in 50 ms, the last 10 take 5 ms: the wait looks then, not a
 * whole poll period later; and never sooner than 5 ms. */
Test(follow, a_pause_ends_when_the_work_should_at_the_pace_seen)
{
    struct script sc = {{200, 100, 10, 0}, 0};
    struct rg_follow f = {&fclock, scripted_left, &sc, poll_50, NULL, SIZE_MAX, 0};
    enum rg_follow_end end;
    struct rg_err err = {0};

    setup();
    cr_assert_eq(rg_engine_follow(&f, &end, &err), 0, "%s", err.msg);
    cr_assert_eq(end, RG_FOLLOW_DONE);
    cr_assert_eq(ft.pauses, 3);
    cr_assert_eq(ft.slept[0], 50, "no pace seen yet");
    cr_assert_eq(ft.slept[1], 50, "100 left at 2 a millisecond: 50 ms");
    cr_assert_eq(ft.slept[2], 5, "10 left at 1.9 a millisecond: 5 ms, not %lld",
                 (long long)ft.slept[2]);
}

/* A look that saw no progress is not paced: a long last migration is looked at as the
 * hook says, not every few milliseconds. */
Test(follow, a_look_without_progress_is_not_paced)
{
    struct script sc = {{100, 2, 2, 2, 0}, 0};
    struct rg_follow f = {&fclock, scripted_left, &sc, poll_50, NULL, SIZE_MAX, 0};
    enum rg_follow_end end;
    struct rg_err err = {0};

    setup();
    cr_assert_eq(rg_engine_follow(&f, &end, &err), 0, "%s", err.msg);
    cr_assert_eq(ft.pauses, 4);
    cr_assert_eq(ft.slept[1], 5, "2 left at about 2 a millisecond");
    cr_assert_eq(ft.slept[2], 50, "no progress: the hook's pause, not %lld",
                 (long long)ft.slept[2]);
    cr_assert_eq(ft.slept[3], 50);
}

/* No progress, no pace: a stalled wait keeps the look hook's pauses. */
Test(follow, a_wait_without_progress_keeps_the_hooks_pause)
{
    struct script sc = {{3, 3, 3, 0}, 0};
    struct rg_follow f = {&fclock, scripted_left, &sc, poll_50, NULL, SIZE_MAX, 0};
    enum rg_follow_end end;
    struct rg_err err = {0};

    setup();
    cr_assert_eq(rg_engine_follow(&f, &end, &err), 0, "%s", err.msg);
    cr_assert_eq(ft.pauses, 3);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(ft.slept[i], 50);
}

Test(engine, a_follower_stopped_by_a_signal_fails_and_applies_nothing)
{
    struct rg_migrate_opts o = opts();
    struct rg_migrate_result res;
    struct rg_err err = {0};
    add_file(1, "a");
    fk.fence_held = true;
    ft.stop = true;
    cr_assert_eq(rg_engine_migrate(&store, NULL, &src, &o, &res, &err), -1);
    cr_assert_eq(err.code, RG_ESIGNAL, "%s", err.msg);
    cr_assert_eq(fk.nsteps, 0);
}

/* A signal between two steps: the next does not start (the store is never asked to run
 * it), and the run says what stands. */
Test(engine, a_signal_between_steps_stops_the_run_before_the_next_migration_starts)
{
    struct rg_migrate_opts o = opts();
    struct rg_migrate_result res;
    struct rg_err err = {0};
    add_file(1, "a");
    add_file(2, "b");
    add_file(3, "c");
    ft.stop_after_steps = 1;
    cr_assert_eq(rg_engine_migrate(&store, NULL, &src, &o, &res, &err), -1);
    cr_assert_eq(err.code, RG_ESIGNAL, "%s", err.msg);
    cr_assert(strstr(err.msg, "before migration 2"), "%s", err.msg);
    cr_assert_eq(fk.nsteps, 1);
    cr_assert_eq(fk.runs, 1, "the store was asked to run the next step");
}

/* A signal while the claimant reads its files: no file past it is read, no step runs, and
 * the claim is given up. */
Test(engine, a_signal_while_the_files_are_read_stops_the_run_before_any_step)
{
    struct rg_migrate_opts o = opts();
    struct rg_migrate_result res;
    struct rg_err err = {0};
    add_file(1, "a");
    add_file(2, "b");
    ft.stop = true;
    cr_assert_eq(rg_engine_migrate(&store, NULL, &src, &o, &res, &err), -1);
    cr_assert_eq(err.code, RG_ESIGNAL, "%s", err.msg);
    cr_assert(strstr(err.msg, "while reading the migration files, before dir/f.up.sql"), "%s",
              err.msg);
    cr_assert_eq(fk.runs, 0);
    cr_assert_not(fk.claim_open, "the claim was kept");
}

Test(engine, drift_refuses_before_applying_anything_and_names_both_checksums)
{
    struct rg_migrate_opts o = opts();
    struct rg_migrate_result res;
    struct rg_err err = {0};
    add_file(1, "new-sum");
    add_file(2, "b");
    add_row(&fk, 1, "old-sum", RG_ROW_APPLIED);
    cr_assert_eq(rg_engine_migrate(&store, NULL, &src, &o, &res, &err), -1);
    cr_assert_eq(err.code, RG_ECONFLICT);
    cr_assert(strstr(err.msg, "old-sum") && strstr(err.msg, "new-sum"), "%s", err.msg);
    cr_assert(strstr(err.msg, "dir/f.up.sql"), "%s", err.msg);
    cr_assert_eq(fk.nsteps, 0);
}

Test(engine, a_run_with_no_checksum_changed_reads_no_stored_sql)
{
    struct rg_migrate_opts o = opts();
    struct rg_migrate_result res;
    struct rg_err err = {0};
    add_file(1, "a");
    add_file(2, "b");
    add_row(&fk, 1, "a", RG_ROW_APPLIED);
    cr_assert_eq(rg_engine_migrate(&store, NULL, &src, &o, &res, &err), 0, "%s", err.msg);
    cr_assert_eq(res.applied, 1);
    cr_assert_eq(fk.up_reads, 0, "stored up SQL read although nothing drifted");
}

Test(engine, a_change_only_in_comments_and_white_space_warns_and_runs_on)
{
    struct rg_migrate_opts o = opts();
    struct rg_migrate_result res;
    struct rg_err err = {0};
    add_file(1, "new-sum");
    add_file(2, "b");
    files[0].up_sql = "-- creates t\nCREATE TABLE t1 (\n  id int\n);\n";
    files[0].up_len = strlen(files[0].up_sql);
    fk.up_sql = "CREATE TABLE t1 (id int);";
    add_row(&fk, 1, "old-sum", RG_ROW_APPLIED);
    cr_assert_eq(rg_engine_migrate(&store, NULL, &src, &o, &res, &err), 0, "%s", err.msg);
    cr_assert_eq(res.applied, 1);
    cr_assert_eq(fk.up_reads, 1);
}

Test(engine, a_changed_statement_is_drift_even_with_stored_sql)
{
    struct rg_migrate_opts o = opts();
    struct rg_migrate_result res;
    struct rg_err err = {0};
    add_file(1, "new-sum");
    files[0].up_sql = "CREATE TABLE t1 (id bigint);\n";
    files[0].up_len = strlen(files[0].up_sql);
    fk.up_sql = "CREATE TABLE t1 (id int);\n";
    add_row(&fk, 1, "old-sum", RG_ROW_APPLIED);
    cr_assert_eq(rg_engine_migrate(&store, NULL, &src, &o, &res, &err), -1);
    cr_assert_eq(err.code, RG_ECONFLICT);
    cr_assert(strstr(err.msg, "diff"), "%s", err.msg);
    cr_assert(strstr(err.msg, "--force"), "%s", err.msg);
}

Test(engine, repair_checksums_records_only_cosmetic_changes_unless_forced)
{
    struct rg_err err = {0};
    size_t recorded = 9;
    add_file(1, "new-1");
    add_file(2, "new-2");
    files[0].up_sql = "CREATE TABLE t1 (id int); -- same\n";
    files[0].up_len = strlen(files[0].up_sql);
    files[1].up_sql = "CREATE TABLE t1 (id int, x int);\n";
    files[1].up_len = strlen(files[1].up_sql);
    fk.up_sql = "CREATE TABLE t1 (id int);";
    add_row(&fk, 1, "old-1", RG_ROW_APPLIED);
    add_row(&fk, 2, "old-2", RG_ROW_APPLIED);

    cr_assert_eq(rg_engine_repair_checksums(&store, &src, false, &recorded, &err), -1);
    cr_assert_eq(err.code, RG_ECONFLICT);
    cr_assert_eq(fk.recorded, 0, "a refused repair changed a row");
    cr_assert_str_eq(fk.rows[0].checksum, "old-1");

    cr_assert_eq(rg_engine_repair_checksums(&store, &src, true, &recorded, &err), 0, "%s", err.msg);
    cr_assert_eq(recorded, 2);
    cr_assert_str_eq(fk.rows[0].checksum, "new-1");
    cr_assert_str_eq(fk.rows[1].checksum, "new-2");
}

Test(engine, repair_checksums_without_stored_sql_needs_force)
{
    struct rg_err err = {0};
    size_t recorded = 9;
    add_file(1, "new-1");
    files[0].up_sql = "CREATE TABLE t1 (id int);\n";
    files[0].up_len = strlen(files[0].up_sql);
    add_row(&fk, 1, "old-1", RG_ROW_APPLIED);

    cr_assert_eq(rg_engine_repair_checksums(&store, &src, false, &recorded, &err), -1);
    cr_assert(strstr(err.msg, "without the up SQL"), "%s", err.msg);
    cr_assert_str_eq(fk.rows[0].checksum, "old-1");
    cr_assert_eq(rg_engine_repair_checksums(&store, &src, true, &recorded, &err), 0, "%s", err.msg);
    cr_assert_str_eq(fk.rows[0].checksum, "new-1");
}

Test(engine, a_failed_row_stops_the_run_and_points_to_repair)
{
    struct rg_migrate_opts o = opts();
    struct rg_migrate_result res;
    struct rg_err err = {0};
    add_file(1, "a");
    add_file(2, "b");
    add_row(&fk, 1, "a", RG_ROW_FAILED);
    cr_assert_eq(rg_engine_migrate(&store, NULL, &src, &o, &res, &err), -1);
    cr_assert_eq(err.code, RG_ECONFLICT);
    cr_assert(strstr(err.msg, "rollgate repair --version 1"), "%s", err.msg);
    cr_assert(strstr(err.msg, "dropped and built again by the next migrate"), "%s", err.msg);
    cr_assert_eq(fk.nsteps, 0);
}

Test(engine, newer_schema_warns_by_default_and_fails_when_asked)
{
    struct rg_migrate_opts o = opts();
    struct rg_migrate_result res;
    struct rg_err err = {0};
    add_file(1, "a");
    add_row(&fk, 1, "a", RG_ROW_APPLIED);
    add_row(&fk, 2, "b", RG_ROW_APPLIED);
    cr_assert_eq(rg_engine_migrate(&store, NULL, &src, &o, &res, &err), 0, "%s", err.msg);
    cr_assert_eq(res.unknown, 1);
    cr_assert_eq(res.to, 2);
    o.fail_on_newer = true;
    cr_assert_eq(rg_engine_migrate(&store, NULL, &src, &o, &res, &err), -1);
    cr_assert_eq(err.code, RG_ECONFLICT);
}

Test(engine, out_of_order_pending_is_refused_unless_allowed)
{
    struct rg_migrate_opts o = opts();
    struct rg_migrate_result res;
    struct rg_err err = {0};
    add_file(1, "a");
    add_file(2, "b");
    add_file(3, "c");
    add_row(&fk, 1, "a", RG_ROW_APPLIED);
    add_row(&fk, 3, "c", RG_ROW_APPLIED);
    cr_assert_eq(rg_engine_migrate(&store, NULL, &src, &o, &res, &err), -1);
    cr_assert_eq(err.code, RG_EFILES);
    cr_assert(strstr(err.msg, "allowOutOfOrder"), "%s", err.msg);
    o.allow_out_of_order = true;
    cr_assert_eq(rg_engine_migrate(&store, NULL, &src, &o, &res, &err), 0, "%s", err.msg);
    cr_assert_eq(fk.applied_order[0], 2);
}

Test(engine, a_failing_migration_stops_the_run_with_its_error)
{
    struct rg_migrate_opts o = opts();
    struct rg_migrate_result res;
    struct rg_err err = {0};
    add_file(1, "a");
    add_file(2, "b");
    add_file(3, "c");
    fk.fail_version = 2;
    cr_assert_eq(rg_engine_migrate(&store, NULL, &src, &o, &res, &err), -1);
    cr_assert_eq(err.code, RG_EMIGRATION);
    cr_assert_eq(fk.nsteps, 1);
}

Test(engine, plan_classifies_every_state)
{
    struct rg_history h = {0};
    struct rg_plan plan;
    add_file(1, "a");
    add_file(2, "changed");
    add_file(4, "d");
    add_file(6, "f");
    add_row(&fk, 1, "a", RG_ROW_APPLIED);
    add_row(&fk, 2, "b", RG_ROW_APPLIED);
    add_row(&fk, 3, "c", RG_ROW_APPLIED);
    add_row(&fk, 5, "e", RG_ROW_APPLIED);
    add_row(&fk, 7, "g", RG_ROW_APPLIED);
    cr_assert_eq(fake_read(&fk, &h, NULL), 0);
    rg_plan_build(&plan, &src, &h);
    cr_assert_eq(plan.n, 7);
    cr_assert_eq(plan.items[0].state, RG_ITEM_APPLIED);
    cr_assert_eq(plan.items[1].state, RG_ITEM_CHANGED);
    cr_assert_eq(plan.items[2].state, RG_ITEM_MISSING);
    cr_assert_eq(plan.items[3].state, RG_ITEM_PENDING);
    cr_assert(plan.items[3].out_of_order);
    cr_assert_eq(plan.items[4].state, RG_ITEM_MISSING);
    cr_assert_eq(plan.items[5].state, RG_ITEM_PENDING);
    cr_assert_eq(plan.items[6].state, RG_ITEM_UNKNOWN);
    cr_assert_eq(plan.current, 7);
    cr_assert_eq(plan.latest, 6);
    cr_assert_eq(plan.pending, 2);
    cr_assert_str_eq(rg_item_state_name(plan.items[6].state), "unknown");
    rg_plan_free(&plan);
    rg_history_free(&h);
}

static void add_down(int64_t version, const char *sql)
{
    for (size_t i = 0; i < src.n; i++) {
        if (files[i].version == version) {
            files[i].down_sql = (char *)sql;
            files[i].down_path = "dir/f.down.sql";
        }
    }
}

static void add_script(struct rg_script *list, size_t *n, const char *name, const char *sum)
{
    struct rg_script *sc = &list[(*n)++];
    sc->name = (char *)name;
    sc->path = (char *)name;
    sc->sql = "SELECT 1;";
    snprintf(sc->checksum, sizeof(sc->checksum), "%s", sum);
}

Test(engine, rollback_runs_downs_newest_first_from_the_file_or_else_the_history)
{
    struct rg_migrate_opts o = opts();
    struct rg_migrate_result res;
    struct rg_err err = {0};
    add_file(1, "a");
    add_file(2, "b");
    add_file(3, "c");
    add_down(2, "DROP TABLE b;");
    add_down(3, "DROP TABLE c;");
    add_row(&fk, 1, "a", RG_ROW_APPLIED);
    add_row(&fk, 2, "b", RG_ROW_APPLIED);
    add_row(&fk, 3, "c", RG_ROW_APPLIED);
    add_row(&fk, 4, "x", RG_ROW_APPLIED);
    add_row(&fk, 5, "x", RG_ROW_APPLIED);
    fk.rows[3].has_down = fk.rows[4].has_down = true; /* 4 and 5: this image lacks them */
    o.target = 1;
    cr_assert_eq(rg_engine_migrate(&store, NULL, &src, &o, &res, &err), 0, "%s", err.msg);
    cr_assert_eq(fk.nsteps, 4);
    cr_assert_eq(fk.applied_order[0], -5);
    cr_assert_eq(fk.applied_order[1], -4);
    cr_assert_eq(fk.applied_order[2], -3);
    cr_assert_eq(fk.applied_order[3], -2);
    cr_assert_str_eq(fk.sqls[0], "-- rollgate:lock-timeout=3s\nDROP TABLE t5;");
    cr_assert_str_eq(fk.paths[0], "history of version 5");
    cr_assert_eq(fk.steps[0].lock_timeout_ms, 3000, "the stored SQL's directive applies");
    cr_assert_str_eq(fk.sqls[2], "DROP TABLE c;");
    cr_assert_eq(res.reverted, 4);
    cr_assert_eq(res.from, 5);
    cr_assert_eq(res.to, 1);
    cr_assert(fk.durable[3] && !fk.durable[2]);
}

Test(engine, a_run_with_nothing_to_do_reads_no_migration_file)
{
    struct rg_migrate_opts o = opts();
    struct rg_migrate_result res;
    struct rg_err err = {0};
    add_unread_file(1, "a", true);
    add_unread_file(2, "b", true);
    add_row(&fk, 1, "a", RG_ROW_APPLIED);
    add_row(&fk, 2, "b", RG_ROW_APPLIED);
    cr_assert_eq(rg_engine_migrate(&store, NULL, &src, &o, &res, &err), 0, "%s", err.msg);
    cr_assert_eq(fk.nsteps, 0);
    cr_assert_eq(files[0].prepared, 0);
    cr_assert_eq(files[1].prepared, 0);
}

Test(engine, an_apply_reads_only_the_pending_migrations_files)
{
    struct rg_migrate_opts o = opts();
    struct rg_migrate_result res;
    struct rg_err err = {0};
    add_unread_file(1, "a", true);
    add_file(2, "b");
    add_row(&fk, 1, "a", RG_ROW_APPLIED);
    cr_assert_eq(rg_engine_migrate(&store, NULL, &src, &o, &res, &err), 0, "%s", err.msg);
    cr_assert_eq(fk.nsteps, 1);
    cr_assert_eq(fk.applied_order[0], 2);
    cr_assert_eq(files[0].prepared, 0);
}

Test(engine, a_pending_migrations_unreadable_file_stops_the_run_before_any_step)
{
    struct rg_migrate_opts o = opts();
    struct rg_migrate_result res;
    struct rg_err err = {0};
    add_file(1, "a");
    add_unread_file(2, "b", true);
    files[1].prepared = RG_SOURCE_UP; /* the up file is fine; the down file cannot be read */
    cr_assert_eq(rg_engine_migrate(&store, NULL, &src, &o, &res, &err), -1);
    cr_assert_eq(err.code, RG_EFILES);
    cr_assert(strstr(err.msg, "nowhere/f.down.sql"), "%s", err.msg);
    cr_assert_eq(fk.nsteps, 0, "version 1 must not run either");
}

Test(engine, a_rollback_reads_only_the_down_files_it_runs)
{
    struct rg_migrate_opts o = opts();
    struct rg_migrate_result res;
    struct rg_err err = {0};
    add_unread_file(1, "a", true);
    add_file(2, "b");
    add_down(2, "DROP TABLE b;");
    add_row(&fk, 1, "a", RG_ROW_APPLIED);
    add_row(&fk, 2, "b", RG_ROW_APPLIED);
    o.target = 1;
    cr_assert_eq(rg_engine_migrate(&store, NULL, &src, &o, &res, &err), 0, "%s", err.msg);
    cr_assert_eq(fk.nsteps, 1);
    cr_assert_eq(fk.applied_order[0], -2);
    cr_assert_eq(files[0].prepared, 0);
}

Test(engine, a_rollback_whose_down_file_cannot_be_read_changes_nothing_and_names_it)
{
    struct rg_migrate_opts o = opts();
    struct rg_migrate_result res;
    struct rg_err err = {0};
    add_file(1, "a");
    add_unread_file(2, "b", true);
    add_file(3, "c");
    add_down(3, "DROP TABLE c;");
    add_row(&fk, 1, "a", RG_ROW_APPLIED);
    add_row(&fk, 2, "b", RG_ROW_APPLIED);
    add_row(&fk, 3, "c", RG_ROW_APPLIED);
    o.target = 1;
    cr_assert_eq(rg_engine_migrate(&store, NULL, &src, &o, &res, &err), -1);
    cr_assert_eq(err.code, RG_EFILES);
    cr_assert(strstr(err.msg, "nowhere/f.down.sql"), "%s", err.msg);
    cr_assert_eq(fk.nsteps, 0, "version 3's rollback must not run either");
}

Test(engine, rollback_without_a_down_for_every_version_changes_nothing_and_lists_them)
{
    struct rg_migrate_opts o = opts();
    struct rg_migrate_result res;
    struct rg_err err = {0};
    add_file(1, "a");
    add_file(2, "b");
    add_file(3, "c");
    add_file(4, "d");
    add_down(4, "DROP TABLE d;");
    add_row(&fk, 1, "a", RG_ROW_APPLIED);
    add_row(&fk, 2, "b", RG_ROW_APPLIED);
    add_row(&fk, 3, "c", RG_ROW_APPLIED);
    add_row(&fk, 4, "d", RG_ROW_APPLIED);
    o.target = 1;
    cr_assert_eq(rg_engine_migrate(&store, NULL, &src, &o, &res, &err), -1);
    cr_assert_eq(err.code, RG_EFILES);
    cr_assert(strstr(err.msg, "versions 3, 2"), "%s", err.msg);
    cr_assert_eq(fk.nsteps, 0);
}

Test(engine, scripts_run_after_the_schema_repeatables_only_when_changed)
{
    struct rg_migrate_opts o = opts();
    struct rg_migrate_result res;
    struct rg_err err = {0};
    add_file(1, "a");
    add_script(reps, &src.nrepeatable, "same", "s1");
    add_script(reps, &src.nrepeatable, "changed", "new");
    add_script(reps, &src.nrepeatable, "fresh", "f1");
    add_script(datas, &src.ndata, "0001_seed.sql", "d1");
    add_script_row(&fk, RG_KIND_REPEATABLE, "same", "s1");
    add_script_row(&fk, RG_KIND_REPEATABLE, "changed", "old");
    add_script_row(&fk, RG_KIND_DATA, "0001_seed.sql", "d1");
    fk.exists = true;
    cr_assert_eq(rg_engine_migrate(&store, NULL, &src, &o, &res, &err), 0, "%s", err.msg);
    cr_assert_eq(fk.nsteps, 4);
    cr_assert_eq(fk.steps[0].action, RG_ACT_APPLY);
    cr_assert_str_eq(fk.steps[1].title, "changed");
    cr_assert_eq(fk.steps[1].kind, RG_KIND_REPEATABLE);
    cr_assert_str_eq(fk.steps[2].title, "fresh");
    cr_assert_str_eq(fk.steps[3].title, "0001_seed.sql");
    cr_assert_eq(fk.steps[3].kind, RG_KIND_DATA);
    cr_assert(fk.durable[3] && !fk.durable[0]);
    cr_assert_eq(res.scripts, 3);
}

Test(engine, scripts_do_not_run_when_the_target_stops_short_of_this_images_schema)
{
    struct rg_migrate_opts o = opts();
    struct rg_migrate_result res;
    struct rg_err err = {0};
    add_file(1, "a");
    add_file(2, "b");
    add_script(datas, &src.ndata, "seed.sql", "d1");
    o.target = 1;
    cr_assert_eq(rg_engine_migrate(&store, NULL, &src, &o, &res, &err), 0, "%s", err.msg);
    cr_assert_eq(fk.nsteps, 1);
    cr_assert_eq(res.scripts, 0);
}

Test(engine, golang_migrate_history_is_adopted_then_the_rest_applied)
{
    struct rg_migrate_opts o = opts();
    struct rg_migrate_result res;
    struct rg_err err = {0};
    add_file(1, "a");
    add_file(2, "b");
    add_file(3, "c");
    fk.legacy = (struct rg_legacy){.found = true, .version = 2};
    cr_assert_eq(rg_engine_migrate(&store, NULL, &src, &o, &res, &err), 0, "%s", err.msg);
    cr_assert(res.adopted);
    cr_assert_eq(fk.baselined, 2);
    cr_assert_eq(fk.nsteps, 1);
    cr_assert_eq(fk.applied_order[0], 3);
    cr_assert_eq(res.from, 2);
}

Test(engine, a_dirty_golang_migrate_history_is_refused_naming_its_version)
{
    struct rg_migrate_opts o = opts();
    struct rg_migrate_result res;
    struct rg_err err = {0};
    add_file(1, "a");
    fk.legacy = (struct rg_legacy){.found = true, .version = 7, .dirty = true};
    cr_assert_eq(rg_engine_migrate(&store, NULL, &src, &o, &res, &err), -1);
    cr_assert_eq(err.code, RG_ECONFLICT);
    cr_assert(strstr(err.msg, "dirty at version 7"), "%s", err.msg);
    cr_assert_eq(fk.nsteps, 0);
    cr_assert_eq(fk.baselined, 0);
}

Test(engine, another_runs_running_migration_is_waited_for_not_failed)
{
    struct rg_migrate_opts o = opts();
    struct rg_migrate_result res;
    struct rg_err err = {0};
    add_file(1, "a");
    add_file(2, "b");
    add_row(&fk, 1, "a", RG_ROW_RUNNING);
    cr_assert_eq(rg_engine_migrate(&store, NULL, &src, &o, &res, &err), 0, "%s", err.msg);
    cr_assert_eq(fk.waited, 1);
    cr_assert_eq(fk.nsteps, 1);
    cr_assert_eq(fk.applied_order[0], 2);
}

Test(engine, baseline_records_files_up_to_the_version)
{
    size_t count;
    struct rg_err err = {0};
    add_file(1, "a");
    add_file(2, "b");
    add_file(5, "e");
    cr_assert_eq(rg_engine_baseline(&store, &src, 2, "me", &count, &err), 0, "%s", err.msg);
    cr_assert_eq(count, 2);
    cr_assert_eq(fk.n, 2);
    cr_assert_eq(rg_engine_baseline(&store, &src, 5, "me", &count, &err), -1);
    cr_assert_eq(err.code, RG_ECONFLICT);
}

Test(engine, baseline_refuses_a_file_it_cannot_read_and_records_nothing)
{
    size_t count;
    struct rg_err err = {0};
    add_file(1, "a");
    add_unread_file(2, "b", false);
    add_unread_file(3, "c", false);
    cr_assert_eq(rg_engine_baseline(&store, &src, 2, "me", &count, &err), -1);
    cr_assert_eq(err.code, RG_EFILES);
    cr_assert(strstr(err.msg, "nowhere/f.up.sql"), "%s", err.msg);
    cr_assert_eq(fk.baselined, 0);
}

/* A lock whose other holder applies everything while this run waits, or which grants it. */
struct fake_lock {
    bool grant;
    bool lose;
    int acquired, released;
    bool released_ok;
    int polls;
    int looks, held_looks;
};

static int fake_acquire(void *ctx, int (*work_left)(void *arg, size_t *left, struct rg_err *err),
                        void *arg, enum rg_lock_outcome *outcome, struct rg_err *err)
{
    struct fake_lock *l = ctx;
    size_t left = 1;
    l->acquired++;
    if (l->grant) {
        *outcome = RG_LOCK_LEADER;
        return 0;
    }
    /* The leader applies every file; the waiter notices on its next poll. */
    for (size_t i = 0; i < src.n; i++)
        if (!fake_has_row(&fk, files[i].version))
            add_row(&fk, files[i].version, files[i].checksum, RG_ROW_APPLIED);
    while (left) {
        l->polls++;
        if (work_left(arg, &left, err) < 0)
            return -1;
    }
    *outcome = RG_LOCK_DONE_ELSEWHERE;
    return 0;
}

static void fake_release(void *ctx, bool succeeded, bool *lost)
{
    struct fake_lock *l = ctx;
    l->released++;
    l->released_ok = succeeded;
    *lost = l->lose;
}

/* For wait: another run holds the lock for the first held_looks looks. */
static int fake_held(void *ctx, bool *held, struct rg_err *err)
{
    struct fake_lock *l = ctx;
    (void)err;
    *held = l->looks++ < l->held_looks;
    return 0;
}

#define FAKE_LOCK(fl)                                                                              \
    {                                                                                              \
        &(fl), fake_acquire, fake_release, fake_held                                               \
    }

Test(engine, nothing_to_do_never_asks_for_the_lock)
{
    struct fake_lock fl = {.grant = true};
    struct rg_lock lock = FAKE_LOCK(fl);
    struct rg_migrate_opts o = opts();
    struct rg_migrate_result res;
    struct rg_err err = {0};
    add_file(1, "a");
    add_row(&fk, 1, "a", RG_ROW_APPLIED);
    cr_assert_eq(rg_engine_migrate(&store, &lock, &src, &o, &res, &err), 0, "%s", err.msg);
    cr_assert_eq(fl.acquired, 0);
    cr_assert_eq(fl.released, 0);
}

Test(engine, nothing_to_do_reads_only_the_history_digest)
{
    struct fake_lock fl = {.grant = true};
    struct rg_lock lock = FAKE_LOCK(fl);
    struct rg_migrate_opts o = opts();
    struct rg_migrate_result res;
    struct rg_err err = {0};
    add_file(1, "a");
    add_file(2, "b");
    add_row(&fk, 1, "a", RG_ROW_APPLIED);
    add_row(&fk, 2, "b", RG_ROW_APPLIED);
    cr_assert_eq(rg_engine_migrate(&store, &lock, &src, &o, &res, &err), 0, "%s", err.msg);
    cr_assert_eq(fk.digests, 1);
    cr_assert_eq(fk.reads, 0, "the rows never come over the wire");
    cr_assert_eq(fl.acquired, 0);
    cr_assert_eq(fk.nsteps, 0);
    cr_assert_eq(res.from, 2);
    cr_assert_eq(res.to, 2);
}

Test(engine, without_a_digest_port_nothing_to_do_reads_the_history_once)
{
    struct rg_store plain = store;
    struct rg_migrate_opts o = opts();
    struct rg_migrate_result res;
    struct rg_err err = {0};
    plain.digest_history = NULL;
    add_file(1, "a");
    add_row(&fk, 1, "a", RG_ROW_APPLIED);
    cr_assert_eq(rg_engine_migrate(&plain, NULL, &src, &o, &res, &err), 0, "%s", err.msg);
    cr_assert_eq(fk.reads, 1);
    cr_assert_eq(res.to, 1);
}

/* Each difference the digest must not hide: the full path then names it. */
Test(engine, a_digest_that_differs_takes_the_full_path_drift)
{
    struct rg_migrate_opts o = opts();
    struct rg_migrate_result res;
    struct rg_err err = {0};
    add_file(1, "a");
    add_file(2, "changed");
    add_row(&fk, 1, "a", RG_ROW_APPLIED);
    add_row(&fk, 2, "b", RG_ROW_APPLIED);
    cr_assert_eq(rg_engine_migrate(&store, NULL, &src, &o, &res, &err), -1);
    cr_assert_eq(err.code, RG_ECONFLICT);
    cr_assert(strstr(err.msg, "checksum drift") != NULL, "%s", err.msg);
    cr_assert_eq(fk.reads, 1);
}

Test(engine, a_digest_that_differs_takes_the_full_path_pending_and_failed)
{
    struct rg_migrate_opts o = opts();
    struct rg_migrate_result res;
    struct rg_err err = {0};
    add_file(1, "a");
    add_file(2, "b");
    add_row(&fk, 1, "a", RG_ROW_APPLIED);
    cr_assert_eq(rg_engine_migrate(&store, NULL, &src, &o, &res, &err), 0, "%s", err.msg);
    cr_assert_eq(fk.nsteps, 1, "version 2 is pending");
    setup();
    add_file(1, "a");
    add_row(&fk, 1, "a", RG_ROW_FAILED);
    cr_assert_eq(rg_engine_migrate(&store, NULL, &src, &o, &res, &err), -1);
    cr_assert(strstr(err.msg, "marked failed") != NULL, "%s", err.msg);
}

Test(engine, scripts_or_a_lower_target_skip_the_digest)
{
    struct rg_migrate_opts o = opts();
    struct rg_migrate_result res;
    struct rg_err err = {0};
    add_file(1, "a");
    add_file(2, "b");
    add_row(&fk, 1, "a", RG_ROW_APPLIED);
    add_row(&fk, 2, "b", RG_ROW_APPLIED);
    o.target = 1;
    cr_assert_eq(rg_engine_migrate(&store, NULL, &src, &o, &res, &err), -1, "no down file");
    cr_assert_eq(fk.digests, 0);
    o.target = INT64_MAX;
    datas[0] = (struct rg_script){.name = "seed.sql", .path = "data/seed.sql", .sql = "SELECT 1"};
    src.ndata = 1;
    cr_assert_eq(rg_engine_migrate(&store, NULL, &src, &o, &res, &err), 0, "%s", err.msg);
    cr_assert_eq(fk.digests, 0);
    cr_assert_eq(fk.nsteps, 1, "the data script ran");
}

Test(engine, a_running_row_is_read_again_after_waiting_for_it)
{
    struct rg_migrate_opts o = opts();
    struct rg_migrate_result res;
    struct rg_err err = {0};
    add_file(1, "a");
    add_row(&fk, 1, "a", RG_ROW_RUNNING);
    cr_assert_eq(rg_engine_migrate(&store, NULL, &src, &o, &res, &err), 0, "%s", err.msg);
    cr_assert_eq(fk.waited, 1);
    cr_assert_eq(fk.reads, 2);
    cr_assert_eq(fk.nsteps, 0);
    cr_assert_eq(res.to, 1);
}

Test(engine, the_leader_runs_the_steps_then_releases)
{
    struct fake_lock fl = {.grant = true};
    struct rg_lock lock = FAKE_LOCK(fl);
    struct rg_migrate_opts o = opts();
    struct rg_migrate_result res;
    struct rg_err err = {0};
    add_file(1, "a");
    add_file(2, "b");
    cr_assert_eq(rg_engine_migrate(&store, &lock, &src, &o, &res, &err), 0, "%s", err.msg);
    cr_assert_eq(fl.acquired, 1);
    cr_assert_eq(fl.released, 1);
    cr_assert(fl.released_ok);
    cr_assert_eq(res.applied, 2);
}

Test(engine, a_waiter_finds_the_work_done_elsewhere_and_runs_nothing)
{
    struct fake_lock fl = {.grant = false};
    struct rg_lock lock = FAKE_LOCK(fl);
    struct rg_migrate_opts o = opts();
    struct rg_migrate_result res;
    struct rg_err err = {0};
    add_file(1, "a");
    add_file(2, "b");
    add_script(datas, &src.ndata, "seed.sql", "d1");
    cr_assert_eq(rg_engine_migrate(&store, &lock, &src, &o, &res, &err), 0, "%s", err.msg);
    cr_assert(res.elsewhere);
    cr_assert_eq(fk.nsteps, 0, "a waiter ran steps");
    cr_assert_eq(res.to, 2);
    cr_assert_eq(fl.released, 0);
    cr_assert_geq(fl.polls, 1);
}

Test(engine, a_lease_lost_while_leading_is_exit_8_not_the_cancelled_statement)
{
    struct fake_lock fl = {.grant = true, .lose = true};
    struct rg_lock lock = FAKE_LOCK(fl);
    struct rg_migrate_opts o = opts();
    struct rg_migrate_result res;
    struct rg_err err = {0};
    add_file(1, "a");
    fk.fail_version = 1; /* the cancelled statement */
    cr_assert_eq(rg_engine_migrate(&store, &lock, &src, &o, &res, &err), -1);
    cr_assert_eq(err.code, RG_ELEASE, "%s", err.msg);
    cr_assert_eq(fl.released, 1);
    cr_assert_not(fl.released_ok);
}

/* ---- the real leader (pkg/lease) as the lock, over a fake Lease API ---- */

/* A cluster that lets this run create the Lease, then refuses every write to it (a Role
 * that lost its update right mid-run): releasing it fails. */
struct refusing_api {
    struct rg_lease_record rec;
    int updates;
};

static int refusing_get(void *ctx, struct rg_lease_record *rec, struct rg_err *err)
{
    (void)err;
    *rec = ((struct refusing_api *)ctx)->rec;
    return 0;
}

static int refusing_create(void *ctx, const struct rg_lease_record *want,
                           struct rg_lease_record *got, struct rg_err *err)
{
    struct refusing_api *a = ctx;
    (void)err;
    a->rec = *want;
    snprintf(a->rec.resource_version, sizeof(a->rec.resource_version), "1");
    *got = a->rec;
    return 0;
}

static int refusing_update(void *ctx, const struct rg_lease_record *want,
                           struct rg_lease_record *got, struct rg_err *err)
{
    (void)want;
    (void)got;
    ((struct refusing_api *)ctx)->updates++;
    rg_err_set(err, RG_EAPIDENIED, "leases \"rollgate\" is forbidden: cannot update");
    return -1;
}

static int64_t frozen_ms(void *ctx)
{
    (void)ctx;
    return 1000;
}

static void fixed_microtime(void *ctx, char *buf, size_t n)
{
    (void)ctx;
    snprintf(buf, n, "2024-05-01T12:00:00.000000Z");
}

static void no_cancel(void *ctx)
{
    (void)ctx;
}

static bool no_pause(void *ctx, int64_t ms)
{
    (void)ctx;
    (void)ms;
    return false;
}

Test(engine, a_release_that_fails_is_logged_and_the_runs_own_error_is_kept)
{
    struct refusing_api api = {0};
    struct rg_lease_api port = {&api, refusing_get, refusing_create, refusing_update, NULL};
    struct rg_lease_clock clock = {NULL, frozen_ms, fixed_microtime};
    /* A renewal period far longer than the test: only the release writes. */
    struct rg_leader_opts lo = {{"pod-a", 15000, 10000, 3600 * 1000}, "ns/rollgate", 60000};
    struct rg_leader_hooks hooks = {NULL, no_cancel, no_pause, NULL, NULL, NULL};
    struct rg_leader *leader = rg_leader_new(&port, &clock, &lo, &hooks);
    struct rg_lock lock;
    struct rg_migrate_opts o = opts();
    struct rg_migrate_result res;
    struct rg_err err = {0};
    char logged[4096] = "";
    FILE *log = tmpfile();

    cr_assert_not_null(log);
    rg_log_setup(RG_LOG_FORMAT_TEXT, RG_LOG_WARN, log);
    rg_leader_lock(leader, &lock);
    add_file(1, "a");
    fk.fail_version = 1;
    cr_assert_eq(rg_engine_migrate(&store, &lock, &src, &o, &res, &err), -1);
    cr_assert_eq(api.updates, 1, "the release was not attempted");
    cr_assert_eq(err.code, RG_EMIGRATION, "%s", err.msg);
    cr_assert(strstr(err.msg, "boom"), "%s", err.msg);
    rewind(log);
    cr_assert_gt(fread(logged, 1, sizeof(logged) - 1, log), 0);
    cr_assert(strstr(logged, "could not release the lease"), "%s", logged);
    cr_assert(strstr(logged, "cannot update"), "%s", logged);
    fclose(log);
    rg_leader_free(leader);
}

/* ---- wait: the history polled between pauses of a fake clock ---- */

static const struct rg_wait_opts wopts = {.poll_ms = 2000, .limit_ms = 0};

static void wait_setup(void)
{
    setup();
    memset(&ft, 0, sizeof(ft));
    ft.ms = 5000;
}

TestSuite(wait, .init = wait_setup);

Test(wait, a_current_schema_returns_at_once_without_a_pause)
{
    int64_t version = -1;
    struct rg_err err = {0};

    add_file(1, "a");
    add_file(2, "b");
    add_row(&fk, 1, "a", RG_ROW_APPLIED);
    add_row(&fk, 2, "b", RG_ROW_APPLIED);
    cr_assert_eq(rg_engine_wait(&store, NULL, &fclock, &src, &wopts, &version, &err), 0, "%s",
                 err.msg);
    cr_assert_eq(version, 2);
    cr_assert_eq(ft.pauses, 0);
}

Test(wait, pending_migrations_are_polled_until_another_run_applied_them_and_nothing_is_written)
{
    int64_t version = -1;
    struct rg_err err = {0};

    add_file(1, "a");
    add_file(2, "b");
    add_row(&fk, 1, "a", RG_ROW_APPLIED);
    ft.apply_at = 3;
    cr_assert_eq(rg_engine_wait(&store, NULL, &fclock, &src, &wopts, &version, &err), 0, "%s",
                 err.msg);
    cr_assert_eq(version, 2);
    cr_assert_eq(ft.pauses, 3);
    cr_assert_eq(ft.slept[0], 2000, "pauses are the poll period");
    cr_assert_eq(fk.nsteps, 0, "wait ran a step");
    cr_assert_eq(fk.ensure_calls, 0, "wait created the history");
}

Test(wait, a_held_lock_keeps_it_waiting_after_the_schema_is_current)
{
    struct fake_lock fl = {.held_looks = 2};
    struct rg_lock lock = FAKE_LOCK(fl);
    int64_t version = -1;
    struct rg_err err = {0};

    add_file(1, "a");
    add_row(&fk, 1, "a", RG_ROW_APPLIED);
    cr_assert_eq(rg_engine_wait(&store, &lock, &fclock, &src, &wopts, &version, &err), 0, "%s",
                 err.msg);
    cr_assert_eq(fl.looks, 3);
    cr_assert_eq(ft.pauses, 2);
    cr_assert_eq(fl.acquired + fl.released, 0, "wait took the lock");
}

Test(wait, the_lock_is_not_read_while_migrations_are_pending)
{
    struct fake_lock fl = {0};
    struct rg_lock lock = FAKE_LOCK(fl);
    int64_t version = -1;
    struct rg_err err = {0};

    add_file(1, "a");
    ft.apply_at = 2;
    cr_assert_eq(rg_engine_wait(&store, &lock, &fclock, &src, &wopts, &version, &err), 0, "%s",
                 err.msg);
    cr_assert_eq(ft.pauses, 2);
    cr_assert_eq(fl.looks, 1, "the lock was read while the schema was behind");
}

Test(wait, the_limit_ends_it_with_the_lease_code_naming_what_is_pending)
{
    const struct rg_wait_opts limited = {.poll_ms = 2000, .limit_ms = 5000};
    int64_t version = -1;
    struct rg_err err = {0};

    add_file(1, "a");
    add_file(2, "b");
    add_file(3, "c");
    add_row(&fk, 1, "a", RG_ROW_APPLIED);
    cr_assert_eq(rg_engine_wait(&store, NULL, &fclock, &src, &limited, &version, &err), -1);
    cr_assert_eq(err.code, RG_ELEASE, "%s", err.msg);
    cr_assert(strstr(err.msg, "version 1 with 2 pending"), "%s", err.msg);
    cr_assert_eq(ft.pauses, 3, "looks at 0, 2 and 4 s, gives up at 6 s");
}

Test(wait, a_stopped_pause_is_a_signal_and_nothing_was_changed)
{
    int64_t version = -1;
    struct rg_err err = {0};

    add_file(1, "a");
    ft.stop = true;
    cr_assert_eq(rg_engine_wait(&store, NULL, &fclock, &src, &wopts, &version, &err), -1);
    cr_assert_eq(err.code, RG_ESIGNAL, "%s", err.msg);
    cr_assert(strstr(err.msg, "nothing was changed"), "%s", err.msg);
    cr_assert_eq(fk.nsteps, 0);
}

Test(wait, drift_fails_at_once_instead_of_waiting_for_ever)
{
    int64_t version = -1;
    struct rg_err err = {0};

    add_file(1, "a");
    add_file(2, "b");
    add_row(&fk, 1, "changed", RG_ROW_APPLIED);
    cr_assert_eq(rg_engine_wait(&store, NULL, &fclock, &src, &wopts, &version, &err), -1);
    cr_assert_eq(err.code, RG_ECONFLICT, "%s", err.msg);
    cr_assert_eq(ft.pauses, 0);
}

Test(wait, a_running_mark_whose_run_is_connected_is_waited_for)
{
    int64_t version = -1;
    struct rg_err err = {0};

    add_file(1, "a");
    add_row(&fk, 1, "a", RG_ROW_RUNNING);
    ft.apply_at = 2;
    cr_assert_eq(rg_engine_wait(&store, NULL, &fclock, &src, &wopts, &version, &err), 0, "%s",
                 err.msg);
    cr_assert_eq(version, 1);
    cr_assert_eq(ft.pauses, 2);
    cr_assert_eq(fk.alive_asks, 2);
}

Test(wait, a_running_mark_whose_run_is_gone_fails_at_once_with_the_repair)
{
    int64_t version = -1;
    struct rg_err err = {0};

    add_file(1, "a");
    add_row(&fk, 1, "a", RG_ROW_RUNNING);
    fk.runs_gone = true;
    cr_assert_eq(rg_engine_wait(&store, NULL, &fclock, &src, &wopts, &version, &err), -1);
    cr_assert_eq(err.code, RG_ECONFLICT, "%s", err.msg);
    cr_assert(strstr(err.msg, "repair"), "%s", err.msg);
    cr_assert_eq(ft.pauses, 0);
    cr_assert_eq(fk.nsteps, 0);
}

/* ---- phases: rollgate:phase=post migrations and migrate --phase ---- */

static void add_post_file(int64_t version, const char *sum)
{
    add_file(version, sum);
    files[src.n - 1].post = true;
}

static struct rg_migrate_opts phase_opts(enum rg_phase phase)
{
    struct rg_migrate_opts o = opts();
    o.phase = phase;
    return o;
}

Test(engine, phase_pre_applies_pre_migrations_past_a_pending_post_one_and_leaves_it)
{
    struct rg_migrate_opts o = phase_opts(RG_PHASE_PRE);
    struct rg_migrate_result res;
    struct rg_err err = {0};

    add_file(1, "a");
    add_post_file(2, "b");
    add_file(3, "c");
    cr_assert_eq(rg_engine_migrate(&store, NULL, &src, &o, &res, &err), 0, "%s", err.msg);
    cr_assert_eq(fk.nsteps, 2);
    cr_assert_eq(fk.applied_order[0], 1);
    cr_assert_eq(fk.applied_order[1], 3);
    cr_assert_eq(res.left_post, 1);
    cr_assert_eq(res.to, 3);
}

Test(engine, phase_post_applies_pending_pre_ones_first_then_the_post_ones)
{
    struct rg_migrate_opts o = phase_opts(RG_PHASE_POST);
    struct rg_migrate_result res;
    struct rg_err err = {0};

    add_file(1, "a");
    add_post_file(2, "b");
    add_file(3, "c");
    add_post_file(4, "d");
    cr_assert_eq(rg_engine_migrate(&store, NULL, &src, &o, &res, &err), 0, "%s", err.msg);
    cr_assert_eq(fk.nsteps, 4);
    cr_assert_eq(fk.applied_order[0], 1);
    cr_assert_eq(fk.applied_order[1], 3);
    cr_assert_eq(fk.applied_order[2], 2);
    cr_assert_eq(fk.applied_order[3], 4);
    cr_assert_eq(res.left_post, 0);
}

Test(engine, phase_all_applies_both_kinds_in_version_order)
{
    struct rg_migrate_opts o = phase_opts(RG_PHASE_ALL);
    struct rg_migrate_result res;
    struct rg_err err = {0};

    add_file(1, "a");
    add_post_file(2, "b");
    add_file(3, "c");
    cr_assert_eq(rg_engine_migrate(&store, NULL, &src, &o, &res, &err), 0, "%s", err.msg);
    cr_assert_eq(fk.nsteps, 3);
    cr_assert_eq(fk.applied_order[0], 1);
    cr_assert_eq(fk.applied_order[1], 2);
    cr_assert_eq(fk.applied_order[2], 3);
}

Test(engine, a_post_migration_left_below_the_applied_version_is_not_out_of_order)
{
    struct rg_migrate_opts o = phase_opts(RG_PHASE_POST);
    struct rg_migrate_result res;
    struct rg_err err = {0};

    add_file(1, "a");
    add_post_file(2, "b");
    add_file(3, "c");
    add_row(&fk, 1, "a", RG_ROW_APPLIED);
    add_row(&fk, 3, "c", RG_ROW_APPLIED);
    cr_assert_eq(rg_engine_migrate(&store, NULL, &src, &o, &res, &err), 0, "%s", err.msg);
    cr_assert_eq(fk.nsteps, 1);
    cr_assert_eq(fk.applied_order[0], 2);
}

Test(engine, a_pre_migration_below_the_applied_version_is_still_out_of_order)
{
    struct rg_migrate_opts o = phase_opts(RG_PHASE_PRE);
    struct rg_migrate_result res;
    struct rg_err err = {0};

    add_file(1, "a");
    add_file(2, "b");
    add_post_file(3, "c");
    add_row(&fk, 1, "a", RG_ROW_APPLIED);
    add_row(&fk, 3, "c", RG_ROW_APPLIED);
    cr_assert_eq(rg_engine_migrate(&store, NULL, &src, &o, &res, &err), -1);
    cr_assert_eq(err.code, RG_EFILES);
    cr_assert(strstr(err.msg, "version 2 is pending but below"), "%s", err.msg);
    cr_assert_eq(fk.nsteps, 0);
}

Test(engine, phase_pre_with_only_post_migrations_pending_asks_for_no_lock)
{
    struct rg_migrate_opts o = phase_opts(RG_PHASE_PRE);
    struct rg_migrate_result res;
    struct rg_err err = {0};
    struct fake_lock fl = {.grant = true};
    struct rg_lock lock = FAKE_LOCK(fl);

    add_file(1, "a");
    add_post_file(2, "b");
    add_row(&fk, 1, "a", RG_ROW_APPLIED);
    cr_assert_eq(rg_engine_migrate(&store, &lock, &src, &o, &res, &err), 0, "%s", err.msg);
    cr_assert_eq(fl.acquired, 0, "the fast path asked for the lock");
    cr_assert_eq(fk.nsteps, 0);
    cr_assert_eq(res.left_post, 1);
}

Test(engine, a_rollback_undoes_post_and_pre_migrations_newest_first_whatever_the_phase)
{
    struct rg_migrate_opts o = phase_opts(RG_PHASE_PRE);
    struct rg_migrate_result res;
    struct rg_err err = {0};

    add_file(1, "a");
    add_post_file(2, "b");
    add_file(3, "c");
    files[1].down_path = "dir/f.down.sql";
    files[2].down_path = "dir/f.down.sql";
    add_row(&fk, 1, "a", RG_ROW_APPLIED);
    add_row(&fk, 2, "b", RG_ROW_APPLIED);
    add_row(&fk, 3, "c", RG_ROW_APPLIED);
    o.target = 1;
    cr_assert_eq(rg_engine_migrate(&store, NULL, &src, &o, &res, &err), 0, "%s", err.msg);
    cr_assert_eq(fk.nsteps, 2);
    cr_assert_eq(fk.applied_order[0], -3);
    cr_assert_eq(fk.applied_order[1], -2);
    cr_assert_eq(res.reverted, 2);
}

Test(wait, post_deploy_migrations_still_pending_do_not_hold_wait)
{
    int64_t version = -1;
    struct rg_err err = {0};

    add_file(1, "a");
    add_post_file(2, "b");
    add_file(3, "c");
    add_row(&fk, 1, "a", RG_ROW_APPLIED);
    add_row(&fk, 3, "c", RG_ROW_APPLIED);
    cr_assert_eq(rg_engine_wait(&store, NULL, &fclock, &src, &wopts, &version, &err), 0, "%s",
                 err.msg);
    cr_assert_eq(version, 3);
    cr_assert_eq(ft.pauses, 0);
}

Test(wait, a_pending_pre_migration_holds_wait_while_a_post_one_is_pending_too)
{
    int64_t version = -1;
    struct rg_err err = {0};
    const struct rg_wait_opts limited = {.poll_ms = 2000, .limit_ms = 5000};

    add_file(1, "a");
    add_post_file(2, "b");
    add_file(3, "c");
    add_row(&fk, 1, "a", RG_ROW_APPLIED);
    cr_assert_eq(rg_engine_wait(&store, NULL, &fclock, &src, &limited, &version, &err), -1);
    cr_assert_eq(err.code, RG_ELEASE);
    cr_assert(strstr(err.msg, "with 1 pending"), "the post-deploy one counted: %s", err.msg);
}

TestSuite(dry_run, .init = setup);

/* plan reads the files of what it tries, as migrate would (this one does not exist). */
Test(dry_run, reads_the_files_it_tries)
{
    struct rg_migrate_opts o = opts();
    struct rg_dry_run d;
    struct rg_err err = {0};
    add_unread_file(1, "a", false);
    cr_assert_eq(rg_engine_dry_run(&store, &src, &o, &d, &err), -1);
    cr_assert_eq(err.code, RG_EFILES, "%s", err.msg);
    cr_assert(strstr(err.msg, "nowhere/f.up.sql"), "%s", err.msg);
    cr_assert_eq(fk.trial_begins, 0);
    rg_dry_run_free(&d);
}

Test(dry_run, tries_pending_migrations_in_order_in_one_rolled_back_transaction_writing_nothing)
{
    struct rg_migrate_opts o = opts();
    struct rg_dry_run d;
    struct rg_err err = {0};

    add_row(&fk, 1, "a", RG_ROW_APPLIED);
    add_sql_file(1, "a", "CREATE TABLE t1 ();", false);
    add_sql_file(2, "b", "ALTER TABLE t1 ADD c int;", false);
    add_sql_file(3, "c", "CREATE INDEX CONCURRENTLY i ON t1 (c);\nSELECT 1;", true);
    add_sql_file(4, "d", "DROP TABLE t1;", false);
    o.lock_timeout_ms = 5000;
    file_directives[3][0].lock_timeout_ms = 200;
    cr_assert_eq(rg_engine_dry_run(&store, &src, &o, &d, &err), 0, "%s", err.msg);
    cr_assert_eq(fk.trial_begins, 1);
    cr_assert_eq(fk.trial_ends, 1);
    cr_assert_eq(fk.ntrials, 2);
    cr_assert_eq(fk.trial_order[0], 2);
    cr_assert_eq(fk.trial_order[1], 4);
    cr_assert_eq(fk.trial_lock_timeout[0], 5000);
    cr_assert_eq(fk.trial_lock_timeout[1], 200, "the file's directive wins");
    /* Neither the history table nor a history row. */
    cr_assert_eq(fk.ensure_calls, 0);
    cr_assert_eq(fk.runs, 0);
    cr_assert_eq(d.current, 1);
    cr_assert(d.tried);
    cr_assert_eq(d.n, 3);
    cr_assert_eq(d.ms[0].version, 2);
    cr_assert_str_eq(d.ms[0].trial.stmts[0].locks[0].relation, "public.t2");
    /* The no-transaction migration: its statements listed, none run. */
    cr_assert(d.ms[1].no_transaction);
    cr_assert_eq(d.ms[1].trial.n, 2);
    cr_assert_not(d.ms[1].trial.stmts[0].ran);
    cr_assert_eq(d.ms[1].trial.stmts[1].line, 2);
    cr_assert_eq(d.ms[2].version, 4);
    rg_dry_run_free(&d);
}

Test(dry_run, each_migrations_lint_findings_name_their_statement)
{
    struct rg_migrate_opts o = opts();
    struct rg_dry_run d;
    struct rg_err err = {0};

    add_sql_file(1, "a", "SELECT 1;\nCREATE INDEX i ON t0 (c);", false);
    cr_assert_eq(rg_engine_dry_run(&store, &src, &o, &d, &err), 0, "%s", err.msg);
    cr_assert_eq(d.ms[0].lint.n, 1);
    cr_assert_eq(d.ms[0].lint.items[0].rule, RG_LINT_REQUIRE_CONCURRENT_INDEX_CREATION);
    cr_assert_eq(d.ms[0].lint.items[0].stmt, 1, "the second statement's");
    rg_dry_run_free(&d);
}

Test(dry_run, a_failing_statement_stops_the_plan_rolls_back_and_keeps_what_was_seen)
{
    struct rg_migrate_opts o = opts();
    struct rg_dry_run d;
    struct rg_err err = {0};

    add_sql_file(1, "a", "CREATE TABLE t1 ();", false);
    add_sql_file(2, "b", "SELECT * FROM nowhere;", false);
    add_sql_file(3, "c", "CREATE TABLE t3 ();", false);
    fk.fail_version = 2;
    cr_assert_eq(rg_engine_dry_run(&store, &src, &o, &d, &err), -1);
    cr_assert_eq(err.code, RG_EMIGRATION);
    cr_assert(strstr(err.msg, "42P01"), "%s", err.msg);
    cr_assert_eq(fk.trial_ends, 1, "rolled back after the failure");
    cr_assert_not(fk.trial_open);
    cr_assert_eq(fk.ntrials, 2, "nothing tried after the failure");
    cr_assert_eq(d.n, 2);
    cr_assert_str_eq(d.ms[1].trial.stmts[0].sqlstate, "42P01");
    rg_dry_run_free(&d);
}

Test(dry_run, nothing_pending_opens_no_transaction)
{
    struct rg_migrate_opts o = opts();
    struct rg_dry_run d;
    struct rg_err err = {0};

    add_row(&fk, 1, "a", RG_ROW_APPLIED);
    add_sql_file(1, "a", "CREATE TABLE t1 ();", false);
    cr_assert_eq(rg_engine_dry_run(&store, &src, &o, &d, &err), 0, "%s", err.msg);
    cr_assert_eq(fk.trial_begins, 0);
    cr_assert_eq(d.n, 0);
    cr_assert(d.tried);
    rg_dry_run_free(&d);
}

Test(dry_run, a_target_stops_the_plan_and_one_below_the_schema_is_refused)
{
    struct rg_migrate_opts o = opts();
    struct rg_dry_run d;
    struct rg_err err = {0};

    add_row(&fk, 1, "a", RG_ROW_APPLIED);
    add_sql_file(1, "a", "CREATE TABLE t1 ();", false);
    add_sql_file(2, "b", "CREATE TABLE t2 ();", false);
    add_sql_file(3, "c", "CREATE TABLE t3 ();", false);
    o.target = 2;
    cr_assert_eq(rg_engine_dry_run(&store, &src, &o, &d, &err), 0, "%s", err.msg);
    cr_assert_eq(d.n, 1);
    cr_assert_eq(fk.trial_order[0], 2);
    rg_dry_run_free(&d);

    memset(&fk, 0, sizeof(fk));
    add_row(&fk, 1, "a", RG_ROW_APPLIED);
    add_row(&fk, 2, "b", RG_ROW_APPLIED);
    o.target = 1;
    cr_assert_eq(rg_engine_dry_run(&store, &src, &o, &d, &err), -1);
    cr_assert_eq(err.code, RG_EUSAGE);
    cr_assert(strstr(err.msg, "below the schema version 2"), "%s", err.msg);
    cr_assert_eq(fk.trial_begins, 0);
    cr_assert_not(d.tried);
    rg_dry_run_free(&d);
}

Test(dry_run, drift_refuses_before_anything_is_tried)
{
    struct rg_migrate_opts o = opts();
    struct rg_dry_run d;
    struct rg_err err = {0};

    add_row(&fk, 1, "old", RG_ROW_APPLIED);
    add_sql_file(1, "new", "CREATE TABLE t1 ();", false);
    add_sql_file(2, "b", "CREATE TABLE t2 ();", false);
    cr_assert_eq(rg_engine_dry_run(&store, &src, &o, &d, &err), -1);
    cr_assert_eq(err.code, RG_ECONFLICT);
    cr_assert_eq(fk.trial_begins, 0);
    cr_assert_not(d.tried);
    rg_dry_run_free(&d);
}

Test(dry_run, golang_migrates_version_counts_as_applied_without_adopting_it)
{
    struct rg_migrate_opts o = opts();
    struct rg_dry_run d;
    struct rg_err err = {0};

    add_sql_file(1, "a", "CREATE TABLE t1 ();", false);
    add_sql_file(2, "b", "CREATE TABLE t2 ();", false);
    fk.legacy = (struct rg_legacy){.found = true, .version = 1};
    cr_assert_eq(rg_engine_dry_run(&store, &src, &o, &d, &err), 0, "%s", err.msg);
    cr_assert_eq(d.current, 1);
    cr_assert_eq(fk.ntrials, 1);
    cr_assert_eq(fk.trial_order[0], 2);
    cr_assert_eq(fk.baselined, 0);
    cr_assert_eq(fk.ensure_calls, 0);
    rg_dry_run_free(&d);

    memset(&fk, 0, sizeof(fk));
    fk.legacy = (struct rg_legacy){.found = true, .version = 1, .dirty = true};
    cr_assert_eq(rg_engine_dry_run(&store, &src, &o, &d, &err), -1);
    cr_assert_eq(err.code, RG_ECONFLICT);
    cr_assert(strstr(err.msg, "dirty at version 1"), "%s", err.msg);
    cr_assert_eq(fk.trial_begins, 0);
    rg_dry_run_free(&d);
}

Test(engine, lint_enforce_refuses_an_error_not_allowed_before_any_step)
{
    struct rg_migrate_opts o = opts();
    struct rg_migrate_result res;
    struct rg_err err = {0};
    add_sql_file(1, "a", "SELECT 1;", false);
    add_sql_file(2, "b", "\nCREATE INDEX i ON t (a);", false);
    o.lint = o.lint_enforce = true;
    cr_assert_eq(rg_engine_migrate(&store, NULL, &src, &o, &res, &err), -1);
    cr_assert_eq(err.code, RG_EFILES);
    cr_assert(strstr(err.msg, "dir/f.up.sql:2:1: lint error require-concurrent-index-creation"),
              "%s", err.msg);
    cr_assert_eq(fk.runs, 0, "no step may run, version 1 included");
}

Test(engine, lint_enforce_runs_an_error_the_file_allows)
{
    struct rg_migrate_opts o = opts();
    struct rg_migrate_result res;
    struct rg_err err = {0};
    add_sql_file(1, "a", "CREATE INDEX i ON t (a);", false);
    file_directives[0][0].allow_line[RG_LINT_REQUIRE_CONCURRENT_INDEX_CREATION] = 1;
    o.lint = o.lint_enforce = true;
    cr_assert_eq(rg_engine_migrate(&store, NULL, &src, &o, &res, &err), 0, "%s", err.msg);
    cr_assert_eq(fk.nsteps, 1);
}

Test(engine, lint_warn_runs_an_error_not_allowed)
{
    struct rg_migrate_opts o = opts();
    struct rg_migrate_result res;
    struct rg_err err = {0};
    add_sql_file(1, "a", "ALTER TABLE t ALTER COLUMN a TYPE bigint;", false);
    o.lint = true;
    cr_assert_eq(rg_engine_migrate(&store, NULL, &src, &o, &res, &err), 0, "%s", err.msg);
    cr_assert_eq(fk.nsteps, 1);
}
