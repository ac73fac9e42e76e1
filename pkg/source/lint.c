/* Lint rules on PostgreSQL's parse tree (pg_query_parse_protobuf, one statement at a time),
 * one function per rule, named as squawk names it. A table created earlier in the same file
 * is new: nobody else reads or writes it yet and it holds no rows, so the rules about locks
 * and scans of existing tables leave it alone (as squawk does). */
#include "source/lint.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pg_query.h>
#include <pg_query/pg_query.pb-c.h>

#include "log/log.h"
#include "mem/mem.h"
#include "source/source.h"
#include "source/sql.h"

#define E RG_LINT_ERROR
#define W RG_LINT_WARNING

static const struct rg_lint_rule_info rules[RG_LINT_NRULES] = {
    [RG_LINT_REQUIRE_CONCURRENT_INDEX_CREATION] =
        {"require-concurrent-index-creation", NULL, E,
         "CREATE INDEX takes a SHARE lock on the table: writes wait until the index is built",
         "CREATE INDEX CONCURRENTLY in a migration of its own marked -- rollgate:no-transaction"},
    [RG_LINT_REQUIRE_CONCURRENT_INDEX_DELETION] =
        {"require-concurrent-index-deletion", NULL, W,
         "DROP INDEX takes an ACCESS EXCLUSIVE lock on the table: reads and writes queue "
         "behind it",
         "DROP INDEX CONCURRENTLY in a migration of its own marked -- rollgate:no-transaction"},
    [RG_LINT_BAN_CONCURRENT_INDEX_CREATION_IN_TRANSACTION] =
        {"ban-concurrent-index-creation-in-transaction", NULL, E,
         "CONCURRENTLY cannot run inside a transaction block, and rollgate runs this file in "
         "one: the migration fails",
         "mark the file -- rollgate:no-transaction, with this statement alone in it"},
    [RG_LINT_ADDING_NOT_NULLABLE_FIELD] =
        {"adding-not-nullable-field", NULL, E,
         "SET NOT NULL scans the whole table under an ACCESS EXCLUSIVE lock: reads and writes "
         "wait",
         "ADD CONSTRAINT ... CHECK (col IS NOT NULL) NOT VALID, VALIDATE CONSTRAINT in a later "
         "migration, then SET NOT NULL (PostgreSQL 12+ uses the check, no scan)"},
    [RG_LINT_ADDING_REQUIRED_FIELD] =
        {"adding-required-field", NULL, E,
         "a NOT NULL column without a default fails on a table with rows, and old pods' INSERTs "
         "fail once it exists",
         "add the column nullable or with a non-volatile DEFAULT"},
    [RG_LINT_ADDING_FIELD_WITH_DEFAULT] =
        {"adding-field-with-default", NULL, E,
         "a volatile default (or a stored generated, identity or serial column) rewrites the "
         "whole table under an ACCESS EXCLUSIVE lock",
         "add the column without a default (or with a constant one), backfill in batches, "
         "then SET DEFAULT"},
    [RG_LINT_ADDING_SERIAL_PRIMARY_KEY_FIELD] =
        {"adding-serial-primary-key-field", NULL, E,
         "adding a PRIMARY KEY builds its index under an ACCESS EXCLUSIVE lock: reads and "
         "writes wait",
         "CREATE UNIQUE INDEX CONCURRENTLY first, then ADD CONSTRAINT ... PRIMARY KEY USING "
         "INDEX"},
    [RG_LINT_CHANGING_COLUMN_TYPE] =
        {"changing-column-type", NULL, E,
         "ALTER COLUMN TYPE rewrites the table and its indexes under an ACCESS EXCLUSIVE lock "
         "(most type changes)",
         "add a new column, backfill it in batches, switch the code over, drop the old one "
         "after the rollout"},
    [RG_LINT_CONSTRAINT_MISSING_NOT_VALID] =
        {"constraint-missing-not-valid", NULL, E,
         "adding a CHECK or FOREIGN KEY constraint scans the whole table while holding its lock",
         "ADD CONSTRAINT ... NOT VALID, then VALIDATE CONSTRAINT in a later migration (SHARE "
         "UPDATE EXCLUSIVE: reads and writes go on)"},
    [RG_LINT_ADDING_FOREIGN_KEY_CONSTRAINT] =
        {"adding-foreign-key-constraint", NULL, E,
         "a FOREIGN KEY takes SHARE ROW EXCLUSIVE locks on both tables and checks every row: "
         "writes to both wait",
         "ADD CONSTRAINT ... FOREIGN KEY ... NOT VALID, then VALIDATE CONSTRAINT in a later "
         "migration"},
    [RG_LINT_DISALLOWED_UNIQUE_CONSTRAINT] =
        {"disallowed-unique-constraint", NULL, E,
         "adding a UNIQUE constraint builds its index under an ACCESS EXCLUSIVE lock: reads and "
         "writes wait",
         "CREATE UNIQUE INDEX CONCURRENTLY, then ADD CONSTRAINT ... UNIQUE USING INDEX"},
    [RG_LINT_RENAMING_COLUMN] = {"renaming-column", NULL, E,
                                 "pods still running the old code use the old name and fail",
                                 "add the new column, write both, backfill, switch reads, drop "
                                 "the old one after the rollout"},
    [RG_LINT_RENAMING_TABLE] = {"renaming-table", NULL, E,
                                "pods still running the old code use the old name and fail",
                                "create the new table (or a view under the old name), switch "
                                "the code, drop the old name after the rollout"},
    [RG_LINT_BAN_DROP_COLUMN] = {"ban-drop-column", NULL, W,
                                 "the column's data is lost, and code still reading it fails",
                                 "stop using the column in the code first; drop it in a "
                                 "post-deploy migration (-- rollgate:phase=post)"},
    [RG_LINT_BAN_DROP_TABLE] = {"ban-drop-table", NULL, W,
                                "the table's data is lost, and code still reading it fails",
                                "stop using the table in the code first; drop it in a "
                                "post-deploy migration (-- rollgate:phase=post)"},
    [RG_LINT_BAN_DROP_DATABASE] = {"ban-drop-database", NULL, E, "every table's data is lost",
                                   "not in a migration"},
    [RG_LINT_BAN_DROP_NOT_NULL] = {"ban-drop-not-null", NULL, W,
                                   "code that expects the column never NULL may break",
                                   "make sure every reader handles NULL first"},
    [RG_LINT_BAN_TRUNCATE_CASCADE] = {"ban-truncate-cascade", NULL, E,
                                      "CASCADE also empties every table that references this "
                                      "one, recursively",
                                      "TRUNCATE the tables by name, without CASCADE"},
    [RG_LINT_PREFER_BIGINT_OVER_INT] = {"prefer-bigint-over-int", NULL, W,
                                        "a 32-bit integer runs out at 2^31; widening it later "
                                        "rewrites the table",
                                        "bigint (or bigint GENERATED ... AS IDENTITY)"},
    [RG_LINT_PREFER_BIGINT_OVER_SMALLINT] = {"prefer-bigint-over-smallint", NULL, W,
                                             "a 16-bit integer runs out at 32767; widening it "
                                             "later rewrites the table",
                                             "bigint"},
    [RG_LINT_PREFER_IDENTITY] = {"prefer-identity", NULL, W,
                                 "serial types make permissions and dependencies of the "
                                 "sequence a separate thing to manage",
                                 "bigint GENERATED BY DEFAULT AS IDENTITY"},
    /* squawk 2 renamed it prefer-timestamp-tz; DESIGN.md and older squawk say this. */
    [RG_LINT_PREFER_TIMESTAMPTZ] = {"prefer-timestamptz", "prefer-timestamp-tz", W,
                                    "timestamp without time zone is read differently by "
                                    "sessions in different time zones; converting later "
                                    "rewrites the table",
                                    "timestamptz"},
    [RG_LINT_PREFER_TEXT_FIELD] = {"prefer-text-field", NULL, W,
                                   "changing a varchar(n)'s length later takes an ACCESS "
                                   "EXCLUSIVE lock (and a rewrite when it shrinks)",
                                   "text with a CHECK (length(col) <= n) constraint"},
    [RG_LINT_BAN_CHAR_FIELD] = {"ban-char-field", NULL, W,
                                "char(n) pads with spaces and wastes space; changing it "
                                "rewrites the table",
                                "text (or varchar)"},
    [RG_LINT_PREFER_ROBUST_STMTS] = {"prefer-robust-stmts", NULL, W,
                                     "a no-transaction migration that fails part way is run "
                                     "again after repair, and this statement then fails on "
                                     "what it already did",
                                     "IF NOT EXISTS / IF EXISTS"},
    [RG_LINT_DROP_IN_PRE_DEPLOY] = {"drop-in-pre-deploy", NULL, E,
                                    "pre-deploy migrations run while the old pods still serve: "
                                    "they fail on the dropped table or column",
                                    "drop it in a post-deploy migration (-- rollgate:phase=post), "
                                    "which runs after the rollout"},
    [RG_LINT_NO_TRANSACTION_MULTIPLE_STATEMENTS] =
        {"no-transaction-multiple-statements", NULL, W,
         "a no-transaction migration that fails after its first statement leaves the earlier "
         "ones applied and the migration marked failed, for a repair by hand",
         "one statement per no-transaction migration"},
    [RG_LINT_UNUSED_ALLOW] = {"unused-allow", NULL, W,
                              "the file allows a rule that matched nothing: a stale allow hides "
                              "a future finding",
                              "remove the rule from -- rollgate:allow"},
};

