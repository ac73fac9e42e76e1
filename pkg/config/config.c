/* Every key is defined once, in keys[] below. Defaults, the YAML file (yaml.c), the
 * environment and flags all go through rg_config_set(), so a default can never be a value
 * the parser would reject, and every error names the source that gave the bad value. */
#include "config/config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "config/loader.h"
#include "duration/duration.h"
#include "file/file.h"
#include "mem/mem.h"

#define SECONDS(n) ((int64_t)(n)*1000)
#define MINUTES(n) SECONDS((n)*60)
#define HOURS(n) MINUTES((n)*60)

/* Real files are a few hundred bytes; the caps stop a wrong path (a log, a device) from
 * being read whole. */
#define CONFIG_FILE_CAP (1024 * 1024)
#define SECRET_FILE_CAP (64 * 1024)
#define CONFIG_ENV "ROLLGATE_CONFIG"

/* Values are quoted in messages at most this long: enough to recognise, never a wall. */
#define SHOWN_MAX 80

/* T_SECRET: a value never shown (the key's redact registers what in it is secret). */
enum type { T_STRING, T_SECRET, T_DURATION, T_INT, T_BOOL, T_ENUM, T_TARGET };

struct key {
    const char *path; /* the YAML path; flags name keys by it too */
    const char *env;  /* ROLLGATE_ + the path in upper snake case */
    enum type type;
    size_t off;
    const char *def;              /* NULL: no default, and an empty value unsets the key */
    int64_t min, max;             /* T_DURATION (ms), T_INT, T_TARGET */
    const char *const *names;     /* T_ENUM: NULL-terminated, index = the enum's value */
    bool (*valid)(const char *s); /* T_STRING */
    const char *accepts;          /* T_STRING: what valid() lets through */
    /* A second environment name. It is weaker than env: when both are set, env wins, so the
     * documented long name always means what it says. */
    const char *alias;
    /* Registers the secret the value is (T_SECRET) or names a file of (a path), as soon as
     * the value is known, before any value is parsed (rg_config_redact_key). */
    void (*redact)(const char *secret);
};

/* Enum fields are written through an int. */
_Static_assert(sizeof(enum rg_lease_mode) == sizeof(int), "enum size");
_Static_assert(sizeof(enum rg_on_newer) == sizeof(int), "enum size");
_Static_assert(sizeof(enum rg_phase) == sizeof(int), "enum size");
_Static_assert(sizeof(enum rg_lint_mode) == sizeof(int), "enum size");
_Static_assert(sizeof(enum rg_log_format) == sizeof(int), "enum size");
_Static_assert(sizeof(enum rg_log_level) == sizeof(int), "enum size");

static const char *const on_newer_names[] = {
    [RG_ON_NEWER_WARN] = "warn", [RG_ON_NEWER_FAIL] = "fail", NULL};
static const char *const phases[] = {
    [RG_PHASE_ALL] = "all", [RG_PHASE_PRE] = "pre", [RG_PHASE_POST] = "post", NULL};
const char *rg_config_phase_name(enum rg_phase phase)
{
    return phases[phase];
}

static const char *const lint_modes[] = {
    [RG_LINT_OFF] = "off", [RG_LINT_WARN] = "warn", [RG_LINT_ENFORCE] = "enforce", NULL};
static const char *const lease_modes[] = {
    [RG_LEASE_AUTO] = "auto", [RG_LEASE_KUBERNETES] = "kubernetes", [RG_LEASE_NONE] = "none", NULL};
static const char *const log_formats[] = {[RG_LOG_FORMAT_AUTO] = "auto",
                                          [RG_LOG_FORMAT_JSON] = "json",
                                          [RG_LOG_FORMAT_TEXT] = "text",
                                          NULL};
static const char *const log_levels[] = {[RG_LOG_DEBUG] = "debug",
                                         [RG_LOG_INFO] = "info",
                                         [RG_LOG_WARN] = "warn",
                                         [RG_LOG_ERROR] = "error",
                                         NULL};

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_lower_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || is_digit(c);
}

/* PostgreSQL's unquoted identifier, so the schema can be written into SQL without quoting
 * surprises (NAMEDATALEN - 1 bytes). */
static bool is_identifier(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > 63 || is_digit(*s))
        return false;
    for (; *s; s++)
        if (!is_lower_alnum(*s) && !(*s >= 'A' && *s <= 'Z') && *s != '_')
            return false;
    return true;
}

