/* `rollgate new NAME`: the next migration's pair of files, numbered like the existing ones. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "commands.h"
#include "mem/mem.h"
#include "source/source.h"

/* Versions this long are timestamps (20240101120000): the next one is the time now. */
#define TIMESTAMP_DIGITS 14

static bool valid_name(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '_' || *s == '-'))
            return false;
    return true;
}

static int write_new(const char *path, const char *text, struct rg_err *err)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    ssize_t len = (ssize_t)strlen(text);

    if (fd < 0 || write(fd, text, (size_t)len) != len) {
        rg_err_set(err, RG_EFILES, "%s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return close(fd);
}

/* The next version after newest (its file name_of_newest, NULL when none) and how many
 * digits to print it with. */
static int next_version(const char *dir, int64_t newest, const char *name_of_newest,
                        int64_t *version, int *width, struct rg_err *err)
{
    int digits = name_of_newest ? (int)strspn(name_of_newest, "0123456789") : 0;

    *width = digits > 4 ? digits : 4;
    if (newest == INT64_MAX) {
        rg_err_set(err, RG_EFILES,
                   "%s/%s: version %" PRId64 " is the highest there can be; no "
                   "version can follow it",
                   dir, name_of_newest, newest);
        return -1;
    }
    *version = newest + 1;
    if (digits >= TIMESTAMP_DIGITS) {
        time_t now = time(NULL);
        struct tm tm;
        char buf[32] = "", *end = NULL;
        long long stamp;

        if (gmtime_r(&now, &tm))
            strftime(buf, sizeof(buf), "%Y%m%d%H%M%S", &tm);
        errno = 0;
        stamp = strtoll(buf, &end, 10);
        if (errno || !*buf || *end) {
            rg_err_set(err, RG_EINTERNAL, "new: the time now (\"%s\") does not make a version",
                       buf);
            return -1;
        }
        if (stamp > newest)
            *version = stamp;
    }
    return 0;
}

int rg_cmd_new(const struct rg_cli *cli, const struct rg_config *cfg, char *summary, size_t n,
               struct rg_err *err)
{
    const char *dir = cfg->migrations.dir;
    char *up = NULL, *down = NULL, *head = NULL, *name_of_newest = NULL;
    int64_t version, newest;
    int width, ret = -1;

    if (!valid_name(cli->name)) {
        rg_err_set(err, RG_EUSAGE,
                   "new: \"%s\" is not a migration name (letters, digits, '_', '-')", cli->name);
        return -1;
    }
    /* A project's first migration may come before its directory. */
    if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
        rg_err_set(err, RG_EFILES, "%s: %s", dir, strerror(errno));
        return -1;
    }
    if (rg_source_newest(dir, &newest, &name_of_newest, err) < 0)
        goto out;
    if (next_version(dir, newest, name_of_newest, &version, &width, err) < 0)
        goto out;
    up = rg_asprintf("%s/%0*" PRId64 "_%s.up.sql", dir, width, version, cli->name);
    down = rg_asprintf("%s/%0*" PRId64 "_%s.down.sql", dir, width, version, cli->name);
    head = rg_asprintf(
        "-- %s: runs in one transaction with its history row.\n"
        "-- Directives: -- rollgate:lock-timeout=5s, -- rollgate:statement-timeout=1m,\n"
        "-- -- rollgate:no-transaction (CREATE INDEX CONCURRENTLY).\n\n",
        cli->name);
    if (write_new(up, head, err) < 0)
        goto out;
    if (write_new(down, "-- Undoes the up migration; used by migrate --target.\n\n", err) < 0) {
        unlink(up);
        goto out;
    }
    printf("%s\n%s\n", up, down);
    snprintf(summary, n, "new: wrote version %" PRId64 " (%s)", version, cli->name);
    ret = 0;
out:
    free(name_of_newest);
    free(up);
    free(down);
    free(head);
    return ret;
}
