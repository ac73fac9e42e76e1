#include "clock/clock.h"

#include <stdio.h>
#include <time.h>

int64_t rg_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t rg_now_ms(void)
{
    return rg_now_us() / 1000;
}

void rg_utc_now(char *buf, size_t n, int digits)
{
    static const long scale[] = {1000000000L, 100000000L, 10000000L, 1000000L, 100000L,
                                 10000L,      1000L,      100L,      10L,      1L};
    struct timespec ts;
    struct tm tm;
    char base[32];

    if (digits < 0 || digits > 9)
        digits = 0;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
    if (digits)
        snprintf(buf, n, "%.20s.%0*ldZ", base, digits, ts.tv_nsec / scale[digits]);
    else
        snprintf(buf, n, "%.20sZ", base);
}
