/* The migrations directory: listing it and data/, pairing up and down files into versions,
 * loading, freeing, finding. */
#include "source/source.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mem/mem.h"
#include "log/log.h"
#include "source/internal.h"
#include "source/sql.h"

/* dir/name (dlen, nlen their lengths) into p, which has room for dlen + nlen + 2 bytes;
 * returns the end of what it wrote, past the NUL. Joins as the operator wrote dir, without
 * doubling a trailing slash, so messages show the path they would type. Built by hand: a
 * load joins a path for every file, and printf's machinery cost more than the rest of the
 * join. */
static char *join_into(char *p, const char *dir, size_t dlen, const char *name, size_t nlen)
{
    size_t slash = dlen > 0 && dir[dlen - 1] == '/' ? 0 : 1;

    memcpy(p, dir, dlen);
    p[dlen] = '/';
    memcpy(p + dlen + slash, name, nlen + 1);
    return p + dlen + slash + nlen + 1;
}

char *rg_source_join_path(const char *dir, const char *name)
{
    size_t n = strlen(dir), m = strlen(name);
    char *path = rg_malloc(n + m + 2);

    join_into(path, dir, n, name, m);
    return path;
}

void rg_source_sort(void *base, size_t n, size_t size, int (*cmp)(const void *, const void *))
{
    const char *p = base;
    size_t i = 1;

    /* Migration names usually come in order already (zero-padded versions): checking
     * costs one comparison per element, a sort many. */
    while (i < n && cmp(p + (i - 1) * size, p + i * size) <= 0)
        i++;
    if (i < n)
        qsort(base, n, size, cmp);
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* By version, the up file before the down file, then by name, so that two files for one
 * version sit next to each other and are reported in the same order on every run. */
static int cmp_entries(const struct entry *x, const struct entry *y)
{
    if (x->version != y->version)
        return x->version < y->version ? -1 : 1;
    if (x->down != y->down)
        return x->down ? 1 : -1;
    return strcmp(x->name, y->name);
}

static int cmp_entry_ptrs(const void *a, const void *b)
{
    return cmp_entries(*(const struct entry *const *)a, *(const struct entry *const *)b);
}

/* Pointers to the n entries in cmp_entries' order. readdir gives a directory's names in
 * hash order, and a comparison sort of 20,000 of them cost more than the rest of a start's
 * own work: a stable radix sort on the up/down flag and then on the version's bytes (those
 * where the versions differ) puts them in order in a few linear passes, and names are
 * sorted only within equal version and flag, which only a wrong directory has. */
static const struct entry **sort_entries(const struct entry *ents, size_t n)
{
    const struct entry **a = rg_calloc(n ? n : 1, sizeof(*a)),
                       **b = rg_calloc(n ? n : 1, sizeof(*b));
    const struct entry **swap;
    size_t k = 0;

    for (int down = 0; down < 2; down++)
        for (size_t i = 0; i < n; i++)
            if (ents[i].down == (bool)down)
                a[k++] = &ents[i];
    for (unsigned shift = 0; shift < 64; shift += 8) {
        size_t count[257] = {0};

        for (size_t i = 0; i < n; i++)
            count[(((uint64_t)a[i]->version >> shift) & 0xff) + 1]++;
        if (n == 0 || count[(((uint64_t)a[0]->version >> shift) & 0xff) + 1] == n)
            continue; /* every version has this byte alike: the order stays */
        for (int d = 0; d < 256; d++)
            count[d + 1] += count[d];
        for (size_t i = 0; i < n; i++)
            b[count[((uint64_t)a[i]->version >> shift) & 0xff]++] = a[i];
        swap = a, a = b, b = swap;
    }
    for (size_t i = 0, j; i < n; i = j) {
        for (j = i + 1; j < n && a[j]->version == a[i]->version && a[j]->down == a[i]->down; j++)
            ;
        if (j - i > 1)
            qsort(a + i, j - i, sizeof(*a), cmp_entry_ptrs);
    }
    free(b);
    return a;
}

static void add_name(char ***list, size_t *n, size_t *cap, char *name)
{
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 64;
        *list = rg_realloc(*list, *cap * sizeof(**list));
    }
    (*list)[(*n)++] = name;
}

