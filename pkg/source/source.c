#include "source/source.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "duration/duration.h"
#include "err/mem.h"
#include "source/sql.h"

#define EXPECTED_NAME "expected NNNN_title.up.sql or NNNN_title.down.sql"
#define EXPECTED_FLYWAY "expected V<version>__title.sql or U<version>__title.sql"
#define EXPECTED_REPEATABLE "expected R__title.sql"
#define EXPECTED_ANY                                                                               \
    "expected NNNN_title.up.sql or NNNN_title.down.sql, V<version>__title.sql or "                 \
    "U<version>__title.sql, or R__title.sql"
#define KNOWN_DIRECTIVES "known: no-transaction, lock-timeout=, statement-timeout="
/* PostgreSQL keeps lock_timeout and statement_timeout in an int of milliseconds: a larger
 * value would only fail later, in the middle of a run, when the SET is sent. */
#define MAX_TIMEOUT_MS ((int64_t)INT_MAX)
/* How much of an unknown directive goes into the message: enough to recognise it, not a
 * whole line of SQL pasted after "rollgate:". */
#define DIRECTIVE_SHOWN 64

/* golang-migrate's NNNN_title.up.sql, Flyway's V1__title.sql, or Flyway's R__title.sql. */
enum style { STYLE_GOLANG, STYLE_FLYWAY, STYLE_REPEATABLE };

/* One *.sql name from the directory, parsed. The name is owned by the names array. */
struct entry {
    const char *name;
    enum style style;
    int64_t version; /* 0 for a repeatable */
    bool down;
    const char *title; /* points into name */
    size_t title_len;
};

/* Joins as the operator wrote dir, without doubling a trailing slash, so messages show the
 * path they would type. */
static char *join_path(const char *dir, const char *name)
{
    size_t n = strlen(dir);

    if (n > 0 && dir[n - 1] == '/')
        return rg_asprintf("%s%s", dir, name);
    return rg_asprintf("%s/%s", dir, name);
}

static bool ends_with(const char *s, size_t len, const char *suffix)
{
    size_t n = strlen(suffix);

    return len >= n && memcmp(s + len - n, suffix, n) == 0;
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_title_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) || c == '_' || c == '-';
}

/* A title: [A-Za-z0-9_-]+. It becomes part of the history and of log lines, where blanks
 * and dots would only make names ambiguous. */
static int check_title(const char *path, const char *title, size_t len, const char *expected,
                       struct rg_err *err)
{
    if (len == 0) {
        rg_err_set(err, RG_EFILES, "%s: migration file name has no title (%s)", path, expected);
        return -1;
    }
    for (size_t i = 0; i < len; i++) {
        if (!is_title_char(title[i])) {
            rg_err_set(err, RG_EFILES,
                       "%s: not a migration file name: the title may hold only letters, digits, "
                       "'_' and '-' (%s)",
                       path, expected);
            return -1;
        }
    }
    return 0;
}

/* The decimal digits at s (s[0] is one) as a version, *end past them. strtoll alone would
 * also take leading blanks and a sign, hence the caller's digit check. */
static int parse_version(const char *path, const char *s, int64_t *v, const char **end,
                         struct rg_err *err)
{
    char *e = NULL;
    long long x;

    errno = 0;
    x = strtoll(s, &e, 10);
    *end = e;
    if (errno == ERANGE) {
        rg_err_set(err, RG_EFILES,
                   "%s: version %.*s is out of range (a positive 64-bit integer, at most %lld)",
                   path, (int)(e - s), s, (long long)INT64_MAX);
        return -1;
    }
    *v = (int64_t)x;
    return 0;
}

