/* Transaction control in migration files: a whole-file wrapper is unwrapped, anything
 * else refused, and what only looks like it (strings, comments, bodies) left alone. And
 * the split into statements that no-transaction files are run with, by PostgreSQL's
 * parser, also for SQL newer than it and files larger than its window. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "source/sql.h"

static int unwrap(char *sql, struct rg_err *err)
{
    return rg_sql_unwrap(sql, strlen(sql), true, "m/0001_x.up.sql", err);
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

/* The brief's defects in the hand-written scanner this parser replaced, and what only the
 * parser gets right. */

Test(sql_statements, create_rule_with_two_actions_is_one_statement)
{
    const char *sql = "CREATE RULE r AS ON INSERT TO t DO ALSO (INSERT INTO a VALUES (1); "
                      "INSERT INTO b VALUES (2));\nSELECT 1;\n";
    struct rg_sql_stmt *st = NULL;
    size_t n = rg_sql_statements(sql, strlen(sql), &st);

    cr_assert_eq(n, 2);
    expect_stmt(sql, &st[0], 0, 93, 1,
                "CREATE RULE r AS ON INSERT TO t DO ALSO (INSERT INTO a VALUES (1); "
                "INSERT INTO b VALUES (2));");
    cr_assert_eq(st[0].kind, RG_SQL_OTHER);
    expect_stmt(sql, &st[1], 94, 103, 2, "SELECT 1;");
    free(st);
}

/* A statement's first token says it is data, without parsing it again; what else starts
 * a statement keeps its kind. */
Test(sql, data_statements_are_known_by_their_first_token)
{
    char sql[] = "INSERT INTO t VALUES (1);\nUPDATE t SET a = 1;\nDELETE FROM t;\n"
                 "MERGE INTO t USING u ON t.a = u.a WHEN MATCHED THEN DELETE;\nSELECT 1;\n"
                 "VALUES (1);\nTABLE t;\nWITH x AS (SELECT 1) SELECT * FROM x;\n(SELECT 1);\n"
                 "-- a comment first\nINSERT INTO t VALUES (2);\n"
                 "CREATE TABLE u (a int);\nCOPY t FROM STDIN;\n";
    struct rg_sql_stmt *st = NULL;
    size_t n = rg_sql_statements(sql, strlen(sql), &st);

    cr_assert_eq(n, 12);
    for (size_t i = 0; i < 10; i++)
        cr_assert_eq(st[i].kind, RG_SQL_DATA, "statement %zu", i + 1);
    cr_assert_eq(st[10].kind, RG_SQL_OTHER);
    cr_assert_eq(st[11].kind, RG_SQL_COPY_STDIN);
    free(st);
}

/* The wrapper's BEGIN gives its isolation level, in the grammar's words, whatever the
 * file's spelling; READ WRITE and DEFERRABLE change nothing; READ ONLY is refused. */
Test(sql, a_wrappers_isolation_level_is_handed_back_and_read_only_refused)
{
    static const char *const files[][2] = {
        {"BEGIN ISOLATION LEVEL SERIALIZABLE;\nSELECT 1;\nCOMMIT;\n",
         "ISOLATION LEVEL SERIALIZABLE"},
        {"start transaction isolation level repeatable read, read write;\nSELECT 1;\nend;\n",
         "ISOLATION LEVEL REPEATABLE READ"},
        {"BEGIN TRANSACTION DEFERRABLE;\nSELECT 1;\nCOMMIT;\n", ""},
        {"BEGIN;\nSELECT 1;\nCOMMIT;\n", ""},
        {"SELECT 1;\n", ""},
    };

    for (size_t f = 0; f < sizeof(files) / sizeof(files[0]); f++) {
        char *sql = strdup(files[f][0]), modes[RG_SQL_MODES_MAX] = "x";
        struct rg_sql_stmt *st = NULL;
        struct rg_err err = {0};
        size_t n = 0;

        cr_assert_eq(rg_sql_unwrap_split(sql, strlen(sql), true, "m/x.sql", &st, &n, modes, &err),
                     0, "%s", err.msg);
        cr_assert_str_eq(modes, files[f][1], "file %zu", f);
        free(st);
        free(sql);
    }

    char ro[] = "-- first\nBEGIN READ ONLY;\nSELECT 1;\nCOMMIT;\n";
    struct rg_err err = {0};
    cr_assert_eq(unwrap(ro, &err), -1);
    cr_assert_eq(err.code, RG_EFILES);
    cr_assert(strstr(err.msg, "m/0001_x.up.sql:2: BEGIN READ ONLY"), "%s", err.msg);
}