/* One DNS-1123 label of n bytes: [a-z0-9]([-a-z0-9]*[a-z0-9])? */
static bool is_label(const char *s, size_t n)
{
    if (n == 0 || !is_lower_alnum(s[0]) || !is_lower_alnum(s[n - 1]))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!is_lower_alnum(s[i]) && s[i] != '-')
            return false;
    return true;
}

/* What the API server accepts as a Lease's name (IsDNS1123Subdomain). */
static bool is_subdomain(const char *s)
{
    if (strlen(s) > 253)
        return false;
    for (;;) {
        size_t n = strcspn(s, ".");
        if (!is_label(s, n))
            return false;
        if (!s[n])
            return true;
        s += n + 1;
    }
}

static bool is_namespace(const char *s)
{
    return !*s || (strlen(s) <= 63 && is_label(s, strlen(s)));
}

/* What a Lease's holderIdentity carries and reads back equal, and the history's applied_by
 * stores: UTF-8 text without control characters, never cut. Empty means the default. */
static bool is_identity(const char *s)
{
    size_t n = strlen(s), u;

    if (n > RG_CONFIG_IDENTITY_MAX)
        return false;
    for (size_t i = 0; i < n; i += u) {
        u = rg_log_utf8_len(s + i, n - i);
        if (u == 0 || (u == 1 && ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)))
            return false;
    }
    return true;
}

#define IDENTITY_ACCEPTS                                                                           \
    "UTF-8 text without control characters, at most 253 bytes (the Lease's holderIdentity)"
_Static_assert(RG_CONFIG_IDENTITY_MAX == 253, "IDENTITY_ACCEPTS names the limit");

static bool is_nonempty(const char *s)
{
    return *s != '\0';
}

#define AT(field) offsetof(struct rg_config, field)

/* The DESIGN.md "Configuration" keys, grouped by section: known_names() in yaml.c relies
 * on it. */
