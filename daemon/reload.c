/* What a reload keeps, restarts, starts and stops. */
#include "reload.h"

#include <errno.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

static bool str_eq(const char *a, const char *b)
{
        return (!a && !b) || (a && b && !strcmp(a, b));
}

bool reload_setting_equal(const config_setting_t *a, const config_setting_t *b)
{
        int la = a ? config_setting_length(a) : 0, lb = b ? config_setting_length(b) : 0;
        /* No settings group and an empty one say the same. */
        if (!a || !b)
                return la == 0 && lb == 0 && (!a || config_setting_is_aggregate(a)) &&
                       (!b || config_setting_is_aggregate(b));
        int t = config_setting_type(a);
        if (t != config_setting_type(b) || !str_eq(config_setting_name(a), config_setting_name(b)))
                return false;
        switch (t) {
        case CONFIG_TYPE_INT:
        case CONFIG_TYPE_INT64:
                return config_setting_get_int64(a) == config_setting_get_int64(b);
        case CONFIG_TYPE_FLOAT:
                return config_setting_get_float(a) == config_setting_get_float(b);
        case CONFIG_TYPE_BOOL:
                return config_setting_get_bool(a) == config_setting_get_bool(b);
        case CONFIG_TYPE_STRING:
                return str_eq(config_setting_get_string(a), config_setting_get_string(b));
        case CONFIG_TYPE_GROUP:
                /* Members by name: their order in the file does not matter. */
                if (la != lb)
                        return false;
                for (int i = 0; i < la; i++) {
                        const config_setting_t *m = config_setting_get_elem(a, (unsigned)i);
                        const config_setting_t *o =
                            config_setting_get_member(b, config_setting_name(m));
                        if (!o || !reload_setting_equal(m, o))
                                return false;
                }
                return true;
        default: /* arrays and lists: in order */
                if (la != lb)
                        return false;
                for (int i = 0; i < la; i++)
                        if (!reload_setting_equal(config_setting_get_elem(a, (unsigned)i),
                                                  config_setting_get_elem(b, (unsigned)i)))
                                return false;
                return true;
        }
}

static bool endpoint_equal(const struct config_endpoint *a, const struct config_endpoint *b)
{
        return str_eq(a->component, b->component) && str_eq(a->port, b->port) &&
               a->index == b->index;
}

static bool link_equal(const struct topology *old, int lo, const struct topology *next, int ln)
{
        const struct config_link *a = &old->cfg->links[lo], *b = &next->cfg->links[ln];
        const struct port_type *ta = &old->link_type[lo], *tb = &next->link_type[ln];
        return endpoint_equal(&a->from, &b->from) && endpoint_equal(&a->to, &b->to) &&
               a->capacity == b->capacity && a->policy == b->policy && ta->size == tb->size &&
               str_eq(ta->name, tb->name);
}

static bool component_same(const struct topology *old, const struct component *o,
                           const struct topology *next, const struct component *n)
{
        /* One stopped by an error gets another chance; one that finished (DONE) stays so. */
        if (o->failed)
                return false;
        if (o->cls != n->cls || o->rule != n->rule || o->period_ns != n->period_ns ||
            o->n_in != n->n_in || o->n_out != n->n_out)
                return false;
        /* Placed automatically in both: it stays where it runs. */
        bool auto_both = o->cc->worker < 0 && n->cc->worker < 0;
        if (!auto_both && o->worker != n->worker)
                return false;
        if (!reload_setting_equal(o->cc->settings, n->cc->settings))
                return false;
        for (uint32_t k = 0; k < n->n_in; k++)
                if (!link_equal(old, o->in_link[k], next, n->in_link[k]))
                        return false;
        for (uint32_t k = 0; k < n->n_out; k++)
                if (!link_equal(old, o->out_link[k], next, n->out_link[k]))
                        return false;
        return true;
}

bool reload_workers_equal(const struct config *a, const struct config *b, struct diag *d)
{
        if (a->n_workers != b->n_workers) {
                diag_add(d, b->path, 0,
                         "actord.workers: %d workers instead of %d; changing the workers needs a "
                         "restart (systemctl restart actord)",
                         b->n_workers, a->n_workers);
                return false;
        }
        bool ok = true;
        for (int i = 0; i < a->n_workers; i++) {
                const struct config_worker *x = &a->workers[i], *y = &b->workers[i];
                if (x->cpu != y->cpu || x->idle != y->idle ||
                    (y->idle == IDLE_ADAPTIVE && x->spin_us != y->spin_us)) {
                        diag_add(d, y->file ? y->file : b->path, y->line,
                                 "actord.workers[%d] changed (CPU %d, %s); changing the workers "
                                 "needs a restart (systemctl restart actord)",
                                 i, y->cpu, config_idle_to_string(y->idle));
                        ok = false;
                }
        }
        return ok;
}

