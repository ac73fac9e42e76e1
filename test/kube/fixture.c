#include "fixture.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mem/mem.h"

struct fixture fx;

char *fx_sa_file(const char *name)
{
    return kf_keep(rg_asprintf("%s/%s", fx.sa_dir, name));
}

void fx_setup(void)
{
    memset(&fx, 0, sizeof(fx));
    fx.server_out = -1;
    /* Before anything is made: a failed setup gets no teardown. */
    (void)kf_cluster_dir();
    snprintf(fx.tmp, sizeof(fx.tmp), "/tmp/rg-kube-test.XXXXXX");
    cr_assert(mkdtemp(fx.tmp), "mkdtemp: %s", strerror(errno));
    snprintf(fx.sa_dir, sizeof(fx.sa_dir), "%s/sa", fx.tmp);
    kf_write_sa_dir(fx.sa_dir, kf_read(kf_file("rollgate.token")));
    fx.port = kf_cluster_port();
}

/* Removes dir and everything under it (no symbolic links are made here). */
static void remove_tree(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;

    if (!d)
        return;
    while ((e = readdir(d))) {
        struct stat st;
        char *p;
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        p = rg_asprintf("%s/%s", dir, e->d_name);
        if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
            remove_tree(p);
        else
            unlink(p);
        free(p);
    }
    closedir(d);
    rmdir(dir);
}

void fx_teardown(void)
{
    if (fx.server_pid > 0) {
        kill(fx.server_pid, SIGTERM);
        waitpid(fx.server_pid, NULL, 0);
        fx.server_pid = 0;
    }
    if (fx.server_out >= 0)
        close(fx.server_out);
    if (fx.tmp[0])
        remove_tree(fx.tmp);
    kf_release();
}

struct rg_kube *fx_client(const char *host, const char *port, long timeout_ms, long budget_ms)
{
    struct rg_kube_opts opts = {
        .host = host,
        .port = port,
        .sa_dir = fx.sa_dir,
        .request_timeout_ms = timeout_ms,
        .retry_budget_ms = budget_ms,
    };
    struct rg_kube *k = NULL;
    struct rg_err err = {RG_OK, ""};

    cr_assert_eq(rg_kube_new(&k, &opts, &err), 0, "rg_kube_new: %s", err.msg);
    cr_assert(k);
    return k;
}

void fx_make_cert(const char *dir)
{
    char *cmd = rg_asprintf(
        "openssl req -x509 -newkey rsa:2048 -nodes -keyout '%s/key.pem' -out '%s/cert.pem' "
        "-days 1 -subj /CN=rollgate-fake -addext subjectAltName=IP:127.0.0.1 2>/dev/null",
        dir, dir);

    cr_assert_eq(system(cmd), 0, "openssl could not make a certificate: %s", cmd);
    free(cmd);
}

void fx_fake_response(const char *www, const char *path, const char *response)
{
    char *full = rg_asprintf("%s/%s", www, path);

    /* mkdir -p of the directories in path. */
    for (char *s = full + strlen(www) + 1; (s = strchr(s, '/')); s++) {
        *s = '\0';
        cr_assert(mkdir(full, 0700) == 0 || errno == EEXIST, "mkdir %s: %s", full, strerror(errno));
        *s = '/';
    }
    kf_write(full, response);
    free(full);
}

int fx_fake_server(const char *dir, const char *www)
{
    char *cert = rg_asprintf("%s/cert.pem", dir), *key = rg_asprintf("%s/key.pem", dir);
    char line[256];
    size_t len = 0;
    int pipefd[2], port = 0;
    pid_t pid;

    cr_assert_eq(pipe(pipefd), 0);
    pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        /* A test killed by its timeout gets no teardown: the server goes with it. */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        dup2(pipefd[1], STDOUT_FILENO);
        dup2(devnull, STDERR_FILENO);
        close(pipefd[0]);
        if (chdir(www) != 0)
            _exit(127);
        execlp("openssl", "openssl", "s_server", "-HTTP", "-accept", "127.0.0.1:0", "-cert", cert,
               "-key", key, (char *)NULL);
        _exit(127);
    }
    close(pipefd[1]);
    fx.server_pid = pid;
    fx.server_out = pipefd[0];
    /* It prints "ACCEPT 127.0.0.1:PORT" once it listens. */
    while (port == 0) {
        struct pollfd p = {pipefd[0], POLLIN, 0};
        ssize_t n;
        char *nl, *colon;
        cr_assert_eq(poll(&p, 1, 30000), 1, "openssl s_server did not start in 30s");
        n = read(pipefd[0], line + len, sizeof(line) - 1 - len);
        cr_assert(n > 0, "openssl s_server exited before listening");
        len += (size_t)n;
        line[len] = '\0';
        while ((nl = strchr(line, '\n'))) {
            *nl = '\0';
            if (strncmp(line, "ACCEPT ", 7) == 0 && (colon = strrchr(line, ':')))
                port = (int)strtol(colon + 1, NULL, 10);
            memmove(line, nl + 1, strlen(nl + 1) + 1);
            len = strlen(line);
        }
        cr_assert(len < sizeof(line) - 1, "openssl s_server printed a line too long");
    }
    free(cert);
    free(key);
    return port;
}

static int bound_port(int *fd, bool listening)
{
    struct sockaddr_in a;
    socklen_t alen = sizeof(a);

    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    *fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert(*fd >= 0);
    cr_assert_eq(bind(*fd, (struct sockaddr *)&a, sizeof(a)), 0, "bind: %s", strerror(errno));
    if (listening)
        cr_assert_eq(listen(*fd, 16), 0);
    cr_assert_eq(getsockname(*fd, (struct sockaddr *)&a, &alen), 0);
    return ntohs(a.sin_port);
}

int fx_refusing_port(int *fd)
{
    return bound_port(fd, false);
}

int fx_silent_port(int *fd)
{
    return bound_port(fd, true);
}