Test(sql, identifiers_named_begin_and_atomic_do_not_hide_a_commit)
{
    char sql[] = "CREATE TABLE begin (atomic int);\nSELECT begin atomic FROM begin;\nCOMMIT;\n"
                 "CREATE TABLE after_commit (id int);\n";
    struct rg_err err = {0};

    cr_assert_eq(unwrap(sql, &err), -1);
    cr_assert(strstr(err.msg, "m/0001_x.up.sql:3: COMMIT"), "%s", err.msg);
}

Test(sql, a_begin_atomic_body_neither_hides_a_commit_nor_is_taken_for_one)
{
    char body[] = "CREATE FUNCTION f() RETURNS int LANGUAGE sql\nBEGIN ATOMIC\n"
                  "  SELECT CASE WHEN true THEN 1 END;\n  SELECT 2;\nEND;\n";
    char after[sizeof(body) + 64], wrapped[sizeof(body) + 64];
    struct rg_err err = {0};

    snprintf(after, sizeof(after), "%sEND;\nSELECT 3;\n", body);
    cr_assert_eq(unwrap(after, &err), -1);
    cr_assert(strstr(err.msg, ":6: END"), "%s", err.msg);
    snprintf(wrapped, sizeof(wrapped), "BEGIN;\n%sCOMMIT;\n", body);
    cr_assert_eq(unwrap(wrapped, &err), 0, "%s", err.msg);
    cr_assert(strstr(wrapped, body), "the body was changed: %s", wrapped);
    cr_assert_null(strstr(wrapped, "COMMIT"));
}

Test(sql, copy_from_stdin_and_to_stdout_are_refused_even_without_a_transaction)
{
    char out[] = "CREATE TABLE t (id int);\nCOPY (SELECT 1) TO STDOUT;\n";
    char in[] = "COPY t (id) FROM STDIN;\n";
    char file[] = "COPY t FROM '/tmp/t.csv';\nCOPY t TO PROGRAM 'cat';\n";
    struct rg_err err = {0};

    cr_assert_eq(unwrap(out, &err), -1);
    cr_assert(strstr(err.msg, "m/0001_x.up.sql:2: COPY ... TO STDOUT"), "%s", err.msg);
    cr_assert_eq(rg_sql_unwrap(in, strlen(in), false, "m/x.sql", &err), -1);
    cr_assert_eq(err.code, RG_EFILES);
    cr_assert(strstr(err.msg, "m/x.sql:1: COPY ... FROM STDIN"), "%s", err.msg);
    cr_assert_eq(unwrap(file, &err), 0, "a server-side COPY is the server's business: %s", err.msg);
}

Test(sql, vacuum_is_refused_in_a_transaction_only_and_analyze_never)
{
    char a[] = "ANALYZE t;\nVACUUM (ANALYZE) t;\n";
    char b[] = "VACUUM t;\nANALYZE t;\n";
    struct rg_err err = {0};

    cr_assert_eq(unwrap(a, &err), -1);
    cr_assert(strstr(err.msg, "m/0001_x.up.sql:2: VACUUM cannot run inside a transaction"), "%s",
              err.msg);
    cr_assert_eq(rg_sql_unwrap(b, strlen(b), false, "m/x.sql", &err), 0, "%s", err.msg);
}

