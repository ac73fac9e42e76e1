/* Reading one migration file: size cap, NUL check, checksum, byte order mark, UTF-8,
 * -- rollgate: directives, and what the parser says of its statements (sql.h). */
#include "source/internal.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The low-level SHA-256, deprecated in OpenSSL 3 but the same code (SHA-NI or AVX2 picked
 * at start): EVP's first digest loads the providers and openssl.cnf, which cost a no-op
 * start over ten migrations four fifths of its instructions (5.2 M of 6.4 M, callgrind). */
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/sha.h>

#include "duration/duration.h"
#include "file/file.h"
#include "mem/mem.h"
#include "source/lint.h"
#include "source/sql.h"

#define KNOWN_DIRECTIVES "known: no-transaction, lock-timeout=, statement-timeout=, phase=, allow="
/* PostgreSQL keeps lock_timeout and statement_timeout in an int of milliseconds: a larger
 * value would only fail later, in the middle of a run, when the SET is sent. */
#define MAX_TIMEOUT_MS ((int64_t)INT_MAX)
/* How much of an unknown directive goes into the message: enough to recognise it, not a
 * whole line of SQL pasted after "rollgate:". */
#define DIRECTIVE_SHOWN 64
/* The directives, in the order KNOWN_DIRECTIVES names them. */
enum { NO_TRANSACTION, LOCK_TIMEOUT, STATEMENT_TIMEOUT, PHASE, ALLOW, NKEYS };
#define UTF8_BOM "\xEF\xBB\xBF"
/* parse_directive's index of "phase", the one directive rg_source_load reads. */

void rg_source_sha_to_hex(const unsigned char md[32], char out[65])
{
    static const char hex[] = "0123456789abcdef";

    for (int i = 0; i < 32; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 0xf];
    }
    out[64] = '\0';
}

void rg_source_sha_from_hex(const char hex[64], unsigned char md[32])
{
    for (int i = 0; i < 32; i++) {
        unsigned hi = (unsigned char)hex[2 * i], lo = (unsigned char)hex[2 * i + 1];

        md[i] = (unsigned char)(((hi <= '9' ? hi - '0' : hi - 'a' + 10) << 4) |
                                (lo <= '9' ? lo - '0' : lo - 'a' + 10));
    }
}

/* The void signatures leave no error to return; an empty checksum would read as drift
 * later, which is worse than stopping here. The low-level calls fail only on NULL. */
static void must(int ok)
{
    if (ok != 1) {
        fputs("rollgate: OpenSSL could not compute SHA-256\n", stderr);
        abort();
    }
}

bool rg_source_checksum_fd(int fd, off_t from, off_t end, char out[65])
{
    unsigned char md[SHA256_DIGEST_LENGTH], buf[64 * 1024];
    SHA256_CTX ctx;

    must(SHA256_Init(&ctx));
    while (from < end) {
        size_t want = end - from < (off_t)sizeof(buf) ? (size_t)(end - from) : sizeof(buf);
        ssize_t got = pread(fd, buf, want, from);

        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            return false;
        must(SHA256_Update(&ctx, buf, (size_t)got));
        from += got;
    }
    must(SHA256_Final(md, &ctx));
    rg_source_sha_to_hex(md, out);
    return true;
}

void rg_source_checksum(const void *buf, size_t len, char out[65])
{
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256_CTX ctx;

    must(SHA256_Init(&ctx));
    must(SHA256_Update(&ctx, buf, len));
    must(SHA256_Final(md, &ctx));
    rg_source_sha_to_hex(md, out);
}

