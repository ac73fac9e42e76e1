#include "commands.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cluster.h"
#include "engine/engine.h"
#include "clock/clock.h"
#include "log/log.h"
#include "output.h"
#include "pg/pg.h"
#include "signals.h"
#include "source/source.h"

/* The store, not connected yet: rg_pg_cancel (and the signal watcher) work on it at once. */
static struct rg_pg *new_store(const struct rg_config *cfg)
{
    struct rg_pg_opts o = {
        .url = cfg->database.url,
        .direct_url = cfg->database.direct_url,
        .password = cfg->database.password,
        .schema = cfg->database.schema,
        .connect_timeout_ms = cfg->database.connect_timeout_ms,
        .connect_retry_ms = cfg->database.connect_retry_ms,
        .lock_retries = cfg->database.lock_retries,
        .progress_interval_ms = cfg->log.progress_interval_ms,
        .deadline_ms = rg_signals_deadline(),
        .wait_timeout_ms = cfg->lease.wait_timeout_ms,
        .identity = cfg->lease.identity,
    };
    struct rg_pg *pg = rg_pg_new(&o);

    rg_signals_attach(pg);
    return pg;
}

static struct rg_pg *open_store(const struct rg_config *cfg, struct rg_store *store,
                                struct rg_err *err)
{
    struct rg_pg *pg = new_store(cfg);

    if (rg_pg_connect(pg, err) < 0) {
        rg_signals_attach(NULL);
        rg_pg_free(pg);
        return NULL;
    }
    rg_pg_store(pg, store);
    return pg;
}

static void close_store(struct rg_pg *pg)
{
    rg_signals_attach(NULL);
    rg_pg_free(pg);
}

/* The history and how the files compare with it: what status and validate read. */
struct view {
    struct rg_history h;
    struct rg_plan plan;
};

static int view_read(const struct rg_store *store, const struct rg_source *src, struct view *v,
                     struct rg_err *err)
{
    memset(v, 0, sizeof(*v));
    if (store->read_history(store->ctx, &v->h, err) < 0)
        return -1;
    rg_plan_build(&v->plan, src, &v->h);
    return 0;
}

static void view_free(struct view *v)
{
    rg_plan_free(&v->plan);
    rg_history_free(&v->h);
}

/* What most commands hold: the files, the store over a connection, the Lease when one is
 * used, and how files and history compare. One close for all of them. */
struct session {
    struct rg_source src;
    struct rg_pg *pg;
    struct rg_store store;
    struct rg_cluster *cluster;
    struct view v;
};

static void cancel_store(void *pg)
{
    rg_pg_cancel(pg);
}

/* The files in cfg's directory, read on a thread of pkg/source's while the connection
 * (cfg's retries) is made and, with digest_ahead, the history's digest asked for (what
 * migrate's start compares first): a start over a long history costs the larger of the
 * two, not their sum. The files' error wins, as when they were read first, and cuts the
 * connection's retries short. */
static int session_open(struct session *s, const struct rg_config *cfg, bool digest_ahead,
                        struct rg_err *err)
{
    struct rg_source_job *job;
    struct rg_err conn_err = {0};
    int connected, loaded;

    memset(s, 0, sizeof(*s));
    s->pg = new_store(cfg);
    job = rg_source_load_start(cfg->migrations.dir, digest_ahead, cancel_store, s->pg);
    connected = rg_pg_connect(s->pg, &conn_err);
    if (connected == 0 && digest_ahead)
        rg_pg_digest_ahead(s->pg);
    /* Joined before pg may be freed: the loading thread may still cancel it. */
    loaded = rg_source_load_finish(job, &s->src, err);
    if (connected < 0) {
        close_store(s->pg);
        s->pg = NULL;
    } else {
        rg_pg_store(s->pg, &s->store);
    }
    if (loaded < 0)
        return -1;
    if (connected < 0) {
        *err = conn_err;
        return -1;
    }
    return 0;
}

