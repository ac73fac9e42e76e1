/* The "stat floor" of a no-op start with rollgate.sum: the one check per up file that such a
 * start keeps so that a file edited in place is still found (an fstatat for its size and
 * modification time), alone, on one thread and in name order as the start runs them (the
 * index's order, pkg/source/glance.c; readdir's hash order costs more, the inodes being
 * visited out of the order they were made in).
 * Prints the milliseconds the stats took (the listing before them is not counted).
 *   statfloor DIR   exits 1 when DIR cannot be listed. */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv)
{
    struct timespec a, b;
    struct dirent *de;
    struct stat st;
    char **names = NULL;
    size_t n = 0, cap = 0;
    int dfd;
    DIR *d;

    if (argc != 2) {
        fprintf(stderr, "usage: %s DIR\n", argv[0]);
        return 2;
    }
    dfd = open(argv[1], O_RDONLY | O_DIRECTORY);
    d = dfd < 0 ? NULL : opendir(argv[1]);
    if (!d) {
        perror(argv[1]);
        return 1;
    }
    while ((de = readdir(d))) {
        size_t len = strlen(de->d_name);

        if (len < 7 || strcmp(de->d_name + len - 7, ".up.sql") != 0)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 1024;
            names = realloc(names, cap * sizeof(*names));
        }
        names[n++] = strdup(de->d_name);
    }
    qsort(names, n, sizeof(*names), cmp_names);
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (size_t i = 0; i < n; i++)
        fstatat(dfd, names[i], &st, 0);
    clock_gettime(CLOCK_MONOTONIC, &b);
    printf("%.2f\n", (double)(b.tv_sec - a.tv_sec) * 1e3 + (double)(b.tv_nsec - a.tv_nsec) / 1e6);
    return 0;
}