/* golang-migrate's NNNN_title.up.sql / NNNN_title.down.sql. */
static int parse_golang(const char *path, const char *name, struct entry *e, struct rg_err *err)
{
    size_t len = strlen(name), stem_len;
    const char *end;
    int64_t v;

    if (ends_with(name, len, ".up.sql")) {
        e->down = false;
        stem_len = len - strlen(".up.sql");
    } else if (ends_with(name, len, ".down.sql")) {
        e->down = true;
        stem_len = len - strlen(".down.sql");
    } else {
        rg_err_set(err, RG_EFILES, "%s: not a migration file name (" EXPECTED_ANY ")", path);
        return -1;
    }
    if (!is_digit(name[0])) {
        rg_err_set(err, RG_EFILES, "%s: not a migration file name (" EXPECTED_ANY ")", path);
        return -1;
    }
    if (parse_version(path, name, &v, &end, err) != 0)
        return -1;
    if ((size_t)(end - name) == stem_len) {
        rg_err_set(err, RG_EFILES, "%s: migration file name has no title (" EXPECTED_NAME ")",
                   path);
        return -1;
    }
    if (*end != '_') {
        rg_err_set(err, RG_EFILES, "%s: not a migration file name (" EXPECTED_NAME ")", path);
        return -1;
    }
    if (v <= 0) {
        rg_err_set(err, RG_EFILES, "%s: version must be greater than 0 (" EXPECTED_NAME ")", path);
        return -1;
    }
    e->style = STYLE_GOLANG;
    e->version = v;
    e->title = end + 1;
    e->title_len = (size_t)(name + stem_len - e->title);
    return check_title(path, e->title, e->title_len, EXPECTED_NAME, err);
}

/* Flyway's V<version>__title.sql (up) / U<version>__title.sql (down). */
static int parse_flyway(const char *path, const char *name, struct entry *e, struct rg_err *err)
{
    const char *stem_end = name + strlen(name) - strlen(".sql"), *end, *sep;
    int64_t v;

    if (!is_digit(name[1])) {
        rg_err_set(err, RG_EFILES, "%s: not a migration file name (" EXPECTED_FLYWAY ")", path);
        return -1;
    }
    if (parse_version(path, name + 1, &v, &end, err) != 0)
        return -1;
    if (end == stem_end) {
        rg_err_set(err, RG_EFILES, "%s: migration file name has no title (" EXPECTED_FLYWAY ")",
                   path);
        return -1;
    }
    /* Flyway orders V1.1 (or V1_1) between V1 and V2; rollgate keeps versions in a bigint
     * history column, so such a file would have no place in it. */
    if (*end == '.' || (end[0] == '_' && is_digit(end[1]))) {
        sep = strstr(name + 1, "__");
        if (!sep || sep > stem_end)
            sep = stem_end;
        rg_err_set(err, RG_EFILES,
                   "%s: version %.*s is not an integer: versions must be integers (V2__title.sql, "
                   "not V1.1__title.sql)",
                   path, (int)(sep - name - 1), name + 1);
        return -1;
    }
    if (end[0] != '_' || end[1] != '_') {
        rg_err_set(err, RG_EFILES,
                   "%s: not a migration file name: two '_' follow the version (" EXPECTED_FLYWAY
                   ")",
                   path);
        return -1;
    }
    if (v <= 0) {
        rg_err_set(err, RG_EFILES, "%s: version must be greater than 0 (" EXPECTED_FLYWAY ")",
                   path);
        return -1;
    }
    e->style = STYLE_FLYWAY;
    e->version = v;
    e->down = name[0] == 'U';
    e->title = end + 2;
    e->title_len = (size_t)(stem_end - e->title);
    return check_title(path, e->title, e->title_len, EXPECTED_FLYWAY, err);
}

/* Flyway's R__title.sql. */
static int parse_repeatable(const char *path, const char *name, struct entry *e, struct rg_err *err)
{
    size_t stem_len = strlen(name) - strlen(".sql");

    if (stem_len < 3 || memcmp(name, "R__", 3) != 0) {
        rg_err_set(err, RG_EFILES, "%s: not a migration file name (" EXPECTED_REPEATABLE ")", path);
        return -1;
    }
    e->style = STYLE_REPEATABLE;
    e->title = name + 3;
    e->title_len = stem_len - 3;
    return check_title(path, e->title, e->title_len, EXPECTED_REPEATABLE, err);
}

/* A *.sql name in the migrations directory, by its first character: Flyway's prefixes are
 * upper case letters, golang-migrate's versions digits. Every *.sql name that fits none is
 * an error rather than skipped: a typo would otherwise silently drop a migration. */
static int parse_name(const char *dir, const char *name, struct entry *e, struct rg_err *err)
{
    char *path = join_path(dir, name);
    int rc;

    *e = (struct entry){.name = name};
    if (name[0] == 'V' || name[0] == 'U')
        rc = parse_flyway(path, name, e, err);
    else if (name[0] == 'R')
        rc = parse_repeatable(path, name, e, err);
    else
        rc = parse_golang(path, name, e, err);
    free(path);
    return rc;
}

