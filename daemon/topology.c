/* Instantiate, type-check and wire. */
#define _GNU_SOURCE
#include "topology.h"

#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdalign.h>
#include <stdlib.h>
#include <string.h>

struct builder {
        struct topology *t;
        const struct config *cfg;
        const struct plugin_registry *reg;
        struct diag *d;
        int errors;
        bool incomplete; /* a class or link end is missing: reported, or left out by config */
        /* Per link: resolved port indexes at each end. */
        int *from_comp, *from_port, *to_comp, *to_port;
        /* Per component: the type its generic ports took, if any. */
        struct port_type *generic;
};

#define ERRL(b, file, line, ...)                                                                   \
        do {                                                                                       \
                diag_add((b)->d, (file), (line), __VA_ARGS__);                                     \
                (b)->errors++;                                                                     \
        } while (0)

static bool is_generic(const struct actord_port *p)
{
        return !strcmp(p->type, ACTORD_TYPE_GENERIC);
}

static bool is_multi(const struct actord_class *cls, bool output)
{
        return output ? cls->shape == ACTORD_SHAPE_SCATTER : cls->shape == ACTORD_SHAPE_GATHER;
}

void topology_link_end_written(const struct topology *t, int link, bool from, char *buf, size_t len)
{
        const struct config_endpoint *e =
            from ? &t->cfg->links[link].from : &t->cfg->links[link].to;
        if (e->index >= 0)
                snprintf(buf, len, "%s.%s[%d]", e->component, e->port, e->index);
        else
                snprintf(buf, len, "%s.%s", e->component, e->port);
}

void topology_link_end(const struct topology *t, int link, bool from, char *buf, size_t len)
{
        const struct component *c = t->comps[from ? t->link_from[link] : t->link_to[link]];
        if (!is_multi(c->cls, from)) {
                topology_link_end_written(t, link, from, buf, len);
                return;
        }
        const struct config_endpoint *e =
            from ? &t->cfg->links[link].from : &t->cfg->links[link].to;
        snprintf(buf, len, "%s.%s[%u]", e->component, e->port,
                 from ? t->link_out[link] : t->link_in[link]);
}

uint32_t topology_declared_port(const struct component *c, bool output, uint32_t k)
{
        return is_multi(c->cls, output) ? 0 : k;
}

static int find_comp(const struct topology *t, const char *name)
{
        for (int i = 0; i < t->n_comps; i++)
                if (!strcmp(t->comps[i]->name, name))
                        return i;
        return -1;
}

static void check_settings(struct builder *b, const struct config_component *cc,
                           const struct actord_class *cls)
{
        const config_setting_t *s = cc->settings;
        const char *names[64];
        size_t n_names = 0;
        for (uint32_t i = 0; i < cls->n_settings && n_names < 64; i++)
                names[n_names++] = cls->settings[i].name;
        for (int i = 0; s && i < config_setting_length(s); i++) {
                const config_setting_t *m = config_setting_get_elem(s, (unsigned)i);
                const char *key = config_setting_name(m);
                const char *file = config_setting_source_file(m);
                int line = config_setting_source_line(m);
                if (!file)
                        file = b->cfg->path;
                const struct actord_setting *decl = NULL;
                for (uint32_t k = 0; k < cls->n_settings && !decl; k++)
                        if (!strcmp(cls->settings[k].name, key))
                                decl = &cls->settings[k];
                if (!decl) {
                        const char *hint = diag_suggest(key, names, n_names);
                        if (hint)
                                ERRL(b, file, line,
                                     "component '%s': class '%s' has no setting '%s'; did you "
                                     "mean '%s'?",
                                     cc->name, cls->name, key, hint);
                        else if (n_names == 0)
                                ERRL(b, file, line,
                                     "component '%s': class '%s' has no setting '%s' (it takes "
                                     "none)",
                                     cc->name, cls->name, key);
                        else
                                ERRL(b, file, line,
                                     "component '%s': class '%s' has no setting '%s'", cc->name,
                                     cls->name, key);
                        continue;
                }
                int t = config_setting_type(m);
                bool ok;
                const char *want;
                switch (decl->type) {
                case ACTORD_SETTING_INT:
                        ok = t == CONFIG_TYPE_INT || t == CONFIG_TYPE_INT64;
                        want = "an integer";
                        break;
                case ACTORD_SETTING_FLOAT:
                        ok = t == CONFIG_TYPE_FLOAT || t == CONFIG_TYPE_INT ||
                             t == CONFIG_TYPE_INT64;
                        want = "a number";
                        break;
                case ACTORD_SETTING_BOOL:
                        ok = t == CONFIG_TYPE_BOOL;
                        want = "true or false";
                        break;
                default:
                        ok = t == CONFIG_TYPE_STRING;
                        want = "a string";
                        break;
                }
                if (!ok)
                        ERRL(b, file, line, "component '%s': setting '%s' of class '%s' must be %s",
                             cc->name, key, cls->name, want);
        }
        for (uint32_t k = 0; k < cls->n_settings; k++)
                if (cls->settings[k].required &&
                    !(s && config_setting_get_member(s, cls->settings[k].name)))
                        ERRL(b, cc->file, cc->line,
                             "component '%s': class '%s' requires setting '%s' (%s)", cc->name,
                             cls->name, cls->settings[k].name,
                             cls->settings[k].help ? cls->settings[k].help : "no help");
}