#undef E
#undef W

const struct rg_lint_rule_info *rg_lint_rule_info(enum rg_lint_rule rule)
{
    return &rules[rule];
}

int rg_lint_rule_by_name(const char *name, size_t len)
{
    for (int r = 0; r < RG_LINT_NRULES; r++) {
        const char *alias = rules[r].alias;
        if ((strlen(rules[r].name) == len && strncmp(rules[r].name, name, len) == 0) ||
            (alias && strlen(alias) == len && strncmp(alias, name, len) == 0))
            return r;
    }
    return -1;
}

const char *rg_lint_severity_name(enum rg_lint_severity s)
{
    return s == RG_LINT_ERROR ? "error" : "warning";
}

/* One file's lint under way. */
struct ctx {
    const char *sql;
    const struct rg_sql_stmt *st; /* the statement being judged */
    size_t index;                 /* its index */
    const struct rg_directives *d;
    const char **created; /* tables created by earlier statements of this file */
    size_t ncreated, capcreated;
    struct rg_lint *out;
};

static void add(struct rg_lint *l, struct rg_lint_finding f)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 8;
        l->items = rg_realloc(l->items, l->cap * sizeof(*l->items));
    }
    l->items[l->n++] = f;
}

/* A finding at byte loc of the statement (-1: at its start). */
static void report(struct ctx *c, enum rg_lint_rule rule, int32_t loc)
{
    size_t at = c->st->start + (loc > 0 ? (size_t)loc : 0), line = c->st->line, col = 1;

    if (at >= c->st->end)
        at = c->st->start;
    for (size_t i = c->st->start; i < at; i++)
        line += c->sql[i] == '\n';
    /* Characters, not bytes, back to the line's start: UTF-8 continuation bytes don't
     * count. */
    for (size_t i = at; i > 0 && c->sql[i - 1] != '\n'; i--)
        col += ((unsigned char)c->sql[i - 1] & 0xC0) != 0x80;
    add(c->out, (struct rg_lint_finding){rule, c->index, line, col, false});
}

