/* The client: in-cluster credentials (service-account token, CA, namespace) or a
 * kubeconfig's (server, CA, token or client certificate, namespace), the API
 * server's URL, and the cancel flag and request counter that other threads may touch. */
#include "kube/internal.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "file/file.h"
#include "mem/mem.h"
#include "log/log.h"

/* Service-account files are a few KiB; anything bigger is not what we take it for. */
#define MAX_FILE_BYTES (64 * 1024)
/* DNS-1123 subdomain, the longest Kubernetes object name. */
#define MAX_NAME_LEN 253

/* Trims whitespace at both ends in place (the kubelet writes no newline; people do). */
static char *trim(char *s)
{
    size_t n;

    while (isspace((unsigned char)*s))
        s++;
    n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    return s;
}

int rg_kube_read_token(struct rg_kube *k, enum rg_code code, char **token, struct rg_err *err)
{
    char *data = NULL;
    const char *t, *where = k->token ? "kubeconfig" : k->token_path;
    int rc = -1;

    *token = NULL;
    if (!k->token && !k->token_path)
        return 0;
    if (k->token) {
        t = k->token;
    } else {
        if (rg_file_read(k->token_path, MAX_FILE_BYTES, 0, &data, NULL, code, err) != 0) {
            rg_err_prefix(err, "%s", k->token_what);
            goto out;
        }
        t = trim(data);
    }
    if (!*t) {
        rg_err_set(err, code, "%s: %s file is empty", where, k->token_what);
        goto out;
    }
    /* The token goes into a header line: a control character or a space would end it or
     * smuggle another header in. The message never shows the token itself. */
    for (const char *c = t; *c; c++) {
        if ((unsigned char)*c <= ' ' || (unsigned char)*c == 0x7f) {
            rg_err_set(err, code,
                       "%s: %s holds a character not allowed in an HTTP header (offset %zu)", where,
                       k->token_what, (size_t)(c - t));
            goto out;
        }
    }
    rg_log_redact(t);
    *token = rg_strdup(t);
    rc = 0;
out:
    if (data) {
        explicit_bzero(data, strlen(data));
        free(data);
    }
    return rc;
}

int rg_kube_check_name(const char *what, const char *name, struct rg_err *err)
{
    size_t n = strlen(name);

    if (n == 0 || n > MAX_NAME_LEN || !isalnum((unsigned char)name[0]) ||
        !isalnum((unsigned char)name[n - 1]))
        goto bad;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        if (!(islower(c) || isdigit(c) || c == '-' || c == '.'))
            goto bad;
    }
    return 0;
bad:
    rg_err_set(err, RG_ECONFIG,
               "%s \"%.*s\": not a valid Kubernetes name (lower-case letters, digits, '-' and "
               "'.', at most %d characters, starting and ending with a letter or digit)",
               what, 64, name, MAX_NAME_LEN);
    return -1;
}

/* https://host:port; KUBERNETES_SERVICE_HOST holds a bare IPv6 address on IPv6 clusters,
 * which a URL must bracket. */
static int base_url(const char *host, const char *port, char **url, struct rg_err *err)
{
    char *end = NULL;
    long p;

    if (!port || !*port)
        port = "443";
    errno = 0;
    p = strtol(port, &end, 10);
    if (errno != 0 || end == port || *end != '\0' || p < 1 || p > 65535) {
        rg_err_set(err, RG_ECONFIG, "Kubernetes API port \"%.32s\": not a port number (1-65535)",
                   port);
        return -1;
    }
    for (const char *c = host; *c; c++) {
        if (isspace((unsigned char)*c) || *c == '/' || *c == '@' || *c == '?' || *c == '#') {
            rg_err_set(err, RG_ECONFIG, "Kubernetes API host \"%.64s\": not a host name or address",
                       host);
            return -1;
        }
    }
    if (strchr(host, ':') && host[0] != '[')
        *url = rg_asprintf("https://[%s]:%ld", host, p);
    else
        *url = rg_asprintf("https://%s:%ld", host, p);
    return 0;
}

/* Reads a PEM file now, so a missing or wrong one is a configuration error at start; what
 * names it in the message. The contents are wiped: a key file is a secret. */
