/* pkg/kube without a server: a kubeconfig's current context as the client's options
 * (rg_kube_kubeconfig_load). The requests themselves are tested against a real
 * kube-apiserver in test/kube. */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kube/kube.h"
#include "log/log.h"

#define PEM(label, body) "-----BEGIN " label "-----\n" body "\n-----END " label "-----\n"
#define TOKEN "eyJhbGciOiJSUzI1NiJ9.unit-secret-token"
/* "-----BEGIN CERTIFICATE-----\nQ0E=\n-----END CERTIFICATE-----\n", base64-encoded */
#define CA_B64 "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tClEwRT0KLS0tLS1FTkQgQ0VSVElGSUNBVEUtLS0tLQo="
#define WHY "lease.mode kubernetes"

/* The files a test may write in its directory (path[CONFIG] and so on), removed afterwards. */
enum { CONFIG, CA, CERT, KEY, NFILES };
static const char *const names[NFILES] = {"config", "ca.crt", "client.crt", "client.key"};

static char dir[64];
static char path[NFILES][128];
static struct rg_kubeconfig kc;
static struct rg_kube_opts ko;
static struct rg_kube *kube;
static struct rg_err err;
static FILE *log_out;

static void start(void)
{
    strcpy(dir, "/tmp/rg-unit-kube-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    for (int i = 0; i < NFILES; i++)
        snprintf(path[i], sizeof(path[i]), "%s/%s", dir, names[i]);
    memset(&ko, 0, sizeof(ko));
    kube = NULL;
    rg_err_clear(&err);
    log_out = tmpfile();
    cr_assert_not_null(log_out);
    rg_log_setup(RG_LOG_FORMAT_TEXT, RG_LOG_INFO, log_out);
}

static void finish(void)
{
    rg_log_setup(RG_LOG_FORMAT_TEXT, RG_LOG_INFO, stderr);
    fclose(log_out);
    rg_kube_free(kube);
    rg_config_kubeconfig_free(&kc);
    for (int i = 0; i < NFILES; i++)
        unlink(path[i]);
    rmdir(dir);
}

TestSuite(kube, .init = start, .fini = finish);

static void put(int file, const char *text)
{
    FILE *f = fopen(path[file], "w");

    cr_assert_not_null(f, "%s", path[file]);
    cr_assert(fputs(text, f) >= 0);
    cr_assert_eq(fclose(f), 0);
}

/* The kubeconfig: its current context "ctx" takes cluster `cluster` (the file defines only
 * "c", with `cluster_body`) and user "u" (`user_body`); namespace_line may add a namespace. */
static void put_kubeconfig(const char *cluster, const char *cluster_body, const char *user_body,
                           const char *namespace_line)
{
    char text[2048];

    snprintf(text, sizeof(text),
             "apiVersion: v1\nkind: Config\n"
             "clusters:\n- name: c\n  cluster:\n%s"
             "users:\n- name: u\n  user:\n%s"
             "contexts:\n- name: ctx\n  context:\n    cluster: %s\n    user: u\n%s"
             "current-context: ctx\n",
             cluster_body, user_body, cluster, namespace_line);
    put(CONFIG, text);
}

/* What the function logged. */
static const char *logged(void)
{
    static char text[4096];
    size_t n;

    cr_assert_eq(fflush(log_out), 0);
    rewind(log_out);
    n = fread(text, 1, sizeof(text) - 1, log_out);
    text[n] = '\0';
    return text;
}

Test(kube, a_token_kubeconfig_gives_its_server_ca_token_and_namespace)
{
    put_kubeconfig("c",
                   "    server: https://10.0.0.1:6443\n"
                   "    certificate-authority-data: " CA_B64 "\n",
                   "    token: " TOKEN "\n", "    namespace: payments\n");
    ko.request_timeout_ms = 1234;

    cr_assert_eq(rg_kube_kubeconfig_load(path[CONFIG], WHY, &kc, &ko, &err), 0, "%s", err.msg);
    cr_assert_str_eq(ko.server, "https://10.0.0.1:6443");
    cr_assert_str_eq(ko.ca_pem, PEM("CERTIFICATE", "Q0E="));
    cr_assert_null(ko.ca_file);
    cr_assert_str_eq(ko.token, TOKEN);
    cr_assert_null(ko.token_file);
    cr_assert_null(ko.cert_file);
    cr_assert_null(ko.cert_pem);
    cr_assert_null(ko.key_file);
    cr_assert_null(ko.key_pem);
    cr_assert_str_eq(ko.namespace_, "payments");
    /* What the kubeconfig does not say is the caller's. */
    cr_assert_eq(ko.request_timeout_ms, 1234);
    cr_assert_null(ko.host);
    /* The log names the file and the context, never the token. */
    cr_assert_not_null(strstr(logged(), path[CONFIG]), "%s", logged());
    cr_assert_not_null(strstr(logged(), "context=ctx"), "%s", logged());
    cr_assert_null(strstr(logged(), "unit-secret-token"), "%s", logged());
    /* And the client takes these options as they are. */
    cr_assert_eq(rg_kube_new(&kube, &ko, &err), 0, "%s", err.msg);
    cr_assert_str_eq(rg_kube_namespace(kube), "payments");
}

Test(kube, a_client_certificate_kubeconfig_gives_its_files_and_the_default_namespace)
{
    put(CA, PEM("CERTIFICATE", "Q0E="));
    put(CERT, PEM("CERTIFICATE", "Q0VSVA=="));
    put(KEY, PEM("PRIVATE KEY", "S0VZ"));
    /* Relative paths: against the kubeconfig's directory. */
    put_kubeconfig("c",
                   "    server: https://127.0.0.1:6443\n"
                   "    certificate-authority: ca.crt\n",
                   "    client-certificate: client.crt\n"
                   "    client-key: client.key\n",
                   "");

    cr_assert_eq(rg_kube_kubeconfig_load(path[CONFIG], WHY, &kc, &ko, &err), 0, "%s", err.msg);
    cr_assert_str_eq(ko.server, "https://127.0.0.1:6443");
    cr_assert_str_eq(ko.ca_file, path[CA]);
    cr_assert_null(ko.ca_pem);
    cr_assert_str_eq(ko.cert_file, path[CERT]);
    cr_assert_str_eq(ko.key_file, path[KEY]);
    cr_assert_null(ko.cert_pem);
    cr_assert_null(ko.key_pem);
    cr_assert_null(ko.token);
    cr_assert_null(ko.token_file);
    /* kubectl's namespace for a context that names none. */
    cr_assert_str_eq(ko.namespace_, "default");
    cr_assert_eq(rg_kube_new(&kube, &ko, &err), 0, "%s", err.msg);
    cr_assert_str_eq(rg_kube_namespace(kube), "default");
}

Test(kube, a_context_naming_a_missing_cluster_is_refused_naming_it)
{
    char want[256];

    put_kubeconfig("gone",
                   "    server: https://10.0.0.1:6443\n"
                   "    certificate-authority-data: " CA_B64 "\n",
                   "    token: " TOKEN "\n", "");

    cr_assert_eq(rg_kube_kubeconfig_load(path[CONFIG], WHY, &kc, &ko, &err), -1);
    cr_assert_eq(err.code, RG_ECONFIG);
    snprintf(want, sizeof(want), WHY " outside a cluster (no KUBERNETES_SERVICE_HOST): %s",
             path[CONFIG]);
    cr_assert_eq(strncmp(err.msg, want, strlen(want)), 0, "%s", err.msg);
    cr_assert_not_null(strstr(err.msg, "cluster \"gone\": no such cluster"), "%s", err.msg);
    cr_assert_null(strstr(err.msg, "unit-secret-token"), "%s", err.msg);
    /* Nothing half set: no option points anywhere, the kubeconfig holds nothing. */
    cr_assert_null(ko.server);
    cr_assert_null(ko.token);
    cr_assert_null(kc.server);
    cr_assert_null(kc.token);
}

Test(kube, no_kubeconfig_path_says_how_to_give_one)
{
    kc.server = (char *)"not initialised";

    cr_assert_eq(rg_kube_kubeconfig_load(NULL, "--after-rollout", &kc, &ko, &err), -1);
    cr_assert_eq(err.code, RG_ECONFIG);
    cr_assert_str_eq(err.msg, "--after-rollout outside a cluster needs a kubeconfig: set "
                              "KUBECONFIG (or HOME for ~/.kube/config)");
    cr_assert_null(kc.server);
    cr_assert_null(ko.server);
}
