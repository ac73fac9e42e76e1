/* The Lease algorithm against an in-memory Lease and fake clocks: each "process" is an
 * rg_lease with its own monotonic clock, all sharing one fake API server. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "lease/leader.h"
#include "lease/lease.h"

/* One Lease object as the API server holds it. */
struct fake_api {
    struct rg_lease_record rec; /* rec.exists false: 404 */
    int64_t rv;                 /* resourceVersion, bumped on every write */
    int conflict_creates;       /* the next n creates answer 409 */
    int conflict_updates;       /* the next n updates answer 409 */
    enum rg_code fail_get;      /* the next call of each kind fails with this (RG_OK: none) */
    enum rg_code fail_create;
    enum rg_code fail_update;
    int gets, creates, updates;
    struct rg_lease_record last_update; /* what the last update asked for */
    /* From get number thief_at on, another process has taken the Lease over. */
    const char *thief;
    int thief_at;
};

static int take_failure(enum rg_code *code, struct rg_err *err)
{
    if (*code == RG_OK)
        return 0;
    rg_err_set(err, *code, "leases \"rollgate\" is forbidden: injected");
    *code = RG_OK;
    return -1;
}

static void bump(struct fake_api *f)
{
    snprintf(f->rec.resource_version, sizeof(f->rec.resource_version), "%lld", (long long)++f->rv);
}

static void other_writes(struct fake_api *f, const char *holder, int64_t duration_s,
                         const char *renew_time);

static int fake_get(void *ctx, struct rg_lease_record *rec, struct rg_err *err)
{
    struct fake_api *f = ctx;

    f->gets++;
    if (f->thief && f->gets >= f->thief_at) {
        other_writes(f, f->thief, 15, "t-thief");
        f->thief = NULL;
    }
    if (take_failure(&f->fail_get, err) < 0)
        return -1;
    *rec = f->rec;
    return 0;
}

static int fake_create(void *ctx, const struct rg_lease_record *want, struct rg_lease_record *got,
                       struct rg_err *err)
{
    struct fake_api *f = ctx;

    f->creates++;
    if (take_failure(&f->fail_create, err) < 0)
        return -1;
    if (f->conflict_creates > 0 || f->rec.exists) {
        if (f->conflict_creates > 0)
            f->conflict_creates--;
        return 1;
    }
    f->rec = *want;
    f->rec.exists = true;
    bump(f);
    *got = f->rec;
    return 0;
}

static int fake_update(void *ctx, const struct rg_lease_record *want, struct rg_lease_record *got,
                       struct rg_err *err)
{
    struct fake_api *f = ctx;

    f->updates++;
    f->last_update = *want;
    if (take_failure(&f->fail_update, err) < 0)
        return -1;
    if (f->conflict_updates > 0) {
        f->conflict_updates--;
        return 1;
    }
    /* As the API server: optimistic concurrency on metadata.resourceVersion. */
    if (!f->rec.exists || strcmp(want->resource_version, f->rec.resource_version) != 0)
        return 1;
    f->rec = *want;
    f->rec.exists = true;
    bump(f);
    *got = f->rec;
    return 0;
}

/* Another process writing the Lease behind our back (holder renewing or taking over). */
static void other_writes(struct fake_api *f, const char *holder, int64_t duration_s,
                         const char *renew_time)
{
    f->rec.exists = true;
    snprintf(f->rec.holder, sizeof(f->rec.holder), "%s", holder);
    f->rec.duration_s = duration_s;
    snprintf(f->rec.renew_time, sizeof(f->rec.renew_time), "%s", renew_time);
    bump(f);
}

/* A process's clock: monotonic ms set by the test, MicroTime from a counter. */
struct fake_clock {
    int64_t ms;
    int stamps;
};

static int64_t fake_monotonic(void *ctx)
{
    return ((struct fake_clock *)ctx)->ms;
}

static void fake_microtime(void *ctx, char *buf, size_t n)
{
    struct fake_clock *c = ctx;

    c->stamps++;
    snprintf(buf, n, "2024-05-01T12:00:%02d.%06dZ", c->stamps / 1000000 % 60, c->stamps % 1000000);
}

static struct fake_api api;

struct proc {
    struct fake_clock clock;
    struct rg_lease lease;
};

static struct proc pa, pb;

static void start(struct proc *p, const char *identity, int64_t at_ms)
{
    struct rg_lease_api a = {&api, fake_get, fake_create, fake_update, NULL};
    struct rg_lease_clock c = {&p->clock, fake_monotonic, fake_microtime};
    struct rg_lease_opts o = {identity, 15000, 10000, 2000};

    memset(p, 0, sizeof(*p));
    p->clock.ms = at_ms;
    rg_lease_init(&p->lease, &a, &c, &o);
}

