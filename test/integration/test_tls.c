/* TLS to PostgreSQL: scripts/test.sh starts the test server with `scripts/pg.sh start DIR --tls`
 * and sets RG_TEST_PG_TLS_DIR=DIR/tls (a CA made for this run, the server's certificate for
 * DNS:localhost only, and a second CA that signed nothing). sslmode=verify-full works with the
 * right CA, named in the URL or by PGSSLROOTCERT; a wrong host name, a wrong CA and no CA at all
 * each end with exit 7 naming libpq's reason, never the password. */
#include <criterion/criterion.h>

#include <stdlib.h>
#include <string.h>

#include "harness.h"

TestSuite(tls, .init = h_setup, .fini = h_teardown);

/* In the URLs below; it must never be printed. The server trusts 127.0.0.1, so any password
 * logs in. */
#define SECRET "tls-s3cret-pw"

static const char *tls_dir(void)
{
    const char *d = getenv("RG_TEST_PG_TLS_DIR");
    cr_assert(d && *d, "RG_TEST_PG_TLS_DIR is not set: run scripts/test.sh");
    return d;
}

static const char *port(void)
{
    const char *colon = strrchr(h_db_hostport(), ':');
    cr_assert_not_null(colon);
    return colon + 1;
}

/* A URL for this test's database at host (always reached on 127.0.0.1) with sslmode=verify-full
 * and the rest of the query string. */
static const char *tls_url(const char *host, const char *query)
{
    return h_fmt("postgresql://postgres:%s@%s:%s/%s?hostaddr=127.0.0.1&sslmode=verify-full%s",
                 SECRET, host, port(), h_db_name(), query);
}

/* Runs migrate with url, a short connect retry and HOME in the test's directory (no
 * ~/.postgresql there), plus one more variable (or NULL). */
static struct h_result migrate_with(const char *url, const char *extra)
{
    return h_run(H_ARGS("migrate"),
                 H_ENV(h_fmt("ROLLGATE_DATABASE_URL=%s", url), h_env_dir(),
                       "ROLLGATE_DATABASE_CONNECT_RETRY=1s", "ROLLGATE_LEASE_MODE=none",
                       h_fmt("HOME=%s", h_tmp_dir()), extra ? extra : "ROLLGATE_LOG_LEVEL=info"));
}

/* The migration records whether its own connection was encrypted. */
static void ssl_probe_migration(void)
{
    h_migration(1, "probe",
                "CREATE TABLE probe AS SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid();\n",
                NULL);
}

static void assert_failed_without_secret(struct h_result r, const char *reason)
{
    h_assert_exit(r, 7);
    h_assert_has(r, r.err, reason);
    h_assert_lacks(r, r.err, SECRET);
    h_assert_lacks(r, r.out, SECRET);
    h_assert_lacks(r, r.termlog, SECRET);
    cr_assert(!h_table_exists("public.rollgate_migrations"), "a run that never connected wrote");
}

Test(tls, verify_full_with_the_runs_ca_in_the_url_migrates_over_tls)
{
    ssl_probe_migration();
    struct h_result r =
        migrate_with(tls_url("localhost", h_fmt("&sslrootcert=%s/ca.crt", tls_dir())), NULL);
    h_assert_exit(r, 0);
    cr_assert_str_eq(h_query("SELECT ssl::text FROM probe"), "true");
    h_assert_lacks(r, r.err, SECRET);
}

Test(tls, verify_full_with_the_ca_from_pgsslrootcert_migrates_over_tls)
{
    ssl_probe_migration();
    struct h_result r =
        migrate_with(tls_url("localhost", ""), h_fmt("PGSSLROOTCERT=%s/ca.crt", tls_dir()));
    h_assert_exit(r, 0);
    cr_assert_str_eq(h_query("SELECT ssl::text FROM probe"), "true");
}

Test(tls, a_host_name_the_certificate_does_not_name_exits_7_saying_so)
{
    ssl_probe_migration();
    /* The certificate names localhost only. */
    struct h_result r =
        migrate_with(tls_url("127.0.0.1", h_fmt("&sslrootcert=%s/ca.crt", tls_dir())), NULL);
    assert_failed_without_secret(r, "does not match host name");
}

Test(tls, a_certificate_from_another_ca_exits_7_saying_so)
{
    ssl_probe_migration();
    struct h_result r =
        migrate_with(tls_url("localhost", h_fmt("&sslrootcert=%s/other-ca.crt", tls_dir())), NULL);
    assert_failed_without_secret(r, "certificate verify failed");
}

Test(tls, verify_full_without_a_ca_file_exits_7_saying_to_set_sslrootcert)
{
    ssl_probe_migration();
    /* HOME has no .postgresql/root.crt, and libpq never looks in a system store. */
    struct h_result r = migrate_with(tls_url("localhost", ""), NULL);
    assert_failed_without_secret(r, "root certificate file");
    h_assert_has(r, r.err, "set sslrootcert=");
    h_assert_has(r, r.err, "PGSSLROOTCERT");
}