void rg_source_digest(const struct rg_source *src, char out[65])
{
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256_CTX ctx;
    char buf[8192];
    size_t used = 0;

    if (src->glance.taken) {
        memcpy(out, src->glance.digest, 65);
        return;
    }
    must(SHA256_Init(&ctx));
    /* The lines written by hand into a buffer hashed as it fills: printf and one update per
     * line cost more than the hashing, on every start. */
    for (size_t i = 0; i < src->n; i++) {
        char digits[24];
        size_t nd = 0, cl;
        uint64_t v = (uint64_t)src->items[i].version;

        if (sizeof(buf) - used < sizeof(digits) + 66) {
            must(SHA256_Update(&ctx, buf, used));
            used = 0;
        }
        do
            digits[nd++] = (char)('0' + v % 10);
        while ((v /= 10) > 0);
        while (nd > 0)
            buf[used++] = digits[--nd];
        buf[used++] = ' ';
        cl = strnlen(src->items[i].checksum, 64);
        memcpy(buf + used, src->items[i].checksum, cl);
        used += cl;
        buf[used++] = '\n';
    }
    must(SHA256_Update(&ctx, buf, used));
    must(SHA256_Final(md, &ctx));
    rg_source_sha_to_hex(md, out);
}

/* libpq takes the SQL as a C string: everything after a NUL would be silently lost. */
static int check_nul(const char *path, const char *buf, size_t len, struct rg_err *err)
{
    const char *nul = memchr(buf, '\0', len);
    size_t line = 1;

    if (!nul)
        return 0;
    for (const char *c = buf; c < nul; c++)
        line += *c == '\n';
    rg_err_set(err, RG_EFILES,
               "%s:%zu: file contains a NUL byte (at offset %zu); PostgreSQL cannot take it", path,
               line, (size_t)(nul - buf));
    return -1;
}

/* Reads the whole file, NUL-terminated: a regular file only (a FIFO named *.sql must not
 * hang the run), and one that grew while it was read is refused, as its checksum would
 * describe neither version. */
static int read_file(const char *path, char **data, size_t *len, struct rg_err *err)
{
    if (rg_file_read(path, RG_SOURCE_MAX_FILE, RG_FILE_UNCHANGED, data, len, RG_EFILES, err) != 0) {
        if (errno == EFBIG)
            rg_err_suffix(err, " for a migration (a data dump in the wrong place?)");
        return -1;
    }
    if (check_nul(path, *data, *len, err) != 0) {
        free(*data);
        *data = NULL;
        return -1;
    }
    return 0;
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

/* rollgate:phase=pre|post: when in a rollout the migration runs (README "Zero-downtime
 * changes"). */
static int parse_phase(const char *path, size_t line, const char *value, bool *post,
                       struct rg_err *err)
{
    if (strcmp(value, "pre") == 0 || strcmp(value, "post") == 0) {
        *post = value[1] == 'o';
        return 0;
    }
    rg_err_set(err, RG_EFILES, "%s:%zu: rollgate:phase: \"%.*s\" is not pre or post", path, line,
               DIRECTIVE_SHOWN, value);
    return -1;
}

/* allow=RULE[,RULE] reason: each rule's findings in this file are accepted; the reason is
 * required, so a reviewer reads why. An unknown rule name is an error rather than ignored:
 * a misspelt allow would silently accept nothing. */
static int parse_allow(const char *path, size_t line, const char *value, struct rg_directives *d,
                       struct rg_err *err)
{
    const char *p = value, *end = value + strcspn(value, " \t");

    if (*end == '\0' || p == end) {
        rg_err_set(err, RG_EFILES,
                   "%s:%zu: rollgate:allow needs rule names and a reason "
                   "(rollgate:allow=ban-drop-column the column is unused since 2.3)",
                   path, line);
        return -1;
    }
    while (p < end) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *stop = comma ? comma : end;
        int rule = rg_lint_rule_by_name(p, (size_t)(stop - p));

        if (rule < 0) {
            rg_err_set(err, RG_EFILES,
                       "%s:%zu: rollgate:allow: unknown lint rule \"%.*s\" (rollgate lint "
                       "--help lists them)",
                       path, line, (int)(stop - p < DIRECTIVE_SHOWN ? stop - p : DIRECTIVE_SHOWN),
                       p);
            return -1;
        }
        if (!d->allow_line[rule])
            d->allow_line[rule] = (uint32_t)line;
        p = comma ? comma + 1 : end;
    }
    return 0;
}

/* text: what follows "rollgate:" on one comment line, blanks trimmed. only_phase: the
 * other directives are left for rg_source_read_sql, which reads them when the file runs. */