static bool is_new(const struct ctx *c, const PgQuery__RangeVar *rel)
{
    for (size_t i = 0; rel && i < c->ncreated; i++)
        if (strcmp(c->created[i], rel->relname) == 0)
            return true;
    return false;
}

/* The last part of a qualified name (pg_catalog.int4 is int4). */
static const char *last_name(PgQuery__Node **names, size_t n)
{
    if (n == 0 || names[n - 1]->node_case != PG_QUERY__NODE__NODE_STRING)
        return "";
    return names[n - 1]->string->sval;
}

static bool is_one_of(const char *s, const char *const *list)
{
    for (; *list; list++)
        if (strcmp(s, *list) == 0)
            return true;
    return false;
}

static const PgQuery__AlterTableStmt *alter_table(const PgQuery__Node *n)
{
    if (n->node_case != PG_QUERY__NODE__NODE_ALTER_TABLE_STMT ||
        n->alter_table_stmt->objtype != PG_QUERY__OBJECT_TYPE__OBJECT_TABLE)
        return NULL;
    return n->alter_table_stmt;
}

static const PgQuery__AlterTableCmd *cmd_at(const PgQuery__AlterTableStmt *a, size_t i)
{
    return a->cmds[i]->node_case == PG_QUERY__NODE__NODE_ALTER_TABLE_CMD
               ? a->cmds[i]->alter_table_cmd
               : NULL;
}

/* The column an ALTER TABLE command adds, or NULL. */
static const PgQuery__ColumnDef *added_column(const PgQuery__AlterTableCmd *cmd)
{
    if (!cmd || cmd->subtype != PG_QUERY__ALTER_TABLE_TYPE__AT_AddColumn || !cmd->def ||
        cmd->def->node_case != PG_QUERY__NODE__NODE_COLUMN_DEF)
        return NULL;
    return cmd->def->column_def;
}

/* The constraint an ALTER TABLE command adds, or NULL. */
static const PgQuery__Constraint *added_constraint(const PgQuery__AlterTableCmd *cmd)
{
    if (!cmd || cmd->subtype != PG_QUERY__ALTER_TABLE_TYPE__AT_AddConstraint || !cmd->def ||
        cmd->def->node_case != PG_QUERY__NODE__NODE_CONSTRAINT)
        return NULL;
    return cmd->def->constraint;
}

/* The column's first constraint of this type, or NULL. */
static const PgQuery__Constraint *column_constraint(const PgQuery__ColumnDef *col,
                                                    PgQuery__ConstrType type)
{
    for (size_t i = 0; i < col->n_constraints; i++)
        if (col->constraints[i]->node_case == PG_QUERY__NODE__NODE_CONSTRAINT &&
            col->constraints[i]->constraint->contype == type)
            return col->constraints[i]->constraint;
    return NULL;
}

/* Calls fn for each column an existing table gains (ALTER TABLE ... ADD COLUMN), with the
 * statement's relation. */
static void each_added_column(struct ctx *c, const PgQuery__Node *n,
                              void (*fn)(struct ctx *, const PgQuery__ColumnDef *))
{
    const PgQuery__AlterTableStmt *a = alter_table(n);

    if (!a || is_new(c, a->relation))
        return;
    for (size_t i = 0; i < a->n_cmds; i++) {
        const PgQuery__ColumnDef *col = added_column(cmd_at(a, i));
        if (col)
            fn(c, col);
    }
}