Test(sql, prepared_transactions_and_other_spellings_are_refused_by_name)
{
    const char *cases[][2] = {
        {"SELECT 1;\nCOMMIT PREPARED 'x';\n", ":2: COMMIT PREPARED"},
        {"ROLLBACK PREPARED 'x';\n", ":1: ROLLBACK PREPARED"},
        {"SELECT 1;\n\nABORT;\n", ":3: ABORT"},
        {"START TRANSACTION;\nSELECT 1;\n", ":1: START TRANSACTION"},
        {"SELECT 1;\nEND;\nSELECT 2;\n", ":2: END"},
        {"SELECT 1;\nCOMMIT AND CHAIN;\nSELECT 2;\n", ":2: COMMIT"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *sql = strdup(cases[i][0]);
        struct rg_err err = {0};
        cr_assert_eq(unwrap(sql, &err), -1, "%s", cases[i][0]);
        cr_assert(strstr(err.msg, cases[i][1]), "%s: %s", cases[i][0], err.msg);
        free(sql);
    }
}

Test(sql, a_file_without_statements_is_refused_naming_it)
{
    const char *cases[] = {"", "  \n", "-- rollgate:no-transaction\n-- nothing yet\n",
                           "/* a; b */ ;\n;", "BEGIN;\n-- todo\nCOMMIT;\n"};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *sql = strdup(cases[i]);
        struct rg_err err = {0};
        cr_assert_eq(rg_sql_unwrap(sql, strlen(sql), i % 2 == 0, "m/0001_x.up.sql", &err), -1,
                     "\"%s\"", cases[i]);
        cr_assert_eq(err.code, RG_EFILES);
        cr_assert(strstr(err.msg, "m/0001_x.up.sql: holds no SQL statement"), "%s", err.msg);
        free(sql);
    }
}

Test(sql_statements, a_byte_order_mark_is_skipped)
{
    const char *sql = "\xEF\xBB\xBF-- comment\nSELECT 1;\n";
    struct rg_sql_stmt *st = NULL;
    size_t n = rg_sql_statements(sql, strlen(sql), &st);

    cr_assert_eq(n, 1);
    expect_stmt(sql, &st[0], 14, 23, 2, "SELECT 1;");
    free(st);
}

/* SQL newer than PostgreSQL 15's parser: split by the scanner, judged by the server, never
 * refused for that alone; what the parser can read around it is still checked. */

Test(sql, newer_syntax_is_accepted_and_its_wrapper_still_blanked)
{
    char sql[] = "BEGIN;\nMERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE "
                 "RETURNING *;\nSELECT 1_000, 0x1F;\nCOMMIT;\n";
    struct rg_err err = {0};

    cr_assert_eq(unwrap(sql, &err), 0, "%s", err.msg);
    cr_assert_null(strstr(sql, "BEGIN"));
    cr_assert_null(strstr(sql, "COMMIT"));
    cr_assert(strstr(sql, "MERGE INTO t") && strstr(sql, "SELECT 1_000, 0x1F;"));
}

Test(sql, newer_syntax_does_not_hide_a_commit_after_it)
{
    char a[] = "SELECT 1_000;\nCOMMIT;\nSELECT 2;\n";
    char b[] = "MERGE INTO t USING s ON true WHEN MATCHED THEN DELETE RETURNING *;\n"
               "ROLLBACK;\n";
    struct rg_err err = {0};

    cr_assert_eq(unwrap(a, &err), -1);
    cr_assert(strstr(err.msg, ":2: COMMIT"), "%s", err.msg);
    cr_assert_eq(unwrap(b, &err), -1);
    cr_assert(strstr(err.msg, ":2: ROLLBACK"), "%s", err.msg);
}

