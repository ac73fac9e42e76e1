/* Through a real PgBouncer in either pool mode: scripts/test.sh runs this suite twice, with
 * RG_TEST_PGBOUNCER_URL at a PgBouncer in transaction pooling and then at one in session
 * pooling (RG_TEST_PGBOUNCER_MODE names which; each test checks PgBouncer agrees). Racers apply
 * each migration once, a no-transaction migration is refused without database.directUrl and
 * runs with it, and a rollback runs the down SQL stored in history. */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

static void setup(void)
{
    const char *want = getenv("RG_TEST_PGBOUNCER_MODE");

    h_setup();
    cr_assert(want && *want, "RG_TEST_PGBOUNCER_MODE is not set: run scripts/test.sh");
    cr_assert_str_eq(h_pooler_mode(), want, "PgBouncer runs in another pool mode than the run's");
}

TestSuite(poolmodes, .init = setup, .fini = h_teardown);

#define RACERS 4

static const char *pooled_env(void)
{
    return h_fmt("ROLLGATE_DATABASE_URL=%s", h_pooled_url());
}

static char *applied_versions(void)
{
    return h_query("SELECT coalesce(string_agg(version::text, ',' ORDER BY version), '') "
                   "FROM public.rollgate_migrations WHERE state = 'applied'");
}

Test(poolmodes, racers_through_the_pooler_apply_each_migration_once)
{
    h_migration(1, "t1", "CREATE TABLE t1 (id int);\n", NULL);
    h_migration(2, "t2", "CREATE TABLE t2 (id int);\nINSERT INTO t2 VALUES (1);\n", NULL);
    h_migration(3, "t3", "ALTER TABLE t2 ADD COLUMN c int;\n", NULL);

    struct h_result r[RACERS];
    /* More racers than the pool's 2 server connections: in session mode the rest queue in
     * PgBouncer until one is free. */
    h_run_many(RACERS, H_ARGS("migrate"),
               H_ENV(pooled_env(), h_env_dir(), "ROLLGATE_LEASE_MODE=none"), r);
    for (size_t i = 0; i < RACERS; i++)
        h_assert_exit(r[i], 0);
    cr_assert_str_eq(applied_versions(), "1,2,3");
    cr_assert_eq(h_count_rows("public.rollgate_migrations"), 3);
    cr_assert_eq(h_count_rows("t2"), 1, "migration 2 ran more than once");
}

Test(poolmodes, no_transaction_migration_needs_direct_url_and_runs_with_it)
{
    h_migration(1, "create_t", "CREATE TABLE t (id int);\n", NULL);
    h_migration(2, "index_t",
                "-- rollgate:no-transaction\nCREATE INDEX CONCURRENTLY t_id ON t (id);\n", NULL);

    /* Either mode answers with PgBouncer's own cancel key: rollgate cannot tell session
     * pooling from transaction pooling, so it refuses both without the operator's word. */
    struct h_result r =
        h_run(H_ARGS("migrate"), H_ENV(pooled_env(), h_env_dir(), "ROLLGATE_LEASE_MODE=none"));
    h_assert_exit(r, 3);
    h_assert_has(r, r.err, "database.directUrl");
    cr_assert_str_eq(applied_versions(), "1");
    cr_assert(!h_table_exists("public.t_id"), "the refused migration ran");

    r = h_run(H_ARGS("migrate"), H_ENV(pooled_env(), h_env_dir(), "ROLLGATE_LEASE_MODE=none",
                                       h_fmt("ROLLGATE_DATABASE_DIRECT_URL=%s", h_db_url())));
    h_assert_exit(r, 0);
    cr_assert_str_eq(applied_versions(), "1,2");
    cr_assert_str_eq(h_query("SELECT indisvalid::text FROM pg_index WHERE indexrelid = "
                             "'public.t_id'::regclass"),
                     "true");
}

Test(poolmodes, rollback_through_the_pooler_runs_the_down_sql_stored_in_history)
{
    h_migration(1, "t1", "CREATE TABLE t1 (id int);\n", "DROP TABLE t1;\n");
    char *up2 = h_migration(2, "t2", "CREATE TABLE t2 (id int);\n", "DROP TABLE t2;\n");
    char *up3 = h_migration(3, "t3", "CREATE TABLE t3 (id int);\n", "DROP TABLE t3;\n");
    struct h_result r =
        h_run(H_ARGS("migrate"), H_ENV(pooled_env(), h_env_dir(), "ROLLGATE_LEASE_MODE=none"));
    h_assert_exit(r, 0);

    /* An older image: it knows only migration 1, so the downs of 2 and 3 come from history. */
    const char *gone[] = {up2, up3};
    for (size_t i = 0; i < 2; i++) {
        char *down = h_fmt("%.*s.down.sql", (int)(strlen(gone[i]) - strlen(".up.sql")), gone[i]);
        cr_assert(remove(gone[i]) == 0 && remove(down) == 0, "remove %s", gone[i]);
    }
    r = h_run(H_ARGS("migrate", "--target", "1"),
              H_ENV(pooled_env(), h_env_dir(), "ROLLGATE_LEASE_MODE=none"));
    h_assert_exit(r, 0);
    cr_assert_str_eq(applied_versions(), "1");
    cr_assert(h_table_exists("public.t1"));
    cr_assert(!h_table_exists("public.t2") && !h_table_exists("public.t3"),
              "a down migration did not run");
}
