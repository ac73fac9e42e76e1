/* A run's leadership over the Lease algorithm (lease.c): the follower's wait, the renewal
 * thread, the release, and the engine's lock port over them. */
#include "lease/leader.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cancel/cancel.h"
#include "engine/follow.h"
#include "mem/mem.h"
#include "log/log.h"

struct rg_leader {
    struct rg_lease lease;
    struct rg_leader_hooks hooks;
    char *where;
    int64_t wait_timeout_ms;
    unsigned seed; /* rand_r: the follower, then the renewal thread, never both at once */
    /* The renewal thread while leading, and how release tells it to stop. */
    pthread_t renewer;
    bool renewing;
    struct rg_cancel *stop_renewing;
    atomic_bool lost;
};

static int64_t now(const struct rg_leader *l)
{
    return l->lease.clock.monotonic_ms(l->lease.clock.ctx);
}

static int64_t jittered(struct rg_leader *l)
{
    return rg_lease_jittered_retry_ms(&l->lease, (uint32_t)rand_r(&l->seed));
}

static void set_deadline(struct rg_leader *l, int64_t monotonic_ms)
{
    if (l->lease.api.set_deadline)
        l->lease.api.set_deadline(l->lease.api.ctx, monotonic_ms);
}

static void event(struct rg_leader *l, const char *type, const char *reason, const char *message)
{
    if (l->hooks.event)
        l->hooks.event(l->hooks.ctx, type, reason, message);
}

struct rg_leader *rg_leader_new(const struct rg_lease_api *api, const struct rg_lease_clock *clock,
                                const struct rg_leader_opts *opts,
                                const struct rg_leader_hooks *hooks)
{
    struct rg_leader *l = rg_calloc(1, sizeof(*l));

    rg_lease_init(&l->lease, api, clock, &opts->lease);
    l->hooks = *hooks;
    l->where = rg_strdup(opts->where);
    l->wait_timeout_ms = opts->wait_timeout_ms;
    l->seed = (unsigned)getpid() ^ (unsigned)now(l);
    atomic_init(&l->lost, false);
    return l;
}

void rg_leader_free(struct rg_leader *l)
{
    if (!l)
        return;
    rg_cancel_free(l->stop_renewing);
    free(l->where);
    free(l);
}

/* Gives the Lease up. A failure is logged here and goes no further: the run's outcome is
 * what the run made it, and the Lease runs out on its own after its duration. */
static void give_up(struct rg_leader *l)
{
    struct rg_err err = {0};

    if (rg_lease_release(&l->lease, &err) < 0)
        RG_WARN("could not release the lease; it expires on its own after its duration" RG_F
                "lease=%s" RG_F "error=%s",
                l->where, err.msg);
}

/* While leading: renew every retry period. Past the renew deadline without a renewal, or
 * with another holder in the record, the lease is lost: cancel the running work so its
 * transaction rolls back before another run can start the same work. */
static void *renew(void *arg)
{
    struct rg_leader *l = arg;

    while (rg_cancel_sleep(l->stop_renewing, jittered(l))) {
        struct rg_err err = {0};
        bool held = false;

        /* The whole attempt, however the API answers, ends by the renew deadline. */
        set_deadline(l, l->lease.renewed_at_ms + l->lease.opts.renew_deadline_ms);
        if (rg_lease_try(&l->lease, &held, &err) < 0)
            RG_WARN("lease renewal failed" RG_F "error=%s", err.msg);
        set_deadline(l, 0);
        if (held)
            continue;
        if (rg_lease_renew_overdue(&l->lease) || rg_lease_other_valid(&l->lease)) {
            RG_ERROR("lost the lease; cancelling the running migration" RG_F "holder=%s",
                     l->lease.observed.holder);
            atomic_store(&l->lost, true);
            l->hooks.cancel(l->hooks.ctx);
            break;
        }
    }
    return NULL;
}