/* The *.sql names of a directory: names[i] points into text, where each name follows the
 * listing's prefix (the directory's "dir/" for the migrations directory, nothing for
 * data/), so that text holds every file's path as well: a load keeps it as its
 * migrations' paths instead of copying them (rg_source.names). */
struct listing {
    char **names;
    char *text;
    size_t n;
};

static void listing_free(struct listing *l)
{
    free(l->names);
    free(l->text);
    *l = (struct listing){0};
}

/* The n names in buf (len bytes, each with its NUL) into l, each after prefix (plen bytes):
 * one block of text and one of pointers. A directory of 20,000 files would otherwise cost
 * 20,000 allocations and as many frees on every start. */
static void listing_make(const char *buf, size_t len, size_t n, const char *prefix, size_t plen,
                         struct listing *l)
{
    char *text = rg_malloc(len + n * plen + 1);

    l->names = rg_malloc((n ? n : 1) * sizeof(*l->names));
    l->text = text;
    l->n = n;
    for (size_t i = 0; i < n; i++) {
        size_t m = strlen(buf) + 1;

        memcpy(text, prefix, plen);
        memcpy(text + plen, buf, m);
        l->names[i] = text + plen;
        text += plen + m;
        buf += m;
    }
}

/* The *.sql names in dir into l (after prefix, plen bytes: struct listing), sorted (when
 * sorted) so that errors come out the same whatever order readdir gives, and the near
 * misses among the other names into src, always sorted. Dotfiles are skipped: among them are the
 * ..data links of a ConfigMap volume. For data/ (data set): a missing directory is an empty one,
 * and subdirectories are skipped (stat follows links, as ConfigMap volumes link every file); no
 * directory is a near miss. */
static int list_dir(const char *dir, bool data, bool sorted, const char *prefix, size_t plen,
                    struct listing *l, struct rg_source *src, struct rg_err *err)
{
    const char *what = data ? "data migrations directory" : "migrations directory";
    DIR *d = NULL;
    char *buf = NULL;
    size_t n = 0, len = 0, cap = 0, near_from = src->nnear_misses, near_cap = src->nnear_misses;
    struct stat st;
    int rc = -1;

    *l = (struct listing){0};
    d = opendir(dir);
    /* A dangling data link is not an absent data/: its migrations would be skipped
     * without a word. */
    if (!d && data && errno == ENOENT && lstat(dir, &st) != 0)
        return 0;
    if (!d) {
        rg_err_set(err, RG_EFILES, "%s: cannot open %s: %s", dir, what, strerror(errno));
        goto out;
    }
    for (;;) {
        struct dirent *de;
        size_t nlen;

        errno = 0;
        de = readdir(d);
        if (!de) {
            if (errno) {
                rg_err_set(err, RG_EFILES, "%s: cannot read %s: %s", dir, what, strerror(errno));
                goto out;
            }
            break;
        }
        nlen = strlen(de->d_name);
        if (de->d_name[0] == '.')
            continue;
        if (!rg_source_ends_with(de->d_name, nlen, ".sql")) {
            if (rg_source_near_miss(de->d_name, data) &&
                !(fstatat(dirfd(d), de->d_name, &st, 0) == 0 && S_ISDIR(st.st_mode)))
                add_name(&src->near_misses, &src->nnear_misses, &near_cap,
                         rg_source_join_path(dir, de->d_name));
            continue;
        }
        /* Anything else that is not a regular file (a dangling link, a FIFO) is left for
         * read_file to refuse by name. */
        if (data && fstatat(dirfd(d), de->d_name, &st, 0) == 0 && S_ISDIR(st.st_mode))
            continue;
        if (cap - len < nlen + 1) {
            cap = cap * 2 > len + nlen + 1 ? cap * 2 : len + nlen + 4096;
            buf = rg_realloc(buf, cap);
        }
        memcpy(buf + len, de->d_name, nlen + 1);
        len += nlen + 1;
        n++;
    }
    listing_make(buf, len, n, prefix, plen, l);
    if (sorted)
        rg_source_sort(l->names, n, sizeof(*l->names), cmp_names);
    if (src->nnear_misses - near_from > 1)
        qsort(src->near_misses + near_from, src->nnear_misses - near_from,
              sizeof(*src->near_misses), cmp_names);
    rc = 0;
out:
    free(buf);
    if (d)
        closedir(d);
    return rc;
}