static const struct key keys[] = {
    {"database.url", "ROLLGATE_DATABASE_URL", T_SECRET, AT(database.url), .def = NULL,
     .redact = rg_log_redact_conninfo},
    /* Prisma's name: the connection that bypasses a transaction pooler, for the session
     * settings no-transaction migrations need. */
    {"database.directUrl", "ROLLGATE_DATABASE_DIRECT_URL", T_SECRET, AT(database.direct_url),
     .def = NULL, .redact = rg_log_redact_conninfo},
    {"database.urlFile", "ROLLGATE_DATABASE_URL_FILE", T_STRING, AT(database.url_file), .def = NULL,
     .redact = rg_log_redact_conninfo},
    {"database.passwordFile", "ROLLGATE_DATABASE_PASSWORD_FILE", T_STRING,
     AT(database.password_file), .def = NULL, .redact = rg_log_redact},
    {"database.schema", "ROLLGATE_DATABASE_SCHEMA", T_STRING, AT(database.schema), "public",
     .valid = is_identifier,
     .accepts = "letters, digits and _, not starting with a digit, at most 63 bytes"},
    {"database.connectTimeout", "ROLLGATE_DATABASE_CONNECT_TIMEOUT", T_DURATION,
     AT(database.connect_timeout_ms), "10s", .min = SECONDS(1), .max = MINUTES(5)},
    {"database.connectRetry", "ROLLGATE_DATABASE_CONNECT_RETRY", T_DURATION,
     AT(database.connect_retry_ms), "60s", .min = 0, .max = HOURS(1)},
    {"database.lockTimeout", "ROLLGATE_DATABASE_LOCK_TIMEOUT", T_DURATION,
     AT(database.lock_timeout_ms), "5s", .min = 0, .max = HOURS(1)},
    {"database.lockRetries", "ROLLGATE_DATABASE_LOCK_RETRIES", T_INT, AT(database.lock_retries),
     "5", .min = 0, .max = 100},
    {"database.statementTimeout", "ROLLGATE_DATABASE_STATEMENT_TIMEOUT", T_DURATION,
     AT(database.statement_timeout_ms), "0", .min = 0, .max = HOURS(24)},
    {"migrations.dir", "ROLLGATE_MIGRATIONS_DIR", T_STRING, AT(migrations.dir), "/migrations",
     .valid = is_nonempty, .accepts = "a directory path"},
    /* INT64_MAX is RG_TARGET_LATEST: no version may alias it. */
    {"migrations.target", "ROLLGATE_MIGRATIONS_TARGET", T_TARGET, AT(migrations.target), "latest",
     .min = 0, .max = INT64_MAX - 1},
    {"migrations.autoMigrate", "ROLLGATE_MIGRATIONS_AUTO_MIGRATE", T_BOOL,
     AT(migrations.auto_migrate), "true", .alias = "ROLLGATE_AUTO_MIGRATE"},
    {"migrations.onNewerSchema", "ROLLGATE_MIGRATIONS_ON_NEWER_SCHEMA", T_ENUM,
     AT(migrations.on_newer_schema), "warn", .names = on_newer_names},
    {"migrations.allowOutOfOrder", "ROLLGATE_MIGRATIONS_ALLOW_OUT_OF_ORDER", T_BOOL,
     AT(migrations.allow_out_of_order), "false", .names = NULL},
    {"migrations.phase", "ROLLGATE_MIGRATIONS_PHASE", T_ENUM, AT(migrations.phase), "all",
     .names = phases},
    {"migrations.lint", "ROLLGATE_MIGRATIONS_LINT", T_ENUM, AT(migrations.lint), "warn",
     .names = lint_modes},
    {"lease.mode", "ROLLGATE_LEASE_MODE", T_ENUM, AT(lease.mode), "auto", .names = lease_modes},
    {"lease.name", "ROLLGATE_LEASE_NAME", T_STRING, AT(lease.name), "rollgate",
     .valid = is_subdomain,
     .accepts = "a DNS-1123 subdomain: lower-case letters, digits, '-' and '.', at most 253 bytes"},
    {"lease.namespace", "ROLLGATE_LEASE_NAMESPACE", T_STRING, AT(lease.namespace_), "",
     .valid = is_namespace,
     .accepts = "empty for the service account's, or a DNS-1123 label: lower-case letters, "
                "digits and '-', at most 63 bytes"},
    {"lease.identity", "ROLLGATE_LEASE_IDENTITY", T_STRING, AT(lease.identity), "",
     .valid = is_identity, .accepts = IDENTITY_ACCEPTS},
    /* client-go's defaults; the order between them is checked once all sources are in. */
    {"lease.duration", "ROLLGATE_LEASE_DURATION", T_DURATION, AT(lease.duration_ms), "15s",
     .min = 1, .max = HOURS(1)},
    {"lease.renewDeadline", "ROLLGATE_LEASE_RENEW_DEADLINE", T_DURATION,
     AT(lease.renew_deadline_ms), "10s", .min = 1, .max = HOURS(1)},
    {"lease.retryPeriod", "ROLLGATE_LEASE_RETRY_PERIOD", T_DURATION, AT(lease.retry_period_ms),
     "2s", .min = 1, .max = HOURS(1)},
    /* Where Kubernetes mounts the token, CA and namespace; tests point it elsewhere. */
    {"lease.serviceAccountDir", "ROLLGATE_LEASE_SERVICE_ACCOUNT_DIR", T_STRING,
     AT(lease.service_account_dir), "/var/run/secrets/kubernetes.io/serviceaccount",
     .valid = is_nonempty, .accepts = "a directory path"},
    /* No "wait forever": a stuck init container is worse than a retryable exit. */
    {"lease.waitTimeout", "ROLLGATE_LEASE_WAIT_TIMEOUT", T_DURATION, AT(lease.wait_timeout_ms),
     "10m", .min = SECONDS(1), .max = HOURS(24)},
    {"log.format", "ROLLGATE_LOG_FORMAT", T_ENUM, AT(log.format), "auto", .names = log_formats},
    {"log.level", "ROLLGATE_LOG_LEVEL", T_ENUM, AT(log.level), "info", .names = log_levels},
    {"log.progressInterval", "ROLLGATE_LOG_PROGRESS_INTERVAL", T_DURATION,
     AT(log.progress_interval_ms), "10s", .min = 0, .max = HOURS(1)},
    {"timeout", "ROLLGATE_TIMEOUT", T_DURATION, AT(timeout_ms), "0", .min = 0, .max = HOURS(24)},
    {"terminationLog", "ROLLGATE_TERMINATION_LOG", T_STRING, AT(termination_log),
     "/dev/termination-log", .valid = NULL},
};