int reload_plan(struct reload_plan *p, const struct topology *old, const struct topology *next,
                struct diag *d)
{
        *p = (struct reload_plan){0};
        if (!reload_workers_equal(old->cfg, next->cfg, d))
                return -EINVAL;
        p->keep = calloc((size_t)next->n_comps + 1, sizeof(*p->keep));
        p->chan_from = calloc((size_t)next->n_chans + 1, sizeof(*p->chan_from));
        p->old_next = calloc((size_t)old->n_comps + 1, sizeof(*p->old_next));
        p->old_chan_kept = calloc((size_t)old->n_chans + 1, sizeof(*p->old_chan_kept));
        if (!p->keep || !p->chan_from || !p->old_next || !p->old_chan_kept) {
                reload_plan_free(p);
                return -ENOMEM;
        }
        for (int j = 0; j < old->n_comps; j++)
                p->old_next[j] = -1;
        for (int i = 0; i < next->n_comps; i++) {
                const struct component *n = next->comps[i];
                p->keep[i] = -1;
                int j = 0;
                while (j < old->n_comps && strcmp(old->comps[j]->name, n->name))
                        j++;
                if (j == old->n_comps) {
                        p->n_started++;
                        continue;
                }
                p->old_next[j] = i;
                if (component_same(old, old->comps[j], next, n)) {
                        p->keep[i] = j;
                        p->n_kept++;
                } else {
                        p->n_restarted++;
                }
        }
        p->n_stopped = old->n_comps - p->n_kept - p->n_restarted;
        for (int i = 0; i < next->n_chans; i++) {
                p->chan_from[i] = -1;
                for (int j = 0; j < old->n_chans && p->chan_from[i] < 0; j++)
                        if (!p->old_chan_kept[j] && link_equal(old, j, next, i)) {
                                p->chan_from[i] = j;
                                p->old_chan_kept[j] = true;
                                p->n_chans_kept++;
                        }
        }
        return 0;
}

void reload_plan_free(struct reload_plan *p)
{
        free(p->keep);
        free(p->chan_from);
        free(p->old_next);
        free(p->old_chan_kept);
        *p = (struct reload_plan){0};
}

int reload_hand_over(struct topology *old, struct topology *next, const struct reload_plan *p)
{
        /* The leaving components let go of their ends first: closing saves where the reader
         * stopped, for the arriving end to carry on from there. */
        for (int j = 0; j < old->n_comps; j++)
                if (!reload_kept(p, j))
                        topology_component_close(old->comps[j]);
        int failed = 0;
        for (int i = 0; i < next->n_comps; i++) {
                struct component *n = next->comps[i];
                int j = p->keep[i];
                if (j >= 0) {
                        /* The running object carries on, renamed into the new model; the one
                         * built for it never ran (freeing it closes its ends on the new
                         * channels). Its links are all kept channels, on which the running
                         * object's ends stay open. */
                        struct component *o = old->comps[j];
                        int *tmp = o->in_link;
                        o->in_link = n->in_link;
                        n->in_link = tmp;
                        tmp = o->out_link;
                        o->out_link = n->out_link;
                        n->out_link = tmp;
                        o->cc = n->cc;
                        o->name = n->name;
                        o->plugin_path = n->plugin_path;
                        old->comps[j] = NULL;
                        next->comps[i] = o;
                        topology_component_free(n);
                        continue;
                }
                bool ok = true;
                for (uint32_t k = 0; k < n->n_in; k++) {
                        int from = p->chan_from[n->in_link[k]];
                        if (from < 0)
                                continue;
                        channel_rx_close(&n->in[k]);
                        ok = channel_rx_open(&n->in[k], &old->chans[from]) == 0 && ok;
                }
                for (uint32_t k = 0; k < n->n_out; k++) {
                        int from = p->chan_from[n->out_link[k]];
                        if (from < 0)
                                continue;
                        channel_tx_close(&n->out[k]);
                        ok = channel_tx_open(&n->out[k], &old->chans[from]) == 0 && ok;
                }
                if (!ok) {
                        snprintf(n->error, sizeof(n->error), "out of memory for its channel ends");
                        n->stopped = n->failed = true;
                        component_set_state(n, COMPONENT_FAILED);
                        failed++;
                }
        }
        /* Every end now sits on the kept channel: the new one made for the link goes. */
        for (int i = 0; i < next->n_chans; i++) {
                int j = p->chan_from[i];
                if (j < 0)
                        continue;
                channel_destroy(&next->chans[i]);
                next->chans[i] = old->chans[j];
                old->chans[j] = (struct channel){0};
        }
        for (int i = 0; i < next->n_comps; i++) {
                struct component *c = next->comps[i];
                for (uint32_t k = 0; k < c->n_out; k++)
                        c->out_peer[k] = next->comps[next->link_to[c->out_link[k]]];
                for (uint32_t k = 0; k < c->n_in; k++)
                        c->in_peer[k] = next->comps[next->link_from[c->in_link[k]]];
        }
        return failed;
}