const struct rg_directives rg_source_no_directives;

/* d, kept for a prepared file: the shared empty set when it holds nothing, as most do. */
static const struct rg_directives *keep_directives(const struct rg_directives *d)
{
    struct rg_directives *copy;

    if (memcmp(d, &rg_source_no_directives, sizeof(*d)) == 0)
        return &rg_source_no_directives;
    copy = rg_malloc(sizeof(*copy));
    *copy = *d;
    return copy;
}

static void free_directives(const struct rg_directives *d)
{
    if (d != &rg_source_no_directives)
        free((void *)d); /* allocated by keep_directives, const for its readers */
}

static void migration_free(struct rg_migration *m)
{
    /* Its paths and title are the source's names and titles blocks (load_migration). */
    free(m->up_sql);
    free(m->down_sql);
    free_directives(m->directives);
    free_directives(m->down_directives);
}

/* One version from its up entry and its optional down entry, whose names follow the
 * directory's prefix (plen bytes) in the listing's text (struct listing): its paths are
 * there already. Its title is written at p, in the source's titles block; returns the end
 * of what it wrote. The up file's checksum comes next (sums()); the rest waits for
 * rg_source_prepare. */
static char *load_migration(size_t plen, const struct entry *up, const struct entry *down, char *p,
                            struct rg_migration *out)
{
    out->version = up->version;
    out->up_path = up->name - plen;
    out->up_name = up->name;
    out->down_path = down ? down->name - plen : NULL;
    memcpy(p, up->title, up->title_len);
    p[up->title_len] = '\0';
    out->title = p;
    return p + up->title_len + 1;
}

/* Every up file's checksum, what every run compares with the history: the index's where
 * it still describes the file (use_index; the files looked up in dfd), else from the
 * file's bytes, in version order. */
static int sums(struct rg_source *src, int dfd, bool use_index, struct sum_stats *early,
                struct rg_err *err)
{
    struct rg_err why = {0};
    size_t trusted = 0, read = 0;

    if (use_index &&
        rg_source_sum_apply(src->dir, dfd, src->items, src->n, early, &trusted, &why) != 0)
        /* A damaged index costs speed, never correctness: the files are read. validate
         * refuses it. */
        RG_WARN("checksum index not used: every up file is read instead; run rollgate sum "
                "again" RG_F "error=%s",
                why.msg);
    for (size_t i = 0; i < src->n; i++) {
        struct rg_migration *m = &src->items[i];

        if (m->checksum_from_index)
            continue;
        if (rg_source_read_checksum(m->up_path, m->checksum, &m->post, err) != 0)
            return -1;
        read++;
    }
    if (trusted && read)
        RG_INFO("checksum index out of date for some up files (changed, added or copied since "
                "rollgate sum): they were read; run rollgate sum where the image is built" RG_F
                "read=%zu" RG_F "from_index=%zu",
                read, trusted);
    return 0;
}

/* A phase orders a versioned migration in a rollout; a down file runs when its up one is
 * undone, and scripts run on every migrate: a phase there would promise what no run does. */
static int refuse_phase(const char *path, const struct rg_directives *d, const char *what,
                        struct rg_err *err)
{
    if (!d->post)
        return 0;
    rg_err_set(err, RG_EFILES, "%s: rollgate:phase=post applies to up migrations only, not to %s",
               path, what);
    return -1;
}

static void script_free(struct rg_script *s)
{
    free(s->name);
    free(s->path);
    free(s->sql);
}

/* A repeatable or data script: file in dir, recorded under name. */
static int load_script(const char *dir, const char *file, const char *name, size_t name_len,
                       struct rg_script *out, struct rg_err *err)
{
    struct rg_script s = {0};
    int rc = -1;

    s.name = rg_strndup(name, name_len);
    s.path = rg_source_join_path(dir, file);
    if (rg_source_read_sql(s.path, &s.sql, &s.len, s.checksum, &s.directives, NULL, NULL, err) !=
            0 ||
        refuse_phase(s.path, &s.directives, "repeatable or data scripts", err) != 0)
        goto out;
    *out = s;
    s = (struct rg_script){0};
    rc = 0;
out:
    script_free(&s);
    return rc;
}

