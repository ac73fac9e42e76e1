/* Racers without a Lease (issue #15): runs started together claim the fence before reading
 * and linting their files, the others follow the claimant on the history's digest without
 * holding a transaction, and a follower whose leader died takes the work over after
 * follow_stall_ms (lease.duration). The claim itself is driven through the store. */
#include <criterion/criterion.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "log/log.h"
#include "pg/pg.h"

static void setup(void)
{
    h_setup();
    h_query("CREATE TABLE applied_log (v int)");
}

TestSuite(racers, .init = setup, .fini = h_teardown);

static size_t count_of(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
}

/* Each file logs one lint finding (prefer-bigint-over-int) and records its one run. */
static void add_migrations(int n)
{
    for (int i = 1; i <= n; i++)
        h_migration(
            i, h_fmt("step_%d", i),
            h_fmt("CREATE TABLE m_%d (id int);\nINSERT INTO applied_log VALUES (%d);\n", i, i),
            NULL);
}

static void assert_each_applied_once(int n)
{
    cr_assert_eq(h_count_rows("applied_log"), n, "some migration applied twice or never");
    cr_assert_eq(h_query_int("SELECT count(DISTINCT v) FROM applied_log"), n);
    cr_assert_eq(h_query_int("SELECT count(DISTINCT version) FROM public.rollgate_migrations"), n);
    cr_assert_eq(h_count_rows("public.rollgate_migrations"), n);
}

Test(racers, runs_started_together_follow_the_claimant_without_reading_or_linting_their_files)
{
    enum { NPROC = 8, NMIG = 100 };
    /* No retry after a stall (an hour), so that every count below is exact. */
    const char *const *env = H_ENV(h_env_url(), h_env_dir(), "ROLLGATE_LEASE_MODE=none",
                                   "ROLLGATE_LEASE_DURATION=1h", "ROLLGATE_LOG_FORMAT=text");
    size_t started = 0, applied_by = 0, claimed_aside = 0;
    struct h_result r[NPROC];

    add_migrations(NMIG);
    h_run_many(NPROC, H_ARGS("migrate"), env, r);

    for (int i = 0; i < NPROC; i++) {
        const char *lint = strstr(r[i].err, "prefer-bigint-over-int");
        const char *first = strstr(r[i].err, "migration started");

        h_assert_exit(r[i], 0);
        started += count_of(r[i].err, "migration started");
        applied_by += strstr(r[i].err, "migration done") != NULL;
        /* A run that tried a step read and linted the files it would apply first (all
         * still pending when it read the history, at least those it applied). */
        if (first)
            cr_assert(lint && lint < first &&
                          count_of(r[i].err, "prefer-bigint-over-int") >=
                              count_of(r[i].err, "migration done"),
                      "run %d tried a step without linting its files first\n%s", i,
                      h_describe(&r[i]));
        /* One that found the fence claimed read no file past its checksum. */
        if (strstr(r[i].err, "holds the migration lock; following it")) {
            claimed_aside++;
            cr_assert_null(lint, "run %d linted although it followed at once\n%s", i,
                           h_describe(&r[i]));
            cr_assert_null(first, "run %d tried a step although it followed at once", i);
            h_assert_has(r[i], r[i].err, "done by another run");
        }
    }
    assert_each_applied_once(NMIG);
    cr_log_info("%zu migration starts for %d migrations; %zu runs applied, %zu followed at the "
                "claim",
                started, NMIG, applied_by, claimed_aside);
    cr_assert_geq(applied_by, 1);
    /* Each migration is started by the run that applies it, plus one start per run that
     * met another at the fence, plus the steps two runs that both held the fence find done
     * as they leapfrog (test_migrate.c's bound: trying every migration gives more). */
    cr_assert_lt(started, (size_t)NPROC * NMIG / 2, "%zu migration starts for %d migrations",
                 started, NMIG);
}

/* Migration 1 holds the fence until the test inserts into gate: a leader stuck in a long
 * step, making no progress. */
static void add_gated_migrations(int n)
{
    h_query("CREATE TABLE gate (open bool)");
    h_migration(1, "gated",
                "DO $$ BEGIN WHILE NOT EXISTS (SELECT FROM gate) LOOP PERFORM pg_sleep(0.02); "
                "END LOOP; END $$;\nINSERT INTO applied_log VALUES (1);\n",
                NULL);
    for (int i = 2; i <= n; i++)
        h_migration(
            i, h_fmt("step_%d", i),
            h_fmt("CREATE TABLE m_%d (id int);\nINSERT INTO applied_log VALUES (%d);\n", i, i),
            NULL);
}

