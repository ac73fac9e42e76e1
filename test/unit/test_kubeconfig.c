#include <criterion/criterion.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/kubeconfig.h"
#include "log/log.h"

#define CA_PEM "-----BEGIN CERTIFICATE-----\nQ0E=\n-----END CERTIFICATE-----\n"
#define CA_B64 "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tClEwRT0KLS0tLS1FTkQgQ0VSVElGSUNBVEUtLS0tLQo="
#define CERT_PEM "-----BEGIN CERTIFICATE-----\nQ0VSVA==\n-----END CERTIFICATE-----\n"
#define CERT_B64                                                                                   \
    "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tClEwVlNWQT09Ci0tLS0tRU5EIENFUlRJRklDQVRFLS0tLS0K"
#define KEY_PEM "-----BEGIN PRIVATE KEY-----\nS0VZ\n-----END PRIVATE KEY-----\n"
#define KEY_B64 "LS0tLS1CRUdJTiBQUklWQVRFIEtFWS0tLS0tClMwVloKLS0tLS1FTkQgUFJJVkFURSBLRVktLS0tLQo="
#define TOKEN "eyJhbGciOiJSUzI1NiJ9.secret-token-value"

static char dir[64];
static char path[128];
static struct rg_kubeconfig kc;
static struct rg_err err;

static void setup(void)
{
    strcpy(dir, "/tmp/rg-kubeconfig-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/config", dir);
    memset(&kc, 0, sizeof(kc));
    rg_err_clear(&err);
}

static void teardown(void)
{
    DIR *d = opendir(dir);
    struct dirent *e;

    rg_config_kubeconfig_free(&kc);
    while (d && (e = readdir(d)) != NULL) {
        char p[512];
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
        unlink(p);
    }
    if (d)
        closedir(d);
    rmdir(dir);
}

TestSuite(kubeconfig, .init = setup, .fini = teardown);

static void write_config(const char *content)
{
    FILE *f = fopen(path, "w");

    cr_assert_not_null(f);
    cr_assert_eq(fputs(content, f) >= 0, 1);
    fclose(f);
}

/* A kubeconfig with two contexts, the current one given; cluster and user bodies are the
 * test's. */
static void write_kubeconfig(const char *current, const char *cluster, const char *user)
{
    char buf[4096];

    snprintf(buf, sizeof(buf),
             "apiVersion: v1\n"
             "kind: Config\n"
             "clusters:\n"
             "  - name: other\n"
             "    cluster: {server: https://other.example:6443, certificate-authority: /x}\n"
             "  - name: prod\n"
             "    cluster:\n%s"
             "users:\n"
             "  - name: other\n"
             "    user: {token: other-token}\n"
             "  - name: deployer\n"
             "    user:\n%s"
             "contexts:\n"
             "  - name: other\n"
             "    context: {cluster: other, user: other}\n"
             "  - name: prod\n"
             "    context: {cluster: prod, user: deployer, namespace: payments}\n"
             "%s",
             cluster, user, current);
    write_config(buf);
}

static char *in_dir(const char *name)
{
    static char p[4][256];
    static int next;
    char *out = p[next++ % 4];

    snprintf(out, 256, "%s/%s", dir, name);
    return out;
}

Test(kubeconfig, reads_the_current_context_with_data_and_a_token)
{
    write_kubeconfig("current-context: prod\n",
                     "      server: https://10.0.0.1:6443\n"
                     "      certificate-authority-data: " CA_B64 "\n",
                     "      token: " TOKEN "\n");
    cr_assert_eq(rg_config_read_kubeconfig(path, &kc, &err), 0, "%s", err.msg);
    cr_assert_str_eq(kc.context, "prod");
    cr_assert_str_eq(kc.server, "https://10.0.0.1:6443");
    cr_assert_str_eq(kc.namespace_, "payments");
    cr_assert_str_eq(kc.ca_pem, CA_PEM);
    cr_assert_null(kc.ca_file);
    cr_assert_str_eq(kc.token, TOKEN);
    cr_assert_null(kc.token_file);
    cr_assert_null(kc.cert_file);
    cr_assert_null(kc.cert_pem);
    cr_assert_null(kc.key_pem);
}