static int parse_directive(const char *path, size_t line, const char *text, size_t len,
                           bool only_phase, struct rg_directives *d, bool *seen, struct rg_err *err)
{
    static const char *const keys[NKEYS] = {"no-transaction", "lock-timeout", "statement-timeout",
                                            "phase", "allow"};
    static const char *const examples[NKEYS] = {"", "2s", "10m", "post", "RULE reason"};
    char *copy = NULL;
    const char *eq, *value = NULL;
    size_t key_len, k;
    int rc = -1;

    copy = rg_strndup(text, len);
    eq = strchr(copy, '=');
    key_len = eq ? (size_t)(eq - copy) : len;
    for (k = 0; k < NKEYS; k++)
        if (strlen(keys[k]) == key_len && strncmp(copy, keys[k], key_len) == 0)
            break;
    if (only_phase && k != PHASE) {
        rc = 0;
        goto out;
    }
    if (k == NKEYS) {
        rg_err_set(err, RG_EFILES,
                   "%s:%zu: unknown directive \"rollgate:%.*s\" (" KNOWN_DIRECTIVES ")", path, line,
                   DIRECTIVE_SHOWN, copy);
        goto out;
    }
    /* A second occurrence is most likely a copy-paste leftover with another value: which
     * one was meant cannot be guessed. Allow lines add up: one per rule and reason. */
    if (seen[k] && k != ALLOW) {
        rg_err_set(err, RG_EFILES, "%s:%zu: directive rollgate:%s given twice", path, line,
                   keys[k]);
        goto out;
    }
    seen[k] = true;
    if (eq)
        value = eq + 1;
    if (k == NO_TRANSACTION) {
        if (value) {
            rg_err_set(err, RG_EFILES, "%s:%zu: rollgate:no-transaction takes no value", path,
                       line);
            goto out;
        }
        d->no_transaction = true;
    } else if (k == PHASE) {
        if (!value) {
            rg_err_set(err, RG_EFILES, "%s:%zu: rollgate:phase needs a value (pre or post)", path,
                       line);
            goto out;
        }
        if (parse_phase(path, line, value, &d->post, err) != 0)
            goto out;
    } else if (!value) {
        rg_err_set(err, RG_EFILES, "%s:%zu: rollgate:%s needs a value (rollgate:%s=%s)", path, line,
                   keys[k], keys[k], examples[k]);
        goto out;
    } else if (k == ALLOW) {
        if (parse_allow(path, line, value, d, err) != 0)
            goto out;
    } else if (parse_timeout(path, line, keys[k], value,
                             k == LOCK_TIMEOUT ? &d->lock_timeout_ms : &d->statement_timeout_ms,
                             err) != 0) {
        goto out;
    }
    rc = 0;
out:
    free(copy);
    return rc;
}

/* Directives live in the leading comment lines only, so a "-- rollgate:" inside the SQL
 * (a comment on a later statement, a string) never changes how the file runs. */
static int parse_directives(const char *path, const char *sql, size_t len, bool only_phase,
                            struct rg_directives *d, struct rg_err *err)
{
    const char *p = sql, *end = sql + len;
    bool seen[NKEYS] = {false};
    size_t line = 1;

    /* Padding included: rg_source_prepare compares the bytes with rg_source_no_directives. */
    memset(d, 0, sizeof(*d));
    /* Editors on Windows put a BOM first; it must not hide the directives under it. */
    if (len >= 3 && memcmp(p, UTF8_BOM, 3) == 0)
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
        if (parse_directive(path, line, s, (size_t)(e - s), only_phase, d, seen, err) != 0)
            return -1;
    }
    return 0;
}

int rg_source_directives(const char *path, const char *sql, size_t len, struct rg_directives *d,
                         struct rg_err *err)
{
    return parse_directives(path, sql, len, false, d, err);
}

/* The length of the valid UTF-8 at the start of s[0, n), by PostgreSQL's rules
 * (pg_utf8_islegal: no overlong forms, no surrogates, nothing above U+10FFFF). */
