/* Logging: to the journal with structured fields when stderr is connected to it (systemd sets
 * JOURNAL_STREAM to that stream's device:inode), else one line per message on stderr with the
 * sd-daemon "<N>" priority prefix when stderr is not a terminal. */
#define _GNU_SOURCE
#include "log.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <errno.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <time.h>

#include <systemd/sd-journal.h>

#include "channel.h"

static _Atomic int max_priority = LOG_INFO;
static _Atomic int prefix = -1;  /* -1: decide on first use */
static _Atomic int journal = -1; /* -1: decide on first use */

void log_set_max_priority(int priority)
{
        atomic_store_explicit(&max_priority, priority, memory_order_relaxed);
}

void log_set_prefix(int on)
{
        atomic_store_explicit(&prefix, on, memory_order_relaxed);
}

/* Whether stderr is the journal stream systemd gave us (not a redirection by a child). */
static bool stderr_is_journal(void)
{
        const char *e = getenv("JOURNAL_STREAM");
        unsigned long long dev, ino;
        struct stat st;
        if (!e || sscanf(e, "%llu:%llu", &dev, &ino) != 2 || fstat(STDERR_FILENO, &st) < 0)
                return false;
        return st.st_dev == (dev_t)dev && st.st_ino == (ino_t)ino;
}

/* Relaxed: each flag is decided once from the environment; racing threads decide alike. */
static bool use_journal(void)
{
        int j = atomic_load_explicit(&journal, memory_order_relaxed);
        if (j < 0) {
                j = stderr_is_journal();
                atomic_store_explicit(&journal, j, memory_order_relaxed);
        }
        return j;
}

static void journal_send(int priority, const struct log_fields *f, const char *msg)
{
        char buf[7][300];
        struct iovec iov[7];
        int n = 0;
#define FIELD(...)                                                                                 \
        do {                                                                                       \
                int len = snprintf(buf[n], sizeof(buf[n]), __VA_ARGS__);                           \
                iov[n].iov_base = buf[n];                                                          \
                iov[n].iov_len = len < (int)sizeof(buf[n]) ? (size_t)len : sizeof(buf[n]) - 1;     \
                n++;                                                                               \
        } while (0)
        FIELD("PRIORITY=%d", priority);
        FIELD("SYSLOG_IDENTIFIER=actord");
        if (f && f->component)
                FIELD("COMPONENT=%s", f->component);
        if (f && f->cls)
                FIELD("CLASS=%s", f->cls);
        if (f && f->worker >= 0)
                FIELD("WORKER=%d", f->worker);
        if (f && f->channel)
                FIELD("CHANNEL=%s", f->channel);
#undef FIELD
        /* The message may be long: its own iovec, not a fixed buffer. */
        char *m = NULL;
        if (asprintf(&m, "MESSAGE=%s", msg) < 0)
                return;
        struct iovec all[8];
        memcpy(all, iov, (size_t)n * sizeof(*iov));
        all[n].iov_base = m;
        all[n].iov_len = strlen(m);
        sd_journal_sendv(all, n + 1);
        free(m);
}

/* ---- the log writer thread ----
 * One queue per worker and one for the thread that set them up (the main thread): each a
 * channel under `reject`, its thread the producer, the writer thread the consumer. A record
 * holds copies of the strings (a component may be gone when it is written) and a number from
 * one counter for all, by which the writer merges the queues back into one order. A worker
 * that finds its queue full drops the message and counts it; the main thread waits for room a
 * little (once per stall of the writer), then does the same. The writer is the only thread
 * that can block on stderr or the journal. */
#define QUEUE_CAPACITY 128u
#define MAIN_WAIT_NS 100000000u /* how long the main thread waits for room, per stall */

struct log_record {
        uint64_t order;
        int priority;
        int worker;
        bool has_fields;
        char component[64];
        char cls[64];
        char channel[128];
        char msg[1600];
};

struct defer_queue {
        struct channel ch;
        struct channel_tx tx;
        struct channel_rx rx;
        const struct log_record *head; /* writer: the next record, read but not written yet */
        _Atomic uint64_t dropped;      /* by the producer, when the queue was full */
        uint64_t dropped_told;         /* writer: drops reported so far */
};

static struct defer_queue *queues;
static int n_queues; /* the workers', then the main thread's */
static int wake_fd = -1;
static pthread_t writer;
static _Atomic bool stopping;
static _Atomic uint64_t next_order;
static _Atomic uint64_t passes; /* the writer's drain passes: progress, for the main thread */
static pthread_mutex_t room_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t room_cond;
static uint64_t stalled_pass = UINT64_MAX; /* main thread: the pass at which a wait timed out */
static _Thread_local struct defer_queue *my_queue;

static void write_msg(int priority, const struct log_fields *f, const char *msg);

