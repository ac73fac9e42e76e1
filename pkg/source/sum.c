/* The checksum index, rollgate.sum: written by `rollgate sum` when the image is built, so
 * that a start reads one file instead of every up file for its checksum (Atlas's atlas.sum
 * serves the same purpose). An entry is trusted only while its file's size and modification
 * time are still the ones recorded with it; any other file is read, as without an index. */
#include "source/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log/log.h"
#include "mem/mem.h"

#define SUM_READ_BUF (64 * 1024)

/* Without a branch per character, so that the compiler can check many at once: every
 * start checks one such checksum per migration. */
static bool is_hex64(const char *s)
{
    unsigned ok = 1;

    for (int i = 0; i < 64; i++) {
        unsigned c = (unsigned char)s[i];

        ok &= (c - '0' < 10u) | (c - 'a' < 6u);
    }
    return ok;
}

/* A decimal number of digits only at *p, at most max, *p moved past it. */
static bool parse_number(const char **p, const char *end, int64_t max, int64_t *v)
{
    const char *s = *p;
    int64_t x = 0;

    if (s == end || *s < '0' || *s > '9')
        return false;
    for (; s < end && *s >= '0' && *s <= '9'; s++) {
        if (x > (max - (*s - '0')) / 10)
            return false;
        x = x * 10 + (*s - '0');
    }
    *p = s;
    *v = x;
    return true;
}

/* One line "CHECKSUM SIZE SECONDS.NANOSECONDS PHASE NAME" (without its newline) into e. The
 * phase (pre or post) is the file's rollgate:phase, read with its checksum: a start that
 * trusts the entry does not open the file, and needs the phase to plan a rollout. */
static bool parse_line(const char *line, const char *end, struct sum_entry *e)
{
    if (end - line < 65 || !is_hex64(line) || line[64] != ' ')
        return false;
    e->checksum = line;
    return rg_source_sum_parse_file(line + 65, end, e);
}

bool rg_source_sum_parse_file(const char *p, const char *end, struct sum_entry *e)
{
    const char *frac;
    int64_t nsec = 0;

    if (!parse_number(&p, end, INT64_MAX, &e->size) || p == end || *p++ != ' ' ||
        !parse_number(&p, end, INT64_MAX, &e->mtime_sec) || p == end || *p++ != '.')
        return false;
    /* Nanoseconds are written with all nine digits. */
    frac = p;
    if (end - p < 10 || !parse_number(&p, p + 9, 999999999, &nsec) || p - frac != 9 ||
        *p++ != ' ' || p == end)
        return false;
    e->mtime_nsec = nsec;
    if (end - p > 4 && memcmp(p, "pre ", 4) == 0)
        e->post = false, p += 4;
    else if (end - p > 5 && memcmp(p, "post ", 5) == 0)
        e->post = true, p += 5;
    else
        return false;
    e->name = p;
    e->name_len = (size_t)(end - p);
    return memchr(p, ' ', e->name_len) == NULL && memchr(p, '/', e->name_len) == NULL;
}

static int cmp_entry_names(const struct sum_entry *a, const char *name, size_t len)
{
    int c = memcmp(a->name, name, a->name_len < len ? a->name_len : len);

    if (c)
        return c;
    return a->name_len < len ? -1 : a->name_len > len ? 1 : 0;
}

bool rg_source_sum_parse_digest_line(const char *p, const char *end, struct sum_digest *d)
{
    int64_t n = 0;

    if (end - p < 7 || memcmp(p, "digest ", 7) != 0)
        return false;
    p += 7;
    if (!parse_number(&p, end, INT64_MAX, &n) || p == end || *p++ != ' ' ||
        !parse_number(&p, end, INT64_MAX, &d->latest) || p == end || *p++ != ' ' || end - p != 64 ||
        !is_hex64(p))
        return false;
    d->n = (size_t)n;
    memcpy(d->sha256, p, 64);
    d->sha256[64] = '\0';
    return true;
}

void rg_source_sum_free(struct sum_index *idx)
{
    if (!idx)
        return;
    free(idx->buf);
    free(idx->e);
    free(idx->other);
    *idx = (struct sum_index){0};
}

