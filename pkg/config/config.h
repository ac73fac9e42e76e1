/* rollgate's configuration: defaults < YAML file < ROLLGATE_* environment < flags, every
 * key defined once in a table (config.c), then validated as a whole. */
#ifndef RG_CONFIG_H
#define RG_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err/err.h"
#include "log/log.h"

/* Read when neither --config nor ROLLGATE_CONFIG names a file, and only when present. */
#define RG_CONFIG_DEFAULT_FILE "/etc/rollgate/config.yaml"

/* The longest lease identity: what a Lease's holderIdentity holds here (struct
 * rg_lease_record's holder, checked in cmd/rollgate), so the identity is never cut. */
#define RG_CONFIG_IDENTITY_MAX 253

/* migrations.target "latest" */
#define RG_TARGET_LATEST INT64_MAX

enum rg_lease_mode { RG_LEASE_AUTO, RG_LEASE_KUBERNETES, RG_LEASE_NONE };
enum rg_on_newer { RG_ON_NEWER_WARN, RG_ON_NEWER_FAIL };
/* migrations.phase: which migrations a run applies (rollgate:phase=post marks the
 * post-deploy ones). The engine takes it as it is. */
enum rg_phase { RG_PHASE_ALL, RG_PHASE_PRE, RG_PHASE_POST };
/* "all", "pre" or "post": as migrations.phase spells it. */
const char *rg_config_phase_name(enum rg_phase phase);
/* migrations.lint: what migrate and validate do with lint findings */
enum rg_lint_mode { RG_LINT_OFF, RG_LINT_WARN, RG_LINT_ENFORCE };

/* Durations are milliseconds; 0 means "no limit" where a key allows it. */
struct rg_config {
    struct {
        char *url;           /* secret; NULL: libpq's PG* variables apply */
        char *direct_url;    /* secret; NULL: no-transaction migrations use url too */
        char *url_file;      /* read into url at load */
        char *password_file; /* read into password at load */
        char *password;      /* secret; from password_file, never from the YAML or env */
        char *schema;
        int64_t connect_timeout_ms;
        int64_t connect_retry_ms;
        int64_t lock_timeout_ms;
        int64_t lock_retries;
        int64_t statement_timeout_ms;
    } database;
    struct {
        char *dir;
        int64_t target; /* RG_TARGET_LATEST or a version >= 0 */
        bool auto_migrate;
        enum rg_on_newer on_newer_schema;
        bool allow_out_of_order;
        enum rg_phase phase;
        enum rg_lint_mode lint;
    } migrations;
    struct {
        enum rg_lease_mode mode;
        char *name;
        char *namespace_; /* "": the service account's namespace */
        char *identity;   /* never empty after load: POD_NAME, else the host name; UTF-8 without
                           * control characters, at most RG_CONFIG_IDENTITY_MAX bytes */
        char *service_account_dir;
        int64_t duration_ms;
        int64_t renew_deadline_ms;
        int64_t retry_period_ms;
        int64_t wait_timeout_ms;
    } lease;
    struct {
        enum rg_log_format format;
        enum rg_log_level level;
        int64_t progress_interval_ms; /* 0: no progress reports */
    } log;
    int64_t timeout_ms;
    char *termination_log;
    char *config_file; /* the file that was read, or NULL */
    /* No keys, but what the environment says about where this process runs, read at load
     * like the rest so that nothing else reads the environment. NULL when unset or empty. */
    struct {
        char *service_host; /* KUBERNETES_SERVICE_HOST: set in every pod of a cluster */
        char *service_port; /* KUBERNETES_SERVICE_PORT */
        /* Outside a cluster: the first path in KUBECONFIG (kubectl would merge a list;
         * rollgate reads one file), else $HOME/.kube/config. */
        char *kubeconfig;
        char *pod_name; /* POD_NAME and POD_NAMESPACE (the downward API): Events go there */
        char *pod_namespace;
    } env;
};

/* Whether runs coordinate through a Lease: lease.mode kubernetes, or auto in a cluster
 * (KUBERNETES_SERVICE_HOST set and the service-account token readable). */
bool rg_config_wants_lease(const struct rg_config *cfg);

/* terminationLog before the configuration has loaded (a usage or configuration error): the
 * environment's ROLLGATE_TERMINATION_LOG, the one source that can be trusted then, else the
 * default. Borrowed from env or static. */
const char *rg_config_early_termination_log(char *const *env);

/* A value given on the command line: key is the YAML path ("migrations.dir"), flag the
 * flag's spelling for error messages ("--dir"). */
struct rg_config_flag {
    const char *key;
    const char *flag;
    const char *value;
};

/* Fills cfg from all sources. file: --config's value or NULL (then ROLLGATE_CONFIG, then
 * /etc/rollgate/config.yaml when present). env: a NULL-terminated environment (environ
 * in production, a fixed array in tests; getenv is never used). cfg need not be
 * initialised: it is overwritten, not freed first. Unknown ROLLGATE_* variables are logged
 * (RG_WARN), not refused, except Kubernetes service variables, which are ignored.
 * On error cfg is freed and err says where:
 * "config.yaml:12:3: lease.duration: ..." or "env ROLLGATE_LEASE_DURATION: ..." or
 * "flag --timeout: ...", with code RG_ECONFIG (RG_EINTERNAL for a flag whose key is not
 * in the table: a bug in the command-line parser). */
int rg_config_load(struct rg_config *cfg, const char *file, char *const *env,
                   const struct rg_config_flag *flags, size_t nflags, struct rg_err *err) RG_WUR;
void rg_config_free(struct rg_config *cfg);

/* Registers for redaction (rg_log_redact) every secret the environment and the flags carry:
 * the passwords of the connection strings, the contents of the files they name as the URL and
 * password files, and PGPASSWORD. rg_config_load does this (and the same for the YAML file's
 * values) before it parses anything; a caller that stops before loading, on a usage error,
 * calls it so that its message hides them too. */
void rg_config_redact(char *const *env, const struct rg_config_flag *flags, size_t nflags);

#endif