static void setup(void)
{
    memset(&api, 0, sizeof(api));
    start(&pa, "pod-a", 1000);
    start(&pb, "pod-b", 500000); /* another host: its monotonic clock has nothing to do with a's */
}

/* One attempt that must not fail; returns whether the lease was acquired. */
static bool try_ok(struct proc *p)
{
    struct rg_err err = {RG_OK, ""};
    bool acquired = true;

    cr_assert_eq(rg_lease_try(&p->lease, &acquired, &err), 0, "%s", err.msg);
    return acquired;
}

TestSuite(lease, .init = setup);

Test(lease, creates_the_lease_when_absent)
{
    cr_assert(try_ok(&pa));
    cr_assert_eq(api.creates, 1);
    cr_assert_eq(api.updates, 0);
    cr_assert(api.rec.exists);
    cr_assert_str_eq(api.rec.holder, "pod-a");
    cr_assert_eq(api.rec.duration_s, 15);
    cr_assert_eq(api.rec.transitions, 0);
    cr_assert_str_eq(api.rec.acquire_time, "2024-05-01T12:00:00.000001Z");
    cr_assert_str_eq(api.rec.renew_time, "2024-05-01T12:00:00.000001Z");
    cr_assert(pa.lease.held);
    cr_assert_str_eq(pa.lease.observed.resource_version, "1");
    cr_assert_eq(pa.lease.observed_at_ms, 1000);
    cr_assert_eq(pa.lease.renewed_at_ms, 1000);
}

Test(lease, duration_is_rounded_up_to_whole_seconds)
{
    pa.lease.opts.duration_ms = 15001;
    cr_assert(try_ok(&pa));
    cr_assert_eq(api.rec.duration_s, 16);
}

Test(lease, second_process_sees_it_held_and_valid)
{
    cr_assert(try_ok(&pa));
    cr_assert_not(try_ok(&pb));
    cr_assert_eq(api.updates, 0, "a follower must not write a valid holder's lease");
    cr_assert_not(pb.lease.held);
    cr_assert(rg_lease_other_valid(&pb.lease));
    cr_assert_eq(rg_lease_expires_in(&pb.lease), 15000);
    cr_assert_str_eq(pb.lease.observed.holder, "pod-a");
    cr_assert_eq(pb.lease.observed_at_ms, 500000);
}

Test(lease, takeover_only_after_the_duration_on_the_observers_clock)
{
    cr_assert(try_ok(&pa));
    cr_assert_not(try_ok(&pb)); /* b first sees the record at its 500000 */

    pb.clock.ms = 500000 + 15000 - 1;
    cr_assert_not(try_ok(&pb));
    cr_assert(rg_lease_other_valid(&pb.lease));
    cr_assert_eq(rg_lease_expires_in(&pb.lease), 1);
    cr_assert_eq(api.updates, 0);

    pb.clock.ms = 500000 + 15000;
    cr_assert_not(rg_lease_other_valid(&pb.lease));
    cr_assert_eq(rg_lease_expires_in(&pb.lease), 0);
    cr_assert(try_ok(&pb));
    cr_assert_str_eq(api.rec.holder, "pod-b");
    cr_assert_eq(api.rec.transitions, 1);
    cr_assert_str_eq(api.rec.acquire_time, "2024-05-01T12:00:00.000001Z", "b's first stamp");
    cr_assert_str_eq(api.rec.renew_time, api.rec.acquire_time);
    cr_assert(pb.lease.held);
    cr_assert_eq(pb.lease.renewed_at_ms, 515000);
}

Test(lease, the_observers_clock_starts_when_it_first_sees_the_record)
{
    cr_assert(try_ok(&pa));
    /* a's clock runs far ahead: it does not matter, only b's clock since b's first read. */
    pa.clock.ms += 1000000;
    pb.clock.ms = 900000;
    cr_assert_not(try_ok(&pb));
    pb.clock.ms = 900000 + 14999;
    cr_assert_not(try_ok(&pb));
}

Test(lease, a_holder_that_keeps_renewing_never_expires_for_the_observer)
{
    cr_assert(try_ok(&pa));
    cr_assert_not(try_ok(&pb));
    for (int i = 0; i < 10; i++) {
        pa.clock.ms += 10000;
        pb.clock.ms += 10000;
        cr_assert(try_ok(&pa), "renewal %d", i);
        cr_assert_not(try_ok(&pb), "after %d s", (i + 1) * 10);
    }
    cr_assert_eq(api.rec.transitions, 0);
    cr_assert_str_eq(api.rec.holder, "pod-a");
    /* Once a stops, b waits a full duration from the last change it saw. */
    pb.clock.ms += 14999;
    cr_assert_not(try_ok(&pb));
    pb.clock.ms += 1;
    cr_assert(try_ok(&pb));
}

