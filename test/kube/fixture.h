/* What the Kubernetes client tests stand on: the real API server that test/kube/run.sh
 * started (RG_TEST_KUBE_DIR), a service-account directory per test, admin calls made with
 * the cluster's client certificate, and a fake HTTPS server (openssl s_server) for answers
 * a healthy API server never gives. */
#ifndef RG_TEST_KUBE_FIXTURE_H
#define RG_TEST_KUBE_FIXTURE_H

#include <stddef.h>

#include "kube/kube.h"

#define TEST_NS "rollgate-test"

/* Per-test state, set up by fx_setup and removed by fx_teardown. */
struct fixture {
    char tmp[64];     /* the test's temporary directory */
    char sa_dir[128]; /* tmp/sa: token, ca.crt, namespace */
    char port[16];    /* the API server's port */
    int server_pid;   /* the fake server, 0 when none */
    int server_out;   /* its stdout, kept open so its writes never fail */
};

extern struct fixture fx;

void fx_setup(void);
void fx_teardown(void);

/* DIR/name for the cluster's directory, allocated. */
char *fx_cluster_file(const char *name);
/* The whole file, allocated; the test fails when it cannot be read. */
char *fx_read(const char *path);
/* Writes the file whole through a rename, as the kubelet swaps a projected token. */
void fx_write(const char *path, const char *content);
/* fx.sa_dir/name, allocated. */
char *fx_sa_file(const char *name);
/* A name unique to this run and test, a valid Kubernetes name. */
void fx_name(char *buf, size_t n, const char *prefix);

/* A client on fx.sa_dir for host:port, asserting that rg_kube_new succeeds. */
struct rg_kube *fx_client(const char *host, const char *port, long timeout_ms, long budget_ms);

/* A request with the admin certificate; returns the status, *body (allocated) the answer. */
long fx_admin(const char *method, const char *path, const char *payload, char **body);
/* A new token for the ServiceAccount, through the TokenRequest API; allocated. */
char *fx_new_token(void);

/* A self-signed certificate for 127.0.0.1 into dir/cert.pem and dir/key.pem. */
void fx_make_cert(const char *dir);
/* Starts openssl s_server -HTTP on 127.0.0.1 serving files from www (each file a whole
 * HTTP response), with dir/cert.pem; returns its port. */
int fx_fake_server(const char *dir, const char *www);
/* Writes www/path (directories made) holding a whole HTTP response. */
void fx_fake_response(const char *www, const char *path, const char *response);

/* A port where nothing listens: a socket bound and never listening holds it, so nothing
 * else takes it either; connections are refused. */
int fx_refusing_port(int *fd);
/* A port that accepts TCP connections (the kernel's backlog) and never answers. */
int fx_silent_port(int *fd);

#endif
