/* The Kubernetes suites' shared fixture: see kube_fixture.h. */
#include "kube_fixture.h"

#include <criterion/criterion.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

const char *kf_dir;
char *kf_port;
char *kf_tag;
char *kf_lease;
const char *kf_sa_dir;

/* Arrays built here live until teardown, like the harness's strings. */
static void *kept[512];
static size_t nkept;

void *kf_keep(void *p)
{
    cr_assert_not_null(p, "out of memory");
    cr_assert(nkept < sizeof kept / sizeof *kept, "too many allocations");
    kept[nkept++] = p;
    return p;
}

char *kf_file(const char *name)
{
    return h_fmt("%s/%s", kf_dir, name);
}

char *kf_trim(char *s)
{
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' '))
        s[--n] = '\0';
    return s;
}

int64_t kf_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void kf_nap_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
        ;
}

void kf_setup(const char *tests, const char *prefix, const char *need, const char *need_hint)
{
    /* Checked before h_setup makes a database and a directory for the test. */
    kf_dir = getenv("RG_TEST_KUBE_DIR");
    cr_assert(kf_dir && *kf_dir,
              "RG_TEST_KUBE_DIR is not set: the %s tests need a Kubernetes API server. "
              "scripts/test.sh starts one; by hand: d=$(mktemp -d); "
              "scripts/kube-test-cluster.sh start $d && scripts/kube-test-cluster.sh smoke $d; "
              "then run with RG_TEST_KUBE_DIR=$d",
              tests);
    cr_assert(access(kf_file("port"), R_OK) == 0 && access(kf_file(need), R_OK) == 0,
              "RG_TEST_KUBE_DIR=%s has no port or %s%s", kf_dir, need, need_hint);
    h_setup();
    kf_port = kf_trim(h_read_file(kf_file("port")));
    kf_tag = h_query("SELECT substr(md5(random()::text || clock_timestamp()::text), 1, 12)");
    kf_lease = h_fmt("%s-%s", prefix, kf_tag);
    kf_sa_dir = NULL;
}

void kf_teardown(void)
{
    for (size_t i = 0; i < nkept; i++)
        free(kept[i]);
    nkept = 0;
    h_teardown();
}

/* ---- the API server, as the cluster's admin ---- */

struct kf_api kf_admin(const char *method, const char *path, const char *body, int want)
{
    const char *url = h_fmt("https://127.0.0.1:%s%s", kf_port, path);
    struct h_result r =
        body ? h_cmd(H_ARGS("curl", "-sS", "--cacert", kf_file("ca.crt"), "--cert",
                            kf_file("admin.crt"), "--key", kf_file("admin.key"), "-X", method, "-H",
                            "Accept: application/json", "-H", "Content-Type: application/json",
                            "--data-binary", body, "-w", "\n%{http_code}", url))
             : h_cmd(H_ARGS("curl", "-sS", "--cacert", kf_file("ca.crt"), "--cert",
                            kf_file("admin.crt"), "--key", kf_file("admin.key"), "-X", method, "-H",
                            "Accept: application/json", "-w", "\n%{http_code}", url));
    cr_assert(r.exited && r.code == 0, "curl %s %s failed\n%s", method, path, h_describe(&r));
    char *nl = strrchr(r.out, '\n');
    cr_assert_not_null(nl, "curl %s %s: no status line in %s", method, path, r.out);
    *nl = '\0';
    struct kf_api a = {atoi(nl + 1), r.out};
    cr_assert(want == 0 || a.status == want, "%s %s: status %d, want %d: %s", method, path,
              a.status, want, a.body);
    return a;
}

bool kf_sa_allowed(const char *sa, const char *verb, const char *group, const char *resource)
{
    struct kf_api a = kf_admin(
        "POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews",
        h_fmt("{\"apiVersion\":\"authorization.k8s.io/v1\",\"kind\":\"SubjectAccessReview\","
              "\"spec\":{\"user\":\"system:serviceaccount:" KF_NS ":%s\",\"groups\":["
              "\"system:serviceaccounts\",\"system:serviceaccounts:" KF_NS "\","
              "\"system:authenticated\"],\"resourceAttributes\":{\"namespace\":\"" KF_NS "\","
              "\"verb\":\"%s\",\"group\":\"%s\",\"resource\":\"%s\"}}}",
              sa, verb, group, resource),
        201);
    char *allowed = h_json(a.body, "{status,allowed}");
    return allowed && strcmp(allowed, "true") == 0;
}

