/* See harness.h. Criterion runs each test in a forked worker, so the fixture's state is
 * plain file-scope variables: one test's values never meet another's. */
#include "harness.h"

#include <criterion/criterion.h>
#include <libpq-fe.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define OUTPUT_CAP (64L * 1024 * 1024)
#define DESCRIBE_TAIL 6000

struct buf {
    char *p;
    size_t len, cap;
};

struct h_proc {
    pid_t pid;
    int out_fd, err_fd;
    struct buf out, err;
    char *termlog_path;
    bool reaped;
    int status;
    bool timed_out;
};

static const char *bin;
static const char *admin_url;
static PGconn *conn;
static char *db_hostport;
static char *db_name, *db_url, *env_url, *env_dir, *tmp_dir, *mig_dir;
static char *pooled_url;
static int nruns;

struct h_session {
    PGconn *conn;
    struct h_session *next;
};

/* Open until h_session_close or teardown. */
static struct h_session *sessions;

/* Everything handed to a test lives until teardown: tests never free. */
static void **owned;
static size_t nowned, capowned;

static void *own(void *p)
{
    if (nowned == capowned) {
        capowned = capowned ? capowned * 2 : 64;
        owned = realloc(owned, capowned * sizeof *owned);
        cr_assert_not_null(owned, "out of memory");
    }
    owned[nowned++] = p;
    return p;
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    cr_assert_not_null(p, "out of memory");
    return p;
}

static char *vfmt(const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    cr_assert(n >= 0, "vsnprintf failed");
    char *s = xmalloc((size_t)n + 1);
    vsnprintf(s, (size_t)n + 1, fmt, ap2);
    va_end(ap2);
    return s;
}

char *h_fmt(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = vfmt(fmt, ap);
    va_end(ap);
    return own(s);
}

static char *dup_own(const char *s)
{
    size_t n = strlen(s);
    char *d = xmalloc(n + 1);
    memcpy(d, s, n + 1);
    return own(d);
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
        ;
}

/* ---- fixture ---- */

static PGconn *connect_or_fail(const char *url)
{
    PGconn *c = PQconnectdb(url);
    cr_assert(PQstatus(c) == CONNECTION_OK, "cannot connect to the test server: %s",
              PQerrorMessage(c));
    return c;
}

static void admin_exec(const char *sql)
{
    PGconn *c = connect_or_fail(admin_url);
    PGresult *res = PQexec(c, sql);
    bool ok = PQresultStatus(res) == PGRES_COMMAND_OK;
    char *msg = dup_own(PQerrorMessage(c));
    PQclear(res);
    PQfinish(c);
    cr_assert(ok, "%s: %s", sql, msg);
}

/* base (from the variable var) with another database name, keeping user, password, host,
 * port, sslmode; *hostport, when not NULL, receives "host:port". */
static char *url_with_db(const char *base, const char *var, const char *dbname, char **hostport)
{
    char *errmsg = NULL;
    PQconninfoOption *opts = PQconninfoParse(base, &errmsg);
    cr_assert_not_null(opts, "%s: %s", var, errmsg ? errmsg : "unparsable");
    const char *user = "postgres", *password = NULL, *host = "127.0.0.1", *port = "5432",
               *sslmode = "disable";
    for (PQconninfoOption *o = opts; o->keyword; o++) {
        if (!o->val)
            continue;
        if (strcmp(o->keyword, "user") == 0)
            user = o->val;
        else if (strcmp(o->keyword, "password") == 0)
            password = o->val;
        else if (strcmp(o->keyword, "host") == 0)
            host = o->val;
        else if (strcmp(o->keyword, "port") == 0)
            port = o->val;
        else if (strcmp(o->keyword, "sslmode") == 0)
            sslmode = o->val;
    }
    if (hostport)
        *hostport = h_fmt("%s:%s", host, port);
    char *url =
        password ? h_fmt("postgresql://%s:%s@%s:%s/%s?sslmode=%s", user, password, host, port,
                         dbname, sslmode)
                 : h_fmt("postgresql://%s@%s:%s/%s?sslmode=%s", user, host, port, dbname, sslmode);
    PQconninfoFree(opts);
    return url;
}

/* The admin URL with another database name. */
static char *url_for_db(const char *dbname)
{
    return url_with_db(admin_url, "RG_TEST_PG_URL", dbname, &db_hostport);
}

