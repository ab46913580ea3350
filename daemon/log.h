/* Logging for every thread of the daemon. Under systemd (stderr is the journal stream) each
 * message goes to the journal with structured fields (PRIORITY, COMPONENT, CLASS, WORKER, CHANNEL);
 * otherwise one line on stderr, prefixed with the sd-daemon priority ("<6>") unless stderr is
 * a terminal. Thread safe; never blocks longer than a write to stderr or the journal socket,
 * and not at all in a thread attached to a deferred queue (below). */
#ifndef ACTORD_LOG_H
#define ACTORD_LOG_H

#include <stdarg.h>
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

/* Deferred logging, for the threads that must never block (the workers: a full pipe or a
 * slow journal would stall them). log_defer_init() makes `n` queues (bounded; when one is
 * full, new messages are dropped and counted) and returns an eventfd that becomes readable
 * when messages wait; the calling thread becomes the one that writes them, with log_drain().
 * A thread that called log_defer_attach(i) queues its messages in queue i from then on,
 * without blocking. The writing thread drains the queues before each message of its own, so
 * that messages keep their order across threads as far as it sees them. Without
 * log_defer_init() every thread writes its messages itself. Returns the fd or -errno. */
int log_defer_init(int n);
void log_defer_attach(int i);
/* Writes the queued messages, and how many each queue dropped. The log_defer_init() thread
 * only. */
void log_drain(void);

#define log_error(...) log_msg(LOG_ERR, __VA_ARGS__)
#define log_warning(...) log_msg(LOG_WARNING, __VA_ARGS__)
#define log_notice(...) log_msg(LOG_NOTICE, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

#endif