/* "dir SECONDS.NANOSECONDS", the index's last line (without its newline). */
static bool parse_dir_line(const char *p, const char *end, int64_t *sec, long *nsec)
{
    const char *frac;
    int64_t ns = 0;

    if (end - p < 4 || memcmp(p, "dir ", 4) != 0)
        return false;
    p += 4;
    if (!parse_number(&p, end, INT64_MAX, sec) || p == end || *p++ != '.')
        return false;
    frac = p;
    if (!parse_number(&p, end, 999999999, &ns) || p != end || p - frac != 9)
        return false;
    *nsec = (long)ns;
    return true;
}

int rg_source_sum_open(const char *path)
{
    return open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
}

/* The index (rg_source_sum_open; a regular file only), read whole with its modification
 * time. */
static int read_index(const char *path, struct sum_index *x, size_t *len, struct rg_err *err)
{
    int fd = rg_source_sum_open(path), rc = -1;
    struct stat st;

    if (fd < 0) {
        rg_err_set(err, RG_EFILES, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > SUM_MAX_FILE) {
        rg_err_set(err, RG_EFILES, "%s: not a regular file of at most 64 MiB", path);
        goto out;
    }
    x->mtime = st.st_mtim;
    x->buf = rg_malloc((size_t)st.st_size + 1);
    for (*len = 0; *len < (size_t)st.st_size;) {
        ssize_t r = read(fd, x->buf + *len, (size_t)st.st_size - *len);

        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rg_err_set(err, RG_EFILES, "%s: cannot read: %s", path, strerror(errno));
            goto out;
        }
        if (r == 0)
            break; /* cut while it was read: the last line says so */
        *len += (size_t)r;
    }
    x->buf[*len] = '\0';
    rc = 0;
out:
    close(fd);
    return rc;
}

static void add_other(struct sum_index *x, size_t *cap, const char *name)
{
    if (x->nother == *cap) {
        *cap = *cap ? *cap * 2 : 256;
        x->other = rg_realloc(x->other, *cap * sizeof(*x->other));
    }
    x->other[x->nother++] = name;
}

int rg_source_sum_read(const char *dir, bool check, struct sum_index *idx, bool *present,
                       struct rg_err *err)
{
    struct sum_index x = {0};
    char *path = rg_source_join_path(dir, RG_SOURCE_SUM_FILE), *p, *body, *end, *last, sum[65];
    size_t len = 0, cap = 0, other_cap = 0, line = 1;
    bool has_dir;
    int rc = -1;

