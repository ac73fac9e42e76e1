/* The one cancellable sleep: a firing ends it at once, from any thread, and for good. */
#include <criterion/criterion.h>
#include <poll.h>
#include <pthread.h>

#include "cancel/cancel.h"

/* Longer than any test may take: a sleep that returns true from this has not been woken. */
#define FOREVER_MS (3600 * 1000)

static struct rg_cancel *token;

static void setup(void)
{
    token = rg_cancel_new();
}

static void teardown(void)
{
    rg_cancel_free(token);
}

TestSuite(cancel, .init = setup, .fini = teardown, .timeout = 60);

Test(cancel, a_sleep_not_cancelled_runs_its_whole_time)
{
    cr_assert(rg_cancel_sleep(token, 20));
    cr_assert_not(rg_cancel_fired(token));
}

Test(cancel, a_sleep_after_the_firing_returns_false_at_once)
{
    rg_cancel_fire(token);
    cr_assert(rg_cancel_fired(token));
    cr_assert_not(rg_cancel_sleep(token, FOREVER_MS));
    /* For good: the next sleep ends too. */
    cr_assert_not(rg_cancel_sleep(token, FOREVER_MS));
}

struct sleeper {
    bool slept_whole;
    bool started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
};

static void *sleep_forever(void *arg)
{
    struct sleeper *s = arg;

    pthread_mutex_lock(&s->mu);
    s->started = true;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    s->slept_whole = rg_cancel_sleep(token, FOREVER_MS);
    return NULL;
}

Test(cancel, a_firing_from_another_thread_ends_a_sleep_under_way)
{
    struct sleeper s = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
    pthread_t t;

    cr_assert_eq(pthread_create(&t, NULL, sleep_forever, &s), 0);
    pthread_mutex_lock(&s.mu);
    while (!s.started)
        pthread_cond_wait(&s.cv, &s.mu);
    pthread_mutex_unlock(&s.mu);
    /* Whether the sleeper is in poll yet or not, the firing ends its sleep: the suite's
     * timeout fails this test if it does not. */
    rg_cancel_fire(token);
    pthread_join(t, NULL);
    cr_assert_not(s.slept_whole);
}

Test(cancel, the_descriptor_is_readable_from_the_firing_on_and_stays_so)
{
    struct pollfd p = {.fd = rg_cancel_fd(token), .events = POLLIN};

    cr_assert_eq(poll(&p, 1, 0), 0, "readable before any firing");
    rg_cancel_fire(token);
    rg_cancel_fire(token); /* a second firing is harmless */
    cr_assert_eq(poll(&p, 1, 0), 1);
    cr_assert_eq(poll(&p, 1, 0), 1, "a poll drained the firing");
}