Test(lease, a_renewal_within_the_same_second_is_still_a_change)
{
    /* Same holder, same timestamps: only resourceVersion moves. */
    other_writes(&api, "pod-a", 15, "2024-05-01T12:00:00.000000Z");
    cr_assert_not(try_ok(&pb));
    pb.clock.ms += 10000;
    other_writes(&api, "pod-a", 15, "2024-05-01T12:00:00.000000Z");
    cr_assert_not(try_ok(&pb));
    pb.clock.ms += 10000;
    cr_assert_not(try_ok(&pb), "20s since the first read, but only 10s since the last change");
}

Test(lease, timestamps_in_the_record_are_ignored)
{
    other_writes(&api, "pod-a", 15, "1970-01-01T00:00:00.000000Z");
    cr_assert_not(try_ok(&pb), "renewTime in the far past, but b saw the record just now");
    cr_assert(rg_lease_other_valid(&pb.lease));
    pb.clock.ms += 14999;
    cr_assert_not(try_ok(&pb));
}

Test(lease, a_future_timestamp_does_not_extend_the_lease)
{
    other_writes(&api, "pod-a", 15, "2999-01-01T00:00:00.000000Z");
    cr_assert_not(try_ok(&pb));
    pb.clock.ms += 15000;
    cr_assert(try_ok(&pb));
}

Test(lease, the_holders_duration_is_used_not_ours)
{
    other_writes(&api, "pod-a", 60, "2024-05-01T12:00:00.000000Z");
    cr_assert_not(try_ok(&pb));
    pb.clock.ms += 59999;
    cr_assert_not(try_ok(&pb));
    pb.clock.ms += 1;
    cr_assert(try_ok(&pb));
    cr_assert_eq(api.rec.duration_s, 15, "the new holder writes its own duration");
}

Test(lease, renew_keeps_acquire_time_and_transitions)
{
    other_writes(&api, "pod-x", 15, "t0");
    api.rec.transitions = 4;
    bump(&api);
    cr_assert_not(try_ok(&pa));
    pa.clock.ms += 15000;
    cr_assert(try_ok(&pa));
    cr_assert_eq(api.rec.transitions, 5);
    char acquired_at[40];
    snprintf(acquired_at, sizeof(acquired_at), "%s", api.rec.acquire_time);

    pa.clock.ms += 2000;
    cr_assert(try_ok(&pa));
    cr_assert_eq(api.rec.transitions, 5);
    cr_assert_str_eq(api.rec.acquire_time, acquired_at);
    cr_assert_str_eq(api.rec.renew_time, "2024-05-01T12:00:00.000002Z");
    cr_assert_str_neq(api.rec.renew_time, acquired_at);
    cr_assert_eq(pa.lease.renewed_at_ms, 1000 + 15000 + 2000);
    cr_assert_str_eq(api.last_update.resource_version, "3", "sent the version it read");
}

Test(lease, our_own_record_is_renewed_at_once_even_if_unexpired)
{
    /* A restart with the same identity: client-go treats the lease as its own. */
    other_writes(&api, "pod-a", 15, "t0");
    cr_assert(try_ok(&pa));
    cr_assert_eq(api.rec.transitions, 0);
}

Test(lease, conflict_on_update_is_not_acquired_and_not_an_error)
{
    other_writes(&api, "pod-x", 15, "t0");
    cr_assert_not(try_ok(&pb));
    pb.clock.ms += 15000;
    api.conflict_updates = 1;
    cr_assert_not(try_ok(&pb));
    cr_assert_eq(api.updates, 1);
    cr_assert_not(pb.lease.held);
    cr_assert_str_eq(api.rec.holder, "pod-x");
    /* The next attempt reads again; the record did not change, so it is still expired. */
    cr_assert(try_ok(&pb));
    cr_assert_eq(api.gets, 3);
}

Test(lease, conflict_on_renew_keeps_held_until_the_deadline)
{
    cr_assert(try_ok(&pa));
    pa.clock.ms += 2000;
    api.conflict_updates = 1;
    cr_assert_not(try_ok(&pa));
    cr_assert(pa.lease.held);
    cr_assert_not(rg_lease_renew_overdue(&pa.lease));
}

