#include "pg/pg.h"

int rg_pg_position(const char *sql, long pos, long *line, long *col)
{
    long chars = 0;

    *line = 1;
    *col = 1;
    if (pos < 1)
        return -1;
    for (const unsigned char *p = (const unsigned char *)sql; *p; p++) {
        /* UTF-8 continuation bytes do not start a character. */
        if ((*p & 0xC0) == 0x80)
            continue;
        if (++chars == pos)
            return 0;
        if (*p == '\n') {
            (*line)++;
            *col = 1;
        } else {
            (*col)++;
        }
    }
    /* PostgreSQL points one past the end for "syntax error at end of input". */
    return chars + 1 == pos ? 0 : -1;
}