static int cmp_scripts(const void *a, const void *b)
{
    return strcmp(((const struct rg_script *)a)->name, ((const struct rg_script *)b)->name);
}

/* Pairs the sorted entries into migrations: one up file per version, at most one down file
 * with the same title, no down file alone, one naming style per version. */
static int build(const char *dir, size_t plen, const struct entry *const *ents, size_t n,
                 struct rg_source *src, struct rg_err *err)
{
    char *a = NULL, *b = NULL, *c = NULL, *p = src->titles;
    int rc = -1;

    for (size_t i = 0; i < n;) {
        const struct entry *up = ents[i], *down = NULL;
        size_t j = i + 1;

        /* Checked first: with both styles present, "two up files" or "no up file" would
         * hide that the two files are one migration written twice. */
        for (size_t k = i + 1; k < n && ents[k]->version == up->version; k++) {
            if (ents[k]->style != up->style) {
                a = rg_source_join_path(dir, up->name);
                b = rg_source_join_path(dir, ents[k]->name);
                rg_err_set(err, RG_EFILES,
                           "%s and %s: version %lld is named in both golang-migrate and Flyway "
                           "style; use one naming style per version",
                           a, b, (long long)up->version);
                goto out;
            }
        }
        if (up->down) {
            a = rg_source_join_path(dir, up->name);
            c = rg_source_expected_up(up);
            rg_err_set(err, RG_EFILES, "%s: down migration without an up file (expected %s)", a, c);
            goto out;
        }
        if (j < n && ents[j]->version == up->version && !ents[j]->down) {
            a = rg_source_join_path(dir, up->name);
            b = rg_source_join_path(dir, ents[j]->name);
            rg_err_set(err, RG_EFILES, "%s and %s: two up migrations for version %lld", a, b,
                       (long long)up->version);
            goto out;
        }
        if (j < n && ents[j]->version == up->version) {
            down = ents[j++];
            if (j < n && ents[j]->version == up->version) {
                a = rg_source_join_path(dir, down->name);
                b = rg_source_join_path(dir, ents[j]->name);
                rg_err_set(err, RG_EFILES, "%s and %s: two down migrations for version %lld", a, b,
                           (long long)up->version);
                goto out;
            }
            if (down->title_len != up->title_len ||
                memcmp(down->title, up->title, up->title_len) != 0) {
                a = rg_source_join_path(dir, up->name);
                b = rg_source_join_path(dir, down->name);
                rg_err_set(err, RG_EFILES,
                           "%s and %s: up and down migrations for version %lld have different "
                           "titles",
                           a, b, (long long)up->version);
                goto out;
            }
        }
        p = load_migration(plen, up, down, p, &src->items[src->n++]);
        i = j;
    }
    rc = 0;
out:
    free(a);
    free(b);
    free(c);
    return rc;
}

/* R__title.sql files, named by title. Sorted once loaded: by file name, R__a-b.sql would
 * come before R__a.sql ('-' < '.'), by name after. */
static int load_repeatables(const char *dir, const struct entry *reps, size_t n,
                            struct rg_source *src, struct rg_err *err)
{
    src->repeatable = rg_calloc(n, sizeof(*src->repeatable));
    for (size_t i = 0; i < n; i++) {
        if (load_script(dir, reps[i].name, reps[i].title, reps[i].title_len,
                        &src->repeatable[src->nrepeatable], err) != 0)
            return -1;
        src->nrepeatable++;
    }
    if (n > 1)
        qsort(src->repeatable, n, sizeof(*src->repeatable), cmp_scripts);
    return 0;
}

