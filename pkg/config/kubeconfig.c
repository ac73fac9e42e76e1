/* Reading a kubeconfig with libyaml's document API: current-context, then the named
 * context, cluster and user, as kubectl resolves them for one file. */
#include "config/kubeconfig.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

#include "config/yamlnode.h"
#include "file/file.h"
#include "mem/mem.h"
#include "log/log.h"

/* Kubeconfigs with many clusters and embedded certificates run to a few hundred KiB. */
#define MAX_KUBECONFIG_BYTES (4 * 1024 * 1024)

struct reader {
    const char *path;
    yaml_document_t *doc;
};

RG_PRINTF(3, 4)
static void kc_error(struct rg_err *err, const struct reader *r, const char *fmt, ...)
{
    char what[384];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    rg_err_set(err, RG_ECONFIG, "%s: %s", r->path, what);
}

/* map[key], NULL when map is no mapping or has no such key. */
static yaml_node_t *get(const struct reader *r, const yaml_node_t *map, const char *key)
{
    if (!map || map->type != YAML_MAPPING_NODE)
        return NULL;
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = yaml_document_get_node(r->doc, p->key);
        if (k && k->type == YAML_SCALAR_NODE &&
            strcmp((const char *)k->data.scalar.value, key) == 0)
            return yaml_document_get_node(r->doc, p->value);
    }
    return NULL;
}

/* map[key] as a string: *out NULL when absent or null. what names the place for errors. */
static int get_string(const struct reader *r, const yaml_node_t *map, const char *key,
                      const char *what, const char **out, struct rg_err *err)
{
    const yaml_node_t *n = get(r, map, key);

    *out = NULL;
    if (rg_config_yaml_null(n))
        return 0;
    if (n->type != YAML_SCALAR_NODE) {
        kc_error(err, r, "%s: %s: expected a single value (line %zu)", what, key,
                 n->start_mark.line + 1);
        return -1;
    }
    if (strlen((const char *)n->data.scalar.value) != n->data.scalar.length) {
        kc_error(err, r, "%s: %s: a value must not contain a NUL character", what, key);
        return -1;
    }
    *out = (const char *)n->data.scalar.value;
    return 0;
}

/* The entry of list (contexts, clusters, users) called name: its inner mapping (item[key]). */
static const yaml_node_t *find_named(const struct reader *r, const yaml_node_t *root,
                                     const char *list, const char *key, const char *name)
{
    const yaml_node_t *seq = get(r, root, list);

    if (!seq || seq->type != YAML_SEQUENCE_NODE)
        return NULL;
    for (yaml_node_item_t *i = seq->data.sequence.items.start; i < seq->data.sequence.items.top;
         i++) {
        const yaml_node_t *item = yaml_document_get_node(r->doc, *i);
        const yaml_node_t *n = get(r, item, "name");
        if (n && n->type == YAML_SCALAR_NODE &&
            strcmp((const char *)n->data.scalar.value, name) == 0) {
            const yaml_node_t *inner = get(r, item, key);
            return inner && inner->type == YAML_MAPPING_NODE ? inner : NULL;
        }
    }
    return NULL;
}

/* A path in the kubeconfig is relative to the kubeconfig's directory, as kubectl reads it. */
static char *resolve(const char *kubeconfig, const char *p)
{
    const char *slash = strrchr(kubeconfig, '/');

    if (p[0] == '/' || !slash)
        return rg_strdup(p);
    return rg_asprintf("%.*s/%s", (int)(slash - kubeconfig), kubeconfig, p);
}

/* The value of a base64 digit, or -1. */
static int b64_digit(unsigned char c)
{
    static const char digits[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const char *p = c ? strchr(digits, c) : NULL;
    return p ? (int)(p - digits) : -1;
}

/* Base64 (whitespace ignored, '=' padding at the end only) into a NUL-terminated PEM text;
 * NULL when it is not base64 or not PEM. Decoded here rather than with OpenSSL, which
 * pkg/source owns (one owner per library). The message never shows the data: a key is a
 * secret. */
static char *decode_pem(const char *b64)
{
    size_t n = strlen(b64), got = 0, quads = 0, pad = 0;
    unsigned char *out = rg_malloc(n / 4 * 3 + 4);
    uint32_t acc = 0;
    int k = 0;

    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)b64[i];
        int d = b64_digit(c);
        if (isspace(c))
            continue;
        if (c == '=' && k >= 2) {
            pad++;
            d = 0;
        } else if (d < 0 || pad) {
            goto bad;
        }
        acc = acc << 6 | (uint32_t)d;
        if (++k < 4)
            continue;
        out[got++] = (unsigned char)(acc >> 16);
        out[got++] = (unsigned char)(acc >> 8);
        out[got++] = (unsigned char)acc;
        acc = 0;
        k = 0;
        quads++;
    }
    if (k != 0 || quads == 0 || pad > 2)
        goto bad;
    got -= pad;
    out[got] = '\0';
    if (strlen((char *)out) != got || !strstr((char *)out, "-----BEGIN "))
        goto bad;
    return (char *)out;