    *idx = (struct sum_index){0};
    *present = false;
    if (read_index(path, &x, &len, err) != 0) {
        /* No index is the ordinary case: every file is read. */
        if (errno == ENOENT) {
            rg_err_clear(err);
            rc = 0;
        }
        goto out;
    }
    *present = true;
    end = x.buf + len;
    p = memchr(x.buf, '\n', len);
    if (!p || (size_t)(p - x.buf) != strlen(SUM_MAGIC) + 64 ||
        memcmp(x.buf, SUM_MAGIC, strlen(SUM_MAGIC)) != 0) {
        rg_err_set(err, RG_EFILES,
                   "%s:1: not a rollgate.sum (expected \"" SUM_MAGIC "CHECKSUM\"); run "
                   "rollgate sum again",
                   path);
        goto out;
    }
    body = ++p;
    /* The digest line, when there is one, is the second. */
    if ((size_t)(end - p) > 7 && memcmp(p, "digest ", 7) == 0) {
        char *eol = memchr(p, '\n', (size_t)(end - p));

        line++;
        p = eol ? eol + 1 : end;
        if (!eol || !rg_source_sum_parse_digest_line(body, eol, &x.digest)) {
            rg_err_set(err, RG_EFILES,
                       "%s:2: not a rollgate.sum digest line (digest MIGRATIONS LATEST "
                       "SHA256); run rollgate sum again",
                       path);
            goto out;
        }
        x.has_digest = true;
    }
    /* The directory's time is the last line, written last: an index cut short (being
     * written, or copied in part) has none, and its names are never taken for a listing. */
    last = end > p && end[-1] == '\n' ? end - 1 : end;
    while (last > p && last[-1] != '\n')
        last--;
    has_dir = end > p && end[-1] == '\n' && parse_dir_line(last, end - 1, &x.dir_sec, &x.dir_nsec);
    if (check) {
        rg_source_checksum(body, (size_t)(end - body), sum);
        if (memcmp(x.buf + strlen(SUM_MAGIC), sum, 64) != 0) {
            rg_err_set(err, RG_EFILES,
                       "%s:1: the index does not match its own checksum (edited by hand, or a "
                       "merge mixed two of them); run rollgate sum again",
                       path);
            goto out;
        }
    }
    /* Up files, then the other names, each in name order, then the directory's time.
     * Names are cut at their newline to serve as C strings. */
    while (p < end) {
        char *eol = memchr(p, '\n', (size_t)(end - p));
        struct sum_entry e;
        bool ok = eol != NULL;

        line++;
        if (ok && p == last) {
            ok = has_dir;
        } else if (ok && p[0] == '+' && p[1] == ' ') {
            *eol = '\0';
            ok = eol - p > 2 && strpbrk(p + 2, " /") == NULL &&
                 (x.nother == 0 || strcmp(x.other[x.nother - 1], p + 2) < 0);
            if (ok)
                add_other(&x, &other_cap, p + 2);
        } else if (ok) {
            ok = x.nother == 0 && parse_line(p, eol, &e) &&
                 !(x.n > 0 && cmp_entry_names(&x.e[x.n - 1], e.name, e.name_len) >= 0);
            if (ok) {
                if (x.n == cap) {
                    cap = cap ? cap * 2 : 256;
                    x.e = rg_realloc(x.e, cap * sizeof(*x.e));
                }
                *eol = '\0';
                x.e[x.n++] = e;
            }
        }
        if (!ok) {
            rg_err_set(err, RG_EFILES,
                       "%s:%zu: not a rollgate.sum entry (CHECKSUM SIZE SECONDS.NANOSECONDS "
                       "PHASE NAME for each up file, then + NAME for every other name, each in "
                       "name order, then dir SECONDS.NANOSECONDS); run rollgate sum again",
                       path, line);
            goto out;
        }
        p = eol + 1;
    }
    if (!has_dir) {
        rg_err_set(err, RG_EFILES,
                   "%s:%zu: the index ends without its dir line (cut short); run rollgate sum "
                   "again",
                   path, line);
        goto out;
    }
    *idx = x;
    x = (struct sum_index){0};
    rc = 0;
out:
    rg_source_sum_free(&x);
    free(path);
    return rc;
}

