/* What differs between the PostgreSQL majors scripts/test.sh runs the core suites against
 * (13 to 18). client_connection_check_interval (the server noticing a SIGKILLed rollgate
 * mid-statement) exists only from 14: on 13 rollgate must not set it, or every migration
 * would fail with "unrecognized configuration parameter". */
#include <criterion/criterion.h>

#include <stdlib.h>
#include <string.h>

#include "harness.h"

TestSuite(versions, .init = h_setup, .fini = h_teardown);

Test(versions, the_dead_client_check_is_set_only_where_the_server_has_it)
{
    long long version = h_query_int("SHOW server_version_num");
    /* A transactional migration (SET LOCAL) and a no-transaction one (a session SET) each
     * record the value their own session sees; NULL where the parameter does not exist. */
    h_migration(1, "in_tx",
                "CREATE TABLE in_tx AS SELECT "
                "current_setting('client_connection_check_interval', true) AS v;\n",
                NULL);
    h_migration(2, "no_tx",
                "-- rollgate:no-transaction\nCREATE TABLE no_tx AS SELECT "
                "current_setting('client_connection_check_interval', true) AS v;\n",
                NULL);

    struct h_result r =
        h_run(H_ARGS("migrate"), H_ENV(h_env_url(), h_env_dir(), "ROLLGATE_LEASE_MODE=none"));
    h_assert_exit(r, 0);
    const char *want = version >= 140000 ? "1s" : NULL;
    const char *tables[] = {"in_tx", "no_tx"};
    for (size_t i = 0; i < 2; i++) {
        char *got = h_query(h_fmt("SELECT v FROM %s", tables[i]));
        if (want)
            cr_assert(got && strcmp(got, want) == 0,
                      "%s: client_connection_check_interval is %s on %lld, want %s", tables[i],
                      got ? got : "NULL", version, want);
        else
            cr_assert_null(got,
                           "%s: client_connection_check_interval is %s on %lld, which lacks it",
                           tables[i], got, version);
    }
    cr_assert_eq(
        h_query_int("SELECT count(*) FROM public.rollgate_migrations WHERE state = 'applied'"), 2);
}