static void random_hex(char *out, size_t nbytes)
{
    unsigned char b[32];
    cr_assert(nbytes <= sizeof b);
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    cr_assert(fd >= 0, "open /dev/urandom: %s", strerror(errno));
    cr_assert(read(fd, b, nbytes) == (ssize_t)nbytes, "read /dev/urandom");
    close(fd);
    for (size_t i = 0; i < nbytes; i++)
        sprintf(out + 2 * i, "%02x", b[i]);
}

void h_setup(void)
{
    admin_url = getenv("RG_TEST_PG_URL");
    bin = getenv("RG_TEST_BIN");
    cr_assert(admin_url && *admin_url, "RG_TEST_PG_URL is not set: run scripts/test.sh");
    cr_assert(bin && *bin, "RG_TEST_BIN is not set: run scripts/test.sh");
    cr_assert(access(bin, X_OK) == 0, "RG_TEST_BIN %s: %s", bin, strerror(errno));

    char hex[17];
    random_hex(hex, 8);
    db_name = h_fmt("t_%s", hex);
    admin_exec(h_fmt("CREATE DATABASE %s", db_name));
    db_url = url_for_db(db_name);
    env_url = h_fmt("ROLLGATE_DATABASE_URL=%s", db_url);

    const char *base = getenv("TMPDIR");
    char *tmpl = h_fmt("%s/rg-it-XXXXXX", base && *base ? base : "/tmp");
    cr_assert_not_null(mkdtemp(tmpl), "mkdtemp %s: %s", tmpl, strerror(errno));
    tmp_dir = tmpl;
    mig_dir = h_fmt("%s/migrations", tmp_dir);
    cr_assert(mkdir(mig_dir, 0755) == 0, "mkdir %s: %s", mig_dir, strerror(errno));
    env_dir = h_fmt("ROLLGATE_MIGRATIONS_DIR=%s", mig_dir);
}

static void remove_tree(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return;
    if (S_ISDIR(st.st_mode)) {
        DIR *d = opendir(path);
        if (d) {
            struct dirent *e;
            while ((e = readdir(d)) != NULL) {
                if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                    continue;
                size_t n = strlen(path) + strlen(e->d_name) + 2;
                char *child = malloc(n);
                if (!child)
                    break;
                snprintf(child, n, "%s/%s", path, e->d_name);
                remove_tree(child);
                free(child);
            }
            closedir(d);
        }
        rmdir(path);
    } else {
        unlink(path);
    }
}

void h_teardown(void)
{
    while (sessions)
        h_session_close(sessions);
    if (conn) {
        PQfinish(conn);
        conn = NULL;
    }
    if (db_name && admin_url) {
        /* FORCE: a binary that left a backend behind must not make teardown fail. */
        PGconn *c = PQconnectdb(admin_url);
        if (PQstatus(c) == CONNECTION_OK) {
            char sql[128];
            snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", db_name);
            PQclear(PQexec(c, sql));
        }
        PQfinish(c);
    }
    if (tmp_dir)
        remove_tree(tmp_dir);
    for (size_t i = 0; i < nowned; i++)
        free(owned[i]);
    free(owned);
    owned = NULL;
    nowned = capowned = 0;
    db_hostport = db_name = db_url = env_url = env_dir = tmp_dir = mig_dir = pooled_url = NULL;
}

const char *h_db_url(void)
{
    return db_url;
}

const char *h_db_name(void)
{
    return db_name;
}

const char *h_db_hostport(void)
{
    return db_hostport;
}

const char *h_env_url(void)
{
    return env_url;
}

const char *h_env_dir(void)
{
    return env_dir;
}

const char *h_tmp_dir(void)
{
    return tmp_dir;
}

const char *h_mig_dir(void)
{
    return mig_dir;
}

char *h_tmp_path(const char *name)
{
    return h_fmt("%s/%s", tmp_dir, name);
}

char *h_mig_path(const char *name)
{
    return h_fmt("%s/%s", mig_dir, name);
}

/* ---- files ---- */

void h_write_file(const char *path, const char *content)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    cr_assert(fd >= 0, "open %s: %s", path, strerror(errno));
    size_t len = strlen(content), off = 0;
    while (off < len) {
        ssize_t n = write(fd, content + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        cr_assert(n > 0, "write %s: %s", path, strerror(errno));
        off += (size_t)n;
    }
    cr_assert(close(fd) == 0, "close %s: %s", path, strerror(errno));
}

char *h_migration(long long version, const char *title, const char *up, const char *down)
{
    char *up_path = h_mig_path(h_fmt("%04lld_%s.up.sql", version, title));
    h_write_file(up_path, up);
    if (down)
        h_write_file(h_mig_path(h_fmt("%04lld_%s.down.sql", version, title)), down);
    return up_path;
}