Test(sql_statements, newer_syntax_is_split_by_the_scanner_keeping_begin_atomic_bodies_whole)
{
    const char *sql = "CREATE TABLE t (id int);\n"
                      "MERGE INTO t USING s ON true WHEN MATCHED THEN DELETE RETURNING *;\n"
                      "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; "
                      "SELECT 2; END;\n"
                      "SELECT 3\n";
    struct rg_sql_stmt *st = NULL;
    size_t n = rg_sql_statements(sql, strlen(sql), &st);

    cr_assert_eq(n, 4);
    expect_stmt(sql, &st[0], 0, 24, 1, "CREATE TABLE t (id int);");
    cr_assert_eq(st[0].kind, RG_SQL_OTHER);
    expect_stmt(sql, &st[1], 25, 91, 2,
                "MERGE INTO t USING s ON true WHEN MATCHED THEN DELETE RETURNING *;");
    cr_assert_eq(st[1].kind, RG_SQL_UNPARSED);
    expect_stmt(sql, &st[2], 92, 174, 3,
                "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; "
                "SELECT 2; END;");
    cr_assert_eq(st[2].kind, RG_SQL_OTHER);
    expect_stmt(sql, &st[3], 175, 184, 4, "SELECT 3\n");
    free(st);
}

Test(sql_statements, an_unterminated_string_leaves_the_rest_as_one_statement)
{
    /* What follows the quote may all be inside the string: none of it is split off (a
     * no-transaction file would otherwise run the DROP on its own). */
    const char *sql = "SELECT 1;\nSELECT 'abc;\nDROP TABLE users;\n";
    struct rg_sql_stmt *st = NULL;
    size_t n = rg_sql_statements(sql, strlen(sql), &st);

    cr_assert_eq(n, 2);
    expect_stmt(sql, &st[0], 0, 9, 1, "SELECT 1;");
    expect_stmt(sql, &st[1], 10, strlen(sql), 2, "SELECT 'abc;\nDROP TABLE users;\n");
    cr_assert_eq(st[1].kind, RG_SQL_UNPARSED);
    free(st);
}

Test(sql_statements, garbage_is_kept_for_the_server_not_dropped)
{
    /* The scanner alone drops a "statement" without a keyword and everything after an
     * unbalanced ')'. */
    const char *a = "foo;\nSELECT 1;\n";
    const char *b = "SELECT 1);\nSELECT 2;\n";
    struct rg_sql_stmt *st = NULL;
    size_t n = rg_sql_statements(a, strlen(a), &st);

    cr_assert_eq(n, 2);
    expect_stmt(a, &st[0], 0, 4, 1, "foo;");
    expect_stmt(a, &st[1], 5, 14, 2, "SELECT 1;");
    free(st);
    n = rg_sql_statements(b, strlen(b), &st);
    cr_assert_geq(n, 1);
    cr_assert_eq(st[0].start, 0);
    cr_assert_eq(st[n - 1].end, strlen(b));
    free(st);
}

/* Files larger than the parser's window: statements across window ends, a BEGIN ATOMIC
 * body across one, a statement longer than a window, in parsed and in newer SQL. */
static char *big_file(size_t rows, bool newer, size_t *count)
{
    size_t cap = rows * 64 + 4096, len = 0;
    char *sql = malloc(cap);

    cr_assert_not_null(sql);
    *count = 0;
    for (size_t i = 0; i < rows; i++) {
        if (i == rows / 2) {
            len += (size_t)snprintf(sql + len, cap - len,
                                    "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC\n");
            for (int k = 0; k < 200; k++)
                len += (size_t)snprintf(sql + len, cap - len, "  SELECT %d;\n", k);
            len += (size_t)snprintf(sql + len, cap - len, "END;\n");
            (*count)++;
        }
        len += (size_t)snprintf(sql + len, cap - len, "INSERT INTO t VALUES (%zu, 'a;b'%s);\n", i,
                                newer && i % 1000 == 0 ? ", 1_000" : "");
        (*count)++;
    }
    len += (size_t)snprintf(sql + len, cap - len, "COMMIT;\n");
    (*count)++;
    return sql;
}

