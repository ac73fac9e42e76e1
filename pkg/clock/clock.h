/* The one monotonic clock every timeout and backoff is measured by. */
#ifndef RG_CLOCK_H
#define RG_CLOCK_H

#include <stddef.h>
#include <stdint.h>

/* Milliseconds on CLOCK_MONOTONIC: immune to wall-clock steps, so expiry and deadlines
 * never jump. */
int64_t rg_now_ms(void);
/* The same clock in microseconds, for durations too short for milliseconds. */
int64_t rg_now_us(void);

/* The wall-clock time now in UTC as RFC 3339 with digits (0 to 9) of fractions of a
 * second: "2006-01-02T15:04:05.000000Z" for digits 6 (a Kubernetes MicroTime). */
void rg_utc_now(char *buf, size_t n, int digits);

#endif