uint64_t log_dropped(int worker)
{
        int i = worker < 0 ? n_queues - 1 : worker;
        if (!queues || i < 0 || i >= n_queues)
                return 0;
        /* Relaxed: a count for people. */
        return atomic_load_explicit(&queues[i].dropped, memory_order_relaxed);
}

static void tell_dropped(struct defer_queue *q, int i, uint64_t n)
{
        char m[200];
        if (i < n_queues - 1)
                snprintf(m, sizeof(m),
                         "%llu log messages of worker %d dropped: the log's reader is slower "
                         "than the worker writes",
                         (unsigned long long)n, i);
        else
                snprintf(m, sizeof(m),
                         "%llu log messages of the main thread dropped: the log's reader is "
                         "stalled",
                         (unsigned long long)n);
        write_msg(LOG_WARNING, &(struct log_fields){.worker = i < n_queues - 1 ? i : -1}, m);
        q->dropped_told += n;
}

/* Writes every queued record, oldest first across the queues, then what was dropped. */
static void drain(void)
{
        for (;;) {
                struct defer_queue *best = NULL;
                for (int i = 0; i < n_queues; i++) {
                        struct defer_queue *q = &queues[i];
                        uint64_t seq, lost, ns;
                        if (!q->head)
                                q->head = channel_next(&q->rx, &seq, &lost, &ns);
                        if (q->head && (!best || q->head->order < best->head->order))
                                best = q;
                }
                if (!best)
                        break;
                const struct log_record *r = best->head;
                struct log_fields f = {.component = r->component[0] ? r->component : NULL,
                                       .cls = r->cls[0] ? r->cls : NULL,
                                       .worker = r->worker,
                                       .channel = r->channel[0] ? r->channel : NULL};
                write_msg(r->priority, r->has_fields ? &f : NULL, r->msg);
                best->head = NULL; /* the slot is released by the next read of its queue */
        }
        for (int i = 0; i < n_queues; i++) {
                uint64_t d = atomic_load_explicit(&queues[i].dropped, memory_order_relaxed);
                if (d > queues[i].dropped_told)
                        tell_dropped(&queues[i], i, d - queues[i].dropped_told);
        }
}

static void *writer_main(void *arg)
{
        (void)arg;
        pthread_setname_np(pthread_self(), "actord-log");
        for (;;) {
                uint64_t v;
                bool stop = atomic_load_explicit(&stopping, memory_order_acquire);
                if (!stop && read(wake_fd, &v, sizeof(v)) < 0 && errno != EINTR)
                        break;
                drain();
                pthread_mutex_lock(&room_lock);
                atomic_fetch_add_explicit(&passes, 1, memory_order_relaxed);
                pthread_cond_broadcast(&room_cond);
                pthread_mutex_unlock(&room_lock);
                if (stop)
                        break;
        }
        return NULL;
}

/* The time `ns` from now on `clock`, for the timed waits. */
static struct timespec time_after(clockid_t clock, uint64_t ns)
{
        struct timespec t;
        clock_gettime(clock, &t);
        uint64_t nsec = (uint64_t)t.tv_nsec + ns;
        t.tv_sec += (time_t)(nsec / 1000000000u);
        t.tv_nsec = (long)(nsec % 1000000000u);
        return t;
}

/* Frees the first `made` queues (those set up) and the eventfd. */
static void queues_free(int made)
{
        for (int i = 0; i < made; i++) {
                channel_rx_close(&queues[i].rx);
                channel_tx_close(&queues[i].tx);
                channel_destroy(&queues[i].ch);
        }
        free(queues);
        queues = NULL;
        n_queues = 0;
        if (wake_fd >= 0)
                close(wake_fd);
        wake_fd = -1;
}

int log_defer_init(int n_workers)
{
        if (queues)
                return 0;
        int n = n_workers + 1;
        struct defer_queue *q = calloc((size_t)n, sizeof(*q));
        if (!q)
                return -ENOMEM;
        int r = (wake_fd = eventfd(0, EFD_CLOEXEC)) < 0 ? -errno : 0;
        int made = 0;
        for (; r == 0 && made < n; made++) {
                r = channel_create(&q[made].ch, QUEUE_CAPACITY, sizeof(struct log_record),
                                   CHANNEL_REJECT);
                if (r == 0 && (r = channel_tx_open(&q[made].tx, &q[made].ch)) == 0)
                        r = channel_rx_open(&q[made].rx, &q[made].ch);
        }
        static bool cond_ready;
        if (!cond_ready) {
                pthread_condattr_t ca;
                pthread_condattr_init(&ca);
                pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
                pthread_cond_init(&room_cond, &ca);
                pthread_condattr_destroy(&ca);
                cond_ready = true;
        }
        queues = q;
        n_queues = n;
        atomic_store_explicit(&stopping, false, memory_order_relaxed);
        stalled_pass = UINT64_MAX;
        if (r == 0)
                r = -pthread_create(&writer, NULL, writer_main, NULL);
        if (r < 0) {
                queues_free(made);
                return r;
        }
        my_queue = &q[n - 1];
        return 0;
}

