/* libFuzzer target: statement splitting and unwrapping over PostgreSQL's parser
 * (pkg/source/sql.c). Properties, for any input: no crash or sanitizer report; statements
 * in order, not overlapping, inside the input, each starting at its line; and unwrapping
 * either refuses the file with RG_EFILES, or changes nothing but the blanks of a wrapper:
 * a first statement that is a BEGIN and a last that is a COMMIT, every other byte as it
 * was, and no transaction control, VACUUM or COPY FROM STDIN / TO STDOUT left in it; the
 * isolation level handed back is one of the grammar's four, and none without a wrapper.
 * Built with -DRG_FUZZ=ON by clang; scripts/fuzz.sh runs it for a bounded time. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "source/sql.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail(const char *what, size_t i)
{
    fprintf(stderr, "fuzz_sql: property violated: %s (statement %zu)\n", what, i);
    abort();
}

/* Whether s[0, n) is UTF-8 (as pkg/source/read.c checks every file before splitting it):
 * where it is not, PostgreSQL's error positions count characters by lead bytes only, and
 * a statement's start may land a few bytes early. Never a crash, though. */
static bool is_utf8(const unsigned char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        size_t len = s[i] < 0x80                    ? 1
                     : s[i] >= 0xC2 && s[i] <= 0xDF ? 2
                     : s[i] >= 0xE0 && s[i] <= 0xEF ? 3
                     : s[i] >= 0xF0 && s[i] <= 0xF4 ? 4
                                                    : 0;
        if (len == 0 || n - i < len)
            return false;
        for (size_t k = 1; k < len; k++)
            if ((s[i + k] & 0xC0) != 0x80)
                return false;
        i += len;
    }
    return true;
}

/* What rg_sql_unwrap_split may hand back as a wrapper's isolation level. */
static bool known_modes(const char *m)
{
    static const char *const ok[] = {
        "", "ISOLATION LEVEL READ UNCOMMITTED", "ISOLATION LEVEL READ COMMITTED",
        "ISOLATION LEVEL REPEATABLE READ", "ISOLATION LEVEL SERIALIZABLE"};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
        if (strcmp(m, ok[i]) == 0)
            return true;
    return false;
}

static bool refused_in_transaction(enum rg_sql_kind k)
{
    return k != RG_SQL_OTHER && k != RG_SQL_UNPARSED && k != RG_SQL_DATA;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *sql = malloc(size + 1), *copy = malloc(size + 1);
    struct rg_sql_stmt *st = NULL, *kept = NULL;
    struct rg_err err = {0};
    char modes[RG_SQL_MODES_MAX];
    size_t n, nkept = 0, len, line = 1, at = 0;
    bool utf8;

    if (!sql || !copy)
        abort();
    memcpy(sql, data, size);
    sql[size] = '\0';
    memcpy(copy, sql, size + 1);
    len = strlen(sql); /* what the splitter reads: up to a NUL */
    utf8 = is_utf8((const unsigned char *)sql, len);
    n = rg_sql_statements(sql, size, &st);
    if ((n == 0) != (st == NULL))
        fail("a list for no statements, or none for some", 0);
    for (size_t i = 0; i < n; i++) {
        if (st[i].start >= st[i].end || st[i].end > len)
            fail("statement outside the input or empty", i);
        if (i > 0 && st[i].start < st[i - 1].end)
            fail("statements out of order or overlapping", i);
        for (; at < st[i].start; at++)
            line += sql[at] == '\n';
        if (st[i].line != line)
            fail("wrong line", i);
        /* PostgreSQL 15's white space; \v is one from 16 on, a token before. */
        if (utf8 && strchr(" \t\n\r\f", sql[st[i].start]))
            fail("statement starts with white space", i);
    }
    if (rg_sql_unwrap_split(copy, size, true, "fuzz.sql", &kept, &nkept, modes, &err) != 0) {
        if (err.code != RG_EFILES)
            fail("a refusal with another code than RG_EFILES", 0);
    } else {
        bool wrapped = n >= 2 && st[0].kind == RG_SQL_BEGIN && st[n - 1].kind == RG_SQL_COMMIT;
        if (!known_modes(modes) || (!wrapped && modes[0]))
            fail("an isolation level not the grammar's, or one without a wrapper", 0);
        for (size_t i = 0; i < n; i++) {
            bool wrapper = wrapped && (i == 0 || i == n - 1);
            if (!wrapper && refused_in_transaction(st[i].kind))
                fail("accepted a statement that controls the transaction", i);
        }
        for (size_t b = 0; b < size; b++) {
            bool in_wrapper = wrapped && ((b >= st[0].start && b < st[0].end) ||
                                          (b >= st[n - 1].start && b < st[n - 1].end));
            if (copy[b] == sql[b])
                continue;
            if (!in_wrapper || copy[b] != ' ' || sql[b] == '\n')
                fail("a byte changed outside the wrapper, or not to a blank", 0);
        }
    }
    free(st);
    free(kept);
    free(sql);
    free(copy);
    return 0;
}
