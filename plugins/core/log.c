/* core.log: a sink that prints one readable line per message, to a file or to the log.
 *
 * A file is written by a thread of the sink's own, never by the worker: a write can block (a
 * disk under writeback, a pipe nobody reads) and a component must not. The sink puts its lines
 * into a ring of text that the thread drains; when the ring is full, lines are dropped and
 * counted, never waited for. */
#define _GNU_SOURCE /* pthread_timedjoin_np */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "core.h"
#include "deadline.h"
#include "helper_thread.h"

enum kind { KIND_SAMPLE, KIND_ALERT, KIND_RAW };

/* Which kind of message the (generic) input carries. */
static enum kind input_kind(struct actord_ctx *ctx)
{
        const char *type = actord_port_type(ctx, false, 0);
        uint32_t size = actord_port_size(ctx, false, 0);
        if (!strcmp(type, CORE_SAMPLE_TYPE) && size == sizeof(struct core_sample))
                return KIND_SAMPLE;
        if (!strcmp(type, CORE_ALERT_TYPE) && size == sizeof(struct core_alert))
                return KIND_ALERT;
        return KIND_RAW;
}

/* Bytes of lines waiting for the file. */
#define TEXT_RING (1u << 18)

/* The file's writer: one producer (the sink, on its worker), one consumer (the thread). */
struct writer {
        int fd;
        int wake; /* eventfd: text was added, or stop */
        char *ring;
        _Atomic uint64_t head; /* bytes added, by the sink */
        _Atomic uint64_t tail; /* bytes written (or given up on), by the thread */
        atomic_bool stop;
        int error; /* the first write error (errno), by the thread */
        pthread_t thread;
};

struct logsink {
        enum kind kind;
        uint32_t size;
        struct writer *w; /* NULL: through actord_log */
        uint64_t every;
        uint64_t seen;
        uint64_t lost;
        uint64_t dropped;      /* lines the file's writer had no room for */
        uint64_t dropped_told; /* of those, already reported */
        uint64_t told_at_ns;   /* when the last report went out */
};

static void *writer_main(void *arg)
{
        struct writer *w = arg;
        for (;;) {
                /* Acquire, pairs with the sink's release store: the text is in the ring. */
                uint64_t head = atomic_load_explicit(&w->head, memory_order_acquire);
                uint64_t tail = atomic_load_explicit(&w->tail, memory_order_relaxed);
                if (head == tail) {
                        if (atomic_load_explicit(&w->stop, memory_order_acquire) &&
                            atomic_load_explicit(&w->head, memory_order_acquire) == tail)
                                return NULL;
                        uint64_t n;
                        if (read(w->wake, &n, sizeof(n)) < 0 && errno != EINTR)
                                return NULL;
                        continue;
                }
                size_t off = (size_t)(tail % TEXT_RING);
                size_t len = (size_t)(head - tail);
                if (len > TEXT_RING - off)
                        len = TEXT_RING - off;
                ssize_t r = write(w->fd, w->ring + off, len);
                if (r < 0 && errno == EINTR)
                        continue;
                if (r < 0) {
                        /* Give the text up rather than spin on it: the sink says so at the end. */
                        if (!w->error)
                                w->error = errno;
                        r = (ssize_t)len;
                }
                /* Release, pairs with the sink's acquire load: our reads of the ring are done. */
                atomic_store_explicit(&w->tail, tail + (uint64_t)r, memory_order_release);
        }
}

/* Adds `len` bytes for the file, or returns false when there is no room. Sink's thread only. */
static bool writer_put(struct writer *w, const char *text, size_t len)
{
        uint64_t head = atomic_load_explicit(&w->head, memory_order_relaxed);
        /* Acquire, pairs with the thread's release store of tail. */
        uint64_t tail = atomic_load_explicit(&w->tail, memory_order_acquire);
        if (len > TEXT_RING - (head - tail))
                return false;
        size_t off = (size_t)(head % TEXT_RING), first = TEXT_RING - off;
        if (first > len)
                first = len;
        memcpy(w->ring + off, text, first);
        memcpy(w->ring, text + first, len - first);
        /* Release, pairs with the thread's acquire load. */
        atomic_store_explicit(&w->head, head + len, memory_order_release);
        return true;
}

static void writer_wake(struct writer *w)
{
        uint64_t one = 1;
        /* Cannot fail short of a closed descriptor: nothing to do about it here. */
        (void)!write(w->wake, &one, sizeof(one));
}

