/* Pinned worker threads, their scheduler, and the host function table.
 *
 * A worker never scans its components. Each rule has its own structure:
 *   loop        an array, run on every iteration;
 *   periodic    a binary heap by deadline; the worker reads the clock once per iteration and
 *               runs what is due;
 *   on_message  the ready FIFO: a run that published on an output marks the consumer ready,
 *   on_event    as do epoll (a watched fd) and actord_notify().
 * Marking ready: exchange the component's `queued` flag to true; whoever turned it from false
 * appends it, to the FIFO directly when on the component's own worker, else to that worker's
 * inbox (a lock-free stack drained once per iteration), then wakes that worker only if it
 * sleeps (worker.h). So an idle component costs nothing, and a worker's cost per iteration
 * follows what is ready, not what it hosts. */
#define _GNU_SOURCE
#include "worker.h"

#include <errno.h>
#include <stdalign.h>
#include <sched.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "clock.h"
#include "reload.h"

#define TAG_WAKE 0u
#define TAG_TIMER 1u

static inline struct component *comp_of(struct actord_ctx *ctx)
{
        /* ctx is the first member of struct component. */
        return (struct component *)(void *)ctx;
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#elif defined(__aarch64__)
        __asm__ volatile("yield");
#endif
}

/* Wakes worker w if it sleeps. Callers have made their stores visible with a seq_cst fence
 * (see worker.h); the exchange makes only one waker pay for the system call. */
static void worker_wake(struct worker *w)
{
        if (atomic_exchange_explicit(&w->sleeping, 0, memory_order_seq_cst)) {
                uint64_t one = 1;
                ssize_t r = write(w->wakefd, &one, sizeof(one));
                (void)r; /* EAGAIN: the counter is already non-zero, the worker wakes anyway */
        }
}

/* ---- host table ---- */

static void *host_claim(struct actord_ctx *ctx, uint32_t out)
{
        struct component *c = comp_of(ctx);
        if (__builtin_expect(out >= c->n_out, 0))
                return NULL;
        void *p = channel_claim(&c->out[out]);
        if (__builtin_expect(!p, 0))
                c->refused = true;
        return p;
}

static void host_publish(struct actord_ctx *ctx, uint32_t out)
{
        struct component *c = comp_of(ctx);
        if (__builtin_expect(out < c->n_out, 1))
                channel_publish(&c->out[out]);
}

/* Which inputs this run read to the end (run_component): whether the last read of `in` found
 * something. */
static inline void note_read(struct component *c, uint32_t in, bool got)
{
        uint64_t bit = in < 64 ? 1ull << in : 0;
        c->drained = got ? c->drained & ~bit : c->drained | bit;
}

static const void *host_next(struct actord_ctx *ctx, uint32_t in, struct actord_msg_info *info)
{
        struct component *c = comp_of(ctx);
        if (__builtin_expect(in >= c->n_in, 0))
                return NULL;
        if (!info)
                info = &c->info_unused; /* not on the stack: no stack protector here */
        const void *m = channel_next(&c->in[in], &info->seq, &info->lost_before, &info->publish_ns);
        note_read(c, in, m != NULL);
        if (m)
                queue_hist_add(&c->in_wait[in], c->run_ns, info->publish_ns, 1);
        return m;
}

static void *host_claim_n(struct actord_ctx *ctx, uint32_t out, uint32_t n, uint32_t *ret_count,
                          size_t *ret_stride)
{
        struct component *c = comp_of(ctx);
        if (__builtin_expect(out >= c->n_out, 0)) {
                *ret_count = 0;
                *ret_stride = 0;
                return NULL;
        }
        struct channel_tx *tx = &c->out[out];
        *ret_stride = tx->payload_stride;
        void *p = channel_claim_n(tx, n ? n : 1, ret_count);
        if (__builtin_expect(!p, 0))
                c->refused = true;
        return p;
}

static uint32_t host_next_n(struct actord_ctx *ctx, uint32_t in, uint32_t max,
                            struct actord_burst *ret)
{
        struct component *c = comp_of(ctx);
        /* A caller's struct of another minor version: only the fields of ABI 1.1 are
         * written, and only if it has them all. */
        if (__builtin_expect(in >= c->n_in || ret->struct_size < sizeof(*ret), 0)) {
                if (ret->struct_size >= offsetof(struct actord_burst, first))
                        ret->count = 0;
                return 0;
        }
        struct channel_burst b;
        uint32_t n = channel_next_burst(&c->in[in], max ? max : 1, &b);
        ret->count = n;
        ret->first = b.payload;
        ret->stride = b.payload_stride;
        ret->seq = b.seq;
        ret->lost_before = b.lost_before;
        ret->publish_ns = n ? channel_burst_publish_ns(&b, 0) : 0;
        ret->host_ref = b.hdr;
        ret->host_stride = b.hdr_stride;
        note_read(c, in, n != 0);
        /* A run's messages mostly come from one run of the producer: one add per publish
         * time, not per message. */
        for (uint32_t i = 0, j; i < n; i = j) {
                uint64_t ns = channel_burst_publish_ns(&b, i);
                for (j = i + 1; j < n && channel_burst_publish_ns(&b, j) == ns; j++)
                        ;
                queue_hist_add(&c->in_wait[in], c->run_ns, ns, j - i);
        }
        return n;
}

static uint64_t host_burst_publish_ns(struct actord_ctx *ctx, const struct actord_burst *burst,
                                      uint32_t i)
{
        (void)ctx;
        if (__builtin_expect(i >= burst->count || !burst->host_ref, 0))
                return 0;
        return channel_burst_publish_ns(
            &(struct channel_burst){.hdr = burst->host_ref, .hdr_stride = burst->host_stride}, i);
}

static uint32_t host_port_count(struct actord_ctx *ctx, bool output)
{
        struct component *c = comp_of(ctx);
        return output ? c->n_out : c->n_in;
}

static uint32_t host_port_size(struct actord_ctx *ctx, bool output, uint32_t port)
{
        struct component *c = comp_of(ctx);
        if (output)
                return port < c->n_out ? c->out_type[port].size : 0;
        return port < c->n_in ? c->in_type[port].size : 0;
}

static const char *host_port_type(struct actord_ctx *ctx, bool output, uint32_t port)
{
        struct component *c = comp_of(ctx);
        if (output)
                return port < c->n_out ? c->out_type[port].name : NULL;
        return port < c->n_in ? c->in_type[port].name : NULL;
}

static const config_setting_t *setting(struct actord_ctx *ctx, const char *name)
{
        const config_setting_t *s = comp_of(ctx)->cc->settings;
        return s ? config_setting_get_member(s, name) : NULL;
}

static int host_setting_int(struct actord_ctx *ctx, const char *name, int64_t *ret)
{
        const config_setting_t *s = setting(ctx, name);
        if (!s)
                return -ENOENT;
        int t = config_setting_type(s);
        if (t != CONFIG_TYPE_INT && t != CONFIG_TYPE_INT64)
                return -EINVAL;
        *ret = config_setting_get_int64(s);
        return 0;
}

static int host_setting_float(struct actord_ctx *ctx, const char *name, double *ret)
{
        const config_setting_t *s = setting(ctx, name);
        if (!s)
                return -ENOENT;
        int t = config_setting_type(s);
        if (t == CONFIG_TYPE_FLOAT)
                *ret = config_setting_get_float(s);
        else if (t == CONFIG_TYPE_INT || t == CONFIG_TYPE_INT64)
                *ret = (double)config_setting_get_int64(s);
        else
                return -EINVAL;
        return 0;
}

static int host_setting_bool(struct actord_ctx *ctx, const char *name, bool *ret)
{
        const config_setting_t *s = setting(ctx, name);
        if (!s)
                return -ENOENT;
        if (config_setting_type(s) != CONFIG_TYPE_BOOL)
                return -EINVAL;
        *ret = config_setting_get_bool(s);
        return 0;
}

static int host_setting_string(struct actord_ctx *ctx, const char *name, const char **ret)
{
        const config_setting_t *s = setting(ctx, name);
        if (!s)
                return -ENOENT;
        if (config_setting_type(s) != CONFIG_TYPE_STRING)
                return -EINVAL;
        *ret = config_setting_get_string(s);
        return 0;
}

__attribute__((format(printf, 3, 4))) static void host_log(struct actord_ctx *ctx, int priority,
                                                           const char *fmt, ...)
{
        struct component *c = comp_of(ctx);
        char msg[2048];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        log_fields(priority, &LOG_FIELDS_OF(c), "%s: %s", c->name, msg);
}

static uint64_t host_now_ns(struct actord_ctx *ctx)
{
        (void)ctx;
        return mono_ns();
}

static const char *host_name(struct actord_ctx *ctx)
{
        return comp_of(ctx)->name;
}

