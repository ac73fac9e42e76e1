/* Transaction control in migration files: a whole-file wrapper is unwrapped, anything
 * else refused, and what only looks like it (strings, comments, bodies) left alone. And
 * the split into statements that no-transaction files are run with. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "source/sql.h"

static int unwrap(char *sql, struct rg_err *err)
{
    return rg_sql_unwrap(sql, strlen(sql), "m/0001_x.up.sql", err);
}

Test(sql, plain_file_is_untouched)
{
    char sql[] = "CREATE TABLE a (id int);\nINSERT INTO a VALUES (1);\n";
    char copy[sizeof(sql)];
    struct rg_err err = {0};
    memcpy(copy, sql, sizeof(sql));
    cr_assert_eq(unwrap(sql, &err), 0, "%s", err.msg);
    cr_assert_str_eq(sql, copy);
}

Test(sql, whole_file_wrapper_is_blanked_keeping_positions)
{
    char sql[] = "-- header\nBEGIN;\nCREATE TABLE a (id int);\ncommit;\n";
    struct rg_err err = {0};
    size_t len = strlen(sql);
    cr_assert_eq(unwrap(sql, &err), 0, "%s", err.msg);
    cr_assert_eq(strlen(sql), len);
    cr_assert_str_eq(sql, "-- header\n      \nCREATE TABLE a (id int);\n       \n");
}

Test(sql, start_transaction_and_end_wrapper_is_accepted)
{
    char sql[] = "START TRANSACTION ISOLATION LEVEL SERIALIZABLE;\nSELECT 1;\nEND";
    struct rg_err err = {0};
    cr_assert_eq(unwrap(sql, &err), 0, "%s", err.msg);
    cr_assert(strstr(sql, "SELECT 1;"));
    cr_assert_null(strstr(sql, "START"));
    cr_assert_null(strstr(sql, "END"));
}

Test(sql, commit_part_way_is_refused_with_its_line)
{
    char sql[] = "CREATE TABLE a (id int);\nCOMMIT;\nCREATE TABLE b (id int);\n";
    struct rg_err err = {0};
    cr_assert_eq(unwrap(sql, &err), -1);
    cr_assert_eq(err.code, RG_EFILES);
    cr_assert(strstr(err.msg, "m/0001_x.up.sql:2: COMMIT"), "%s", err.msg);
}

Test(sql, begin_without_closing_commit_is_refused)
{
    char sql[] = "BEGIN;\nCREATE TABLE a (id int);\n";
    struct rg_err err = {0};
    cr_assert_eq(unwrap(sql, &err), -1);
    cr_assert(strstr(err.msg, ":1: BEGIN"), "%s", err.msg);
}

Test(sql, two_wrapped_blocks_are_refused_at_the_second_statement)
{
    char sql[] = "BEGIN;\nSELECT 1;\nCOMMIT;\nBEGIN;\nSELECT 2;\nCOMMIT;\n";
    struct rg_err err = {0};
    cr_assert_eq(unwrap(sql, &err), -1);
    cr_assert(strstr(err.msg, ":3: COMMIT"), "%s", err.msg);
}

Test(sql, rollback_and_prepare_transaction_are_refused_but_savepoints_allowed)
{
    char a[] = "SELECT 1;\nROLLBACK;\n";
    char b[] = "PREPARE TRANSACTION 'x';\n";
    char c[] = "SAVEPOINT s;\nSELECT 1;\nROLLBACK TO SAVEPOINT s;\nRELEASE s;\n";
    struct rg_err err = {0};
    cr_assert_eq(unwrap(a, &err), -1);
    cr_assert(strstr(err.msg, ":2: ROLLBACK"), "%s", err.msg);
    cr_assert_eq(unwrap(b, &err), -1);
    cr_assert(strstr(err.msg, ":1: PREPARE TRANSACTION"), "%s", err.msg);
    cr_assert_eq(unwrap(c, &err), 0, "%s", err.msg);
}

Test(sql, keywords_inside_strings_comments_and_bodies_are_not_statements)
{
    char sql[] = "INSERT INTO t VALUES ('x; COMMIT; y');\n"
                 "INSERT INTO t VALUES (E'it\\'s; COMMIT');\n"
                 "/* COMMIT; /* nested */ ROLLBACK; */\n"
                 "-- COMMIT;\n"
                 "CREATE FUNCTION f() RETURNS void LANGUAGE plpgsql AS $fn$\n"
                 "BEGIN\n  PERFORM 1;\nEND;\n$fn$;\n"
                 "CREATE FUNCTION g() RETURNS int LANGUAGE sql BEGIN ATOMIC\n"
                 "  SELECT CASE WHEN true THEN 1 ELSE 2 END;\n  SELECT 3;\nEND;\n"
                 "SELECT \"commit;\" FROM t WHERE x = $1;\n";
    char copy[sizeof(sql)];
    struct rg_err err = {0};
    memcpy(copy, sql, sizeof(sql));
    cr_assert_eq(unwrap(sql, &err), 0, "%s", err.msg);
    cr_assert_str_eq(sql, copy);
}