/* A racer's environment: its identity names its session (rollgate/IDENTITY). */
#define RACER_ENV(identity, duration)                                                              \
    H_ENV(h_env_url(), h_env_dir(), "ROLLGATE_LEASE_MODE=none", "ROLLGATE_LOG_FORMAT=text",        \
          "ROLLGATE_LEASE_DURATION=" duration, "ROLLGATE_LEASE_RENEW_DEADLINE=2s",                 \
          "ROLLGATE_LEASE_RETRY_PERIOD=500ms", "ROLLGATE_LEASE_IDENTITY=" identity)

/* Starts L, which claims and gets stuck in migration 1 holding the fence, then F, which
 * follows it. (Sessions are looked up in this test's database: tests run side by side.) */
static void start_stuck_leader_and_follower(struct h_proc **leader, struct h_proc **follower,
                                            const char *const *follower_env)
{
    *leader = h_start(H_ARGS("migrate"), RACER_ENV("L", "1h"));
    cr_assert(h_wait_until("SELECT EXISTS (SELECT FROM pg_stat_activity WHERE datname = "
                           "current_database() AND application_name "
                           "= 'rollgate/L' AND state = 'active' AND query LIKE '%FROM gate%')",
                           *leader, 60000),
              "the leader never reached migration 1");
    *follower = h_start(H_ARGS("migrate"), follower_env);
    cr_assert(h_proc_wait_stderr(*follower, "holds the migration lock; following it", 60000),
              "the second run did not follow the first");
}

/* While it follows, the follower's session holds no transaction and no snapshot (a
 * waiter holding one would stall a CREATE INDEX CONCURRENTLY of the leader's), and what it
 * sends is the history's digest: one row, not the history. */
Test(racers, a_follower_looks_at_the_digest_holding_no_transaction_or_snapshot)
{
    struct h_proc *leader, *follower;
    struct h_result lr, fr;

    add_gated_migrations(20);
    start_stuck_leader_and_follower(&leader, &follower, RACER_ENV("F", "1h"));
    cr_assert(h_wait_until("SELECT EXISTS (SELECT FROM pg_stat_activity WHERE datname = "
                           "current_database() AND application_name "
                           "= 'rollgate/F' AND query LIKE '%rollgate_digest%')",
                           follower, 60000),
              "the follower never looked at the digest");
    for (int i = 0; i < 20; i++) {
        char *s = h_query("SELECT state || '|' || (backend_xmin IS NULL) || '|' || "
                          "(query LIKE '%rollgate_digest%') FROM pg_stat_activity WHERE datname = "
                          "current_database() AND "
                          "application_name = 'rollgate/F'");
        cr_assert(s && (strcmp(s, "idle|true|true") == 0 || strncmp(s, "active|", 7) == 0),
                  "the follower's session: %s", s ? s : "gone");
    }
    h_query("INSERT INTO gate VALUES (true)");
    lr = h_wait(leader);
    fr = h_wait(follower);
    h_assert_exit(lr, 0);
    h_assert_exit(fr, 0);
    h_assert_has(fr, fr.err, "done by another run");
    cr_assert_null(strstr(fr.err, "prefer-bigint-over-int"), "the follower linted");
    assert_each_applied_once(20);
}

/* The leader is killed in migration 1 (its transaction rolls back): the follower, seeing
 * no progress for lease.duration, reads and lints its files, then applies everything. */
Test(racers, a_follower_whose_leader_died_takes_the_work_over_after_the_stall)
{
    struct h_proc *leader, *follower;
    struct h_result lr, fr;
    const char *lint, *first;

    add_gated_migrations(20);
    start_stuck_leader_and_follower(&leader, &follower, RACER_ENV("F", "3s"));
    kill(h_proc_pid(leader), SIGKILL);
    lr = h_wait(leader);
    cr_assert_eq(lr.signo, SIGKILL);
    /* Its backend ends (it checks its client every second while a step runs) and rolls
     * migration 1 back; opened before that, the gate would let it commit. */
    cr_assert(h_wait_until("SELECT NOT EXISTS (SELECT FROM pg_stat_activity WHERE datname = "
                           "current_database() AND "
                           "application_name = 'rollgate/L')",
                           NULL, 60000),
              "the killed leader's session lives on");
    h_query("INSERT INTO gate VALUES (true)");
    fr = h_wait(follower);
    h_assert_exit(fr, 0);
    h_assert_has(fr, fr.err, "showed no progress");
    lint = strstr(fr.err, "prefer-bigint-over-int");
    first = strstr(fr.err, "migration started");
    cr_assert(lint && first && lint < first, "linted before applying\n%s", h_describe(&fr));
    h_assert_has(fr, fr.err, "applied 20 migrations");
    assert_each_applied_once(20);
}