/* Reads a whole file; NULL (errno set) when it cannot be opened. */
static char *slurp(const char *path, size_t *len_out)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    struct buf b = {0};
    for (;;) {
        if (b.cap - b.len < 4096) {
            b.cap = b.cap ? b.cap * 2 : 8192;
            b.p = realloc(b.p, b.cap);
            cr_assert_not_null(b.p, "out of memory");
        }
        ssize_t n = read(fd, b.p + b.len, b.cap - b.len - 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        b.len += (size_t)n;
    }
    close(fd);
    if (!b.p)
        b.p = xmalloc(1);
    b.p[b.len] = '\0';
    if (len_out)
        *len_out = b.len;
    return own(b.p);
}

char *h_read_file(const char *path)
{
    char *s = slurp(path, NULL);
    cr_assert_not_null(s, "read %s: %s", path, strerror(errno));
    return s;
}

/* ---- processes ---- */

static void cloexec(int fd)
{
    int flags = fcntl(fd, F_GETFD);
    cr_assert(flags >= 0 && fcntl(fd, F_SETFD, flags | FD_CLOEXEC) == 0, "fcntl: %s",
              strerror(errno));
}

static bool has_prefix(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* In a child forked by the test's process (parent): killed when that process ends, so
 * that a test that fails part way (an assertion while a run it started is stopped or
 * waiting) leaves nothing running; stdin, stdout and stderr from these descriptors, the
 * working directory (NULL: unchanged), default signals and no other descriptors, then file
 * run with argv (envp NULL: this process's environment, file looked up in PATH). Only
 * async-signal-safe calls. Never returns. */
static void child_exec(pid_t parent, int in, int out, int err, const char *dir, const char *file,
                       const char *const *argv, const char *const *envp)
{
    static const char msg[] = "harness: exec failed\n";
    sigset_t none;

    /* The parent may have ended before the call: then it is too late to be told. */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
        _exit(127);
    if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0 || (dir && chdir(dir) != 0))
        _exit(127);
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    signal(SIGPIPE, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGINT, SIG_DFL);
#ifdef SYS_close_range
    if (syscall(SYS_close_range, 3U, ~0U, 0U) != 0)
#endif
        for (int fd = 3; fd < 1024; fd++)
            close(fd);
    if (envp)
        execve(file, (char *const *)argv, (char *const *)envp);
    else
        execvp(file, (char *const *)argv);
    ssize_t ignored = write(2, msg, sizeof msg - 1);
    (void)ignored;
    _exit(127);
}

struct h_proc *h_start(const char *const *argv, const char *const *env)
{
    cr_assert_not_null(bin, "h_start before h_setup");
    size_t nargs = 0, nenv = 0;
    while (argv && argv[nargs])
        nargs++;
    while (env && env[nenv])
        nenv++;

    struct h_proc *p = own(xmalloc(sizeof *p));
    memset(p, 0, sizeof *p);
    p->termlog_path = h_tmp_path(h_fmt("termination-log.%d", ++nruns));
    /* Kubernetes creates the file before the container starts; so does the harness. */
    h_write_file(p->termlog_path, "");

    const char **args = own(xmalloc((nargs + 2) * sizeof *args));
    args[0] = bin;
    for (size_t i = 0; i < nargs; i++)
        args[i + 1] = argv[i];
    args[nargs + 1] = NULL;

    const char **envp = own(xmalloc((nenv + 8) * sizeof *envp));
    size_t k = 0;
    const char *path = getenv("PATH");
    envp[k++] = h_fmt("PATH=%s", path && *path ? path : "/usr/local/bin:/usr/bin:/bin");
    /* Sanitizer settings are the test build's, not configuration the binary reads. */
    static const char *const passthrough[] = {"ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"};
    for (size_t i = 0; i < sizeof passthrough / sizeof *passthrough; i++) {
        const char *v = getenv(passthrough[i]);
        if (v)
            envp[k++] = h_fmt("%s=%s", passthrough[i], v);
    }
    bool own_termlog = false;
    for (size_t i = 0; i < nenv; i++)
        own_termlog |= has_prefix(env[i], "ROLLGATE_TERMINATION_LOG=");
    if (!own_termlog)
        envp[k++] = h_fmt("ROLLGATE_TERMINATION_LOG=%s", p->termlog_path);
    else
        p->termlog_path = NULL;
    /* Shift the test's entries in after ours. */
    const char **all = own(xmalloc((k + nenv + 1) * sizeof *all));
    memcpy(all, envp, k * sizeof *all);
    for (size_t i = 0; i < nenv; i++)
        all[k + i] = env[i];
    all[k + nenv] = NULL;

    int out[2], err[2];
    cr_assert(pipe(out) == 0 && pipe(err) == 0, "pipe: %s", strerror(errno));
    cloexec(out[0]);
    cloexec(out[1]);
    cloexec(err[0]);
    cloexec(err[1]);
    int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
    cr_assert(devnull >= 0, "open /dev/null: %s", strerror(errno));

    fflush(NULL);
    pid_t self = getpid(), pid = fork();
    cr_assert(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0)
        child_exec(self, devnull, out[1], err[1], tmp_dir, bin, args, all);
    close(out[1]);
    close(err[1]);
    close(devnull);
    p->pid = pid;
    p->out_fd = out[0];
    p->err_fd = err[0];
    return p;
}

pid_t h_proc_pid(const struct h_proc *p)
{
    return p->pid;
}

static void buf_read(struct buf *b, int *fd)
{
    char chunk[65536];
    ssize_t n = read(*fd, chunk, sizeof chunk);
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return;
    if (n <= 0) {
        close(*fd);
        *fd = -1;
        return;
    }
    if (b->len + (size_t)n > (size_t)OUTPUT_CAP)
        return; /* a runaway writer: keep the beginning */
    if (b->cap - b->len < (size_t)n + 1) {
        while (b->cap - b->len < (size_t)n + 1)
            b->cap = b->cap ? b->cap * 2 : 65536;
        b->p = realloc(b->p, b->cap);
        cr_assert_not_null(b->p, "out of memory");
    }
    memcpy(b->p + b->len, chunk, (size_t)n);
    b->len += (size_t)n;
    b->p[b->len] = '\0';
}

/* One round of reading every open pipe of procs, waiting at most timeout_ms. */
static void pump(struct h_proc **procs, size_t n, int timeout_ms)
{
    struct pollfd *fds = xmalloc(2 * n * sizeof *fds);
    struct buf **bufs = xmalloc(2 * n * sizeof *bufs);
    int **fdps = xmalloc(2 * n * sizeof *fdps);
    nfds_t k = 0;
    for (size_t i = 0; i < n; i++) {
        int *pair[2] = {&procs[i]->out_fd, &procs[i]->err_fd};
        struct buf *bp[2] = {&procs[i]->out, &procs[i]->err};
        for (int j = 0; j < 2; j++) {
            if (*pair[j] < 0)
                continue;
            fds[k] = (struct pollfd){.fd = *pair[j], .events = POLLIN};
            bufs[k] = bp[j];
            fdps[k] = pair[j];
            k++;
        }
    }
    if (k == 0) {
        if (timeout_ms > 0)
            sleep_ms(timeout_ms);
    } else if (poll(fds, k, timeout_ms) > 0) {
        for (nfds_t i = 0; i < k; i++)
            if (fds[i].revents & (POLLIN | POLLHUP | POLLERR | POLLNVAL))
                buf_read(bufs[i], fdps[i]);
    }
    free(fds);
    free(bufs);
    free(fdps);
}

static void try_reap(struct h_proc *p)
{
    if (p->reaped)
        return;
    int status;
    pid_t r = waitpid(p->pid, &status, WNOHANG);
    if (r == p->pid) {
        p->reaped = true;
        p->status = status;
    }
}

bool h_proc_alive(struct h_proc *p)
{
    pump(&p, 1, 0);
    try_reap(p);
    return !p->reaped;
}

bool h_proc_wait_stderr(struct h_proc *p, const char *needle, int timeout_ms)
{
    int64_t deadline = now_ms() + timeout_ms;
    for (;;) {
        bool alive = h_proc_alive(p);
        if (p->err.p && strstr(p->err.p, needle))
            return true;
        if (!alive || now_ms() > deadline)
            return false;
        pump(&p, 1, 50);
    }
}

static void wait_all(struct h_proc **procs, size_t n)
{
    int64_t deadline = now_ms() + H_RUN_GUARD_MS;
    for (;;) {
        bool open_fds = false, running = false;
        for (size_t i = 0; i < n; i++) {
            open_fds |= procs[i]->out_fd >= 0 || procs[i]->err_fd >= 0;
            try_reap(procs[i]);
            running |= !procs[i]->reaped;
        }
        if (!open_fds && !running)
            break;
        if (now_ms() > deadline) {
            for (size_t i = 0; i < n; i++) {
                if (!procs[i]->reaped) {
                    kill(procs[i]->pid, SIGKILL);
                    procs[i]->timed_out = true;
                }
            }
            deadline = now_ms() + 10 * 1000; /* then only drain */
        }
        pump(procs, n, open_fds ? 1000 : 20);
    }
}

static struct h_result collect(struct h_proc *p)
{
    struct h_result r = {0};
    r.timed_out = p->timed_out;
    if (WIFEXITED(p->status)) {
        r.exited = true;
        r.code = WEXITSTATUS(p->status);
    } else {
        r.code = -1;
        r.signo = WIFSIGNALED(p->status) ? WTERMSIG(p->status) : 0;
    }
    r.out = p->out.p ? own(p->out.p) : dup_own("");
    r.out_len = p->out.len;
    r.err = p->err.p ? own(p->err.p) : dup_own("");
    r.err_len = p->err.len;
    r.termlog = NULL;
    if (p->termlog_path)
        r.termlog = slurp(p->termlog_path, NULL);
    if (!r.termlog)
        r.termlog = dup_own("");
    p->out.p = p->err.p = NULL;
    return r;
}

struct h_result h_wait(struct h_proc *p)
{
    wait_all(&p, 1);
    return collect(p);
}

struct h_result h_run(const char *const *argv, const char *const *env)
{
    return h_wait(h_start(argv, env));
}

void h_run_many(size_t n, const char *const *argv, const char *const *env, struct h_result *results)
{
    struct h_proc **procs = own(xmalloc(n * sizeof *procs));
    for (size_t i = 0; i < n; i++)
        procs[i] = h_start(argv, env);
    wait_all(procs, n);
    for (size_t i = 0; i < n; i++)
        results[i] = collect(procs[i]);
}

void h_wait_many(struct h_proc **procs, size_t n, struct h_result *results)
{
    wait_all(procs, n);
    for (size_t i = 0; i < n; i++)
        results[i] = collect(procs[i]);
}

struct h_result h_cmd(const char *const *argv)
{
    cr_assert_not_null(tmp_dir, "h_cmd before h_setup");
    struct h_proc *p = own(xmalloc(sizeof *p));
    memset(p, 0, sizeof *p);
    int out[2], err[2];
    cr_assert(pipe(out) == 0 && pipe(err) == 0, "pipe: %s", strerror(errno));
    cloexec(out[0]);
    cloexec(out[1]);
    cloexec(err[0]);
    cloexec(err[1]);
    int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
    cr_assert(devnull >= 0, "open /dev/null: %s", strerror(errno));
    fflush(NULL);
    pid_t self = getpid(), pid = fork();
    cr_assert(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0)
        child_exec(self, devnull, out[1], err[1], tmp_dir, argv[0], argv, NULL);
    close(out[1]);
    close(err[1]);
    close(devnull);
    p->pid = pid;
    p->out_fd = out[0];
    p->err_fd = err[0];
    return h_wait(p);
}

static bool repo_has(const char *dir, const char *file)
{
    return access(h_fmt("%s/%s", dir, file), R_OK) == 0;
}

const char *h_repo_root(const char *file)
{
    const char *root = getenv("RG_TEST_ROOT");
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    const char *starts[2] = {NULL, getenv("RG_TEST_BIN")};

    if (root && *root) {
        cr_assert(repo_has(root, file), "RG_TEST_ROOT=%s has no %s", root, file);
        return root;
    }
    if (n > 0) {
        exe[n] = '\0';
        starts[0] = exe;
    }
    for (size_t i = 0; i < 2; i++) {
        if (!starts[i] || !*starts[i])
            continue;
        char *dir = h_fmt("%s", starts[i]);
        char *slash;
        while ((slash = strrchr(dir, '/')) != NULL && slash != dir) {
            *slash = '\0';
            if (repo_has(dir, file))
                return dir;
        }
    }
    cr_assert_fail("cannot find %s: set RG_TEST_ROOT to the repository", file);
    return NULL;
}

pid_t h_tool_start(const char *const *argv, const char *out, const char *port_file, int *port)
{
    int fd = open(out, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    cr_assert(fd >= 0, "open %s: %s", out, strerror(errno));
    fflush(NULL);
    pid_t self = getpid(), pid = fork();
    cr_assert(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        int devnull = open("/dev/null", O_RDONLY);
        child_exec(self, devnull, fd, fd, NULL, argv[0], argv, NULL);
    }
    close(fd);
    int64_t deadline = now_ms() + 120 * 1000;
    while (access(port_file, R_OK) != 0) {
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid)
            cr_assert_fail("%s ended before listening (status %d):\n%s", argv[0], status,
                           h_read_file(out));
        if (now_ms() >= deadline) {
            h_tool_stop(pid);
            cr_assert_fail("%s did not listen:\n%s", argv[0], h_read_file(out));
        }
        sleep_ms(50);
    }
    *port = atoi(h_read_file(port_file));
    cr_assert(*port > 0, "bad port in %s", port_file);
    return pid;
}

void h_tool_stop(pid_t pid)
{
    if (pid <= 0)
        return;
    kill(pid, SIGTERM);
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
        ;
}

/* ---- SQL ---- */

static PGconn *test_conn(void)
{
    cr_assert_not_null(db_url, "query before h_setup");
    if (conn && PQstatus(conn) != CONNECTION_OK) {
        PQfinish(conn);
        conn = NULL;
    }
    if (!conn)
        conn = connect_or_fail(db_url);
    return conn;
}

static char *query_on(PGconn *c, const char *sql, int n, const char *const *values,
                      const int *lengths, const int *formats)
{
    PGresult *res = PQexecParams(c, sql, n, NULL, values, lengths, formats, 0);
    ExecStatusType st = PQresultStatus(res);
    if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
        char *msg = dup_own(PQresultErrorMessage(res));
        PQclear(res);
        cr_assert_fail("SQL failed: %s\n%s", sql, msg);
    }
    char *v = NULL;
    if (st == PGRES_TUPLES_OK && PQntuples(res) > 0 && PQnfields(res) > 0 &&
        !PQgetisnull(res, 0, 0))
        v = dup_own(PQgetvalue(res, 0, 0));
    PQclear(res);
    return v;
}