/* Asserts one statement's offsets and line, and that the slice is the expected text. */
static void expect_stmt(const char *sql, const struct rg_sql_stmt *st, size_t start, size_t end,
                        size_t line, const char *text)
{
    cr_assert_eq(st->start, start, "start %zu, expected %zu", st->start, start);
    cr_assert_eq(st->end, end, "end %zu, expected %zu", st->end, end);
    cr_assert_eq(st->line, line, "line %zu, expected %zu", st->line, line);
    cr_assert_eq(end - start, strlen(text));
    cr_assert(memcmp(sql + start, text, strlen(text)) == 0, "slice \"%.*s\"", (int)(end - start),
              sql + start);
}

Test(sql_statements, splits_a_plain_file)
{
    const char *sql = "CREATE TABLE a (id int);\nINSERT INTO a VALUES (1);\n";
    struct rg_sql_stmt *st = NULL;
    size_t n = rg_sql_statements(sql, strlen(sql), &st);

    cr_assert_eq(n, 2);
    expect_stmt(sql, &st[0], 0, 24, 1, "CREATE TABLE a (id int);");
    expect_stmt(sql, &st[1], 25, 50, 2, "INSERT INTO a VALUES (1);");
    free(st);
}

Test(sql_statements, skips_comments_empty_statements_and_a_comment_only_tail)
{
    const char *sql = "-- rollgate:no-transaction\n"
                      "\n"
                      "CREATE INDEX CONCURRENTLY i ON t (c);;\n"
                      "  ;\n"
                      "DROP INDEX CONCURRENTLY j;\n"
                      "-- done\n"
                      "/* bye; */\n";
    struct rg_sql_stmt *st = NULL;
    size_t n = rg_sql_statements(sql, strlen(sql), &st);

    cr_assert_eq(n, 2);
    expect_stmt(sql, &st[0], 28, 65, 3, "CREATE INDEX CONCURRENTLY i ON t (c);");
    expect_stmt(sql, &st[1], 71, 97, 5, "DROP INDEX CONCURRENTLY j;");
    free(st);
}

Test(sql_statements, a_last_statement_without_semicolon_runs_to_the_end)
{
    const char *sql = "SELECT 1;\n  SELECT 2 -- no semicolon\n";
    struct rg_sql_stmt *st = NULL;
    size_t n = rg_sql_statements(sql, strlen(sql), &st);

    cr_assert_eq(n, 2);
    expect_stmt(sql, &st[0], 0, 9, 1, "SELECT 1;");
    expect_stmt(sql, &st[1], 12, 37, 2, "SELECT 2 -- no semicolon\n");
    free(st);
}

Test(sql_statements, semicolons_in_strings_dollar_quotes_and_begin_atomic_do_not_split)
{
    const char *sql = "INSERT INTO t VALUES ('a;b', E'it\\'s;', \"c;d\");\n"
                      "CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $fn$\n"
                      "BEGIN\n"
                      "  RETURN 1;\n"
                      "END;\n"
                      "$fn$;\n"
                      "CREATE FUNCTION g() RETURNS int LANGUAGE sql\n"
                      "BEGIN ATOMIC\n"
                      "  SELECT CASE WHEN true THEN 1 ELSE 2 END;\n"
                      "  SELECT 3;\n"
                      "END;\n"
                      "SELECT $$;$$, x FROM t WHERE y = $1; /* ; */\n";
    struct rg_sql_stmt *st = NULL;
    size_t n = rg_sql_statements(sql, strlen(sql), &st);

    cr_assert_eq(n, 4);
    expect_stmt(sql, &st[0], 0, 47, 1, "INSERT INTO t VALUES ('a;b', E'it\\'s;', \"c;d\");");
    expect_stmt(sql, &st[1], 48, 133, 2,
                "CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $fn$\n"
                "BEGIN\n  RETURN 1;\nEND;\n$fn$;");
    expect_stmt(sql, &st[2], 134, 251, 7,
                "CREATE FUNCTION g() RETURNS int LANGUAGE sql\nBEGIN ATOMIC\n"
                "  SELECT CASE WHEN true THEN 1 ELSE 2 END;\n  SELECT 3;\nEND;");
    expect_stmt(sql, &st[3], 252, 288, 12, "SELECT $$;$$, x FROM t WHERE y = $1;");
    free(st);
}

Test(sql_statements, empty_or_comment_only_input_has_none)
{
    const char *blank = "  \n-- only a comment\n/* and ; another */\n;\n";
    struct rg_sql_stmt *st = (struct rg_sql_stmt *)&st;

    cr_assert_eq(rg_sql_statements("", 0, &st), 0);
    cr_assert_null(st);
    st = (struct rg_sql_stmt *)&st;
    cr_assert_eq(rg_sql_statements(blank, strlen(blank), &st), 0);
    cr_assert_null(st);
}

Test(sql_statements, reads_only_len_bytes)
{
    const char *sql = "SELECT 1; SELECT 2;";
    struct rg_sql_stmt *st = NULL;
    size_t n = rg_sql_statements(sql, 9, &st);

    cr_assert_eq(n, 1);
    expect_stmt(sql, &st[0], 0, 9, 1, "SELECT 1;");
    free(st);
}
