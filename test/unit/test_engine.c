/* The engine against a fake store: ordering, re-checks, conflicts, all without PostgreSQL. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine.h"
#include "err/mem.h"
#include "log/log.h"

#define MAX 64

struct fake {
    struct rg_history_row rows[MAX];
    size_t n;
    bool exists;
    int64_t applied_order[MAX]; /* versions run, in order */
    size_t napplied;
    int64_t taken_by_other; /* version another run applies just before us */
    int64_t fail_version;   /* apply of this version fails */
    bool durable[MAX];
    int ensure_calls;
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
    h->exists = f->exists;
    h->n = f->n;
    h->rows = rg_calloc(f->n, sizeof(*h->rows));
    for (size_t i = 0; i < f->n; i++) {
        h->rows[i] = f->rows[i];
        h->rows[i].title = rg_strdup("t");
        h->rows[i].applied_at = rg_strdup("now");
        h->rows[i].applied_by = rg_strdup("me");
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

static int fake_apply(void *ctx, const struct rg_apply *a, enum rg_apply_outcome *outcome,
                      int64_t *ms, struct rg_err *err)
{
    struct fake *f = ctx;
    *ms = 1;
    if (a->m->version == f->fail_version) {
        rg_err_set(err, RG_EMIGRATION, "%s: boom", a->m->up_name);
        return -1;
    }
    if (a->m->version == f->taken_by_other) {
        *outcome = RG_APPLY_ALREADY;
        return 0;
    }
    f->durable[f->napplied] = a->durable;
    f->applied_order[f->napplied++] = a->m->version;
    *outcome = RG_APPLY_DONE;
    return 0;
}

static struct fake fk;
static struct rg_store store = {&fk, fake_read, fake_ensure, fake_apply};
static struct rg_migration files[MAX];
static struct rg_source src;

static void setup(void)
{
    rg_log_setup(RG_LOG_FORMAT_TEXT, RG_LOG_ERROR, stderr);
    memset(&fk, 0, sizeof(fk));
    memset(files, 0, sizeof(files));
    src.items = files;
    src.n = 0;
}

static void add_file(int64_t version, const char *sum)
{
    struct rg_migration *m = &files[src.n++];
    m->version = version;
    m->title = "t";
    m->up_name = "f.up.sql";
    m->up_path = "dir/f.up.sql";
    snprintf(m->checksum, sizeof(m->checksum), "%s", sum);
}

static struct rg_migrate_opts opts(void)
{
    struct rg_migrate_opts o = {.target = INT64_MAX, .applied_by = "me"};
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
    cr_assert_eq(rg_engine_migrate(&store, &src, &o, &res, &err), 0, "%s", err.msg);
    cr_assert_eq(fk.ensure_calls, 1);
    cr_assert_eq(fk.napplied, 3);
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
    cr_assert_eq(rg_engine_migrate(&store, &src, &o, &res, &err), 0);
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
    cr_assert_eq(rg_engine_migrate(&store, &src, &o, &res, &err), 0);
    cr_assert_eq(fk.ensure_calls, 0);
    cr_assert_eq(fk.napplied, 2);
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
    cr_assert_eq(rg_engine_migrate(&store, &src, &o, &res, &err), 0);
    cr_assert_eq(res.already, 1);
    cr_assert_eq(res.applied, 1);
    cr_assert_eq(fk.applied_order[0], 2);
}

Test(engine, drift_refuses_before_applying_anything_and_names_both_checksums)
{
    struct rg_migrate_opts o = opts();
    struct rg_migrate_result res;
    struct rg_err err = {0};
    add_file(1, "new-sum");
    add_file(2, "b");
    add_row(&fk, 1, "old-sum", RG_ROW_APPLIED);
    cr_assert_eq(rg_engine_migrate(&store, &src, &o, &res, &err), -1);
    cr_assert_eq(err.code, RG_ECONFLICT);
    cr_assert(strstr(err.msg, "old-sum") && strstr(err.msg, "new-sum"), "%s", err.msg);
    cr_assert(strstr(err.msg, "dir/f.up.sql"), "%s", err.msg);
    cr_assert_eq(fk.napplied, 0);
}

Test(engine, a_failed_row_stops_the_run_and_points_to_repair)
{
    struct rg_migrate_opts o = opts();
    struct rg_migrate_result res;
    struct rg_err err = {0};
    add_file(1, "a");
    add_file(2, "b");
    add_row(&fk, 1, "a", RG_ROW_FAILED);
    cr_assert_eq(rg_engine_migrate(&store, &src, &o, &res, &err), -1);
    cr_assert_eq(err.code, RG_ECONFLICT);
    cr_assert(strstr(err.msg, "rollgate repair"), "%s", err.msg);
    cr_assert_eq(fk.napplied, 0);
}

Test(engine, newer_schema_warns_by_default_and_fails_when_asked)
{
    struct rg_migrate_opts o = opts();
    struct rg_migrate_result res;
    struct rg_err err = {0};
    add_file(1, "a");
    add_row(&fk, 1, "a", RG_ROW_APPLIED);
    add_row(&fk, 2, "b", RG_ROW_APPLIED);
    cr_assert_eq(rg_engine_migrate(&store, &src, &o, &res, &err), 0, "%s", err.msg);
    cr_assert_eq(res.unknown, 1);
    cr_assert_eq(res.to, 2);
    o.fail_on_newer = true;
    cr_assert_eq(rg_engine_migrate(&store, &src, &o, &res, &err), -1);
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
    cr_assert_eq(rg_engine_migrate(&store, &src, &o, &res, &err), -1);
    cr_assert_eq(err.code, RG_EFILES);
    cr_assert(strstr(err.msg, "allowOutOfOrder"), "%s", err.msg);
    o.allow_out_of_order = true;
    cr_assert_eq(rg_engine_migrate(&store, &src, &o, &res, &err), 0, "%s", err.msg);
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
    cr_assert_eq(rg_engine_migrate(&store, &src, &o, &res, &err), -1);
    cr_assert_eq(err.code, RG_EMIGRATION);
    cr_assert_eq(fk.napplied, 1);
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
