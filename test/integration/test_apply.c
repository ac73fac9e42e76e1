/* Applying at the speed of psql without giving up a guarantee: what one step sends the
 * server (one PL/pgSQL block whose one query reads the history row, a plain insert of the
 * row, a session reset that sets back nothing a direct connection cannot lose), and that
 * the shorter reset still leaves every setting a migration made behind. */
#include <criterion/criterion.h>

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "harness.h"

TestSuite(apply, .init = h_setup, .fini = h_teardown);

static size_t occurrences(const char *text, const char *needle)
{
    size_t n = 0;
    for (const char *p = strstr(text, needle); p; p = strstr(p + strlen(needle), needle))
        n++;
    return n;
}

/* The statements this test's database logged since offset (log_statement = all) that hold
 * needle, each whole, up to max of them into out: a logged statement goes on over lines
 * that begin with a tab. Other tests share the log, and their lines name their own
 * databases. Returns how many there were. */
static size_t statements_since(size_t offset, const char *needle, char **out, size_t max)
{
    char *text = h_read_file(h_server_log());
    const char *prefix = h_fmt(" %s LOG:  statement: ", h_db_name());
    size_t n = 0;

    cr_assert(strlen(text) >= offset, "the server's log shrank");
    for (char *line = text + offset; *line;) {
        char *end = strchr(line, '\n');
        char *found;

        while (end && end[1] == '\t')
            end = strchr(end + 1, '\n');
        found = h_fmt("%.*s", (int)(end ? end - line : (long)strlen(line)), line);
        if (strstr(found, prefix) && strstr(found, needle) && n++ < max)
            out[n - 1] = found;
        line = end ? end + 1 : line + strlen(line);
    }
    return n;
}

Test(apply, a_step_reads_its_history_row_with_one_query_and_resets_only_what_can_leak)
{
    h_migration(1, "a", "CREATE TABLE a (id int);\n", "DROP TABLE a;\n");
    h_migration(2, "b", "CREATE TABLE b (id int);\n", "DROP TABLE b;\n");
    h_query(h_fmt("ALTER DATABASE %s SET log_statement = 'all'", h_db_name()));
    size_t offset = h_server_log_size();
    char *steps[2];

    struct h_result r =
        h_run(H_ARGS("migrate"), H_ENV(h_env_url(), h_env_dir(), "ROLLGATE_LEASE_MODE=none"));

    h_assert_exit(r, 0);
    /* The files' SQL goes in their steps only. */
    size_t n = statements_since(offset, " (id int);", steps, 2);
    cr_assert_eq(n, 2, "one query per migration expected, %zu seen", n);
    for (size_t i = 0; i < n; i++) {
        /* The look before the fence and the re-check under it: one block, one query,
         * planned once. */
        cr_assert_eq(occurrences(steps[i], "DO $rg$"), 1, "%s", steps[i]);
        cr_assert_eq(occurrences(steps[i], "rollgate_migrations WHERE"), 1, "%s", steps[i]);
        /* A schema migration's row is new under the fence. */
        cr_assert_eq(occurrences(steps[i], "ON CONFLICT"), 0, "%s", steps[i]);
        /* Straight to PostgreSQL, RESET ALL puts the reported settings back itself. */
        cr_assert(strstr(steps[i], "RESET ALL;"), "%s", steps[i]);
        cr_assert_eq(occurrences(steps[i], "SET application_name"), 0, "%s", steps[i]);
    }
    cr_assert_eq(h_count_rows("public.rollgate_migrations"), 2);
}

/* Settings the server reports to the client, changed by one migration for the session: the
 * next migration sees the connection's own again, the database's defaults included, which
 * is what RESET ALL goes back to. */
Test(apply, reported_settings_a_migration_changes_do_not_reach_the_next_on_a_direct_connection)
{
    h_query(h_fmt("ALTER DATABASE %s SET TimeZone = 'America/New_York'", h_db_name()));
    h_query(h_fmt("ALTER DATABASE %s SET DateStyle = 'SQL, DMY'", h_db_name()));
    h_migration(1, "elsewhere",
                "SET TimeZone = 'Asia/Tokyo';\nSET DateStyle = 'German';\n"
                "SET IntervalStyle = 'iso_8601';\nSET application_name = 'someone else';\n"
                "SET standard_conforming_strings = off;\nCREATE TABLE one (id int);\n",
                NULL);
    h_migration(2, "seen",
                "CREATE TABLE seen AS SELECT current_setting('TimeZone') AS tz, "
                "current_setting('DateStyle') AS ds, current_setting('IntervalStyle') AS ist, "
                "current_setting('application_name') AS app, "
                "current_setting('standard_conforming_strings') AS scs;\n",
                NULL);

    struct h_result r =
        h_run(H_ARGS("migrate"), H_ENV(h_env_url(), h_env_dir(), "ROLLGATE_LEASE_MODE=none"));

    h_assert_exit(r, 0);
    cr_assert_str_eq(h_query("SELECT tz FROM seen"), "America/New_York");
    cr_assert_str_eq(h_query("SELECT ds FROM seen"), "SQL, DMY");
    cr_assert_str_eq(h_query("SELECT ist FROM seen"), "postgres");
    cr_assert_str_eq(h_query("SELECT scs FROM seen"), "on");
    /* rollgate/<identity>: other runs judge by it whether this one is alive. */
    char *app = h_query("SELECT app FROM seen");
    cr_assert(app && strncmp(app, "rollgate/", 9) == 0, "application_name was %s", app);
}
