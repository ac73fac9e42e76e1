/* Just enough of PostgreSQL's lexical rules to find where top-level statements start:
 * comments, quoted strings and identifiers, dollar quotes and BEGIN ATOMIC bodies are
 * skipped, so a ';' or a BEGIN inside them is not taken for one. */
#ifndef RG_SQL_H
#define RG_SQL_H

#include <stddef.h>

#include "err/err.h"

/* rollgate runs each migration in a transaction of its own. A file that wraps itself in
 * BEGIN; ... COMMIT; (common in golang-migrate directories) has that wrapper blanked out
 * with spaces, in place, so error positions still point into the file as written. Any
 * other transaction control (COMMIT part way, ROLLBACK, PREPARE TRANSACTION...) is an
 * error (RG_EFILES) naming path:line: running it would commit part of the file without its
 * history row. ROLLBACK TO / SAVEPOINT / RELEASE are fine inside a transaction. */
int rg_sql_unwrap(char *sql, size_t len, const char *path, struct rg_err *err) RG_WUR;

struct rg_sql_stmt {
    size_t start, end; /* byte offsets in sql: the statement's first byte, and one past its ';'
                          (or the end) */
    size_t line;       /* 1-based line of its first byte */
};

/* The top-level statements of sql, in order, skipping empty ones (only comments or
 * whitespace). *out is allocated (rg_malloc family; NULL when there are none, free() it
 * either way); returns the count. A statement's first byte is its first token: comments
 * before it belong to no statement, comments inside it are kept. A file marked
 * -- rollgate:no-transaction is run one statement at a time with these, because
 * PostgreSQL runs a multi-statement query as one implicit transaction, where
 * CREATE INDEX CONCURRENTLY is refused. */
size_t rg_sql_statements(const char *sql, size_t len, struct rg_sql_stmt **out);

#endif