static void session_close(struct session *s)
{
    rg_cluster_close(s->cluster);
    view_free(&s->v);
    close_store(s->pg);
    rg_source_free(&s->src);
}

/* What a run takes from the configuration, for the commands that plan like migrate. */
static struct rg_migrate_opts migrate_opts(const struct rg_config *cfg)
{
    struct rg_migrate_opts o = {
        .target = cfg->migrations.target,
        .phase = cfg->migrations.phase,
        .fail_on_newer = cfg->migrations.on_newer_schema == RG_ON_NEWER_FAIL,
        .allow_out_of_order = cfg->migrations.allow_out_of_order,
        .applied_by = cfg->lease.identity,
        .lock_timeout_ms = cfg->database.lock_timeout_ms,
        .statement_timeout_ms = cfg->database.statement_timeout_ms,
        .wait_timeout_ms = cfg->lease.wait_timeout_ms,
        .lint = cfg->migrations.lint != RG_LINT_OFF,
        .lint_enforce = cfg->migrations.lint == RG_LINT_ENFORCE,
    };
    return o;
}

int rg_cmd_migrate(const struct rg_cli *cli, const struct rg_config *cfg, char *summary, size_t n,
                   struct rg_err *err)
{
    struct session s;
    struct rg_migrate_result res;
    struct rg_clock clock;
    struct rg_migrate_opts opts = migrate_opts(cfg);
    int64_t start = rg_now_ms();
    char left[64] = "";
    int ret = -1, rc;

    if (cli->after_rollout && cfg->migrations.phase != RG_PHASE_POST) {
        rg_err_set(err, RG_EUSAGE, "--after-rollout applies only to --phase post");
        return -1;
    }
    if (!cfg->migrations.auto_migrate) {
        snprintf(summary, n,
                 "migrate: skipped, auto-migrate is off (migrations.autoMigrate=false); the "
                 "database was not touched");
        return 0;
    }
    memset(&s, 0, sizeof(s));
    rg_signals_clock(&clock);
    /* Without a Lease, a run that meets another at the fence follows it: a look is the
     * history's digest (one row), every 100 ms while the work goes on, and the pause before
     * its end is cut to the pace seen (rg_engine_follow), so a follower ends within a few
     * milliseconds of the other run at 7 followers' 70 looks a second; a run silent for a
     * Lease's duration is presumed gone, as a Lease follower would. */
    opts.clock = &clock;
    opts.follow_poll_ms = 100;
    opts.follow_stall_ms = cfg->lease.duration_ms;
    if (cli->after_rollout) {
        /* Before the database is opened: the wait may be long, and a session that waits
         * holds nothing there, not even a snapshot (DESIGN.md "Database"). */
        if (rg_source_load(cfg->migrations.dir, &s.src, err) < 0 ||
            rg_cluster_wait_rollout(cfg, cli->after_rollout, err) < 0)
            goto out;
        s.pg = open_store(cfg, &s.store, err);
        if (!s.pg)
            goto out;
    } else if (session_open(&s, cfg, cfg->migrations.target == RG_TARGET_LATEST, err) < 0) {
        goto out;
    }
    RG_INFO("migrate started" RG_F "dir=%s" RG_F "files=%zu" RG_F "identity=%s" RG_F "phase=%s",
            cfg->migrations.dir, rg_source_count(&s.src), cfg->lease.identity,
            rg_config_phase_name(cfg->migrations.phase));
    if (rg_cluster_open(&s.cluster, cfg, s.pg, err) < 0)
        goto out;
    rc = rg_engine_migrate(&s.store, rg_cluster_lock(s.cluster), &s.src, &opts, &res, err);
    if (s.cluster)
        RG_INFO("Kubernetes API requests made" RG_F "requests=%zu", rg_cluster_requests(s.cluster));
    if (rc < 0)
        goto out;
    if (res.left_post)
        snprintf(left, sizeof(left), "; %zu post-deploy migration%s left pending", res.left_post,
                 res.left_post == 1 ? "" : "s");
    if (res.applied || res.reverted)
        snprintf(summary, n,
                 "migrate: %s %zu migration%s and ran %zu script%s in %" PRId64
                 "ms, schema at version %" PRId64 " (was %" PRId64 ")%s%s%s",
                 res.reverted ? "rolled back" : "applied", res.applied + res.reverted,
                 res.applied + res.reverted == 1 ? "" : "s", res.scripts,
                 res.scripts == 1 ? "" : "s", rg_now_ms() - start, res.to, res.from,
                 res.adopted ? ", adopted from golang-migrate" : "",
                 res.elsewhere ? ", the rest done by another run" : "", left);
    else
        snprintf(summary, n,
                 "migrate: no migration to %s, schema at version %" PRId64 "%s; ran %zu script%s%s",
                 opts.target < res.from ? "roll back" : "apply", res.to,
                 res.already || res.elsewhere ? " (done by another run)" : "", res.scripts,
                 res.scripts == 1 ? "" : "s", left);
    ret = 0;
out:
    session_close(&s);
    return ret;
}

