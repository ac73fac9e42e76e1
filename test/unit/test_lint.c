/* Lint rules on PostgreSQL's parse tree: for each rule, SQL that must be found and SQL
 * that must not; then positions, allow directives, unused allows and unknown rule names. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "source/lint.h"
#include "source/source.h"

/* The findings of sql, with the directives of its leading comments. */
static struct rg_lint lint(const char *sql)
{
    struct rg_directives d;
    struct rg_err err = {0};
    struct rg_lint l = {0};

    cr_assert_eq(rg_source_directives("m/0001_x.up.sql", sql, strlen(sql), &d, &err), 0, "%s",
                 err.msg);
    rg_lint_sql(sql, strlen(sql), &d, &l);
    return l;
}

static size_t count(const struct rg_lint *l, enum rg_lint_rule rule)
{
    size_t n = 0;
    for (size_t i = 0; i < l->n; i++)
        n += l->items[i].rule == rule;
    return n;
}

static void expect(enum rg_lint_rule rule, const char *sql, size_t want)
{
    struct rg_lint l = lint(sql);
    cr_expect_eq(count(&l, rule), want, "%s: %zu finding(s) in <%s>, want %zu",
                 rg_lint_rule_info(rule)->name, count(&l, rule), sql, want);
    rg_lint_free(&l);
}

/* One test per rule: each bad statement is found, each good one is not. */
#define RULE(test, rule, bad, good)                                                                \
    Test(lint, test)                                                                               \
    {                                                                                              \
        static const char *const bads[] = bad;                                                     \
        static const char *const goods[] = good;                                                   \
        for (size_t i = 0; i < sizeof(bads) / sizeof(bads[0]); i++)                                \
            expect(rule, bads[i], 1);                                                              \
        for (size_t i = 0; i < sizeof(goods) / sizeof(goods[0]); i++)                              \
            expect(rule, goods[i], 0);                                                             \
    }
#define L(...)                                                                                     \
    {                                                                                              \
        __VA_ARGS__                                                                                \
    }
#define NT "-- rollgate:no-transaction\n"

RULE(require_concurrent_index_creation, RG_LINT_REQUIRE_CONCURRENT_INDEX_CREATION,
     L("CREATE INDEX i ON t (a);", "CREATE UNIQUE INDEX IF NOT EXISTS i ON s.t (a);"),
     L(NT "CREATE INDEX CONCURRENTLY i ON t (a);",
       "CREATE TABLE t (a int);\nCREATE INDEX i ON t (a);"))
RULE(require_concurrent_index_deletion, RG_LINT_REQUIRE_CONCURRENT_INDEX_DELETION,
     L("DROP INDEX i;", "DROP INDEX IF EXISTS s.i;"),
     L(NT "DROP INDEX CONCURRENTLY i;", "DROP TABLE t;"))
RULE(ban_concurrent_index_creation_in_transaction,
     RG_LINT_BAN_CONCURRENT_INDEX_CREATION_IN_TRANSACTION,
     L("CREATE INDEX CONCURRENTLY i ON t (a);", "DROP INDEX CONCURRENTLY i;"),
     L(NT "CREATE INDEX CONCURRENTLY i ON t (a);", "CREATE INDEX i ON t (a);"))
RULE(adding_not_nullable_field, RG_LINT_ADDING_NOT_NULLABLE_FIELD,
     L("ALTER TABLE t ALTER COLUMN a SET NOT NULL;"),
     L("ALTER TABLE t ALTER COLUMN a DROP NOT NULL;",
       "CREATE TABLE t (a int);\nALTER TABLE t ALTER COLUMN a SET NOT NULL;"))
RULE(adding_required_field, RG_LINT_ADDING_REQUIRED_FIELD,
     L("ALTER TABLE t ADD COLUMN a text NOT NULL;"),
     L("ALTER TABLE t ADD COLUMN a text NOT NULL DEFAULT '';", "ALTER TABLE t ADD COLUMN a text;",
       "ALTER TABLE t ADD COLUMN a int NOT NULL GENERATED ALWAYS AS (b + 1) STORED;"))