Test(lease, losing_to_another_holder_clears_held)
{
    cr_assert(try_ok(&pa));
    other_writes(&api, "pod-b", 15, "t9");
    cr_assert_not(try_ok(&pa));
    cr_assert_not(pa.lease.held);
    cr_assert(rg_lease_other_valid(&pa.lease));
}

Test(lease, conflict_on_create_is_not_acquired_and_remembers_nothing)
{
    api.conflict_creates = 1;
    cr_assert_not(try_ok(&pa));
    cr_assert_eq(api.creates, 1);
    cr_assert_not(pa.lease.held);
    cr_assert_not(pa.lease.observed.exists);
    cr_assert_not(rg_lease_other_valid(&pa.lease));
    /* The winner's record, read next time, starts a's clock then. */
    other_writes(&api, "pod-b", 15, "t0");
    pa.clock.ms += 5000;
    cr_assert_not(try_ok(&pa));
    cr_assert_eq(pa.lease.observed_at_ms, 6000);
}

Test(lease, renew_overdue_after_the_renew_deadline)
{
    cr_assert_not(rg_lease_renew_overdue(&pa.lease), "not held");
    cr_assert(try_ok(&pa));
    pa.clock.ms += 10000;
    cr_assert_not(rg_lease_renew_overdue(&pa.lease));
    pa.clock.ms += 1;
    cr_assert(rg_lease_renew_overdue(&pa.lease));
    cr_assert(try_ok(&pa));
    cr_assert_not(rg_lease_renew_overdue(&pa.lease));
}

Test(lease, release_empties_the_holder_and_a_waiter_goes_at_once)
{
    cr_assert(try_ok(&pa));
    cr_assert_not(try_ok(&pb));
    char acquired_at[40];
    snprintf(acquired_at, sizeof(acquired_at), "%s", api.rec.acquire_time);

    struct rg_err err = {RG_OK, ""};
    int gets = api.gets;
    cr_assert_eq(rg_lease_release(&pa.lease, &err), 0, "%s", err.msg);
    cr_assert_eq(api.gets, gets, "release reads nothing first");
    cr_assert_eq(api.updates, 1);
    cr_assert_str_eq(api.rec.holder, "");
    cr_assert_eq(api.rec.duration_s, 1);
    cr_assert_str_eq(api.rec.acquire_time, acquired_at);
    cr_assert_str_eq(api.rec.renew_time, "2024-05-01T12:00:00.000002Z");
    cr_assert_eq(api.rec.transitions, 0);
    cr_assert_str_eq(api.last_update.resource_version, "1");
    cr_assert_not(pa.lease.held);

    /* b's clock has not moved at all since it saw a holding the lease. */
    cr_assert(try_ok(&pb));
    cr_assert_str_eq(api.rec.holder, "pod-b");
    cr_assert_eq(api.rec.transitions, 1, "client-go counts a change from an empty holder");
}

Test(lease, release_when_not_held_makes_no_call)
{
    struct rg_err err = {RG_OK, ""};

    cr_assert_eq(rg_lease_release(&pa.lease, &err), 0);
    other_writes(&api, "pod-b", 15, "t0");
    cr_assert_not(try_ok(&pa));
    int calls = api.gets + api.creates + api.updates;
    cr_assert_eq(rg_lease_release(&pa.lease, &err), 0);
    cr_assert_eq(api.gets + api.creates + api.updates, calls);
    cr_assert_str_eq(api.rec.holder, "pod-b");
}

Test(lease, release_after_a_conflict_retries_once_if_still_ours)
{
    cr_assert(try_ok(&pa));
    struct rg_err err = {RG_OK, ""};
    api.conflict_updates = 1;
    cr_assert_eq(rg_lease_release(&pa.lease, &err), 0, "%s", err.msg);
    cr_assert_eq(api.updates, 2);
    cr_assert_eq(api.gets, 2);
    cr_assert_str_eq(api.rec.holder, "");
    cr_assert_not(pa.lease.held);
}

Test(lease, release_after_a_takeover_leaves_the_new_holder_alone)
{
    cr_assert(try_ok(&pa));
    other_writes(&api, "pod-b", 15, "t9");
    struct rg_err err = {RG_OK, ""};
    cr_assert_eq(rg_lease_release(&pa.lease, &err), 0, "%s", err.msg);
    cr_assert_eq(api.updates, 1, "the stale write, then nothing");
    cr_assert_str_eq(api.rec.holder, "pod-b");
    cr_assert_not(pa.lease.held);
}

