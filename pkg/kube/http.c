/* One API call over libcurl: the token read afresh, TLS verified against the
 * service-account CA, a capped response, and retries with backoff for what retrying can
 * mend (connection errors, timeouts, 429, 5xx). */
#include "kube/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock/clock.h"
#include "mem/mem.h"
#include "log/log.h"

/* A Lease or an Event answer is a few KiB; a bigger body is not one of ours. */
#define MAX_BODY_BYTES (1024 * 1024)
#define BACKOFF_FIRST_MS 200
#define BACKOFF_MAX_MS 5000
/* How much of a body that is no Status goes into a message. */
#define BODY_SHOWN 160

enum outcome { DONE, RETRY, FAIL };

struct body {
    char *data;
    size_t len, cap;
    bool too_big;
};

void rg_kube_response_free(struct rg_kube_response *r)
{
    if (!r)
        return;
    free(r->body);
    r->body = NULL;
    r->len = 0;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *userdata)
{
    struct body *b = userdata;
    size_t n = size * nmemb;

    /* Returning less than n makes curl stop with CURLE_WRITE_ERROR. */
    if (n > MAX_BODY_BYTES - b->len) {
        b->too_big = true;
        return 0;
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1)
            cap *= 2;
        b->data = rg_realloc(b->data, cap);
        b->cap = cap;
    }
    memcpy(b->data + b->len, data, n);
    b->len += n;
    b->data[b->len] = '\0';
    return n;
}

/* Called by curl while a transfer waits too (at least once a second): a cancel cuts short
 * a request that would otherwise run to its timeout. */
static int on_progress(void *userdata, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    struct rg_kube *k = userdata;

    (void)dltotal;
    (void)dlnow;
    (void)ultotal;
    (void)ulnow;
    return rg_cancel_fired(k->cancel) ? 1 : 0;
}

/* Counts the requests libcurl sends in one perform: on a reused connection that turns
 * out dead it resends a request by itself, and that first attempt may have reached the
 * server (a create that succeeded, its answer lost). Only headers going out are looked
 * at; nothing is printed or kept. */
static int on_debug(CURL *h, curl_infotype type, char *data, size_t size, void *userdata)
{
    size_t *sent = userdata;

    (void)h;
    (void)data;
    (void)size;
    if (type == CURLINFO_HEADER_OUT)
        (*sent)++;
    return 0;
}

static struct curl_slist *add_header(struct curl_slist *list, const char *header)
{
    return rg_must(curl_slist_append(list, header));
}

/* Connection-level failures that a later attempt may not meet. TLS verification failures
 * are left out on purpose: a wrong CA or name does not mend itself. */
static bool curl_retryable(CURLcode c)
{
    switch (c) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_SSL_CONNECT_ERROR: /* a reset mid-handshake, as a restarting server does */
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
        return true;
    default:
        return false;
    }
}

static CURLcode set_options(struct rg_kube *k, const char *method, const char *url,
                            const char *payload, struct curl_slist *headers, struct body *b)
{
    CURL *h = k->curl;
    CURLcode c;

    /* Reset keeps the connection cache and TLS sessions; no option leaks between calls. */
    curl_easy_reset(h);
    c = curl_easy_setopt(h, CURLOPT_URL, url);
    if (!c)
        c = curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https");
    if (!c)
        c = curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
    if (!c)
        c = curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
    /* Only the cluster's CA: the system's CAs vouch for no API server. With a PEM blob the
     * default bundle file is unset too, or OpenSSL would load it as well. NOCOPY: the
     * client's strings outlive the handle's use of them. */
    if (!c)
        c = curl_easy_setopt(h, CURLOPT_CAINFO, k->ca_path);
    if (!c && k->ca_pem) {
        struct curl_blob blob = {k->ca_pem, strlen(k->ca_pem), CURL_BLOB_NOCOPY};
        c = curl_easy_setopt(h, CURLOPT_CAINFO_BLOB, &blob);
    }
    if (!c)
        c = curl_easy_setopt(h, CURLOPT_CAPATH, NULL);
    if (!c && (k->cert_file || k->cert_pem)) {
        c = curl_easy_setopt(h, CURLOPT_SSLCERTTYPE, "PEM");
        if (!c && k->cert_file)
            c = curl_easy_setopt(h, CURLOPT_SSLCERT, k->cert_file);
        if (!c && k->cert_pem) {
            struct curl_blob blob = {k->cert_pem, strlen(k->cert_pem), CURL_BLOB_NOCOPY};
            c = curl_easy_setopt(h, CURLOPT_SSLCERT_BLOB, &blob);
        }
        if (!c)
            c = curl_easy_setopt(h, CURLOPT_SSLKEYTYPE, "PEM");
        if (!c && k->key_file)
            c = curl_easy_setopt(h, CURLOPT_SSLKEY, k->key_file);
        if (!c && k->key_pem) {
            struct curl_blob blob = {k->key_pem, strlen(k->key_pem), CURL_BLOB_NOCOPY};
            c = curl_easy_setopt(h, CURLOPT_SSLKEY_BLOB, &blob);
        }
    }
    if (!c)
        c = curl_easy_setopt(h, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
    /* The renewal thread makes requests too: timeouts must not use signals. */
    if (!c)
        c = curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    if (!c)
        c = curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)k->attempt_timeout_ms);
    if (!c)
        c = curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)k->attempt_timeout_ms);
    if (!c)
        c = curl_easy_setopt(h, CURLOPT_USERAGENT, "rollgate/" RG_VERSION);
    if (!c)
        c = curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    if (!c)
        c = curl_easy_setopt(h, CURLOPT_ERRORBUFFER, k->curl_error);
    if (!c)
        c = curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    if (!c)
        c = curl_easy_setopt(h, CURLOPT_WRITEDATA, b);
    if (!c)
        c = curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    if (!c)
        c = curl_easy_setopt(h, CURLOPT_DEBUGFUNCTION, on_debug);
    if (!c)
        c = curl_easy_setopt(h, CURLOPT_DEBUGDATA, &k->sent);
    if (!c)
        c = curl_easy_setopt(h, CURLOPT_VERBOSE, 1L);
    if (!c)
        c = curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
    if (!c)
        c = curl_easy_setopt(h, CURLOPT_XFERINFODATA, k);
    if (!c && payload) {
        c = curl_easy_setopt(h, CURLOPT_POSTFIELDS, payload);
        if (!c)
            c = curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(payload));
    }
    if (!c && strcmp(method, "GET") != 0 && strcmp(method, "POST") != 0)
        c = curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    return c;
}

