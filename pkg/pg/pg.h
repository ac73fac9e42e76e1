/* The PostgreSQL store: the only user of libpq. Implements the engine's store port. */
#ifndef RG_PG_H
#define RG_PG_H

#include <stdint.h>

#include "engine/ports.h"
#include "err/err.h"

struct rg_pg;

struct rg_pg_opts {
    const char *url; /* NULL or "": libpq's PG* environment variables apply */
    /* NULL or "": no-transaction steps use url too, once it is seen to reach PostgreSQL
     * without a pooler in between (else they are refused, RG_ECONFIG). */
    const char *direct_url;
    const char *password; /* NULL: from the URL, PGPASSWORD or ~/.pgpass */
    const char *schema;
    int64_t connect_timeout_ms; /* one attempt */
    int64_t connect_retry_ms;   /* all attempts; 0: one attempt */
    int64_t lock_retries;       /* extra tries of a migration that hit lock_timeout */
    /* A statement running this long logs its elapsed time (and an index build its phase)
     * every such interval; 0: never. */
    int64_t progress_interval_ms;
    /* The run's deadline on rg_now_ms()'s clock (0: none): no lock retry starts that could
     * not end before it. */
    int64_t deadline_ms;
    int64_t wait_timeout_ms; /* for another run's no-transaction migration */
    const char *identity;    /* the run's (lease.identity): names its sessions */
};

/* A run's sessions carry application_name "rollgate/<identity>", so that another run can
 * tell whether it is still alive (pg_stat_activity). PostgreSQL keeps 63 bytes of
 * printable ASCII: an identity of up to 53 such bytes is used as it is, any other becomes
 * its first 37 bytes (others as '?'), '~' and 16 hex digits of a hash of all of it. */
#define RG_PG_SESSION_NAME_MAX 64
void rg_pg_session_name(const char *identity, char name[RG_PG_SESSION_NAME_MAX]);

/* Only remembers the options: rg_pg_cancel works from the moment this returns. */
struct rg_pg *rg_pg_new(const struct rg_pg_opts *opts);
void rg_pg_free(struct rg_pg *pg);

/* Connects, retrying with backoff until connect_retry_ms has passed (RG_EDATABASE with
 * libpq's last message), or until cancelled (RG_ESIGNAL). A malformed URL (direct_url too,
 * which is connected only when a no-transaction step runs) is RG_ECONFIG. */
int rg_pg_connect(struct rg_pg *pg, struct rg_err *err) RG_WUR;

/* The engine's store port backed by this connection. */
void rg_pg_store(struct rg_pg *pg, struct rg_store *store);

/* Asks for the history's digest now and keeps it (or its error) for the store's next
 * digest_history, which then answers without asking again: migrate's start asks while its
 * files are still being read, so that the query's time overlaps theirs. */
void rg_pg_digest_ahead(struct rg_pg *pg);

/* Safe to call from another thread at any time: cancels the running statement (PQcancel)
 * and makes every later call fail with RG_ESIGNAL, so the run unwinds with its
 * transaction rolled back. */
void rg_pg_cancel(struct rg_pg *pg);

/* Where the store reports a wait on a table lock (reason LockWait, with who blocks it) and
 * the progress of a long statement (MigrationProgress), beside its log: a Kubernetes Event
 * on the pod. type is "Normal" or "Warning". Called on the thread that runs the step while
 * the step's statement goes on in the server; it must not fail or stall the run for long.
 * NULL: log only (outside Kubernetes). */
void rg_pg_on_event(struct rg_pg *pg,
                    void (*event)(void *ctx, const char *type, const char *reason,
                                  const char *message),
                    void *ctx);

/* Escalating lock retries (GitLab's with_lock_retries): a migration queued behind a long
 * transaction blocks every later query on its table for as long as it waits, so its first
 * attempt waits RG_PG_LOCK_TIMEOUT_FIRST_MS, each next one twice as long up to cap_ms, and
 * the last of the retries + 1 attempts cap_ms itself (cap_ms 0: no limit). attempt counts
 * from 0. */
#define RG_PG_LOCK_TIMEOUT_FIRST_MS 100
int64_t rg_pg_lock_timeout_at(int64_t attempt, int64_t retries, int64_t cap_ms);
/* The pause, with no transaction open, after failed attempt (from 0): from
 * RG_PG_LOCK_PAUSE_FIRST_MS doubling to RG_PG_LOCK_PAUSE_MAX_MS, of which random (any
 * value) keeps between half and all, so that runs blocked together do not retry together. */
#define RG_PG_LOCK_PAUSE_FIRST_MS 200
#define RG_PG_LOCK_PAUSE_MAX_MS 10000
int64_t rg_pg_lock_pause_after(int64_t attempt, uint32_t random);

/* 1-based line and column of a 1-based character position in sql (PostgreSQL counts
 * characters, not bytes). Returns -1 when pos is outside sql. */
int rg_pg_position(const char *sql, long pos, long *line, long *col);

#endif
