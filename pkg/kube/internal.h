/* What kube.c, http.c, json.c, leases.c and events.c share; nothing outside pkg/kube
 * includes it. */
#ifndef RG_KUBE_INTERNAL_H
#define RG_KUBE_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>

#include "cancel/cancel.h"
#include "err/err.h"
#include "kube/kube.h"

struct rg_kube {
    CURL *curl; /* one handle for the client's life: keeps the connection and TLS session */
    bool curl_global;
    char *base_url;         /* https://host:port, an IPv6 host in brackets */
    char *ca_path;          /* NULL when ca_pem is set */
    char *ca_pem;           /* a kubeconfig's certificate-authority-data */
    char *token_path;       /* read before every request; NULL when token is set or none is used */
    char *token;            /* a kubeconfig's token; secret */
    const char *token_what; /* "service-account token" or "kubeconfig token", for messages */
    char *cert_file;        /* a kubeconfig's client certificate and key: a file or PEM, or none */
    char *cert_pem;
    char *key_file;
    char *key_pem; /* secret */
    char *namespace;
    int64_t request_timeout_ms;
    int64_t retry_budget_ms;
    int64_t deadline_ms;        /* monotonic; 0: none (rg_kube_set_deadline) */
    int64_t attempt_timeout_ms; /* this attempt's: the request timeout, or less near the deadline */
    unsigned jitter_seed;       /* rand_r state: the client is used by one thread at a time */
    char curl_error[CURL_ERROR_SIZE];
    /* The last Lease object the server returned, so an update sends back what it does not
     * know about (labels, annotations, owner references, newer spec fields) as client-go's
     * Update of the object it read does. */
    cJSON *lease;
    /* The only fields another thread touches: rg_kube_cancel fires cancel, which ends a
     * backoff at once and a transfer at curl's next progress call. */
    struct rg_cancel *cancel;
    atomic_size_t requests;
    size_t sent; /* headers libcurl sent during the current perform */
};

/* A response the caller judges: 2xx, or a 4xx other than 401/403. */
struct rg_kube_response {
    long status;
    char *body; /* NUL-terminated, "" when empty; owned */
    size_t len;
};

void rg_kube_response_free(struct rg_kube_response *r);

/* kube.c */
/* The bearer token (the kubeconfig's, or its file's or the service account's, trimmed);
 * *token NULL when the client uses none (a client certificate alone). code is the error
 * code when it cannot be read or is unusable (RG_ECONFIG at start, RG_EAPI for a request).
 * Registered for redaction. */
int rg_kube_read_token(struct rg_kube *k, enum rg_code code, char **token,
                       struct rg_err *err) RG_WUR;
/* Kubernetes object names and namespaces are DNS labels or subdomains: checking them keeps
 * a path segment from being anything but one segment. */
int rg_kube_check_name(const char *what, const char *name, struct rg_err *err) RG_WUR;

/* http.c */
/* One API call (path from "/api" or "/apis"), with the retries described in kube.h.
 * Returns 0 with *resp for a status the caller must judge; -1 with err set otherwise:
 * RG_EAPIDENIED (401/403), RG_EAPI, RG_ESIGNAL. payload may be NULL (no body). */
int rg_kube_call(struct rg_kube *k, const char *method, const char *path, const char *payload,
                 struct rg_kube_response *resp, struct rg_err *err) RG_WUR;
/* 0 for a 2xx answer; else -1 with err set as rg_kube_status_error sets it (RG_EAPI). */
int rg_kube_expect_success(struct rg_kube *k, const char *method, const char *path,
                           const struct rg_kube_response *resp, struct rg_err *err) RG_WUR;
/* Sets err for an unexpected response, carrying the Kubernetes Status message and
 * reason (or the start of a body that is no Status). */
void rg_kube_status_error(struct rg_kube *k, enum rg_code code, const char *method,
                          const char *path, const struct rg_kube_response *resp,
                          struct rg_err *err);

/* json.c: building and reading objects. cJSON reports out-of-memory as NULL; these abort
 * instead, as rg_malloc does, so a request body is never sent with a field missing. */
/* obj[key], made (or replaced by) an object when it is not one. */
cJSON *rg_kube_json_object(cJSON *obj, const char *key);
void rg_kube_json_set_string(cJSON *obj, const char *key, const char *value);
void rg_kube_json_set_int(cJSON *obj, const char *key, int64_t value);
cJSON *rg_kube_json_new(void);
cJSON *rg_kube_json_copy(const cJSON *json);
/* A new string; free with free(). */
char *rg_kube_json_print(const cJSON *json);
/* obj[key] when it is a string, else NULL (absent, null or another type). */
const char *rg_kube_json_string(const cJSON *obj, const char *key);

#endif