static void check_big(bool newer)
{
    size_t want, lines = 1;
    char *sql = big_file(40000, newer, &want);
    struct rg_sql_stmt *st = NULL;
    size_t n = rg_sql_statements(sql, strlen(sql), &st);
    struct rg_err err = {0};
    char where[64];

    cr_assert_eq(n, want, "%zu statements, expected %zu", n, want);
    for (size_t i = 0, at = 0; i < n; i++) {
        for (; at < st[i].start; at++)
            lines += sql[at] == '\n';
        cr_assert_eq(st[i].line, lines);
        cr_assert(i == 0 || st[i].start == st[i - 1].end + 1, "statement %zu", i);
        cr_assert_eq(sql[st[i].end - 1], ';');
    }
    cr_assert_eq(st[n - 1].kind, RG_SQL_COMMIT);
    snprintf(where, sizeof(where), ":%zu: COMMIT", st[n - 1].line);
    cr_assert_eq(unwrap(sql, &err), -1);
    cr_assert(strstr(err.msg, where), "%s", err.msg);
    free(st);
    free(sql);
}

Test(sql_statements, a_file_larger_than_the_parsers_window)
{
    check_big(false);
}

Test(sql_statements, newer_sql_larger_than_the_parsers_window)
{
    check_big(true);
}

Test(sql_statements, a_statement_longer_than_the_parsers_window_is_one)
{
    size_t cap = 2 * 1024 * 1024, len;
    char *sql = malloc(cap);

    cr_assert_not_null(sql);
    len = (size_t)snprintf(sql, cap, "SELECT 1;\nINSERT INTO t VALUES (0)");
    for (int i = 1; len < cap - 64; i++)
        len += (size_t)snprintf(sql + len, cap - len, ", (%d)", i);
    len += (size_t)snprintf(sql + len, cap - len, ";\nSELECT 2;\n");
    struct rg_sql_stmt *st = NULL;
    size_t n = rg_sql_statements(sql, len, &st);
    cr_assert_eq(n, 3);
    cr_assert_eq(st[1].start, 10);
    cr_assert_eq(st[1].end, len - 11);
    cr_assert_eq(st[2].line, 3);
    free(st);
    free(sql);
}

/* ---- rg_sql_index_build: which statements build an index concurrently, and its name ---- */

static bool index_of(const char *sql, struct rg_sql_index *ix)
{
    return rg_sql_index_build(sql, strlen(sql), ix);
}

Test(sql_index, a_concurrent_build_names_its_index_and_the_tables_schema)
{
    struct rg_sql_index ix;

    cr_assert(index_of("CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS \"Users_Email\" "
                       "ON app.users (lower(email)) WHERE deleted_at IS NULL;",
                       &ix));
    cr_assert_str_eq(ix.name, "Users_Email");
    cr_assert_str_eq(ix.schema, "app");
    cr_assert(ix.if_not_exists);
    rg_sql_index_free(&ix);

    cr_assert(index_of("/* why */ create index concurrently Orders_Day on orders (day)", &ix));
    cr_assert_str_eq(ix.name, "orders_day", "the parser folds an unquoted name");
    cr_assert_null(ix.schema);
    cr_assert_not(ix.if_not_exists);
    rg_sql_index_free(&ix);
}

Test(sql_index, other_statements_and_unnamed_or_plain_builds_are_not_one)
{
    struct rg_sql_index ix;
    const char *not_builds[] = {
        "CREATE INDEX t_x ON t (x);",                    /* not concurrent */
        "CREATE INDEX CONCURRENTLY ON t (x);",           /* PostgreSQL picks the name */
        "REINDEX INDEX CONCURRENTLY t_x;",               /* not a build of a new index */
        "SELECT 'CREATE INDEX CONCURRENTLY i ON t (x)'", /* a string */
        "CREATE INDEX CONCURRENTLY i ON t (x); CREATE TABLE u (id int);", /* two statements */
        "CREATE INDEX CONCURRENTLY i ON t (",                             /* unreadable */
    };

    for (size_t i = 0; i < sizeof(not_builds) / sizeof(not_builds[0]); i++) {
        cr_assert_not(index_of(not_builds[i], &ix), "%s", not_builds[i]);
        cr_assert_null(ix.name);
    }
}

