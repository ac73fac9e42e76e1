/* Outside a cluster: a kubeconfig's current context, read by pkg/config, as the client's
 * options. The client owns its options, so the mapping lives here and not in cmd/. */
#include "kube/kube.h"

#include <string.h>

#include "log/log.h"

int rg_kube_kubeconfig_load(const char *path, const char *why, struct rg_kubeconfig *kc,
                            struct rg_kube_opts *ko, struct rg_err *err)
{
    memset(kc, 0, sizeof(*kc));
    if (!path) {
        rg_err_set(err, RG_ECONFIG,
                   "%s outside a cluster needs a kubeconfig: set KUBECONFIG "
                   "(or HOME for ~/.kube/config)",
                   why);
        return -1;
    }
    if (rg_config_read_kubeconfig(path, kc, err) < 0) {
        rg_err_prefix(err, "%s outside a cluster (no KUBERNETES_SERVICE_HOST)", why);
        return -1;
    }
    RG_INFO("not in a cluster: using the kubeconfig" RG_F "kubeconfig=%s" RG_F "context=%s", path,
            kc->context);
    ko->server = kc->server;
    /* kubectl's namespace for a context that names none. */
    ko->namespace_ = *kc->namespace_ ? kc->namespace_ : "default";
    ko->ca_file = kc->ca_file;
    ko->ca_pem = kc->ca_pem;
    ko->token = kc->token;
    ko->token_file = kc->token_file;
    ko->cert_file = kc->cert_file;
    ko->cert_pem = kc->cert_pem;
    ko->key_file = kc->key_file;
    ko->key_pem = kc->key_pem;
    return 0;
}