static void make_components(struct builder *b)
{
        struct topology *t = b->t;
        const char *class_names[512];
        size_t n_class_names = 0;
        for (int i = 0; i < b->reg->n_classes && n_class_names < 512; i++)
                class_names[n_class_names++] = b->reg->classes[i].cls->name;
        int next_auto = 0;
        for (int i = 0; i < b->cfg->n_components; i++) {
                const struct config_component *cc = &b->cfg->components[i];
                struct component *c = t->comps[t->n_comps++];
                c->name = cc->name;
                c->cc = cc;
                c->worker = cc->worker >= 0 ? cc->worker : next_auto++ % b->cfg->n_workers;
                if (find_comp(t, cc->name) < i)
                        ERRL(b, cc->file, cc->line, "component '%s' is defined twice", cc->name);
                if (!cc->class_name)
                        continue; /* config already said so */
                const struct plugin_class *pc = plugin_registry_find(b->reg, cc->class_name);
                if (!pc) {
                        const char *hint = diag_suggest(cc->class_name, class_names, n_class_names);
                        if (hint)
                                ERRL(b, cc->file, cc->line,
                                     "component '%s': unknown class '%s'; did you mean '%s'?",
                                     cc->name, cc->class_name, hint);
                        else
                                ERRL(b, cc->file, cc->line,
                                     "component '%s': unknown class '%s' (no loaded plugin "
                                     "defines it; see actord --list-plugins)",
                                     cc->name, cc->class_name);
                        continue;
                }
                const struct actord_class *cls = pc->cls;
                c->cls = cls;
                c->plugin_path = b->reg->plugins[pc->plugin_index].path;
                c->rule = cc->rule ? (enum actord_rule)cc->rule : cls->default_rule;
                if (cc->schedule_invalid) {
                        /* config_load reported it */
                } else if (!(cls->rules & (uint32_t)c->rule)) {
                        char supported[80] = "";
                        for (uint32_t bit = 1; bit <= ACTORD_RULE_ON_EVENT; bit <<= 1)
                                if (cls->rules & bit) {
                                        if (supported[0])
                                                strcat(supported, ", ");
                                        strcat(supported,
                                               plugin_rule_to_string((enum actord_rule)bit));
                                }
                        ERRL(b, cc->file, cc->line,
                             "component '%s': class '%s' does not support schedule '%s' "
                             "(supports: %s)",
                             cc->name, cls->name, plugin_rule_to_string(c->rule), supported);
                }
                if (c->rule == ACTORD_RULE_PERIODIC) {
                        if (!cc->every_us && !cc->schedule_invalid)
                                ERRL(b, cc->file, cc->line,
                                     "component '%s' is periodic and needs a period: schedule "
                                     "= { every_us = N; }",
                                     cc->name);
                        c->period_ns = cc->every_us * 1000;
                }
                check_settings(b, cc, cls);
        }
}