static int check_pem_file(const char *path, const char *what, const char *begin, struct rg_err *err)
{
    char *data = NULL;
    size_t len = 0;
    int rc = -1;

    if (rg_file_read(path, MAX_FILE_BYTES, 0, &data, &len, RG_ECONFIG, err) != 0) {
        rg_err_prefix(err, "%s", what);
        goto out;
    }
    if (!strstr(data, begin)) {
        rg_err_set(err, RG_ECONFIG, "%s: %s: no PEM block (%s) in the file", path, what, begin);
        goto out;
    }
    rc = 0;
out:
    if (data) {
        explicit_bzero(data, len);
        free(data);
    }
    return rc;
}

static int in_cluster(struct rg_kube *k, const struct rg_kube_opts *opts, struct rg_err *err)
{
    const char *dir = opts->sa_dir ? opts->sa_dir : RG_KUBE_SA_DIR;
    char *ns = NULL, *ns_path = NULL;
    int rc = -1;

    if (base_url(opts->host, opts->port, &k->base_url, err) != 0)
        goto out;
    k->ca_path = rg_asprintf("%s/ca.crt", dir);
    k->token_path = rg_asprintf("%s/token", dir);
    k->token_what = "service-account token";
    ns_path = rg_asprintf("%s/namespace", dir);

    /* curl hands ca.crt to OpenSSL per connection; reading it now turns a missing or empty
     * file into a configuration error at start instead of a TLS error in the middle. */
    if (check_pem_file(k->ca_path, "service-account CA", "-----BEGIN CERTIFICATE-----", err) != 0)
        goto out;
    /* The namespace may be configured instead (lease.namespace): only its absence is fine. */
    if (access(ns_path, F_OK) != 0 && errno == ENOENT) {
        k->namespace = rg_strdup("");
    } else {
        if (rg_file_read(ns_path, MAX_FILE_BYTES, 0, &ns, NULL, RG_ECONFIG, err) != 0) {
            rg_err_prefix(err, "service-account namespace");
            goto out;
        }
        k->namespace = rg_strdup(trim(ns));
    }
    rc = 0;
out:
    free(ns);
    free(ns_path);
    return rc;
}

/* The values of a kubeconfig's context. */
static int out_of_cluster(struct rg_kube *k, const struct rg_kube_opts *opts, struct rg_err *err)
{
    size_t n = strlen(opts->server);

    if (strncmp(opts->server, "https://", 8) != 0 || n == 8) {
        rg_err_set(err, RG_ECONFIG, "kubeconfig server \"%.64s\": not an https:// URL",
                   opts->server);
        return -1;
    }
    for (const char *c = opts->server; *c; c++) {
        if ((unsigned char)*c <= ' ' || (unsigned char)*c == 0x7f || *c == '?' || *c == '#') {
            rg_err_set(err, RG_ECONFIG, "kubeconfig server \"%.64s\": not a base URL",
                       opts->server);
            return -1;
        }
    }
    while (n > 8 && opts->server[n - 1] == '/')
        n--;
    k->base_url = rg_strndup(opts->server, n);
    k->token_what = "kubeconfig token";

    if (opts->ca_pem && *opts->ca_pem) {
        if (!strstr(opts->ca_pem, "-----BEGIN CERTIFICATE-----")) {
            rg_err_set(err, RG_ECONFIG,
                       "kubeconfig certificate-authority-data: no PEM certificate");
            return -1;
        }
        k->ca_pem = rg_strdup(opts->ca_pem);
    } else if (opts->ca_file && *opts->ca_file) {
        if (check_pem_file(opts->ca_file, "kubeconfig CA", "-----BEGIN CERTIFICATE-----", err) != 0)
            return -1;
        k->ca_path = rg_strdup(opts->ca_file);
    } else {
        rg_err_set(err, RG_ECONFIG,
                   "kubeconfig: no certificate authority (TLS is always verified against the "
                   "cluster's CA)");
        return -1;
    }

    if (opts->token && *opts->token) {
        k->token = rg_strdup(opts->token);
        rg_log_redact(k->token);
    } else if (opts->token_file && *opts->token_file) {
        k->token_path = rg_strdup(opts->token_file);
    }

    if (opts->cert_pem && *opts->cert_pem) {
        k->cert_pem = rg_strdup(opts->cert_pem);
    } else if (opts->cert_file && *opts->cert_file) {
        if (check_pem_file(opts->cert_file, "client certificate", "-----BEGIN CERTIFICATE-----",
                           err) != 0)
            return -1;
        k->cert_file = rg_strdup(opts->cert_file);
    }
    if (opts->key_pem && *opts->key_pem) {
        k->key_pem = rg_strdup(opts->key_pem);
    } else if (opts->key_file && *opts->key_file) {
        if (check_pem_file(opts->key_file, "client key", "-----BEGIN ", err) != 0)
            return -1;
        k->key_file = rg_strdup(opts->key_file);
    }
    if (!(k->cert_pem || k->cert_file) != !(k->key_pem || k->key_file)) {
        rg_err_set(err, RG_ECONFIG,
                   "kubeconfig: a client certificate needs its key and a key "
                   "its certificate");
        return -1;
    }
    if (!k->token && !k->token_path && !k->cert_pem && !k->cert_file) {
        rg_err_set(err, RG_ECONFIG, "kubeconfig: no credentials (a token or a client certificate)");
        return -1;
    }
    k->namespace = rg_strdup(opts->namespace_ ? opts->namespace_ : "");
    return 0;
}

