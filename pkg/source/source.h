/* Migration files: list a directory, parse names and directives, read (size-capped),
 * checksum. Knows nothing of databases. */
#ifndef RG_SOURCE_H
#define RG_SOURCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err/err.h"
#include "source/lint.h"
#include "source/sql.h"

/* A migration file larger than this is refused: it is almost certainly a data dump put in
 * the wrong place, and reading it whole would break the small memory footprint. */
#define RG_SOURCE_MAX_FILE (16L * 1024 * 1024)

/* The checksum index in the migrations directory, written by `rollgate sum`. */
#define RG_SOURCE_SUM_FILE "rollgate.sum"

/* Directives from the file's leading comment lines (-- rollgate:...). 0: not given. */
struct rg_directives {
    bool no_transaction;
    bool post; /* rollgate:phase=post: a post-deploy (contract) migration */
    int64_t lock_timeout_ms;
    int64_t statement_timeout_ms;
    /* -- rollgate:allow=RULE[,RULE] reason: per rule, the line of the first directive that
     * accepts its findings in this file; 0 where none does. 32 bits: a file holds at most
     * RG_SOURCE_MAX_FILE bytes, SQL from the history at most PostgreSQL's 1 GB, and every
     * step and prepared migration carries these, so size_t would double them. */
    uint32_t allow_line[RG_LINT_NRULES];
    /* The isolation level of the file's BEGIN; ... COMMIT; wrapper ("ISOLATION LEVEL
     * SERIALIZABLE"), which the transaction rollgate opens for the file takes in its place;
     * "" for none (rg_sql_unwrap_split). */
    char begin_modes[RG_SQL_MODES_MAX];
};

/* A file without directives: all zero, shared by every such prepared file. */
extern const struct rg_directives rg_source_no_directives;

/* Which files of a migration rg_source_prepare reads. */
#define RG_SOURCE_UP 0x1u   /* the up file: its SQL and directives */
#define RG_SOURCE_DOWN 0x2u /* the down file, if there is one */
/* In prepared only: the up file's lint findings were taken (rg_source_prepare_lint). */
#define RG_SOURCE_LINTED 0x4u

struct rg_migration {
    int64_t version; /* > 0 */
    /* "create_users" from 0001_create_users.up.sql or V1__create_users.sql. It, up_path and
     * down_path live in the source's blocks (rg_source.titles, rg_source.names), not in
     * allocations of their own: a start holds them for every file. */
    const char *title;
    const char *up_path;   /* path of the up file, as opened */
    const char *up_name;   /* its base name, for messages: points into up_path */
    const char *down_path; /* NULL when there is no down file */
    /* What follows is read by rg_source_prepare, for the steps that will run (prepared
     * says which parts); NULL and zero until then. */
    char *up_sql; /* NUL-terminated contents without a leading UTF-8 byte order mark;
                     a BEGIN/COMMIT wrapper blanked (sql.h) */
    size_t up_len;
    char *down_sql; /* NULL when there is no down file */
    /* The up file's directives, set when it is prepared (NULL before): a start holds one
     * rg_migration per file of a long history, and most are never prepared, and most files
     * have none (&rg_source_no_directives, shared) while a run holds every step's. */
    const struct rg_directives *directives;
    /* The down file's own header: a rollback of CREATE INDEX CONCURRENTLY needs
     * no-transaction too. NULL when there is no down file or it is not prepared. */
    const struct rg_directives *down_directives;
    unsigned prepared;
    /* The bytes last, so that they pack: a start holds one rg_migration per file. */
    char checksum[65]; /* hex SHA-256 of the up file's bytes */
    /* The checksum is rollgate.sum's, trusted because the file's size and modification
     * time are still those recorded with it; rg_source_prepare checks it on reading. */
    bool checksum_from_index;
    /* rollgate:phase=post in the up file's header (read with the checksum, or rollgate.sum's
     * record of it): a post-deploy migration, applied by migrate --phase post|all only. */
    bool post;
};

/* A script known by name rather than version: R__title.sql (run again when its checksum
 * changes) or data/NAME.sql (run on every migrate). */
struct rg_script {
    char *name; /* the key recorded in the history: the title for R__title.sql, the file
                   name for data/ (e.g. "0001_seed.sql") */
    char *path; /* as opened, for messages */
    char *sql;  /* NUL-terminated; byte order mark and wrapper dropped like up files' */
    size_t len;
    char checksum[65];
    struct rg_directives directives;
};