RULE(adding_field_with_default, RG_LINT_ADDING_FIELD_WITH_DEFAULT,
     L("ALTER TABLE t ADD COLUMN a uuid DEFAULT gen_random_uuid();",
       "ALTER TABLE t ADD COLUMN a float DEFAULT random() * 10;",
       "ALTER TABLE t ADD COLUMN a int GENERATED ALWAYS AS (b + 1) STORED;",
       "ALTER TABLE t ADD COLUMN a bigserial;"),
     L("ALTER TABLE t ADD COLUMN a int DEFAULT 0;",
       "ALTER TABLE t ADD COLUMN a timestamptz DEFAULT now();",
       "ALTER TABLE t ADD COLUMN a timestamptz DEFAULT CURRENT_TIMESTAMP;",
       "ALTER TABLE t ADD COLUMN a jsonb DEFAULT '{}'::jsonb;",
       "CREATE TABLE t (a uuid DEFAULT gen_random_uuid());"))
RULE(adding_serial_primary_key_field, RG_LINT_ADDING_SERIAL_PRIMARY_KEY_FIELD,
     L("ALTER TABLE t ADD PRIMARY KEY (id);", "ALTER TABLE t ADD COLUMN id bigint PRIMARY KEY;"),
     L("ALTER TABLE t ADD CONSTRAINT t_pkey PRIMARY KEY USING INDEX t_id_idx;",
       "CREATE TABLE t (id bigint PRIMARY KEY);"))
RULE(changing_column_type, RG_LINT_CHANGING_COLUMN_TYPE,
     L("ALTER TABLE t ALTER COLUMN a TYPE bigint;"),
     L("ALTER TABLE t ALTER COLUMN a SET DEFAULT 1;",
       "CREATE TABLE t (a int);\nALTER TABLE t ALTER COLUMN a TYPE bigint;"))
RULE(constraint_missing_not_valid, RG_LINT_CONSTRAINT_MISSING_NOT_VALID,
     L("ALTER TABLE t ADD CONSTRAINT c CHECK (a > 0);",
       "ALTER TABLE t ADD CONSTRAINT f FOREIGN KEY (u) REFERENCES u (id);"),
     L("ALTER TABLE t ADD CONSTRAINT c CHECK (a > 0) NOT VALID;",
       "ALTER TABLE t VALIDATE CONSTRAINT c;"))
RULE(adding_foreign_key_constraint, RG_LINT_ADDING_FOREIGN_KEY_CONSTRAINT,
     L("ALTER TABLE t ADD CONSTRAINT f FOREIGN KEY (u) REFERENCES u (id);",
       "ALTER TABLE t ADD COLUMN u bigint REFERENCES u (id);"),
     L("ALTER TABLE t ADD CONSTRAINT f FOREIGN KEY (u) REFERENCES u (id) NOT VALID;",
       "CREATE TABLE t (u bigint REFERENCES u (id));"))
RULE(disallowed_unique_constraint, RG_LINT_DISALLOWED_UNIQUE_CONSTRAINT,
     L("ALTER TABLE t ADD CONSTRAINT k UNIQUE (a);", "ALTER TABLE t ADD COLUMN a text UNIQUE;"),
     L("ALTER TABLE t ADD CONSTRAINT k UNIQUE USING INDEX t_a_idx;",
       "CREATE TABLE t (a text);\nALTER TABLE t ADD CONSTRAINT k UNIQUE (a);"))
RULE(renaming_column, RG_LINT_RENAMING_COLUMN, L("ALTER TABLE t RENAME COLUMN a TO b;"),
     L("ALTER TABLE t RENAME TO u;", "ALTER TABLE t RENAME CONSTRAINT c TO d;"))
RULE(renaming_table, RG_LINT_RENAMING_TABLE, L("ALTER TABLE t RENAME TO u;"),
     L("ALTER TABLE t RENAME COLUMN a TO b;", "ALTER INDEX i RENAME TO j;"))
RULE(ban_drop_column, RG_LINT_BAN_DROP_COLUMN, L("ALTER TABLE t DROP COLUMN a;"),
     L("ALTER TABLE t DROP CONSTRAINT c;"))
RULE(ban_drop_table, RG_LINT_BAN_DROP_TABLE, L("DROP TABLE t;", "DROP TABLE IF EXISTS a, b;"),
     L("DROP VIEW v;", "DROP INDEX i;"))
RULE(ban_drop_database, RG_LINT_BAN_DROP_DATABASE, L(NT "DROP DATABASE d;"), L(NT "DROP SCHEMA s;"))
RULE(ban_drop_not_null, RG_LINT_BAN_DROP_NOT_NULL, L("ALTER TABLE t ALTER COLUMN a DROP NOT NULL;"),
     L("ALTER TABLE t ALTER COLUMN a DROP DEFAULT;"))
RULE(ban_truncate_cascade, RG_LINT_BAN_TRUNCATE_CASCADE, L("TRUNCATE t CASCADE;"),
     L("TRUNCATE t;", "TRUNCATE t RESTRICT;"))
