/* Classes that observe the scheduler from inside, for the scheduling tests. Each writes what
 * it saw to the file named by its `path` setting when it stops (fini) or finishes. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <actord/plugin.h>

static char *path_setting(struct actord_ctx *ctx)
{
        const char *p = NULL;
        actord_setting_string(ctx, "path", &p);
        return p ? strdup(p) : NULL;
}

static void write_file(const char *path, const char *text)
{
        char tmp[4096];
        snprintf(tmp, sizeof(tmp), "%s.tmp", path);
        FILE *f = fopen(tmp, "w");
        if (!f)
                return;
        fputs(text, f);
        fclose(f);
        rename(tmp, path); /* the reader sees the whole file or none */
}

/* ---- test.probe: on_message sink counting its runs, and runs that found no message ---- */

struct probe {
        char *path;
        uint64_t runs, empty, msgs, lost;
        int64_t batch;  /* messages read per run at most; 0: all */
        int64_t expect; /* log "got N messages" once that many came; 0: never */
        /* With `notifies` (ABI 1.3, on_message): a thread of its own notifies that many
         * times, each time waiting until a run saw the notify (`acked`) before the next. */
        int64_t notifies, seen;
        _Atomic int64_t sent, acked;
        _Atomic bool stop;
        struct actord_notifier *notifier;
        pthread_t thread;
        bool thread_started;
};

static void *probe_thread(void *arg)
{
        struct probe *p = arg;
        for (int64_t i = 1; i <= p->notifies; i++) {
                atomic_store_explicit(&p->sent, i, memory_order_release);
                actord_notify(p->notifier);
                while (atomic_load_explicit(&p->acked, memory_order_acquire) < i)
                        if (atomic_load_explicit(&p->stop, memory_order_relaxed))
                                return NULL;
                        else
                                sched_yield();
        }
        return NULL;
}

static int probe_init(struct actord_ctx *ctx, void **ret_state)
{
        struct probe *p = calloc(1, sizeof(*p));
        if (!p)
                return -ENOMEM;
        p->path = path_setting(ctx);
        actord_setting_int(ctx, "batch", &p->batch);
        actord_setting_int(ctx, "expect", &p->expect);
        actord_setting_int(ctx, "notifies", &p->notifies);
        *ret_state = p;
        if (p->notifies > 0) {
                if (!(p->notifier = actord_notifier(ctx))) {
                        actord_set_error(ctx, "no notifier for this component");
                        return -ENOTSUP;
                }
                if (pthread_create(&p->thread, NULL, probe_thread, p) != 0)
                        return -EAGAIN;
                p->thread_started = true;
        }
        return 0;
}

static int probe_process(struct actord_ctx *ctx, void *state)
{
        struct probe *p = state;
        struct actord_msg_info info;
        uint64_t n = 0;
        p->runs++;
        int64_t sent = atomic_load_explicit(&p->sent, memory_order_acquire);
        if (sent > p->seen) {
                p->seen = sent;
                if (sent == p->notifies)
                        actord_log(ctx, ACTORD_LOG_INFO,
                                   "notified %" PRId64 " times: %" PRIu64 " runs, %" PRIu64
                                   " without a message",
                                   sent, p->runs, p->empty + 1);
                atomic_store_explicit(&p->acked, sent, memory_order_release);
        }
        for (uint32_t k = 0; k < actord_port_count(ctx, false); k++)
                while ((!p->batch || n < (uint64_t)p->batch) && actord_next(ctx, k, &info)) {
                        n++;
                        p->lost += info.lost_before;
                }
        if (n == 0)
                p->empty++;
        if (p->expect > 0 && p->msgs < (uint64_t)p->expect && p->msgs + n >= (uint64_t)p->expect)
                actord_log(ctx, ACTORD_LOG_INFO, "got %" PRIu64 " messages, %" PRIu64 " lost",
                           p->msgs + n, p->lost);
        p->msgs += n;
        return n ? ACTORD_OK : ACTORD_IDLE;
}