/* The Lease has just been taken: renew it from now on. */
static int lead(struct rg_leader *l, struct rg_err *err)
{
    RG_INFO("leading: holding the lease" RG_F "lease=%s" RG_F "identity=%s", l->where,
            l->lease.identity);
    if (l->hooks.leading)
        l->hooks.leading(l->hooks.ctx);
    l->stop_renewing = rg_cancel_new();
    l->renewing = pthread_create(&l->renewer, NULL, renew, l) == 0;
    if (!l->renewing) {
        /* Leading without renewing would let the Lease lapse mid-migration. */
        give_up(l);
        rg_err_set(err, RG_EINTERNAL, "could not start the lease renewal thread");
        return -1;
    }
    event(l, "Normal", "MigrationStarted", "rollgate is applying migrations");
    return 0;
}

/* A follower's look at the holder while the work shows no progress: does it still have a
 * database session (*alive, or *gone)? Without one (a SIGKILLed or OOM-killed pod, a lost
 * node), and once its record has not changed for a retry period, the Lease is taken over
 * now instead of after its duration. Neither is set when the holder was not asked about (no
 * hook, no holder, or a record already expired, which the next read of the Lease takes).
 * *acquired: this run leads. */
static int take_over_if_gone(struct rg_leader *l, bool *acquired, bool *alive_out, bool *gone,
                             struct rg_err *err)
{
    char holder[sizeof(l->lease.observed.holder)];
    bool alive = true;

    *acquired = *alive_out = *gone = false;
    if (!l->hooks.holder_alive || !l->lease.observed.exists || !*l->lease.observed.holder ||
        !rg_lease_other_valid(&l->lease))
        return 0;
    memcpy(holder, l->lease.observed.holder, sizeof(holder));
    if (l->hooks.holder_alive(l->hooks.ctx, holder, &alive, err) < 0)
        return -1;
    *gone = !alive;
    *alive_out = alive;
    if (alive || now(l) - l->lease.observed_at_ms < l->lease.opts.retry_period_ms)
        return 0;
    if (rg_lease_take_over(&l->lease, holder, acquired, err) < 0)
        return -1;
    if (*acquired)
        RG_WARN("the lease holder had not renewed it for a retry period and has no database "
                "session: took the lease over" RG_F "lease=%s" RG_F "holder=%s",
                l->where, holder);
    return 0;
}

/* What a follower's look at the work means for the Lease (the wait itself is the engine's,
 * rg_engine_follow). */
struct following {
    struct rg_leader *l;
    int64_t start, read_at;
    bool taken; /* took the Lease over from a holder with no session */
};

static int look(void *ctx, struct rg_follow *f, bool stalled, int64_t *pause_ms, bool *stop,
                struct rg_err *err)
{
    struct following *fw = ctx;
    struct rg_leader *l = fw->l;
    bool alive = false, gone = false;

    /* While the leader makes progress the work shows it alive. When it shows none (a long
     * migration, or a dead leader), the holder is asked about in the database. One with a
     * session is working: a leader that cannot renew cancels its work, and its session
     * ends, within its renew deadline, so its record is read again only once it could have
     * expired (a long migration costs the followers no API request: DESIGN's "at most 2 per
     * follower"), and taken at its expiry, as client-go would. Any other holder's record is
     * read every retry period, so that the last renewal is seen soon after it happened, and
     * one with no session is taken over once its record stood still for a retry period. */
    if (stalled) {
        int64_t every;

        if (take_over_if_gone(l, &fw->taken, &alive, &gone, err) < 0)
            return -1;
        if (fw->taken) {
            *stop = true;
            return 0;
        }
        /* A create that lost the race observed no record: its winner wrote it just now,
         * so it cannot expire before a duration either (a dead winner is then taken over
         * from the record read at that point, or by a follower that did read it). */
        every = alive || !l->lease.observed.exists ? l->lease.opts.duration_ms
                                                   : l->lease.opts.retry_period_ms;
        if (f->until_ms > fw->read_at + every)
            f->until_ms = fw->read_at + every;
    }
    if (now(l) - fw->start >= l->wait_timeout_ms) {
        rg_err_set(err, RG_ELEASE,
                   "the lease is still held by %s after lease.waitTimeout, and "
                   "migrations are still pending",
                   *l->lease.observed.holder ? l->lease.observed.holder : "another run");
        return -1;
    }
    /* While the work shows no progress the holder is looked at twice a retry period (the
     * Lease itself is read once), and one without a session four times, so that a dead
     * one is taken over soon after its record stood still for one. */
    *pause_ms = gone ? l->lease.opts.retry_period_ms / 4 : stalled ? jittered(l) / 2 : jittered(l);
    return 0;
}