#define NKEYS (sizeof(keys) / sizeof(keys[0]))

int rg_config_find_key(const char *path)
{
    for (size_t k = 0; k < NKEYS; k++)
        if (strcmp(keys[k].path, path) == 0)
            return (int)k;
    return -1;
}

const char *rg_config_key_path(size_t k)
{
    return k < NKEYS ? keys[k].path : NULL;
}

/* "config.yaml:3:5: lease.duration", "env ROLLGATE_LEASE_DURATION", "flag --timeout",
 * "default lease.duration"; with_key false drops the key where the source alone is
 * wanted (as a parenthetical in another key's message). */
static void describe(const struct loader *st, size_t k, const struct origin *o, bool with_key,
                     char *buf, size_t n)
{
    const char *key = with_key ? keys[k].path : "";

    if (o->src == SRC_FILE)
        snprintf(buf, n, "%s:%zu:%zu%s%s", st->file, o->line, o->col, with_key ? ": " : "", key);
    else if (o->src == SRC_ENV || o->src == SRC_FLAG)
        snprintf(buf, n, "%s %s", o->src == SRC_ENV ? "env" : "flag", o->name);
    else
        snprintf(buf, n, "default%s%s", with_key ? " " : "", key);
}

static void join_names(const char *const *names, char *buf, size_t n)
{
    size_t o = 0;

    buf[0] = '\0';
    for (size_t i = 0; names[i] && o < n; i++) {
        const char *sep = i == 0 ? "" : names[i + 1] ? ", " : " or ";
        o += (size_t)snprintf(buf + o, n - o, "%s%s", sep, names[i]);
    }
}

static int parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};

    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        if (strcasecmp(s, yes[i]) == 0 || strcasecmp(s, no[i]) == 0) {
            *out = strcasecmp(s, yes[i]) == 0;
            return 0;
        }
    }
    return -1;
}

/* Whole string, base 10, no leading space or '+'. Overflow saturates so that the caller's
 * range check reports it as out of range. */
static int parse_int(const char *s, int64_t *out)
{
    char *end;
    long long v;

    if (!is_digit(s[0]) && !(s[0] == '-' && is_digit(s[1])))
        return -1;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (*end || (errno && errno != ERANGE))
        return -1;
    *out = v;
    return 0;
}

static void free_string(const struct key *key, char **field)
{
    /* A secret should not outlive its use in freed heap memory either. */
    if (*field && key->type == T_SECRET)
        explicit_bzero(*field, strlen(*field));
    free(*field);
    *field = NULL;
}

/* The one setter. Messages never show a T_SECRET value. */
int rg_config_set(struct loader *st, size_t k, const char *value, const struct origin *o,
                  struct rg_err *err)
{
    const struct key *key = &keys[k];
    void *field = (char *)st->cfg + key->off;
    char lo[32], hi[32], list[128], where[256], shown[SHOWN_MAX + 1];
    int64_t v = 0;
    bool b = false;
    int rc = -1;