static void probe_fini(struct actord_ctx *ctx, void *state)
{
        (void)ctx;
        struct probe *p = state;
        if (!p)
                return;
        if (p->thread_started) {
                atomic_store_explicit(&p->stop, true, memory_order_relaxed);
                pthread_join(p->thread, NULL);
        }
        char buf[256];
        snprintf(buf, sizeof(buf),
                 "runs=%" PRIu64 " empty=%" PRIu64 " msgs=%" PRIu64 " lost=%" PRIu64 "\n", p->runs,
                 p->empty, p->msgs, p->lost);
        if (p->path)
                write_file(p->path, buf);
        free(p->path);
        free(p);
}

static const struct actord_port any_in[] = {{.name = "in", .type = ACTORD_TYPE_GENERIC}};
static const struct actord_port any_out[] = {{.name = "out", .type = ACTORD_TYPE_GENERIC}};
static const struct actord_setting probe_settings[] = {
    {.name = "path", .type = ACTORD_SETTING_STRING, .required = true},
    {.name = "batch", .type = ACTORD_SETTING_INT, .help = "messages read per run at most"},
    {.name = "expect", .type = ACTORD_SETTING_INT, .help = "log once this many came"},
    {.name = "notifies", .type = ACTORD_SETTING_INT, .help = "notifies from a thread of its own"}};

static const struct actord_class probe_class = {
    .struct_size = sizeof(struct actord_class),
    .name = "test.probe",
    .description = "counts runs, empty runs and messages",
    .shape = ACTORD_SHAPE_SINK,
    .rules = ACTORD_RULE_ON_MESSAGE | ACTORD_RULE_PERIODIC,
    .default_rule = ACTORD_RULE_ON_MESSAGE,
    .inputs = any_in,
    .n_inputs = 1,
    .settings = probe_settings,
    .n_settings = sizeof(probe_settings) / sizeof(probe_settings[0]),
    .init = probe_init,
    .process = probe_process,
    .fini = probe_fini,
};

/* ---- test.slowtick: periodic; every Nth run busy-waits past several periods ---- */

struct slowtick {
        char *path;
        int64_t period_us, busy_us, every;
        uint64_t runs, first_ns, last_ns;
        bool was_busy;
        /* From the end of an overrun to the start of the next run, for the first 64. */
        uint64_t gaps[64];
        unsigned n_gaps;
};

static int cmp_u64(const void *a, const void *b)
{
        uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
        return (x > y) - (x < y);
}

static int slowtick_init(struct actord_ctx *ctx, void **ret_state)
{
        struct slowtick *t = calloc(1, sizeof(*t));
        if (!t)
                return -ENOMEM;
        t->path = path_setting(ctx);
        t->period_us = 1000;
        t->busy_us = 3500;
        t->every = 10;
        actord_setting_int(ctx, "period_us", &t->period_us);
        actord_setting_int(ctx, "busy_us", &t->busy_us);
        actord_setting_int(ctx, "every", &t->every);
        *ret_state = t;
        return 0;
}

static void slowtick_report(struct slowtick *t);

/* Reports once after 400 runs (the test waits for that), and again at fini. */
static int slowtick_process(struct actord_ctx *ctx, void *state)
{
        struct slowtick *t = state;
        uint64_t now = actord_now_ns(ctx);
        if (!t->first_ns)
                t->first_ns = now;
        if (t->was_busy && t->n_gaps < 64)
                t->gaps[t->n_gaps++] = now - t->last_ns;
        t->was_busy = ++t->runs % (uint64_t)t->every == 0;
        if (t->was_busy) {
                while (actord_now_ns(ctx) - now < (uint64_t)t->busy_us * 1000)
                        ;
        }
        t->last_ns = actord_now_ns(ctx);
        if (t->runs == 400)
                slowtick_report(t);
        return ACTORD_OK;
}

static void slowtick_report(struct slowtick *t)
{
        char buf[256];
        uint64_t sorted[64];
        memcpy(sorted, t->gaps, t->n_gaps * sizeof(*sorted));
        qsort(sorted, t->n_gaps, sizeof(*sorted), cmp_u64);
        /* span: from the first run's start to the end of the last run. */
        snprintf(buf, sizeof(buf),
                 "runs=%" PRIu64 " span_us=%" PRIu64 " median_gap_after_overrun_us=%" PRIu64 "\n",
                 t->runs, (t->last_ns - t->first_ns) / 1000,
                 t->n_gaps ? sorted[t->n_gaps / 2] / 1000 : 0);
        if (t->path)
                write_file(t->path, buf);
}