static char *query_params(const char *sql, int n, const char *const *values, const int *lengths,
                          const int *formats)
{
    return query_on(test_conn(), sql, n, values, lengths, formats);
}

char *h_query(const char *sql)
{
    return query_params(sql, 0, NULL, NULL, NULL);
}

char *h_query1(const char *sql, const char *p1)
{
    const char *v[1] = {p1};
    return query_params(sql, 1, v, NULL, NULL);
}

char *h_query2(const char *sql, const char *p1, const char *p2)
{
    const char *v[2] = {p1, p2};
    return query_params(sql, 2, v, NULL, NULL);
}

static long long to_int(const char *sql, const char *v)
{
    cr_assert_not_null(v, "%s: no value", sql);
    char *end = NULL;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    cr_assert(errno == 0 && end != v && *end == '\0', "%s: \"%s\" is not an integer", sql, v);
    return n;
}

long long h_query_int(const char *sql)
{
    return to_int(sql, h_query(sql));
}

bool h_table_exists(const char *name)
{
    return strcmp(h_query1("SELECT to_regclass($1) IS NOT NULL", name), "t") == 0;
}

long long h_count_rows(const char *table)
{
    return h_query_int(h_fmt("SELECT count(*) FROM %s", table));
}

bool h_wait_until(const char *sql, struct h_proc *p, int timeout_ms)
{
    int64_t deadline = now_ms() + timeout_ms;
    for (;;) {
        char *v = h_query(sql);
        if (v && strcmp(v, "t") == 0)
            return true;
        if (p && !h_proc_alive(p))
            return false;
        if (now_ms() > deadline)
            return false;
        if (p)
            pump(&p, 1, 100);
        else
            sleep_ms(100);
    }
}

