/* Workers: the fixed set of threads, each pinned to one CPU, that run the components placed
 * on them according to their scheduling rules; and the host function table plugins call.
 *
 * Wake-up protocol (no lost wake-ups, no system call while the consumer's worker is busy):
 * a worker about to sleep stores sleeping = 1 (seq_cst), then loads its inbox (seq_cst) and
 * blocks in epoll_wait only if the inbox is empty. Whoever makes one of its components ready
 * from elsewhere pushes it on the inbox with a seq_cst CAS, then loads the sleeping flag
 * (seq_cst); only if it is 1 does it exchange it with 0 and write the eventfd. In the single
 * total order of seq_cst operations one of the two loads comes last and sees the other side's
 * store, so a push is never left behind by a sleeper. Periodic deadlines arm a timerfd.
 * A worker that spins watches the inputs that other workers feed of its recently fed components
 * itself (the poll set, worker.c): their producers then only publish, with no exchange and no push;
 * the set is withdrawn before sleeping, with the same store-fence-load pairing. */
#ifndef ACTORD_WORKER_H
#define ACTORD_WORKER_H

#include <pthread.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "topology.h"

struct runtime;

/* Inputs a spinning worker watches itself at most (the poll set, worker.c). */
#define WORKER_POLL_MAX 64

struct poll_entry {
        const _Atomic uint64_t *stamp; /* channel_rx_watch() of rx, as of the last look */
        uint64_t from;
        struct channel_rx *rx;
        struct component *c;
};

struct worker {
        int index;
        int cpu;
        enum idle_policy idle;
        uint64_t spin_ns;
        pthread_t thread;
        bool thread_started;
        int epfd;
        int wakefd;               /* eventfd: wake-ups from other threads */
        int timerfd;              /* next periodic deadline while asleep */
        int n_fds;                /* fds registered by on_event components */
        struct component **comps; /* all placed here, for init and fini */
        int n_comps;

        /* Scheduler state, owned by the worker thread (see worker.c). */
        struct component **loops;
        int n_loops;
        struct component **heap; /* periodic components, by next deadline */
        int n_heap;
        struct component *ready_head, *ready_tail;
        /* The poll set (worker.c): inputs fed from other workers that this worker watches
         * itself while it spins, with their components. */
        struct poll_entry poll[WORKER_POLL_MAX];
        int n_poll;
        unsigned iter;
        struct runtime *rt;
        int init_failed;

        /* Written by other threads (wakers, the main thread): a line pair of its own, so that
         * a waker's CAS does not pull the worker's other state along. */
        /* Components made ready by other threads: a lock-free stack, drained each iteration. */
        alignas(128) struct component *_Atomic inbox;
        _Atomic int sleeping;
        _Atomic unsigned ctl; /* WORKER_STOP, WORKER_PAUSE: requests from the main thread */

        /* Written by the worker, read by the main thread now and then: its own lines too. */
        /* What the worker runs now, for stall detection by the main thread: set before each
         * run (relaxed; read as diagnostics only), busy_since_ns 0 between runs. */
        alignas(128) _Atomic(struct component *) running;
        _Atomic uint64_t busy_since_ns;

        /* Statistics, written by the worker, read by anyone. */
        _Atomic uint64_t runs;
        _Atomic uint64_t sleeps;
        _Atomic uint64_t sleep_ns;     /* time asleep in epoll_wait, nothing to run, in
                                        * the sleeps that ended */
        _Atomic uint64_t asleep_since; /* the current sleep's start; 0 while awake */
        uint64_t sleep_shown_ns;       /* the main thread's: the most it reported */

        /* Reload work, handed over by the main thread while the worker is paused (under
         * runtime.lock): components to stop, components to start. */
        struct component **leaving;
        int n_leaving;
        struct component **arriving;
        int n_arriving;
        bool paused; /* acknowledged the current pause (runtime.lock) */
};

#define WORKER_STOP 1u
#define WORKER_PAUSE 2u

struct runtime {
        struct topology *topo;
        struct worker *workers;
        int n_workers;
        pthread_mutex_t lock;
        pthread_cond_t cond;
        int n_reported; /* workers that finished init */
        int n_failed;
        int go; /* 1: run, -1: abort */
        /* Reload: the phase the main thread asks for, and how many workers finished it. */
        int phase;
        int n_ack;
        /* An eventfd that a worker writes when a component with on_failure = "exit" is given
         * up on (component.given_up); the main thread polls it. */
        int fail_fd;
};

/* Creates one thread per configured worker, pinned to its CPU; each runs init of its
 * components. Returns 0 once every component initialised and runs, or a negative errno after
 * logging which component failed and why (everything started is stopped and fini'd again). */
int runtime_start(struct runtime *rt, struct topology *t, const struct config *cfg);
/* Stops every worker (each calls fini for its components) and joins them. With a timeout
 * (ns; 0: none), a worker that has not stopped by then is stuck inside a component: it is
 * logged and left running, and -ETIMEDOUT returned; the caller must then exit without freeing
 * anything the workers use (topology, plugins). */
int runtime_stop(struct runtime *rt, uint64_t timeout_ns);

/* Applies a reload: pauses every worker between two runs (none is preempted: this waits for
 * the runs in progress, at most pause_timeout_ns), computes the plan (reload.h) into *plan,
 * stops on their own workers the components that leave (fini), hands the kept components and
 * channels over to `next`, starts the arriving components on their workers (init; one that
 * fails is logged and stays stopped, the others run), and resumes. Then `running` holds the
 * new topology and `next` what is left of the old one, for topology_free once the caller no
 * longer needs it. Returns 0; -ETIMEDOUT when a worker did not pause in time (nothing changed;
 * `busy` names it); -ENOMEM (nothing changed). *n_failed: arriving components whose init
 * failed. */
struct reload_plan;
int runtime_reload(struct runtime *rt, struct topology *running, struct topology *next,
                   struct reload_plan *plan, uint64_t pause_timeout_ns, int *n_failed, char *busy,
                   size_t busy_len);

/* Logs where a component runs (placement, rule), with its journal fields. */
void component_log_placement(const struct component *c);

/* The table plugins reach through ctx->host. */
extern const struct actord_host worker_host;

#endif