int rg_cmd_status(const struct rg_cli *cli, const struct rg_config *cfg, char *summary, size_t n,
                  struct rg_err *err)
{
    struct session s;
    const struct rg_plan *plan = &s.v.plan;
    int ret = -1;

    if (session_open(&s, cfg, false, err) < 0 || view_read(&s.store, &s.src, &s.v, err) < 0)
        goto out;
    rg_output_status(stdout, plan, cli->output);
    snprintf(summary, n,
             "status: schema at version %" PRId64 ", image latest %" PRId64
             ", %zu pending, %zu changed, %zu failed",
             plan->current, plan->latest, plan->pending, plan->changed, plan->failed);
    ret = 0;
    if (cli->exit_code && (plan->changed || plan->failed)) {
        rg_err_set(err, RG_ECONFLICT, "%s", summary);
        ret = -1;
    } else if (cli->exit_code && plan->pending) {
        rg_err_set(err, RG_EPENDING, "%s", summary);
        ret = -1;
    }
out:
    session_close(&s);
    return ret;
}

int rg_cmd_version(const struct rg_cli *cli, const struct rg_config *cfg, char *summary, size_t n,
                   struct rg_err *err)
{
    struct rg_history h = {0};
    struct rg_store store;
    struct rg_pg *pg;
    int64_t version = 0;

    pg = open_store(cfg, &store, err);
    if (!pg)
        return -1;
    if (store.read_history(store.ctx, &h, err) < 0) {
        close_store(pg);
        return -1;
    }
    for (size_t i = 0; i < h.n; i++)
        if (h.rows[i].state == RG_ROW_APPLIED && h.rows[i].version > version)
            version = h.rows[i].version;
    rg_output_version(stdout, version, cli->output);
    snprintf(summary, n, "version: schema at version %" PRId64, version);
    rg_history_free(&h);
    close_store(pg);
    return 0;
}

/* validate's lint (migrations.lint warn or enforce): the up files of the migrations still
 * to apply when the history is known (plan; an applied file is past helping, and adding
 * an allow to it would change its checksum), else of all of them. Findings are logged;
 * with enforce an error not allowed fails validate (RG_EFILES) after all are logged. */
static int lint_files(const struct rg_config *cfg, const struct rg_source *src,
                      const struct rg_plan *plan, struct rg_err *err)
{
    struct rg_lint l = {0};
    int ret = 0;

    if (cfg->migrations.lint == RG_LINT_OFF)
        return 0;
    for (size_t i = 0; i < (plan ? plan->n : src->n); i++) {
        const struct rg_migration *m = plan ? plan->items[i].file : &src->items[i];
        if (!m || (plan && plan->items[i].state != RG_ITEM_PENDING))
            continue;
        rg_lint_sql(m->up_sql, m->up_len, m->directives, &l);
        rg_lint_log(m->up_path, &l);
        if (ret == 0 && cfg->migrations.lint == RG_LINT_ENFORCE &&
            rg_lint_check(m->up_path, &l, err) < 0)
            ret = -1;
    }
    rg_lint_free(&l);
    return ret;
}

