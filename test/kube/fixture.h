/* What only kube_tests adds to the Kubernetes fixture (test/common/kube_cluster.h): a
 * service-account directory per test for the cluster's ServiceAccount "rollgate", clients of
 * pkg/kube on it, and a fake HTTPS server (openssl s_server) and ports that misbehave, for
 * answers a healthy API server never gives. */
#ifndef RG_TEST_KUBE_FIXTURE_H
#define RG_TEST_KUBE_FIXTURE_H

#include "kube/kube.h"
#include "kube_cluster.h"

/* Per-test state, set up by fx_setup and removed by fx_teardown. */
struct fixture {
    char tmp[64];     /* the test's temporary directory */
    char sa_dir[128]; /* tmp/sa: token, ca.crt, namespace */
    const char *port; /* the API server's port */
    int server_pid;   /* the fake server, 0 when none */
    int server_out;   /* its stdout, kept open so its writes never fail */
};

extern struct fixture fx;

void fx_setup(void);
void fx_teardown(void);

/* fx.sa_dir/name, kept until fx_teardown. */
char *fx_sa_file(const char *name);

/* A client on fx.sa_dir for host:port, asserting that rg_kube_new succeeds. */
struct rg_kube *fx_client(const char *host, const char *port, long timeout_ms, long budget_ms);

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