char *kf_make_sa(const char *name, const char *role, const char *verb)
{
    char *sa = h_fmt("%s", name);
    kf_admin("POST", "/api/v1/namespaces/" KF_NS "/serviceaccounts",
             h_fmt("{\"apiVersion\":\"v1\",\"kind\":\"ServiceAccount\","
                   "\"metadata\":{\"name\":\"%s\"}}",
                   sa),
             201);
    kf_admin("POST", "/apis/rbac.authorization.k8s.io/v1/namespaces/" KF_NS "/rolebindings",
             h_fmt("{\"apiVersion\":\"rbac.authorization.k8s.io/v1\",\"kind\":\"RoleBinding\","
                   "\"metadata\":{\"name\":\"%s\"},\"roleRef\":{\"apiGroup\":"
                   "\"rbac.authorization.k8s.io\",\"kind\":\"Role\",\"name\":\"%s\"},"
                   "\"subjects\":[{\"kind\":\"ServiceAccount\",\"name\":\"%s\","
                   "\"namespace\":\"" KF_NS "\"}]}",
                   sa, role, sa),
             201);
    int64_t deadline = kf_mono_ms() + KF_LONG_MS;
    while (!kf_sa_allowed(sa, verb, "coordination.k8s.io", "leases")) {
        cr_assert(kf_mono_ms() < deadline, "RBAC never let %s %s leases", sa, verb);
        kf_nap_ms(100);
    }
    return sa;
}

char *kf_token_for(const char *sa, const char *secret)
{
    const char *bound = "";
    if (secret) {
        struct kf_api s =
            kf_admin("GET", h_fmt("/api/v1/namespaces/" KF_NS "/secrets/%s", secret), NULL, 200);
        bound = h_fmt(",\"boundObjectRef\":{\"kind\":\"Secret\",\"apiVersion\":\"v1\","
                      "\"name\":\"%s\",\"uid\":\"%s\"}",
                      secret, h_json(s.body, "{metadata,uid}"));
    }
    struct kf_api a =
        kf_admin("POST", h_fmt("/api/v1/namespaces/" KF_NS "/serviceaccounts/%s/token", sa),
                 h_fmt("{\"apiVersion\":\"authentication.k8s.io/v1\",\"kind\":\"TokenRequest\","
                       "\"spec\":{\"expirationSeconds\":3600%s}}",
                       bound),
                 201);
    char *token = h_json(a.body, "{status,token}");
    cr_assert(token && *token, "no token in %s", a.body);
    return token;
}

char *kf_make_sa_dir(const char *name, const char *token)
{
    char *dir = h_tmp_path(name);
    cr_assert(mkdir(dir, 0755) == 0, "mkdir %s: %s", dir, strerror(errno));
    h_write_file(h_fmt("%s/token", dir), token);
    h_write_file(h_fmt("%s/ca.crt", dir), h_read_file(kf_file("ca.crt")));
    h_write_file(h_fmt("%s/namespace", dir), KF_NS);
    return dir;
}

const char *const *kf_env(const char *port, ...)
{
    const char *extra[32];
    size_t ne = 0;
    va_list ap;
    va_start(ap, port);
    for (const char *e = va_arg(ap, const char *); e; e = va_arg(ap, const char *)) {
        cr_assert(ne < sizeof extra / sizeof *extra);
        extra[ne++] = e;
    }
    va_end(ap);
    cr_assert_not_null(kf_sa_dir, "kf_env before a service-account directory was made");
    const char *defaults[] = {
        h_env_url(),
        h_env_dir(),
        "KUBERNETES_SERVICE_HOST=127.0.0.1",
        h_fmt("KUBERNETES_SERVICE_PORT=%s", port),
        h_fmt("ROLLGATE_LEASE_SERVICE_ACCOUNT_DIR=%s", kf_sa_dir),
        h_fmt("ROLLGATE_LEASE_NAME=%s", kf_lease),
        "ROLLGATE_LEASE_MODE=kubernetes",
    };
    size_t nd = sizeof defaults / sizeof *defaults;
    const char **env = kf_keep(calloc(ne + nd + 1, sizeof *env));
    size_t k = 0;
    for (size_t i = 0; i < ne; i++)
        env[k++] = extra[i];
    for (size_t i = 0; i < nd; i++) {
        size_t klen = (size_t)(strchr(defaults[i], '=') - defaults[i]) + 1;
        bool replaced = false;
        for (size_t j = 0; j < ne; j++)
            replaced |= strncmp(extra[j], defaults[i], klen) == 0;
        if (!replaced)
            env[k++] = defaults[i];
    }
    env[k] = NULL;
    return env;
}

/* ---- runs and the database ---- */

bool kf_led(const struct h_result *r)
{
    return strstr(r->err, "leading") != NULL;
}

bool kf_wait_statement(const char *needle, struct h_proc *p)
{
    char *sql = h_fmt("SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE datname = "
                      "current_database() AND pid <> pg_backend_pid() AND state = 'active' AND "
                      "position('%s' in query) > 0)",
                      needle);
    return h_wait_until(sql, p, KF_LONG_MS);
}

PGconn *kf_hold_advisory_lock(long long key)
{
    PGconn *c = PQconnectdb(h_db_url());
    cr_assert_eq(PQstatus(c), CONNECTION_OK, "%s", PQerrorMessage(c));
    PGresult *r = PQexec(c, h_fmt("SELECT pg_advisory_lock(%lld)", key));
    cr_assert_eq(PQresultStatus(r), PGRES_TUPLES_OK, "%s", PQerrorMessage(c));
    PQclear(r);
    return c;
}

long long kf_history_rows(void)
{
    if (!h_table_exists("public.rollgate_migrations"))
        return 0;
    return h_count_rows("public.rollgate_migrations");
}