/* The files alone always; against the history too when a database answers the first
 * attempt, since validate runs where a database may well not be (CI, a laptop). */
int rg_cmd_validate(const struct rg_cli *cli, const struct rg_config *cfg, char *summary, size_t n,
                    struct rg_err *err)
{
    struct rg_config once = *cfg;
    struct session s;
    struct rg_err conn_err = {0};
    struct rg_migrate_opts opts = migrate_opts(cfg);
    int ret = -1;

    (void)cli;
    memset(&s, 0, sizeof(s));
    /* Every file read whole, as no run does: a validate that passes means no run will
     * refuse one. */
    if (rg_source_load_listed(cfg->migrations.dir, &s.src, err) < 0 ||
        rg_source_prepare_all(&s.src, err) < 0 || rg_source_check_names(&s.src, err) < 0 ||
        rg_source_check_sum(&s.src, err) < 0)
        goto out;
    once.database.connect_retry_ms = 0;
    s.pg = open_store(&once, &s.store, &conn_err);
    if (!s.pg) {
        if (conn_err.code == RG_ESIGNAL || conn_err.code == RG_ECONFIG) {
            *err = conn_err;
            goto out;
        }
        RG_WARN("database not reachable: checked the files only" RG_F "error=%s", conn_err.msg);
        if (lint_files(cfg, &s.src, NULL, err) < 0)
            goto out;
        snprintf(summary, n,
                 "validate: %zu migrations, %zu repeatable, %zu data scripts are valid (files "
                 "only: no database reachable)",
                 s.src.n, s.src.nrepeatable, s.src.ndata);
        ret = 0;
        goto out;
    }
    if (view_read(&s.store, &s.src, &s.v, err) < 0 ||
        (s.v.plan.changed && rg_engine_drift(&s.store, &s.src, &s.v.plan, err) < 0) ||
        rg_engine_check(&s.v.plan, &opts, true, err) < 0 ||
        lint_files(cfg, &s.src, &s.v.plan, err) < 0)
        goto out;
    snprintf(summary, n,
             "validate: %zu migrations, %zu repeatable, %zu data scripts are valid and match "
             "the history (schema at version %" PRId64 ", %zu pending)",
             s.src.n, s.src.nrepeatable, s.src.ndata, s.v.plan.current, s.v.plan.pending);
    ret = 0;
out:
    session_close(&s);
    return ret;
}

int rg_cmd_sum(const struct rg_cli *cli, const struct rg_config *cfg, char *summary, size_t n,
               struct rg_err *err)
{
    size_t count = 0;

    (void)cli;
    if (rg_source_sum_write(cfg->migrations.dir, &count, err) < 0)
        return -1;
    snprintf(summary, n, "sum: wrote %s/" RG_SOURCE_SUM_FILE " for %zu up files",
             cfg->migrations.dir, count);
    return 0;
}

int rg_cmd_baseline(const struct rg_cli *cli, const struct rg_config *cfg, char *summary, size_t n,
                    struct rg_err *err)
{
    struct session s;
    size_t count = 0;
    int ret = -1;

    if (session_open(&s, cfg, false, err) < 0 ||
        rg_engine_baseline(&s.store, &s.src, cli->at_version, cfg->lease.identity, &count, err) < 0)
        goto out;
    snprintf(summary, n,
             "baseline: recorded %zu migration%s up to version %" PRId64
             " as applied without running them",
             count, count == 1 ? "" : "s", cli->at_version);
    ret = 0;
out:
    session_close(&s);
    return ret;
}

