/* Topology: turns the configuration and the class registry into components wired by channels,
 * after checking that every class exists, every setting is declared with its type, every port
 * is wired exactly once and both ends of each link carry the same message type. Does not log:
 * every problem goes to a struct diag with the file:line of the config node at fault. */
#ifndef ACTORD_TOPOLOGY_H
#define ACTORD_TOPOLOGY_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <actord/plugin.h>

#include "channel.h"
#include "config.h"
#include "diag.h"
#include "log.h"
#include "plugin.h"
#include "restart.h"

struct worker;

/* A port's resolved message type. */
struct port_type {
        const char *name;
        uint32_t size;
};

/* A component's notifier (actord_notifier()), apart from the component: plugins hand it to
 * threads of their own, and a thread that notifies after fini (a plugin's bug) must find a
 * slot that still exists, not a freed component. `target` is the component between the start
 * of its init and the end of its fini, else NULL; a notify holds `busy` while it uses the
 * target, and the worker that stops the component waits for busy to be 0 after clearing the
 * target (worker.c). Slots are never freed: once their component is gone they are reused, and
 * a stale notify through a reused slot only wakes its new component once more. */
struct notifier_slot {
        struct actord_notifier pub; /* first: the handle plugins hold */
        _Atomic(struct component *) target;
        _Atomic unsigned busy;
        struct notifier_slot *next_free; /* the main thread's free list (topology.c) */
};

/* Clears the slot's target and waits until no notify is using the component it named. */
void notifier_slot_empty(struct notifier_slot *n);

/* Durations in buckets of powers of two nanoseconds (bucket i: up to 2^(QUEUE_HIST_MIN_SHIFT +
 * i) ns; the last: the rest), and their sum. How long the messages read from one input waited:
 * from the start of the producer's run that published each (its publish_ns) to the start of
 * the consumer's run that read it (no clock read per message: both times are the runs' own);
 * and how long a component's runs took (struct component's run_time). Written by one worker
 * only (relaxed), read by the control socket. */
#define QUEUE_HIST_MIN_SHIFT 6 /* the first bucket: up to 64 ns */
#define QUEUE_HIST_BUCKETS 28  /* up to 2^32 ns (4.3 s), then everything longer */

struct queue_hist {
        _Atomic uint64_t bucket[QUEUE_HIST_BUCKETS];
        _Atomic uint64_t sum_ns;
};

struct component {
        struct actord_ctx ctx;          /* first: the host turns a ctx back into its component */
        struct notifier_slot *notifier; /* what actord_notifier() hands out */
        const char *name;
        const struct config_component *cc;
        const struct actord_class *cls;
        const char *plugin_path;
        enum actord_rule rule;
        uint64_t period_ns;
        int worker;

        uint32_t n_in, n_out;
        struct channel_rx *in;       /* by port index */
        struct queue_hist *in_wait;  /* by port index: time in queue of what it read */
        struct channel_tx *out;      /* by port index */
        struct port_type *in_type;   /* by port index */
        struct port_type *out_type;  /* by port index */
        struct component **out_peer; /* consumer of each output */
        struct component **in_peer;  /* producer of each input */
        int *in_link, *out_link;     /* config link index of each port */
        uint64_t *out_mark;          /* per output: sequence number before the current run */

        /* Owned by the worker thread. */
        void *state;
        bool initialized;
        bool stopped;
        bool failed;     /* stopped by an error (init or process): a reload restarts it */
        bool restarting; /* waiting in the timer heap to start again (next_deadline_ns) */
        struct restart_state restart;
        int leaving;        /* reload: why it stops (COMPONENT_REMOVED...), while it stops */
        uint32_t busy_left; /* untimed runs before the next timed one (worker.c, busy_timed) */
        uint64_t next_deadline_ns;
        uint64_t busy_at_ns; /* the last timed run's start (worker.c, busy_timed) */
        uint64_t run_ns;     /* the current run's start (worker.c: run_component) */
        uint64_t drained;    /* during a run: bit k set when the last read of input k found none */
        bool refused;        /* during a run: a claim was refused (reject; channel_tx.refused) */
        bool room_wait;      /* refused, and its consumer tells it of room: on_message, it runs
                              * only when told (worker.c, waits_for_room) */
        struct actord_msg_info info_unused; /* where next() puts what its caller did not ask for */
        char error[256];
        struct worker *w;