static int host_watch_fd(struct actord_ctx *ctx, int fd, uint32_t events)
{
        struct component *c = comp_of(ctx);
        if (c->rule != ACTORD_RULE_ON_EVENT)
                return -EINVAL;
        struct watched_fd *fds = realloc(c->fds, (size_t)(c->n_fds + 1) * sizeof(*fds));
        if (!fds)
                return -ENOMEM;
        c->fds = fds;
        struct epoll_event ev = {.events = events, .data.ptr = c};
        if (epoll_ctl(c->w->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
                return -errno;
        c->fds[c->n_fds++] = (struct watched_fd){.fd = fd, .events = events};
        c->w->n_fds++;
        return 0;
}

static struct actord_notifier *host_notifier(struct actord_ctx *ctx)
{
        /* On_event and on_message components (ABI 1.3) that ask take notifies: they are no
         * longer marked by their own worker alone, which local_marks relies on (an on_event one
         * never is). This is their worker thread, the only one that reads local_marks while
         * they run; the others cannot mark them before the notifier is handed out. Periodic
         * and loop components run anyway. */
        struct component *c = comp_of(ctx);
        if (c->rule != ACTORD_RULE_ON_EVENT && c->rule != ACTORD_RULE_ON_MESSAGE)
                return NULL;
        atomic_store_explicit(&c->takes_notifies, true, memory_order_relaxed);
        c->local_marks = false;
        return &c->notifier->pub;
}

static void mark_ready_shared(struct worker *self, struct component *c);

static void host_notify(struct actord_notifier *n)
{
        struct notifier_slot *slot = (struct notifier_slot *)(void *)n;
        /* seq_cst, with the store of `target` in notifier_slot_empty(): either this load sees
         * NULL, or the stopping worker sees busy and waits until the mark is done. */
        atomic_fetch_add_explicit(&slot->busy, 1, memory_order_seq_cst);
        struct component *c = atomic_load_explicit(&slot->target, memory_order_seq_cst);
        /* Through the inbox even from c's own worker: the caller may be any thread (a
         * component that takes notifies is never local_marks). NULL: between its fini and its
         * next init, or gone; a notify then does nothing, as it does to a component that does
         * not take notifies (a stray one, from the thread of the slot's last component). */
        if (c && atomic_load_explicit(&c->takes_notifies, memory_order_relaxed)) {
                /* Relaxed: mark_ready's release publishes it to the run it queues (an on_message
                 * one runs even with nothing to read). */
                atomic_store_explicit(&c->woken, true, memory_order_relaxed);
                mark_ready_shared(NULL, c);
        }
        /* Release: the mark is done with c before the stopping worker may free it. */
        atomic_fetch_sub_explicit(&slot->busy, 1, memory_order_release);
}

/* Before c starts: its slot's host table. A reused slot has it already, and a stray thread of
 * the slot's last component may be reading it (host_notify's caller): no store then. */
static void notifier_attach(struct component *c)
{
        if (c->notifier->pub.host != &worker_host)
                c->notifier->pub.host = &worker_host;
}

__attribute__((format(printf, 2, 3))) static void host_set_error(struct actord_ctx *ctx,
                                                                 const char *fmt, ...)
{
        struct component *c = comp_of(ctx);
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->error, sizeof(c->error), fmt, ap);
        va_end(ap);
}

static int host_counter(struct actord_ctx *ctx, const char *name, const char *help)
{
        struct component *c = comp_of(ctx);
        size_t len = name ? strlen(name) : 0;
        if (len == 0 || len >= sizeof(c->counters[0].name) || name[0] < 'a' || name[0] > 'z')
                return -EINVAL;
        for (size_t i = 1; i < len; i++)
                if (!((name[i] >= 'a' && name[i] <= 'z') || (name[i] >= '0' && name[i] <= '9') ||
                      name[i] == '_'))
                        return -EINVAL;
        struct plugin_counter *all = atomic_load_explicit(&c->counters, memory_order_relaxed);
        if (!all) {
                all = calloc(ACTORD_COUNTERS_MAX, sizeof(*all));
                if (!all)
                        return -ENOMEM;
                /* Release, pairs with the control socket's acquire load of the array. */
                atomic_store_explicit(&c->counters, all, memory_order_release);
        }
        uint32_t n = atomic_load_explicit(&c->n_counters, memory_order_relaxed);
        for (uint32_t i = 0; i < n; i++)
                if (!strcmp(all[i].name, name))
                        return (int)i;
        if (n == ACTORD_COUNTERS_MAX)
                return -ENOSPC;
        struct plugin_counter *pc = &all[n];
        memcpy(pc->name, name, len + 1);
        /* One line: a newline would end the metric's HELP early. */
        pc->help = strndup(help ? help : "", strcspn(help ? help : "", "\n"));
        if (!pc->help)
                return -ENOMEM;
        atomic_store_explicit(&pc->value, 0, memory_order_relaxed);
        /* Release, pairs with the control socket's acquire load: the entry is complete. */
        atomic_store_explicit(&c->n_counters, n + 1, memory_order_release);
        return (int)n;
}

static void host_count(struct actord_ctx *ctx, int counter, uint64_t n)
{
        struct component *c = comp_of(ctx);
        if (counter >= 0 &&
            (uint32_t)counter < atomic_load_explicit(&c->n_counters, memory_order_relaxed))
                counter_add(
                    &atomic_load_explicit(&c->counters, memory_order_relaxed)[counter].value, n);
}

const struct actord_host worker_host = {
    .abi_major = ACTORD_ABI_MAJOR,
    .abi_minor = ACTORD_ABI_MINOR,
    .struct_size = sizeof(struct actord_host),
    .claim = host_claim,
    .publish = host_publish,
    .next = host_next,
    .port_count = host_port_count,
    .port_size = host_port_size,
    .port_type = host_port_type,
    .setting_int = host_setting_int,
    .setting_float = host_setting_float,
    .setting_bool = host_setting_bool,
    .setting_string = host_setting_string,
    .log = host_log,
    .now_ns = host_now_ns,
    .name = host_name,
    .watch_fd = host_watch_fd,
    .notifier = host_notifier,
    .notify = host_notify,
    .set_error = host_set_error,
    .claim_n = host_claim_n,
    .next_n = host_next_n,
    .burst_publish_ns = host_burst_publish_ns,
    .counter = host_counter,
    .count = host_count,
};

/* ---- the scheduler ---- */

static void ready_append(struct worker *w, struct component *c)
{
        c->ready_next = NULL;
        if (w->ready_tail)
                w->ready_tail->ready_next = c;
        else
                w->ready_head = c;
        w->ready_tail = c;
}

static void mark_ready_shared(struct worker *self, struct component *c);

/* Makes c run soon. self: the worker of the calling thread, or NULL for any thread. */
static inline void mark_ready(struct worker *self, struct component *c)
{
        if (c->local_marks) {
                /* No other thread marks it: no atomic read-modify-write needed. */
                if (!atomic_load_explicit(&c->queued, memory_order_relaxed)) {
                        atomic_store_explicit(&c->queued, true, memory_order_relaxed);
                        /* Its inputs hold what the mark announces until it runs: only this
                         * thread runs it, from this list (run_ready()). */
                        c->mark_sure = true;
                        ready_append(self, c);
                }
                return;
        }
        mark_ready_shared(self, c);
}

/* mark_ready() of a component that other threads may mark too. */
static __attribute__((noinline)) void mark_ready_shared(struct worker *self, struct component *c)
{
        /* acq_rel: the release half orders the caller's publications (or notify) before the
         * flag; the worker's exchange that clears it acquires them, so a run that starts after
         * the clear sees them. If the flag was already set, the component is queued and has
         * not cleared it yet: its coming run will see them. */
        if (atomic_exchange_explicit(&c->queued, true, memory_order_acq_rel))
                return;
        struct worker *w = c->w;
        if (w == self) {
                ready_append(w, c);
                return;
        }
        struct component *head = atomic_load_explicit(&w->inbox, memory_order_relaxed);
        do
                c->inbox_next = head;
        /* seq_cst: this push and the sleeper's store of its flag are the two halves of the
         * wake-up protocol (worker.h); release also publishes inbox_next to the drainer. */
        while (!atomic_compare_exchange_weak_explicit(&w->inbox, &head, c, memory_order_seq_cst,
                                                      memory_order_relaxed));
        if (atomic_load_explicit(&w->sleeping, memory_order_seq_cst))
                worker_wake(w);
}

static void poll_add(struct worker *w, struct component *c);

/* Moves the inbox into the ready FIFO, oldest first. */
static void inbox_drain(struct worker *w)
{
        if (!atomic_load_explicit(&w->inbox, memory_order_relaxed))
                return;
        /* Acquire: pairs with the pushers' CAS; their inbox_next writes are visible. */
        struct component *c = atomic_exchange_explicit(&w->inbox, NULL, memory_order_acquire);
        struct component *rev = NULL;
        while (c) {
                struct component *next = c->inbox_next;
                c->inbox_next = rev;
                rev = c;
                c = next;
        }
        for (; rev; rev = rev->inbox_next) {
                ready_append(w, rev);
                poll_add(w, rev);
        }
}

static bool heap_less(const struct component *a, const struct component *b)
{
        return a->next_deadline_ns < b->next_deadline_ns;
}

static void heap_set(struct worker *w, int i, struct component *c)
{
        w->heap[i] = c;
        c->heap_index = i;
}

static void heap_push(struct worker *w, struct component *c)
{
        int i = w->n_heap++;
        while (i > 0 && heap_less(c, w->heap[(i - 1) / 2])) {
                heap_set(w, i, w->heap[(i - 1) / 2]);
                i = (i - 1) / 2;
        }
        heap_set(w, i, c);
}

static struct component *heap_pop(struct worker *w)
{
        struct component *top = w->heap[0];
        struct component *last = w->heap[--w->n_heap];
        int i = 0, n = w->n_heap;
        for (;;) {
                int l = 2 * i + 1, r = l + 1, m = i;
                const struct component *best = last;
                if (l < n && heap_less(w->heap[l], best))
                        m = l, best = w->heap[l];
                if (r < n && heap_less(w->heap[r], best))
                        m = r;
                if (m == i)
                        break;
                heap_set(w, i, w->heap[m]);
                i = m;
        }
        if (n > 0)
                heap_set(w, i, last);
        top->heap_index = -1;
        return top;
}

static bool inputs_readable(const struct component *c)
{
        for (uint32_t k = 0; k < c->n_in; k++)
                if (channel_readable(&c->in[k]))
                        return true;
        return false;
}

/* ---- the poll set ----
 * A cross-worker hop through the inbox moves three lines between the CPUs before the message
 * itself (the consumer's `queued` flag, the inbox, then the flag again). A worker that spins
 * instead watches, itself, the inputs that other workers feed of the components last fed
 * through its inbox, up to WORKER_POLL_MAX inputs: while a component's `polled` is set, its
 * producers elsewhere only publish, and the spinning worker finds the message at its next
 * look at the slot, which is the one line a hop must move. The inputs are kept in a dense
 * array, each with the stamp word its next message changes (channel_rx_watch()), so a look is
 * two loads and a compare and a set of dozens costs tens of nanoseconds per iteration. A component
 * that had nothing for POLL_STALE_ITERS iterations makes room for a newer one. Only workers that
 * spin or spin for a while (adaptive) keep a set; before sleeping they withdraw it.
 *
 * No lost wake-up: a producer stores its message, then a seq_cst fence, then loads `polled`;
 * the worker clears `polled`, then a seq_cst fence, then looks at the inputs. Whichever
 * fence comes second in their total order makes its side see the other's store: either the
 * producer sees the flag cleared and marks the component ready as usual, or the worker sees
 * the message. */
#define POLL_STALE_ITERS 4096u

/* Stops watching c; if a message slipped in meanwhile, c is made ready. */
static void poll_release(struct worker *w, struct component *c)
{
        atomic_store_explicit(&c->polled, false, memory_order_relaxed);
        atomic_thread_fence(memory_order_seq_cst);
        if (!c->stopped && inputs_readable(c))
                mark_ready(w, c);
}

/* Takes c's inputs out of the set (the last entries move into their places). */
static void poll_drop(struct worker *w, struct component *c)
{
        atomic_store_explicit(&c->polled, false, memory_order_relaxed);
        for (int i = w->n_poll - 1; i >= 0; i--)
                if (w->poll[i].c == c)
                        w->poll[i] = w->poll[--w->n_poll];
}

/* The inputs of c that other workers feed (the others are marked by their producers). */
static uint32_t cross_inputs(const struct component *c)
{
        uint32_t n = 0;
        for (uint32_t k = 0; k < c->n_in; k++)
                n += !c->in[k].same_thread;
        return n;
}

/* c was made ready from another worker: watch its inputs from other workers, if there is
 * room (made by dropping components that had nothing for a while). */
static void poll_add(struct worker *w, struct component *c)
{
        if (w->idle == IDLE_SLEEP || c->rule != ACTORD_RULE_ON_MESSAGE || c->stopped ||
            atomic_load_explicit(&c->polled, memory_order_relaxed))
                return;
        uint32_t need = cross_inputs(c);
        if (need == 0 || need > WORKER_POLL_MAX)
                return;
        while (w->n_poll + need > WORKER_POLL_MAX) {
                struct component *stalest = w->poll[0].c;
                for (int i = 1; i < w->n_poll; i++)
                        if (w->iter - w->poll[i].c->poll_hit > w->iter - stalest->poll_hit)
                                stalest = w->poll[i].c;
                if (w->iter - stalest->poll_hit < POLL_STALE_ITERS)
                        return;
                poll_drop(w, stalest);
                poll_release(w, stalest);
        }
        for (uint32_t k = 0; k < c->n_in; k++) {
                if (c->in[k].same_thread)
                        continue;
                struct poll_entry *e = &w->poll[w->n_poll++];
                *e = (struct poll_entry){.rx = &c->in[k], .c = c};
                e->stamp = channel_rx_watch(e->rx, &e->from);
        }
        c->poll_hit = w->iter;
        /* Relaxed: a producer that does not see it yet marks c ready as before. */
        atomic_store_explicit(&c->polled, true, memory_order_relaxed);
}

static void run_component(struct worker *w, struct component *c, uint64_t now);

/* Each iteration: the watched components with a message run at once, without going through
 * the ready list (no exchange of `queued`, no append). One that a producer marked ready
 * meanwhile (it had not seen `polled` yet) waits in the list as usual and runs there, if a
 * message is left then. Returns how many ran. */
static int poll_inputs(struct worker *w, uint64_t now)
{
        int ran = 0;
        for (int i = 0; i < w->n_poll; i++) {
                struct poll_entry *e = &w->poll[i];
                /* Relaxed: a cheap look; channel_readable() and the read itself acquire. */
                if (__builtin_expect(atomic_load_explicit(e->stamp, memory_order_relaxed) < e->from,
                                     1))
                        continue;
                /* The producer wrote, or the consumer read on since the entry was made (it
                 * also runs from the ready list): then the entry moves on and looks again. */
                uint64_t from;
                const _Atomic uint64_t *stamp = channel_rx_watch(e->rx, &from);
                if (stamp != e->stamp || from != e->from) {
                        e->stamp = stamp;
                        e->from = from;
                        i--;
                        continue;
                }
                if (!channel_readable(e->rx))
                        continue; /* overwrite: being written */
                struct component *c = e->c;
                if (atomic_load_explicit(&c->queued, memory_order_relaxed) || c->stopped ||
                    c->room_wait)
                        continue;
                c->poll_hit = w->iter;
                run_component(w, c, now);
                ran++;
                if (c->stopped)
                        i = -1; /* it left the set, which moved entries: look again */
        }
        return ran;
}

/* Before sleeping: producers must mark the watched components ready again. Returns true if
 * one of them has a message already (then the worker must not sleep). */
static bool poll_withdraw(struct worker *w)
{
        for (int i = 0; i < w->n_poll; i++)
                atomic_store_explicit(&w->poll[i].c->polled, false, memory_order_relaxed);
        atomic_thread_fence(memory_order_seq_cst);
        bool found = false;
        for (int i = 0; i < w->n_poll; i++)
                if (!w->poll[i].c->stopped && !w->poll[i].c->room_wait &&
                    channel_readable(w->poll[i].rx)) {
                        mark_ready(w, w->poll[i].c);
                        found = true;
                }
        return found;
}

static void poll_resume(struct worker *w)
{
        for (int i = 0; i < w->n_poll; i++)
                atomic_store_explicit(&w->poll[i].c->polled, true, memory_order_relaxed);
}

static void component_stop(struct component *c)
{
        poll_drop(c->w, c);
        /* Its fds leave the worker's epoll set first: fini may close them, and the number
         * could be reused by anything. */
        for (int i = 0; i < c->n_fds; i++)
                epoll_ctl(c->w->epfd, EPOLL_CTL_DEL, c->fds[i].fd, NULL);
        c->w->n_fds -= c->n_fds;
        c->n_fds = 0;
        c->fds_muted = false;
        if (c->initialized && c->cls->fini)
                c->cls->fini(&c->ctx, c->state);
        /* After fini: no notify reaches c any more, and none is still using it. */
        notifier_slot_empty(c->notifier);
        c->initialized = false;
        c->stopped = true;
        c->state = NULL;
}

/* Calls c's init; on success c is initialized. Returns init's result. */
static int component_init(struct component *c)
{
        c->state = NULL;
        c->error[0] = 0;
        c->room_wait = false;
        /* Release: a thread that init starts, and that notifies at once, finds c whole. */
        atomic_store_explicit(&c->notifier->target, c, memory_order_release);
        int r = c->cls->init ? c->cls->init(&c->ctx, &c->state) : 0;
        c->initialized = r >= 0;
        if (r >= 0) {
                c->runs_at_init = counter_get(&c->runs);
                component_set_state(c, COMPONENT_RUNNING);
        }
        return r;
}

/* c's run (or, restarting, its init) ended it, by an error (`why`) or by DONE: stops it and
 * applies its restart policy (restart.h). Waiting for a restart, it sits in the timer heap
 * stopped: producers and notifies find it stopped and leave it, its inputs keep their
 * messages under their channels' policies. */
static void component_ended(struct worker *w, struct component *c, bool error, const char *why)
{
        const struct config_restart *p = &c->cc->restart;
        /* What ended it is said first (fini may set an error of its own). */
        char head[sizeof(c->error) + 160];
        uint64_t runs = counter_get(&c->runs) - c->runs_at_init; /* in this life */
        if (error)
                snprintf(head, sizeof(head), "component '%s' (%s) failed: %s", c->name,
                         c->cls->name, why);
        else
                snprintf(head, sizeof(head), "component '%s' finished (DONE) after %llu run%s",
                         c->name, (unsigned long long)runs, runs == 1 ? "" : "s");
        uint64_t now = mono_ns(), delay = 0;
        enum restart_action a = restart_decide(p, &c->restart, error, now, &delay);
        component_stop(c);
        c->failed = error;
        const struct log_fields f = LOG_FIELDS_OF(c);
        switch (a) {
        case RESTART_ACTION_STOP:
                component_set_state(c, error ? COMPONENT_FAILED : COMPONENT_FINISHED);
                log_fields(LOG_INFO, &f, "%s; stopping it", head);
                return;
        case RESTART_ACTION_RESTART:
                component_set_state(c, COMPONENT_RESTARTING);
                atomic_store_explicit(&c->restarts, c->restart.total, memory_order_relaxed);
                log_fields(error ? LOG_ERR : LOG_INFO, &f,
                           "%s;%s restarting it in %llu ms (restart %u of at most %u within %u s)",
                           head, error ? "" : " restart = \"permanent\":",
                           (unsigned long long)(delay / 1000000u), c->restart.in_window,
                           p->max_restarts, p->window_ms / 1000);
                c->restarting = true;
                c->next_deadline_ns = now + delay;
                heap_push(w, c);
                return;
        case RESTART_ACTION_GIVE_UP:
                break;
        }
        const char *then = p->exit_on_failure ? "; on_failure = \"exit\": the daemon stops" : "";
        if (p->mode == RESTART_NEVER)
                log_fields(LOG_ERR, &f, "%s; stopping it (restart = \"never\")%s", head, then);
        else
                log_fields(LOG_ERR, &f,
                           "%s; giving up on it: %u restarts within %u s already, the most "
                           "max_restarts allows%s",
                           head, c->restart.in_window, p->window_ms / 1000, then);
        c->failed = true;
        component_set_state(c, COMPONENT_FAILED);
        atomic_store_explicit(&c->given_up, true, memory_order_relaxed);
        if (p->exit_on_failure) {
                /* The eventfd's write orders given_up before the main thread's look. */
                uint64_t one = 1;
                ssize_t n = write(w->rt->fail_fd, &one, sizeof(one));
                (void)n;
        }
}

/* Calls c's init; true if it succeeded, else c ended by that failure (component_ended: its
 * restart policy applies, as to a failed run). */
static bool component_init_or_end(struct worker *w, struct component *c)
{
        int r = component_init(c);
        if (r >= 0)
                return true;
        char why[sizeof(c->error) + 32];
        snprintf(why, sizeof(why), "init failed: %s", c->error[0] ? c->error : strerror(-r));
        component_ended(w, c, true, why);
        return false;
}

/* Starts c again after its restart delay: init, then it is scheduled by its rule as a new
 * component is (an on_event one runs once, for what it missed while stopped). */
static void component_restart(struct worker *w, struct component *c, uint64_t now)
{
        c->restarting = false;
        c->stopped = false;
        /* A blocking init stalls the worker as a blocking run does: the supervisor sees it. */
        atomic_store_explicit(&w->running, c, memory_order_relaxed);
        atomic_store_explicit(&w->busy_since_ns, now, memory_order_relaxed);
        bool up = component_init_or_end(w, c);
        atomic_store_explicit(&w->busy_since_ns, 0, memory_order_relaxed);
        if (!up)
                return;
        c->failed = false;
        log_fields(LOG_INFO, &LOG_FIELDS_OF(c),
                   "component '%s' (%s) restarted (%u restart%s so far)", c->name, c->cls->name,
                   c->restart.total, c->restart.total == 1 ? "" : "s");
        switch (c->rule) {
        case ACTORD_RULE_PERIODIC:
                c->next_deadline_ns = now + c->period_ns;
                heap_push(w, c);
                break;
        case ACTORD_RULE_LOOP: {
                /* Still in the loop array, unless a reload rebuilt it meanwhile. */
                int i = 0;
                while (i < w->n_loops && w->loops[i] != c)
                        i++;
                if (i == w->n_loops)
                        w->loops[w->n_loops++] = c;
                break;
        }
        case ACTORD_RULE_ON_MESSAGE:
                if (inputs_readable(c))
                        mark_ready(w, c);
                break;
        default:
                mark_ready(w, c);
                break;
        }
}

/* Under reject a producer that the full ring refused waits to be told of room, and is: the
 * consumer that gives slots back after the refusal marks it ready (channel.h, "Waking a refused
 * producer"), so neither spins on the refusal nor stalls on it. For the rules that wait to be
 * told (on_message, on_event); periodic and loop components run again anyway. */
static bool waits_for_room(const struct component *c)
{
        return c->rule == ACTORD_RULE_ON_MESSAGE || c->rule == ACTORD_RULE_ON_EVENT;
}

/* Makes a refused producer run, with or without an input to read. */
static void wake_for_room(struct worker *w, struct component *c)
{
        if (!waits_for_room(c))
                return;
        /* Relaxed: mark_ready()'s release publishes it to the run it queues. */
        atomic_store_explicit(&c->woken, true, memory_order_relaxed);
        mark_ready(w, c);
}

/* The run's refusals: each refused output asks its consumer to say when it gives slots back.
 * Returns whether one of them has room already (the caller runs it again). */
static bool ask_for_room(struct component *c)
{
        c->refused = false;
        bool room = false, ask = waits_for_room(c);
        for (uint32_t k = 0; k < c->n_out; k++)
                if (c->out[k].refused) {
                        c->out[k].refused = false;
                        room = (ask && channel_tx_want_room(&c->out[k])) || room;
                }
        return room;
}

/* An on_event component waiting for room leaves its fds in the epoll set with no events: one
 * whose fd stays readable while it cannot send (it reads only what it can pass on: the
 * kernel's buffer is the backpressure) would otherwise be run for it on every look. Its next
 * run, told of room or notified, watches them again. */
static void fds_mute(struct component *c, bool mute)
{
        c->fds_muted = mute;
        for (int i = 0; i < c->n_fds; i++) {
                struct epoll_event ev = {.events = mute ? 0 : c->fds[i].events, .data.ptr = c};
                epoll_ctl(c->w->epfd, EPOLL_CTL_MOD, c->fds[i].fd, &ev);
        }
}

/* After inputs (bit k: input k; bit 63: input 63 and those after it) gave slots back under
 * reject: wakes their producers that asked for room. */
static void tell_of_room(struct worker *w, struct component *c, uint64_t gave)
{
        /* seq_cst: the consumer's half of the handshake (channel.h): the stores of `tail` in
         * channel_rx_end() come before the loads of the requests. */
        atomic_thread_fence(memory_order_seq_cst);
        for (uint32_t k = 0; k < c->n_in; k++)
                if ((gave >> (k < 63 ? k : 63)) & 1 && channel_rx_room_wanted(&c->in[k]))
                        wake_for_room(w, c->in_peer[k]);
}

/* Whether the run's last read of every input found nothing (host_next). */
static bool all_drained(const struct component *c)
{
        if (c->n_in == 0 || c->n_in > 64)
                return false;
        return c->drained == (c->n_in == 64 ? ~0ull : (1ull << c->n_in) - 1);
}

/* Busy time without two clock reads on every run. Runs are timed at random gaps of 1 to 2G - 1
 * runs, G on average, and a timed run counts for itself and for the untimed runs since the
 * last timed one. G is how many runs the component made in 10 ms, as the last gap measured it
 * (at least 1): a component that runs less than 100 times a second is timed on every run (its
 * figure is exact), a busier one about 100 times a second, whatever its rate, so that the
 * clock reads cost a fast component next to nothing. Which run is timed depends on the draw
 * and the count of runs only, not on a run's length or on the pause before it (a run after a
 * pause, that empties a backlog, is not favoured): the estimate is unbiased, and lags by the
 * untimed runs since the last timed one. The exception bounds that lag: a component that
 * slowed down a hundredfold or more has its first run a second after the last timed one
 * timed. */
#define BUSY_WINDOW_NS 10000000u
#define BUSY_LAG_NS 1000000000u
#define BUSY_G_MAX 65536u

/* `now`: the worker's time for this run, which can be earlier than the last timed run's own
 * start when that run was in this same iteration (signed: not timed again for that). */
static inline bool busy_times(const struct component *c, uint64_t now)
{
        return c->busy_left == 0 || (int64_t)(now - c->busy_at_ns) >= (int64_t)BUSY_LAG_NS;
}

/* A timed run ran from `begin` to `end`, clock reads of its own: the gaps are measured between
 * those, not with the worker's `now`, which runs in one iteration share. */
static void busy_timed(struct component *c, uint64_t begin, uint64_t end)
{
        /* Its runs, this one included (counted after the run), since the last timed one. */
        uint64_t runs = counter_get(&c->runs) + 1, gap = runs - c->busy_runs;
        hist_add(&c->run_time, end - begin, gap);
        uint64_t dt = begin - c->busy_at_ns; /* the first run: since boot, so G = 1 */
        uint64_t g = dt ? gap * BUSY_WINDOW_NS / dt : 1;
        g = g < 1 ? 1 : g > BUSY_G_MAX ? BUSY_G_MAX : g;
        c->busy_runs = runs;
        c->busy_at_ns = begin;
        /* xorshift32, seeded by the component's address: the next gap. */
        uint32_t x = c->busy_rng ? c->busy_rng : 0x9e3779b9u ^ (uint32_t)(uintptr_t)c;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        c->busy_rng = x ? x : 1;
        c->busy_left = x % (2 * (uint32_t)g - 1);
}

static void run_component(struct worker *w, struct component *c, uint64_t now)
{
        c->run_ns = now;
        for (uint32_t k = 0; k < c->n_out; k++) {
                c->out[k].now_ns = now;
                c->out_mark[k] = channel_tx_seq(&c->out[k]);
        }
        /* Relaxed: read by the supervisor as diagnostics only. `now`: see worker_loop. */
        atomic_store_explicit(&w->running, c, memory_order_relaxed);
        atomic_store_explicit(&w->busy_since_ns, now, memory_order_relaxed);
        c->drained = 0;
        c->room_wait = false;
        if (__builtin_expect(c->fds_muted, 0))
                fds_mute(c, false);
        /* `now` may be early by this iteration's earlier runs (worker_loop): a timed run
         * reads the clock itself, at both ends. */
        bool timed = busy_times(c, now);
        uint64_t begin = timed ? mono_ns() : 0;
        int r = c->cls->process(&c->ctx, c->state);
        if (timed)
                busy_timed(c, begin, mono_ns());
        else
                c->busy_left--;
        atomic_store_explicit(&w->busy_since_ns, 0, memory_order_relaxed);
        /* Slots given back to a producer that may wait for them (a loop or periodic one never
         * asks: no fence for it). */
        uint64_t gave = 0;
        for (uint32_t k = 0; k < c->n_in; k++)
                if (channel_rx_end(&c->in[k]) && waits_for_room(c->in_peer[k]))
                        gave |= 1ull << (k < 63 ? k : 63);
        bool fenced = false;
        if (__builtin_expect(gave != 0, 0)) {
                tell_of_room(w, c, gave);
                fenced = true;
        }
        bool refused = c->refused, room = refused && ask_for_room(c);

        /* The consumers this run gave messages to become ready, but for those that their
         * spinning worker watches (the poll set; the fence pairs with poll_release's). */
        for (uint32_t k = 0; k < c->n_out; k++) {
                struct component *peer = c->out_peer[k];
                if (channel_tx_seq(&c->out[k]) == c->out_mark[k] ||
                    peer->rule != ACTORD_RULE_ON_MESSAGE)
                        continue;
                if (peer->w != w) {
                        if (!fenced) {
                                atomic_thread_fence(memory_order_seq_cst);
                                fenced = true;
                        }
                        if (atomic_load_explicit(&peer->polled, memory_order_relaxed))
                                continue;
                }
                mark_ready(w, peer);
        }

        counter_add(&c->runs, 1);
        counter_add(&w->runs, 1);

        if (r == ACTORD_DONE || r < 0) {
                component_ended(w, c, r < 0, c->error[0] ? c->error : "process returned an error");
        } else if (refused) {
                /* Its consumer wakes it when it gives slots back; unless there is room already
                 * (given back between the refusal and the request). Meanwhile it waits for
                 * nothing else (room_wait), unless it read every input to the end: it went
                 * around the refusal (a round-robin fan sent the message to another output)
                 * or keeps what it could not send; either way its next message runs it too,
                 * as the room does when it comes. Not one with fds: a readable fd would run
                 * it again and again, so they wait unwatched. */
                if (room) {
                        wake_for_room(w, c);
                } else {
                        c->room_wait = waits_for_room(c) && (c->n_fds || !all_drained(c));
                        if (c->room_wait && c->n_fds)
                                fds_mute(c, true);
                }
        } else if (r == ACTORD_OK && c->rule == ACTORD_RULE_ON_MESSAGE && !all_drained(c) &&
                   inputs_readable(c)) {
                /* It stopped reading with messages left (a batch limit, a full output): it
                 * runs again. After IDLE it waits for the next message instead. Not when its
                 * last read of every input found nothing: a message published since then
                 * marks it ready again (its producer, or the poll set), as for any other. */
                mark_ready(w, c);
        }
}

/* Runs the periodic components that are due; returns how many ran. */
static int run_timers(struct worker *w, uint64_t now)
{
        int ran = 0;
        while (w->n_heap && w->heap[0]->next_deadline_ns <= now) {
                struct component *c = heap_pop(w);
                ran++;
                if (c->restarting) {
                        component_restart(w, c, now);
                        continue;
                }
                run_component(w, c, now);
                if (c->stopped)
                        continue; /* ended: in the heap again if it is to restart */
                /* Absolute deadlines: no drift. Every deadline already past when the run ends
                 * (it started late, or overran) is counted as missed, not run in a burst. */
                uint64_t end = mono_ns();
                uint64_t missed = (end - c->next_deadline_ns) / c->period_ns;
                if (missed)
                        counter_add(&c->missed_periods, missed);
                c->next_deadline_ns += (missed + 1) * c->period_ns;
                heap_push(w, c);
        }
        return ran;
}

/* Runs per round of the ready FIFO at most: the components these runs make ready on this
 * worker run in the same round (a chain on one worker goes through for one clock read), while
 * timers, loops and the inbox wait for at most this many runs. */
#define ROUND_RUNS 32

static int run_ready(struct worker *w, uint64_t now)
{
        int ran = 0;
        struct component *c;
        while (ran < ROUND_RUNS && (c = w->ready_head)) {
                w->ready_head = c->ready_next;
                if (!w->ready_head)
                        w->ready_tail = NULL;
                /* acq_rel: acquires what the markers released (see mark_ready); from here on a
                 * new message marks it again. Only this thread marks a local_marks one. */
                bool sure = c->mark_sure;
                c->mark_sure = false;
                if (c->local_marks)
                        atomic_store_explicit(&c->queued, false, memory_order_relaxed);
                else
                        atomic_exchange_explicit(&c->queued, false, memory_order_acq_rel);
                /* Relaxed: on the line just exchanged; the exchange acquired the waker's store. */
                bool woken = atomic_load_explicit(&c->woken, memory_order_relaxed);
                if (woken)
                        atomic_store_explicit(&c->woken, false, memory_order_relaxed);
                /* An on_message component runs only with a message to read: a mark from
                 * another thread can be stale when an earlier run already read what it
                 * announced; a local one cannot (mark_sure). Or when its output has room
                 * again for what it holds, or it was notified (woken). */
                if (!c->stopped && (c->rule != ACTORD_RULE_ON_MESSAGE || woken ||
                                    (!c->room_wait && (sure || inputs_readable(c))))) {
                        run_component(w, c, now);
                        ran++;
                }
        }
        return ran;
}

static void handle_events(struct worker *w, const struct epoll_event *evs, int n)
{
        for (int i = 0; i < n; i++) {
                uint64_t buf;
                if (evs[i].data.u64 == TAG_WAKE) {
                        ssize_t r = read(w->wakefd, &buf, sizeof(buf));
                        (void)r;
                } else if (evs[i].data.u64 == TAG_TIMER) {
                        ssize_t r = read(w->timerfd, &buf, sizeof(buf));
                        (void)r;
                } else {
                        mark_ready(w, evs[i].data.ptr);
                }
        }
}

static void worker_sleep(struct worker *w)
{
        if (w->n_poll && poll_withdraw(w)) {
                poll_resume(w);
                return;
        }
        /* seq_cst: pairs with the pushers' CAS (mark_ready): either they see the flag and
         * wake us, or we see their push below. */
        atomic_store_explicit(&w->sleeping, 1, memory_order_seq_cst);
        if (atomic_load_explicit(&w->inbox, memory_order_seq_cst) ||
            atomic_load_explicit(&w->ctl, memory_order_seq_cst)) {
                atomic_store_explicit(&w->sleeping, 0, memory_order_relaxed);
                poll_resume(w);
                return;
        }
        if (w->n_heap) {
                uint64_t deadline = w->heap[0]->next_deadline_ns;
                struct itimerspec its = {.it_value = {.tv_sec = (time_t)(deadline / 1000000000u),
                                                      .tv_nsec = (long)(deadline % 1000000000u)}};
                timerfd_settime(w->timerfd, TFD_TIMER_ABSTIME, &its, NULL);
        }
        counter_add(&w->sleeps, 1);
        struct epoll_event evs[32];
        int n = epoll_wait(w->epfd, evs, 32, -1);
        atomic_store_explicit(&w->sleeping, 0, memory_order_relaxed);
        poll_resume(w);
        handle_events(w, evs, n);
}

/* Which components only their own worker marks ready (topology.h, local_marks), and which
 * inputs come from the same worker (read in place, channel_rx_set_same_thread()). Called
 * while no worker runs. */
static void set_local_marks(struct topology *t)
{
        for (int i = 0; i < t->n_comps; i++) {
                struct component *c = t->comps[i];
                bool local = c->rule == ACTORD_RULE_ON_MESSAGE &&
                             !atomic_load_explicit(&c->takes_notifies, memory_order_relaxed);
                for (uint32_t k = 0; k < c->n_in; k++) {
                        bool same = t->comps[t->link_from[c->in_link[k]]]->worker == c->worker;
                        channel_rx_set_same_thread(&c->in[k], same);
                        local = local && same;
                }
                /* The consumer of a reject output marks it when it makes room (tell_of_room). */
                for (uint32_t k = 0; k < c->n_out; k++)
                        if (c->out[k].policy == CHANNEL_REJECT &&
                            t->comps[t->link_to[c->out_link[k]]]->worker != c->worker)
                                local = false;
                c->local_marks = local;
        }
}

/* ---- reload: pausing the workers between runs ---- */

enum { PHASE_NONE, PHASE_PAUSE, PHASE_STOP, PHASE_START, PHASE_RESUME };

void component_log_placement(const struct component *c)
{
        log_fields(LOG_INFO, &LOG_FIELDS_OF(c), "component '%s' (%s, %s) on worker %d (CPU %d)",
                   c->name, c->cls->name, plugin_rule_to_string(c->rule), c->worker, c->w->cpu);
}

/* Runs init; false (logged, the component marked failed and stopped) if it fails. */
static bool component_start(struct component *c)
{
        int r = component_init(c);
        if (r < 0) {
                log_fields(LOG_ERR, &LOG_FIELDS_OF(c), "component '%s' (%s) failed to start: %s",
                           c->name, c->cls->name, c->error[0] ? c->error : strerror(-r));
                c->failed = true;
                component_stop(c);
                component_set_state(c, COMPONENT_FAILED);
                return false;
        }
        return true;
}

/* The loop array and the timer heap, from the components placed here. */
static void schedule_rebuild(struct worker *w)
{
        w->n_loops = w->n_heap = 0;
        for (int i = 0; i < w->n_comps; i++) {
                struct component *c = w->comps[i];
                c->heap_index = -1;
                if (c->restarting)
                        heap_push(w, c); /* at its restart time */
                else if (c->stopped)
                        continue;
                else if (c->rule == ACTORD_RULE_PERIODIC)
                        heap_push(w, c);
                else if (c->rule == ACTORD_RULE_LOOP)
                        w->loops[w->n_loops++] = c;
        }
}

static void worker_stop_leaving(struct worker *w)
{
        for (int i = 0; i < w->n_leaving; i++) {
                struct component *c = w->leaving[i];
                if (!c->stopped)
                        component_stop(c);
                static const char *const why[] = {
                    [COMPONENT_REMOVED] = "no longer in the configuration",
                    [COMPONENT_CHANGED] = "changed in the configuration; it starts again",
                    [COMPONENT_NEW_CODE] = "its plugin was replaced; it starts again on the new "
                                           "code",
                };
                /* One that failed (or waits to restart) leaves as changed: it gets a new start. */
                log_fields(LOG_INFO, &LOG_FIELDS_OF(c), "component '%s' stopped: %s", c->name,
                           c->failed && c->leaving == COMPONENT_CHANGED
                               ? "it had failed; the reload starts it again"
                               : why[c->leaving]);
        }
}

static void worker_start_arriving(struct worker *w)
{
        uint64_t now = mono_ns();
        for (int i = 0; i < w->n_arriving; i++) {
                struct component *c = w->arriving[i];
                if (c->stopped) {
                        log_fields(LOG_ERR, &LOG_FIELDS_OF(c),
                                   "component '%s' (%s) failed to start: %s", c->name, c->cls->name,
                                   c->error);
                        continue;
                }
                /* A failure goes under its restart policy, as a failed restart: a component
                 * that needs something not there yet (a server, a file) gets its retries.
                 * Only a failure at the daemon's start aborts the start. */
                if (component_init_or_end(w, c)) {
                        c->next_deadline_ns = now + c->period_ns;
                        component_log_placement(c);
                }
        }
        /* The poll set starts again (it may hold components that left); then what was ready
         * stays ready, except the components that left. No producer runs meanwhile. */
        for (int i = 0; i < w->n_poll; i++)
                atomic_store_explicit(&w->poll[i].c->polled, false, memory_order_relaxed);
        w->n_poll = 0;
        inbox_drain(w);
        struct component *c = w->ready_head;
        w->ready_head = w->ready_tail = NULL;
        while (c) {
                struct component *next = c->ready_next;
                if (c->leaving)
                        atomic_store_explicit(&c->queued, false, memory_order_relaxed);
                else
                        ready_append(w, c);
                c = next;
        }
        schedule_rebuild(w);
        /* Messages may wait in kept channels for a component that arrived, or for one whose
         * producer was replaced. */
        for (int i = 0; i < w->n_comps; i++) {
                c = w->comps[i];
                /* One waiting for room may have a new channel, which no one will say has room:
                 * it looks for itself. */
                if (!c->stopped && c->room_wait) {
                        c->room_wait = false;
                        wake_for_room(w, c);
                } else if (!c->stopped && c->rule == ACTORD_RULE_ON_MESSAGE && inputs_readable(c))
                        mark_ready(w, c);
        }
}

static void phase_ack(struct runtime *rt)
{
        rt->n_ack++;
        pthread_cond_broadcast(&rt->cond);
}

/* Called by the worker between runs when asked to pause: it does each phase's work for its own
 * components, so that init and fini keep running on the component's worker thread. */
static void worker_pause(struct worker *w)
{
        struct runtime *rt = w->rt;
        pthread_mutex_lock(&rt->lock);
        if (rt->phase != PHASE_PAUSE) {
                /* A pause given up (another worker did not come in time): carry on. */
                pthread_mutex_unlock(&rt->lock);
                return;
        }
        w->paused = true;
        /* The supervisor reads `running` when a run is in progress; components may be freed
         * once the reload is over. */
        atomic_store_explicit(&w->running, NULL, memory_order_relaxed);
        phase_ack(rt);
        int seen = PHASE_PAUSE;
        for (;;) {
                while (rt->phase == seen)
                        pthread_cond_wait(&rt->cond, &rt->lock);
                seen = rt->phase;
                if (seen == PHASE_STOP || seen == PHASE_START) {
                        pthread_mutex_unlock(&rt->lock);
                        if (seen == PHASE_STOP)
                                worker_stop_leaving(w);
                        else
                                worker_start_arriving(w);
                        pthread_mutex_lock(&rt->lock);
                        phase_ack(rt);
                        continue;
                }
                break; /* PHASE_RESUME */
        }
        w->paused = false;
        phase_ack(rt);
        pthread_mutex_unlock(&rt->lock);
}

/* Main thread, with rt->lock held: enters a phase and waits until `expect` workers finished
 * it. */
static void run_phase(struct runtime *rt, int phase, int expect)
{
        rt->phase = phase;
        rt->n_ack = 0;
        pthread_cond_broadcast(&rt->cond);
        while (rt->n_ack < expect)
                pthread_cond_wait(&rt->cond, &rt->lock);
}

static void resume_all(struct runtime *rt, int expect)
{
        for (int i = 0; i < rt->n_workers; i++)
                atomic_fetch_and_explicit(&rt->workers[i].ctl, ~WORKER_PAUSE, memory_order_relaxed);
        run_phase(rt, PHASE_RESUME, expect);
        rt->phase = PHASE_NONE;
}

/* The per-worker arrays a reload needs, allocated before the pause (so that nothing can
 * fail once it began) and swapped in while paused. */
struct worker_arrays {
        struct component **comps, **heap, **loops, **leaving, **arriving;
};

static void arrays_release(struct worker_arrays *a)
{
        free(a->comps);
        free(a->heap);
        free(a->loops);
        free(a->leaving);
        free(a->arriving);
        *a = (struct worker_arrays){0};
}

/* Room for `cap` components in each list; 0 or -ENOMEM (nothing left allocated). */
static int arrays_init(struct worker_arrays *a, int cap)
{
        a->comps = calloc((size_t)cap, sizeof(struct component *));
        a->heap = calloc((size_t)cap, sizeof(struct component *));
        a->loops = calloc((size_t)cap, sizeof(struct component *));
        a->leaving = calloc((size_t)cap, sizeof(struct component *));
        a->arriving = calloc((size_t)cap, sizeof(struct component *));
        if (a->comps && a->heap && a->loops && a->leaving && a->arriving)
                return 0;
        arrays_release(a);
        return -ENOMEM;
}

static void arrays_free(struct worker_arrays *a, int n)
{
        for (int i = 0; a && i < n; i++)
                arrays_release(&a[i]);
        free(a);
}

static struct worker_arrays *arrays_alloc(int n_workers, int cap)
{
        struct worker_arrays *a = calloc((size_t)n_workers, sizeof(*a));
        for (int i = 0; a && i < n_workers; i++)
                if (arrays_init(&a[i], cap) < 0) {
                        arrays_free(a, n_workers);
                        return NULL;
                }
        return a;
}

/* While paused: the worker gets the new arrays, the old ones are left in *a to be freed. */
static void arrays_swap(struct worker *w, struct worker_arrays *a)
{
        struct worker_arrays old = {w->comps, w->heap, w->loops, w->leaving, w->arriving};
        w->comps = a->comps;
        w->heap = a->heap;
        w->loops = a->loops;
        w->leaving = a->leaving;
        w->arriving = a->arriving;
        *a = old;
}

int runtime_reload(struct runtime *rt, struct topology *running, struct topology *next,
                   struct reload_plan *plan, uint64_t pause_timeout_ns, int *n_failed, char *busy,
                   size_t busy_len)
{
        *n_failed = 0;
        busy[0] = 0;
        /* Room first: nothing may fail once the workers are paused and the plan applied. */
        struct worker_arrays *arrays =
            arrays_alloc(rt->n_workers, running->n_comps + next->n_comps + 1);
        if (!arrays)
                return -ENOMEM;

        pthread_mutex_lock(&rt->lock);
        rt->phase = PHASE_PAUSE;
        rt->n_ack = 0;
        pthread_mutex_unlock(&rt->lock);
        for (int i = 0; i < rt->n_workers; i++) {
                /* seq_cst: the sleeper loads it after storing its flag (worker_sleep). */
                atomic_fetch_or_explicit(&rt->workers[i].ctl, WORKER_PAUSE, memory_order_seq_cst);
                worker_wake(&rt->workers[i]);
        }
        struct timespec deadline;
        clock_gettime(CLOCK_MONOTONIC, &deadline);
        uint64_t dl =
            (uint64_t)deadline.tv_sec * 1000000000u + (uint64_t)deadline.tv_nsec + pause_timeout_ns;
        deadline.tv_sec = (time_t)(dl / 1000000000u);
        deadline.tv_nsec = (long)(dl % 1000000000u);
        pthread_mutex_lock(&rt->lock);
        int r = 0;
        while (rt->n_ack < rt->n_workers && r == 0)
                r = pthread_cond_timedwait(&rt->cond, &rt->lock, &deadline);
        if (rt->n_ack < rt->n_workers) {
                for (int i = 0; i < rt->n_workers; i++) {
                        struct worker *w = &rt->workers[i];
                        if (w->paused)
                                continue;
                        const struct component *c =
                            atomic_load_explicit(&w->running, memory_order_relaxed);
                        uint64_t asleep =
                            atomic_load_explicit(&w->asleep_since, memory_order_relaxed);
                        if (c && atomic_load_explicit(&w->busy_since_ns, memory_order_relaxed))
                                snprintf(busy, busy_len, "worker %d is busy in component '%s'", i,
                                         c->name);
                        else if (asleep)
                                /* Woken above: a wake-up lost, or one the kernel has not
                                 * delivered yet. */
                                snprintf(busy, busy_len,
                                         "worker %d did not pause (asleep for %llu ms, not woken)",
                                         i, (unsigned long long)((mono_ns() - asleep) / 1000000u));
                        else
                                /* Awake, outside any run: kept off its CPU, or in a
                                 * system call of the worker's own. */
                                snprintf(busy, busy_len,
                                         "worker %d did not pause (awake, outside any run)", i);
                        break;
                }
                resume_all(rt, rt->n_ack);
                pthread_mutex_unlock(&rt->lock);
                arrays_free(arrays, rt->n_workers);
                return -ETIMEDOUT;
        }

        /* Every worker waits in worker_pause: no component runs, no channel moves. */
        /* The caller checked the workers: only memory can fail here. */
        struct diag d = {0};
        int pr = reload_plan(plan, running, next, &d);
        diag_free(&d);
        if (pr < 0) {
                resume_all(rt, rt->n_workers);
                pthread_mutex_unlock(&rt->lock);
                arrays_free(arrays, rt->n_workers);
                return -ENOMEM;
        }
        for (int i = 0; i < rt->n_workers; i++) {
                /* The lists are rebuilt below and in the start phase: the old ones go. */
                struct worker *w = &rt->workers[i];
                arrays_swap(w, &arrays[i]);
                w->n_comps = w->n_loops = w->n_heap = 0;
                w->n_leaving = w->n_arriving = 0;
        }
        for (int j = 0; j < running->n_comps; j++) {
                struct component *c = running->comps[j];
                if (reload_kept(plan, j))
                        continue;
                int i = plan->old_next[j];
                if (i < 0)
                        c->leaving = COMPONENT_REMOVED;
                else if (next->comps[i]->cls != c->cls &&
                         !strcmp(next->comps[i]->cls->name, c->cls->name) &&
                         reload_setting_equal(next->comps[i]->cc->settings, c->cc->settings))
                        c->leaving = COMPONENT_NEW_CODE;
                else
                        c->leaving = COMPONENT_CHANGED;
                c->w->leaving[c->w->n_leaving++] = c;
        }
        run_phase(rt, PHASE_STOP, rt->n_workers);

        reload_hand_over(running, next, plan); /* its failures are counted below */
        for (int i = 0; i < next->n_comps; i++) {
                struct component *c = next->comps[i];
                struct worker *w = &rt->workers[c->worker];
                if (plan->keep[i] < 0) {
                        c->ctx.host = &worker_host;
                        notifier_attach(c);
                        c->w = w;
                        c->heap_index = -1;
                        w->arriving[w->n_arriving++] = c;
                }
                w->comps[w->n_comps++] = c;
        }
        rt->topo = running;
        set_local_marks(next);
        run_phase(rt, PHASE_START, rt->n_workers);
        for (int i = 0; i < next->n_comps; i++)
                if (plan->keep[i] < 0 && next->comps[i]->failed)
                        (*n_failed)++;
        /* The caller's `running` becomes the new topology; `next` keeps the remains. */
        struct topology tmp = *running;
        *running = *next;
        *next = tmp;
        resume_all(rt, rt->n_workers);
        pthread_mutex_unlock(&rt->lock);
        arrays_free(arrays, rt->n_workers);
        return 0;
}

/* Sleeps (worker_sleep) and counts the time asleep, from `now` (read after the last work,
 * nothing run since) to the clock read on waking, which the loop needs anyway. Returns it.
 * While asleep, asleep_since says since when, so that a reader counts a sleep in progress
 * too (stats.c): cleared before the ended sleep is added, both with release stores, so a
 * reader that sees the same asleep_since before and after reading sleep_ns has read a
 * sleep_ns without that sleep. */
static uint64_t sleep_counted(struct worker *w, uint64_t now)
{
        atomic_store_explicit(&w->asleep_since, now, memory_order_release);
        worker_sleep(w);
        uint64_t t = mono_ns();
        atomic_store_explicit(&w->asleep_since, 0, memory_order_release);
        atomic_store_explicit(&w->sleep_ns,
                              atomic_load_explicit(&w->sleep_ns, memory_order_relaxed) + (t - now),
                              memory_order_release);
        return t;
}

static void worker_loop(struct worker *w)
{
        uint64_t now = mono_ns();
        for (int i = 0; i < w->n_comps; i++)
                w->comps[i]->next_deadline_ns = now + w->comps[i]->period_ns;
        schedule_rebuild(w);
        /* The clock is read after work and while idle, not between finding work and doing
         * it: `now`, the run's time stamp (publish_ns, busy_since_ns), is early by at most the
         * iteration's earlier runs, or by a few idle iterations (well under a microsecond). */
        uint64_t idle_since = 0;
        unsigned idle_iters = 0;
        for (;;) {
                unsigned ctl = atomic_load_explicit(&w->ctl, memory_order_relaxed);
                if (__builtin_expect(ctl != 0, 0)) {
                        if (ctl & WORKER_STOP)
                                break;
                        worker_pause(w);
                        idle_since = 0;
                        now = mono_ns();
                        continue;
                }
                /* Watched fds: looked at every 64 iterations while busy, by epoll_wait when
                 * asleep. (The count once went up twice an iteration where there were fds, and
                 * stayed odd: a spinning worker never looked.) */
                if (w->n_fds && (++w->iter & 63) == 0) {
                        struct epoll_event evs[32];
                        handle_events(w, evs, epoll_wait(w->epfd, evs, 32, 0));
                } else if (!w->n_fds) {
                        w->iter++;
                }
                inbox_drain(w);
                int ran = w->n_poll ? poll_inputs(w, now) : 0;
                ran += run_timers(w, now);
                for (int i = 0; i < w->n_loops; i++)
                        if (!w->loops[i]->stopped) {
                                run_component(w, w->loops[i], now);
                                ran++;
                        }
                ran += run_ready(w, now);
                if (ran || w->ready_head) {
                        idle_since = 0;
                        now = mono_ns();
                        continue;
                }
                /* A worker with no component has nothing to spin for (a reload that gives it
                 * some wakes it). */
                if (w->idle == IDLE_SLEEP || w->n_comps == 0) {
                        now = sleep_counted(w, now);
                        continue;
                }
                if (w->idle == IDLE_ADAPTIVE) {
                        now = mono_ns();
                        if (!idle_since) {
                                idle_since = now;
                        } else if (now - idle_since >= w->spin_ns) {
                                now = sleep_counted(w, now);
                                idle_since = 0;
                                continue;
                        }
                } else if ((++idle_iters & 7) == 0) {
                        now = mono_ns();
                }
                cpu_relax();
        }
}

static void *worker_main(void *arg)
{
        struct worker *w = arg;
        struct runtime *rt = w->rt;
        char tname[16];
        snprintf(tname, sizeof(tname), "actord-w%d", w->index);
        pthread_setname_np(pthread_self(), tname);
        /* A worker never waits for the log's reader (if the daemon set queues up). */
        log_defer_attach(w->index);

        for (int i = 0; i < w->n_comps && !w->init_failed; i++)
                w->init_failed = !component_start(w->comps[i]);
        pthread_mutex_lock(&rt->lock);
        rt->n_reported++;
        rt->n_failed += w->init_failed;
        pthread_cond_broadcast(&rt->cond);
        while (rt->go == 0)
                pthread_cond_wait(&rt->cond, &rt->lock);
        int go = rt->go;
        pthread_mutex_unlock(&rt->lock);

        if (go > 0)
                worker_loop(w);
        for (int i = 0; i < w->n_comps; i++)
                if (!w->comps[i]->stopped)
                        component_stop(w->comps[i]);
        return NULL;
}

static int worker_setup(struct worker *w, int index, const struct config_worker *cw,
                        struct runtime *rt)
{
        *w = (struct worker){.index = index,
                             .cpu = cw->cpu,
                             .idle = cw->idle,
                             .spin_ns = (uint64_t)cw->spin_us * 1000,
                             .rt = rt,
                             .epfd = -1,
                             .wakefd = -1,
                             .timerfd = -1};
        w->epfd = epoll_create1(EPOLL_CLOEXEC);
        w->wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        w->timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
        if (w->epfd < 0 || w->wakefd < 0 || w->timerfd < 0)
                return -errno;
        struct epoll_event ev = {.events = EPOLLIN, .data.u64 = TAG_WAKE};
        if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->wakefd, &ev) < 0)
                return -errno;
        ev.data.u64 = TAG_TIMER;
        if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->timerfd, &ev) < 0)
                return -errno;
        return 0;
}