/* repair --checksums [--force]: the history takes the files' checksums (rg_engine.h). */
static int repair_checksums(const struct rg_cli *cli, const struct rg_config *cfg, char *summary,
                            size_t n, struct rg_err *err)
{
    struct session s;
    size_t recorded = 0;
    int ret = -1;

    if (session_open(&s, cfg, false, err) < 0 ||
        rg_engine_repair_checksums(&s.store, &s.src, cli->force, &recorded, err) < 0)
        goto out;
    snprintf(summary, n, "repair: recorded %zu checksum%s", recorded, recorded == 1 ? "" : "s");
    ret = 0;
out:
    session_close(&s);
    return ret;
}

int rg_cmd_repair(const struct rg_cli *cli, const struct rg_config *cfg, char *summary, size_t n,
                  struct rg_err *err)
{
    struct rg_store store;
    struct rg_pg *pg;
    size_t cleared = 0;
    int ret = -1;

    if (cli->checksums)
        return repair_checksums(cli, cfg, summary, n, err);
    pg = open_store(cfg, &store, err);
    if (!pg)
        return -1;
    if (store.repair(store.ctx, cli->at_version, &cleared, err) == 0) {
        snprintf(summary, n, "repair: cleared %zu failed mark%s%s", cleared,
                 cleared == 1 ? "" : "s", cleared ? "; the next migrate runs them again" : "");
        ret = 0;
    }
    close_store(pg);
    return ret;
}

int rg_cmd_wait(const struct rg_cli *cli, const struct rg_config *cfg, char *summary, size_t n,
                struct rg_err *err)
{
    struct session s;
    struct rg_clock clock;
    /* The run's timeout (--timeout) ends the wait through the signal watcher; without one,
     * lease.waitTimeout does. */
    struct rg_wait_opts opts = {
        .poll_ms = cfg->lease.retry_period_ms,
        .limit_ms = cfg->timeout_ms ? 0 : cfg->lease.wait_timeout_ms,
    };
    int64_t start = rg_now_ms(), version = 0;
    int ret = -1;

    (void)cli;
    rg_signals_clock(&clock);
    if (session_open(&s, cfg, false, err) < 0 || rg_cluster_open(&s.cluster, cfg, s.pg, err) < 0 ||
        rg_engine_wait(&s.store, rg_cluster_lock(s.cluster), &clock, &s.src, &opts, &version, err) <
            0)
        goto out;
    snprintf(summary, n, "wait: schema at version %" PRId64 " is current after %" PRId64 "ms",
             version, rg_now_ms() - start);
    ret = 0;
out:
    session_close(&s);
    return ret;
}

int rg_cmd_plan(const struct rg_cli *cli, const struct rg_config *cfg, char *summary, size_t n,
                struct rg_err *err)
{
    struct session s;
    struct rg_dry_run d = {0};
    struct rg_migrate_opts opts = migrate_opts(cfg);
    size_t tried = 0, listed = 0;
    int ret = -1, rc;

    if (session_open(&s, cfg, false, err) < 0)
        goto out;
    rc = rg_engine_dry_run(&s.store, &s.src, &opts, &d, err);
    /* Up to the failing statement too: what ran before it is part of the answer. */
    if (d.tried)
        rg_output_plan(stdout, &d, rc < 0 ? err->msg : NULL, cli->output);
    if (rc < 0)
        goto out;
    for (size_t i = 0; i < d.n; i++)
        if (d.ms[i].no_transaction)
            listed++;
        else
            tried++;
    snprintf(summary, n,
             "plan: schema at version %" PRId64 "; tried %zu migration%s in a transaction that "
             "was rolled back, listed %zu no-transaction migration%s; nothing was changed",
             d.current, tried, tried == 1 ? "" : "s", listed, listed == 1 ? "" : "s");
    ret = 0;
out:
    rg_dry_run_free(&d);
    session_close(&s);
    return ret;
}