static void slowtick_fini(struct actord_ctx *ctx, void *state)
{
        (void)ctx;
        struct slowtick *t = state;
        if (!t)
                return;
        slowtick_report(t);
        free(t->path);
        free(t);
}

static const struct actord_setting slowtick_settings[] = {
    {.name = "path", .type = ACTORD_SETTING_STRING, .required = true},
    {.name = "period_us", .type = ACTORD_SETTING_INT},
    {.name = "busy_us", .type = ACTORD_SETTING_INT},
    {.name = "every", .type = ACTORD_SETTING_INT},
};

/* A sink with no input would not be a shape: the probe is fed by nothing, so slowtick is a
 * source whose output goes to a probe. */
static int slowtick_src_process(struct actord_ctx *ctx, void *state)
{
        return slowtick_process(ctx, state);
}

static const struct actord_port u64_out[] = {{.name = "out", .type = "test.u64", .size = 8}};

static const struct actord_class slowtick_class = {
    .struct_size = sizeof(struct actord_class),
    .name = "test.slowtick",
    .description = "periodic; every Nth run overruns several periods",
    .shape = ACTORD_SHAPE_SOURCE,
    .rules = ACTORD_RULE_PERIODIC,
    .default_rule = ACTORD_RULE_PERIODIC,
    .outputs = u64_out,
    .n_outputs = 1,
    .settings = slowtick_settings,
    .n_settings = 4,
    .init = slowtick_init,
    .process = slowtick_src_process,
    .fini = slowtick_fini,
};

/* ---- test.event: on_event source fed by a FIFO and by a foreign thread's notifies ---- */

struct event {
        char *path;
        int rfd, wfd;     /* the FIFO; our own writer end keeps it from reporting HUP */
        int trigger_rfd;  /* the foreign thread starts notifying when this has data */
        int64_t notifies; /* how many notifies the foreign thread sends */
        _Atomic int64_t sent;
        int64_t seen; /* highest `sent` seen by a run */
        uint64_t runs;
        char fifo_data[256];
        size_t fifo_len;
        char *fail_on; /* a FIFO line that makes the run fail (supervision tests) */
        pthread_t thread;
        bool thread_started;
        struct actord_notifier *notifier;
};

static void event_report(struct event *e)
{
        char buf[512];
        snprintf(buf, sizeof(buf), "fifo=%.*s notified=%" PRId64 " runs=%" PRIu64 "\n",
                 (int)e->fifo_len, e->fifo_data, e->seen, e->runs);
        write_file(e->path, buf);
}

static void *event_thread(void *arg)
{
        struct event *e = arg;
        char c;
        /* A thread actord does not own: blocks until the test says go, then notifies. */
        if (read(e->trigger_rfd, &c, 1) != 1)
                return NULL;
        for (int64_t i = 1; i <= e->notifies; i++) {
                atomic_store_explicit(&e->sent, i, memory_order_release);
                actord_notify(e->notifier);
        }
        return NULL;
}

