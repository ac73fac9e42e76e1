/* Session state, and connection poolers. Behind a pooler in transaction mode (PgBouncer's
 * pool_mode = transaction) each transaction, and each statement outside one, may run on
 * another server connection, and whatever a session SET leaves there the next client gets.
 * So rollgate sets nothing for the session on a connection that may be pooled: a step in a
 * transaction sets its values with SET LOCAL inside its one-query transaction and leaves the
 * session as it found it. Only no-transaction steps, which cannot run in a transaction, set
 * session values, and only on a connection that keeps them: database.directUrl, or
 * database.url once it is seen to reach PostgreSQL directly. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "mem/mem.h"
#include "pg/internal.h"

const char *rg_pg_dead_client_check(struct rg_pg *pg, bool local)
{
    /* A run killed outright (SIGKILL, OOM) cannot cancel its statement: with this the
     * server notices the dead client within a second, even mid-query, and rolls back
     * instead of finishing a migration nobody leads any more, or keeping the lock. */
    if (PQserverVersion(pg->conn) < 140000)
        return "";
    return local ? "SET LOCAL client_connection_check_interval = 1000;"
                 : "SET client_connection_check_interval = 1000;";
}

char *rg_pg_session_reset(struct rg_pg *pg)
{
    /* RESET ALL also resets the parameters the server reports to the client, and a pooler
     * takes those reports as the client's own wishes (PgBouncer then gives the rest of the
     * run an empty application_name): they are set back to what the client was told. Where
     * nothing stands between (seen_direct), RESET ALL itself puts them back as they were:
     * their reset values are the ones this connection started with, which is what it was
     * told, since rollgate sets none of them for the session and each step puts back what
     * its file set. */
    static const char *const reported[] = {"application_name", "client_encoding",
                                           "DateStyle",        "IntervalStyle",
                                           "TimeZone",         "standard_conforming_strings"};
    struct rg_err ignored = {0};
    char *sql = rg_strdup("RESET ALL;RESET ROLE;RESET SESSION AUTHORIZATION;DISCARD TEMP;");

    for (size_t i = 0; i < sizeof(reported) / sizeof(reported[0]) && !pg->seen_direct; i++) {
        const char *value = PQparameterStatus(pg->conn, reported[i]);
        char *literal, *more;

        /* The server sent these values in the client encoding, so quoting them cannot
         * fail; should it, the parameter is left at its default rather than the step
         * refused. */
        if (!value || rg_pg_literal(pg, value, RG_EINTERNAL, reported[i], &literal, &ignored) < 0)
            continue;
        more = rg_asprintf("%sSET %s = %s;", sql, reported[i], literal);
        free(literal);
        free(sql);
        sql = more;
    }
    return sql;
}

/* A pooler answers the client's startup with a cancel key of its own, so the backend pid libpq
 * was told is not the one that runs the queries. (A plain TCP proxy passes the server's key on,
 * and keeps the session whole anyway.) Looked at once per connection. */
int rg_pg_probe_direct(struct rg_pg *pg, struct rg_err *err)
{
    PGresult *res;
    const char *pid;
    char *end;
    long long v;

    if (pg->direct_probed)
        return 0;
    res = rg_pg_exec(pg, "SELECT pg_backend_pid()", PGRES_TUPLES_OK, err);
    if (!res)
        return -1;
    pid = PQntuples(res) == 1 ? PQgetvalue(res, 0, 0) : "";
    errno = 0;
    v = strtoll(pid, &end, 10);
    pg->seen_direct = *pid && !*end && errno == 0 && v == PQbackendPID(pg->conn);
    pg->direct_probed = true;
    PQclear(res);
    return 0;
}

static int check_direct(struct rg_pg *pg, struct rg_err *err)
{
    if (rg_pg_probe_direct(pg, err) < 0)
        return -1;
    if (pg->seen_direct)
        return 0;
    rg_err_set(err, RG_ECONFIG,
               "%s goes through a connection pooler (its backend pid is not the one the "
               "connection was given): a no-transaction migration's session settings "
               "(lock_timeout, statement_timeout) could land on another server connection and "
               "stay there for other clients; set database.directUrl to a connection straight "
               "to PostgreSQL. Nothing of this migration ran",
               pg->url_key);
    return -1;
}

int rg_pg_direct(struct rg_pg *pg, struct rg_pg **on, struct rg_err *err)
{
    *on = NULL;
    if (pg->direct) {
        /* The operator's word that it keeps sessions whole: a pooler in session mode may be
         * named here on purpose. */
        if (!pg->direct->conn && rg_pg_connect(pg->direct, err) < 0) {
            rg_err_prefix(err, "database.directUrl");
            return -1;
        }
        *on = pg->direct;
        return 0;
    }
    if (!pg->seen_direct && check_direct(pg, err) < 0)
        return -1;
    *on = pg;
    return 0;
}