/* data/NAME.sql: no naming rules but the characters before .sql, so that the name, which
 * is recorded in the history, reads the same everywhere. */
static int check_data_name(const char *dir, const char *name, struct rg_err *err)
{
    size_t stem_len = strlen(name) - strlen(".sql");
    char *path;

    for (size_t i = 0; i < stem_len; i++) {
        if (!is_title_char(name[i]) && name[i] != '.') {
            path = join_path(dir, name);
            rg_err_set(err, RG_EFILES,
                       "%s: not a data migration name: the part before .sql may hold only "
                       "letters, digits, '_', '-' and '.'",
                       path);
            free(path);
            return -1;
        }
    }
    return 0;
}

/* Hex SHA-256; -1 only when OpenSSL cannot digest at all (no memory, no provider). */
static int sha256_hex(const void *buf, size_t len, char out[65])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;

    out[0] = '\0';
    if (EVP_Digest(buf, len, md, &md_len, EVP_sha256(), NULL) != 1 || md_len != 32)
        return -1;
    for (unsigned int i = 0; i < md_len; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 0xf];
    }
    out[64] = '\0';
    return 0;
}

void rg_source_checksum(const void *buf, size_t len, char out[65])
{
    /* The void signature leaves no error to return; an empty checksum would read as drift
     * later, which is worse than stopping here. Only a broken OpenSSL gets this far. */
    if (sha256_hex(buf, len, out) != 0) {
        fputs("rollgate: OpenSSL could not compute SHA-256\n", stderr);
        abort();
    }
}

/* Reads the whole file, NUL-terminated. O_NONBLOCK keeps a FIFO named *.sql from hanging
 * the open; fstat on the opened descriptor then refuses anything but a regular file. */
static int read_file(const char *path, char **data, size_t *len, struct rg_err *err)
{
    struct stat st;
    char *buf = NULL;
    size_t size, got = 0;
    int fd = -1, rc = -1;
    char extra;
    const char *nul;

    fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        rg_err_set(err, RG_EFILES, "%s: cannot open: %s", path, strerror(errno));
        goto out;
    }
    if (fstat(fd, &st) != 0) {
        rg_err_set(err, RG_EFILES, "%s: cannot stat: %s", path, strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        rg_err_set(err, RG_EFILES, "%s: cannot read: not a regular file", path);
        goto out;
    }
    if (st.st_size > RG_SOURCE_MAX_FILE) {
        rg_err_set(err, RG_EFILES,
                   "%s: file is %lld bytes, over the %ld-byte limit for a migration (a data "
                   "dump in the wrong place?)",
                   path, (long long)st.st_size, RG_SOURCE_MAX_FILE);
        goto out;
    }
    size = (size_t)st.st_size;
    buf = rg_malloc(size + 1);
    while (got < size) {
        ssize_t n = read(fd, buf + got, size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rg_err_set(err, RG_EFILES, "%s: cannot read: %s", path, strerror(errno));
            goto out;
        }
        if (n == 0)
            break; /* shrank since fstat: what is there now is the file */
        got += (size_t)n;
    }
    /* A file that grew past its fstat size is being written: its checksum would describe
     * neither version, so refuse rather than apply half of it. */
    if (got == size && read(fd, &extra, 1) > 0) {
        rg_err_set(err, RG_EFILES, "%s: file changed while it was being read", path);
        goto out;
    }
    buf[got] = '\0';
    /* libpq takes the SQL as a C string: everything after a NUL would be silently lost. */
    nul = memchr(buf, '\0', got);
    if (nul) {
        size_t line = 1;
        for (const char *c = buf; c < nul; c++)
            line += *c == '\n';
        rg_err_set(err, RG_EFILES,
                   "%s:%zu: file contains a NUL byte (at offset %zu); PostgreSQL cannot take it",
                   path, line, (size_t)(nul - buf));
        goto out;
    }
    *data = buf;
    *len = got;
    buf = NULL;
    rc = 0;
out:
    if (fd >= 0)
        close(fd);
    free(buf);
    return rc;
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v';
}

