/* Durations as operators write them: "500ms", "30s", "5m", "1h30m". */
#ifndef RG_DURATION_H
#define RG_DURATION_H

#include <stddef.h>
#include <stdint.h>

#include "err/err.h"

/* Into milliseconds. Units h, m, s, ms, in that order, each at most once, integers only;
 * "0" alone is zero. Returns -1 on anything else (empty, negative, unknown unit, overflow). */
int rg_duration_parse(const char *s, int64_t *ms) RG_WUR;
/* The reverse, for messages: "1h30m", "500ms", "0s". */
void rg_duration_format(int64_t ms, char *buf, size_t n);

#endif
