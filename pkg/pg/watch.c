/* The lock monitor: while a step's statement runs, a second short-lived connection of the
 * run's (same URL, same application_name, so it reads as rollgate's) looks at it from
 * outside. A statement waiting on a lock for over a second gets its blockers named
 * (pg_blocking_pids, pg_stat_activity), logged, and sent as a LockWait Event; a statement
 * running for log.progressInterval reports its elapsed time, and an index build its phase
 * and blocks and tuples done (pg_stat_progress_create_index). The looks are single
 * autocommit statements with a deadline, made on the step's own thread from rg_pg_query's
 * poll loop: the step's statement runs on in the server meanwhile, waiting on nothing of
 * the monitor's, and the monitor never holds a transaction or a snapshot open between
 * looks. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock/clock.h"
#include "log/log.h"
#include "mem/mem.h"
#include "pg/internal.h"

/* A lock wait shorter than this is not worth a look: most end by themselves. An attempt
 * that waits the step's whole lock_timeout, when that is shorter, is looked at halfway
 * through instead: it is the wait that ends the run with exit 12, which must name the
 * blocker. */
#define LOOK_AFTER_MS 1000
/* Then it is looked at this often, and each look has this long before it is cancelled. */
#define LOOK_EVERY_MS 1000
#define LOOK_DEADLINE_MS 2000
/* Progress goes to the pod's Events at this fraction of the log's rate. */
#define EVENT_EVERY_NTH_PROGRESS 6
/* Blockers named per look; the message names the first. */
#define MAX_BLOCKERS 3

struct rg_pg_watch {
    struct rg_pg *pg; /* the store: options, the Event hook */
    struct rg_pg *on; /* the connection running the step */
    struct rg_pg *mon;
    bool mon_failed; /* could not connect: no more looks for this step */
    const struct rg_step *s;
    int64_t attempt, lock_timeout_ms;
    int64_t look_after_ms; /* from each statement's start: LOOK_AFTER_MS or less */
    int64_t started_ms;    /* the statement running now was sent then */
    int64_t next_look_ms, next_progress_ms;
    int64_t reports;      /* progress reports of this step */
    int64_t reported_pid; /* the blocker this statement's wait was last reported for */
    char blocker[320];
};

struct rg_pg_watch *rg_pg_watch_new(struct rg_pg *pg, struct rg_pg *on, const struct rg_step *s)
{
    struct rg_pg_watch *w = rg_calloc(1, sizeof(*w));

    w->pg = pg;
    w->on = on;
    w->s = s;
    w->look_after_ms = LOOK_AFTER_MS;
    on->watch = w;
    rg_pg_watch_started(w);
    return w;
}

void rg_pg_watch_free(struct rg_pg_watch *w)
{
    if (!w)
        return;
    w->on->watch = NULL;
    rg_pg_free(w->mon);
    free(w);
}

void rg_pg_watch_attempt(struct rg_pg_watch *w, int64_t attempt, int64_t lock_timeout_ms,
                         int64_t cap_ms)
{
    w->attempt = attempt;
    w->lock_timeout_ms = lock_timeout_ms;
    w->look_after_ms =
        lock_timeout_ms > 0 && lock_timeout_ms == cap_ms && lock_timeout_ms < LOOK_AFTER_MS
            ? lock_timeout_ms / 2
            : LOOK_AFTER_MS;
}

const char *rg_pg_watch_blocker(const struct rg_pg_watch *w)
{
    return w->blocker;
}

void rg_pg_watch_started(struct rg_pg_watch *w)
{
    w->started_ms = rg_now_ms();
    w->next_look_ms = w->started_ms + w->look_after_ms;
    w->next_progress_ms =
        w->pg->opts.progress_interval_ms ? w->started_ms + w->pg->opts.progress_interval_ms : 0;
    w->reported_pid = 0;
}

int64_t rg_pg_watch_due(const struct rg_pg_watch *w)
{
    if (w->mon_failed)
        return w->next_progress_ms ? w->next_progress_ms : INT64_MAX;
    return w->next_progress_ms && w->next_progress_ms < w->next_look_ms ? w->next_progress_ms
                                                                        : w->next_look_ms;
}

/* The monitor's connection, made at the first look: one attempt, soon given up, sharing
 * the watched connection's cancel so that a stopped run stops it too. */