void log_defer_attach(int i)
{
        if (queues && i >= 0 && i < n_queues - 1)
                my_queue = &queues[i];
}

void log_defer_finish(int timeout_ms)
{
        if (!queues)
                return;
        my_queue = NULL;
        atomic_store_explicit(&stopping, true, memory_order_release);
        uint64_t one = 1;
        ssize_t w = write(wake_fd, &one, sizeof(one));
        (void)w;
        struct timespec end = time_after(CLOCK_REALTIME, (uint64_t)timeout_ms * 1000000u);
        /* A writer stuck on a stalled reader is left behind: the process is ending. */
        if (pthread_timedjoin_np(writer, NULL, &end) != 0)
                return;
        queues_free(n_queues);
}

static void copy_str(char *dst, size_t len, const char *src)
{
        size_t n = src ? strnlen(src, len - 1) : 0;
        memcpy(dst, src ? src : "", n);
        dst[n] = 0;
}

/* The main thread's claim: waits for room up to MAIN_WAIT_NS, unless it already waited in
 * vain since the writer's last pass. */
static struct log_record *claim_waiting(struct defer_queue *q)
{
        struct log_record *r = channel_claim(&q->tx);
        if (r || atomic_load_explicit(&passes, memory_order_relaxed) == stalled_pass)
                return r;
        struct timespec end = time_after(CLOCK_MONOTONIC, MAIN_WAIT_NS);
        pthread_mutex_lock(&room_lock);
        int e = 0;
        while (!(r = channel_claim(&q->tx)) && e != ETIMEDOUT)
                e = pthread_cond_timedwait(&room_cond, &room_lock, &end);
        if (!r)
                stalled_pass = atomic_load_explicit(&passes, memory_order_relaxed);
        pthread_mutex_unlock(&room_lock);
        return r;
}

static void defer(struct defer_queue *q, int priority, const struct log_fields *f, const char *msg)
{
        struct log_record *r =
            q == &queues[n_queues - 1] ? claim_waiting(q) : channel_claim(&q->tx);
        if (!r) {
                /* Relaxed: a counter the writer reports; orders nothing. */
                atomic_store_explicit(&q->dropped,
                                      atomic_load_explicit(&q->dropped, memory_order_relaxed) + 1,
                                      memory_order_relaxed);
                return;
        }
        r->order = atomic_fetch_add_explicit(&next_order, 1, memory_order_relaxed);
        r->priority = priority;
        r->has_fields = f != NULL;
        r->worker = f ? f->worker : -1;
        copy_str(r->component, sizeof(r->component), f ? f->component : NULL);
        copy_str(r->cls, sizeof(r->cls), f ? f->cls : NULL);
        copy_str(r->channel, sizeof(r->channel), f ? f->channel : NULL);
        copy_str(r->msg, sizeof(r->msg), msg);
        channel_publish(&q->tx);
        /* An eventfd write does not block (the counter cannot fill up here). */
        uint64_t one = 1;
        ssize_t w = write(wake_fd, &one, sizeof(one));
        (void)w;
}

void log_vfields(int priority, const struct log_fields *f, const char *fmt, va_list ap)
{
        if (priority > atomic_load_explicit(&max_priority, memory_order_relaxed))
                return;
        char msg[2048];
        if (vsnprintf(msg, sizeof(msg), fmt, ap) < 0)
                return;
        if (my_queue) {
                defer(my_queue, priority, f, msg);
                return;
        }
        write_msg(priority, f, msg);
}

static void write_msg(int priority, const struct log_fields *f, const char *msg)
{
        if (use_journal()) {
                journal_send(priority, f, msg);
                return;
        }
        int p = atomic_load_explicit(&prefix, memory_order_relaxed);
        if (p < 0) {
                p = !isatty(STDERR_FILENO);
                atomic_store_explicit(&prefix, p, memory_order_relaxed);
        }
        char line[2200];
        int n = 0;
        if (p)
                n = snprintf(line, sizeof(line), "<%d>", priority);
        n += snprintf(line + n, sizeof(line) - (size_t)n, "%s\n", msg);
        if (n > (int)sizeof(line) - 1)
                n = (int)sizeof(line) - 1;
        /* One write per line keeps lines of concurrent threads whole. */
        ssize_t w = write(STDERR_FILENO, line, (size_t)n);
        (void)w;
}

void log_msg(int priority, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        log_vfields(priority, NULL, fmt, ap);
        va_end(ap);
}

void log_fields(int priority, const struct log_fields *f, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        log_vfields(priority, f, fmt, ap);
        va_end(ap);
}
