#include "duration/duration.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
    const char *unit;
    int64_t ms;
} units[] = {{"h", 3600000}, {"m", 60000}, {"s", 1000}, {"ms", 1}};

#define NUNITS (sizeof(units) / sizeof(units[0]))

int rg_duration_parse(const char *s, int64_t *ms)
{
    int64_t total = 0;
    size_t next_unit = 0;

    if (!s || !*s)
        return -1;
    if (strcmp(s, "0") == 0) {
        *ms = 0;
        return 0;
    }
    while (*s) {
        char *end;
        long long v;
        size_t len, u;

        if (*s < '0' || *s > '9')
            return -1;
        errno = 0;
        v = strtoll(s, &end, 10);
        if (errno || end == s)
            return -1;
        len = strspn(end, "hms");
        for (u = next_unit; u < NUNITS; u++)
            if (strlen(units[u].unit) == len && strncmp(end, units[u].unit, len) == 0)
                break;
        if (u == NUNITS)
            return -1;
        if (v > (INT64_MAX - total) / units[u].ms)
            return -1;
        total += v * units[u].ms;
        next_unit = u + 1;
        s = end + len;
    }
    *ms = total;
    return 0;
}

void rg_duration_format(int64_t ms, char *buf, size_t n)
{
    /* The magnitude as unsigned, so a negative value (INT64_MIN too) prints as one sign in
     * front ("-1h30m") instead of a sign on every unit ("-1h-30m"). */
    uint64_t left = ms < 0 ? 0 - (uint64_t)ms : (uint64_t)ms;
    size_t o = 0;

    if (n == 0)
        return;
    if (ms == 0) {
        snprintf(buf, n, "0s");
        return;
    }
    buf[0] = '\0';
    if (ms < 0)
        o += (size_t)snprintf(buf, n, "-");
    for (size_t u = 0; u < NUNITS && o < n; u++) {
        uint64_t q = left / (uint64_t)units[u].ms;
        if (q == 0)
            continue;
        o += (size_t)snprintf(buf + o, n - o, "%llu%s", (unsigned long long)q, units[u].unit);
        left -= q * (uint64_t)units[u].ms;
    }
}
