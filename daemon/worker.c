/* Pinned worker threads and the host function table. The wake-up protocol is described in
 * worker.h.
 *
 * This first scheduler checks each of its components on every iteration, so an idle
 * component costs a few loads per iteration; ready lists fed by publishers replace the scan
 * later, without changing the rules' semantics. */
#define _GNU_SOURCE
#include "worker.h"

#include <errno.h>
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

#define TAG_WAKE 0u
#define TAG_TIMER 1u

static uint64_t mono_ns(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

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
        return channel_claim(&c->out[out]);
}

static void host_publish(struct actord_ctx *ctx, uint32_t out)
{
        struct component *c = comp_of(ctx);
        if (__builtin_expect(out < c->n_out, 1))
                channel_publish(&c->out[out]);
}

static const void *host_next(struct actord_ctx *ctx, uint32_t in, struct actord_msg_info *info)
{
        struct component *c = comp_of(ctx);
        if (__builtin_expect(in >= c->n_in, 0))
                return NULL;
        struct actord_msg_info tmp;
        if (!info)
                info = &tmp;
        return channel_next(&c->in[in], &info->seq, &info->lost_before, &info->publish_ns);
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
        va_list ap;
        va_start(ap, fmt);
        log_vmsg(priority, comp_of(ctx)->name, fmt, ap);
        va_end(ap);
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
        struct epoll_event ev = {.events = events, .data.ptr = c};
        if (epoll_ctl(c->w->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
                return -errno;
        c->w->n_fds++;
        return 0;
}

static struct actord_notifier *host_notifier(struct actord_ctx *ctx)
{
        return &comp_of(ctx)->notifier;
}

static void host_notify(struct actord_notifier *n)
{
        struct component *c =
            (struct component *)(void *)((char *)n - offsetof(struct component, notifier));
        /* Relaxed store, then the seq_cst fence of the wake-up protocol (worker.h) orders it
         * before the read of the sleeping flag; the worker reads it after its own fence. */
        atomic_store_explicit(&c->notified, true, memory_order_relaxed);
        atomic_thread_fence(memory_order_seq_cst);
        worker_wake(c->w);
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
};

/* ---- the worker loop ---- */

static bool inputs_readable(const struct component *c)
{
        for (uint32_t k = 0; k < c->n_in; k++)
                if (channel_readable(&c->in[k]))
                        return true;
        return false;
}

/* Whether c should run now. With consume, an on_event component's flags are taken. */
static bool ready(struct component *c, uint64_t now, bool consume)
{
        switch (c->rule) {
        case ACTORD_RULE_LOOP:
                return true;
        case ACTORD_RULE_ON_MESSAGE:
                return inputs_readable(c);
        case ACTORD_RULE_PERIODIC:
                return now >= c->next_deadline_ns;
        case ACTORD_RULE_ON_EVENT:
                if (c->fd_ready) {
                        if (consume) {
                                c->fd_ready = false;
                                atomic_store_explicit(&c->notified, false, memory_order_relaxed);
                        }
                        return true;
                }
                if (!consume)
                        return atomic_load_explicit(&c->notified, memory_order_relaxed);
                return atomic_exchange_explicit(&c->notified, false, memory_order_acquire);
        }
        return false;
}

static void component_stop(struct component *c)
{
        if (c->initialized && c->cls->fini)
                c->cls->fini(&c->ctx, c->state);
        c->initialized = false;
        c->stopped = true;
        c->state = NULL;
}

static void run_component(struct worker *w, struct component *c, uint64_t now)
{
        for (uint32_t k = 0; k < c->n_out; k++) {
                c->out[k].now_ns = now;
                c->out_mark[k] = c->out[k].seq;
        }
        int r = c->cls->process(&c->ctx, c->state);
        for (uint32_t k = 0; k < c->n_in; k++)
                channel_rx_end(&c->in[k]);

        /* Wake the consumers on other workers that this run gave messages to. */
        bool fenced = false;
        for (uint32_t k = 0; k < c->n_out; k++) {
                struct worker *pw = c->out_peer[k]->w;
                if (pw == w || c->out[k].seq == c->out_mark[k])
                        continue;
                if (!fenced) {
                        atomic_thread_fence(memory_order_seq_cst);
                        fenced = true;
                }
                if (atomic_load_explicit(&pw->sleeping, memory_order_relaxed))
                        worker_wake(pw);
        }

        if (c->rule == ACTORD_RULE_PERIODIC) {
                uint64_t late = now - c->next_deadline_ns;
                uint64_t missed = late / c->period_ns;
                c->missed_periods += missed;
                c->next_deadline_ns += (missed + 1) * c->period_ns;
        }
        c->runs++;
        atomic_store_explicit(&w->runs, atomic_load_explicit(&w->runs, memory_order_relaxed) + 1,
                              memory_order_relaxed);

        if (r == ACTORD_DONE) {
                log_info("component '%s' finished (DONE) after %llu runs; stopping it", c->name,
                         (unsigned long long)c->runs);
                component_stop(c);
        } else if (r < 0) {
                log_error("component '%s' (%s) failed: %s; stopping it", c->name, c->cls->name,
                          c->error[0] ? c->error : "process returned an error");
                component_stop(c);
        }
}

static void worker_sleep(struct worker *w)
{
        atomic_store_explicit(&w->sleeping, 1, memory_order_relaxed);
        /* Pairs with the fence of the waker (worker.h): after it, either we see its message or
         * it sees our flag. */
        atomic_thread_fence(memory_order_seq_cst);
        uint64_t now = mono_ns();
        uint64_t deadline = UINT64_MAX;
        for (int i = 0; i < w->n_comps; i++) {
                struct component *c = w->comps[i];
                if (c->stopped)
                        continue;
                if (ready(c, now, false) || atomic_load_explicit(&w->stop, memory_order_relaxed)) {
                        atomic_store_explicit(&w->sleeping, 0, memory_order_relaxed);
                        return;
                }
                if (c->rule == ACTORD_RULE_PERIODIC && c->next_deadline_ns < deadline)
                        deadline = c->next_deadline_ns;
        }
        if (deadline != UINT64_MAX) {
                struct itimerspec its = {.it_value = {.tv_sec = (time_t)(deadline / 1000000000u),
                                                      .tv_nsec = (long)(deadline % 1000000000u)}};
                timerfd_settime(w->timerfd, TFD_TIMER_ABSTIME, &its, NULL);
        }
        atomic_store_explicit(&w->sleeps,
                              atomic_load_explicit(&w->sleeps, memory_order_relaxed) + 1,
                              memory_order_relaxed);
        struct epoll_event evs[32];
        int n = epoll_wait(w->epfd, evs, 32, -1);
        atomic_store_explicit(&w->sleeping, 0, memory_order_relaxed);
        for (int i = 0; i < n; i++) {
                uint64_t buf;
                if (evs[i].data.u64 == TAG_WAKE) {
                        ssize_t r = read(w->wakefd, &buf, sizeof(buf));
                        (void)r;
                } else if (evs[i].data.u64 == TAG_TIMER) {
                        ssize_t r = read(w->timerfd, &buf, sizeof(buf));
                        (void)r;
                } else {
                        ((struct component *)evs[i].data.ptr)->fd_ready = true;
                }
        }
}

/* Spinning workers look at registered fds without blocking. */
static void worker_poll_fds(struct worker *w)
{
        struct epoll_event evs[32];
        int n = epoll_wait(w->epfd, evs, 32, 0);
        for (int i = 0; i < n; i++) {
                uint64_t buf;
                if (evs[i].data.u64 == TAG_WAKE) {
                        ssize_t r = read(w->wakefd, &buf, sizeof(buf));
                        (void)r;
                } else if (evs[i].data.u64 != TAG_TIMER) {
                        ((struct component *)evs[i].data.ptr)->fd_ready = true;
                }
        }
}

static void worker_loop(struct worker *w)
{
        uint64_t now = mono_ns();
        for (int i = 0; i < w->n_comps; i++)
                w->comps[i]->next_deadline_ns = now + w->comps[i]->period_ns;
        uint64_t idle_since = 0;
        unsigned idle_polls = 0;
        while (!atomic_load_explicit(&w->stop, memory_order_relaxed)) {
                bool ran = false;
                now = mono_ns();
                for (int i = 0; i < w->n_comps; i++) {
                        struct component *c = w->comps[i];
                        if (!c->stopped && ready(c, now, true)) {
                                run_component(w, c, now);
                                ran = true;
                        }
                }
                if (ran) {
                        idle_since = 0;
                        continue;
                }
                if (w->idle == IDLE_SLEEP) {
                        worker_sleep(w);
                        continue;
                }
                if (w->n_fds && (++idle_polls & 63) == 0)
                        worker_poll_fds(w);
                if (w->idle == IDLE_ADAPTIVE) {
                        if (!idle_since)
                                idle_since = now;
                        else if (now - idle_since >= w->spin_ns) {
                                worker_sleep(w);
                                idle_since = 0;
                                continue;
                        }
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

        for (int i = 0; i < w->n_comps; i++) {
                struct component *c = w->comps[i];
                c->state = NULL;
                if (c->cls->init) {
                        int r = c->cls->init(&c->ctx, &c->state);
                        if (r < 0) {
                                log_error("component '%s' (%s) failed to start: %s", c->name,
                                          c->cls->name, c->error[0] ? c->error : strerror(-r));
                                w->init_failed = 1;
                                break;
                        }
                }
                c->initialized = true;
        }
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
        free(w->comps);
        w->comps = NULL;
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
        pthread_cond_destroy(&rt->cond);
        pthread_mutex_destroy(&rt->lock);
}

int runtime_start(struct runtime *rt, struct topology *t, const struct config *cfg)
{
        *rt = (struct runtime){.topo = t, .n_workers = cfg->n_workers};
        pthread_mutex_init(&rt->lock, NULL);
        pthread_cond_init(&rt->cond, NULL);
        rt->workers = calloc((size_t)cfg->n_workers, sizeof(*rt->workers));
        if (!rt->workers)
                return -ENOMEM;
        int r = 0;
        for (int i = 0; i < cfg->n_workers && r == 0; i++) {
                struct worker *w = &rt->workers[i];
                r = worker_setup(w, i, &cfg->workers[i], rt);
                if (r == 0) {
                        w->comps = calloc((size_t)t->n_comps + 1, sizeof(*w->comps));
                        if (!w->comps)
                                r = -ENOMEM;
                }
        }
        if (r < 0) {
                log_error("cannot set up workers: %s", strerror(-r));
                runtime_join(rt);
                return r;
        }
        for (int ci = 0; ci < t->n_comps; ci++) {
                struct component *c = &t->comps[ci];
                struct worker *w = &rt->workers[c->worker];
                c->ctx.host = &worker_host;
                c->notifier.host = &worker_host;
                c->w = w;
                w->comps[w->n_comps++] = c;
        }
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

void runtime_stop(struct runtime *rt)
{
        if (!rt->workers)
                return;
        for (int i = 0; i < rt->n_workers; i++) {
                struct worker *w = &rt->workers[i];
                atomic_store_explicit(&w->stop, true, memory_order_relaxed);
                atomic_thread_fence(memory_order_seq_cst);
                worker_wake(w);
        }
        runtime_join(rt);
}