        /* fds registered through watch_fd (on_event), with the events asked for; unregistered
         * when it stops. */
        struct watched_fd {
                int fd;
                uint32_t events;
        } * fds;
        int n_fds;
        bool fds_muted; /* waiting for room: its fds are in the epoll set with no events */

        /* on_message, and every producer on the same worker: only its own worker marks it
         * ready, with plain loads and stores (set by the workers' start and by reloads). */
        bool local_marks;
        /* Worker-owned: queued by a local mark, so its input holds a message (worker.c). */
        bool mark_sure;

        unsigned poll_hit; /* the worker's iteration when the poll set last found a message */

        /* Scheduling links, owned by the worker: its ready FIFO and its timer heap. */
        struct component *ready_next;
        int heap_index;

        uint64_t runs_at_init; /* `runs` when its current life began */
        /* Busy time, off the line a run touches (worker.c, busy_timed): the gaps' draw, and
         * `runs` at the last timed run. */
        uint32_t busy_rng;
        uint64_t busy_runs;

        /* Set by whoever makes the component ready (a publisher on any worker, epoll,
         * actord_notify from any thread), cleared by its worker just before it runs: while it
         * is set, the component is in exactly one of its worker's ready lists. On a line pair
         * of its own: the markers write it, and nothing else the worker touches per run. */
        alignas(128) _Atomic bool queued;
        /* Link in the worker's inbox (a lock-free stack): written by the pusher before its
         * release CAS, read by the worker after its acquire exchange. */
        struct component *inbox_next;
        /* Set before marking it ready by a consumer that gave slots back after this producer
         * was refused under reject, or by an actord_notify() of this on_message component:
         * that run is due even with no input readable (worker.c, run_ready). Cleared by its
         * worker. */
        _Atomic bool woken;
        /* A component that asked for its notifier (actord_notifier(): on_event, or on_message
         * since ABI 1.3): set by its worker in init, then never cleared; only such a component
         * is marked by a notify, and an on_message one is then not local_marks. Read by any
         * notifying thread (relaxed: a thread that was handed the notifier was handed it after
         * the store; a stray one from the slot's last component may see either, and a stale
         * notify then wakes it once more, or not). */
        _Atomic bool takes_notifies;

        /* Set while its worker watches its inputs itself (worker.c, the poll set): producers
         * on other workers then publish without marking it ready. Written rarely by its
         * worker, read by producers on every publish: a line pair of its own. */
        alignas(128) _Atomic bool polled;

        /* Given up on by its restart policy: set by its worker, read by the main thread for
         * STATUS and on_failure (relaxed: diagnostics; the eventfd orders the exit). */
        _Atomic bool given_up;

        /* Statistics: its worker is the only writer (relaxed, counter_add()), anyone reads
         * them (the status line, the control socket) with relaxed loads. */
        _Atomic uint64_t runs;
        /* How long its runs took, in the buckets of a queue_hist: each timed run counts for
         * itself and for the untimed runs since the one timed before it (worker.c,
         * busy_timed), so the counts are estimates of runs and the sum is its busy time. */
        struct queue_hist run_time;
        _Atomic uint64_t missed_periods;
        _Atomic uint32_t restarts;
        _Atomic int run_state; /* enum component_state */

        /* The plugin's own counters (actord_counter, ABI 1.2): ACTORD_COUNTERS_MAX entries,
         * allocated at the first declaration (most components have none). Declared by its
         * worker in init, each entry complete before n_counters (release) covers it, so the
         * control socket reads entries below n_counters (acquire) while the worker declares
         * more. */
        _Atomic(struct plugin_counter *) counters;
        _Atomic uint32_t n_counters;
};

struct plugin_counter {
        char name[49];
        char *help;
        _Atomic uint64_t value;
};