/* Resolves one end of a link to (component, port index); reports what is wrong. */
static void resolve_end(struct builder *b, const struct config_link *l, bool output, int *ret_c,
                        int *ret_port)
{
        const struct config_endpoint *e = output ? &l->from : &l->to;
        *ret_c = *ret_port = -1;
        if (!e->component)
                return;
        int ci = find_comp(b->t, e->component);
        if (ci < 0) {
                ERRL(b, l->file, l->line, "link %s: no component named '%s'",
                     output ? "source" : "destination", e->component);
                return;
        }
        const struct actord_class *cls = b->t->comps[ci]->cls;
        if (!cls)
                return;
        const struct actord_port *ports = output ? cls->outputs : cls->inputs;
        uint32_t n = output ? cls->n_outputs : cls->n_inputs;
        const char *dir = output ? "output" : "input";
        for (uint32_t i = 0; i < n; i++)
                if (!strcmp(ports[i].name, e->port)) {
                        if (!is_multi(cls, output) && e->index >= 0) {
                                ERRL(b, l->file, l->line,
                                     "link: %s.%s[%d]: '%s' is a %s, its %s ports take no index",
                                     e->component, e->port, e->index, e->component,
                                     plugin_shape_to_string(cls->shape), dir);
                                return;
                        }
                        *ret_c = ci;
                        *ret_port = (int)i;
                        return;
                }
        const char *names[8] = {0};
        size_t nn = 0;
        for (uint32_t i = 0; i < n && nn < 8; i++)
                names[nn++] = ports[i].name;
        const char *hint = diag_suggest(e->port, names, nn);
        if (n == 0)
                ERRL(b, l->file, l->line, "link: '%s' (%s, a %s) has no %s ports", e->component,
                     cls->name, plugin_shape_to_string(cls->shape), dir);
        else if (hint)
                ERRL(b, l->file, l->line,
                     "link: component '%s' (%s) has no %s port '%s'; did you mean '%s'?",
                     e->component, cls->name, dir, e->port, hint);
        else
                ERRL(b, l->file, l->line, "link: component '%s' (%s) has no %s port '%s'",
                     e->component, cls->name, dir, e->port);
}

/* The type a declared port has once generic ports are resolved; false if unresolved yet. */
static bool port_type_of(struct builder *b, int ci, const struct actord_port *p,
                         struct port_type *ret)
{
        if (!is_generic(p)) {
                *ret = (struct port_type){.name = p->type, .size = p->size};
                return true;
        }
        if (!b->generic[ci].name)
                return false;
        *ret = b->generic[ci];
        return true;
}

const char *component_state_name(int state)
{
        static const char *const names[] = {
            [COMPONENT_STARTING] = "starting",     [COMPONENT_RUNNING] = "running",
            [COMPONENT_RESTARTING] = "restarting", [COMPONENT_FINISHED] = "finished",
            [COMPONENT_FAILED] = "failed",
        };
        return state >= 0 && state <= COMPONENT_FAILED ? names[state] : "unknown";
}

static const struct actord_port *decl_port(const struct component *c, bool output, int port)
{
        return output ? &c->cls->outputs[port] : &c->cls->inputs[port];
}

/* The size of message type `name` as some loaded class declares it; false if none does. */
static bool declared_type_size(const struct plugin_registry *reg, const char *name, uint32_t *ret)
{
        for (int i = 0; i < reg->n_classes; i++) {
                const struct actord_class *cls = reg->classes[i].cls;
                for (uint32_t k = 0; k < cls->n_inputs + cls->n_outputs; k++) {
                        const struct actord_port *p =
                            k < cls->n_inputs ? &cls->inputs[k] : &cls->outputs[k - cls->n_inputs];
                        if (!is_generic(p) && !strcmp(p->type, name)) {
                                *ret = p->size;
                                return true;
                        }
                }
        }
        return false;
}

