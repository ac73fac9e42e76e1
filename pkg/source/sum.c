/* The checksum index, rollgate.sum: written by `rollgate sum` when the image is built, so
 * that a start reads one file instead of every up file for its checksum (Atlas's atlas.sum
 * serves the same purpose). An entry is trusted only while its file's size and modification
 * time are still the ones recorded with it; any other file is read, as without an index. */
#include "source/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "file/file.h"
#include "log/log.h"
#include "mem/mem.h"

#define SUM_MAGIC "rollgate-sum 1 "
/* 10,000 entries take about 1.2 MB; a file far larger is not an index. */
#define SUM_MAX_FILE (64L * 1024 * 1024)

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
static bool parse_line(char *line, const char *end, struct sum_entry *e)
{
    const char *p = line;
    const char *frac;
    int64_t nsec = 0;

    if (end - p < 65 || !is_hex64(p) || p[64] != ' ')
        return false;
    e->checksum = p;
    p += 65;
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

void rg_source_sum_free(struct sum_index *idx)
{
    if (!idx)
        return;
    free(idx->buf);
    free(idx->e);
    *idx = (struct sum_index){0};
}

int rg_source_sum_read(const char *dir, struct sum_index *idx, bool *present, struct rg_err *err)
{
    struct sum_index x = {0};
    char *path = rg_source_join_path(dir, RG_SOURCE_SUM_FILE), *p, *end, sum[65];
    size_t len = 0, cap = 0, line = 1;
    int rc = -1;

    *idx = (struct sum_index){0};
    *present = false;
    if (rg_file_read(path, SUM_MAX_FILE, RG_FILE_UNCHANGED, &x.buf, &len, RG_EFILES, err) != 0) {
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
    p++;
    rg_source_checksum(p, (size_t)(end - p), sum);
    if (memcmp(x.buf + strlen(SUM_MAGIC), sum, 64) != 0) {
        rg_err_set(err, RG_EFILES,
                   "%s:1: the index does not match its own checksum (edited by hand, or a merge "
                   "mixed two of them); run rollgate sum again",
                   path);
        goto out;
    }
    while (p < end) {
        char *eol = memchr(p, '\n', (size_t)(end - p));
        struct sum_entry e;

        line++;
        if (!eol || !parse_line(p, eol, &e) ||
            (x.n > 0 && cmp_entry_names(&x.e[x.n - 1], e.name, e.name_len) >= 0)) {
            rg_err_set(err, RG_EFILES,
                       "%s:%zu: not a rollgate.sum entry (CHECKSUM SIZE SECONDS.NANOSECONDS "
                       "PHASE NAME, names in order, one per line); run rollgate sum again",
                       path, line);
            goto out;
        }
        if (x.n == cap) {
            cap = cap ? cap * 2 : 256;
            x.e = rg_realloc(x.e, cap * sizeof(*x.e));
        }
        x.e[x.n++] = e;
        p = eol + 1;
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

bool rg_source_sum_fresh(const struct sum_entry *e, const struct stat *st)
{
    /* Image layers keep whole seconds (Docker and containerd truncate a file's time as
     * they write a layer): a file whose time lost its fraction on the way from the build,
     * where rollgate sum ran, to the pod is still the file that was summed. */
    return S_ISREG(st->st_mode) && st->st_size == e->size && st->st_mtim.tv_sec == e->mtime_sec &&
           (st->st_mtim.tv_nsec == e->mtime_nsec || st->st_mtim.tv_nsec == 0);
}

static int cmp_items_by_name(const void *a, const void *b)
{
    return strcmp((*(struct rg_migration *const *)a)->up_name,
                  (*(struct rg_migration *const *)b)->up_name);
}

/* Pointers to items (n of them) in the index's order: by up file name, byte-wise. */
static struct rg_migration **items_by_name(struct rg_migration *items, size_t n)
{
    struct rg_migration **byname = rg_calloc(n ? n : 1, sizeof(*byname));

    for (size_t i = 0; i < n; i++)
        byname[i] = &items[i];
    rg_source_sort(byname, n, sizeof(*byname), cmp_items_by_name);
    return byname;
}

/* The index, opened as rg_file_read opens a file: a regular file only, so that a FIFO
 * named rollgate.sum cannot hang a start. NULL with *missing when there is none. */
static FILE *open_index(const char *path, bool *missing, struct rg_err *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    struct stat st;
    FILE *f;

    *missing = fd < 0 && errno == ENOENT;
    if (fd < 0) {
        rg_err_set(err, RG_EFILES, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > SUM_MAX_FILE) {
        rg_err_set(err, RG_EFILES, "%s: not a regular file of at most 64 MiB", path);
        close(fd);
        return NULL;
    }
    f = fdopen(fd, "r");
    if (!f) {
        rg_err_set(err, RG_EFILES, "%s: cannot read: %s", path, strerror(errno));
        close(fd);
    }
    return f;
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

int rg_source_sum_apply(const char *dir, struct rg_migration *items, size_t n, size_t *trusted,
                        struct rg_err *err)
{
    char *path = rg_source_join_path(dir, RG_SOURCE_SUM_FILE), *line = NULL, *prev = NULL;
    size_t cap = 0, prev_cap = 0, k = 0, lineno = 1;
    struct rg_migration **byname = NULL;
    bool missing = false, cut = false;
    FILE *f = NULL;
    ssize_t len;
    int rc = -1, dfd = -1;

    *trusted = 0;
    f = open_index(path, &missing, err);
    if (!f) {
        if (missing) {
            /* No index is the ordinary case: every file is read. */
            rg_err_clear(err);
            rc = 0;
        }
        goto out;
    }
    len = next_line(f, &line, &cap, &cut);
    if (len != (ssize_t)(strlen(SUM_MAGIC) + 64) ||
        memcmp(line, SUM_MAGIC, strlen(SUM_MAGIC)) != 0) {
        rg_err_set(err, RG_EFILES, "%s:1: not a rollgate.sum (expected \"" SUM_MAGIC "CHECKSUM\")",
                   path);
        goto out;
    }
    /* Both sides in name order: one merge pass, no table of the index in memory. The
     * index's own checksum is validate's to check: a start trusts an entry only while its
     * file's size and time match, whatever the rest of the index says. */
    byname = items_by_name(items, n);
    /* Each file is looked up in the directory itself, not by its whole path: thousands of
     * stats, each walking the same components again, cost more than the rest of a start. */
    dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) {
        rg_err_set(err, RG_EFILES, "%s: cannot open: %s", dir, strerror(errno));
        goto out;
    }
    for (;;) {
        struct sum_entry e;
        struct stat st;
        char *swap;
        size_t swap_cap;

        len = next_line(f, &line, &cap, &cut);
        if (len < 0)
            break;
        lineno++;
        if (cut || !parse_line(line, line + len, &e) ||
            (prev && cmp_entry_names(&e, prev, strlen(prev)) <= 0)) {
            rg_err_set(err, RG_EFILES, "%s:%zu: not a rollgate.sum entry (or out of order)", path,
                       lineno);
            goto out;
        }
        while (k < n && cmp_entry_names(&e, byname[k]->up_name, strlen(byname[k]->up_name)) > 0)
            k++;
        if (k < n && cmp_entry_names(&e, byname[k]->up_name, strlen(byname[k]->up_name)) == 0 &&
            fstatat(dfd, byname[k]->up_name, &st, 0) == 0 && rg_source_sum_fresh(&e, &st)) {
            memcpy(byname[k]->checksum, e.checksum, 64);
            byname[k]->checksum[64] = '\0';
            byname[k]->checksum_from_index = true;
            byname[k]->post = e.post;
            (*trusted)++;
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
    rc = 0;
out:
    if (rc != 0) {
        for (size_t i = 0; i < n; i++)
            items[i].checksum_from_index = false;
        *trusted = 0;
    }
    if (f)
        fclose(f);
    if (dfd >= 0)
        close(dfd);
    free(byname);
    free(line);
    free(prev);
    free(path);
    return rc;
}

/* stat, the checksum, stat again: an entry must describe one version of the file, so a
 * file written meanwhile is refused rather than recorded with a time it does not match. */
static int sum_one(const struct rg_migration *m, FILE *out, struct rg_err *err)
{
    struct stat a, b;
    char sum[65];
    bool post = false;

    if (stat(m->up_path, &a) != 0) {
        rg_err_set(err, RG_EFILES, "%s: cannot stat: %s", m->up_path, strerror(errno));
        return -1;
    }
    if (rg_source_read_checksum(m->up_path, sum, &post, err) != 0)
        return -1;
    if (stat(m->up_path, &b) != 0 || a.st_size != b.st_size ||
        a.st_mtim.tv_sec != b.st_mtim.tv_sec || a.st_mtim.tv_nsec != b.st_mtim.tv_nsec) {
        rg_err_set(err, RG_EFILES, "%s: the file changed while rollgate sum read it; run again",
                   m->up_path);
        return -1;
    }
    fprintf(out, "%s %lld %lld.%09ld %s %s\n", sum, (long long)a.st_size,
            (long long)a.st_mtim.tv_sec, (long)a.st_mtim.tv_nsec, post ? "post" : "pre",
            m->up_name);
    return 0;
}

/* The entries' text into body (open_memstream), in name order so that lookups can bisect. */
static int sum_body(struct rg_source *src, char **body, size_t *len, struct rg_err *err)
{
    struct rg_migration **byname = items_by_name(src->items, src->n);
    FILE *out = rg_must(open_memstream(body, len));
    int rc = 0;

    for (size_t i = 0; i < src->n && rc == 0; i++)
        rc = sum_one(byname[i], out, err);
    if (fclose(out) != 0 && rc == 0) {
        rg_err_set(err, RG_EINTERNAL, "rollgate sum: cannot build the index: %s", strerror(errno));
        rc = -1;
    }
    free(byname);
    return rc;
}

/* Written beside the files under a dotfile name (which a load skips), then renamed over
 * the old index, so that a run never reads half an index. */
static int write_atomically(const char *dir, const char *text, size_t len, struct rg_err *err)
{
    char *path = rg_source_join_path(dir, RG_SOURCE_SUM_FILE);
    char *tmp = rg_source_join_path(dir, "." RG_SOURCE_SUM_FILE ".tmp");
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644), rc = -1;
    size_t done = 0;

    if (fd < 0) {
        rg_err_set(err, RG_EFILES, "%s: cannot create: %s", tmp, strerror(errno));
        goto out;
    }
    while (done < len) {
        ssize_t w = write(fd, text + done, len - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            rg_err_set(err, RG_EFILES, "%s: cannot write: %s", tmp, strerror(errno));
            goto out;
        }
        done += (size_t)w;
    }
    if (fsync(fd) != 0 || close(fd) != 0) {
        fd = -1;
        rg_err_set(err, RG_EFILES, "%s: cannot write: %s", tmp, strerror(errno));
        goto out;
    }
    fd = -1;
    if (rename(tmp, path) != 0) {
        rg_err_set(err, RG_EFILES, "%s: cannot rename to %s: %s", tmp, path, strerror(errno));
        goto out;
    }
    rc = 0;
out:
    if (fd >= 0)
        close(fd);
    if (rc != 0)
        unlink(tmp);
    free(tmp);
    free(path);
    return rc;
}

int rg_source_sum_write(const char *dir, size_t *count, struct rg_err *err)
{
    struct rg_source src = {0};
    char *body = NULL, *text = NULL, sum[65];
    size_t len = 0;
    int rc = -1;

    *count = 0;
    /* The index must describe the files, never an older index: every file is read. */
    if (rg_source_load_files(dir, &src, err) != 0 || sum_body(&src, &body, &len, err) != 0)
        goto out;
    rg_source_checksum(body, len, sum);
    text = rg_asprintf(SUM_MAGIC "%s\n%s", sum, body);
    if (write_atomically(dir, text, strlen(SUM_MAGIC) + 65 + len, err) != 0)
        goto out;
    *count = src.n;
    rc = 0;
out:
    free(text);
    free(body);
    rg_source_free(&src);
    return rc;
}

int rg_source_check_sum(const struct rg_source *src, struct rg_err *err)
{
    struct sum_index idx = {0};
    char *path = rg_source_join_path(src->dir, RG_SOURCE_SUM_FILE);
    bool present = false;
    size_t listed = 0, stale = 0;
    int rc = -1;

    if (rg_source_sum_read(src->dir, &idx, &present, err) != 0)
        goto out;
    /* The index is optional: without one, runs read every file. */
    for (size_t i = 0; present && i < src->n; i++) {
        const struct rg_migration *m = &src->items[i];
        const struct sum_entry *e = rg_source_sum_find(&idx, m->up_name);
        struct stat st;

        if (!e) {
            rg_err_set(err, RG_EFILES,
                       "%s: not listed in %s (added after rollgate sum); run rollgate sum again",
                       m->up_path, path);
            goto out;
        }
        listed++;
        /* m->checksum is the file's own: validate has read every file. */
        if (memcmp(e->checksum, m->checksum, 64) != 0) {
            rg_err_set(err, RG_EFILES,
                       "%s: the file does not match %s (checksum %.64s there, %s now: it changed "
                       "after rollgate sum); run rollgate sum again",
                       m->up_path, path, e->checksum, m->checksum);
            goto out;
        }
        if (e->post != m->post) {
            rg_err_set(err, RG_EFILES,
                       "%s: %s records phase %s, the file says %s; run rollgate sum again",
                       m->up_path, path, e->post ? "post" : "pre", m->post ? "post" : "pre");
            goto out;
        }
        stale += !(stat(m->up_path, &st) == 0 && rg_source_sum_fresh(e, &st));
    }
    if (present && listed != idx.n) {
        rg_err_set(err, RG_EFILES,
                   "%s: lists %zu up files that are not in the directory; run rollgate sum again",
                   path, idx.n - listed);
        goto out;
    }
    if (stale)
        RG_WARN("rollgate.sum has the right checksums but other sizes or modification times "
                "for some files (copied or checked out since rollgate sum): runs read those "
                "files instead; run rollgate sum where the image is built" RG_F "file=%s" RG_F
                "files=%zu",
                path, stale);
    rc = 0;
out:
    rg_source_sum_free(&idx);
    free(path);
    return rc;
}