/* Calls fn for each constraint an existing table gains, as ADD CONSTRAINT or on a column
 * it adds. */
static void each_added_constraint(struct ctx *c, const PgQuery__Node *n,
                                  void (*fn)(struct ctx *, const PgQuery__Constraint *))
{
    const PgQuery__AlterTableStmt *a = alter_table(n);

    if (!a || is_new(c, a->relation))
        return;
    for (size_t i = 0; i < a->n_cmds; i++) {
        const PgQuery__AlterTableCmd *cmd = cmd_at(a, i);
        const PgQuery__Constraint *con = added_constraint(cmd);
        const PgQuery__ColumnDef *col = added_column(cmd);

        if (con)
            fn(c, con);
        for (size_t k = 0; col && k < col->n_constraints; k++)
            if (col->constraints[k]->node_case == PG_QUERY__NODE__NODE_CONSTRAINT)
                fn(c, col->constraints[k]->constraint);
    }
}

/* Reports rule for each ALTER TABLE command of this subtype (existing_only: on a table
 * this file did not create). */
static void each_cmd(struct ctx *c, const PgQuery__Node *n, PgQuery__AlterTableType subtype,
                     bool existing_only, enum rg_lint_rule rule)
{
    const PgQuery__AlterTableStmt *a = alter_table(n);

    if (!a || (existing_only && is_new(c, a->relation)))
        return;
    for (size_t i = 0; i < a->n_cmds; i++) {
        const PgQuery__AlterTableCmd *cmd = cmd_at(a, i);
        if (cmd && cmd->subtype == subtype)
            report(c, rule, a->relation ? a->relation->location : -1);
    }
}

/* Calls fn for each type a column is given: in CREATE TABLE, ADD COLUMN and ALTER COLUMN
 * TYPE. */
static void each_type(struct ctx *c, const PgQuery__Node *n,
                      void (*fn)(struct ctx *, const PgQuery__TypeName *))
{
    if (n->node_case == PG_QUERY__NODE__NODE_CREATE_STMT) {
        const PgQuery__CreateStmt *cs = n->create_stmt;
        for (size_t i = 0; i < cs->n_table_elts; i++)
            if (cs->table_elts[i]->node_case == PG_QUERY__NODE__NODE_COLUMN_DEF &&
                cs->table_elts[i]->column_def->type_name)
                fn(c, cs->table_elts[i]->column_def->type_name);
        return;
    }
    const PgQuery__AlterTableStmt *a = alter_table(n);
    for (size_t i = 0; a && i < a->n_cmds; i++) {
        const PgQuery__AlterTableCmd *cmd = cmd_at(a, i);
        if (!cmd || (cmd->subtype != PG_QUERY__ALTER_TABLE_TYPE__AT_AddColumn &&
                     cmd->subtype != PG_QUERY__ALTER_TABLE_TYPE__AT_AlterColumnType))
            continue;
        if (cmd->def && cmd->def->node_case == PG_QUERY__NODE__NODE_COLUMN_DEF &&
            cmd->def->column_def->type_name)
            fn(c, cmd->def->column_def->type_name);
    }
}

static const char *type_name(const PgQuery__TypeName *t)
{
    return last_name(t->names, t->n_names);
}

/* --- rules on indexes --- */

static void require_concurrent_index_creation(struct ctx *c, const PgQuery__Node *n)
{
    if (n->node_case == PG_QUERY__NODE__NODE_INDEX_STMT && !n->index_stmt->concurrent &&
        !is_new(c, n->index_stmt->relation))
        report(c, RG_LINT_REQUIRE_CONCURRENT_INDEX_CREATION, -1);
}

static bool drops_index(const PgQuery__Node *n)
{
    return n->node_case == PG_QUERY__NODE__NODE_DROP_STMT &&
           n->drop_stmt->remove_type == PG_QUERY__OBJECT_TYPE__OBJECT_INDEX;
}

static void require_concurrent_index_deletion(struct ctx *c, const PgQuery__Node *n)
{
    if (drops_index(n) && !n->drop_stmt->concurrent)
        report(c, RG_LINT_REQUIRE_CONCURRENT_INDEX_DELETION, -1);
}

/* DROP INDEX CONCURRENTLY fails inside a transaction the same way. */
static void ban_concurrent_index_creation_in_transaction(struct ctx *c, const PgQuery__Node *n)
{
    bool concurrent =
        (n->node_case == PG_QUERY__NODE__NODE_INDEX_STMT && n->index_stmt->concurrent) ||
        (drops_index(n) && n->drop_stmt->concurrent);

    if (concurrent && !c->d->no_transaction)
        report(c, RG_LINT_BAN_CONCURRENT_INDEX_CREATION_IN_TRANSACTION, -1);
}

