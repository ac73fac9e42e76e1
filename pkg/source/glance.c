/* A start's look at its up files through rollgate.sum alone, for the start with nothing to
 * do: when the index vouches for the directory's names (rg_source_sum_vouches), every up
 * file is still what its entry recorded, and the index has a digest line (a directory of up
 * and down files only) and matches its own checksum, that line is what the files' digest
 * would be, and a start compares it with the history's without building a record of any
 * migration. Anything else, or a history that differs, loads the directory in full
 * (rg_source_complete): a glance spares work, it decides nothing that a full load would
 * decide otherwise.
 * The entries are read a block at a time and each entry's file looked at as its line comes,
 * by the loading thread and by the thread that waits for the load once it has nothing else
 * to do (rg_source_load_finish). No helper thread of its own: on the bench's two cores,
 * shared with the database, one took the CPU the server's digest needed and the start took
 * longer; and a pod's CPU limit is often under one core. */
#include "source/internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log/log.h"
#include "mem/mem.h"

/* Whether dir (open as dfd) has no data/ a load would look into: none at all, or one
 * holding dotfiles only. Anything else (files, a dangling link, a file named data) is the
 * full load's to judge. */
static bool no_data(int dfd)
{
    int fd = openat(dfd, "data", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    struct dirent *de;
    struct stat st;
    bool none = true;
    DIR *d;

    if (fd < 0)
        return errno == ENOENT && fstatat(dfd, "data", &st, AT_SYMLINK_NOFOLLOW) != 0;
    d = fdopendir(fd);
    if (!d) {
        close(fd);
        return false;
    }
    while (none && (de = readdir(d)))
        none = de->d_name[0] == '.';
    closedir(d);
    return none;
}

/* The index open as fd (st its stat) against the directory dfd (dir_st its stat): NULL
 * when its digest line (into *d) stands for the up files, else why not. The up files' stats
 * are offered to help while this thread checks the index's own checksum, then joined. */
static const char *judge(int dfd, const struct stat *dir_st, int fd, const struct stat *st,
                         struct rg_source_help *help, struct sum_digest *d)
{
    size_t magic = strlen(SUM_MAGIC), entries, fresh;
    /* The first line (the magic and the checksum of the lines after it) and the second. */
    char head[256], sum[65];
    struct line_pool pool;
    const char *eol;
    ssize_t got;
    bool read;

    /* First: it also makes sure the index is a regular file. */
    if (!rg_source_sum_tail_vouches(fd, st, dir_st))
        return "no dir line, or the directory changed since rollgate sum";
    got = pread(fd, head, sizeof(head), 0);
    if (got < (ssize_t)(magic + 65) || memcmp(head, SUM_MAGIC, magic) != 0 ||
        head[magic + 64] != '\n')
        return "not an index of this rollgate's form";
    eol = memchr(head + magic + 65, '\n', (size_t)got - (magic + 65));
    if (!eol || !rg_source_sum_parse_digest_line(head + magic + 65, eol, d))
        return "no digest line (the directory has scripts or near misses)";
    if (!no_data(dfd))
        return "data/ has files";
    rg_source_sum_lines_init(&pool, dfd, fd, eol + 1 - head, st->st_size);
    rg_source_help_offer(help, &pool);
    read = rg_source_checksum_fd(fd, (off_t)(magic + 65), st->st_size, sum);
    rg_source_sum_lines_work(&pool);
    rg_source_help_withdraw(help);
    entries = atomic_load(&pool.entries);
    fresh = atomic_load(&pool.fresh);
    if (!read || memcmp(head + magic, sum, 64) != 0)
        return "the index does not match its own checksum";
    if (atomic_load(&pool.bad))
        return "an entry line out of form, or the index cut while it was read";
    if (entries != d->n)
        return "the digest line does not count the entries";
    if (fresh != entries)
        return "some up files changed since rollgate sum";
    return NULL;
}

bool rg_source_glance(const char *dir, struct rg_source *src, struct rg_source_help *help)
{
    char *path = rg_source_join_path(dir, RG_SOURCE_SUM_FILE);
    const char *why = "the directory cannot be opened";
    struct sum_digest d = {0};
    struct stat dir_st, st;
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), fd = -1;

    *src = (struct rg_source){0};
    if (dfd >= 0 && fstat(dfd, &dir_st) == 0) {
        fd = rg_source_sum_open(path);
        why = fd < 0 || fstat(fd, &st) != 0 ? "no index"
              : st.st_size > SUM_MAX_FILE   ? "an index over 64 MiB"
                                            : judge(dfd, &dir_st, fd, &st, help, &d);
    }
    if (!why) {
        src->dir = rg_strdup(dir);
        src->glance = (struct rg_source_glance){.taken = true, .n = d.n, .latest = d.latest};
        memcpy(src->glance.digest, d.sha256, sizeof(d.sha256));
        RG_DEBUG("up files as rollgate sum left them: its digest line stands for them" RG_F
                 "dir=%s" RG_F "files=%zu",
                 dir, d.n);
    } else {
        RG_DEBUG("up files loaded: rollgate sum's digest line not used" RG_F "dir=%s" RG_F
                 "reason=%s",
                 dir, why);
    }
    if (fd >= 0)
        close(fd);
    if (dfd >= 0)
        close(dfd);
    free(path);
    return !why;
}