/* A component's `type`: what its generic ports take, before anything wired to them says. */
static void seed_types(struct builder *b)
{
        for (int ci = 0; ci < b->t->n_comps; ci++) {
                struct component *c = b->t->comps[ci];
                const struct config_component *cc = c->cc;
                if (!cc->type || !c->cls)
                        continue;
                bool generic = false;
                for (uint32_t k = 0; k < c->cls->n_inputs; k++)
                        generic |= is_generic(&c->cls->inputs[k]);
                for (uint32_t k = 0; k < c->cls->n_outputs; k++)
                        generic |= is_generic(&c->cls->outputs[k]);
                uint32_t size;
                if (!generic)
                        ERRL(b, cc->file, cc->line,
                             "component '%s': type = \"%s\", but its class %s has no generic "
                             "port ('*') for it to apply to",
                             cc->name, cc->type, c->cls->name);
                else if (!declared_type_size(b->reg, cc->type, &size))
                        ERRL(b, cc->file, cc->line,
                             "component '%s': type \"%s\" is no port's type in the loaded "
                             "plugins (its size comes from one)",
                             cc->name, cc->type);
                else
                        b->generic[ci] = (struct port_type){.name = cc->type, .size = size};
        }
}

static void resolve_types(struct builder *b)
{
        const struct config *cfg = b->cfg;
        seed_types(b);
        /* Generic ports take the type of what they are wired to, transitively: propagate
         * until nothing changes (at most one pass per link). */
        for (int pass = 0; pass <= cfg->n_links; pass++) {
                bool changed = false;
                for (int i = 0; i < cfg->n_links; i++) {
                        if (b->from_port[i] < 0 || b->to_port[i] < 0)
                                continue;
                        int fc = b->from_comp[i], tc = b->to_comp[i];
                        const struct actord_port *fp =
                            decl_port(b->t->comps[fc], true, b->from_port[i]);
                        const struct actord_port *tp =
                            decl_port(b->t->comps[tc], false, b->to_port[i]);
                        struct port_type ft, tt;
                        bool fk = port_type_of(b, fc, fp, &ft), tk = port_type_of(b, tc, tp, &tt);
                        if (fk && !tk) {
                                b->generic[tc] = ft;
                                changed = true;
                        } else if (tk && !fk) {
                                b->generic[fc] = tt;
                                changed = true;
                        }
                }
                if (!changed)
                        break;
        }
        for (int i = 0; i < cfg->n_links; i++) {
                if (b->from_port[i] < 0 || b->to_port[i] < 0)
                        continue;
                const struct config_link *l = &cfg->links[i];
                int fc = b->from_comp[i], tc = b->to_comp[i];
                const struct actord_port *fp = decl_port(b->t->comps[fc], true, b->from_port[i]);
                const struct actord_port *tp = decl_port(b->t->comps[tc], false, b->to_port[i]);
                struct port_type ft, tt;
                if (!port_type_of(b, fc, fp, &ft) || !port_type_of(b, tc, tp, &tt)) {
                        ERRL(b, l->file, l->line,
                             "link %s.%s -> %s.%s: both ends are generic ('*') and nothing "
                             "wired to them gives a type",
                             l->from.component, l->from.port, l->to.component, l->to.port);
                        continue;
                }
                if (strcmp(ft.name, tt.name) || ft.size != tt.size)
                        ERRL(b, l->file, l->line,
                             "link %s.%s -> %s.%s: type mismatch: %s.%s (%s) sends '%s' (%u "
                             "bytes) but %s.%s (%s) takes '%s' (%u bytes)",
                             l->from.component, l->from.port, l->to.component, l->to.port,
                             l->from.component, l->from.port, b->t->comps[fc]->cls->name, ft.name,
                             ft.size, l->to.component, l->to.port, b->t->comps[tc]->cls->name,
                             tt.name, tt.size);
        }
}

/* Assigns the index of each scatter output / gather input, checks every port is wired
 * exactly once, and records which link feeds each port. */