/* The claim of a run without a Lease held in pg_locks by the session of run IDENTITY: its
 * transaction holding the fence while the run reads and lints its files. */
#define CLAIM_HELD(identity)                                                                       \
    "SELECT EXISTS (SELECT FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid WHERE "        \
    "l.locktype = 'advisory' AND l.granted AND a.datname = current_database() AND "                \
    "a.application_name = 'rollgate/" identity "' AND a.state = 'idle in transaction')"

/* Migration version: one statement of 100,000 OR terms, which takes seconds to parse and
 * lint and milliseconds to run, recording its run as add_migrations' files do. */
static void add_long_to_parse(int version)
{
    char *big = malloc(1000000);
    size_t len;

    cr_assert_not_null(big);
    len = (size_t)snprintf(big, 64, "INSERT INTO applied_log SELECT %d WHERE 1 = 1", version);
    for (int i = 0; i < 100000; i++) {
        memcpy(big + len, " OR 0 = 1", 9);
        len += 9;
    }
    memcpy(big + len, ";\n", 3);
    h_migration(version, "long_to_parse", big, NULL);
    free(big);
}

/* A racer killed while it holds the claim (reading and linting its files, one of them long
 * to parse): its transaction ends with its connection, and the run that followed it takes
 * the work over after lease.duration. The claimant is stopped as soon as its claim shows, so
 * that the follower starts while the claim is held, then killed. */
Test(racers, a_claimant_killed_while_it_holds_the_claim_is_taken_over_after_the_stall)
{
    struct h_proc *claimant, *follower;
    struct h_result cr, fr;

    add_migrations(20);
    add_long_to_parse(21);

    claimant = h_start(H_ARGS("migrate"), RACER_ENV("C", "3s"));
    cr_assert(h_wait_until(CLAIM_HELD("C"), claimant, 60000), "the first run never claimed");
    cr_assert_eq(kill(h_proc_pid(claimant), SIGSTOP), 0);
    cr_assert_str_eq(h_query(CLAIM_HELD("C")), "t", "the claim ended before the run was stopped");
    follower = h_start(H_ARGS("migrate"), RACER_ENV("F", "3s"));
    cr_assert(h_proc_wait_stderr(follower, "holds the migration lock; following it", 60000),
              "the second run did not follow the claimant");
    cr_assert_eq(kill(h_proc_pid(claimant), SIGKILL), 0);
    cr = h_wait(claimant);
    cr_assert_eq(cr.signo, SIGKILL);

    fr = h_wait(follower);
    h_assert_exit(fr, 0);
    h_assert_has(fr, fr.err, "showed no progress");
    h_assert_has(fr, fr.err, "applied 21 migrations");
    assert_each_applied_once(21);
}

/* SIGTERM while the claimant reads and lints its files (the first long to parse): the run
 * stops before reading the next one, so no migration starts, and it gives the claim up. */
Test(racers, sigterm_while_the_claimant_reads_its_files_stops_before_any_migration_starts)
{
    struct h_proc *claimant;
    struct h_result r;

    add_long_to_parse(1);
    h_migration(2, "after", "INSERT INTO applied_log VALUES (2);\n", NULL);
    claimant = h_start(H_ARGS("migrate"), RACER_ENV("C", "3s"));
    cr_assert(h_wait_until(CLAIM_HELD("C"), claimant, 60000), "the run never claimed");
    cr_assert_eq(kill(h_proc_pid(claimant), SIGTERM), 0);
    r = h_wait(claimant);
    h_assert_exit(r, 143);
    h_assert_has(r, r.err, "stopped while reading the migration files, before");
    h_assert_has(r, r.err, "0002_after.up.sql");
    cr_assert_null(strstr(r.err, "migration started"), "a migration started\n%s", h_describe(&r));
    cr_assert_eq(h_count_rows("applied_log"), 0);
    cr_assert_eq(h_query_int("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND "
                             "database = (SELECT oid FROM pg_database WHERE datname = "
                             "current_database())"),
                 0, "the claim was kept");
}

/* The claim through the store: held, it is a transaction holding the fence and nothing
 * else; another session's claim then fails, as does one whose row count is stale, both
 * leaving no transaction open; unclaim ends it. */
