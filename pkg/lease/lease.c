/* client-go's leader election (tools/leaderelection: tryAcquireOrRenew, release) over an
 * injected Lease API and clock. Nothing here sleeps or starts a thread: the caller owns the
 * loop, so the algorithm can be tested step by step with a fake clock. */
#include "lease/lease.h"

#include <stdio.h>
#include <string.h>

void rg_lease_init(struct rg_lease *l, const struct rg_lease_api *api,
                   const struct rg_lease_clock *clock, const struct rg_lease_opts *opts)
{
    memset(l, 0, sizeof(*l));
    l->api = *api;
    l->clock = *clock;
    l->opts = *opts;
    /* Truncated to what holderIdentity can carry: a longer name could never be read back
     * equal, and would make this process take its own lease for someone else's. */
    snprintf(l->identity, sizeof(l->identity), "%s", opts->identity ? opts->identity : "");
    l->opts.identity = l->identity;
}

static int64_t now_ms(const struct rg_lease *l)
{
    return l->clock.monotonic_ms(l->clock.ctx);
}

/* The brief's ceil, not client-go's truncation: a 1.5s duration must not become 1s and
 * let others take the lease before this process's renew deadline. At least 1, because a
 * duration of 0 would make the lease expired for everyone the moment it is written. */
static int64_t duration_s(const struct rg_lease *l)
{
    int64_t ms = l->opts.duration_ms;

    if (ms <= 1000)
        return 1;
    return ms / 1000 + (ms % 1000 != 0);
}

/* client-go compares the raw record bytes; field by field is the same here, and leaves
 * out whatever follows the terminator in the string buffers. resourceVersion changes with
 * every write, so a holder's renewal is always seen as a change even within one second. */
static bool record_equal(const struct rg_lease_record *a, const struct rg_lease_record *b)
{
    return a->exists == b->exists && a->duration_s == b->duration_s &&
           a->transitions == b->transitions && strcmp(a->holder, b->holder) == 0 &&
           strcmp(a->acquire_time, b->acquire_time) == 0 &&
           strcmp(a->renew_time, b->renew_time) == 0 &&
           strcmp(a->resource_version, b->resource_version) == 0;
}

static void observe(struct rg_lease *l, const struct rg_lease_record *rec, int64_t now)
{
    l->observed = *rec;
    l->observed_at_ms = now;
}

/* A record just read: only a change restarts the observer's clock on its holder. */
static void saw(struct rg_lease *l, const struct rg_lease_record *rec, int64_t now)
{
    if (!record_equal(rec, &l->observed))
        observe(l, rec, now);
}

static bool is_ours(const struct rg_lease *l, const struct rg_lease_record *rec)
{
    return rec->exists && strcmp(rec->holder, l->identity) == 0;
}

/* Monotonic time at which the observed record expires unless it changes again. The
 * duration comes from the API server, so a huge value saturates instead of overflowing. */
static int64_t observed_until_ms(const struct rg_lease *l)
{
    int64_t d = l->observed.duration_s;

    if (d <= 0)
        return l->observed_at_ms;
    if (d > (INT64_MAX - l->observed_at_ms) / 1000)
        return INT64_MAX;
    return l->observed_at_ms + d * 1000;
}

static bool observed_other_valid(const struct rg_lease *l, int64_t now)
{
    return l->observed.exists && l->observed.holder[0] != '\0' && !is_ours(l, &l->observed) &&
           observed_until_ms(l) > now;
}

static void fill_mine(const struct rg_lease *l, struct rg_lease_record *want)
{
    snprintf(want->holder, sizeof(want->holder), "%s", l->identity);
    want->duration_s = duration_s(l);
}

/* Our write went through: the Lease is ours as of now. */
static void took(struct rg_lease *l, const struct rg_lease_record *got, bool *acquired)
{
    int64_t now = now_ms(l);

    observe(l, got, now);
    l->held = true;
    l->renewed_at_ms = now;
    *acquired = true;
}

/* After a create or an update: rc as the API port returns it. 1: another process wrote
 * between our read and our write; nothing is remembered, so the next attempt reads the
 * record again and judges its holder from then on. */
static int wrote(struct rg_lease *l, int rc, const struct rg_lease_record *got, bool *acquired)
{
    if (rc < 0)
        return -1;
    if (rc == 0)
        took(l, got, acquired);
    return 0;
}

static int create(struct rg_lease *l, bool *acquired, struct rg_err *err)
{
    struct rg_lease_record want, got;

    memset(&want, 0, sizeof(want));
    memset(&got, 0, sizeof(got));
    want.exists = true;
    fill_mine(l, &want);
    l->clock.microtime(l->clock.ctx, want.acquire_time, sizeof(want.acquire_time));
    memcpy(want.renew_time, want.acquire_time, sizeof(want.renew_time));
    want.transitions = 0;
    return wrote(l, l->api.create(l->api.ctx, &want, &got, err), &got, acquired);
}