static int assign_ports(struct builder *b, struct component *c, int ci, bool output)
{
        const struct config *cfg = b->cfg;
        int *lcomp = output ? b->from_comp : b->to_comp;
        int *lport = output ? b->from_port : b->to_port;
        const char *dir = output ? "output" : "input";
        uint32_t declared = output ? c->cls->n_outputs : c->cls->n_inputs;
        uint32_t n = declared;
        bool multi = is_multi(c->cls, output);
        if (multi) {
                n = 0;
                for (int i = 0; i < cfg->n_links; i++)
                        if (lcomp[i] == ci && lport[i] >= 0)
                                n++;
        }
        int *owner = NULL;
        if (n) {
                owner = malloc(n * sizeof(int));
                if (!owner)
                        return -ENOMEM;
                for (uint32_t k = 0; k < n; k++)
                        owner[k] = -1;
        }
        /* Explicit indexes first, then the links without one in the order they appear. */
        for (int round = 0; round < 2; round++)
                for (int i = 0; i < cfg->n_links; i++) {
                        if (lcomp[i] != ci || lport[i] < 0)
                                continue;
                        const struct config_link *l = &cfg->links[i];
                        const struct config_endpoint *e = output ? &l->from : &l->to;
                        int slot;
                        if (!multi)
                                slot = round == 0 ? lport[i] : -1;
                        else if (round == 0)
                                slot = e->index;
                        else if (e->index >= 0)
                                slot = -1;
                        else {
                                slot = 0;
                                while (slot < (int)n && owner[slot] >= 0)
                                        slot++;
                        }
                        if (slot < 0)
                                continue;
                        if (slot >= (int)n) {
                                ERRL(b, l->file, l->line,
                                     "link: %s.%s[%d]: index out of range: '%s' has %u %s links "
                                     "(indexes 0..%u)",
                                     e->component, e->port, e->index, c->name, n, dir, n - 1);
                                continue;
                        }
                        if (owner[slot] >= 0) {
                                const struct config_link *o = &cfg->links[owner[slot]];
                                ERRL(b, l->file, l->line,
                                     "link: %s port %s.%s%s is wired twice: here and at %s:%d", dir,
                                     c->name, e->port, multi ? "[index]" : "", o->file, o->line);
                                continue;
                        }
                        owner[slot] = i;
                }
        for (uint32_t k = 0; k < n; k++)
                if (owner[k] < 0) {
                        if (multi)
                                ERRL(b, c->cc->file, c->cc->line,
                                     "component '%s': %s %s[%u] is not connected (indexes "
                                     "must run 0..%u without gaps)",
                                     c->name, dir,
                                     output ? c->cls->outputs[0].name : c->cls->inputs[0].name, k,
                                     n - 1);
                        else
                                ERRL(b, c->cc->file, c->cc->line,
                                     "component '%s' (%s): %s '%s' is not connected", c->name,
                                     c->cls->name, dir,
                                     output ? c->cls->outputs[k].name : c->cls->inputs[k].name);
                }
        if (multi && n == 0)
                ERRL(b, c->cc->file, c->cc->line,
                     "component '%s' (%s, a %s) has no %s links; it needs at least one", c->name,
                     c->cls->name, plugin_shape_to_string(c->cls->shape), dir);
        if (output) {
                c->n_out = n;
                c->out_link = owner;
        } else {
                c->n_in = n;
                c->in_link = owner;
        }
        return 0;
}