const struct sum_entry *rg_source_sum_find(const struct sum_index *idx, const char *name)
{
    size_t lo = 0, hi = idx->n, len = strlen(name);

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = cmp_entry_names(&idx->e[mid], name, len);

        if (c == 0)
            return &idx->e[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

static int cmp_items_by_name(const void *a, const void *b)
{
    return strcmp((*(struct rg_migration *const *)a)->up_name,
                  (*(struct rg_migration *const *)b)->up_name);
}

struct rg_migration **rg_source_sum_by_name(struct rg_migration *items, size_t n)
{
    struct rg_migration **byname = rg_calloc(n ? n : 1, sizeof(*byname));

    for (size_t i = 0; i < n; i++)
        byname[i] = &items[i];
    rg_source_sort(byname, n, sizeof(*byname), cmp_items_by_name);
    return byname;
}

static bool earlier(const struct timespec *a, const struct timespec *b)
{
    return a->tv_sec < b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec < b->tv_nsec);
}

bool rg_source_sum_vouches(const struct sum_index *idx, const struct stat *dir_st)
{
    const struct timespec *d = &dir_st->st_mtim, *own = &idx->mtime;
    /* Whole seconds, as image layers keep times (rg_source_sum_fresh). */
    bool whole = d->tv_nsec == 0 || own->tv_nsec == 0;

    if (!S_ISDIR(dir_st->st_mode) || d->tv_sec != idx->dir_sec ||
        (d->tv_nsec != idx->dir_nsec && d->tv_nsec != 0))
        return false;
    return whole ? d->tv_sec < own->tv_sec : earlier(d, own);
}

bool rg_source_sum_tail_vouches(int fd, const struct stat *st, const struct stat *dir_st)
{
    struct sum_index head = {.mtime = st->st_mtim};
    char tail[64], *line;

    if (!S_ISREG(st->st_mode) || st->st_size <= (off_t)sizeof(tail) ||
        pread(fd, tail, sizeof(tail), st->st_size - (off_t)sizeof(tail)) != (ssize_t)sizeof(tail) ||
        tail[sizeof(tail) - 1] != '\n')
        return false;
    tail[sizeof(tail) - 1] = '\0';
    line = strrchr(tail, '\n');
    return line &&
           parse_dir_line(line + 1, tail + sizeof(tail) - 1, &head.dir_sec, &head.dir_nsec) &&
           rg_source_sum_vouches(&head, dir_st);
}

/* rg_source_sum_tail_vouches for the index at path. */
static bool may_vouch(const char *path, const struct stat *dir_st)
{
    struct stat st;
    int fd = rg_source_sum_open(path);
    bool ok = fd >= 0 && fstat(fd, &st) == 0 && rg_source_sum_tail_vouches(fd, &st, dir_st);

    if (fd >= 0)
        close(fd);
    return ok;
}

int rg_source_sum_names(const char *dir, const struct stat *dir_st, char **buf, size_t *len,
                        size_t *count, struct sum_want **want, size_t *nwant, char ***near,
                        size_t *nnear, struct rg_err *err)
{
    struct sum_index idx = {0};
    char *path = rg_source_join_path(dir, RG_SOURCE_SUM_FILE), *p;
    bool present = false;
    size_t total = 0;
    int rc = -1;

    *buf = NULL;
    *len = *count = *nnear = 0;
    *near = NULL;
    *want = NULL;
    *nwant = 0;
    if (!may_vouch(path, dir_st)) {
        rc = 0;
        goto out;
    }
    /* Checked whole: a start that trusts the names sees no others, so they must be those
     * rollgate sum wrote, not an index cut short or edited. */
    if (rg_source_sum_read(dir, true, &idx, &present, err) != 0)
        goto out;
    rc = 0;
    if (!present || !rg_source_sum_vouches(&idx, dir_st))
        goto out;
    for (size_t i = 0; i < idx.n; i++)
        total += idx.e[i].name_len + 1;
    for (size_t i = 0; i < idx.nother; i++)
        total += strlen(idx.other[i]) + 1;
    /* Copied out, as list_dir gathers them: the index's text is three times their size. */
    p = *buf = rg_malloc(total ? total : 1);
    *near = rg_calloc(idx.nother + 1, sizeof(**near));
    *want = rg_calloc(idx.n + 1, sizeof(**want));
    *nwant = idx.n;
    for (size_t i = 0; i < idx.n; i++) {
        (*want)[i] = (struct sum_want){.size = idx.e[i].size,
                                       .mtime_sec = idx.e[i].mtime_sec,
                                       .mtime_nsec = idx.e[i].mtime_nsec,
                                       .post = idx.e[i].post};
        rg_source_sha_from_hex(idx.e[i].checksum, (*want)[i].sha256);
        memcpy(p, idx.e[i].name, idx.e[i].name_len + 1);
        p += idx.e[i].name_len + 1;
        (*count)++;
    }
    for (size_t i = 0; i < idx.nother; i++) {
        size_t n = strlen(idx.other[i]);

        if (rg_source_ends_with(idx.other[i], n, ".sql")) {
            memcpy(p, idx.other[i], n + 1);
            p += n + 1;
            (*count)++;
        } else {
            (*near)[(*nnear)++] = rg_source_join_path(dir, idx.other[i]);
        }
    }
    *len = (size_t)(p - *buf);
out:
    rg_source_sum_free(&idx);
    free(path);
    return rc;
}

/* Up files the index lists, with their migrations, names and what their entries recorded,
 * for stats of their own. */
struct late {
    struct rg_migration **m;
    const char **names;
    struct sum_want *want;
    size_t n, cap;
};

static void add_late(struct late *l, struct rg_migration *m, struct sum_want want)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 64;
        l->m = rg_realloc(l->m, l->cap * sizeof(*l->m));
        l->names = rg_realloc(l->names, l->cap * sizeof(*l->names));
        l->want = rg_realloc(l->want, l->cap * sizeof(*l->want));
    }
    l->m[l->n] = m;
    l->names[l->n] = m->up_name;
    l->want[l->n++] = want;
}