static void worker_teardown(struct worker *w)
{
        if (w->epfd >= 0)
                close(w->epfd);
        if (w->wakefd >= 0)
                close(w->wakefd);
        if (w->timerfd >= 0)
                close(w->timerfd);
        struct worker_arrays a = {0};
        arrays_swap(w, &a);
        arrays_release(&a);
}

static void runtime_release(struct runtime *rt, int go)
{
        pthread_mutex_lock(&rt->lock);
        rt->go = go;
        pthread_cond_broadcast(&rt->cond);
        pthread_mutex_unlock(&rt->lock);
}

static void runtime_join(struct runtime *rt)
{
        for (int i = 0; i < rt->n_workers; i++) {
                struct worker *w = &rt->workers[i];
                if (w->thread_started)
                        pthread_join(w->thread, NULL);
                worker_teardown(w);
        }
        free(rt->workers);
        rt->workers = NULL;
        close(rt->fail_fd);
        rt->fail_fd = -1;
        pthread_cond_destroy(&rt->cond);
        pthread_mutex_destroy(&rt->lock);
}

int runtime_start(struct runtime *rt, struct topology *t, const struct config *cfg)
{
        *rt = (struct runtime){.topo = t, .n_workers = cfg->n_workers};
        rt->fail_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (rt->fail_fd < 0)
                return -errno;
        pthread_mutex_init(&rt->lock, NULL);
        pthread_condattr_t ca;
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* runtime_reload's timed wait */
        pthread_cond_init(&rt->cond, &ca);
        pthread_condattr_destroy(&ca);
        /* Workers carry line-aligned members: aligned memory, not calloc's. */
        size_t workers_size = (size_t)cfg->n_workers * sizeof(*rt->workers);
        rt->workers = aligned_alloc(alignof(struct worker), workers_size);
        if (!rt->workers) {
                close(rt->fail_fd);
                return -ENOMEM;
        }
        memset(rt->workers, 0, workers_size);
        /* Workers after one that fails to set up are torn down too: no fds to close there. */
        for (int i = 0; i < cfg->n_workers; i++)
                rt->workers[i].epfd = rt->workers[i].wakefd = rt->workers[i].timerfd = -1;
        int r = 0;
        for (int i = 0; i < cfg->n_workers && r == 0; i++) {
                struct worker *w = &rt->workers[i];
                r = worker_setup(w, i, &cfg->workers[i], rt);
                struct worker_arrays a;
                if (r == 0 && (r = arrays_init(&a, t->n_comps + 1)) == 0)
                        arrays_swap(w, &a); /* a gets the worker's NULLs */
        }
        if (r < 0) {
                log_error("cannot set up workers: %s", strerror(-r));
                runtime_join(rt);
                return r;
        }
        for (int ci = 0; ci < t->n_comps; ci++) {
                struct component *c = t->comps[ci];
                struct worker *w = &rt->workers[c->worker];
                c->ctx.host = &worker_host;
                notifier_attach(c);
                c->w = w;
                w->comps[w->n_comps++] = c;
        }
        set_local_marks(t);
        for (int i = 0; i < rt->n_workers; i++) {
                struct worker *w = &rt->workers[i];
                pthread_attr_t attr;
                pthread_attr_init(&attr);
                cpu_set_t set;
                CPU_ZERO(&set);
                CPU_SET(w->cpu, &set);
                pthread_attr_setaffinity_np(&attr, sizeof(set), &set);
                r = -pthread_create(&w->thread, &attr, worker_main, w);
                pthread_attr_destroy(&attr);
                if (r < 0) {
                        log_error("cannot start worker %d on CPU %d: %s", i, w->cpu, strerror(-r));
                        break;
                }
                w->thread_started = true;
        }
        int started = 0;
        for (int i = 0; i < rt->n_workers; i++)
                started += rt->workers[i].thread_started;
        pthread_mutex_lock(&rt->lock);
        while (rt->n_reported < started)
                pthread_cond_wait(&rt->cond, &rt->lock);
        int failed = rt->n_failed;
        pthread_mutex_unlock(&rt->lock);
        if (r == 0 && failed)
                r = -ECANCELED;
        if (r < 0) {
                runtime_release(rt, -1);
                runtime_join(rt);
                return r;
        }
        runtime_release(rt, 1);
        return 0;
}

