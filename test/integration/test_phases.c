/* Post-deploy migrations (-- rollgate:phase=post) and migrate --phase pre|post|all on a real
 * PostgreSQL: what each phase applies and in which order, what it leaves pending and says
 * so, what wait and status make of them, and rollback across both kinds. The rollout gate
 * (--after-rollout) on the API server is in test_postdeploy.c. */
#include <criterion/criterion.h>

#include <string.h>

#include "harness.h"

TestSuite(phases, .init = h_setup, .fini = h_teardown);

#define DB_ENV H_ENV(h_env_url(), h_env_dir())
#define DB_ENV_WITH(...) H_ENV(h_env_url(), h_env_dir(), __VA_ARGS__)

/* 1 (pre) makes the table every migration logs its version into, so the order in which
 * they ran is read back from its serial ids; 2 is post-deploy, 3 pre, each with a down. */
static void three_mixed(void)
{
    h_migration(1, "make_log", "CREATE TABLE ran (id serial PRIMARY KEY, v int NOT NULL);\n",
                "DROP TABLE ran;\n");
    h_migration(2, "contract",
                "-- The contract step: only once no old pod is left.\n"
                "-- rollgate:phase=post\n"
                "INSERT INTO ran (v) VALUES (2);\n",
                "DELETE FROM ran WHERE v = 2;\n");
    h_migration(3, "expand", "-- rollgate:phase=pre\nINSERT INTO ran (v) VALUES (3);\n",
                "DELETE FROM ran WHERE v = 3;\n");
}

/* Runs rollgate with the database's environment and asserts its exit status. */
static void expect(const char *const *argv, int status)
{
    struct h_result r = h_run(argv, DB_ENV);
    h_assert_exit(r, status);
}

static char *ran_order(void)
{
    return h_query("SELECT coalesce(string_agg(v::text, ',' ORDER BY id), '') FROM ran");
}

static char *applied_versions(void)
{
    return h_query("SELECT coalesce(string_agg(version::text, ',' ORDER BY version), '') "
                   "FROM public.rollgate_migrations WHERE kind = 'schema'");
}

Test(phases, pre_applies_pre_migrations_past_a_post_one_and_names_each_one_left)
{
    three_mixed();
    struct h_result r = h_run(H_ARGS("migrate", "--phase", "pre"), DB_ENV);

    h_assert_exit(r, 0);
    cr_assert_str_eq(applied_versions(), "1,3");
    cr_assert_str_eq(ran_order(), "3");
    h_assert_has(r, r.err, "post-deploy migration left pending for migrate --phase post");
    h_assert_has(r, r.err, "contract");
    h_assert_has(r, r.termlog, "1 post-deploy migration left pending");

    /* Nothing left for the pre phase: the next pre run applies nothing and says so again. */
    struct h_result again = h_run(H_ARGS("migrate", "--phase", "pre"), DB_ENV);
    h_assert_exit(again, 0);
    h_assert_has(again, again.termlog, "no migration to apply");
    h_assert_has(again, again.termlog, "1 post-deploy migration left pending");
    cr_assert_str_eq(applied_versions(), "1,3");
}

Test(phases, post_applies_pending_pre_migrations_first_then_the_post_ones)
{
    three_mixed();
    struct h_result r = h_run(H_ARGS("migrate", "--phase", "post"), DB_ENV);

    h_assert_exit(r, 0);
    cr_assert_str_eq(applied_versions(), "1,2,3");
    cr_assert_str_eq(ran_order(), "3,2");
}

Test(phases, all_is_the_default_and_applies_both_kinds_in_version_order)
{
    three_mixed();
    struct h_result r = h_run(H_ARGS("migrate"), DB_ENV);

    h_assert_exit(r, 0);
    cr_assert_str_eq(applied_versions(), "1,2,3");
    cr_assert_str_eq(ran_order(), "2,3");
    h_assert_lacks(r, r.err, "left pending");
}

Test(phases, the_flag_wins_over_the_environment_which_wins_over_the_file)
{
    three_mixed();
    h_write_file(h_tmp_path("config.yaml"), "migrations:\n  phase: all\n");
    const char *cfg = h_fmt("ROLLGATE_CONFIG=%s", h_tmp_path("config.yaml"));

    struct h_result env =
        h_run(H_ARGS("migrate"), DB_ENV_WITH(cfg, "ROLLGATE_MIGRATIONS_PHASE=pre"));
    h_assert_exit(env, 0);
    cr_assert_str_eq(applied_versions(), "1,3");

    struct h_result flag = h_run(H_ARGS("migrate", "--phase", "post"),
                                 DB_ENV_WITH(cfg, "ROLLGATE_MIGRATIONS_PHASE=pre"));
    h_assert_exit(flag, 0);
    cr_assert_str_eq(applied_versions(), "1,2,3");
}

