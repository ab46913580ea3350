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

#include <systemd/sd-journal.h>

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

void log_vfields(int priority, const struct log_fields *f, const char *fmt, va_list ap)
{
        if (priority > atomic_load_explicit(&max_priority, memory_order_relaxed))
                return;
        char msg[2048];
        if (vsnprintf(msg, sizeof(msg), fmt, ap) < 0)
                return;
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
