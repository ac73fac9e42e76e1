/* What `rollgate sum` writes where the image is built (the index, its digest line and the
 * directory's time), and validate's check that an index still describes the files: the two
 * that read every up file in full, which a start never does. The format is sum.c's. */
#include "source/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log/log.h"
#include "mem/mem.h"

/* stat, the checksum, stat again: an entry must describe one version of the file, so a
 * file written meanwhile is refused rather than recorded with a time it does not match.
 * m keeps the checksum written, which the digest line sums. */
static int sum_one(struct rg_migration *m, FILE *out, struct rg_err *err)
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
    memcpy(m->checksum, sum, sizeof(sum));
    fprintf(out, "%s %lld %lld.%09ld %s %s\n", sum, (long long)a.st_size,
            (long long)a.st_mtim.tv_sec, (long)a.st_mtim.tv_nsec, post ? "post" : "pre",
            m->up_name);
    return 0;
}

/* The up files' entries into out, in name order so that lookups can bisect. */
static int sum_body(struct rg_source *src, FILE *out, struct rg_err *err)
{
    struct rg_migration **byname = rg_source_sum_by_name(src->items, src->n);
    int rc = 0;

    for (size_t i = 0; i < src->n && rc == 0; i++)
        rc = sum_one(byname[i], out, err);
    free(byname);
    return rc;
}

static const char *base_name(const char *path)
{
    return strrchr(path, '/') + 1; /* every path here was joined as dir/name */
}

