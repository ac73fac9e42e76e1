/* Transaction control in migration files: a whole-file wrapper is unwrapped, anything
 * else refused, and what only looks like it (strings, comments, bodies) left alone. */
#include <criterion/criterion.h>
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
