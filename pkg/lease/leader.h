/* Leadership for a whole run, as the engine's lock (engine/ports.h): take the Lease or
 * wait as a follower on the work itself, renew it on a thread of its own while leading,
 * release it; and, for `wait`, say whether another run holds it. The API, the clock and
 * what to do around it (cancel the work, pause, post an Event) are given to it, so it can
 * be tested with fakes like the algorithm under it (lease.h). */
#ifndef RG_LEADER_H
#define RG_LEADER_H

#include <stdbool.h>
#include <stdint.h>

#include "engine/ports.h"
#include "lease/lease.h"

struct rg_leader;

struct rg_leader_hooks {
    void *ctx;
    /* The Lease was lost while leading: stop the work now, so its transaction rolls back
     * before another run can start the same work. Called once, from the renewal thread. */
    void (*cancel)(void *ctx);
    /* The run's one cancellable sleep: false when the run was stopped (a signal, its
     * timeout) before ms passed. A follower sleeps on it between looks at the work. */
    bool (*pause)(void *ctx, int64_t ms);
    /* This run leads from now on: a stop must leave the API working from here, since
     * releasing the Lease needs it. NULL: nothing to do. */
    void (*leading)(void *ctx);
    /* An Event about the run (type "Normal" or "Warning", reason CamelCase); NULL: none.
     * Posting one never fails the run: the hook logs its own failure. */
    void (*event)(void *ctx, const char *type, const char *reason, const char *message);
    /* Whether the run named holder still has a session in the database (*alive); NULL:
     * never asked, a dead holder is then taken over only once its Lease expires. A
     * follower asks when the work shows no progress and the holder's record has not
     * changed for a retry period, and takes the Lease over at once when it has none. */
    int (*holder_alive)(void *ctx, const char *holder, bool *alive, struct rg_err *err);
};

struct rg_leader_opts {
    struct rg_lease_opts lease;
    const char *where;       /* "namespace/name", for messages */
    int64_t wait_timeout_ms; /* a follower gives up after this while work remains */
};

/* Everything is copied; nothing is called yet. */
struct rg_leader *rg_leader_new(const struct rg_lease_api *api, const struct rg_lease_clock *clock,
                                const struct rg_leader_opts *opts,
                                const struct rg_leader_hooks *hooks);
void rg_leader_free(struct rg_leader *l);

/* The leader as the engine's lock, valid while l lives:
 * - acquire takes the Lease, or follows: waits on work_left (the database) between
 *   pauses, reading the Lease again only once its holder could have let it expire (also
 *   while the work shows no progress, when the holder has a database session), else every
 *   retry period while the work shows no progress, and taking it over at once from a
 *   holder that has not renewed it for a retry period and has no database session
 *   (hooks.holder_alive); RG_LOCK_DONE_ELSEWHERE once
 *   no work is left, RG_ELEASE after wait_timeout_ms, RG_ESIGNAL when a pause is cut
 *   short, the API's error (RG_EAPI, RG_EAPIDENIED) when it fails.
 * - release stops the renewal and gives the Lease up; a release that fails is logged,
 *   and the Lease runs out on its own after its duration.
 * - held reads the Lease (never writes it) and says whether another run holds it. */
void rg_leader_lock(struct rg_leader *l, struct rg_lock *lock);

#endif