struct rg_source {
    char *dir;
    /* The migrations' paths (up_path, down_path) and titles, each one after the other:
     * one allocation each for a whole history instead of one per migration. The paths are
     * the directory's listing itself, each name after dir's path, so it may hold names
     * that are no migration's (R__ files). NULL for a source built by hand. */
    char *names;
    char *titles;
    struct rg_migration *items; /* sorted by version, ascending, no duplicates */
    size_t n;
    struct rg_script *repeatable; /* R__title.sql, sorted by name (strcmp) */
    size_t nrepeatable;
    struct rg_script *data; /* data/NAME.sql, sorted by name (strcmp, byte-wise) */
    size_t ndata;
    char **near_misses; /* paths of files not loaded whose names look meant to be
                           migrations (0001_x.UP.SQL, 0001_x.up.sq): dir's, then data/'s,
                           each in name order */
    size_t nnear_misses;
    /* A glance (rg_source_load_start's): the up files as rollgate.sum's digest line sums
     * them, n of them up to latest, and nothing else loaded (items NULL, n 0) until
     * rg_source_complete. */
    struct rg_source_glance {
        bool taken;
        size_t n;
        int64_t latest;
        char digest[65];
    } glance;
};

/* Loads what every run needs of the migrations in dir, and no more, so that a start with
 * nothing to do costs little however long the history is:
 *  - versioned: golang-migrate's NNNN_title.up.sql with optional NNNN_title.down.sql, or
 *    Flyway's V<n>__title.sql with optional U<n>__title.sql. A version is a positive 64-bit
 *    integer (leading zeros and timestamps are fine, Flyway's dotted V1.1 is not); a title
 *    is [A-Za-z0-9_-]+. One version uses one naming style for its up and its down file.
 *    Only the up file is read here, whole (at most RG_SOURCE_MAX_FILE bytes, no NUL), for
 *    its checksum (the file's bytes), and not kept; its SQL and the down file are read by
 *    rg_source_prepare, for the migrations a run will apply or roll back.
 *    With a checksum index (RG_SOURCE_SUM_FILE, rg_source_sum_write) in dir, an up file
 *    whose size and modification time (to the nanosecond, or to the second when the file's
 *    time has no fraction left, as image layers keep it) are those the index recorded is
 *    not read: its checksum is the index's. Every other up file is read as without an
 *    index. The directory is not even listed when the index vouches for its names: dir's
 *    modification time is the one recorded in the index (to the second, as for a file),
 *    and earlier than the index's own, and the index matches its own checksum; any entry
 *    added, removed or renamed since gives dir a later time, and dir is listed. An index
 *    that cannot be read or is out of form is logged as a warning and not used.
 *  - repeatable: R__title.sql, into repeatable, named by its title.
 *  - data: every *.sql file directly in dir/data/ (which may be absent), into data, named
 *    by its file name, whose part before .sql is [A-Za-z0-9_.-]+. Dotfiles, other files
 *    and subdirectories in data/ are skipped.
 * Repeatable and data scripts are read whole as rg_source_prepare reads a migration, and
 * checksummed.
 * Errors (code RG_EFILES) name the file: a missing or unreadable directory or up file, a
 * *.sql name in dir that fits none of the forms above, a bad version or title, two up or
 * two down files for one version, one version named in both styles, up and down files
 * with different titles, a down file without its up file, an up file over
 * RG_SOURCE_MAX_FILE or holding a NUL byte, what rg_source_prepare refuses in a script, a
 * dir/data that is not a directory. In dir itself, names that do not end in .sql
 * (README.md, .keep, data/) and dotfiles (a ConfigMap volume's ..data links) are skipped,
 * but those that look meant to be migrations (near misses, README "Migration files") are
 * listed in near_misses and each logged as a warning. On error *src is left empty. */
int rg_source_load(const char *dir, struct rg_source *src, struct rg_err *err) RG_WUR;
void rg_source_free(struct rg_source *src);

/* rg_source_load with dir always listed, never its names taken from the index: validate
 * checks the names as they are. */
int rg_source_load_listed(const char *dir, struct rg_source *src, struct rg_err *err) RG_WUR;

/* rg_source_load on a thread of its own, so that a start reads the files while it
 * connects: start, do something else, then finish, which waits for the load (helping with a
 * glance's stats) and gives what rg_source_load would have (*src, or -1 and *err). When the load
 * fails, failed(arg) is called at once from the loading thread (failed may be NULL): it may cut
 * short what the caller does meanwhile, such as a connection that retries. A process that cannot
 * start a thread loads in start. Each start is finished exactly once.
 * With glance, for a start that compares the files' digest first (migrate to the latest
 * version): when dir's rollgate.sum vouches for the names, every up file still has the
 * size and time recorded, and the index has a digest line (written for a directory of up
 * and down files only; data/ empty or absent), the source is only that glance
 * (src->glance), and nothing else is read; rg_source_complete loads the rest. */
struct rg_source_job;
struct rg_source_job *rg_source_load_start(const char *dir, bool glance, void (*failed)(void *),
                                           void *arg);
/* Loads in full a source that is a glance (rg_source_load, logging what it logs); does
 * nothing to any other. On error *src is left empty. */
int rg_source_complete(struct rg_source *src, struct rg_err *err) RG_WUR;
/* The number of migrations and the highest version (0 when none), of a glance too. */
size_t rg_source_count(const struct rg_source *src);
int64_t rg_source_latest(const struct rg_source *src);
int rg_source_load_finish(struct rg_source_job *job, struct rg_source *src,
                          struct rg_err *err) RG_WUR;