Test(phases, status_shows_each_migrations_phase_in_text_and_json)
{
    three_mixed();
    expect(H_ARGS("migrate", "--phase", "pre"), 0);

    struct h_result text = h_run(H_ARGS("status"), DB_ENV);
    h_assert_exit(text, 0);
    h_assert_has(text, text.out, "PHASE");
    cr_assert(strstr(text.out, "pending  post"), "%s", h_describe(&text));
    cr_assert(strstr(text.out, "applied  pre"), "%s", h_describe(&text));
    h_assert_has(text, text.out, "1 pending (1 post-deploy)");

    struct h_result json = h_run(H_ARGS("status", "--output", "json"), DB_ENV);
    h_assert_exit(json, 0);
    cr_assert_str_eq(h_json(json.out, "{pending_post}"), "1");
    cr_assert_str_eq(h_json(json.out, "{migrations,0,phase}"), "pre");
    cr_assert_str_eq(h_json(json.out, "{migrations,1,phase}"), "post");
    cr_assert_str_eq(h_json(json.out, "{migrations,1,state}"), "pending");
    cr_assert_str_eq(h_json(json.out, "{migrations,2,phase}"), "pre");

    /* A post-deploy migration still pending is still pending for --exit-code. */
    expect(H_ARGS("status", "--exit-code"), 11);
}

Test(phases, wait_is_satisfied_with_post_migrations_pending_but_not_with_a_pre_one)
{
    three_mixed();
    struct h_result before = h_run(H_ARGS("wait", "--timeout", "3s"), DB_ENV);
    h_assert_exit(before, 8);

    expect(H_ARGS("migrate", "--phase", "pre"), 0);
    struct h_result after = h_run(H_ARGS("wait", "--timeout", "60s"), DB_ENV);
    h_assert_exit(after, 0);
    cr_assert_str_eq(applied_versions(), "1,3", "wait wrote");
}

Test(phases, a_rollback_undoes_post_and_pre_migrations_newest_first)
{
    three_mixed();
    expect(H_ARGS("migrate"), 0);

    struct h_result r = h_run(H_ARGS("migrate", "--target", "1", "--phase", "pre"), DB_ENV);
    h_assert_exit(r, 0);
    cr_assert_str_eq(applied_versions(), "1");
    cr_assert_str_eq(ran_order(), "");
    h_assert_has(r, r.termlog, "rolled back 2 migrations");
}

Test(phases, an_unknown_phase_in_a_file_is_exit_4_naming_file_and_line)
{
    char *up = h_migration(1, "x", "-- first\n-- rollgate:phase=contract\nSELECT 1;\n", NULL);
    struct h_result r = h_run(H_ARGS("migrate"), DB_ENV);

    h_assert_exit(r, 4);
    h_assert_has(r, r.termlog, h_fmt("%s:2: rollgate:phase: \"contract\" is not pre or post", up));
    cr_assert_not(h_table_exists("public.rollgate_migrations"), "the database was touched");
}

Test(phases, a_bad_phase_flag_is_a_configuration_error)
{
    three_mixed();
    struct h_result r = h_run(H_ARGS("migrate", "--phase", "later"), DB_ENV);

    h_assert_exit(r, 3);
    h_assert_has(r, r.err, "--phase");
    cr_assert_not(h_table_exists("public.rollgate_migrations"));
}

Test(phases, after_rollout_needs_the_post_phase_and_a_deployment)
{
    three_mixed();
    struct h_result pre =
        h_run(H_ARGS("migrate", "--phase", "pre", "--after-rollout", "deployment/web"), DB_ENV);
    h_assert_exit(pre, 2);
    h_assert_has(pre, pre.err, "--after-rollout applies only to --phase post");

    struct h_result kind =
        h_run(H_ARGS("migrate", "--phase", "post", "--after-rollout", "statefulset/web"), DB_ENV);
    h_assert_exit(kind, 2);
    h_assert_has(kind, kind.err, "is not deployment/NAME");

    struct h_result cmd = h_run(H_ARGS("status", "--after-rollout", "deployment/web"), DB_ENV);
    h_assert_exit(cmd, 2);
    cr_assert_not(h_table_exists("public.rollgate_migrations"));
}

Test(phases, after_rollout_without_any_cluster_is_a_configuration_error_before_the_database)
{
    three_mixed();
    struct h_result r =
        h_run(H_ARGS("migrate", "--phase", "post", "--after-rollout", "deployment/web"), DB_ENV);

    h_assert_exit(r, 3);
    h_assert_has(r, r.err, "--after-rollout outside a cluster needs a kubeconfig");
    cr_assert_not(h_table_exists("public.rollgate_migrations"), "the database was touched");
}