Test(lease, release_conflicting_twice_is_an_error_and_still_not_held)
{
    cr_assert(try_ok(&pa));
    struct rg_err err = {RG_OK, ""};
    api.conflict_updates = 2;
    cr_assert_eq(rg_lease_release(&pa.lease, &err), -1);
    cr_assert_eq(err.code, RG_ELEASE);
    cr_assert_eq(api.updates, 2);
    cr_assert_not(pa.lease.held);
}

Test(lease, release_error_propagates_and_clears_held)
{
    cr_assert(try_ok(&pa));
    struct rg_err err = {RG_OK, ""};
    api.fail_update = RG_EAPI;
    cr_assert_eq(rg_lease_release(&pa.lease, &err), -1);
    cr_assert_eq(err.code, RG_EAPI);
    cr_assert_not(pa.lease.held);
}

static void expect_failure(enum rg_code code, enum rg_code *where)
{
    struct rg_err err = {RG_OK, ""};
    bool acquired = true;

    *where = code;
    cr_assert_eq(rg_lease_try(&pa.lease, &acquired, &err), -1);
    cr_assert_eq(err.code, code);
    cr_assert_str_eq(err.msg, "leases \"rollgate\" is forbidden: injected");
    cr_assert_not(acquired);
}

Test(lease, an_error_on_get_propagates_with_its_code)
{
    expect_failure(RG_EAPIDENIED, &api.fail_get);
    cr_assert_eq(api.creates + api.updates, 0);
    cr_assert_not(pa.lease.observed.exists);
}

Test(lease, an_error_on_create_propagates_with_its_code)
{
    expect_failure(RG_EAPI, &api.fail_create);
    cr_assert_eq(api.creates, 1);
    cr_assert_not(pa.lease.held);
}

Test(lease, an_error_on_update_propagates_with_its_code)
{
    cr_assert(try_ok(&pa));
    pa.clock.ms += 2000;
    expect_failure(RG_ESIGNAL, &api.fail_update);
    cr_assert_eq(api.updates, 1);
    cr_assert(pa.lease.held, "unknown outcome: the renew deadline decides");
    pa.clock.ms += 8001;
    cr_assert(rg_lease_renew_overdue(&pa.lease));
}

Test(lease, jitter_stays_within_one_and_one_fifth_of_the_retry_period)
{
    cr_assert_eq(rg_lease_jittered_retry_ms(&pa.lease, 0), 2000);
    cr_assert_eq(rg_lease_jittered_retry_ms(&pa.lease, UINT32_MAX), 2400);
    cr_assert_eq(rg_lease_jittered_retry_ms(&pa.lease, UINT32_MAX / 2), 2199);
    for (uint32_t r = 1; r < UINT32_MAX - 7919u * 65537u; r += 7919u * 65537u) {
        int64_t ms = rg_lease_jittered_retry_ms(&pa.lease, r);
        cr_assert(ms >= 2000 && ms <= 2400, "%lld for %u", (long long)ms, r);
    }
    pa.lease.opts.retry_period_ms = 0;
    cr_assert_eq(rg_lease_jittered_retry_ms(&pa.lease, UINT32_MAX), 0);
}

Test(lease, microtime_strings_come_from_the_clock)
{
    pa.clock.stamps = 41;
    cr_assert(try_ok(&pa));
    cr_assert_str_eq(api.rec.acquire_time, "2024-05-01T12:00:00.000042Z");
    cr_assert_str_eq(api.rec.renew_time, "2024-05-01T12:00:00.000042Z");
    pa.clock.stamps = 2999999;
    cr_assert(try_ok(&pa));
    cr_assert_str_eq(api.rec.renew_time, "2024-05-01T12:00:03.000000Z");
    cr_assert_str_eq(api.rec.acquire_time, "2024-05-01T12:00:00.000042Z");
}

/* ---- the leader: a whole run's leadership (leader.h) over the same fake API ---- */

/* The run around the leader: its clock (which its pauses move), its work as the database
 * shows it, and what the hooks saw. */
static struct fake_clock run_clock;
static size_t answers[16], nanswers, polls;
static bool stopped;
static int pauses, leadings, cancels;
static char events[4][64];
static int nevents;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cancelled = PTHREAD_COND_INITIALIZER;
static struct rg_leader *leader;
static struct rg_lock lock;

/* The work left, as the engine would count it: the answers in turn, the last one for ever. */
static int work_left(void *arg, size_t *left, struct rg_err *err)
{
    (void)arg;
    (void)err;
    *left = answers[polls < nanswers ? polls : nanswers - 1];
    polls++;
    return 0;
}