/* ---- PgBouncer and sessions of the test's own ---- */

const char *h_pooled_url(void)
{
    const char *base = getenv("RG_TEST_PGBOUNCER_URL");
    cr_assert(base && *base, "RG_TEST_PGBOUNCER_URL is not set: run scripts/test.sh");
    cr_assert_not_null(db_name, "h_pooled_url before h_setup");
    if (!pooled_url)
        pooled_url = url_with_db(base, "RG_TEST_PGBOUNCER_URL", db_name, NULL);
    return pooled_url;
}

struct h_session *h_session_open(const char *url)
{
    struct h_session *s = xmalloc(sizeof *s);
    s->conn = connect_or_fail(url);
    s->next = sessions;
    sessions = s;
    return s;
}

char *h_session_query(struct h_session *s, const char *sql)
{
    return query_on(s->conn, sql, 0, NULL, NULL, NULL);
}

void h_session_close(struct h_session *s)
{
    for (struct h_session **p = &sessions; *p; p = &(*p)->next) {
        if (*p == s) {
            *p = s->next;
            break;
        }
    }
    PQfinish(s->conn);
    free(s);
}

/* The backend pids of PgBouncer's server connections to this test's database, from its
 * admin console. */
static char **pool_backends(size_t *n)
{
    h_pooled_url();
    PGconn *c = connect_or_fail(
        url_with_db(getenv("RG_TEST_PGBOUNCER_URL"), "RG_TEST_PGBOUNCER_URL", "pgbouncer", NULL));
    PGresult *res = PQexec(c, "SHOW SERVERS");
    cr_assert(PQresultStatus(res) == PGRES_TUPLES_OK, "SHOW SERVERS: %s", PQerrorMessage(c));
    int db = PQfnumber(res, "database"), pid = PQfnumber(res, "remote_pid");
    cr_assert(db >= 0 && pid >= 0, "SHOW SERVERS has no database or remote_pid column");
    char **pids = own(xmalloc(((size_t)PQntuples(res) + 1) * sizeof *pids));
    *n = 0;
    for (int row = 0; row < PQntuples(res); row++)
        if (strcmp(PQgetvalue(res, row, db), db_name) == 0)
            pids[(*n)++] = dup_own(PQgetvalue(res, row, pid));
    PQclear(res);
    PQfinish(c);
    return pids;
}

