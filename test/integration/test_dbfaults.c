/* Faults between rollgate and PostgreSQL (DESIGN.md "Database": every database call has a
 * deadline). Each test puts test/tools/tcpproxy.py between the binary and the test server
 * and makes the network misbehave: a connection that stops forwarding both ways after the
 * first migration was sent, a server that never answers the first packet, a connection
 * reset mid-migration. Whatever happens, the run ends by its timeout (exit 8) or by SIGTERM
 * (exit 143) instead of hanging, and a later run applies every migration exactly once.
 *
 * The only times checked are upper bounds ten times what the run needs, so a loaded machine
 * cannot fail them; without deadlines the runs hang until the harness kills them. */
#include <criterion/criterion.h>

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

#define PROXY_SCRIPT "test/tools/tcpproxy.py"
/* Generous: a run with --timeout 2s that takes this long did not keep its deadline. */
#define BOUND_MS (30 * 1000)

static pid_t proxy_pid;
static int proxy_port;
static char *proxy_log, *proxy_ctl;

static void setup(void)
{
    h_setup();
}

static void teardown(void)
{
    h_tool_stop(proxy_pid);
    proxy_pid = 0;
    h_teardown();
}

TestSuite(dbfaults, .init = setup, .fini = teardown);

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Starts the proxy in front of the test server in this mode (see tcpproxy.py). */
static void proxy_start(const char *mode)
{
    char *dir = h_tmp_path("tcpproxy");
    cr_assert(mkdir(dir, 0755) == 0, "mkdir %s: %s", dir, strerror(errno));
    char *port_file = h_fmt("%s/port", dir);
    proxy_log = h_fmt("%s/events.log", dir);
    proxy_ctl = h_fmt("%s/control", dir);
    const char *argv[] = {"python3",     h_fmt("%s/" PROXY_SCRIPT, h_repo_root(PROXY_SCRIPT)),
                          "--upstream",  h_db_hostport(),
                          "--port-file", port_file,
                          "--log",       proxy_log,
                          "--control",   proxy_ctl,
                          "--mode",      mode,
                          NULL};
    proxy_pid = h_tool_start(argv, h_fmt("%s/out.log", dir), port_file, &proxy_port);
}

/* ROLLGATE_DATABASE_URL through the proxy. */
static const char *env_proxied_url(void)
{
    return h_fmt("ROLLGATE_DATABASE_URL=postgresql://postgres@127.0.0.1:%d/%s?sslmode=disable",
                 proxy_port, h_db_name());
}

/* Whether the proxy has logged an event containing needle, waiting up to two minutes. */
static bool proxy_saw(const char *needle)
{
    int64_t until = mono_ms() + 120 * 1000;
    while (mono_ms() < until) {
        if (access(proxy_log, R_OK) == 0 && strstr(h_read_file(proxy_log), needle))
            return true;
        usleep(50 * 1000);
    }
    return false;
}

/* Sends SIGTERM to a run and collects it, asserting that it ended within BOUND_MS. */
static struct h_result sigterm(struct h_proc *p)
{
    int64_t start = mono_ms();
    cr_assert_eq(kill(h_proc_pid(p), SIGTERM), 0);
    struct h_result r = h_wait(p);
    int64_t took = mono_ms() - start;
    cr_assert(took < BOUND_MS, "the run took %lldms to end after SIGTERM", (long long)took);
    return r;
}

/* Three migrations; the second carries the marker the proxy stalls or resets on. */
static void three_migrations(void)
{
    h_migration(1, "one", "CREATE TABLE one (id int);", NULL);
    h_migration(2, "two", "-- fault-here\nCREATE TABLE two (id int);", NULL);
    h_migration(3, "three", "CREATE TABLE three (id int);", NULL);
}

/* A later run straight to the server applies what is left; each version is in the history
 * once and its table exists. */
static void assert_completes_exactly_once(void)
{
    struct h_result r = h_run(H_ARGS("migrate"), H_ENV(h_env_url(), h_env_dir()));
    h_assert_exit(r, 0);
    cr_assert_eq(h_query_int("SELECT count(*) FROM rollgate_migrations WHERE kind = 'schema'"), 3);
    cr_assert_eq(h_query_int("SELECT count(DISTINCT version) FROM rollgate_migrations"), 3);
    cr_assert(h_table_exists("one") && h_table_exists("two") && h_table_exists("three"));
}

Test(dbfaults, a_connection_that_stalls_after_a_migration_was_sent_ends_by_the_timeout)
{
    three_migrations();
    proxy_start("stall-on:fault-here");
    int64_t start = mono_ms();
    struct h_result r =
        h_run(H_ARGS("migrate", "--timeout", "3s"), H_ENV(env_proxied_url(), h_env_dir()));
    int64_t took = mono_ms() - start;
    h_assert_exit(r, 8);
    h_assert_has(r, r.termlog, "timeout");
    cr_assert(took < BOUND_MS, "the run took %lldms past a 3s timeout", (long long)took);
    cr_assert(strstr(h_read_file(proxy_log), "stall conn="), "the proxy never stalled");
    assert_completes_exactly_once();
}

Test(dbfaults, a_connection_that_stalls_after_a_migration_was_sent_ends_by_sigterm)
{
    three_migrations();
    proxy_start("stall-on:fault-here");
    struct h_proc *p = h_start(H_ARGS("migrate"), H_ENV(env_proxied_url(), h_env_dir()));
    cr_assert(proxy_saw("stall conn="), "the proxy never stalled");
    struct h_result r = sigterm(p);
    h_assert_exit(r, 143);
    assert_completes_exactly_once();
}

