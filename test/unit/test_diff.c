/* rg_engine_diff: the first changed lines of two texts as a unified diff hunk, bounded. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/diff.h"

static char *big(size_t lines, size_t changed_at, const char *changed)
{
    size_t cap = lines * 32 + 256, len = 0;
    char *s = malloc(cap);

    cr_assert_not_null(s);
    for (size_t i = 1; i <= lines; i++)
        len += (size_t)snprintf(s + len, cap - len, "%s\n",
                                i == changed_at ? changed : (i % 2 ? "SELECT 1;" : "SELECT 2;"));
    return s;
}

Test(diff, the_same_text_has_no_diff)
{
    cr_assert_null(rg_engine_diff("a\nb\n", "a\nb\n", "old", "new"));
    cr_assert_null(rg_engine_diff("", "", "old", "new"));
}

Test(diff, one_changed_line_reads_as_one_minus_and_one_plus_with_context)
{
    const char *a = "l1\nl2\nl3\nl4\nCREATE TABLE t (id int);\nl6\nl7\nl8\nl9\n";
    const char *b = "l1\nl2\nl3\nl4\nCREATE TABLE t (id bigint);\nl6\nl7\nl8\nl9\n";
    char *d = rg_engine_diff(a, b, "applied", "0001_t.up.sql");

    cr_assert_str_eq(d, "--- applied\n+++ 0001_t.up.sql\n@@ -2,7 +2,7 @@\n l2\n l3\n l4\n"
                        "-CREATE TABLE t (id int);\n+CREATE TABLE t (id bigint);\n l6\n l7\n l8\n");
    free(d);
}

Test(diff, added_and_removed_lines_count_in_the_hunk_header)
{
    char *d = rg_engine_diff("a\nb\nc\n", "a\nx\ny\nc\n", "old", "new");
    cr_assert_str_eq(d, "--- old\n+++ new\n@@ -1,3 +1,4 @@\n a\n-b\n+x\n+y\n c\n");
    free(d);
    d = rg_engine_diff("a\nb\n", "a\n", "old", "new");
    cr_assert_str_eq(d, "--- old\n+++ new\n@@ -1,2 +1,1 @@\n a\n-b\n");
    free(d);
}

Test(diff, a_last_line_that_lost_its_line_end_is_a_change)
{
    char *d = rg_engine_diff("a\nb\n", "a\nb", "old", "new");
    cr_assert_not_null(d);
    cr_assert(strstr(d, "-b\n+b\n"), "%s", d);
    free(d);
}

Test(diff, only_the_first_hunk_is_shown)
{
    char *a = big(100, 0, ""), *b = big(100, 10, "DROP TABLE x;");
    /* A second change far below the first. */
    char *c = strstr(b + 400, "SELECT 1;");
    memcpy(c, "SELECT 9;", 9);
    char *d = rg_engine_diff(a, b, "old", "new");

    cr_assert(strstr(d, "@@ -7,7 +7,7 @@\n"), "%s", d);
    cr_assert(strstr(d, "+DROP TABLE x;\n"), "%s", d);
    cr_assert_null(strstr(d, "SELECT 9;"), "%s", d);
    free(a);
    free(b);
    free(d);
}

Test(diff, large_rewrites_are_cut_to_bounded_output)
{
    char *a = big(100000, 0, ""), *b = malloc(100000 * 16 + 1);
    size_t len = 0;
    char line[300];

    cr_assert_not_null(b);
    for (int i = 0; i < 100000; i++)
        len += (size_t)sprintf(b + len, "UPDATE %d;\n", i);
    memset(line, 'x', sizeof(line) - 1);
    line[sizeof(line) - 1] = '\0';
    char *d = rg_engine_diff(a, b, "old", "new");
    size_t lines = 0;
    for (const char *p = d; *p; p++)
        lines += *p == '\n';
    cr_assert_leq(lines, 3 + 40 + 1, "%zu lines", lines);
    cr_assert(strstr(d, "\n...\n"), "a cut diff says so");
    free(d);
    /* A long line is cut. */
    d = rg_engine_diff("a\n", line, "old", "new");
    cr_assert(strstr(d, "...\n"), "%s", d);
    cr_assert_lt(strlen(d), 200 + 40);
    free(d);
    free(a);
    free(b);
}