const char *h_pooler_mode(void)
{
    PGconn *c = connect_or_fail(
        url_with_db(getenv("RG_TEST_PGBOUNCER_URL"), "RG_TEST_PGBOUNCER_URL", "pgbouncer", NULL));
    PGresult *res = PQexec(c, "SHOW CONFIG");
    cr_assert(PQresultStatus(res) == PGRES_TUPLES_OK, "SHOW CONFIG: %s", PQerrorMessage(c));
    const char *mode = NULL;
    for (int row = 0; row < PQntuples(res); row++)
        if (strcmp(PQgetvalue(res, row, 0), "pool_mode") == 0)
            mode = dup_own(PQgetvalue(res, row, 1));
    PQclear(res);
    PQfinish(c);
    cr_assert_not_null(mode, "PgBouncer's SHOW CONFIG has no pool_mode");
    return mode;
}

static bool listed(char *const *list, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++)
        if (list[i] && strcmp(list[i], s) == 0)
            return true;
    return false;
}

char **h_pool_each(const char *sql, size_t *n)
{
    size_t nservers;
    char **servers = pool_backends(&nservers);
    struct h_session **clients = own(xmalloc((nservers + 1) * sizeof *clients));
    char **seen = own(xmalloc((nservers + 1) * sizeof *seen));
    char **values = own(xmalloc((nservers + 1) * sizeof *values));

    /* Each open transaction holds its server connection, so the next client gets another. */
    for (size_t i = 0; i < nservers; i++) {
        clients[i] = h_session_open(h_pooled_url());
        h_session_query(clients[i], "BEGIN");
        seen[i] = h_session_query(clients[i], "SELECT pg_backend_pid()");
        cr_assert(listed(servers, nservers, seen[i]) && !listed(seen, i, seen[i]),
                  "client %zu reached backend %s, not one more of PgBouncer's %zu", i, seen[i],
                  nservers);
        values[i] = h_session_query(clients[i], sql);
    }
    /* Ended, not dropped: PgBouncer closes a server connection whose client left mid-way. */
    for (size_t i = 0; i < nservers; i++) {
        h_session_query(clients[i], "COMMIT");
        h_session_close(clients[i]);
    }
    *n = nservers;
    return values;
}