/* --- rules on columns of existing tables --- */

static void adding_not_nullable_field(struct ctx *c, const PgQuery__Node *n)
{
    each_cmd(c, n, PG_QUERY__ALTER_TABLE_TYPE__AT_SetNotNull, true,
             RG_LINT_ADDING_NOT_NULLABLE_FIELD);
}

static void required_column(struct ctx *c, const PgQuery__ColumnDef *col)
{
    bool not_null = col->is_not_null ||
                    column_constraint(col, PG_QUERY__CONSTR_TYPE__CONSTR_NOTNULL) ||
                    column_constraint(col, PG_QUERY__CONSTR_TYPE__CONSTR_PRIMARY);

    if (not_null && !col->raw_default &&
        !column_constraint(col, PG_QUERY__CONSTR_TYPE__CONSTR_DEFAULT) &&
        !column_constraint(col, PG_QUERY__CONSTR_TYPE__CONSTR_GENERATED) &&
        !column_constraint(col, PG_QUERY__CONSTR_TYPE__CONSTR_IDENTITY))
        report(c, RG_LINT_ADDING_REQUIRED_FIELD, col->location);
}

static void adding_required_field(struct ctx *c, const PgQuery__Node *n)
{
    each_added_column(c, n, required_column);
}

/* Whether PostgreSQL may evaluate expr to a different value per row: then a new column's
 * default is computed for every row, which rewrites the table. Functions are judged by a
 * list of built-ins known to be stable or immutable; any other is presumed volatile (a
 * user's function's volatility is in the database, not in the file). */
static bool volatile_expr(const PgQuery__Node *e)
{
    static const char *const stable[] = {"now",
                                         "statement_timestamp",
                                         "transaction_timestamp",
                                         "lower",
                                         "upper",
                                         "concat",
                                         "length",
                                         "abs",
                                         "round",
                                         "to_json",
                                         "to_jsonb",
                                         "json_build_object",
                                         "jsonb_build_object",
                                         "json_build_array",
                                         "jsonb_build_array",
                                         "make_interval",
                                         "make_date",
                                         "make_timestamp",
                                         "make_timestamptz",
                                         "to_timestamp",
                                         "to_date",
                                         "to_char",
                                         "current_setting",
                                         NULL};

    if (!e)
        return false;
    switch (e->node_case) {
    case PG_QUERY__NODE__NODE_TYPE_CAST:
        return volatile_expr(e->type_cast->arg);
    case PG_QUERY__NODE__NODE_A_EXPR:
        return volatile_expr(e->a_expr->lexpr) || volatile_expr(e->a_expr->rexpr);
    case PG_QUERY__NODE__NODE_FUNC_CALL:
        if (!is_one_of(last_name(e->func_call->funcname, e->func_call->n_funcname), stable))
            return true;
        for (size_t i = 0; i < e->func_call->n_args; i++)
            if (volatile_expr(e->func_call->args[i]))
                return true;
        return false;
    default: /* constants, CURRENT_TIMESTAMP and the like */
        return false;
    }
}

static void column_with_default(struct ctx *c, const PgQuery__ColumnDef *col)
{
    static const char *const serials[] = {"serial",    "serial2",     "serial4", "serial8",
                                          "bigserial", "smallserial", NULL};
    const PgQuery__Constraint *def = column_constraint(col, PG_QUERY__CONSTR_TYPE__CONSTR_DEFAULT);

    if ((def && volatile_expr(def->raw_expr)) || volatile_expr(col->raw_default) ||
        column_constraint(col, PG_QUERY__CONSTR_TYPE__CONSTR_GENERATED) ||
        column_constraint(col, PG_QUERY__CONSTR_TYPE__CONSTR_IDENTITY) ||
        (col->type_name && is_one_of(type_name(col->type_name), serials)))
        report(c, RG_LINT_ADDING_FIELD_WITH_DEFAULT, col->location);
}

static void adding_field_with_default(struct ctx *c, const PgQuery__Node *n)
{
    each_added_column(c, n, column_with_default);
}

static void changing_column_type(struct ctx *c, const PgQuery__Node *n)
{
    each_cmd(c, n, PG_QUERY__ALTER_TABLE_TYPE__AT_AlterColumnType, true,
             RG_LINT_CHANGING_COLUMN_TYPE);
}

/* --- rules on constraints of existing tables --- */

static void primary_key(struct ctx *c, const PgQuery__Constraint *con)
{
    if (con->contype == PG_QUERY__CONSTR_TYPE__CONSTR_PRIMARY &&
        (!con->indexname || !*con->indexname))
        report(c, RG_LINT_ADDING_SERIAL_PRIMARY_KEY_FIELD, con->location);
}

static void adding_serial_primary_key_field(struct ctx *c, const PgQuery__Node *n)
{
    each_added_constraint(c, n, primary_key);
}

