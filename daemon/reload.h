/* Reload planning: what a new topology keeps of the running one.
 *
 * A component of the new configuration continues the running component of the same name when
 * nothing that defines it changed: the same class from the same loaded code, the same
 * settings, schedule and worker, and every port wired by the same link (same ends, capacity,
 * overflow policy and message type). It then keeps running with its state; the others are
 * stopped, and those of the new configuration that continue nothing are started.
 * A link of the new configuration takes over the channel of the running link with the same
 * ends, capacity, policy and type, with the messages queued in it, whatever happens to the
 * components at its ends.
 * reload_plan() only compares; reload_hand_over() moves what is kept from one topology to the
 * other, while no worker runs (worker.c's runtime_reload() calls both). */
#ifndef ACTORD_RELOAD_H
#define ACTORD_RELOAD_H

#include <stdbool.h>

#include "config.h"
#include "diag.h"
#include "topology.h"

struct reload_plan {
        int *keep;      /* by new component: the running component it continues, or -1 */
        int *chan_from; /* by new link: the running link whose channel it takes over, or -1 */
        int *old_next;  /* by running component: the new one of the same name, or -1 */
        bool *old_chan_kept;
        int n_kept;      /* components that keep running */
        int n_restarted; /* same name, something changed: stopped, then started anew */
        int n_started;   /* new names */
        int n_stopped;   /* names gone */
        int n_chans_kept;
};

/* Compares the running topology `old` with the validated `next` (both built). Returns 0, or
 * -EINVAL with the reasons in *d when `next` cannot be applied without a restart (the worker
 * set changed), or -ENOMEM. */
int reload_plan(struct reload_plan *p, const struct topology *old, const struct topology *next,
                struct diag *d);
void reload_plan_free(struct reload_plan *p);

/* Whether running component j carries on in the new topology. */
static inline bool reload_kept(const struct reload_plan *p, int j)
{
        return p->old_next[j] >= 0 && p->keep[p->old_next[j]] == j;
}

/* Whether `b` has the workers of `a` (they cannot change without a restart); if not, the
 * reasons go to *d. */
bool reload_workers_equal(const struct config *a, const struct config *b, struct diag *d);

/* With every worker paused and the leaving components stopped: closes the channel ends of
 * the running components that leave; puts the kept components (the same objects, their state
 * and channel ends untouched) into `next` in place of the ones built for them, and the kept
 * channels in place of the new ones; reopens the ends of the arriving components on the kept
 * channels (where the last reader or writer stopped); points every output at its consumer in
 * `next`. What stays in `old` (leaving components, channels not kept) is for topology_free.
 * Returns how many arriving components could not get their ends (out of memory): those are
 * marked failed and stopped. */
int reload_hand_over(struct topology *old, struct topology *next, const struct reload_plan *p);

/* Whether two libconfig settings hold the same value (names, types, values; groups, arrays
 * and lists member by member). */
bool reload_setting_equal(const config_setting_t *a, const config_setting_t *b);

#endif