static int cmp_strings(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Every name a load keeps besides the up files (down files, R__ scripts, near misses), in
 * name order; *n of them, pointing into src. With them in the index ("+ NAME" lines), a
 * start that trusts it has the whole listing without reading the directory. */
static const char **other_names(const struct rg_source *src, size_t *n)
{
    const char **names =
        rg_calloc(src->n + src->nrepeatable + src->nnear_misses + 1, sizeof(*names));

    *n = 0;
    for (size_t i = 0; i < src->n; i++)
        if (src->items[i].down_path)
            names[(*n)++] = base_name(src->items[i].down_path);
    for (size_t i = 0; i < src->nrepeatable; i++)
        names[(*n)++] = base_name(src->repeatable[i].path);
    for (size_t i = 0; i < src->nnear_misses; i++)
        names[(*n)++] = base_name(src->near_misses[i]);
    qsort(names, *n, sizeof(*names), cmp_strings);
    return names;
}

static bool same_time(const struct stat *a, const struct stat *b)
{
    return a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

/* Makes the index's modification time later than the directory's in whole seconds (the
 * rule of rg_source_sum_vouches): waits for the next second and stamps the file then, so
 * that any entry added, removed or renamed after rollgate sum returns gives the directory
 * a later second than the one recorded, even where times keep whole seconds only. A
 * directory dated in the future is not waited for: its names are then never trusted. */
static int stamp_later(int fd, const char *path, const struct timespec *dir_time,
                       struct rg_err *err)
{
    struct stat st;
    struct timespec now;

    for (int tries = 0; tries < 4; tries++) {
        if (fstat(fd, &st) != 0) {
            rg_err_set(err, RG_EFILES, "%s: cannot stat: %s", path, strerror(errno));
            return -1;
        }
        if (st.st_mtim.tv_sec > dir_time->tv_sec)
            return 0;
        clock_gettime(CLOCK_REALTIME, &now);
        if (now.tv_sec < dir_time->tv_sec)
            return 0; /* the directory is dated in the future */
        if (now.tv_sec == dir_time->tv_sec) {
            /* The file's time comes from a clock that may lag the real-time clock by a
             * tick: a few milliseconds past the second. */
            struct timespec pause = {0, 1000000000L - now.tv_nsec + 5000000L};

            if (pause.tv_nsec >= 1000000000L)
                pause.tv_sec++, pause.tv_nsec -= 1000000000L;
            while (nanosleep(&pause, &pause) != 0 && errno == EINTR)
                ;
        }
        if (futimens(fd, NULL) != 0) {
            rg_err_set(err, RG_EFILES, "%s: cannot set its time: %s", path, strerror(errno));
            return -1;
        }
    }
    return 0;
}

static int write_all(int fd, const char *path, const char *text, size_t len, struct rg_err *err)
{
    size_t done = 0;

    if (ftruncate(fd, 0) != 0) {
        rg_err_set(err, RG_EFILES, "%s: cannot write: %s", path, strerror(errno));
        return -1;
    }
    while (done < len) {
        ssize_t w = write(fd, text + done, len - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            rg_err_set(err, RG_EFILES, "%s: cannot write: %s", path, strerror(errno));
            return -1;
        }
        done += (size_t)w;
    }
    if (fsync(fd) != 0) {
        rg_err_set(err, RG_EFILES, "%s: cannot write: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

/* The index is written in place, not renamed over the old one: a rename would give the
 * directory a time later than the one recorded. A run that reads an index being written
 * finds it cut short (no dir line, or a checksum that does not match) and lists and reads
 * the files itself. */
int rg_source_sum_write(const char *dir, size_t *count, struct rg_err *err)
{
    struct rg_source src = {0};
    char *path = rg_source_join_path(dir, RG_SOURCE_SUM_FILE), *body = NULL, *text = NULL, sum[65];
    char *head = NULL, *rest = NULL;
    const char **others = NULL;
    size_t len = 0, nothers = 0;
    struct stat before, after;
    FILE *out = NULL;
    int fd = -1, dfd = -1, rc = -1;

    *count = 0;
    /* The index exists before the directory's time is taken: creating it is an entry added. */
    fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOCTTY | O_NONBLOCK, 0644);
    if (fd < 0) {
        rg_err_set(err, RG_EFILES, "%s: cannot create: %s", path, strerror(errno));
        goto out;
    }
    dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0 || fstat(dfd, &before) != 0) {
        rg_err_set(err, RG_EFILES, "%s: cannot open: %s", dir, strerror(errno));
        goto out;
    }
    /* The index must describe the files, never an older index: every file is read. */
    if (rg_source_load_files(dir, &src, err) != 0)
        goto out;
    out = rg_must(open_memstream(&body, &len));
    if (sum_body(&src, out, err) != 0)
        goto out;
    others = other_names(&src, &nothers);
    for (size_t i = 0; i < nothers; i++)
        fprintf(out, "+ %s\n", others[i]);
    fprintf(out, "dir %lld.%09ld\n", (long long)before.st_mtim.tv_sec,
            (long)before.st_mtim.tv_nsec);
    if (fclose(out) != 0) {
        out = NULL;
        rg_err_set(err, RG_EINTERNAL, "rollgate sum: cannot build the index: %s", strerror(errno));
        goto out;
    }
    out = NULL;
    /* What a start whose files are all as summed compares with the history's digest,
     * instead of loading them: only for a directory of up and down files, as a start with
     * scripts to run (or near misses to warn about) loads them anyway. */
    if (src.nrepeatable == 0 && src.nnear_misses == 0) {
        char digest[65];

        rg_source_digest(&src, digest);
        head =
            rg_asprintf("digest %zu %lld %s\n", src.n, (long long)rg_source_latest(&src), digest);
    }
    rest = rg_asprintf("%s%s", head ? head : "", body);
    rg_source_checksum(rest, strlen(rest), sum);
    text = rg_asprintf(SUM_MAGIC "%s\n%s", sum, rest);
    if (fstat(dfd, &after) != 0 || !same_time(&before, &after)) {
        rg_err_set(err, RG_EFILES,
                   "%s: the directory changed while rollgate sum read it; run it again", dir);
        goto out;
    }
    if (write_all(fd, path, text, strlen(text), err) != 0 ||
        stamp_later(fd, path, &before.st_mtim, err) != 0)
        goto out;
    if (fstat(dfd, &after) != 0 || !same_time(&before, &after)) {
        rg_err_set(err, RG_EFILES,
                   "%s: the directory changed while rollgate sum wrote the index; run it again",
                   dir);
        goto out;
    }
    *count = src.n;
    rc = 0;
out:
    if (out)
        fclose(out);
    if (fd >= 0 && close(fd) != 0 && rc == 0) {
        rg_err_set(err, RG_EFILES, "%s: cannot write: %s", path, strerror(errno));
        rc = -1;
    }
    if (dfd >= 0)
        close(dfd);
    free(others);
    free(text);
    free(rest);
    free(head);
    free(body);
    free(path);
    rg_source_free(&src);
    return rc;
}

/* Whether idx has the digest line rollgate sum writes for src (read whole), and only then. */
static bool digest_line_right(const struct rg_source *src, const struct sum_index *idx)
{
    char mine[65];

    if (src->nrepeatable || src->nnear_misses || !idx->has_digest)
        return !idx->has_digest && (src->nrepeatable || src->nnear_misses);
    rg_source_digest(src, mine);
    return idx->digest.n == src->n && idx->digest.latest == rg_source_latest(src) &&
           strcmp(idx->digest.sha256, mine) == 0;
}

int rg_source_check_sum(const struct rg_source *src, struct rg_err *err)
{
    struct sum_index idx = {0};
    char *path = rg_source_join_path(src->dir, RG_SOURCE_SUM_FILE);
    const char **others = NULL;
    bool present = false;
    size_t listed = 0, stale = 0, nothers = 0;
    int rc = -1;

    if (rg_source_sum_read(src->dir, true, &idx, &present, err) != 0)
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
        stale += !(stat(m->up_path, &st) == 0 &&
                   rg_source_sum_fresh(&(struct sum_want){.size = e->size,
                                                          .mtime_sec = e->mtime_sec,
                                                          .mtime_nsec = e->mtime_nsec},
                                       &st));
    }
    if (present && listed != idx.n) {
        rg_err_set(err, RG_EFILES,
                   "%s: lists %zu up files that are not in the directory; run rollgate sum again",
                   path, idx.n - listed);
        goto out;
    }
    /* A start that trusts the index takes these names for the directory's. */
    others = other_names(src, &nothers);
    for (size_t i = 0; present && (i < nothers || i < idx.nother); i++) {
        if (i < nothers && i < idx.nother && strcmp(others[i], idx.other[i]) == 0)
            continue;
        if (i < nothers && (i == idx.nother || strcmp(others[i], idx.other[i]) < 0))
            rg_err_set(err, RG_EFILES,
                       "%s/%s: not listed in %s (added after rollgate sum); run rollgate sum "
                       "again",
                       src->dir, others[i], path);
        else
            rg_err_set(err, RG_EFILES,
                       "%s: lists %s, which is not in the directory; run rollgate sum again", path,
                       idx.other[i]);
        goto out;
    }
    /* A start that trusts the index may take its digest line for the up files. */
    if (present && !digest_line_right(src, &idx)) {
        rg_err_set(err, RG_EFILES, "%s:2: %s; run rollgate sum again", path,
                   !idx.has_digest ? "no digest line, though the directory has only up and "
                                     "down files"
                   : src->nrepeatable || src->nnear_misses
                       ? "a digest line, though the directory has scripts or near misses"
                       : "the digest line does not match the up files");
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
    free(others);
    rg_source_sum_free(&idx);
    free(path);
    return rc;
}
