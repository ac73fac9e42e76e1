#include "cancel/cancel.h"

#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "clock/clock.h"
#include "mem/mem.h"

struct rg_cancel {
    atomic_bool fired;
    int pipe[2];
};

struct rg_cancel *rg_cancel_new(void)
{
    struct rg_cancel *c = rg_calloc(1, sizeof(*c));

    if (pipe(c->pipe) < 0) {
        perror("rollgate: no pipe for a cancel token");
        abort();
    }
    for (int i = 0; i < 2; i++) {
        fcntl(c->pipe[i], F_SETFL, fcntl(c->pipe[i], F_GETFL) | O_NONBLOCK);
        fcntl(c->pipe[i], F_SETFD, FD_CLOEXEC);
    }
    atomic_init(&c->fired, false);
    return c;
}

void rg_cancel_free(struct rg_cancel *c)
{
    if (!c)
        return;
    close(c->pipe[0]);
    close(c->pipe[1]);
    free(c);
}

void rg_cancel_fire(struct rg_cancel *c)
{
    /* One byte for good: a second firing finds it already there. */
    if (!atomic_exchange(&c->fired, true) && write(c->pipe[1], "", 1) < 0) {
        /* Cannot happen: the pipe is ours and this is the first byte in it. */
    }
}

bool rg_cancel_fired(const struct rg_cancel *c)
{
    return atomic_load(&c->fired);
}

int rg_cancel_fd(const struct rg_cancel *c)
{
    return c->pipe[0];
}

bool rg_cancel_sleep(const struct rg_cancel *c, int64_t ms)
{
    int64_t until = rg_now_ms() + ms;
    struct pollfd p = {.fd = c->pipe[0], .events = POLLIN};

    while (!rg_cancel_fired(c)) {
        int64_t left = until - rg_now_ms();

        if (left <= 0)
            return true;
        /* A signal (EINTR) only makes the loop look again. */
        (void)poll(&p, 1, left > INT_MAX ? INT_MAX : (int)left);
    }
    return false;
}
