#include "signals.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <time.h>

#include "cancel/cancel.h"
#include "clock/clock.h"
#include "log/log.h"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct rg_pg *attached;
static struct rg_kube *attached_kube;
static atomic_int received;
static atomic_bool timed_out;
/* Fired with the first signal or the timeout: every pause of the run sleeps on it. */
static struct rg_cancel *stopped;
static sigset_t watched;
static int64_t started_ms;
/* The run's deadline on rg_now_ms()'s clock; 0: none (yet). */
static _Atomic int64_t deadline_ms;

/* Both cancels only set a flag (and wake a poll): nothing here waits on the network, so
 * the lock is held for an instant and a second signal is never stuck behind the first. */
static void stop_run(void)
{
    rg_cancel_fire(stopped);
    pthread_mutex_lock(&lock);
    if (attached)
        rg_pg_cancel(attached);
    if (attached_kube)
        rg_kube_cancel(attached_kube);
    pthread_mutex_unlock(&lock);
}

static void *watch(void *arg)
{
    (void)arg;

    for (;;) {
        int64_t deadline = atomic_load(&deadline_ms);
        /* Until the configuration has set a deadline, look again every 100ms. */
        int64_t wait = 100;
        struct timespec ts;
        int sig;

        if (deadline && !atomic_load(&timed_out) && !atomic_load(&received)) {
            wait = deadline - rg_now_ms();
            if (wait <= 0) {
                atomic_store(&timed_out, true);
                RG_WARN("run timeout reached, stopping");
                stop_run();
                continue;
            }
        } else if (deadline || atomic_load(&received)) {
            wait = 3600 * 1000;
        }
        ts.tv_sec = wait / 1000;
        ts.tv_nsec = (long)(wait % 1000) * 1000000;
        sig = sigtimedwait(&watched, NULL, &ts);
        if (sig > 0) {
            /* The first signal decides the exit status, unless the timeout came first;
             * later ones only cancel again. */
            int none = 0;
            if (!atomic_load(&timed_out))
                atomic_compare_exchange_strong(&received, &none, sig);
            RG_WARN("signal received, cancelling the running statement" RG_F "signal=%d", sig);
            stop_run();
        }
    }
    return NULL;
}

void rg_signals_start(void)
{
    pthread_t t;
    pthread_attr_t attr;

    started_ms = rg_now_ms();
    stopped = rg_cancel_new();
    sigemptyset(&watched);
    sigaddset(&watched, SIGTERM);
    sigaddset(&watched, SIGINT);
    pthread_sigmask(SIG_BLOCK, &watched, NULL);
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_create(&t, &attr, watch, NULL);
    pthread_attr_destroy(&attr);
}

void rg_signals_set_timeout(int64_t timeout_ms)
{
    if (timeout_ms > 0)
        atomic_store(&deadline_ms, started_ms + timeout_ms);
}

int64_t rg_signals_deadline(void)
{
    return atomic_load(&deadline_ms);
}

void rg_signals_attach(struct rg_pg *pg)
{
    pthread_mutex_lock(&lock);
    attached = pg;
    /* A signal may have come before there was anything to cancel. */
    if (pg && (atomic_load(&received) || atomic_load(&timed_out)))
        rg_pg_cancel(pg);
    pthread_mutex_unlock(&lock);
}

void rg_signals_attach_kube(struct rg_kube *kube)
{
    pthread_mutex_lock(&lock);
    attached_kube = kube;
    if (kube && (atomic_load(&received) || atomic_load(&timed_out)))
        rg_kube_cancel(kube);
    pthread_mutex_unlock(&lock);
}

int rg_signals_received(void)
{
    return atomic_load(&received);
}

bool rg_signals_timed_out(void)
{
    return atomic_load(&timed_out);
}

bool rg_signals_pause(int64_t ms)
{
    return rg_cancel_sleep(stopped, ms);
}

static int64_t clock_now(void *ctx)
{
    (void)ctx;
    return rg_now_ms();
}

static bool clock_pause(void *ctx, int64_t ms)
{
    (void)ctx;
    return rg_signals_pause(ms);
}

static bool clock_stopped(void *ctx)
{
    (void)ctx;
    return rg_cancel_fired(stopped);
}

void rg_signals_clock(struct rg_clock *clock)
{
    clock->ctx = NULL;
    clock->now_ms = clock_now;
    clock->pause = clock_pause;
    clock->stopped = clock_stopped;
}
