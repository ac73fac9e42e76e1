#include "file/file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mem/mem.h"

/* The cap as people write it: "1 MiB", "64 KiB", else "100-byte". */
static void format_cap(size_t cap, char *out, size_t size)
{
    if (cap >= 1024 * 1024 && cap % (1024 * 1024) == 0)
        snprintf(out, size, "%zu MiB", cap / (1024 * 1024));
    else if (cap >= 1024 && cap % 1024 == 0)
        snprintf(out, size, "%zu KiB", cap / 1024);
    else
        snprintf(out, size, "%zu-byte", cap);
}

/* What a file that is not a regular one is, for the message. */
static const char *kind(mode_t mode)
{
    if (S_ISDIR(mode))
        return "a directory";
    if (S_ISFIFO(mode))
        return "a FIFO";
    if (S_ISSOCK(mode))
        return "a socket";
    if (S_ISCHR(mode))
        return "a character device";
    if (S_ISBLK(mode))
        return "a block device";
    return "another kind of file";
}

/* A larger buffer, at most max bytes. The old one is wiped: it may hold a secret. */
static char *grow(char *buf, size_t used, size_t *size, size_t max)
{
    size_t n = *size > max / 2 ? max : *size * 2;
    char *bigger = rg_malloc(n);

    memcpy(bigger, buf, used);
    explicit_bzero(buf, *size);
    free(buf);
    *size = n;
    return bigger;
}

int rg_file_read(const char *path, size_t cap, unsigned flags, char **data, size_t *len,
                 enum rg_code code, struct rg_err *err)
{
    struct stat st;
    char *buf = NULL, limit[32];
    size_t size = 0, got = 0, want;
    int fd = -1, rc = -1, why = 0;

    format_cap(cap, limit, sizeof(limit));
    /* Non-blocking: opening a FIFO nobody writes to would wait for a writer. */
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0) {
        why = errno;
        rg_err_set(err, code, "%s: cannot open: %s", path, strerror(why));
        goto out;
    }
    if (fstat(fd, &st) != 0) {
        why = errno;
        rg_err_set(err, code, "%s: cannot stat: %s", path, strerror(why));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        why = EINVAL;
        rg_err_set(err, code, "%s: cannot read: not a regular file (%s)", path, kind(st.st_mode));
        goto out;
    }
    if ((unsigned long long)st.st_size > cap) {
        why = EFBIG;
        rg_err_set(err, code, "%s: file is %lld bytes, over the %s limit", path,
                   (long long)st.st_size, limit);
        goto out;
    }
    /* One byte past what may be there tells a file that grew, or one that says 0 bytes and
     * holds more than the cap (/proc's), from one that fits. */
    want = ((flags & RG_FILE_UNCHANGED) ? (size_t)st.st_size : cap) + 1;
    /* Room for that byte and the NUL, so a file that stays put is read in one go. */
    size = (size_t)st.st_size + 2;
    if (size > want + 1)
        size = want + 1;
    buf = rg_malloc(size);
    while (got < want) {
        ssize_t n;
        if (got == size - 1)
            buf = grow(buf, got, &size, want + 1);
        n = read(fd, buf + got, size - 1 - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            why = errno;
            rg_err_set(err, code, "%s: cannot read: %s", path, strerror(why));
            goto out;
        }
        if (n == 0)
            break; /* the file may have shrunk since fstat: what is there now is it */
        got += (size_t)n;
    }
    if (got == want && (flags & RG_FILE_UNCHANGED)) {
        why = EINVAL;
        rg_err_set(err, code, "%s: file changed while it was being read", path);
        goto out;
    }
    if (got == want) {
        why = EFBIG;
        rg_err_set(err, code, "%s: over the %s limit", path, limit);
        goto out;
    }
    buf[got] = '\0';
    *data = buf;
    if (len)
        *len = got;
    buf = NULL;
    rc = 0;
out:
    if (fd >= 0)
        close(fd);
    if (buf) {
        explicit_bzero(buf, size);
        free(buf);
    }
    if (rc != 0)
        errno = why;
    return rc;
}