Test(kubeconfig, registers_the_token_for_redaction)
{
    char out[256];

    write_kubeconfig("current-context: prod\n",
                     "      server: https://10.0.0.1:6443\n"
                     "      certificate-authority-data: " CA_B64 "\n",
                     "      token: " TOKEN "\n");
    cr_assert_eq(rg_config_read_kubeconfig(path, &kc, &err), 0, "%s", err.msg);
    rg_log_scrub(out, sizeof(out), "Authorization: Bearer " TOKEN);
    cr_assert_str_eq(out, "Authorization: Bearer ***");
}

Test(kubeconfig, reads_a_client_certificate_as_data)
{
    write_kubeconfig("current-context: prod\n",
                     "      server: https://10.0.0.1:6443/\n"
                     "      certificate-authority-data: " CA_B64 "\n",
                     "      client-certificate-data: " CERT_B64 "\n"
                     "      client-key-data: " KEY_B64 "\n");
    cr_assert_eq(rg_config_read_kubeconfig(path, &kc, &err), 0, "%s", err.msg);
    cr_assert_str_eq(kc.cert_pem, CERT_PEM);
    cr_assert_str_eq(kc.key_pem, KEY_PEM);
    cr_assert_null(kc.token);
    cr_assert_null(kc.token_file);
}

Test(kubeconfig, resolves_relative_files_against_its_directory)
{
    write_kubeconfig("current-context: prod\n",
                     "      server: https://10.0.0.1:6443\n"
                     "      certificate-authority: ca.crt\n",
                     "      client-certificate: /abs/admin.crt\n"
                     "      client-key: keys/admin.key\n"
                     "      tokenFile: token\n");
    cr_assert_eq(rg_config_read_kubeconfig(path, &kc, &err), 0, "%s", err.msg);
    cr_assert_str_eq(kc.ca_file, in_dir("ca.crt"));
    cr_assert_null(kc.ca_pem);
    cr_assert_str_eq(kc.cert_file, "/abs/admin.crt");
    cr_assert_str_eq(kc.key_file, in_dir("keys/admin.key"));
    cr_assert_str_eq(kc.token_file, in_dir("token"));
    cr_assert_null(kc.token);
}

Test(kubeconfig, a_context_without_namespace_gives_an_empty_one)
{
    write_config("clusters:\n"
                 "- name: c\n"
                 "  cluster: {server: 'https://h:1', certificate-authority: /ca}\n"
                 "users:\n"
                 "- name: u\n"
                 "  user: {token: abcdef}\n"
                 "contexts:\n"
                 "- name: x\n"
                 "  context: {cluster: c, user: u}\n"
                 "current-context: x\n");
    cr_assert_eq(rg_config_read_kubeconfig(path, &kc, &err), 0, "%s", err.msg);
    cr_assert_str_eq(kc.namespace_, "");
    cr_assert_str_eq(kc.ca_file, "/ca");
}

static void assert_refused(const char *needle)
{
    cr_assert_eq(rg_config_read_kubeconfig(path, &kc, &err), -1);
    cr_assert_eq(err.code, RG_ECONFIG);
    cr_assert_eq(strncmp(err.msg, path, strlen(path)), 0, "not naming the file: %s", err.msg);
    cr_assert_not_null(strstr(err.msg, needle), "%s", err.msg);
    cr_assert_null(strstr(err.msg, TOKEN), "%s", err.msg);
    cr_assert_null(strstr(err.msg, KEY_B64), "%s", err.msg);
    cr_assert_null(kc.server);
    cr_assert_null(kc.token);
}

Test(kubeconfig, missing_current_context_is_refused)
{
    write_kubeconfig("",
                     "      server: https://10.0.0.1:6443\n"
                     "      certificate-authority-data: " CA_B64 "\n",
                     "      token: " TOKEN "\n");
    assert_refused("no current-context");
}

Test(kubeconfig, unknown_context_is_refused)
{
    write_kubeconfig("current-context: staging\n",
                     "      server: https://10.0.0.1:6443\n"
                     "      certificate-authority-data: " CA_B64 "\n",
                     "      token: " TOKEN "\n");
    assert_refused("current-context \"staging\": no such context");
}

