/* Where in the file a PostgreSQL error position points. */
#include <criterion/criterion.h>

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