/* The first stalls before the server has said anything: the connection attempt itself. A
 * long connectTimeout must not hold the run past its own timeout. */
Test(dbfaults, a_server_that_never_answers_the_connection_ends_by_the_timeout)
{
    three_migrations();
    proxy_start("stall");
    int64_t start = mono_ms();
    struct h_result r =
        h_run(H_ARGS("migrate", "--timeout", "2s"),
              H_ENV(env_proxied_url(), h_env_dir(), "ROLLGATE_DATABASE_CONNECT_TIMEOUT=5m",
                    "ROLLGATE_DATABASE_CONNECT_RETRY=1h"));
    int64_t took = mono_ms() - start;
    h_assert_exit(r, 8);
    cr_assert(took < BOUND_MS, "the run took %lldms past a 2s timeout", (long long)took);
    cr_assert(!h_table_exists("rollgate_migrations"));
}

Test(dbfaults, a_server_that_never_answers_the_connection_ends_by_sigterm)
{
    proxy_start("stall");
    struct h_proc *p = h_start(H_ARGS("migrate"), H_ENV(env_proxied_url(), h_env_dir(),
                                                        "ROLLGATE_DATABASE_CONNECT_TIMEOUT=5m"));
    cr_assert(proxy_saw("accept conn=1"), "rollgate never connected to the proxy");
    struct h_result r = sigterm(p);
    h_assert_exit(r, 143);
}

/* A connection attempt that gets no answer is given up after connectTimeout and tried
 * again, within connectRetry: exit 7, not a hang. */
Test(dbfaults, each_unanswered_connection_attempt_ends_after_the_connect_timeout)
{
    proxy_start("stall");
    struct h_result r = h_run(H_ARGS("status"), H_ENV(env_proxied_url(), h_env_dir(),
                                                      "ROLLGATE_DATABASE_CONNECT_TIMEOUT=1s",
                                                      "ROLLGATE_DATABASE_CONNECT_RETRY=3s"));
    h_assert_exit(r, 7);
    h_assert_has(r, r.err, "connectTimeout");
    cr_assert(strstr(h_read_file(proxy_log), "accept conn=2"), "no second attempt was made");
}

/* status and wait read the history on the path every pod start takes. */
Test(dbfaults, status_and_wait_on_a_stalled_connection_end_by_the_timeout)
{
    three_migrations();
    proxy_start("stall-on:rollgate_migrations");
    const char *cmds[] = {"status", "wait"};
    for (size_t i = 0; i < 2; i++) {
        int64_t start = mono_ms();
        struct h_result r =
            h_run(H_ARGS(cmds[i], "--timeout", "2s"), H_ENV(env_proxied_url(), h_env_dir()));
        int64_t took = mono_ms() - start;
        h_assert_exit(r, 8);
        cr_assert(took < BOUND_MS, "%s took %lldms past a 2s timeout", cmds[i], (long long)took);
    }
}

/* A reset mid-migration: the server rolls the migration back with the connection; exit 7
 * (retryable), and the next run completes. */
Test(dbfaults, a_connection_reset_mid_migration_exits_7_and_the_next_run_completes)
{
    three_migrations();
    proxy_start("reset-on:fault-here");
    struct h_result r = h_run(H_ARGS("migrate"), H_ENV(env_proxied_url(), h_env_dir()));
    h_assert_exit(r, 7);
    h_assert_has(r, r.err, "0002_two.up.sql");
    cr_assert(h_table_exists("one") && !h_table_exists("two"));
    assert_completes_exactly_once();
}

/* A dead peer is noticed without any deadline too: the connection has TCP keepalives on
 * (the kernel shows their timer on an idle socket, here while `wait` sleeps between polls). */
Test(dbfaults, connections_keep_tcp_keepalives_on)
{
    h_migration(1, "pending", "CREATE TABLE pending (id int);", NULL);
    struct h_proc *p = h_start(H_ARGS("wait", "--timeout", "2m"), H_ENV(h_env_url(), h_env_dir()));
    cr_assert(h_proc_wait_stderr(p, "waiting for the schema to become current", 120 * 1000),
              "wait never started waiting");
    char *port = strrchr(h_db_hostport(), ':') + 1;
    struct h_result ss =
        h_cmd(H_ARGS("ss", "-tnpoH", "state", "established", h_fmt("dport = :%s", port)));
    kill(h_proc_pid(p), SIGTERM);
    h_wait(p);
    cr_assert(ss.exited && ss.code == 0, "ss failed\n%s", h_describe(&ss));
    char *mine = NULL;
    for (char *line = strtok(ss.out, "\n"); line; line = strtok(NULL, "\n"))
        if (strstr(line, h_fmt("pid=%d,", (int)h_proc_pid(p))))
            mine = line;
    cr_assert_not_null(mine, "no connection of the run in:\n%s", ss.out);
    /* libpq turns keepalives on by default, but leaves the kernel's 2 hours before the
     * first probe: rollgate's is 10 s, so the timer shows seconds, not "119min". */
    char *timer = strstr(mine, "timer:(keepalive,");
    cr_assert_not_null(timer, "no keepalive timer on the run's socket: %s", mine);
    char *end = NULL;
    double left = strtod(timer + strlen("timer:(keepalive,"), &end);
    /* ss prints seconds as "Nsec" or, in some versions, "N.NNNms"; never "min" here. */
    cr_assert(end && ((strncmp(end, "sec", 3) == 0 && left <= 10.0) || strncmp(end, "ms", 2) == 0),
              "the first keepalive probe is not due within 10 s: %s", mine);
}