static bool monitor(struct rg_pg_watch *w)
{
    struct rg_pg_opts o = w->on->opts;
    struct rg_err err = {0};

    if (w->mon)
        return w->mon->conn != NULL;
    o.direct_url = NULL;
    o.connect_retry_ms = 0;
    if (o.connect_timeout_ms > LOOK_DEADLINE_MS)
        o.connect_timeout_ms = LOOK_DEADLINE_MS;
    w->mon = rg_pg_new(&o);
    rg_cancel_free(w->mon->cancel);
    w->mon->cancel = w->on->cancel;
    w->mon->cancel_borrowed = true;
    if (rg_pg_connect(w->mon, &err) == 0)
        return true;
    RG_WARN("could not open the lock monitor's connection; the step runs on unwatched" RG_F
            "file=%s" RG_F "error=%s",
            w->s->path, err.msg);
    return false;
}

/* The look: the watched backend (the pid libpq was given, else, behind a pooler, the run's
 * one active session but this one), its index build's progress, and, when asked for and it
 * waits on a lock, who blocks it. Only the start of a blocker's query is read, never its
 * parameters, and it is redacted on output like any text. */
static char *look_sql(struct rg_pg_watch *w, bool locks)
{
    char *app = NULL, *sql;
    struct rg_err ignored = {0};

    if (rg_pg_literal(w->mon, w->on->session, RG_EINTERNAL, "application_name", &app, &ignored) < 0)
        return NULL;
    sql = rg_asprintf(
        "SELECT a.pid, p.phase, p.blocks_done, p.blocks_total, p.tuples_done, p.tuples_total, "
        "b.pid, coalesce(b.usename::text, ''), coalesce(b.application_name, ''), "
        "coalesce(host(b.client_addr), 'local'), coalesce(b.state, ''), "
        "extract(epoch FROM now() - b.xact_start)::bigint, left(b.query, 100) "
        "FROM (SELECT pid, wait_event_type FROM pg_stat_activity WHERE application_name = %s "
        "AND pid <> pg_backend_pid() AND state = 'active' AND backend_type = 'client backend' "
        "ORDER BY pid = %d DESC, query_start LIMIT 1) a "
        "LEFT JOIN pg_stat_progress_create_index p ON p.pid = a.pid "
        "LEFT JOIN LATERAL (SELECT * FROM pg_stat_activity s WHERE %s AND a.wait_event_type = "
        "'Lock' AND s.pid = ANY (pg_blocking_pids(a.pid)) ORDER BY s.xact_start NULLS LAST, "
        "s.pid LIMIT %d) b ON true",
        app, PQbackendPID(w->on->conn), locks ? "true" : "false", MAX_BLOCKERS);
    free(app);
    return sql;
}

static const char *val(const PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col) ? "" : PQgetvalue(res, row, col);
}

static void post(struct rg_pg_watch *w, const char *type, const char *reason, const char *msg)
{
    if (w->pg->event)
        w->pg->event(w->pg->event_ctx, type, reason, msg);
}

/* Each blocker logged; the first, as one line, kept for the final message and sent as the
 * Event, once per wait (again only when another session blocks it). */
/* The first blocker, as one line, is kept for the final message at each look (the blocker
 * may change); each wait is logged, a line per blocker, and sent as a LockWait Event once,
 * and again only when another session comes to block it. */
