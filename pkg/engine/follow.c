#include "engine/follow.h"

/* The shortest pause: a look at the end of the work is one short statement. */
#define MIN_PAUSE_MS 5

/* After a look that saw progress, the pause cut to when the work, at the pace seen since
 * the first look (first_ms, first_left), will be done: so the wait ends soon after the
 * work does, not up to a whole poll period later, while the looks stay as far apart as the
 * look hook says until then. Not after one that saw none: the pace no longer holds (a
 * long last migration), and the hook's backoff does. */
static int64_t paced(int64_t pause_ms, int64_t first_ms, size_t first_left, int64_t now_ms,
                     size_t left)
{
    int64_t eta;

    if (left >= first_left || now_ms <= first_ms)
        return pause_ms;
    eta = (int64_t)((double)left * (double)(now_ms - first_ms) / (double)(first_left - left));
    if (eta < MIN_PAUSE_MS)
        eta = MIN_PAUSE_MS;
    return eta < pause_ms ? eta : pause_ms;
}

int rg_engine_follow(struct rg_follow *f, enum rg_follow_end *end, struct rg_err *err)
{
    int64_t first_ms = f->clock->now_ms(f->clock->ctx);
    size_t first_left = SIZE_MAX;

    do {
        size_t left = 0;
        int64_t pause_ms = 0;
        bool stalled, stop = false;

        if (f->work_left(f->arg, &left, err) < 0)
            return -1;
        if (!left) {
            *end = RG_FOLLOW_DONE;
            return 0;
        }
        if (first_left == SIZE_MAX)
            first_left = left;
        stalled = left >= f->before;
        f->before = left;
        if (f->look(f->ctx, f, stalled, &pause_ms, &stop, err) < 0)
            return -1;
        if (stop) {
            *end = RG_FOLLOW_STOP;
            return 0;
        }
        if (!stalled)
            pause_ms = paced(pause_ms, first_ms, first_left, f->clock->now_ms(f->clock->ctx), left);
        if (!f->clock->pause(f->clock->ctx, pause_ms)) {
            rg_err_set(err, RG_ESIGNAL, "stopped while waiting for another run's migrations");
            return -1;
        }
    } while (!f->until_ms || f->clock->now_ms(f->clock->ctx) < f->until_ms);
    *end = RG_FOLLOW_DUE;
    return 0;
}
