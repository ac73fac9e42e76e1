/* rollgate.sum's record of the directory and the rule by which a start takes its names for
 * a listing (pkg/source/sum.c). */
#include <criterion/criterion.h>

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "source/internal.h"

static char tmp[] = "/tmp/rg_sum_XXXXXX";

static void setup(void)
{
    strcpy(tmp, "/tmp/rg_sum_XXXXXX");
    cr_assert_not_null(mkdtemp(tmp));
}

static void teardown(void)
{
    char cmd[64];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", tmp);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(sum, .init = setup, .fini = teardown);

static char *path_of(const char *name)
{
    static char buf[4][256];
    static int k;
    char *p = buf[k++ % 4];
    snprintf(p, 256, "%s/%s", tmp, name);
    return p;
}

static void write_file(const char *name, const char *text)
{
    FILE *f = fopen(path_of(name), "w");
    cr_assert_not_null(f, "%s", name);
    fputs(text, f);
    cr_assert_eq(fclose(f), 0);
}

static char *read_text(const char *name)
{
    FILE *f = fopen(path_of(name), "r");
    static char buf[8192];
    cr_assert_not_null(f, "%s", name);
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static struct timespec mtime_of(const char *path)
{
    struct stat st;
    cr_assert_eq(stat(path, &st), 0, "%s", path);
    return st.st_mtim;
}

static void set_mtime(const char *path, struct timespec t)
{
    struct timespec times[2] = {t, t};
    cr_assert_eq(utimensat(AT_FDCWD, path, times, 0), 0, "%s", path);
}

/* An index that recorded the directory at dir_sec.dir_nsec, itself dated own. */
static struct sum_index index_at(int64_t dir_sec, long dir_nsec, time_t own_sec, long own_nsec)
{
    struct sum_index idx = {0};
    idx.dir_sec = dir_sec;
    idx.dir_nsec = dir_nsec;
    idx.mtime.tv_sec = own_sec;
    idx.mtime.tv_nsec = own_nsec;
    return idx;
}

static struct stat dir_at(time_t sec, long nsec)
{
    struct stat st;
    memset(&st, 0, sizeof(st));
    st.st_mode = S_IFDIR | 0755;
    st.st_mtim.tv_sec = sec;
    st.st_mtim.tv_nsec = nsec;
    return st;
}

Test(sum, vouches_for_the_directory_time_it_recorded_and_an_index_a_second_later)
{
    struct sum_index idx = index_at(1000, 500, 1001, 20);
    struct stat same = dir_at(1000, 500);
    cr_assert(rg_source_sum_vouches(&idx, &same));
}

Test(sum, does_not_vouch_once_the_directory_changed)
{
    struct sum_index idx = index_at(1000, 500, 1001, 20);
    struct stat later = dir_at(1000, 501), next = dir_at(1001, 500), whole_next = dir_at(1001, 0);
    cr_assert_not(rg_source_sum_vouches(&idx, &later));
    cr_assert_not(rg_source_sum_vouches(&idx, &next));
    cr_assert_not(rg_source_sum_vouches(&idx, &whole_next));
}

/* An image layer keeps whole seconds, of the directory and of the index alike. */
Test(sum, vouches_in_whole_seconds_when_the_times_lost_their_fraction)
{
    struct sum_index idx = index_at(1000, 500, 1001, 0);
    struct stat whole = dir_at(1000, 0);
    cr_assert(rg_source_sum_vouches(&idx, &whole));
}

/* In whole seconds, a change in the index's own second cannot be told from the index: the
 * directory must be a whole second earlier. */
Test(sum, does_not_vouch_when_the_index_is_not_a_whole_second_later)
{
    struct sum_index same_second = index_at(1000, 500, 1000, 0);
    struct sum_index earlier_own = index_at(1000, 500, 999, 900);
    struct stat whole = dir_at(1000, 0), exact = dir_at(1000, 500);
    cr_assert_not(rg_source_sum_vouches(&same_second, &whole));
    cr_assert_not(rg_source_sum_vouches(&same_second, &exact));
    cr_assert_not(rg_source_sum_vouches(&earlier_own, &exact));
}

Test(sum, compares_to_the_nanosecond_when_both_keep_fractions)
{
    struct sum_index idx = index_at(1000, 500, 1000, 900);
    struct stat exact = dir_at(1000, 500);
    cr_assert(rg_source_sum_vouches(&idx, &exact));
}

Test(sum, does_not_vouch_for_what_is_not_a_directory)
{
    struct sum_index idx = index_at(1000, 500, 1001, 0);
    struct stat file = dir_at(1000, 500);
    file.st_mode = S_IFREG | 0644;
    cr_assert_not(rg_source_sum_vouches(&idx, &file));
}

static void three_files(void)
{
    write_file("0001_a.up.sql", "CREATE TABLE a (id int);\n");
    write_file("0001_a.down.sql", "DROP TABLE a;\n");
    write_file("0002_b.up.sql", "CREATE TABLE b (id int);\n");
    write_file("R__v.sql", "CREATE OR REPLACE VIEW v AS SELECT 1;\n");
    write_file("0003_c.UP.SQL", "SELECT 1;\n");
    write_file("README.md", "notes\n");
}

Test(sum, records_every_name_a_load_keeps_and_the_directory_time_last)
{
    struct rg_err err = {0};
    size_t count = 0;

    three_files();
    cr_assert_eq(rg_source_sum_write(tmp, &count, &err), 0, "%s", err.msg);
    cr_assert_eq(count, 2);
    struct timespec dir = mtime_of(tmp), own = mtime_of(path_of(RG_SOURCE_SUM_FILE));
    char *text = read_text(RG_SOURCE_SUM_FILE);
    char want[128];
    snprintf(want, sizeof(want),
             "\n+ 0001_a.down.sql\n+ 0003_c.UP.SQL\n+ R__v.sql\ndir %lld.%09ld\n",
             (long long)dir.tv_sec, dir.tv_nsec);
    cr_assert_not_null(strstr(text, want), "%s", text);
    cr_assert_eq(strlen(strstr(text, want)), strlen(want), "the dir line is not last: %s", text);
    cr_assert_null(strstr(text, "README"), "%s", text);
    cr_assert_lt(dir.tv_sec, own.tv_sec);
    /* Written in place: no temporary file was left or renamed. */
    cr_assert_neq(access(path_of(".rollgate.sum.tmp"), F_OK), 0);

    struct sum_index idx;
    bool present = false;
    cr_assert_eq(rg_source_sum_read(tmp, true, &idx, &present, &err), 0, "%s", err.msg);
    cr_assert(present);
    cr_assert_eq(idx.n, 2);
    cr_assert_eq(idx.nother, 3);
    struct stat st;
    cr_assert_eq(stat(tmp, &st), 0);
    cr_assert(rg_source_sum_vouches(&idx, &st));
    rg_source_sum_free(&idx);
}

/* What shows that the names come from the index: a name added with the directory's time
 * put back is not seen; once the time moves, it is. */
Test(sum, a_load_takes_the_names_from_an_index_that_vouches_and_lists_otherwise)
{
    struct rg_err err = {0};
    struct rg_source src;
    size_t count = 0;

    three_files();
    cr_assert_eq(rg_source_sum_write(tmp, &count, &err), 0, "%s", err.msg);
    struct timespec t = mtime_of(tmp);
    write_file("0004_d.up.sql", "CREATE TABLE d (id int);\n");
    set_mtime(tmp, t);

    cr_assert_eq(rg_source_load(tmp, &src, &err), 0, "%s", err.msg);
    cr_assert_eq(src.n, 2);
    cr_assert_not_null(src.items[0].down_path);
    cr_assert_eq(src.nrepeatable, 1);
    cr_assert_eq(src.nnear_misses, 1);
    cr_assert(src.items[0].checksum_from_index && src.items[1].checksum_from_index);
    rg_source_free(&src);

    /* validate's load always lists. */
    cr_assert_eq(rg_source_load_listed(tmp, &src, &err), 0, "%s", err.msg);
    cr_assert_eq(src.n, 3);
    rg_source_free(&src);

    t.tv_nsec = (t.tv_nsec + 1) % 1000000000L;
    set_mtime(tmp, t);
    cr_assert_eq(rg_source_load(tmp, &src, &err), 0, "%s", err.msg);
    cr_assert_eq(src.n, 3);
    rg_source_free(&src);
}

/* A trusted listing takes each up file's checksum and phase from the same reading of the
 * index that gave the names (the index is not read again), for enough files that the stats
 * run on a second thread; a file edited in place since is read, as without an index. */
Test(sum, a_trusted_listing_takes_checksums_and_phases_from_the_one_reading)
{
    struct rg_err err = {0};
    struct rg_source src, files;
    size_t count = 0;
    char name[64], text[64];

    for (int i = 1; i <= 600; i++) {
        snprintf(name, sizeof(name), "%04d_t%d.up.sql", i, i);
        snprintf(text, sizeof(text), "%sCREATE TABLE t%04d (id int);\n",
                 i % 7 == 0 ? "-- rollgate:phase=post\n" : "", i);
        write_file(name, text);
    }
    cr_assert_eq(rg_source_sum_write(tmp, &count, &err), 0, "%s", err.msg);
    cr_assert_eq(count, 600);
    /* Same size, a later time: the entry no longer holds. The name added with the
     * directory's time put back shows that the names came from the index. */
    struct timespec t = mtime_of(tmp);
    write_file("0300_t300.up.sql", "CREATE TABLE x0300 (id int);\n");
    write_file("0601_t601.up.sql", "CREATE TABLE t0601 (id int);\n");
    set_mtime(tmp, t);

    cr_assert_eq(rg_source_load(tmp, &src, &err), 0, "%s", err.msg);
    cr_assert_eq(unlink(path_of("0601_t601.up.sql")), 0);
    cr_assert_eq(rg_source_load_files(tmp, &files, &err), 0, "%s", err.msg);
    cr_assert_eq(src.n, 600);
    cr_assert_eq(files.n, 600);
    for (size_t i = 0; i < src.n; i++) {
        cr_assert_str_eq(src.items[i].checksum, files.items[i].checksum, "%s",
                         src.items[i].up_name);
        cr_assert_eq(src.items[i].post, files.items[i].post, "%s", src.items[i].up_name);
        cr_assert_eq(src.items[i].post, (i + 1) % 7 == 0, "%s", src.items[i].up_name);
        cr_assert_eq(src.items[i].checksum_from_index, i + 1 != 300, "%s", src.items[i].up_name);
    }
    rg_source_free(&files);
    rg_source_free(&src);
}

/* An index cut short (being written, or copied in part) has no dir line: nothing of it is
 * trusted, and validate names it. */
Test(sum, an_index_without_its_dir_line_is_not_used)
{
    struct rg_err err = {0};
    struct rg_source src;
    size_t count = 0;

    three_files();
    cr_assert_eq(rg_source_sum_write(tmp, &count, &err), 0, "%s", err.msg);
    char *text = read_text(RG_SOURCE_SUM_FILE);
    *strstr(text, "dir ") = '\0';
    struct timespec dir = mtime_of(tmp), own = mtime_of(path_of(RG_SOURCE_SUM_FILE));
    write_file(RG_SOURCE_SUM_FILE, text);
    set_mtime(path_of(RG_SOURCE_SUM_FILE), own);
    cr_assert_eq(mtime_of(tmp).tv_nsec, dir.tv_nsec);

    cr_assert_eq(rg_source_load(tmp, &src, &err), 0, "%s", err.msg);
    cr_assert_eq(src.n, 2);
    cr_assert_not(src.items[0].checksum_from_index);
    rg_source_free(&src);

    struct sum_index idx;
    bool present = false;
    cr_assert_eq(rg_source_sum_read(tmp, false, &idx, &present, &err), -1);
    cr_assert(strstr(err.msg, "rollgate.sum:") != NULL, "%s", err.msg);
}

/* The index's own checksum guards the names a start trusts: an edited index whose
 * directory time still matches is not taken for a listing. */
Test(sum, an_edited_index_does_not_stand_for_the_listing)
{
    struct rg_err err = {0};
    struct rg_source src;
    size_t count = 0;

    three_files();
    cr_assert_eq(rg_source_sum_write(tmp, &count, &err), 0, "%s", err.msg);
    char *text = read_text(RG_SOURCE_SUM_FILE);
    char *down = strstr(text, "+ 0001_a.down.sql\n");
    memmove(down, down + strlen("+ 0001_a.down.sql\n"), strlen(down) - 17);
    struct timespec own = mtime_of(path_of(RG_SOURCE_SUM_FILE));
    write_file(RG_SOURCE_SUM_FILE, text);
    set_mtime(path_of(RG_SOURCE_SUM_FILE), own);

    cr_assert_eq(rg_source_load(tmp, &src, &err), 0, "%s", err.msg);
    cr_assert_not_null(src.items[0].down_path, "the down file was taken from the edited index");
    rg_source_free(&src);
}

/* A start sees the index's end first: a directory that changed skips its second read. */
Test(sum, a_directory_whose_time_moved_is_listed)
{
    struct rg_err err = {0};
    struct rg_source src;
    size_t count = 0;

    three_files();
    cr_assert_eq(rg_source_sum_write(tmp, &count, &err), 0, "%s", err.msg);
    cr_assert_eq(unlink(path_of("0001_a.down.sql")), 0);
    cr_assert_eq(rg_source_load(tmp, &src, &err), 0, "%s", err.msg);
    cr_assert_null(src.items[0].down_path);
    cr_assert(src.items[0].checksum_from_index && src.items[1].checksum_from_index);
    rg_source_free(&src);
}

/* A directory dated in the future (a clock ahead where the files were made) is not waited
 * for: rollgate sum returns, and the index does not vouch for the names. */
Test(sum, a_directory_dated_in_the_future_is_not_waited_for, .timeout = 60)
{
    struct rg_err err = {0};
    struct rg_source src;
    size_t count = 0;

    three_files();
    cr_assert_eq(rg_source_sum_write(tmp, &count, &err), 0, "%s", err.msg);
    struct timespec later = {time(NULL) + 3600, 0};
    set_mtime(tmp, later);
    cr_assert_eq(rg_source_sum_write(tmp, &count, &err), 0, "%s", err.msg);
    write_file("0004_d.up.sql", "CREATE TABLE d (id int);\n");
    set_mtime(tmp, later);
    cr_assert_eq(rg_source_load(tmp, &src, &err), 0, "%s", err.msg);
    cr_assert_eq(src.n, 3);
    rg_source_free(&src);
}

/* Up and down files only, many (their entries span several of rg_source_read_lines's
 * reads), some post-deploy. */
static void many_files(int n)
{
    char name[64], text[64];

    for (int i = 1; i <= n; i++) {
        snprintf(name, sizeof(name), "%04d_t%d.up.sql", i, i);
        snprintf(text, sizeof(text), "%sCREATE TABLE t%04d (id int);\n",
                 i % 7 == 0 ? "-- rollgate:phase=post\n" : "", i);
        write_file(name, text);
        snprintf(name, sizeof(name), "%04d_t%d.down.sql", i, i);
        write_file(name, "SELECT 1;\n");
    }
}

static bool glance(struct rg_source *src)
{
    struct rg_err err = {0};
    struct rg_source_job *job = rg_source_load_start(tmp, true, NULL, NULL);

    cr_assert_eq(rg_source_load_finish(job, src, &err), 0, "%s", err.msg);
    return src->glance.taken;
}

Test(sum, the_digest_line_is_the_files_digest_and_a_glance_completes_into_the_full_load)
{
    struct rg_err err = {0};
    struct rg_source src, files;
    char mine[65], theirs[65];
    size_t count = 0;

    many_files(600);
    cr_assert_eq(rg_source_sum_write(tmp, &count, &err), 0, "%s", err.msg);
    cr_assert_eq(rg_source_load_files(tmp, &files, &err), 0, "%s", err.msg);
    rg_source_digest(&files, mine);
    cr_assert_not_null(strstr(read_text("rollgate.sum"), "\ndigest 600 600 "));

    cr_assert(glance(&src));
    cr_assert_eq(src.n, 0, "a glance loads no migration");
    cr_assert_eq(rg_source_count(&src), 600);
    cr_assert_eq(rg_source_latest(&src), 600);
    rg_source_digest(&src, theirs);
    cr_assert_str_eq(theirs, mine);

    cr_assert_eq(rg_source_complete(&src, &err), 0, "%s", err.msg);
    cr_assert_not(src.glance.taken);
    cr_assert_eq(src.n, 600);
    cr_assert_eq(rg_source_latest(&src), 600);
    cr_assert(src.items[0].checksum_from_index);
    cr_assert(src.items[6].post);
    rg_source_digest(&src, theirs);
    cr_assert_str_eq(theirs, mine);
    rg_source_free(&src);

    /* Not asked for: the full load. */
    struct rg_source_job *job = rg_source_load_start(tmp, false, NULL, NULL);
    cr_assert_eq(rg_source_load_finish(job, &src, &err), 0, "%s", err.msg);
    cr_assert_not(src.glance.taken);
    cr_assert_eq(src.n, 600);
    rg_source_free(&src);
    rg_source_free(&files);
}

/* What keeps the digest line from standing for the files: each is a full load. */
Test(sum, no_glance_where_the_digest_line_may_not_stand_for_the_files)
{
    struct rg_err err = {0};
    struct rg_source src;
    size_t count = 0;

    many_files(40);
    cr_assert_eq(rg_source_sum_write(tmp, &count, &err), 0, "%s", err.msg);
    struct timespec dir = mtime_of(tmp), file = mtime_of(path_of("0007_t7.up.sql"));
    cr_assert(glance(&src));
    rg_source_free(&src);

    /* An up file with another time. */
    set_mtime(path_of("0007_t7.up.sql"), (struct timespec){file.tv_sec - 10, 0});
    cr_assert_not(glance(&src));
    cr_assert_eq(src.n, 40);
    rg_source_free(&src);
    set_mtime(path_of("0007_t7.up.sql"), file);

    /* A data/ with a file in it. */
    cr_assert_eq(mkdir(path_of("data"), 0755), 0);
    write_file("data/a.sql", "SELECT 1;\n");
    set_mtime(tmp, dir);
    cr_assert_not(glance(&src));
    cr_assert_eq(src.ndata, 1);
    rg_source_free(&src);
    cr_assert_eq(unlink(path_of("data/a.sql")), 0);
    cr_assert_eq(rmdir(path_of("data")), 0);
    set_mtime(tmp, dir);
    cr_assert(glance(&src));
    rg_source_free(&src);

    /* A directory whose time moved. */
    set_mtime(tmp, (struct timespec){dir.tv_sec + 1, dir.tv_nsec});
    cr_assert_not(glance(&src));
    rg_source_free(&src);
    set_mtime(tmp, dir);

    /* An entry changed in the index itself. */
    char *text = read_text("rollgate.sum"), *line = strstr(text, " pre 0002_t2.up.sql");
    while (line[-1] != '\n')
        line--;
    cr_assert_eq(strncmp(line + 65, "29 ", 3), 0, "%.80s", line);
    line[65] = '3';
    write_file("rollgate.sum", text);
    set_mtime(tmp, dir);
    cr_assert_not(glance(&src));
    cr_assert_eq(src.n, 40);
    rg_source_free(&src);
}

Test(sum, no_digest_line_for_a_directory_with_scripts_or_near_misses)
{
    struct rg_err err = {0};
    struct rg_source src;
    size_t count = 0;

    three_files();
    cr_assert_eq(rg_source_sum_write(tmp, &count, &err), 0, "%s", err.msg);
    cr_assert_null(strstr(read_text("rollgate.sum"), "\ndigest "));
    cr_assert_not(glance(&src));
    cr_assert_eq(src.nrepeatable, 1);
    rg_source_free(&src);
}

/* The index's own checksum as the glance takes it, read from the file: the bytes' checksum,
 * and no answer for a file shorter than it should be. */
Test(sum, checksum_fd_sums_the_range_and_refuses_a_cut_file)
{
    static char all[512 * 1024];
    char sum[65], want[65];
    FILE *f = fopen(path_of("lines"), "w");

    cr_assert_not_null(f);
    for (int i = 0; i < 5000; i++)
        fprintf(f, "line %d of some length to cross the reads\n", i);
    cr_assert_eq(fclose(f), 0);
    int fd = open(path_of("lines"), O_RDONLY);
    struct stat st;
    cr_assert(fd >= 0 && fstat(fd, &st) == 0);
    cr_assert_eq(pread(fd, all, sizeof(all), 0), st.st_size);

    cr_assert(rg_source_checksum_fd(fd, 10, st.st_size, sum));
    rg_source_checksum(all + 10, (size_t)st.st_size - 10, want);
    cr_assert_str_eq(sum, want);
    cr_assert_not(rg_source_checksum_fd(fd, 0, st.st_size + 1, sum));
    close(fd);
}

/* The entries' pool worked on by several threads at once (the loading thread and the one
 * that waits for it): every entry counted once, the index's other lines not at all. */
static void *work(void *pool)
{
    rg_source_sum_lines_work(pool);
    return NULL;
}

Test(sum, the_entries_pool_counts_each_entry_once_whatever_the_threads)
{
    struct rg_err err = {0};
    struct line_pool pool;
    pthread_t t[3];
    size_t count = 0;

    many_files(2000);
    cr_assert_eq(rg_source_sum_write(tmp, &count, &err), 0, "%s", err.msg);
    set_mtime(path_of("0999_t999.up.sql"), (struct timespec){1, 0});
    int dfd = open(tmp, O_RDONLY | O_DIRECTORY), fd = open(path_of("rollgate.sum"), O_RDONLY);
    struct stat st;
    cr_assert(dfd >= 0 && fd >= 0 && fstat(fd, &st) == 0);
    /* Past the first two lines. */
    char head[512];
    cr_assert(pread(fd, head, sizeof(head), 0) > 0);
    char *second = strchr(head, '\n') + 1, *entries = strchr(second, '\n') + 1;

    for (int threads = 1; threads <= 3; threads++) {
        rg_source_sum_lines_init(&pool, dfd, fd, entries - head, st.st_size);
        for (int k = 0; k < threads; k++)
            cr_assert_eq(pthread_create(&t[k], NULL, work, &pool), 0);
        for (int k = 0; k < threads; k++)
            pthread_join(t[k], NULL);
        cr_assert_not(atomic_load(&pool.bad));
        cr_assert_eq(atomic_load(&pool.entries), 2000, "%d threads", threads);
        cr_assert_eq(atomic_load(&pool.fresh), 1999, "%d threads", threads);
    }
    close(fd);
    close(dfd);
}

/* An index cut while its blocks are read (rollgate sum writing it again in place): the
 * pool says so, whichever block comes up short. */
Test(sum, the_entries_pool_says_when_the_index_is_shorter_than_its_stat)
{
    struct rg_err err = {0};
    struct line_pool pool;
    size_t count = 0;

    many_files(600);
    cr_assert_eq(rg_source_sum_write(tmp, &count, &err), 0, "%s", err.msg);
    int dfd = open(tmp, O_RDONLY | O_DIRECTORY), fd = open(path_of("rollgate.sum"), O_RDONLY);
    struct stat st;
    cr_assert(dfd >= 0 && fd >= 0 && fstat(fd, &st) == 0);
    char head[512];
    cr_assert(pread(fd, head, sizeof(head), 0) > 0);
    char *entries = strchr(strchr(head, '\n') + 1, '\n') + 1;
    /* The first block (32 KiB and its slack) is whole; the second comes up short. */
    rg_source_sum_lines_init(&pool, dfd, fd, entries - head, st.st_size);
    cr_assert_eq(truncate(path_of("rollgate.sum"), 40000), 0);
    rg_source_sum_lines_work(&pool);
    cr_assert(atomic_load(&pool.bad));
    close(fd);
    close(dfd);
}

/* An index that matches its own checksum but holds an entry line longer than any a file
 * name allows (over a block's slack, across a block's end): out of form, so no glance, and
 * nothing read past what was read. */
Test(sum, an_entry_line_longer_than_a_name_allows_is_no_glance)
{
    static char text[96 * 1024], rest[96 * 1024];
    struct rg_err err = {0};
    struct rg_source src;
    size_t count = 0;
    char sum[65];

    many_files(300);
    cr_assert_eq(rg_source_sum_write(tmp, &count, &err), 0, "%s", err.msg);
    struct timespec dir = mtime_of(tmp);
    FILE *f = fopen(path_of("rollgate.sum"), "r");
    size_t n = fread(text, 1, sizeof(text) - 1, f);
    fclose(f);
    text[n] = '\0';
    /* After the digest line and 250 entries (past the first 32 KiB block), a line of 5,000
     * bytes shaped like an entry. */
    char *at = strchr(strchr(text, '\n') + 1, '\n') + 1;
    for (int i = 0; i < 250; i++)
        at = strchr(at, '\n') + 1;
    size_t head = (size_t)(at - text);
    char longname[5001];
    memset(longname, 'x', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    int len = snprintf(rest, sizeof(rest), "%.*s%064d 1 1.000000000 pre %s\n%s",
                       (int)(head - (strchr(text, '\n') + 1 - text)), strchr(text, '\n') + 1, 0,
                       longname, at);
    cr_assert(len > 0 && (size_t)len < sizeof(rest));
    rg_source_checksum(rest, (size_t)len, sum);
    f = fopen(path_of("rollgate.sum"), "w");
    fprintf(f, "rollgate-sum 3 %s\n%s", sum, rest);
    cr_assert_eq(fclose(f), 0);
    set_mtime(tmp, dir);

    cr_assert_not(glance(&src));
    cr_assert_eq(src.n, 300);
    rg_source_free(&src);
}
