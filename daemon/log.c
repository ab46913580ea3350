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
#include <sys/eventfd.h>

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

/* ---- deferred messages ----
 * One channel per queue (drop_new: a full queue drops the new message and counts it, which
 * its reader sees as a gap), the queuing thread its producer, the log_defer_init() thread its
 * consumer. A record holds copies of the strings: a component may be gone when it is written. */
#define DEFER_CAPACITY 128u

struct log_record {
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
        uint64_t dropped_told; /* drops reported so far */
};

static struct defer_queue *queues;
static int n_queues;
static int defer_fd = -1;
static _Thread_local struct defer_queue *my_queue;
static _Thread_local bool is_drainer;

int log_defer_init(int n)
{
        if (queues)
                return defer_fd;
        struct defer_queue *q = calloc((size_t)n, sizeof(*q));
        if (!q)
                return -ENOMEM;
        int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (fd < 0) {
                free(q);
                return -errno;
        }
        for (int i = 0; i < n; i++) {
                int r = channel_create(&q[i].ch, DEFER_CAPACITY, sizeof(struct log_record),
                                       CHANNEL_DROP_NEW);
                if (r == 0)
                        r = channel_tx_open(&q[i].tx, &q[i].ch);
                if (r == 0)
                        r = channel_rx_open(&q[i].rx, &q[i].ch);
                if (r < 0) {
                        for (int j = 0; j <= i; j++) {
                                channel_rx_close(&q[j].rx);
                                channel_tx_close(&q[j].tx);
                                channel_destroy(&q[j].ch);
                        }
                        free(q);
                        close(fd);
                        return r;
                }
        }
        /* Published before any attaching thread starts (pthread_create orders it). */
        queues = q;
        n_queues = n;
        defer_fd = fd;
        is_drainer = true;
        return fd;
}

void log_defer_attach(int i)
{
        if (queues && i >= 0 && i < n_queues)
                my_queue = &queues[i];
}

/* Copies src (NULL: empty), truncated to fit. */
static void copy_str(char *dst, size_t len, const char *src)
{
        size_t n = src ? strnlen(src, len - 1) : 0;
        memcpy(dst, src ? src : "", n);
        dst[n] = 0;
}

static void defer(struct defer_queue *q, int priority, const struct log_fields *f, const char *msg)
{
        struct log_record *r = channel_claim(&q->tx);
        r->priority = priority;
        r->has_fields = f != NULL;
        r->worker = f ? f->worker : -1;
        copy_str(r->component, sizeof(r->component), f ? f->component : NULL);
        copy_str(r->cls, sizeof(r->cls), f ? f->cls : NULL);
        copy_str(r->channel, sizeof(r->channel), f ? f->channel : NULL);
        copy_str(r->msg, sizeof(r->msg), msg);
        channel_publish(&q->tx);
        /* Never blocks (EFD_NONBLOCK); EAGAIN only when the counter is saturated, when the
         * reader is awake anyway. */
        uint64_t one = 1;
        ssize_t w = write(defer_fd, &one, sizeof(one));
        (void)w;
}

static void write_msg(int priority, const struct log_fields *f, const char *msg);

static void tell_dropped(struct defer_queue *q, int i, uint64_t n)
{
        char m[160];
        snprintf(m, sizeof(m),
                 "%llu log messages of worker %d dropped: the log's reader is slower than the "
                 "worker writes",
                 (unsigned long long)n, i);
        write_msg(LOG_WARNING, &(struct log_fields){.worker = i}, m);
        q->dropped_told += n;
}

void log_drain(void)
{
        if (!is_drainer)
                return;
        uint64_t v;
        ssize_t rd = read(defer_fd, &v, sizeof(v));
        (void)rd;
        for (int i = 0; i < n_queues; i++) {
                struct defer_queue *q = &queues[i];
                const struct log_record *r;
                uint64_t seq, lost, ns;
                while ((r = channel_next(&q->rx, &seq, &lost, &ns))) {
                        if (lost)
                                tell_dropped(q, i, lost);
                        struct log_fields f = {.component = r->component[0] ? r->component : NULL,
                                               .cls = r->cls[0] ? r->cls : NULL,
                                               .worker = r->worker,
                                               .channel = r->channel[0] ? r->channel : NULL};
                        write_msg(r->priority, r->has_fields ? &f : NULL, r->msg);
                }
                channel_rx_end(&q->rx);
                /* Drops after the last message queued show as no gap yet. */
                struct channel_stats st;
                channel_stats(&q->ch, &st);
                if (st.dropped > q->dropped_told)
                        tell_dropped(q, i, st.dropped - q->dropped_told);
        }
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
        if (is_drainer)
                log_drain();
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