static void check_or_foreign(struct ctx *c, const PgQuery__Constraint *con)
{
    if ((con->contype == PG_QUERY__CONSTR_TYPE__CONSTR_CHECK ||
         con->contype == PG_QUERY__CONSTR_TYPE__CONSTR_FOREIGN) &&
        !con->skip_validation)
        report(c, RG_LINT_CONSTRAINT_MISSING_NOT_VALID, con->location);
}

static void constraint_missing_not_valid(struct ctx *c, const PgQuery__Node *n)
{
    each_added_constraint(c, n, check_or_foreign);
}

static void foreign_key(struct ctx *c, const PgQuery__Constraint *con)
{
    if (con->contype == PG_QUERY__CONSTR_TYPE__CONSTR_FOREIGN && !con->skip_validation)
        report(c, RG_LINT_ADDING_FOREIGN_KEY_CONSTRAINT, con->location);
}

static void adding_foreign_key_constraint(struct ctx *c, const PgQuery__Node *n)
{
    each_added_constraint(c, n, foreign_key);
}

static void unique(struct ctx *c, const PgQuery__Constraint *con)
{
    if (con->contype == PG_QUERY__CONSTR_TYPE__CONSTR_UNIQUE &&
        (!con->indexname || !*con->indexname))
        report(c, RG_LINT_DISALLOWED_UNIQUE_CONSTRAINT, con->location);
}

static void disallowed_unique_constraint(struct ctx *c, const PgQuery__Node *n)
{
    each_added_constraint(c, n, unique);
}

/* --- renames and drops --- */

static bool renames(const PgQuery__Node *n, PgQuery__ObjectType type)
{
    return n->node_case == PG_QUERY__NODE__NODE_RENAME_STMT && n->rename_stmt->rename_type == type;
}

static void renaming_column(struct ctx *c, const PgQuery__Node *n)
{
    if (renames(n, PG_QUERY__OBJECT_TYPE__OBJECT_COLUMN) &&
        n->rename_stmt->relation_type == PG_QUERY__OBJECT_TYPE__OBJECT_TABLE)
        report(c, RG_LINT_RENAMING_COLUMN, -1);
}

static void renaming_table(struct ctx *c, const PgQuery__Node *n)
{
    if (renames(n, PG_QUERY__OBJECT_TYPE__OBJECT_TABLE))
        report(c, RG_LINT_RENAMING_TABLE, -1);
}

static bool drops_table(const PgQuery__Node *n)
{
    return n->node_case == PG_QUERY__NODE__NODE_DROP_STMT &&
           n->drop_stmt->remove_type == PG_QUERY__OBJECT_TYPE__OBJECT_TABLE;
}

static void ban_drop_column(struct ctx *c, const PgQuery__Node *n)
{
    each_cmd(c, n, PG_QUERY__ALTER_TABLE_TYPE__AT_DropColumn, false, RG_LINT_BAN_DROP_COLUMN);
}

static void ban_drop_table(struct ctx *c, const PgQuery__Node *n)
{
    if (drops_table(n))
        report(c, RG_LINT_BAN_DROP_TABLE, -1);
}

static void ban_drop_database(struct ctx *c, const PgQuery__Node *n)
{
    if (n->node_case == PG_QUERY__NODE__NODE_DROPDB_STMT)
        report(c, RG_LINT_BAN_DROP_DATABASE, -1);
}

static void ban_drop_not_null(struct ctx *c, const PgQuery__Node *n)
{
    each_cmd(c, n, PG_QUERY__ALTER_TABLE_TYPE__AT_DropNotNull, false, RG_LINT_BAN_DROP_NOT_NULL);
}

static void ban_truncate_cascade(struct ctx *c, const PgQuery__Node *n)
{
    if (n->node_case == PG_QUERY__NODE__NODE_TRUNCATE_STMT &&
        n->truncate_stmt->behavior == PG_QUERY__DROP_BEHAVIOR__DROP_CASCADE)
        report(c, RG_LINT_BAN_TRUNCATE_CASCADE, -1);
}

/* --- types --- */

/* The type rules: the type names each reports, as the parser spells them, and whether
 * only a type with a length counts (varchar(n) is a length to change later; plain varchar
 * has none). char(n) and character(n) are bpchar to the parser; "char" (one byte) is
 * another type. */
static const struct type_rule {
    enum rg_lint_rule rule;
    bool needs_length;
    const char *const names[7]; /* NULL-terminated */
} type_rules[] = {
    {RG_LINT_PREFER_BIGINT_OVER_INT, false, {"int4", "int", "integer", "serial", "serial4"}},
    {RG_LINT_PREFER_BIGINT_OVER_SMALLINT, false, {"int2", "smallint", "smallserial", "serial2"}},
    {RG_LINT_PREFER_IDENTITY,
     false,
     {"serial", "serial2", "serial4", "serial8", "bigserial", "smallserial"}},
    {RG_LINT_PREFER_TIMESTAMPTZ, false, {"timestamp"}},
    {RG_LINT_PREFER_TEXT_FIELD, true, {"varchar"}},
    {RG_LINT_BAN_CHAR_FIELD, false, {"bpchar"}},
};

