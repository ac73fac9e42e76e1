/* What pkg/source's files share; nothing outside pkg/source includes it. */
#ifndef RG_SOURCE_INTERNAL_H
#define RG_SOURCE_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "err/err.h"
#include "source/source.h"

struct stat;

/* golang-migrate's NNNN_title.up.sql, Flyway's V1__title.sql, or Flyway's R__title.sql. */
enum style { STYLE_GOLANG, STYLE_FLYWAY, STYLE_REPEATABLE };

/* One *.sql name from the directory, parsed. The name is owned by the names array. */
/* Members largest first: a start holds one per file, 20,000 for a history of 10,000. */
struct entry {
    const char *name;
    const char *title; /* points into name */
    int64_t version;   /* 0 for a repeatable */
    size_t title_len;
    enum style style;
    bool down;
};

/* glance.c: into *src (left empty otherwise) dir's glance, when rollgate.sum's digest
 * line stands for its up files (rg_source_load_start), its stats offered to help; why not
 * is logged at debug level. */
struct rg_source_help;
bool rg_source_glance(const char *dir, struct rg_source *src, struct rg_source_help *help);

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
/* A SHA-256 as the 64 lowercase hex digits of a checksum (and a NUL), and back: 64 such
 * digits (is_hex64 in sum.c checked them) into 32 bytes. */
void rg_source_sha_to_hex(const unsigned char md[32], char out[65]);
void rg_source_sha_from_hex(const char hex[64], unsigned char md[32]);
/* The checksum (char[65]) of fd's bytes from offset from to end, read 64 KiB at a time;
 * false when they cannot all be read (the file was cut meanwhile). */
bool rg_source_checksum_fd(int fd, off_t from, off_t end, char out[65]);
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

/* sum.c: the checksum index, whose first line is SUM_MAGIC and its checksum. */
#define SUM_MAGIC "rollgate-sum 3 "
/* 10,000 entries take about 1.4 MB; a file far larger is not an index. */
#define SUM_MAX_FILE (64L * 1024 * 1024)

/* The index at path opened for reading as rg_file_read opens a file (O_NONBLOCK: a FIFO
 * named rollgate.sum cannot hang a start; readers then take regular files only). */
int rg_source_sum_open(const char *path);

/* One entry: pointers into the index's text. */
struct sum_entry {
    const char *name; /* the up file's base name; NUL-terminated in the index's text */
    size_t name_len;
    const char *checksum; /* 64 hex digits; not NUL-terminated */
    int64_t size;
    int64_t mtime_sec;
    long mtime_nsec;
    bool post; /* the file's rollgate:phase=post */
};

/* The second line, "digest MIGRATIONS LATEST SHA256", written for a directory of up and
 * down files only: rg_source_digest's text summed over its up files, how many, and the
 * highest version. */
struct sum_digest {
    size_t n;
    int64_t latest;
    char sha256[65];
};

struct sum_index {
    char *buf;
    bool has_digest;
    struct sum_digest digest;
    struct sum_entry *e; /* the up files, in name order (byte-wise) */
    size_t n;
    const char **other; /* every other name a listing keeps (down files, R__ scripts, near
                           misses), in name order, NUL-terminated in buf */
    size_t nother;
    int64_t dir_sec; /* the directory's modification time once rollgate.sum was in it */
    long dir_nsec;
    struct timespec mtime; /* the index file's own modification time */
};

/* dir's index, read whole, into *idx; *present false (and 0) when it has none. check: the
 * checksum line must match the entries. Errors (RG_EFILES) name path:line: unreadable,
 * not an index, its checksum line does not match the entries (check), a line out of form
 * or out of order, no dir line at the end. */
int rg_source_sum_read(const char *dir, bool check, struct sum_index *idx, bool *present,
                       struct rg_err *err) RG_WUR;
/* The entry of the up file name, or NULL: a binary search, the entries being in name order. */
const struct sum_entry *rg_source_sum_find(const struct sum_index *idx, const char *name);
/* Pointers to items (n of them) in the index's order: by up file name, byte-wise; freed by
 * the caller. */
struct rg_migration **rg_source_sum_by_name(struct rg_migration *items, size_t n);
void rg_source_sum_free(struct sum_index *idx);
/* An entry line's part after its checksum and space ("SIZE SECONDS.NANOSECONDS PHASE
 * NAME", from p to end, without its newline) into *e, but for its checksum, and the digest
 * line into *d; false when out of form. */
bool rg_source_sum_parse_file(const char *p, const char *end, struct sum_entry *e);
bool rg_source_sum_parse_digest_line(const char *p, const char *end, struct sum_digest *d);
/* Whether the directory whose stat is dir_st still holds the names idx recorded: its
 * modification time is the one recorded (exactly, or to the second when dir_st has no
 * fraction of a second left) and earlier than the index file's own (in whole seconds when
 * either has no fraction). Adding, removing or renaming an entry sets the directory's time
 * to the present, which rollgate sum made later than the recorded one and no later than
 * the index's. */
bool rg_source_sum_vouches(const struct sum_index *idx, const struct stat *dir_st);
/* Whether the index open as fd, whose stat is st, can vouch for dir_st's directory, from
 * its last line and its time alone (read from the end of the file): most starts whose
 * directory changed learn it without reading the index whole. */
