/* Migration file names: golang-migrate's, Flyway's versioned and repeatable forms, data/ names,
 * and the messages that say which form was expected. */
#include "source/internal.h"

#include <stdlib.h>
#include <string.h>

#include "mem/mem.h"

#define EXPECTED_NAME "expected NNNN_title.up.sql or NNNN_title.down.sql"
#define EXPECTED_FLYWAY "expected V<version>__title.sql or U<version>__title.sql"
#define EXPECTED_REPEATABLE "expected R__title.sql"
#define EXPECTED_ANY                                                                               \
    "expected NNNN_title.up.sql or NNNN_title.down.sql, V<version>__title.sql or "                 \
    "U<version>__title.sql, or R__title.sql"

bool rg_source_ends_with(const char *s, size_t len, const char *suffix)
{
    size_t n = strlen(suffix);

    return len >= n && memcmp(s + len - n, suffix, n) == 0;
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_title_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) || c == '_' || c == '-';
}

/* A title: [A-Za-z0-9_-]+. It becomes part of the history and of log lines, where blanks
 * and dots would only make names ambiguous. */
static int check_title(const char *path, const char *title, size_t len, const char *expected,
                       struct rg_err *err)
{
    if (len == 0) {
        rg_err_set(err, RG_EFILES, "%s: migration file name has no title (%s)", path, expected);
        return -1;
    }
    for (size_t i = 0; i < len; i++) {
        if (!is_title_char(title[i])) {
            rg_err_set(err, RG_EFILES,
                       "%s: not a migration file name: the title may hold only letters, digits, "
                       "'_' and '-' (%s)",
                       path, expected);
            return -1;
        }
    }
    return 0;
}

/* The decimal digits at s (s[0] is one) as a version, *end past them all (a version too
 * large included, for the message). By hand rather than strtoll, which also takes blanks
 * and a sign and, with its locale machinery, cost a tenth of a start over a long history. */
static int parse_version(const char *path, const char *s, int64_t *v, const char **end,
                         struct rg_err *err)
{
    const char *p = s;
    int64_t x = 0;
    bool over = false;

    for (; is_digit(*p); p++) {
        int d = *p - '0';

        if (x > (INT64_MAX - d) / 10)
            over = true;
        else
            x = x * 10 + d;
    }
    *end = p;
    if (over) {
        rg_err_set(err, RG_EFILES,
                   "%s: version %.*s is out of range (a positive 64-bit integer, at most %lld)",
                   path, (int)(p - s), s, (long long)INT64_MAX);
        return -1;
    }
    *v = x;
    return 0;
}

/* A name that rollgate does not load but that looks meant to be a migration (README
 * "Migration files"): it holds ".sql" in another letter case or with more after it, or
 * ends in ".sq" (0001_x.UP.SQL, x.sql.bak, x.sql~, 0001_x.up.sq), or, in the migrations
 * directory itself, it starts the way a versioned or repeatable migration's name does (a
 * digit, V or U and a digit, R__: 0001_x.up.txt, V2__x.psql). Names ending in .sql never
 * get here: they are loaded, or refused. */
bool rg_source_near_miss(const char *name, bool data)
{
    size_t len = strlen(name);
    char *lower = rg_strdup(name);
    bool near;

    for (char *c = lower; *c; c++)
        if (*c >= 'A' && *c <= 'Z')
            *c = (char)(*c - 'A' + 'a');
    near = strstr(lower, ".sql") != NULL || rg_source_ends_with(lower, len, ".sq");
    free(lower);
    if (near || data)
        return near;
    return is_digit(name[0]) || ((name[0] == 'V' || name[0] == 'U') && is_digit(name[1])) ||
           strncmp(name, "R__", 3) == 0;
}

int rg_source_check_names(const struct rg_source *src, struct rg_err *err)
{
    if (src->nnear_misses == 0)
        return 0;
    rg_err_set(err, RG_EFILES,
               "%s: not loaded: the name looks like a migration file's but fits none of the "
               "forms (" EXPECTED_ANY ", or data/NAME.sql; names are case-sensitive)",
               src->near_misses[0]);
    if (src->nnear_misses > 1)
        rg_err_suffix(err, "; %zu more such names, each logged as a warning",
                      src->nnear_misses - 1);
    return -1;
}

/* golang-migrate's NNNN_title.up.sql / NNNN_title.down.sql. */
static int parse_golang(const char *path, const char *name, struct entry *e, struct rg_err *err)
{
    size_t len = strlen(name), stem_len;
    const char *end;
    int64_t v;

    if (rg_source_ends_with(name, len, ".up.sql")) {
        e->down = false;
        stem_len = len - strlen(".up.sql");
    } else if (rg_source_ends_with(name, len, ".down.sql")) {
        e->down = true;
        stem_len = len - strlen(".down.sql");
    } else {
        rg_err_set(err, RG_EFILES, "%s: not a migration file name (" EXPECTED_ANY ")", path);
        return -1;
    }
    if (!is_digit(name[0])) {
        rg_err_set(err, RG_EFILES, "%s: not a migration file name (" EXPECTED_ANY ")", path);
        return -1;
    }
    if (parse_version(path, name, &v, &end, err) != 0)
        return -1;
    if ((size_t)(end - name) == stem_len) {
        rg_err_set(err, RG_EFILES, "%s: migration file name has no title (" EXPECTED_NAME ")",
                   path);
        return -1;
    }
    if (*end != '_') {
        rg_err_set(err, RG_EFILES, "%s: not a migration file name (" EXPECTED_NAME ")", path);
        return -1;
    }
    if (v <= 0) {
        rg_err_set(err, RG_EFILES, "%s: version must be greater than 0 (" EXPECTED_NAME ")", path);
        return -1;
    }
    e->style = STYLE_GOLANG;
    e->version = v;
    e->title = end + 1;
    e->title_len = (size_t)(name + stem_len - e->title);
    return check_title(path, e->title, e->title_len, EXPECTED_NAME, err);
}

