/* Every wait on the server is a poll with a way out. libpq's blocking calls (PQexec,
 * PQconnectdb, PQcancel) wait on a socket with no deadline, so a peer that stalls without
 * closing (a vanished host, a half-open connection after a failover, a network policy that
 * drops packets) would hold the run forever, past its timeout and past SIGTERM. Here
 * queries and connections go through libpq's asynchronous API and poll both the socket and
 * the cancel token that rg_pg_cancel fires, so a cancel (signal, run timeout, lost lease)
 * ends any call within RG_PG_GRACE_MS plus RG_PG_CANCEL_WAIT_MS. */
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock/clock.h"
#include "log/log.h"
#include "pg/internal.h"

/* How long a cancel request may take to be sent. PQcancel connects to the server anew and
 * blocks; on a stalled network it could take minutes, so it runs on a thread of its own
 * and is abandoned after this. */
#define RG_PG_CANCEL_WAIT_MS 500

void rg_pg_cancel(struct rg_pg *pg)
{
    /* This runs on the signal watcher's thread, which must never wait on the network: the
     * thread that runs the query sends the cancel request itself. */
    rg_cancel_fire(pg->cancel);
    /* database.directUrl's store, made with this one, so the pointer is stable. */
    if (pg->direct)
        rg_pg_cancel(pg->direct);
}

/* Waits until fd is ready for events, the run is cancelled, or until (a rg_now_ms() time;
 * 0: no limit) passes. Returns whether fd is ready. Once cancelled, only fd and until
 * count: a statement gets its grace period after the cancel. */
static bool wait_fd(struct rg_pg *pg, int fd, short events, int64_t until)
{
    bool cancelled = rg_cancel_fired(pg->cancel);
    struct pollfd fds[2] = {{.fd = fd, .events = events},
                            {.fd = cancelled ? -1 : rg_cancel_fd(pg->cancel), .events = POLLIN}};
    int timeout = -1;

    if (until) {
        int64_t left = until - rg_now_ms();
        timeout = left <= 0 ? 0 : left > 60000 ? 60000 : (int)left;
    }
    if (poll(fds, 2, timeout) < 0)
        return false;
    return fds[0].revents != 0;
}

void rg_pg_nap(struct rg_pg *pg, int64_t ms)
{
    (void)rg_cancel_sleep(pg->cancel, ms);
}

struct cancel_job {
    PGcancel *cancel;
    atomic_bool done;
    atomic_bool abandoned;
};

static void *send_cancel_thread(void *arg)
{
    struct cancel_job *job = arg;
    char buf[256];

    if (!PQcancel(job->cancel, buf, sizeof(buf)))
        RG_WARN("could not send the cancel request" RG_F "error=%s", buf);
    PQfreeCancel(job->cancel);
    atomic_store(&job->done, true);
    /* Whichever side comes last frees the job. */
    if (atomic_exchange(&job->abandoned, true))
        free(job);
    return NULL;
}

/* Asks the server to cancel the running statement, waiting at most RG_PG_CANCEL_WAIT_MS
 * for the request to go out. */
static void send_cancel(struct rg_pg *pg)
{
    struct cancel_job *job = calloc(1, sizeof(*job));
    pthread_attr_t attr;
    pthread_t t;
    int64_t until = rg_now_ms() + RG_PG_CANCEL_WAIT_MS;

    if (!job)
        return;
    job->cancel = PQgetCancel(pg->conn);
    atomic_init(&job->done, false);
    atomic_init(&job->abandoned, false);
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (!job->cancel || pthread_create(&t, &attr, send_cancel_thread, job) != 0) {
        PQfreeCancel(job->cancel);
        free(job);
        pthread_attr_destroy(&attr);
        return;
    }
    pthread_attr_destroy(&attr);
    while (!atomic_load(&job->done) && rg_now_ms() < until)
        wait_fd(pg, -1, 0, rg_now_ms() + 20 < until ? rg_now_ms() + 20 : until);
    if (!atomic_load(&job->done))
        RG_WARN("the cancel request could not be sent in time; closing the connection");
    if (atomic_exchange(&job->abandoned, true))
        free(job);
}