static void hook_cancel(void *ctx)
{
    (void)ctx;
    pthread_mutex_lock(&mu);
    cancels++;
    pthread_cond_signal(&cancelled);
    pthread_mutex_unlock(&mu);
}

static bool hook_pause(void *ctx, int64_t ms)
{
    (void)ctx;
    pauses++;
    if (stopped)
        return false;
    run_clock.ms += ms;
    return true;
}

static void hook_leading(void *ctx)
{
    (void)ctx;
    leadings++;
}

static void hook_event(void *ctx, const char *type, const char *reason, const char *message)
{
    (void)ctx;
    (void)message;
    snprintf(events[nevents++ % 4], sizeof(events[0]), "%s %s", type, reason);
}

/* The database's word on the holder (hooks.holder_alive): -1 no hook, 0 dead, 1 alive;
 * renews_meanwhile: the holder renews its Lease while the follower asks. */
static int holder_is_alive;
static bool renews_meanwhile;
static char asked_about[64];

static int hook_holder_alive(void *ctx, const char *holder, bool *alive, struct rg_err *err)
{
    (void)ctx;
    (void)err;
    snprintf(asked_about, sizeof(asked_about), "%s", holder);
    if (renews_meanwhile)
        cr_assert(try_ok(&pa));
    *alive = holder_is_alive == 1;
    return 0;
}

static void start_leader(const char *identity, int64_t retry_period_ms, int64_t wait_timeout_ms)
{
    struct rg_lease_api a = {&api, fake_get, fake_create, fake_update, NULL};
    struct rg_lease_clock c = {&run_clock, fake_monotonic, fake_microtime};
    struct rg_leader_opts o = {
        {identity, 15000, 10000, retry_period_ms}, "ns/rollgate", wait_timeout_ms};
    struct rg_leader_hooks h = {NULL,       hook_cancel,
                                hook_pause, hook_leading,
                                hook_event, holder_is_alive < 0 ? NULL : hook_holder_alive};

    leader = rg_leader_new(&a, &c, &o, &h);
    rg_leader_lock(leader, &lock);
}

static void leader_setup(void)
{
    setup();
    memset(&run_clock, 0, sizeof(run_clock));
    run_clock.ms = 70000;
    memset(answers, 0, sizeof(answers));
    nanswers = 1; /* nothing left, unless the test says otherwise */
    polls = 0;
    stopped = false;
    pauses = leadings = cancels = nevents = 0;
    leader = NULL;
    holder_is_alive = -1;
    renews_meanwhile = false;
    asked_about[0] = '\0';
}

static void leader_teardown(void)
{
    rg_leader_free(leader);
}

static void work(size_t n, const size_t *lefts)
{
    memcpy(answers, lefts, n * sizeof(*lefts));
    nanswers = n;
}

static enum rg_lock_outcome acquire_ok(void)
{
    enum rg_lock_outcome outcome;
    struct rg_err err = {RG_OK, ""};

    cr_assert_eq(lock.acquire(lock.ctx, work_left, NULL, &outcome, &err), 0, "%s", err.msg);
    return outcome;
}

TestSuite(leader, .init = leader_setup, .fini = leader_teardown, .timeout = 60);

Test(leader, a_free_lease_is_taken_then_released_with_events_for_the_outcome)
{
    bool lost = true;

    start_leader("pod-b", 2000, 60000);
    cr_assert_eq(acquire_ok(), RG_LOCK_LEADER);
    cr_assert_str_eq(api.rec.holder, "pod-b");
    cr_assert_eq(leadings, 1);
    cr_assert_eq(polls, 0, "a leader does not wait on the work");
    lock.release(lock.ctx, true, &lost);
    cr_assert_not(lost);
    cr_assert_str_eq(api.rec.holder, "", "released: the next waiter goes at once");
    cr_assert_eq(nevents, 2);
    cr_assert_str_eq(events[0], "Normal MigrationStarted");
    cr_assert_str_eq(events[1], "Normal MigrationSucceeded");
}

Test(leader, a_follower_waits_on_the_work_and_leaves_the_lease_alone_while_it_progresses)
{
    const size_t lefts[] = {3, 2, 1, 0};

    int gets;

    cr_assert(try_ok(&pa));
    start_leader("pod-b", 2000, 60000);
    work(4, lefts);
    gets = api.gets;
    cr_assert_eq(acquire_ok(), RG_LOCK_DONE_ELSEWHERE);
    cr_assert_eq(polls, 4);
    cr_assert_eq(api.gets - gets, 1, "the Lease was read again while the leader made progress");
    cr_assert_eq(api.creates + api.updates, 1, "a follower wrote the Lease");
    cr_assert_eq(leadings, 0);
    cr_assert_eq(nevents, 0, "a follower posted an Event");
}