    /* Redacted whole, then cut: a URL pasted into the wrong key shows no password. */
    rg_log_scrub(shown, sizeof(shown), value);
    switch (key->type) {
    case T_STRING:
    case T_SECRET:
        if (key->type == T_STRING && key->valid && !key->valid(value)) {
            rg_err_set(err, RG_ECONFIG, "invalid value \"%s\" (use %s)", shown, key->accepts);
            goto out;
        }
        free_string(key, field);
        if (key->def || *value)
            *(char **)field = rg_strdup(value);
        break;
    case T_DURATION:
        if (rg_duration_parse(value, &v) < 0) {
            rg_err_set(err, RG_ECONFIG, "invalid duration \"%s\" (use e.g. 500ms, 30s, 5m, 1h30m)",
                       shown);
            goto out;
        }
        if (v < key->min || v > key->max) {
            rg_duration_format(key->min, lo, sizeof(lo));
            rg_duration_format(key->max, hi, sizeof(hi));
            rg_err_set(err, RG_ECONFIG, "duration \"%s\" is out of range (use %s to %s)", shown, lo,
                       hi);
            goto out;
        }
        *(int64_t *)field = v;
        break;
    case T_INT:
        if (parse_int(value, &v) < 0 || v < key->min || v > key->max) {
            rg_err_set(err, RG_ECONFIG, "invalid integer \"%s\" (use %lld to %lld)", shown,
                       (long long)key->min, (long long)key->max);
            goto out;
        }
        *(int64_t *)field = v;
        break;
    case T_TARGET:
        if (strcasecmp(value, "latest") == 0)
            v = RG_TARGET_LATEST;
        else if (parse_int(value, &v) < 0 || v < key->min || v > key->max) {
            rg_err_set(err, RG_ECONFIG,
                       "invalid target \"%s\" (use latest or a version number >= 0)", shown);
            goto out;
        }
        *(int64_t *)field = v;
        break;
    case T_BOOL:
        if (parse_bool(value, &b) < 0) {
            rg_err_set(err, RG_ECONFIG,
                       "invalid boolean \"%s\" (use true/false, yes/no, on/off or 1/0)", shown);
            goto out;
        }
        *(bool *)field = b;
        break;
    case T_ENUM:
        for (v = 0; key->names[v] && strcasecmp(value, key->names[v]) != 0; v++)
            ;
        if (!key->names[v]) {
            join_names(key->names, list, sizeof(list));
            rg_err_set(err, RG_ECONFIG, "invalid value \"%s\" (use %s)", shown, list);
            goto out;
        }
        *(int *)field = (int)v;
        break;
    }
    st->from[k] = *o;
    rc = 0;
out:
    if (rc < 0) {
        describe(st, k, o, true, where, sizeof(where));
        rg_err_prefix(err, "%s", where);
    }
    return rc;
}

static const char *env_get(char *const *env, const char *name)
{
    size_t n = strlen(name);

    for (; env && *env; env++)
        if (strncmp(*env, name, n) == 0 && (*env)[n] == '=')
            return *env + n + 1;
    return NULL;
}

/* Kubernetes puts <SERVICE>_SERVICE_HOST, <SERVICE>_PORT, <SERVICE>_PORT_5432_TCP_ADDR and
 * the like into every pod for every Service in the namespace, so a Service named "rollgate"
 * or "rollgate-db" brings ROLLGATE_* names that are not ours and must not even warn. */
static bool is_service_var(const char *name)
{
    const char *p = name;
    size_t n = strlen(name);

    if (strstr(name, "_SERVICE_") || strncmp(name, "ROLLGATE_PORT", 13) == 0 ||
        (n >= 5 && strcmp(name + n - 5, "_PORT") == 0))
        return true;
    while ((p = strstr(p, "_PORT_")) != NULL) {
        p += 6;
        if (is_digit(*p))
            return true;
    }
    return false;
}

static bool is_known_env(const char *name)
{
    if (strcmp(name, CONFIG_ENV) == 0)
        return true;
    for (size_t k = 0; k < NKEYS; k++)
        if (strcmp(name, keys[k].env) == 0 || (keys[k].alias && strcmp(name, keys[k].alias) == 0))
            return true;
    return false;
}

/* A secret file's text without one trailing newline (and the CR before it). */
static int read_secret_file(const char *path, char **text, size_t *len, struct rg_err *err)
{
    if (rg_file_read(path, SECRET_FILE_CAP, 0, text, len, RG_ECONFIG, err) < 0)
        return -1;
    if (*len > 0 && (*text)[*len - 1] == '\n')
        (*len)--;
    if (*len > 0 && (*text)[*len - 1] == '\r')
        (*len)--;
    (*text)[*len] = '\0';
    return 0;
}

static void free_secret(char *text, size_t len)
{
    if (text)
        explicit_bzero(text, len);
    free(text);
}

void rg_config_redact_key(size_t k, const char *value)
{
    char *text = NULL;
    size_t len = 0;

    if (k >= NKEYS || !keys[k].redact || !value)
        return;
    if (keys[k].type == T_SECRET) {
        keys[k].redact(value);
        return;
    }
    /* Quietly: a file that cannot be read is reported when it is read for use. */
    if (read_secret_file(value, &text, &len, NULL) == 0)
        keys[k].redact(text);
    free_secret(text, len);
}