/* Gives the connection up: the server rolls back whatever it was running when it notices
 * (at once for a closed socket, through keepalives or client_connection_check_interval
 * for a stalled one). */
static void abandon(struct rg_pg *pg, const char *why)
{
    char line[200];

    rg_pg_one_line(line, sizeof(line), PQerrorMessage(pg->conn));
    snprintf(pg->closed_why, sizeof(pg->closed_why), "%s%s%s", why, *line ? ": " : "", line);
    RG_WARN("closing the database connection" RG_F "reason=%s", pg->closed_why);
    PQfinish(pg->conn);
    pg->conn = NULL;
}

const char *rg_pg_error(const struct rg_pg *pg)
{
    return pg->conn ? PQerrorMessage(pg->conn) : pg->closed_why;
}

/* Hands the next result over: NULL when the query is done or more input is needed (*wait
 * then says so), or the connection broke (*broken). A COPY with the client's end (FROM
 * STDIN, TO STDOUT) has no place in a migration (such files are refused when read); should
 * one run anyway, it is ended the way the server expects, so the connection stays usable
 * and the results that follow say what happened. */
static PGresult *next_result(struct rg_pg *pg, bool *copy_out, bool *wait, bool *broken)
{
    PGresult *r;

    *wait = *broken = false;
    while (*copy_out) {
        char *buf = NULL;
        int n = PQgetCopyData(pg->conn, &buf, 1);
        PQfreemem(buf);
        if (n == 0) {
            *wait = true;
            return NULL;
        }
        if (n < -1) {
            *broken = true;
            return NULL;
        }
        *copy_out = n > 0;
    }
    if (PQisBusy(pg->conn)) {
        *wait = true;
        return NULL;
    }
    r = PQgetResult(pg->conn);
    switch (PQresultStatus(r)) {
    case PGRES_COPY_IN:
        /* It comes back as the statement's error ("COPY from stdin failed: ..."), and the
         * server rolls the transaction back. */
        *broken = PQputCopyEnd(pg->conn, "COPY FROM STDIN is not supported in a migration "
                                         "(rollgate sends no data): use COPY ... FROM a file "
                                         "on the server, or INSERT") < 0;
        break;
    case PGRES_COPY_OUT:
        /* It cannot be stopped: the server runs on without waiting for the client, up to
         * and including the COMMIT, so what follows says what happened. */
        RG_WARN("COPY ... TO STDOUT is not supported in a migration: rollgate reads no COPY "
                "data, so its rows were dropped, and the rest of the SQL ran on; write to a file "
                "on the server (COPY ... TO 'file') or remove it");
        *copy_out = true;
        break;
    case PGRES_COPY_BOTH:
        *broken = true;
        break;
    default:
        break;
    }
    return r;
}

PGresult *rg_pg_query(struct rg_pg *pg, const char *sql)
{
    return rg_pg_query_until(pg, sql, 0);
}