static void column_type(struct ctx *c, const PgQuery__TypeName *t)
{
    const char *name = type_name(t);

    for (size_t i = 0; i < sizeof(type_rules) / sizeof(type_rules[0]); i++) {
        const struct type_rule *r = &type_rules[i];
        if (is_one_of(name, r->names) && (!r->needs_length || t->n_typmods > 0))
            report(c, r->rule, t->location);
    }
}

/* Every type rule, for each column a statement creates, adds or changes. */
static void column_types(struct ctx *c, const PgQuery__Node *n)
{
    each_type(c, n, column_type);
}

/* --- the file's context --- */

/* Only a no-transaction migration can stop part way: a transactional one rolls back whole,
 * so its statements need no IF [NOT] EXISTS to be run again. */
static void prefer_robust_stmts(struct ctx *c, const PgQuery__Node *n)
{
    const PgQuery__AlterTableStmt *a = alter_table(n);
    bool fragile = false;

    if (!c->d->no_transaction)
        return;
    if (n->node_case == PG_QUERY__NODE__NODE_CREATE_STMT)
        fragile = !n->create_stmt->if_not_exists;
    else if (n->node_case == PG_QUERY__NODE__NODE_INDEX_STMT)
        fragile = !n->index_stmt->if_not_exists;
    else if (drops_table(n) || drops_index(n))
        fragile = !n->drop_stmt->missing_ok;
    for (size_t i = 0; a && i < a->n_cmds; i++) {
        const PgQuery__AlterTableCmd *cmd = cmd_at(a, i);
        if (cmd && (cmd->subtype == PG_QUERY__ALTER_TABLE_TYPE__AT_AddColumn ||
                    cmd->subtype == PG_QUERY__ALTER_TABLE_TYPE__AT_DropColumn))
            fragile = fragile || !cmd->missing_ok;
    }
    if (fragile)
        report(c, RG_LINT_PREFER_ROBUST_STMTS, -1);
}

static void drop_in_pre_deploy(struct ctx *c, const PgQuery__Node *n)
{
    if (c->d->post)
        return;
    if (drops_table(n))
        report(c, RG_LINT_DROP_IN_PRE_DEPLOY, -1);
    else
        each_cmd(c, n, PG_QUERY__ALTER_TABLE_TYPE__AT_DropColumn, false,
                 RG_LINT_DROP_IN_PRE_DEPLOY);
}

static void no_transaction_multiple_statements(struct ctx *c, const PgQuery__Node *n)
{
    (void)n;
    if (c->d->no_transaction && c->index == 1)
        report(c, RG_LINT_NO_TRANSACTION_MULTIPLE_STATEMENTS, -1);
}

typedef void (*rule_fn)(struct ctx *, const PgQuery__Node *);

static const rule_fn checks[] = {
    require_concurrent_index_creation,
    require_concurrent_index_deletion,
    ban_concurrent_index_creation_in_transaction,
    adding_not_nullable_field,
    adding_required_field,
    adding_field_with_default,
    adding_serial_primary_key_field,
    changing_column_type,
    constraint_missing_not_valid,
    adding_foreign_key_constraint,
    disallowed_unique_constraint,
    renaming_column,
    renaming_table,
    ban_drop_column,
    ban_drop_table,
    ban_drop_database,
    ban_drop_not_null,
    ban_truncate_cascade,
    column_types,
    prefer_robust_stmts,
    drop_in_pre_deploy,
    no_transaction_multiple_statements,
};

/* protobuf-c's unpack fails only when malloc does. */
static void *unpacked(void *p)
{
    if (!p) {
        fputs("rollgate: out of memory\n", stderr);
        abort();
    }
    return p;
}

/* Remembers the table a CREATE TABLE (or CREATE TABLE AS) makes. */
static void note_created(struct ctx *c, const PgQuery__Node *n)
{
    const PgQuery__RangeVar *rel = NULL;

    if (n->node_case == PG_QUERY__NODE__NODE_CREATE_STMT)
        rel = n->create_stmt->relation;
    else if (n->node_case == PG_QUERY__NODE__NODE_CREATE_TABLE_AS_STMT &&
             n->create_table_as_stmt->into)
        rel = n->create_table_as_stmt->into->rel;
    if (!rel || !rel->relname)
        return;
    if (c->ncreated == c->capcreated) {
        c->capcreated = c->capcreated ? c->capcreated * 2 : 8;
        c->created = rg_realloc(c->created, c->capcreated * sizeof(*c->created));
    }
    c->created[c->ncreated++] = rg_strdup(rel->relname);
}

/* A statement's findings come rule by rule; they are shown in the order of the text. */
static void sort_from(struct rg_lint *l, size_t from)
{
    for (size_t i = from + 1; i < l->n; i++) {
        struct rg_lint_finding f = l->items[i];
        size_t k = i;
        for (; k > from && (l->items[k - 1].line > f.line ||
                            (l->items[k - 1].line == f.line && l->items[k - 1].column > f.column));
             k--)
            l->items[k] = l->items[k - 1];
        l->items[k] = f;
    }
}