/* Which of the late files are still what the index recorded; l is emptied. */
static size_t judge_late(int dfd, struct late *l)
{
    struct sum_stats *now = rg_source_sum_stats_start(dfd, l->names, l->want, l->n);
    size_t trusted = 0;

    rg_source_sum_stats_finish(now);
    for (size_t i = 0; i < l->n; i++) {
        l->m[i]->checksum_from_index = now->fresh[i];
        trusted += now->fresh[i];
    }
    l->want = NULL; /* the stats' now */
    rg_source_sum_stats_free(now);
    return trusted;
}

static void late_free(struct late *l)
{
    free(l->m);
    free(l->names);
    free(l->want);
}

/* The entries early holds (the names a start took from the index, with their checksums
 * and phases) for the items of the same names: both in name order, one merge pass, and
 * the index is not read again. */
static size_t take_early(struct sum_stats *early, struct rg_migration **byname, size_t n)
{
    size_t k = 0, trusted = 0;

    rg_source_sum_stats_finish(early);
    for (size_t i = 0; i < early->n && k < n; i++) {
        int c = 1;

        while (k < n && (c = strcmp(byname[k]->up_name, early->names[i])) < 0)
            k++;
        if (k == n || c != 0 || !early->fresh[i])
            continue;
        rg_source_sha_to_hex(early->want[i].sha256, byname[k]->checksum);
        byname[k]->post = early->want[i].post;
        byname[k]->checksum_from_index = true;
        trusted++;
    }
    return trusted;
}

/* One line into *buf without its newline, or -1 at the end; a last line without its
 * newline is out of form, as rg_source_sum_write always ends one. */
static ssize_t next_line(FILE *f, char **buf, size_t *cap, bool *cut)
{
    ssize_t len = getline(buf, cap, f);

    *cut = false;
    if (len <= 0)
        return -1;
    if ((*buf)[len - 1] != '\n') {
        *cut = true;
        return len;
    }
    (*buf)[--len] = '\0';
    return len;
}

/* The index read line by line (no table of it in memory), merged with the items by name;
 * the entries of items' files are stat'ed once it is read, many on two threads. */