/* Opens `path` (truncated) and starts its writer; NULL and errno set on failure. */
static struct writer *writer_start(const char *path)
{
        struct writer *w = calloc(1, sizeof(*w));
        if (!w)
                return NULL;
        w->fd = w->wake = -1;
        /* O_NONBLOCK for the open only: a FIFO with no reader fails (ENXIO) instead of
         * waiting for one; the thread's writes then block as they may. */
        w->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NONBLOCK, 0644);
        int flags = w->fd >= 0 ? fcntl(w->fd, F_GETFL) : -1;
        if (flags < 0 || fcntl(w->fd, F_SETFL, flags & ~O_NONBLOCK) < 0)
                goto fail;
        /* Blocking, for the thread's read; the sink's writes add 1 and cannot reach the
         * counter's limit, so they never block. */
        w->wake = eventfd(0, EFD_CLOEXEC);
        w->ring = malloc(TEXT_RING);
        if (w->wake < 0 || !w->ring)
                goto fail;
        int r = helper_thread_start(&w->thread, writer_main, w, "actord-logfile");
        if (r) {
                errno = r;
                goto fail;
        }
        return w;
fail:;
        int e = errno;
        if (w->fd >= 0)
                close(w->fd);
        if (w->wake >= 0)
                close(w->wake);
        free(w->ring);
        free(w);
        errno = e;
        return NULL;
}

/* Stops the writer once it has written what it holds, waiting at most `ms`; returns false when
 * it did not finish (a reader that stalls): the thread is then left to the process's exit,
 * with what it holds. */
static bool writer_stop(struct writer *w, int ms, int *ret_error)
{
        atomic_store_explicit(&w->stop, true, memory_order_release);
        writer_wake(w);
        struct timespec until = deadline_after_ms(CLOCK_REALTIME, ms);
        if (pthread_timedjoin_np(w->thread, NULL, &until) != 0) {
                pthread_detach(w->thread);
                return false;
        }
        *ret_error = w->error;
        close(w->fd);
        close(w->wake);
        free(w->ring);
        free(w);
        return true;
}

static int log_init(struct actord_ctx *ctx, void **ret_state)
{
        struct logsink *l = calloc(1, sizeof(*l));
        if (!l)
                return -ENOMEM;
        l->every = 1;
        l->kind = input_kind(ctx);
        l->size = actord_port_size(ctx, false, 0);
        int64_t every;
        if (actord_setting_int(ctx, "every", &every) == 0) {
                if (every < 1) {
                        actord_set_error(ctx, "every must be >= 1, not %lld", (long long)every);
                        free(l);
                        return -EINVAL;
                }
                l->every = (uint64_t)every;
        }
        const char *path;
        if (actord_setting_string(ctx, "path", &path) == 0) {
                l->w = writer_start(path);
                if (!l->w) {
                        int r = -errno;
                        actord_set_error(ctx, "cannot open '%s' for writing: %s", path,
                                         strerror(errno));
                        free(l);
                        return r;
                }
        }
        *ret_state = l;
        return 0;
}

/* One line describing msg, without a newline. */
static void format_line(const struct logsink *l, const void *msg,
                        const struct actord_msg_info *info, uint64_t now, char *buf, size_t len)
{
        int n;
        if (l->kind == KIND_SAMPLE) {
                const struct core_sample *s = msg;
                double lat_us = now >= s->t_ns ? (double)(now - s->t_ns) / 1e3 : 0.0;
                n = snprintf(buf, len,
                             "seq=%" PRIu64 " chan_seq=%" PRIu64 " lost_before=%" PRIu64
                             " value=%.17g latency_us=%.1f",
                             s->seq, info->seq, info->lost_before, s->value, lat_us);
        } else if (l->kind == KIND_ALERT) {
                const struct core_alert *a = msg;
                double lat_us = now >= a->t_ns ? (double)(now - a->t_ns) / 1e3 : 0.0;
                n = snprintf(buf, len,
                             "alert seq=%" PRIu64 " chan_seq=%" PRIu64 " lost_before=%" PRIu64
                             " value=%.17g limit=%.17g latency_us=%.1f",
                             a->seq, info->seq, info->lost_before, a->value, a->limit, lat_us);
        } else {
                n = snprintf(buf, len,
                             "chan_seq=%" PRIu64 " lost_before=%" PRIu64 " bytes=%u data=",
                             info->seq, info->lost_before, l->size);
                const unsigned char *p = msg;
                for (uint32_t i = 0; i < l->size && i < 32 && n > 0 && (size_t)n + 3 < len; i++)
                        n += snprintf(buf + n, len - (size_t)n, "%02x", p[i]);
        }
        (void)n;
}