/* A timeout directive's value: a duration, > 0, within what PostgreSQL accepts. */
static int parse_timeout(const char *path, size_t line, const char *key, const char *value,
                         int64_t *ms, struct rg_err *err)
{
    int64_t v = 0;

    if (rg_duration_parse(value, &v) != 0) {
        rg_err_set(err, RG_EFILES,
                   "%s:%zu: rollgate:%s: bad duration \"%.*s\" (expected e.g. 500ms, 2s, 10m, "
                   "1h30m)",
                   path, line, key, DIRECTIVE_SHOWN, value);
        return -1;
    }
    if (v <= 0) {
        rg_err_set(err, RG_EFILES, "%s:%zu: rollgate:%s: must be greater than 0", path, line, key);
        return -1;
    }
    if (v > MAX_TIMEOUT_MS) {
        rg_err_set(err, RG_EFILES,
                   "%s:%zu: rollgate:%s: %s is more than PostgreSQL accepts (at most %lldms)", path,
                   line, key, value, (long long)MAX_TIMEOUT_MS);
        return -1;
    }
    *ms = v;
    return 0;
}

/* text: what follows "rollgate:" on one comment line, blanks trimmed. */
static int parse_directive(const char *path, size_t line, const char *text, size_t len,
                           struct rg_directives *d, bool *seen, struct rg_err *err)
{
    static const char *const keys[] = {"no-transaction", "lock-timeout", "statement-timeout"};
    char *copy = NULL;
    const char *eq, *value = NULL;
    size_t key_len, k;
    int rc = -1;

    copy = rg_strndup(text, len);
    eq = strchr(copy, '=');
    key_len = eq ? (size_t)(eq - copy) : len;
    for (k = 0; k < sizeof(keys) / sizeof(keys[0]); k++)
        if (strlen(keys[k]) == key_len && strncmp(copy, keys[k], key_len) == 0)
            break;
    if (k == sizeof(keys) / sizeof(keys[0])) {
        rg_err_set(err, RG_EFILES,
                   "%s:%zu: unknown directive \"rollgate:%.*s\" (" KNOWN_DIRECTIVES ")", path, line,
                   DIRECTIVE_SHOWN, copy);
        goto out;
    }
    /* A second occurrence is most likely a copy-paste leftover with another value: which
     * one was meant cannot be guessed. */
    if (seen[k]) {
        rg_err_set(err, RG_EFILES, "%s:%zu: directive rollgate:%s given twice", path, line,
                   keys[k]);
        goto out;
    }
    seen[k] = true;
    if (eq)
        value = eq + 1;
    if (k == 0) {
        if (value) {
            rg_err_set(err, RG_EFILES, "%s:%zu: rollgate:no-transaction takes no value", path,
                       line);
            goto out;
        }
        d->no_transaction = true;
    } else {
        if (!value) {
            rg_err_set(err, RG_EFILES, "%s:%zu: rollgate:%s needs a value (rollgate:%s=2s)", path,
                       line, keys[k], keys[k]);
            goto out;
        }
        if (parse_timeout(path, line, keys[k], value,
                          k == 1 ? &d->lock_timeout_ms : &d->statement_timeout_ms, err) != 0)
            goto out;
    }
    rc = 0;
out:
    free(copy);
    return rc;
}

/* Directives live in the leading comment lines only, so a "-- rollgate:" inside the SQL
 * (a comment on a later statement, a string) never changes how the file runs. */
static int parse_directives(const char *path, const char *sql, size_t len, struct rg_directives *d,
                            struct rg_err *err)
{
    const char *p = sql, *end = sql + len;
    bool seen[3] = {false, false, false};
    size_t line = 1;

    *d = (struct rg_directives){0};
    /* Editors on Windows put a BOM first; it must not hide the directives under it. */
    if (len >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0)
        p += 3;
    for (; p < end; line++) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *s = p, *e;

        if (!eol)
            eol = end;
        e = eol;
        p = eol < end ? eol + 1 : end;
        while (s < e && is_space(*s))
            s++;
        while (e > s && is_space(e[-1]))
            e--;
        if (s == e)
            continue;
        if (e - s < 2 || s[0] != '-' || s[1] != '-')
            break; /* the first statement: the header is over */
        s += 2;
        while (s < e && is_space(*s))
            s++;
        if ((size_t)(e - s) < strlen("rollgate:") || memcmp(s, "rollgate:", 9) != 0)
            continue; /* an ordinary comment */
        s += strlen("rollgate:");
        while (s < e && is_space(*s))
            s++;
        if (parse_directive(path, line, s, (size_t)(e - s), d, seen, err) != 0)
            return -1;
    }
    return 0;
}