/* A body as one short printable line, for a message. */
static void snippet(char *dst, size_t n, const char *body, size_t len)
{
    size_t o = 0;

    for (size_t i = 0; i < len && o + 1 < n; i++) {
        unsigned char c = (unsigned char)body[i];
        dst[o++] = c < 0x20 || c == 0x7f ? ' ' : (char)c;
    }
    dst[o] = '\0';
}

void rg_kube_status_error(struct rg_kube *k, enum rg_code code, const char *method,
                          const char *path, const struct rg_kube_response *resp, struct rg_err *err)
{
    cJSON *json = cJSON_ParseWithLength(resp->body, resp->len);
    const char *kind = rg_kube_json_string(json, "kind");
    const char *message = rg_kube_json_string(json, "message");
    const char *reason = rg_kube_json_string(json, "reason");
    char shown[BODY_SHOWN + 1];

    if (kind && strcmp(kind, "Status") == 0 && message) {
        rg_err_set(err, code, "%s %s%s: %ld: %s (reason %s)", method, k->base_url, path,
                   resp->status, message, reason && *reason ? reason : "none given");
    } else {
        snippet(shown, sizeof(shown), resp->body, resp->len);
        rg_err_set(err, code, "%s %s%s: %ld: %s", method, k->base_url, path, resp->status,
                   resp->len ? shown : "(empty body)");
    }
    if (resp->status == 401 && k->token_path)
        rg_err_prefix(err, "the %s in %s was refused", k->token_what, k->token_path);
    else if (resp->status == 401)
        rg_err_prefix(err, "the kubeconfig's %s was refused",
                      k->token ? "token" : "client certificate");
    cJSON_Delete(json);
}

int rg_kube_expect_success(struct rg_kube *k, const char *method, const char *path,
                           const struct rg_kube_response *resp, struct rg_err *err)
{
    if (resp->status >= 200 && resp->status <= 299)
        return 0;
    rg_kube_status_error(k, RG_EAPI, method, path, resp, err);
    return -1;
}