void rg_config_redact(char *const *env, const struct rg_config_flag *flags, size_t nflags)
{
    /* libpq's own variable: the password when the URL has none. */
    rg_log_redact(env_get(env, "PGPASSWORD"));
    for (size_t k = 0; k < NKEYS; k++) {
        rg_config_redact_key(k, env_get(env, keys[k].env));
        if (keys[k].alias)
            rg_config_redact_key(k, env_get(env, keys[k].alias));
        for (size_t i = 0; i < nflags; i++)
            if (flags[i].key && strcmp(flags[i].key, keys[k].path) == 0)
                rg_config_redact_key(k, flags[i].value);
    }
}

static int load_env(struct loader *st, char *const *env, struct rg_err *err)
{
    int rc = -1;

    for (size_t k = 0; k < NKEYS; k++) {
        struct origin o = {SRC_ENV, 0, 0, keys[k].env};
        const char *value = env_get(env, keys[k].env);
        if (!value && keys[k].alias) {
            o.name = keys[k].alias;
            value = env_get(env, keys[k].alias);
        }
        if (value && rg_config_set(st, k, value, &o, err) < 0)
            goto out;
    }
    /* A typo must not silently do nothing, but it must not stop a pod either. */
    for (; env && *env; env++) {
        char *name;
        if (strncmp(*env, "ROLLGATE_", 9) != 0)
            continue;
        name = rg_strndup(*env, strcspn(*env, "="));
        if (!is_known_env(name) && !is_service_var(name))
            RG_WARN("unknown environment variable ignored" RG_F "name=%s", name);
        free(name);
    }
    rc = 0;
out:
    return rc;
}

static int load_flags(struct loader *st, const struct rg_config_flag *flags, size_t nflags,
                      struct rg_err *err)
{
    int rc = -1;

    for (size_t i = 0; i < nflags; i++) {
        const struct rg_config_flag *f = &flags[i];
        int k = f->key ? rg_config_find_key(f->key) : -1;
        struct origin o = {SRC_FLAG, 0, 0, f->flag};
        /* The command-line parser passes only keys it knows: anything else is a bug. */
        if (k < 0 || !f->flag || !f->value) {
            rg_err_set(err, RG_EINTERNAL, "flag %s: no configuration key \"%s\"",
                       f->flag ? f->flag : "(null)", f->key ? f->key : "(null)");
            goto out;
        }
        if (rg_config_set(st, (size_t)k, f->value, &o, err) < 0)
            goto out;
    }
    rc = 0;
out:
    return rc;
}

/* Text the operator meant as a connection string but put where a path or a key belongs
 * (ROLLGATE_DATABASE_URL_FILE=postgres://...) must not be echoed into the pod's logs. */
bool rg_config_looks_like_secret(const char *path)
{
    return strstr(path, "://") || strchr(path, '@') || strchr(path, '=');
}

/* rg_file_read's message names the path, which may be the secret itself: then errno still
 * tells why without it. */
static void hide_secret_path(const char *path, struct rg_err *err)
{
    if (rg_config_looks_like_secret(path))
        rg_err_set(err, RG_ECONFIG,
                   "cannot read the file: %s (the value looks like a connection string, not a "
                   "path to a file holding one)",
                   strerror(errno));
}

/* --config must exist, so must ROLLGATE_CONFIG; the default file only when present. */
static int load_file(struct loader *st, const char *file, char *const *env, struct rg_err *err)
{
    const char *path = file, *given_by = "flag --config";
    char *text = NULL;
    size_t len = 0;
    bool optional = false;
    int rc = -1;

    if (!path) {
        path = env_get(env, CONFIG_ENV);
        given_by = "env " CONFIG_ENV;
        if (path && !*path)
            path = NULL;
    }
    if (!path) {
        path = RG_CONFIG_DEFAULT_FILE;
        given_by = "config file";
        optional = true;
    }
    if (rg_file_read(path, CONFIG_FILE_CAP, 0, &text, &len, RG_ECONFIG, err) < 0) {
        if (optional && errno == ENOENT) {
            /* No default file is the usual case, not an error: leave no message behind. */
            rg_err_clear(err);
            rc = 0;
            goto out;
        }
        hide_secret_path(path, err);
        rg_err_prefix(err, "%s", given_by);
        goto out;
    }
    st->cfg->config_file = rg_strdup(path);
    st->file = st->cfg->config_file;
    rc = rg_config_load_yaml(st, text, len, err);
out:
    free(text);
    return rc;
}

/* Read once all sources are in, so a path from any source works and the error names the
 * source of the path, never the file's contents. */