int rg_source_directives(const char *path, const char *sql, size_t len, struct rg_directives *d,
                         struct rg_err *err)
{
    return parse_directives(path, sql, len, d, err);
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* By version, the up file before the down file, then by name, so that two files for one
 * version sit next to each other and are reported in the same order on every run. */
static int cmp_entries(const void *a, const void *b)
{
    const struct entry *x = a, *y = b;

    if (x->version != y->version)
        return x->version < y->version ? -1 : 1;
    if (x->down != y->down)
        return x->down ? 1 : -1;
    return strcmp(x->name, y->name);
}

/* The *.sql names in dir, sorted so that errors come out the same whatever order readdir
 * gives. Dotfiles are skipped: among them are the ..data links of a ConfigMap volume. For
 * data/ (data set): a missing directory is an empty one, and subdirectories are skipped
 * (stat follows links, as ConfigMap volumes link every file). */
static int list_dir(const char *dir, bool data, char ***names, size_t *count, struct rg_err *err)
{
    const char *what = data ? "data migrations directory" : "migrations directory";
    DIR *d = NULL;
    char **list = NULL;
    size_t n = 0, cap = 0;
    struct stat st;
    int rc = -1;

    *names = NULL;
    *count = 0;
    d = opendir(dir);
    /* A dangling data link is not an absent data/: its migrations would be skipped
     * without a word. */
    if (!d && data && errno == ENOENT && lstat(dir, &st) != 0)
        return 0;
    if (!d) {
        rg_err_set(err, RG_EFILES, "%s: cannot open %s: %s", dir, what, strerror(errno));
        goto out;
    }
    for (;;) {
        struct dirent *de;
        size_t len;

        errno = 0;
        de = readdir(d);
        if (!de) {
            if (errno) {
                rg_err_set(err, RG_EFILES, "%s: cannot read %s: %s", dir, what, strerror(errno));
                goto out;
            }
            break;
        }
        len = strlen(de->d_name);
        if (de->d_name[0] == '.' || !ends_with(de->d_name, len, ".sql"))
            continue;
        /* Anything else that is not a regular file (a dangling link, a FIFO) is left for
         * read_file to refuse by name. */
        if (data && fstatat(dirfd(d), de->d_name, &st, 0) == 0 && S_ISDIR(st.st_mode))
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            list = rg_realloc(list, cap * sizeof(*list));
        }
        list[n++] = rg_strdup(de->d_name);
    }
    if (n > 1)
        qsort(list, n, sizeof(*list), cmp_names);
    *names = list;
    *count = n;
    list = NULL;
    n = 0;
    rc = 0;
out:
    for (size_t i = 0; i < n; i++)
        free(list[i]);
    free(list);
    if (d)
        closedir(d);
    return rc;
}

/* Reads a file to run: its bytes, its checksum (when one is wanted), its directives, and a
 * BEGIN/COMMIT wrapper blanked unless the file runs outside a transaction. The checksum
 * is taken before the blanking: it describes the file as written. */
static int read_sql(const char *path, char **sql, size_t *len, char *checksum,
                    struct rg_directives *d, struct rg_err *err)
{
    char *buf = NULL;
    size_t n = 0;
    int rc = -1;

    if (read_file(path, &buf, &n, err) != 0)
        goto out;
    if (checksum && sha256_hex(buf, n, checksum) != 0) {
        rg_err_set(err, RG_EINTERNAL, "%s: OpenSSL could not compute SHA-256", path);
        goto out;
    }
    if (parse_directives(path, buf, n, d, err) != 0)
        goto out;
    if (!d->no_transaction && rg_sql_unwrap(buf, n, path, err) != 0)
        goto out;
    *sql = buf;
    *len = n;
    buf = NULL;
    rc = 0;
out:
    free(buf);
    return rc;
}

static void migration_free(struct rg_migration *m)
{
    free(m->title);
    free(m->up_path);
    free(m->up_name);
    free(m->up_sql);
    free(m->down_path);
    free(m->down_sql);
}