/* The .sql files of dir/data, named by file name, in list_dir's byte-wise order. */
static int load_data(const char *dir, struct rg_source *src, struct rg_err *err)
{
    struct listing l = {0};
    char *data_dir = NULL;
    int rc = -1;

    data_dir = rg_source_join_path(dir, "data");
    if (list_dir(data_dir, true, true, "", 0, &l, src, err) != 0)
        goto out;
    src->data = rg_calloc(l.n, sizeof(*src->data));
    for (size_t i = 0; i < l.n; i++) {
        if (rg_source_check_data_name(data_dir, l.names[i], err) != 0)
            goto out;
        if (load_script(data_dir, l.names[i], l.names[i], strlen(l.names[i]),
                        &src->data[src->ndata], err) != 0)
            goto out;
        src->ndata++;
    }
    rc = 0;
out:
    listing_free(&l);
    free(data_dir);
    return rc;
}

/* The *.sql names (into l, after prefix) and near misses (into src) as list_dir gives
 * them, from dir's index when it vouches for the directory's names (rg_source_sum_names):
 * listing 20,000 names is a fifth of a start over a long history. The up files' stats
 * start at once (*early), to overlap the rest of the load. l->names NULL when the directory
 * must be listed; a damaged index costs speed, never correctness. */
static void names_from_index(const char *dir, int dfd, const char *prefix, size_t plen,
                             struct listing *l, struct sum_stats **early, struct rg_source *src)
{
    struct rg_err why = {0};
    struct stat st;
    struct sum_want *want = NULL;
    char *buf = NULL, **near = NULL;
    size_t len = 0, count = 0, nwant = 0, nnear = 0, near_cap = src->nnear_misses;

    *l = (struct listing){0};
    if (dfd < 0 || fstat(dfd, &st) != 0)
        return; /* list_dir names the directory's error */
    if (rg_source_sum_names(dir, &st, &buf, &len, &count, &want, &nwant, &near, &nnear, &why) !=
        0) {
        /* Its entries may still serve each file (sums): that part judges them. */
        RG_WARN("checksum index not used for the names: the directory is listed instead; run "
                "rollgate sum again" RG_F "error=%s",
                why.msg);
        return;
    }
    if (buf) {
        listing_make(buf, len, count, prefix, plen, l);
        /* The up files' names come first, in the index's order. */
        *early = rg_source_sum_stats_start(dfd, (const char *const *)l->names, want, nwant);
        want = NULL;
    }
    for (size_t i = 0; i < nnear; i++)
        add_name(&src->near_misses, &src->nnear_misses, &near_cap, near[i]);
    free(want);
    free(near);
    free(buf);
}

/* What a load takes from the index: nothing (rollgate sum), the checksums of files it still
 * describes (validate: the directory is listed), or its names too when it vouches for them. */
enum use { USE_NOTHING, USE_SUMS, USE_NAMES };

