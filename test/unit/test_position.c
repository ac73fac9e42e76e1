/* The store's pure functions: where in the file a PostgreSQL error position points, and
 * the name a run's sessions carry. */
#include <criterion/criterion.h>
#include <string.h>

#include "pg/pg.h"

Test(position, first_character_is_line_1_column_1)
{
    long line, col;
    cr_assert_eq(rg_pg_position("SELECT 1", 1, &line, &col), 0);
    cr_assert_eq(line, 1);
    cr_assert_eq(col, 1);
}

Test(position, counts_lines_and_columns_after_newlines)
{
    long line, col;
    const char *sql = "CREATE TABLE a (id int);\n\nSELEC 1;\n";
    /* 'S' of SELEC: 24 chars + 2 newlines before it, so position 27. */
    cr_assert_eq(rg_pg_position(sql, 27, &line, &col), 0);
    cr_assert_eq(line, 3);
    cr_assert_eq(col, 1);
    cr_assert_eq(rg_pg_position(sql, 30, &line, &col), 0);
    cr_assert_eq(line, 3);
    cr_assert_eq(col, 4);
}

Test(position, counts_characters_not_bytes)
{
    long line, col;
    /* "é" is two bytes but one character to PostgreSQL. */
    const char *sql = "SELECT 'é', x";
    cr_assert_eq(rg_pg_position(sql, 13, &line, &col), 0);
    cr_assert_eq(col, 13);
}

Test(position, end_of_input_and_out_of_range)
{
    long line, col;
    cr_assert_eq(rg_pg_position("SELECT (", 9, &line, &col), 0);
    cr_assert_eq(col, 9);
    cr_assert_eq(rg_pg_position("SELECT (", 10, &line, &col), -1);
    cr_assert_eq(rg_pg_position("SELECT (", 0, &line, &col), -1);
}

Test(session, a_short_printable_identity_is_used_as_it_is)
{
    char name[RG_PG_SESSION_NAME_MAX];
    char id[54];
    rg_pg_session_name("pod-a", name);
    cr_assert_str_eq(name, "rollgate/pod-a");
    /* 53 bytes: the longest kept whole, 62 bytes of name. */
    memset(id, 'x', 53);
    id[53] = '\0';
    rg_pg_session_name(id, name);
    cr_assert_eq(strlen(name), 62);
    cr_assert_str_eq(name + 9, id);
}

Test(session, a_long_identity_keeps_its_head_and_a_hash_in_63_bytes)
{
    char name[RG_PG_SESSION_NAME_MAX], other[RG_PG_SESSION_NAME_MAX];
    char a[254], b[254];
    memset(a, 'p', 253);
    a[253] = '\0';
    memcpy(b, a, sizeof(b));
    b[252] = 'q'; /* differs only past what PostgreSQL would keep */
    rg_pg_session_name(a, name);
    rg_pg_session_name(b, other);
    cr_assert_eq(strlen(name), 63);
    cr_assert_eq(strlen(other), 63);
    cr_assert_eq(strncmp(name, "rollgate/ppppp", 14), 0, "%s", name);
    cr_assert_eq(name[46], '~', "%s", name);
    cr_assert_str_neq(name, other);
    /* The same identity always gives the same name: another run must find it. */
    rg_pg_session_name(b, name);
    cr_assert_str_eq(name, other);
    /* 54 bytes is one too many to keep whole. */
    a[54] = '\0';
    rg_pg_session_name(a, name);
    cr_assert_eq(strlen(name), 63);
}

Test(session, an_identity_postgresql_would_alter_is_hashed_with_its_bytes_shown_as_question_marks)
{
    char name[RG_PG_SESSION_NAME_MAX];
    rg_pg_session_name("p\xc3\xa9\x64", name); /* "péd" */
    cr_assert_eq(strlen(name), 63);
    cr_assert_eq(strncmp(name, "rollgate/p??d---", 16), 0, "%s", name);
    for (const char *c = name; *c; c++)
        cr_assert(*c >= 0x20 && *c <= 0x7e, "%s", name);
}