static int64_t lease_now(void *ctx)
{
    return now(ctx);
}

static bool lease_pause(void *ctx, int64_t ms)
{
    struct rg_leader *l = ctx;
    return l->hooks.pause(l->hooks.ctx, ms);
}

static int acquire(void *ctx, int (*work_left)(void *arg, size_t *left, struct rg_err *err),
                   void *arg, enum rg_lock_outcome *outcome, struct rg_err *err)
{
    struct rg_leader *l = ctx;
    /* The follower's wait asks only for time and pauses. */
    const struct rg_clock clock = {l, lease_now, lease_pause, NULL};
    struct following fw = {l, now(l), 0, false};
    struct rg_follow f = {&clock, work_left, arg, look, &fw, SIZE_MAX, 0};

    for (;;) {
        bool acquired = false;
        enum rg_follow_end end;

        if (rg_lease_try(&l->lease, &acquired, err) < 0)
            return -1;
        fw.read_at = now(l);
        if (acquired) {
            *outcome = RG_LOCK_LEADER;
            return lead(l, err);
        }
        /* Held elsewhere. Wait on the work, which says when it is done, and read the
         * Lease again only once its holder could have let it expire. A create that lost
         * the race leaves no record observed: its winner holds it from now. */
        f.until_ms = now(l) + (l->lease.observed.exists ? rg_lease_expires_in(&l->lease)
                                                        : l->lease.opts.duration_ms);
        if (f.before == SIZE_MAX)
            RG_INFO("waiting: another run holds the lease" RG_F "holder=%s",
                    l->lease.observed.holder);
        /* The work first, at least once: a holder seen releasing (an empty record, due
         * now) has usually just finished it. */
        if (rg_engine_follow(&f, &end, err) < 0)
            return -1;
        if (end == RG_FOLLOW_DONE) {
            *outcome = RG_LOCK_DONE_ELSEWHERE;
            return 0;
        }
        if (end == RG_FOLLOW_STOP) {
            *outcome = RG_LOCK_LEADER;
            return lead(l, err);
        }
    }
}

static void release(void *ctx, bool succeeded, bool *lost)
{
    struct rg_leader *l = ctx;

    if (l->renewing) {
        rg_cancel_fire(l->stop_renewing);
        pthread_join(l->renewer, NULL);
        l->renewing = false;
    }
    *lost = atomic_load(&l->lost);
    event(l, succeeded ? "Normal" : "Warning", succeeded ? "MigrationSucceeded" : "MigrationFailed",
          succeeded ? "rollgate applied the migrations"
                    : "rollgate could not apply the migrations");
    /* A lost Lease is someone else's now: nothing of ours to give up. */
    if (!*lost)
        give_up(l);
}

static int held(void *ctx, bool *held, struct rg_err *err)
{
    struct rg_leader *l = ctx;

    if (rg_lease_read(&l->lease, err) < 0)
        return -1;
    /* Judged as the algorithm does: a holder whose record has stood still for its
     * duration, as this process has seen it, holds it no more. */
    *held = rg_lease_other_valid(&l->lease);
    return 0;
}

void rg_leader_lock(struct rg_leader *l, struct rg_lock *lock)
{
    lock->ctx = l;
    lock->acquire = acquire;
    lock->release = release;
    lock->held = held;
}