static int load(const char *dir, enum use use, struct rg_source *src, struct rg_err *err)
{
    struct rg_source s = {0};
    struct entry *ents = NULL, *reps = NULL, e;
    const struct entry **order = NULL;
    struct sum_stats *early = NULL;
    struct listing l = {0};
    char **names, *prefix = rg_source_join_path(dir, "");
    const char *bad = NULL;
    size_t n, nents = 0, nreps = 0, nups = 0, room = 0, plen = strlen(prefix);
    int rc = -1, dfd = use != USE_NOTHING ? open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;

    *src = (struct rg_source){0};
    if (use == USE_NAMES)
        names_from_index(dir, dfd, prefix, plen, &l, &early, &s);
    /* In readdir's order: the entries are sorted by version below, and of the names that
     * fail, the first by name is reported, as if they had been sorted. */
    if (!l.names && list_dir(dir, false, false, prefix, plen, &l, &s, err) != 0)
        goto out;
    names = l.names;
    n = l.n;
    ents = rg_calloc(n, sizeof(*ents));
    reps = rg_calloc(n, sizeof(*reps));
    for (size_t i = 0; i < n; i++) {
        struct rg_err why = {0};

        if (rg_source_parse_name(dir, names[i], &e, &why) != 0) {
            if (!bad || strcmp(names[i], bad) < 0) {
                bad = names[i];
                *err = why;
            }
            continue;
        }
        if (e.style == STYLE_REPEATABLE) {
            reps[nreps++] = e;
            continue;
        }
        ents[nents++] = e;
        nups += !e.down;
        room += e.down ? 0 : e.title_len + 1;
    }
    if (bad)
        goto out;
    order = sort_entries(ents, nents);
    s.dir = rg_strdup(dir);
    /* Every migration has its own up entry (build refuses the rest), so there are at most
     * nups: not one per entry, which would double the largest allocation of a start. */
    s.items = rg_calloc(nups, sizeof(*s.items));
    s.titles = rg_malloc(room ? room : 1);
    /* The listing's text holds the migrations' paths: the source keeps it. The stats
     * (early) still look at the names, until they are freed below. */
    s.names = l.text;
    l.text = NULL;
    if (build(dir, plen, order, nents, &s, err) != 0)
        goto out;
    /* Paired: the entries go before the checksums are taken, which hold the most memory
     * of a start. */
    free(order);
    free(ents);
    order = NULL;
    ents = NULL;
    if (sums(&s, dfd, use != USE_NOTHING, early, err) != 0)
        goto out;
    if (load_repeatables(dir, reps, nreps, &s, err) != 0)
        goto out;
    /* Always listed: data/'s files may change without the directory's time changing. */
    if (load_data(dir, &s, err) != 0)
        goto out;
    /* Not an error here: such files were always skipped, and a run must not start failing
     * over a stray backup file. validate refuses them (rg_source_check_names). */
    for (size_t i = 0; i < s.nnear_misses; i++)
        RG_WARN("file not loaded: its name looks like a migration file's but fits none of the "
                "forms (names are case-sensitive; rollgate validate refuses it)" RG_F "file=%s",
                s.near_misses[i]);
    *src = s;
    s = (struct rg_source){0};
    rc = 0;
out:
    /* Before the names the stats look at are freed. */
    rg_source_sum_stats_free(early);
    rg_source_free(&s);
    if (dfd >= 0)
        close(dfd);
    free(order);
    free(ents);
    free(reps);
    listing_free(&l);
    free(prefix);
    return rc;
}

int rg_source_load(const char *dir, struct rg_source *src, struct rg_err *err)
{
    return load(dir, USE_NAMES, src, err);
}

int rg_source_load_listed(const char *dir, struct rg_source *src, struct rg_err *err)
{
    return load(dir, USE_SUMS, src, err);
}

int rg_source_load_files(const char *dir, struct rg_source *src, struct rg_err *err)
{
    return load(dir, USE_NOTHING, src, err);
}

int rg_source_newest(const char *dir, int64_t *version, char **name, struct rg_err *err)
{
    struct rg_source s = {0};
    struct listing l = {0};
    int rc = -1;

    *version = 0;
    *name = NULL;
    /* Names only: the files' contents do not matter for the next number, and a template
     * written by `new` a moment ago holds no statement yet. */
    if (list_dir(dir, false, true, "", 0, &l, &s, err) != 0)
        goto out;
    for (size_t i = 0; i < l.n; i++) {
        struct entry e;
        if (rg_source_parse_name(dir, l.names[i], &e, err) != 0)
            goto out;
        if (e.style != STYLE_REPEATABLE && e.version > *version) {
            *version = e.version;
            free(*name);
            *name = rg_strdup(l.names[i]);
        }
    }
    rc = 0;
out:
    rg_source_free(&s);
    listing_free(&l);
    return rc;
}

void rg_source_free(struct rg_source *src)
{
    if (!src)
        return;
    for (size_t i = 0; i < src->n; i++)
        migration_free(&src->items[i]);
    free(src->items);
    for (size_t i = 0; i < src->nrepeatable; i++)
        script_free(&src->repeatable[i]);
    free(src->repeatable);
    for (size_t i = 0; i < src->ndata; i++)
        script_free(&src->data[i]);
    free(src->data);
    for (size_t i = 0; i < src->nnear_misses; i++)
        free(src->near_misses[i]);
    free(src->near_misses);
    free(src->names);
    free(src->titles);
    free(src->dir);
    *src = (struct rg_source){0};
}

/* The index of the migration with this version, or src->n when there is none. */
static size_t index_of(const struct rg_source *src, int64_t version)
{
    size_t lo = 0, hi = src->n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int64_t v = src->items[mid].version;

        if (v == version)
            return mid;
        if (v < version)
            lo = mid + 1;
        else
            hi = mid;
    }
    return src->n;
}