static int apply_read(const char *path, int dfd, struct rg_migration **byname, size_t n,
                      size_t *trusted, struct rg_err *err)
{
    char *line = NULL, *prev = NULL, *iobuf = NULL;
    size_t cap = 0, prev_cap = 0, k = 0, lineno = 1;
    struct late late = {0};
    bool cut = false, other, others = false, dir_seen = false;
    int64_t sec;
    long nsec;
    FILE *f = NULL;
    ssize_t len;
    int rc = -1, fd;

    fd = rg_source_sum_open(path);
    if (fd < 0 && errno == ENOENT) {
        rc = 0; /* no index is the ordinary case: every file is read */
        goto out;
    }
    f = fd < 0 ? NULL : fdopen(fd, "r");
    if (!f) {
        rg_err_set(err, RG_EFILES, "%s: cannot open: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        goto out;
    }
    /* 64 KiB reads: with stdio's 4 KiB, an index of 10,000 entries took 330 reads. (glibc
     * ignores the size unless it is given the buffer.) */
    iobuf = rg_malloc(SUM_READ_BUF);
    setvbuf(f, iobuf, _IOFBF, SUM_READ_BUF);
    len = next_line(f, &line, &cap, &cut);
    if (len != (ssize_t)(strlen(SUM_MAGIC) + 64) ||
        memcmp(line, SUM_MAGIC, strlen(SUM_MAGIC)) != 0) {
        rg_err_set(err, RG_EFILES, "%s:1: not a rollgate.sum (expected \"" SUM_MAGIC "CHECKSUM\")",
                   path);
        goto out;
    }
    for (;;) {
        struct sum_entry e;
        char *swap;
        size_t swap_cap;

        len = next_line(f, &line, &cap, &cut);
        if (len < 0)
            break;
        lineno++;
        if (lineno == 2 && len > 7 && memcmp(line, "digest ", 7) == 0) {
            struct sum_digest d;

            if (cut || !rg_source_sum_parse_digest_line(line, line + len, &d)) {
                rg_err_set(err, RG_EFILES, "%s:2: not a rollgate.sum digest line", path);
                goto out;
            }
            continue;
        }
        /* The other names and the directory's time, after the up files: only the
         * form matters here, as nothing of them is taken. */
        other = !cut && len > 2 && line[0] == '+' && line[1] == ' ';
        if (others || other) {
            others = true;
            if (dir_seen || cut || (!other && !parse_dir_line(line, line + len, &sec, &nsec))) {
                rg_err_set(err, RG_EFILES, "%s:%zu: not a rollgate.sum entry (or out of order)",
                           path, lineno);
                goto out;
            }
            dir_seen = !other;
            continue;
        }
        if (cut || !parse_line(line, line + len, &e) ||
            (prev && cmp_entry_names(&e, prev, strlen(prev)) <= 0)) {
            rg_err_set(err, RG_EFILES, "%s:%zu: not a rollgate.sum entry (or out of order)", path,
                       lineno);
            goto out;
        }
        while (k < n && cmp_entry_names(&e, byname[k]->up_name, strlen(byname[k]->up_name)) > 0)
            k++;
        if (k < n && cmp_entry_names(&e, byname[k]->up_name, strlen(byname[k]->up_name)) == 0) {
            /* Kept only if the file turns out fresh; else the file's own replace them. */
            memcpy(byname[k]->checksum, e.checksum, 64);
            byname[k]->checksum[64] = '\0';
            byname[k]->post = e.post;
            add_late(&late, byname[k],
                     (struct sum_want){
                         .size = e.size, .mtime_sec = e.mtime_sec, .mtime_nsec = e.mtime_nsec});
        }
        /* The name, moved to the start of its line, for the next line's order check. */
        memmove(line, e.name, e.name_len + 1);
        swap = prev, prev = line, line = swap;
        swap_cap = prev_cap, prev_cap = cap, cap = swap_cap;
    }
    if (ferror(f)) {
        rg_err_set(err, RG_EFILES, "%s: cannot read: %s", path, strerror(errno));
        goto out;
    }
    if (!dir_seen) {
        rg_err_set(err, RG_EFILES, "%s:%zu: the index ends without its dir line (cut short)", path,
                   lineno);
        goto out;
    }
    *trusted = judge_late(dfd, &late);
    rc = 0;
out:
    if (f)
        fclose(f);
    free(iobuf);
    late_free(&late);
    free(line);
    free(prev);
    return rc;
}

int rg_source_sum_apply(const char *dir, int dfd, struct rg_migration *items, size_t n,
                        struct sum_stats *early, size_t *trusted, struct rg_err *err)
{
    struct rg_migration **byname = rg_source_sum_by_name(items, n);
    char *path = NULL;
    int rc = 0;

    *trusted = 0;
    if (early) {
        *trusted = take_early(early, byname, n);
    } else {
        path = rg_source_join_path(dir, RG_SOURCE_SUM_FILE);
        rc = apply_read(path, dfd, byname, n, trusted, err);
    }
    if (rc != 0) {
        /* An index out of form is not used at all, not even the entries before the fault. */
        for (size_t x = 0; x < n; x++)
            items[x].checksum_from_index = false;
        *trusted = 0;
    }
    free(byname);
    free(path);
    return rc;
}
