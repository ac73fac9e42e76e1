/* The one Kubernetes test fixture: see kube_cluster.h. */
#include "kube_cluster.h"

#include <criterion/criterion.h>
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>

#include "mem/mem.h"

/* What kf_ functions handed out, freed at kf_release. */
static void **kept;
static size_t nkept, capkept;

void *kf_keep(void *p)
{
    cr_assert_not_null(p, "out of memory");
    if (nkept == capkept) {
        capkept = capkept ? capkept * 2 : 64;
        kept = rg_realloc(kept, capkept * sizeof *kept);
    }
    kept[nkept++] = p;
    return p;
}

void kf_release(void)
{
    for (size_t i = 0; i < nkept; i++)
        free(kept[i]);
    free(kept);
    kept = NULL;
    nkept = capkept = 0;
}

const char *kf_cluster_dir(void)
{
    const char *dir = getenv("RG_TEST_KUBE_DIR");

    cr_assert(dir && *dir,
              "RG_TEST_KUBE_DIR is not set: these tests need a Kubernetes API server. "
              "scripts/test.sh starts one; by hand: d=$(mktemp -d); "
              "scripts/kube-test-cluster.sh start $d && scripts/kube-test-cluster.sh smoke $d; "
              "then run with RG_TEST_KUBE_DIR=$d");
    return dir;
}

char *kf_file(const char *name)
{
    return kf_keep(rg_asprintf("%s/%s", kf_cluster_dir(), name));
}

char *kf_cluster_port(void)
{
    char *port = kf_read(kf_file("port"));

    port[strcspn(port, "\r\n ")] = '\0';
    cr_assert(*port, "%s is empty", kf_file("port"));
    return port;
}

char *kf_read(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t len = 0;

    cr_assert(f, "cannot open %s: %s", path, strerror(errno));
    for (;;) {
        buf = rg_realloc(buf, len + 4097);
        size_t n = fread(buf + len, 1, 4096, f);
        len += n;
        if (n == 0)
            break;
    }
    buf[len] = '\0';
    fclose(f);
    return kf_keep(buf);
}

void kf_write(const char *path, const char *content)
{
    char *tmp = kf_keep(rg_asprintf("%s.tmp", path));
    FILE *f = fopen(tmp, "wb");

    cr_assert(f, "cannot write %s: %s", tmp, strerror(errno));
    cr_assert_eq(fwrite(content, 1, strlen(content), f), strlen(content));
    cr_assert_eq(fclose(f), 0);
    cr_assert_eq(rename(tmp, path), 0, "rename %s: %s", tmp, strerror(errno));
}

/* ---- the API server, as the cluster's admin ---- */

struct buffer {
    char *data;
    size_t len;
};

static size_t collect(char *data, size_t size, size_t nmemb, void *userdata)
{
    struct buffer *b = userdata;
    size_t n = size * nmemb;

    b->data = rg_realloc(b->data, b->len + n + 1);
    memcpy(b->data + b->len, data, n);
    b->len += n;
    b->data[b->len] = '\0';
    return n;
}

struct kf_api kf_admin(const char *method, const char *path, const char *body, int want)
{
    char *url = kf_keep(rg_asprintf("https://127.0.0.1:%s%s", kf_cluster_port(), path));
    struct buffer b = {NULL, 0};
    struct curl_slist *headers = NULL;
    char errbuf[CURL_ERROR_SIZE] = "";
    long status = 0;
    CURL *h = curl_easy_init();
    CURLcode c;

    cr_assert(h);
    headers = curl_slist_append(headers, "Accept: application/json");
    /* A PATCH is a JSON merge patch: the simplest way to set a few status fields. */
    headers = curl_slist_append(headers, strcmp(method, "PATCH") == 0
                                             ? "Content-Type: application/merge-patch+json"
                                             : "Content-Type: application/json");
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(h, CURLOPT_CAINFO, kf_file("ca.crt"));
    curl_easy_setopt(h, CURLOPT_SSLCERT, kf_file("admin.crt"));
    curl_easy_setopt(h, CURLOPT_SSLKEY, kf_file("admin.key"));
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 30L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
    if (body)
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    c = curl_easy_perform(h);
    kf_keep(b.data ? b.data : (b.data = rg_strdup("")));
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(headers);
    curl_easy_cleanup(h);
    cr_assert_eq(c, CURLE_OK, "admin %s %s: %s", method, path,
                 errbuf[0] ? errbuf : curl_easy_strerror(c));
    cr_assert(want == 0 || status == want, "%s %s: status %ld, want %d: %s", method, path, status,
              want, b.data);
    return (struct kf_api){(int)status, b.data};
}

/* The string (or true/false) at json's key outer, then inner; NULL when absent or of
 * another type. */
static char *field(const char *json, const char *outer, const char *inner)
{
    cJSON *root = cJSON_Parse(json);
    const cJSON *v;
    char *s = NULL;

    cr_assert_not_null(root, "not JSON: %s", json);
    v = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(root, outer), inner);
    if (cJSON_IsString(v))
        s = kf_keep(rg_strdup(v->valuestring));
    else if (cJSON_IsBool(v))
        s = kf_keep(rg_strdup(cJSON_IsTrue(v) ? "true" : "false"));
    cJSON_Delete(root);
    return s;
}

