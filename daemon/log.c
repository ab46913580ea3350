#define _GNU_SOURCE
#include "log.h"

#include <stdatomic.h>
#include <stdio.h>
#include <unistd.h>

static _Atomic int max_priority = LOG_INFO;
static _Atomic int prefix = -1; /* -1: decide on first use */

void log_set_max_priority(int priority)
{
        atomic_store_explicit(&max_priority, priority, memory_order_relaxed);
}

void log_set_prefix(int on)
{
        atomic_store_explicit(&prefix, on, memory_order_relaxed);
}

void log_vmsg(int priority, const char *component, const char *fmt, va_list ap)
{
        if (priority > atomic_load_explicit(&max_priority, memory_order_relaxed))
                return;
        int p = atomic_load_explicit(&prefix, memory_order_relaxed);
        if (p < 0) {
                p = !isatty(STDERR_FILENO);
                atomic_store_explicit(&prefix, p, memory_order_relaxed);
        }
        char line[2048];
        int n = 0;
        if (p)
                n = snprintf(line, sizeof(line), "<%d>", priority);
        if (component)
                n += snprintf(line + n, sizeof(line) - (size_t)n, "%s: ", component);
        int m = vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
        if (m < 0)
                return;
        n += m;
        if (n > (int)sizeof(line) - 2)
                n = (int)sizeof(line) - 2;
        line[n++] = '\n';
        /* One write per line keeps lines of concurrent threads whole. */
        ssize_t w = write(STDERR_FILENO, line, (size_t)n);
        (void)w;
}

void log_msg(int priority, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        log_vmsg(priority, NULL, fmt, ap);
        va_end(ap);
}