int runtime_stop(struct runtime *rt, uint64_t timeout_ns)
{
        if (!rt->workers)
                return 0;
        for (int i = 0; i < rt->n_workers; i++) {
                struct worker *w = &rt->workers[i];
                /* seq_cst: the sleeper loads it after storing its flag (worker_sleep). */
                atomic_fetch_or_explicit(&w->ctl, WORKER_STOP, memory_order_seq_cst);
                worker_wake(w);
        }
        if (!timeout_ns) {
                runtime_join(rt);
                return 0;
        }
        /* A worker stuck inside a component never comes back: wait for each until the
         * deadline, and leave the stuck ones (and all memory they may touch) alone. */
        struct timespec deadline;
        clock_gettime(CLOCK_REALTIME, &deadline); /* pthread_timedjoin_np's clock */
        uint64_t dl =
            (uint64_t)deadline.tv_sec * 1000000000u + (uint64_t)deadline.tv_nsec + timeout_ns;
        deadline.tv_sec = (time_t)(dl / 1000000000u);
        deadline.tv_nsec = (long)(dl % 1000000000u);
        int stuck = 0;
        for (int i = 0; i < rt->n_workers; i++) {
                struct worker *w = &rt->workers[i];
                if (!w->thread_started)
                        continue;
                if (pthread_timedjoin_np(w->thread, NULL, &deadline) == 0) {
                        w->thread_started = false;
                        continue;
                }
                const struct component *c = atomic_load_explicit(&w->running, memory_order_relaxed);
                log_error("worker %d (CPU %d) did not stop: it is stuck in component '%s'; its "
                          "components are left without fini",
                          i, w->cpu,
                          c && atomic_load_explicit(&w->busy_since_ns, memory_order_relaxed)
                              ? c->name
                              : "?");
                stuck++;
        }
        if (stuck)
                return -ETIMEDOUT;
        runtime_join(rt);
        return 0;
}