static void report_blockers(struct rg_pg_watch *w, const PGresult *res, int64_t elapsed)
{
    int n = PQntuples(res);
    int64_t first;
    char query[320], *line, *msg;

    if (n == 0 || rg_pg_int(val(res, 0, 6), 1, INT32_MAX, &first) < 0)
        return;
    rg_pg_one_line(query, sizeof(query), val(res, 0, 12));
    line = rg_asprintf(
        "blocked by pid %s (user %s, application_name \"%s\", client %s, %s, transaction "
        "open %ss, query \"%s\")%s",
        val(res, 0, 6), val(res, 0, 7), val(res, 0, 8), val(res, 0, 9), val(res, 0, 10),
        *val(res, 0, 11) ? val(res, 0, 11) : "?", query,
        n > 1 && !PQgetisnull(res, 1, 6) ? " and others" : "");
    /* Blocker text comes from other sessions: redacted before it goes into a message. */
    rg_log_scrub(w->blocker, sizeof(w->blocker), line);
    free(line);
    if (first == w->reported_pid)
        return;
    w->reported_pid = first;
    for (int i = 0; i < n && !PQgetisnull(res, i, 6); i++) {
        rg_pg_one_line(query, sizeof(query), val(res, i, 12));
        RG_WARN("migration waits on a lock held by another session" RG_F "file=%s" RG_F
                "version=%" PRId64 RG_F "attempt=%" PRId64 RG_F "lock_timeout_ms=%" PRId64 RG_F
                "elapsed_ms=%" PRId64 RG_F "blocker_pid=%s" RG_F "blocker_user=%s" RG_F
                "blocker_application=%s" RG_F "blocker_client=%s" RG_F "blocker_state=%s" RG_F
                "blocker_xact_age_s=%s" RG_F "blocker_query=%s",
                w->s->path, w->s->version, w->attempt + 1, w->lock_timeout_ms, elapsed,
                val(res, i, 6), val(res, i, 7), val(res, i, 8), val(res, i, 9), val(res, i, 10),
                val(res, i, 11), query);
    }
    msg = rg_asprintf("%s waits on a lock (attempt %" PRId64 ", lock_timeout %" PRId64 "ms): %s",
                      w->s->path, w->attempt + 1, w->lock_timeout_ms, w->blocker);
    post(w, "Warning", "LockWait", msg);
    free(msg);
}

static void report_progress(struct rg_pg_watch *w, const PGresult *res, int64_t elapsed)
{
    bool index = res && PQntuples(res) > 0 && !PQgetisnull(res, 0, 1);
    char *msg;

    w->reports++;
    if (index)
        RG_PROGRESS("statement running" RG_F "file=%s" RG_F "version=%" PRId64 RG_F
                    "elapsed_ms=%" PRId64 RG_F "phase=%s" RG_F "blocks_done=%s" RG_F
                    "blocks_total=%s" RG_F "tuples_done=%s" RG_F "tuples_total=%s",
                    w->s->path, w->s->version, elapsed, val(res, 0, 1), val(res, 0, 2),
                    val(res, 0, 3), val(res, 0, 4), val(res, 0, 5));
    else
        RG_PROGRESS("statement running" RG_F "file=%s" RG_F "version=%" PRId64 RG_F
                    "elapsed_ms=%" PRId64,
                    w->s->path, w->s->version, elapsed);
    if (w->reports % EVENT_EVERY_NTH_PROGRESS != 0)
        return;
    msg = index ? rg_asprintf("%s running for %" PRId64 "s: %s, blocks %s/%s, tuples %s/%s",
                              w->s->path, elapsed / 1000, val(res, 0, 1), val(res, 0, 2),
                              val(res, 0, 3), val(res, 0, 4), val(res, 0, 5))
                : rg_asprintf("%s running for %" PRId64 "s", w->s->path, elapsed / 1000);
    post(w, "Normal", "MigrationProgress", msg);
    free(msg);
}

void rg_pg_watch_tick(struct rg_pg_watch *w)
{
    int64_t now = rg_now_ms(), elapsed = now - w->started_ms;
    bool locks = now >= w->next_look_ms,
         progress = w->next_progress_ms && now >= w->next_progress_ms;
    PGresult *res = NULL;
    char *sql = NULL;

    if (locks)
        w->next_look_ms = now + LOOK_EVERY_MS;
    if (progress)
        w->next_progress_ms = now + w->pg->opts.progress_interval_ms;
    if (!w->mon_failed && !monitor(w))
        w->mon_failed = true;
    if (!w->mon_failed && (sql = look_sql(w, locks))) {
        res = rg_pg_query_until(w->mon, sql, rg_now_ms() + LOOK_DEADLINE_MS);
        if (PQresultStatus(res) != PGRES_TUPLES_OK) {
            char line[300];
            rg_pg_one_line(line, sizeof(line),
                           res ? PQresultErrorMessage(res) : rg_pg_error(w->mon));
            RG_DEBUG("the lock monitor's look failed" RG_F "file=%s" RG_F "error=%s", w->s->path,
                     line);
            PQclear(res);
            res = NULL;
        }
    }
    if (res && locks)
        report_blockers(w, res, elapsed);
    if (progress)
        report_progress(w, res, elapsed);
    PQclear(res);
    free(sql);
}
