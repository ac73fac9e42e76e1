/* What names.c, read.c and source.c share; nothing outside pkg/source includes it. */
#ifndef RG_SOURCE_INTERNAL_H
#define RG_SOURCE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err/err.h"
#include "source/source.h"

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
/* *sql allocated, NUL-terminated; checksum (char[65]) may be NULL. Errors (RG_EFILES,
 * RG_EINTERNAL) name path. */
int rg_source_read_sql(const char *path, char **sql, size_t *len, char *checksum,
                       struct rg_directives *d, struct rg_err *err) RG_WUR;

#endif