bad:
    explicit_bzero(out, n / 4 * 3 + 4);
    free(out);
    return NULL;
}

/* One of key (a path) or key-data (base64 PEM); data wins, as in kubectl. */
static int file_or_data(const struct reader *r, const yaml_node_t *map, const char *what,
                        const char *key, char **file, char **pem, struct rg_err *err)
{
    char data_key[64];
    const char *f, *d;

    snprintf(data_key, sizeof(data_key), "%s-data", key);
    if (get_string(r, map, key, what, &f, err) < 0 ||
        get_string(r, map, data_key, what, &d, err) < 0)
        return -1;
    if (d && *d) {
        *pem = decode_pem(d);
        if (!*pem) {
            kc_error(err, r, "%s: %s: not base64-encoded PEM", what, data_key);
            return -1;
        }
    } else if (f && *f) {
        *file = resolve(r->path, f);
    }
    return 0;
}

static int read_cluster(const struct reader *r, const yaml_node_t *root, const char *name,
                        struct rg_kubeconfig *kc, struct rg_err *err)
{
    const yaml_node_t *c = find_named(r, root, "clusters", "cluster", name);
    const char *server, *insecure;
    char what[160];

    snprintf(what, sizeof(what), "cluster \"%.100s\"", name);
    if (!c) {
        kc_error(err, r, "%s: no such cluster", what);
        return -1;
    }
    if (get_string(r, c, "insecure-skip-tls-verify", what, &insecure, err) < 0)
        return -1;
    if (insecure && strcmp(insecure, "false") != 0) {
        kc_error(err, r,
                 "%s: insecure-skip-tls-verify is refused: rollgate always verifies the API "
                 "server's certificate; give certificate-authority or certificate-authority-data",
                 what);
        return -1;
    }
    if (get_string(r, c, "server", what, &server, err) < 0)
        return -1;
    if (!server || !*server) {
        kc_error(err, r, "%s: no server", what);
        return -1;
    }
    if (strncmp(server, "https://", 8) != 0) {
        kc_error(err, r, "%s: server \"%.100s\": not an https:// URL", what, server);
        return -1;
    }
    kc->server = rg_strdup(server);
    if (file_or_data(r, c, what, "certificate-authority", &kc->ca_file, &kc->ca_pem, err) < 0)
        return -1;
    if (!kc->ca_file && !kc->ca_pem) {
        kc_error(err, r,
                 "%s: no certificate-authority or certificate-authority-data (TLS is always "
                 "verified against the cluster's CA)",
                 what);
        return -1;
    }
    return 0;
}

static int read_user(const struct reader *r, const yaml_node_t *root, const char *name,
                     struct rg_kubeconfig *kc, struct rg_err *err)
{
    static const char *const unsupported[] = {"exec", "auth-provider", "username", "password"};
    const yaml_node_t *u = find_named(r, root, "users", "user", name);
    const char *token, *token_file;
    char what[160];

    snprintf(what, sizeof(what), "user \"%.100s\"", name);
    if (!u) {
        kc_error(err, r, "%s: no such user", what);
        return -1;
    }
    for (size_t i = 0; i < sizeof(unsupported) / sizeof(unsupported[0]); i++) {
        if (!rg_config_yaml_null(get(r, u, unsupported[i]))) {
            kc_error(err, r,
                     "%s: %s is not supported; use a token, tokenFile or a client certificate",
                     what, unsupported[i]);
            return -1;
        }
    }
    if (get_string(r, u, "token", what, &token, err) < 0 ||
        get_string(r, u, "tokenFile", what, &token_file, err) < 0)
        return -1;
    if (token && *token) {
        kc->token = rg_strdup(token);
        rg_log_redact(kc->token);
    } else if (token_file && *token_file) {
        kc->token_file = resolve(r->path, token_file);
    }
    if (file_or_data(r, u, what, "client-certificate", &kc->cert_file, &kc->cert_pem, err) < 0 ||
        file_or_data(r, u, what, "client-key", &kc->key_file, &kc->key_pem, err) < 0)
        return -1;
    if (!kc->cert_file && !kc->cert_pem && (kc->key_file || kc->key_pem)) {
        kc_error(err, r, "%s: client-key without client-certificate", what);
        return -1;
    }
    if ((kc->cert_file || kc->cert_pem) && !kc->key_file && !kc->key_pem) {
        kc_error(err, r, "%s: client-certificate without client-key", what);
        return -1;
    }
    if (!kc->token && !kc->token_file && !kc->cert_file && !kc->cert_pem) {
        kc_error(err, r, "%s: no token, tokenFile or client-certificate", what);
        return -1;
    }
    return 0;
}

