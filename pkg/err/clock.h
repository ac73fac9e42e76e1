/* The one monotonic clock every timeout and backoff is measured by. */
#ifndef RG_CLOCK_H
#define RG_CLOCK_H

#include <stdint.h>

/* Milliseconds on CLOCK_MONOTONIC: immune to wall-clock steps, so expiry and deadlines
 * never jump. */
int64_t rg_now_ms(void);

#endif
