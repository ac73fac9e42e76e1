/* The up files' stats against what rollgate.sum recorded of them (size and modification
 * time): one fstatat per file, on a second thread from 512 files on, so that a start's other
 * work overlaps them. The only per-file check of a start that trusts the index, and most of
 * its time over a long history. */
#include "source/internal.h"

#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "mem/mem.h"

/* Names are taken a few at a time, by whichever thread is free: the helper from the
 * start, the loading thread once it has nothing else to do. */
#define STAT_CHUNK 64
/* Below this many files a second thread costs more than it saves. */
#define STAT_THREAD_MIN 512

bool rg_source_sum_fresh(const struct sum_want *w, const struct stat *st)
{
    /* Image layers keep whole seconds (Docker and containerd truncate a file's time as
     * they write a layer): a file whose time lost its fraction on the way from the build,
     * where rollgate sum ran, to the pod is still the file that was summed. */
    return S_ISREG(st->st_mode) && st->st_size == w->size && st->st_mtim.tv_sec == w->mtime_sec &&
           (st->st_mtim.tv_nsec == w->mtime_nsec || st->st_mtim.tv_nsec == 0);
}

static void stat_some(struct sum_stats *s)
{
    for (;;) {
        size_t from = atomic_fetch_add(&s->next, STAT_CHUNK);
        size_t to = from + STAT_CHUNK < s->n ? from + STAT_CHUNK : s->n;

        for (size_t i = from; i < to; i++) {
            struct stat st;

            s->fresh[i] =
                fstatat(s->dfd, s->names[i], &st, 0) == 0 && rg_source_sum_fresh(&s->want[i], &st);
        }
        if (to >= s->n)
            return;
    }
}

static void *stat_helper(void *arg)
{
    stat_some(arg);
    return NULL;
}

struct sum_stats *rg_source_sum_stats_start(int dfd, const char *const *names,
                                            struct sum_want *want, size_t n)
{
    struct sum_stats *s = rg_calloc(1, sizeof(*s));

    s->dfd = dfd;
    s->names = names;
    s->want = want;
    s->fresh = rg_calloc(n ? n : 1, 1);
    s->n = n;
    atomic_init(&s->next, 0);
    /* Without a thread to be had, the loading thread looks at them all when it finishes. */
    if (n >= STAT_THREAD_MIN)
        s->threaded = pthread_create(&s->helper, NULL, stat_helper, s) == 0;
    return s;
}

void rg_source_sum_stats_finish(struct sum_stats *s)
{
    if (s->finished)
        return;
    stat_some(s);
    if (s->threaded)
        pthread_join(s->helper, NULL);
    s->finished = true;
}

void rg_source_sum_stats_free(struct sum_stats *s)
{
    if (!s)
        return;
    rg_source_sum_stats_finish(s);
    free(s->want);
    free(s->fresh);
    free(s);
}

bool rg_source_sum_stat_line(int dfd, const char *line, const char *eol, bool *fresh)
{
    struct sum_entry e;
    struct stat st;
    char name[NAME_MAX + 1];

    /* The checksum is left unread: the index's own checksum vouches for its form. */
    if (eol - line < 65 || !rg_source_sum_parse_file(line + 65, eol, &e) || e.name_len > NAME_MAX)
        return false;
    memcpy(name, e.name, e.name_len);
    name[e.name_len] = '\0';
    *fresh = fstatat(dfd, name, &st, 0) == 0 &&
             rg_source_sum_fresh(&(struct sum_want){.size = e.size,
                                                    .mtime_sec = e.mtime_sec,
                                                    .mtime_nsec = e.mtime_nsec},
                                 &st);
    return true;
}