/* One version from its up entry and its optional down entry. */
static int load_migration(const char *dir, const struct entry *up, const struct entry *down,
                          struct rg_migration *out, struct rg_err *err)
{
    struct rg_migration m = {0};
    size_t down_len = 0;
    int rc = -1;

    m.version = up->version;
    m.title = rg_strndup(up->title, up->title_len);
    m.up_name = rg_strdup(up->name);
    m.up_path = join_path(dir, up->name);
    if (read_sql(m.up_path, &m.up_sql, &m.up_len, m.checksum, &m.directives, err) != 0)
        goto out;
    if (down) {
        m.down_path = join_path(dir, down->name);
        if (read_sql(m.down_path, &m.down_sql, &down_len, NULL, &m.down_directives, err) != 0)
            goto out;
    }
    *out = m;
    m = (struct rg_migration){0};
    rc = 0;
out:
    migration_free(&m);
    return rc;
}

static void script_free(struct rg_script *s)
{
    free(s->name);
    free(s->path);
    free(s->sql);
}

/* A repeatable or data script: file in dir, recorded under name. */
static int load_script(const char *dir, const char *file, const char *name, size_t name_len,
                       struct rg_script *out, struct rg_err *err)
{
    struct rg_script s = {0};
    int rc = -1;

    s.name = rg_strndup(name, name_len);
    s.path = join_path(dir, file);
    if (read_sql(s.path, &s.sql, &s.len, s.checksum, &s.directives, err) != 0)
        goto out;
    *out = s;
    s = (struct rg_script){0};
    rc = 0;
out:
    script_free(&s);
    return rc;
}

static int cmp_scripts(const void *a, const void *b)
{
    return strcmp(((const struct rg_script *)a)->name, ((const struct rg_script *)b)->name);
}

/* The file name a version's up file would have in the style of e (a down file). */
static char *expected_up(const struct entry *e)
{
    if (e->style == STYLE_FLYWAY)
        return rg_asprintf("V%.*s__%.*s.sql", (int)(e->title - 2 - e->name - 1), e->name + 1,
                           (int)e->title_len, e->title);
    return rg_asprintf("%.*s_%.*s.up.sql", (int)(e->title - 1 - e->name), e->name,
                       (int)e->title_len, e->title);
}

/* Pairs the sorted entries into migrations: one up file per version, at most one down file
 * with the same title, no down file alone, one naming style per version. */
static int build(const char *dir, const struct entry *ents, size_t n, struct rg_source *src,
                 struct rg_err *err)
{
    char *a = NULL, *b = NULL, *c = NULL;
    int rc = -1;

    for (size_t i = 0; i < n;) {
        const struct entry *up = &ents[i], *down = NULL;
        size_t j = i + 1;

        /* Checked first: with both styles present, "two up files" or "no up file" would
         * hide that the two files are one migration written twice. */
        for (size_t k = i + 1; k < n && ents[k].version == up->version; k++) {
            if (ents[k].style != up->style) {
                a = join_path(dir, up->name);
                b = join_path(dir, ents[k].name);
                rg_err_set(err, RG_EFILES,
                           "%s and %s: version %lld is named in both golang-migrate and Flyway "
                           "style; use one naming style per version",
                           a, b, (long long)up->version);
                goto out;
            }
        }
        if (up->down) {
            a = join_path(dir, up->name);
            c = expected_up(up);
            rg_err_set(err, RG_EFILES, "%s: down migration without an up file (expected %s)", a, c);
            goto out;
        }
        if (j < n && ents[j].version == up->version && !ents[j].down) {
            a = join_path(dir, up->name);
            b = join_path(dir, ents[j].name);
            rg_err_set(err, RG_EFILES, "%s and %s: two up migrations for version %lld", a, b,
                       (long long)up->version);
            goto out;
        }
        if (j < n && ents[j].version == up->version) {
            down = &ents[j++];
            if (j < n && ents[j].version == up->version) {
                a = join_path(dir, down->name);
                b = join_path(dir, ents[j].name);
                rg_err_set(err, RG_EFILES, "%s and %s: two down migrations for version %lld", a, b,
                           (long long)up->version);
                goto out;
            }
            if (down->title_len != up->title_len ||
                memcmp(down->title, up->title, up->title_len) != 0) {
                a = join_path(dir, up->name);
                b = join_path(dir, down->name);
                rg_err_set(err, RG_EFILES,
                           "%s and %s: up and down migrations for version %lld have different "
                           "titles",
                           a, b, (long long)up->version);
                goto out;
            }
        }
        if (load_migration(dir, up, down, &src->items[src->n], err) != 0)
            goto out;
        src->n++;
        i = j;
    }
    rc = 0;
out:
    free(a);
    free(b);
    free(c);
    return rc;
}

