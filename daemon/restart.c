/* Restart policies (restart.h). */
#include "restart.h"

enum restart_action restart_decide(const struct config_restart *p, struct restart_state *s,
                                   bool error, uint64_t now_ns, uint64_t *ret_delay_ns)
{
        if (!error && p->mode != RESTART_PERMANENT)
                return RESTART_ACTION_STOP;
        if (p->mode == RESTART_NEVER)
                return RESTART_ACTION_GIVE_UP;
        uint64_t window_ns = (uint64_t)p->window_ms * 1000000u;
        if (s->in_window == 0 || now_ns - s->window_start_ns >= window_ns) {
                s->window_start_ns = now_ns;
                s->in_window = 0;
        }
        if (s->in_window >= p->max_restarts)
                return RESTART_ACTION_GIVE_UP;
        /* Doubling stops at the cap; a longer first delay than the cap is taken as it is. */
        uint64_t ms = p->backoff_ms;
        uint64_t cap = ms > RESTART_BACKOFF_MAX_MS ? ms : RESTART_BACKOFF_MAX_MS;
        for (uint32_t i = 0; i < s->in_window && ms < cap; i++)
                ms *= 2;
        if (ms > cap)
                ms = cap;
        *ret_delay_ns = ms * 1000000u;
        s->in_window++;
        s->total++;
        return RESTART_ACTION_RESTART;
}