Test(racers, a_claim_holds_the_fence_only_while_the_count_matches_and_ends_clean)
{
    struct rg_pg_opts o = {.schema = "public",
                           .connect_timeout_ms = 10000,
                           .wait_timeout_ms = 1000,
                           .identity = "claim-a"};
    struct rg_pg_opts o2 = o;
    struct rg_pg *a, *b;
    struct rg_store sa, sb;
    struct rg_err err = {0};
    bool held = false;

    rg_log_setup(RG_LOG_FORMAT_TEXT, RG_LOG_ERROR, stderr);
    o.url = o2.url = h_db_url();
    o2.identity = "claim-b";
    a = rg_pg_new(&o);
    b = rg_pg_new(&o2);
    cr_assert_eq(rg_pg_connect(a, &err), 0, "%s", err.msg);
    cr_assert_eq(rg_pg_connect(b, &err), 0, "%s", err.msg);
    rg_pg_store(a, &sa);
    rg_pg_store(b, &sb);
    cr_assert_eq(sa.ensure_history(sa.ctx, &err), 0, "%s", err.msg);

    cr_assert_eq(sa.claim(sa.ctx, 1, &held, &err), 0, "%s", err.msg);
    cr_assert_not(held, "claimed with a stale count (1 row; the history has none)");
    cr_assert_eq(h_query_int("SELECT count(*) FROM pg_stat_activity WHERE datname = "
                             "current_database() AND application_name = "
                             "'rollgate/claim-a' AND state <> 'idle'"),
                 0, "a refused claim left a transaction open");

    cr_assert_eq(sa.claim(sa.ctx, 0, &held, &err), 0, "%s", err.msg);
    cr_assert(held);
    cr_assert_str_eq(h_query("SELECT state || '|' || (backend_xmin IS NULL) FROM "
                             "pg_stat_activity WHERE datname = current_database() AND "
                             "application_name = 'rollgate/claim-a'"),
                     "idle in transaction|true", "a claim holds a transaction and no snapshot");
    cr_assert_eq(h_query_int("SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid) "
                             "WHERE a.datname = current_database() AND a.application_name = "
                             "'rollgate/claim-a' AND l.locktype = "
                             "'advisory' AND l.granted"),
                 1, "the fence is held");

    cr_assert_eq(sb.claim(sb.ctx, 0, &held, &err), 0, "%s", err.msg);
    cr_assert_not(held, "two claims held the fence at once");
    cr_assert_eq(h_query_int("SELECT count(*) FROM pg_stat_activity WHERE datname = "
                             "current_database() AND application_name = "
                             "'rollgate/claim-b' AND state <> 'idle'"),
                 0, "a claim that lost left a transaction open");

    sa.unclaim(sa.ctx);
    cr_assert_eq(h_query_int("SELECT count(*) FROM pg_stat_activity WHERE datname = "
                             "current_database() AND application_name = "
                             "'rollgate/claim-a' AND state <> 'idle'"),
                 0, "unclaim left the transaction open");
    cr_assert_eq(sb.claim(sb.ctx, 0, &held, &err), 0, "%s", err.msg);
    cr_assert(held, "the fence was not given back");
    sb.unclaim(sb.ctx);
    rg_pg_free(a);
    rg_pg_free(b);
}

/* A run that found no history table makes it under the fence, but not once another run
 * made it: else it would hold the fence just as the claimant, about to apply, reaches its
 * first step, and the claimant would step aside. Here a claim holds the fence while another
 * session ensures the table (in a child process, so that a wait ends the test by alarm). */
Test(racers, ensuring_an_existing_history_table_takes_no_fence)
{
    struct rg_pg_opts o = {.schema = "public",
                           .connect_timeout_ms = 10000,
                           .wait_timeout_ms = 1000,
                           .identity = "ensure-a"};
    struct rg_pg *a;
    struct rg_store sa;
    struct rg_err err = {0};
    bool held = false;
    int status = 0;
    pid_t pid;

    rg_log_setup(RG_LOG_FORMAT_TEXT, RG_LOG_ERROR, stderr);
    o.url = h_db_url();
    a = rg_pg_new(&o);
    cr_assert_eq(rg_pg_connect(a, &err), 0, "%s", err.msg);
    rg_pg_store(a, &sa);
    cr_assert_eq(sa.ensure_history(sa.ctx, &err), 0, "%s", err.msg);
    cr_assert_eq(sa.claim(sa.ctx, 0, &held, &err), 0, "%s", err.msg);
    cr_assert(held);

    pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        struct rg_pg_opts ob = o;
        struct rg_pg *b;
        struct rg_store sb;
        struct rg_err e = {0};

        alarm(20);
        ob.identity = "ensure-b";
        b = rg_pg_new(&ob);
        if (rg_pg_connect(b, &e) < 0)
            _exit(2);
        rg_pg_store(b, &sb);
        _exit(sb.ensure_history(sb.ctx, &e) == 0 ? 0 : 1);
    }
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    sa.unclaim(sa.ctx);
    rg_pg_free(a);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "ensuring the table waited on the fence (status %d)", status);
}