/* One HTTP request. RETRY leaves err set to what went wrong, for the final message. */
static enum outcome attempt(struct rg_kube *k, const char *method, const char *path,
                            const char *url, const char *payload, struct rg_kube_response *resp,
                            int64_t *retry_after_ms, struct rg_err *err)
{
    struct curl_slist *headers = NULL;
    struct body b = {NULL, 0, 0, false};
    struct rg_kube_response got = {0, NULL, 0};
    char *token = NULL, *auth = NULL;
    curl_off_t retry_after = 0;
    enum outcome o = FAIL;
    CURLcode c;

    *retry_after_ms = 0;
    /* Bound tokens rotate (the kubelet replaces the file): read it for every request. A
     * client certificate alone sends no Authorization header. */
    if (rg_kube_read_token(k, RG_EAPI, &token, err) != 0)
        goto out;
    if (token) {
        auth = rg_asprintf("Authorization: Bearer %s", token);
        headers = add_header(headers, auth);
    }
    headers = add_header(headers, "Accept: application/json");
    if (payload)
        headers = add_header(headers, "Content-Type: application/json");
    /* Small bodies: a 100-continue round trip would only add latency. */
    headers = add_header(headers, "Expect:");
    c = set_options(k, method, url, payload, headers, &b);
    if (c != CURLE_OK) {
        rg_err_set(err, RG_EINTERNAL, "libcurl refused an option: %s", curl_easy_strerror(c));
        goto out;
    }
    k->curl_error[0] = '\0';
    k->sent = 0;
    c = curl_easy_perform(k->curl);
    /* One attempt, plus any request libcurl sent again by itself. */
    atomic_fetch_add(&k->requests, k->sent > 1 ? k->sent : 1);
    if (c == CURLE_ABORTED_BY_CALLBACK) {
        rg_err_set(err, RG_ESIGNAL, "%s %s: cancelled", method, url);
        goto out;
    }
    if (c == CURLE_WRITE_ERROR && b.too_big) {
        rg_err_set(err, RG_EAPI, "%s %s: response over the %d-byte limit", method, url,
                   MAX_BODY_BYTES);
        goto out;
    }
    if (c != CURLE_OK) {
        rg_err_set(err, RG_EAPI, "%s %s: %s", method, url,
                   k->curl_error[0] ? k->curl_error : curl_easy_strerror(c));
        o = curl_retryable(c) ? RETRY : FAIL;
        goto out;
    }
    curl_easy_getinfo(k->curl, CURLINFO_RESPONSE_CODE, &got.status);
    got.body = b.data ? b.data : rg_strdup("");
    got.len = b.len;
    b.data = NULL;
    if (got.status == 401 || got.status == 403) {
        rg_kube_status_error(k, RG_EAPIDENIED, method, path, &got, err);
        goto out;
    }
    if (got.status == 429 || got.status >= 500) {
        rg_kube_status_error(k, RG_EAPI, method, path, &got, err);
        /* Seconds or an HTTP date, which curl turns into seconds from now. */
        if (curl_easy_getinfo(k->curl, CURLINFO_RETRY_AFTER, &retry_after) == CURLE_OK &&
            retry_after > 0)
            *retry_after_ms = retry_after > INT32_MAX ? INT32_MAX : (int64_t)retry_after * 1000;
        o = RETRY;
        goto out;
    }
    *resp = got;
    got.body = NULL;
    o = DONE;
out:
    if (headers) {
        /* The header copy holds the token: wipe it before it goes back to the heap. */
        explicit_bzero(headers->data, strlen(headers->data));
        curl_slist_free_all(headers);
    }
    if (auth) {
        explicit_bzero(auth, strlen(auth));
        free(auth);
    }
    if (token) {
        explicit_bzero(token, strlen(token));
        free(token);
    }
    free(b.data);
    free(got.body);
    return o;
}

int rg_kube_call(struct rg_kube *k, const char *method, const char *path, const char *payload,
                 struct rg_kube_response *resp, struct rg_err *err)
{
    char *url = rg_asprintf("%s%s", k->base_url, path);
    int64_t start = rg_now_ms(), backoff = BACKOFF_FIRST_MS;
    /* The budget ends early at the caller's deadline (a renewal's renew deadline). */
    int64_t end = k->deadline_ms && k->deadline_ms < start + k->retry_budget_ms
                      ? k->deadline_ms
                      : start + k->retry_budget_ms;
    int rc = -1;

    resp->status = 0;
    resp->body = NULL;
    resp->len = 0;
    for (int attempts = 1;; attempts++) {
        int64_t wait, retry_after_ms;
        enum outcome o;

        if (rg_cancel_fired(k->cancel)) {
            rg_err_set(err, RG_ESIGNAL, "%s %s: cancelled", method, url);
            goto out;
        }
        k->attempt_timeout_ms =
            end - rg_now_ms() < k->request_timeout_ms ? end - rg_now_ms() : k->request_timeout_ms;
        if (k->attempt_timeout_ms <= 0) {
            rg_err_set(err, RG_EAPI, "%s %s: no time left before the deadline", method, url);
            goto out;
        }
        o = attempt(k, method, path, url, payload, resp, &retry_after_ms, err);
        if (o == DONE)
            break;
        if (o == FAIL)
            goto out;
        /* Jitter spreads the retries of many pods that failed at the same moment. */
        wait = backoff + rand_r(&k->jitter_seed) % (backoff / 4 + 1);
        if (retry_after_ms > wait)
            wait = retry_after_ms;
        if (rg_now_ms() + wait > end) {
            rg_err_prefix(err, "Kubernetes API unavailable after %d attempt%s", attempts,
                          attempts == 1 ? "" : "s");
            goto out;
        }
        RG_DEBUG("Kubernetes API request failed; retrying" RG_F "attempt=%d" RG_F
                 "wait_ms=%lld" RG_F "error=%s",
                 attempts, (long long)wait, err->msg);
        if (!rg_cancel_sleep(k->cancel, wait)) {
            rg_err_set(err, RG_ESIGNAL, "%s %s: cancelled", method, url);
            goto out;
        }
        backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
    }
    rc = 0;
out:
    free(url);
    return rc;
}