/* lint, when not NULL, takes the file's findings, from the split that checked it. */
static int prepare_up(struct rg_migration *m, struct rg_lint *lint, struct rg_err *err)
{
    struct rg_directives d;
    struct rg_sql_stmt *stmts = NULL;
    size_t n = 0;
    char sum[65];

    if (rg_source_read_sql(m->up_path, &m->up_sql, &m->up_len, sum, &d, lint ? &stmts : NULL, &n,
                           err) != 0)
        return -1;
    /* A file replaced while the run started (a ConfigMap updated under a running pod), or
     * edited after rollgate sum with its size and time kept: running it would record a
     * checksum that does not describe what ran. */
    if (strcmp(sum, m->checksum) != 0) {
        if (m->checksum_from_index)
            rg_err_set(err, RG_EFILES,
                       "%s: the file does not match " RG_SOURCE_SUM_FILE " (checksum %s there, "
                       "%s now, with the size and modification time the index recorded: it was "
                       "changed after rollgate sum); nothing of it was run; run rollgate sum "
                       "again",
                       m->up_path, m->checksum, sum);
        else
            rg_err_set(err, RG_EFILES,
                       "%s: the file changed while rollgate was running (checksum %s when the "
                       "directory was read, %s now); nothing of it was run; run again",
                       m->up_path, m->checksum, sum);
        free(m->up_sql);
        m->up_sql = NULL;
        m->up_len = 0;
        free(stmts);
        return -1;
    }
    m->directives = keep_directives(&d);
    if (lint)
        rg_lint_statements(m->up_sql, stmts, n, m->directives, lint);
    free(stmts);
    return 0;
}

static int prepare_down(struct rg_migration *m, struct rg_err *err)
{
    struct rg_directives d;
    size_t len = 0;

    if (!m->down_path)
        return 0;
    if (rg_source_read_sql(m->down_path, &m->down_sql, &len, NULL, &d, NULL, NULL, err) != 0)
        return -1;
    if (refuse_phase(m->down_path, &d, "down files", err) != 0) {
        free(m->down_sql);
        m->down_sql = NULL;
        return -1;
    }
    m->down_directives = keep_directives(&d);
    return 0;
}

int rg_source_prepare(struct rg_source *src, int64_t version, unsigned parts, struct rg_err *err)
{
    bool linted;

    return rg_source_prepare_lint(src, version, parts, NULL, &linted, err);
}

int rg_source_prepare_lint(struct rg_source *src, int64_t version, unsigned parts,
                           struct rg_lint *lint, bool *linted, struct rg_err *err)
{
    size_t i = index_of(src, version);
    struct rg_migration *m = i < src->n ? &src->items[i] : NULL;

    *linted = false;
    if (!m) {
        rg_err_set(err, RG_EINTERNAL, "no migration file for version %" PRId64, version);
        return -1;
    }
    if (!(parts & RG_SOURCE_UP) || (m->prepared & RG_SOURCE_LINTED))
        lint = NULL;
    if ((parts & RG_SOURCE_UP) && !(m->prepared & RG_SOURCE_UP)) {
        if (prepare_up(m, lint, err) != 0)
            return -1;
        m->prepared |= RG_SOURCE_UP;
    } else if (lint) {
        rg_lint_sql(m->up_sql, m->up_len, m->directives, lint);
    }
    if (lint) {
        m->prepared |= RG_SOURCE_LINTED;
        *linted = true;
    }
    if ((parts & RG_SOURCE_DOWN) && !(m->prepared & RG_SOURCE_DOWN)) {
        if (prepare_down(m, err) != 0)
            return -1;
        m->prepared |= RG_SOURCE_DOWN;
    }
    return 0;
}

int rg_source_prepare_all(struct rg_source *src, struct rg_err *err)
{
    for (size_t i = 0; i < src->n; i++)
        if (rg_source_prepare(src, src->items[i].version, RG_SOURCE_UP | RG_SOURCE_DOWN, err) != 0)
            return -1;
    return 0;
}

const struct rg_migration *rg_source_find(const struct rg_source *src, int64_t version)
{
    size_t i = src ? index_of(src, version) : 0;

    return src && i < src->n ? &src->items[i] : NULL;
}