bool h_pool_has_backend(const char *pid)
{
    size_t n;
    char **servers = pool_backends(&n);
    return listed(servers, n, pid);
}

const char *h_server_log(void)
{
    const char *path = getenv("RG_TEST_PG_LOG");
    cr_assert(path && *path, "RG_TEST_PG_LOG is not set: run scripts/test.sh");
    return path;
}

size_t h_server_log_size(void)
{
    struct stat st;
    cr_assert_eq(stat(h_server_log(), &st), 0, "%s: cannot stat", h_server_log());
    return (size_t)st.st_size;
}

char *h_sha256_file(const char *path)
{
    size_t len = 0;
    char *bytes = slurp(path, &len);
    cr_assert_not_null(bytes, "read %s: %s", path, strerror(errno));
    const char *values[1] = {bytes};
    int lengths[1] = {(int)len};
    int formats[1] = {1};
    return query_params("SELECT encode(sha256($1::bytea), 'hex')", 1, values, lengths, formats);
}

char *h_json(const char *json, const char *path)
{
    PGconn *c = test_conn();
    const char *v[2] = {json, path};
    PGresult *res = PQexecParams(c, "SELECT ($1::jsonb) #>> $2::text[]", 2, NULL, v, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        char *msg = dup_own(PQresultErrorMessage(res));
        PQclear(res);
        cr_assert_fail("not valid JSON (%s):\n%s", msg, json);
    }
    char *out = PQgetisnull(res, 0, 0) ? NULL : dup_own(PQgetvalue(res, 0, 0));
    PQclear(res);
    return out;
}

