/* Statements as PostgreSQL's own parser sees them (libpg_query, PostgreSQL 15's grammar):
 * where each top-level statement starts and ends, and what it does to the transaction.
 * Strings, comments, dollar quotes, BEGIN ATOMIC bodies and CREATE RULE ... (a; b) are
 * the parser's business, so they behave exactly as in psql. SQL the parser cannot read
 * (syntax newer than PostgreSQL 15, or an error) is split by PostgreSQL's scanner instead
 * and left for the server to judge. */
#ifndef RG_SQL_H
#define RG_SQL_H

#include <stdbool.h>
#include <stddef.h>

#include "err/err.h"

/* What a statement does, as far as running it inside rollgate's transaction goes. */
enum rg_sql_kind {
    RG_SQL_OTHER,    /* parsed; anything else (SAVEPOINT, ROLLBACK TO and ANALYZE included) */
    RG_SQL_UNPARSED, /* the parser could not read it: the server will judge it */
    RG_SQL_BEGIN,    /* BEGIN, START TRANSACTION */
    RG_SQL_COMMIT,   /* COMMIT, END */
    RG_SQL_ROLLBACK, /* ROLLBACK, ABORT */
    RG_SQL_PREPARE_TRANSACTION,
    RG_SQL_COMMIT_PREPARED,
    RG_SQL_ROLLBACK_PREPARED,
    RG_SQL_VACUUM,
    RG_SQL_COPY_STDIN,
    RG_SQL_COPY_STDOUT,
    /* Starts with INSERT, UPDATE, DELETE, MERGE, SELECT, VALUES, TABLE, WITH or "(": data,
     * which no lint rule looks into (known from its first token; not parsed again). */
    RG_SQL_DATA,
};

struct rg_sql_stmt {
    size_t start, end; /* byte offsets in sql: the statement's first token, and one past its
                          ';' (or the end of sql) */
    size_t line;       /* 1-based line of its first byte */
    enum rg_sql_kind kind;
};

/* The top-level statements of sql[0, len) (up to a NUL, if one comes first), in order,
 * skipping empty ones (only comments, white space or ';'). A leading UTF-8 byte order
 * mark is skipped, as psql does. *out is allocated (rg_malloc family; NULL when there are
 * none, free() it either way); returns the count. Comments before a statement belong to
 * no statement, comments inside it are kept. A file marked -- rollgate:no-transaction is
 * run one statement at a time with these, because PostgreSQL runs a multi-statement query
 * as one implicit transaction, where CREATE INDEX CONCURRENTLY is refused. */
size_t rg_sql_statements(const char *sql, size_t len, struct rg_sql_stmt **out);

/* Checks a migration file's SQL before anything runs; errors (RG_EFILES) name path, and
 * path:line for a statement:
 *  - a file with no statement (only comments or white space) is refused;
 *  - COPY ... FROM STDIN / TO STDOUT is refused: rollgate sends no COPY data and reads none;
 *  - in_transaction (rollgate runs the file in a transaction of its own): a file that wraps
 *    itself in BEGIN; ... COMMIT; (common in golang-migrate directories) has that wrapper
 *    blanked out with spaces, in place, so error positions still point into the file as
 *    written. Any other transaction control (COMMIT part way, ROLLBACK, BEGIN, PREPARE
 *    TRANSACTION, COMMIT/ROLLBACK PREPARED) and VACUUM are refused: running them would
 *    commit part of the file without its history row, or cannot run in a transaction at
 *    all. SAVEPOINT, RELEASE and ROLLBACK TO are fine. */
int rg_sql_unwrap(char *sql, size_t len, bool in_transaction, const char *path,
                  struct rg_err *err) RG_WUR;
/* A wrapper's BEGIN's isolation level as SQL: "ISOLATION LEVEL READ UNCOMMITTED" at the
 * longest. */
#define RG_SQL_MODES_MAX 40

/* rg_sql_unwrap, and on success the statements of sql as it leaves it (a blanked wrapper's
 * left out) into *stmts and *n, as rg_sql_statements would give them: the lint reads them
 * instead of splitting the file again; and into modes (RG_SQL_MODES_MAX bytes) the
 * isolation level the blanked wrapper's BEGIN set ("ISOLATION LEVEL SERIALIZABLE"), for the
 * transaction rollgate opens instead, or "" when it set none or there is no wrapper. A
 * wrapper that begins READ ONLY is refused (the history row is written in the same
 * transaction); READ WRITE and [NOT] DEFERRABLE change nothing for a transaction that
 * writes. */
int rg_sql_unwrap_split(char *sql, size_t len, bool in_transaction, const char *path,
                        struct rg_sql_stmt **stmts, size_t *n, char *modes,
                        struct rg_err *err) RG_WUR;

/* The index a CREATE [UNIQUE] INDEX CONCURRENTLY statement builds, as PostgreSQL's parser
 * reads it: an interrupted or failed concurrent build leaves an invalid index of that name
 * behind, which the next attempt must drop first (pkg/pg). */
struct rg_sql_index {
    char *schema; /* the table's schema as written, where PostgreSQL puts the index; NULL
                     when unqualified (search_path decides) */
    char *name;   /* the index's name, folded as the parser folds it */
    bool if_not_exists;
};

/* Whether sql[0, len) is one CREATE INDEX CONCURRENTLY statement that names its index;
 * then *ix is filled (free its strings with rg_sql_index_free). A build without a name
 * (PostgreSQL picks one) or SQL the parser cannot read is not one. */
bool rg_sql_index_build(const char *sql, size_t len, struct rg_sql_index *ix);
void rg_sql_index_free(struct rg_sql_index *ix);

/* Whether a and b (each up to len bytes or a NUL) are the same statements token for token
 * as PostgreSQL's scanner reads them, comments and white space aside: an edit that changed
 * only those cannot have changed what runs. A keyword's or identifier's case, a string's
 * contents, a function body's white space (one token) all count. SQL the scanner cannot
 * read is never the same. */
bool rg_sql_same_tokens(const char *a, size_t alen, const char *b, size_t blen);

#endif