bool rg_source_sum_tail_vouches(int fd, const struct stat *st, const struct stat *dir_st);
/* What an index entry recorded of its file: its size and time, which a stat compares,
 * and, for the names a start took from the index (rg_source_sum_names), its checksum (in
 * binary: 32 bytes instead of 64 per file, held through a start) and phase. */
struct sum_want {
    int64_t size;
    int64_t mtime_sec;
    long mtime_nsec;
    unsigned char sha256[32];
    bool post;
};

/* When dir's index vouches for the directory whose stat is dir_st (rg_source_sum_vouches)
 * and matches its own checksum: the *.sql names it holds, *count of them one after the
 * other in *buf (*len bytes, each with its NUL; the up files' first, in the index's order,
 * with what their entries recorded, checksums and phases too, in *want, *nwant of them), and
 * its near misses as paths in *near
 * (*nnear of them, each allocated). Else *buf NULL: list the directory. Errors (RG_EFILES)
 * as rg_source_sum_read's, for an index that would vouch. */
int rg_source_sum_names(const char *dir, const struct stat *dir_st, char **buf, size_t *len,
                        size_t *count, struct sum_want **want, size_t *nwant, char ***near,
                        size_t *nnear, struct rg_err *err) RG_WUR;
/* stats.c: the up files' stats against their entries. */
/* Whether st (of a file an entry names) is still what the entry recorded (w's size and
 * time): a regular file of the same size and modification time, to the nanosecond, or to
 * the second when st has no fraction of a second left (an image layer's copy of the file). */
bool rg_source_sum_fresh(const struct sum_want *w, const struct stat *st);
/* Stats of n up files (names, in the directory dfd) against what their entries recorded
 * (want, taken over), started on a thread of their own (from 512 files on) so that they
 * overlap the rest of a load, which joins in when it needs their results. Once finished,
 * fresh[i] says whether names[i] is still what want[i] recorded. */
struct sum_stats {
    int dfd;
    const char *const *names; /* borrowed */
    struct sum_want *want;
    unsigned char *fresh; /* per name, once finished */
    size_t n;
    atomic_size_t next; /* the first name no thread has taken yet */
    pthread_t helper;
    bool threaded, finished;
};
struct sum_stats *rg_source_sum_stats_start(int dfd, const char *const *names,
                                            struct sum_want *want, size_t n);
/* Waits for them, looking at what is left meanwhile; again does nothing. */
void rg_source_sum_stats_finish(struct sum_stats *s);
/* Finishes them and frees s and its want; accepts NULL. */
void rg_source_sum_stats_free(struct sum_stats *s);
/* The stats of the up files whose entries are the lines of the index open as fd, from
 * offset from to end (whole lines, up to the "+ NAME" lines and the dir line, which end
 * them), in the directory dfd: a pool of blocks of the index that any number of threads
 * work on at once (rg_source_sum_lines_work returns when no block is left), each block
 * read and parsed as its files are looked at, no copy of the index held. Once every
 * thread is out: bad when a line could not be read or was out of form, entries the entry
 * lines, fresh those whose files are still what they recorded. */
struct line_pool {
    int dfd, fd;
    off_t from, end;
    atomic_size_t next;   /* the first block no thread has taken yet */
    atomic_size_t others; /* the first block known to hold a line past the entries */
    atomic_size_t entries, fresh;
    atomic_bool bad;
};
void rg_source_sum_lines_init(struct line_pool *p, int dfd, int fd, off_t from, off_t end);
void rg_source_sum_lines_work(struct line_pool *p);
/* Where the thread that waits for a load (rg_source_load_finish) helps with its stats: the
 * loading thread offers its pool, and withdraws it (waiting for the helper to be out)
 * before it judges the results; the waiting thread helps with a pool on offer, or returns
 * once the load has finished without one. */
struct rg_source_help {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct line_pool *pool;
    unsigned in; /* helpers at work on pool */
    bool finished;
};
void rg_source_help_init(struct rg_source_help *h);
void rg_source_help_destroy(struct rg_source_help *h);
void rg_source_help_offer(struct rg_source_help *h, struct line_pool *p);
void rg_source_help_withdraw(struct rg_source_help *h);
void rg_source_help_finished(struct rg_source_help *h);
void rg_source_help_out(struct rg_source_help *h);
/* The checksums of items (n of them) that dir's index lists with the size and modification
 * time their files (looked up in the directory dfd) still have, with checksum_from_index
 * set; *trusted counts them. With early (the stats of the names and entries
 * rg_source_sum_names took from the index), the entries are early's and the index is not
 * read again; items it does not name are read from their files. Without: the index is
 * read and its files looked at here, many on two threads. No index: 0, nothing trusted.
 * An index out of form: -1 (RG_EFILES, path:line), nothing trusted. The index's own
 * checksum is not checked here: an entry is trusted only while its file matches it. */
int rg_source_sum_apply(const char *dir, int dfd, struct rg_migration *items, size_t n,
                        struct sum_stats *early, size_t *trusted, struct rg_err *err) RG_WUR;

#endif