/* ---- output ---- */

bool h_log_lines_are_json(const char *err)
{
    const char *line = err;
    bool any = false;
    while (*line) {
        const char *nl = strchr(line, '\n');
        size_t len = nl ? (size_t)(nl - line) : strlen(line);
        if (len > 0) {
            char *l = xmalloc(len + 1);
            memcpy(l, line, len);
            l[len] = '\0';
            bool ok =
                l[0] == '{' && l[len - 1] == '}' && strstr(l, "\"level\"") && strstr(l, "\"msg\"");
            free(l);
            if (!ok)
                return false;
            any = true;
        }
        if (!nl)
            break;
        line = nl + 1;
    }
    return any;
}

char *h_last_line(const char *s)
{
    size_t len = strlen(s);
    while (len > 0 && (s[len - 1] == '\n' || s[len - 1] == '\r'))
        len--;
    size_t start = len;
    while (start > 0 && s[start - 1] != '\n')
        start--;
    char *l = own(xmalloc(len - start + 1));
    memcpy(l, s + start, len - start);
    l[len - start] = '\0';
    return l;
}

const char *h_describe(const struct h_result *r)
{
    const char *err = r->err ? r->err : "";
    size_t elen = strlen(err);
    const char *tail = elen > DESCRIBE_TAIL ? err + elen - DESCRIBE_TAIL : err;
    const char *how = r->timed_out ? "killed by the harness's hang guard"
                      : r->exited  ? "exited"
                                   : "killed by a signal";
    return h_fmt("--- %s: status %d, signal %d\n--- stdout:\n%s\n--- stderr%s:\n%s\n--- "
                 "termination log:\n%s\n---",
                 how, r->code, r->signo, r->out ? r->out : "", tail != err ? " (tail)" : "", tail,
                 r->termlog ? r->termlog : "");
}

/* ---- sockets ---- */

static int bound_socket(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert(fd >= 0, "socket: %s", strerror(errno));
    cloexec(fd);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    cr_assert(bind(fd, (struct sockaddr *)&a, sizeof a) == 0, "bind: %s", strerror(errno));
    socklen_t alen = sizeof a;
    cr_assert(getsockname(fd, (struct sockaddr *)&a, &alen) == 0, "getsockname: %s",
              strerror(errno));
    *port = ntohs(a.sin_port);
    return fd;
}

int h_free_port(void)
{
    int port;
    int fd = bound_socket(&port);
    close(fd);
    return port;
}

int h_listen(int *port)
{
    int fd = bound_socket(port);
    cr_assert(listen(fd, 16) == 0, "listen: %s", strerror(errno));
    int flags = fcntl(fd, F_GETFL);
    cr_assert(flags >= 0 && fcntl(fd, F_SETFL, flags | O_NONBLOCK) == 0, "fcntl: %s",
              strerror(errno));
    return fd;
}

bool h_connection_arrived(int fd)
{
    int c = accept(fd, NULL, NULL);
    if (c >= 0) {
        close(c);
        return true;
    }
    cr_assert(errno == EAGAIN || errno == EWOULDBLOCK, "accept: %s", strerror(errno));
    return false;
}

void h_applied_and_summed(void)
{
    h_migration(1, "a", "CREATE TABLE a (id int);\n", "DROP TABLE a;\n");
    h_migration(2, "b", "CREATE TABLE b (id int);\n", "DROP TABLE b;\n");
    h_migration(3, "c", "CREATE TABLE c (id int);\n", "DROP TABLE c;\n");
    struct h_result r = h_run(H_ARGS("migrate"), H_ENV(h_env_url(), h_env_dir()));
    h_assert_exit(r, 0);
    r = h_run(H_ARGS("sum"), H_ENV(h_env_dir()));
    h_assert_exit(r, 0);
}
