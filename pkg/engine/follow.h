/* A follower's wait on the database: one loop for every run that waits while another does
 * the work, whether a Lease names the other run (pkg/lease) or the fence alone does (the
 * engine's racers without a Lease). */
#ifndef RG_FOLLOW_H
#define RG_FOLLOW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/ports.h"

enum rg_follow_end {
    RG_FOLLOW_DONE, /* no work left: another run did it */
    RG_FOLLOW_STOP, /* a look's hook ended the wait */
    RG_FOLLOW_DUE,  /* a pause ended at or past until_ms */
};

struct rg_follow {
    const struct rg_clock *clock;
    /* How many schema or repeatable steps remain, read from the database. */
    int (*work_left)(void *arg, size_t *left, struct rg_err *err);
    void *arg;
    /* After each look that finds work left: stalled says it is no less than at the
     * previous look (the other run showed no progress). Sets *pause_ms before the next
     * look, or *stop; may move until_ms. Fails the wait by returning -1. */
    int (*look)(void *ctx, struct rg_follow *f, bool stalled, int64_t *pause_ms, bool *stop,
                struct rg_err *err);
    void *ctx;
    size_t before;    /* work left at the previous look; SIZE_MAX before the first */
    int64_t until_ms; /* clock time; 0: none */
};

/* Looks at the work at once, then after each pause, holding no transaction between looks
 * (work_left's statements are short): *end says why it returned. A pause cut short (a
 * signal, the run's timeout) is RG_ESIGNAL. */
int rg_engine_follow(struct rg_follow *f, enum rg_follow_end *end, struct rg_err *err) RG_WUR;

#endif