static int wire(struct builder *b)
{
        struct topology *t = b->t;
        const struct config *cfg = b->cfg;
        t->chans = calloc((size_t)cfg->n_links + 1, sizeof(*t->chans));
        if (!t->chans)
                return -ENOMEM;
        t->n_chans = cfg->n_links;
        t->link_type = calloc((size_t)cfg->n_links + 1, sizeof(*t->link_type));
        t->link_out = calloc((size_t)cfg->n_links + 1, sizeof(*t->link_out));
        t->link_in = calloc((size_t)cfg->n_links + 1, sizeof(*t->link_in));
        if (!t->link_type || !t->link_out || !t->link_in)
                return -ENOMEM;
        for (int ci = 0; ci < t->n_comps; ci++) {
                struct component *c = t->comps[ci];
                c->in = calloc(c->n_in + 1, sizeof(*c->in));
                c->in_wait = calloc(c->n_in + 1, sizeof(*c->in_wait));
                c->in_type = calloc(c->n_in + 1, sizeof(*c->in_type));
                c->out = calloc(c->n_out + 1, sizeof(*c->out));
                c->out_type = calloc(c->n_out + 1, sizeof(*c->out_type));
                c->out_peer = calloc(c->n_out + 1, sizeof(*c->out_peer));
                c->in_peer = calloc(c->n_in + 1, sizeof(*c->in_peer));
                c->out_mark = calloc(c->n_out + 1, sizeof(*c->out_mark));
                if (!c->in || !c->in_wait || !c->in_type || !c->out || !c->out_type ||
                    !c->out_peer || !c->in_peer || !c->out_mark)
                        return -ENOMEM;
        }
        for (int i = 0; i < cfg->n_links; i++) {
                const struct config_link *l = &cfg->links[i];
                struct component *from = t->comps[b->from_comp[i]];
                const struct actord_port *fp = decl_port(from, true, b->from_port[i]);
                struct port_type type = {0};
                port_type_of(b, b->from_comp[i], fp, &type);
                t->link_type[i] = type;
                int r = channel_create(&t->chans[i], l->capacity, type.size, l->policy);
                if (r < 0) {
                        ERRL(b, l->file, l->line, "link: cannot create its channel: %s",
                             strerror(-r));
                        return r;
                }
        }
        for (int ci = 0; ci < t->n_comps; ci++) {
                struct component *c = t->comps[ci];
                for (uint32_t k = 0; k < c->n_in; k++) {
                        int li = c->in_link[k];
                        t->link_in[li] = k;
                        int r = channel_rx_open(&c->in[k], &t->chans[li]);
                        if (r < 0)
                                return r;
                        port_type_of(b, ci, decl_port(c, false, b->to_port[li]), &c->in_type[k]);
                        c->in_peer[k] = t->comps[b->from_comp[li]];
                }
                for (uint32_t k = 0; k < c->n_out; k++) {
                        int li = c->out_link[k];
                        t->link_out[li] = k;
                        int r = channel_tx_open(&c->out[k], &t->chans[li]);
                        if (r < 0)
                                return r;
                        port_type_of(b, ci, decl_port(c, true, b->from_port[li]), &c->out_type[k]);
                        c->out_peer[k] = t->comps[b->to_comp[li]];
                }
        }
        return 0;
}

/* The notifier slots no component holds (topology.h): taken and given back on the main thread
 * only, where topologies are built and freed. */
static struct notifier_slot *free_slots;
_Static_assert(sizeof(struct notifier_slot) <= 64, "a notifier slot is one line");

static struct notifier_slot *slot_take(void)
{
        struct notifier_slot *n = free_slots;
        if (n)
                free_slots = n->next_free;
        else if ((n = aligned_alloc(64, 64)))
                memset(n, 0, 64);
        return n;
}

void notifier_slot_empty(struct notifier_slot *n)
{
        atomic_store_explicit(&n->target, NULL, memory_order_seq_cst);
        /* seq_cst: the other half of the notify's (a store, then a load, on each side); it
         * also acquires the notifiers' release, so what they did with the component is done.
         * A notify is a few atomic operations and perhaps an eventfd write: the wait is short. */
        while (atomic_load_explicit(&n->busy, memory_order_seq_cst))
                sched_yield();
}

/* Gives c's slot back. A slot whose component never stopped (a failed start, a worker left
 * stuck) is emptied here. */
static void slot_give(struct component *c)
{
        struct notifier_slot *n = c->notifier;
        if (!n)
                return;
        if (atomic_load_explicit(&n->target, memory_order_relaxed))
                notifier_slot_empty(n);
        n->next_free = free_slots;
        free_slots = n;
        c->notifier = NULL;
}

