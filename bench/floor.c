/* The "libpq floor": the least a migration tool's no-op start can cost. Connect with libpq,
 * run one query (by default the one a no-op start must at least run: read the history), exit.
 *   floor URL [SQL]   exits 1 when the connection or the query fails. */
#include <libpq-fe.h>
#include <stdio.h>

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: %s URL [SQL]\n", argv[0]);
        return 2;
    }
    const char *sql = argc == 3
                          ? argv[2]
                          : "SELECT version FROM rollgate_migrations ORDER BY version DESC LIMIT 1";
    PGconn *conn = PQconnectdb(argv[1]);
    if (PQstatus(conn) != CONNECTION_OK) {
        fprintf(stderr, "floor: %s", PQerrorMessage(conn));
        PQfinish(conn);
        return 1;
    }
    PGresult *res = PQexec(conn, sql);
    int ok = PQresultStatus(res) == PGRES_TUPLES_OK;
    if (!ok)
        fprintf(stderr, "floor: %s", PQerrorMessage(conn));
    PQclear(res);
    PQfinish(conn);
    return ok ? 0 : 1;
}