Test(leader, a_dead_holder_is_taken_over_within_its_duration_and_a_retry_period)
{
    const size_t stuck[] = {2};
    int64_t start = run_clock.ms;
    bool lost = true;

    int gets;

    cr_assert(try_ok(&pa)); /* pod-a takes it and then never renews */
    start_leader("pod-b", 2000, 60000);
    work(1, stuck);
    gets = api.gets;
    cr_assert_eq(acquire_ok(), RG_LOCK_LEADER);
    cr_assert_str_eq(api.rec.holder, "pod-b");
    cr_assert_geq(run_clock.ms - start, 15000, "taken before the holder's duration ran out");
    cr_assert_leq(run_clock.ms - start, 15000 + 2400, "taken over late");
    /* The work stood still: the Lease was read every retry period (2 s to 2.4 s). */
    cr_assert_geq(api.gets - gets, 15000 / 2400, "gets=%d", api.gets - gets);
    lock.release(lock.ctx, true, &lost);
    cr_assert_not(lost);
}

/* Takeover in seconds: a SIGKILLed holder (no database session, no renewal for a retry
 * period) is replaced after a retry period or two, not after its duration. */
Test(leader, a_holder_without_a_database_session_is_taken_over_after_a_retry_period)
{
    const size_t stuck[] = {2};
    int64_t start = run_clock.ms;
    bool lost = true;

    cr_assert(try_ok(&pa)); /* pod-a takes it and then never renews */
    holder_is_alive = 0;
    start_leader("pod-b", 2000, 60000);
    work(1, stuck);
    cr_assert_eq(acquire_ok(), RG_LOCK_LEADER);
    cr_assert_str_eq(api.rec.holder, "pod-b");
    cr_assert_str_eq(asked_about, "pod-a");
    cr_assert_geq(run_clock.ms - start, 2000, "taken before a retry period without renewal");
    cr_assert_leq(run_clock.ms - start, 2 * 2400, "taken over late: %lld ms",
                  (long long)(run_clock.ms - start));
    cr_assert_eq(api.rec.transitions, 1);
    lock.release(lock.ctx, true, &lost);
    cr_assert_not(lost);
}

/* A long migration: the work shows no progress, but its holder has a database session, so
 * the follower has no reason to read the Lease before the record could have expired. */
Test(leader, a_follower_of_a_holder_with_a_session_reads_the_lease_once_through_a_long_step)
{
    const size_t long_step[] = {2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 0};
    int64_t start = run_clock.ms;
    int gets;

    cr_assert(try_ok(&pa));
    holder_is_alive = 1;
    start_leader("pod-b", 2000, 60000);
    work(12, long_step);
    gets = api.gets;
    cr_assert_eq(acquire_ok(), RG_LOCK_DONE_ELSEWHERE);
    cr_assert_geq(run_clock.ms - start, 10000, "the step was not long: %lld ms",
                  (long long)(run_clock.ms - start));
    cr_assert_eq(api.gets - gets, 1, "the Lease was read %d times", api.gets - gets);
    cr_assert_str_eq(asked_about, "pod-a");
}

/* A follower whose create lost the race saw no record: the winner's cannot expire before a
 * duration, so a long first step costs it no further request either. */
Test(leader, a_follower_that_lost_the_create_race_reads_the_lease_only_after_a_duration)
{
    const size_t long_step[] = {2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 0};
    int gets, creates;

    holder_is_alive = 1;
    api.conflict_creates = 1;
    start_leader("pod-b", 2000, 60000);
    work(12, long_step);
    gets = api.gets;
    creates = api.creates;
    cr_assert_eq(acquire_ok(), RG_LOCK_DONE_ELSEWHERE);
    cr_assert_eq(api.creates - creates, 1);
    cr_assert_eq(api.gets - gets, 1, "the Lease was read %d times", api.gets - gets);
}

Test(leader, a_holder_with_a_database_session_is_not_taken_over_before_expiry)
{
    const size_t stuck[] = {2};
    int64_t start = run_clock.ms;
    bool lost = true;

    cr_assert(try_ok(&pa));
    holder_is_alive = 1;
    start_leader("pod-b", 2000, 60000);
    work(1, stuck);
    cr_assert_eq(acquire_ok(), RG_LOCK_LEADER);
    cr_assert_str_eq(asked_about, "pod-a");
    cr_assert_geq(run_clock.ms - start, 15000, "a holder with a session was taken over");
    lock.release(lock.ctx, true, &lost);
}