/* Flyway's V<version>__title.sql (up) / U<version>__title.sql (down). */
static int parse_flyway(const char *path, const char *name, struct entry *e, struct rg_err *err)
{
    const char *stem_end = name + strlen(name) - strlen(".sql"), *end, *sep;
    int64_t v;

    if (!is_digit(name[1])) {
        rg_err_set(err, RG_EFILES, "%s: not a migration file name (" EXPECTED_FLYWAY ")", path);
        return -1;
    }
    if (parse_version(path, name + 1, &v, &end, err) != 0)
        return -1;
    if (end == stem_end) {
        rg_err_set(err, RG_EFILES, "%s: migration file name has no title (" EXPECTED_FLYWAY ")",
                   path);
        return -1;
    }
    /* Flyway orders V1.1 (or V1_1) between V1 and V2; rollgate keeps versions in a bigint
     * history column, so such a file would have no place in it. */
    if (*end == '.' || (end[0] == '_' && is_digit(end[1]))) {
        sep = strstr(name + 1, "__");
        if (!sep || sep > stem_end)
            sep = stem_end;
        rg_err_set(err, RG_EFILES,
                   "%s: version %.*s is not an integer: versions must be integers (V2__title.sql, "
                   "not V1.1__title.sql)",
                   path, (int)(sep - name - 1), name + 1);
        return -1;
    }
    if (end[0] != '_' || end[1] != '_') {
        rg_err_set(err, RG_EFILES,
                   "%s: not a migration file name: two '_' follow the version (" EXPECTED_FLYWAY
                   ")",
                   path);
        return -1;
    }
    if (v <= 0) {
        rg_err_set(err, RG_EFILES, "%s: version must be greater than 0 (" EXPECTED_FLYWAY ")",
                   path);
        return -1;
    }
    e->style = STYLE_FLYWAY;
    e->version = v;
    e->down = name[0] == 'U';
    e->title = end + 2;
    e->title_len = (size_t)(stem_end - e->title);
    return check_title(path, e->title, e->title_len, EXPECTED_FLYWAY, err);
}

/* Flyway's R__title.sql. */
static int parse_repeatable(const char *path, const char *name, struct entry *e, struct rg_err *err)
{
    size_t stem_len = strlen(name) - strlen(".sql");

    if (stem_len < 3 || memcmp(name, "R__", 3) != 0) {
        rg_err_set(err, RG_EFILES, "%s: not a migration file name (" EXPECTED_REPEATABLE ")", path);
        return -1;
    }
    e->style = STYLE_REPEATABLE;
    e->title = name + 3;
    e->title_len = stem_len - 3;
    return check_title(path, e->title, e->title_len, EXPECTED_REPEATABLE, err);
}

/* One name, messages naming it as path. */
static int parse_as(const char *path, const char *name, struct entry *e, struct rg_err *err)
{
    *e = (struct entry){.name = name};
    if (name[0] == 'V' || name[0] == 'U')
        return parse_flyway(path, name, e, err);
    if (name[0] == 'R')
        return parse_repeatable(path, name, e, err);
    return parse_golang(path, name, e, err);
}

/* A *.sql name in the migrations directory, by its first character: Flyway's prefixes are
 * upper case letters, golang-migrate's versions digits. Every *.sql name that fits none is
 * an error rather than skipped: a typo would otherwise silently drop a migration. The
 * path for the message is joined only for a name that fails, parsed again with it: joining
 * it for each of thousands of good names cost a fifth of a start. */
int rg_source_parse_name(const char *dir, const char *name, struct entry *e, struct rg_err *err)
{
    char *path;
    int rc;

    if (parse_as(name, name, e, err) == 0)
        return 0;
    path = rg_source_join_path(dir, name);
    rc = parse_as(path, name, e, err);
    free(path);
    return rc;
}

/* data/NAME.sql: no naming rules but the characters before .sql, so that the name, which
 * is recorded in the history, reads the same everywhere. */
int rg_source_check_data_name(const char *dir, const char *name, struct rg_err *err)
{
    size_t stem_len = strlen(name) - strlen(".sql");
    char *path;

    for (size_t i = 0; i < stem_len; i++) {
        if (!is_title_char(name[i]) && name[i] != '.') {
            path = rg_source_join_path(dir, name);
            rg_err_set(err, RG_EFILES,
                       "%s: not a data migration name: the part before .sql may hold only "
                       "letters, digits, '_', '-' and '.'",
                       path);
            free(path);
            return -1;
        }
    }
    return 0;
}

/* The file name a version's up file would have in the style of e (a down file). */
char *rg_source_expected_up(const struct entry *e)
{
    if (e->style == STYLE_FLYWAY)
        return rg_asprintf("V%.*s__%.*s.sql", (int)(e->title - 2 - e->name - 1), e->name + 1,
                           (int)e->title_len, e->title);
    return rg_asprintf("%.*s_%.*s.up.sql", (int)(e->title - 1 - e->name), e->name,
                       (int)e->title_len, e->title);
}
