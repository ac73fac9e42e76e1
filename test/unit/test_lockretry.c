/* The escalating lock retries' schedule (GitLab's with_lock_retries): how long each attempt
 * may wait for its lock, and how long the run pauses between attempts. */
#include <criterion/criterion.h>

#include <stdint.h>

#include "pg/pg.h"

Test(lockretry, lock_timeout_starts_short_and_doubles_up_to_the_cap)
{
    /* database.lockTimeout 5s, lockRetries 5: six attempts. */
    int64_t want[] = {100, 200, 400, 800, 1600, 5000};

    for (int64_t a = 0; a < 6; a++)
        cr_assert_eq(rg_pg_lock_timeout_at(a, 5, 5000), want[a], "attempt %lld: %lld", (long long)a,
                     (long long)rg_pg_lock_timeout_at(a, 5, 5000));
}

Test(lockretry, lock_timeout_never_passes_the_cap)
{
    /* lockRetries 20 with a 2s cap (a file's -- rollgate:lock-timeout=2s): 100, 200, ...,
     * 1600, then 2000 for every later attempt. */
    for (int64_t a = 0; a <= 20; a++) {
        int64_t t = rg_pg_lock_timeout_at(a, 20, 2000);
        cr_assert(t >= 100 && t <= 2000, "attempt %lld: %lld", (long long)a, (long long)t);
        if (a > 0)
            cr_assert_geq(t, rg_pg_lock_timeout_at(a - 1, 20, 2000), "attempt %lld shrank",
                          (long long)a);
    }
    cr_assert_eq(rg_pg_lock_timeout_at(5, 20, 2000), 2000);
}

Test(lockretry, last_attempt_waits_the_whole_cap)
{
    /* Few retries still end with one attempt at database.lockTimeout, long enough for the
     * blocker to be looked up and named. */
    cr_assert_eq(rg_pg_lock_timeout_at(0, 2, 5000), 100);
    cr_assert_eq(rg_pg_lock_timeout_at(1, 2, 5000), 200);
    cr_assert_eq(rg_pg_lock_timeout_at(2, 2, 5000), 5000);
    /* No retries: one attempt at the cap, as before escalation. */
    cr_assert_eq(rg_pg_lock_timeout_at(0, 0, 5000), 5000);
}

Test(lockretry, a_cap_below_the_first_step_is_used_throughout)
{
    cr_assert_eq(rg_pg_lock_timeout_at(0, 5, 50), 50);
    cr_assert_eq(rg_pg_lock_timeout_at(3, 5, 50), 50);
    cr_assert_eq(rg_pg_lock_timeout_at(5, 5, 50), 50);
}

Test(lockretry, no_cap_escalates_without_bound_and_the_last_attempt_waits_as_long_as_needed)
{
    cr_assert_eq(rg_pg_lock_timeout_at(0, 100, 0), 100);
    cr_assert_eq(rg_pg_lock_timeout_at(4, 100, 0), 1600);
    /* PostgreSQL's lock_timeout is an int of milliseconds. */
    cr_assert_eq(rg_pg_lock_timeout_at(99, 100, 0), INT32_MAX);
    cr_assert_eq(rg_pg_lock_timeout_at(100, 100, 0), 0);
}

Test(lockretry, pause_is_jittered_between_half_and_all_of_a_doubling_base)
{
    int64_t base = 200;

    for (int64_t a = 0; a<12; a++, base = base * 2> 10000 ? 10000 : base * 2) {
        int64_t lo = rg_pg_lock_pause_after(a, 0);
        int64_t hi = rg_pg_lock_pause_after(a, UINT32_MAX);
        for (uint32_t r = 0; r < 5000; r += 7) {
            int64_t p = rg_pg_lock_pause_after(a, r);
            cr_assert(p >= base / 2 && p <= base,
                      "attempt %lld, random %u: %lld not in [%lld, %lld]", (long long)a, r,
                      (long long)p, (long long)base / 2, (long long)base);
        }
        cr_assert(lo >= base / 2 && hi <= base);
    }
    /* Different random values give different pauses: runs blocked together spread out. */
    cr_assert_neq(rg_pg_lock_pause_after(3, 1), rg_pg_lock_pause_after(3, 2));
    cr_assert_eq(rg_pg_lock_pause_after(50, 0), 5000);
}
