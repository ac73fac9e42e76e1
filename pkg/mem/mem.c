/* vasprintf is a GNU extension (glibc and musl both have it): see rg_asprintf. */
#define _GNU_SOURCE
#include "mem/mem.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void *rg_must(void *p)
{
    if (!p) {
        fputs("rollgate: out of memory\n", stderr);
        abort();
    }
    return p;
}

void *rg_malloc(size_t n)
{
    return rg_must(malloc(n ? n : 1));
}

void *rg_calloc(size_t count, size_t size)
{
    return rg_must(calloc(count ? count : 1, size ? size : 1));
}

void *rg_realloc(void *p, size_t n)
{
    return rg_must(realloc(p, n ? n : 1));
}

char *rg_strdup(const char *s)
{
    return rg_must(strdup(s));
}

char *rg_strndup(const char *s, size_t n)
{
    return rg_must(strndup(s, n));
}

char *rg_asprintf(const char *fmt, ...)
{
    va_list ap;
    char *s = NULL;
    int n;

    /* One pass into a buffer that grows. Measuring first with vsnprintf(NULL, 0) sent
     * every byte through glibc's 64-byte overflow path: a step's query, a few kilobytes
     * built from several pieces, cost 18 times the instructions. */
    va_start(ap, fmt);
    n = vasprintf(&s, fmt, ap);
    va_end(ap);
    return rg_must(n < 0 ? NULL : s);
}