/* rg_lease_try, or with gone: rg_lease_take_over. */
static int try_lease(struct rg_lease *l, const char *gone, bool *acquired, struct rg_err *err)
{
    struct rg_lease_record rec, want, got;
    bool ours, unchanged;
    int64_t now;

    *acquired = false;
    memset(&rec, 0, sizeof(rec));
    if (l->api.get(l->api.ctx, &rec, err) < 0)
        return -1;
    if (!rec.exists)
        return create(l, acquired, err);

    now = now_ms(l);
    unchanged = record_equal(&rec, &l->observed);
    saw(l, &rec, now);
    ours = is_ours(l, &rec);
    if (!ours)
        l->held = false;
    /* A holder judged gone is taken over only while its record stands as last seen: any
     * renewal since then shows it alive after all. */
    if (observed_other_valid(l, now) && !(gone && unchanged && strcmp(rec.holder, gone) == 0))
        return 0;

    want = rec;
    fill_mine(l, &want);
    l->clock.microtime(l->clock.ctx, want.renew_time, sizeof(want.renew_time));
    if (!ours) {
        /* As client-go: any change of holder counts, a released (empty) one included. */
        memcpy(want.acquire_time, want.renew_time, sizeof(want.acquire_time));
        want.transitions = rec.transitions + 1;
    }
    memset(&got, 0, sizeof(got));
    return wrote(l, l->api.update(l->api.ctx, &want, &got, err), &got, acquired);
}

int rg_lease_try(struct rg_lease *l, bool *acquired, struct rg_err *err)
{
    return try_lease(l, NULL, acquired, err);
}

int rg_lease_take_over(struct rg_lease *l, const char *gone, bool *acquired, struct rg_err *err)
{
    return try_lease(l, gone, acquired, err);
}

int rg_lease_read(struct rg_lease *l, struct rg_err *err)
{
    struct rg_lease_record rec;

    memset(&rec, 0, sizeof(rec));
    if (l->api.get(l->api.ctx, &rec, err) < 0)
        return -1;
    saw(l, &rec, now_ms(l));
    return 0;
}

int64_t rg_lease_jittered_retry_ms(const struct rg_lease *l, uint32_t random)
{
    int64_t base = l->opts.retry_period_ms;
    int64_t max_extra;

    if (base <= 0)
        return 0;
    max_extra = base / 5;
    /* Exact in integers for any period below 49 days; a longer one is not worth exactness. */
    if (max_extra <= (int64_t)UINT32_MAX)
        return base + (int64_t)((uint64_t)max_extra * random / UINT32_MAX);
    return base + (int64_t)((double)max_extra * ((double)random / (double)UINT32_MAX));
}

bool rg_lease_other_valid(const struct rg_lease *l)
{
    return observed_other_valid(l, now_ms(l));
}

int64_t rg_lease_expires_in(const struct rg_lease *l)
{
    int64_t now, until;

    if (!l->observed.exists || l->observed.holder[0] == '\0')
        return 0;
    now = now_ms(l);
    until = observed_until_ms(l);
    return until > now ? until - now : 0;
}

bool rg_lease_renew_overdue(const struct rg_lease *l)
{
    return l->held && now_ms(l) - l->renewed_at_ms > l->opts.renew_deadline_ms;
}

/* Writes the released record over base (the record as last seen, with its
 * resourceVersion). Returns what the update port returns. */
static int put_released(struct rg_lease *l, const struct rg_lease_record *base, struct rg_err *err)
{
    struct rg_lease_record want = *base, got;
    int rc;

    want.holder[0] = '\0';
    /* 1, not 0: the API server keeps the field, and 1s is the shortest wait any reader
     * that still judges by duration (an older client) will impose. */
    want.duration_s = 1;
    l->clock.microtime(l->clock.ctx, want.renew_time, sizeof(want.renew_time));
    memset(&got, 0, sizeof(got));
    rc = l->api.update(l->api.ctx, &want, &got, err);
    if (rc == 0)
        observe(l, &got, now_ms(l));
    return rc;
}

int rg_lease_release(struct rg_lease *l, struct rg_err *err)
{
    struct rg_lease_record rec;
    int rc;

    if (!l->held)
        return 0;
    /* Whatever happens below, this process stops counting itself as the holder: at worst
     * the lease runs out on its own after its duration. */
    l->held = false;
    rc = put_released(l, &l->observed, err);
    if (rc <= 0)
        return rc;

    /* 409: our record was stale (a renewal's answer lost, or another writer). Read once. */
    memset(&rec, 0, sizeof(rec));
    if (l->api.get(l->api.ctx, &rec, err) < 0)
        return -1;
    saw(l, &rec, now_ms(l));
    if (!is_ours(l, &rec))
        return 0; /* taken over or deleted: nothing of ours to give up */
    rc = put_released(l, &rec, err);
    if (rc <= 0)
        return rc;
    rg_err_set(err, RG_ELEASE,
               "lease changed twice while releasing it; it expires on its own after %llds",
               (long long)rec.duration_s);
    return -1;
}