int rg_config_read_kubeconfig(const char *path, struct rg_kubeconfig *kc, struct rg_err *err)
{
    yaml_parser_t parser;
    yaml_document_t doc;
    struct reader r = {path, &doc};
    const yaml_node_t *root, *ctx;
    const char *current, *cluster, *user, *ns;
    char *text = NULL;
    size_t len = 0;
    bool have_doc = false;
    int rc = -1;

    memset(kc, 0, sizeof(*kc));
    yaml_parser_initialize(&parser);
    if (rg_file_read(path, MAX_KUBECONFIG_BYTES, 0, &text, &len, RG_ECONFIG, err) != 0)
        goto out;
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    if (!yaml_parser_load(&parser, &doc)) {
        rg_err_set(err, RG_ECONFIG, "%s:%zu:%zu: invalid YAML: %s", path,
                   parser.problem_mark.line + 1, parser.problem_mark.column + 1,
                   parser.problem ? parser.problem : "syntax error");
        goto out;
    }
    have_doc = true;
    root = yaml_document_get_root_node(&doc);
    if (!root || root->type != YAML_MAPPING_NODE) {
        kc_error(err, &r, "not a kubeconfig (the top level must be a mapping)");
        goto out;
    }
    if (get_string(&r, root, "current-context", "kubeconfig", &current, err) < 0)
        goto out;
    if (!current || !*current) {
        kc_error(err, &r, "no current-context (set one with kubectl config use-context)");
        goto out;
    }
    kc->context = rg_strdup(current);
    ctx = find_named(&r, root, "contexts", "context", current);
    if (!ctx) {
        kc_error(err, &r, "current-context \"%.100s\": no such context", current);
        goto out;
    }
    if (get_string(&r, ctx, "cluster", "context", &cluster, err) < 0 ||
        get_string(&r, ctx, "user", "context", &user, err) < 0 ||
        get_string(&r, ctx, "namespace", "context", &ns, err) < 0)
        goto out;
    if (!cluster || !*cluster || !user || !*user) {
        kc_error(err, &r, "context \"%.100s\": names no %s", current,
                 !cluster || !*cluster ? "cluster" : "user");
        goto out;
    }
    kc->namespace_ = rg_strdup(ns ? ns : "");
    if (read_cluster(&r, root, cluster, kc, err) < 0 || read_user(&r, root, user, kc, err) < 0)
        goto out;
    rc = 0;
out:
    if (have_doc) {
        /* The document holds the secrets too: wipe its scalars before freeing. */
        for (yaml_node_t *n = doc.nodes.start; n < doc.nodes.top; n++)
            if (n->type == YAML_SCALAR_NODE)
                explicit_bzero(n->data.scalar.value, n->data.scalar.length);
        yaml_document_delete(&doc);
    }
    yaml_parser_delete(&parser);
    if (text) {
        explicit_bzero(text, len);
        free(text);
    }
    if (rc != 0)
        rg_config_kubeconfig_free(kc);
    return rc;
}

static void free_secret(char *s)
{
    if (s) {
        explicit_bzero(s, strlen(s));
        free(s);
    }
}

void rg_config_kubeconfig_free(struct rg_kubeconfig *kc)
{
    if (!kc)
        return;
    free(kc->context);
    free(kc->server);
    free(kc->namespace_);
    free(kc->ca_file);
    free(kc->ca_pem);
    free_secret(kc->token);
    free(kc->token_file);
    free(kc->cert_file);
    free(kc->cert_pem);
    free(kc->key_file);
    free_secret(kc->key_pem);
    memset(kc, 0, sizeof(*kc));
}