int rg_kube_new(struct rg_kube **out, const struct rg_kube_opts *opts, struct rg_err *err)
{
    struct rg_kube *k = NULL;
    char *token = NULL;
    int rc = -1;

    *out = NULL;
    if ((!opts->host || !*opts->host) && (!opts->server || !*opts->server)) {
        rg_err_set(err, RG_ECONFIG,
                   "no Kubernetes API: not in a cluster (KUBERNETES_SERVICE_HOST) and no "
                   "kubeconfig server");
        goto out;
    }
    k = rg_calloc(1, sizeof(*k));
    k->cancel = rg_cancel_new();
    atomic_init(&k->requests, 0);
    k->request_timeout_ms =
        opts->request_timeout_ms > 0 ? opts->request_timeout_ms : RG_KUBE_REQUEST_TIMEOUT_MS;
    k->retry_budget_ms =
        opts->retry_budget_ms > 0 ? opts->retry_budget_ms : RG_KUBE_RETRY_BUDGET_MS;
    k->jitter_seed = (unsigned)time(NULL) ^ (unsigned)getpid() ^ (unsigned)(uintptr_t)k;
    if (opts->host && *opts->host ? in_cluster(k, opts, err) : out_of_cluster(k, opts, err))
        goto out;
    if (rg_kube_read_token(k, RG_ECONFIG, &token, err) != 0)
        goto out;

    /* Thread-safe in libcurl >= 7.84 and reference-counted: balanced in rg_kube_free. */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        rg_err_set(err, RG_EINTERNAL, "libcurl could not initialise (TLS library)");
        goto out;
    }
    k->curl_global = true;
    k->curl = curl_easy_init();
    if (!k->curl) {
        rg_err_set(err, RG_EINTERNAL, "libcurl could not create a transfer handle");
        goto out;
    }
    *out = k;
    k = NULL;
    rc = 0;
out:
    if (token) {
        explicit_bzero(token, strlen(token));
        free(token);
    }
    rg_kube_free(k);
    return rc;
}

static void free_secret(char *s)
{
    if (s) {
        explicit_bzero(s, strlen(s));
        free(s);
    }
}

void rg_kube_free(struct rg_kube *k)
{
    if (!k)
        return;
    if (k->curl)
        curl_easy_cleanup(k->curl);
    if (k->curl_global)
        curl_global_cleanup();
    cJSON_Delete(k->lease);
    free(k->base_url);
    free(k->ca_path);
    free(k->ca_pem);
    free(k->token_path);
    free_secret(k->token);
    free(k->cert_file);
    free(k->cert_pem);
    free(k->key_file);
    free_secret(k->key_pem);
    free(k->namespace);
    rg_cancel_free(k->cancel);
    free(k);
}

const char *rg_kube_namespace(const struct rg_kube *k)
{
    return k->namespace;
}

void rg_kube_cancel(struct rg_kube *k)
{
    rg_cancel_fire(k->cancel);
}

void rg_kube_set_deadline(struct rg_kube *k, int64_t monotonic_ms)
{
    k->deadline_ms = monotonic_ms;
}

size_t rg_kube_requests(const struct rg_kube *k)
{
    /* C11's atomic_load takes a non-const pointer; reading does not modify. */
    return atomic_load(&((struct rg_kube *)k)->requests);
}