static int log_process(struct actord_ctx *ctx, void *state)
{
        struct logsink *l = state;
        struct actord_msg_info info;
        const void *msg;
        int did = 0;
        bool wrote = false;
        while ((msg = actord_next(ctx, 0, &info))) {
                did = 1;
                l->lost += info.lost_before;
                if (l->seen++ % l->every)
                        continue;
                char line[256];
                format_line(l, msg, &info, actord_now_ns(ctx), line, sizeof(line) - 1);
                if (l->w) {
                        size_t n = strlen(line);
                        line[n++] = '\n';
                        if (writer_put(l->w, line, n))
                                wrote = true;
                        else
                                l->dropped++;
                } else {
                        actord_log(ctx, ACTORD_LOG_INFO, "%s", line);
                }
        }
        if (wrote)
                writer_wake(l->w);
        /* Drops are told at most once a second. */
        uint64_t now = l->dropped > l->dropped_told ? actord_now_ns(ctx) : 0;
        if (now && now - l->told_at_ns >= 1000000000u) {
                actord_log(ctx, ACTORD_LOG_WARNING,
                           "%" PRIu64 " lines dropped: the file is written slower than lines "
                           "come (%" PRIu64 " so far)",
                           l->dropped - l->dropped_told, l->dropped);
                l->dropped_told = l->dropped;
                l->told_at_ns = now;
        }
        return did ? ACTORD_OK : ACTORD_IDLE;
}

static void log_fini(struct actord_ctx *ctx, void *state)
{
        struct logsink *l = state;
        if (!l)
                return;
        if (l->w) {
                char end[160];
                int n = snprintf(end, sizeof(end), "end messages=%" PRIu64 " lost=%" PRIu64,
                                 l->seen, l->lost);
                if (l->dropped)
                        n += snprintf(end + n, sizeof(end) - (size_t)n, " dropped_lines=%" PRIu64,
                                      l->dropped);
                end[n++] = '\n';
                if (!writer_put(l->w, end, (size_t)n))
                        l->dropped++;
                int error = 0;
                /* A quarter of a second, well inside stall_ms: fini must not hold its worker. */
                if (!writer_stop(l->w, 250, &error))
                        actord_log(ctx, ACTORD_LOG_WARNING,
                                   "its file's writer did not finish within 250 ms (a reader "
                                   "that stalls?): the last lines may be lost");
                else if (error)
                        actord_log(ctx, ACTORD_LOG_WARNING, "writing its file failed: %s",
                                   strerror(error));
        } else {
                actord_log(ctx, ACTORD_LOG_INFO, "end: %" PRIu64 " messages, %" PRIu64 " lost",
                           l->seen, l->lost);
        }
        free(l);
}

static const struct actord_port log_in[] = {
    {.name = "in",
     .type = ACTORD_TYPE_GENERIC,
     .help = "any type; core.sample and core.alert are printed field by field"},
};
static const struct actord_setting log_settings[] = {
    {.name = "path",
     .type = ACTORD_SETTING_STRING,
     .help = "file to write lines to (truncated at start; written by a thread of its own, "
             "lines dropped and counted when it falls behind); absent: the daemon's log"},
    {.name = "every",
     .type = ACTORD_SETTING_INT,
     .default_value = "1",
     .help = "print one message of this many"},
};

const struct actord_class core_log_class = {
    .struct_size = sizeof(struct actord_class),
    .name = "core.log",
    .description = "prints one line per message: fields of core.sample/core.alert, else hex",
    .shape = ACTORD_SHAPE_SINK,
    .rules = ACTORD_RULE_ON_MESSAGE | ACTORD_RULE_PERIODIC,
    .default_rule = ACTORD_RULE_ON_MESSAGE,
    .inputs = log_in,
    .n_inputs = 1,
    .settings = log_settings,
    .n_settings = sizeof(log_settings) / sizeof(log_settings[0]),
    .init = log_init,
    .process = log_process,
    .fini = log_fini,
};