static int read_secret(struct loader *st, size_t file_key, char **dst, struct rg_err *err)
{
    const char *path = *(char **)((char *)st->cfg + keys[file_key].off);
    char where[256], *buf = NULL;
    size_t len = 0;
    int rc = -1;

    if (!path) {
        rc = 0;
        goto out;
    }
    describe(st, file_key, &st->from[file_key], true, where, sizeof(where));
    if (read_secret_file(path, &buf, &len, err) < 0) {
        hide_secret_path(path, err);
        rg_err_prefix(err, "%s", where);
        goto out;
    }
    /* Registered before any value was parsed; the file may have changed since. */
    keys[file_key].redact(buf);
    if (len == 0 || strlen(buf) != len) {
        rg_err_set(err, RG_ECONFIG, "%s: %s %s", where, path,
                   len == 0 ? "is empty" : "contains a NUL byte");
        goto out;
    }
    free(*dst);
    *dst = buf;
    buf = NULL;
    rc = 0;
out:
    free_secret(buf, len);
    return rc;
}

static int64_t get_ms(const struct loader *st, size_t k)
{
    return *(const int64_t *)((const char *)st->cfg + keys[k].off);
}

/* client-go's LeaderElectionConfig checks: big * den > small * num. The message blames the
 * key set by the stronger source, which is the one the operator changed. */
static int check_greater(const struct loader *st, size_t big, size_t small, int64_t num,
                         int64_t den, const char *mul, const char *div, struct rg_err *err)
{
    char bs[32], ss[32], bw[256], sw[256];
    bool blame_small = st->from[small].src > st->from[big].src;
    int rc = -1;

    if (get_ms(st, big) * den > get_ms(st, small) * num) {
        rc = 0;
        goto out;
    }
    rg_duration_format(get_ms(st, big), bs, sizeof(bs));
    rg_duration_format(get_ms(st, small), ss, sizeof(ss));
    describe(st, big, &st->from[big], !blame_small, bw, sizeof(bw));
    describe(st, small, &st->from[small], blame_small, sw, sizeof(sw));
    if (blame_small)
        rg_err_set(err, RG_ECONFIG, "%s: %s must be less than %s%s (%s, %s)", sw, ss,
                   keys[big].path, div, bs, bw);
    else
        rg_err_set(err, RG_ECONFIG, "%s: %s must be greater than %s%s (%s, %s)", bw, bs, mul,
                   keys[small].path, ss, sw);
out:
    return rc;
}

static int finish(struct loader *st, char *const *env, struct rg_err *err)
{
    struct rg_config *c = st->cfg;
    size_t url = (size_t)rg_config_find_key("database.url");
    size_t url_file = (size_t)rg_config_find_key("database.urlFile");
    size_t duration = (size_t)rg_config_find_key("lease.duration");
    size_t renew = (size_t)rg_config_find_key("lease.renewDeadline");
    size_t retry = (size_t)rg_config_find_key("lease.retryPeriod");
    char where[256], other[256], host[256], shown[SHOWN_MAX + 1];
    const char *pod;
    int rc = -1;

    if (c->database.url && c->database.url_file) {
        describe(st, url_file, &st->from[url_file], true, where, sizeof(where));
        describe(st, url, &st->from[url], false, other, sizeof(other));
        rg_err_set(err, RG_ECONFIG,
                   "%s: database.url is also set (%s); set only one of database.url and "
                   "database.urlFile",
                   where, other);
        goto out;
    }
    if (read_secret(st, url_file, &c->database.url, err) < 0 ||
        read_secret(st, (size_t)rg_config_find_key("database.passwordFile"), &c->database.password,
                    err) < 0)
        goto out;
    if (c->database.url)
        st->from[url] = st->from[url_file];
    if (check_greater(st, duration, renew, 1, 1, "", "", err) < 0 ||
        check_greater(st, renew, retry, 6, 5, "1.2 x ", " / 1.2", err) < 0)
        goto out;
    /* DESIGN.md: the identity is POD_NAME, else the host name. */
    if (!*c->lease.identity) {
        const char *from = "env POD_NAME";
        pod = env_get(env, "POD_NAME");
        if (!pod || !*pod) {
            if (gethostname(host, sizeof(host)) < 0) {
                rg_err_set(err, RG_ECONFIG,
                           "lease.identity: empty, no POD_NAME and no host name (%s); set one",
                           strerror(errno));
                goto out;
            }
            host[sizeof(host) - 1] = '\0';
            pod = host;
            from = "lease.identity: the host name";
        }
        /* Refused here, not when the history row or the Lease is written: there it would
         * read as a failed migration, or be cut and never read back as this run's. */
        if (!is_identity(pod)) {
            rg_err_set(err, RG_ECONFIG, "%s: invalid value \"%s\" for the lease identity (use %s)",
                       from, rg_log_scrub(shown, sizeof(shown), pod), IDENTITY_ACCEPTS);
            rg_err_suffix(err, "; or set lease.identity");
            goto out;
        }
        free(c->lease.identity);
        c->lease.identity = rg_strdup(pod);
    }
    rc = 0;
out:
    return rc;
}