static size_t utf8_valid(const unsigned char *s, size_t n)
{
    size_t i = 0;

    while (i < n) {
        unsigned char c = s[i];
        size_t len = c < 0x80                 ? 1
                     : c >= 0xC2 && c <= 0xDF ? 2
                     : c >= 0xE0 && c <= 0xEF ? 3
                     : c >= 0xF0 && c <= 0xF4 ? 4
                                              : 0;
        /* The second byte's range where the lead byte narrows it. */
        unsigned char lo = c == 0xE0 ? 0xA0 : c == 0xF0 ? 0x90 : 0x80;
        unsigned char hi = c == 0xED ? 0x9F : c == 0xF4 ? 0x8F : 0xBF;

        if (len == 0 || n - i < len)
            return i;
        for (size_t k = 1; k < len; k++)
            if (s[i + k] < (k == 1 ? lo : 0x80) || s[i + k] > (k == 1 ? hi : 0xBF))
                return i;
        i += len;
    }
    return n;
}

/* PostgreSQL is sent the SQL as UTF-8; other bytes would fail the migration part way, or
 * make a down file impossible to store. Errors name path:line. */
static int check_utf8(const char *path, const char *sql, size_t len, struct rg_err *err)
{
    size_t bad = utf8_valid((const unsigned char *)sql, len), line = 1, col = 1;

    if (bad == len)
        return 0;
    for (size_t i = 0; i < bad; i++, col++) {
        if (sql[i] == '\n') {
            line++;
            col = 0;
        }
    }
    rg_err_set(err, RG_EFILES,
               "%s:%zu: not valid UTF-8 (byte 0x%02X, byte %zu of the line): rollgate sends "
               "SQL as UTF-8; convert the file (iconv -f LATIN1 -t UTF-8)",
               path, line, (unsigned char)sql[bad], col);
    return -1;
}

/* The file's bytes and, when one is wanted, their checksum, taken before anything is
 * changed: it describes the file as written. */
static int read_summed(const char *path, char **data, size_t *len, char *checksum,
                       struct rg_err *err)
{
    if (read_file(path, data, len, err) != 0)
        return -1;
    if (checksum)
        rg_source_checksum(*data, *len, checksum);
    return 0;
}

int rg_source_read_checksum(const char *path, char *checksum, bool *post, struct rg_err *err)
{
    struct rg_directives d = {0};
    char *buf = NULL;
    size_t n = 0;
    int rc;

    if (read_summed(path, &buf, &n, checksum, err) != 0)
        return -1;
    /* Every plan needs each migration's phase, so it is read with the checksum, from the
     * bytes at hand; the rest of the header waits until the file runs. */
    rc = parse_directives(path, buf, n, true, &d, err);
    *post = d.post;
    free(buf);
    return rc;
}

/* Reads a file to run: its bytes, its checksum (when one is wanted), its directives, and a
 * BEGIN/COMMIT wrapper blanked unless the file runs outside a transaction. A leading UTF-8
 * byte order mark is dropped from the SQL, as psql drops it: PostgreSQL would take it for
 * part of the first word. */
int rg_source_read_sql(const char *path, char **sql, size_t *len, char *checksum,
                       struct rg_directives *d, struct rg_sql_stmt **stmts, size_t *nstmts,
                       struct rg_err *err)
{
    struct rg_sql_stmt *split = NULL;
    char *buf = NULL;
    size_t n = 0, nsplit = 0;
    int rc = -1;

    if (read_summed(path, &buf, &n, checksum, err) != 0)
        goto out;
    if (n >= 3 && memcmp(buf, UTF8_BOM, 3) == 0) {
        memmove(buf, buf + 3, n - 3 + 1);
        n -= 3;
    }
    if (check_utf8(path, buf, n, err) != 0 || parse_directives(path, buf, n, false, d, err) != 0 ||
        rg_sql_unwrap_split(buf, n, !d->no_transaction, path, &split, &nsplit, d->begin_modes,
                            err) != 0)
        goto out;
    *sql = buf;
    *len = n;
    buf = NULL;
    if (stmts) {
        *stmts = split;
        *nstmts = nsplit;
        split = NULL;
    }
    rc = 0;
out:
    free(split);
    free(buf);
    return rc;
}
