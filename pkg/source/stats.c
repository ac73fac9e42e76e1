/* The up files' stats against what rollgate.sum recorded of them (size and modification
 * time): one fstatat per file, the only per-file check of a start that trusts the index, and
 * most of its time over a long history. Two ways of sharing them between threads: for a
 * load, names from the index on a second thread from 512 files on, so that the load's other
 * work overlaps them (sum_stats); for a glance, blocks of the index's entry lines, which the
 * loading thread and the thread that waits for it work on (line_pool, rg_source_help). */
#include "source/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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

/* One entry line's stat; false when the line is not an entry. */
static bool stat_line(int dfd, const char *line, const char *eol, bool *fresh)
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

/* Lines are taken a block of the index at a time, by whichever thread works on the pool,
 * each block read into the thread's own buffer with the rest of its last line: no copy of
 * the whole index is held. A block's lines are those that start in it. */
#define LINE_BLOCK (32 * 1024)
/* More than the longest entry line (a 255-byte name and the numbers before it). */
#define LINE_SLACK 1024

void rg_source_sum_lines_init(struct line_pool *p, int dfd, int fd, off_t from, off_t end)
{
    p->dfd = dfd;
    p->fd = fd;
    p->from = from;
    p->end = end;
    atomic_init(&p->next, 0);
    atomic_init(&p->others, SIZE_MAX);
    atomic_init(&p->entries, 0);
    atomic_init(&p->fresh, 0);
    atomic_init(&p->bad, false);
}

/* Block b into buf from the byte before it (the newline that ends the line before) to
 * LINE_SLACK past it; *len bytes read, false when the index was cut meanwhile. */
static bool read_block(const struct line_pool *p, size_t b, char *buf, size_t *len)
{
    off_t at = p->from + (off_t)(b * LINE_BLOCK) - (b ? 1 : 0);
    off_t want = p->from + (off_t)((b + 1) * LINE_BLOCK + LINE_SLACK);

    *len = 0;
    if (want > p->end)
        want = p->end;
    while (at + (off_t)*len < want) {
        ssize_t got = pread(p->fd, buf + *len, (size_t)(want - at) - *len, at + (off_t)*len);

        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            return false;
        *len += (size_t)got;
    }
    return true;
}

/* The entry lines that start in block b (read into buf, len bytes); false when one is out
 * of form. The first line past the entries ends them, for every thread (p->others). */
static bool stat_block(struct line_pool *p, size_t b, const char *buf, size_t len, size_t *entries,
                       size_t *fresh)
{
    const char *q = buf, *end = buf + len, *stop = buf + (b ? 1 : 0) + LINE_BLOCK;

    if (b) {
        q = memchr(buf, '\n', len);
        if (!q)
            return false;
        q++;
    }
    while (q < stop && q < end) {
        const char *eol = memchr(q, '\n', (size_t)(end - q));
        bool ok = false;

        if (!eol)
            return false;
        if ((eol - q > 2 && q[0] == '+' && q[1] == ' ') ||
            (eol - q > 4 && memcmp(q, "dir ", 4) == 0)) {
            size_t seen = atomic_load(&p->others);

            while (b < seen && !atomic_compare_exchange_weak(&p->others, &seen, b))
                ;
            return true;
        }
        if (!stat_line(p->dfd, q, eol, &ok))
            return false;
        ++*entries;
        *fresh += ok;
        q = eol + 1;
    }
    return true;
}

void rg_source_sum_lines_work(struct line_pool *p)
{
    char buf[LINE_BLOCK + LINE_SLACK + 1];
    size_t entries = 0, fresh = 0, len;
    bool bad = false;

    while (!bad) {
        size_t b = atomic_fetch_add(&p->next, 1);

        /* The entries come first: past a block with other names, there are none. */
        if (p->from + (off_t)(b * LINE_BLOCK) >= p->end || b > atomic_load(&p->others))
            break;
        bad = !read_block(p, b, buf, &len) || !stat_block(p, b, buf, len, &entries, &fresh);
    }
    atomic_fetch_add(&p->entries, entries);
    atomic_fetch_add(&p->fresh, fresh);
    if (bad)
        atomic_store(&p->bad, true);
}

void rg_source_help_init(struct rg_source_help *h)
{
    pthread_mutex_init(&h->mu, NULL);
    pthread_cond_init(&h->cv, NULL);
    h->pool = NULL;
    h->in = 0;
    h->finished = false;
}

void rg_source_help_destroy(struct rg_source_help *h)
{
    pthread_cond_destroy(&h->cv);
    pthread_mutex_destroy(&h->mu);
}

void rg_source_help_offer(struct rg_source_help *h, struct line_pool *p)
{
    pthread_mutex_lock(&h->mu);
    h->pool = p;
    pthread_cond_broadcast(&h->cv);
    pthread_mutex_unlock(&h->mu);
}

void rg_source_help_withdraw(struct rg_source_help *h)
{
    pthread_mutex_lock(&h->mu);
    h->pool = NULL;
    while (h->in)
        pthread_cond_wait(&h->cv, &h->mu);
    pthread_mutex_unlock(&h->mu);
}

void rg_source_help_finished(struct rg_source_help *h)
{
    pthread_mutex_lock(&h->mu);
    h->finished = true;
    pthread_cond_broadcast(&h->cv);
    pthread_mutex_unlock(&h->mu);
}

void rg_source_help_out(struct rg_source_help *h)
{
    struct line_pool *p;

    pthread_mutex_lock(&h->mu);
    while (!h->pool && !h->finished)
        pthread_cond_wait(&h->cv, &h->mu);
    p = h->pool;
    h->in += p != NULL;
    pthread_mutex_unlock(&h->mu);
    if (!p)
        return;
    rg_source_sum_lines_work(p);
    pthread_mutex_lock(&h->mu);
    h->in--;
    pthread_cond_broadcast(&h->cv);
    pthread_mutex_unlock(&h->mu);
}