/* The database may show no session for a live holder (its connection briefly gone, or a
 * pooler between): a record that changed since it was last seen wins over that. */
Test(leader, a_holder_that_renews_is_not_taken_over_even_without_a_session)
{
    const size_t lefts[] = {2, 2, 2, 2, 2, 2, 0};

    cr_assert(try_ok(&pa));
    holder_is_alive = 0;
    renews_meanwhile = true;
    start_leader("pod-b", 2000, 60000);
    work(7, lefts);
    cr_assert_eq(acquire_ok(), RG_LOCK_DONE_ELSEWHERE);
    cr_assert_str_eq(asked_about, "pod-a", "the holder was never judged");
    cr_assert_str_eq(api.rec.holder, "pod-a");
    cr_assert_eq(leadings, 0);
}

Test(leader, a_follower_gives_up_after_the_wait_timeout_naming_the_holder)
{
    const size_t stuck[] = {1};
    enum rg_lock_outcome outcome;
    struct rg_err err = {RG_OK, ""};

    cr_assert(try_ok(&pa)); /* valid for 15 s: longer than the wait */
    start_leader("pod-b", 2000, 5000);
    work(1, stuck);
    cr_assert_eq(lock.acquire(lock.ctx, work_left, NULL, &outcome, &err), -1);
    cr_assert_eq(err.code, RG_ELEASE, "%s", err.msg);
    cr_assert(strstr(err.msg, "pod-a"), "%s", err.msg);
    cr_assert_eq(api.creates + api.updates, 1, "a follower wrote the Lease");
}

Test(leader, a_stopped_run_ends_the_followers_wait_at_the_pause)
{
    const size_t stuck[] = {1};
    enum rg_lock_outcome outcome;
    struct rg_err err = {RG_OK, ""};

    cr_assert(try_ok(&pa));
    start_leader("pod-b", 2000, 60000);
    work(1, stuck);
    stopped = true;
    cr_assert_eq(lock.acquire(lock.ctx, work_left, NULL, &outcome, &err), -1);
    cr_assert_eq(err.code, RG_ESIGNAL, "%s", err.msg);
    cr_assert_eq(pauses, 1);
    cr_assert_eq(polls, 1);
}

Test(leader, a_lease_lost_while_leading_cancels_the_work_and_is_not_released)
{
    bool lost = false;
    int updates;

    /* Renewals come every few milliseconds of real time; every other judgement is on the
     * fake clock, which does not move: another holder appears and stays valid. */
    start_leader("pod-b", 5, 60000);
    api.thief = "pod-c";
    api.thief_at = 2; /* the first renewal's read */
    cr_assert_eq(acquire_ok(), RG_LOCK_LEADER);
    pthread_mutex_lock(&mu);
    while (!cancels)
        pthread_cond_wait(&cancelled, &mu);
    pthread_mutex_unlock(&mu);
    updates = api.updates;
    lock.release(lock.ctx, false, &lost);
    cr_assert(lost);
    cr_assert_eq(cancels, 1);
    cr_assert_eq(api.updates, updates, "the new holder's Lease was written");
    cr_assert_str_eq(api.rec.holder, "pod-c");
    cr_assert_str_eq(events[1], "Warning MigrationFailed");
}

Test(leader, held_says_whether_another_run_holds_the_lease_as_the_algorithm_judges)
{
    struct rg_err err = {RG_OK, ""};
    bool held = true;

    start_leader("pod-b", 2000, 60000);
    cr_assert_eq(lock.held(lock.ctx, &held, &err), 0, "%s", err.msg);
    cr_assert_not(held, "no Lease at all");
    cr_assert(try_ok(&pa));
    cr_assert_eq(lock.held(lock.ctx, &held, &err), 0, "%s", err.msg);
    cr_assert(held);
    run_clock.ms += 15000;
    cr_assert_eq(lock.held(lock.ctx, &held, &err), 0, "%s", err.msg);
    cr_assert_not(held, "a record that stood still for its duration is held no more");
    cr_assert(try_ok(&pa)); /* renewed: a change */
    cr_assert_eq(lock.held(lock.ctx, &held, &err), 0, "%s", err.msg);
    cr_assert(held);
    cr_assert_eq(rg_lease_release(&pa.lease, &err), 0, "%s", err.msg);
    cr_assert_eq(lock.held(lock.ctx, &held, &err), 0, "%s", err.msg);
    cr_assert_not(held, "released");
    cr_assert_eq(api.creates + api.updates, 3, "held wrote the Lease");
}
