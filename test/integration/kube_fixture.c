/* What the Kubernetes integration suites add to the Kubernetes fixture: see kube_fixture.h. */
#include "kube_fixture.h"

#include <criterion/criterion.h>

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

char *kf_port;
char *kf_tag;
char *kf_lease;
const char *kf_sa_dir;

void kf_setup(const char *prefix, const char *need, const char *need_hint)
{
    /* Checked before h_setup makes a database and a directory for the test. */
    const char *dir = kf_cluster_dir();
    cr_assert(access(kf_file("port"), R_OK) == 0 && access(kf_file(need), R_OK) == 0,
              "RG_TEST_KUBE_DIR=%s has no port or %s%s", dir, need, need_hint);
    h_setup();
    kf_port = kf_cluster_port();
    kf_tag = kf_new_tag();
    kf_lease = h_fmt("%s-%s", prefix, kf_tag);
    kf_sa_dir = NULL;
}

void kf_teardown(void)
{
    kf_release();
    h_teardown();
}

char *kf_make_sa_dir(const char *name, const char *token)
{
    char *dir = h_tmp_path(name);
    kf_write_sa_dir(dir, token);
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
