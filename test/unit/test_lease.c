/* The Lease algorithm against an in-memory Lease and fake clocks: each "process" is an
 * rg_lease with its own monotonic clock, all sharing one fake API server. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

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

static int fake_get(void *ctx, struct rg_lease_record *rec, struct rg_err *err)
{
    struct fake_api *f = ctx;

    f->gets++;
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
    struct rg_lease_api a = {&api, fake_get, fake_create, fake_update};
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
