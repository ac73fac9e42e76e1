/* Leader election on a Lease, as client-go's leaderelection does it, with the API and the
 * clock injected: pkg/kube and the real clock in production, fakes in the unit tests.
 * leader.h runs it for a whole run. */
#ifndef RG_LEASE_H
#define RG_LEASE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err/err.h"

/* A Lease (coordination.k8s.io/v1) as the algorithm sees it. Times are MicroTime
 * ("2006-01-02T15:04:05.000000Z"). */
struct rg_lease_record {
    bool exists;
    char holder[254];   /* spec.holderIdentity, "" when none */
    int64_t duration_s; /* spec.leaseDurationSeconds */
    char acquire_time[40];
    char renew_time[40];
    int64_t transitions;       /* spec.leaseTransitions */
    char resource_version[64]; /* metadata.resourceVersion, sent back on update */
};

/* The Lease calls the algorithm needs (pkg/kube's rg_kube_lease_* in production): get
 * sets rec->exists false on 404; create and update return 1, not an error, when another
 * writer came first (409, or 404 for an update): read again. */
struct rg_lease_api {
    void *ctx;
    int (*get)(void *ctx, struct rg_lease_record *rec, struct rg_err *err);
    int (*create)(void *ctx, const struct rg_lease_record *want, struct rg_lease_record *got,
                  struct rg_err *err);
    int (*update)(void *ctx, const struct rg_lease_record *want, struct rg_lease_record *got,
                  struct rg_err *err);
    /* Calls from now on give up by this time of the clock's monotonic_ms (0: no bound),
     * whatever their own retries; NULL when calls bound themselves. A renewal must be over
     * by the renew deadline, as in client-go. */
    void (*set_deadline)(void *ctx, int64_t monotonic_ms);
};

struct rg_lease_clock {
    void *ctx;
    int64_t (*monotonic_ms)(void *ctx);                /* expiry is judged by this alone */
    void (*microtime)(void *ctx, char *buf, size_t n); /* what goes into the record */
};

struct rg_lease_opts {
    const char *identity;
    int64_t duration_ms;
    int64_t renew_deadline_ms;
    int64_t retry_period_ms;
};

struct rg_lease {
    struct rg_lease_api api;
    struct rg_lease_clock clock;
    struct rg_lease_opts opts; /* opts.identity points at identity below */
    /* A copy, since arguments are borrowed for the call; as long as holderIdentity can be,
     * so a holder we wrote compares equal when read back. Do not copy a struct rg_lease. */
    char identity[sizeof(((struct rg_lease_record *)0)->holder)];
    struct rg_lease_record observed; /* the record as last read or written */
    int64_t observed_at_ms;          /* monotonic time the record was last seen to change */
    bool held; /* this process holds it, as of the last call; a failed write or API error
                * leaves it as it was (rg_lease_renew_overdue decides), seeing another
                * holder clears it */
    int64_t renewed_at_ms; /* monotonic time of the last successful renewal */
};

void rg_lease_init(struct rg_lease *l, const struct rg_lease_api *api,
                   const struct rg_lease_clock *clock, const struct rg_lease_opts *opts);

/* One attempt (client-go's tryAcquireOrRenew): create the Lease when absent; take it when
 * its holder is empty or has not renewed it for its duration, as judged by this process's
 * monotonic clock since it last saw the record change (never by the timestamps in it),
 * incrementing leaseTransitions; renew it when already ours. A 409 means another process
 * wrote first: *acquired false, not an error. */
int rg_lease_try(struct rg_lease *l, bool *acquired, struct rg_err *err) RG_WUR;

/* Reads the record without writing it, and observes it as rg_lease_try does: for `wait`,
 * which asks only whether another process holds it (rg_lease_other_valid). */
int rg_lease_read(struct rg_lease *l, struct rg_err *err) RG_WUR;

/* rg_lease_try, but a record still held by gone, and unchanged since this process last saw
 * it, is taken as if it had expired: its holder was judged dead (no database session) by
 * the caller. Safe when the judgement is wrong: the update carries the record's
 * resourceVersion, and the database's fence keeps each migration to one run. */
int rg_lease_take_over(struct rg_lease *l, const char *gone, bool *acquired,
                       struct rg_err *err) RG_WUR;

/* How long to wait before the next attempt: the retry period stretched by a factor in
 * [1, 1.2] picked by random (0 .. UINT32_MAX), so pods started together spread out. */
int64_t rg_lease_jittered_retry_ms(const struct rg_lease *l, uint32_t random);

/* Whether the observed holder (another process) may still hold it: its record changed
 * less than its duration ago. */
bool rg_lease_other_valid(const struct rg_lease *l);

/* Monotonic ms until the observed holder's lease would expire if not renewed (0 when it
 * already has). */
int64_t rg_lease_expires_in(const struct rg_lease *l);

/* Whether a leader that last renewed at renewed_at_ms is past the renew deadline. */
bool rg_lease_renew_overdue(const struct rg_lease *l);

/* Gives the Lease up (holderIdentity emptied, leaseDurationSeconds 1, so the next waiter
 * goes at once), from the observed record without reading it first; on a 409 reads it once
 * and retries once if it is still ours. A no-op without any call when not held; held is
 * false afterwards even on error. */
int rg_lease_release(struct rg_lease *l, struct rg_err *err) RG_WUR;

#endif