PGresult *rg_pg_query_until(struct rg_pg *pg, const char *sql, int64_t until)
{
    PGresult *last = NULL, *r;
    /* When the run is cancelled, the statement gets a cancel request and then this long
     * to end before the connection is closed. A call made after the cancel (a rollback,
     * a failed mark) gets the same bound. */
    int64_t stop_at = 0;
    bool cancel_sent = rg_cancel_fired(pg->cancel);
    bool copy_out = false, wait = false, broken = false;

    if (cancel_sent)
        stop_at = rg_now_ms() + RG_PG_GRACE_MS;
    if (!pg->conn || PQstatus(pg->conn) != CONNECTION_OK || !PQsendQuery(pg->conn, sql))
        return NULL;
    if (pg->watch)
        rg_pg_watch_started(pg->watch);
    for (;;) {
        int flush = PQflush(pg->conn);
        int64_t wake;

        if (flush < 0)
            break;
        while (flush == 0 && (r = next_result(pg, &copy_out, &wait, &broken))) {
            PQclear(last);
            last = r;
            if (broken)
                break;
        }
        if (broken)
            break;
        if (flush == 0 && !wait)
            return last; /* no more results */
        if (!cancel_sent && (rg_cancel_fired(pg->cancel) || (until && rg_now_ms() >= until))) {
            cancel_sent = true;
            send_cancel(pg);
            stop_at = rg_now_ms() + RG_PG_GRACE_MS;
        }
        if (stop_at && rg_now_ms() >= stop_at) {
            abandon(pg, "the server did not end the statement in time after the cancel");
            PQclear(last);
            return NULL;
        }
        /* The statement runs on in the server while the watch looks at it. */
        if (pg->watch && !cancel_sent && rg_now_ms() >= rg_pg_watch_due(pg->watch)) {
            rg_pg_watch_tick(pg->watch);
            continue;
        }
        wake = stop_at ? stop_at : until;
        if (pg->watch && !cancel_sent && (!wake || rg_pg_watch_due(pg->watch) < wake))
            wake = rg_pg_watch_due(pg->watch);
        if (wait_fd(pg, PQsocket(pg->conn), flush == 1 ? POLLIN | POLLOUT : POLLIN, wake) &&
            !PQconsumeInput(pg->conn))
            break;
    }
    /* The connection broke: libpq's message says how (PQerrorMessage). */
    PQclear(last);
    abandon(pg, "the connection broke");
    return NULL;
}

/* TCP keepalives and tcp_user_timeout notice a dead peer even with no deadline set: an idle
 * connection after 10 s + 3 probes 5 s apart, unacknowledged data after 30 s. They come
 * before the URL's own parameters, which override them. */
static const char *const keepalive_keys[] = {"keepalives", "keepalives_idle", "keepalives_interval",
                                             "keepalives_count", "tcp_user_timeout"};
static const char *const keepalive_vals[] = {"1", "10", "5", "3", "30000"};
#define NKEEPALIVE (sizeof(keepalive_keys) / sizeof(keepalive_keys[0]))

PGconn *rg_pg_connect_once(struct rg_pg *pg, const char *const *keys, const char *const *vals,
                           int64_t timeout_ms, char *why, size_t n)
{
    const char *k[24], *v[24];
    size_t i = 0;
    int64_t until = rg_now_ms() + timeout_ms;
    PGconn *conn;
    PostgresPollingStatusType st = PGRES_POLLING_WRITING;

    for (; i < NKEEPALIVE; i++) {
        k[i] = keepalive_keys[i];
        v[i] = keepalive_vals[i];
    }
    for (; *keys && i + 1 < sizeof(k) / sizeof(k[0]); keys++, vals++, i++) {
        k[i] = *keys;
        v[i] = *vals;
    }
    k[i] = v[i] = NULL;
    conn = PQconnectStartParams(k, v, 1);
    if (!conn) {
        snprintf(why, n, "out of memory");
        return NULL;
    }
    while (PQstatus(conn) != CONNECTION_BAD && st != PGRES_POLLING_OK &&
           st != PGRES_POLLING_FAILED) {
        short events = st == PGRES_POLLING_READING ? POLLIN : POLLOUT;
        if (rg_cancel_fired(pg->cancel)) {
            snprintf(why, n, "cancelled");
            PQfinish(conn);
            return NULL;
        }
        if (timeout_ms && rg_now_ms() >= until) {
            snprintf(why, n, "no answer within database.connectTimeout (%" PRId64 "ms)",
                     timeout_ms);
            PQfinish(conn);
            return NULL;
        }
        if (wait_fd(pg, PQsocket(conn), events, timeout_ms ? until : 0))
            st = PQconnectPoll(conn);
    }
    if (PQstatus(conn) != CONNECTION_OK) {
        rg_pg_one_line(why, n, PQerrorMessage(conn));
        PQfinish(conn);
        return NULL;
    }
    /* Queries are sent without blocking on a full socket buffer (a stalled peer). */
    PQsetnonblocking(conn, 1);
    return conn;
}
