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
    int n;
    char *s;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return rg_must(NULL);
    s = rg_malloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}
