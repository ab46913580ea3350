#include "supervisor.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "log.h"

int supervisor_init(struct supervisor *s, int n_workers, uint64_t stall_ns)
{
        *s = (struct supervisor){.stall_ns = stall_ns, .n_workers = n_workers};
        s->stuck = calloc((size_t)n_workers + 1, sizeof(*s->stuck));
        return s->stuck ? 0 : -ENOMEM;
}

void supervisor_free(struct supervisor *s)
{
        free(s->stuck);
        s->stuck = NULL;
}

int supervisor_check(struct supervisor *s, const struct runtime *rt, uint64_t now_ns, char *status,
                     size_t len)
{
        int n = 0;
        for (int i = 0; i < s->n_workers && i < rt->n_workers; i++) {
                const struct worker *w = &rt->workers[i];
                /* Relaxed: diagnostics only. The component may be read even if the worker
                 * moved on meanwhile: components are freed only by a reload (this thread),
                 * after which `running` is NULL or a component still there (worker_pause). */
                uint64_t since = atomic_load_explicit(&w->busy_since_ns, memory_order_relaxed);
                const struct component *c = atomic_load_explicit(&w->running, memory_order_relaxed);
                bool stuck = since && c && now_ns > since && now_ns - since > s->stall_ns;
                if (stuck) {
                        double ms = (double)(now_ns - since) / 1e6;
                        if (!s->stuck[i])
                                log_error("worker %d (CPU %d) is stuck: component '%s' (%s) has "
                                          "been running for %.0f ms (limit %.0f ms); "
                                          "components must never block",
                                          i, w->cpu, c->name, c->cls->name, ms,
                                          (double)s->stall_ns / 1e6);
                        if (n == 0)
                                snprintf(status, len,
                                         "STALLED: worker %d stuck in component '%s' for %.0f "
                                         "ms",
                                         i, c->name, ms);
                        n++;
                } else if (s->stuck[i]) {
                        log_notice("worker %d (CPU %d) runs again", i, w->cpu);
                }
                s->stuck[i] = stuck;
        }
        return n;
}