/* The highest version among dir's migration file names (0 when none) and that file's name
 * (allocated; NULL when none), from the names alone: what `new` numbers from. Errors as
 * rg_source_load's for the names. */
int rg_source_newest(const char *dir, int64_t *version, char **name, struct rg_err *err) RG_WUR;

/* `rollgate sum`: writes dir's checksum index (RG_SOURCE_SUM_FILE): under a first line
 * holding the SHA-256 of the lines below it, for a directory without R__ scripts and near
 * misses a digest line ("digest N LATEST SHA256": rg_source_digest of the up files, how many,
 * the highest version), then one line per up file in name order
 * ("CHECKSUM SIZE SECONDS.NANOSECONDS PHASE NAME": the file's SHA-256, size, modification
 * time and rollgate:phase), then "+ NAME" for every other name a load keeps (down files,
 * R__ scripts, near misses) in name order, then "dir SECONDS.NANOSECONDS", dir's
 * modification time with the index in it. The index is written in place (a rename would
 * change dir's time) and its own time then made later than dir's in whole seconds
 * (waiting for the next second). Every up file is read (an old index is ignored); *count
 * says how many. Errors (RG_EFILES) as rg_source_load's, a file or dir changed while it
 * was read, or the index not written. */
int rg_source_sum_write(const char *dir, size_t *count, struct rg_err *err) RG_WUR;

/* For validate, once every file was read (rg_source_load_listed, rg_source_prepare_all):
 * when dir has an index, an error (RG_EFILES) naming the file when the index is unreadable
 * or damaged, when an up file or another name is not listed, when a listed checksum
 * differs from its file's, or when it lists names that are gone. An index that is right but whose
 * sizes or times differ (so runs read those files) is a warning. */
int rg_source_check_sum(const struct rg_source *src, struct rg_err *err) RG_WUR;

/* For validate, which is stricter than the commands that run: an error (RG_EFILES) naming
 * the first near-miss name, if there is one. */
int rg_source_check_names(const struct rg_source *src, struct rg_err *err) RG_WUR;

/* Reads the parts (RG_SOURCE_UP, RG_SOURCE_DOWN) of version's files that are not read
 * yet: each file whole (at most RG_SOURCE_MAX_FILE bytes, no NUL), a leading UTF-8 byte
 * order mark dropped, checked to be UTF-8, its leading -- rollgate: directives parsed and
 * its statements checked by PostgreSQL's parser (rg_sql_unwrap: a file of only comments,
 * COPY FROM STDIN / TO STDOUT, and unless marked no-transaction transaction control and
 * VACUUM are refused, a BEGIN; ... COMMIT; wrapper blanked). The up file must still have
 * the checksum rg_source_load took: SQL other than what the history will record is never
 * run. Errors (RG_EFILES) name the file (path:line where there is one): a missing or
 * unreadable file, a file over RG_SOURCE_MAX_FILE, a NUL byte, bytes that are not UTF-8,
 * an unknown or malformed directive, what rg_sql_unwrap refuses, an up file changed since
 * it was loaded; RG_EINTERNAL for a version src does not have. */
int rg_source_prepare(struct rg_source *src, int64_t version, unsigned parts,
                      struct rg_err *err) RG_WUR;
/* rg_source_prepare, and with lint, the up file's lint findings (judged with its
 * directives) into *lint the first time they are asked for (*linted): from the one split
 * that also checked the file when it is read now, else from its SQL held in memory. */
int rg_source_prepare_lint(struct rg_source *src, int64_t version, unsigned parts,
                           struct rg_lint *lint, bool *linted, struct rg_err *err) RG_WUR;

/* rg_source_prepare of every migration's up and down file, in version order: what
 * validate checks, so that a validate that passes means no run will refuse a file. */
int rg_source_prepare_all(struct rg_source *src, struct rg_err *err) RG_WUR;

/* The migration with this version, or NULL. */
const struct rg_migration *rg_source_find(const struct rg_source *src, int64_t version);

/* The -- rollgate: directives in the leading comment lines of sql, parsed as
 * rg_source_load parses a file's: for SQL that comes from elsewhere, such as a down
 * migration kept in the history. Errors (RG_EFILES) name path:line. */
int rg_source_directives(const char *path, const char *sql, size_t len, struct rg_directives *d,
                         struct rg_err *err) RG_WUR;

/* Hex SHA-256 of the lines "VERSION CHECKSUM\n" of src's migrations in version order (the
 * version in decimal, the checksum as loaded; a glance's is rollgate sum's): what the
 * store's digest_history computes over the history's schema rows, so that equal digests
 * mean the same migrations with the same checksums. Aborts as rg_source_checksum does. */
void rg_source_digest(const struct rg_source *src, char out[65]);

/* Hex SHA-256 of buf into out[65]. Aborts if OpenSSL cannot digest at all (no memory). */
void rg_source_checksum(const void *buf, size_t len, char out[65]);

#endif