Test(kubeconfig, insecure_skip_tls_verify_is_refused)
{
    write_kubeconfig("current-context: prod\n",
                     "      server: https://10.0.0.1:6443\n"
                     "      insecure-skip-tls-verify: true\n",
                     "      token: " TOKEN "\n");
    assert_refused("cluster \"prod\": insecure-skip-tls-verify is refused");
}

Test(kubeconfig, a_cluster_without_ca_is_refused)
{
    write_kubeconfig("current-context: prod\n", "      server: https://10.0.0.1:6443\n",
                     "      token: " TOKEN "\n");
    assert_refused("no certificate-authority");
}

Test(kubeconfig, plain_http_server_is_refused)
{
    write_kubeconfig("current-context: prod\n",
                     "      server: http://10.0.0.1:8080\n"
                     "      certificate-authority-data: " CA_B64 "\n",
                     "      token: " TOKEN "\n");
    assert_refused("not an https:// URL");
}

Test(kubeconfig, exec_plugins_are_refused)
{
    write_kubeconfig("current-context: prod\n",
                     "      server: https://10.0.0.1:6443\n"
                     "      certificate-authority-data: " CA_B64 "\n",
                     "      exec: {command: gke-gcloud-auth-plugin, apiVersion: "
                     "client.authentication.k8s.io/v1beta1}\n");
    assert_refused("user \"deployer\": exec is not supported");
}

Test(kubeconfig, a_certificate_without_key_is_refused)
{
    write_kubeconfig("current-context: prod\n",
                     "      server: https://10.0.0.1:6443\n"
                     "      certificate-authority-data: " CA_B64 "\n",
                     "      client-certificate-data: " CERT_B64 "\n");
    assert_refused("client-certificate without client-key");
}

Test(kubeconfig, bad_key_data_is_refused_without_showing_it)
{
    write_kubeconfig("current-context: prod\n",
                     "      server: https://10.0.0.1:6443\n"
                     "      certificate-authority-data: " CA_B64 "\n",
                     "      client-certificate-data: " CERT_B64 "\n"
                     "      client-key-data: " TOKEN "\n");
    assert_refused("client-key-data: not base64-encoded PEM");
}

/* Base64 as kubeconfigs carry it: wrapped lines are fine, padding only at the very end. */
Test(kubeconfig, wrapped_data_is_decoded_and_padding_mid_way_refused)
{
    write_kubeconfig(
        "current-context: prod\n",
        "      server: https://10.0.0.1:6443\n"
        "      certificate-authority-data: " CA_B64 "\n",
        "      client-certificate-data: \"LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tClEwVlNW\\n"
        "        QT09Ci0tLS0tRU5EIENFUlRJRklDQVRFLS0tLS0K\"\n"
        "      client-key-data: " KEY_B64 "\n");
    cr_assert_eq(rg_config_read_kubeconfig(path, &kc, &err), 0, "%s", err.msg);
    cr_assert_str_eq(kc.cert_pem, CERT_PEM);
    cr_assert_str_eq(kc.key_pem, KEY_PEM);
    rg_config_kubeconfig_free(&kc);
    write_kubeconfig("current-context: prod\n",
                     "      server: https://10.0.0.1:6443\n"
                     "      certificate-authority-data: " CA_B64 "\n",
                     "      client-certificate-data: " CERT_B64 "\n"
                     "      client-key-data: LS0t=S1CRUdJTiBQUklWQVRFIEtFWS0tLS0tClMwVloK\n");
    assert_refused("client-key-data: not base64-encoded PEM");
}

Test(kubeconfig, a_user_without_credentials_is_refused)
{
    write_kubeconfig("current-context: prod\n",
                     "      server: https://10.0.0.1:6443\n"
                     "      certificate-authority-data: " CA_B64 "\n",
                     "      {}\n");
    assert_refused("no token, tokenFile or client-certificate");
}

Test(kubeconfig, missing_file_and_bad_yaml_name_the_file)
{
    assert_refused("cannot open");
    write_config("clusters: [\n");
    assert_refused("invalid YAML");
}