/* R__title.sql files, named by title. Sorted once loaded: by file name, R__a-b.sql would
 * come before R__a.sql ('-' < '.'), by name after. */
static int load_repeatables(const char *dir, const struct entry *reps, size_t n,
                            struct rg_source *src, struct rg_err *err)
{
    src->repeatable = rg_calloc(n, sizeof(*src->repeatable));
    for (size_t i = 0; i < n; i++) {
        if (load_script(dir, reps[i].name, reps[i].title, reps[i].title_len,
                        &src->repeatable[src->nrepeatable], err) != 0)
            return -1;
        src->nrepeatable++;
    }
    if (n > 1)
        qsort(src->repeatable, n, sizeof(*src->repeatable), cmp_scripts);
    return 0;
}

/* The .sql files of dir/data, named by file name, in list_dir's byte-wise order. */
static int load_data(const char *dir, struct rg_source *src, struct rg_err *err)
{
    char *data_dir = NULL, **names = NULL;
    size_t n = 0;
    int rc = -1;

    data_dir = join_path(dir, "data");
    if (list_dir(data_dir, true, &names, &n, err) != 0)
        goto out;
    src->data = rg_calloc(n, sizeof(*src->data));
    for (size_t i = 0; i < n; i++) {
        if (check_data_name(data_dir, names[i], err) != 0)
            goto out;
        if (load_script(data_dir, names[i], names[i], strlen(names[i]), &src->data[src->ndata],
                        err) != 0)
            goto out;
        src->ndata++;
    }
    rc = 0;
out:
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    free(data_dir);
    return rc;
}

int rg_source_load(const char *dir, struct rg_source *src, struct rg_err *err)
{
    struct rg_source s = {0};
    struct entry *ents = NULL, *reps = NULL, e;
    char **names = NULL;
    size_t n = 0, nents = 0, nreps = 0;
    int rc = -1;

    *src = (struct rg_source){0};
    if (list_dir(dir, false, &names, &n, err) != 0)
        goto out;
    ents = rg_calloc(n, sizeof(*ents));
    reps = rg_calloc(n, sizeof(*reps));
    for (size_t i = 0; i < n; i++) {
        if (parse_name(dir, names[i], &e, err) != 0)
            goto out;
        if (e.style == STYLE_REPEATABLE)
            reps[nreps++] = e;
        else
            ents[nents++] = e;
    }
    if (nents > 1)
        qsort(ents, nents, sizeof(*ents), cmp_entries);
    s.dir = rg_strdup(dir);
    /* Every version has an up entry, so n entries never make more than n migrations. */
    s.items = rg_calloc(nents, sizeof(*s.items));
    if (build(dir, ents, nents, &s, err) != 0)
        goto out;
    if (load_repeatables(dir, reps, nreps, &s, err) != 0)
        goto out;
    if (load_data(dir, &s, err) != 0)
        goto out;
    *src = s;
    s = (struct rg_source){0};
    rc = 0;
out:
    rg_source_free(&s);
    free(ents);
    free(reps);
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return rc;
}

void rg_source_free(struct rg_source *src)
{
    if (!src)
        return;
    for (size_t i = 0; i < src->n; i++)
        migration_free(&src->items[i]);
    free(src->items);
    for (size_t i = 0; i < src->nrepeatable; i++)
        script_free(&src->repeatable[i]);
    free(src->repeatable);
    for (size_t i = 0; i < src->ndata; i++)
        script_free(&src->data[i]);
    free(src->data);
    free(src->dir);
    *src = (struct rg_source){0};
}

const struct rg_migration *rg_source_find(const struct rg_source *src, int64_t version)
{
    size_t lo = 0, hi;

    if (!src)
        return NULL;
    hi = src->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int64_t v = src->items[mid].version;

        if (v == version)
            return &src->items[mid];
        if (v < version)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}
