/* Helpers for running the built rollgate as a black box against a real PostgreSQL.
 *
 * scripts/test.sh starts the server and sets RG_TEST_PG_URL (a superuser URL) and
 * RG_TEST_BIN (the binary's absolute path). Each test gets, through h_setup/h_teardown
 * (a suite's .init/.fini), its own database t_<random> and its own temporary directory
 * with an empty migrations directory in it, so tests stay independent when Criterion runs
 * them in parallel workers. Everything the helpers allocate lives until h_teardown. */
#ifndef RG_HARNESS_H
#define RG_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* NULL-terminated argument and environment lists as compound literals:
 *   h_run(H_ARGS("migrate", "--dir", d), H_ENV(h_env_url()));
 * argv excludes the program name. env entries are "NAME=value". */
#define H_ARGS(...) ((const char *const[]){__VA_ARGS__, NULL})
#define H_ENV(...) ((const char *const[]){__VA_ARGS__, NULL})
#define H_NOENV ((const char *const *)NULL)

/* A hung binary is killed after this long so the suite ends; the test then fails on its
 * exit code. It is a guard against hangs, not a performance assertion. */
#define H_RUN_GUARD_MS (300 * 1000)

struct h_result {
    bool exited;    /* exited normally; code is its exit status */
    int code;       /* exit status, or -1 when killed by a signal */
    int signo;      /* the signal that killed it, or 0 */
    bool timed_out; /* killed by the harness after H_RUN_GUARD_MS */
    char *out;      /* stdout, NUL-terminated */
    size_t out_len;
    char *err; /* stderr, NUL-terminated */
    size_t err_len;
    char *termlog; /* the ROLLGATE_TERMINATION_LOG file afterwards ("" when absent) */
};

struct h_proc; /* a started, not yet collected, process */

/* Suite fixture: own database, own temporary directory. */
void h_setup(void);
void h_teardown(void);

/* This test's database URL (superuser, no password) and its database's name. */
const char *h_db_url(void);
const char *h_db_name(void);
/* "host:port" of the test server. */
const char *h_db_hostport(void);
/* "ROLLGATE_DATABASE_URL=<h_db_url()>" and "ROLLGATE_MIGRATIONS_DIR=<h_mig_dir()>". */
const char *h_env_url(void);
const char *h_env_dir(void);
/* This test's temporary directory, and the migrations directory inside it. */
const char *h_tmp_dir(void);
const char *h_mig_dir(void);

/* printf into a string that lives until teardown. */
char *h_fmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Path of a name inside the temporary / migrations directory. */
char *h_tmp_path(const char *name);
char *h_mig_path(const char *name);

/* Writes content to path (created or truncated); fails the test on error. */
void h_write_file(const char *path, const char *content);
/* Writes NNNN_title.up.sql (and .down.sql unless down is NULL) into the migrations
 * directory, with the version printed as %04lld. Returns the up file's path. */
char *h_migration(long long version, const char *title, const char *up, const char *down);
/* Migrations 1 to 3 (a, b, c: CREATE TABLE, with down files) and any the test wrote before
 * applied, then rollgate.sum written: where the tests of the checksum index start. */
void h_applied_and_summed(void);
/* A statement for a migration file that waits until the test inserts a row into a table
 * named gate (at most 4 minutes, so that a broken test cannot hang for ever); while it
 * waits, its query text in pg_stat_activity contains "FROM gate". */
#define H_GATE_WAIT_SQL                                                                            \
    "DO $$BEGIN FOR i IN 1..2400 LOOP EXIT WHEN EXISTS (SELECT 1 FROM gate); "                     \
    "PERFORM pg_sleep(0.1); END LOOP; END$$;\n"
/* A file's contents (NUL-terminated); fails the test when it cannot be read. */
char *h_read_file(const char *path);

/* Runs the binary with argv and a clean environment: PATH, the sanitizer options when
 * set, ROLLGATE_TERMINATION_LOG pointing at a fresh file (unless env sets it), and env. */
struct h_result h_run(const char *const *argv, const char *const *env);
/* Starts n identical processes at once, then collects all of them into results[n]. */
void h_run_many(size_t n, const char *const *argv, const char *const *env,
                struct h_result *results);
/* Starts one process and leaves it running. */
struct h_proc *h_start(const char *const *argv, const char *const *env);
pid_t h_proc_pid(const struct h_proc *p);
/* Drains whatever the process has written so far; true while it is still running. */
bool h_proc_alive(struct h_proc *p);
/* Waits until the process's stderr so far contains needle (true), or it ends or
 * timeout_ms passes (false). */
bool h_proc_wait_stderr(struct h_proc *p, const char *needle, int timeout_ms);
/* Waits for the process to end and collects it. */
struct h_result h_wait(struct h_proc *p);
/* Waits for n started processes together (reading all their pipes, so none blocks on a
 * full one while another is waited for) and collects them into results[n]. */
