/* Logging for every thread of the daemon. Under systemd (stderr is the journal stream) each
 * message goes to the journal with structured fields (PRIORITY, COMPONENT, CLASS, WORKER, CHANNEL);
 * otherwise one line on stderr, prefixed with the sd-daemon priority ("<6>") unless stderr is
 * a terminal. Thread safe; never blocks longer than a write to stderr or the journal socket,
 * and not at all in a thread that queues its messages for the log writer (below). */
#ifndef ACTORD_LOG_H
#define ACTORD_LOG_H

#include <stdarg.h>
#include <stdint.h>
#include <syslog.h>

/* Sets the most verbose priority printed (LOG_INFO by default). */
void log_set_max_priority(int priority);
/* Whether lines carry "<N>" prefixes: on by default when stderr is not a terminal. */
void log_set_prefix(int on);

/* Journal fields of a message about a component; NULL members and worker < 0 are left out. */
struct log_fields {
        const char *component;
        const char *cls;
        int worker;
        const char *channel; /* "comp.port -> comp.port" */
};

void log_msg(int priority, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void log_fields(int priority, const struct log_fields *f, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void log_vfields(int priority, const struct log_fields *f, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

/* The log writer thread: from log_defer_init() on, the calling thread (the main thread) and
 * the threads that call log_defer_attach(i) (the workers, one queue each) put their messages
 * in bounded queues that one writer thread writes out, in the order they were logged (two
 * logged by two threads at the same moment may swap); only
 * the writer can block on stderr or the journal. A full queue drops the message (counted and
 * reported: "N log messages of worker W dropped"); the main thread first waits for room a
 * little, once per stall of the writer. Other threads write their messages themselves.
 * log_defer_finish() writes what is queued, waiting for the writer at most timeout_ms (a
 * writer stuck on a stalled reader is left behind), and goes back to direct writes.
 * Returns 0 or -errno. */
int log_defer_init(int n_workers);
void log_defer_attach(int i);
void log_defer_finish(int timeout_ms);
/* Messages dropped so far because the queue of worker `worker` (-1: the main thread's) was
 * full; 0 without queues. The count goes up before the writer can report it, so it shows a
 * stalled log's losses while the log itself cannot. Main thread (relaxed loads). */
uint64_t log_dropped(int worker);

#define log_error(...) log_msg(LOG_ERR, __VA_ARGS__)
#define log_warning(...) log_msg(LOG_WARNING, __VA_ARGS__)
#define log_notice(...) log_msg(LOG_NOTICE, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

#endif