/* Where a component stands, for people (the control socket). */
enum component_state {
        COMPONENT_STARTING, /* created, init not run yet */
        COMPONENT_RUNNING,
        COMPONENT_RESTARTING, /* stopped, waiting for its restart */
        COMPONENT_FINISHED,   /* stopped after DONE */
        COMPONENT_FAILED,     /* stopped by an error, for good (until a reload) */
};

const char *component_state_name(int state);

/* A counter with one writer: a plain add, made atomic so that readers on other threads are
 * well defined. */
static inline void counter_add(_Atomic uint64_t *c, uint64_t n)
{
        atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
                              memory_order_relaxed);
}

static inline uint64_t counter_get(const _Atomic uint64_t *c)
{
        return atomic_load_explicit(c, memory_order_relaxed);
}

static inline unsigned queue_hist_bucket(uint64_t ns)
{
        if (ns <= 1ull << QUEUE_HIST_MIN_SHIFT)
                return 0;
        unsigned b = 64u - (unsigned)__builtin_clzll(ns - 1) - QUEUE_HIST_MIN_SHIFT;
        return b < QUEUE_HIST_BUCKETS - 1 ? b : QUEUE_HIST_BUCKETS - 1;
}

/* n durations of d ns. */
static inline void hist_add(struct queue_hist *h, uint64_t d, uint64_t n)
{
        counter_add(&h->bucket[queue_hist_bucket(d)], n);
        counter_add(&h->sum_ns, d * n);
}

/* n messages published in a run that started at publish_ns, read in one started at run_ns
 * (earlier when a run reads what a producer on another worker published meanwhile: 0). */
static inline void queue_hist_add(struct queue_hist *h, uint64_t run_ns, uint64_t publish_ns,
                                  uint64_t n)
{
        hist_add(h, run_ns > publish_ns ? run_ns - publish_ns : 0, n);
}

static inline void component_set_state(struct component *c, enum component_state s)
{
        atomic_store_explicit(&c->run_state, s, memory_order_relaxed);
}

#define COMPONENT_REMOVED 1
#define COMPONENT_CHANGED 2
#define COMPONENT_NEW_CODE 3

/* Journal fields naming a component (log.h). */
#define LOG_FIELDS_OF(c)                                                                           \
        ((struct log_fields){.component = (c)->name, .cls = (c)->cls->name, .worker = (c)->worker})

struct topology {
        struct component **comps; /* by config component index; each allocated alone */
        int n_comps;
        int n_alloc;           /* entries of comps allocated (n_comps once built) */
        struct channel *chans; /* by config link index */
        int n_chans;
        int *link_from, *link_to;     /* by link: index of the component at each end */
        uint32_t *link_out, *link_in; /* by link: its port at each end (comps[link_from]'s
                                       * out[link_out], comps[link_to]'s in[link_in]) */
        struct port_type *link_type;  /* by link: the message type it carries */
        const struct config *cfg;
};

/* An end of link `link` (`from`: its producer's, else its consumer's) as the daemon names it:
 * "comp.port", and for a fan's port (a scatter's outputs, a gather's inputs) with the index
 * it has, "comp.port[k]", also where the configuration let the daemon pick it, so that two
 * links between the same fans are told apart. */
void topology_link_end(const struct topology *t, int link, bool from, char *buf, size_t len);
/* The same end as the configuration wrote it ("comp.port", or "comp.port[k]" if it gave k). */
void topology_link_end_written(const struct topology *t, int link, bool from, char *buf,
                               size_t len);
/* Which of its class's declared ports (cls->inputs or outputs) c's port k is: a fan's ports
 * are all its one declared port; otherwise the same index. */
uint32_t topology_declared_port(const struct component *c, bool output, uint32_t k);

/* Builds the components and channels. Returns 0, -EINVAL with every problem in *d, or
 * -ENOMEM. Nothing is initialised or started: that is the workers' job. */
int topology_build(struct topology *ret, const struct config *cfg,
                   const struct plugin_registry *reg, struct diag *d);
void topology_free(struct topology *t);
/* Closes a component's channel ends (those open), saving where each reader stopped. */
void topology_component_close(struct component *c);
/* Closes a component's channel ends and frees it (it must not run). */
void topology_component_free(struct component *c);

#endif