RULE(prefer_bigint_over_int, RG_LINT_PREFER_BIGINT_OVER_INT,
     L("CREATE TABLE t (a int);", "CREATE TABLE t (a integer);", "ALTER TABLE t ADD COLUMN a int4;",
       "CREATE TABLE t (id serial);", "ALTER TABLE t ALTER COLUMN a TYPE integer;"),
     L("CREATE TABLE t (a bigint);", "CREATE TABLE t (a int8);", "SELECT 1::int;"))
RULE(prefer_bigint_over_smallint, RG_LINT_PREFER_BIGINT_OVER_SMALLINT,
     L("CREATE TABLE t (a smallint);", "CREATE TABLE t (a smallserial);"),
     L("CREATE TABLE t (a bigint);"))
RULE(prefer_identity, RG_LINT_PREFER_IDENTITY,
     L("CREATE TABLE t (id serial);", "CREATE TABLE t (id bigserial);"),
     L("CREATE TABLE t (id bigint GENERATED BY DEFAULT AS IDENTITY);"))
RULE(prefer_timestamptz, RG_LINT_PREFER_TIMESTAMPTZ,
     L("CREATE TABLE t (a timestamp);", "CREATE TABLE t (a timestamp without time zone);",
       "ALTER TABLE t ADD COLUMN a timestamp(3);"),
     L("CREATE TABLE t (a timestamptz);", "CREATE TABLE t (a timestamp with time zone);"))
RULE(prefer_text_field, RG_LINT_PREFER_TEXT_FIELD,
     L("CREATE TABLE t (a varchar(100));", "CREATE TABLE t (a character varying(20));"),
     L("CREATE TABLE t (a varchar);", "CREATE TABLE t (a text);"))
RULE(ban_char_field, RG_LINT_BAN_CHAR_FIELD,
     L("CREATE TABLE t (a char(3));", "CREATE TABLE t (a character(3));"),
     L("CREATE TABLE t (a \"char\");", "CREATE TABLE t (a varchar(3));"))
RULE(prefer_robust_stmts, RG_LINT_PREFER_ROBUST_STMTS,
     L(NT "CREATE INDEX CONCURRENTLY i ON t (a);", NT "DROP INDEX CONCURRENTLY i;",
       NT "ALTER TABLE t ADD COLUMN a text;"),
     L(NT "CREATE INDEX CONCURRENTLY IF NOT EXISTS i ON t (a);",
       NT "DROP INDEX CONCURRENTLY IF EXISTS i;", "CREATE INDEX i ON t (a);"))
RULE(drop_in_pre_deploy, RG_LINT_DROP_IN_PRE_DEPLOY,
     L("DROP TABLE t;", "ALTER TABLE t DROP COLUMN a;"),
     L("-- rollgate:phase=post\nDROP TABLE t;",
       "-- rollgate:phase=post\nALTER TABLE t DROP COLUMN a;", "DROP INDEX i;"))
RULE(no_transaction_multiple_statements, RG_LINT_NO_TRANSACTION_MULTIPLE_STATEMENTS,
     L(NT "CREATE INDEX CONCURRENTLY IF NOT EXISTS i ON t (a);\n"
          "CREATE INDEX CONCURRENTLY IF NOT EXISTS j ON t (b);",
       NT "CREATE INDEX CONCURRENTLY IF NOT EXISTS i ON t (a);\nINSERT INTO t VALUES (1);"),
     L(NT "CREATE INDEX CONCURRENTLY IF NOT EXISTS i ON t (a);", "SELECT 1;\nSELECT 2;"))

/* Data statements are not parsed again, so nothing inside them is looked at (no rule is
 * about data); the DDL around them still is. */
Test(lint, data_statements_are_not_looked_into_and_the_ddl_around_them_is)
{
    struct rg_lint l = lint("INSERT INTO t SELECT 1 FROM (SELECT 1) s;\n"
                            "WITH x AS (SELECT 1) UPDATE t SET a = 1 FROM x;\n"
                            "CREATE INDEX i ON t (a);\n");

    cr_assert_eq(l.n, 1);
    cr_assert_eq(l.items[0].rule, RG_LINT_REQUIRE_CONCURRENT_INDEX_CREATION);
    cr_assert_eq(l.items[0].stmt, 2);
    rg_lint_free(&l);
}