/* A copy of the variable's value; NULL when unset or empty. */
static char *env_copy(char *const *env, const char *name)
{
    const char *v = env_get(env, name);

    return v && *v ? rg_strdup(v) : NULL;
}

static void read_surroundings(struct rg_config *cfg, char *const *env)
{
    const char *list = env_get(env, "KUBECONFIG"), *home = env_get(env, "HOME");

    cfg->env.service_host = env_copy(env, "KUBERNETES_SERVICE_HOST");
    cfg->env.service_port = env_copy(env, "KUBERNETES_SERVICE_PORT");
    cfg->env.pod_name = env_copy(env, "POD_NAME");
    cfg->env.pod_namespace = env_copy(env, "POD_NAMESPACE");
    if (list)
        list += strspn(list, ":");
    if (list && *list)
        cfg->env.kubeconfig = rg_strndup(list, strcspn(list, ":"));
    else if (home && *home)
        cfg->env.kubeconfig = rg_asprintf("%s/.kube/config", home);
}

int rg_config_load(struct rg_config *cfg, const char *file, char *const *env,
                   const struct rg_config_flag *flags, size_t nflags, struct rg_err *err)
{
    struct origin from[NKEYS] = {{SRC_NONE, 0, 0, NULL}};
    struct loader st = {.cfg = cfg, .file = NULL, .from = from};
    int rc = -1;

    memset(cfg, 0, sizeof(*cfg));
    /* Every secret is known before any value is parsed, so a message about a value typed in
     * the wrong place hides it too. */
    rg_config_redact(env, flags, nflags);
    for (size_t k = 0; k < NKEYS; k++) {
        struct origin o = {SRC_DEFAULT, 0, 0, NULL};
        if (keys[k].def && rg_config_set(&st, k, keys[k].def, &o, err) < 0) {
            err->code = RG_EINTERNAL; /* the table is wrong, not the operator */
            goto out;
        }
    }
    if (load_file(&st, file, env, err) < 0 || load_env(&st, env, err) < 0 ||
        load_flags(&st, flags, nflags, err) < 0 || finish(&st, env, err) < 0)
        goto out;
    read_surroundings(cfg, env);
    rc = 0;
out:
    if (rc < 0)
        rg_config_free(cfg);
    return rc;
}

void rg_config_free(struct rg_config *cfg)
{
    if (!cfg)
        return;
    for (size_t k = 0; k < NKEYS; k++)
        if (keys[k].type == T_STRING || keys[k].type == T_SECRET)
            free_string(&keys[k], (char **)((char *)cfg + keys[k].off));
    if (cfg->database.password)
        explicit_bzero(cfg->database.password, strlen(cfg->database.password));
    free(cfg->database.password);
    free(cfg->config_file);
    free(cfg->env.service_host);
    free(cfg->env.service_port);
    free(cfg->env.kubeconfig);
    free(cfg->env.pod_name);
    free(cfg->env.pod_namespace);
    memset(cfg, 0, sizeof(*cfg));
}

bool rg_config_wants_lease(const struct rg_config *cfg)
{
    char token[4096];

    if (cfg->lease.mode != RG_LEASE_AUTO)
        return cfg->lease.mode == RG_LEASE_KUBERNETES;
    snprintf(token, sizeof(token), "%s/token", cfg->lease.service_account_dir);
    return cfg->env.service_host && access(token, R_OK) == 0;
}

const char *rg_config_early_termination_log(char *const *env)
{
    const struct key *key = &keys[rg_config_find_key("terminationLog")];
    const char *path = env_get(env, key->env);

    return path ? path : key->def;
}