static int event_init(struct actord_ctx *ctx, void **ret_state)
{
        struct event *e = calloc(1, sizeof(*e));
        if (!e)
                return -ENOMEM;
        e->rfd = e->wfd = e->trigger_rfd = -1;
        e->path = path_setting(ctx);
        const char *fifo = NULL, *trigger = NULL, *fail_on = NULL;
        actord_setting_string(ctx, "fail_on", &fail_on);
        if (fail_on && !(e->fail_on = strdup(fail_on)))
                return -ENOMEM;
        actord_setting_string(ctx, "fifo", &fifo);
        actord_setting_string(ctx, "trigger", &trigger);
        actord_setting_int(ctx, "notifies", &e->notifies);
        *ret_state = e;
        if (!fifo || !trigger) {
                actord_set_error(ctx, "fifo and trigger are required");
                return -EINVAL;
        }
        e->rfd = open(fifo, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
        e->wfd = open(fifo, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
        e->trigger_rfd = open(trigger, O_RDWR | O_CLOEXEC); /* RDWR: never EOF */
        if (e->rfd < 0 || e->wfd < 0 || e->trigger_rfd < 0) {
                actord_set_error(ctx, "cannot open the FIFOs: %s", strerror(errno));
                return -errno;
        }
        int r = actord_watch_fd(ctx, e->rfd, EPOLLIN);
        if (r < 0) {
                actord_set_error(ctx, "watch_fd: %s", strerror(-r));
                return r;
        }
        e->notifier = actord_notifier(ctx);
        if (pthread_create(&e->thread, NULL, event_thread, e) != 0)
                return -EAGAIN;
        e->thread_started = true;
        return 0;
}

static int event_process(struct actord_ctx *ctx, void *state)
{
        (void)ctx;
        struct event *e = state;
        e->runs++;
        ssize_t n;
        while (e->fifo_len < sizeof(e->fifo_data) &&
               (n = read(e->rfd, e->fifo_data + e->fifo_len, sizeof(e->fifo_data) - e->fifo_len)) >
                   0)
                e->fifo_len += (size_t)n;
        int64_t sent = atomic_load_explicit(&e->sent, memory_order_acquire);
        if (sent > e->seen) {
                e->seen = sent;
                if (sent == e->notifies)
                        event_report(e);
        }
        if (e->fifo_len && memchr(e->fifo_data, '\n', e->fifo_len)) {
                event_report(e);
                if (e->fail_on &&
                    memmem(e->fifo_data, e->fifo_len, e->fail_on, strlen(e->fail_on))) {
                        actord_set_error(ctx, "read '%s' from the FIFO, as asked", e->fail_on);
                        return -EIO;
                }
        }
        return ACTORD_OK;
}

static void event_fini(struct actord_ctx *ctx, void *state)
{
        (void)ctx;
        struct event *e = state;
        if (!e)
                return;
        if (e->thread_started) {
                /* Release the thread if the test never did, then wait for it. */
                if (write(e->trigger_rfd, "x", 1) != 1)
                        pthread_cancel(e->thread);
                pthread_join(e->thread, NULL);
        }
        if (e->rfd >= 0)
                close(e->rfd);
        if (e->wfd >= 0)
                close(e->wfd);
        if (e->trigger_rfd >= 0)
                close(e->trigger_rfd);
        free(e->fail_on);
        free(e->path);
        free(e);
}

static const struct actord_setting event_settings[] = {
    {.name = "path", .type = ACTORD_SETTING_STRING, .required = true},
    {.name = "fifo", .type = ACTORD_SETTING_STRING, .required = true},
    {.name = "trigger", .type = ACTORD_SETTING_STRING, .required = true},
    {.name = "notifies", .type = ACTORD_SETTING_INT},
    {.name = "fail_on", .type = ACTORD_SETTING_STRING, .help = "a FIFO line that fails the run"},
};

static const struct actord_class event_class = {
    .struct_size = sizeof(struct actord_class),
    .name = "test.event",
    .description = "runs on FIFO data and on notifies from a thread of its own",
    .shape = ACTORD_SHAPE_SOURCE,
    .rules = ACTORD_RULE_ON_EVENT,
    .default_rule = ACTORD_RULE_ON_EVENT,
    .outputs = u64_out,
    .n_outputs = 1,
    .settings = event_settings,
    .n_settings = 5,
    .init = event_init,
    .process = event_process,
    .fini = event_fini,
};

/* ---- test.echo: passes messages through until `limit` have passed, then reports ---- */

struct echo {
        char *path;
        int64_t limit;
        int64_t passed;
};

static int echo_init(struct actord_ctx *ctx, void **ret_state)
{
        struct echo *e = calloc(1, sizeof(*e));
        if (!e)
                return -ENOMEM;
        e->path = path_setting(ctx);
        actord_setting_int(ctx, "limit", &e->limit);
        *ret_state = e;
        return 0;
}

static int echo_process(struct actord_ctx *ctx, void *state)
{
        struct echo *e = state;
        uint32_t size = actord_port_size(ctx, false, 0);
        const void *in;
        while ((in = actord_next(ctx, 0, NULL))) {
                if (++e->passed == e->limit) {
                        char buf[64];
                        snprintf(buf, sizeof(buf), "passed=%" PRId64 "\n", e->passed);
                        write_file(e->path, buf);
                        return ACTORD_DONE;
                }
                void *out = actord_claim(ctx, 0);
                if (out) {
                        memcpy(out, in, size);
                        actord_publish(ctx, 0);
                }
        }
        return ACTORD_OK;
}

static void echo_fini(struct actord_ctx *ctx, void *state)
{
        (void)ctx;
        struct echo *e = state;
        if (e)
                free(e->path);
        free(e);
}

static const struct actord_setting echo_settings[] = {
    {.name = "path", .type = ACTORD_SETTING_STRING, .required = true},
    {.name = "limit", .type = ACTORD_SETTING_INT, .required = true},
};

static const struct actord_class echo_class = {
    .struct_size = sizeof(struct actord_class),
    .name = "test.echo",
    .description = "passes messages through until a limit, then reports and stops",
    .shape = ACTORD_SHAPE_FILTER,
    .rules = ACTORD_RULE_ON_MESSAGE,
    .default_rule = ACTORD_RULE_ON_MESSAGE,
    .inputs = any_in,
    .n_inputs = 1,
    .outputs = any_out,
    .n_outputs = 1,
    .settings = echo_settings,
    .n_settings = 2,
    .init = echo_init,
    .process = echo_process,
    .fini = echo_fini,
};

/* ---- test.runcheck: on_message sink reading runs of core.sample messages (actord_next_n) ----
 * Each run asks for 1, 2, ... `batch` messages in turn and checks every message against what
 * core.tick (start 0) wrote: its counter is the channel's sequence number, its value the same,
 * its publish time set and not after the tick's own clock read. */

struct sample {
        uint64_t seq;
        uint64_t t_ns;
        double value;
};

struct runcheck {
        char *path;
        uint32_t batch, ask;
        uint64_t msgs, lost, errors, runs, max_run, next_seq;
};

static int runcheck_init(struct actord_ctx *ctx, void **ret_state)
{
        struct runcheck *r = calloc(1, sizeof(*r));
        if (!r)
                return -ENOMEM;
        r->path = path_setting(ctx);
        int64_t v = 16;
        actord_setting_int(ctx, "batch", &v);
        r->batch = v < 1 ? 1 : (uint32_t)v;
        *ret_state = r;
        return 0;
}

static int runcheck_process(struct actord_ctx *ctx, void *state)
{
        struct runcheck *r = state;
        struct actord_burst b = {.struct_size = sizeof(b)};
        uint32_t n, got = 0;
        while ((n = actord_next_n(ctx, 0, r->ask % r->batch + 1, &b))) {
                r->ask++;
                r->runs++;
                if (n > r->max_run)
                        r->max_run = n;
                if (b.seq != r->next_seq + b.lost_before || b.stride < sizeof(struct sample))
                        r->errors++;
                r->lost += b.lost_before;
                const unsigned char *m = b.first;
                for (uint32_t i = 0; i < n; i++, m += b.stride) {
                        const struct sample *s = (const void *)m;
                        uint64_t ns = actord_burst_publish_ns(ctx, &b, i);
                        if (s->seq != b.seq + i || s->value != (double)s->seq || ns == 0 ||
                            ns > s->t_ns)
                                r->errors++;
                }
                r->next_seq = b.seq + n;
                r->msgs += n;
                got += n;
        }
        return got ? ACTORD_OK : ACTORD_IDLE;
}

static void runcheck_fini(struct actord_ctx *ctx, void *state)
{
        (void)ctx;
        struct runcheck *r = state;
        if (!r)
                return;
        char buf[256];
        snprintf(buf, sizeof(buf),
                 "msgs=%" PRIu64 " lost=%" PRIu64 " errors=%" PRIu64 " runs=%" PRIu64
                 " max_run=%" PRIu64 "\n",
                 r->msgs, r->lost, r->errors, r->runs, r->max_run);
        if (r->path)
                write_file(r->path, buf);
        free(r->path);
        free(r);
}

static const struct actord_port sample_in[] = {
    {.name = "in", .type = "core.sample", .size = sizeof(struct sample)}};
static const struct actord_setting runcheck_settings[] = {
    {.name = "path", .type = ACTORD_SETTING_STRING, .required = true},
    {.name = "batch", .type = ACTORD_SETTING_INT, .help = "largest run asked for"}};

static const struct actord_class runcheck_class = {
    .struct_size = sizeof(struct actord_class),
    .name = "test.runcheck",
    .description = "reads runs of core.sample messages and checks each",
    .shape = ACTORD_SHAPE_SINK,
    .rules = ACTORD_RULE_ON_MESSAGE,
    .default_rule = ACTORD_RULE_ON_MESSAGE,
    .inputs = sample_in,
    .n_inputs = 1,
    .settings = runcheck_settings,
    .n_settings = 2,
    .init = runcheck_init,
    .process = runcheck_process,
    .fini = runcheck_fini,
};

/* ---- test.fdsource: on_event source, one message per byte of a FIFO ---- */

/* It reads a byte only when it has a slot for it, as a source that must not lose anything
 * does: under a full reject output the FIFO stays readable, the kernel's buffer holding the
 * rest. Each message is the byte's position in the FIFO's stream. */
struct fdsource {
        int fd;
        uint64_t next;
};

static int fdsource_init(struct actord_ctx *ctx, void **ret_state)
{
        struct fdsource *f = calloc(1, sizeof(*f));
        const char *path = NULL;
        actord_setting_string(ctx, "fifo", &path);
        if (!f || !path) {
                free(f);
                actord_set_error(ctx, "fifo is required");
                return -EINVAL;
        }
        f->fd = -1;
        *ret_state = f;
        /* RDWR: our own writer end, so that the FIFO never reports end of file. */
        f->fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
        if (f->fd < 0) {
                actord_set_error(ctx, "%s: %s", path, strerror(errno));
                return -errno;
        }
        return actord_watch_fd(ctx, f->fd, EPOLLIN);
}

static int fdsource_process(struct actord_ctx *ctx, void *state)
{
        struct fdsource *f = state;
        int did = 0;
        for (;;) {
                uint64_t *out = actord_claim(ctx, 0);
                if (!out)
                        return ACTORD_OK; /* full: the bytes wait in the FIFO */
                char b;
                if (read(f->fd, &b, 1) != 1)
                        return did ? ACTORD_OK : ACTORD_IDLE; /* the claim is dropped */
                *out = f->next++;
                actord_publish(ctx, 0);
                did = 1;
        }
}

static void fdsource_fini(struct actord_ctx *ctx, void *state)
{
        (void)ctx;
        struct fdsource *f = state;
        if (f && f->fd >= 0)
                close(f->fd);
        free(f);
}

static const struct actord_setting fdsource_settings[] = {
    {.name = "fifo", .type = ACTORD_SETTING_STRING, .required = true}};

static const struct actord_class fdsource_class = {
    .struct_size = sizeof(struct actord_class),
    .name = "test.fdsource",
    .description = "one message per byte read from a FIFO, read only when it can be sent",
    .shape = ACTORD_SHAPE_SOURCE,
    .rules = ACTORD_RULE_ON_EVENT,
    .default_rule = ACTORD_RULE_ON_EVENT,
    .outputs = u64_out,
    .n_outputs = 1,
    .settings = fdsource_settings,
    .n_settings = 1,
    .init = fdsource_init,
    .process = fdsource_process,
    .fini = fdsource_fini,
};

static const struct actord_class *const classes[] = {
    &probe_class, &slowtick_class, &event_class, &echo_class, &runcheck_class, &fdsource_class};

ACTORD_PLUGIN_DEFINE = {
    .abi_major = ACTORD_ABI_MAJOR,
    .abi_minor = ACTORD_ABI_MINOR,
    .struct_size = sizeof(struct actord_plugin),
    .name = "schedkit",
    .version = "1.0",
    .classes = classes,
    .n_classes = 6,
};
