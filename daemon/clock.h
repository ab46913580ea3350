/* The daemon's clock: CLOCK_MONOTONIC in nanoseconds, the time base of publish_ns,
 * actord_now_ns(), periodic deadlines and stall detection. */
#ifndef ACTORD_CLOCK_H
#define ACTORD_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline uint64_t mono_ns(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

#endif