int topology_build(struct topology *ret, const struct config *cfg,
                   const struct plugin_registry *reg, struct diag *d)
{
        struct topology *t = ret;
        *t = (struct topology){.cfg = cfg};
        struct builder b = {.t = t, .cfg = cfg, .reg = reg, .d = d};
        int r = -ENOMEM;
        size_t nl = (size_t)cfg->n_links + 1;
        /* One allocation per component: a reload hands running components from one topology
         * to the next, and plugins keep pointers to them (their notifier). Components carry
         * line-aligned members: aligned memory, not calloc's. */
        t->comps = calloc((size_t)cfg->n_components + 1, sizeof(*t->comps));
        for (int i = 0; t->comps && i < cfg->n_components; i++) {
                t->comps[i] = aligned_alloc(alignof(struct component), sizeof(struct component));
                if (!t->comps[i])
                        goto out;
                memset(t->comps[i], 0, sizeof(struct component));
                t->n_alloc++;
                if (!(t->comps[i]->notifier = slot_take()))
                        goto out;
        }
        b.from_comp = calloc(nl, sizeof(int));
        b.from_port = calloc(nl, sizeof(int));
        b.to_comp = calloc(nl, sizeof(int));
        b.to_port = calloc(nl, sizeof(int));
        b.generic = calloc((size_t)cfg->n_components + 1, sizeof(*b.generic));
        if (!t->comps || !b.from_comp || !b.from_port || !b.to_comp || !b.to_port || !b.generic)
                goto out;

        make_components(&b);
        for (int i = 0; i < cfg->n_links; i++) {
                const struct config_link *l = &cfg->links[i];
                resolve_end(&b, l, true, &b.from_comp[i], &b.from_port[i]);
                resolve_end(&b, l, false, &b.to_comp[i], &b.to_port[i]);
                if (b.from_comp[i] >= 0 && b.from_comp[i] == b.to_comp[i]) {
                        ERRL(&b, l->file, l->line,
                             "link %s.%s -> %s.%s: a component cannot feed itself",
                             l->from.component, l->from.port, l->to.component, l->to.port);
                        b.from_port[i] = b.to_port[i] = -1;
                }
        }
        for (int ci = 0; ci < t->n_comps; ci++) {
                struct component *c = t->comps[ci];
                if (!c->cls)
                        continue;
                if (assign_ports(&b, c, ci, false) < 0 || assign_ports(&b, c, ci, true) < 0)
                        goto out;
        }
        resolve_types(&b);
        /* A model with parts left out (config_load reported them) is checked, never wired. */
        for (int i = 0; i < cfg->n_links; i++)
                if (b.from_port[i] < 0 || b.to_port[i] < 0)
                        b.incomplete = true;
        for (int ci = 0; ci < t->n_comps; ci++)
                if (!t->comps[ci]->cls)
                        b.incomplete = true;
        if (b.errors || b.incomplete) {
                r = -EINVAL;
                goto out;
        }
        r = wire(&b);
        if (r == 0 && b.errors)
                r = -EINVAL;
        if (r == 0) {
                t->link_from = b.from_comp;
                t->link_to = b.to_comp;
                b.from_comp = b.to_comp = NULL;
        }
out:
        free(b.from_comp);
        free(b.from_port);
        free(b.to_comp);
        free(b.to_port);
        free(b.generic);
        if (r < 0)
                topology_free(t);
        return r;
}

void topology_component_close(struct component *c)
{
        for (uint32_t k = 0; c->in && k < c->n_in; k++)
                channel_rx_close(&c->in[k]);
        for (uint32_t k = 0; c->out && k < c->n_out; k++)
                channel_tx_close(&c->out[k]);
}

void topology_component_free(struct component *c)
{
        topology_component_close(c);
        free(c->in);
        free(c->in_wait);
        free(c->out);
        free(c->in_type);
        free(c->out_type);
        free(c->out_peer);
        free(c->in_peer);
        free(c->out_mark);
        free(c->in_link);
        free(c->out_link);
        free(c->fds);
        slot_give(c);
        struct plugin_counter *pc = atomic_load(&c->counters);
        for (uint32_t i = 0; pc && i < atomic_load(&c->n_counters); i++)
                free(pc[i].help);
        free(pc);
        free(c);
}

void topology_free(struct topology *t)
{
        for (int ci = 0; t->comps && ci < t->n_alloc; ci++)
                if (t->comps[ci]) /* NULL: handed over to another topology */
                        topology_component_free(t->comps[ci]);
        for (int i = 0; t->chans && i < t->n_chans; i++)
                channel_destroy(&t->chans[i]);
        free(t->chans);
        free(t->comps);
        free(t->link_from);
        free(t->link_to);
        free(t->link_out);
        free(t->link_in);
        free(t->link_type);
        *t = (struct topology){0};
}
