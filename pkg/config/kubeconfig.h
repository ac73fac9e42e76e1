/* A kubeconfig file's current context, reduced to what the Kubernetes client needs to run
 * outside a cluster: plain strings, so pkg/kube never sees YAML. */
#ifndef RG_CONFIG_KUBECONFIG_H
#define RG_CONFIG_KUBECONFIG_H

#include "err/err.h"

/* Every field is allocated; NULL when the kubeconfig does not give it. Of each pair
 * (file, PEM) at most one is set. Paths are resolved against the kubeconfig's directory. */
struct rg_kubeconfig {
    char *context;    /* current-context */
    char *server;     /* the cluster's server URL, https:// */
    char *namespace_; /* the context's namespace; "" when it names none */
    char *ca_file;    /* certificate-authority */
    char *ca_pem;     /* certificate-authority-data, decoded */
    char *token;      /* secret; registered with rg_log_redact */
    char *token_file; /* tokenFile, read again by the client before every request */
    char *cert_file;  /* client-certificate */
    char *cert_pem;   /* client-certificate-data, decoded */
    char *key_file;   /* client-key */
    char *key_pem;    /* secret; client-key-data, decoded */
};

/* Reads path's current context: its cluster (server; certificate-authority or
 * certificate-authority-data) and user (token or tokenFile, or client-certificate(-data)
 * with client-key(-data)). A cluster with insecure-skip-tls-verify: true, a user with an
 * exec or auth-provider plugin or a password, and a user with no credentials are refused:
 * TLS is always verified. Errors are RG_ECONFIG and start with "path: " (or
 * "path:line:col: "); they never show a secret. kc need not be initialised; on error it is
 * freed. */
int rg_config_read_kubeconfig(const char *path, struct rg_kubeconfig *kc,
                              struct rg_err *err) RG_WUR;
/* Wipes the secrets and frees; accepts NULL and a zeroed struct. */
void rg_config_kubeconfig_free(struct rg_kubeconfig *kc);

#endif
