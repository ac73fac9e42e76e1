/* Migration files: list a directory, parse names and directives, read (size-capped),
 * checksum. Knows nothing of databases. */
#ifndef RG_SOURCE_H
#define RG_SOURCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err/err.h"

/* A migration file larger than this is refused: it is almost certainly a data dump put in
 * the wrong place, and reading it whole would break the small memory footprint. */
#define RG_SOURCE_MAX_FILE (16L * 1024 * 1024)

/* Directives from the file's leading comment lines (-- rollgate:...). 0: not given. */
struct rg_directives {
    bool no_transaction;
    int64_t lock_timeout_ms;
    int64_t statement_timeout_ms;
};

struct rg_migration {
    int64_t version; /* > 0 */
    char *title;     /* "create_users" from 0001_create_users.up.sql */
    char *up_path;   /* path of the up file, as opened */
    char *up_name;   /* its base name, for messages */
    char *up_sql;    /* NUL-terminated contents; a BEGIN/COMMIT wrapper blanked (sql.h) */
    size_t up_len;
    char checksum[65]; /* hex SHA-256 of the up file's bytes */
    char *down_path;   /* NULL when there is no down file */
    char *down_sql;    /* NULL when there is no down file */
    struct rg_directives directives;
    /* The down file's own header: a rollback of CREATE INDEX CONCURRENTLY needs
     * no-transaction too. Zero when there is no down file. */
    struct rg_directives down_directives;
};

struct rg_source {
    char *dir;
    struct rg_migration *items; /* sorted by version, ascending, no duplicates */
    size_t n;
};

/* Loads every migration in dir. Errors (code RG_EFILES) name the file: a missing or
 * unreadable directory or file, a name that is not NNNN_title.up.sql / .down.sql, a
 * version that is not a positive 64-bit integer, two files for one version, a down file
 * without its up file, a file over RG_SOURCE_MAX_FILE, an unknown or malformed
 * -- rollgate: directive. Files that are not *.sql (README.md, .keep) and subdirectories
 * (data/, handled elsewhere) are skipped. */
int rg_source_load(const char *dir, struct rg_source *src, struct rg_err *err) RG_WUR;
void rg_source_free(struct rg_source *src);

/* The migration with this version, or NULL. */
const struct rg_migration *rg_source_find(const struct rg_source *src, int64_t version);

/* Hex SHA-256 of buf into out[65]. Aborts if OpenSSL cannot digest at all (no memory). */
void rg_source_checksum(const void *buf, size_t len, char out[65]);

#endif