void h_wait_many(struct h_proc **procs, size_t n, struct h_result *results);
/* Runs another program (argv[0], looked up in PATH; argv includes it) with the test's own
 * environment, in the temporary directory, stdin from /dev/null; for tools such as curl
 * and kubectl. Fails the test when it cannot be started. */
struct h_result h_cmd(const char *const *argv);

/* Polls sql (one boolean value) on the test database until it is true, the process (may
 * be NULL) ends, or timeout_ms passes. Returns whether it became true. */
bool h_wait_until(const char *sql, struct h_proc *p, int timeout_ms);

/* Runs sql on the test database; the first row's first value, or NULL when there is no
 * row or it is NULL. Fails the test on an SQL error. */
char *h_query(const char *sql);
/* The same with $1 (and $2) bound as text. */
char *h_query1(const char *sql, const char *p1);
char *h_query2(const char *sql, const char *p1, const char *p2);
/* The first value as an integer; fails the test when it is not one. */
long long h_query_int(const char *sql);
/* Whether a relation of that (optionally schema-qualified) name exists. */
bool h_table_exists(const char *name);
/* count(*) of a table or view. */
long long h_count_rows(const char *table);

/* This test's database through the PgBouncer scripts/test.sh starts in front of the test
 * server (RG_TEST_PGBOUNCER_URL: transaction pooling, a pool of 2 server connections per
 * database and user); fails the test when that variable is not set. */
const char *h_pooled_url(void);
/* A connection of the test's own, with its open transaction if any, kept until
 * h_session_close or teardown: a lock holder, or a client pinned to a pooled server
 * connection. */
struct h_session;
struct h_session *h_session_open(const char *url);
/* h_query on that session. */
char *h_session_query(struct h_session *s, const char *sql);
void h_session_close(struct h_session *s);
/* Runs sql (one value) on every server connection PgBouncer holds for this test's database
 * now, all at once, each from its own client inside an open transaction so that no two land
 * on the same one; fails the test unless the backends reached are exactly the pool's (its
 * admin console's SHOW SERVERS). Returns the values (NULL for SQL NULL); *n is how many. */
char **h_pool_each(const char *sql, size_t *n);
/* PgBouncer's pool_mode ("transaction" or "session"), from its admin console. */
const char *h_pooler_mode(void);
/* Whether pid is the backend of one of those server connections. */
bool h_pool_has_backend(const char *pid);

/* Hex SHA-256 of a file's bytes, computed by PostgreSQL, not by rollgate. */
char *h_sha256_file(const char *path);

/* The test server's log, which scripts/test.sh names in RG_TEST_PG_LOG (its line prefix
 * carries the database's name), and its size now: where a test's own lines start. */
const char *h_server_log(void);
size_t h_server_log_size(void);

/* The text at path ("{migrations,0,state}") in json, parsed by PostgreSQL's jsonb; NULL
 * when absent. Fails the test when json is not valid JSON. */
char *h_json(const char *json, const char *path);

/* Whether every line of a stderr capture is one JSON object with "level" and "msg". */
bool h_log_lines_are_json(const char *err);
/* The last non-empty line of s (without its newline). */
char *h_last_line(const char *s);

/* A TCP port on 127.0.0.1 with nothing listening (bound, read and closed). */
int h_free_port(void);
/* A listening socket on 127.0.0.1 that never answers; *port receives its port. */
int h_listen(int *port);
/* Whether a connection is waiting on a listening socket (non-blocking accept). */
bool h_connection_arrived(int fd);

/* The repository: RG_TEST_ROOT, else the first directory above the test binary (or
 * RG_TEST_BIN) that holds file (a path relative to the repository). Fails the test when
 * none does. */
const char *h_repo_root(const char *file);
/* Starts a helper program (argv[0] looked up in PATH; argv includes it) in the background,
 * stdin from /dev/null and its output appended to out, and waits until it has written its
 * port into port_file. Returns its pid. Fails the test (with out's contents) when it ends
 * first or takes over two minutes. */
pid_t h_tool_start(const char *const *argv, const char *out, const char *port_file, int *port);
/* Stops a tool started with h_tool_start (SIGTERM) and reaps it; 0 is ignored. */
void h_tool_stop(pid_t pid);

/* A run's exit, stdout, the tail of stderr and the termination log, for assertion
 * messages, so a failing test shows what the binary said. */
const char *h_describe(const struct h_result *r);

/* Asserts a run's exit status (a normal exit, not a death by signal). */
#define h_assert_exit(r, want)                                                                     \
    cr_assert((r).exited && (r).code == (want), "expected exit status %d\n%s", (want),             \
              h_describe(&(r)))
/* Asserts that text (a run's out, err or termlog) contains / lacks needle. */
#define h_assert_has(r, text, needle)                                                              \
    cr_assert(strstr((text), (needle)) != NULL, "expected %s to contain \"%s\"\n%s", #text,        \
              (needle), h_describe(&(r)))
#define h_assert_lacks(r, text, needle)                                                            \
    cr_assert(strstr((text), (needle)) == NULL, "expected %s not to contain \"%s\"\n%s", #text,    \
              (needle), h_describe(&(r)))

#endif
