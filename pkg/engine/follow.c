#include "engine/follow.h"

int rg_engine_follow(struct rg_follow *f, enum rg_follow_end *end, struct rg_err *err)
{
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
        stalled = left >= f->before;
        f->before = left;
        if (f->look(f->ctx, f, stalled, &pause_ms, &stop, err) < 0)
            return -1;
        if (stop) {
            *end = RG_FOLLOW_STOP;
            return 0;
        }
        if (!f->clock->pause(f->clock->ctx, pause_ms)) {
            rg_err_set(err, RG_ESIGNAL, "stopped while waiting for another run's migrations");
            return -1;
        }
    } while (!f->until_ms || f->clock->now_ms(f->clock->ctx) < f->until_ms);
    *end = RG_FOLLOW_DUE;
    return 0;
}