/* ---- rg_sql_same_tokens: a change only in comments or white space ---- */

static bool same(const char *a, const char *b)
{
    return rg_sql_same_tokens(a, strlen(a), b, strlen(b));
}

Test(sql_tokens, comments_and_white_space_do_not_count)
{
    cr_assert(same("CREATE TABLE t (id int);\nINSERT INTO t VALUES (1);\n",
                   "-- the table\nCREATE TABLE t (\n    id int /* key */\n);\n\n"
                   "INSERT INTO t\n  VALUES (1); -- one row\n"));
    cr_assert(same("\xEF\xBB\xBFSELECT 1;", "SELECT\t1 ;  "));
    cr_assert(same("SELECT 1", "SELECT 1;"), "a final ';' ends the statement either way");
}

Test(sql_tokens, any_token_that_changed_counts)
{
    cr_assert_not(same("CREATE TABLE t (id int);", "CREATE TABLE t (id bigint);"));
    cr_assert_not(same("SELECT 'a  b';", "SELECT 'a b';"), "inside a string");
    cr_assert_not(same("SELECT 1;", "select 1;"), "a keyword's case");
    cr_assert_not(same("SELECT \"A\";", "SELECT \"a\";"));
    cr_assert_not(same("CREATE FUNCTION f() RETURNS int AS $$ SELECT  1 $$ LANGUAGE sql;",
                       "CREATE FUNCTION f() RETURNS int AS $$ SELECT 1 $$ LANGUAGE sql;"),
                  "a function body is one token");
    cr_assert_not(same("SELECT 1;", "SELECT 1; SELECT 2;"), "a statement more");
    cr_assert_not(same("SELECT 1; SELECT 2;", "SELECT 1 SELECT 2;"), "statements joined");
    cr_assert_not(same("SELECT 'unterminated", "SELECT 'unterminated"),
                  "what the scanner cannot read is never the same");
}

/* The statements unwrap hands back (what a file's lint reads instead of splitting the file
 * again) are those a new split of the file as unwrapped would give: the blanked wrapper's
 * left out, places, lines and kinds the same. */
Test(sql, unwrap_split_gives_the_statements_of_the_unwrapped_sql)
{
    const char *files[] = {
        "-- header\nBEGIN;\nCREATE TABLE a (id int);\n/* c */ SAVEPOINT s;\ncommit;\n",
        "CREATE TABLE a (id int);\nCREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC "
        "SELECT 1; SELECT 2; END;\nINSERT INTO a VALUES (1)",
        "\xEF\xBB\xBFSELECT 1;;\n-- trailing\n",
    };

    for (size_t f = 0; f < sizeof(files) / sizeof(files[0]); f++) {
        char *sql = strdup(files[f]);
        struct rg_sql_stmt *got = NULL, *want = NULL;
        struct rg_err err = {0};
        size_t n = 0, m;

        char modes[RG_SQL_MODES_MAX];

        cr_assert_eq(rg_sql_unwrap_split(sql, strlen(sql), true, "m/x.sql", &got, &n, modes, &err),
                     0, "%s", err.msg);
        m = rg_sql_statements(sql, strlen(sql), &want);
        cr_assert_eq(n, m, "file %zu: %zu statements handed back, %zu split again", f, n, m);
        for (size_t i = 0; i < n; i++) {
            cr_assert_eq(got[i].start, want[i].start, "file %zu statement %zu", f, i);
            cr_assert_eq(got[i].end, want[i].end, "file %zu statement %zu", f, i);
            cr_assert_eq(got[i].line, want[i].line, "file %zu statement %zu", f, i);
            cr_assert_eq(got[i].kind, want[i].kind, "file %zu statement %zu", f, i);
        }
        free(got);
        free(want);
        free(sql);
    }
}
