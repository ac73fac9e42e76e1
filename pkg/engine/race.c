/* The runs that wait while another does the work: a Lease follower's look at the database
 * (rg_engine_work_left, mostly the history's digest), and a run without a Lease that claims
 * the fence and applies, or steps aside and follows the run that holds it (rg_engine_race),
 * trying again itself if that run stalls. */
#include <inttypes.h>
#include <stdint.h>
#include <string.h>

#include "engine/follow.h"
#include "engine/run.h"
#include "log/log.h"

/* Takes the count from a pass: schema and repeatable steps (data scripts do not count:
 * the leader's run has just run them). */
void rg_engine_count(struct waiting *w, const struct pass *p)
{
    w->schema = w->others = 0;
    for (size_t i = 0; i < p->r.n; i++) {
        w->schema += p->r.steps[i].kind == RG_KIND_SCHEMA;
        w->others += p->r.steps[i].kind == RG_KIND_REPEATABLE;
    }
    w->rows = (int64_t)p->h.n;
    w->up = p->up;
    w->counted = true;
    w->left = w->schema + w->others;
    memset(&w->seen, 0, sizeof(w->seen));
}

/* The digest's answer, when it can give one (*known): steps left now. */
static int glance(struct waiting *w, bool *known, size_t *left, struct rg_err *err)
{
    struct rg_history_digest d = {0};
    bool same;
    int64_t done;

    *known = false;
    if (!w->counted || !w->up || !w->schema || !w->store->digest_history)
        return 0;
    if (w->store->digest_history(w->store->ctx, &d, err) < 0)
        return -1;
    same = d.exists == w->seen.exists && d.all_applied == w->seen.all_applied &&
           d.rows == w->seen.rows && strcmp(d.sha256, w->seen.sha256) == 0;
    w->seen = d;
    if (!w->final_made && w->opts->target >= w->src->items[w->src->n - 1].version &&
        !w->src->nrepeatable)
        rg_source_digest(w->src, w->final);
    w->final_made = true;
    if (*w->final && d.exists && d.all_applied && d.rows == (int64_t)w->src->n &&
        strcmp(d.sha256, w->final) == 0) {
        *known = w->current = true;
        *left = 0;
        return 0;
    }
    done = d.rows - w->rows;
    if (!d.exists || !d.all_applied || done < 0 || (uint64_t)done >= w->schema)
        return 0;
    *known = true;
    *left = same ? w->left : w->schema - (size_t)done + w->others;
    return 0;
}

/* For a run waiting on the leader: how many schema or repeatable steps remain. */
int rg_engine_work_left(void *arg, size_t *left, struct rg_err *err)
{
    struct waiting *w = arg;
    bool known = false;

    if (glance(w, &known, left, err) < 0)
        return -1;
    if (!known) {
        rg_engine_pass_free(&w->last);
        if (rg_engine_prepare(w->store, w->src, w->opts, NULL, false, &w->last, err) < 0)
            return -1;
        rg_engine_count(w, &w->last);
        *left = w->left;
        w->last_done = *left == 0;
        return 0;
    }
    w->left = *left;
    return 0;
}

/* The run's result once another run did the work: from the digest that showed every file
 * applied (p stays the up run's pass it was), the full look that found nothing left, or,
 * if the lock said so without either, a count made now. */
int rg_engine_view_after(struct waiting *w, struct pass *p, struct rg_migrate_result *res,
                         struct rg_err *err)
{
    res->elsewhere = true;
    if (w->current) {
        res->to = w->src->items[w->src->n - 1].version;
        return 0;
    }
    rg_engine_pass_free(p);
    if (w->last_done) {
        *p = w->last;
        memset(&w->last, 0, sizeof(w->last));
        w->last_done = false;
    } else if (rg_engine_prepare(w->store, w->src, w->opts, NULL, false, p, err) < 0) {
        return -1;
    }
    res->to = p->plan.current;
    return 0;
}

/* A racer without a lock, following: how long the work has shown no progress. */
struct racing {
    const struct rg_migrate_opts *opts;
    int64_t progress_at;
    int64_t pause_ms;
};

/* Polls fast while the other run makes progress, backing off while it shows none, and
 * stops following once none for follow_stall_ms: the other run may have died, and the
 * work must not be stranded. */
static int racing_look(void *ctx, struct rg_follow *f, bool stalled, int64_t *pause_ms, bool *stop,
                       struct rg_err *err)
{
    struct racing *rs = ctx;
    const struct rg_clock *clock = rs->opts->clock;
    int64_t t = clock->now_ms(clock->ctx);

    (void)f;
    (void)err;
    if (!stalled) {
        rs->progress_at = t;
        rs->pause_ms = rs->opts->follow_poll_ms;
    } else if (rs->pause_ms < rs->opts->follow_stall_ms / 4) {
        rs->pause_ms *= 2;
    }
    *stop = t - rs->progress_at >= rs->opts->follow_stall_ms;
    *pause_ms = rs->pause_ms;
    return 0;
}

/* A racer without a lock that met another run at the fence: waits on the database like a
 * Lease follower until the work is done (*done), or until it stalls. */
static int follow(struct waiting *w, bool *done, struct rg_err *err)
{
    const struct rg_clock *clock = w->opts->clock;
    struct racing rs = {w->opts, clock->now_ms(clock->ctx), w->opts->follow_poll_ms};
    struct rg_follow f = {clock, rg_engine_work_left, w, racing_look, &rs, SIZE_MAX, 0};
    enum rg_follow_end end;

    if (rg_engine_follow(&f, &end, err) < 0)
        return -1;
    *done = end == RG_FOLLOW_DONE;
    if (!*done)
        RG_WARN("the other run's migrations showed no progress for a while; trying again "
                "to apply them" RG_F "stalled_ms=%" PRId64,
                w->opts->follow_stall_ms);
    return 0;
}

/* Runs without a lock. Claims the fence first, before reading and linting its files, unless
 * the history has moved since this run read it (another run is applying): of runs started
 * together one gets it and the others follow it at once, having read only names and
 * checksums. The claimant then tries its steps, stepping aside to follow at the first one
 * another run holds. After a stall a follower tries again, its files read and linted then,
 * waiting at the fence this time. */
int rg_engine_race(struct waiting *w, struct pass *p, struct rg_migrate_result *res,
                   struct rg_err *err)
{
    const struct rg_store *store = w->store;
    bool claim = p->r.n && store->claim, held = true, stepped = false, done = false;
    int rc;

    if (claim && store->claim(store->ctx, (int64_t)p->h.n, &held, err) < 0)
        return -1;
    if (held) {
        /* The files read and linted now (plan_up), before any step runs. */
        rc = rg_engine_plan_steps(store, w->src, w->opts, true, p, err);
        if (claim)
            store->unclaim(store->ctx);
        if (rc < 0 || rg_engine_execute(&p->r, true, claim, &stepped, res, err) < 0)
            return -1;
        if (!stepped)
            return 0;
    } else {
        RG_INFO("another run holds the migration lock; following it");
    }
    if (follow(w, &done, err) < 0)
        return -1;
    if (done)
        return rg_engine_view_after(w, p, res, err);
    rg_engine_pass_free(p);
    if (rg_engine_prepare(store, w->src, w->opts, NULL, true, p, err) < 0)
        return -1;
    return rg_engine_execute(&p->r, false, false, &stepped, res, err);
}
