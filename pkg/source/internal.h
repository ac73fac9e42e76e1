/* What names.c, read.c and source.c share; nothing outside pkg/source includes it. */
#ifndef RG_SOURCE_INTERNAL_H
#define RG_SOURCE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err/err.h"
#include "source/source.h"

struct stat;

/* golang-migrate's NNNN_title.up.sql, Flyway's V1__title.sql, or Flyway's R__title.sql. */
enum style { STYLE_GOLANG, STYLE_FLYWAY, STYLE_REPEATABLE };

/* One *.sql name from the directory, parsed. The name is owned by the names array. */
struct entry {
    const char *name;
    enum style style;
    int64_t version; /* 0 for a repeatable */
    bool down;
    const char *title; /* points into name */
    size_t title_len;
};

/* source.c */
/* dir/name, allocated (rg_malloc family). */
char *rg_source_join_path(const char *dir, const char *name);

/* names.c: file names */
bool rg_source_ends_with(const char *s, size_t len, const char *suffix);
/* A *.sql name in dir into *e, whose name and title point into name. Errors (RG_EFILES)
 * name dir/name. */
int rg_source_parse_name(const char *dir, const char *name, struct entry *e,
                         struct rg_err *err) RG_WUR;
/* Errors (RG_EFILES) name dir/name. */
int rg_source_check_data_name(const char *dir, const char *name, struct rg_err *err) RG_WUR;
/* Allocated (rg_malloc family). */
char *rg_source_expected_up(const struct entry *e);
/* Whether name (not a dotfile, not ending in .sql) looks meant to be a migration in the
 * migrations directory, or in data/ when data is set. */
bool rg_source_near_miss(const char *name, bool data);

/* read.c: reading a file */
/* The checksum (char[65]) of the file's bytes, read as rg_source_read_sql reads them and
 * not kept, and whether its header says rollgate:phase=post. Errors (RG_EFILES,
 * RG_EINTERNAL) name path (path:line for a bad phase). */
int rg_source_read_checksum(const char *path, char *checksum, bool *post,
                            struct rg_err *err) RG_WUR;
/* *sql allocated, NUL-terminated; checksum (char[65]) may be NULL. stmts, when not NULL,
 * takes its statements from the split that checked them (allocated, *nstmts of them).
 * Errors (RG_EFILES, RG_EINTERNAL) name path. */
struct rg_sql_stmt;
int rg_source_read_sql(const char *path, char **sql, size_t *len, char *checksum,
                       struct rg_directives *d, struct rg_sql_stmt **stmts, size_t *nstmts,
                       struct rg_err *err) RG_WUR;

/* source.c */
/* qsort, skipped when base is in order already. */
void rg_source_sort(void *base, size_t n, size_t size, int (*cmp)(const void *, const void *));
/* rg_source_load without the index: every up file is read for its checksum. */
int rg_source_load_files(const char *dir, struct rg_source *src, struct rg_err *err) RG_WUR;

/* sum.c: the checksum index. One entry: pointers into the index's text. */
struct sum_entry {
    const char *name; /* the up file's base name; not NUL-terminated */
    size_t name_len;
    const char *checksum; /* 64 hex digits; not NUL-terminated */
    int64_t size;
    int64_t mtime_sec;
    long mtime_nsec;
    bool post; /* the file's rollgate:phase=post */
};

struct sum_index {
    char *buf;
    struct sum_entry *e; /* in name order (byte-wise) */
    size_t n;
};

/* dir's index into *idx; *present false (and 0) when it has none. Errors (RG_EFILES) name
 * path:line: unreadable, not an index, its checksum line does not match the entries, an
 * entry out of form or out of order. */
int rg_source_sum_read(const char *dir, struct sum_index *idx, bool *present,
                       struct rg_err *err) RG_WUR;
void rg_source_sum_free(struct sum_index *idx);
const struct sum_entry *rg_source_sum_find(const struct sum_index *idx, const char *name);
/* The checksums of items (n of them) that dir's index lists with the size and modification
 * time their files still have, with checksum_from_index set; *trusted counts them. No
 * index: 0, nothing set. An index out of form: -1 (RG_EFILES, path:line) and nothing set,
 * so that every file is read. The index's own checksum is not checked here. */
int rg_source_sum_apply(const char *dir, struct rg_migration *items, size_t n, size_t *trusted,
                        struct rg_err *err) RG_WUR;
/* Whether st (of the file e names) is still what e recorded: a regular file of the same
 * size and modification time, to the nanosecond, or to the second when st has no fraction
 * of a second left (an image layer's copy of the file). */
bool rg_source_sum_fresh(const struct sum_entry *e, const struct stat *st);

#endif
