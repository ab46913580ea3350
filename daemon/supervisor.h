/* Supervision from the main thread: finds workers stuck inside one component's run (components
 * are never preempted, so one that blocks stalls its whole worker), reports them once, and
 * says whether the systemd watchdog may be fed. Restart policies: restart.h, applied by the
 * workers (worker.c). */
#ifndef ACTORD_SUPERVISOR_H
#define ACTORD_SUPERVISOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "worker.h"

struct supervisor {
        uint64_t stall_ns; /* a run longer than this is a stall */
        bool *stuck;       /* per worker: reported as stuck */
        int n_workers;
};

/* Returns 0 or -ENOMEM. */
int supervisor_init(struct supervisor *s, int n_workers, uint64_t stall_ns);
void supervisor_free(struct supervisor *s);

/* Looks at every worker's current run; logs a stall when it starts and when it ends. Returns
 * the number of stuck workers and, when there is one, a STATUS line naming it in status.
 * Main thread; lock-free reads of what the workers publish. */
int supervisor_check(struct supervisor *s, const struct runtime *rt, uint64_t now_ns, char *status,
                     size_t len);

#endif
