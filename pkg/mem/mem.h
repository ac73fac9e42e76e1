/* Allocation wrappers: out of memory aborts (as jq and redis do), so callers never
 * carry a half-built object through an error path that cannot be reported anyway. */
#ifndef RG_MEM_H
#define RG_MEM_H

#include <stddef.h>

/* p, or an abort when it is NULL: for what another library allocated (cJSON, libcurl). */
void *rg_must(void *p);
void *rg_malloc(size_t n);
void *rg_calloc(size_t count, size_t size);
void *rg_realloc(void *p, size_t n);
char *rg_strdup(const char *s);
char *rg_strndup(const char *s, size_t n);
/* printf into a new string. */
char *rg_asprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
