/* Lint: what a migration's statements will do to a live database, judged from PostgreSQL's
 * own parse tree (libpg_query) and the file's directives, with no database. Rule names
 * are squawk's where squawk has the rule, so a team moving from squawk keeps its vocabulary
 * and its allow lists. */
#ifndef RG_LINT_H
#define RG_LINT_H

#include <stdbool.h>
#include <stddef.h>

#include "err/err.h"

enum rg_lint_rule {
    RG_LINT_REQUIRE_CONCURRENT_INDEX_CREATION,
    RG_LINT_REQUIRE_CONCURRENT_INDEX_DELETION,
    RG_LINT_BAN_CONCURRENT_INDEX_CREATION_IN_TRANSACTION,
    RG_LINT_ADDING_NOT_NULLABLE_FIELD,
    RG_LINT_ADDING_REQUIRED_FIELD,
    RG_LINT_ADDING_FIELD_WITH_DEFAULT,
    RG_LINT_ADDING_SERIAL_PRIMARY_KEY_FIELD,
    RG_LINT_CHANGING_COLUMN_TYPE,
    RG_LINT_CONSTRAINT_MISSING_NOT_VALID,
    RG_LINT_ADDING_FOREIGN_KEY_CONSTRAINT,
    RG_LINT_DISALLOWED_UNIQUE_CONSTRAINT,
    RG_LINT_RENAMING_COLUMN,
    RG_LINT_RENAMING_TABLE,
    RG_LINT_BAN_DROP_COLUMN,
    RG_LINT_BAN_DROP_TABLE,
    RG_LINT_BAN_DROP_DATABASE,
    RG_LINT_BAN_DROP_NOT_NULL,
    RG_LINT_BAN_TRUNCATE_CASCADE,
    RG_LINT_PREFER_BIGINT_OVER_INT,
    RG_LINT_PREFER_BIGINT_OVER_SMALLINT,
    RG_LINT_PREFER_IDENTITY,
    RG_LINT_PREFER_TIMESTAMPTZ,
    RG_LINT_PREFER_TEXT_FIELD,
    RG_LINT_BAN_CHAR_FIELD,
    RG_LINT_PREFER_ROBUST_STMTS,
    /* rollgate's own: where the file's context matters */
    RG_LINT_DROP_IN_PRE_DEPLOY,
    RG_LINT_NO_TRANSACTION_MULTIPLE_STATEMENTS,
    RG_LINT_UNUSED_ALLOW,
    RG_LINT_NRULES
};

enum rg_lint_severity { RG_LINT_WARNING, RG_LINT_ERROR };

struct rg_lint_rule_info {
    const char *name;  /* squawk's name where squawk has the rule */
    const char *alias; /* another name allow accepts (squawk 2's), or NULL */
    enum rg_lint_severity severity;
    const char *hazard; /* the lock or rewrite it causes, or what breaks */
    const char *safe;   /* the safe way */
};

/* The rule's description; rule < RG_LINT_NRULES. */
const struct rg_lint_rule_info *rg_lint_rule_info(enum rg_lint_rule rule);
/* The rule named name[0, len) (or aliased so), or -1 when there is none. */
int rg_lint_rule_by_name(const char *name, size_t len);
const char *rg_lint_severity_name(enum rg_lint_severity s);

struct rg_lint_finding {
    enum rg_lint_rule rule;
    /* Index of the statement in rg_sql_statements' order over the same SQL; SIZE_MAX for
     * a finding about the file itself (an allow that matched nothing). */
    size_t stmt;
    size_t line, column; /* 1-based; the column counts characters */
    bool allowed;        /* accepted by the file's -- rollgate:allow= */
};

/* One file's findings, in statement order (the file's own last). */
struct rg_lint {
    struct rg_lint_finding *items;
    size_t n, cap;
};

#endif

struct rg_directives;

/* The findings of one migration file's SQL (as rg_source_prepare leaves it: byte order
 * mark dropped, a BEGIN/COMMIT wrapper blanked) into *out (emptied first), judged with the
 * file's directives d: no-transaction, phase=post and the allow lines, which mark the
 * findings they accept and add an unused-allow warning for each allowed rule that matched
 * nothing. Statements the parser cannot read are left to the server, without findings.
 * This is what `lint`, `validate`, `migrate` and `plan` call; plan matches a finding to
 * its statement by stmt. */
void rg_lint_sql(const char *sql, size_t len, const struct rg_directives *d, struct rg_lint *out);
struct rg_sql_stmt;
/* rg_lint_sql over the statements of sql that were split already (stmts[0, n), as
 * rg_sql_statements gives them): a file's one split serves its checks and its lint. */
void rg_lint_statements(const char *sql, const struct rg_sql_stmt *stmts, size_t n,
                        const struct rg_directives *d, struct rg_lint *out);
/* How many findings are errors not allowed: what makes lint exit 4. */
size_t rg_lint_errors(const struct rg_lint *l);
void rg_lint_free(struct rg_lint *l);

/* Logs each finding of path's l that is not allowed, one warning line each: file (path:
 * line:column), rule, severity, hazard and safe way. What migrate and validate do with
 * migrations.lint warn or enforce. */
void rg_lint_log(const char *path, const struct rg_lint *l);
/* An error (RG_EFILES) naming the first error of path's l that is not allowed, how many
 * there are, and how to allow one; 0 when there is none. */
int rg_lint_check(const char *path, const struct rg_lint *l, struct rg_err *err) RG_WUR;