bool kf_sa_allowed(const char *sa, const char *verb, const char *group, const char *resource)
{
    char *review = kf_keep(
        rg_asprintf("{\"apiVersion\":\"authorization.k8s.io/v1\",\"kind\":\"SubjectAccessReview\","
                    "\"spec\":{\"user\":\"system:serviceaccount:" KF_NS ":%s\",\"groups\":["
                    "\"system:serviceaccounts\",\"system:serviceaccounts:" KF_NS "\","
                    "\"system:authenticated\"],\"resourceAttributes\":{\"namespace\":\"" KF_NS "\","
                    "\"verb\":\"%s\",\"group\":\"%s\",\"resource\":\"%s\"}}}",
                    sa, verb, group, resource));
    struct kf_api a =
        kf_admin("POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", review, 201);
    char *allowed = field(a.body, "status", "allowed");

    return allowed && strcmp(allowed, "true") == 0;
}

char *kf_make_sa(const char *name, const char *role, const char *verb)
{
    char *sa = kf_keep(rg_strdup(name));
    int64_t deadline = kf_mono_ms() + KF_LONG_MS;

    kf_admin("POST", "/api/v1/namespaces/" KF_NS "/serviceaccounts",
             kf_keep(rg_asprintf("{\"apiVersion\":\"v1\",\"kind\":\"ServiceAccount\","
                                 "\"metadata\":{\"name\":\"%s\"}}",
                                 sa)),
             201);
    kf_admin("POST", "/apis/rbac.authorization.k8s.io/v1/namespaces/" KF_NS "/rolebindings",
             kf_keep(rg_asprintf(
                 "{\"apiVersion\":\"rbac.authorization.k8s.io/v1\",\"kind\":\"RoleBinding\","
                 "\"metadata\":{\"name\":\"%s\"},\"roleRef\":{\"apiGroup\":"
                 "\"rbac.authorization.k8s.io\",\"kind\":\"Role\",\"name\":\"%s\"},"
                 "\"subjects\":[{\"kind\":\"ServiceAccount\",\"name\":\"%s\","
                 "\"namespace\":\"" KF_NS "\"}]}",
                 sa, role, sa)),
             201);
    while (!kf_sa_allowed(sa, verb, "coordination.k8s.io", "leases")) {
        cr_assert(kf_mono_ms() < deadline, "RBAC never let %s %s leases", sa, verb);
        kf_nap_ms(100);
    }
    return sa;
}

char *kf_token_for(const char *sa, const char *secret)
{
    const char *bound = "";
    struct kf_api a;
    char *token;

    if (secret) {
        struct kf_api s =
            kf_admin("GET", kf_keep(rg_asprintf("/api/v1/namespaces/" KF_NS "/secrets/%s", secret)),
                     NULL, 200);
        char *uid = field(s.body, "metadata", "uid");
        cr_assert(uid && *uid, "the Secret %s has no metadata.uid: %s", secret, s.body);
        bound = kf_keep(rg_asprintf(",\"boundObjectRef\":{\"kind\":\"Secret\",\"apiVersion\":"
                                    "\"v1\",\"name\":\"%s\",\"uid\":\"%s\"}",
                                    secret, uid));
    }
    a = kf_admin("POST",
                 kf_keep(rg_asprintf("/api/v1/namespaces/" KF_NS "/serviceaccounts/%s/token", sa)),
                 kf_keep(rg_asprintf("{\"apiVersion\":\"authentication.k8s.io/v1\",\"kind\":"
                                     "\"TokenRequest\",\"spec\":{\"expirationSeconds\":3600%s}}",
                                     bound)),
                 201);
    token = field(a.body, "status", "token");
    cr_assert(token && *token, "TokenRequest answer has no status.token: %s", a.body);
    return token;
}

void kf_write_sa_dir(const char *dir, const char *token)
{
    cr_assert(mkdir(dir, 0700) == 0, "mkdir %s: %s", dir, strerror(errno));
    kf_write(kf_keep(rg_asprintf("%s/token", dir)), token);
    kf_write(kf_keep(rg_asprintf("%s/ca.crt", dir)), kf_read(kf_file("ca.crt")));
    kf_write(kf_keep(rg_asprintf("%s/namespace", dir)), KF_NS);
}

/* ---- names and time ---- */

char *kf_new_tag(void)
{
    unsigned char b[6];
    char *tag = kf_keep(rg_malloc(2 * sizeof b + 1));

    cr_assert_eq(getrandom(b, sizeof b, 0), (ssize_t)sizeof b, "getrandom: %s", strerror(errno));
    for (size_t i = 0; i < sizeof b; i++)
        snprintf(tag + 2 * i, 3, "%02x", b[i]);
    return tag;
}

void kf_name(char *buf, size_t n, const char *prefix)
{
    int len = snprintf(buf, n, "%s-%s", prefix, kf_new_tag());

    cr_assert(len > 0 && (size_t)len < n, "the name %s-... does not fit in %zu bytes", prefix, n);
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
