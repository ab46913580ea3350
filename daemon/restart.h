/* Restart policies: what happens to a component whose run ended it, by an error (process or
 * init failed) or by DONE. Pure bookkeeping, called by the component's worker; the worker does
 * the stopping, waiting and starting (worker.c).
 *
 * Intensity, as systemd's start limit counts it: a window opens at a restart and lasts
 * window_ms; at most max_restarts restarts fit in it, and the next failure inside it gives up.
 * A failure after the window ended opens a new one. The delay before a restart is backoff_ms
 * for the window's first, doubling for each further one up to RESTART_BACKOFF_MAX_MS (or
 * backoff_ms itself where that is longer): a
 * component that fails at once does not spin its worker through init and fini, and one that
 * fails now and then comes back quickly. */
#ifndef ACTORD_RESTART_H
#define ACTORD_RESTART_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"

#define RESTART_BACKOFF_MAX_MS 30000u

struct restart_state {
        uint64_t window_start_ns; /* when the current window opened */
        uint32_t in_window;       /* restarts in it */
        uint32_t total;           /* restarts since the component was created */
};

enum restart_action {
        RESTART_ACTION_STOP,    /* it finished (DONE) and is not to be restarted */
        RESTART_ACTION_RESTART, /* start it again after the delay */
        RESTART_ACTION_GIVE_UP, /* failed for good: restart = never, or past the limit */
};

/* Decides after a run that ended the component at now_ns (`error`: an error, else DONE).
 * For RESTART_ACTION_RESTART sets *ret_delay_ns and counts the restart in *s. */
enum restart_action restart_decide(const struct config_restart *p, struct restart_state *s,
                                   bool error, uint64_t now_ns, uint64_t *ret_delay_ns);

#endif
