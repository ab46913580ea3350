/* Absolute times for the timed waits of the bundled plugins' own threads (a condition
 * variable's wait, a timed join). */
#ifndef ACTORD_PLUGIN_DEADLINE_H
#define ACTORD_PLUGIN_DEADLINE_H

#include <time.h>

/* `ms` milliseconds from now on `clock`: CLOCK_MONOTONIC for a condition variable set to it,
 * CLOCK_REALTIME for pthread_timedjoin_np. */
static inline struct timespec deadline_after_ms(clockid_t clock, long ms)
{
        struct timespec t;
        clock_gettime(clock, &t);
        t.tv_sec += ms / 1000;
        t.tv_nsec += ms % 1000 * 1000000L;
        if (t.tv_nsec >= 1000000000L) {
                t.tv_sec++;
                t.tv_nsec -= 1000000000L;
        }
        return t;
}

#endif