Test(lint, finding_names_line_column_and_statement)
{
    /* Line and column of the type, counted in characters (é is two bytes). */
    struct rg_lint l = lint("-- é\nCREATE TABLE t (\n  \"é\" int,\n  b text\n);\nDROP INDEX i;\n");

    cr_assert_eq(l.n, 2);
    cr_assert_eq(l.items[0].rule, RG_LINT_PREFER_BIGINT_OVER_INT);
    cr_assert_eq(l.items[0].stmt, 0);
    cr_assert_eq(l.items[0].line, 3);
    cr_assert_eq(l.items[0].column, 7);
    cr_assert_eq(l.items[1].rule, RG_LINT_REQUIRE_CONCURRENT_INDEX_DELETION);
    cr_assert_eq(l.items[1].stmt, 1);
    cr_assert_eq(l.items[1].line, 6);
    cr_assert_eq(l.items[1].column, 1);
    rg_lint_free(&l);
}

Test(lint, allow_accepts_a_finding_and_an_unused_allow_is_a_warning)
{
    struct rg_lint l =
        lint("-- rollgate:allow=changing-column-type,renaming-table the table is empty\n"
             "-- rollgate:allow=ban-drop-column  unused since 2.3\n"
             "ALTER TABLE t ALTER COLUMN a TYPE bigint;\n");

    cr_assert_eq(l.n, 3, "%zu", l.n);
    cr_assert_eq(l.items[0].rule, RG_LINT_CHANGING_COLUMN_TYPE);
    cr_assert(l.items[0].allowed);
    cr_assert_eq(rg_lint_errors(&l), 0);
    /* renaming-table (line 1) and ban-drop-column (line 2) matched nothing. */
    cr_assert_eq(l.items[1].rule, RG_LINT_UNUSED_ALLOW);
    cr_assert_eq(l.items[1].line, 1);
    cr_assert_eq(l.items[1].stmt, SIZE_MAX);
    cr_assert_not(l.items[1].allowed);
    cr_assert_eq(l.items[2].rule, RG_LINT_UNUSED_ALLOW);
    cr_assert_eq(l.items[2].line, 2);
    rg_lint_free(&l);
}

Test(lint, errors_counts_errors_not_allowed_only)
{
    struct rg_lint l = lint("ALTER TABLE t ALTER COLUMN a TYPE bigint;\nCREATE TABLE u (a int);\n");

    cr_assert_eq(l.n, 2);
    cr_assert_eq(rg_lint_errors(&l), 1);
    rg_lint_free(&l);
}

Test(lint, unparsable_statement_has_no_findings)
{
    struct rg_lint l = lint("CREATE TABLE t (a int8);\nALTER TABLE t FROBNICATE;\nDROP INDEX i;\n");

    cr_assert_eq(l.n, 1);
    cr_assert_eq(l.items[0].stmt, 2);
    rg_lint_free(&l);
}

Test(lint, allow_directive_errors)
{
    static const char *const bad[] = {
        "-- rollgate:allow=no-such-rule because\nSELECT 1;",
        "-- rollgate:allow=ban-drop-column\nSELECT 1;",
        "-- rollgate:allow=\nSELECT 1;",
        "-- rollgate:phase=later\nSELECT 1;",
    };
    static const char *const want[] = {
        "m/0001_x.up.sql:1: rollgate:allow: unknown lint rule \"no-such-rule\"",
        "m/0001_x.up.sql:1: rollgate:allow needs rule names and a reason",
        "m/0001_x.up.sql:1: rollgate:allow needs rule names and a reason",
        "m/0001_x.up.sql:1: rollgate:phase: \"later\" is not pre or post",
    };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct rg_directives d;
        struct rg_err err = {0};
        cr_assert_eq(rg_source_directives("m/0001_x.up.sql", bad[i], strlen(bad[i]), &d, &err), -1,
                     "%s", bad[i]);
        cr_assert_eq(err.code, RG_EFILES);
        cr_assert_not_null(strstr(err.msg, want[i]), "%s", err.msg);
    }
}

Test(lint, every_rule_has_a_name_that_finds_it)
{
    for (int r = 0; r < RG_LINT_NRULES; r++) {
        const struct rg_lint_rule_info *info = rg_lint_rule_info((enum rg_lint_rule)r);
        cr_assert_not_null(info->name, "rule %d", r);
        cr_assert_not_null(info->hazard);
        cr_assert_not_null(info->safe);
        cr_assert_eq(rg_lint_rule_by_name(info->name, strlen(info->name)), r);
    }
    cr_assert_eq(rg_lint_rule_by_name("ban-drop", 8), -1);
    cr_assert_eq(rg_lint_rule_by_name("prefer-timestamp-tz", 19), RG_LINT_PREFER_TIMESTAMPTZ);
}
