/* pkg/file: whole, size-capped reads of regular files only. */
#include <criterion/criterion.h>

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "err/err.h"
#include "file/file.h"

/* --- rg_file_read ---------------------------------------------------------------------- */

static char tmp[] = "/tmp/rg_file_XXXXXX";
static char path[4096];
static struct rg_err ferr;

static void file_setup(void)
{
    cr_assert_not_null(mkdtemp(tmp));
    snprintf(path, sizeof(path), "%s/f", tmp);
    rg_err_clear(&ferr);
}

static void file_teardown(void)
{
    DIR *d = opendir(tmp);
    struct dirent *de;

    while (d && (de = readdir(d)) != NULL) {
        char child[4096];
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        snprintf(child, sizeof(child), "%s/%s", tmp, de->d_name);
        if (unlink(child) != 0)
            rmdir(child);
    }
    if (d)
        closedir(d);
    rmdir(tmp);
}

TestSuite(file, .init = file_setup, .fini = file_teardown);

static void write_n(const char *data, size_t n)
{
    FILE *f = fopen(path, "wb");

    cr_assert_not_null(f, "create %s", path);
    cr_assert_eq(fwrite(data, 1, n, f), n);
    cr_assert_eq(fclose(f), 0);
}

/* Expects a failure with code RG_EFILES, errno want_errno and the message PATH: tail. */
static void read_fails(const char *file, size_t cap, unsigned flags, int want_errno,
                       const char *tail)
{
    char *data = NULL, want[4200];
    size_t len = 77;

    snprintf(want, sizeof(want), "%s: %s", file, tail);
    errno = 0;
    cr_assert_eq(rg_file_read(file, cap, flags, &data, &len, RG_EFILES, &ferr), -1);
    cr_assert_eq(errno, want_errno, "errno %d (%s) for: %s", errno, strerror(errno), ferr.msg);
    cr_assert_eq(ferr.code, RG_EFILES);
    cr_assert_str_eq(ferr.msg, want);
    cr_assert_null(data, "data set on failure");
    cr_assert_eq(len, 77, "len set on failure");
}

Test(file, missing_file_is_refused_naming_the_path)
{
    read_fails(path, 10, 0, ENOENT, "cannot open: No such file or directory");
}

Test(file, directory_is_refused)
{
    cr_assert_eq(mkdir(path, 0700), 0);
    read_fails(path, 10, 0, EINVAL, "cannot read: not a regular file (a directory)");
}

/* Nobody writes to the FIFO: a blocking open or read would hang until the timeout. */
Test(file, fifo_is_refused_without_hanging, .timeout = 10)
{
    cr_assert_eq(mkfifo(path, 0600), 0);
    read_fails(path, 10, 0, EINVAL, "cannot read: not a regular file (a FIFO)");
    read_fails(path, 10, RG_FILE_UNCHANGED, EINVAL, "cannot read: not a regular file (a FIFO)");
}

Test(file, device_is_refused)
{
    read_fails("/dev/zero", 10, 0, EINVAL, "cannot read: not a regular file (a character device)");
    read_fails("/dev/null", 10, 0, EINVAL, "cannot read: not a regular file (a character device)");
}

/* A FIFO with a writer holding it open, as a shell's <(...) hands it over: still refused,
 * not read, so what a pipe would deliver never depends on who writes when. */
Test(file, pipe_is_refused_even_with_a_writer, .timeout = 10)
{
    char fd_path[64];
    int fds[2];

    cr_assert_eq(pipe(fds), 0);
    cr_assert_eq(write(fds[1], "abc", 3), 3);
    snprintf(fd_path, sizeof(fd_path), "/dev/fd/%d", fds[0]);
    read_fails(fd_path, 10, 0, EINVAL, "cannot read: not a regular file (a FIFO)");
    close(fds[0]);
    close(fds[1]);
}

Test(file, over_the_cap_is_refused_with_the_size)
{
    write_n("0123456789X", 11);
    read_fails(path, 10, 0, EFBIG, "file is 11 bytes, over the 10-byte limit");
    read_fails(path, 10, RG_FILE_UNCHANGED, EFBIG, "file is 11 bytes, over the 10-byte limit");
}

Test(file, cap_is_written_in_kib_and_mib)
{
    static char big[1024 * 1024 + 1];

    write_n(big, 64 * 1024 + 1);
    read_fails(path, 64 * 1024, 0, EFBIG, "file is 65537 bytes, over the 64 KiB limit");
    write_n(big, sizeof(big));
    read_fails(path, 1024 * 1024, 0, EFBIG, "file is 1048577 bytes, over the 1 MiB limit");
}

Test(file, empty_file_reads_as_an_empty_string)
{
    char *data = NULL;
    size_t len = 77;

    write_n("", 0);
    cr_assert_eq(rg_file_read(path, 10, 0, &data, &len, RG_EFILES, &ferr), 0, "%s", ferr.msg);
    cr_assert_eq(len, 0);
    cr_assert_str_eq(data, "");
    free(data);
}

Test(file, file_of_exactly_the_cap_is_read_whole)
{
    char *data = NULL;
    size_t len = 0;

    write_n("0123456789", 10);
    cr_assert_eq(rg_file_read(path, 10, 0, &data, &len, RG_EFILES, &ferr), 0, "%s", ferr.msg);
    cr_assert_eq(len, 10);
    cr_assert_str_eq(data, "0123456789");
    free(data);
    cr_assert_eq(rg_file_read(path, 10, RG_FILE_UNCHANGED, &data, NULL, RG_EFILES, &ferr), 0, "%s",
                 ferr.msg);
    cr_assert_str_eq(data, "0123456789");
    free(data);
}

Test(file, nul_bytes_are_kept_and_counted)
{
    char *data = NULL;
    size_t len = 0;

    write_n("a\0b", 3);
    cr_assert_eq(rg_file_read(path, 10, 0, &data, &len, RG_EFILES, &ferr), 0, "%s", ferr.msg);
    cr_assert_eq(len, 3);
    cr_assert_eq(memcmp(data, "a\0b", 4), 0);
    free(data);
}

/* /proc files say size 0 and yet hold text: to fstat they look like a file that grew. */
Test(file, unchanged_refuses_a_file_that_grows_while_read)
{
    char *data = NULL;
    size_t len = 0;

    cr_assert_eq(rg_file_read("/proc/self/status", 64 * 1024, 0, &data, &len, RG_EFILES, &ferr), 0,
                 "%s", ferr.msg);
    cr_assert_gt(len, 0);
    cr_assert_eq(strlen(data), len);
    free(data);
    read_fails("/proc/self/status", 64 * 1024, RG_FILE_UNCHANGED, EINVAL,
               "file changed while it was being read");
    /* Its size cannot be told before reading: the cap stops the read instead. */
    read_fails("/proc/self/status", 16, 0, EFBIG, "over the 16-byte limit");
}