static void lint_statement(struct ctx *c)
{
    size_t from = c->out->n;
    char *text = rg_strndup(c->sql + c->st->start, c->st->end - c->st->start);
    PgQueryProtobufParseResult res = pg_query_parse_protobuf(text);
    PgQuery__ParseResult *tree = NULL;

    if (res.error)
        goto out;
    tree = unpacked(pg_query__parse_result__unpack(NULL, res.parse_tree.len,
                                                   (const uint8_t *)res.parse_tree.data));
    for (size_t i = 0; i < tree->n_stmts; i++) {
        const PgQuery__Node *n = tree->stmts[i]->stmt;
        if (!n)
            continue;
        for (size_t k = 0; k < sizeof(checks) / sizeof(checks[0]); k++)
            checks[k](c, n);
        note_created(c, n);
    }
    sort_from(c->out, from);
    pg_query__parse_result__free_unpacked(tree, NULL);
out:
    pg_query_free_protobuf_parse_result(res);
    free(text);
}

void rg_lint_sql(const char *sql, size_t len, const struct rg_directives *d, struct rg_lint *out)
{
    struct rg_sql_stmt *stmts = NULL;
    size_t n = rg_sql_statements(sql, len, &stmts);

    rg_lint_statements(sql, stmts, n, d, out);
    free(stmts);
}

void rg_lint_statements(const char *sql, const struct rg_sql_stmt *stmts, size_t n,
                        const struct rg_directives *d, struct rg_lint *out)
{
    struct ctx c = {.sql = sql, .d = d, .out = out};
    bool used[RG_LINT_NRULES] = {false};

    out->n = 0;
    for (size_t i = 0; i < n; i++) {
        c.st = &stmts[i];
        c.index = i;
        /* Data statements are not parsed again: no rule looks into them, and a 16 MiB INSERT's
         * tree, serialised and read back, took three times the memory of its split. Only
         * the rule about the statements' count applies to them. */
        if (stmts[i].kind == RG_SQL_DATA)
            no_transaction_multiple_statements(&c, NULL);
        else if (stmts[i].kind != RG_SQL_UNPARSED)
            lint_statement(&c);
    }
    for (size_t i = 0; i < out->n; i++) {
        struct rg_lint_finding *f = &out->items[i];
        f->allowed = d->allow_line[f->rule] != 0;
        used[f->rule] = used[f->rule] || f->allowed;
    }
    for (int r = 0; r < RG_LINT_NRULES; r++)
        if (d->allow_line[r] && !used[r] && r != RG_LINT_UNUSED_ALLOW)
            add(out, (struct rg_lint_finding){RG_LINT_UNUSED_ALLOW, SIZE_MAX, d->allow_line[r], 1,
                                              d->allow_line[RG_LINT_UNUSED_ALLOW] != 0});
    for (size_t i = 0; i < c.ncreated; i++)
        free((void *)c.created[i]);
    free(c.created);
}

size_t rg_lint_errors(const struct rg_lint *l)
{
    size_t errors = 0;

    for (size_t i = 0; i < l->n; i++)
        errors += !l->items[i].allowed && rules[l->items[i].rule].severity == RG_LINT_ERROR;
    return errors;
}

void rg_lint_free(struct rg_lint *l)
{
    if (!l)
        return;
    free(l->items);
    *l = (struct rg_lint){0};
}

void rg_lint_log(const char *path, const struct rg_lint *l)
{
    for (size_t i = 0; i < l->n; i++) {
        const struct rg_lint_finding *f = &l->items[i];
        const struct rg_lint_rule_info *info = &rules[f->rule];
        if (f->allowed)
            continue;
        RG_WARN("lint: %s" RG_F "file=%s:%zu:%zu" RG_F "rule=%s" RG_F "severity=%s" RG_F "safe=%s",
                info->hazard, path, f->line, f->column, info->name,
                rg_lint_severity_name(info->severity), info->safe);
    }
}

int rg_lint_check(const char *path, const struct rg_lint *l, struct rg_err *err)
{
    size_t errors = rg_lint_errors(l);

    for (size_t i = 0; errors && i < l->n; i++) {
        const struct rg_lint_finding *f = &l->items[i];
        const struct rg_lint_rule_info *info = &rules[f->rule];
        if (f->allowed || info->severity != RG_LINT_ERROR)
            continue;
        rg_err_set(err, RG_EFILES,
                   "%s:%zu:%zu: lint error %s: %s; %zu lint error%s not allowed in this file "
                   "(rewrite it the safe way, accept it with -- rollgate:allow=%s REASON, or "
                   "set migrations.lint: warn)",
                   path, f->line, f->column, info->name, info->hazard, errors,
                   errors == 1 ? "" : "s", info->name);
        return -1;
    }
    return 0;
}
